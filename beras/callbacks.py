"""Keras-style callbacks for ``Model.fit``."""

from __future__ import annotations

import math
import os
from collections.abc import Callable as Fn
from typing import Any

import numpy as np


class Callback:
    """Base class: override any hook. ``self.model`` is set by ``fit``."""

    model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self) -> None: ...

    def on_train_end(self) -> None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None: ...

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None: ...


def _optimizer(model: Any, owner: str) -> Any:
    opt = getattr(model, "optimizer", None)
    if opt is None or not hasattr(opt, "learning_rate"):
        raise RuntimeError(f"{owner} needs a compiled model whose optimizer has a learning_rate")
    return opt


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch start to ``schedule(epoch, lr)``."""

    def __init__(self, schedule: Fn[[int, float], float]) -> None:
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int) -> None:
        opt = _optimizer(self.model, "LearningRateScheduler")
        lr = float(self.schedule(epoch, opt.learning_rate))
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"LearningRateScheduler: schedule returned {lr!r} for epoch {epoch}")
        opt.learning_rate = lr


def _monitored(logs: dict[str, float], monitor: str, owner: str) -> float:
    if monitor not in logs:
        hint = " (pass validation_data to fit)" if monitor.startswith("val_") else ""
        raise KeyError(f"{owner}: monitored metric {monitor!r} not in {sorted(logs)}{hint}")
    return logs[monitor]


def _better(mode: str, value: float, best: float, min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode(monitor: str, mode: str) -> str:
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        min_lr: float = 0.0,
        mode: str = "auto",
        verbose: int = 0,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.min_delta, self.min_lr, self.verbose = min_delta, min_lr, verbose
        self.mode = _mode(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "ReduceLROnPlateau")
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = _optimizer(self.model, "ReduceLROnPlateau")
            new_lr = max(opt.learning_rate * self.factor, self.min_lr)
            if new_lr < opt.learning_rate:
                if self.verbose:
                    print(
                        f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.3g}."
                    )
                opt.learning_rate = new_lr
            self.wait = 0


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (optionally restoring the best weights)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = _mode(monitor, mode)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if _better(self.mode, value, self.best, self.min_delta):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = [np.array(w, copy=True) for w in self.model.weights]
            return
        self.wait += 1
        if self.wait > self.patience:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            if self.restore_best_weights and self.best_weights is not None:
                for w, best in zip(self.model.weights, self.best_weights):
                    w[...] = best


class ModelCheckpoint(Callback):
    """Save the weights (atomically) at the end of every epoch, or only on improvement."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ) -> None:
        self.filepath = os.fspath(filepath)
        self.monitor, self.save_best_only = monitor, save_best_only
        self.mode = _mode(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last_saved_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        self.model.save_weights(self.filepath.format(epoch=epoch + 1, **logs))
        self.last_saved_epoch = epoch + 1
