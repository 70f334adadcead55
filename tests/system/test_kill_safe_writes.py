"""Writes that survive ``kill -9``: a file is always the previous or the new complete one.

A forked child saves a model's weights again and again (version ``i`` has every weight
equal to ``i``), writing a marker line before (``B i``) and after (``E i``) each save.
The parent SIGKILLs it after a random delay, 240 times, and after every kill checks:

- the weights file loads, every weight holds the same version ``v`` (complete), and ``v``
  is the last completed save or the one in progress: nothing older, nothing torn;
- a temporary file the killed writer left behind is removed by the next writer into
  that folder, or by :func:`beras.fileio.clean_stale_temps`; none survives.

A second test kills ``fit`` with ``BackupAndRestore`` 80 times at random moments and
restarts it: the backup always loads, its epoch never goes back, and each restart
continues from it.

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

from beras import fileio, runstate
from beras.activations import ReLU, Softmax
from beras.callbacks import BackupAndRestore, Callback
from beras.layers import Dense
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import Adam

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"), reason="POSIX fork and SIGKILL"
)

KILLS = 160  # of save_weights; and BACKUP_KILLS of fit with BackupAndRestore
BACKUP_KILLS = 80
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
        stale = _temps(folder)
        if ended:
            completed = ended[-1]
            # the writer saved once at least: it removed the temps of the previous kill
            assert not stale_from_last_round & stale, "a stale temp survived a write"
        cleaned_by_writer += len(stale_from_last_round - stale)

        on_disk = _version_on_disk(folder, reader)
        allowed = {completed, in_progress} - {None}
        if completed is None:
            assert on_disk in {None, in_progress}
        else:
            assert on_disk in allowed, f"kill {kill}: {on_disk} on disk, expected {allowed}"
        completed = on_disk  # the save in progress may have renamed before the kill
        version = max([version, *begun])

        stale_seen += len(stale - stale_from_last_round)
        assert len(stale - stale_from_last_round) <= 1  # one writer, one temp at a time
        if kill % 2:  # half the time the cleaner runs; otherwise the next writer must
            removed = fileio.clean_stale_temps(folder)
            assert {os.path.basename(p) for p in removed} == stale
            cleaned_by_cleaner += len(removed)
            stale_from_last_round = set()
        else:
            stale_from_last_round = stale
        markers.unlink(missing_ok=True)

    cleaned_by_cleaner += len(fileio.clean_stale_temps(folder))
    assert os.listdir(folder) == [WEIGHTS]
    assert stale_seen == cleaned_by_writer + cleaned_by_cleaner
    assert _version_on_disk(folder, reader) == completed or completed is None
    seconds = time.monotonic() - started
    print(
        f"\nkill-safe writes: {KILLS} SIGKILLs, {mid_save} mid-save, 0 files lost or torn; "
        f"{stale_seen} stale temps seen, removed by the next writer {cleaned_by_writer}, "
        f"by clean_stale_temps {cleaned_by_cleaner}; {version} saves begun; "
        f"delays 0-{1000 * longest:.0f} ms; {seconds:.1f} s"
    )
    assert mid_save >= KILLS // 10, "too few kills landed inside a save to prove anything"


class _EpochMarker(Callback):
    """Writes ``E <epochs done>`` at each epoch's end, just before the backup is written
    (``fit`` calls every ``BackupAndRestore`` last)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        os.write(self.fd, f"E {epoch + 1}\n".encode())


def _trainer(backup: Path, markers: Path) -> None:
    """The child: fit "forever" with BackupAndRestore, resuming from its backup."""
    code = 1
    try:
        fd = os.open(markers, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        model = _model()
        model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64, 128)).astype(np.float32)
        y = np.eye(64, dtype=np.float32)[rng.integers(0, 64, 64)]
        callbacks = [BackupAndRestore(backup), _EpochMarker(fd)]
        model.fit(x, y, epochs=10**9, batch_size=32, verbose=0, callbacks=callbacks, seed=0)
        code = 0
    finally:
        os._exit(code)


def test_sigkill_during_fit_with_backup_and_restore_keeps_a_loadable_backup(tmp_path):
    backup = tmp_path / "backup"
    state_file = backup / BackupAndRestore.FILE
    rng = random.Random(4)
    last_epoch = 0
    resumed = mid_write = 0
    started = time.monotonic()
    for kill in range(BACKUP_KILLS):
        markers = tmp_path / f"markers-{kill}"
        pid = os.fork()
        if pid == 0:
            _trainer(backup, markers)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        ended = [int(line.split()[1]) for line in _lines(markers)]
        if not state_file.exists():
            assert last_epoch == 0
            assert len(ended) <= 1  # killed before the first backup was complete
            continue
        epoch = int(runstate.load(state_file)["epoch"])  # complete and loadable
        assert epoch >= last_epoch, f"kill {kill}: the backup went back from {last_epoch}"
        if ended:
            resumed += ended[0] == last_epoch + 1 and last_epoch > 0
            assert ended[0] == last_epoch + 1, "the restart did not continue from the backup"
            assert epoch in (ended[-1] - 1, ended[-1])
            mid_write += epoch == ended[-1] - 1  # killed after the marker, before the rename
        else:
            assert epoch == last_epoch
        last_epoch = epoch
        fileio.clean_stale_temps(backup)
        assert os.listdir(backup) == [BackupAndRestore.FILE]
    print(
        f"\nkill-safe backups: {BACKUP_KILLS} SIGKILLs of fit with BackupAndRestore, "
        f"{resumed} restarts continued from the backup, the backup always loadable, "
        f"{last_epoch} epochs done; {mid_write} kills while a backup was being written; "
        f"{time.monotonic() - started:.1f} s"
    )
    assert last_epoch > 0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
