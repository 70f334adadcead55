"""(e) The cost of ``beras.testing.check_gradients`` per checked parameter.

Each case checks one Diffable at one random float64 point in every view ("local",
"vjp", "tape") in full mode (per-entry Jacobians). The "parameters" of a case are the
scalar entries it differentiates: the entries of every non-constant input and weight.
``report.py`` divides the time by that count (and reports the function evaluations per
parameter, which ``GradientCheckResult.evaluations`` counts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import beras
from benchmarks.common import tag

testing = pytest.importorskip(
    "beras.testing", reason="beras.testing (the verification layer) is not available"
)


def _dense(
    n_in: int, n_out: int, batch: int
) -> tuple[Any, tuple[np.ndarray, ...], dict[str, Any], int]:
    rng = np.random.default_rng(n_in)
    with np.errstate(all="ignore"):
        layer = testing.float64_twin(beras.Dense(n_in, n_out, "kaiming", seed=0))
    x = rng.standard_normal((batch, n_in))
    return layer, (x,), {}, x.size + n_in * n_out + n_out


def _softmax(n: int, batch: int) -> tuple[Any, tuple[np.ndarray, ...], dict[str, Any], int]:
    x = np.random.default_rng(n).standard_normal((batch, n))
    return beras.Softmax(), (x,), {}, x.size


def _cce(n: int, batch: int) -> tuple[Any, tuple[np.ndarray, ...], dict[str, Any], int]:
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((batch, n))
    y = np.eye(n)[rng.integers(0, n, batch)]
    loss = beras.CategoricalCrossEntropy(from_logits=True)
    return loss, (logits, y), {"constants": (1,)}, logits.size


CASES: dict[str, Callable[[], tuple[Any, tuple[np.ndarray, ...], dict[str, Any], int]]] = {
    "Dense(4->3) B=4": lambda: _dense(4, 3, 4),
    "Dense(16->8) B=8": lambda: _dense(16, 8, 8),
    "Softmax n=10 B=16": lambda: _softmax(10, 16),
    "CCE(from_logits) n=10 B=16": lambda: _cce(10, 16),
}


@pytest.mark.benchmark(max_time=0.5, min_rounds=3, warmup=False)
@pytest.mark.parametrize("case", list(CASES))
def test_check_gradients(benchmark: Any, case: str) -> None:
    diffable, inputs, options, params = CASES[case]()
    tag(benchmark, "gradient_check", case, "check_gradients", params=params)

    def run() -> Any:
        return testing.check_gradients(
            diffable, *inputs, mode="full", inconclusive="ignore", **options
        )

    result = benchmark(run)
    benchmark.extra_info["evaluations"] = result.evaluations
    assert result.status == "pass", result.report()
