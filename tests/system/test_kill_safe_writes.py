"""Writes that survive ``kill -9``: a file is always the previous or the new complete one.

A forked child saves a model's weights again and again (version ``i`` has every weight
equal to ``i``), writing a marker line before (``B i``) and after (``E i``) each save.
The parent SIGKILLs it after a random delay, 240 times, and after every kill checks:

- the weights file loads, every weight holds the same version ``v`` (complete), and ``v``
  is the last completed save or the one in progress: nothing older, nothing torn;
- a temporary file the killed writer left behind is removed by the next writer into
  that folder, or by :func:`beras.fileio.clean_stale_temps`; none survives.

The figures (kills, how many landed mid-save, files lost) are printed; run with ``-s``.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from beras import fileio
from beras.activations import ReLU, Softmax
from beras.layers import Dense
from beras.model import SequentialModel

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="POSIX fork and SIGKILL"
)

KILLS = 240
WEIGHTS = "weights.npz"


def _model() -> SequentialModel:
    """About 200 KB of weights: a save takes long enough to be killed in the middle."""
    return SequentialModel([Dense(128, 192), ReLU(), Dense(192, 64), Softmax()])


def _set_version(model: SequentialModel, version: int) -> None:
    for w in model.weights:
        w[...] = version


def _writer(folder: Path, markers: Path, first: int) -> None:
    """The child: save versions first, first+1, ... until killed. Never returns."""
    code = 1
    try:
        model = _model()
        fd = os.open(markers, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        for version in range(first, first + 1_000_000):
            _set_version(model, version)
            os.write(fd, f"B {version}\n".encode())
            model.save_weights(str(folder / WEIGHTS))
            os.write(fd, f"E {version}\n".encode())
        code = 0
    finally:
        os._exit(code)


def _markers(path: Path) -> list[tuple[str, int]]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(kind, int(v)) for kind, v in (line.split() for line in lines)]


def _version_on_disk(folder: Path, model: SequentialModel) -> int | None:
    path = folder / WEIGHTS
    if not path.exists():
        return None
    model.load_weights(str(path))  # raises on a torn or corrupt file
    values = np.unique(np.concatenate([np.ravel(w) for w in model.weights]))
    assert len(values) == 1, f"a mixture of versions: {values[:5]}"
    return int(values[0])


def _temps(folder: Path) -> set[str]:
    return {name for name in os.listdir(folder) if name.endswith(".tmp")}


def _save_seconds(folder: Path) -> float:
    model = _model()
    start = time.perf_counter()
    for _ in range(5):
        model.save_weights(str(folder / "timing.npz"))
    os.unlink(folder / "timing.npz")
    return (time.perf_counter() - start) / 5


def test_sigkill_at_random_moments_never_loses_or_tears_the_weights_file(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    rng = random.Random(20261204)
    # delays spread over a few saves, so kills land before, inside and between them
    longest = max(0.02, 4 * _save_seconds(folder))
    reader = _model()
    completed = None  # the version on disk after the last kill (or whose save returned)
    version = 0
    mid_save = stale_seen = cleaned_by_writer = cleaned_by_cleaner = 0
    stale_from_last_round: set[str] = set()
    started = time.monotonic()

    for kill in range(KILLS):
        markers = tmp_path / f"markers-{kill}"
        pid = os.fork()
        if pid == 0:
            _writer(folder, markers, version + 1)
        time.sleep(rng.uniform(0.0, longest))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status), f"the writer ended by itself, status {status}"

        events = _markers(markers)
        begun = [v for kind, v in events if kind == "B"]
        ended = [v for kind, v in events if kind == "E"]
        in_progress = begun[-1] if begun and (not ended or ended[-1] != begun[-1]) else None
        mid_save += in_progress is not None
        if ended:
            completed = ended[-1]
            # the writer saved once at least: it removed the temps of the previous kill
            assert not stale_from_last_round & _temps(folder), "a stale temp survived a write"
            cleaned_by_writer += len(stale_from_last_round)
            stale_from_last_round = set()

        on_disk = _version_on_disk(folder, reader)
        allowed = {completed, in_progress} - {None}
        if completed is None:
            assert on_disk in {None, in_progress}
        else:
            assert on_disk in allowed, f"kill {kill}: {on_disk} on disk, expected {allowed}"
        completed = on_disk  # the save in progress may have renamed before the kill
        version = max([version, *begun])

        stale = _temps(folder)
        stale_seen += len(stale - stale_from_last_round)
        assert len(stale) <= 1 + len(stale_from_last_round)
        if kill % 2:  # half the time the cleaner runs; otherwise the next writer must
            removed = fileio.clean_stale_temps(folder)
            assert {os.path.basename(p) for p in removed} == stale
            cleaned_by_cleaner += len(removed)
            stale_from_last_round = set()
        else:
            stale_from_last_round |= stale
        markers.unlink(missing_ok=True)

    fileio.clean_stale_temps(folder)
    assert os.listdir(folder) == [WEIGHTS]
    assert _version_on_disk(folder, reader) == completed or completed is None
    seconds = time.monotonic() - started
    print(
        f"\nkill-safe writes: {KILLS} SIGKILLs, {mid_save} mid-save, 0 files lost or torn; "
        f"{stale_seen} stale temps seen, removed by the next writer {cleaned_by_writer}, "
        f"by clean_stale_temps {cleaned_by_cleaner}; {version} saves begun; "
        f"delays 0-{1000 * longest:.0f} ms; {seconds:.1f} s"
    )
    assert mid_save >= KILLS // 10, "too few kills landed inside a save to prove anything"
