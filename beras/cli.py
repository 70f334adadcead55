"""The ``beras`` command: train an MLP on an MNIST-family dataset, or evaluate one.

``beras train`` loads a dataset, builds a Dense/activation stack ending in Softmax,
trains it with ``Model.fit`` (a tqdm bar per batch, a line per epoch with validation
metrics), evaluates it on the test set and writes into ``--out``:

- ``weights.npz`` (``Model.save_weights``) and ``config.json`` (what rebuilds the model),
  both rewritten after every completed epoch;
- ``history.json`` (per-epoch metrics and learning rate), also rewritten every epoch;
- ``predictions.npy`` (test-set probabilities), ``metrics.json`` (test metrics, wall time);
- ``training_curves.png`` and ``predictions.png`` (matplotlib, Agg backend).

Every file is written atomically (a temporary file in the same folder, then a rename), so
an interrupted run never leaves half a file. Ctrl-C stops training, says where, keeps the
last completed epoch's weights and exits with status 130.

``beras evaluate --weights DIR/weights.npz`` rebuilds the model from the ``config.json``
beside the weights and evaluates it on the test set.

The same pieces serve Python callers (``assignment.py`` uses them): :class:`TrainConfig`,
:func:`load_data`, :func:`build_model`, :func:`compile_model`, :func:`fit_and_evaluate`,
:func:`train` and :func:`evaluate`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import math
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable as Fn
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, optimizers
from . import config as beras_config
from .callbacks import Callback, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau
from .layers import Dense
from .losses import CategoricalCrossEntropy
from .metrics import CategoricalAccuracy
from .model import SequentialModel
from .utils import set_random_seed

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingInterrupted",
    "atomic_write",
    "build_model",
    "build_optimizer",
    "compile_model",
    "evaluate",
    "fit_and_evaluate",
    "load_data",
    "lr_callbacks",
    "main",
    "one_hot",
    "prepare_images",
    "save_npy",
    "train",
    "write_json",
]

DATASETS = ("mnist", "fashion-mnist", "mnist-mini")
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid")
OPTIMIZERS = ("adam", "amsgrad", "rmsprop", "sgd")
SCHEDULES = ("cosine", "constant", "plateau")
INITIALIZERS = (
    "auto",
    "kaiming",
    "kaiming_uniform",
    "xavier",
    "xavier_uniform",
    "normal",
    "zero",
)
DEFAULT_LR = {"adam": 1e-3, "amsgrad": 1e-3, "rmsprop": 1e-3, "sgd": 0.1}
DATASET_TITLES = {
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "mnist-mini": "MNIST-mini",
}
CONFIG_FORMAT = "beras-mlp"

# Output file names inside --out.
WEIGHTS_FILE = "weights.npz"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npy"
CURVES_FILE = "training_curves.png"
PREDICTIONS_PNG = "predictions.png"

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# --------------------------------------------------------------------- configuration
@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (and, with the data, rebuilds its model)."""

    dataset: str = "mnist"
    hidden: tuple[int, ...] = (512, 256)
    activation: str = "relu"
    initializer: str = "auto"
    optimizer: str = "adam"
    lr: float | None = None
    lr_schedule: str = "cosine"
    epochs: int = 15
    batch_size: int = 128
    seed: int = 42
    validation_split: float = 0.1
    data_dir: str | None = None

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimizer's default when ``lr`` is None."""
        return float(self.lr) if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def kernel_initializer(self) -> str:
        """``initializer``, with ``"auto"`` resolved (He for ReLUs, Glorot for sigmoid)."""
        if self.initializer != "auto":
            return self.initializer
        return "xavier" if self.activation == "sigmoid" else "kaiming"

    def describe(self) -> str:
        schedule = "" if self.lr_schedule == "constant" else f", {self.lr_schedule} schedule"
        return (
            f"{self.optimizer} (lr {self.learning_rate:g}{schedule}), {self.epochs} epochs, "
            f"batch {self.batch_size}, seed {self.seed}"
        )


