"""Small validators shared by every module: dtypes, counts, numbers, paired data.

It sits below layers, activations and losses, which all import it. Each validator
returns the checked value or raises with a message that names its ``owner`` (the
calling component), what was expected and what came.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import float_dtype

__all__ = [
    "ValidationSplitError",
    "as_float_array",
    "int_at_least",
    "paired_data",
    "positive_float",
    "positive_int",
    "result_float_dtype",
    "unit_interval",
    "validation_split_sizes",
]


# ---------------------------------------------------------------------------- dtypes
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


def result_float_dtype(x: Any) -> np.dtype:
    """``x``'s dtype if it is a floating (or complex) type, else float64.

    The dtype of a gradient with respect to ``x``: an integer tensor's gradient is not
    an integer.
    """
    dtype = np.result_type(x)
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


# ---------------------------------------------------------------------------- numbers
def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def positive_int(value: Any, what: str, owner: str | None = None) -> int:
    """``value`` as an int if it is a positive integer (not a bool); else a ``ValueError``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{_prefix(owner)}{what} must be a positive integer, got {value!r}")
    return int(value)


def int_at_least(value: Any, minimum: int, what: str, owner: str | None = None) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``; else a ``ValueError``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{_prefix(owner)}{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(value: Any, what: str, owner: str | None) -> float:
    """``float(value)``; a ``TypeError`` if ``value`` is no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{_prefix(owner)}{what} must be a number, got {value!r}") from None


def positive_float(value: Any, what: str, owner: str | None = None) -> float:
    """``value`` as a float if it is a positive finite number.

    A ``TypeError`` if it is no number, a ``ValueError`` if it is not positive and finite.
    """
    number = _float(value, what, owner)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{_prefix(owner)}{what} must be a positive finite number, got {value!r}")
    return number


def unit_interval(value: Any, what: str, owner: str | None = None) -> float:
    """``value`` as a float if it lies in [0, 1): a ``TypeError`` if it is no number,
    else a ``ValueError``."""
    number = _float(value, what, owner)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{_prefix(owner)}{what} must be in [0, 1), got {value!r}")
    return number


# ------------------------------------------------------------------------------- data
def paired_data(x: Any, y: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as arrays with a batch axis, the same number of samples, not empty."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{owner}: x and y must be arrays with a batch axis, got scalars")
    if len(x) != len(y):
        raise ValueError(
            f"{owner}: x and y must have the same number of samples, got {len(x)} inputs "
            f"and {len(y)} labels"
        )
    if len(x) == 0:
        raise ValueError(f"{owner}: got empty data (0 samples)")
    return x, y


class ValidationSplitError(ValueError):
    """A validation split outside (0, 1), or one that leaves no sample on one side."""


def validation_split_sizes(n: int, validation_split: float, what: str) -> tuple[int, int]:
    """``(training, validation)`` sample counts when the last ``validation_split`` of
    ``n`` samples is held out (Keras's rule: ``round(n * validation_split)``).

    ``what`` names the setting in the message (``"fit: validation_split"``,
    ``"--validation-split"``). Raises :class:`ValidationSplitError` unless both sides
    keep at least one sample.
    """
    if not 0.0 < validation_split < 1.0:
        raise ValidationSplitError(f"{what} must be in (0, 1), got {validation_split!r}")
    n_val = round(n * validation_split)
    if n_val < 1 or n_val >= n:
        raise ValidationSplitError(
            f"{what} {validation_split} leaves {n - n_val} training and {n_val} validation "
            f"sample{'' if n_val == 1 else 's'} out of {n:,}; both need at least one"
        )
    return n - n_val, n_val
