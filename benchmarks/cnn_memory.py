"""Peak memory of one CNN training step at B = 128: ``python -m benchmarks.cnn_memory``.

The CNN is the usual small MNIST one, channels-last, float32::

    Conv2D(32, 3) -> ReLU -> MaxPool2D -> Conv2D(64, 3) -> BatchNormalization -> ReLU
    -> MaxPool2D -> Flatten -> Dropout(0.25) -> Dense(1600, 10) -> Softmax

with categorical cross-entropy and Adam. One ``batch_step(training=True)`` (forward,
gradients, update) is measured with ``tracemalloc`` (NumPy reports its array buffers to
it), traced from before the model is created: the first step (which also creates the
weights and Adam's state) and the next one. The budget is 1 GiB for either; the script
exits with status 1 if a step exceeds it.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from typing import Any

import numpy as np

import beras

BUDGET = 2**30  # bytes


def make_cnn(seed: int = 0) -> beras.SequentialModel:
    """The benchmark CNN, compiled (float32 weights under the default floatx)."""
    layers: list[Any] = [
        beras.Conv2D(32, 3, seed=seed),
        beras.ReLU(),
        beras.MaxPool2D(),
        beras.Conv2D(64, 3, seed=seed + 1),
        beras.BatchNormalization(),
        beras.ReLU(),
        beras.MaxPool2D(),
        beras.Flatten(),
        beras.Dropout(0.25, seed=seed + 2),
        beras.Dense(5 * 5 * 64, 10, "xavier", seed=seed + 3),
        beras.Softmax(),
    ]
    model = beras.SequentialModel(layers)
    model.compile(beras.Adam(1e-3), beras.CategoricalCrossEntropy(), beras.CategoricalAccuracy())
    return model


def peak_step_bytes(batch: int = 128, seed: int = 0) -> tuple[int, int, float]:
    """(peak traced bytes during the first step, during the second step, the loss).

    Tracing starts before the model exists, so both peaks count everything the model
    holds (weights, Adam's state, what layers keep between calls) plus the step's
    temporaries; the data batch itself is allocated before tracing starts.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    tracemalloc.start()
    try:
        model = make_cnn(seed)
        model.batch_step(x, y, training=True)  # builds the weights and Adam's state
        _, first = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        metrics = model.batch_step(x, y, training=True)
        _, second = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return first, second, float(metrics["loss"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args(argv)
    first, peak, loss = peak_step_bytes(args.batch)
    verdict = "within" if max(first, peak) < BUDGET else "OVER"
    print(
        f"CNN training step, B={args.batch}, float32, peak traced memory: first step "
        f"(builds the weights) {first / 2**20:.1f} MiB, next step {peak / 2**20:.1f} MiB "
        f"({verdict} the 1 GiB budget); loss {loss:.4f}"
    )
    return 0 if max(first, peak) < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
