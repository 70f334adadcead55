"""How fast a training step is with 1, 2, ... BLAS threads, on a quiet and a loaded machine.

Run from the repository root::

    python -m benchmarks.threads                # quiet, then 2 busy processes
    python -m benchmarks.threads --busy 0 2 4   # choose the loads
    python -m benchmarks.threads --rounds 9     # more rounds, steadier medians

Workloads (float32):

- ``mlp``: ``SequentialModel.batch_step`` of the model ``beras train`` builds by default
  (784-512-256-10, ReLU, Softmax, categorical cross-entropy, Adam), batch 128;
- ``mlp-wide``: the same with ``--hidden 1024,1024 --batch-size 256``, a step of about
  seven times the work;
- ``conv-gemm``: the products of one training step of a convolution written as a
  matrix product (im2col): a batch of 128 images of 26x26 positions and 288 patch
  values times a 288x64 kernel, forward (``X @ W``) and backward (``X.T @ G`` and
  ``G @ W.T``); it stands in for a small CNN layer;
- ``cnn``: ``SequentialModel.batch_step`` of ``beras train --model cnn``'s model, batch 128.

"Loaded" means ``--busy`` extra processes spinning in ``while True: pass`` for the
duration of the measurement (started and stopped by this script). Every row records the
1-minute load average before and after it: on a shared machine other work adds to it,
so a "quiet" row is only as quiet as the machine was. Thread counts are interleaved
round by round, so a change of background load hits them alike; the figure is the median
time per step over the rounds. The last columns show what :mod:`beras.threads` picks by
default and how far that is from the fastest count.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from beras import threads, training


def _dense_flops(sizes: tuple[int, ...], batch: int) -> float:
    """A training step of Dense layers: 2*B*n_in*n_out forward, twice that backward."""
    return 6.0 * batch * sum(a * b for a, b in itertools.pairwise(sizes))


def _batch_step(cfg: training.TrainConfig) -> Callable[[], object]:
    model = training.compile_model(training.build_model(cfg), cfg)
    rng = np.random.default_rng(0)
    x = rng.random((cfg.batch_size, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, cfg.batch_size)]
    return lambda: model.batch_step(x, y)


def _mlp_step(
    hidden: tuple[int, ...] = training.TrainConfig.hidden, batch: int = 128
) -> tuple[Callable[[], object], float]:
    cfg = training.TrainConfig(hidden=hidden, batch_size=batch)
    return _batch_step(cfg), _dense_flops((784, *cfg.hidden, 10), cfg.batch_size)


def _cnn_step() -> tuple[Callable[[], object], float]:
    cfg = training.TrainConfig(model="cnn")
    model = training.build_model(cfg)
    flops, shape = 0.0, (cfg.batch_size, 784)
    for layer in model.layers:  # 2*B*H'*W'*kh*kw*C*F per convolution, x3 for a step
        out = layer.compute_output_shape(shape)
        if hasattr(layer, "kernel_size"):
            flops += 6.0 * np.prod(out) * np.prod(layer.kernel_size) * shape[-1]
        elif hasattr(layer, "w"):
            flops += _dense_flops((shape[-1], out[-1]), cfg.batch_size)
        shape = out
    return _batch_step(cfg), float(flops)


def _conv_gemm_step() -> tuple[Callable[[], object], float]:
    rows, patch, filters = 128 * 26 * 26, 3 * 3 * 32, 64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, patch), dtype=np.float32)
    w = rng.standard_normal((patch, filters), dtype=np.float32)

    def step() -> object:
        g = x @ w  # forward; its output stands in for the upstream gradient
        return x.T @ g, g @ w.T  # weight and input gradients

    return step, 3 * 2.0 * rows * patch * filters


WORKLOADS: dict[str, Callable[[], tuple[Callable[[], object], float]]] = {
    "mlp": _mlp_step,
    "mlp-wide": lambda: _mlp_step((1024, 1024), 256),
    "conv-gemm": _conv_gemm_step,
    "cnn": _cnn_step,
}


@contextlib.contextmanager
def _busy(n: int) -> Iterator[None]:
    """``n`` processes spinning on a core each, for the ``with`` block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        if procs:
            time.sleep(2.0)  # let them be scheduled
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()


def _time_block(step: Callable[[], object], seconds: float, min_steps: int = 3) -> float:
    """Seconds per step, from as many steps as fit into about ``seconds`` (at least
    ``min_steps``)."""
    step()  # warm up (first-touch allocations, thread start-up)
    count, start = 0, time.perf_counter()
    while True:
        step()
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and count >= min_steps:
            return elapsed / count


def measure(
    workload: str, thread_counts: list[int], rounds: int, seconds: float
) -> tuple[dict[int, float], float]:
    """Median seconds per step for each thread count, and the step's FLOPs."""
    step, flops = WORKLOADS[workload]()
    samples: dict[int, list[float]] = {n: [] for n in thread_counts}
    for r in range(rounds):
        order = thread_counts if r % 2 == 0 else thread_counts[::-1]
        for n in order:
            with threadpool_limits(limits=n, user_api="blas"):
                samples[n].append(_time_block(step, seconds))
    return {n: statistics.median(v) for n, v in samples.items()}, flops


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.threads", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--busy",
        type=int,
        nargs="+",
        default=[0, 2],
        metavar="N",
        help="busy processes per condition (default: 0 2)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="thread counts to compare (default: 1 .. min(CPUs, 4))",
    )
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument(
        "--rounds", type=int, default=5, help="rounds per thread count; the median is reported"
    )
    parser.add_argument(
        "--seconds", type=float, default=0.6, help="seconds of steps per round and thread count"
    )
    args = parser.parse_args(argv)
    for name in threads.THREAD_VARIABLES:
        if os.environ.get(name):
            print(f"note: {name}={os.environ[name]} is set; threadpoolctl overrides it here")
    cpus = os.cpu_count() or 1
    counts = args.threads or list(range(1, min(cpus, 4) + 1))
    print(
        f"CPUs: {cpus}; thread counts: {counts}; {args.rounds} rounds of "
        f"{args.seconds:g} s; median ms per step"
    )
    header = (
        ["condition", "load before", "load after", "idle CPUs", "workload", "GFLOP/step"]
        + [f"{n} thr ms" for n in counts]
        + ["best", "default", "default vs best"]
    )
    rows = []
    for busy in args.busy:
        condition = "no added load" if busy == 0 else f"{busy} busy processes"
        with _busy(busy):
            for workload in args.workloads:
                before = _load()
                idle = threads.idle_cpus()  # what the default sees when a run starts
                times, flops = measure(workload, counts, args.rounds, args.seconds)
                after = _load()
                best = min(times, key=times.__getitem__)
                default = threads.default_threads(cpus, idle)
                pick = times.get(default, float("nan"))
                rows.append(
                    [
                        condition,
                        f"{before:.2f}",
                        f"{after:.2f}",
                        f"{idle:.2f}" if idle is not None else "?",
                    ]
                    + [workload, f"{flops / 1e9:.2f}"]
                    + [f"{1e3 * times[n]:.2f}" for n in counts]
                    + [str(best), str(default), f"{100 * (pick / times[best] - 1):+.1f}%"]
                )
                print(" | ".join(rows[-1]), flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
