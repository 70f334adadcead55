"""Every user error is a ValueError/TypeError/RuntimeError that names the component, what it
expected and what it got, and is raised before any state changes."""

from __future__ import annotations

import numpy as np
import pytest

from beras import activations, optimizers
from beras.activations import LeakyReLU, Softmax
from beras.core import Diffable, Tensor, Variable
from beras.gradient_tape import GradientTape
from beras.layers import Dense
from beras.losses import CategoricalCrossEntropy, MeanSquaredError
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.onehot import OneHotEncoder
from beras.optimizers import Adam


def _snapshot(model):
    return [np.array(w, copy=True) for w in model.weights]


def _assert_unchanged(model, snapshot):
    for w, before in zip(model.weights, snapshot):
        np.testing.assert_array_equal(w, before)


def _model(compiled=True):
    model = SequentialModel([Dense(4, 5, seed=0), LeakyReLU(), Dense(5, 3, seed=1), Softmax()])
    if compiled:
        model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype(np.float32), np.eye(3, dtype=np.float32)[
        rng.integers(0, 3, n)
    ]


# ------------------------------------------------------------------------------ Dense


def test_dense_wrong_feature_size():
    layer = Dense(784, 256, seed=0)
    with pytest.raises(ValueError) as err:
        layer(np.zeros((32, 783), dtype=np.float32))
    assert str(err.value) == "Dense(784→256) expected inputs of shape (batch, 784), got (32, 783)"


@pytest.mark.parametrize(
    ("shape", "extra"),
    [((784,), "add a batch axis"), ((2, 28, 28), ""), ((), "")],
)
def test_dense_wrong_rank(shape, extra):
    layer = Dense(784, 10, seed=0)
    with pytest.raises(
        ValueError, match=r"Dense\(784→10\) expected inputs of shape \(batch, 784\), got"
    ) as err:
        layer(np.zeros(shape))
    assert str(shape) in str(err.value)
    assert extra in str(err.value)


def test_failing_dense_call_changes_no_state_and_records_nothing():
    layer = Dense(3, 2, seed=0)
    good = np.ones((2, 3), dtype=np.float32)
    out = layer(good)
    weights = [np.array(layer.w), np.array(layer.b)]
    with GradientTape() as tape:
        with pytest.raises(ValueError, match="expected inputs of shape"):
            layer(np.ones((2, 4), dtype=np.float32))
        assert tape._calls == []
        assert dict(tape.previous_layers) == {}
    assert layer.inputs[0] is good
    assert layer.outputs[0] is out
    np.testing.assert_array_equal(layer.w, weights[0])
    np.testing.assert_array_equal(layer.b, weights[1])


# ------------------------------------------------------------------------------ losses


@pytest.mark.parametrize("loss", [MeanSquaredError(), CategoricalCrossEntropy()])
def test_loss_shape_mismatch(loss):
    name = type(loss).__name__
    with pytest.raises(
        ValueError,
        match=rf"{name} expected y_pred and y_true of the same shape, got y_pred \(4, 3\) and y_true \(4, 2\)",
    ):
        loss(np.full((4, 3), 1 / 3), np.zeros((4, 2)))


def test_cce_integer_class_labels_hint_one_hot_encoding():
    with pytest.raises(ValueError, match=r"got y_pred \(3, 10\) and y_true \(3,\)") as err:
        CategoricalCrossEntropy()(np.full((3, 10), 0.1), np.array([3, 1, 4]))
    assert "integer class labels" in str(err.value)
    assert "one-hot encode" in str(err.value)
    assert "OneHotEncoder" in str(err.value)


def test_probability_loss_given_logits_hints_from_logits():
    with pytest.raises(
        ValueError,
        match=r"CategoricalCrossEntropy expected probabilities in \[0, 1\] as y_pred, got values in \[-1, 3\]",
    ) as err:
        CategoricalCrossEntropy()(np.array([[3.0, -1.0]]), np.array([[1.0, 0.0]]))
    assert "from_logits=True" in str(err.value)


# ------------------------------------------------------------------------------ one-hot


def test_one_hot_forward_on_unseen_labels():
    enc = OneHotEncoder()
    enc.fit(np.array([1, 2, 3]))
    with pytest.raises(
        ValueError,
        match=r"OneHotEncoder.forward got labels never seen in fit: \[9\]; fitted labels: \[1, 2, 3\]",
    ):
        enc.forward(np.array([1, 9]))


def test_one_hot_inverse_on_rows_that_are_not_one_hot():
    enc = OneHotEncoder()
    enc.fit(np.array([1, 2, 3]))
    with pytest.raises(
        ValueError,
        match=r"OneHotEncoder.inverse expected one-hot rows \(one 1, the rest 0\); rows \[0\] are not, e.g. \[0.5, 0.5, 0.0\]",
    ):
        enc.inverse(np.array([[0.5, 0.5, 0.0], [0, 1, 0]]))


# ------------------------------------------------------------------------ unknown names


def test_unknown_initializer():
    with pytest.raises(
        ValueError,
        match=r"Unknown initializer 'he': expected one of \['zero', 'normal', 'xavier', 'kaiming', 'xavier uniform', 'kaiming uniform'\]",
    ):
        Dense(2, 2, initializer="he")


def test_unknown_activation():
    with pytest.raises(ValueError, match=r"Unknown activation 'gelu': expected one of .*'relu'"):
        activations.get("gelu")


def test_unknown_optimizer():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'lbfgs': expected one of .*'adam'"):
        optimizers.get("lbfgs", 0.1)


