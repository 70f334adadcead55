"""Properties of CategoricalCrossEntropy beyond one-hot 2-D batches.

* From logits, the gradient is ``(softmax(z) * sum(y_true) - y_true) / B`` for any labels
  (soft, or not summing to 1) and any rank: it matches finite differences of the loss.
* On probabilities the clip to ``[epsilon, 1 - epsilon]`` (in the predictions' dtype) is the
  identity on its closed range, so there the gradient is the unclipped ``-y_true / p / B``,
  and it is zero strictly outside, where the clip is active (Keras's convention).
* A user's ``np.seterr(all="raise")`` never turns a harmless underflow inside the library
  (``exp`` of very negative logits) into an error.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras.activations import Sigmoid, Softmax
from beras.losses import CategoricalCrossEntropy


def _finite_differences(f, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad


@pytest.mark.parametrize(
    ("shape", "mass"), [((3, 4), 1.0), ((3, 4), 2.5), ((2, 3, 4), 1.0), ((2, 3, 4), 0.4)]
)
def test_from_logits_gradient_matches_finite_differences(shape, mass):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape) * 2
    labels = rng.random(shape)
    labels *= mass / labels.sum(axis=-1, keepdims=True)  # every row sums to `mass`
    loss = CategoricalCrossEntropy(from_logits=True)
    loss(logits, labels)
    grad, zero = loss.get_input_gradients()
    numeric = _finite_differences(lambda z: float(loss.forward(z, labels)), logits)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(zero, np.zeros(shape))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_clip_is_the_identity_on_its_closed_range(dtype):
    loss = CategoricalCrossEntropy(epsilon=1e-3)
    lo, hi = dtype(1e-3), dtype(1.0) - dtype(1e-3)
    pred = np.array([[lo, hi, 0.5], [0.0, 1.0, 0.25]], dtype=dtype)
    true = np.ones_like(pred)
    loss(pred, true)
    (grad, _) = loss.get_input_gradients()
    batch = pred.shape[0]
    # at the bounds themselves the clip changes nothing: the unclipped gradient
    np.testing.assert_allclose(grad[0], -1.0 / pred[0] / batch, rtol=1e-6)
    np.testing.assert_allclose(grad[1, 2], -1.0 / 0.25 / batch, rtol=1e-6)
    # strictly outside it (p = 0 and p = 1), the clip is active: zero
    assert grad[1, 0] == 0.0
    assert grad[1, 1] == 0.0


def test_a_certain_prediction_has_zero_gradient_and_tiny_loss_in_float64():
    """p = 1 exactly is above 1 - 1e-12: clipped, so no gradient pushes it further."""
    loss = CategoricalCrossEntropy()
    pred = np.array([[1.0, 0.0], [0.0, 1.0]])
    value = float(loss(pred, pred))
    assert 0.0 < value < 1e-11  # -log(1 - 1e-12)
    (grad, _) = loss.get_input_gradients()
    np.testing.assert_array_equal(grad, np.zeros_like(pred))


EXTREME = np.array([[-1e4, 0.0, 1e4], [-800.0, -700.0, 0.0]])


@pytest.mark.parametrize(
    "make",
    [Softmax, Sigmoid, lambda: CategoricalCrossEntropy(from_logits=True)],
    ids=["Softmax", "Sigmoid", "CategoricalCrossEntropy(from_logits)"],
)
def test_underflow_is_never_an_error_under_seterr_raise(make):
    layer = make()
    args = (
        (EXTREME, np.eye(3)[[2, 0]]) if isinstance(layer, CategoricalCrossEntropy) else (EXTREME,)
    )
    with np.errstate(all="raise"):
        out = layer(*args)
        grads = layer.get_input_gradients()
        vjp = layer.compose_input_gradients([np.ones_like(out)])
    assert np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in [*grads, *vjp])


def test_softmax_vjp_of_subnormal_probabilities_is_never_an_underflow_error():
    act = Softmax()
    x = np.array([[0.0, -720.0, -730.0]])  # exp(-720) is subnormal: a tiny probability
    up = np.array([[0.3, 1.7, -2.9]])
    with np.errstate(all="raise"):
        y = act(x)
        (vjp,) = act.compose_input_gradients([up])
    assert 0.0 < y[0, 1] < np.finfo(np.float64).tiny
    with np.errstate(under="ignore"):
        expected = np.asarray(y) * (up - (up * np.asarray(y)).sum(axis=-1, keepdims=True))
    np.testing.assert_array_equal(vjp, expected)


def test_probabilities_outside_zero_one_message_reads_exactly():
    with pytest.raises(ValueError) as err:
        CategoricalCrossEntropy()(np.array([[2.0, -1.0]]), np.array([[1.0, 0.0]]))
    assert str(err.value) == (
        "CategoricalCrossEntropy expected probabilities in [0, 1] as y_pred, got values in "
        "[-1, 2]. If y_pred are logits (no Softmax before the loss), use "
        "CategoricalCrossEntropy(from_logits=True)."
    )
