"""OneHotEncoder: labels to one-hot rows and back."""

from __future__ import annotations

from typing import Any

import numpy as np

from .core import Callable

__all__ = ["OneHotEncoder"]


class OneHotEncoder(Callable):
    """Maps each label seen in ``fit`` to a one-hot row (labels in ``np.unique`` order).

    ``forward`` fits first if never fitted; ``inverse`` is its exact inverse.
    """

    def __init__(self) -> None:
        self.uniq: np.ndarray | None = None
        self.uniq2oh: dict[Any, np.ndarray] = {}

    def fit(self, data: Any) -> None:
        """Learn the label set from a 1-D array of labels."""
        data = self._labels(data)
        if data.size == 0:
            raise ValueError("OneHotEncoder.fit expected at least one label, got none")
        self.uniq = np.unique(data)
        eye = np.eye(len(self.uniq))
        self.uniq2oh = {label.item(): eye[i] for i, label in enumerate(self.uniq)}

    @staticmethod
    def _labels(data: Any) -> np.ndarray:
        data = np.asarray(data)
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if data.ndim != 1:
            raise ValueError(
                f"OneHotEncoder expected a 1-D array of labels, got shape {data.shape}"
            )
        return data

    def forward(self, data: Any) -> np.ndarray:
        """One-hot rows, shape ``(len(data), n_labels)``."""
        if self.uniq is None:
            self.fit(data)
        assert self.uniq is not None
        data = self._labels(data)
        index = np.searchsorted(self.uniq, data)
        index = np.minimum(index, len(self.uniq) - 1)
        unseen = self.uniq[index] != data
        if np.any(unseen):
            raise ValueError(
                f"OneHotEncoder.forward got labels never seen in fit: "
                f"{np.unique(data[unseen])[:10].tolist()}; fitted labels: "
                f"{self.uniq[:20].tolist()}{' ...' if len(self.uniq) > 20 else ''}. "
                "Fit on data that contains every label."
            )
        return np.eye(len(self.uniq))[index]

    def inverse(self, data: Any) -> np.ndarray:
        """The labels of one-hot rows (exact inverse of ``forward``)."""
        if self.uniq is None:
            raise RuntimeError("OneHotEncoder.inverse called before fit/forward")
        data = np.asarray(data)
        n = len(self.uniq)
        if data.ndim != 2 or data.shape[1] != n:
            raise ValueError(
                f"OneHotEncoder.inverse expected one-hot rows of shape (N, {n}), got {data.shape}"
            )
        one_hot = np.all((data == 0) | (data == 1), axis=1) & (data.sum(axis=1) == 1)
        if not np.all(one_hot):
            bad = np.flatnonzero(~one_hot)
            raise ValueError(
                f"OneHotEncoder.inverse expected one-hot rows (one 1, the rest 0); rows "
                f"{bad[:10].tolist()} are not, e.g. {data[bad[0]].tolist()}"
            )
        return self.uniq[np.argmax(data, axis=1)]
