"""Multi-input layers that let graphs branch and merge: Add and Concatenate."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Diffable, Tensor
from ..validation import as_float_array

__all__ = ["Add", "Concatenate"]


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
        return [np.asarray(a, dtype=dtype) for a in arrays]

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
        return [Tensor(np.array(up)) for up in J for _ in self.inputs]


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
