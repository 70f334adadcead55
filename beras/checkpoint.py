"""Weights on disk: atomic ``.npz`` writes and fully checked loads."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .fileio import BadFileError, atomic_write
from .npzfile import Member, read_npz

__all__ = ["WeightsFileError", "load_into", "save"]


class WeightsFileError(BadFileError):
    """``load_weights`` refused a file; the model's weights were not changed.

    The file is unreadable (truncated, not an ``.npz``, pickled objects, beyond the
    reader's limits), does not match the model (names, shapes, dtypes), or holds NaN or
    infinite values. The message names the file and each offending weight. A
    ``ValueError``, as the refusals of ``load_weights`` always were.
    """


def save(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` to ``path`` as ``.npz``, atomically (see :func:`beras.fileio.atomic_write`)."""
    named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    # the archive is built in memory first: np.savez (NumPy 1.x) leaves its ZipFile open
    # when interrupted (Ctrl-C), and that ZipFile, closed later by the garbage collector
    # on a temporary file atomic_write had already closed, printed a traceback
    buffer = io.BytesIO()
    np.savez(buffer, **named)
    atomic_write(path, buffer.getvalue())


def load_into(path: str | os.PathLike[str], targets: Mapping[str, np.ndarray], owner: str) -> None:
    """Read ``path`` and copy each array into ``targets`` in place, after checking them all.

    Names, shapes and dtypes are checked from the archive's headers before any array is
    read (so a file declaring huge arrays allocates nothing), then every value must be
    finite. Nothing is written unless everything matches.

    Raises:
        FileNotFoundError: no file at ``path``.
        WeightsFileError: the file is unreadable, does not match ``targets``, or holds
            NaN or infinite values.
    """
    path = os.fspath(path)
    prefix = f"{owner}.load_weights: "

    def check(members: Mapping[str, Member]) -> None:
        problems = _mismatches(members, targets)
        if problems:
            raise WeightsFileError(
                f"{prefix}{path} does not match this model (nothing was loaded): "
                + "; ".join(problems)
            )

    try:
        loaded = read_npz(path, max_members=2 * len(targets) + 64, check=check)
    except FileNotFoundError:
        raise FileNotFoundError(f"{prefix}no such file: {path}") from None
    except WeightsFileError:
        raise
    except BadFileError as err:
        reason = str(err).removeprefix(f"{path}: ")
        raise WeightsFileError(
            f"{prefix}{path} is not a readable .npz weights file (nothing was loaded): {reason}"
        ) from None
    except OSError as err:  # a folder, no permission, an I/O error
        raise WeightsFileError(
            f"{prefix}{path} cannot be read ({err}); nothing was loaded"
        ) from None
    non_finite = [text for name in sorted(targets) if (text := _non_finite(name, loaded[name]))]
    if non_finite:
        raise WeightsFileError(
            f"{prefix}{path} holds non-finite weights (nothing was loaded): "
            + "; ".join(non_finite)
        )
    for name, target in targets.items():
        target[...] = loaded[name]


def _mismatches(members: Mapping[str, Member], targets: Mapping[str, np.ndarray]) -> list[str]:
    missing = sorted(set(targets) - set(members))
    unexpected = sorted(set(members) - set(targets))
    problems = []
    if missing:
        problems.append(f"missing weights {missing}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected}")
    for name in sorted(set(targets) & set(members)):
        want, got = targets[name], members[name]
        if want.shape != got.shape:
            problems.append(f"{name}: expected shape {want.shape}, file has {got.shape}")
        elif want.dtype != got.dtype:
            problems.append(f"{name}: expected dtype {want.dtype}, file has {got.dtype}")
    return problems


def _non_finite(name: str, array: np.ndarray) -> str:
    """``"NAME: 2 NaN, 1 +inf of 12 values"``, or ``""`` if every value is finite."""
    if array.dtype.kind not in "fc" or bool(np.isfinite(array).all()):
        return ""
    counts = [
        (int(np.count_nonzero(np.isnan(array))), "NaN"),
        (int(np.count_nonzero(np.isposinf(array.real))), "+inf"),
        (int(np.count_nonzero(np.isneginf(array.real))), "-inf"),
    ]
    found = ", ".join(f"{n} {what}" for n, what in counts if n)
    return f"{name}: {found} of {array.size} values"
