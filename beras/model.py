"""Models: Diffable layers with Keras's training API (``fit``, ``evaluate``, ``predict``).

A model holds its layers and what ``compile`` set; the training loop lives in
:mod:`beras.trainer` and the summary table in :mod:`beras.summary`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import checkpoint, trainer
from .callbacks import Callback, History
from .core import Diffable, Tensor, has_training_mode
from .gradient_tape import GradientTape
from .optimizers import all_finite
from .runstate import FitLoop
from .summary import layer_built, output_shape
from .summary import summary as _summary
from .trainer import NonFiniteLossError

__all__ = ["Model", "NonFiniteLossError", "SequentialModel", "print_stats", "update_metric_dict"]


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
        #: ``(None, *input.shape[1:])`` of the last call or ``build`` (what ``summary`` shows).
        self.input_shape: tuple[Any, ...] | None = None
        self.history: History | None = None  # the History of the last fit
        self.fit_loop: FitLoop | None = None  # set while fit runs (see beras.runstate)

    def __call__(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        if has_training_mode(self):
            kwargs["training"] = bool(training)
        return self.forward(*args, **kwargs)

    @property
    def weights(self) -> list[Tensor]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable(self) -> bool:
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        # per layer, so a layer decides what its flag means (BatchNormalization keeps its
        # moving statistics non-trainable)
        for layer in self.layers:
            layer.trainable = value

    # ------------------------------------------------------------------ building
    @property
    def built(self) -> bool:
        """False while a layer that creates its weights on the first call (Conv2D) has none."""
        return all(getattr(layer, "built", True) for layer in self.layers)

    def _layer_input_shapes(self, input_shape: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The input shape of every layer, then the model's output shape; builds nothing."""
        shapes = [tuple(input_shape)]
        for i, layer in enumerate(self.layers):
            try:
                shapes.append(output_shape(layer, shapes[-1]))
            except ValueError as err:
                raise ValueError(
                    f"{type(self).__name__}: layer {i} ({type(layer).__name__}) cannot take "
                    f"inputs of shape {shapes[-1]}: {err}"
                ) from None
        return shapes

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """The output shape for inputs of ``input_shape``, through every layer in turn."""
        return self._layer_input_shapes(input_shape)[-1]

    def build(self, input_shape: tuple[Any, ...]) -> None:
        """Create every layer's weights for inputs of ``input_shape``, e.g. ``(None, 28, 28, 1)``.

        Every layer's shapes are checked first, so a mismatch builds nothing.
        """
        shapes = self._layer_input_shapes(input_shape)
        for layer, layer_input in zip(self.layers, shapes):
            build = getattr(layer, "build", None)
            if build is not None:
                build(layer_input)
        self.input_shape = (None, *shapes[0][1:])

    def _require_built(self, caller: str) -> None:
        unbuilt = [
            f"{i} ({layer!r})" for i, layer in enumerate(self.layers) if not layer_built(layer)
        ]
        if unbuilt:
            raise ValueError(
                f"{type(self).__name__}.{caller}: the model is not built, layers "
                f"{', '.join(unbuilt)} create their weights on their first call. Call "
                "model.build(input_shape), e.g. model.build((None, 28, 28, 1)), or run a batch "
                "through the model first; nothing was read or written"
            )

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
        return trainer.fit(
            self,
            x,
            y,
            epochs,
            batch_size,
            shuffle=shuffle,
            validation_data=validation_data,
            verbose=verbose,
            callbacks=callbacks,
            validation_split=validation_split,
            seed=seed,
            initial_epoch=initial_epoch,
        )

    def evaluate(
        self, x: Any, y: Any, batch_size: int = 256
    ) -> tuple[dict[str, float], np.ndarray]:
        """Metrics averaged over the whole set, and the predictions; never trains."""
        return trainer.evaluate(self, x, y, batch_size)

    def predict(self, x: Any, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs for ``x`` (in batches of ``batch_size`` if given); no tape."""
        return trainer.predict(self, x, batch_size)

    # ------------------------------------------------------------- weights on disk
    def weight_names(self) -> list[str]:
        """Stable names of every weight, as stored by ``save_weights``."""
        return [
            f"layers.{i}.{type(layer).__name__}.{getattr(w, 'name', None) or f'weight_{j}'}"
            for i, layer in enumerate(self.layers)
            for j, w in enumerate(layer.weights)
        ]

    def save_weights(self, path: str) -> None:
        """Write every weight to ``path`` (``.npz``) atomically: a crash never leaves a partial file.

        Non-trainable weights (BatchNormalization's moving statistics) are saved too. An
        unbuilt model (see ``build``) is refused.
        """
        self._require_built("save_weights")
        checkpoint.save(path, dict(zip(self.weight_names(), self.weights)))

    def load_weights(self, path: str) -> None:
        """Load weights saved by ``save_weights``; every name, shape and dtype is checked first.

        The model must be built (see ``build``) so that every weight exists.
        """
        self._require_built("load_weights")
        checkpoint.load_into(
            path, dict(zip(self.weight_names(), self.weights)), type(self).__name__
        )

    # ------------------------------------------------------------------- summary
    def summary(self, print_fn: Any = print) -> str:
        """A Keras-like table of layers, output shapes and parameter counts (printed and returned)."""
        return _summary(self, print_fn)


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
        self.input_shape = (None, *np.shape(inputs)[1:])
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
