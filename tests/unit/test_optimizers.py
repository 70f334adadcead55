"""BasicOptimizer, RMSProp and Adam: hand-computed steps, in-place updates, identity keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

import beras.optimizer
from beras import optimizers
from beras.core import Variable
from beras.optimizers import Adam, BasicOptimizer, RMSProp


def _var(*values, dtype=np.float64):
    return Variable(np.array(values, dtype=dtype))


def test_optimizer_module_alias_exports_the_same_classes():
    assert beras.optimizer.BasicOptimizer is BasicOptimizer
    assert beras.optimizer.RMSProp is RMSProp
    assert beras.optimizer.Adam is Adam


def test_basic_optimizer_step():
    w = _var(1.0, -2.0)
    BasicOptimizer(0.5).apply_gradients([w], [np.array([2.0, 4.0])])
    np.testing.assert_array_equal(w, [0.0, -4.0])


def test_rmsprop_two_steps_by_hand():
    w = _var(1.0)
    opt = RMSProp(0.1, beta=0.9, epsilon=1e-6)
    opt.apply_gradients([w], [np.array([2.0])])
    v1 = 0.1 * 4.0
    w1 = 1.0 - 0.1 * 2.0 / (math.sqrt(v1) + 1e-6)
    assert w[0] == pytest.approx(w1, rel=1e-14)
    opt.apply_gradients([w], [np.array([-1.0])])
    v2 = 0.9 * v1 + 0.1 * 1.0
    assert w[0] == pytest.approx(w1 + 0.1 * 1.0 / (math.sqrt(v2) + 1e-6), rel=1e-14)


def test_rmsprop_epsilon_is_outside_the_root():
    w = _var(0.0)
    RMSProp(1.0, beta=0.9, epsilon=1e-6).apply_gradients([w], [np.array([1e-6])])
    v = 0.1 * 1e-12
    outside = -1e-6 / (math.sqrt(v) + 1e-6)  # torch.optim.RMSprop: about -0.76
    inside = -1e-6 / math.sqrt(v + 1e-6)  # tf.keras: about -0.001
    assert w[0] == pytest.approx(outside, rel=1e-12)
    assert abs(w[0] - inside) > 0.5


def test_adam_first_two_steps_by_hand():
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    w = _var(1.0)
    opt = Adam(lr, b1, b2, eps)
    assert opt.t == 0
    opt.apply_gradients([w], [np.array([2.0])])
    # step 1: m = 0.2, v = 0.004, m_hat = 2, v_hat = 4
    w1 = 1.0 - lr * 2.0 / (2.0 + eps)
    assert opt.t == 1
    assert w[0] == pytest.approx(w1, rel=1e-14)
    assert opt.m[id(w)][0] == pytest.approx(0.2)
    assert opt.v[id(w)][0] == pytest.approx(0.004)
    opt.apply_gradients([w], [np.array([-1.0])])
    # step 2: m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996
    m_hat = 0.08 / (1 - 0.81)
    v_hat = 0.004996 / (1 - 0.998001)
    assert opt.t == 2
    assert w[0] == pytest.approx(w1 - lr * m_hat / (math.sqrt(v_hat) + eps), rel=1e-12)


def test_adam_t_counts_calls_not_parameters():
    a, b = _var(1.0), _var(2.0)
    opt = Adam(0.01)
    opt.apply_gradients([a, b], [np.ones(1), np.ones(1)])
    assert opt.t == 1


def test_amsgrad_uses_running_max_of_raw_v_then_bias_correction():
    """torch.optim.Adam(amsgrad=True): v_max = max(v_max, v); denom = sqrt(v_max / (1 - b2^t))."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    w_ams, w_plain = _var(1.0), _var(1.0)
    ams, plain = Adam(lr, b1, b2, eps, amsgrad=True), Adam(lr, b1, b2, eps)
    for g in (2.0, 0.0):
        ams.apply_gradients([w_ams], [np.array([g])])
        plain.apply_gradients([w_plain], [np.array([g])])
    w1 = 1.0 - lr * 2.0 / (2.0 + eps)
    m2_hat = 0.18 / (1 - 0.81)
    v_max = 0.004  # v2 = 0.003996 < v1
    expected = w1 - lr * m2_hat / (math.sqrt(v_max / (1 - b2**2)) + eps)
    assert w_ams[0] == pytest.approx(expected, rel=1e-12)
    # a running max of the bias-corrected v_hat would use 4.0 instead:
    wrong = w1 - lr * m2_hat / (math.sqrt(4.0) + eps)
    assert abs(w_ams[0] - wrong) > 1e-3
    plain_expected = w1 - lr * m2_hat / (math.sqrt(0.003996 / (1 - b2**2)) + eps)
    assert w_plain[0] == pytest.approx(plain_expected, rel=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BasicOptimizer(0.1),
        lambda: RMSProp(0.1),
        lambda: Adam(0.1),
        lambda: Adam(0.1, amsgrad=True),
    ],
)
def test_updates_are_in_place(make):
    opt = make()
    w = Variable(np.ones((2, 3), dtype=np.float32))
    buffer = w.__array_interface__["data"][0]
    params = [w]
    opt.apply_gradients(params, [np.full((2, 3), 0.5, dtype=np.float32)])
    assert params[0] is w
    assert w.__array_interface__["data"][0] == buffer
    assert w.dtype == np.float32
    assert np.all(w < 1.0)


