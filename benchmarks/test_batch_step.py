"""(c) ``SequentialModel.batch_step`` of the 784-256-128-10 MLP against NumPy references.

One training step: forward, cross-entropy loss, gradients of every weight, Adam, and
the loss/accuracy it returns. Roles, measured back to back for each dtype and batch:

* ``beras``: ``SequentialModel.batch_step`` (Softmax layer + CategoricalCrossEntropy);
* ``beras_logits``: the same without the Softmax layer and
  ``CategoricalCrossEntropy(from_logits=True)`` (float32 only);
* ``reference``: an ordinary hand-written NumPy step (``reference.OrdinaryStep``);
* ``reference_tuned``: a tuned NumPy step (``reference.TunedStep``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.common import tag
from benchmarks.mlp import BerasTrainer, ReferenceTrainer, batches, cycling
from benchmarks.reference import OrdinaryStep, TunedStep

BATCHES = (32, 128, 512)
DTYPES = ("float32", "float64")
ROLES = ("beras", "reference", "reference_tuned", "beras_logits")

CASES = [
    (dtype, batch, role)
    for dtype in DTYPES
    for batch in BATCHES
    for role in ROLES
    if not (role == "beras_logits" and dtype != "float32")
]


def make_trainer(dtype: str, role: str) -> BerasTrainer | ReferenceTrainer:
    if role == "beras":
        return BerasTrainer(dtype)
    if role == "beras_logits":
        return BerasTrainer(dtype, from_logits=True)
    return ReferenceTrainer(dtype, OrdinaryStep if role == "reference" else TunedStep)


@pytest.mark.benchmark(max_time=1.0, min_rounds=20, warmup=True, warmup_iterations=20)
@pytest.mark.parametrize(
    ("dtype", "batch", "role"), CASES, ids=[f"{d}-B{b}-{r}" for d, b, r in CASES]
)
def test_batch_step(benchmark: Any, dtype: str, batch: int, role: str) -> None:
    tag(benchmark, "batch_step", f"{dtype} B={batch}", role, dtype=dtype, batch=batch)
    trainer = make_trainer(dtype, role)
    run = cycling(trainer, batches(batch, dtype))
    result = benchmark(run)
    loss = result["loss"] if isinstance(result, dict) else result[0]
    assert np.isfinite(loss)


@pytest.mark.parametrize("kind", [OrdinaryStep, TunedStep], ids=["reference", "reference_tuned"])
def test_references_compute_what_beras_computes(kind: type) -> None:
    """The yardsticks train the same network the same way (float64, a few steps)."""
    beras_trainer = BerasTrainer("float64")
    reference = ReferenceTrainer("float64", kind)
    for x, y in batches(16, "float64")[:4]:
        metrics = beras_trainer.step(x, y)
        loss, acc = reference.step(x, y)
        assert loss == pytest.approx(metrics["loss"], rel=1e-12)
        assert acc == metrics["acc"]
    for w_beras, w_ref in zip(beras_trainer.model.weights, reference.step.params):
        np.testing.assert_allclose(w_ref, w_beras, rtol=1e-9, atol=1e-12)