def architecture(hidden: Sequence[int], input_size: int, num_classes: int) -> str:
    """``"784-512-256-10"``."""
    return "-".join(str(n) for n in (input_size, *hidden, num_classes))


def _config_to_json(cfg: TrainConfig, input_size: int, num_classes: int) -> dict[str, Any]:
    data = dataclasses.asdict(cfg)
    data["hidden"] = list(cfg.hidden)
    data["lr"] = cfg.learning_rate
    data["initializer"] = cfg.kernel_initializer
    return {
        "format": CONFIG_FORMAT,
        "version": 1,
        "input_size": input_size,
        "num_classes": num_classes,
        "floatx": beras_config.floatx(),
        **data,
    }


def _config_from_json(data: Any, where: str) -> tuple[TrainConfig, int, int, str]:
    """A TrainConfig, input size, class count and float type from a ``config.json``."""
    if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
        raise ValueError(
            f"{where}: expected a Beras training config (a JSON object with "
            f'"format": "{CONFIG_FORMAT}"), got {str(data)[:80]!r}'
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        cfg = TrainConfig(**{k: v for k, v in data.items() if k in fields})
        cfg.hidden = tuple(_positive(int(n), "hidden size") for n in cfg.hidden)
        input_size = _positive(int(data["input_size"]), "input_size")
        num_classes = _positive(int(data["num_classes"]), "num_classes")
        floatx = str(data.get("floatx", "float32"))
        for name, value, allowed in (
            ("activation", cfg.activation, ACTIVATIONS),
            ("initializer", cfg.initializer, INITIALIZERS),
            ("optimizer", cfg.optimizer, OPTIMIZERS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: not a valid Beras training config ({err})") from None
    return cfg, input_size, num_classes, floatx


def _positive(n: int, what: str) -> int:
    if n < 1:
        raise ValueError(f"{what} must be a positive integer, got {n}")
    return n


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


def class_names(dataset: str) -> list[str] | None:
    """Human-readable class names for a dataset (None: the label itself is the name)."""
    if dataset == "fashion-mnist":
        from .datasets import fashion_mnist

        return list(fashion_mnist.CLASS_NAMES)
    return None


def load_data(
    dataset: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: images as float32 ``(N, 784)`` in [0, 1],
    integer labels ``(N,)``, train then test, in the dataset's order."""
    from . import datasets

    (x_train, y_train), (x_test, y_test) = datasets.load(dataset, data_dir)
    return (
        prepare_images(x_train),
        np.asarray(y_train, dtype=np.int64),
        prepare_images(x_test),
        np.asarray(y_test, dtype=np.int64),
    )


# -------------------------------------------------------------------------- model
def build_model(cfg: TrainConfig, input_size: int = 784, num_classes: int = 10) -> SequentialModel:
    """``Dense -> activation`` per hidden size, then ``Dense -> Softmax`` (uncompiled).

    Weights are drawn from a generator seeded with ``cfg.seed``.
    """
    rng = np.random.default_rng(cfg.seed)
    sizes = (input_size, *cfg.hidden, num_classes)
    layers: list[Any] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(n_in, n_out, cfg.kernel_initializer, seed=rng))  # type: ignore[arg-type]
        last = i == len(sizes) - 2
        layers.append(activations.Softmax() if last else activations.get(cfg.activation))
    return SequentialModel(layers)


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


def lr_callbacks(cfg: TrainConfig) -> list[Callback]:
    """The learning-rate callbacks of ``cfg.lr_schedule``."""
    if cfg.lr_schedule == "cosine":
        return [LearningRateScheduler(cosine_schedule(cfg.learning_rate, cfg.epochs))]
    if cfg.lr_schedule == "plateau":
        monitor = "val_loss" if cfg.validation_split else "loss"
        return [ReduceLROnPlateau(monitor, factor=0.3, patience=2, min_lr=1e-6)]
    return []


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


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``: the message says where it stopped and what was kept."""


class _Tracker(Callback):
    """Remembers where training is (for the interrupt message) and the history so far."""

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

    def where(self) -> str:
        if self.epoch < 0:
            return "before the first epoch"
        return f"at epoch {self.epoch + 1}/{self.epochs}, batch {self.batches}/{self.num_batches}"


class _EpochWriter(ModelCheckpoint):
    """After each epoch: ``config.json``, the weights, then ``history.json`` (atomically)."""

    def __init__(self, out: Path, config_json: dict[str, Any], tracker: _Tracker) -> None:
        super().__init__(str(out / WEIGHTS_FILE))
        self.out, self.config_json, self.tracker = out, config_json, tracker
        self.history_saved: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        write_json(self.out / CONFIG_FILE, self.config_json)
        super().on_epoch_end(epoch, logs)  # the weights
        self.history_saved = {k: list(v) for k, v in self.tracker.history.items()}
        write_json(self.out / HISTORY_FILE, self.history_saved)


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
    num_classes = next(
        int(getattr(layer, "output_size", 0))
        for layer in reversed(model.layers)
        if getattr(layer, "output_size", None) is not None
    )
    y_train_1h = one_hot(np.asarray(y_train).astype(np.int64), num_classes)
    y_test_1h = one_hot(np.asarray(y_test).astype(np.int64), num_classes)
    tracker = next((cb for cb in callbacks if isinstance(cb, _Tracker)), None)
    all_callbacks = [*lr_callbacks(cfg), *callbacks]
    if tracker is None:
        tracker = _Tracker(cfg.epochs, 0)
        all_callbacks.append(tracker)
    start = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        # fit's own divergence warning is reported through ``message`` instead
        warnings.filterwarnings("ignore", r".*\.fit stopped at epoch", RuntimeWarning)
        model.stop_reason = ""  # fit sets it when a step diverges
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
    reason = getattr(model, "stop_reason", "")
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


def _split_sizes(n: int, split: float) -> tuple[int, int]:
    n_val = round(n * split)
    return n - n_val, n_val


def train(
    cfg: TrainConfig,
    out: str | os.PathLike[str],
    verbose: int = 1,
    plots: bool = True,
    print_fn: Fn[[str], None] = print,
) -> TrainResult:
    """Load ``cfg.dataset``, train, evaluate and write every output file into ``out``.

    Raises:
        TrainingInterrupted: Ctrl-C; the last completed epoch's weights, config and
            history are on disk, and the message says where training stopped.
        ValueError: ``cfg.validation_split`` leaves no sample on one side.
        beras.datasets.DatasetNotFoundError: the dataset is nowhere to be found.
        beras.datasets.DatasetError: a dataset file is corrupt.
    """
    wall_start = time.perf_counter()
    out = Path(out)
    tracker: _Tracker | None = None
    writer: _EpochWriter | None = None
    stage = "loading the data"
    try:
        x_train, y_train, x_test, y_test = load_data(cfg.dataset, cfg.data_dir)
        n_fit, n_val = _split_sizes(len(x_train), cfg.validation_split)
        if n_fit < 1 or n_val < 1:
            raise ValueError(
                f"--validation-split {cfg.validation_split} leaves "
                f"{n_fit} training and {n_val} validation samples out of {len(x_train):,}; "
                "both need at least one"
            )
        input_size = x_train.shape[1]
        num_classes = int(max(y_train.max(), y_test.max())) + 1
        set_random_seed(cfg.seed)
        model = compile_model(build_model(cfg, input_size, num_classes), cfg)
        params = sum(int(np.size(w)) for w in model.weights)
        title = DATASET_TITLES.get(cfg.dataset, cfg.dataset)
        print_fn(
            f"{title}: {n_fit:,} training, {n_val:,} validation and {len(x_test):,} test images"
        )
        print_fn(
            f"Model: MLP {architecture(cfg.hidden, input_size, num_classes)} "
            f"({cfg.activation}, {cfg.kernel_initializer} init, {params:,} parameters)"
        )
        print_fn(f"Training: {cfg.describe()}")
        hint = _busy_machine_hint()
        if hint and verbose:
            print_fn(hint)
        out.mkdir(parents=True, exist_ok=True)
        num_batches = math.ceil(n_fit / cfg.batch_size)
        tracker = _Tracker(cfg.epochs, num_batches)
        writer = _EpochWriter(out, _config_to_json(cfg, input_size, num_classes), tracker)
        stage = "training"
        result = fit_and_evaluate(
            model,
            (x_train, y_train),
            (x_test, y_test),
            cfg,
            callbacks=[tracker, writer],
            verbose=verbose,
        )
        stage = "writing the outputs"
        if result.status == "diverged":
            # fit kept the weights from before the bad step: save those (they may be
            # mid-epoch, newer than the last checkpoint)
            model.save_weights(str(out / WEIGHTS_FILE))
            write_json(out / CONFIG_FILE, writer.config_json)
            write_json(out / HISTORY_FILE, result.history)
        save_npy(out / PREDICTIONS_FILE, result.predictions)
        written = [WEIGHTS_FILE, CONFIG_FILE, HISTORY_FILE, PREDICTIONS_FILE, METRICS_FILE]
        skipped = ""
        if plots:
            try:
                _write_plots(out, cfg, result, x_test, y_test, num_classes, input_size)
                written += [CURVES_FILE, PREDICTIONS_PNG]
            except ImportError as err:
                skipped = (
                    f"Pictures skipped: {err.name or 'matplotlib'} is not installed "
                    "(pip install 'beras[train]')."
                )
        wall = time.perf_counter() - wall_start
        write_json(
            out / METRICS_FILE,
            {
                "dataset": cfg.dataset,
                "test_loss": result.test.get("loss"),
                "test_acc": result.test.get("acc"),
                "test_samples": len(x_test),
                "epochs_completed": result.epochs_completed,
                "status": result.status,
                "message": result.message,
                "train_seconds": round(result.train_seconds, 3),
                "wall_seconds": round(wall, 3),
            },
        )
    except KeyboardInterrupt:
        raise TrainingInterrupted(_interrupt_message(out, stage, tracker, writer)) from None

    if result.status == "diverged":
        print_fn(
            f"Training diverged (non-finite loss or gradient): {result.message} "
            "The outputs below use those weights; try a smaller --lr."
        )
    print_fn(
        f"Test loss: {result.test['loss']:.4f} - test accuracy: "
        f"{100 * result.test['acc']:.2f}% ({len(x_test):,} images)"
    )
    wall = time.perf_counter() - wall_start
    print_fn(
        f"Wall time: {_duration(wall)} (training {_duration(result.train_seconds)}, "
        f"{result.epochs_completed} epoch{'s' if result.epochs_completed != 1 else ''})"
    )
    print_fn(f"Saved to {out}{os.sep}: {', '.join(written)}")
    if skipped:
        print_fn(skipped)
    return result


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _busy_machine_hint() -> str:
    """A note when other processes already use every core and BLAS may use them all too.

    Multithreaded BLAS spins while it waits for its threads: on shared cores an epoch can
    take several times longer than with one thread.
    """
    if any(os.environ.get(name) for name in _THREAD_VARIABLES):
        return ""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return ""
    cpus = os.cpu_count() or 1
    if cpus < 2 or load < cpus:
        return ""
    return (
        f"Note: this machine is busy (load average {load:.1f} on {cpus} CPUs). "
        "Multithreaded BLAS slows down badly on shared cores; if training is slow, "
        "start it with OPENBLAS_NUM_THREADS=1."
    )


def _interrupt_message(
    out: Path, stage: str, tracker: _Tracker | None, writer: _EpochWriter | None
) -> str:
    if tracker is None or writer is None:
        return f"Interrupted while {stage}; nothing was written."
    saved = writer.last_saved_epoch
    if stage == "training" and saved is not None and saved == tracker.epoch + 1:
        # during the epoch-end bookkeeping, after this epoch's weights were written
        where = f"Interrupted at the end of epoch {saved}/{tracker.epochs}."
    elif stage == "training":
        where = f"Interrupted {tracker.where()}."
    else:
        where = f"Interrupted after training, while {stage}."
    if saved is None:
        return f"{where} No epoch was completed, so no weights were saved."
    # history.json matches the saved weights (an interrupt between the two writes
    # would otherwise leave it one epoch behind)
    history = {k: v[:saved] for k, v in tracker.history.items()}
    with contextlib.suppress(OSError):
        write_json(out / HISTORY_FILE, history)
    weights = out / WEIGHTS_FILE
    return (
        f"{where} The weights of epoch {saved} (the last completed) are in {weights}, "
        f"with {out / CONFIG_FILE} and {out / HISTORY_FILE}. "
        f"Evaluate them with: beras evaluate --weights {weights}"
    )


def _write_plots(
    out: Path,
    cfg: TrainConfig,
    result: TrainResult,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    input_size: int,
) -> None:
    from . import plots

    title = DATASET_TITLES.get(cfg.dataset, cfg.dataset)
    arch = architecture(cfg.hidden, input_size, num_classes)
    fig = plots.training_curves(
        result.history,
        title=f"{title}: MLP {arch}, {cfg.optimizer} lr {cfg.learning_rate:g}"
        + ("" if cfg.lr_schedule == "constant" else f" ({cfg.lr_schedule})")
        + f", batch {cfg.batch_size}"
        + (" (diverged)" if result.status == "diverged" else ""),
        test_metrics=result.test,
    )
    plots.save_png(fig, out / CURVES_FILE)
    fig = plots.prediction_grid(
        x_test,
        y_test,
        result.predictions,
        class_names=class_names(cfg.dataset),
        title=f"{title} test set: {100 * result.test['acc']:.2f}% correct",
    )
    plots.save_png(fig, out / PREDICTIONS_PNG)


# ----------------------------------------------------------------------- evaluate
def evaluate(
    weights: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
) -> tuple[dict[str, float], np.ndarray, TrainConfig]:
    """Rebuild the model saved by ``train``, load ``weights`` and evaluate on a test set.

    The architecture comes from ``config_path`` (default: ``config.json`` beside the
    weights); the test set from ``dataset`` (default: the one it was trained on).
    Returns the test metrics, the predictions and the config.

    Raises:
        FileNotFoundError: no weights or config file.
        ValueError: the config is not a Beras training config, or the weights or data
            do not match it.
    """
    weights = Path(weights)
    if not weights.is_file():
        raise FileNotFoundError(f"no weights file at {weights}")
    config_path = Path(config_path) if config_path else weights.parent / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(
            f"no config at {config_path}: beras train writes {CONFIG_FILE} beside "
            f"{WEIGHTS_FILE}; pass --config to name another"
        )
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_path}: not readable JSON ({err})") from None
    cfg, input_size, num_classes, floatx = _config_from_json(data, str(config_path))
    name = dataset or cfg.dataset
    if data_dir is None and name == cfg.dataset:
        data_dir = cfg.data_dir
    _, _, x_test, y_test = load_data(name, data_dir)
    if x_test.shape[1] != input_size or int(y_test.max()) >= num_classes:
        raise ValueError(
            f"the model in {config_path} takes {input_size} inputs and {num_classes} "
            f"classes; the {name} test set has {x_test.shape[1]} inputs and labels up to "
            f"{int(y_test.max())}"
        )
    previous = beras_config.floatx()
    beras_config.set_floatx(floatx)
    try:
        model = compile_model(build_model(cfg, input_size, num_classes), cfg)
        model.load_weights(str(weights))
        x_test = x_test.astype(floatx)
        with np.errstate(over="ignore", invalid="ignore"):
            metrics, predictions = model.evaluate(
                x_test, one_hot(y_test, num_classes), batch_size=batch_size
            )
    finally:
        beras_config.set_floatx(previous)
    return metrics, predictions, dataclasses.replace(cfg, dataset=name)


# ------------------------------------------------------------------- file helpers
def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename,
    so ``path`` is either the old file or the complete new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600 files: use the usual umask mode
            os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None  # strict JSON has no NaN
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """``data`` as indented strict JSON (NaN/inf become null), written atomically."""
    text = json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n"
    atomic_write(path, text.encode("utf-8"))


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def save_npy(path: str | os.PathLike[str], array: Any) -> None:
    """``np.save(path, array)``, atomically."""
    atomic_write(path, _npy_bytes(np.asarray(array)))


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


# ---------------------------------------------------------------- argument parsing
def _type(fn: Fn[[str], Any]) -> Fn[[str], Any]:
    """An argparse type whose ValueError message becomes the one-line usage error."""

    def convert(text: str) -> Any:
        try:
            return fn(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    convert.__name__ = fn.__name__
    return convert


def _parse_hidden(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    sizes = []
    for part in parts:
        if not part.isdigit() or int(part) < 1:
            raise ValueError(
                f"expected comma-separated positive integers such as 256,128, got {text!r}"
            )
        sizes.append(int(part))
    return tuple(sizes)


def _parse_positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def _parse_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number strictly between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise ValueError(f"expected a number strictly between 0 and 1, got {text!r}")
    return value


def _int_at_least(minimum: int) -> Fn[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"int>={minimum}"
    return parse


def _choice(options: Sequence[str]) -> Fn[[str], str]:
    """Case-insensitive choice; ``-`` and ``_`` are interchangeable."""

    def parse(text: str) -> str:
        key = text.strip().lower()
        for option in options:
            if key.replace("-", "_") == option.replace("-", "_"):
                return option
        raise ValueError(f"invalid choice {text!r} (choose from {', '.join(options)})")

    parse.__name__ = "choice"
    return parse


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=86)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=88)


EXIT_STATUS = """\
exit status:
  0    success
  1    runtime error (missing data, unreadable files), or training diverged
       (NaN/inf loss; the outputs are still written)
  2    invalid arguments
  130  interrupted (Ctrl-C); the last completed epoch's weights are kept
"""

EVALUATE_EXIT_STATUS = """\
exit status:
  0    success
  1    runtime error (missing data or config, weights that do not fit the config)
  2    invalid arguments
  130  interrupted (Ctrl-C)
"""

TRAIN_EPILOG = (
    """\
outputs written to --out (each atomically; the first three after every epoch):
  weights.npz          the weights (Model.save_weights / load_weights)
  config.json          what rebuilds the model (read by beras evaluate)
  history.json         per-epoch loss, acc, val_loss, val_acc and lr
  predictions.npy      test-set probabilities, shape (N_test, classes)
  metrics.json         test loss and accuracy, epochs, wall time
  training_curves.png  loss and accuracy per epoch, train and validation
  predictions.png      correct and wrong test images with predicted label and confidence

examples:
  beras train                                  # MLP on MNIST: about 98.5% test accuracy
  beras train --dataset fashion-mnist --out runs/fashion
  beras train --dataset mnist-mini --epochs 3  # 2,500 digits bundled with Beras
  beras train --hidden 128 --optimizer sgd --lr 0.1 --lr-schedule constant

data: MNIST and Fashion-MNIST are looked for in --data-dir, $BERAS_DATA/<name>/,
~/.beras/datasets/<name>/ and /usr/share/datasets/<name>/, then downloaded.

speed: on a machine whose cores are busy with other work, NumPy's multithreaded BLAS
can make training several times slower; OPENBLAS_NUM_THREADS=1 beras train ... avoids it.

"""
    + EXIT_STATUS
)


def build_parser() -> argparse.ArgumentParser:
    """The ``beras`` argument parser (subcommands ``train`` and ``evaluate``)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="beras",
        description="Train and evaluate Beras MLPs on MNIST-family datasets.",
        formatter_class=_HelpFormatter,
        epilog="Run 'beras train --help' or 'beras evaluate --help' for a command's flags.",
    )
    parser.add_argument("--version", action="version", version=f"beras {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = TrainConfig()
    t = commands.add_parser(
        "train",
        help="train an MLP, evaluate it on the test set and save everything",
        description=_wrap(
            "Train an MLP (Dense layers, the chosen activation, Softmax output, "
            "categorical cross-entropy) on a dataset, evaluate it on the test set and "
            "write the weights, history, predictions and pictures to --out. Progress: "
            "a bar per epoch with live loss and accuracy, then a line per epoch with "
            "the validation metrics."
        ),
        formatter_class=_HelpFormatter,
        epilog=TRAIN_EPILOG,
    )
    t.set_defaults(command_parser=t)
    t.add_argument(
        "--dataset",
        type=_type(_choice(DATASETS)),
        default=d.dataset,
        metavar="{" + ",".join(DATASETS) + "}",
        help="the dataset; mnist-mini is bundled (no files needed) (default: %(default)s)",
    )
    t.add_argument(
        "--data-dir",
        default=None,
        metavar="PATH",
        help="a folder holding the dataset's files (default: the search path below)",
    )
    t.add_argument(
        "--hidden",
        type=_type(_parse_hidden),
        default=d.hidden,
        metavar="N[,N...]",
        help="hidden layer sizes, comma-separated (default: " + ",".join(map(str, d.hidden)) + ")",
    )
    t.add_argument(
        "--activation",
        type=_type(_choice(ACTIVATIONS)),
        default=d.activation,
        metavar="{" + ",".join(ACTIVATIONS) + "}",
        help="hidden-layer activation (default: %(default)s)",
    )
    t.add_argument(
        "--initializer",
        type=_type(_choice(INITIALIZERS)),
        default=d.initializer,
        metavar="NAME",
        help="kernel initializer: "
        + ", ".join(INITIALIZERS)
        + "; auto is kaiming (He) for ReLUs, xavier (Glorot) for sigmoid "
        "(default: %(default)s)",
    )
    t.add_argument(
        "--optimizer",
        type=_type(_choice(OPTIMIZERS)),
        default=d.optimizer,
        metavar="{" + ",".join(OPTIMIZERS) + "}",
        help="the optimizer; sgd is plain gradient descent (default: %(default)s)",
    )
    t.add_argument(
        "--lr",
        type=_type(_parse_positive_float),
        default=None,
        metavar="LR",
        help="initial learning rate, > 0 (default: 0.001 for adam, amsgrad and "
        "rmsprop; 0.1 for sgd)",
    )
    t.add_argument(
        "--lr-schedule",
        type=_type(_choice(SCHEDULES)),
        default=d.lr_schedule,
        metavar="{" + ",".join(SCHEDULES) + "}",
        help="cosine: decay per epoch to 1%% of --lr at the last epoch; plateau: "
        "x0.3 after 2 epochs without a lower val_loss; constant (default: %(default)s)",
    )
    t.add_argument(
        "--epochs",
        type=_type(_int_at_least(1)),
        default=d.epochs,
        metavar="N",
        help="passes over the training data (default: %(default)s)",
    )
    t.add_argument(
        "--batch-size",
        type=_type(_int_at_least(1)),
        default=d.batch_size,
        metavar="N",
        help="samples per gradient step (default: %(default)s)",
    )
    t.add_argument(
        "--seed",
        type=_type(_int_at_least(0)),
        default=d.seed,
        metavar="N",
        help="seeds the weights and the shuffling; same seed, same run (default: %(default)s)",
    )
    t.add_argument(
        "--validation-split",
        type=_type(_parse_fraction),
        default=d.validation_split,
        metavar="F",
        help="fraction of the training set held out for validation, taken from its "
        "end as in Keras; in (0, 1) (default: %(default)s)",
    )
    t.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder, created if needed; files of the same names are replaced "
        "(default: runs/DATASET)",
    )
    t.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0: summary only; 1: a progress bar per epoch and an epoch line; "
        "2: epoch lines only (default: %(default)s)",
    )
    t.add_argument(
        "--no-plots",
        action="store_true",
        help="skip training_curves.png and predictions.png",
    )

    e = commands.add_parser(
        "evaluate",
        help="evaluate saved weights on a test set",
        description=_wrap(
            "Rebuild the model described by the config.json beside --weights, load the "
            "weights and report test loss and accuracy."
        ),
        formatter_class=_HelpFormatter,
        epilog="example:\n  beras evaluate --weights runs/mnist/weights.npz\n\n"
        + EVALUATE_EXIT_STATUS,
    )
    e.set_defaults(command_parser=e)
    e.add_argument(
        "--weights",
        required=True,
        metavar="PATH",
        help="a weights.npz written by beras train (required)",
    )
    e.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="the run's config.json (default: the one beside --weights)",
    )
    e.add_argument(
        "--dataset",
        type=_type(_choice(DATASETS)),
        default=None,
        metavar="{" + ",".join(DATASETS) + "}",
        help="evaluate on this dataset's test set (default: the one trained on)",
    )
    e.add_argument(
        "--data-dir",
        default=None,
        metavar="PATH",
        help="a folder holding the dataset's files (default: the search path)",
    )
    e.add_argument(
        "--batch-size",
        type=_type(_int_at_least(1)),
        default=256,
        metavar="N",
        help="samples per evaluation batch (default: %(default)s)",
    )
    e.add_argument(
        "--predictions",
        default=None,
        metavar="PATH",
        help="also save the test predictions (.npy) here",
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset,
        hidden=tuple(args.hidden),
        activation=args.activation,
        initializer=args.initializer,
        optimizer=args.optimizer,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        validation_split=args.validation_split,
        data_dir=args.data_dir,
    )


