"""Keras-style callbacks driven by Model.fit: schedulers, early stopping, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from beras.callbacks import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from beras.layers import Dense
from beras.losses import MeanSquaredError
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import BasicOptimizer


class _Scripted(SequentialModel):
    """One batch per epoch; its loss is scripted and each step adds 1 to every weight."""

    def __init__(self, losses):
        super().__init__([Dense(2, 2, initializer="zero")])
        self.losses = list(losses)
        self.steps = 0
        self.compile(BasicOptimizer(0.1), MeanSquaredError(), CategoricalAccuracy())

    def batch_step(self, x, y, training=True):
        if not training:
            return {"loss": 0.0, "acc": 0.0}, np.zeros((len(x), 2))
        for w in self.weights:
            w += 1.0
        loss = self.losses[self.steps]
        self.steps += 1
        return {"loss": loss, "acc": 0.5}


_X = np.zeros((4, 2), dtype=np.float32)
_Y = np.zeros((4, 2), dtype=np.float32)


def _fit(model, epochs, callbacks):
    return model.fit(_X, _Y, epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks)


class _LrSpy(Callback):
    def __init__(self):
        self.seen: list[float] = []

    def on_epoch_begin(self, epoch):
        self.seen.append(self.model.optimizer.learning_rate)


def test_learning_rate_scheduler_sets_the_rate_each_epoch():
    model = _Scripted([1.0] * 4)
    calls = []

    def schedule(epoch, lr):
        calls.append((epoch, lr))
        return 0.1 / (epoch + 1)

    spy = _LrSpy()
    _fit(model, 4, [LearningRateScheduler(schedule), spy])
    assert calls[0] == (0, 0.1)
    assert [e for e, _ in calls] == [0, 1, 2, 3]
    assert calls[2][1] == pytest.approx(0.05)  # receives the current rate
    assert spy.seen == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])


def test_learning_rate_scheduler_rejects_a_bad_rate():
    with pytest.raises(
        ValueError, match=r"LearningRateScheduler: schedule returned -1.0 for epoch 0"
    ):
        _fit(_Scripted([1.0]), 1, [LearningRateScheduler(lambda epoch, lr: -1.0)])


def test_reduce_lr_on_plateau():
    model = _Scripted([1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99])
    spy = _LrSpy()
    history = _fit(
        model, 7, [ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.03), spy]
    )
    assert history["loss"] == [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99]
    # best at epoch 1; no improvement at 2, 3 -> halve; at 4, 5 -> halve, clamped to min_lr
    assert spy.seen == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.03])
    assert model.optimizer.learning_rate == pytest.approx(0.03)


def test_reduce_lr_on_plateau_names_a_missing_metric():
    with pytest.raises(KeyError, match="ReduceLROnPlateau: monitored metric 'val_loss' not in"):
        _fit(_Scripted([1.0]), 1, [ReduceLROnPlateau()])


def test_reduce_lr_on_plateau_rejects_a_bad_factor():
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\), got 1.5"):
        ReduceLROnPlateau(factor=1.5)


def test_early_stopping_restores_the_best_weights():
    model = _Scripted([3.0, 1.0, 2.0, 2.5, 0.5])
    stopper = EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    history = _fit(model, 5, [stopper])
    assert history["loss"] == [3.0, 1.0, 2.0, 2.5]  # stopped after two epochs without improvement
    assert model.stop_training is True
    assert stopper.stopped_epoch == 3
    assert model.steps == 4
    for w in model.weights:  # the weights after epoch 2 (two +1 steps), not after epoch 4
        np.testing.assert_array_equal(w, 2.0)


def test_early_stopping_without_restore_keeps_the_last_weights():
    model = _Scripted([3.0, 1.0, 2.0, 2.5, 0.5])
    _fit(model, 5, [EarlyStopping(monitor="loss", patience=1)])
    for w in model.weights:
        np.testing.assert_array_equal(w, 4.0)


def test_early_stopping_max_mode_for_accuracy():
    stopper = EarlyStopping(monitor="val_acc")
    assert stopper.mode == "max"
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'best'"):
        EarlyStopping(mode="best")


def test_model_checkpoint_every_epoch(tmp_path):
    model = _Scripted([3.0, 1.0, 2.0])
    ckpt = ModelCheckpoint(str(tmp_path / "w-{epoch}.npz"), monitor="loss")
    _fit(model, 3, [ckpt])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1.npz", "w-2.npz", "w-3.npz"]
    with np.load(tmp_path / "w-2.npz") as data:
        np.testing.assert_array_equal(data["layers.0.Dense.w"], np.full((2, 2), 2.0))
    assert ckpt.last_saved_epoch == 3


def test_model_checkpoint_best_only(tmp_path):
    model = _Scripted([3.0, 1.0, 2.0, 0.5, 0.7])
    path = tmp_path / "best.npz"
    ckpt = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    _fit(model, 5, [ckpt])
    assert ckpt.last_saved_epoch == 4
    fresh = _Scripted([])
    fresh.load_weights(path)
    for w in fresh.weights:
        np.testing.assert_array_equal(w, 4.0)
    assert [p.name for p in tmp_path.iterdir()] == ["best.npz"]  # no temp files left


@pytest.mark.parametrize(
    ("callback", "owner"),
    [
        (lambda: EarlyStopping(), "EarlyStopping"),
        (lambda: ReduceLROnPlateau(), "ReduceLROnPlateau"),
        (lambda: ModelCheckpoint("unused.npz", save_best_only=True), "ModelCheckpoint"),
    ],
)
def test_monitoring_val_loss_without_validation_data_names_the_fix(callback, owner):
    with pytest.raises(
        KeyError,
        match=rf"{owner}: monitored metric 'val_loss' not in \['acc', 'loss'\] \(pass validation_data to fit\)",
    ):
        _fit(_Scripted([1.0]), 1, [callback()])
