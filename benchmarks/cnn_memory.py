"""Peak memory of one CNN training step at B = 128: ``python -m benchmarks.cnn_memory``.

The CNN is ``beras train --model cnn``'s (``beras.training.build_cnn``: two blocks of a
3x3 "same" Conv2D, 2x2 max pooling, BatchNormalization and ReLU, then Flatten, Dropout,
Dense(3136, 128), ReLU, Dropout, Dense(128, 10), Softmax), float32, with categorical
cross-entropy and Adam. One ``batch_step(training=True)`` (forward, gradients, update) is
measured with ``tracemalloc`` (NumPy reports its array buffers to it), traced from before
the model is created: the first step (which also creates Adam's state) and the next one.
The budget is 1 GiB for either; the script exits with status 1 if a step exceeds it.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc

import numpy as np

import beras
from beras import training

BUDGET = 2**30  # bytes


def make_cnn(seed: int = 0) -> beras.SequentialModel:
    """``beras train --model cnn``'s model, compiled (float32 weights)."""
    cfg = training.TrainConfig(model="cnn", seed=seed)
    return training.compile_model(training.build_model(cfg), cfg)


def peak_step_bytes(batch: int = 128, seed: int = 0) -> tuple[int, int, float]:
    """(peak traced bytes during the first step, during the second step, the loss).

    Tracing starts before the model exists, so both peaks count everything the model
    holds (weights, Adam's state, what layers keep between calls) plus the step's
    temporaries; the data batch itself is allocated before tracing starts.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 784), dtype=np.float32)
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
