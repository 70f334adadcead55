"""Fashion-MNIST (Zalando), as ``keras.datasets.fashion_mnist``.

60,000 training and 10,000 test grayscale 28x28 images of 10 kinds of clothing
(H. Xiao, K. Rasul, R. Vollgraf; MIT licence), a drop-in replacement for MNIST.
On Debian, ``apt-get install dataset-fashion-mnist`` puts the files where
``load_data`` finds them.
"""

from __future__ import annotations

import os

import numpy as np

from ._fetch import DatasetSpec, load_dataset

#: The label names, index = label.
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where Fashion-MNIST is found and how it is checked (SHA-256 of the decompressed
#: IDX bytes, as in Debian's ``dataset-fashion-mnist`` package).
SPEC = DatasetSpec(
    title="Fashion-MNIST",
    folder="fashion-mnist",
    npz_names=("fashion-mnist.npz", "fashion_mnist.npz"),
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    sha256={
        "train-images-idx3-ubyte": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    install_hint=(
        "on Debian/Ubuntu: apt-get install dataset-fashion-mnist "
        "(installs /usr/share/datasets/fashion-mnist/)"
    ),
)


def load_data(
    path: str | os.PathLike[str] | None = None, *, verify: bool = True
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    Shapes ``(60000, 28, 28)``, ``(60000,)``, ``(10000, 28, 28)``, ``(10000,)``, all
    ``uint8``; labels 0-9 index :data:`CLASS_NAMES`.

    Args:
        path: a folder holding the four IDX files (``.gz`` or raw) or
            ``fashion-mnist.npz``, or such a folder's parent, or an ``.npz`` file.
            When given, nothing else is searched. When ``None``:
            ``$BERAS_DATA/fashion-mnist``, then the cache
            ``$BERAS_HOME/datasets/fashion-mnist`` (default
            ``~/.beras/datasets/fashion-mnist``), then
            ``/usr/share/datasets/fashion-mnist``, then a download into the cache.
        verify: check the SHA-256 of files found on disk (downloads are always
            checked). Pass ``False`` to load a deliberately modified copy.

    Raises:
        DatasetNotFoundError: no copy anywhere and the download failed.
        DatasetError: a file is corrupt, truncated, malformed or fails its checksum.
    """
    return load_dataset(SPEC, path, verify=verify)
