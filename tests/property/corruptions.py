"""Hypothesis strategies that damage real files, and a harness that bounds the damage.

Byte level (any file): :func:`byte_corruptions` truncates, flips bits, overwrites or
deletes spans, appends garbage. Format level: :func:`npz_corruptions` rewrites an
``.npz`` archive with a pickled member, a wrong dtype or shape, a header declaring a
huge array, NaN/inf values, extra or missing members, too many members, a deflate bomb;
:func:`idx_corruptions` rewrites an IDX file's header (huge, negative or mismatched
dimensions, a wrong magic number), adds trailing bytes or truncates the data, and
:func:`gzip_bombs` builds small gzip files that decompress to far more than they announce.

Each strategy draws ``(description, bytes)``; the description goes in assertion messages.
:func:`bounded` runs a load under a watchdog and tracemalloc and returns what happened.
"""

from __future__ import annotations

import functools
import gzip
import io
import signal
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

Corruption = tuple[str, bytes]

#: Seconds after which a single load is declared hung (a hang detector, not a speed test).
WATCHDOG_SECONDS = 20


# ------------------------------------------------------------------- byte level
@st.composite
def byte_corruptions(draw: st.DrawFn, data: bytes) -> Corruption:
    """``data`` damaged at the byte level (never returns it unchanged)."""
    n = len(data)
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "delete", "append", "zero"]))
    if kind == "truncate":
        cut = draw(st.integers(0, n - 1))
        return f"truncated to {cut} of {n} bytes", data[:cut]
    if kind == "flip":
        flips = draw(
            st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, 255)), min_size=1, max_size=4)
        )
        out = bytearray(data)
        for pos, mask in flips:
            out[pos] ^= mask
        if bytes(out) == data:  # two flips cancelled out
            out[flips[0][0]] ^= 0xFF
        return f"bytes flipped at {sorted(p for p, _ in flips)}", bytes(out)
    if kind == "overwrite":
        start = draw(st.integers(0, n - 1))
        junk = draw(st.binary(min_size=1, max_size=64))
        out = data[:start] + junk + data[start + len(junk) :]
        if out == data:
            out = data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :]
        return f"{len(junk)} bytes overwritten at {start}", out
    if kind == "delete":
        start = draw(st.integers(0, n - 1))
        length = draw(st.integers(1, max(1, min(256, n - start))))
        return f"{length} bytes deleted at {start}", data[:start] + data[start + length :]
    if kind == "append":
        junk = draw(st.binary(min_size=1, max_size=256))
        return f"{len(junk)} bytes appended", data + junk
    start = draw(st.integers(0, n - 1))
    length = draw(st.integers(1, 4096))
    out = data[:start] + bytes(min(length, n - start)) + data[start + length :]
    if out == data:
        out = data[:start] + b"\xff" + data[start + 1 :]
    return f"{min(length, n - start)} bytes zeroed at {start}", out


# -------------------------------------------------------------------- npz level
def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_header_only(shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"") -> bytes:
    """A valid ``.npy`` header declaring ``shape`` of ``descr``, followed by ``data``."""
    buf = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def zip_bytes(members: dict[str, bytes], deflate: bool = False) -> bytes:
    """An archive of ``members`` (the same request is built once: bombs are slow to deflate)."""
    return _zip_bytes(tuple(members.items()), deflate)


@functools.lru_cache(maxsize=64)
def _zip_bytes(members: tuple[tuple[str, bytes], ...], deflate: bool) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


_HUGE = st.sampled_from([2**31, 10**9, 2**40, 10**12, 2**62])
_BAD_DTYPES = ["<f8", "<f2", "<i4", "|u1", "|b1", "<c8", ">f4"]


@st.composite
def npz_corruptions(draw: st.DrawFn, arrays: dict[str, np.ndarray]) -> Corruption:
    """A well-formed archive whose content is wrong for ``arrays`` (every CRC is valid)."""
    names = list(arrays)
    victim = draw(st.sampled_from(names))
    target = arrays[victim]
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    kind = draw(
        st.sampled_from(
            [
                "pickle",
                "dtype",
                "text",
                "shape",
                "huge header",
                "huge header, data kept",
                "nan",
                "extra",
                "missing",
                "many members",
                "deflate bomb",
            ]
        )
    )
    key = f"{victim}.npy"
    if kind == "pickle":
        members[key] = npy_bytes(np.array([{"w": target.tolist()}], dtype=object))
    elif kind == "dtype":
        descr = draw(st.sampled_from([d for d in _BAD_DTYPES if np.dtype(d) != target.dtype]))
        members[key] = npy_bytes(target.astype(np.dtype(descr)))
        kind = f"dtype {descr}"
    elif kind == "text":
        members[key] = npy_bytes(np.array(["not", "numbers"]))
    elif kind == "shape":
        shape = draw(st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple))
        if shape == target.shape:
            shape = (*shape, 2)
        members[key] = npy_bytes(np.zeros(shape, target.dtype))
        kind = f"shape {shape}"
    elif kind.startswith("huge header"):
        dims = draw(st.lists(_HUGE, min_size=1, max_size=3).map(tuple))
        data = target.tobytes() if kind.endswith("kept") else b""
        members[key] = npy_header_only(dims, target.dtype.str, data)
        kind = f"{kind} {dims}"
    elif kind == "nan":
        bad = target.astype(target.dtype, copy=True)
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if bad.size == 0 or bad.dtype.kind not in "fc":
            bad = np.full((1,), value)
        else:
            bad.flat[draw(st.integers(0, bad.size - 1))] = value
        members[key] = npy_bytes(bad)
        kind = f"{value} in it"
    elif kind == "extra":
        members["extra.npy"] = npy_bytes(np.zeros(3, np.float32))
    elif kind == "missing":
        del members[key]
    elif kind == "many members":
        members.update({f"m{i}.npy": _tiny_npy() for i in range(2000)})
    else:  # a member that deflates to 50 MB of zeros behind a small header
        members[key] = _deflate_bomb_member()
        return f"{victim}: deflate bomb", zip_bytes(members, deflate=True)
    return f"{victim}: {kind}", zip_bytes(members)


