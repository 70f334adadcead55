"""Datasets, as ``keras.datasets``: each ``load_data()`` returns NumPy uint8 arrays
``((x_train, y_train), (x_test, y_test))``.

- :mod:`beras.datasets.mnist`: MNIST digits, 60,000 + 10,000.
- :mod:`beras.datasets.fashion_mnist`: Fashion-MNIST clothing, 60,000 + 10,000.
- :mod:`beras.datasets.mnist_mini`: 2,000 + 500 real MNIST digits shipped with Beras.

Files are looked for in ``path=``, ``$BERAS_DATA/<name>/``, the cache
``$BERAS_HOME/datasets/<name>/`` (default ``~/.beras/datasets/<name>/``) and
``/usr/share/datasets/<name>/``, then downloaded into the cache with checksums
verified (``$BERAS_DATASET_MIRRORS`` overrides the mirrors; empty disables downloads).
"""

from __future__ import annotations

import os

import numpy as np

from . import fashion_mnist, mnist, mnist_mini
from ._errors import ChecksumError, DatasetError, DatasetNotFoundError
from ._fetch import cache_dir

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "cache_dir",
    "fashion_mnist",
    "load",
    "mnist",
    "mnist_mini",
]

#: Canonical names accepted by :func:`load` (underscores work too).
DATASETS = ("mnist", "fashion-mnist", "mnist-mini")

_LOADERS = {
    "mnist": mnist.load_data,
    "fashion-mnist": fashion_mnist.load_data,
    "mnist-mini": mnist_mini.load_data,
}


def load(
    name: str, path: str | os.PathLike[str] | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a dataset by name: ``"mnist"``, ``"fashion-mnist"`` or ``"mnist-mini"``.

    Names are case-insensitive and ``_`` may replace ``-`` (``"fashion_mnist"``).
    ``path`` is passed on to that dataset's ``load_data``.

    Raises:
        ValueError: ``name`` is not one of :data:`DATASETS`.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in _LOADERS:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)} "
            "(underscores also accepted, e.g. 'fashion_mnist')"
        )
    return _LOADERS[key](path)
