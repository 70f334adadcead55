"""How many BLAS threads ``beras train``, ``beras evaluate`` and ``assignment.py`` use.

NumPy's BLAS (OpenBLAS in the NumPy wheels) starts one thread per core for every matrix
product. For the small products of an MLP on MNIST the threads cost more than they save,
and on a machine whose cores are busy with other work they wait for each other and a
training step can take several times longer. ``python -m benchmarks.threads`` measures
this (BENCHMARKS.md, "BLAS threads"); the policy below follows those measurements:

1. ``--threads N`` given on the command line: ``N``.
2. ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set in the
   environment: BLAS already obeys it, so Beras changes nothing.
3. Otherwise, by the floating-point work of one training step: below
   :data:`SMALL_STEP_FLOPS`, one thread; above it, as many threads as there are idle
   cores when the run starts (sampled for a fifth of a second from ``/proc/stat``, else
   estimated from the load average), at least one and at most
   :data:`MAX_DEFAULT_THREADS`. Threads beyond the idle cores only wait for each other.

The limit is applied with threadpoolctl, only for the duration of the run (the
``with`` block of :func:`limit`), and the choice is printed in the run's header::

    BLAS threads: 1 (default for this model size; --threads to change)
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
from collections.abc import Iterator, Mapping, Sequence

__all__ = [
    "MAX_DEFAULT_THREADS",
    "SMALL_STEP_FLOPS",
    "THREAD_VARIABLES",
    "ThreadChoice",
    "choose",
    "default_threads",
    "dense_step_flops",
    "idle_cpus",
    "limit",
]

#: The environment variables that BLAS libraries read for their thread count (OpenBLAS
#: reads the first and third, MKL the second and third); any of them set means the
#: user chose.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

#: Training steps of fewer floating-point operations get one BLAS thread by default.
#: Measured by ``python -m benchmarks.threads`` (BENCHMARKS.md, "BLAS threads") on a
#: 2-core machine busy with other work: the default MLP (784-512-256-10, batch 128,
#: 0.41 GFLOP per step) and a wide one (1024,1024, batch 256, 2.9 GFLOP) ran 2.4 to 14
#: times faster with one thread than with two, with and without extra busy processes; a
#: conv-sized product (128x676x288 by 288x64, forward and backward, 9.6 GFLOP) was faster
#: with two threads only when other processes of the same priority competed for the
#: cores. The bound sits between those sizes.
SMALL_STEP_FLOPS = 5e9

#: The most threads the default ever asks for (more rarely pays for these sizes).
MAX_DEFAULT_THREADS = 4


def dense_step_flops(sizes: Sequence[int], batch_size: int, training: bool = True) -> float:
    """Floating-point operations of one step of an MLP whose layer widths are ``sizes``.

    A Dense layer ``n_in -> n_out`` on ``B`` rows costs ``2*B*n_in*n_out`` forward; a
    training step adds the input and weight gradients, twice that again (6x in all).
    Elementwise work (activations, loss, optimizer) is ignored: BLAS threads do not
    speed it up.
    """
    products = sum(a * b for a, b in itertools.pairwise(sizes))
    return (6.0 if training else 2.0) * batch_size * products


def idle_cpus(interval: float = 0.2) -> float | None:
    """How many CPUs were idle over the next ``interval`` seconds (None where unknown).

    Read from ``/proc/stat`` (Linux); elsewhere estimated as CPUs minus the 1-minute
    load average; None when neither is available.
    """
    try:
        first = _proc_stat()
        time.sleep(interval)
        second = _proc_stat()
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, (os.cpu_count() or 1) - os.getloadavg()[0])
        except (AttributeError, OSError):
            return None
    (idle0, total0, n), (idle1, total1, _) = first, second
    if total1 <= total0:
        return None
    return n * (idle1 - idle0) / (total1 - total0)


def _proc_stat() -> tuple[int, int, int]:
    """(idle + iowait ticks, all ticks, number of CPUs) from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as f:
        lines = f.read().splitlines()
    ticks = [int(v) for v in lines[0].split()[1:9]]
    n = sum(1 for line in lines[1:] if line.startswith("cpu"))
    return ticks[3] + ticks[4], sum(ticks), max(n, 1)