@functools.cache
def _tiny_npy() -> bytes:
    return npy_bytes(np.zeros(1, np.uint8))


@functools.cache
def _deflate_bomb_member() -> bytes:
    return npy_header_only((50_000_000,), "|u1", bytes(50_000_000))


# -------------------------------------------------------------------- IDX level
def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


@st.composite
def idx_corruptions(draw: st.DrawFn, raw: bytes) -> Corruption:
    """Raw IDX bytes (valid header) with a lying header, a wrong magic, or the wrong size."""
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = list(struct.unpack(f">{ndim}i", raw[4:header]))
    kind = draw(st.sampled_from(["huge dim", "negative dim", "dim", "magic", "trailing", "short"]))
    if kind in ("huge dim", "negative dim", "dim"):
        i = draw(st.integers(0, ndim - 1))
        if kind == "huge dim":
            dims[i] = draw(st.sampled_from([2**31 - 1, 2**30, 10**9, 70_000 * 28]))
        elif kind == "negative dim":
            dims[i] = draw(st.integers(-(2**31), -1))
        else:
            dims[i] = draw(st.integers(0, 100).filter(lambda d, old=dims[i]: d != old))
        out = raw[:4] + struct.pack(f">{ndim}i", *dims) + raw[header:]
        return f"{kind}: dims {dims}", out
    if kind == "magic":
        magic = draw(
            st.integers(0, 2**32 - 1).filter(lambda m: m != int.from_bytes(raw[:4], "big"))
        )
        return f"magic 0x{magic:08X}", struct.pack(">I", magic) + raw[4:]
    if kind == "trailing":
        junk = draw(st.binary(min_size=1, max_size=100))
        return f"{len(junk)} trailing bytes", raw + junk
    cut = draw(st.integers(0, len(raw) - 1))
    return f"truncated to {cut} bytes", raw[:cut]


@st.composite
def gzip_bombs(draw: st.DrawFn, magic: int) -> Corruption:
    """Small gzip files whose content is far larger than the IDX header says, or unbounded."""
    kind = draw(st.sampled_from(["honest header", "small header", "no header"]))
    size = draw(st.sampled_from([20_000_000, 60_000_000]))
    return f"gzip bomb ({kind}, {size:,} bytes)", _gzip_bomb(magic, kind, size)


@functools.cache
def _gzip_bomb(magic: int, kind: str, size: int) -> bytes:
    images = magic == 0x803
    if kind == "honest header":
        head = struct.pack(">IIII", magic, size // 784, 28, 28) if images else b""
        head = head or struct.pack(">II", magic, size)
    elif kind == "small header":
        head = struct.pack(">IIII", magic, 1, 28, 28) if images else struct.pack(">II", magic, 1)
    else:
        head = b""
    return gzip.compress(head + bytes(size), 1)


# ---------------------------------------------------------------------- harness
@dataclass
class Outcome:
    """What a bounded load did: its result or error, and its peak traced memory."""

    result: Any
    error: BaseException | None
    peak_bytes: int
    seconds: float  #: reported, never asserted (the watchdog is the only time bound)


class Hung(Exception):
    """The watchdog fired: the load did not finish in :data:`WATCHDOG_SECONDS`."""


def bounded(load: Callable[[], Any]) -> Outcome:
    """Run ``load()`` under a watchdog (SIGALRM, where available) and tracemalloc.

    Exceptions are returned, not raised, except :class:`Hung` and ``MemoryError``,
    which are failures of the bound itself and propagate.
    """

    def alarm(signum: int, frame: Any) -> None:
        raise Hung(f"no result after {WATCHDOG_SECONDS} s")

    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(WATCHDOG_SECONDS)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        try:
            result, error = load(), None
        except (Hung, MemoryError):
            raise
        except Exception as exc:
            result, error = None, exc
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        if use_alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    return Outcome(result, error, peak, time.perf_counter() - start)
