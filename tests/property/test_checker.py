"""Self-test of the checker: wrong Diffables are reported, correct ones pass.

Also demonstrates, point by point, what other gradient checkers miss: a sign flip in one
of 8,192 entries; a float32 layer (checked through its float64 evaluation, without
warnings); a 0.1 % error in one entry of a 784x256 weight gradient; zero derivatives;
the tape; the worst entries named in the failure message.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import beras
from beras.core import Diffable, Tensor
from beras.testing import (
    GradientCheckError,
    check_gradients,
    domains,
    numerical_jacobian,
    sample_case,
)

from .wrong_diffables import BUGS, ScaledEntryDense, SignFlipDense, SignFlipLocalDense

TRIALS = 12  # random cases per bug; detection must be 12/12


def _cases(domain, trials: int = TRIALS, dtype=np.float64):
    for seed in range(trials):
        case = sample_case(domain, seed, dtype=dtype)
        if domain.kinks:  # make sure a kink is present
            case.inputs[0].flat[seed % case.inputs[0].size] = domain.kinks[0]
        yield case


@pytest.mark.parametrize("bug", sorted(BUGS), ids=str)
def test_every_wrong_diffable_is_reported(bug: str) -> None:
    domain = BUGS[bug]
    caught = [case.check(raise_on_failure=False).status == "fail" for case in _cases(domain)]
    assert all(caught), f"{bug}: detected in {sum(caught)}/{len(caught)} random cases"


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("domain", domains(), ids=lambda d: d.name)
def test_correct_diffables_pass(domain, dtype) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either, float32 included
        for case in _cases(domain, trials=3, dtype=dtype):
            assert case.check(raise_on_failure=False, inconclusive="ignore").status == "pass"


def test_failure_names_view_variable_and_worst_entries() -> None:
    layer = SignFlipDense(5, 3, seed=0)
    layer.entry = (3, 1)
    x = np.random.default_rng(0).normal(size=(4, 5))
    with pytest.raises(AssertionError) as info:
        check_gradients(layer, x)
    message = str(info.value)
    assert "[vjp] weight 0 'w'" in message
    assert "w[3, 1]" in message
    assert "analytic" in message
    assert "numeric" in message
    assert "rel err" in message
    assert "tolerance" in message
    assert isinstance(info.value, GradientCheckError)
    assert len(message.splitlines()) < 60  # the worst few entries, never whole Jacobians
    result = check_gradients(layer, x, raise_on_failure=False)
    assert result.status == "fail"
    assert result.evaluations > 0
    worst = result.failures[0].worst[0]
    assert worst.index == "w[3, 1]"
    assert np.isclose(worst.analytic, -worst.numeric)


def test_sign_flip_in_one_of_8192_entries() -> None:
    """torch's fast gradcheck misses this; here views (a)/(c) and (b) each catch it."""
    x = np.random.default_rng(1).normal(size=(3, 128)).astype(np.float32)
    for cls, views in ((SignFlipDense, {"vjp", "tape"}), (SignFlipLocalDense, {"local", "tape"})):
        layer = cls(128, 64, seed=1)
        layer.entry = (77, 13)
        result = check_gradients(layer, x, raise_on_failure=False)
        assert result.mode["weight 0 'w'"] == "projection"
        assert views <= result.failed_views(), result.report()
        assert "w[77, 13]" in result.report()  # named: exactly (VJP) or by bisection (local)


