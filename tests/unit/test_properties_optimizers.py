"""Properties of the optimizers' construction, validation and arithmetic.

* The documented defaults are the values an optimizer actually uses.
* Every hyperparameter is validated on its documented range (``learning_rate`` and
  ``epsilon`` positive and finite, the betas in ``[0, 1)``), and a bad value (or one that is
  no number) is an error naming the optimizer, the hyperparameter and the value given.
* ``optimizers.get`` passes the learning rate and every keyword on, for every name.
* A parameter is updated in its own dtype's arithmetic: float64 gradients for a float32
  parameter give bit for bit the update of their float32 cast.
* State belongs to a parameter object, not to a memory address: a new parameter starts
  from fresh state even when Python gives it the id of a parameter that no longer exists.
"""

from __future__ import annotations

import gc
import re
import warnings

import numpy as np
import pytest

from beras import optimizers
from beras.core import Variable
from beras.optimizers import SGD, Adam, BasicOptimizer, RMSProp


def _names(message: str, *facts: str) -> None:
    """Each fact appears in the message as a whole word (case-sensitive)."""
    for fact in facts:
        assert re.search(rf"(?<!\w){re.escape(fact)}(?!\w)", message), (fact, message)


def test_documented_defaults_are_used():
    adam = Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (
        0.001,
        0.9,
        0.999,
        1e-7,
    )
    assert adam.amsgrad is False
    rms = RMSProp(0.01)
    assert (rms.learning_rate, rms.beta, rms.epsilon) == (0.01, 0.9, 1e-6)
    sgd = SGD()
    assert (sgd.learning_rate, sgd.momentum, sgd.nesterov) == (0.01, 0.0, False)


HYPERPARAMETERS = [
    (SGD, "momentum", "unit"),
    (RMSProp, "beta", "unit"),
    (RMSProp, "epsilon", "positive"),
    (Adam, "beta_1", "unit"),
    (Adam, "beta_2", "unit"),
    (Adam, "epsilon", "positive"),
]


def _make(cls, **kwargs):
    return cls(0.01, **kwargs)


@pytest.mark.parametrize(("cls", "what", "kind"), HYPERPARAMETERS)
def test_hyperparameter_ranges(cls, what, kind):
    if kind == "unit":
        assert getattr(_make(cls, **{what: 0.0}), what) == 0.0  # [0, 1): 0 is valid
        assert getattr(_make(cls, **{what: 0.999}), what) == 0.999
        bad = [1.0, 1.5, -0.1]
    else:
        assert getattr(_make(cls, **{what: 1e-30}), what) == 1e-30
        bad = [0.0, -1e-8, float("inf"), float("nan")]
    for value in bad:
        with pytest.raises(ValueError) as err:
            _make(cls, **{what: value})
        _names(str(err.value), cls.__name__, what, repr(value))


@pytest.mark.parametrize(("cls", "what", "kind"), HYPERPARAMETERS)
def test_hyperparameter_of_the_wrong_type(cls, what, kind):
    with pytest.raises(TypeError) as err:
        _make(cls, **{what: "small"})
    _names(str(err.value), cls.__name__, what, "'small'")


@pytest.mark.parametrize("cls", [BasicOptimizer, RMSProp, Adam])
def test_learning_rate_errors_name_the_optimizer_and_the_value(cls):
    with pytest.raises(TypeError) as err:
        cls(None)
    _names(str(err.value), cls.__name__, "learning_rate", "None")
    with pytest.raises(ValueError) as err:
        cls(-0.5)
    _names(str(err.value), cls.__name__, "learning_rate", "-0.5")


def test_get_passes_the_learning_rate_and_keywords_on():
    for name, cls in [("sgd", BasicOptimizer), ("rmsprop", RMSProp), ("adam", Adam)]:
        assert type(optimizers.get(name, 0.05)) is cls
        assert optimizers.get(name, 0.05).learning_rate == 0.05
    assert optimizers.get("rmsprop", 0.05, beta=0.5).beta == 0.5
    ams = optimizers.get("amsgrad", 0.05, beta_1=0.5, epsilon=1e-3)
    assert (ams.learning_rate, ams.beta_1, ams.epsilon, ams.amsgrad) == (0.05, 0.5, 1e-3, True)


def test_unknown_name_lists_exactly_the_valid_names():
    with pytest.raises(ValueError) as err:
        optimizers.get("adagrad", 0.1)
    listed = re.search(r"expected one of (\[.*\])", str(err.value)).group(1)
    assert listed == repr(["adam", "amsgrad", "rmsprop", "sgd"])
    assert listed == repr(sorted(optimizers.OPTIMIZERS))  # the one table
    assert type(optimizers.get("basic", 0.1)) is BasicOptimizer  # the course's alias


