"""Models of a window of bars: (B, N, F) features of the last N bars -> (B, out) scores.

``out`` is the number of classes of a classification target (fractal turning points: none /
buy / sell; next-bar direction: down / up) or 1 for a regression target (next-bar return).
They are the comparison of a price-series experiment, each registered by name:

- "series-attention": the self-attention block of the price-series article (one head), or a
  multi-head one with ``num_heads`` > 1: bars embedded by a linear layer plus a learned
  position, :class:`~attnkit.layers.TransformerEncoderLayer` blocks, the last bar's vector
  scored. ``return_weights`` gives each block's (B, H, N, N) weights: which past bars each bar
  looked at.
- "series-lstm": an LSTM over the bars, its last state scored.
- "series-cnn": 1-D convolutions over time (same padding), averaged over the window.
- "series-mlp": the flattened window through a two-layer perceptron, a fully connected layer
  whose weights on past bars are fixed after training, where attention's depend on the input.
- "series-linear": DLinear (Zeng et al. 2023, arXiv:2205.13504): the window split into a
  moving-average trend and the remainder, one linear map of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import LearnedPositions, TransformerEncoderLayer
from ..layers.base import check_sizes
from .registry import register, register_variant


@dataclass
class WindowConfig:
    """What every model of a window shares: features per bar, bars per window, outputs."""

    features: int = 12  # these three are set from the data
    window: int = 20
    out: int = 3  # classes, or 1 for a regression target


def _check_config(model: nn.Module, cfg: WindowConfig, **sizes: int) -> None:
    check_sizes(
        type(model).__name__, features=cfg.features, window=cfg.window, out=cfg.out, **sizes
    )


class _WindowModel(nn.Module):
    """What the window models share: the trainer's ``loss`` of a batch with ``x`` (B, N, F)
    windows and ``y`` labels: (B,) class ids (cross-entropy, weighted per class by the
    batch's optional ``class_weights``) or, with ``out`` 1, (B,) float targets (mean squared
    error)."""

    cfg: Any  # the model's own WindowConfig subclass

    def loss(self, batch) -> Tensor:
        scores = self(batch.x)
        if self.cfg.out == 1:
            return F.mse_loss(scores[:, 0], batch.y.to(scores.dtype))
        return F.cross_entropy(scores, batch.y, weight=getattr(batch, "class_weights", None))


def _check_window(x: Tensor, cfg) -> None:
    if x.dim() != 3 or x.shape[1] != cfg.window or x.shape[2] != cfg.features:
        raise ValueError(
            f"expected windows (B, {cfg.window}, {cfg.features}), got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise ValueError(f"windows must be floating point, got {x.dtype}")


@dataclass
class SeriesAttentionConfig(WindowConfig):
    d_model: int = 32
    num_heads: int = 1  # 1: the article's single-head block
    layers: int = 1
    dropout: float = 0.1


@register("series-attention", SeriesAttentionConfig)
class SeriesAttention(_WindowModel):
    """Self-attention over the bars of a window. Example:

    >>> m = SeriesAttention(SeriesAttentionConfig(features=5, window=8, out=3, num_heads=2))
    >>> scores, weights = m(torch.randn(4, 8, 5), return_weights=True)
    >>> scores.shape, weights[0].shape
    (torch.Size([4, 3]), torch.Size([4, 2, 8, 8]))
    """

    def __init__(self, cfg: SeriesAttentionConfig) -> None:
        super().__init__()
        _check_config(self, cfg, d_model=cfg.d_model, layers=cfg.layers)
        self.cfg = cfg
        self.embed = nn.Linear(cfg.features, cfg.d_model)
        self.positions = LearnedPositions(cfg.d_model, cfg.window)
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(cfg.d_model, cfg.num_heads, 2 * cfg.d_model, cfg.dropout)
            for _ in range(cfg.layers)
        )
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.out)

    def forward(self, x: Tensor, *, return_weights: bool = False):
        _check_window(x, self.cfg)
        h = self.positions(self.embed(x))
        weights = []
        for block in self.blocks:
            out = block(h, return_weights=return_weights)
            h = out.output
            weights.append(out.self_weights)
        scores = self.head(self.norm(h[:, -1]))
        return (scores, weights) if return_weights else scores


@dataclass
class SeriesLSTMConfig(WindowConfig):
    hidden_dim: int = 32
    dropout: float = 0.1


@register("series-lstm", SeriesLSTMConfig)
class SeriesLSTM(_WindowModel):
    def __init__(self, cfg: SeriesLSTMConfig) -> None:
        super().__init__()
        _check_config(self, cfg, hidden_dim=cfg.hidden_dim)
        self.cfg = cfg
        self.rnn = nn.LSTM(cfg.features, cfg.hidden_dim, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_dim, cfg.out)

    def forward(self, x: Tensor) -> Tensor:
        _check_window(x, self.cfg)
        _, (h, _) = self.rnn(x)
        return self.head(self.drop(h[-1]))


@dataclass
class SeriesCNNConfig(WindowConfig):
    channels: int = 32
    kernel: int = 3
    dropout: float = 0.1


@register("series-cnn", SeriesCNNConfig)
class SeriesCNN(_WindowModel):
    def __init__(self, cfg: SeriesCNNConfig) -> None:
        super().__init__()
        _check_config(self, cfg, channels=cfg.channels, kernel=cfg.kernel)
        self.cfg = cfg
        pad = cfg.kernel // 2
        self.conv1 = nn.Conv1d(cfg.features, cfg.channels, cfg.kernel, padding=pad)
        self.conv2 = nn.Conv1d(cfg.channels, cfg.channels, cfg.kernel, padding=pad)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.channels, cfg.out)

    def forward(self, x: Tensor) -> Tensor:
        _check_window(x, self.cfg)
        h = F.relu(self.conv2(F.relu(self.conv1(x.transpose(1, 2)))))  # (B, C, N)
        return self.head(self.drop(h.mean(-1)))


@dataclass
class SeriesMLPConfig(WindowConfig):
    hidden_dim: int = 64
    dropout: float = 0.1


@register("series-mlp", SeriesMLPConfig)
class SeriesMLP(_WindowModel):
    def __init__(self, cfg: SeriesMLPConfig) -> None:
        super().__init__()
        _check_config(self, cfg, hidden_dim=cfg.hidden_dim)
        self.cfg = cfg
        self.hidden = nn.Linear(cfg.window * cfg.features, cfg.hidden_dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden_dim, cfg.out)

    def bar_weights(self) -> Tensor:
        """(N,) how much each bar of the window moves the hidden layer: the norm of the first
        layer's weights on that bar's features, the same for every input."""
        w = self.hidden.weight.detach().view(self.cfg.hidden_dim, self.cfg.window, -1)
        norms = w.pow(2).sum((0, 2)).sqrt()
        return norms / norms.sum()

    def forward(self, x: Tensor) -> Tensor:
        _check_window(x, self.cfg)
        return self.head(self.drop(F.relu(self.hidden(x.flatten(1)))))


@dataclass
class SeriesLinearConfig(WindowConfig):
    kernel: int = 5  # the moving average of the trend, in bars (odd)


@register("series-linear", SeriesLinearConfig)
class SeriesLinear(_WindowModel):
    """DLinear: trend = the moving average of each feature over ``kernel`` bars (the window's
    edges repeated), remainder = the rest; scores = A trend + B remainder."""

    def __init__(self, cfg: SeriesLinearConfig) -> None:
        super().__init__()
        _check_config(self, cfg, kernel=cfg.kernel)
        if cfg.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd, got {cfg.kernel}")
        self.cfg = cfg
        self.trend = nn.Linear(cfg.window * cfg.features, cfg.out)
        self.rest = nn.Linear(cfg.window * cfg.features, cfg.out)

    def decompose(self, x: Tensor) -> tuple[Tensor, Tensor]:
        half = self.cfg.kernel // 2
        padded = torch.cat([x[:, :1].expand(-1, half, -1), x, x[:, -1:].expand(-1, half, -1)], 1)
        trend = F.avg_pool1d(padded.transpose(1, 2), self.cfg.kernel, stride=1).transpose(1, 2)
        return trend, x - trend

    def forward(self, x: Tensor) -> Tensor:
        _check_window(x, self.cfg)
        trend, rest = self.decompose(x)
        return self.trend(trend.flatten(1)) + self.rest(rest.flatten(1))


SERIES_MODELS = ("series-attention", "series-lstm", "series-cnn", "series-mlp", "series-linear")


# the comparison of a price-series experiment (``attnkit train prices --model``, the report)
register_variant("series", "attention", "series-attention", num_heads=1)  # the article's block
register_variant("series", "attention-4h", "series-attention", num_heads=4)
register_variant("series", "lstm", "series-lstm")
register_variant("series", "cnn", "series-cnn")
register_variant("series", "mlp", "series-mlp")
register_variant("series", "dlinear", "series-linear")