def test_float32_layer_checked_without_warnings() -> None:
    """torch warns on float32 input; here a float32 layer is checked via its float64 twin."""
    layer = beras.Dense(6, 4, seed=2)
    assert layer.w.dtype == np.float32
    x = np.random.default_rng(2).normal(size=(3, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = check_gradients(layer, x)
    assert result.status == "pass"
    assert layer.w.dtype == np.float32  # the layer itself is untouched


@pytest.mark.parametrize("where", ["vjp", "local"])
def test_one_entry_off_by_0_1_percent_in_784x256(where: str) -> None:
    """JAX's check_grads scales tolerances with the array size and misses this."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 784)).astype(np.float32)
    for trial in range(2):
        entry = (int(rng.integers(784)), int(rng.integers(256)))
        layer = (ScaledEntryDense if where == "vjp" else SignFlipLocalDense)(784, 256, seed=trial)
        layer.entry, layer.factor = entry, 1.001
        result = check_gradients(layer, x, raise_on_failure=False, seed=trial)
        expected = {"vjp", "tape"} if where == "vjp" else {"local", "tape"}
        assert expected <= result.failed_views(), result.report()


def test_zero_derivatives() -> None:
    """scipy.differentiate fails to converge on zero derivatives; here they are just checked."""
    relu = beras.ReLU()
    x = -np.abs(np.random.default_rng(4).normal(size=(3, 4))) - 0.1
    assert check_gradients(relu, x).status == "pass"  # every derivative is exactly zero
    (jac,) = numerical_jacobian(lambda v: np.maximum(v, 0), x)
    assert np.all(jac.value == 0)
    assert np.all(np.isfinite(jac.error))
    assert jac.reliable.all()

    class LeakyWhereFlat(beras.ReLU):
        def get_input_gradients(self) -> list:
            return [Tensor(np.full(np.shape(self.inputs[0]), 1e-6))]

        def compose_input_gradients(self, J=None) -> list:
            return (
                self.get_input_gradients() if J is None else [self.get_input_gradients()[0] * J[0]]
            )

    result = check_gradients(LeakyWhereFlat(), x, raise_on_failure=False)
    assert {"local", "tape"} <= result.failed_views()


class _Block(Diffable):
    """A composite layer that calls an inner Dense during forward, and *also* backprops
    through it itself: on a tape the inner call is recorded too, so the gradient doubles.
    Its local Jacobians and VJPs are right; only the tape view can see the bug."""

    def __init__(self) -> None:
        self.inner = beras.Dense(3, 2, seed=5)

    @property
    def weights(self) -> list:
        return self.inner.weights

    def forward(self, x):
        return self.inner(x)

    def get_input_gradients(self) -> list:
        return [Tensor(self.inner.w)]

    def get_weight_gradients(self) -> list:
        x = np.asarray(self.inputs[0], dtype=self.inner.w.dtype)
        return [Tensor(x[:, :, None].copy()), Tensor(np.ones_like(self.inner.b))]


def test_the_tape_is_checked() -> None:
    x = np.random.default_rng(5).normal(size=(4, 3))
    result = check_gradients(_Block(), x, raise_on_failure=False)
    assert result.failed_views() == {"tape"}, result.report()


class _Step(beras.activations.Activation):
    """A unit step: its jump at 0 is not a kink, and no finite difference resolves it."""

    def forward(self, x):
        return (np.asarray(x) >= 0).astype(np.float64)

    def get_input_gradients(self) -> list:
        return [Tensor(np.zeros(np.shape(self.inputs[0])))]


def test_inconclusive_is_reported_not_passed() -> None:
    x = np.array([[0.0, 1.0, -1.0]])
    result = check_gradients(_Step(), x, raise_on_failure=False)
    assert result.status == "inconclusive", result.report()
    assert "x[0, 0]" in result.report()
    assert "could not be judged" in result.report()
    with pytest.warns(beras.testing.InconclusiveGradientCheck):
        check_gradients(_Step(), x)
    with pytest.raises(GradientCheckError):
        check_gradients(_Step(), x, inconclusive="raise")
    assert check_gradients(_Step(), np.array([[0.5, -2.0]])).status == "pass"  # away from the jump


# ------------------------------------------------------------------ the stencil's defaults
class StencilDense(beras.Dense):
    """Dense with per-sample ``(B, in, out)`` local weight gradients and the default VJPs."""

    def get_weight_gradients(self) -> list:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        return [
            Tensor(np.repeat(x[:, :, None], self.output_size, axis=2)),
            Tensor(np.ones_like(self.b)),
        ]

    compose_input_gradients = Diffable.compose_input_gradients
    compose_weight_gradients = Diffable.compose_weight_gradients


class StencilSoftmax(beras.Softmax):
    """Softmax composing its batched ``(B, n, n)`` Jacobians by the default rule."""

    compose_input_gradients = Diffable.compose_input_gradients


class StencilConcatenate(beras.layers.Concatenate):
    """Concatenate composing its shared selection matrices by the default rule."""

    compose_input_gradients = Diffable.compose_input_gradients


@pytest.mark.parametrize(
    ("layer", "shapes"),
    [
        (lambda: StencilDense(4, 3, seed=0), [(2, 4)]),
        (lambda: StencilSoftmax(), [(3, 5)]),
        (lambda: StencilConcatenate(), [(2, 3), (2, 1), (2, 4)]),
    ],
    ids=["Dense", "Softmax", "Concatenate"],
)
@pytest.mark.parametrize("seed", range(4))
def test_layers_using_the_default_compositions_pass(layer, shapes, seed) -> None:
    """``Diffable``'s default VJPs (the stencil's rules, batched) are themselves correct."""
    rng = np.random.default_rng(seed)
    check_gradients(layer(), *[rng.normal(size=s) for s in shapes], inconclusive="raise")
