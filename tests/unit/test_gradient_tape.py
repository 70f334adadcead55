"""GradientTape: hand-computed DAGs, error cases, and finite differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from beras import config
from beras.activations import LeakyReLU, Sigmoid, Softmax
from beras.core import Diffable, Tensor, Variable
from beras.gradient_tape import GradientTape
from beras.layers import Add, Concatenate, Dense
from beras.losses import CategoricalCrossEntropy, MeanSquaredError


@pytest.fixture
def float64():
    previous = config.floatx()
    config.set_floatx("float64")
    yield
    config.set_floatx(previous)


def _dense(w, b):
    w = np.atleast_2d(np.asarray(w, dtype=np.float64))
    layer = Dense(*w.shape, initializer="zero")
    layer.w = Variable(w)
    layer.b = Variable(np.asarray(b, dtype=np.float64).reshape(1, -1))
    return layer


def _scalar(g):
    return float(np.asarray(g).reshape(-1)[0])


# -------------------------------------------------------------- the tape's bookkeeping


def test_tape_sets_and_resets_the_class_attribute():
    assert Diffable.gradient_tape is None
    with GradientTape() as tape:
        assert Diffable.gradient_tape is tape
    assert Diffable.gradient_tape is None


def test_tape_is_reset_when_the_body_raises():
    with pytest.raises(KeyError), GradientTape():
        raise KeyError("boom")
    assert Diffable.gradient_tape is None


def test_nested_tape_is_a_runtime_error_and_keeps_the_outer_one():
    with GradientTape() as outer:
        with (
            pytest.raises(
                RuntimeError, match="GradientTape: another GradientTape is already recording"
            ),
            GradientTape(),
        ):
            pass  # pragma: no cover
        assert Diffable.gradient_tape is outer
    assert Diffable.gradient_tape is None


def test_previous_layers_is_a_defaultdict_of_none():
    tape = GradientTape()
    assert tape.previous_layers[12345] is None


# --------------------------------------------------------------- hand-computed DAGs


def test_dense_applied_twice_shares_its_weights():
    """y = w (w x + b) + b with w = 2, b = 1, x = 3: dy/dw = (w x + b) + w x = 13, dy/db = w + 1 = 3."""
    d = _dense([[2.0]], [1.0])
    x = np.array([[3.0]])
    with GradientTape() as tape:
        y = d(d(x))
    assert _scalar(y) == 15.0
    dw, db = tape.gradient(y, [d.w, d.b])
    assert _scalar(dw) == 13.0
    assert _scalar(db) == 3.0
    assert d.inputs[0] is not x  # the tape restored the last call's state afterwards


def test_one_activation_instance_used_twice():
    """u = act(w1 x), v = act(w2 u), alpha 0.5, x = -2, w1 = 1, w2 = -4: u = -1, v = 4.

    dv/dw2 = u = -1; dv/dw1 = 1 * w2 * 0.5 * x = 4 (the first call's slope, not the second's).
    """
    act = LeakyReLU(alpha=0.5)
    d1, d2 = _dense([[1.0]], [0.0]), _dense([[-4.0]], [0.0])
    with GradientTape() as tape:
        v = act(d2(act(d1(np.array([[-2.0]])))))
    assert _scalar(v) == 4.0
    dw1, dw2 = tape.gradient(v, [d1.w, d2.w])
    assert _scalar(dw2) == -1.0
    assert _scalar(dw1) == 4.0


def test_a_tensor_feeding_several_consumers_sums_their_gradients():
    """h = w x + b feeds two Dense layers (3 and 5) merged by Add: y = 8 h, dy/dw = 8 x, dy/db = 8."""
    d = _dense([[2.0]], [1.0])
    da, db_ = _dense([[3.0]], [0.0]), _dense([[5.0]], [0.0])
    x = np.array([[3.0]])
    with GradientTape() as tape:
        h = d(x)
        y = Add()(da(h), db_(h))
    assert _scalar(y) == 56.0
    dw, db = tape.gradient(y, [d.w, d.b])
    assert _scalar(dw) == 24.0
    assert _scalar(db) == 8.0


def test_the_same_tensor_twice_into_add():
    d = _dense([[2.0]], [1.0])
    with GradientTape() as tape:
        h = d(np.array([[3.0]]))
        y = Add()(h, h)
    dw, db = tape.gradient(y, [d.w, d.b])
    assert _scalar(dw) == 6.0
    assert _scalar(db) == 2.0


def test_add_branch_with_a_skip_connection():
    """y = h + sigmoid(h), h = w x: dy/dw = (1 + s(1 - s)) x."""
    d = _dense([[0.5]], [0.0])
    x = np.array([[2.0]])
    with GradientTape() as tape:
        h = d(x)
        y = Add()(h, Sigmoid()(h))
    s = 1 / (1 + np.exp(-1.0))
    (dw,) = tape.gradient(y, [d.w])
    assert _scalar(dw) == pytest.approx((1 + s * (1 - s)) * 2.0, rel=1e-14)


def test_concatenate_routes_each_slice_back():
    """y = 3 (w1 x) + 5 (w2 x): dy/dw1 = 3 x, dy/dw2 = 5 x."""
    d1, d2 = _dense([[1.0]], [0.0]), _dense([[2.0]], [0.0])
    head = _dense([[3.0], [5.0]], [0.0])
    x = np.array([[4.0], [1.0]])
    with GradientTape() as tape:
        y = head(Concatenate()(d1(x), d2(x)))
    dw1, dw2, dhead = tape.gradient(y, [d1.w, d2.w, head.w])
    assert _scalar(dw1) == 3.0 * 5.0
    assert _scalar(dw2) == 5.0 * 5.0
    np.testing.assert_array_equal(dhead, [[5.0], [10.0]])


def test_unconnected_source_gets_none():
    used, unused = _dense([[1.0]], [0.0]), _dense([[1.0]], [0.0])
    with GradientTape() as tape:
        y = used(np.array([[1.0]]))
    grads = tape.gradient(y, [used.w, unused.w, unused.b])
    assert grads[0] is not None
    assert grads[1] is None
    assert grads[2] is None


def test_non_scalar_target_is_summed():
    d = _dense([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [0.0, 0.0])
    x = np.arange(12.0).reshape(4, 3)
    with GradientTape() as tape:
        y = d(x)
    dw, db = tape.gradient(y, [d.w, d.b])
    np.testing.assert_array_equal(dw, x.T @ np.ones((4, 2)))
    np.testing.assert_array_equal(db, [[4.0, 4.0]])


def test_gradient_with_respect_to_an_input_tensor():
    d = _dense([[2.0, -1.0]], [0.0, 0.0])
    x = Tensor(np.array([[3.0], [4.0]]))
    with GradientTape() as tape:
        y = d(x)
    (dx,) = tape.gradient(y, [x])
    np.testing.assert_array_equal(dx, [[1.0], [1.0]])


def test_single_source_returns_a_single_gradient():
    d = _dense([[2.0]], [1.0])
    with GradientTape() as tape:
        y = d(np.array([[3.0]]))
    g = tape.gradient(y, d.w)
    assert isinstance(g, Tensor)
    assert _scalar(g) == 3.0


def test_gradients_are_aligned_with_sources_and_have_their_shapes():
    d1, d2 = Dense(3, 4, seed=0), Dense(4, 2, seed=1)
    with GradientTape() as tape:
        loss = MeanSquaredError()(
            d2(d1(np.ones((5, 3), dtype=np.float32))), np.zeros((5, 2), dtype=np.float32)
        )
    sources = [d2.b, d1.w, d2.w, d1.b]
    grads = tape.gradient(loss, sources)
    assert [g.shape for g in grads] == [s.shape for s in sources]
    assert all(g.dtype == np.float32 for g in grads)


def test_unrecorded_target_is_a_value_error():
    d = _dense([[1.0]], [0.0])
    outside = d(np.array([[1.0]]))
    with GradientTape() as tape:
        d(np.array([[1.0]]))
        via_forward = d.forward(np.array([[1.0]]))
    for target in (outside, via_forward, np.array(1.0)):
        with pytest.raises(
            ValueError,
            match=r"GradientTape\.gradient: the target was not produced by a layer called inside this tape",
        ):
            tape.gradient(target, [d.w])


# ------------------------------------------------------ finite differences, float64


def _numerical_gradient(loss_of, params, h=1e-5):
    grads = []
    for p in params:
        g = np.zeros(p.shape)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + h
            up = loss_of()
            p[idx] = old - h
            down = loss_of()
            p[idx] = old
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


def _assert_matches_finite_differences(forward, params):
    with GradientTape() as tape:
        loss = forward()
    analytic = tape.gradient(loss, params)
    numeric = _numerical_gradient(lambda: float(forward()), params)
    for a, n in zip(analytic, numeric):
        assert a is not None
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, n, rtol=1e-6, atol=1e-10)


def _data(rng, batch=4, features=3, classes=3):
    x = Tensor(rng.normal(size=(batch, features)))
    y = np.eye(classes)[rng.integers(0, classes, batch)]
    return x, y


def test_mlp_gradients_match_finite_differences(float64):
    rng = np.random.default_rng(0)
    x, y = _data(rng)
    d1, d2 = Dense(3, 5, initializer="normal", seed=1), Dense(5, 3, initializer="normal", seed=2)
    for d in (d1, d2):
        d.b.assign(rng.normal(size=d.b.shape))
    act, soft, loss_fn = LeakyReLU(), Softmax(), CategoricalCrossEntropy()
    assert d1.w.dtype == np.float64

    def forward():
        return loss_fn(soft(d2(act(d1(x)))), y)

    _assert_matches_finite_differences(forward, [d1.w, d1.b, d2.w, d2.b, x])


def test_shared_layers_and_a_branch_match_finite_differences(float64):
    """One LeakyReLU used twice, one Dense applied twice, and an Add skip connection."""
    rng = np.random.default_rng(1)
    x, y = _data(rng, batch=5)
    d1, d2, d3 = (Dense(3, 4, seed=3), Dense(4, 4, seed=4), Dense(4, 3, seed=5))
    for d in (d1, d2, d3):
        d.w.assign(d.w * 0.7)
        d.b.assign(rng.normal(size=d.b.shape) * 0.3)
    act, soft, loss_fn, add = LeakyReLU(), Softmax(), CategoricalCrossEntropy(), Add()

    def forward():
        h1 = act(d1(x))
        h2 = act(d2(h1))
        h3 = d2(h2)
        return loss_fn(soft(d3(add(h1, h3))), y)

    _assert_matches_finite_differences(forward, [d1.w, d1.b, d2.w, d2.b, d3.w, d3.b, x])


def test_mse_head_and_concatenate_match_finite_differences(float64):
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(3, 2)))
    y = rng.normal(size=(3, 2))
    a, b, head = Dense(2, 2, seed=6), Dense(2, 3, seed=7), Dense(5, 2, seed=8)
    sig, cat, loss_fn = Sigmoid(), Concatenate(), MeanSquaredError()

    def forward():
        return loss_fn(head(cat(sig(a(x)), b(x))), y)

    _assert_matches_finite_differences(forward, [a.w, a.b, b.w, b.b, head.w, head.b, x])
