"""Beras: a small deep-learning library in pure NumPy with the Keras API.

Every derivative is checked by ``beras.testing``, the verification layer.
"""

from . import (
    activations,
    callbacks,
    config,
    core,
    datasets,
    gradient_tape,
    initializers,
    layers,
    losses,
    metrics,
    model,
    onehot,
    optimizers,
    utils,
)
from ._memory import keep_freed_memory as _keep_freed_memory
from .activations import *
from .core import *
from .gradient_tape import *
from .layers import (
    DENSE_INITIALIZERS,
    Add,
    AveragePooling2D,
    AvgPool2D,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    MaxPooling2D,
)
from .losses import *
from .metrics import *
from .model import *
from .onehot import OneHotEncoder
from .optimizers import SGD, Adam, BasicOptimizer, RMSProp

_keep_freed_memory()  # reuse freed array memory between training steps (see _memory.py)

__version__ = "0.1.0"
