"""Models: training loops over Diffable layers (``fit``, ``evaluate``, ``predict``)."""

from __future__ import annotations

import math
import warnings
from abc import abstractmethod
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import checkpoint
from .callbacks import BackupAndRestore, Callback, History
from .core import Diffable, Tensor, has_training_mode
from .gradient_tape import GradientTape
from .optimizers import all_finite
from .progress import Progress
from .runstate import FitLoop
from .utils import get_rng

__all__ = ["Model", "NonFiniteLossError", "SequentialModel", "print_stats", "update_metric_dict"]


class NonFiniteLossError(FloatingPointError):
    """A training step produced a NaN or infinite loss or gradient; nothing was updated."""


def print_stats(
    stat_dict: dict[str, Any],
    batch_num: int | None = None,
    num_batches: int | None = None,
    epoch: int | None = None,
    avg: bool = False,
) -> None:
    """Print one progress line: ``- Epoch  1: Batch  12/469 : loss : 0.123 : acc : 0.961``."""
    title = " - "
    if epoch is not None:
        title += f"Epoch {epoch + 1:2}: "
    if batch_num is not None:
        title += f"Batch {batch_num + 1:3}/{num_batches}"
    if avg:
        title += "Batch Avg"
    stats = "".join(f" : {k} : {float(np.mean(v)):0.3f}" for k, v in stat_dict.items())
    print(f"{title}{stats}", end="\n" if avg else "\r", flush=True)


def update_metric_dict(super_dict: dict[str, list[float]], sub_dict: dict[str, Any]) -> None:
    """Append the mean of each metric in ``sub_dict`` to ``super_dict``'s list for it."""
    for k, v in sub_dict.items():
        super_dict.setdefault(k, []).append(float(np.mean(v)))


