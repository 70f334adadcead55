"""Every Diffable in ``beras``, found automatically, checked in all three views.

Each public Diffable declares its input domain once (``beras.testing._registry``); a
Diffable without one fails ``test_every_public_diffable_has_a_domain``. Edge values are
pinned with ``@example``: LeakyReLU at exactly 0, saturated sigmoid, softmax of +-1000
logits, cross-entropy at probabilities 0 and 1.
"""

from __future__ import annotations

import copy
import gc

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import beras
from beras.testing import domains, library_diffables, unregistered_diffables
from beras.testing._registry import Domain
from beras.testing.strategies import budget, cases, upstream


def _domain(name: str) -> Domain:
    return next(d for d in domains() if d.name == name)


def _case(name: str, *arrays: list) -> object:
    domain = _domain(name)
    arrays_ = [np.asarray(a, dtype=np.float64) for a in arrays]
    dims = {"batch": arrays_[0].shape[0], "n": arrays_[0].shape[-1]}
    return domain.build(dims, arrays_, np.random.default_rng(0))


LEAKY_AT_ZERO = _case("LeakyReLU(0.3)", [[0.0, -1.5, 2.0], [0.0, 0.0, -0.0]])
LEAKY_SMALL_AT_ZERO = _case("LeakyReLU(0.01)", [[0.0, 3.0]])
RELU_AT_ZERO = _case("ReLU", [[0.0, -2.0, 0.5]])
SIGMOID_SATURATED = _case("Sigmoid", [[40.0, -40.0, 800.0, -800.0, 0.0]])
SOFTMAX_HUGE = _case("Softmax", [[1000.0, -1000.0, 0.5], [-1000.0, -1000.0, 1000.0]])
CCE_ZERO_ONE = _case(
    "CategoricalCrossEntropy",
    [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.8, 0.0]],
    [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
)
CCE_LOGITS_HUGE = _case(
    "CategoricalCrossEntropy(from_logits)", [[1000.0, -1000.0, 0.0]], [[0.0, 1.0, 0.0]]
)


def test_every_public_diffable_has_a_domain() -> None:
    missing = unregistered_diffables()
    assert not missing, (
        "public Diffables without a registered input domain (add one with "
        f"beras.testing.register_domain in beras/testing/_registry.py): {[c.__qualname__ for c in missing]}"
    )


def test_discovery_finds_the_library() -> None:
    found = set(library_diffables())
    expected = {
        beras.Dense,
        beras.layers.Add,
        beras.layers.Concatenate,
        beras.LeakyReLU,
        beras.ReLU,
        beras.Sigmoid,
        beras.Softmax,
        beras.MeanSquaredError,
        beras.CategoricalCrossEntropy,
    }
    assert expected <= found
    assert beras.SequentialModel in found  # found, and excluded explicitly (a container)


def test_a_new_public_diffable_without_domain_is_reported() -> None:
    def forward(self, x):
        return np.asarray(x) ** 3

    def get_input_gradients(self):
        return [3 * np.asarray(self.inputs[0]) ** 2]

    # a class defined in a beras module, as a new library activation would be
    cube = type(
        "Cube",
        (beras.activations.Activation,),
        {
            "forward": forward,
            "get_input_gradients": get_input_gradients,
            "__module__": "beras.activations",
        },
    )
    try:
        assert cube in unregistered_diffables()
    finally:
        del cube
        gc.collect()  # drop it from Diffable.__subclasses__()


def _images(domain: Domain) -> bool:
    return any(len(i.shape) == 4 for i in domain.inputs)


# ci budgets keep tests/property under a minute of CPU; `thorough` runs 10x each
@pytest.mark.parametrize("domain", [d for d in domains() if not _images(d)], ids=lambda d: d.name)
@settings(max_examples=budget(64))
@given(data=st.data())
def test_domain_passes_all_views(domain: Domain, data: st.DataObject) -> None:
    case = data.draw(cases(domain), label="case")
    case.check(inconclusive="raise", seed=data.draw(st.integers(0, 2**16), label="seed"))


# Image layers: each case costs ~10x a Dense case (a 4-D input, finite differences for
# every entry); tests/property/test_cnn_layers.py draws more of them and pins their edges.
@pytest.mark.parametrize("domain", [d for d in domains() if _images(d)], ids=lambda d: d.name)
@settings(max_examples=budget(16))
@given(data=st.data())
def test_image_domain_passes_all_views(domain: Domain, data: st.DataObject) -> None:
    case = data.draw(cases(domain), label="case")
    case.check(inconclusive="raise", seed=data.draw(st.integers(0, 2**16), label="seed"))


