"""Reading and validating dataset files: IDX (raw or gzip) and Keras-style ``.npz``.

IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian int32 magic number
(``0x00000803`` for images, ``0x00000801`` for labels; the third byte ``0x08`` is the
uint8 data type, the fourth the number of dimensions), one big-endian int32 per
dimension, then the uint8 data in C order. Everything here is strict: any
malformation raises :class:`DatasetError` naming the file, never returns odd arrays.

Everything here is bounded too: a raw file larger than :data:`MAX_IDX_BYTES` is not
read; gzip is decompressed in pieces, never beyond the size the IDX header announces
(plus a little, to name trailing bytes) nor beyond :data:`MAX_GZIP_RATIO` times the
compressed size, so a gzip bomb costs a few kilobytes, not the machine's memory; an
``.npz`` archive's headers are checked before its arrays are read
(:func:`beras.npzfile.read_npz`).
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..fileio import BadFileError
from ..npzfile import Member, read_npz
from ._errors import ChecksumError, DatasetError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Split = tuple[np.ndarray, np.ndarray]

#: Largest IDX file read, compressed or not (bytes). MNIST's largest is 47 MB.
MAX_IDX_BYTES = 1 << 30
#: Largest decompressed/compressed ratio accepted from gzip (MNIST's is below 8).
MAX_GZIP_RATIO = 100
#: Decompressed bytes always allowed, whatever the ratio (tiny files compress well).
_GZIP_FLOOR = 1 << 16
#: Bytes decompressed past the announced end, so that trailing bytes can be counted.
_TRAILING_SLACK = 1 << 12
_CHUNK = 1 << 16
_MAX_STEP = 1 << 20  # decompressed bytes per step: the header is seen early
#: Largest .npz dataset read (bytes of its arrays).
MAX_NPZ_BYTES = 1 << 31


def idx_size(header: bytes | bytearray) -> int | None:
    """Total bytes (header and data) an IDX file announces in its first bytes, if valid."""
    if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
        return None
    ndim = header[3]
    if not 1 <= ndim <= 4 or len(header) < 4 + 4 * ndim:
        return None
    dims = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big", signed=True) for i in range(ndim)]
    if any(d < 0 for d in dims):
        return None
    return 4 + 4 * ndim + math.prod(dims)


def _not_idx(head: bytes | bytearray) -> bool:
    """Whether ``head`` is long enough to see it cannot start an IDX file."""
    if len(head) < 4:
        return False
    if head[0] != 0 or head[1] != 0 or head[2] != 0x08 or not 1 <= head[3] <= 4:
        return True
    return len(head) >= 4 + 4 * head[3] and idx_size(head) is None


def gunzip(raw: bytes, where: str, limit: int | None = None) -> bytes | bytearray:
    """Decompress gzip bytes, at most ``limit`` of them; :class:`DatasetError` if corrupt.

    ``limit`` defaults to ``max(MAX_GZIP_RATIO * len(raw), 64 KiB)`` (capped at
    :data:`MAX_IDX_BYTES`); when the decompressed bytes start with a valid IDX header,
    the size it announces (plus a few kilobytes) lowers the limit further. Several
    gzip members are joined, as ``gzip.decompress`` does; zero padding after the last
    is ignored. Output beyond the limit is never produced: it is an error. Data that
    does not start with an IDX header (wrong magic, impossible dimensions) is only
    decompressed as far as that is seen: the IDX parser then names the problem.
    """
    if limit is None:
        limit = min(MAX_IDX_BYTES, max(MAX_GZIP_RATIO * len(raw), _GZIP_FLOOR))
    out = bytearray()
    pos = 0  # next unread byte of ``raw``
    announced: int | None = None
    try:
        while True:
            d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while not d.eof:
                if d.unconsumed_tail:
                    data = d.unconsumed_tail
                elif pos < len(raw):
                    data, pos = raw[pos : pos + _CHUNK], pos + _CHUNK
                else:
                    raise EOFError("compressed data ended before the end-of-stream marker")
                out += d.decompress(data, min(limit - len(out) + 1, _MAX_STEP))
                if announced is None and _not_idx(out):
                    return out  # no IDX header: enough for the parser to say what is wrong
                if announced is None and (size := idx_size(out)) is not None:
                    if size > limit:
                        raise DatasetError(
                            f"{where}: its IDX header announces {size:,} bytes, more than "
                            f"{limit:,} ({MAX_GZIP_RATIO}x the {len(raw):,} compressed "
                            "bytes, or the size limit); refusing to decompress it"
                        )
                    announced, limit = size, min(limit, size + _TRAILING_SLACK)
                if len(out) > limit:
                    what = (
                        f"more than {limit - announced:,} unexpected trailing bytes after "
                        f"the {announced:,} bytes its IDX header announces"
                        if announced is not None
                        else f"decompresses to more than {limit:,} bytes "
                        f"({MAX_GZIP_RATIO}x its compressed size, or the size limit)"
                    )
                    raise DatasetError(
                        f"{where}: {what}; it is corrupt or not an IDX file (a gzip bomb?)"
                    )
            raw, pos = d.unused_data + raw[pos:], 0
            if not raw.strip(b"\0"):  # done, or only zero padding
                return out  # not copied: the largest MNIST file is 47 MB
            if raw[:2] != _GZIP_MAGIC:
                raise OSError(f"{len(raw)} bytes of garbage after the gzip data")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{where}: not a valid gzip file ({exc}); it is corrupt or incomplete"
        ) from exc


def read_idx_bytes(path: Path) -> bytes | bytearray:
    """The IDX bytes stored in ``path``, decompressed when its name ends in ``.gz``.

    Files larger than :data:`MAX_IDX_BYTES` are refused before being read; gzip is
    decompressed with the bounds of :func:`gunzip`.
    """
    try:
        size = os.path.getsize(path)
        if size > MAX_IDX_BYTES:
            raise DatasetError(
                f"{path}: {size:,} bytes, larger than the {MAX_IDX_BYTES:,} an IDX "
                "dataset file may have; it is not a dataset file"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return gunzip(raw, str(path)) if path.name.endswith(".gz") else raw


def sha256_hex(data: bytes | bytearray) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_sha256(data: bytes | bytearray, expected: str, where: str, hint: str = "") -> None:
    """Raise :class:`ChecksumError` unless ``sha256(data) == expected``."""
    actual = sha256_hex(data)
    if actual != expected.lower():
        raise ChecksumError(
            f"{where}: checksum mismatch: SHA-256 of the decompressed data is "
            f"{actual}, expected {expected.lower()}; the file is corrupt or is not "
            f"the right file{hint}"
        )


def _parse_idx(data: bytes | bytearray, where: str, magic: int, what: str) -> np.ndarray:
    if len(data) < 4:
        raise DatasetError(f"{where}: truncated: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        hint = ""
        if data[:2] == _GZIP_MAGIC:
            hint = " (the data is gzip-compressed: name the file with a .gz suffix)"
        elif found in (IMAGES_MAGIC, LABELS_MAGIC):
            other = "an image" if found == IMAGES_MAGIC else "a label"
            hint = f" (this is {other} file: are the file names swapped?)"
        raise DatasetError(
            f"{where}: wrong magic number 0x{found:08X}, expected 0x{magic:08X} "
            f"for an IDX {what} file{hint}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{where}: truncated: {len(data)} bytes, the IDX header needs {header}")
    dims = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big", signed=True) for i in range(ndim)
    )
    if any(d < 0 for d in dims):
        raise DatasetError(f"{where}: negative dimension in IDX header {dims}")
    expected = int(np.prod(dims, dtype=np.int64))
    have = len(data) - header
    shape = " x ".join(map(str, dims))
    if have < expected:
        raise DatasetError(
            f"{where}: truncated: header says {shape} = {expected} data bytes, "
            f"the file holds only {have}"
        )
    if have > expected:
        raise DatasetError(
            f"{where}: {have - expected} unexpected trailing bytes after the "
            f"{shape} = {expected} data bytes the header announces"
        )
    arr = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header)
    return arr.reshape(dims).copy()  # copy: writable, independent of ``data``


def parse_images(
    data: bytes | bytearray, where: str, image_shape: tuple[int, int] = (28, 28)
) -> np.ndarray:
    """Parse IDX image bytes into a ``(n, rows, cols)`` uint8 array."""
    images = _parse_idx(data, where, IMAGES_MAGIC, "image")
    check_images(images, where, image_shape)
    return images


def parse_labels(data: bytes | bytearray, where: str, num_classes: int = 10) -> np.ndarray:
    """Parse IDX label bytes into an ``(n,)`` uint8 array, values < ``num_classes``."""
    labels = _parse_idx(data, where, LABELS_MAGIC, "label")
    check_labels(labels, where, num_classes)
    return labels


def check_images(images: np.ndarray, where: str, image_shape: tuple[int, int]) -> None:
    """Raise unless ``images`` is ``(n, *image_shape)``."""
    if images.ndim != 3 or images.shape[1:] != tuple(image_shape):
        raise DatasetError(
            f"{where}: images have shape {images.shape}, expected (n, "
            f"{image_shape[0]}, {image_shape[1]})"
        )


def check_labels(labels: np.ndarray, where: str, num_classes: int) -> None:
    """Raise unless ``labels`` is 1-D with values in ``0..num_classes-1``."""
    if labels.ndim != 1:
        raise DatasetError(f"{where}: labels have shape {labels.shape}, expected (n,)")
    if labels.size and int(labels.max()) >= num_classes:
        bad = int(np.count_nonzero(labels >= num_classes))
        raise DatasetError(
            f"{where}: {bad} labels out of range (max {int(labels.max())}), "
            f"expected values in 0..{num_classes - 1}"
        )


def check_split(images: np.ndarray, labels: np.ndarray, images_at: str, labels_at: str) -> None:
    """Raise unless there are as many labels as images."""
    if len(images) != len(labels):
        raise DatasetError(
            f"count mismatch: {images_at} holds {len(images)} images but {labels_at} "
            f"holds {len(labels)} labels"
        )


def _as_uint8(arr: np.ndarray, where: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind in "iu" and (arr.size == 0 or (arr.min() >= 0 and arr.max() <= 255)):
        return arr.astype(np.uint8)
    raise DatasetError(f"{where}: dtype {arr.dtype} is not uint8 (integers 0..255)")


def load_npz(
    path: Path, image_shape: tuple[int, int] = (28, 28), num_classes: int = 10
) -> tuple[Split, Split]:
    """Load and check a Keras-style ``.npz`` (keys x_train, y_train, x_test, y_test).

    The archive's headers are checked (keys, integer dtypes, shapes) before any array
    is read, with :func:`beras.npzfile.read_npz`'s bounds.
    """

    def check(members: Mapping[str, Member]) -> None:
        missing = [k for k in NPZ_KEYS if k not in members]
        if missing:
            raise DatasetError(
                f"{path}: missing key(s) {', '.join(missing)}; an .npz dataset needs "
                f"{', '.join(NPZ_KEYS)} (it has: {', '.join(members) or 'nothing'})"
            )
        for key in NPZ_KEYS:
            if members[key].dtype.kind not in "iu":
                raise DatasetError(
                    f"{path}[{key}]: dtype {members[key].dtype} is not uint8 (integers 0..255)"
                )
        for split in ("train", "test"):
            x, y = members[f"x_{split}"].shape, members[f"y_{split}"].shape
            if len(x) != 3 or x[1:] != tuple(image_shape):
                raise DatasetError(
                    f"{path}[x_{split}]: images have shape {x}, expected (n, "
                    f"{image_shape[0]}, {image_shape[1]})"
                )
            if len(y) != 1:
                raise DatasetError(f"{path}[y_{split}]: labels have shape {y}, expected (n,)")
            if x[0] != y[0]:
                raise DatasetError(
                    f"count mismatch: {path}[x_{split}] holds {x[0]} images but "
                    f"{path}[y_{split}] holds {y[0]} labels"
                )

    if not path.is_file() and path.exists():
        raise DatasetError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise DatasetError(
                    f"{path}: holds a single array, not an .npz archive of {NPZ_KEYS}"
                )
        arrays = read_npz(path, keys=NPZ_KEYS, max_members=64, max_bytes=MAX_NPZ_BYTES, check=check)
    except DatasetError:
        raise
    except BadFileError as exc:
        raise DatasetError(str(exc)) from None
    except OSError as exc:
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from exc
    for key in NPZ_KEYS:
        arrays[key] = _as_uint8(arrays[key], f"{path}[{key}]")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        check_images(x, f"{path}[x_{split}]", image_shape)
        check_labels(y, f"{path}[y_{split}]", num_classes)
        check_split(x, y, f"{path}[x_{split}]", f"{path}[y_{split}]")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
