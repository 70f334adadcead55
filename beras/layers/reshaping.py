"""Reshaping layers, as in Keras: ``Flatten`` (``(batch, d1, d2, ...)`` to
``(batch, d1*d2*...)``) and ``Reshape`` (to ``(batch, *target_shape)``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core import Diffable, Tensor
from ..validation import as_float_array

__all__ = ["Flatten", "Reshape"]


class _Reshaping(Diffable):
    """What Flatten and Reshape share: no weights, and derivatives that only move entries.

    The local Jacobian is the identity over a sample's entries: one ``(n, n)`` matrix
    shared by every sample for a flat output, else the same identity per sample
    (``(batch, n, n)``, a broadcast view, no copies); the tape's product reshapes the
    upstream gradient back to the input's shape.
    """

    input_gradient_layout = "matmul"

    @property
    def weights(self) -> list[Tensor]:
        return []

    def _batched(self, x: Any) -> np.ndarray:
        arr = as_float_array(x, owner=self)
        if arr.ndim < 1:
            raise ValueError(f"{self!r} expected inputs with a batch axis, got a scalar")
        return arr

    def get_input_gradients(self) -> list[Tensor]:
        out = self.outputs[0]
        n = math.prod(out.shape[1:])
        eye = np.eye(n, dtype=out.dtype)
        if out.ndim == 2:
            return [Tensor(eye)]
        # a shared (in, out) gradient composes with 2-D outputs only
        return [Tensor(np.broadcast_to(eye, (out.shape[0], n, n)))]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        shape = np.shape(self.inputs[0])
        return [Tensor(np.array(up).reshape(shape)) for up in J]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        return []


class Flatten(_Reshaping):
    """Flattens every axis but the batch axis (row-major, so channels-last stays adjacent).

    A ``(batch,)`` input becomes ``(batch, 1)``, as in Keras. The local Jacobian is the
    ``(n, n)`` identity shared by every sample (the teaching view); the tape's product
    just reshapes the upstream gradient.
    """

    def __repr__(self) -> str:
        return "Flatten()"

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, prod(input_shape[1:]))``."""
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ValueError(f"{self!r} expected inputs with a batch axis, got shape {shape}")
        rest = shape[1:]
        if any(d is None for d in rest):
            return (shape[0], None)
        return (shape[0], math.prod(rest))

    def forward(self, x: Any) -> np.ndarray:
        arr = self._batched(x)
        return arr.reshape(arr.shape[0], -1).copy()


class Reshape(_Reshaping):
    """Reshapes every sample to ``target_shape`` (row-major), as ``keras.layers.Reshape``.

    ``target_shape`` excludes the batch axis; one entry may be ``-1``, inferred from the
    sample's size. ``Reshape((28, 28, 1))`` turns rows of 784 pixels into channels-last
    images for ``Conv2D``. Like :class:`Flatten`, the local Jacobian is the ``(n, n)``
    identity of every sample (shared ``(n, n)`` for a flat output, else broadcast to
    ``(batch, n, n)``); the tape's product just reshapes the upstream gradient back to
    the input's shape.
    """

    def __init__(self, target_shape: Sequence[int]) -> None:
        try:
            shape = tuple(target_shape)
        except TypeError:
            shape = ()
        ok = bool(shape) and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and (d > 0 or d == -1)
            for d in shape
        )
        if not ok or sum(1 for d in shape if d == -1) > 1:
            raise ValueError(
                "Reshape: target_shape must be a non-empty tuple of positive ints with at "
                f"most one -1, got {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in shape)

    def __repr__(self) -> str:
        return f"Reshape({self.target_shape})"

    def _resolve(self, size: int) -> tuple[int, ...]:
        """``target_shape`` with its ``-1`` inferred for samples of ``size`` values."""
        known = math.prod([d for d in self.target_shape if d != -1])
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ValueError(
                    f"{self!r} cannot reshape samples of {size} values: {size} is not a "
                    f"multiple of {known}"
                )
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(
                f"{self!r} expected samples of {known} values, got samples of {size} values"
            )
        return self.target_shape

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, *target_shape)``, the ``-1`` inferred when the sample size is known."""
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ValueError(f"{self!r} expected inputs with a batch axis, got shape {shape}")
        rest = shape[1:]
        if any(d is None for d in rest):
            return (shape[0], *(None if d == -1 else d for d in self.target_shape))
        return (shape[0], *self._resolve(math.prod(rest)))

    def forward(self, x: Any) -> np.ndarray:
        arr = self._batched(x)
        size = math.prod(arr.shape[1:])
        return arr.reshape(arr.shape[0], *self._resolve(size)).copy()
