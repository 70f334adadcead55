"""(d) One ``fit`` epoch on MNIST-shaped data, against the same loop around the references.

The data are synthetic: 60,000 samples of shape ``(784,)`` in [0, 1) with random one-hot
labels, float32 (what ``fit`` sees after preprocessing MNIST; the content does not
change the cost). Batch 128, shuffled with a seeded permutation, the last partial batch
kept (469 steps). Each round starts from the initial weights and a fresh Adam.
Under ``--benchmark-disable`` (smoke test) the data shrink to 2,048 samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.common import tag
from benchmarks.mlp import BerasTrainer, ReferenceTrainer, mnist_like
from benchmarks.reference import OrdinaryStep, TunedStep

SAMPLES = 60_000
SMOKE_SAMPLES = 2_048
BATCH = 128
ROUNDS = 3


@pytest.fixture(scope="module")
def data(smoke: bool) -> tuple[np.ndarray, np.ndarray]:
    return mnist_like(SMOKE_SAMPLES if smoke else SAMPLES, "float32", seed=2)


@pytest.mark.parametrize("role", ["beras", "reference", "reference_tuned"])
def test_fit_epoch(benchmark: Any, data: tuple[np.ndarray, np.ndarray], role: str) -> None:
    x, y = data
    tag(
        benchmark,
        "fit_epoch",
        f"{len(x)} samples float32 B={BATCH}",
        role,
        samples=len(x),
        batch=BATCH,
    )
    if role == "beras":
        trainer: Any = BerasTrainer("float32")
    else:
        trainer = ReferenceTrainer("float32", OrdinaryStep if role == "reference" else TunedStep)
    result = benchmark.pedantic(
        trainer.fit_epoch, args=(x, y, BATCH), setup=trainer.reset, rounds=ROUNDS, warmup_rounds=0
    )
    loss = result["loss"][0] if isinstance(result, dict) else result
    assert np.isfinite(loss)
