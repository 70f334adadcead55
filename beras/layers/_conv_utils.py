"""Helpers shared by the convolution and pooling layers (channels-last, 2-D).

Argument normalisation (``kernel_size``/``strides``/``padding`` as Keras accepts them),
output lengths and TensorFlow's "same" padding, and :func:`im2col`, which copies every
``(kh, kw)`` window of a padded ``(B, H, W, C)`` input into one contiguous
``(B, H', W', kh, kw, C)`` array (one strided view and one copy, no loop over the batch
or the output pixels), so a convolution is a single ``(B·H'·W', kh·kw·C) @ (kh·kw·C, F)``
matrix product. Its adjoint, scattering columns back onto the input, is fused with the
input gradient's products in :class:`~beras.layers.Conv2D` (one strided slice per kernel
offset, :func:`window_slice`).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

PADDINGS = ("valid", "same")
T = TypeVar("T")


def pair(value: Any, what: str, owner: str) -> tuple[int, int]:
    """An int or a pair of ints, each positive, as a pair (``3`` -> ``(3, 3)``)."""
    items = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    ok = len(items) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in items
    )
    if not ok:
        raise ValueError(
            f"{owner}: {what} must be a positive integer or a pair of positive integers, "
            f"got {value!r}"
        )
    return int(items[0]), int(items[1])


def padding_mode(value: Any, owner: str) -> str:
    """``"valid"`` or ``"same"`` (case-insensitive), else a ``ValueError``."""
    mode = value.lower() if isinstance(value, str) else None
    if mode not in PADDINGS:
        raise ValueError(f"{owner}: padding must be one of {list(PADDINGS)}, got {value!r}")
    return mode


def output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Output positions along one axis: ``ceil(size / stride)`` for "same", else valid ones.

    For "valid", ``size >= window`` (what :func:`check_spatial` checks first).
    """
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding ``(before, after)``: the odd extra goes after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def pads(
    shape: tuple[int, ...], window: tuple[int, int], strides: tuple[int, int], padding: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((top, bottom), (left, right))`` for an input of ``shape`` ``(B, H, W, C)``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    return (
        same_padding(shape[1], window[0], strides[0]),
        same_padding(shape[2], window[1], strides[1]),
    )


def check_spatial(
    shape: tuple[int, ...],
    window: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    owner: object,
    what: str,
) -> tuple[int, int]:
    """``(H', W')`` for a ``(B, H, W, C)`` shape; a ``ValueError`` if the ``what`` (the
    kernel, the pool window) cannot fit."""
    (top, bottom), (left, right) = pads(shape, window, strides, padding)
    padded = (shape[1] + top + bottom, shape[2] + left + right)
    if padded[0] < window[0] or padded[1] < window[1]:
        raise ValueError(
            f"{owner}: the {what} {window} is larger than the (padded) input of height and "
            f"width {padded}, from an input of shape {shape} with padding={padding!r}; use "
            "a larger input, a smaller window or padding='same'"
        )
    return (
        output_length(shape[1], window[0], strides[0], padding),
        output_length(shape[2], window[1], strides[1], padding),
    )


def pad(
    x: np.ndarray, hw_pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0
) -> np.ndarray:
    """``x`` (``(..., H, W, C)``) padded on H and W with ``value``; ``x`` itself if no padding."""
    (top, bottom), (left, right) = hw_pads
    if not (top or bottom or left or right):
        return x
    widths = [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)]
    return np.pad(x, widths, constant_values=value)


def window_slice(
    i: int, j: int, out_hw: tuple[int, int], strides: tuple[int, int]
) -> tuple[slice, slice]:
    """The rows and columns that kernel offset ``(i, j)`` reads for every output pixel."""
    return (
        slice(i, i + strides[0] * (out_hw[0] - 1) + 1, strides[0]),
        slice(j, j + strides[1] * (out_hw[1] - 1) + 1, strides[1]),
    )


