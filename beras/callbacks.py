"""Keras-style callbacks for ``Model.fit``.

Callbacks that carry something from one epoch to the next (``EarlyStopping``'s best value
and patience count, ``History``'s metrics, ...) expose it with ``get_state()`` /
``set_state(state)`` as a flat dict of arrays, which :class:`BackupAndRestore` stores with
the rest of the training state (see :mod:`beras.runstate`).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable as Fn
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import runstate


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

    def get_state(self) -> dict[str, np.ndarray]:
        """What this callback carries between epochs, as a flat dict of arrays.

        The base class carries nothing (``{}``); callbacks with state override this and
        :meth:`set_state`, which :class:`BackupAndRestore` uses to continue a run.
        """
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`get_state` result; a mismatch raises ``ValueError``, changing nothing."""
        _StateReader(self, state, {}).done()


class _StateReader:
    """Checks a callback state against the entries it must have, before anything changes.

    ``spec`` maps each required entry to its kind: ``"str"``, ``"float"``, ``"int"`` (0-d)
    or ``"floats"`` / ``"ints"`` (1-d). Problems are collected; :meth:`done` raises them all.
    """

    def __init__(self, owner: Any, state: Mapping[str, Any], spec: dict[str, str]) -> None:
        self.name = type(owner).__name__
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{self.name}.set_state expected a mapping of arrays (from get_state), got "
                f"{type(state).__name__}"
            )
        self.state = {str(k): np.asarray(v) for k, v in state.items()}
        self.problems: list[str] = []
        self.used: set[str] = set()
        self.values: dict[str, Any] = {}
        for key, kind in spec.items():
            self.values[key] = self.read(key, kind)

    def read(self, key: str, kind: str) -> Any:
        self.used.add(key)
        if key not in self.state:
            self.problems.append(f"missing entry {key!r}")
            return None
        value = self.state[key]
        want_ndim = 1 if kind.endswith("s") else 0
        kinds = {"str": "U", "float": "f", "int": "iu", "floats": "f", "ints": "iu"}[kind]
        if value.ndim != want_ndim or value.dtype.kind not in kinds:
            shape = "a 1-d array" if want_ndim else "a scalar"
            self.problems.append(
                f"{key!r} must be {shape} of kind {kind.rstrip('s')}, got dtype {value.dtype} "
                f"shape {value.shape}"
            )
            return None
        if kind == "str":
            return str(value)
        if kind == "float":
            return float(value)
        if kind == "int":
            return int(value)
        return value.tolist()

    def expect(self, key: str, want: Any) -> None:
        """The entry must equal ``want`` (a setting the state only makes sense with)."""
        got = self.values.get(key)
        if got is not None and got != want:
            self.problems.append(f"{key} is {got!r} in the state but {want!r} here")

    def done(self) -> dict[str, Any]:
        extra = sorted(set(self.state) - self.used)
        if extra:
            self.problems.append(f"unexpected entries {extra}")
        if self.problems:
            raise ValueError(
                f"{self.name}.set_state: the state does not fit this callback (nothing was "
                "changed): " + "; ".join(self.problems)
            )
        return self.values


def _optional_epoch(value: int | None) -> np.ndarray:
    return np.array(-1 if value is None else int(value), dtype=np.int64)


