"""Randomness: every random draw in Beras comes from a seeded ``np.random.Generator``."""

from __future__ import annotations

import random

import numpy as np

_global_rng: np.random.Generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Make initialisation and shuffling reproducible, as ``keras.utils.set_random_seed``.

    Resets Beras's global generator (and, like Keras, seeds Python's ``random`` and
    NumPy's legacy global state so user code that relies on them is reproducible too).
    """
    global _global_rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_random_seed expected a non-negative int, got {seed!r}")
    _global_rng = np.random.default_rng(int(seed))
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - seeding the legacy state is the point


def get_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A generator: ``seed``'s own if given, else Beras's global one."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        return np.random.default_rng(seed)
    return _global_rng
