"""Layers, Keras-style: ``beras.layers.Dense``, ``beras.layers.Add``, ...

Each layer lives in a module of its own kind (``dense``, ``merging``); this package
re-exports them all, so ``from beras.layers import Dense`` is the one import to know.
"""

from .dense import DENSE_INITIALIZERS, Dense
from .merging import Add, Concatenate

__all__ = ["DENSE_INITIALIZERS", "Add", "Concatenate", "Dense"]