@pytest.mark.parametrize("make", [lambda: BasicOptimizer(0.1), lambda: RMSProp(0.1), Adam])
def test_float32_parameters_update_in_float32_arithmetic(make):
    rng = np.random.default_rng(0)
    g64 = rng.normal(size=(50,)) * 3
    start = rng.normal(size=(50,)).astype(np.float32)
    a, b = Variable(start.copy()), Variable(start.copy())
    opt_a, opt_b = make(), make()
    for _ in range(3):
        opt_a.apply_gradients([a], [g64])
        opt_b.apply_gradients([b], [g64.astype(np.float32)])
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_a_new_parameter_starts_from_fresh_state_even_at_a_recycled_id():
    """RMSProp's first step on a fresh parameter is ``lr * g / (sqrt((1 - beta) g^2) + eps)``;
    parameters created and dropped one after another (as a model rebuilt in a loop) often
    land at a recycled address."""
    opt = RMSProp(0.1)
    g = np.full(4, 2.0)
    fresh = 0.1 * 2.0 / (np.sqrt(0.1 * 4.0) + 1e-6)
    for _ in range(20):
        p = Variable(np.zeros(4))
        opt.apply_gradients([p], [g])
        np.testing.assert_allclose(p, -fresh, rtol=1e-12)
        del p
        gc.collect()


def test_read_only_parameter_is_an_error_naming_it():
    p = Variable(np.ones(2))
    q = Variable(np.ones(2))
    q.flags.writeable = False
    with pytest.raises(ValueError) as err:
        Adam(0.1).apply_gradients([p, q], [np.ones(2), np.ones(2)])
    _names(str(err.value), "Adam.apply_gradients", "parameter 1", "read-only")
    np.testing.assert_array_equal(p, [1.0, 1.0])  # nothing updated


def test_non_float_parameter_error_names_its_type_and_index():
    with pytest.raises(TypeError) as err:
        RMSProp(0.1).apply_gradients([Variable(np.ones(2)), [1.0, 2.0]], [np.ones(2)] * 2)
    _names(str(err.value), "RMSProp.apply_gradients", "list", "index 1")


