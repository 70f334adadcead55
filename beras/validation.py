"""Small validators shared by every module: dtypes of inputs and positive counts.

It sits below layers, activations and losses, which all import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import float_dtype

__all__ = ["as_float_array", "positive_int"]


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


def positive_int(value: Any, what: str, owner: str) -> int:
    """``value`` as an int if it is a positive integer (not a bool); else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {what} must be a positive integer, got {value!r}")
    return int(value)