@pytest.mark.parametrize(
    "make", [lambda: BasicOptimizer(0.1), lambda: RMSProp(0.1), lambda: Adam(0.1)]
)
def test_float32_state_stays_float32(make):
    opt = make()
    w = Variable(np.ones(3, dtype=np.float32))
    opt.apply_gradients([w], [np.ones(3, dtype=np.float64)])
    assert w.dtype == np.float32
    for table in ("m", "v"):
        for state in getattr(opt, table, {}).values():
            assert state.dtype == np.float32


def _grads(rng, shapes):
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("cls", [BasicOptimizer, RMSProp, Adam])
def test_state_is_keyed_by_identity_reordering_is_harmless(cls):
    rng = np.random.default_rng(0)
    a1, b1 = Variable(rng.normal(size=(2, 2))), Variable(rng.normal(size=3))
    a2, b2 = Variable(np.array(a1)), Variable(np.array(b1))
    o1, o2 = cls(0.05), cls(0.05)
    for step in range(3):
        ga, gb = _grads(rng, [(2, 2), (3,)])
        o1.apply_gradients([a1, b1], [ga, gb])
        if step % 2:
            o2.apply_gradients([b2, a2], [gb, ga])
        else:
            o2.apply_gradients([a2, b2], [ga, gb])
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)


@pytest.mark.parametrize("cls", [BasicOptimizer, RMSProp])
def test_partial_lists_equal_separate_optimizers(cls):
    rng = np.random.default_rng(1)
    a, b = Variable(rng.normal(size=3)), Variable(rng.normal(size=2))
    a_ref, b_ref = Variable(np.array(a)), Variable(np.array(b))
    shared, only_a, only_b = cls(0.05), cls(0.05), cls(0.05)
    for _ in range(3):
        ga, gb = _grads(rng, [(3,), (2,)])
        shared.apply_gradients([a], [ga])
        shared.apply_gradients([b], [gb])
        only_a.apply_gradients([a_ref], [ga])
        only_b.apply_gradients([b_ref], [gb])
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_array_equal(b, b_ref)


def test_adam_partial_lists_keep_per_parameter_moments():
    """A parameter left out of a call keeps its moments; t is per call (the stencil's rule)."""
    rng = np.random.default_rng(2)
    a, b = Variable(rng.normal(size=3)), Variable(rng.normal(size=2))
    a_ref, b_ref = Variable(np.array(a)), Variable(np.array(b))
    shared, only_a, only_b = Adam(0.05), Adam(0.05), Adam(0.05)
    ga1, gb1, ga2 = _grads(rng, [(3,), (2,), (3,)])
    shared.apply_gradients([a, b], [ga1, gb1])
    shared.apply_gradients([a], [ga2])
    only_a.apply_gradients([a_ref], [ga1])
    only_a.apply_gradients([a_ref], [ga2])
    only_b.apply_gradients([b_ref], [gb1])
    np.testing.assert_array_equal(a, a_ref)
    np.testing.assert_array_equal(b, b_ref)
    np.testing.assert_array_equal(shared.m[id(b)], only_b.m[id(b_ref)])


def test_none_gradients_are_skipped():
    a, b = _var(1.0), _var(1.0)
    BasicOptimizer(1.0).apply_gradients([a, b], [None, np.array([0.5])])
    assert a[0] == 1.0
    assert b[0] == 0.5


