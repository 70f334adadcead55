"""What a training run is made of, for ``beras train`` and Python callers.

- :class:`TrainConfig`: everything that defines a run (model, architecture, optimizer,
  learning rate and its schedule, epochs, batch size, seed, validation split), and its
  ``config.json`` form;
- :func:`load_data`, :func:`prepare_images`, :func:`one_hot`: MNIST-family data as
  float32 rows in [0, 1] and integer (or one-hot) labels;
- :data:`MODELS`, :func:`build_model`, :func:`build_optimizer`, :func:`compile_model`,
  :data:`SCHEDULES`, :func:`lr_callbacks`: the model, optimizer and learning-rate
  schedule a config names;
- :func:`fit_and_evaluate`: train a compiled model and evaluate it on the test set.

``assignment.py`` uses these directly; :mod:`beras.runs` is the ``beras train`` /
``beras evaluate`` pipeline that puts them together and writes the output folder.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
import warnings
from collections.abc import Callable as Fn
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import activations, datasets, initializers, optimizers
from . import config as beras_config
from .callbacks import Callback, LearningRateScheduler, ReduceLROnPlateau
from .layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, MaxPool2D, Reshape
from .losses import CategoricalCrossEntropy
from .metrics import CategoricalAccuracy
from .model import SequentialModel
from .validation import positive_int

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingTracker",
    "architecture",
    "build_cnn",
    "build_mlp",
    "build_model",
    "build_optimizer",
    "compile_model",
    "cosine_schedule",
    "default_epochs",
    "fit_and_evaluate",
    "load_data",
    "lr_callbacks",
    "one_hot",
    "plural",
    "prepare_images",
]

CONFIG_FORMAT = "beras-mlp"  # the "format" of config.json
#: The hidden-layer activations ``beras train`` offers (the output layer is Softmax).
HIDDEN_ACTIVATIONS = tuple(name for name in activations.ACTIVATIONS if name != "softmax")
#: ``beras train --initializer`` choices: "auto", then the initializer names with ``_``.
INITIALIZERS = ("auto", *(name.replace(" ", "_") for name in initializers.INITIALIZER_NAMES))


# --------------------------------------------------------------------- configuration
@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (and, with the data, rebuilds its model)."""

    dataset: str = "mnist"
    model: str = "mlp"
    hidden: tuple[int, ...] = (512, 256)
    activation: str = "relu"
    initializer: str = "auto"
    optimizer: str = "adam"
    lr: float | None = None
    lr_schedule: str = "cosine"
    epochs: int = 0  # 0: the model's default, DEFAULT_EPOCHS (set in __post_init__)
    batch_size: int = 128
    seed: int = 42
    validation_split: float = 0.1
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.epochs:
            self.epochs = default_epochs(self.model)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default when ``lr`` is None."""
        if self.lr is not None:
            return float(self.lr)
        return optimizers.default_learning_rate(self.optimizer)

    @property
    def kernel_initializer(self) -> str:
        """``initializer``, with ``"auto"`` resolved (He for ReLUs, Glorot for sigmoid)."""
        if self.initializer != "auto":
            return self.initializer
        return "xavier" if self.activation == "sigmoid" else "kaiming"

    def describe(self) -> str:
        schedule = "" if self.lr_schedule == "constant" else f", {self.lr_schedule} schedule"
        return (
            f"{self.optimizer} (lr {self.learning_rate:g}{schedule}), "
            f"{plural(self.epochs, 'epoch')}, "
            f"batch {self.batch_size}, seed {self.seed}"
        )

    def to_json(
        self, input_size: int, num_classes: int, source: tuple[str, str | None] | None = None
    ) -> dict[str, Any]:
        """The ``config.json`` of a run: this config (defaults resolved), the data's
        input size and class count, and the float type of the weights.

        ``source``, ``(origin, location)`` of the data actually read (a
        :class:`beras.runs.DataSource`), is recorded as ``data_source`` and ``data_dir``:
        where the data was read, not only what ``--data-dir`` said."""
        data = dataclasses.asdict(self)
        data["hidden"] = list(self.hidden)
        data["lr"] = self.learning_rate
        data["initializer"] = self.kernel_initializer
        if source is not None:
            data["data_source"], data["data_dir"] = source
        return {
            "format": CONFIG_FORMAT,
            "version": 1,
            "input_size": input_size,
            "num_classes": num_classes,
            "floatx": beras_config.floatx(),
            **data,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> tuple[TrainConfig, int, int, str]:
        """The config, input size, class count and float type of a ``config.json``.

        Raises ``ValueError`` naming ``where`` (the file) if ``data`` is not one.
        """
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise ValueError(
                f"{where}: expected a Beras training config (a JSON object with "
                f'"format": "{CONFIG_FORMAT}"), got {str(data)[:80]!r}'
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            cfg = cls(**{k: v for k, v in data.items() if k in fields})
            cfg.hidden = tuple(positive_int(int(n), "hidden size") for n in cfg.hidden)
            input_size = positive_int(int(data["input_size"]), "input_size")
            num_classes = positive_int(int(data["num_classes"]), "num_classes")
            floatx = str(data.get("floatx", "float32"))
            for name, value, allowed in (
                ("model", cfg.model, MODELS),
                ("activation", cfg.activation, HIDDEN_ACTIVATIONS),
                ("initializer", cfg.initializer, INITIALIZERS),
                ("optimizer", cfg.optimizer, optimizers.OPTIMIZERS),
            ):
                if value not in allowed:
                    raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: not a valid Beras training config ({err})") from None
        return cfg, input_size, num_classes, floatx


def plural(n: int, word: str, digits: str = ",") -> str:
    """``"1 epoch"``, ``"2 epochs"``, ``"60,000 images"``: a count and its noun."""
    return f"{n:{digits}} {word}{'' if n == 1 else 's'}"


def architecture(hidden: Sequence[int], input_size: int, num_classes: int) -> str:
    """``"784-512-256-10"``."""
    return "-".join(str(n) for n in (input_size, *hidden, num_classes))


# --------------------------------------------------------------------------- data
def prepare_images(images: Any) -> np.ndarray:
    """uint8 images ``(N, H, W)`` to float32 rows ``(N, H*W)`` scaled to [0, 1]."""
    images = np.asarray(images)
    flat = images.reshape(len(images), -1).astype(beras_config.float_dtype())
    flat /= 255.0
    return flat


def one_hot(labels: Any, num_classes: int) -> np.ndarray:
    """Integer labels ``(N,)`` to one-hot rows ``(N, num_classes)`` of floatx."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot expected labels in [0, {num_classes}), got labels in "
            f"[{labels.min()}, {labels.max()}]"
        )
    return np.eye(num_classes, dtype=beras_config.float_dtype())[labels]