# ------------------------------------------------------------- fit / evaluate / predict


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_x_and_y_of_different_lengths(method):
    model = _model()
    x, y = _data(8)
    before = _snapshot(model)
    kwargs = {"epochs": 1, "batch_size": 4, "verbose": 0} if method == "fit" else {"batch_size": 4}
    with pytest.raises(
        ValueError,
        match=rf"{method}: x and y must have the same number of samples, got 8 inputs and 7 labels",
    ):
        getattr(model, method)(x, y[:7], **kwargs)
    _assert_unchanged(model, before)
    assert model.optimizer.t == 0


@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_empty_data(method):
    model = _model()
    x, y = _data(8)
    kwargs = {"epochs": 1, "batch_size": 4, "verbose": 0} if method == "fit" else {}
    with pytest.raises(ValueError, match=rf"{method}: got empty data \(0 samples\)"):
        getattr(model, method)(x[:0], y[:0], **kwargs)


def test_predict_on_empty_data():
    with pytest.raises(
        ValueError, match=r"predict: expected a non-empty batch of inputs, got shape \(0, 4\)"
    ):
        _model().predict(np.zeros((0, 4)))


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_bad_batch_size(batch_size):
    model = _model()
    x, y = _data(8)
    before = _snapshot(model)
    for call in (
        lambda: model.fit(x, y, epochs=1, batch_size=batch_size, verbose=0),
        lambda: model.evaluate(x, y, batch_size=batch_size),
        lambda: model.predict(x, batch_size=batch_size),
    ):
        with pytest.raises(
            ValueError, match=rf"batch_size must be an integer >= 1, got {batch_size!r}"
        ):
            call()
    _assert_unchanged(model, before)


def test_negative_epochs():
    model = _model()
    x, y = _data(8)
    with pytest.raises(ValueError, match=r"fit: epochs must be an integer >= 0, got -1"):
        model.fit(x, y, epochs=-1, batch_size=4, verbose=0)


@pytest.mark.parametrize("method", ["fit", "evaluate", "batch_step"])
def test_training_before_compile_is_a_state_error(method):
    model = _model(compiled=False)
    x, y = _data(8)
    before = _snapshot(model)
    kwargs = {"epochs": 1, "batch_size": 4} if method == "fit" else {}
    with pytest.raises(
        RuntimeError,
        match=rf"SequentialModel.{method} called before compile: call model.compile\(optimizer, loss_fn, acc_fn\) first",
    ):
        getattr(model, method)(x, y, **kwargs)
    _assert_unchanged(model, before)


def test_predict_needs_no_compile():
    """As in Keras, inference needs no optimizer or loss."""
    x, _ = _data(8)
    assert _model(compiled=False).predict(x).shape == (8, 3)


def test_bad_validation_data_fails_before_training():
    model = _model()
    x, y = _data(8)
    before = _snapshot(model)
    with pytest.raises(
        ValueError,
        match=r"fit \(validation_data\): x and y must have the same number of samples, got 3 inputs and 2 labels",
    ):
        model.fit(x, y, epochs=1, batch_size=4, validation_data=(x[:3], y[:2]), verbose=0)
    _assert_unchanged(model, before)


def test_a_bad_first_batch_updates_nothing():
    """Integer labels reach the loss on the first batch: the error comes before any update."""
    model = _model()
    x, _ = _data(8)
    before = _snapshot(model)
    with pytest.raises(ValueError, match="one-hot encode"):
        model.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    _assert_unchanged(model, before)
    assert model.optimizer.t == 0


# ------------------------------------------------------------------------- optimizers


def test_apply_gradients_count_mismatch():
    a, b = Variable(np.ones(2)), Variable(np.ones(3))
    opt = Adam(0.1)
    with pytest.raises(
        ValueError,
        match=r"Adam.apply_gradients expected one gradient per parameter, got 2 parameters and 1 gradients",
    ):
        opt.apply_gradients([a, b], [np.ones(2)])
    assert opt.t == 0
    assert opt.m == {}
    np.testing.assert_array_equal(a, 1.0)


def test_apply_gradients_shape_mismatch_updates_nothing():
    a, b = Variable(np.ones(2)), Variable(np.ones(3))
    opt = Adam(0.1)
    with pytest.raises(
        ValueError,
        match=r"Adam.apply_gradients: gradient 1 has shape \(2,\), but its parameter has shape \(3,\)",
    ):
        opt.apply_gradients([a, b], [np.ones(2), np.ones(2)])
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(b, 1.0)
    assert opt.t == 0
    assert opt.m == {}
    assert opt.v == {}


# ------------------------------------------------------------------------------- tape


def test_gradient_of_an_unrecorded_target():
    d = Dense(2, 2, seed=0)
    target = d(np.ones((1, 2)))
    with GradientTape() as tape:
        pass
    with pytest.raises(
        ValueError,
        match=r"GradientTape.gradient: the target was not produced by a layer called inside this tape",
    ):
        tape.gradient(target, d.weights)


def test_nested_tape():
    with (
        GradientTape(),
        pytest.raises(RuntimeError, match="nested tapes are not supported"),
        GradientTape(),
    ):
        pass  # pragma: no cover
    assert Diffable.gradient_tape is None


# ------------------------------------------------------------------------------ Tensor


@pytest.mark.parametrize(
    ("data", "dtype"),
    [(["a", "b"], "<U1"), ([b"x"], "|S1"), ([1 + 2j], "complex128"), (np.array([None]), "object")],
)
def test_tensor_of_non_numeric_dtype(data, dtype):
    with pytest.raises(
        TypeError,
        match=rf"Tensor expected numeric data \(bool, int or float\), got an array of dtype {dtype}",
    ):
        Tensor(data)
    with pytest.raises(TypeError, match=r"Variable expected numeric data"):
        Variable(data)
