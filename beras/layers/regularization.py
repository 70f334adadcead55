"""Dropout: inverted dropout during training, the identity at inference."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import Tensor, _Elementwise
from ..utils import get_rng
from ..validation import as_float_array
from ._conv_utils import check_seed

__all__ = ["Dropout"]


class Dropout(_Elementwise):
    """Sets each input element to 0 with probability ``rate`` while training.

    Args:
        rate: the fraction to drop, in ``[0, 1)``.
        seed: an int or ``np.random.Generator``; by default a generator of the layer's own,
            seeded from Beras's global one when the layer is created (so
            ``beras.utils.set_random_seed`` makes the masks reproducible).

    Inverted dropout, as Keras: kept elements are scaled by ``1 / (1 - rate)`` so the
    expected output equals the input, and at inference (``training=False``, the default)
    the layer is the identity. The mask is drawn from ``self.rng`` on every training call
    (``stochastic = True``); its local Jacobian is diagonal, the scaled mask itself, which
    composes elementwise with an upstream gradient.
    """

    stochastic = True

    def __init__(self, rate: float, seed: int | np.random.Generator | None = None) -> None:
        ok = isinstance(rate, (float, int, np.floating, np.integer)) and not isinstance(rate, bool)
        if not ok or not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        self.rate = float(rate)
        seed = check_seed(seed, "Dropout")
        if seed is None:
            seed = int(get_rng().integers(2**63))
        self.rng = get_rng(seed)
        self._mask: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Dropout(rate={self.rate:g})"

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(input_shape)

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        arr = as_float_array(x, owner=self)
        if not training or self.rate == 0.0:
            self._mask = None
            return arr.copy()
        keep = self.rng.random(arr.shape) >= self.rate
        mask = keep.astype(arr.dtype)
        mask *= arr.dtype.type(1.0 / (1.0 - self.rate))
        self._mask = mask
        return arr * mask

    def get_input_gradients(self) -> list[Tensor]:
        if self._mask is None:
            return [Tensor(np.ones(np.shape(self.outputs[0]), dtype=self.outputs[0].dtype))]
        return [Tensor(self._mask.copy())]