def load_data(
    dataset: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: images as float32 ``(N, 784)`` in [0, 1],
    integer labels ``(N,)``, train then test, in the dataset's order."""
    (x_train, y_train), (x_test, y_test) = datasets.load(dataset, data_dir)
    return (
        prepare_images(x_train),
        np.asarray(y_train, dtype=np.int64),
        prepare_images(x_test),
        np.asarray(y_test, dtype=np.int64),
    )


# -------------------------------------------------------------------------- model
#: Epochs of a run that does not say, per model (``beras train --epochs``).
DEFAULT_EPOCHS = {"mlp": 15, "cnn": 10}


def default_epochs(model: str) -> int:
    """The default epoch count of ``model`` (15 for an unknown name, as for the MLP)."""
    return DEFAULT_EPOCHS.get(model, DEFAULT_EPOCHS["mlp"])


def build_mlp(cfg: TrainConfig, input_size: int, num_classes: int) -> SequentialModel:
    """``Dense -> activation`` per hidden size, then ``Dense -> Softmax``."""
    rng = np.random.default_rng(cfg.seed)
    sizes = (input_size, *cfg.hidden, num_classes)
    layers: list[Any] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(n_in, n_out, cfg.kernel_initializer, seed=rng))  # type: ignore[arg-type]
        last = i == len(sizes) - 2
        layers.append(activations.Softmax() if last else activations.get(cfg.activation))
    return SequentialModel(layers)


