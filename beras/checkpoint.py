"""Weights on disk: atomic ``.npz`` writes and fully checked loads."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .fileio import atomic_write


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
        raise ValueError(
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
        raise ValueError(
            f"{owner}.load_weights: {path} does not match this model (nothing was loaded): "
            + "; ".join(problems)
        )
    for name, target in targets.items():
        target[...] = loaded[name]
