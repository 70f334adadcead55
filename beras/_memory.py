"""Keep freed array memory in the process, so each training step reuses the last one's.

A training step allocates the same large arrays every time (activations, im2col
columns, gradients) and frees them at its end. glibc's ``malloc`` hands blocks larger
than its mmap threshold back to the kernel when freed and trims the heap when more than
twice that threshold is free at its top, so the next step gets fresh pages, and the
kernel faults in and zeroes every one of them again: on a virtual machine that costs as
much as several elementwise passes over the array. Deep-learning frameworks avoid this
with a caching allocator; NumPy uses ``malloc``, so Beras sets, once, when imported:

* ``M_MMAP_THRESHOLD`` to its maximum, 32 MiB: smaller blocks come from the heap;
* ``M_TRIM_THRESHOLD`` to 1 GiB: freed heap memory stays in the process for reuse.

A process's resident memory then stays near its peak instead of shrinking between
steps, as with any caching allocator. Nothing is done when the C library is not glibc,
when ``BERAS_KEEP_MEMORY=0``, or when the user already tunes ``malloc`` through
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``. ``benchmarks/test_conv.py``
measures the effect.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's upper limit on 64-bit systems
TRIM_THRESHOLD = 2**30

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` as described above (once); True if it is in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("BERAS_KEEP_MEMORY", "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return _applied
