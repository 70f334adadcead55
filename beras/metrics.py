"""Metrics: plain Callables (not differentiated)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Callable

__all__ = ["CategoricalAccuracy"]


class CategoricalAccuracy(Callable):
    """Fraction of rows whose argmax matches the one-hot label's (ties: lowest index)."""

    def forward(self, probs: Any, labels: Any) -> float:
        probs, labels = np.asarray(probs), np.asarray(labels)
        if probs.shape != labels.shape or probs.ndim < 1:
            hint = ""
            if labels.shape == probs.shape[:-1]:
                hint = (
                    "; labels look like class indices: one-hot encode them first, e.g. "
                    "beras.OneHotEncoder().forward(labels)"
                )
            raise ValueError(
                "CategoricalAccuracy expected probs and one-hot labels of the same shape, got "
                f"probs {probs.shape} and labels {labels.shape}{hint}"
            )
        if probs.size == 0:
            raise ValueError("CategoricalAccuracy expected a non-empty batch, got 0 rows")
        hits = np.argmax(probs, axis=-1) == np.argmax(labels, axis=-1)
        return np.count_nonzero(hits) / hits.size

    def __repr__(self) -> str:
        return "CategoricalAccuracy()"
