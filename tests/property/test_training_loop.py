"""``fit``/``evaluate`` bookkeeping against an independent reference loop.

A one-layer linear model with MSE and plain SGD has hand-derivable gradients
(``dW = 2/(B m) x^T (xW + b - y)``), so a reference loop written here, with the same
seeded shuffling (``np.random.default_rng(seed).permutation(n)`` per epoch), must give
the same weights and the same history: per-epoch averages weighted by batch size, the
last partial batch kept, ``evaluate`` averaging over the whole set without training.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import beras
from beras.core import Variable
from beras.testing.strategies import budget


def _reference(w, b, x, y, lr, epochs, batch_size, shuffle, seed):
    rng = np.random.default_rng(seed)
    n, history = len(x), {"loss": [], "acc": []}
    for _ in range(epochs):
        order = rng.permutation(n) if shuffle else np.arange(n)
        totals = {"loss": 0.0, "acc": 0.0}
        for lo in range(0, n, batch_size):
            idx = order[lo : lo + batch_size]
            xb, yb = x[idx], y[idx]
            pred = xb @ w + b
            totals["loss"] += np.mean((pred - yb) ** 2) * len(idx)
            totals["acc"] += np.mean(pred.argmax(-1) == yb.argmax(-1)) * len(idx)
            d = 2.0 * (pred - yb) / pred.size
            w, b = w - lr * xb.T @ d, b - lr * d.sum(0, keepdims=True)
        for k in totals:
            history[k].append(totals[k] / n)
    return w, b, history


@settings(max_examples=budget(100))
@given(
    n=st.integers(1, 13),
    n_in=st.integers(1, 4),
    n_out=st.integers(2, 4),
    batch_size=st.integers(1, 6),
    epochs=st.integers(0, 3),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    lr=st.floats(0.01, 0.2),
)
def test_fit_matches_a_reference_loop(
    n, n_in, n_out, batch_size, epochs, shuffle, seed, lr
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, n)]
    dense = beras.Dense(n_in, n_out, seed=rng)
    dense.w, dense.b = (
        Variable(rng.normal(size=(n_in, n_out))),
        Variable(rng.normal(size=(1, n_out))),
    )
    w0, b0 = np.array(dense.w), np.array(dense.b)
    model = beras.SequentialModel([dense])
    model.compile(
        beras.BasicOptimizer(lr), beras.MeanSquaredError(), beras.metrics.CategoricalAccuracy()
    )

    history = model.fit(
        x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle, verbose=0, seed=seed
    )
    w, b, expected = _reference(w0, b0, x, y, lr, epochs, batch_size, shuffle, seed)

    np.testing.assert_allclose(dense.w, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dense.b, b, rtol=1e-10, atol=1e-12)
    assert set(history) == ({"loss", "acc"} if epochs else set())
    for k in expected:
        if epochs:
            np.testing.assert_allclose(history[k], expected[k], rtol=1e-10, atol=1e-12)

    before = [np.array(v) for v in model.weights]
    metrics, preds = model.evaluate(x, y, batch_size=batch_size)
    for v, saved in zip(model.weights, before):
        np.testing.assert_array_equal(v, saved)  # evaluate never trains
    full = x @ w + b
    np.testing.assert_allclose(preds, full, rtol=1e-10, atol=1e-12)
    batches = [slice(i, i + batch_size) for i in range(0, n, batch_size)]
    loss = sum(np.mean((full[s] - y[s]) ** 2) * len(full[s]) for s in batches) / n
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-10)
    np.testing.assert_allclose(metrics["acc"], np.mean(full.argmax(-1) == y.argmax(-1)), rtol=1e-12)
