"""MNIST handwritten digits, as ``keras.datasets.mnist``.

60,000 training and 10,000 test grayscale 28x28 images of the digits 0-9
(Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0).
"""

from __future__ import annotations

import os

import numpy as np

from ._fetch import DatasetSpec, load_dataset

#: Where MNIST is found and how it is checked. ``sha256`` is of the *decompressed* IDX
#: bytes, which do not depend on which gzip produced a mirror's ``.gz``.
SPEC = DatasetSpec(
    title="MNIST",
    folder="mnist",
    npz_names=("mnist.npz",),
    mirrors=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    sha256={
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
)


def load_data(
    path: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    Shapes ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``, all
    ``uint8``; labels are 0-9.

    Args:
        path: a folder holding the four IDX files (``.gz`` or raw) or ``mnist.npz``,
            or such a folder's parent, or an ``.npz`` file. When given, nothing else
            is searched. When ``None``: ``$BERAS_DATA/mnist``, then the cache
            ``$BERAS_HOME/datasets/mnist`` (default ``~/.beras/datasets/mnist``), then
            ``/usr/share/datasets/mnist``, then a download into the cache.
        verify: check the SHA-256 of files found on disk (downloads are always
            checked). Pass ``False`` to load a deliberately modified copy.

    Raises:
        DatasetNotFoundError: no copy anywhere and the download failed.
        DatasetError: a file is corrupt, truncated, malformed or fails its checksum.
    """
    return load_dataset(SPEC, path, verify=verify)
