"""Atomic file writes: a file is either the old one or the complete new one, never half.

:func:`atomic_write` is the one implementation; :func:`write_json`, :func:`save_npy`,
``checkpoint.save`` (weights), ``plots.save_png`` and the dataset downloads are built on it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = ["atomic_write", "save_npy", "write_json"]


def atomic_write(
    path: str | os.PathLike[str], content: bytes | Callable[[IO[bytes]], object]
) -> None:
    """Write ``content`` to ``path`` atomically, creating missing folders.

    The data goes to a temporary file in the same folder, created with the mode a plain
    ``open(path, "w")`` would give (0o666 less the umask), flushed and fsynced, then
    renamed over ``path`` with :func:`os.replace`, and the folder is fsynced so the rename
    is on disk too. On any failure, KeyboardInterrupt included, the temporary file is
    removed and ``path`` is left as it was.

    ``content`` is ``bytes``, or a function that writes to the binary file it is given
    (``lambda f: np.savez(f, **arrays)``), which streams large data without a copy.
    """
    path = Path(path)
    folder = path.absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(folder, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # e.g. renamed just before the interrupt
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def _create_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new ``.NAME.XXXXXXXX.tmp`` in ``folder``, opened for writing: ``(fd, path)``.

    Unlike :func:`tempfile.mkstemp` (always 0o600, so a saved file would be unreadable to
    the group), the file gets the umask's usual mode from the OS, as ``open`` gives it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"atomic_write: no free temporary file name for {name} in {folder}")


def _fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented strict JSON (NaN/inf become null), written atomically."""
    text = json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n"
    atomic_write(path, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None  # strict JSON has no NaN
    if isinstance(value, np.integer):
        return int(value)
    return value


def save_npy(path: str | os.PathLike[str], array: Any) -> None:
    """``np.save(path, array)`` (no pickles), atomically."""
    array = np.asarray(array)
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))
