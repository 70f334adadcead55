"""Dense, its initializers, and the merge layers Add and Concatenate."""

from __future__ import annotations

import inspect
import typing

import numpy as np
import pytest

from beras import config, initializers
from beras.core import Tensor, Variable
from beras.gradient_tape import GradientTape
from beras.layers import DENSE_INITIALIZERS, Add, Concatenate, Dense
from beras.losses import MeanSquaredError
from beras.utils import set_random_seed


@pytest.fixture
def float64():
    previous = config.floatx()
    config.set_floatx("float64")
    yield
    config.set_floatx(previous)


def _dense(w, b):
    w = np.asarray(w, dtype=float)
    layer = Dense(*w.shape, initializer="zero")
    layer.w = Variable(w)
    layer.b = Variable(np.asarray(b, dtype=float).reshape(1, -1))
    return layer


# ------------------------------------------------------------------------------ Dense


def test_dense_forward_by_hand():
    layer = _dense([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [0.5, -1.0])
    x = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    out = layer(x)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out, [[1 - 5 + 0.5, 2 - 6 - 1.0], [2 + 3 + 0.5, 4 + 4 - 1.0]])


def test_dense_weights_shapes_and_order():
    layer = Dense(4, 3, seed=0)
    assert layer.w.shape == (4, 3)
    assert layer.b.shape == (1, 3)
    assert layer.weights[0] is layer.w
    assert layer.weights[1] is layer.b
    assert isinstance(layer.w, Variable)
    assert isinstance(layer.b, Variable)
    np.testing.assert_array_equal(layer.b, np.zeros((1, 3)))


def test_dense_input_gradient_is_w():
    layer = Dense(3, 2, seed=0)
    layer(np.ones((5, 3)))
    (g,) = layer.get_input_gradients()
    assert g.shape == (3, 2)
    np.testing.assert_array_equal(g, layer.w)


def test_dense_weight_gradients_and_vjps():
    layer = _dense([[1.0, 2.0], [3.0, 4.0]], [0.0, 0.0])
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    layer(x)
    J = np.array([[1.0, -1.0], [2.0, 0.5]])
    (dx,) = layer.compose_input_gradients([J])
    np.testing.assert_allclose(dx, J @ layer.w.T)
    dw, db = layer.compose_weight_gradients([J])
    np.testing.assert_allclose(dw, [[1 + 6, -1 + 1.5], [2 + 10, -2 + 2.5]])
    np.testing.assert_allclose(db, [[3.0, -0.5]])
    assert db.shape == (1, 2)


def test_graders_bias_assign_and_gradient_indexing():
    """Graders zero the bias with ``b.assign(np.zeros((1, n)))`` and read ``grads[1][0, 0]``."""
    layer = Dense(3, 4, seed=0)
    bias = layer.b
    layer.b.assign(np.zeros((1, 4)))
    assert layer.b is bias
    x = np.ones((2, 3), dtype=np.float32)
    with GradientTape() as tape:
        loss = MeanSquaredError()(layer(x), np.zeros((2, 4), dtype=np.float32))
    grads = tape.gradient(loss, layer.trainable_variables)
    assert grads[1].shape == (1, 4)
    pred = x @ layer.w
    expected = (2 * pred / pred.size).sum(axis=0)
    assert grads[1][0, 0] == pytest.approx(expected[0], rel=1e-5)


def test_one_neuron_hand_computed():
    """w = 2, b = 1, x = 3, target 10: pred 7, MSE 9, dL/dw = -18, dL/db = -6."""
    layer = _dense([[2.0]], [1.0])
    x, y = np.array([[3.0]]), np.array([[10.0]])
    loss_fn = MeanSquaredError()
    with GradientTape() as tape:
        pred = layer(x)
        loss = loss_fn(pred, y)
    assert float(pred[0, 0]) == 7.0
    assert float(loss) == 9.0
    dw, db = tape.gradient(loss, [layer.w, layer.b])
    assert dw.shape == (1, 1)
    assert db.shape == (1, 1)
    assert float(dw[0, 0]) == -18.0
    assert float(db[0, 0]) == -6.0


