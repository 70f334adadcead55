"""CategoricalAccuracy and OneHotEncoder."""

from __future__ import annotations

import numpy as np
import pytest

from beras.metrics import CategoricalAccuracy
from beras.onehot import OneHotEncoder


def test_accuracy_by_hand():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    labels = np.array([[0, 1], [0, 1], [0, 1], [1, 0]])
    acc = CategoricalAccuracy()(probs, labels)
    assert float(acc) == 0.75  # rows 0, 2 and 3 right


def test_accuracy_forward_returns_a_float():
    acc = CategoricalAccuracy().forward(np.eye(3), np.eye(3))
    assert isinstance(acc, float)
    assert acc == 1.0


def test_accuracy_ties_go_to_the_lowest_index():
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    assert float(CategoricalAccuracy()(probs, np.array([[1, 0, 0], [0, 1, 0]]))) == 1.0
    assert float(CategoricalAccuracy()(probs, np.array([[0, 1, 0], [0, 0, 1]]))) == 0.0


def test_accuracy_shape_mismatch_hints_at_one_hot():
    with pytest.raises(
        ValueError,
        match=r"CategoricalAccuracy expected probs and one-hot labels of the same shape.*one-hot encode",
    ):
        CategoricalAccuracy()(np.ones((3, 4)), np.array([0, 1, 2]))


def test_accuracy_of_a_single_unbatched_row_is_that_rows_hit():
    """A 1-D probs/labels pair is one sample (as Keras's argmax over the last axis)."""
    assert float(CategoricalAccuracy()(np.array([0.1, 0.7, 0.2]), np.array([0, 1, 0]))) == 1.0
    assert float(CategoricalAccuracy()(np.array([0.1, 0.7, 0.2]), np.array([1, 0, 0]))) == 0.0


def test_accuracy_of_scalars_is_an_error_naming_both_shapes():
    with pytest.raises(ValueError, match=r"same shape, got probs \(\) and labels \(\)"):
        CategoricalAccuracy()(np.float64(0.5), np.float64(1.0))


def test_accuracy_of_rank3_batches_counts_every_position():
    """(batch, time, classes): argmax over the last axis at each of the 2 x 3 positions."""
    probs = np.zeros((2, 3, 4))
    labels = np.zeros((2, 3, 4))
    probs[..., 1] = 1.0
    labels[..., 1] = 1.0
    labels[0, 2] = [0, 0, 0, 1]  # one of six positions wrong
    assert float(CategoricalAccuracy()(probs, labels)) == pytest.approx(5 / 6)


def test_callables_take_their_inputs_by_keyword():
    probs, labels = np.array([[0.2, 0.8]]), np.array([[0, 1]])
    assert float(CategoricalAccuracy()(probs=probs, labels=labels)) == 1.0
    np.testing.assert_array_equal(OneHotEncoder()(data=np.array([2, 1])), [[0, 1], [1, 0]])


def test_one_hot_accepts_a_column_of_labels():
    column = np.array([[7], [3], [5]])
    enc = OneHotEncoder()
    np.testing.assert_array_equal(enc(column), OneHotEncoder()(column[:, 0]))
    np.testing.assert_array_equal(enc.inverse(enc(column)), column[:, 0])


def test_one_hot_label_table_is_an_empty_dict_until_fit():
    enc = OneHotEncoder()
    assert enc.uniq is None
    assert enc.uniq2oh == {}
    enc.fit(np.array(["b", "a"]))
    assert list(enc.uniq2oh) == ["a", "b"]
    np.testing.assert_array_equal(enc.uniq2oh["b"], [0, 1])


def test_one_hot_uses_np_unique_order():
    enc = OneHotEncoder()
    data = np.array([7, 3, 5, 3])
    out = enc.forward(data)  # fits first
    assert out.ndim == 2
    np.testing.assert_array_equal(enc.uniq, [3, 5, 7])
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [1, 0, 0]])


def test_one_hot_fit_then_forward_and_exact_inverse():
    enc = OneHotEncoder()
    enc.fit(np.array(["cat", "dog", "ant"]))
    data = np.array(["dog", "dog", "ant", "cat"])
    encoded = enc(data)
    assert encoded.shape == (4, 3)
    np.testing.assert_array_equal(encoded[0], [0, 0, 1])
    back = enc.inverse(encoded)
    np.testing.assert_array_equal(back, data)
    assert back.dtype == data.dtype


def test_one_hot_only_labels_present():
    enc = OneHotEncoder()
    enc.fit(np.array([0, 2, 9]))
    assert enc.forward(np.array([9])).shape == (1, 3)
    assert set(enc.uniq2oh) == {0, 2, 9}


def test_one_hot_inverse_is_exact_for_floats():
    enc = OneHotEncoder()
    labels = np.array([0.1, 0.2, 0.30000000000000004, 0.1])
    np.testing.assert_array_equal(enc.inverse(enc.forward(labels)), labels)


def test_one_hot_unseen_labels_are_a_clear_error():
    enc = OneHotEncoder()
    enc.fit(np.array([0, 1, 2]))
    with pytest.raises(
        ValueError, match=r"OneHotEncoder.forward got labels never seen in fit: \[5, 7\]"
    ) as err:
        enc.forward(np.array([0, 5, 7]))
    assert "fitted labels: [0, 1, 2]" in str(err.value)
    np.testing.assert_array_equal(enc.uniq, [0, 1, 2])  # unchanged


def test_one_hot_inverse_rejects_rows_that_are_not_one_hot():
    enc = OneHotEncoder()
    enc.fit(np.array([0, 1, 2]))
    with pytest.raises(
        ValueError, match=r"OneHotEncoder.inverse expected one-hot rows.*rows \[1\] are not"
    ):
        enc.inverse(np.array([[1, 0, 0], [0.2, 0.7, 0.1]]))
    with pytest.raises(
        ValueError, match=r"OneHotEncoder.inverse expected one-hot rows.*rows \[0\]"
    ):
        enc.inverse(np.array([[1, 1, 0]]))
    with pytest.raises(ValueError, match=r"expected one-hot rows of shape \(N, 3\), got \(1, 4\)"):
        enc.inverse(np.array([[1, 0, 0, 0]]))


def test_one_hot_inverse_before_fit_is_a_state_error():
    with pytest.raises(RuntimeError, match=r"OneHotEncoder\.inverse called before fit"):
        OneHotEncoder().inverse(np.eye(2))


def test_one_hot_rejects_non_1d_labels():
    with pytest.raises(
        ValueError, match=r"OneHotEncoder expected a 1-D array of labels, got shape \(2, 2\)"
    ):
        OneHotEncoder().fit(np.zeros((2, 2)))
