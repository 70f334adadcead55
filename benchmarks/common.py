"""Helpers shared by the benchmark modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import beras


@contextlib.contextmanager
def floatx(dtype: str) -> Iterator[None]:
    """Create Beras weights of ``dtype`` inside the block, then restore the setting."""
    previous = beras.config.floatx()
    beras.config.set_floatx(dtype)
    try:
        yield
    finally:
        beras.config.set_floatx(previous)


def tag(benchmark: Any, group: str, case: str, role: str, **extra: Any) -> None:
    """Label a benchmark for ``report.py``: which table, which row, which column."""
    benchmark.group = f"{group} {case}"
    benchmark.extra_info.update({"group": group, "case": case, "role": role, **extra})
