import pytest
import torch

import attnkit as ak


@pytest.mark.reference
def test_squeeze_excite_matches_the_equation():
    se = ak.SqueezeExcite(8, reduction=2).double()
    x = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    w1, w2 = se.fc[0], se.fc[2]
    s = torch.sigmoid(w2(torch.relu(w1(x.mean(dim=(2, 3))))))
    out = se(x, return_weights=True)
    torch.testing.assert_close(out.weights.squeeze(), s)
    torch.testing.assert_close(out.context, x * s[:, :, None, None])
    plain = se(x)
    assert isinstance(plain, ak.AttentionOutput) and plain.weights is None  # one return type
    torch.testing.assert_close(plain.context, out.context)


@pytest.mark.reference
def test_cbam_is_channel_then_spatial():
    cbam = ak.CBAM(8, reduction=2, kernel_size=3).double()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    out = cbam(x, return_weights=True)
    c, s = out.weights
    assert c.shape == (2, 8, 1, 1) and s.shape == (2, 1, 6, 6)
    mlp = cbam.channel.mlp
    c_ref = torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))[:, :, None, None]
    torch.testing.assert_close(c, c_ref)
    xc = x * c_ref
    pooled = torch.cat([xc.mean(1, keepdim=True), xc.amax(1, keepdim=True)], dim=1)
    s_ref = torch.sigmoid(cbam.spatial.conv(pooled))
    torch.testing.assert_close(s, s_ref)
    torch.testing.assert_close(out.context, xc * s_ref)


@pytest.mark.robustness
@pytest.mark.parametrize(
    "make",
    [lambda: ak.SqueezeExcite(4, 2), lambda: ak.SpatialAttention(3), lambda: ak.CBAM(4, 2, 3)],
)
def test_gradcheck_float64(make):
    layer = make().double()
    x = torch.randn(2, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    x = x + 0.01 * torch.arange(64, dtype=torch.float64).view(1, 4, 4, 4)  # no max-pool ties
    x = x.detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: layer(x).context, (x,))


@pytest.mark.bad_input
def test_bad_feature_maps():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ak.SqueezeExcite(4)(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="expected 4 channels"):
        ak.CBAM(4)(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="odd"):
        ak.SpatialAttention(4)
