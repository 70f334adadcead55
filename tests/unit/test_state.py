"""get_state / set_state of optimizers, callbacks and random generators: a state survives
``.npz`` without pickles and continues exactly; a state that does not fit is refused with
a message naming the difference, and nothing changes."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from beras import runstate
from beras.callbacks import Callback, EarlyStopping, History, ModelCheckpoint, ReduceLROnPlateau
from beras.core import Variable
from beras.optimizers import SGD, Adam, BasicOptimizer, RMSProp

OPTIMIZERS = {
    "basic": lambda: BasicOptimizer(0.1),
    "sgd": lambda: SGD(0.1),
    "sgd-momentum": lambda: SGD(0.1, momentum=0.9),
    "sgd-nesterov": lambda: SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop": lambda: RMSProp(0.01),
    "adam": lambda: Adam(0.01),
    "amsgrad": lambda: Adam(0.01, amsgrad=True),
}


def _params(rng: np.random.Generator) -> list[Variable]:
    return [
        Variable(rng.normal(size=(4, 3)).astype(np.float32), name="w"),
        Variable(rng.normal(size=(1, 3)).astype(np.float32), name="b"),
    ]


def _npz_round_trip(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_optimizer_state_through_npz_continues_exactly(kind):
    rng = np.random.default_rng(0)
    params = _params(rng)
    opt = OPTIMIZERS[kind]()
    for _ in range(3):
        opt.apply_gradients(params, [rng.normal(size=p.shape) for p in params])
    opt.learning_rate *= 0.5  # a schedule moved it
    state = _npz_round_trip(opt.get_state(params))
    twins = [Variable(np.array(p)) for p in params]
    twin = OPTIMIZERS[kind]()
    twin.set_state(state, twins)
    assert twin.learning_rate == opt.learning_rate
    assert twin.iterations == opt.iterations == 3
    for _ in range(3):
        grads = [rng.normal(size=p.shape) for p in params]
        opt.apply_gradients(params, grads)
        twin.apply_gradients(twins, grads)
    for p, q in zip(params, twins):
        assert np.array_equal(p, q)


def test_state_lists_every_slot_of_every_parameter():
    rng = np.random.default_rng(1)
    params = _params(rng)
    opt = Adam(0.01, amsgrad=True)
    opt.apply_gradients(params, [np.ones(p.shape) for p in params])
    state = opt.get_state(params)
    slots = sorted(k for k in state if k.startswith("slots/"))
    assert slots == [f"slots/{s}/{i}" for s in ("m", "v", "v_max") for i in (0, 1)]
    assert str(state["class"]) == "Adam"
    assert bool(state["config/amsgrad"]) is True
    assert int(state["iterations"]) == 1
    assert np.array_equal(state["slots/m/0"], opt.m[id(params[0])])
    state["slots/m/0"][...] = 7.0  # a copy: the optimizer is unaffected
    assert not np.array_equal(state["slots/m/0"], opt.m[id(params[0])])


def test_without_variables_the_order_is_the_first_update_order():
    rng = np.random.default_rng(2)
    params = _params(rng)
    opt = RMSProp(0.01)
    opt.apply_gradients(params, [np.ones(p.shape) for p in params])
    assert opt.get_state().keys() == opt.get_state(params).keys()
    fresh = RMSProp(0.01)
    with pytest.raises(ValueError, match="names variable 0, but there are 0 variables"):
        fresh.set_state(opt.get_state())


def _adam_state() -> tuple[list[Variable], dict[str, np.ndarray]]:
    rng = np.random.default_rng(3)
    params = _params(rng)
    opt = Adam(0.01)
    opt.apply_gradients(params, [np.ones(p.shape) for p in params])
    return params, opt.get_state(params)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update({"class": np.array("RMSProp")}), "state of a RMSProp, not of a Adam"),
        (
            lambda s: s.update({"config/beta_1": np.array(0.8)}),
            "beta_1 is 0.8 in the state but 0.9",
        ),
        (lambda s: s.pop("iterations"), r"missing entries \['iterations'\]"),
        (lambda s: s.update({"learning_rate": np.array(-1.0)}), "learning_rate must be a positive"),
        (lambda s: s.update({"iterations": np.array(1.5)}), "iterations must be a non-negative"),
        (
            lambda s: s.update({"slots/m/0": np.zeros((3, 4), np.float32)}),
            r"expected shape \(4, 3\)",
        ),
        (lambda s: s.update({"slots/m/0": np.zeros((4, 3))}), "expected dtype float32"),
        (
            lambda s: s.update({"slots/velocity/0": np.zeros((4, 3))}),
            "unexpected entry 'slots/velocity/0'",
        ),
        (lambda s: s.update({"slots/m/2": np.zeros((4, 3))}), "names variable 2, but there are 2"),
    ],
)
def test_mismatched_optimizer_state_is_refused_and_changes_nothing(edit, message):
    params, state = _adam_state()
    edit(state)
    opt = Adam(0.01)
    opt.apply_gradients(params, [np.full(p.shape, 2.0) for p in params])
    opt.learning_rate = 0.5
    before = opt.get_state(params)
    with pytest.raises(ValueError, match=message):
        opt.set_state(state, params)
    after = opt.get_state(params)
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_set_state_replaces_slots_absent_from_the_state():
    params, state = _adam_state()
    opt = Adam(0.01)
    for _ in range(4):
        opt.apply_gradients(params, [np.full(p.shape, 2.0) for p in params])
    state = {k: v for k, v in state.items() if not k.endswith("/1")}  # no slots for b
    opt.set_state(state, params)
    assert opt.t == 1
    assert id(params[1]) not in opt.m
    assert np.array_equal(opt.m[id(params[0])], state["slots/m/0"])


def test_sgd_momentum_matches_the_keras_update_by_hand():
    """velocity = momentum * velocity - lr * g; w += velocity (nesterov: w += m * v - lr * g)."""
    for nesterov in (False, True):
        w = Variable(np.array([1.0]))
        opt = SGD(0.1, momentum=0.9, nesterov=nesterov)
        v, expected = 0.0, 1.0
        for g in (2.0, -1.0, 0.5):
            opt.apply_gradients([w], [np.array([g])])
            v = 0.9 * v - 0.1 * g
            expected += 0.9 * v - 0.1 * g if nesterov else v
            assert w[0] == pytest.approx(expected, rel=1e-14)
    plain, basic = Variable(np.array([1.0])), Variable(np.array([1.0]))
    SGD(0.1).apply_gradients([plain], [np.array([3.0])])
    BasicOptimizer(0.1).apply_gradients([basic], [np.array([3.0])])
    assert plain[0] == basic[0]


def test_sgd_refuses_an_overflowing_step_and_changes_nothing():
    w = Variable(np.array([1.0, 2.0], dtype=np.float32))
    opt = SGD(1e30, momentum=0.9)
    opt.apply_gradients([w], [np.array([1e-30, 0.0], dtype=np.float32)])
    velocity, weights = np.array(opt.velocity[id(w)]), np.array(w)
    with pytest.raises(FloatingPointError, match="not finite"):
        opt.apply_gradients([w], [np.array([1e30, 0.0], dtype=np.float32)])
    assert np.array_equal(w, weights)
    assert np.array_equal(opt.velocity[id(w)], velocity)
    assert opt.iterations == 1


@pytest.mark.parametrize("bad", [-0.1, 1.0, "x"])
def test_sgd_momentum_must_be_in_unit_interval(bad):
    with pytest.raises((ValueError, TypeError), match="momentum"):
        SGD(0.1, momentum=bad)


# ------------------------------------------------------------------ callbacks
class _Model:
    def __init__(self) -> None:
        self.weights = [Variable(np.arange(4.0).reshape(2, 2))]
        self.stop_training = False


def test_early_stopping_state_round_trip_continues_the_same_way():
    model = _Model()
    a = EarlyStopping("loss", patience=2, restore_best_weights=True)
    a.set_model(model)
    a.on_train_begin()
    for epoch, loss in enumerate([1.0, 0.5, 0.7]):
        a.on_epoch_end(epoch, {"loss": loss})
    b = EarlyStopping("loss", patience=2, restore_best_weights=True)
    b.set_model(model)
    b.on_train_begin()
    b.set_state(_npz_round_trip(a.get_state()))
    assert (b.best, b.wait, b.stopped_epoch) == (0.5, 1, None)
    assert b.best_weights is not None
    assert np.array_equal(b.best_weights[0], a.best_weights[0])
    for cb in (a, b):
        cb.on_epoch_end(3, {"loss": 0.9})
        cb.on_epoch_end(4, {"loss": 0.9})
    assert a.stopped_epoch == b.stopped_epoch == 4


def test_reduce_lr_and_checkpoint_and_history_states_round_trip():
    plateau = ReduceLROnPlateau("val_loss", patience=3)
    plateau.best, plateau.wait = 0.25, 2
    twin = ReduceLROnPlateau("val_loss", patience=3)
    twin.set_state(_npz_round_trip(plateau.get_state()))
    assert (twin.best, twin.wait) == (0.25, 2)

    checkpoint = ModelCheckpoint("w.npz", monitor="val_acc", save_best_only=True)
    checkpoint.best, checkpoint.last_saved_epoch = 0.75, 4
    twin_cp = ModelCheckpoint("w.npz", monitor="val_acc", save_best_only=True)
    twin_cp.set_state(_npz_round_trip(checkpoint.get_state()))
    assert (twin_cp.best, twin_cp.last_saved_epoch) == (0.75, 4)

    history = History()
    history.on_epoch_end(0, {"loss": 1.0 / 3.0, "acc": 0.5})
    history.on_epoch_end(1, {"loss": 0.1, "acc": 0.75})
    twin_h = History()
    twin_h.set_state(_npz_round_trip(history.get_state()))
    assert twin_h.history == history.history
    assert list(twin_h.history) == ["loss", "acc"]  # the order too
    assert twin_h.epoch == [0, 1]
    empty = History()
    empty.set_state(_npz_round_trip(History().get_state()))
    assert (empty.history, empty.epoch) == ({}, [])


def test_fresh_callback_states_hold_infinities_exactly():
    state = _npz_round_trip(EarlyStopping("val_acc").get_state())
    assert float(state["best"]) == -math.inf
    assert int(state["stopped_epoch"]) == -1


@pytest.mark.parametrize(
    ("callback", "state", "message"),
    [
        (
            lambda: ReduceLROnPlateau("val_loss"),
            {"monitor": np.array("loss"), "best": np.array(1.0), "wait": np.array(0)},
            "monitor is 'loss' in the state but 'val_loss' here",
        ),
        (
            lambda: ReduceLROnPlateau("val_loss"),
            {"monitor": np.array("val_loss"), "best": np.array(1.0)},
            "missing entry 'wait'",
        ),
        (
            lambda: ReduceLROnPlateau("val_loss"),
            {"monitor": np.array("val_loss"), "best": np.array(1.0), "wait": np.array([1, 2])},
            "'wait' must be a scalar",
        ),
        (
            lambda: History(),
            {
                "keys": np.array(["loss"]),
                "epoch": np.array([0, 1]),
                "history/loss": np.array([1.0]),
            },
            "history/loss has 1 values for 2 epochs",
        ),
        (lambda: Callback(), {"x": np.array(1)}, r"unexpected entries \['x'\]"),
    ],
)
def test_mismatched_callback_state_is_refused_and_changes_nothing(callback, state, message):
    cb = callback()
    before = {k: np.array(v) for k, v in cb.get_state().items()}
    with pytest.raises(ValueError, match=message):
        cb.set_state(state)
    after = cb.get_state()
    assert before.keys() == after.keys()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_early_stopping_best_weights_must_fit_the_model():
    model = _Model()
    cb = EarlyStopping("loss", restore_best_weights=True)
    cb.set_model(model)
    state = cb.get_state()
    state["best_weights/0"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"best_weights/0: expected float64 \(2, 2\)"):
        cb.set_state(state)
    assert cb.best_weights is None


# ------------------------------------------------------------------ generators
@pytest.mark.parametrize(
    "bit_generator",
    [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox, np.random.SFC64],
)
def test_generator_state_through_npz_replays_the_same_draws(bit_generator):
    gen = np.random.Generator(bit_generator(123))
    gen.random(5)
    gen.integers(0, 10, 3)  # leaves a buffered 32-bit half in some generators
    state = _npz_round_trip(runstate.generator_state(gen))
    assert all(v.dtype.kind in "Uu" for v in state.values())
    twin = np.random.Generator(bit_generator(999))
    runstate.set_generator_state(twin, state)
    assert np.array_equal(gen.random(7), twin.random(7))
    assert np.array_equal(gen.integers(0, 2**40, 5), twin.integers(0, 2**40, 5))


def test_a_128_bit_state_is_stored_in_64_bit_words():
    gen = np.random.default_rng(2**100 + 7)
    state = runstate.generator_state(gen, "rng/")
    words = state["rng/state/state#int"]
    assert words.dtype == np.uint64
    value = sum(int(w) << (64 * i) for i, w in enumerate(words))
    assert value == gen.bit_generator.state["state"]["state"]


def test_generator_state_of_another_kind_is_refused_and_changes_nothing():
    gen = np.random.default_rng(1)
    before = gen.bit_generator.state
    with pytest.raises(ValueError, match="is a PCG64 generator, the state is of a 'MT19937'"):
        runstate.set_generator_state(
            gen, runstate.generator_state(np.random.Generator(np.random.MT19937(2)))
        )
    broken = runstate.generator_state(np.random.default_rng(2))
    del broken["state/inc#int"]
    with pytest.raises(ValueError, match="not a valid PCG64 state"):
        runstate.set_generator_state(gen, broken)
    assert gen.bit_generator.state == before
