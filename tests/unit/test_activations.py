"""LeakyReLU, ReLU, Sigmoid and Softmax: values, local Jacobians and VJPs by hand."""

from __future__ import annotations

import numpy as np
import pytest

from beras import activations
from beras.activations import LeakyReLU, ReLU, Sigmoid, Softmax
from beras.core import Tensor


def test_leaky_relu_default_alpha_is_0_3():
    assert LeakyReLU().alpha == 0.3


def test_leaky_relu_forward_and_gradient_with_zero_at_zero():
    act = LeakyReLU()
    x = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(act(x), [[-0.6, 0.0, 3.0]])
    (g,) = act.get_input_gradients()
    np.testing.assert_array_equal(g, [[0.3, 0.0, 1.0]])
    J = np.array([[10.0, 10.0, 10.0]])
    np.testing.assert_allclose(act.compose_input_gradients([J])[0], [[3.0, 0.0, 10.0]])


def test_leaky_relu_custom_alpha():
    act = LeakyReLU(alpha=0.1)
    np.testing.assert_allclose(act(np.array([[-5.0, 5.0]])), [[-0.5, 5.0]])
    np.testing.assert_allclose(act.get_input_gradients()[0], [[0.1, 1.0]])


def test_relu_is_leaky_relu_with_alpha_zero():
    act = ReLU()
    assert isinstance(act, LeakyReLU)
    assert act.alpha == 0.0
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(act(x), [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(act.get_input_gradients()[0], [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(
        act.compose_input_gradients([np.array([[4.0, 5.0, 6.0]])])[0], [[0.0, 0.0, 6.0]]
    )


def test_sigmoid_values_and_gradient():
    act = Sigmoid()
    x = np.array([[0.0, np.log(3.0), -np.log(3.0)]])
    np.testing.assert_allclose(act(x), [[0.5, 0.75, 0.25]])
    np.testing.assert_allclose(act.get_input_gradients()[0], [[0.25, 0.1875, 0.1875]])
    np.testing.assert_allclose(
        act.compose_input_gradients([np.full((1, 3), 2.0)])[0], [[0.5, 0.375, 0.375]]
    )


def test_softmax_values_by_hand():
    act = Softmax()
    x = np.array([[0.0, np.log(2.0), np.log(5.0)], [1.0, 1.0, 1.0]])
    np.testing.assert_allclose(act(x), [[0.125, 0.25, 0.625], [1 / 3, 1 / 3, 1 / 3]])


def test_softmax_jacobian_is_batched_and_vjp_contracts_it():
    act = Softmax()
    x = np.array([[0.0, np.log(2.0), np.log(5.0)], [1.0, -1.0, 0.5]])
    y = np.asarray(act(x))
    (jac,) = act.get_input_gradients()
    assert jac.shape == (2, 3, 3)
    for b in range(2):
        np.testing.assert_allclose(jac[b], np.diag(y[b]) - np.outer(y[b], y[b]), atol=1e-15)
    np.testing.assert_allclose(jac[0, 0], [0.125 - 0.125**2, -0.125 * 0.25, -0.125 * 0.625])
    J = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 3.0]])
    (vjp,) = act.compose_input_gradients([J])
    np.testing.assert_allclose(vjp, np.einsum("bij,bj->bi", jac, J), atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_never_give_nan_or_inf(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = Softmax()(x)
        sg = Sigmoid()(x)
        lr = LeakyReLU()(x)
    for arr in [s, sg, lr]:
        assert arr.dtype == dtype
        assert np.all(np.isfinite(arr))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(s[0], [1.0, 0.0, 0.0], atol=1e-30)
    np.testing.assert_allclose(s[1], [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_array_equal(sg[0], [1.0, 0.0, 0.5])


def test_activation_gradients_at_extremes_are_finite():
    x = np.array([[1e4, -1e4, 0.0]])
    for act in (Softmax(), Sigmoid(), LeakyReLU()):
        act(x)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            (g,) = act.get_input_gradients()
            (v,) = act.compose_input_gradients([np.ones_like(x)])
        assert np.all(np.isfinite(g))
        assert np.all(np.isfinite(v))


@pytest.mark.parametrize("act", [LeakyReLU(), ReLU(), Sigmoid(), Softmax()])
def test_activations_keep_float32(act):
    x = np.array([[-1.0, 0.5, 2.0]], dtype=np.float32)
    out = act(x)
    assert isinstance(out, Tensor)
    assert out.dtype == np.float32
    assert act.get_input_gradients()[0].dtype == np.float32
    assert act.compose_input_gradients([np.ones_like(x)])[0].dtype == np.float32
    assert act.weights == []
    assert act.get_weight_gradients() == []


def test_get_by_name():
    assert isinstance(activations.get("relu"), ReLU)
    assert isinstance(activations.get("Leaky-ReLU"), LeakyReLU)
    assert isinstance(activations.get("softmax"), Softmax)
    assert isinstance(activations.get("sigmoid"), Sigmoid)


def test_unknown_activation_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown activation 'tanh': expected one of \[") as err:
        activations.get("tanh")
    for name in ("relu", "leaky_relu", "sigmoid", "softmax"):
        assert name in str(err.value)


def test_leaky_relu_rejects_non_finite_alpha():
    with pytest.raises(ValueError, match="LeakyReLU: alpha must be a finite number"):
        LeakyReLU(alpha=float("nan"))
