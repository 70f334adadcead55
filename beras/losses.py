"""Losses: scalar Diffables of ``(y_pred, y_true)``; ``y_true`` is a constant."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Tensor, _Elementwise
from .validation import as_float_array

__all__ = ["CategoricalCrossEntropy", "Loss", "MeanSquaredError"]


class Loss(_Elementwise):
    """A weightless Diffable returning a scalar; gradients have the inputs' shapes.

    The local gradients are ``[dL/dy_pred, dL/dy_true]`` (the latter zeros: labels are
    constants), composed with a scalar upstream by multiplication.
    """

    def _pair(self, y_pred: Any, y_true: Any) -> tuple[np.ndarray, np.ndarray]:
        """Both inputs as float arrays of one shape, or a clear error."""
        pred = as_float_array(y_pred, owner=self)
        true = np.asarray(y_true)
        if pred.shape != true.shape:
            raise ValueError(
                f"{type(self).__name__} expected y_pred and y_true of the same shape, got "
                f"y_pred {pred.shape} and y_true {true.shape}{self._shape_hint(pred, true)}"
            )
        if pred.ndim == 0:
            raise ValueError(f"{type(self).__name__} expected batched inputs, got scalars")
        return pred, as_float_array(true, pred.dtype, owner=self)

    def _shape_hint(self, pred: np.ndarray, true: np.ndarray) -> str:
        return ""


class MeanSquaredError(Loss):
    """Mean over the batch of per-sample mean squared errors (= mean over all elements)."""

    def forward(self, y_pred: Any, y_true: Any) -> Tensor:
        pred, true = self._pair(y_pred, y_true)
        diff = pred - true
        return Tensor(np.mean(diff * diff))

    def get_input_gradients(self) -> list[Tensor]:
        pred, true = self._pair(*self.inputs)
        grad = (pred - true) * pred.dtype.type(2.0 / pred.size)
        return [Tensor(grad), Tensor(np.zeros_like(true))]


class CategoricalCrossEntropy(Loss):
    """``mean_b(-sum_k y_true[b, k] * log y_pred[b, k])`` over one-hot/probability rows.

    Args:
        epsilon: probabilities are clipped to ``[epsilon, 1 - epsilon]`` before the log;
            as in Keras, the gradient is zero where clipping is active.
        from_logits: ``y_pred`` are logits: softmax and cross-entropy are fused (stable for
            any logits) and the gradient is ``(softmax(y_pred) * sum(y_true) - y_true) / B``.
    """

    def __init__(self, epsilon: float = 1e-12, from_logits: bool = False) -> None:
        self.epsilon = float(epsilon)
        if not 0.0 < self.epsilon < 0.5:
            raise ValueError(
                f"CategoricalCrossEntropy: epsilon must be in (0, 0.5), got {epsilon!r}"
            )
        self.from_logits = bool(from_logits)

    def __repr__(self) -> str:
        return f"CategoricalCrossEntropy(from_logits={self.from_logits})"

    def _shape_hint(self, pred: np.ndarray, true: np.ndarray) -> str:
        if true.shape in (pred.shape[:-1], (*pred.shape[:-1], 1)):  # (B,) or (B, 1) labels
            return (
                ". y_true looks like integer class labels: one-hot encode them first, e.g. "
                "beras.OneHotEncoder().forward(labels)"
            )
        return ""

    def _checked(self, y_pred: Any, y_true: Any) -> tuple[np.ndarray, np.ndarray]:
        pred, true = self._pair(y_pred, y_true)
        if pred.ndim < 2:
            raise ValueError(
                f"CategoricalCrossEntropy expected inputs of shape (batch, classes), got "
                f"{pred.shape}"
            )
        if not self.from_logits and pred.size and (pred.min() < 0.0 or pred.max() > 1.0):
            raise ValueError(
                "CategoricalCrossEntropy expected probabilities in [0, 1] as y_pred, got values "
                f"in [{pred.min():.4g}, {pred.max():.4g}]. If y_pred are logits (no Softmax "
                "before the loss), use CategoricalCrossEntropy(from_logits=True)."
            )
        return pred, true

    def _bounds(self, dtype: np.dtype) -> tuple[Any, Any]:
        """``[epsilon, 1 - epsilon]`` in the predictions' dtype (1 - 1e-12 is 1 in float32)."""
        return dtype.type(self.epsilon), dtype.type(1.0 - self.epsilon)

    def _clipped(self, pred: np.ndarray) -> np.ndarray:
        return np.clip(pred, *self._bounds(pred.dtype))

    def forward(self, y_pred: Any, y_true: Any) -> Tensor:
        pred, true = self._checked(y_pred, y_true)
        batch = pred.shape[0]
        if self.from_logits:
            log_p = _log_softmax(pred)
        else:
            log_p = np.log(self._clipped(pred))
        return Tensor(-np.sum(true * log_p) / pred.dtype.type(batch))

    def get_input_gradients(self) -> list[Tensor]:
        pred, true = self._checked(*self.inputs)
        inv_batch = pred.dtype.type(1.0 / pred.shape[0])
        if self.from_logits:
            with np.errstate(under="ignore"):  # as in _log_softmax
                p = np.exp(_log_softmax(pred))
            grad = (p * true.sum(axis=-1, keepdims=True) - true) * inv_batch
        else:
            lo, hi = self._bounds(pred.dtype)
            inside = (pred >= lo) & (pred <= hi)
            grad = np.where(inside, -true / self._clipped(pred), 0.0)  # pred's dtype, as true's
            grad *= inv_batch
        return [Tensor(grad), Tensor(np.zeros_like(true))]


def _log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)
    # exp underflows harmlessly to 0 for very negative entries; the max entry contributes 1
    with np.errstate(under="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
