"""Layers with weights (Dense) and multi-input layers that let graphs branch and merge."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from . import initializers
from .config import float_dtype
from .core import Diffable, Tensor, Variable
from .utils import get_rng

__all__ = ["DENSE_INITIALIZERS", "Add", "Concatenate", "Dense"]

DENSE_INITIALIZERS = Literal[
    "zero", "normal", "xavier", "kaiming", "xavier uniform", "kaiming uniform"
]


def as_float_array(x: Any, dtype: np.dtype | None = None, owner: object = None) -> np.ndarray:
    """``x`` as a float ndarray: ``dtype`` if given, floats kept, other numbers floatx.

    Non-numeric data raises a ``TypeError`` naming ``owner`` (the calling component).
    """
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner if owner is not None else 'Beras'} expected numeric inputs (bool, int or "
            f"float), got an array of dtype {arr.dtype}"
        )
    if dtype is not None:
        return arr if arr.dtype == dtype else arr.astype(dtype)
    if arr.dtype.kind != "f":
        return arr.astype(float_dtype())
    return arr


def _positive_int(value: Any, what: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)


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
        self.input_size = _positive_int(input_size, "input_size", "Dense")
        self.output_size = _positive_int(output_size, "output_size", "Dense")
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
        return Variable(w), Variable(np.zeros((1, output_size), dtype=w.dtype))

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


class _Merge(Diffable):
    """A layer of two or more same-shaped inputs: ``layer(a, b, ...)`` or ``layer([a, b])``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        return super().__call__(*args, **kwargs)

    def _arrays(self, inputs: tuple[Any, ...]) -> list[np.ndarray]:
        name = type(self).__name__
        if len(inputs) < 2:
            raise ValueError(f"{name} expected at least 2 inputs, got {len(inputs)}")
        arrays = [as_float_array(x, owner=name) for x in inputs]
        dtype = np.result_type(*arrays)
        return [a.astype(dtype, copy=False) for a in arrays]

    def get_weight_gradients(self) -> list[Tensor]:
        return []


class Add(_Merge):
    """Elementwise sum of two or more tensors of the same shape (``keras.layers.Add``)."""

    input_gradient_layout = "elementwise"

    def forward(self, *inputs: Any) -> Tensor:
        arrays = self._arrays(inputs)
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1:
            raise ValueError(
                f"Add expected inputs of one shape, got shapes {[a.shape for a in arrays]}"
            )
        out = arrays[0].copy()
        for a in arrays[1:]:
            out += a
        return Tensor(out)

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(np.ones(np.shape(x), dtype=self.outputs[0].dtype)) for x in self.inputs]

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        return [Tensor(np.array(up, copy=True)) for up in J for _ in self.inputs]


class Concatenate(_Merge):
    """Concatenation along the last axis (``keras.layers.Concatenate()``).

    Local input gradients are the ``(n_k, n_total)`` selection matrices, so the stencil's
    composition ``g @ J[b]`` picks input ``k``'s slice; the override slices directly.
    """

    input_gradient_layout = "matmul"

    def forward(self, *inputs: Any) -> Tensor:
        arrays = self._arrays(inputs)
        leading = {a.shape[:-1] for a in arrays}
        if len(leading) != 1 or any(a.ndim == 0 for a in arrays):
            raise ValueError(
                "Concatenate expected inputs that differ only in the last axis, got shapes "
                f"{[a.shape for a in arrays]}"
            )
        return Tensor(np.concatenate(arrays, axis=-1))

    def _bounds(self) -> list[tuple[int, int]]:
        sizes = [np.shape(x)[-1] for x in self.inputs]
        ends = np.cumsum(sizes)
        return [(int(e - s), int(e)) for s, e in zip(sizes, ends)]

    def get_input_gradients(self) -> list[Tensor]:
        total = self.outputs[0].shape[-1]
        eye = np.eye(total, dtype=self.outputs[0].dtype)
        return [Tensor(eye[lo:hi]) for lo, hi in self._bounds()]

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        bounds = self._bounds()
        return [Tensor(np.array(np.asarray(up)[..., lo:hi])) for up in J for lo, hi in bounds]
