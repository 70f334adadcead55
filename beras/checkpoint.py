"""Weights on disk: atomic ``.npz`` writes and fully checked loads."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .fileio import BadFileError, atomic_write

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
    atomic_write(path, lambda f: np.savez(f, **named))


def load_into(path: str | os.PathLike[str], targets: Mapping[str, np.ndarray], owner: str) -> None:
    """Read ``path`` and copy each array into ``targets`` in place, after checking them all.

    Nothing is written unless every name, shape and dtype matches.
    """
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            loaded = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"{owner}.load_weights: no such file: {path}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated or not a zip
        raise WeightsFileError(
            f"{owner}.load_weights: {path} is not a readable .npz weights file ({err})"
        ) from None
    missing = sorted(set(targets) - set(loaded))
    unexpected = sorted(set(loaded) - set(targets))
    problems = []
    if missing:
        problems.append(f"missing weights {missing}")
    if unexpected:
        problems.append(f"unexpected weights {unexpected}")
    for name in sorted(set(targets) & set(loaded)):
        want, got = targets[name], loaded[name]
        if want.shape != got.shape:
            problems.append(f"{name}: expected shape {want.shape}, file has {got.shape}")
        elif want.dtype != got.dtype:
            problems.append(f"{name}: expected dtype {want.dtype}, file has {got.dtype}")
    if problems:
        raise WeightsFileError(
            f"{owner}.load_weights: {path} does not match this model (nothing was loaded): "
            + "; ".join(problems)
        )
    non_finite = [_non_finite(name, loaded[name]) for name in sorted(targets)]
    non_finite = [text for text in non_finite if text]
    if non_finite:
        raise WeightsFileError(
            f"{owner}.load_weights: {path} holds non-finite weights (nothing was loaded): "
            + "; ".join(non_finite)
        )
    for name, target in targets.items():
        target[...] = loaded[name]


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