def im2col(
    xp: np.ndarray,
    window: tuple[int, int],
    strides: tuple[int, int],
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Every window of the padded ``xp`` ``(B, Hp, Wp, C)``: a ``(B, H', W', kh, kw, C)``.

    One read-only strided view (no copy) of all the windows, then one contiguous copy,
    into ``out`` when given (a contiguous array of that shape and ``xp``'s dtype), else
    into a new array: with channels last, each window row ``(kw, C)`` is a contiguous run
    of the input when the width stride is 1, so the copy moves long runs.
    """
    windows = np.lib.stride_tricks.sliding_window_view(xp, window, axis=(1, 2))
    # (B, H', W', C, kh, kw) -> (B, H', W', kh, kw, C): the same strides as the input's
    view = windows[:, :: strides[0], :: strides[1]].transpose(0, 1, 2, 4, 5, 3)
    if out is None:
        return np.ascontiguousarray(view)
    np.copyto(out, view)
    return out


# ------------------------------------------------------------- batch-parallel work
#: below this many floating-point operations a step's phase is not split across threads
#: (measured: a 0.9 GFLOP convolution made the CNN's training step slower split, 70 against
#: 51 ms, though faster split on its own; a 2.7 GFLOP one is 20 % faster split)
PARALLEL_FLOPS = 1.5e9


@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of the BLAS libraries NumPy loaded (looked up once), or
    None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController().select(user_api="blas")


@functools.cache
def _pool(pid: int) -> ThreadPoolExecutor:
    """The threads of process ``pid``: a forked child has none of its parent's, so it
    asks for its own. Idle threads cost nothing; at most one per BLAS thread is busy."""
    return ThreadPoolExecutor()


def blas_threads() -> int:
    """The number of threads NumPy's BLAS uses now (1 if threadpoolctl cannot tell).

    Read live (well under a microsecond), so it follows ``threadpool_limits`` and
    ``beras train --threads``.
    """
    controller = _blas()
    libs = controller.lib_controllers if controller is not None else []
    return max([1, *(lib.get_num_threads() or 1 for lib in libs)])


def over_batch(work: Callable[[slice], T], batch: int, flops: float) -> list[T]:
    """``[work(part) ...]`` for contiguous slices ``part`` that cover ``range(batch)``.

    A convolution's step is matrix products with copies and additions between them.
    With ``n`` BLAS threads the products alone run on ``n`` cores and the copies and
    additions on one (splitting only those was slower still). So with ``n > 1`` BLAS threads and at least :data:`PARALLEL_FLOPS` of work, the
    batch is cut into ``n`` parts and each part runs its whole share of the work, products
    included, on a thread of its own with single-threaded BLAS (NumPy releases the GIL in
    both); otherwise ``work(slice(0, batch))`` runs here. ``work`` must write only its own
    part of any shared output.
    """
    n = min(blas_threads(), batch) if flops >= PARALLEL_FLOPS else 1
    if n <= 1:
        return [work(slice(0, batch))]
    pool = _pool(os.getpid())
    edges = [batch * k // n for k in range(n + 1)]
    parts = [slice(a, b) for a, b in itertools.pairwise(edges)]
    with _blas().limit(limits=1):  # n > 1 threads: threadpoolctl is there
        pending = [pool.submit(work, part) for part in parts[1:]]
        try:
            first = work(parts[0])
        finally:  # every part is done (or failed) before BLAS gets its threads back
            wait(pending)
    return [first, *(future.result() for future in pending)]


#: the bytes of output a cache-sized chunk of samples writes (about a core's L2 cache)
CHUNK_BYTES = 1 << 20
#: a chunk is never smaller: blocks of samples, never a Python loop over single samples
CHUNK_MIN_SAMPLES = 8


def chunks(part: slice, sample_bytes: int) -> Iterator[slice]:
    """``part`` of a batch in consecutive blocks of samples writing about :data:`CHUNK_BYTES`.

    A convolution's input gradient adds nine products onto overlapping windows of the
    same samples; done a block of samples at a time, the block's gradient and the products
    stay in the core's cache between the nine additions instead of going through memory
    each time (about 15 % faster for 26x26x32 inputs at B = 128, bit-identical). A block
    holds at least :data:`CHUNK_MIN_SAMPLES` samples (or the whole part).
    """
    step = max(CHUNK_MIN_SAMPLES, CHUNK_BYTES // max(sample_bytes, 1))
    for start in range(part.start, part.stop, step):
        yield slice(start, min(start + step, part.stop))


def crop(xp: np.ndarray, hw_pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """Undo :func:`pad`: the interior of ``xp`` (a view)."""
    (top, bottom), (left, right) = hw_pads
    return xp[..., top : xp.shape[-3] - bottom, left : xp.shape[-2] - right, :]


def check_seed(seed: Any, owner: str) -> int | np.random.Generator | None:
    """``seed`` if it is None, a non-negative int or a ``np.random.Generator``."""
    ok = (
        seed is None
        or isinstance(seed, np.random.Generator)
        or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0)
    )
    if not ok:
        raise ValueError(
            f"{owner}: seed must be None, a non-negative int or a np.random.Generator, got {seed!r}"
        )
    return seed
