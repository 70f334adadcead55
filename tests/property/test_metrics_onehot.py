"""One-hot encoding and accuracy: inverse(forward) is the identity, rows are one-hot,
accuracy is a direct count, ties go to the lowest index."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import beras
from beras.testing.strategies import budget, one_hot

labels = hnp.arrays(np.int64, st.integers(1, 30), elements=st.integers(-5, 20))


@settings(max_examples=budget(40))
@given(data=labels)
def test_one_hot_round_trip(data: np.ndarray) -> None:
    enc = beras.OneHotEncoder()
    rows = enc.forward(data)
    uniq = np.unique(data)
    assert rows.shape == (len(data), len(uniq))
    assert set(np.unique(rows)) <= {0.0, 1.0}
    assert np.all(rows.sum(axis=1) == 1)
    np.testing.assert_array_equal(uniq[np.argmax(rows, axis=1)], data)  # np.unique order
    np.testing.assert_array_equal(enc.inverse(rows), data)


@settings(max_examples=budget(20))
@given(data=labels, extra=labels)
def test_one_hot_is_fitted_once(data: np.ndarray, extra: np.ndarray) -> None:
    enc = beras.OneHotEncoder()
    enc.fit(np.concatenate([data, extra]))
    first = enc.forward(data)
    np.testing.assert_array_equal(enc.forward(data), first)
    np.testing.assert_array_equal(enc.inverse(enc.forward(extra)), extra)


@settings(max_examples=budget(40))
@given(data=st.data(), n=st.integers(1, 6), batch=st.integers(1, 20))
def test_accuracy_is_a_direct_count(data: st.DataObject, n: int, batch: int) -> None:
    probs = data.draw(
        hnp.arrays(np.float64, (batch, n), elements=st.sampled_from([0.0, 0.25, 0.5, 1.0]))
    )
    truth = data.draw(one_hot((batch, n)))
    hits = 0
    for p, t in zip(probs, truth):
        best = max(range(n), key=lambda k: (p[k], -k))  # ties: the lowest index
        hits += int(truth_index(t) == best)
    assert beras.metrics.CategoricalAccuracy()(probs, truth) == hits / batch


def truth_index(row: np.ndarray) -> int:
    return int(np.flatnonzero(row == 1)[0])


def test_ties_go_to_the_lowest_index() -> None:
    acc = beras.metrics.CategoricalAccuracy()
    assert acc(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]])) == 1.0
    assert acc(np.array([[0.5, 0.5]]), np.array([[0.0, 1.0]])) == 0.0
