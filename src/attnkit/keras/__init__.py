"""attnkit for Keras users: Keras 3 attention layers on every backend (JAX, TensorFlow,
PyTorch), saved to ``.keras`` and reloaded with ``safe_mode=True``, equal to attnkit's PyTorch
layers (``from_torch`` / ``to_torch`` convert the weights).

Install with ``pip install "attnkit[keras]"`` (Keras 3 needs Python 3.11 or newer) and choose
the backend as Keras does, with ``KERAS_BACKEND`` before the first ``import keras``.

Example:
    >>> import numpy as np, keras
    >>> from attnkit.keras import AdditiveAttention
    >>> inputs = keras.Input((None, 8))
    >>> states = keras.layers.LSTM(16, return_sequences=True)(inputs)
    >>> context, weights = AdditiveAttention(12)(states[:, -1], states, return_weights=True)
    >>> model = keras.Model(inputs, [context, weights])
    >>> [tuple(t.shape) for t in model(np.ones((2, 5, 8), "float32"))]
    [(2, 16), (2, 5)]
"""

from __future__ import annotations

try:
    import keras
except ImportError as err:  # pragma: no cover - the [keras] extra is missing
    raise ImportError(
        'attnkit.keras needs Keras 3: pip install "attnkit[keras]" (Python >= 3.11)'
    ) from err

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - Keras 2 (tf.keras) found
    raise ImportError(f"attnkit.keras needs Keras 3, found Keras {keras.__version__}")

from .convert import from_torch, to_torch  # noqa: E402
from .layers import (  # noqa: E402
    AdditiveAttention,
    AttentionGate,
    FeedForwardAttention,
    LocalAttention,
    MultiHeadAttention,
    MultiplicativeAttention,
    SeqSelfAttention,
)

__all__ = [
    "AdditiveAttention",
    "AttentionGate",
    "FeedForwardAttention",
    "LocalAttention",
    "MultiHeadAttention",
    "MultiplicativeAttention",
    "SeqSelfAttention",
    "from_torch",
    "to_torch",
]