def default_threads(step_flops: float, cpus: int | None = None, idle: float | None = None) -> int:
    """The default thread count for a step of ``step_flops`` operations (see the module).

    Args:
        step_flops: floating-point operations of one step.
        cpus: the number of CPUs (default ``os.cpu_count()``).
        idle: how many of them are idle (default: :func:`idle_cpus`, measured now; only
            for steps of at least :data:`SMALL_STEP_FLOPS`).
    """
    if step_flops < SMALL_STEP_FLOPS:
        return 1
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if idle is None:
        idle = idle_cpus()
    free = cpus if idle is None else round(idle)
    return max(1, min(cpus, free, MAX_DEFAULT_THREADS))


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from.

    Attributes:
        threads: the count, or None when an environment variable decides and its value
            is not a plain number.
        source: ``"--threads"``, ``"default"``, or the environment variable's name.
        idle: the idle CPUs the default was based on (large models only), else None.
        override: how the user changes it, named in the header line.
    """

    threads: int | None
    source: str
    idle: float | None = None
    override: str = "--threads"

    @property
    def apply(self) -> bool:
        """Whether Beras sets the limit (it does not when the environment decides)."""
        return self.source in ("--threads", "default")

    def describe(self) -> str:
        """The header line: ``BLAS threads: 1 (default for this model size; ...)``."""
        count = "as set" if self.threads is None else str(self.threads)
        if self.source == "default":
            why = "default for this model size"
            if self.idle is not None:
                why += f" and {self.idle:.1f} idle CPUs"
            why += f"; {self.override} to change"
        else:
            why = f"from {self.source}"
        return f"BLAS threads: {count} ({why})"


def choose(
    requested: int | None,
    step_flops: float,
    environ: Mapping[str, str] | None = None,
    cpus: int | None = None,
    idle: float | None = None,
    override: str = "--threads",
) -> ThreadChoice:
    """The thread count for a run: ``--threads``, else the environment, else the default.

    Args:
        requested: ``--threads`` (None when not given); must be >= 1.
        step_flops: floating-point operations of one training (or evaluation) step,
            e.g. from :func:`dense_step_flops`.
        environ: the environment to read (default ``os.environ``).
        cpus: the number of CPUs (default ``os.cpu_count()``).
        idle: how many CPUs are idle (default: measured when the step is large enough
            to matter, see :func:`default_threads`).
        override: how the user overrides the default, for the header line.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads expected an integer >= 1, got {requested}")
        return ThreadChoice(int(requested), "--threads")
    environ = os.environ if environ is None else environ
    for name in THREAD_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return ThreadChoice(int(value) if value.isdigit() else None, name)
    if step_flops >= SMALL_STEP_FLOPS and idle is None:
        idle = idle_cpus()
    count = default_threads(step_flops, cpus, idle)
    large = step_flops >= SMALL_STEP_FLOPS
    return ThreadChoice(count, "default", idle if large else None, override)


@contextlib.contextmanager
def limit(choice: ThreadChoice) -> Iterator[str]:
    """Apply ``choice`` to every BLAS library NumPy loaded, for the ``with`` block.

    Yields the header line (:meth:`ThreadChoice.describe`), with a note when the
    limit could not be applied (threadpoolctl missing, or no BLAS library it knows).
    The previous limits are restored on exit.
    """
    line = choice.describe()
    if not choice.apply or choice.threads is None:
        yield line
        return
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        yield f"{line}; not applied: threadpoolctl is not installed (pip install threadpoolctl)"
        return
    if not any(lib.get("user_api") == "blas" for lib in threadpool_info()):
        yield f"{line}; not applied: threadpoolctl found no BLAS library it can control"
        return
    with threadpool_limits(limits=choice.threads, user_api="blas"):
        yield line
