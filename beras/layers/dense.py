"""Dense: the fully connected layer of the course stencil."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import initializers
from ..core import Diffable, Tensor, Variable
from ..utils import get_rng
from ..validation import as_float_array, positive_int

__all__ = ["DENSE_INITIALIZERS", "Dense"]

DENSE_INITIALIZERS = initializers.InitializerName


class Dense(Diffable):
    """Fully connected layer: ``f(x) = x @ w + b``.

    Args:
        input_size: features per input sample.
        output_size: features per output sample.
        initializer: how ``w`` is drawn, one of ``DENSE_INITIALIZERS`` (case-insensitive);
            ``b`` always starts at zeros of shape ``(1, output_size)``.
        seed: an int or ``np.random.Generator`` for the draw; default Beras's global
            generator (see ``beras.utils.set_random_seed``).

    Inputs are ``(batch, input_size)``; integer inputs are promoted, and floats are cast
    to the weights' dtype (as Keras autocasts), so float32 weights compute in float32.
    """

    input_gradient_layout = "matmul"

    def __init__(
        self,
        input_size: int,
        output_size: int,
        initializer: DENSE_INITIALIZERS = "normal",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.input_size = positive_int(input_size, "input_size", "Dense")
        self.output_size = positive_int(output_size, "output_size", "Dense")
        self.initializer = initializers.normalize_name(initializer)
        self.w, self.b = self._initialize_weight(
            self.initializer, self.input_size, self.output_size, rng=get_rng(seed)
        )

    def __repr__(self) -> str:
        return f"Dense({self.input_size}\u2192{self.output_size})"

    @property
    def weights(self) -> list[Tensor]:
        return [self.w, self.b]

    @staticmethod
    def _initialize_weight(
        initializer: str,
        input_size: int,
        output_size: int,
        rng: np.random.Generator | None = None,
    ) -> tuple[Variable, Variable]:
        """``(w, b)`` as Variables: ``w`` drawn by ``initializer``, ``b`` zeros ``(1, out)``."""
        rng = get_rng() if rng is None else rng
        w = initializers.kernel(initializer, (input_size, output_size), rng)
        return Variable(w, name="w"), Variable(np.zeros((1, output_size), dtype=w.dtype), name="b")

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, output_size)`` for ``(batch, input_size)``."""
        shape = tuple(input_shape)
        if len(shape) != 2 or shape[1] != self.input_size:
            raise ValueError(
                f"{self!r} expected inputs of shape (batch, {self.input_size}), got {shape}"
            )
        return (shape[0], self.output_size)

    def _input(self, x: Any) -> np.ndarray:
        arr = as_float_array(x, self.w.dtype, self)
        if arr.ndim != 2 or arr.shape[1] != self.input_size:
            hint = " (a single sample? add a batch axis: x[None, :])" if arr.ndim == 1 else ""
            raise ValueError(
                f"{self!r} expected inputs of shape (batch, {self.input_size}), "
                f"got {tuple(np.shape(x))}{hint}"
            )
        return arr

    def forward(self, x: Any) -> np.ndarray:
        # plain-array views of the weights: the output is a Tensor, not a Variable
        out = self._input(x) @ np.asarray(self.w)
        out += np.asarray(self.b)
        return out

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(np.array(self.w))]  # a copy: editing it must not edit the weights

    def get_weight_gradients(self) -> list[Tensor]:
        x = as_float_array(self.inputs[0], self.w.dtype)
        return [Tensor(x[:, :, None].copy()), Tensor(np.ones_like(self.b))]  # no view of the input

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        w_t = np.asarray(self.w).T
        return [Tensor(np.asarray(up) @ w_t) for up in J]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_weight_gradients()
        x = as_float_array(self.inputs[0], self.w.dtype)
        out: list[Tensor] = []
        for up in J:
            up = np.asarray(up)
            out += [Tensor(x.T @ up), Tensor(up.sum(axis=0, keepdims=True))]
        return out
