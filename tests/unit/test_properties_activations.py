"""Properties of the activations beyond the 2-D float32/float64 inputs of the other tests.

* Softmax acts on the last axis whatever the rank: on a rank-3 input it is the row-wise
  softmax of every 2-D slice, and so are its Jacobians and its VJP.
* ReLU's VJP is ``local * J`` for every upstream NumPy can multiply with the local
  gradient: any float dtype (float16 and long double too) and any shape that broadcasts, in the upstream's
  dtype. The fast bit-mask path and the general path give the same answer.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras.activations import LeakyReLU, ReLU, Softmax

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(2, 3, 4)) * 3  # (batch, time, classes): every axis a different size
J3 = RNG.normal(size=X3.shape)


def _softmax_2d(x):
    act = Softmax()
    return act, np.asarray(act(x))


def test_softmax_of_a_rank3_input_is_the_softmax_of_each_slice():
    y = np.asarray(Softmax()(X3))
    assert y.shape == X3.shape
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-14)
    for i in range(X3.shape[0]):
        _, expected = _softmax_2d(X3[i])
        np.testing.assert_allclose(y[i], expected, rtol=1e-14)


def test_softmax_gradients_of_a_rank3_input_are_those_of_each_slice():
    act = Softmax()
    act(X3)
    (jac,) = act.get_input_gradients()
    (vjp,) = act.compose_input_gradients([J3])
    assert jac.shape == (*X3.shape, X3.shape[-1])
    assert vjp.shape == X3.shape
    for i in range(X3.shape[0]):
        sliced, _ = _softmax_2d(X3[i])
        (jac_i,) = sliced.get_input_gradients()
        (vjp_i,) = sliced.compose_input_gradients([J3[i]])
        np.testing.assert_allclose(jac[i], jac_i, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(vjp[i], vjp_i, rtol=1e-12, atol=1e-15)
    # and the VJP is the Jacobian applied along the last axis
    np.testing.assert_allclose(vjp, np.einsum("...ij,...j->...i", jac, J3), atol=1e-14)


X = np.array([[-1.5, 0.0, 2.0], [3.0, -0.25, 0.5]])


@pytest.mark.parametrize("act", [ReLU(), LeakyReLU(0.3)], ids=repr)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.longdouble])
def test_relu_vjp_is_local_times_upstream_in_the_inputs_dtype(act, dtype):
    act(X.astype(dtype))
    (local,) = act.get_input_gradients()
    up = (np.arange(X.size).reshape(X.shape) - 2.5).astype(dtype)
    (vjp,) = act.compose_input_gradients([up])
    assert vjp.dtype == dtype
    np.testing.assert_array_equal(vjp, np.asarray(local) * up)


@pytest.mark.parametrize("shape", [(), (3,), (1, 3), (2, 1)])
def test_relu_vjp_broadcasts_the_upstream_like_a_product(shape):
    relu = ReLU()
    relu(X)
    (local,) = relu.get_input_gradients()
    up = np.full(shape, -2.0)
    (vjp,) = relu.compose_input_gradients([up])
    assert vjp.shape == X.shape
    assert vjp.dtype == np.float64
    np.testing.assert_array_equal(vjp, np.asarray(local) * up)


def test_relu_vjp_keeps_nan_and_inf_where_the_input_is_positive_and_clears_them_elsewhere():
    relu = ReLU()
    relu(X)
    up = np.array([[np.nan, np.inf, -np.inf], [np.nan, np.inf, -0.0]])
    (vjp,) = relu.compose_input_gradients([up])
    expected = np.where(X > 0, up, 0.0)
    np.testing.assert_array_equal(vjp, expected)
    assert np.signbit(vjp[1, 2])  # -0.0 is kept as -0.0 where the input is positive
    assert not np.signbit(vjp[0, 1])  # a cleared entry is +0.0


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, 2.0])
def test_leaky_relu_gradient_is_one_above_zero_alpha_below_and_zero_at_zero(alpha):
    """Every slope, including ``alpha = 1`` (the identity, but for the convention at 0)."""
    act = LeakyReLU(alpha)
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    act(x)
    expected = np.array([[alpha, alpha, 0.0, 1.0, 1.0]])
    (local,) = act.get_input_gradients()
    np.testing.assert_array_equal(local, expected)
    up = np.array([[1.0, -2.0, 5.0, 3.0, -1.0]])
    (vjp,) = act.compose_input_gradients([up])
    np.testing.assert_array_equal(vjp, expected * up)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, 2.0])
def test_leaky_relu_forward_is_x_above_zero_and_alpha_x_below(alpha):
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(LeakyReLU(alpha)(x), np.where(x > 0, x, alpha * x))


def test_get_accepts_the_keras_class_name_spelling() -> None:
    """``"LeakyReLU"`` (Keras's class name) is ``"leaky_relu"``, case-insensitively."""
    from beras import activations

    for name in ("LeakyReLU", "leakyrelu", "leaky-relu", "Leaky_ReLU"):
        assert type(activations.get(name)) is activations.LeakyReLU, name
