"""Reading and validating dataset files: IDX (raw or gzip) and Keras-style ``.npz``.

IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian int32 magic number
(``0x00000803`` for images, ``0x00000801`` for labels; the third byte ``0x08`` is the
uint8 data type, the fourth the number of dimensions), one big-endian int32 per
dimension, then the uint8 data in C order. Everything here is strict: any
malformation raises :class:`DatasetError` naming the file, never returns odd arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._errors import ChecksumError, DatasetError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
_GZIP_MAGIC = b"\x1f\x8b"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

Split = tuple[np.ndarray, np.ndarray]


def gunzip(raw: bytes, where: str) -> bytes:
    """Decompress gzip bytes; :class:`DatasetError` naming ``where`` if corrupt."""
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{where}: not a valid gzip file ({exc}); it is corrupt or incomplete"
        ) from exc


def read_idx_bytes(path: Path) -> bytes:
    """The IDX bytes stored in ``path``, decompressed when its name ends in ``.gz``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return gunzip(raw, str(path)) if path.name.endswith(".gz") else raw


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def verify_sha256(data: bytes, expected: str, where: str, hint: str = "") -> None:
    """Raise :class:`ChecksumError` unless ``sha256(data) == expected``."""
    actual = sha256_hex(data)
    if actual != expected.lower():
        raise ChecksumError(
            f"{where}: checksum mismatch: SHA-256 of the decompressed data is "
            f"{actual}, expected {expected.lower()}; the file is corrupt or is not "
            f"the right file{hint}"
        )


def _parse_idx(data: bytes, where: str, magic: int, what: str) -> np.ndarray:
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


def parse_images(data: bytes, where: str, image_shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """Parse IDX image bytes into a ``(n, rows, cols)`` uint8 array."""
    images = _parse_idx(data, where, IMAGES_MAGIC, "image")
    check_images(images, where, image_shape)
    return images


def parse_labels(data: bytes, where: str, num_classes: int = 10) -> np.ndarray:
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
    """Load and check a Keras-style ``.npz`` (keys x_train, y_train, x_test, y_test)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: not a readable .npz archive ({exc})") from exc
    if not hasattr(npz, "files"):  # a bare .npy array, not an archive
        raise DatasetError(f"{path}: holds a single array, not an .npz archive of {NPZ_KEYS}")
    with npz:
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            raise DatasetError(
                f"{path}: missing key(s) {', '.join(missing)}; an .npz dataset needs "
                f"{', '.join(NPZ_KEYS)} (it has: {', '.join(npz.files) or 'nothing'})"
            )
        try:
            arrays = {key: npz[key] for key in NPZ_KEYS}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DatasetError(f"{path}: corrupt .npz archive ({exc})") from exc
    for key in NPZ_KEYS:
        arrays[key] = _as_uint8(arrays[key], f"{path}[{key}]")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        check_images(x, f"{path}[x_{split}]", image_shape)
        check_labels(y, f"{path}[y_{split}]", num_classes)
        check_split(x, y, f"{path}[x_{split}]", f"{path}[y_{split}]")
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
