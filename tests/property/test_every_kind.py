"""Every kind of Diffable: the checker passes the correct toys and catches the wrong ones.

Several outputs, stochastic with a training flag, batch-coupled without local Jacobian,
a max with ties (``toy_diffables``); the library's kink conventions by default; the
public, pytest-friendly failure.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import beras
from beras.testing import (
    GradientCheckError,
    GradientCheckResult,
    check_gradients,
    sample_case,
)
from beras.testing.strategies import budget, cases

from .toy_diffables import (
    KINDS,
    WINDOW_MAX,
    NoisyDrop,
    RowMax,
    RowMaxAllTied,
    domain_of,
    row_ties,
)
from .wrong_diffables import SignFlipLocalDense

CASES = 6  # random cases per class


def _results(cls: type, options: dict, dtype=np.float64) -> list[GradientCheckResult]:
    domain = domain_of(cls, options)
    return [
        sample_case(domain, seed, dtype=dtype).check(raise_on_failure=False)
        for seed in range(CASES)
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_correct_toy_passes(kind: str, dtype) -> None:
    cls, options, _ = KINDS[kind]
    for result in _results(cls, options, dtype):
        assert result.status == "pass", result.report()


@pytest.mark.parametrize(
    "wrong",
    [(kind, w) for kind in sorted(KINDS) for w in KINDS[kind][2]],
    ids=lambda p: p[1].__name__,
)
def test_wrong_toy_is_caught(wrong: tuple) -> None:
    kind, cls = wrong
    statuses = [r.status for r in _results(cls, KINDS[kind][1])]
    assert statuses == ["fail"] * CASES, statuses


def test_no_local_jacobian_is_checked_by_its_vjps_against_numbers() -> None:
    _, options, (per_sample, uncentred) = KINDS["batch-coupled, no local Jacobian"]
    result = _results(per_sample, options)[0]
    assert {"vjp", "tape"} <= result.failed_views(), result.report()
    assert "local" not in result.checked
    result = _results(uncentred, options)[0]
    assert "vjp" in result.failed_views()
    assert any(f.target == "weight 0 'g'" for f in result.failures)


def test_no_local_jacobian_must_raise_the_documented_error() -> None:
    from .toy_diffables import Centre

    class Pretends(Centre):
        def get_input_gradients(self) -> list:
            return [np.ones(1)]

    x = np.random.default_rng(0).normal(size=(3, 2))
    result = check_gradients(Pretends(2, np.random.default_rng(0)), x, raise_on_failure=False)
    assert any("should raise NoLocalJacobianError" in f.summary for f in result.failures)


def test_several_outputs_each_get_their_own_upstream() -> None:
    _, options, (first_only, _) = KINDS["several outputs"]
    result = _results(first_only, options)[0]
    wheres = {f.where for f in result.failures if f.view == "vjp"}
    assert "random direction 0 on output 1 only" in wheres, result.report()
    assert "random direction 0 on output 0 only" not in wheres  # output 0 alone is right


def test_stochastic_training_layer_both_modes_and_nothing_changes() -> None:
    layer = NoisyDrop(4, np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(3, 4))
    state = layer.rng.bit_generator.state
    calls, s = np.array(layer.calls), np.array(layer.s)
    result = check_gradients(layer, x)
    assert {"weight 0 's' (training=True)", "weight 0 's' (training=False)"} <= set(result.mode)
    assert layer.rng.bit_generator.state == state  # the generator is where it was
    np.testing.assert_array_equal(layer.calls, calls)  # the training calls were undone
    np.testing.assert_array_equal(layer.s, s)
    only = check_gradients(layer, x, training=True)
    assert {k.split(" (")[1] for k in only.mode} == {"training=True)"}


def test_randomness_is_what_makes_the_redrawing_gradient_wrong() -> None:
    """The bug shows only in training mode, where the noise is."""
    _, options, (redraws, _) = KINDS["stochastic, training flag"]
    result = _results(redraws, options)[0]
    assert result.failures
    assert all("training=True" in f.where + f.target for f in result.failures), result.report()


def test_ties_are_kinks_a_tie_detector_resolves() -> None:
    """Handing the gradient to every tied maximum passes entry by entry (each one-sided
    interval is [0, 1]); moving the tied entries together exposes it."""
    x = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.0]])
    assert check_gradients(RowMax(), x, ties=row_ties).status == "pass"
    assert check_gradients(RowMaxAllTied(), x, ties=False, raise_on_failure=False).status == "pass"
    result = check_gradients(RowMaxAllTied(), x, ties=row_ties, raise_on_failure=False)
    assert result.status == "fail"
    assert any("declared ties" in f.where for f in result.failures)
    assert "tied x[0, 1], x[0, 2] moved together" in result.report()


def test_strategies_draw_ties_for_a_domain_that_declares_them() -> None:
    _, options, _ = KINDS["max with ties"]
    domain = domain_of(RowMax, options)
    repeated = [
        np.unique(c.inputs[0]).size < c.inputs[0].size
        for c in (sample_case(domain, seed) for seed in range(10))
    ]
    assert sum(repeated) >= 5


@settings(max_examples=budget(30))
@given(data=st.data())
def test_a_registered_max_pool_like_domain(data: st.DataObject) -> None:
    """Constructor parameters drawn per case, a ``where`` constraint, declared ties and
    inputs with repeated values: what a max-pool's domain needs, through ``cases``."""
    case = data.draw(cases(WINDOW_MAX), label="case")
    assert case.dims["n"] % case.dims["pool"] == 0
    assert case.diffable.pool == case.dims["pool"]
    case.check(inconclusive="raise")


