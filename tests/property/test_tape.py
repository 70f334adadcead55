"""The tape end to end: random graphs and random Sequential models against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import beras
from beras.testing import check_model, check_tape
from beras.testing.strategies import Graph, ModelCase, budget, graphs, sequential_models


@settings(max_examples=budget(200))
@given(graph=graphs())
def test_random_graphs(graph: Graph) -> None:
    result = check_tape(
        graph.fn, graph.sources, names=graph.names, subject=repr(graph), inconclusive="raise"
    )
    assert result.status == "pass"


@settings(max_examples=budget(120))
@given(case=sequential_models())
def test_random_sequential_models(case: ModelCase) -> None:
    check_model(case.model, case.x, case.y, case.loss, inconclusive="raise")


@settings(max_examples=budget(10))
@given(graph=graphs())
def test_unconnected_sources_get_none(graph: Graph) -> None:
    with beras.GradientTape() as tape:
        loss = graph.fn()
    grads = tape.gradient(loss, graph.sources + graph.unused)
    assert all(g is None for g in grads[len(graph.sources) :])
    assert grads[0] is not None  # the input always feeds the loss... through something
    assert all(g is None or g.shape == s.shape for g, s in zip(grads, graph.sources))


def test_nested_tapes_are_rejected() -> None:
    outer = beras.GradientTape()
    with outer, pytest.raises(RuntimeError, match="already recording"), beras.GradientTape():
        pass
    assert beras.core.Diffable.gradient_tape is None


def test_target_not_recorded_is_an_error() -> None:
    dense = beras.Dense(2, 3, seed=0)
    out = dense(np.ones((1, 2)))
    with beras.GradientTape() as tape:
        pass
    with pytest.raises(ValueError, match="not produced"):
        tape.gradient(out, dense.weights)


def test_a_source_used_twice_accumulates() -> None:
    beras.config.set_floatx("float64")
    try:
        dense = beras.Dense(3, 3, seed=1)
    finally:
        beras.config.set_floatx("float32")
    x = np.random.default_rng(1).normal(size=(2, 3))
    add, loss = beras.layers.Add(), beras.MeanSquaredError()
    target = np.zeros((2, 3))
    check_tape(lambda: loss(add(dense(x), dense(dense(x))), target), [x, dense.w, dense.b])


def test_check_tape_catches_a_wrong_tape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tape that forgets to accumulate (keeps the last contribution) fails on a reused layer."""
    from beras import gradient_tape

    def overwrite(grads: dict, tensor: object, g: object) -> None:
        grads[id(tensor)] = np.asarray(g)

    beras.config.set_floatx("float64")
    try:
        dense = beras.Dense(2, 2, seed=2)
    finally:
        beras.config.set_floatx("float32")
    x = np.random.default_rng(2).normal(size=(3, 2))
    loss, target = beras.MeanSquaredError(), np.zeros((3, 2))
    monkeypatch.setattr(gradient_tape, "_accumulate", overwrite)
    result = check_tape(
        lambda: loss(dense(dense(x)), target), [x, dense.w, dense.b], raise_on_failure=False
    )
    assert result.status == "fail"