@settings(max_examples=budget(100))
@given(case=cases())
@example(case=LEAKY_AT_ZERO)
@example(case=LEAKY_SMALL_AT_ZERO)
@example(case=RELU_AT_ZERO)
@example(case=SIGMOID_SATURATED)
@example(case=SOFTMAX_HUGE)
@example(case=CCE_ZERO_ONE)
@example(case=CCE_LOGITS_HUGE)
def test_any_diffable_and_edge_values(case: object) -> None:
    case.check(inconclusive="raise")


@pytest.mark.parametrize("case", [LEAKY_AT_ZERO, RELU_AT_ZERO, CCE_ZERO_ONE], ids=repr)
def test_edge_values_are_kinks_not_passes_by_luck(case: object) -> None:
    """The pinned kinks are judged as kinks: an analytic value outside the one-sided interval fails."""
    case = copy.deepcopy(case)  # the module-level cases are shared with @example
    result = case.check(raise_on_failure=False)
    assert result.status == "pass"
    layer = case.diffable
    original = type(layer).get_input_gradients

    def shifted(self: object) -> list:
        grads = original(self)
        x = np.asarray(self.inputs[0])
        on_kink = (x == 0) | (x == 1)
        g = np.array(grads[0], dtype=np.float64)
        g[on_kink] = 2.5  # outside every one-sided interval here
        return [g.astype(np.asarray(grads[0]).dtype), *grads[1:]]

    layer.get_input_gradients = shifted.__get__(layer)
    layer.compose_input_gradients = (  # every pinned case here composes elementwise
        lambda J=None: (
            layer.get_input_gradients()
            if J is None
            else [g * np.asarray(J[0]) for g in layer.get_input_gradients()]
        )
    )
    assert case.check(raise_on_failure=False).status == "fail"


@pytest.mark.parametrize(
    "layer", [beras.LeakyReLU(), beras.LeakyReLU(0.01), beras.ReLU()], ids=repr
)
def test_handout_convention_zero_gradient_at_exactly_zero(layer) -> None:
    """The course handout: gradient 0 at exactly 0 (a documented convention, in both views)."""
    x = np.array([[0.0, -0.0, 1.0, -1.0]])
    layer(x)
    local = np.asarray(layer.get_input_gradients()[0])
    vjp = np.asarray(layer.compose_input_gradients([np.full(x.shape, 3.0)])[0])
    np.testing.assert_array_equal(local, [[0.0, 0.0, 1.0, layer.alpha]])
    np.testing.assert_array_equal(vjp, [[0.0, 0.0, 3.0, 3.0 * layer.alpha]])


WITH_LOCAL_JACOBIAN = [d for d in domains() if getattr(d.cls, "has_local_jacobian", True)]


@pytest.mark.parametrize("domain", WITH_LOCAL_JACOBIAN, ids=lambda d: d.name)
@settings(max_examples=budget(12))
@given(data=st.data())
def test_vjp_with_hypothesis_chosen_upstream(domain: Domain, data: st.DataObject) -> None:
    """View (b) against view (a) with unique upstream entries hypothesis picks (and
    shrinks), float64. Layers without a local Jacobian (Conv2D, BatchNormalization) have
    no view (a): ``check_gradients`` compares their VJPs with finite differences."""
    from beras.testing import float64_twin
    from beras.testing._stencil import input_vjp, weight_vjp

    case = data.draw(cases(domain, dtype=np.float64), label="case")
    layer = float64_twin(case.diffable)
    out = np.asarray(layer(*case.inputs))
    up = data.draw(upstream(out.shape), label="J")
    composed = layer.compose_input_gradients([up])
    for k, (x, g) in enumerate(zip(case.inputs, layer.get_input_gradients())):
        ref = input_vjp(layer.input_gradient_layout, g, x.shape, up, f"input {k}")
        np.testing.assert_allclose(
            composed[k], ref, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(ref).max())
        )
    for w, c, g in zip(
        layer.weights, layer.compose_weight_gradients([up]), layer.get_weight_gradients()
    ):
        ref = weight_vjp(g, w.shape, up, "weight")
        np.testing.assert_allclose(c, ref, rtol=1e-12, atol=1e-12 * max(1.0, np.abs(ref).max()))