def test_integer_inputs_are_promoted_to_the_weights_dtype():
    layer = Dense(2, 2, seed=0)
    out = layer(np.array([[1, 2]], dtype=np.int64))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.array([[1.0, 2.0]], dtype=np.float32) @ layer.w, rtol=1e-6)


def test_float32_dense_stays_float32_even_for_float64_data():
    layer = Dense(2, 2, seed=0)
    assert layer.w.dtype == np.float32
    assert layer(np.ones((1, 2), dtype=np.float64)).dtype == np.float32


def test_floatx_float64_gives_float64_weights(float64):
    layer = Dense(2, 3, initializer="xavier", seed=0)
    assert layer.w.dtype == np.float64
    assert layer.b.dtype == np.float64
    assert layer(np.ones((1, 2), dtype=np.float32)).dtype == np.float64


@pytest.mark.parametrize(
    ("size", "what"), [(0, "input_size"), (-1, "input_size"), (2.5, "input_size")]
)
def test_dense_rejects_bad_sizes(size, what):
    with pytest.raises(ValueError, match=rf"Dense: {what} must be a positive integer, got"):
        Dense(size, 3)


# ----------------------------------------------------------------------- initializers


def test_initializer_literal_lists_six_names():
    assert set(typing.get_args(DENSE_INITIALIZERS)) == {
        "zero",
        "normal",
        "xavier",
        "kaiming",
        "xavier uniform",
        "kaiming uniform",
    }


@pytest.mark.parametrize("name", typing.get_args(DENSE_INITIALIZERS))
def test_each_initializer_shapes_and_zero_bias(name):
    layer = Dense(7, 5, initializer=name, seed=3)
    assert layer.w.shape == (7, 5)
    assert layer.b.shape == (1, 5)
    assert np.all(layer.b == 0)
    assert np.all(np.isfinite(layer.w))
    if name == "zero":
        assert np.all(layer.w == 0)
    else:
        assert np.unique(layer.w).size == layer.w.size


def test_initializer_names_are_case_insensitive():
    a = Dense(3, 3, initializer="Xavier Uniform", seed=1)
    b = Dense(3, 3, initializer="xavier uniform", seed=1)
    np.testing.assert_array_equal(a.w, b.w)


def test_normal_is_unit_normal():
    w = np.asarray(Dense(300, 300, initializer="normal", seed=0).w, dtype=np.float64)
    assert abs(w.mean()) < 0.01  # 90 000 draws: standard error 0.0033
    assert abs(w.std() - 1.0) < 0.01
    assert np.abs(w).max() > 3.0  # not truncated


@pytest.mark.parametrize(
    ("name", "std"),
    [("xavier", np.sqrt(1.0 / ((200 + 100) / 2))), ("kaiming", np.sqrt(2.0 / 200))],
)
def test_truncated_normals_have_keras_std_and_cutoff(name, std):
    w = np.asarray(Dense(200, 100, initializer=name, seed=0).w, dtype=np.float64)
    assert abs(w.std() / std - 1.0) < 0.02
    assert np.abs(w).max() <= 2.0 * std / 0.87962566103423978 * (1 + 1e-6)
    assert abs(w.mean()) < 0.05 * std  # 20 000 draws: standard error 0.007 std


@pytest.mark.parametrize(
    ("name", "limit"),
    [("xavier uniform", np.sqrt(3.0 / 150)), ("kaiming uniform", np.sqrt(6.0 / 200))],
)
def test_uniform_initializers_have_keras_limits(name, limit):
    w = np.asarray(Dense(200, 100, initializer=name, seed=0).w, dtype=np.float64)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit
    assert abs(w.std() / (limit / np.sqrt(3.0)) - 1.0) < 0.02


def test_unknown_initializer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown initializer 'glorot'") as err:
        Dense(2, 2, initializer="glorot")
    for name in typing.get_args(DENSE_INITIALIZERS):
        assert repr(name) in str(err.value)


