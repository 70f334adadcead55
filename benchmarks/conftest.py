"""Shared set-up of the benchmark suite (see BENCHMARKS.md).

* Every headline figure is a ratio of two benchmarks measured in the same run (Beras over
  a hand-written NumPy reference), so it survives a busy machine; ``benchmarks/report.py``
  computes them from ``--benchmark-json``.
* glibc's malloc returns freed memory above a dynamic threshold to the system, so code
  with large temporaries (the ordinary NumPy reference, and Beras too) page-faults on
  every step or not depending on what the process allocated before: the same step can
  take 1.3 ms or 2.2 ms depending on test order. ``import beras`` fixes the thresholds
  once (``beras/_memory.py``), so every benchmark, the references included, runs in the
  same regime a Beras user gets. Set ``BERAS_BENCH_MALLOC=system`` to measure with the
  system's defaults instead (it sets ``BERAS_KEEP_MEMORY=0`` before Beras loads).
* BLAS threads: on a small machine shared with other jobs, a multithreaded BLAS whose
  threads get descheduled turns a 2 ms step into a 100 ms one (measured on the 2-core
  development machine under load). So unless the environment already sets
  ``OPENBLAS_NUM_THREADS``, the suite runs BLAS on ``BERAS_BENCH_BLAS_THREADS`` threads
  (default 1; ``default`` leaves BLAS alone). The setting must be made before NumPy
  loads, which is why it sits at the top of this file; the run's JSON records the
  thread count BLAS actually uses.
* ``--benchmark-disable`` runs every benchmark once as a smoke test; the data of the
  ``fit`` benchmark shrinks then, so the whole smoke run takes seconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from typing import Any

_NUMPY_LOADED_FIRST = "numpy" in sys.modules
_ENV_PREFIXES = ("OPENBLAS", "OMP_", "MKL_", "BERAS_BENCH")
_ENV_GIVEN = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
_THREADS = os.environ.get("BERAS_BENCH_BLAS_THREADS", "1")
if _THREADS != "default":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _THREADS)

if os.environ.get("BERAS_BENCH_MALLOC", "").lower() == "system":
    os.environ["BERAS_KEEP_MEMORY"] = "0"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import beras  # noqa: E402
from beras import _memory  # noqa: E402


def _fix_malloc() -> str:
    """What ``import beras`` did to malloc (see ``beras/_memory.py``)."""
    if _memory.keep_freed_memory():
        return (
            f"mmap threshold {_memory.MMAP_THRESHOLD // 2**20} MiB, trim threshold "
            f"{_memory.TRIM_THRESHOLD // 2**20} MiB (beras._memory)"
        )
    return "system defaults"


MALLOC = _fix_malloc()


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")  # numpy >= 1.26
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} ({blas.get('openblas configuration', '').strip()})"
    except Exception:  # pragma: no cover - depends on the NumPy build
        return "unknown"


def _openblas() -> dict[str, Any]:
    """Threads and kernel set of the OpenBLAS that NumPy loaded (if it is OpenBLAS)."""
    info: dict[str, Any] = {}
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return info
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (
            ("scipy_openblas", "64_"),
            ("openblas", "64_"),
            ("openblas", ""),
            ("scipy_openblas", ""),
        ):
            get_threads = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            get_core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
            if get_threads is not None:
                info["threads"] = int(get_threads())
                if get_core is not None:
                    get_core.restype = ctypes.c_char_p
                    info["core"] = get_core().decode()
                return info
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    """Record what the ratios depend on in every saved/JSON run."""
    machine_info["cpu_model"] = _cpu_model()
    machine_info["cores"] = os.cpu_count()
    machine_info["numpy"] = np.__version__
    machine_info["blas"] = _blas()
    machine_info["beras"] = beras.__version__
    machine_info["malloc"] = MALLOC
    machine_info["openblas_runtime"] = _openblas()
    if _NUMPY_LOADED_FIRST:
        machine_info["blas_threads_note"] = "numpy was loaded before the benchmark conftest"
    machine_info["env_given"] = _ENV_GIVEN  # as the suite found it (CI's, e.g. OPENBLAS_CORETYPE)
    machine_info["env"] = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}


def pytest_benchmark_update_json(config: Any, benchmarks: Any, output_json: dict[str, Any]) -> None:
    """How busy the machine was (kept out of machine_info, which --benchmark-compare matches)."""
    with contextlib.suppress(OSError):  # no load average on some systems
        output_json["loadavg_at_end"] = os.getloadavg()


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    """True under ``--benchmark-disable``: each benchmark body runs once, untimed."""
    return bool(request.config.getoption("benchmark_disable", False))