#: The CNN's convolution blocks: (filters, kernel size, padding), each followed by a
#: 2x2 max pooling, BatchNormalization and the activation. Pooling before normalising
#: gives the same function class as the usual conv-BN-activation-pool (a max commutes
#: with the increasing activation) at a quarter of the normalisation and activation
#: work, and the pooling sees the convolution's untied real values instead of the
#: activation's many zeros.
CNN_BLOCKS: tuple[tuple[int, int, str], ...] = ((32, 3, "same"), (64, 3, "same"))
#: Width of the CNN's hidden Dense layer, and the dropout rate before each Dense layer.
CNN_DENSE, CNN_DROPOUT = 128, 0.25
#: Momentum of the CNN's BatchNormalization moving statistics (Keras: 0.99). A few
#: epochs are a few thousand steps only; 0.9 lets the statistics used at evaluation
#: follow the weights.
CNN_BN_MOMENTUM = 0.9


def _image_side(input_size: int) -> int:
    side = math.isqrt(input_size)
    if side * side != input_size:
        raise ValueError(
            f"the cnn model expects square single-channel images (input size a square "
            f"such as 784 = 28x28), got input size {input_size}"
        )
    return side


def _block_sides(side: int) -> list[tuple[int, int]] | None:
    """``(side in, convolution's side out)`` of each block for ``side``-pixel images,
    then the side after the last pooling as ``(side, side)``; None if one is too small."""
    sides = []
    for _, kernel, padding in CNN_BLOCKS:
        conv = side if padding == "same" else side - kernel + 1
        if conv < 2:  # a 2x2 pooling needs two rows
            return None
        sides.append((side, conv))
        side = conv // 2
    return [*sides, (side, side)]


def _cnn_sides(input_size: int) -> list[tuple[int, int]]:
    """:func:`_block_sides` for images of ``input_size`` pixels, else a ``ValueError``."""
    side = _image_side(input_size)
    sides = _block_sides(side)
    if sides is None:
        smallest = next(n for n in itertools.count(1) if _block_sides(n) is not None)
        raise ValueError(
            f"the cnn model needs images of at least {smallest}x{smallest} pixels, got "
            f"{side}x{side} (input size {input_size})"
        )
    return sides


def build_cnn(cfg: TrainConfig, input_size: int, num_classes: int) -> SequentialModel:
    """A small CNN for square grey images, given as rows of ``input_size`` pixels::

        Reshape(28, 28, 1)
        Conv2D(32, 3, padding="same") -> MaxPool2D(2) -> BatchNormalization -> activation
        Conv2D(64, 3, padding="same") -> MaxPool2D(2) -> BatchNormalization -> activation
        Flatten -> Dropout(0.25) -> Dense(3136, 128) -> activation
        Dropout(0.25) -> Dense(128, num_classes, xavier) -> Softmax

    The activation and kernel initializer are ``cfg``'s (ReLU and He by default);
    ``cfg.hidden`` is not used. Every random layer draws from ``cfg.seed``. The model
    is returned built (its weights exist), so ``load_weights`` can fill it.
    """
    rng = np.random.default_rng(cfg.seed)
    sides = _cnn_sides(input_size)
    layers: list[Any] = [Reshape((sides[0][0], sides[0][0], 1))]
    for filters, kernel, padding in CNN_BLOCKS:
        layers += [
            Conv2D(
                filters,
                kernel,
                padding=padding,
                kernel_initializer=cfg.kernel_initializer,
                seed=rng,
            ),
            MaxPool2D(2),
            BatchNormalization(momentum=CNN_BN_MOMENTUM),
            activations.get(cfg.activation),
        ]
    flat = sides[-1][0] * sides[-1][0] * CNN_BLOCKS[-1][0]
    layers += [
        Flatten(),
        Dropout(CNN_DROPOUT, seed=rng),
        Dense(flat, CNN_DENSE, cfg.kernel_initializer, seed=rng),  # type: ignore[arg-type]
        activations.get(cfg.activation),
        Dropout(CNN_DROPOUT, seed=rng),
        Dense(CNN_DENSE, num_classes, "xavier", seed=rng),
        activations.Softmax(),
    ]
    model = SequentialModel(layers)
    model.build((None, input_size))  # weights exist before a first batch (load_weights)
    return model


