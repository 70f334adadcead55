"""The exceptions raised by ``beras.datasets``."""

from __future__ import annotations

from ..fileio import BadFileError


class DatasetError(BadFileError):
    """A dataset file exists but its content is wrong (a ``ValueError``).

    Raised for a corrupt or truncated gzip stream, a malformed IDX header, a wrong
    magic number, trailing bytes, images and labels whose counts disagree, labels out
    of range, an ``.npz`` archive with missing keys, a checksum mismatch, or sizes
    beyond the readers' limits (a gzip bomb, an array header declaring more than the
    file holds, an oversized download). The message always names the file and says
    what was wrong with it. A :class:`beras.fileio.BadFileError`, so a ``ValueError``.
    """

    __module__ = "beras.datasets"  # its public home, shown in tracebacks


class ChecksumError(DatasetError):
    """The SHA-256 of a file's decompressed bytes is not the published one."""

    __module__ = "beras.datasets"  # its public home, shown in tracebacks


class DatasetNotFoundError(FileNotFoundError):
    """No copy of the dataset was found on disk and none could be downloaded.

    The message lists every place that was searched, every mirror that was tried
    with the reason it failed, and how to provide the files.
    """

    __module__ = "beras.datasets"  # its public home, shown in tracebacks