@pytest.mark.parametrize("cls", [RMSProp, Adam])
def test_zero_gradients_give_no_nan(cls):
    w = _var(1.0, 2.0, dtype=np.float32)
    opt = cls(0.1)
    with np.errstate(all="raise"):
        for _ in range(3):
            opt.apply_gradients([w], [np.zeros(2, dtype=np.float32)])
    np.testing.assert_array_equal(w, [1.0, 2.0])


@pytest.mark.parametrize(
    "make", [lambda: RMSProp(0.1), lambda: Adam(0.1), lambda: Adam(0.1, amsgrad=True)]
)
def test_huge_finite_gradients_never_make_nan_weights(make):
    """g**2 overflows float32 to inf; the moments must not then compute inf - inf."""
    w = _var(1.0, -1.0, dtype=np.float32)
    opt = make()
    with np.errstate(over="ignore"):
        for g in (3e38, -3e38, 3e38, 1.0):
            opt.apply_gradients([w], [np.array([g, -g], dtype=np.float32)])
    assert np.all(np.isfinite(w))


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("cls", [BasicOptimizer, RMSProp, Adam])
def test_count_mismatch_is_a_clear_error(cls):
    w = _var(1.0)
    with pytest.raises(
        ValueError,
        match=rf"{cls.__name__}.apply_gradients expected one gradient per parameter, got 1 parameters and 2 gradients",
    ):
        cls(0.1).apply_gradients([w], [np.ones(1), np.ones(1)])
    assert w[0] == 1.0


@pytest.mark.parametrize("cls", [BasicOptimizer, RMSProp, Adam])
def test_one_bad_shape_among_several_updates_nothing(cls):
    opt = cls(0.1)
    a, b, c = _var(1.0, 1.0), _var(2.0), _var(3.0, 3.0, 3.0)
    opt.apply_gradients([a, b, c], [np.ones(2), np.ones(1), np.ones(3)])  # some state
    snapshot = [np.array(p) for p in (a, b, c)]
    state = {
        k: {i: np.array(s) for i, s in getattr(opt, k).items()}
        for k in ("m", "v")
        if hasattr(opt, k)
    }
    t = getattr(opt, "t", None)
    with pytest.raises(
        ValueError, match=r"gradient 2 has shape \(2,\), but its parameter has shape \(3,\)"
    ):
        opt.apply_gradients([a, b, c], [np.ones(2), np.ones(1), np.ones(2)])
    for p, before in zip((a, b, c), snapshot):
        np.testing.assert_array_equal(p, before)
    assert getattr(opt, "t", None) == t
    for k, table in state.items():
        for i, s in table.items():
            np.testing.assert_array_equal(getattr(opt, k)[i], s)


def test_non_float_parameter_is_a_type_error():
    with pytest.raises(TypeError, match="expected float arrays"):
        BasicOptimizer(0.1).apply_gradients([np.ones(2, dtype=int)], [np.ones(2)])


@pytest.mark.parametrize("lr", [0.0, -1.0, float("inf")])
def test_bad_learning_rate(lr):
    with pytest.raises(ValueError, match="Adam: learning_rate must be a positive finite number"):
        Adam(lr)


def test_get_by_name():
    assert isinstance(optimizers.get("sgd", 0.1), BasicOptimizer)
    assert isinstance(optimizers.get("RMSProp", 0.1), RMSProp)
    adam = optimizers.get("amsgrad", 0.1)
    assert isinstance(adam, Adam)
    assert adam.amsgrad


def test_unknown_optimizer_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adagrad': expected one of \[") as err:
        optimizers.get("adagrad", 0.1)
    for name in ("adam", "amsgrad", "rmsprop", "sgd"):
        assert name in str(err.value)


def test_basic_optimizer_refuses_an_overflowing_step_and_updates_nothing():
    first = Variable(np.ones((2, 2), dtype=np.float32))
    second = Variable(np.ones(3, dtype=np.float32))
    before = [first.copy(), second.copy()]
    grads = [
        np.full((2, 2), 1.0, np.float32),
        np.full(3, 1e33, np.float32),
    ]  # 1e6 * 1e33 > float32 max
    with pytest.raises(FloatingPointError, match=r"not finite.*no parameter was updated"):
        BasicOptimizer(1e6).apply_gradients([first, second], grads)
    np.testing.assert_array_equal(first, before[0])
    np.testing.assert_array_equal(second, before[1])
