"""Location-based attention: weights from the query alone, one learned logit per position."""

from __future__ import annotations

from torch import Tensor, nn

from ..functional import attend
from ..functional.output import AttentionOutput
from .base import QKVAttention, check_sizes


class LocationAttention(QKVAttention):
    """Location-based attention of Luong, Pham & Manning 2015 (arXiv:1508.04025), section 3.1:

        a_t = softmax(W_a h_t),   c_t = sum_j a_tj v_j,

    where W_a maps the query to one logit per source position 0 .. max_len - 1, so the weights
    depend on the query and the position only, never on what the keys hold. The same layer
    fed the query [y_{t-1}; s_{t-1}] (the previous output's embedding and the decoder state) is
    the attention of the classic PyTorch seq2seq tutorial, a fully connected layer over
    input positions. Logits past the real keys are masked; sequences longer than ``max_len``
    are refused.

    Shapes: query (B, Tq, Dq) or (B, Dq); keys (B, Tk, Dk) with Tk <= max_len (only their
    length is used); values (B, Tk, Dv), default keys. Returns AttentionOutput(context
    (B, Tq, Dv), weights (B, Tq, Tk)).

    Example:
        >>> attn = LocationAttention(query_dim=16, max_len=12)
        >>> out = attn(torch.randn(2, 16), torch.randn(2, 9, 8), lengths=torch.tensor([9, 4]))
        >>> out.context.shape, out.weights[1, 4:].abs().sum().item()
        (torch.Size([2, 8]), 0.0)
    """

    def __init__(self, query_dim: int, max_len: int) -> None:
        super().__init__()
        check_sizes("LocationAttention", query_dim=query_dim, max_len=max_len)
        self.query_dim, self.max_len = query_dim, max_len
        self.key_dim = None  # any: keys give only their positions
        self.proj = nn.Linear(query_dim, max_len)  # W_a

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Logits (B, Tq, Tk): the query's logits of the first Tk positions."""
        if keys.shape[-2] > self.max_len:
            raise ValueError(
                f"LocationAttention has logits for {self.max_len} positions; got "
                f"{keys.shape[-2]} keys"
            )
        return self.proj(query)[..., : keys.shape[-2]]

    def _attend(self, query, keys, values, mask, return_weights) -> AttentionOutput:
        return attend(
            query, keys, values, score=self.score, mask=mask, return_weights=return_weights
        )

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, max_len={self.max_len}"