def _error(command: str, message: str) -> None:
    print(f"beras {command}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``beras`` command; returns the exit status (see ``beras --help``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand, which names it: "beras train: error: ..."
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "train":
        return _main_train(args, parser)
    return _main_evaluate(args)


def _main_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .datasets import DatasetError, DatasetNotFoundError

    cfg = _config_from_args(args)
    out = args.out if args.out is not None else os.path.join("runs", cfg.dataset)
    try:
        result = train(cfg, out, verbose=args.verbose, plots=not args.no_plots)
    except TrainingInterrupted as err:
        print(f"\n{err}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (DatasetError, DatasetNotFoundError) as err:
        _error("train", str(err))
        return EXIT_FAILURE
    except ValueError as err:
        if "--validation-split" in str(err):
            _error("train", str(err))
            return EXIT_USAGE
        raise
    except OSError as err:
        _error("train", f"could not write to {out}: {err}")
        return EXIT_FAILURE
    return EXIT_FAILURE if result.status == "diverged" else EXIT_OK


def _main_evaluate(args: argparse.Namespace) -> int:
    from .datasets import DatasetError

    try:
        metrics, predictions, cfg = evaluate(
            args.weights,
            config_path=args.config,
            dataset=args.dataset,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
        )
        if args.predictions:
            save_npy(args.predictions, predictions)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (DatasetError, FileNotFoundError, ValueError) as err:
        _error("evaluate", str(err))
        return EXIT_FAILURE
    except OSError as err:
        _error("evaluate", str(err))
        return EXIT_FAILURE
    title = DATASET_TITLES.get(cfg.dataset, cfg.dataset)
    print(
        f"{title} test set: loss {metrics['loss']:.4f} - accuracy "
        f"{100 * metrics['acc']:.2f}% ({len(predictions):,} images)"
    )
    if args.predictions:
        print(f"Predictions saved to {args.predictions}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
