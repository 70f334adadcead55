"""A bounded ``.npz`` reader: every size is checked before anything is allocated.

:func:`read_npz` reads the archives ``np.savez`` writes (weights, ``.npz`` datasets) and
refuses, with a :class:`~beras.fileio.BadFileError` naming the file and the member,
anything else: too many members, pickled objects and non-numeric dtypes, array headers
whose shape disagrees with the member's declared size, declared sizes beyond the limits
or impossible for the compressed size, truncated or corrupt data (zip CRC). Before any
array is read, the caller's ``check`` sees every header and the total is held to
``max_bytes``: the memory used is bounded by that total (plus one member's copy),
whatever the file declares.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Mapping
from typing import IO, NamedTuple

import numpy as np

from .fileio import BadFileError

__all__ = ["MAX_BYTES", "MAX_MEMBERS", "Member", "read_npz"]

#: Default limit on the number of arrays in an archive.
MAX_MEMBERS = 1024
#: Default limit on the total size of the arrays of an archive (bytes, uncompressed).
MAX_BYTES = 1 << 32
#: Deflate cannot compress by more than about 1032:1; a larger declared ratio is a lie.
_MAX_DEFLATE_RATIO = 1032
_MAX_HEADER = 10_000  # bytes of an array's header, numpy's own default limit
_MAX_NDIM = 32
_CHUNK = 1 << 20
_NUMERIC_KINDS = "biufc"
#: What zipfile and numpy raise on malformed input (a bad file, not a bug).
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
    struct.error,
    OverflowError,
    IndexError,
    KeyError,
)


class Member(NamedTuple):
    """What an archive member's header declares, read before its data."""

    name: str  #: the array's name (the member's file name without ``.npy``)
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int


def read_npz(
    path: str | os.PathLike[str],
    *,
    keys: Collection[str] | None = None,
    allow_text: bool = False,
    max_members: int = MAX_MEMBERS,
    max_bytes: int = MAX_BYTES,
    check: Callable[[Mapping[str, Member]], None] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path``, as ``{name: array}`` (writable copies).

    All headers are read and checked first; ``check`` (if given) then sees every
    :class:`Member` and may raise to refuse the file before any array is read (e.g.
    names or shapes that do not fit). Only numeric dtypes (bool, integers, floats,
    complex) are accepted; object arrays are refused, never unpickled. With ``keys``,
    only those arrays are read (and counted against ``max_bytes``); the others are
    checked from their headers only. ``allow_text`` also accepts fixed-width text
    arrays (``str_``, as ``np.array("name")`` stores it; still never a pickle).

    Raises:
        FileNotFoundError: no file at ``path``.
        BadFileError: anything wrong with the file, named in the message.
    """
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            members = _headers(archive, infos, path, size, max_members, allow_text)
            if check is not None:
                check(members)
            wanted = [
                (name, info) for name, info in zip(members, infos) if keys is None or name in keys
            ]
            total = sum(members[name].nbytes for name, _ in wanted)
            if total > max_bytes:
                raise BadFileError(
                    f"{path}: its arrays declare {total} bytes, more than the limit of "
                    f"{max_bytes}; refusing to read them"
                )
            return {name: _read_data(archive, info, members[name], path) for name, info in wanted}
    except FileNotFoundError:
        raise
    except BadFileError:
        raise
    except _READ_ERRORS as err:
        raise BadFileError(f"{path}: not a readable .npz archive ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _headers(
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    path: str,
    size: int,
    max_members: int,
    allow_text: bool = False,
) -> dict[str, Member]:
    if len(infos) > max_members:
        raise BadFileError(f"{path}: {len(infos)} arrays, more than the limit of {max_members}")
    if sum(info.compress_size for info in infos) > size:
        raise BadFileError(
            f"{path}: its members declare more compressed bytes than the file's {size}; "
            "it is truncated or corrupt"
        )
    members: dict[str, Member] = {}
    for info in infos:
        where = f"{path}[{info.filename}]"
        if not info.filename.endswith(".npy"):
            raise BadFileError(f"{where}: not an .npy array (an .npz holds only NAME.npy files)")
        name = info.filename[: -len(".npy")]
        if name in members:
            raise BadFileError(f"{where}: the name {name!r} appears twice")
        _check_sizes(info, where)
        with archive.open(info) as f:
            member = _header(f, name, where, allow_text)
            header_len = f.tell()
        if header_len + member.nbytes != info.file_size:
            raise BadFileError(
                f"{where}: its header declares shape {member.shape} of {member.dtype} "
                f"({member.nbytes} bytes) but the member holds "
                f"{info.file_size - header_len} data bytes; the file is corrupt"
            )
        members[name] = member
    return members


def _check_sizes(info: zipfile.ZipInfo, where: str) -> None:
    if info.flag_bits & 0x1:
        raise BadFileError(f"{where}: encrypted members are not supported")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise BadFileError(
                f"{where}: stored (uncompressed) member declares {info.file_size} bytes "
                f"but occupies {info.compress_size}; the file is corrupt"
            )
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        if info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise BadFileError(
                f"{where}: declares {info.file_size} bytes from {info.compress_size} "
                "compressed ones, more than deflate can produce; the file is corrupt"
            )
    else:
        raise BadFileError(
            f"{where}: compression method {info.compress_type} is not supported "
            "(np.savez and np.savez_compressed write stored or deflated members)"
        )


def _header(f: IO[bytes], name: str, where: str, allow_text: bool = False) -> Member:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(f, max_header_size=_MAX_HEADER)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(f, max_header_size=_MAX_HEADER)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except Exception as err:  # numpy's parser raises ValueError, SyntaxError, TokenError...
        raise BadFileError(f"{where}: not a valid .npy header ({_reason(err)})") from None
    shape, _, dtype = header
    if dtype.hasobject:
        raise BadFileError(
            f"{where}: holds Python objects (a pickle); only numeric arrays are loaded, "
            "and pickles never are"
        )
    kinds = _NUMERIC_KINDS + ("U" if allow_text else "")
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype:
        raise BadFileError(f"{where}: dtype {dtype} is not numeric (bool, int, float, complex)")
    if len(shape) > _MAX_NDIM or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise BadFileError(f"{where}: invalid shape {shape}")
    return Member(name, tuple(shape), dtype, math.prod(shape) * dtype.itemsize)


def _read_data(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Member, path: str
) -> np.ndarray:
    where = f"{path}[{info.filename}]"
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        reader = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        _, fortran, _ = reader(f, max_header_size=_MAX_HEADER)
        data = np.empty(member.nbytes, np.uint8)  # the declared size, checked and bounded
        done = 0
        while done < member.nbytes:  # in pieces: no second copy of the whole array
            chunk = f.read(min(_CHUNK, member.nbytes - done))
            if not chunk:
                raise BadFileError(f"{where}: truncated: {done} of {member.nbytes} data bytes")
            data[done : done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
        if f.read(1):
            raise BadFileError(f"{where}: data continues past its declared size")
    array = data.view(member.dtype)
    return array.reshape(member.shape, order="F" if fortran else "C")
