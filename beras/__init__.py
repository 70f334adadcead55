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
from .activations import *
from .core import *
from .gradient_tape import *
from .layers import DENSE_INITIALIZERS, Add, Concatenate, Dense
from .losses import *
from .metrics import *
from .model import *
from .onehot import OneHotEncoder
from .optimizers import SGD, Adam, BasicOptimizer, RMSProp

__version__ = "0.1.0"
