"""Two processes checkpointing into the same folder at once never corrupt each other.

Writer A saves versions 1000, 1001, ... and writer B 2000, 2001, ... (every weight of
version ``v`` equals ``v``), each into its own file and into one file they share, while
the parent loads every file over and over and runs :func:`beras.fileio.clean_stale_temps`
on the folder. Every load must give one writer's complete version, never older than a
version that writer had finished, and no writer may fail: the cleaner never removes a
locked temporary file, and a writer whose fresh temporary file the cleaner removed
before it could lock it notices and takes another.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from beras import fileio
from beras.activations import ReLU, Softmax
from beras.layers import Dense
from beras.model import SequentialModel

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")

SECONDS = 4.0
WRITERS = {"a": 1000, "b": 2000}


def _model() -> SequentialModel:
    return SequentialModel([Dense(64, 96), ReLU(), Dense(96, 10), Softmax()])


def _writer(folder: Path, name: str, first: int, deadline: float) -> None:
    """The child: alternate saves into its own file and the shared one. Never returns."""
    code = 1
    try:
        model = _model()
        version = first
        with open(folder.parent / f"{name}.log", "w") as log:
            while time.monotonic() < deadline:
                for w in model.weights:
                    w[...] = version
                model.save_weights(str(folder / f"{name}.npz"))
                model.save_weights(str(folder / "shared.npz"))
                log.write(f"{version}\n")
                log.flush()
                version += 1
        code = 0
    except BaseException:
        (folder.parent / f"{name}.error").write_text(traceback.format_exc())
    finally:
        os._exit(code)


def _version(path: Path, model: SequentialModel) -> int | None:
    if not path.exists():
        return None
    model.load_weights(str(path))
    values = np.unique(np.concatenate([np.ravel(w) for w in model.weights]))
    assert len(values) == 1, f"{path.name}: a mixture of versions {values[:5]}"
    return int(values[0])


def _owner(version: int) -> str:
    return "a" if version < 2000 else "b"


def test_two_writers_and_a_cleaner_in_one_folder(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    deadline = time.monotonic() + SECONDS
    pids = {}
    for name, first in WRITERS.items():
        pid = os.fork()
        if pid == 0:
            _writer(folder, name, first, deadline)
        pids[name] = pid

    reader = _model()
    loads = removed = 0
    seen: dict[str, set[str]] = {"a.npz": set(), "b.npz": set(), "shared.npz": set()}
    last = {"a.npz": 0, "b.npz": 0}
    while time.monotonic() < deadline:
        for file in seen:
            version = _version(folder / file, reader)
            if version is None:
                continue
            loads += 1
            owner = _owner(version)
            seen[file].add(owner)
            if file != "shared.npz":
                assert owner == file[0], f"{file} holds {owner}'s version {version}"
                assert version >= last[file], f"{file} went back from {last[file]} to {version}"
                last[file] = version
        removed += len(fileio.clean_stale_temps(folder))

    for name, pid in pids.items():
        _, status = os.waitpid(pid, 0)
        error = tmp_path / f"{name}.error"
        assert not error.exists(), error.read_text()
        assert os.WEXITSTATUS(status) == 0
    saves = {name: len((tmp_path / f"{name}.log").read_text().splitlines()) for name in WRITERS}
    assert sorted(os.listdir(folder)) == ["a.npz", "b.npz", "shared.npz"]
    for name, first in WRITERS.items():
        assert _version(folder / f"{name}.npz", reader) == first + saves[name] - 1
    assert _owner(_version(folder / "shared.npz", reader)) in WRITERS
    assert seen["shared.npz"] == {"a", "b"}, "the writers did not overlap: nothing was tested"
    print(
        f"\nconcurrent writers: {saves['a']} + {saves['b']} rounds of 2 saves, {loads} "
        f"complete loads, 0 torn, 0 writer errors; the cleaner removed {removed} temps "
        "(caught between creation and lock: their writers noticed and took new ones)"
    )
