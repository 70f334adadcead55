"""(a) Dense and (b) Softmax: the vectorised products against the stencil's compositions.

(a) ``Dense(784, 256)`` with an upstream gradient ``J`` of shape ``(B, 256)``, both the
input and the weight gradients (what the tape asks of every Dense layer):

* ``vectorised``: Beras's ``compose_input_gradients([J])`` and
  ``compose_weight_gradients([J])`` (``J @ W.T``, ``x.T @ J``, ``J.sum(0)``);
* ``generic``: the base class's batched composition of the local Jacobians
  (``Diffable.compose_*_gradients``: tensordot / einsum over broadcast views), which any
  new layer gets without writing a product;
* ``per_sample``: the stencil's definition, literally: for each sample ``b``,
  ``g[b] @ J[b]`` for the input and ``w_grad[b] * J[b]`` summed over ``b`` for each
  weight, with ``g`` and ``w_grad`` from ``get_input_gradients()`` /
  ``get_weight_gradients()``.

(b) Softmax over ``n`` classes, batch 32: the VJP ``y * (J - sum(J * y))`` against the
materialised ``(B, n, n)`` Jacobian composed with ``J`` (the base class's path).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import beras
from benchmarks.common import tag
from beras.core import Diffable

DENSE_BATCHES = (32, 128, 512)
DENSE_ROLES = ("vectorised", "generic", "per_sample")


def per_sample_composition(layer: beras.Dense, J: np.ndarray) -> list[np.ndarray]:
    """The stencil's per-sample composition of ``layer``'s local gradients with ``J``."""
    (g_local,) = layer.get_input_gradients()  # (in, out), shared by the batch
    w_grads = layer.get_weight_gradients()  # x[:, :, None] (per sample), ones (shared)
    batch = J.shape[0]
    g = np.asarray(g_local)
    input_grad = np.empty((batch, g.shape[0]), dtype=J.dtype)
    weight_grads = [np.zeros(w.shape, dtype=J.dtype) for w in layer.weights]
    for b in range(batch):
        input_grad[b] = g @ J[b]
        for total, w_local in zip(weight_grads, w_grads):
            w_grad = np.asarray(w_local)
            total += (w_grad[b] if w_grad.ndim == 3 else w_grad) * J[b]
    return [input_grad, *weight_grads]


def _dense_case(batch: int) -> tuple[beras.Dense, np.ndarray]:
    rng = np.random.default_rng(batch)
    layer = beras.Dense(784, 256, "kaiming", seed=0)
    layer(rng.random((batch, 784), dtype=np.float32))  # sets inputs/outputs as a call does
    return layer, rng.standard_normal((batch, 256)).astype(np.float32)


DENSE_CASES = [(b, r) for b in DENSE_BATCHES for r in DENSE_ROLES]


@pytest.mark.benchmark(max_time=0.5, min_rounds=3, warmup=True, warmup_iterations=2)
@pytest.mark.parametrize(("batch", "role"), DENSE_CASES, ids=[f"B{b}-{r}" for b, r in DENSE_CASES])
def test_dense_composition(benchmark: Any, batch: int, role: str) -> None:
    tag(benchmark, "dense_compose", f"Dense(784->256) float32 B={batch}", role, batch=batch)
    layer, J = _dense_case(batch)
    if role == "vectorised":

        def run() -> list[Any]:
            return [*layer.compose_input_gradients([J]), *layer.compose_weight_gradients([J])]
    elif role == "generic":

        def run() -> list[Any]:
            return [
                *Diffable.compose_input_gradients(layer, [J]),
                *Diffable.compose_weight_gradients(layer, [J]),
            ]
    else:

        def run() -> list[Any]:
            return per_sample_composition(layer, J)

    result = benchmark(run)
    expected = [J @ layer.w.T, layer.inputs[0].T @ J, J.sum(axis=0, keepdims=True)]
    for got, want in zip(result, expected):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


SOFTMAX_CASES = [(n, r) for n in (10, 1000) for r in ("vjp", "materialised")]


@pytest.mark.benchmark(max_time=0.5, min_rounds=3, warmup=True, warmup_iterations=2)
@pytest.mark.parametrize(("n", "role"), SOFTMAX_CASES, ids=[f"n{n}-{r}" for n, r in SOFTMAX_CASES])
def test_softmax_composition(benchmark: Any, n: int, role: str) -> None:
    batch = 32
    tag(benchmark, "softmax_vjp", f"Softmax n={n} float32 B={batch}", role, n=n, batch=batch)
    rng = np.random.default_rng(n)
    layer = beras.Softmax()
    y = np.asarray(layer(rng.standard_normal((batch, n)).astype(np.float32)))
    J = rng.standard_normal((batch, n)).astype(np.float32)
    if role == "vjp":

        def run() -> list[Any]:
            return layer.compose_input_gradients([J])
    else:

        def run() -> list[Any]:
            return Diffable.compose_input_gradients(layer, [J])  # builds (B, n, n)

    (got,) = benchmark(run)
    np.testing.assert_allclose(
        got, y * (J - (J * y).sum(axis=-1, keepdims=True)), rtol=1e-4, atol=1e-6
    )