def test_seeded_dense_is_reproducible():
    a, b = Dense(4, 3, seed=123), Dense(4, 3, seed=123)
    np.testing.assert_array_equal(a.w, b.w)
    c = Dense(4, 3, seed=124)
    assert not np.array_equal(a.w, c.w)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(Dense(4, 3, seed=g1).w, Dense(4, 3, seed=g2).w)


def test_global_seed_controls_unseeded_dense():
    set_random_seed(9)
    a = Dense(4, 3)
    set_random_seed(9)
    b = Dense(4, 3)
    np.testing.assert_array_equal(a.w, b.w)


def test_initialize_weight_is_a_staticmethod_without_side_effects():
    assert isinstance(inspect.getattr_static(Dense, "_initialize_weight"), staticmethod)
    w, b = Dense._initialize_weight("kaiming", 5, 2)
    assert isinstance(w, Variable)
    assert isinstance(b, Variable)
    assert w.shape == (5, 2)
    assert b.shape == (1, 2)
    assert np.all(b == 0)

    layer = Dense(5, 2, seed=0)
    before_w, before_b = layer.w, layer.b
    w2, b2 = layer._initialize_weight("zero", 5, 2)
    assert layer.w is before_w
    assert layer.b is before_b
    assert np.all(w2 == 0)
    assert np.all(b2 == 0)


def test_kernel_helper_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of"):
        initializers.kernel("uniformish", (2, 2), np.random.default_rng(0))


# ---------------------------------------------------------------------- Add / Concatenate


def test_add_forward_and_gradients():
    a, b = np.array([[1.0, 2.0]]), np.array([[10.0, 20.0]])
    add = Add()
    np.testing.assert_array_equal(add(a, b), [[11.0, 22.0]])
    np.testing.assert_array_equal(add([a, b]), [[11.0, 22.0]])
    J = np.array([[3.0, -1.0]])
    ga, gb = add.compose_input_gradients([J])
    np.testing.assert_array_equal(ga, J)
    np.testing.assert_array_equal(gb, J)
    assert ga is not gb


def test_add_rejects_mismatched_shapes_and_single_inputs():
    with pytest.raises(ValueError, match=r"Add expected inputs of one shape, got shapes"):
        Add()(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="Add expected at least 2 inputs, got 1"):
        Add()(np.ones((2, 3)))


def test_concatenate_forward_and_gradients():
    a, b = np.array([[1.0], [2.0]]), np.array([[3.0, 4.0], [5.0, 6.0]])
    cat = Concatenate()
    out = cat(a, b)
    np.testing.assert_array_equal(out, [[1.0, 3.0, 4.0], [2.0, 5.0, 6.0]])
    sel_a, sel_b = cat.get_input_gradients()
    np.testing.assert_array_equal(sel_a, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(sel_b, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    J = np.arange(6.0).reshape(2, 3)
    ga, gb = cat.compose_input_gradients([J])
    np.testing.assert_array_equal(ga, J[:, :1])
    np.testing.assert_array_equal(gb, J[:, 1:])
    np.testing.assert_array_equal(ga, J @ sel_a.T)  # the stencil's g @ J[b]


def test_concatenate_rejects_different_leading_shapes():
    with pytest.raises(
        ValueError, match="Concatenate expected inputs that differ only in the last axis"
    ):
        Concatenate()(np.ones((2, 3)), np.ones((3, 3)))


def test_dense_outputs_and_gradients_are_tensors_not_variables_nor_views_of_weights():
    dense = Dense(3, 2)
    out = dense(np.ones((4, 3)))
    assert type(out) is Tensor
    (input_grad,) = dense.compose_input_gradients([np.ones((4, 2))])
    assert type(input_grad) is Tensor
    (local,) = dense.get_input_gradients()
    assert not np.shares_memory(local, dense.w)
    local[...] = 123.0
    assert not np.any(dense.w == 123.0)