@settings(max_examples=budget(20))
@given(case=cases(domain_of(NoisyDrop, KINDS["stochastic, training flag"][1])))
def test_a_stochastic_training_domain_needs_nothing_more(case) -> None:
    """Stochastic and training-mode layers are handled by the checker itself."""
    result = case.check(inconclusive="raise")
    assert any("training=True" in k for k in result.mode)


# ------------------------------------------------------------------ conventions by default
def test_leaky_relu_kink_convention_applies_by_default() -> None:
    x = np.array([[0.0, -1.5, 2.0], [0.0, 1.0, -0.0]])
    result = check_gradients(beras.activations.LeakyReLU(0.3), x)
    assert result.status == "pass"
    used = {(c.view, c.target) for c in result.conventions}
    assert ("local", "input 0 'x'") in used
    local = next(c for c in result.conventions if c.view == "local")
    assert local.convention.values == (0.0,)
    assert "course handout" in local.convention.description
    assert "d out[0, 0] / d x[0, 0]" in local.entries
    assert "accepted by a documented kink convention" in result.report()
    refused = check_gradients(
        beras.activations.LeakyReLU(0.3), x, kink_values=(), raise_on_failure=False
    )
    assert refused.status == "fail"  # without the convention, 0 is outside [0.3, 1]


@pytest.mark.parametrize("wrong", [0.15, 2.5, -0.3])
def test_a_wrong_value_at_the_kink_still_fails(wrong: float) -> None:
    """Outside [alpha, 1] and not the convention's 0: 0.15 lies between them, and fails too."""
    layer = beras.activations.LeakyReLU(0.3)
    original = type(layer).get_input_gradients

    def at_kink(self) -> list:
        g = np.array(original(self)[0])
        g[np.asarray(self.inputs[0]) == 0] = wrong
        return [g]

    layer.get_input_gradients = at_kink.__get__(layer)
    x = np.array([[0.0, -1.5, 2.0]])
    result = check_gradients(layer, x, raise_on_failure=False)
    assert "local" in result.failed_views(), result.report()
    assert "x[0, 0]" in result.report()


# ------------------------------------------------------------------ public failures
def test_public_failure_and_one_line_pass() -> None:
    assert GradientCheckError.__module__ == "beras.testing"
    assert GradientCheckResult.__module__ == "beras.testing"
    passed = check_gradients(beras.Sigmoid(), np.ones((2, 3)))
    assert len(str(passed).splitlines()) == 1
    assert "pass" in str(passed)
    layer = SignFlipLocalDense(3, 2, seed=0)
    with pytest.raises(GradientCheckError) as info:
        check_gradients(layer, np.random.default_rng(0).normal(size=(4, 3)))
    message = str(info.value)
    assert "ranked by error / tolerance" in message
    assert "random direction 0" in message
    assert "functional" not in message
    # its VJP is the stencil's composition of the wrong local Jacobian: said plainly
    assert "the VJP view passed because the VJP agrees with the local Jacobian" in message


def test_checker_frames_are_hidden_from_pytest() -> None:
    from beras.testing import _check, _result

    assert _check.check_gradients.__code__.co_varnames[0] == "diffable"
    for fn in (_check.check_gradients, _check.finish, _result.GradientCheckResult.raise_for_status):
        assert "__tracebackhide__" in fn.__code__.co_varnames


def test_lazily_built_weights_are_seen_and_restored() -> None:
    """A layer that creates its weights on the first call (build(input_shape)) is built
    first, so its moving statistics are restored after training-mode evaluations."""
    layer = beras.layers.BatchNormalization()
    x = np.random.default_rng(0).normal(size=(4, 3))
    result = check_gradients(layer, x)
    assert "weight 2 'moving_mean' (training=True)" in result.mode
    np.testing.assert_array_equal(layer.moving_mean, np.zeros(3))
    np.testing.assert_array_equal(layer.moving_variance, np.ones(3))
