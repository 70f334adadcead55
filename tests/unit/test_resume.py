"""Resuming training: a fit interrupted in epoch k and continued by BackupAndRestore on a
fresh model and optimizer ends bit-identical to the uninterrupted fit (weights, history,
predictions); a bad backup changes nothing; ``initial_epoch`` numbers epochs as Keras does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beras import runstate
from beras.activations import ReLU, Softmax
from beras.callbacks import (
    BackupAndRestore,
    Callback,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from beras.core import Diffable, Tensor
from beras.layers import BatchNormalization, Dense, Dropout
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import SGD, Adam, BasicOptimizer, RMSProp


class _Noise(Diffable):
    """A Dropout-like layer: in training, zero each unit with probability ``rate``, drawn from ``self.rng``."""

    stochastic = True
    input_gradient_layout = "elementwise"

    def __init__(self, rate: float, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        x = np.asarray(x)
        if not training:
            self.mask = np.ones_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.rate
            self.mask = keep.astype(x.dtype) / np.asarray(1.0 - self.rate, dtype=x.dtype)
        return x * self.mask

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(self.mask)]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        return [Tensor(np.asarray(up) * self.mask) for up in J]


class _Boom(Exception):
    pass


class _CrashAt(Callback):
    """Raises in epoch ``epoch``, after its ``batch``-th batch (weights already changed)."""

    def __init__(self, epoch: int, batch: int = 1) -> None:
        self.epoch, self.batch, self.current = epoch, batch, -1

    def on_epoch_begin(self, epoch: int) -> None:
        self.current = epoch

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        if self.current == self.epoch and batch == self.batch:
            raise _Boom(f"crash in epoch {self.epoch + 1}")


_RNG = np.random.default_rng(20261204)
_X = _RNG.normal(size=(96, 8)).astype(np.float32)
_Y = np.eye(3, dtype=np.float32)[_RNG.integers(0, 3, 96)]
_XV = _RNG.normal(size=(24, 8)).astype(np.float32)
_YV = np.eye(3, dtype=np.float32)[_RNG.integers(0, 3, 24)]

OPTIMIZERS = {
    "adam": lambda: Adam(0.01),
    "amsgrad": lambda: Adam(0.01, amsgrad=True),
    "rmsprop": lambda: RMSProp(0.005),
    "sgd-momentum": lambda: SGD(0.05, momentum=0.9),
    "sgd-nesterov": lambda: SGD(0.05, momentum=0.9, nesterov=True),
    "basic": lambda: BasicOptimizer(0.05),
}


def _model(optimizer: str, seed: int, noise: bool = True) -> SequentialModel:
    """Each fresh model differs from the others (weights, noise generator) unless restored."""
    layers: list[Any] = [Dense(8, 16, "kaiming", seed=seed), ReLU()]
    if noise:
        layers.append(_Noise(0.3, seed=seed + 100))
    layers += [Dense(16, 3, "kaiming", seed=seed + 1), Softmax()]
    model = SequentialModel(layers)
    model.compile(OPTIMIZERS[optimizer](), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def _callbacks() -> list[Callback]:
    """Stateful callbacks whose state decides the run: the learning rate halves on every
    epoch without a 1e9 improvement (all but the first), and training stops after 4 of them."""
    return [
        ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=1e9),
        EarlyStopping("val_loss", patience=4, min_delta=1e9, restore_best_weights=True),
    ]


def _fit(model: SequentialModel, extra: list[Callback], **kwargs: Any) -> dict[str, list[float]]:
    args: dict[str, Any] = {
        "epochs": 8,
        "batch_size": 16,
        "verbose": 0,
        "seed": 5,
        "validation_data": (_XV, _YV),
    }
    args.update(kwargs)
    return model.fit(_X, _Y, callbacks=[*_callbacks(), *extra], **args)


def _max_abs_diff(a: SequentialModel, b: SequentialModel) -> float:
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a.weights, b.weights)
    )


def _assert_identical(reference: SequentialModel, resumed: SequentialModel) -> None:
    for name, u, v in zip(reference.weight_names(), reference.weights, resumed.weights):
        assert np.array_equal(u, v), f"{name}: max |diff| {np.max(np.abs(u - v))}"
    assert np.array_equal(reference.predict(_XV), resumed.predict(_XV))
    assert reference.optimizer.learning_rate == resumed.optimizer.learning_rate
    assert reference.optimizer.get_state(reference.weights).keys() == (
        resumed.optimizer.get_state(resumed.weights).keys()
    )
    for key, value in reference.optimizer.get_state(reference.weights).items():
        assert np.array_equal(value, resumed.optimizer.get_state(resumed.weights)[key]), key


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("crash_epoch", [0, 2, 4])
def test_interrupted_fit_resumed_on_a_fresh_model_is_bit_identical(
    tmp_path, optimizer, crash_epoch
):
    """Crash mid-epoch k, resume with a new model and optimizer: same weights, history,
    predictions and optimizer state as the run that never stopped."""
    reference = _model(optimizer, seed=1)
    expected = _fit(reference, [])
    assert 1 < len(expected["loss"]) < 8  # EarlyStopping ended it: its state mattered

    backup = tmp_path / "backup"
    crashed = _model(optimizer, seed=1)
    with pytest.raises(_Boom):
        _fit(crashed, [_CrashAt(crash_epoch), BackupAndRestore(backup)])
    if crash_epoch == 0:
        assert not backup.exists()  # no epoch completed, nothing to back up
    else:
        assert (backup / BackupAndRestore.FILE).is_file()

    # other weights and noise, all to be restored (with no backup, a run from scratch)
    resumed = _model(optimizer, seed=1 if crash_epoch == 0 else 2)
    restorer = BackupAndRestore(backup)
    history = _fit(resumed, [restorer])
    assert restorer.restored_epoch == (None if crash_epoch == 0 else crash_epoch)
    assert history == expected
    _assert_identical(reference, resumed)
    assert not backup.exists()  # deleted once training completed


@pytest.mark.parametrize("optimizer", ["adam", "sgd-momentum"])
def test_every_crash_point_resumes_identically_with_validation_split(tmp_path, optimizer):
    """With validation_split and a cosine-like schedule, a crash in any epoch resumes exactly."""

    def schedule(epoch: int, lr: float) -> float:
        return 0.01 / (1 + epoch)

    def fit(model: SequentialModel, extra: list[Callback]) -> dict[str, list[float]]:
        return model.fit(
            _X,
            _Y,
            epochs=5,
            batch_size=32,
            verbose=0,
            seed=3,
            validation_split=0.25,
            callbacks=[LearningRateScheduler(schedule), *extra],
        )

    reference = _model(optimizer, seed=7)
    expected = fit(reference, [])
    for crash_epoch in range(1, 5):
        backup = tmp_path / f"backup{crash_epoch}"
        with pytest.raises(_Boom):
            fit(
                _model(optimizer, seed=7),
                [_CrashAt(crash_epoch, batch=0), BackupAndRestore(backup)],
            )
        resumed = _model(optimizer, seed=8)
        assert fit(resumed, [BackupAndRestore(backup)]) == expected
        _assert_identical(reference, resumed)


@pytest.mark.parametrize("crash_epoch", [1, 3])
def test_dropout_and_batch_normalization_resume_identically(tmp_path, crash_epoch):
    """Beras's own stochastic layer (Dropout's rng) and non-trainable weights (the moving
    statistics of BatchNormalization, built lazily) are part of the backup."""

    def model(seed: int) -> SequentialModel:
        net = SequentialModel(
            [
                Dense(8, 16, "kaiming", seed=seed),
                BatchNormalization(momentum=0.8),
                ReLU(),
                Dropout(0.25, seed=seed + 100),
                Dense(16, 3, "kaiming", seed=seed + 1),
                Softmax(),
            ]
        )
        net.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
        return net

    reference = model(1)
    expected = _fit(reference, [])
    backup = tmp_path / "b"
    with pytest.raises(_Boom):
        _fit(model(1), [_CrashAt(crash_epoch), BackupAndRestore(backup)])
    state = runstate.load(backup / BackupAndRestore.FILE)
    assert "weights/layers.1.BatchNormalization.moving_mean" in state
    assert any(k.startswith("rng/layers.3.Dropout/") for k in state)
    resumed = model(2)
    assert _fit(resumed, [BackupAndRestore(backup)]) == expected
    _assert_identical(reference, resumed)


def test_two_interruptions_in_a_row_still_resume_identically(tmp_path):
    reference = _model("adam", seed=1)
    expected = _fit(reference, [])
    backup = tmp_path / "b"
    for crash, seed in ((1, 1), (3, 13)):  # the second run starts from the first's backup
        with pytest.raises(_Boom):
            _fit(_model("adam", seed=seed), [_CrashAt(crash), BackupAndRestore(backup)])
    resumed = _model("adam", seed=99)
    assert _fit(resumed, [BackupAndRestore(backup)]) == expected
    _assert_identical(reference, resumed)


def test_the_global_generator_is_restored_when_fit_has_no_seed(tmp_path):
    from beras.utils import set_random_seed

    set_random_seed(11)
    reference = _model("rmsprop", seed=1)
    expected = _fit(reference, [], seed=None)
    set_random_seed(11)
    backup = tmp_path / "b"
    with pytest.raises(_Boom):
        _fit(_model("rmsprop", seed=1), [_CrashAt(2), BackupAndRestore(backup)], seed=None)
    set_random_seed(12345)  # another process, another global state
    resumed = _model("rmsprop", seed=3)
    assert _fit(resumed, [BackupAndRestore(backup)], seed=None) == expected
    _assert_identical(reference, resumed)


def test_without_the_restore_the_resumed_run_differs(tmp_path):
    """The guard for the tests above: a fresh model continued by initial_epoch alone
    (weights loaded, but no optimizer, generator or callback state) does not match."""
    reference = _model("adam", seed=1)
    expected = _fit(reference, [])
    backup = tmp_path / "b"
    with pytest.raises(_Boom):
        _fit(_model("adam", seed=1), [_CrashAt(2), BackupAndRestore(backup)])
    state = runstate.load(backup / BackupAndRestore.FILE)
    partial = _model("adam", seed=2)
    for name, w in zip(partial.weight_names(), partial.weights):
        w[...] = state[f"weights/{name}"]
    history = _fit(partial, [], initial_epoch=2)
    assert history["loss"] != expected["loss"][2:]
    assert _max_abs_diff(reference, partial) > 0


def test_backup_is_kept_when_asked_and_a_completed_backup_trains_no_more(tmp_path):
    backup = tmp_path / "b"
    reference = _model("adam", seed=1, noise=False)
    expected = _fit(reference, [BackupAndRestore(backup, delete_checkpoint=False)])
    assert (backup / BackupAndRestore.FILE).is_file()
    again = _model("adam", seed=4, noise=False)
    restorer = BackupAndRestore(backup, delete_checkpoint=False)
    assert _fit(again, [restorer]) == expected  # restored after the last epoch: nothing to run
    assert restorer.restored_epoch == len(expected["loss"])
    _assert_identical(reference, again)


def test_backup_dir_with_other_files_is_left_with_them(tmp_path):
    backup = tmp_path / "b"
    backup.mkdir()
    (backup / "notes.txt").write_text("mine")
    _fit(_model("adam", seed=1, noise=False), [BackupAndRestore(backup)], epochs=2)
    assert sorted(os.listdir(backup)) == ["notes.txt"]


# ------------------------------------------------------------------ bad backups
def _snapshot(model: SequentialModel) -> dict[str, np.ndarray]:
    loop = runstate.FitLoop(np.random.default_rng(0), [], 1)
    return runstate.capture(model, loop, 0)


def _same_snapshot(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _trained(optimizer: str = "adam", seed: int = 1) -> SequentialModel:
    model = _model(optimizer, seed)
    model.fit(_X, _Y, epochs=1, batch_size=32, verbose=0, seed=0)
    return model


@pytest.mark.parametrize(
    "damage",
    ["garbage", "truncated", "empty", "not-a-state"],
)
def test_unreadable_backup_is_a_clear_error_and_changes_nothing(tmp_path, damage):
    backup = tmp_path / "b"
    with pytest.raises(_Boom):
        _fit(_model("adam", seed=1), [_CrashAt(2), BackupAndRestore(backup)])
    path = backup / BackupAndRestore.FILE
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip at all" * 10)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(path, weights=np.zeros(3))
    damaged = path.read_bytes()
    model = _trained()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"not a (readable )?Beras training state"):
        _fit(model, [BackupAndRestore(backup)])
    assert _same_snapshot(before, _snapshot(model))
    assert path.read_bytes() == damaged  # the evidence is left in place


def _crashed_backup(tmp_path: Path, model: SequentialModel, callbacks=None) -> Path:
    backup = tmp_path / "b"
    cbs = _callbacks() if callbacks is None else callbacks
    with pytest.raises(_Boom):
        model.fit(
            _X,
            _Y,
            epochs=8,
            batch_size=16,
            verbose=0,
            seed=5,
            validation_data=(_XV, _YV),
            callbacks=[*cbs, _CrashAt(2), BackupAndRestore(backup)],
        )
    return backup


@pytest.mark.parametrize(
    ("other", "message"),
    [
        (lambda: _model("rmsprop", seed=3), "state of a Adam, not of a RMSProp"),
        (lambda: _model("amsgrad", seed=3), "amsgrad is False in the state but True here"),
        (lambda: _model("adam", seed=3, noise=False), "random generators"),
        (
            lambda: _with_hidden(32),
            r"weight layers\.0\.Dense\.w: expected float32 \(8, 32\), the state has float32 \(8, 16\)",
        ),
    ],
)
def test_backup_of_another_model_or_optimizer_is_refused_and_changes_nothing(
    tmp_path, other, message
):
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    model = other()
    model.fit(_X, _Y, epochs=1, batch_size=32, verbose=0, seed=0)
    before = _snapshot(model)
    with pytest.raises(ValueError, match=message):
        _fit(model, [BackupAndRestore(backup)])
    assert _same_snapshot(before, _snapshot(model))
    assert (backup / BackupAndRestore.FILE).is_file()


def _with_hidden(hidden: int) -> SequentialModel:
    model = SequentialModel(
        [Dense(8, hidden, seed=0), ReLU(), _Noise(0.3, 1), Dense(hidden, 3, seed=1), Softmax()]
    )
    model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def test_backup_with_other_callbacks_is_refused_and_callbacks_keep_their_state(tmp_path):
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    model = _trained()
    plateau = ReduceLROnPlateau("val_loss", patience=3)
    plateau.best, plateau.wait = 0.25, 2
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"the state has callbacks \['EarlyStopping.0', "):
        model.fit(
            _X,
            _Y,
            epochs=8,
            batch_size=16,
            verbose=0,
            validation_data=(_XV, _YV),
            callbacks=[plateau, BackupAndRestore(backup)],
        )
    assert (plateau.best, plateau.wait) == (0.25, 2)
    assert _same_snapshot(before, _snapshot(model))


def test_backup_with_a_callback_monitoring_another_metric_is_refused(tmp_path):
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    model = _trained()
    callbacks = [
        ReduceLROnPlateau("val_loss", factor=0.5, patience=1, min_delta=1e9),
        EarlyStopping("loss", patience=4),
        BackupAndRestore(backup),
    ]
    before = _snapshot(model)
    with pytest.raises(ValueError, match="monitor is 'val_loss' in the state but 'loss' here"):
        model.fit(_X, _Y, epochs=8, batch_size=16, verbose=0, callbacks=callbacks)
    assert _same_snapshot(before, _snapshot(model))


def test_backup_with_nan_weights_is_refused(tmp_path):
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    path = backup / BackupAndRestore.FILE
    state = runstate.load(path)
    state["weights/layers.0.Dense.w"][0, 0] = np.nan
    runstate.save(path, state)
    model = _trained()
    before = _snapshot(model)
    with pytest.raises(ValueError, match=r"layers\.0\.Dense\.w has NaN or infinite values"):
        _fit(model, [BackupAndRestore(backup)])
    assert _same_snapshot(before, _snapshot(model))


def test_a_failure_while_applying_rolls_everything_back(tmp_path, monkeypatch):
    """Even past the checks (a set_state that fails late), restore leaves nothing half-done."""
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    model = _trained()
    callbacks = _callbacks()
    loop = runstate.FitLoop(np.random.default_rng(0), [History(), *callbacks], 8)
    for cb in loop.callbacks:
        cb.set_model(model)
    before = runstate.capture(model, loop, 0)
    calls = {"n": 0}
    original = EarlyStopping.set_state

    def fail_once(self, state):
        calls["n"] += 1
        if calls["n"] == 2:  # the first call is the check on a copy; the second applies
            raise RuntimeError("disk vanished")
        return original(self, state)

    monkeypatch.setattr(EarlyStopping, "set_state", fail_once)
    with pytest.raises(RuntimeError, match="disk vanished"):
        runstate.restore(model, runstate.load(backup / BackupAndRestore.FILE), loop)
    assert _same_snapshot(before, runstate.capture(model, loop, 0))


def test_save_freq_other_than_epoch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="save_freq must be 'epoch', got 10"):
        BackupAndRestore(tmp_path, save_freq=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backup_dir must be a folder path"):
        BackupAndRestore("")


def test_stochastic_layer_without_a_generator_cannot_be_backed_up(tmp_path):
    model = _model("adam", seed=1)
    model.layers[2].rng = np.random.RandomState(0)
    with pytest.raises(TypeError, match=r"layers\.2\._Noise declares stochastic = True"):
        model.fit(
            _X, _Y, epochs=1, batch_size=32, verbose=0, callbacks=[BackupAndRestore(tmp_path)]
        )


def test_backup_file_loads_without_pickles_and_is_written_atomically(tmp_path, monkeypatch):
    backup = _crashed_backup(tmp_path, _model("adam", seed=1))
    path = backup / BackupAndRestore.FILE
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
        assert int(data["epoch"]) == 2
    good = path.read_bytes()

    def failing_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    model = _model("adam", seed=1)
    with pytest.raises(OSError, match="disk full"):
        _fit(model, [BackupAndRestore(backup)])
    assert path.read_bytes() == good  # the previous backup survives a failed write
    assert os.listdir(backup) == [BackupAndRestore.FILE]


# ------------------------------------------------------------------ initial_epoch
class _Epochs(Callback):
    def __init__(self) -> None:
        self.seen: list[int] = []

    def on_epoch_begin(self, epoch: int) -> None:
        self.seen.append(epoch)


def test_initial_epoch_numbers_epochs_as_keras_does():
    model = _model("adam", seed=1, noise=False)
    spy = _Epochs()
    history = model.fit(
        _X, _Y, epochs=5, batch_size=32, verbose=0, initial_epoch=3, callbacks=[spy]
    )
    assert spy.seen == [3, 4]
    assert {len(v) for v in history.values()} == {2}
    assert model.history is not None
    assert model.history.epoch == [3, 4]
    assert model.fit(_X, _Y, epochs=5, batch_size=32, verbose=0, initial_epoch=5) == {}


def test_fit_in_two_parts_with_initial_epoch_continues_the_schedule():
    """Callbacks see true epoch indices: a schedule continues where the first part ended."""
    rates: list[float] = []

    class _Rate(Callback):
        def on_epoch_begin(self, epoch: int) -> None:
            rates.append(self.model.optimizer.learning_rate)

    def sched(epoch: int, lr: float) -> float:
        return 0.1 / 2**epoch

    model = _model("sgd-momentum", seed=1, noise=False)
    model.fit(
        _X,
        _Y,
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[LearningRateScheduler(sched), _Rate()],
    )
    model.fit(
        _X,
        _Y,
        epochs=4,
        batch_size=32,
        verbose=0,
        initial_epoch=2,
        callbacks=[LearningRateScheduler(sched), _Rate()],
    )
    assert rates == [0.1, 0.05, 0.025, 0.0125]


@pytest.mark.parametrize("bad", [-1, 1.5, True, 6])
def test_invalid_initial_epoch_is_refused(bad):
    model = _model("adam", seed=1, noise=False)
    before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError, match="initial_epoch"):
        model.fit(_X, _Y, epochs=5, batch_size=32, verbose=0, initial_epoch=bad)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.weights))


def test_model_checkpoint_state_survives_a_resume(tmp_path):
    """ModelCheckpoint(save_best_only) keeps its best value across the restart."""
    backup = tmp_path / "b"
    best = tmp_path / "best.npz"

    def run(model, extra):
        checkpoint = ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True)
        model.fit(
            _X,
            _Y,
            epochs=6,
            batch_size=16,
            verbose=0,
            seed=2,
            validation_data=(_XV, _YV),
            callbacks=[checkpoint, *extra],
        )
        return checkpoint

    reference = run(_model("adam", seed=1), [])
    with np.load(best) as data:
        expected = {k: data[k] for k in data.files}
    best.unlink()
    with pytest.raises(_Boom):
        run(_model("adam", seed=1), [_CrashAt(4), BackupAndRestore(backup)])
    resumed = run(_model("adam", seed=5), [BackupAndRestore(backup)])
    assert (resumed.best, resumed.last_saved_epoch) == (reference.best, reference.last_saved_epoch)
    with np.load(best) as data:
        assert data.files == list(expected)
        assert all(np.array_equal(data[k], expected[k]) for k in data.files)
