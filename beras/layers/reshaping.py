"""Flatten: ``(batch, d1, d2, ...)`` to ``(batch, d1*d2*...)``, as ``keras.layers.Flatten``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Diffable, Tensor
from ..validation import as_float_array

__all__ = ["Flatten"]


class Flatten(Diffable):
    """Flattens every axis but the batch axis (row-major, so channels-last stays adjacent).

    A ``(batch,)`` input becomes ``(batch, 1)``, as in Keras. The local Jacobian is the
    ``(n, n)`` identity shared by every sample (the teaching view); the tape's product
    just reshapes the upstream gradient.
    """

    input_gradient_layout = "matmul"

    def __repr__(self) -> str:
        return "Flatten()"

    @property
    def weights(self) -> list[Tensor]:
        return []

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, prod(input_shape[1:]))``."""
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ValueError(f"{self!r} expected inputs with a batch axis, got shape {shape}")
        rest = shape[1:]
        if any(d is None for d in rest):
            return (shape[0], None)
        return (shape[0], int(np.prod(rest, dtype=np.int64)))

    def forward(self, x: Any) -> np.ndarray:
        arr = as_float_array(x, owner=self)
        if arr.ndim < 1:
            raise ValueError(f"{self!r} expected inputs with a batch axis, got a scalar")
        return arr.reshape(arr.shape[0], -1).copy()

    def get_input_gradients(self) -> list[Tensor]:
        out = self.outputs[0]
        return [Tensor(np.eye(out.shape[1], dtype=out.dtype))]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        shape = np.shape(self.inputs[0])
        return [Tensor(np.array(up).reshape(shape)) for up in J]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        return []
