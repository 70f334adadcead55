"""Weight initializers, drawn exactly as Keras draws them.

``GlorotNormal``/``HeNormal`` sample a normal truncated at two standard deviations
(out-of-range draws are re-drawn), with stddev ``sqrt(scale / fan) / .87962566103423978``
so that the truncated distribution's std is ``sqrt(scale / fan)``. The uniform variants
use ``limit = sqrt(3 * scale / fan)``. For an ``(in, out)`` kernel, fan_in = in and
fan_out = out; for a convolution kernel ``(kh, kw, in, out)`` both are multiplied by the
receptive field ``kh * kw`` (:func:`compute_fans`, as Keras). Glorot uses scale 1 and
fan = (fan_in + fan_out) / 2, He scale 2 and fan = fan_in. ``"normal"`` is the unit normal N(0, 1) of the course handout.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np

from .config import float_dtype

# std of a unit normal truncated to [-2, 2]
_TRUNCATED_STD = 0.87962566103423978

#: The initializer names (the course's), as ``Dense(initializer=...)`` takes them;
#: ``beras train --initializer`` accepts them with ``_`` for the space.
InitializerName = Literal[
    "zero", "normal", "xavier", "kaiming", "xavier uniform", "kaiming uniform"
]
INITIALIZER_NAMES: tuple[str, ...] = get_args(InitializerName)


def normalize_name(name: str) -> str:
    """Canonical initializer name; raises ``ValueError`` listing the valid ones."""
    key = (
        str(name).strip().lower().replace("_", " ").replace("-", " ")
        if isinstance(name, str)
        else None
    )
    aliases = {
        "zeros": "zero",
        "glorot normal": "xavier",
        "xavier normal": "xavier",
        "he normal": "kaiming",
        "kaiming normal": "kaiming",
        "glorot uniform": "xavier uniform",
        "he uniform": "kaiming uniform",
    }
    key = aliases.get(key, key)  # None (not a string) stays None
    if key not in INITIALIZER_NAMES:
        raise ValueError(
            f"Unknown initializer {name!r}: expected one of {list(INITIALIZER_NAMES)} "
            "(case-insensitive)"
        )
    return key


def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], stddev: float) -> np.ndarray:
    """N(0, stddev) restricted to +-2 stddev by re-drawing the values outside."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values * stddev


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight, as Keras computes them.

    ``(n,)``: both ``n``; ``(in, out)``: ``in`` and ``out``; a convolution kernel
    ``(*window, in, out)``: ``in`` and ``out`` times the receptive field ``prod(window)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])  # 1 for a matrix
    return shape[-2] * receptive, shape[-1] * receptive


def kernel(
    name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype | None = None
) -> np.ndarray:
    """Draw a weight of ``shape`` with the named initializer (fans by :func:`compute_fans`)."""
    name = normalize_name(name)
    dtype = float_dtype() if dtype is None else np.dtype(dtype)
    fan_in, fan_out = compute_fans(shape)
    if name == "zero":
        return np.zeros(shape, dtype=dtype)
    if name == "normal":
        return rng.standard_normal(shape).astype(dtype)
    scale, fan = (
        (1.0, (fan_in + fan_out) / 2.0) if name.startswith("xavier") else (2.0, float(fan_in))
    )
    if name.endswith("uniform"):
        limit = np.sqrt(3.0 * scale / fan)
        return rng.uniform(-limit, limit, shape).astype(dtype)
    return truncated_normal(rng, shape, np.sqrt(scale / fan) / _TRUNCATED_STD).astype(dtype)
