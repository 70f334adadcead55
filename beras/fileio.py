"""Atomic file writes: a file is either the old one or the complete new one, never half.

:func:`atomic_write` is the one implementation; :func:`write_json`, :func:`save_npy`,
``checkpoint.save`` (weights), ``plots.save_png`` and the dataset downloads are built on it.

How a write survives a kill: the data goes to a temporary file ``.NAME.<hex>.tmp`` in the
target's folder, held under an exclusive ``flock`` while it is written, flushed and
fsynced, then renamed over the target with :func:`os.replace` and the folder fsynced. A
writer killed at any instant leaves the target as it was (old or new, complete) and at
most one orphaned temporary file, whose lock died with its writer: the next write into
that folder (or :func:`clean_stale_temps`) removes it. A temporary file whose writer is
still alive is locked and is never touched.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import json
import math
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, stale temps are kept
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BadFileError",
    "WriteError",
    "atomic_write",
    "clean_stale_temps",
    "save_npy",
    "write_json",
]

#: errno values that mean the storage refused the data (not a bug of the caller).
STORAGE_ERRNOS = frozenset(
    getattr(_errno, name)
    for name in ("ENOSPC", "EIO", "EDQUOT", "EFBIG", "EROFS", "ENOMEM", "EACCES", "EPERM")
    if hasattr(_errno, name)
)

_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")


class WriteError(OSError):
    """A file could not be written (disk full, I/O error, read-only or no permission).

    The message names the file and the reason; ``errno``, ``strerror`` and ``filename``
    are those of the operating system's error. The file is left as it was before the
    write (or absent, if it did not exist) and no temporary file remains.
    """

    def __init__(self, path: str | os.PathLike[str], cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.filename = os.fspath(path)
        self.cause = cause

    def __str__(self) -> str:
        code = _errno.errorcode.get(self.errno or 0, "")
        reason = f"{self.strerror}" + (f" ({code})" if code else "")
        return f"cannot write {self.filename}: {reason}; the previous file, if any, is unchanged"


class BadFileError(ValueError):
    """A file exists but its content is not what the reader accepts.

    Raised, before anything is changed, for truncated or corrupt files, wrong formats,
    sizes beyond the reader's limits, pickled objects and non-numeric data. The message
    names the file and what was wrong. :class:`beras.datasets.DatasetError` and
    :class:`beras.checkpoint.WeightsFileError` are its subclasses.
    """


def atomic_write(
    path: str | os.PathLike[str], content: bytes | Callable[[IO[bytes]], object]
) -> None:
    """Write ``content`` to ``path`` atomically, creating missing folders.

    The data goes to a temporary file ``.NAME.<8 hex digits>.tmp`` in the same folder,
    created with the mode a plain ``open(path, "w")`` would give (0o666 less the umask)
    and held under an exclusive lock; it is flushed and fsynced, then renamed over
    ``path`` with :func:`os.replace`, and the folder is fsynced so the rename is on disk
    too. Orphaned temporary files of ``path`` left by killed writers are removed first
    (see :func:`clean_stale_temps`). On any failure, KeyboardInterrupt included, the
    temporary file is removed and ``path`` is left as it was.

    ``content`` is ``bytes``, or a function that writes to the binary file it is given
    (``lambda f: np.savez(f, **arrays)``), which streams large data without a copy.

    Raises:
        WriteError: the storage refused the data (disk full, I/O error, read-only,
            permission); errors raised by a ``content`` function otherwise propagate.
    """
    path = Path(path)
    folder = path.absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(path, err) from err
    clean_stale_temps(folder, path.name)
    try:
        fd, tmp = _create_temp(folder, path.name)
    except OSError as err:
        raise WriteError(path, err) from err
    ours = True  # whether an OSError comes from our own file operations
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                ours = False
                content(f)
                ours = True
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, path)  # still locked: no cleaner can take it for stale
    except BaseException as err:
        with contextlib.suppress(OSError):  # e.g. renamed just before the interrupt
            os.unlink(tmp)
        storage = isinstance(err, OSError) and (ours or err.errno in STORAGE_ERRNOS)
        if storage and not isinstance(err, WriteError):
            raise WriteError(path, err) from err  # type: ignore[arg-type]
        raise
    _fsync_dir(folder)


def _create_temp(folder: Path, name: str) -> tuple[int, str]:
    """A new, locked ``.NAME.XXXXXXXX.tmp`` in ``folder``, opened for writing: ``(fd, path)``.

    Unlike :func:`tempfile.mkstemp` (always 0o600, so a saved file would be unreadable to
    the group), the file gets the umask's usual mode from the OS, as ``open`` gives it.
    Between its creation and its lock a cleaner could take the file for an orphan and
    delete it: the path is then checked to still be this file, else a new name is tried.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:
            return fd, tmp
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # no locks on this file system: cleaners skip it too
                return fd, tmp
            if _same_file(tmp, fd):
                return fd, tmp
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed by a cleaner before we locked it: try another name
    raise FileExistsError(_errno.EEXIST, f"no free temporary file name for {name} in {folder}")


def _same_file(path: str, fd: int) -> bool:
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def clean_stale_temps(folder: str | os.PathLike[str], name: str | None = None) -> list[str]:
    """Remove the temporary files of :func:`atomic_write` whose writer is dead.

    Only files named ``.NAME.<8 hex digits>.tmp`` (of target ``name`` when given) are
    considered, and one is removed only if its lock can be taken, i.e. no live process
    is writing it. On platforms without ``fcntl`` nothing is removed. Returns the paths
    removed; errors (a folder that vanished, no permission) are ignored.
    """
    removed: list[str] = []
    if fcntl is None:
        return removed
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry)
        if not match or (name is not None and match.group("name") != name):
            continue
        tmp = os.path.join(folder, entry)
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live writer holds it
            os.close(fd)
            continue
        try:
            # still the file we locked (not already renamed into place by its writer)
            if _same_file(tmp, fd):
                os.unlink(tmp)
                removed.append(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


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
