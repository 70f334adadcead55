"""The benchmark model, its data, and resettable training steps for Beras and the references.

The MLP is 784-256-128-10 (ReLU, ReLU, Softmax), categorical cross-entropy, Adam(1e-3),
as the course's MNIST assignment. Every benchmarked step is *resettable*: after
``RESET_EVERY`` steps the weights return to their initial values and the optimizer
starts afresh. Without that, timing thousands of steps on a few batches trains the
network into a regime where the Adam moments of dead units decay into subnormal
floats, and every elementwise pass over them becomes several times slower (for Beras
and NumPy alike): the figure would measure the CPU's subnormal penalty, not the step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import beras
from benchmarks.common import floatx
from benchmarks.reference import OrdinaryStep, TunedStep

SIZES = (784, 256, 128, 10)
LEARNING_RATE = 1e-3
RESET_EVERY = 200
N_BATCHES = 8  # distinct batches the step cycles through


def beras_mlp(dtype: str, seed: int = 0, from_logits: bool = False) -> beras.SequentialModel:
    """The benchmark MLP in Beras, compiled with Adam and categorical cross-entropy."""
    n_in, h1, h2, n_out = SIZES
    with floatx(dtype):
        layers: list[Any] = [
            beras.Dense(n_in, h1, "kaiming", seed=seed),
            beras.ReLU(),
            beras.Dense(h1, h2, "kaiming", seed=seed + 1),
            beras.ReLU(),
            beras.Dense(h2, n_out, "xavier", seed=seed + 2),
        ]
    if not from_logits:
        layers.append(beras.Softmax())
    model = beras.SequentialModel(layers)
    model.compile(
        beras.Adam(LEARNING_RATE),
        beras.CategoricalCrossEntropy(from_logits=from_logits),
        beras.CategoricalAccuracy(),
    )
    return model


def mnist_like(n: int, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic MNIST-shaped data: ``(n, 784)`` pixels in [0, 1) and one-hot labels."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, SIZES[0]), dtype=np.dtype(dtype).type)
    y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]
    return x, y


def batches(batch: int, dtype: str, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    x, y = mnist_like(batch * N_BATCHES, dtype, seed)
    return [
        (x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]) for i in range(N_BATCHES)
    ]


class BerasTrainer:
    """``model.batch_step`` with a reset to the initial weights and a fresh Adam."""

    def __init__(self, dtype: str, from_logits: bool = False) -> None:
        self.model = beras_mlp(dtype, from_logits=from_logits)
        self.initial = [np.array(w, copy=True) for w in self.model.weights]

    def reset(self) -> None:
        for w, w0 in zip(self.model.weights, self.initial):
            w[...] = w0
        self.model.optimizer = beras.Adam(LEARNING_RATE)

    def step(self, x: np.ndarray, y: np.ndarray) -> Any:
        return self.model.batch_step(x, y)

    def fit_epoch(self, x: np.ndarray, y: np.ndarray, batch: int) -> Any:
        return self.model.fit(x, y, epochs=1, batch_size=batch, shuffle=True, verbose=0, seed=0)


class ReferenceTrainer:
    """A NumPy reference step (``OrdinaryStep`` or ``TunedStep``) on the same weights."""

    def __init__(self, dtype: str, kind: type[OrdinaryStep] | type[TunedStep]) -> None:
        self.kind = kind
        self.initial = [np.array(w, copy=True) for w in beras_mlp(dtype).weights]
        self.step = kind(self.initial, learning_rate=LEARNING_RATE)

    def reset(self) -> None:
        self.step = self.kind(self.initial, learning_rate=LEARNING_RATE)

    def fit_epoch(self, x: np.ndarray, y: np.ndarray, batch: int) -> Any:
        """The loop ``Model.fit`` runs: a seeded permutation, then every batch once."""
        order = np.random.default_rng(0).permutation(len(x))
        step = self.step
        total = 0.0
        for lo in range(0, len(x), batch):
            idx = order[lo : lo + batch]
            loss, _ = step(x[idx], y[idx])
            total += loss * len(idx)
        return total / len(x)


def cycling(
    trainer: BerasTrainer | ReferenceTrainer, data: list[tuple[np.ndarray, np.ndarray]]
) -> Callable[[], Any]:
    """A no-argument ``trainer.step`` over ``data`` in turn, reset every ``RESET_EVERY`` calls."""
    state = {"i": 0}

    def run() -> Any:
        i = state["i"]
        state["i"] = i + 1
        if i % RESET_EVERY == 0:
            trainer.reset()
        x, y = data[i % len(data)]
        return trainer.step(x, y)

    return run
