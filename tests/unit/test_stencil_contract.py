"""The course-stencil contract: every public name exists with the documented signature.

Mirrors the module table and signatures of the course contract (docs/stencil-contract.md); a
grader's test or a student's ``assignment.py`` imports exactly these.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from abc import ABC
from collections import defaultdict

import numpy as np
import pytest

import beras

MODULE_TABLE = {
    "beras.core": ["Tensor", "Variable", "Callable", "Weighted", "Diffable"],
    "beras.layers": ["Dense", "DENSE_INITIALIZERS"],
    "beras.activations": ["Activation", "LeakyReLU", "ReLU", "Sigmoid", "Softmax"],
    "beras.losses": ["Loss", "MeanSquaredError", "CategoricalCrossEntropy"],
    "beras.metrics": ["CategoricalAccuracy"],
    "beras.onehot": ["OneHotEncoder"],
    "beras.optimizers": ["BasicOptimizer", "RMSProp", "Adam"],
    "beras.optimizer": ["BasicOptimizer", "RMSProp", "Adam"],
    "beras.gradient_tape": ["GradientTape"],
    "beras.model": ["Model", "SequentialModel", "print_stats", "update_metric_dict"],
}

_NO_DEFAULT = object()  # documented without a default: callers always pass it


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in MODULE_TABLE.items() for n in names]
)
def test_every_name_in_the_module_table_exists(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is missing"


def test_both_optimizer_import_paths_give_the_same_classes():
    old, new = (
        importlib.import_module("beras.optimizer"),
        importlib.import_module("beras.optimizers"),
    )
    for name in ("BasicOptimizer", "RMSProp", "Adam"):
        assert getattr(old, name) is getattr(new, name)


@pytest.mark.parametrize(
    "path",
    [
        "SequentialModel",
        "Model",
        "MeanSquaredError",
        "CategoricalCrossEntropy",
        "GradientTape",
        "Tensor",
        "Variable",
        "Diffable",
        "LeakyReLU",
        "Softmax",
        "CategoricalAccuracy",
        "print_stats",
        "update_metric_dict",
        "activations.LeakyReLU",
        "activations.ReLU",
        "activations.Sigmoid",
        "metrics.CategoricalAccuracy",
        "losses.MeanSquaredError",
        "layers.Dense",
        "optimizers.Adam",
    ],
)
def test_package_star_exports(path):
    obj = beras
    for part in path.split("."):
        obj = getattr(obj, part)
    assert obj is not None


def _params(func):
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


def _check(func, documented):
    """``documented`` is [(name, default or _NO_DEFAULT)], the leading parameters in order;
    any further parameter must be optional so the documented calls keep working."""
    params = _params(func)
    names = [p.name for p in params]
    assert names[: len(documented)] == [n for n, _ in documented], (
        f"{func.__qualname__}{inspect.signature(func)}"
    )
    for p, (_, default) in zip(params, documented):
        if default is not _NO_DEFAULT:
            assert p.default == default, (
                f"{func.__qualname__}: {p.name} defaults to {p.default!r}, documented {default!r}"
            )
    for p in params[len(documented) :]:
        assert p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty, (
            f"{func.__qualname__}: extra parameter {p.name} must be optional"
        )


N = _NO_DEFAULT
SIGNATURES = [
    ("beras.core", "Tensor.__new__", [("input_array", N)]),
    ("beras.core", "Variable.__new__", [("input_array", N)]),
    ("beras.core", "Tensor.assign", [("value", N)]),
    ("beras.core", "Callable.__call__", []),
    ("beras.core", "Diffable.__call__", []),
    ("beras.core", "Diffable.get_input_gradients", []),
    ("beras.core", "Diffable.get_weight_gradients", []),
    ("beras.core", "Diffable.compose_input_gradients", [("J", None)]),
    ("beras.core", "Diffable.compose_weight_gradients", [("J", None)]),
    (
        "beras.layers",
        "Dense.__init__",
        [("input_size", N), ("output_size", N), ("initializer", "normal")],
    ),
    (
        "beras.layers",
        "Dense._initialize_weight",
        [("initializer", N), ("input_size", N), ("output_size", N)],
    ),
    ("beras.layers", "Dense.forward", [("x", N)]),
    ("beras.activations", "LeakyReLU.__init__", [("alpha", 0.3)]),
    ("beras.activations", "ReLU.__init__", []),
    ("beras.activations", "LeakyReLU.forward", [("x", N)]),
    ("beras.activations", "Sigmoid.forward", [("x", N)]),
    ("beras.activations", "Softmax.forward", [("x", N)]),
    ("beras.losses", "MeanSquaredError.forward", [("y_pred", N), ("y_true", N)]),
    ("beras.losses", "CategoricalCrossEntropy.__init__", [("epsilon", 1e-12)]),
    ("beras.losses", "CategoricalCrossEntropy.forward", [("y_pred", N), ("y_true", N)]),
    ("beras.metrics", "CategoricalAccuracy.forward", [("probs", N), ("labels", N)]),
    ("beras.onehot", "OneHotEncoder.fit", [("data", N)]),
    ("beras.onehot", "OneHotEncoder.forward", [("data", N)]),
    ("beras.optimizers", "BasicOptimizer.__init__", [("learning_rate", N)]),
    (
        "beras.optimizers",
        "RMSProp.__init__",
        [("learning_rate", N), ("beta", 0.9), ("epsilon", 1e-6)],
    ),
    (
        "beras.optimizers",
        "Adam.__init__",
        [
            ("learning_rate", N),
            ("beta_1", 0.9),
            ("beta_2", 0.999),
            ("epsilon", 1e-7),
            ("amsgrad", False),
        ],
    ),
    ("beras.optimizers", "BasicOptimizer.apply_gradients", [("trainable_params", N), ("grads", N)]),
    ("beras.optimizers", "RMSProp.apply_gradients", [("trainable_params", N), ("grads", N)]),
    ("beras.optimizers", "Adam.apply_gradients", [("trainable_params", N), ("grads", N)]),
    ("beras.gradient_tape", "GradientTape.__init__", []),
    ("beras.gradient_tape", "GradientTape.gradient", [("target", N), ("sources", N)]),
    ("beras.model", "Model.__init__", [("layers", N)]),
    ("beras.model", "Model.compile", [("optimizer", N), ("loss_fn", N), ("acc_fn", N)]),
    ("beras.model", "Model.fit", [("x", N), ("y", N), ("epochs", N), ("batch_size", N)]),
    ("beras.model", "Model.evaluate", [("x", N), ("y", N), ("batch_size", N)]),
    ("beras.model", "SequentialModel.forward", [("inputs", N)]),
    ("beras.model", "SequentialModel.batch_step", [("x", N), ("y", N), ("training", True)]),
    (
        "beras.model",
        "print_stats",
        [
            ("stat_dict", N),
            ("batch_num", None),
            ("num_batches", None),
            ("epoch", None),
            ("avg", False),
        ],
    ),
    ("beras.model", "update_metric_dict", [("super_dict", N), ("sub_dict", N)]),
]


@pytest.mark.parametrize(
    ("module", "qualname", "documented"), SIGNATURES, ids=[s[1] for s in SIGNATURES]
)
def test_documented_signatures(module, qualname, documented):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    _check(obj, documented)


def test_one_hot_inverse_takes_one_positional_argument():
    from beras.onehot import OneHotEncoder

    params = _params(OneHotEncoder.inverse)
    assert len(params) == 1
    assert params[0].kind == params[0].POSITIONAL_OR_KEYWORD


def test_class_hierarchy_and_abstract_methods():
    from beras.activations import Activation, LeakyReLU, ReLU, Sigmoid, Softmax
    from beras.core import Callable, Diffable, Tensor, Variable, Weighted
    from beras.layers import Dense
    from beras.losses import CategoricalCrossEntropy, Loss, MeanSquaredError
    from beras.metrics import CategoricalAccuracy
    from beras.model import Model, SequentialModel
    from beras.onehot import OneHotEncoder

    assert issubclass(Tensor, np.ndarray)
    assert issubclass(Variable, Tensor)
    assert issubclass(Callable, ABC)
    assert issubclass(Weighted, ABC)
    assert issubclass(Diffable, Callable)
    assert issubclass(Diffable, Weighted)
    assert {"forward"} <= Callable.__abstractmethods__
    assert {"weights"} <= Weighted.__abstractmethods__
    assert {"get_input_gradients", "get_weight_gradients"} <= Diffable.__abstractmethods__
    for cls in (Dense, Activation, Loss, Model):
        assert issubclass(cls, Diffable)
    for cls in (LeakyReLU, Sigmoid, Softmax):
        assert issubclass(cls, Activation)
    assert issubclass(ReLU, LeakyReLU)
    assert issubclass(MeanSquaredError, Loss)
    assert issubclass(CategoricalCrossEntropy, Loss)
    assert issubclass(SequentialModel, Model)
    assert issubclass(CategoricalAccuracy, Callable)
    assert issubclass(OneHotEncoder, Callable)
    for name in ("trainable_variables", "non_trainable_variables", "trainable"):
        assert isinstance(inspect.getattr_static(Weighted, name), property)
    assert inspect.getattr_static(Weighted, "trainable").fset is not None
    assert isinstance(inspect.getattr_static(Dense, "_initialize_weight"), staticmethod)
    assert isinstance(inspect.getattr_static(Dense, "weights"), property)


def test_documented_attributes():
    from beras.core import Diffable, Tensor
    from beras.gradient_tape import GradientTape
    from beras.layers import DENSE_INITIALIZERS
    from beras.model import SequentialModel
    from beras.optimizers import Adam

    assert "gradient_tape" in vars(Diffable)
    assert vars(Diffable)["gradient_tape"] is None
    assert Tensor([1.0]).trainable is True
    tape = GradientTape()
    assert isinstance(tape.previous_layers, defaultdict)
    assert tape.previous_layers[0] is None
    adam = Adam(0.1)
    assert (adam.t, dict(adam.m), dict(adam.v)) == (0, {}, {})
    model = SequentialModel([])
    assert (model.optimizer, model.compiled_loss, model.compiled_acc) == (None, None, None)
    assert typing.get_origin(DENSE_INITIALIZERS) is typing.Literal
    assert len(typing.get_args(DENSE_INITIALIZERS)) == 6
