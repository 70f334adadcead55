"""How many BLAS threads ``beras train``, ``beras evaluate`` and ``assignment.py`` use.

NumPy's BLAS (OpenBLAS in the NumPy wheels) starts one thread per core for every matrix
product. For the small products of an MLP on MNIST the threads cost more than they save,
and on a machine whose cores are busy with other work they wait for each other and a
training step can take several times longer. ``python -m benchmarks.threads`` measures
this (BENCHMARKS.md, "BLAS threads"); the policy below follows those measurements:

1. ``--threads N`` given on the command line: ``N``.
2. ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set in the
   environment: BLAS already obeys it, so Beras changes nothing.
3. Otherwise, as many threads as there are idle cores when the run starts (sampled
   for a fifth of a second from ``/proc/stat``, else estimated from the load average),
   at least one and at most :data:`MAX_DEFAULT_THREADS`, and checked again at the start
   of every epoch (:class:`Recheck`): from ``/proc/stat`` since the last check, less
   this process's own CPU time, so a machine that gets busy mid-run moves the run to
   one thread, and back when it is quiet again. Threads beyond the idle cores only
   wait for each other: on a 2-core machine busy with other work, two threads made a
   small MLP's steps 2.4 to 14 times slower; on a quiet one they made them faster.

The limit is applied with threadpoolctl, only for the duration of the run (the
``with`` block of :func:`limit`), and the choice is printed in the run's header::

    BLAS threads: 2 (default for 2.0 idle CPUs, checked every epoch; --threads to change)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping

from .callbacks import Callback

__all__ = [
    "MAX_DEFAULT_THREADS",
    "THREAD_VARIABLES",
    "CpuSampler",
    "Recheck",
    "ThreadChoice",
    "choose",
    "default_threads",
    "idle_cpus",
    "limit",
]

#: The environment variables that BLAS libraries read for their thread count (OpenBLAS
#: reads the first and third, MKL the second and third); any of them set means the
#: user chose.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")

#: The most threads the default ever asks for (more rarely pays for these sizes).
MAX_DEFAULT_THREADS = 4


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


def default_threads(cpus: int | None = None, idle: float | None = None) -> int:
    """The default thread count: the idle CPUs, rounded, from 1 to :data:`MAX_DEFAULT_THREADS`.

    Args:
        cpus: the number of CPUs (default ``os.cpu_count()``).
        idle: how many of them are idle (default: :func:`idle_cpus`, measured now);
            every CPU when that is unknown.
    """
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
        idle: the idle CPUs the default was based on (None if unknown or not the default).
        override: how the user changes it, named in the header line.
        per_epoch: whether a :class:`Recheck` re-decides the default every epoch (a
            training run) or not (an evaluation), as the header line says.
    """

    threads: int | None
    source: str
    idle: float | None = None
    override: str = "--threads"
    per_epoch: bool = True

    @property
    def apply(self) -> bool:
        """Whether Beras sets the limit (it does not when the environment decides)."""
        return self.source in ("--threads", "default")

    def describe(self) -> str:
        """The header line: ``BLAS threads: 2 (default for 2.0 idle CPUs, ...)``."""
        count = "as set" if self.threads is None else str(self.threads)
        if self.source == "default":
            idle = "unknown idle CPUs" if self.idle is None else f"{self.idle:.1f} idle CPUs"
            every = ", checked every epoch" if self.per_epoch else ""
            why = f"default for {idle}{every}; {self.override} to change"
        else:
            why = f"from {self.source}"
        return f"BLAS threads: {count} ({why})"


def choose(
    requested: int | None,
    environ: Mapping[str, str] | None = None,
    cpus: int | None = None,
    idle: float | None = None,
    override: str = "--threads",
    per_epoch: bool = True,
) -> ThreadChoice:
    """The thread count for a run: ``--threads``, else the environment, else the default.

    Args:
        requested: ``--threads`` (None when not given); must be >= 1.
        environ: the environment to read (default ``os.environ``).
        cpus: the number of CPUs (default ``os.cpu_count()``).
        idle: how many CPUs are idle (default: measured now, for the default only).
        override: how the user overrides the default, for the header line.
        per_epoch: False for a run without epochs to re-check at (an evaluation).
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
    if idle is None:
        idle = idle_cpus()
    return ThreadChoice(default_threads(cpus, idle), "default", idle, override, per_epoch)


class CpuSampler:
    """The CPUs other processes left idle since the last reading (Linux ``/proc/stat``).

    Each :meth:`available` call covers the time since the previous one (or since the
    sampler was made): all CPUs, less the busy time of every process but this one.
    This process's own work (its BLAS threads included) does not count against it, so
    a run does not talk itself down to one thread by keeping the cores busy.
    """

    def __init__(self) -> None:
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[int, int, int, float] | None:
        try:
            idle, total, n = _proc_stat()
        except (OSError, ValueError, IndexError):
            return None
        own = os.times()
        return idle, total, n, own.user + own.system

    def available(self) -> float | None:
        """CPUs free for this process over the last interval; None where unknown."""
        now, last = self._read(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1]:
            return None
        busy = (now[1] - last[1]) - (now[0] - last[0])
        others = max(0.0, busy - (now[3] - last[3]) * self._hz)
        return now[2] * (1.0 - others / (now[1] - last[1]))


class Recheck(Callback):
    """A callback that re-decides the default thread count at each epoch but the first.

    Made for a ``choice`` whose source is ``"default"``; for any other choice it never
    changes anything. ``changes`` lists ``(epoch, threads, available CPUs)`` for every
    change made; ``print_fn``, when given, reports each one.
    """

    def __init__(self, choice: ThreadChoice, print_fn: Callable[[str], object] | None = None):
        self.choice = choice
        self.threads = choice.threads
        self.changes: list[tuple[int, int, float]] = []
        self.print_fn = print_fn
        self._sampler = CpuSampler() if choice.source == "default" else None
        self._first = True

    def on_epoch_begin(self, epoch: int) -> None:
        if self._sampler is None:
            return
        available = self._sampler.available()  # since the last check
        if self._first or available is None:  # the run's start was measured already
            self._first = False
            return
        count = default_threads(idle=available)
        if count == self.threads:
            return
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return
        threadpool_limits(limits=count, user_api="blas")  # undone when limit() exits
        self.threads = count
        self.changes.append((epoch, count, available))
        if self.print_fn is not None:
            self.print_fn(
                f"BLAS threads: {count} from epoch {epoch + 1} ({available:.1f} CPUs left idle)"
            )


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