class History(Callback):
    """Records the metrics of every epoch, as Keras's ``History``.

    ``fit`` always runs one (first, before the other callbacks see the logs), keeps it as
    ``model.history`` and returns its ``history`` dict: ``{"loss": [...], "acc": [...],
    ...}``, one value per epoch run; ``epoch`` lists those epochs' indices.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self) -> None:
        self.history, self.epoch = {}, []

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def get_state(self) -> dict[str, np.ndarray]:
        state = {
            "keys": np.array(list(self.history), dtype=str),
            "epoch": np.array(self.epoch, dtype=np.int64),
        }
        for key, values in self.history.items():
            state[f"history/{key}"] = np.array(values, dtype=np.float64)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        reader = _StateReader(self, state, {"epoch": "ints"})
        keys = reader.state.get("keys")
        reader.used.add("keys")
        history: dict[str, list[float]] = {}
        if keys is None or keys.ndim != 1 or keys.dtype.kind not in "U":
            reader.problems.append("'keys' must be a 1-d array of metric names")
        else:
            for key in keys.tolist():
                values = reader.read(f"history/{key}", "floats")
                epochs = reader.values["epoch"]
                if values is not None and epochs is not None and len(values) != len(epochs):
                    reader.problems.append(
                        f"history/{key} has {len(values)} values for {len(epochs)} epochs"
                    )
                history[key] = values
        values = reader.done()
        self.history, self.epoch = history, list(values["epoch"])


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

    def get_state(self) -> dict[str, np.ndarray]:
        """``monitor``, ``best`` and ``wait`` (the learning rate is the optimizer's state)."""
        return {
            "monitor": np.array(self.monitor),
            "best": np.array(self.best, dtype=np.float64),
            "wait": np.array(self.wait, dtype=np.int64),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        reader = _StateReader(self, state, {"monitor": "str", "best": "float", "wait": "int"})
        reader.expect("monitor", self.monitor)
        values = reader.done()
        self.best, self.wait = values["best"], values["wait"]

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
        self.on_train_begin()

    def on_train_begin(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_weights: list[np.ndarray] | None = None
        self.stopped_epoch: int | None = None

    def get_state(self) -> dict[str, np.ndarray]:
        """``monitor``, ``best``, ``wait``, ``stopped_epoch`` (-1: none) and the best weights."""
        state = {
            "monitor": np.array(self.monitor),
            "best": np.array(self.best, dtype=np.float64),
            "wait": np.array(self.wait, dtype=np.int64),
            "stopped_epoch": _optional_epoch(self.stopped_epoch),
        }
        for i, w in enumerate(self.best_weights or []):
            state[f"best_weights/{i}"] = np.array(w, copy=True)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        spec = {"monitor": "str", "best": "float", "wait": "int", "stopped_epoch": "int"}
        reader = _StateReader(self, state, spec)
        reader.expect("monitor", self.monitor)
        weights = sorted(
            (k for k in reader.state if k.startswith("best_weights/")),
            key=lambda k: (len(k), k),
        )
        current = list(getattr(self.model, "weights", None) or [])
        best: list[np.ndarray] | None = [] if weights else None
        if weights and len(weights) != len(current):
            reader.problems.append(
                f"{len(weights)} best weights for a model with {len(current)} weights"
            )
        for i, key in enumerate(weights):
            reader.used.add(key)
            value = reader.state[key]
            if key != f"best_weights/{i}":
                reader.problems.append(f"unexpected entry {key!r}")
            elif i < len(current) and (
                value.shape != current[i].shape or value.dtype != current[i].dtype
            ):
                reader.problems.append(
                    f"{key}: expected {current[i].dtype} {current[i].shape}, the state has "
                    f"{value.dtype} {value.shape}"
                )
            elif best is not None:
                best.append(np.array(value, copy=True))
        values = reader.done()
        self.best, self.wait = values["best"], values["wait"]
        self.stopped_epoch = None if values["stopped_epoch"] < 0 else values["stopped_epoch"]
        self.best_weights = best

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

    def get_state(self) -> dict[str, np.ndarray]:
        """``monitor``, ``best`` and ``last_saved_epoch`` (-1: none yet)."""
        return {
            "monitor": np.array(self.monitor),
            "best": np.array(self.best, dtype=np.float64),
            "last_saved_epoch": _optional_epoch(self.last_saved_epoch),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        spec = {"monitor": "str", "best": "float", "last_saved_epoch": "int"}
        reader = _StateReader(self, state, spec)
        reader.expect("monitor", self.monitor)
        values = reader.done()
        self.best = values["best"]
        saved = values["last_saved_epoch"]
        self.last_saved_epoch = None if saved < 0 else saved

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not _better(self.mode, value, self.best, 0.0):
                return
            self.best = value
        self.model.save_weights(self.filepath.format(epoch=epoch + 1, **logs))
        self.last_saved_epoch = epoch + 1


class BackupAndRestore(Callback):
    """Back up the whole training state after every epoch; continue from it after a crash.

    As Keras's ``BackupAndRestore``: at the end of each epoch the state is written to
    ``backup_dir`` (one file, ``training_state.npz``, replaced atomically, so a crash
    leaves the previous backup whole). When ``fit`` starts and a backup exists, the
    state is restored and training continues with the epoch after the backed-up one, so
    a run that was killed and started again with the same arguments ends as if it had
    never stopped: with the same weights, history and predictions, bit for bit. When
    training completes (including an early stop), the backup is deleted unless
    ``delete_checkpoint=False``; an interrupted ``fit`` (an exception, Ctrl-C, a kill)
    leaves it in place.

    The state (:mod:`beras.runstate`) is every weight (non-trainable ones too), the
    optimizer's state, the epoch counter, the state of every random generator training
    draws from (the shuffling one and each stochastic layer's ``rng``) and the state of
    every callback that has one (``History``, ``EarlyStopping``, ``ReduceLROnPlateau``,
    ``ModelCheckpoint``, ...). Unlike Keras, the restored ``History`` makes ``fit``
    return the whole run's history, not only the epochs run after the restart.

    Args:
        backup_dir: the folder holding the backup (created when first needed). Use one
            folder per training run.
        save_freq: ``"epoch"``, the only frequency supported: a backup inside an epoch
            would also have to replay the epoch's shuffling and metric sums, so Beras
            backs up at epoch boundaries only (Keras also accepts a number of batches).
        delete_checkpoint: delete the backup when training completes.

    Raises (in ``fit``):
        beras.runstate.RunStateError: (a ``ValueError``) the backup is unreadable or does
            not match this model, optimizer or callbacks; nothing is changed.
    """

    FILE = "training_state.npz"

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str = "epoch",
        delete_checkpoint: bool = True,
    ) -> None:
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(
                f"BackupAndRestore: backup_dir must be a folder path, got {backup_dir!r}"
            )
        if save_freq != "epoch":
            raise ValueError(
                f"BackupAndRestore: save_freq must be 'epoch', got {save_freq!r}; Beras backs "
                "up at the end of each epoch only"
            )
        self.backup_dir = Path(backup_dir)
        self.save_freq = save_freq
        self.delete_checkpoint = bool(delete_checkpoint)
        #: The epoch count restored at the start of the last ``fit`` (None: no backup).
        self.restored_epoch: int | None = None

    @property
    def path(self) -> Path:
        """The backup file."""
        return self.backup_dir / self.FILE

    def _loop(self) -> Any:
        loop = getattr(self.model, "fit_loop", None)
        if loop is None:
            raise RuntimeError("BackupAndRestore works inside Model.fit only")
        return loop

    def on_train_begin(self) -> None:
        self.restored_epoch = None
        if not self.path.exists():
            return
        loop = self._loop()
        state = runstate.load(self.path)
        self.restored_epoch = runstate.restore(self.model, state, loop, where=str(self.path))
        loop.initial_epoch = self.restored_epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        runstate.save(self.path, runstate.capture(self.model, self._loop(), epoch + 1))

    def on_train_end(self) -> None:
        if not self.delete_checkpoint:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            self.backup_dir.rmdir()  # only if nothing else is in it