#: The models ``beras train --model`` builds, by name: each builder takes the config,
#: the input size and the class count, and returns an uncompiled model.
MODELS: dict[str, Fn[[TrainConfig, int, int], SequentialModel]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(cfg: TrainConfig, input_size: int = 784, num_classes: int = 10) -> SequentialModel:
    """The model ``cfg.model`` names (uncompiled), ending in a Softmax over the classes.

    Weights are drawn from a generator seeded with ``cfg.seed``.
    """
    if cfg.model not in MODELS:
        raise ValueError(f"Unknown model {cfg.model!r}: expected one of {list(MODELS)}")
    return MODELS[cfg.model](cfg, input_size, num_classes)


def build_optimizer(cfg: TrainConfig) -> Any:
    """The optimizer ``cfg`` names, at ``cfg.learning_rate``."""
    return optimizers.get(cfg.optimizer, cfg.learning_rate)


def compile_model(model: SequentialModel, cfg: TrainConfig) -> SequentialModel:
    """Compile with ``cfg``'s optimizer, categorical cross-entropy and accuracy."""
    model.compile(build_optimizer(cfg), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def cosine_schedule(base_lr: float, epochs: int) -> Fn[[int, float], float]:
    """Cosine decay from ``base_lr`` at epoch 0 towards 1% of it at the last epoch."""
    floor = 0.01 * base_lr

    def schedule(epoch: int, lr: float) -> float:
        progress = epoch / max(epochs - 1, 1)
        return floor + (base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return schedule


#: The learning-rate schedules of ``beras train --lr-schedule``: each gives the
#: callbacks that apply it to a run of ``cfg``.
SCHEDULES: dict[str, Fn[[TrainConfig], list[Callback]]] = {
    "cosine": lambda cfg: [LearningRateScheduler(cosine_schedule(cfg.learning_rate, cfg.epochs))],
    "constant": lambda cfg: [],
    "plateau": lambda cfg: [
        ReduceLROnPlateau(
            "val_loss" if cfg.validation_split else "loss", factor=0.3, patience=2, min_lr=1e-6
        )
    ],
}


def lr_callbacks(cfg: TrainConfig) -> list[Callback]:
    """The learning-rate callbacks of ``cfg.lr_schedule``."""
    return SCHEDULES[cfg.lr_schedule](cfg)


# ----------------------------------------------------------------------- training
@dataclasses.dataclass
class TrainResult:
    """What a run produced. ``status`` is ``"completed"`` or ``"diverged"``."""

    history: dict[str, list[float]]
    test: dict[str, float]
    predictions: np.ndarray
    epochs_completed: int
    train_seconds: float
    status: str = "completed"
    message: str = ""


class TrainingTracker(Callback):
    """Remembers where training is (for the interrupt message) and the history so far.

    ``fit_and_evaluate`` uses the one in its ``callbacks`` if there is one (so its caller
    can follow the run), else its own.
    """

    def __init__(self, epochs: int, num_batches: int) -> None:
        self.epochs, self.num_batches = epochs, num_batches
        self.epoch = -1
        self.batches = 0
        self.history: dict[str, list[float]] = {"epoch": [], "loss": [], "acc": []}

    def on_epoch_begin(self, epoch: int) -> None:
        self.epoch, self.batches = epoch, 0
        self._lr = float(getattr(self.model.optimizer, "learning_rate", float("nan")))

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.batches = batch + 1

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.history["epoch"].append(epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.history.setdefault("lr", []).append(self._lr)

    def get_state(self) -> dict[str, np.ndarray]:
        """The history so far (``epoch`` as integers, the rest as floats) and the epoch."""
        state = {
            "keys": np.array(list(self.history), dtype=str),
            "epoch": np.array(self.epoch, dtype=np.int64),
        }
        for key, values in self.history.items():
            ints = key == "epoch"
            state[f"history/{key}"] = np.array(values, dtype=np.int64 if ints else np.float64)
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`get_state`; a malformed state raises ``ValueError``, changing nothing."""
        problems: list[str] = []
        keys, epoch = state.get("keys"), state.get("epoch")
        history: dict[str, list[Any]] = {}
        if keys is None or np.ndim(keys) != 1 or np.asarray(keys).dtype.kind != "U":
            problems.append("'keys' must be a 1-d array of metric names")
        else:
            for key in np.asarray(keys).tolist():
                values = state.get(f"history/{key}")
                kinds = "iu" if key == "epoch" else "f"
                if (
                    values is None
                    or np.ndim(values) != 1
                    or np.asarray(values).dtype.kind not in kinds
                ):
                    problems.append(f"'history/{key}' must be a 1-d array of numbers")
                else:
                    history[key] = np.asarray(values).tolist()
            expected = {"keys", "epoch", *(f"history/{k}" for k in history)}
            if set(state) - expected:
                problems.append(f"unexpected entries {sorted(set(state) - expected)}")
        if epoch is None or np.shape(epoch) != () or np.asarray(epoch).dtype.kind not in "iu":
            problems.append("'epoch' must be an integer")
        if len({len(v) for v in history.values()}) > 1:
            problems.append("the history's metrics have different lengths")
        if problems:
            raise ValueError(
                "TrainingTracker.set_state: the state does not fit (nothing was changed): "
                + "; ".join(problems)
            )
        self.history, self.epoch = history, int(np.asarray(epoch))

    def where(self) -> str:
        if self.epoch < 0:
            return "before the first epoch"
        return f"at epoch {self.epoch + 1}/{self.epochs}, batch {self.batches}/{self.num_batches}"


def fit_and_evaluate(
    model: SequentialModel,
    train_data: tuple[Any, Any],
    test_data: tuple[Any, Any],
    cfg: TrainConfig,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
) -> TrainResult:
    """Train a compiled ``model`` on ``train_data`` as ``cfg`` says, then evaluate it.

    Labels are integer classes; they are one-hot encoded here. The last
    ``cfg.validation_split`` of the training samples is held out for validation (as
    Keras does), ``cfg``'s learning-rate schedule is applied and batches are shuffled
    from ``cfg.seed``. A NaN or infinite loss stops training early (``status`` is then
    ``"diverged"`` and ``message`` says where); the model keeps the weights from before
    that step and is still evaluated. Ctrl-C propagates as ``KeyboardInterrupt``.
    """
    x_train, y_train = train_data
    x_test, y_test = test_data
    num_classes = model.predict(np.asarray(x_train)[:1]).shape[-1]  # the model's outputs
    y_train_1h = one_hot(np.asarray(y_train).astype(np.int64), num_classes)
    y_test_1h = one_hot(np.asarray(y_test).astype(np.int64), num_classes)
    tracker = next((cb for cb in callbacks if isinstance(cb, TrainingTracker)), None)
    all_callbacks = [*lr_callbacks(cfg), *callbacks]
    if tracker is None:
        tracker = TrainingTracker(cfg.epochs, 0)
        all_callbacks.append(tracker)
    start = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        # fit's own divergence warning is reported through ``message`` instead
        warnings.filterwarnings("ignore", r".*\.fit stopped at epoch", RuntimeWarning)
        model.fit(
            np.asarray(x_train),
            y_train_1h,
            epochs=cfg.epochs,
            batch_size=cfg.batch_size,
            validation_split=cfg.validation_split,
            verbose=verbose,
            callbacks=all_callbacks,
            seed=cfg.seed,
        )
    train_seconds = time.perf_counter() - start
    reason = model.stop_reason  # set by fit when a step diverged
    with np.errstate(over="ignore", invalid="ignore"):
        test, predictions = model.evaluate(np.asarray(x_test), y_test_1h, batch_size=256)
    return TrainResult(
        history=tracker.history,
        test=test,
        predictions=predictions,
        epochs_completed=len(tracker.history.get("epoch", [])),
        train_seconds=train_seconds,
        status="diverged" if reason else "completed",
        message=reason or "",
    )
