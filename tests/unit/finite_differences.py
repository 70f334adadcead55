"""Central differences for the unit tests of the conv-family layers."""

from __future__ import annotations

from typing import Any

import numpy as np


def numeric_grad(f: Any, arr: np.ndarray, upstream: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``sum(f() * upstream)`` with respect to ``arr`` (in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        plus = np.sum(np.asarray(f()) * upstream)
        arr[idx] = old - eps
        minus = np.sum(np.asarray(f()) * upstream)
        arr[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad
