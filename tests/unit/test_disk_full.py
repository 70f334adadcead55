"""A full disk or a failing device while saving: a clear error, nothing lost.

ENOSPC and EIO are simulated at each step of a save (the archive's bytes as they are written,
the fsync) during ``save_weights``, during ``ModelCheckpoint`` inside ``fit`` and during
``beras train``. Every time: :class:`beras.fileio.WriteError` naming the file, the
previous checkpoint intact and loadable, no temporary file left, and the model keeps
its weights.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from beras import checkpoint, cli, fileio, runs
from beras.activations import LeakyReLU, Softmax
from beras.callbacks import Callback, ModelCheckpoint
from beras.layers import Dense
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import Adam

CODES = {"ENOSPC": errno.ENOSPC, "EIO": errno.EIO}


def _model(seed: int = 0) -> SequentialModel:
    model = SequentialModel(
        [Dense(4, 8, seed=seed), LeakyReLU(), Dense(8, 3, seed=seed + 1), Softmax()]
    )
    model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 4)).astype(np.float32)
    return x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, 24)]


def _failure(code: str) -> OSError:
    return OSError(CODES[code], os.strerror(CODES[code]))


def _fail_on(monkeypatch: pytest.MonkeyPatch, step: str, code: str, after: int = 0) -> None:
    """Make the ``after+1``-th save fail at ``step`` ("data": mid-way through the bytes)."""
    calls = {"n": 0}
    if step == "data":
        real = checkpoint.atomic_write

        def atomic_write(path, content):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] <= after:
                return real(path, content)

            def first_bytes_then_fail(f):  # type: ignore[no-untyped-def]
                f.write(bytes(content)[:16])  # the first bytes of the new file
                raise _failure(code)

            return real(path, first_bytes_then_fail)

        monkeypatch.setattr(checkpoint, "atomic_write", atomic_write)
    else:
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):  # a file, not the folder
                calls["n"] += 1
                if calls["n"] > after:
                    raise _failure(code)
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


def _files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize("step", ["data", "fsync"])
def test_save_weights_on_a_full_disk(tmp_path, monkeypatch, code, step):
    path = tmp_path / "w.npz"
    old = _model(seed=0)
    old.save_weights(path)
    before = path.read_bytes()
    new = _model(seed=5)
    weights = [w.copy() for w in new.weights]
    _fail_on(monkeypatch, step, code)
    with pytest.raises(fileio.WriteError) as err:
        new.save_weights(path)
    monkeypatch.undo()
    assert str(path) in str(err.value)
    assert code in str(err.value)
    assert err.value.errno == CODES[code]
    assert path.read_bytes() == before
    assert _files(tmp_path) == ["w.npz"]
    for w, kept in zip(new.weights, weights):
        np.testing.assert_array_equal(w, kept)
    fresh = _model(seed=9)
    fresh.load_weights(path)
    for w, saved in zip(fresh.weights, old.weights):
        np.testing.assert_array_equal(w, saved)


class _Ends(Callback):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.events.append(f"epoch {epoch + 1}")

    def on_train_end(self) -> None:
        self.events.append("train end")


@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize("step", ["data", "fsync"])
def test_model_checkpoint_in_fit_on_a_full_disk(tmp_path, monkeypatch, code, step):
    """The third epoch's save fails: fit raises WriteError, epoch 2's file is intact, the
    model holds the weights of its 3 epochs, as Keras, ``on_train_end`` is not called
    (a failed fit leaves e.g. a BackupAndRestore backup in place)."""
    x, y = _data()
    path = tmp_path / "ckpt.npz"
    model = _model()
    ends = _Ends()
    _fail_on(monkeypatch, step, code, after=2)
    with pytest.raises(fileio.WriteError, match=r"ckpt\.npz") as err:
        model.fit(
            x,
            y,
            epochs=5,
            batch_size=8,
            verbose=0,
            seed=0,
            callbacks=[ModelCheckpoint(str(path)), ends],
        )
    monkeypatch.undo()
    assert err.value.errno == CODES[code]
    assert ends.events == ["epoch 1", "epoch 2"]  # the checkpoint comes first: it raised
    assert _files(tmp_path) == ["ckpt.npz"]

    after_2, after_3 = _model(), _model()
    after_2.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0)
    after_3.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=0)
    for w, want in zip(model.weights, after_3.weights):
        np.testing.assert_array_equal(w, want)  # training's result is kept
    loaded = _model(seed=7)
    loaded.load_weights(path)
    for w, want in zip(loaded.weights, after_2.weights):
        np.testing.assert_array_equal(w, want)  # the previous checkpoint is intact


@pytest.mark.parametrize("code", sorted(CODES))
def test_beras_train_on_a_full_disk(tmp_path, monkeypatch, capsys, code):
    """``beras train``: the second epoch's weights cannot be written: exit 1, a one-line
    error naming the file and the reason, epoch 1's weights intact and loadable."""
    out = tmp_path / "run"
    real_replace = os.replace
    renames = {"n": 0}

    def replace(src, dst):  # type: ignore[no-untyped-def]
        if os.fspath(dst).endswith("weights.npz"):
            renames["n"] += 1
            if renames["n"] == 2:
                raise _failure(code)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    argv = f"train --dataset mnist-mini --hidden 8 --epochs 3 --verbose 0 --out {out}"
    code_ = cli.main(argv.split())
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code_ == 1
    assert "Traceback" not in err
    assert f"cannot write {out / 'weights.npz'}" in err
    assert code in err
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]
    metrics, _, _ = runs.evaluate(out / "weights.npz")
    assert 0.0 <= metrics["acc"] <= 1.0
