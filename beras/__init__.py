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
from .activations import *  # noqa: F403
from .core import *  # noqa: F403
from .gradient_tape import *  # noqa: F403
from .layers import Add, Concatenate, Dense, DENSE_INITIALIZERS
from .losses import *  # noqa: F403
from .metrics import *  # noqa: F403
from .model import *  # noqa: F403
from .onehot import OneHotEncoder
from .optimizers import Adam, BasicOptimizer, RMSProp

__version__ = "0.1.0"
