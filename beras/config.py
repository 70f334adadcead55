"""Global numeric settings, as ``keras.config``: the float type of new weights."""

from __future__ import annotations

import numpy as np

_VALID_FLOATX = ("float32", "float64")
_floatx = "float32"


def floatx() -> str:
    """The dtype name new weights are created with (``"float32"`` by default, as Keras)."""
    return _floatx


def set_floatx(value: str) -> None:
    """Set the dtype of weights created from now on: ``"float32"`` or ``"float64"``."""
    global _floatx
    name = np.dtype(value).name if isinstance(value, (type, np.dtype)) else str(value)
    if name not in _VALID_FLOATX:
        raise ValueError(
            f"beras.config.set_floatx expected one of {list(_VALID_FLOATX)}, got {value!r}"
        )
    _floatx = name


def float_dtype() -> np.dtype:
    """``floatx()`` as a NumPy dtype."""
    return np.dtype(_floatx)
