"""The training loop behind ``Model.fit``, ``Model.evaluate`` and ``Model.predict``.

As in Keras, the model holds the layers and the compiled loss, metric and optimizer,
and delegates the loop to this module: batching (reshuffled every epoch, the last
partial batch kept), metrics averaged over samples, validation, callbacks, progress,
and stopping on a non-finite step or Ctrl-C. One step is the model's own
``batch_step``.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .callbacks import BackupAndRestore, Callback, History
from .progress import Progress
from .runstate import FitLoop
from .utils import get_rng
from .validation import int_at_least, paired_data, validation_split_sizes

__all__ = ["NonFiniteLossError", "evaluate", "fit", "predict"]


class NonFiniteLossError(FloatingPointError):
    """A training step produced a NaN or infinite loss or gradient; nothing was updated."""


class _SampleMean:
    """Running means of per-batch metrics, each batch weighted by its size."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.samples = 0

    def add(self, metrics: dict[str, Any], size: int) -> None:
        self.samples += size
        for k, v in metrics.items():
            self.totals[k] += float(v) * size

    def result(self) -> dict[str, float]:
        return {k: v / self.samples for k, v in self.totals.items()}


def _batches(n: int, batch_size: int, order: np.ndarray | None = None) -> Iterator[tuple[Any, int]]:
    """``(index, size)`` of each batch over ``n`` samples: a slice, or part of ``order``."""
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        yield (slice(lo, hi) if order is None else order[lo:hi]), hi - lo


def fit(
    model: Any,
    x: Any,
    y: Any,
    epochs: int,
    batch_size: int,
    shuffle: bool = True,
    validation_data: tuple[Any, Any] | None = None,
    verbose: int = 1,
    callbacks: Sequence[Callback] = (),
    validation_split: float = 0.0,
    seed: int | np.random.Generator | None = None,
    initial_epoch: int = 0,
) -> dict[str, list[float]]:
    """``Model.fit``'s loop (see its docstring); returns the per-epoch history.

    While it runs, ``model.fit_loop`` is a :class:`~beras.runstate.FitLoop`: the
    shuffling generator, the callbacks in calling order (a ``History`` first, every
    ``BackupAndRestore`` last) and the epoch range, which an ``on_train_begin`` may
    move (``BackupAndRestore`` does, after restoring a backup).
    """
    model._require_compiled("fit")
    x, y = paired_data(x, y, "fit")
    epochs = int_at_least(epochs, 0, "epochs", "fit")
    initial_epoch = int_at_least(initial_epoch, 0, "initial_epoch", "fit")
    if initial_epoch > epochs:
        raise ValueError(
            f"fit: initial_epoch ({initial_epoch}) is after epochs ({epochs}); epochs is "
            "the index of the last epoch, as in Keras, not a number of further epochs"
        )
    batch_size = int_at_least(batch_size, 1, "batch_size", "fit")
    if validation_data is None and validation_split:
        # the last samples, before any shuffling, as Keras does
        n_fit, _ = validation_split_sizes(len(x), validation_split, "fit: validation_split")
        validation_data = (x[n_fit:], y[n_fit:])
        x, y = x[:n_fit], y[:n_fit]
    if validation_data is not None:
        validation_data = paired_data(*validation_data, "fit (validation_data)")

    rng = get_rng(seed)
    model.history = history = History()
    backups = [cb for cb in callbacks if isinstance(cb, BackupAndRestore)]
    all_callbacks = [history, *(cb for cb in callbacks if cb not in backups), *backups]
    for cb in all_callbacks:
        cb.set_model(model)
    model.stop_training = False
    model.stop_reason = ""
    model.interrupted_at = None
    if backups:
        # build lazily built layers (BatchNormalization) before a backup is restored into
        # them, as Keras builds the model before on_train_begin; inference draws nothing
        model(x[:1], training=False)
    model.fit_loop = loop = FitLoop(rng, all_callbacks, epochs, initial_epoch)
    try:
        _fit_epochs(model, x, y, batch_size, shuffle, validation_data, verbose, loop)
    finally:
        model.fit_loop = None
    return {k: list(v) for k, v in history.history.items()}


def _fit_epochs(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool,
    validation_data: tuple[Any, Any] | None,
    verbose: int,
    loop: FitLoop,
) -> None:
    """The epochs of ``fit``, from ``loop.initial_epoch`` as ``on_train_begin`` left it."""
    rng, callbacks, epochs = loop.rng, loop.callbacks, loop.epochs
    n = len(x)
    num_batches = math.ceil(n / batch_size)
    for cb in callbacks:
        cb.on_train_begin()
    for epoch in range(loop.initial_epoch, epochs):
        if model.stop_training:  # restored from a run a callback was stopping
            break
        mean = _SampleMean()
        progress: Progress | None = None
        try:  # the whole epoch, so Ctrl-C in validation or a callback is located too
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else None
            progress = Progress(verbose, num_batches, epoch, epochs)
            for batch, (idx, size) in enumerate(_batches(n, batch_size, order)):
                try:
                    metrics = model.batch_step(x[idx], y[idx], training=True)
                except NonFiniteLossError as err:
                    message = (
                        f"{type(model).__name__}.fit stopped at epoch {epoch + 1}, batch "
                        f"{batch + 1}/{num_batches}: {err} The weights are those from before "
                        "this batch's update."
                    )
                    warnings.warn(message, RuntimeWarning, stacklevel=4)
                    model.stop_training = True
                    model.stop_reason = message
                    break
                mean.add(metrics, size)
                progress.update(mean.result())
                for cb in callbacks:
                    cb.on_batch_end(batch, metrics)
            # stopped mid-epoch: no partial epoch in the history
            if model.stop_training and mean.samples < n:
                progress.close()
                break
            logs = mean.result()
            if validation_data is not None:
                val, _ = model.evaluate(*validation_data, batch_size=max(batch_size, 256))
                logs.update({f"val_{k}": v for k, v in val.items()})
            progress.close(logs)
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
        except KeyboardInterrupt:
            if progress is not None:
                progress.close()
            model.interrupted_at = (epoch, mean.samples)
            raise
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end()


def evaluate(
    model: Any, x: Any, y: Any, batch_size: int = 256
) -> tuple[dict[str, float], np.ndarray]:
    """``Model.evaluate``: metrics averaged over the samples, and the predictions."""
    model._require_compiled("evaluate")
    x, y = paired_data(x, y, "evaluate")
    batch_size = int_at_least(batch_size, 1, "batch_size", "evaluate")
    mean = _SampleMean()
    predictions = []
    for idx, size in _batches(len(x), batch_size):
        metrics, preds = model.batch_step(x[idx], y[idx], training=False)
        mean.add(metrics, size)
        predictions.append(np.asarray(preds))
    return mean.result(), np.concatenate(predictions)


def predict(model: Any, x: Any, batch_size: int | None = None) -> np.ndarray:
    """``Model.predict``: the outputs for ``x``, in batches of ``batch_size`` if given."""
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"predict: expected a non-empty batch of inputs, got shape {x.shape}")
    if batch_size is None:
        return np.asarray(model(x, training=False))
    batch_size = int_at_least(batch_size, 1, "batch_size", "predict")
    return np.concatenate(
        [np.asarray(model(x[idx], training=False)) for idx, _ in _batches(len(x), batch_size)]
    )