def _check_count(value: Any, what: str, minimum: int, caller: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{caller}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_data(x: Any, y: Any, caller: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{caller}: x and y must be arrays with a batch axis, got scalars")
    if len(x) != len(y):
        raise ValueError(
            f"{caller}: x and y must have the same number of samples, got {len(x)} inputs "
            f"and {len(y)} labels"
        )
    if len(x) == 0:
        raise ValueError(f"{caller}: got empty data (0 samples)")
    return x, y


class Model(Diffable):
    """A network of layers with a Keras-like training API.

    Models are differentiated through their layers (the tape records each layer call),
    so calling a model inside a ``GradientTape`` records its layers, not the model.
    """

    def __init__(self, layers: Sequence[Diffable]) -> None:
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Diffable):
                raise TypeError(
                    f"{type(self).__name__} expected Diffable layers, got {type(layer).__name__} "
                    f"at position {i}"
                )
        self.optimizer: Any = None
        self.compiled_loss: Any = None
        self.compiled_acc: Any = None
        self.stop_training = False
        self.stop_reason = ""  # why the last fit stopped early ("" if it did not)
        self.interrupted_at: tuple[int, int] | None = None  # (epoch, samples seen) at Ctrl-C
        self.history: History | None = None  # the History of the last fit
        self.fit_loop: FitLoop | None = None  # set while fit runs (see beras.runstate)

    def __call__(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if has_training_mode(self):
            kwargs["training"] = bool(training)
        return self.forward(*args, **kwargs)

    @property
    def weights(self) -> list[Tensor]:
        return [w for layer in self.layers for w in layer.weights]

    def get_input_gradients(self) -> list[Tensor]:
        raise TypeError(
            f"{type(self).__name__} has no local Jacobian of its own: differentiate it with a "
            "GradientTape, which records each of its layers"
        )

    def get_weight_gradients(self) -> list[Tensor]:
        return self.get_input_gradients()

    def compile(self, optimizer: Any, loss_fn: Any, acc_fn: Any) -> None:
        """Set the optimizer, the loss and the accuracy metric used by fit/evaluate."""
        self.optimizer = optimizer
        self.compiled_loss = loss_fn
        self.compiled_acc = acc_fn

    def _require_compiled(self, caller: str) -> None:
        if self.optimizer is None or self.compiled_loss is None or self.compiled_acc is None:
            raise RuntimeError(
                f"{type(self).__name__}.{caller} called before compile: call "
                "model.compile(optimizer, loss_fn, acc_fn) first"
            )

    @abstractmethod
    def batch_step(self, x: Any, y: Any, training: bool = True) -> Any:
        """One batch: metrics (and, when not training, predictions)."""

    # ----------------------------------------------------------------- training loop
    def fit(
        self,
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
        """Train until epoch ``epochs``; returns the per-epoch history.

        As in Keras, ``epochs`` is the index of the last epoch, not a count: training runs
        epochs ``initial_epoch`` to ``epochs - 1`` (``initial_epoch`` continues a previous
        run's numbering: callbacks and schedules see the true epoch indices, and the
        history covers these epochs only). A :class:`~beras.callbacks.BackupAndRestore`
        among ``callbacks`` may restore a backed-up run and start after its last epoch.

        Batches are reshuffled every epoch from a seeded generator (``seed``, else Beras's
        global one); the last partial batch is kept; epoch metrics are averages weighted
        by batch size. ``history`` has ``"loss"`` and ``"acc"``, plus ``"val_loss"`` and
        ``"val_acc"`` with validation data (``validation_split`` takes the last fraction
        of the samples before shuffling, as Keras does). If a step yields a NaN or
        infinite loss or gradient, training stops before applying it, with a warning
        naming the epoch and batch (also kept in ``stop_reason``). On Ctrl-C,
        ``interrupted_at`` is ``(epoch, samples seen in it)`` and ``KeyboardInterrupt``
        propagates.

        ``model.history`` is the :class:`~beras.callbacks.History` callback that recorded
        the returned dict; it runs before the other callbacks at each epoch end, and
        ``BackupAndRestore`` callbacks run after all the others (so a backup holds the
        epoch's final state, and a restore comes after every ``on_train_begin``).
        """
        self._require_compiled("fit")
        x, y = _check_data(x, y, "fit")
        epochs = _check_count(epochs, "epochs", 0, "fit")
        initial_epoch = _check_count(initial_epoch, "initial_epoch", 0, "fit")
        if initial_epoch > epochs:
            raise ValueError(
                f"fit: initial_epoch ({initial_epoch}) is after epochs ({epochs}); epochs is "
                "the index of the last epoch, as in Keras, not a number of further epochs"
            )
        batch_size = _check_count(batch_size, "batch_size", 1, "fit")
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(
                    f"fit: validation_split must be in (0, 1), got {validation_split!r}"
                )
            n_val = round(len(x) * validation_split)
            if n_val < 1 or n_val >= len(x):
                raise ValueError(
                    f"fit: validation_split={validation_split} leaves no data on one side"
                )
            validation_data = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
        if validation_data is not None:
            validation_data = _check_data(*validation_data, "fit (validation_data)")

        rng = get_rng(seed)
        self.history = history = History()
        backups = [cb for cb in callbacks if isinstance(cb, BackupAndRestore)]
        callbacks = [history, *(cb for cb in callbacks if cb not in backups), *backups]
        for cb in callbacks:
            cb.set_model(self)
        self.stop_training = False
        self.stop_reason = ""
        self.interrupted_at = None
        self.fit_loop = loop = FitLoop(rng, callbacks, epochs, initial_epoch)
        try:
            self._fit_epochs(x, y, batch_size, shuffle, validation_data, verbose, loop)
        finally:
            self.fit_loop = None
        return {k: list(v) for k, v in history.history.items()}

    def _fit_epochs(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        shuffle: bool,
        validation_data: tuple[Any, Any] | None,
        verbose: int,
        loop: FitLoop,
    ) -> None:
        """The epochs of ``fit``, from ``loop.initial_epoch`` (as set by ``on_train_begin``)."""
        rng, callbacks, epochs = loop.rng, loop.callbacks, loop.epochs
        n = len(x)
        num_batches = math.ceil(n / batch_size)
        for cb in callbacks:
            cb.on_train_begin()
        for epoch in range(loop.initial_epoch, epochs):
            if self.stop_training:  # e.g. restored from a run that was stopping
                break
            seen = 0
            progress: Progress | None = None
            try:  # the whole epoch, so Ctrl-C in validation or a callback is located too
                for cb in callbacks:
                    cb.on_epoch_begin(epoch)
                order = rng.permutation(n) if shuffle else None
                totals: dict[str, float] = defaultdict(float)
                progress = Progress(verbose, num_batches, epoch, epochs)
                for batch in range(num_batches):
                    lo, hi = batch * batch_size, min(n, (batch + 1) * batch_size)
                    idx = order[lo:hi] if order is not None else slice(lo, hi)
                    try:
                        metrics = self.batch_step(x[idx], y[idx], training=True)
                    except NonFiniteLossError as err:
                        message = (
                            f"{type(self).__name__}.fit stopped at epoch {epoch + 1}, batch "
                            f"{batch + 1}/{num_batches}: {err} The weights are those from before "
                            "this batch's update."
                        )
                        warnings.warn(message, RuntimeWarning, stacklevel=2)
                        self.stop_training = True
                        self.stop_reason = message
                        break
                    size = hi - lo
                    seen += size
                    for k, v in metrics.items():
                        totals[k] += float(v) * size
                    progress.update({k: totals[k] / seen for k in totals})
                    for cb in callbacks:
                        cb.on_batch_end(batch, metrics)
                # stopped mid-epoch: no partial epoch in the history
                if self.stop_training and seen < n:
                    progress.close()
                    break
                logs = {k: totals[k] / seen for k in totals}
                if validation_data is not None:
                    val, _ = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                    logs.update({f"val_{k}": v for k, v in val.items()})
                progress.close(logs)
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
            except KeyboardInterrupt:
                if progress is not None:
                    progress.close()
                self.interrupted_at = (epoch, seen)
                raise
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()

    def evaluate(
        self, x: Any, y: Any, batch_size: int = 256
    ) -> tuple[dict[str, float], np.ndarray]:
        """Metrics averaged over the whole set, and the predictions; never trains."""
        self._require_compiled("evaluate")
        x, y = _check_data(x, y, "evaluate")
        batch_size = _check_count(batch_size, "batch_size", 1, "evaluate")
        totals: dict[str, float] = defaultdict(float)
        predictions = []
        for lo in range(0, len(x), batch_size):
            metrics, preds = self.batch_step(
                x[lo : lo + batch_size], y[lo : lo + batch_size], training=False
            )
            size = min(batch_size, len(x) - lo)
            for k, v in metrics.items():
                totals[k] += float(v) * size
            predictions.append(np.asarray(preds))
        return {k: v / len(x) for k, v in totals.items()}, np.concatenate(predictions)

    def predict(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs for ``x`` (in batches of ``batch_size`` if given); no tape."""
        x = np.asarray(x)
        if x.ndim == 0 or len(x) == 0:
            raise ValueError(f"predict: expected a non-empty batch of inputs, got shape {x.shape}")
        if batch_size is None:
            return np.asarray(self(x, training=False))
        batch_size = _check_count(batch_size, "batch_size", 1, "predict")
        return np.concatenate(
            [
                np.asarray(self(x[lo : lo + batch_size], training=False))
                for lo in range(0, len(x), batch_size)
            ]
        )

    # ------------------------------------------------------------- weights on disk
    def weight_names(self) -> list[str]:
        """Stable names of every weight, as stored by ``save_weights``."""
        return [
            f"layers.{i}.{type(layer).__name__}.{getattr(w, 'name', None) or f'weight_{j}'}"
            for i, layer in enumerate(self.layers)
            for j, w in enumerate(layer.weights)
        ]

    def save_weights(self, path: str) -> None:
        """Write every weight to ``path`` (``.npz``) atomically: a crash never leaves a partial file."""
        checkpoint.save(path, dict(zip(self.weight_names(), self.weights)))

    def load_weights(self, path: str) -> None:
        """Load weights saved by ``save_weights``; every name, shape and dtype is checked first."""
        checkpoint.load_into(
            path, dict(zip(self.weight_names(), self.weights)), type(self).__name__
        )

    # ------------------------------------------------------------------- summary
    def summary(self, print_fn: Any = print) -> str:
        """A Keras-like table of layers, output shapes and parameter counts (printed and returned)."""
        rows: list[tuple[str, str, str]] = []
        counts: defaultdict[str, int] = defaultdict(int)
        shape: tuple[Any, ...] | None = None
        total = trainable = 0
        for layer in self.layers:
            kind = type(layer).__name__
            name = kind.lower() if counts[kind] == 0 else f"{kind.lower()}_{counts[kind]}"
            counts[kind] += 1
            output_size = getattr(layer, "output_size", None)
            if output_size is not None:
                shape = (None, output_size)
            elif getattr(layer, "outputs", None):
                shape = (None, *np.shape(layer.outputs[0])[1:])
            params = sum(int(np.size(w)) for w in layer.weights)
            total += params
            trainable += sum(int(np.size(w)) for w in layer.trainable_variables)
            rows.append((f"{name} ({kind})", "?" if shape is None else str(shape), f"{params:,}"))
        widths = [
            max(len(h), *(len(r[i]) for r in rows))
            for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))
        ]
        rule = "-" * (sum(widths) + 6)
        lines = [
            f'Model: "{type(self).__name__.lower()}"',
            rule,
            "  ".join(
                h.ljust(w) for h, w in zip(("Layer (type)", "Output Shape", "Param #"), widths)
            ),
            rule.replace("-", "="),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        lines += [
            rule.replace("-", "="),
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
            rule,
        ]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text


class SequentialModel(Model):
    """Layers applied one after another."""

    def forward(self, inputs: Any, training: bool = False) -> Any:
        """Each layer in turn, as ``layer(x, training=training)`` (so a tape sees it).

        ``training`` reaches the layers that have a training mode (Dropout,
        BatchNormalization); the others ignore it.
        """
        x = inputs
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    def batch_step(self, x: Any, y: Any, training: bool = True) -> Any:
        """Forward and loss inside a GradientTape; when training, one optimizer step.

        Returns ``{"loss": float, "acc": float}`` when training, else
        ``({"loss": ..., "acc": ...}, predictions)`` with nothing changed. A NaN or
        infinite loss or gradient raises ``NonFiniteLossError`` before any update.
        """
        self._require_compiled("batch_step")
        if not training:
            preds = self(x, training=False)
            loss = self.compiled_loss(preds, y)
            metrics = {"loss": float(loss), "acc": float(self.compiled_acc(preds, y))}
            return metrics, preds
        with GradientTape() as tape:
            preds = self(x, training=True)
            loss = self.compiled_loss(preds, y)
        loss_value = float(loss)
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(f"the loss is {loss_value}.")
        params = self.trainable_variables
        grads = tape.gradient(loss, params)
        if not all_finite(grads):
            raise NonFiniteLossError("a gradient has NaN or infinite entries.")
        try:
            self.optimizer.apply_gradients(params, grads)
        except FloatingPointError as err:  # the optimizer refused a non-finite step
            raise NonFiniteLossError(f"{err}.") from err
        return {"loss": loss_value, "acc": float(self.compiled_acc(preds, y))}
