"""Channel and spatial attention for CNN feature maps (B, C, H, W).

Every layer here returns ``AttentionOutput(context, weights)`` whatever the flags: the
re-weighted map as ``context`` (same shape as the input), and the attention weights when
``return_weights=True`` (else None). Use ``.context`` where a plain tensor is needed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional.output import AttentionOutput
from .base import check_dtype, check_sizes


def _check_map(module: nn.Module, x: Tensor, channels: int | None) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"expected a float feature map (B, C, H, W), got {shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"expected {channels} channels, got shape {tuple(x.shape)}")
    if 0 in x.shape[1:]:
        raise ValueError(f"the feature map is empty: shape {tuple(x.shape)}; need C, H, W >= 1")
    check_dtype(module, x=x)


class _ChannelGate(nn.Module):
    """x * w with one weight in (0, 1) a channel, w (B, C, 1, 1) from :meth:`weights`, and the
    two-layer MLP (C -> max(C // reduction, 1) -> C) both channel gates use."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_sizes(type(self).__name__, channels=channels, reduction=reduction)
        self.channels = channels
        self.hidden = max(channels // reduction, 1)

    def _mlp(self) -> nn.Sequential:
        return nn.Sequential(
            nn.Linear(self.channels, self.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(self.hidden, self.channels),
        )

    def weights(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, *, return_weights: bool = False) -> AttentionOutput:
        """The map re-weighted channel by channel.

        Args:
            x: (B, C, H, W).
            return_weights: also return the channel weights (default False).

        Returns:
            AttentionOutput: context (B, C, H, W) and weights (B, C, 1, 1) or None."""
        _check_map(self, x, self.channels)
        w = self.weights(x)  # (B, C, 1, 1)
        return AttentionOutput(x * w, w if return_weights else None)


class SqueezeExcite(_ChannelGate):
    """Squeeze-and-Excitation, Hu et al. 2018 (arXiv:1709.01507), eq. 2-4:

        s = sigmoid(W_2 relu(W_1 GAP(x))),  output x * s per channel.

    Shapes: x (B, C, H, W) -> context the same; weights (B, C, 1, 1) when ``return_weights``.

    Example:
        >>> se = SqueezeExcite(32, reduction=8)
        >>> out = se(torch.randn(2, 32, 7, 7), return_weights=True)
        >>> out.context.shape, out.weights.shape
        (torch.Size([2, 32, 7, 7]), torch.Size([2, 32, 1, 1]))
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(channels, reduction)
        self.fc = self._mlp()

    def weights(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.fc(x.mean(dim=(2, 3))))[:, :, None, None]  # (B, C, 1, 1)


class ChannelAttention(_ChannelGate):
    """CBAM's channel attention: sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))), shared MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__(channels, reduction)
        self.mlp = self._mlp()

    def weights(self, x: Tensor) -> Tensor:
        avg, mx = x.mean(dim=(2, 3)), x.amax(dim=(2, 3))  # (B, C) each
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))[:, :, None, None]  # (B, C, 1, 1)


class SpatialAttention(nn.Module):
    """CBAM's spatial attention, Woo et al. 2018 (arXiv:1807.06521), eq. 3:

        s = sigmoid(conv_kxk([mean_c(x); max_c(x)])),  output x * s per position.

    Shapes: x (B, C, H, W) -> context the same; weights (B, 1, H, W) when ``return_weights``.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        check_sizes("SpatialAttention", kernel_size=kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def weights(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))  # (B, 1, H, W)

    def forward(self, x: Tensor, *, return_weights: bool = False) -> AttentionOutput:
        """CBAM's spatial attention (Woo et al. 2018): one weight per position.

        Args:
            x: (B, C, H, W).
            return_weights: also return the map (default False).

        Returns:
            AttentionOutput: context (B, C, H, W) and weights (B, 1, H, W) or None."""
        _check_map(self, x, None)
        s = self.weights(x)
        return AttentionOutput(x * s, s if return_weights else None)


class CBAM(nn.Module):
    """Convolutional Block Attention Module, Woo et al. 2018: channel then spatial attention.

    Shapes: x (B, C, H, W) -> context the same. With ``return_weights`` the weights are the
    pair (channel (B, C, 1, 1), spatial (B, 1, H, W)).

    Example:
        >>> CBAM(16, reduction=4)(torch.randn(2, 16, 9, 9)).context.shape
        torch.Size([2, 16, 9, 9])
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        check_sizes("CBAM", channels=channels, reduction=reduction)
        self.channels = channels
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor, *, return_weights: bool = False) -> AttentionOutput:
        """Channel then spatial attention (Woo et al. 2018).

        Args:
            x: (B, C, H, W).
            return_weights: also return both (default False).

        Returns:
            AttentionOutput: context (B, C, H, W) and weights (channel (B, C, 1, 1), spatial
            (B, 1, H, W)) or None."""
        _check_map(self, x, self.channels)
        c = self.channel.weights(x)
        x = x * c
        s = self.spatial.weights(x)
        pair = (c, s) if return_weights else None  # CBAM's weights: (channel, spatial)
        return AttentionOutput(x * s, pair)  # type: ignore[arg-type]
