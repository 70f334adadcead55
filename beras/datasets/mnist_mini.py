"""A small real subset of MNIST shipped inside Beras: no download, no files needed.

2,000 training digits (the first 200 of each class in the MNIST training set) and
500 test digits (the first 50 of each class in the MNIST test set), in their original
order. ``scripts/make_mnist_mini.py`` regenerates ``data/mnist_mini.npz`` from the full
MNIST files; the archive also records the rows it took (``train_indices``,
``test_indices``).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ._idx import load_npz

#: The packaged archive, relative to this package.
RESOURCE = "data/mnist_mini.npz"


def load_data(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the bundled MNIST subset as ``((x_train, y_train), (x_test, y_test))``.

    Shapes ``(2000, 28, 28)``, ``(2000,)``, ``(500, 28, 28)``, ``(500,)``, all
    ``uint8``, classes balanced (200 and 50 of each digit).

    Args:
        path: another ``.npz`` in the same format to load instead of the bundled one.

    Raises:
        DatasetError: the archive is unreadable or malformed.
    """
    if path is not None:
        return load_npz(Path(path).expanduser())
    with resources.as_file(resources.files(__package__).joinpath(RESOURCE)) as file:
        return load_npz(Path(file))
