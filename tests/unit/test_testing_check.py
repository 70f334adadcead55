"""Fast example tests of beras.testing's checks and registry."""

from __future__ import annotations

import numpy as np
import pytest

import beras
from beras.testing import (
    GradientCheckResult,
    check_gradients,
    check_model,
    check_tape,
    domains,
    register_domain,
)


def test_result_object_without_raising() -> None:
    result = check_gradients(beras.Sigmoid(), np.ones((2, 3)), raise_on_failure=False)
    assert isinstance(result, GradientCheckResult)
    assert result.status == "pass"
    assert result.passed
    assert bool(result)
    assert result.evaluations > 0
    assert set(result.checked) == {"local", "vjp", "tape"}
    assert "pass" in result.report()


def test_views_can_be_chosen() -> None:
    result = check_gradients(beras.Sigmoid(), np.ones((2, 3)), views=("vjp",))
    assert set(result.checked) == {"vjp"}
    with pytest.raises(ValueError, match="unknown views"):
        check_gradients(beras.Sigmoid(), np.ones((2, 3)), views=("jvp",))


def test_not_inside_a_tape() -> None:
    with beras.GradientTape(), pytest.raises(RuntimeError, match="inside an active GradientTape"):
        check_gradients(beras.Sigmoid(), np.ones((1, 2)))


def test_not_a_diffable() -> None:
    with pytest.raises(TypeError, match="expected a Diffable"):
        check_gradients(np.sin, np.ones(3))


def test_projection_mode_on_request() -> None:
    layer = beras.Dense(3, 2, seed=0)
    result = check_gradients(layer, np.ones((2, 3)), mode="projection")
    assert set(result.mode.values()) == {"projection"}


def test_check_tape_wants_float64_sources() -> None:
    dense = beras.Dense(2, 2, seed=0)
    with pytest.raises(TypeError, match="float64"):
        check_tape(
            lambda: beras.MeanSquaredError()(dense(np.ones((1, 2))), np.zeros((1, 2))),
            dense.weights,
        )


def test_check_model_on_a_float32_model() -> None:
    model = beras.SequentialModel(
        [beras.Dense(3, 4, seed=0), beras.Sigmoid(), beras.Dense(4, 2, seed=1)]
    )
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    y = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    result = check_model(model, x, y, beras.MeanSquaredError())
    assert result.status == "pass"
    assert model.layers[0].w.dtype == np.float32  # the model is untouched


def test_register_domain() -> None:
    class Cube(beras.activations.Activation):
        def forward(self, x):
            return np.asarray(x) ** 3

        def get_input_gradients(self):
            return [3 * np.asarray(self.inputs[0]) ** 2]

    domain = register_domain(Cube, [beras.testing.Input(("batch", "n"))])
    try:
        assert domains(Cube) == [domain]
        beras.testing.sample_case(Cube, 0).check()
    finally:
        beras.testing.unregister_domain(domain)
    assert domains(Cube) == []
    with pytest.raises(TypeError, match="Diffable subclass"):
        register_domain(int, [])


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("mode", "bogus", "mode must be one of"),
        ("projection", "bogus", "projection must be one of"),
        ("inconclusive", "sometimes", "inconclusive must be one of"),
        ("projections", 0, "projections must be an int >= 1"),
    ],
)
def test_every_check_validates_its_options_the_same_way(option, value, match) -> None:
    """check_tape rejects a bad option exactly as check_gradients does (one validator)."""
    dense = beras.Dense(2, 2, seed=0)
    x = np.ones((1, 2))
    with pytest.raises(ValueError, match=f"check_gradients: {match}"):
        check_gradients(dense, x, **{option: value})
    with pytest.raises(ValueError, match=f"check_tape: {match}"):
        check_tape(lambda: beras.Sigmoid()(x), [x], **{option: value})
    with pytest.raises(TypeError, match="unexpected keyword argument 'views'"):
        check_tape(lambda: beras.Sigmoid()(x), [x], views=("tape",))


def test_register_domain_validates_its_options() -> None:
    x = beras.testing.Input(("batch", "n"))
    with pytest.raises(TypeError, match="unexpected options \\['kernel'\\]"):
        register_domain(beras.Sigmoid, [x], kernel=3)
    with pytest.raises(ValueError, match="parameter 'strides' has no choices"):
        register_domain(beras.Sigmoid, [x], params={"strides": ()})
    with pytest.raises(ValueError, match="dims\\['n'\\] must be"):
        register_domain(beras.Sigmoid, [x], dims={"n": (3, 1)})
    assert len(domains(beras.Sigmoid)) == 1  # nothing half-registered
