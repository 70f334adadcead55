"""Activation functions. Elementwise ones compose as ``local * J``; Softmax as a VJP."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Tensor, _Elementwise
from .validation import as_float_array

__all__ = ["Activation", "LeakyReLU", "ReLU", "Sigmoid", "Softmax"]


class Activation(_Elementwise):
    """A weightless, elementwise Diffable: ``get_input_gradients()`` has the input's shape."""

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """The input shape: activations keep the shape."""
        return tuple(input_shape)


class LeakyReLU(Activation):
    """``x`` for x > 0, ``alpha * x`` otherwise; gradient 1, ``alpha``, and 0 at exactly 0."""

    def __init__(self, alpha: float = 0.3) -> None:
        alpha = float(alpha)
        if not np.isfinite(alpha):
            raise ValueError(f"LeakyReLU: alpha must be a finite number, got {alpha!r}")
        self.alpha = alpha

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha})"

    def forward(self, x: Any) -> Tensor:
        x = as_float_array(x, owner=self)
        if self.alpha == 0.0:
            return Tensor(np.maximum(x, 0))  # a Python 0 keeps x's dtype
        return Tensor(np.where(x > 0, x, x * self.alpha))

    def get_input_gradients(self) -> list[Tensor]:
        x = as_float_array(self.inputs[0])
        grad = (x > 0).astype(x.dtype)
        if self.alpha != 0.0:
            grad += (x < 0) * x.dtype.type(self.alpha)
        return [Tensor(grad)]

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None or self.alpha != 0.0:
            return super().compose_input_gradients(J)
        positive = as_float_array(self.inputs[0]) > 0
        return [Tensor(_keep_where(positive, up)) for up in J]


class ReLU(LeakyReLU):
    """``max(x, 0)``: a LeakyReLU with ``alpha = 0``."""

    def __init__(self) -> None:
        super().__init__(alpha=0.0)

    def __repr__(self) -> str:
        return "ReLU()"


class Sigmoid(Activation):
    """``1 / (1 + exp(-x))``, evaluated without overflow for any finite x."""

    def forward(self, x: Any) -> Tensor:
        x = as_float_array(x, owner=self)
        with np.errstate(under="ignore"):  # exp(-|x|) is in [0, 1]: never overflows
            e = np.exp(-np.abs(x))
            return Tensor(np.where(x >= 0, 1.0, e) / (1.0 + e))

    def get_input_gradients(self) -> list[Tensor]:
        s = self.outputs[0]
        return [Tensor(s * (1.0 - s))]


class Softmax(Activation):
    """Softmax over the last axis, stable (each row's max is subtracted first).

    ``get_input_gradients()`` returns the batched Jacobians ``(B, n, n)`` the stencil
    describes; ``compose_input_gradients(J)`` is the VJP ``y * (J - sum(J * y))``,
    which never builds them.
    """

    input_gradient_layout = "matmul"

    def forward(self, x: Any) -> Tensor:
        x = as_float_array(x, owner=self)
        shifted = x - x.max(axis=-1, keepdims=True)
        with np.errstate(under="ignore"):  # exp of very negative logits is exactly 0: fine
            e = np.exp(shifted)
        e /= e.sum(axis=-1, keepdims=True)
        return Tensor(e)

    def get_input_gradients(self) -> list[Tensor]:
        y = np.asarray(self.outputs[0])
        with np.errstate(under="ignore"):  # products of tiny probabilities: 0 is exact enough
            jac = -y[..., :, None] * y[..., None, :]
        diag = np.einsum("...ii->...i", jac)  # a writable view of the diagonals
        diag += y
        return [Tensor(jac)]

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        y = np.asarray(self.outputs[0])
        out = []
        for up in J:
            up = np.asarray(up)
            with np.errstate(under="ignore"):
                out.append(Tensor(y * (up - (up * y).sum(axis=-1, keepdims=True))))
        return out


#: Every activation by name; ``get``, ``beras train --activation`` and the test
#: strategies all read this table.
ACTIVATIONS: dict[str, type[Activation]] = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "softmax": Softmax,
}
_ALIASES = {"leakyrelu": "leaky_relu"}


def get(name: str) -> Activation:
    """An activation instance by name (``"relu"``, ``"leaky_relu"``, ``"sigmoid"``, ``"softmax"``).

    Names are case-insensitive; ``-`` may replace ``_``.
    """
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}: expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


def _keep_where(keep: np.ndarray, up: Any) -> np.ndarray:
    """``np.where(keep, up, 0)`` in ``up``'s dtype, bit for bit, without a branch per entry.

    ``np.where`` picks each entry with a branch, mispredicted on ReLU's random masks:
    10x slower than a multiply at (128, 256). For float32/float64, clearing the bits of
    the dropped entries gives exactly the same array (+0.0 there; NaN, inf and -0.0
    kept where ``keep``), in two branch-free passes.
    """
    up = np.asarray(up)
    if up.dtype not in (np.float32, np.float64) or up.shape != keep.shape:
        return np.where(keep, up, 0)  # a Python 0 never widens up's dtype
    bits = np.dtype(f"u{up.dtype.itemsize}")
    mask = np.negative(keep.view(np.uint8), dtype=bits)  # all ones where kept, else 0
    np.bitwise_and(up.view(bits), mask, out=mask)
    return mask.view(up.dtype)
