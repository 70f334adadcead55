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
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import fashion_mnist, mnist, mnist_mini
from ._errors import ChecksumError, DatasetError, DatasetNotFoundError
from ._fetch import DATA_ENV, cache_dir, locate_dataset, search_roots

__all__ = [
    "DATASETS",
    "ChecksumError",
    "DatasetError",
    "DatasetNotFoundError",
    "cache_dir",
    "class_names",
    "fashion_mnist",
    "load",
    "locate",
    "mnist",
    "mnist_mini",
    "named_folders",
    "title",
]


class _Dataset(NamedTuple):
    load_data: Callable[[Any], Any]
    title: str
    class_names: tuple[str, ...] | None = None  # None: the label itself is the name


#: Every dataset by name; ``load``, ``title``, ``class_names`` and ``beras train
#: --dataset`` all read this table.
_DATASETS: dict[str, _Dataset] = {
    "mnist": _Dataset(mnist.load_data, "MNIST"),
    "fashion-mnist": _Dataset(fashion_mnist.load_data, "Fashion-MNIST", fashion_mnist.CLASS_NAMES),
    "mnist-mini": _Dataset(mnist_mini.load_data, "MNIST-mini"),
}

#: Canonical names accepted by :func:`load` (underscores work too).
DATASETS = tuple(_DATASETS)


def _entry(name: str) -> _Dataset:
    key = str(name).strip().lower().replace("_", "-")
    if key not in _DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)} "
            "(underscores also accepted, e.g. 'fashion_mnist')"
        )
    return _DATASETS[key]


def load(
    name: str, path: str | os.PathLike[str] | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load a dataset by name: ``"mnist"``, ``"fashion-mnist"`` or ``"mnist-mini"``.

    Names are case-insensitive and ``_`` may replace ``-`` (``"fashion_mnist"``).
    ``path`` is passed on to that dataset's ``load_data``.

    Raises:
        ValueError: ``name`` is not one of :data:`DATASETS`.
    """
    return _entry(name).load_data(path)


def title(name: str) -> str:
    """The dataset's name as people write it (``"Fashion-MNIST"``)."""
    return _entry(name).title


def class_names(name: str) -> list[str] | None:
    """Human-readable class names (None: the label itself is the name)."""
    names = _entry(name).class_names
    return None if names is None else list(names)


_SPECS = {"mnist": mnist.SPEC, "fashion-mnist": fashion_mnist.SPEC}


def named_folders() -> list[Path]:
    """The data folders the user named in ``$BERAS_DATA`` (in search order; empty if unset)."""
    return [folder for label, folder in search_roots() if label == DATA_ENV]


def locate(name: str, path: str | os.PathLike[str] | None = None) -> tuple[str, Path | None] | None:
    """Where :func:`load` would read ``name`` from, without reading or downloading it.

    Returns ``(source, location)``: ``source`` is ``"path"`` (``path`` given),
    ``"BERAS_DATA"``, ``"cache"`` or ``"system"`` with the folder (or ``.npz`` file)
    found there, or ``"bundled"`` with None for ``mnist-mini`` (shipped inside Beras;
    ``"path"`` when ``path`` names another archive). None when no complete copy is on
    disk (:func:`load` would then download it, or fail).

    Raises:
        ValueError: ``name`` is not one of :data:`DATASETS`.
    """
    _entry(name)  # validates the name
    key = str(name).strip().lower().replace("_", "-")
    if key == "mnist-mini":
        return ("bundled", None) if path is None else ("path", Path(path).expanduser())
    return locate_dataset(_SPECS[key], path)
