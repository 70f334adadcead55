"""MeanSquaredError and CategoricalCrossEntropy by hand, and their input checks."""

from __future__ import annotations

import numpy as np
import pytest

from beras.core import Tensor
from beras.losses import CategoricalCrossEntropy, Loss, MeanSquaredError

# -------------------------------------------------------------------------------- MSE


def test_mse_is_the_mean_of_per_sample_means():
    pred = np.array([[1.0, 2.0], [3.0, 5.0]])
    true = np.array([[0.0, 0.0], [3.0, 1.0]])
    loss = MeanSquaredError()(pred, true)
    assert isinstance(loss, Tensor)
    assert loss.shape == ()
    per_sample = [(1 + 4) / 2, (0 + 16) / 2]
    assert float(loss) == pytest.approx(np.mean(per_sample))
    assert float(loss) == pytest.approx(5.25)


def test_mse_gradients_include_1_over_n_and_zeros_for_y_true():
    fn = MeanSquaredError()
    pred = np.array([[1.0, 2.0], [3.0, 5.0]])
    true = np.array([[0.0, 0.0], [3.0, 1.0]])
    fn(pred, true)
    g_pred, g_true = fn.get_input_gradients()
    np.testing.assert_allclose(g_pred, 2 * (pred - true) / 4)
    np.testing.assert_array_equal(g_true, np.zeros((2, 2)))
    up = np.array(3.0)
    c_pred, c_true = fn.compose_input_gradients([up])
    np.testing.assert_allclose(c_pred, 3 * 2 * (pred - true) / 4)
    np.testing.assert_array_equal(c_true, np.zeros((2, 2)))


def test_losses_have_no_weights():
    for fn in (MeanSquaredError(), CategoricalCrossEntropy()):
        assert isinstance(fn, Loss)
        assert fn.weights == []
        assert fn.get_weight_gradients() == []


def test_mse_keeps_float32():
    fn = MeanSquaredError()
    pred = np.ones((2, 3), dtype=np.float32)
    loss = fn(pred, np.zeros((2, 3), dtype=np.float32))
    assert loss.dtype == np.float32
    assert fn.get_input_gradients()[0].dtype == np.float32


def test_loss_shape_mismatch_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"MeanSquaredError expected y_pred and y_true of the same shape, got y_pred \(2, 3\) and y_true \(2, 4\)",
    ):
        MeanSquaredError()(np.ones((2, 3)), np.ones((2, 4)))


# -------------------------------------------------------------------------------- CCE


def test_cce_by_hand():
    pred = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    loss = CategoricalCrossEntropy()(pred, true)
    assert float(loss) == pytest.approx((-np.log(0.5) - np.log(0.8)) / 2)


def test_cce_gradient_includes_1_over_batch():
    fn = CategoricalCrossEntropy()
    pred = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    fn(pred, true)
    g_pred, g_true = fn.get_input_gradients()
    np.testing.assert_allclose(g_pred, [[-1 / 0.5 / 2, 0, 0], [0, -1 / 0.8 / 2, 0]])
    np.testing.assert_array_equal(g_true, np.zeros((2, 3)))


def test_cce_clips_exact_zeros_and_ones():
    fn = CategoricalCrossEntropy()
    pred = np.array([[0.0, 1.0], [1.0, 0.0]])
    true = np.array([[1.0, 0.0], [1.0, 0.0]])
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        loss = fn(pred, true)
        g_pred, _ = fn.get_input_gradients()
    assert np.isfinite(float(loss))
    assert float(loss) == pytest.approx(-np.log(1e-12) / 2, rel=1e-9)
    assert np.all(np.isfinite(g_pred))
    # where clipping is active the gradient is zero (as in Keras)
    assert g_pred[0, 0] == 0.0


def test_cce_float32_with_exact_zeros_is_finite():
    fn = CategoricalCrossEntropy()
    pred = np.array([[0.0, 1.0]], dtype=np.float32)
    true = np.array([[1.0, 0.0]], dtype=np.float32)
    with np.errstate(divide="raise", invalid="raise", over="raise"):
        loss = fn(pred, true)
        (g, _) = fn.get_input_gradients()
    assert loss.dtype == np.float32
    assert np.isfinite(loss)
    assert g.dtype == np.float32
    assert np.all(np.isfinite(g))


def test_cce_from_logits_value_and_gradient():
    fn = CategoricalCrossEntropy(from_logits=True)
    logits = np.array([[0.0, np.log(2.0), np.log(5.0)], [2.0, 0.0, -1.0]])
    true = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    loss = fn(logits, true)
    assert float(loss) == pytest.approx(-(np.log(0.625) + np.log(soft[1, 1])) / 2)
    g_pred, g_true = fn.get_input_gradients()
    np.testing.assert_allclose(g_pred, (soft - true) / 2, rtol=1e-12)
    np.testing.assert_array_equal(g_true, 0.0)


def test_cce_from_logits_is_stable_for_huge_logits():
    fn = CategoricalCrossEntropy(from_logits=True)
    logits = np.array([[1e4, -1e4, 0.0]])
    true = np.array([[0.0, 1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = fn(logits, true)
        g, _ = fn.get_input_gradients()
    assert float(loss) == pytest.approx(2e4)
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]], atol=1e-300)


def test_cce_integer_labels_get_a_one_hot_hint():
    probs = np.full((4, 3), 1 / 3)
    for labels in (np.array([0, 2, 1, 1]), np.array([[0], [2], [1], [1]])):
        with pytest.raises(
            ValueError,
            match=r"CategoricalCrossEntropy expected y_pred and y_true of the same shape",
        ) as err:
            CategoricalCrossEntropy()(probs, labels)
        assert "one-hot encode" in str(err.value)
        assert "OneHotEncoder" in str(err.value)


def test_cce_rejects_probabilities_outside_0_1_with_a_from_logits_hint():
    with pytest.raises(
        ValueError,
        match=r"CategoricalCrossEntropy expected probabilities in \[0, 1\].*from_logits=True",
    ):
        CategoricalCrossEntropy()(np.array([[2.0, -1.0]]), np.array([[1.0, 0.0]]))


def test_cce_rejects_bad_epsilon():
    with pytest.raises(ValueError, match="epsilon must be in"):
        CategoricalCrossEntropy(epsilon=0.0)


def test_cce_keeps_float32():
    fn = CategoricalCrossEntropy()
    pred = np.array([[0.2, 0.8]], dtype=np.float32)
    loss = fn(pred, np.array([[0.0, 1.0]], dtype=np.float32))
    assert loss.dtype == np.float32
    assert fn.get_input_gradients()[0].dtype == np.float32