@pytest.mark.parametrize("cls", [BasicOptimizer, SGD])
def test_an_overflowing_step_is_one_clear_error_not_a_numpy_warning(cls):
    p = Variable(np.ones(3, dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(FloatingPointError, match="no parameter was updated"):
            cls(1e6).apply_gradients([p], [np.full(3, 1e33, np.float32)])
    np.testing.assert_array_equal(p, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_sgd_updates_every_parameter(momentum):
    params = [Variable(np.ones(2)), Variable(np.ones(3))]
    SGD(0.5, momentum=momentum).apply_gradients(params, [np.ones(2), np.full(3, 2.0)])
    np.testing.assert_allclose(params[0], [0.5, 0.5])
    np.testing.assert_allclose(params[1], [0.0, 0.0, 0.0])


# ----------------------------------------------------------------------------- state
def _stepped(opt):
    params = [Variable(np.ones(2)), Variable(np.ones((2, 3)))]
    opt.apply_gradients(params, [np.full(2, 0.5), np.full((2, 3), -0.25)])
    return params


@pytest.mark.parametrize(
    ("opt", "slots", "config"),
    [
        (SGD(0.1), [], ["momentum", "nesterov"]),
        (SGD(0.1, momentum=0.9), ["velocity"], ["momentum", "nesterov"]),
        (RMSProp(0.1), ["v"], ["beta", "epsilon"]),
        (Adam(0.1), ["m", "v"], ["beta_1", "beta_2", "epsilon", "amsgrad"]),
    ],
    ids=["sgd", "sgd-momentum", "rmsprop", "adam"],
)
def test_state_entries_are_named_as_documented(opt, slots, config):
    params = _stepped(opt)
    keys = set(opt.get_state(params))
    assert {k.split("/")[1] for k in keys if k.startswith("config/")} == set(config)
    assert {k for k in keys if k.startswith("slots/")} == {
        f"slots/{slot}/{i}" for slot in slots for i in range(len(params))
    }


def test_a_fresh_optimizers_state_round_trips():
    fresh, other = Adam(0.1), Adam(0.1)
    params = [Variable(np.ones(2))]
    state = fresh.get_state(params)
    assert int(state["iterations"]) == 0
    other.set_state(state, params)  # iterations 0 is valid
    assert other.iterations == 0


def _state(opt=None):
    opt = opt or Adam(0.1)
    params = _stepped(opt)
    return opt, params, {k: np.array(v) for k, v in opt.get_state(params).items()}


@pytest.mark.parametrize(
    ("entry", "value"),
    [
        ("learning_rate", np.float64(0.0)),
        ("learning_rate", np.float64(-0.1)),
        ("learning_rate", np.float64(np.inf)),
        ("learning_rate", np.array([0.1])),  # not a scalar
        ("learning_rate", np.int64(1)),  # not a float
        ("iterations", np.int64(-1)),
        ("iterations", np.float64(2.0)),  # not an integer type
        ("iterations", np.array([2])),
    ],
)
def test_set_state_refuses_a_bad_scalar_and_changes_nothing(entry, value):
    opt, params, state = _state()
    before = opt.get_state(params)
    state[entry] = np.asarray(value)
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    _names(str(err.value), "Adam.set_state", entry, "nothing was changed")
    after = opt.get_state(params)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_set_state_lists_every_problem_in_one_message():
    opt, params, state = _state()
    state["a_stray_entry"] = np.zeros(1)  # sorts before the slots
    state["slots/m/7"] = np.zeros(2)  # names a variable that does not exist
    state["slots/v/0"] = np.zeros(5)  # a wrong shape, after both
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    message = str(err.value)
    assert message.startswith("Adam.set_state: the state does not fit this optimizer (nothing ")
    problems = message.split("(nothing was changed): ")[1].split("; ")
    assert len(problems) == 3, message
    _names(problems[0], "unexpected entry 'a_stray_entry'")
    _names(problems[1], "'slots/m/7' names variable 7")
    _names(problems[2], "slots/v/0: expected shape (2,)")


def test_set_state_needs_a_mapping_and_says_what_came():
    with pytest.raises(TypeError) as err:
        Adam(0.1).set_state([1, 2], [Variable(np.ones(2))])
    _names(str(err.value), "Adam.set_state", "got list")


def test_set_state_keeps_its_own_copy_of_the_arrays():
    opt, params, state = _state()
    opt.set_state(state, params)
    expected = {k: v.copy() for k, v in opt.get_state(params).items()}
    for value in state.values():  # the caller reuses its arrays
        if value.dtype.kind == "f" and value.ndim:
            value[...] = 123.0
    after = opt.get_state(params)
    assert all(np.array_equal(expected[k], after[k]) for k in expected)


@pytest.mark.parametrize("key", ["slots", "slots/m", "slots/m/0/extra", "config", "m/0/x"])
def test_set_state_refuses_a_key_that_is_not_a_slot_of_one_variable(key):
    opt, params, state = _state()
    state[key] = np.zeros(2)
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    _names(str(err.value), f"unexpected entry {key!r}", "(slots here: ['m', 'v'])")


def test_set_state_refuses_a_slot_this_configuration_does_not_have():
    """SGD without momentum keeps no velocity: a velocity slot in its state is an error."""
    opt, params, state = _state(SGD(0.1))
    state["slots/velocity/0"] = np.zeros(2)
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    _names(str(err.value), "unexpected entry 'slots/velocity/0'", "(slots here: [])")


def test_set_state_names_a_mismatched_setting_and_both_values():
    opt, params, state = _state()
    state["config/beta_1"] = np.array(0.5)
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    assert str(err.value).endswith("(nothing was changed): beta_1 is 0.5 in the state but 0.9 here")


def test_set_state_names_a_slot_of_the_wrong_dtype():
    opt, params, state = _state()
    state["slots/m/0"] = state["slots/m/0"].astype(np.float32)
    with pytest.raises(ValueError) as err:
        opt.set_state(state, params)
    assert str(err.value).endswith(
        "(nothing was changed): slots/m/0: expected dtype float64, the state has float32"
    )


def test_set_state_restores_a_large_step_count_exactly():
    """Counts past 2**53 would lose their last bits through a float."""
    opt, params, state = _state()
    state["iterations"] = np.array(2**60 + 1, dtype=np.int64)
    opt.set_state(state, params)
    assert opt.iterations == 2**60 + 1
    assert isinstance(opt.iterations, int)
    assert isinstance(opt.learning_rate, float)


def test_a_partial_state_restores_what_it_has_and_reports_only_that():
    """Adam restored from its first moment alone: ``get_state`` then lists m but no v."""
    _opt, params, state = _state()
    partial = {k: v for k, v in state.items() if not k.startswith("slots/v/")}
    fresh = Adam(0.1)
    fresh.set_state(partial, params)
    again = fresh.get_state(params)
    assert {k for k in again if k.startswith("slots/")} == {"slots/m/0", "slots/m/1"}
    np.testing.assert_array_equal(again["slots/m/1"], state["slots/m/1"])


def test_set_state_accepts_a_learning_rate_of_any_float_type():
    opt, params, state = _state()
    state["learning_rate"] = np.float32(0.25)
    opt.set_state(state, params)
    assert opt.learning_rate == 0.25
    assert isinstance(opt.learning_rate, float)
