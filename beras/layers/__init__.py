"""Layers, Keras-style: ``beras.layers.Dense``, ``beras.layers.Conv2D``, ...

Each layer lives in a module of its own kind (``dense``, ``merging``, ``conv``,
``pooling``, ``reshaping``, ``regularization``, ``normalization``); this package
re-exports them all, so ``from beras.layers import Dense`` is the one import to know.
Convolution and pooling layers take channels-last ``(batch, height, width, channels)``.
"""

from .conv import Conv2D
from .dense import DENSE_INITIALIZERS, Dense
from .merging import Add, Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, AvgPool2D, MaxPool2D, MaxPooling2D
from .regularization import Dropout
from .reshaping import Flatten, Reshape

__all__ = [
    "DENSE_INITIALIZERS",
    "Add",
    "AveragePooling2D",
    "AvgPool2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "MaxPool2D",
    "MaxPooling2D",
    "Reshape",
]
