"""The ``beras train`` and ``beras evaluate`` pipelines, and the output folder they write.

:func:`train` reads top to bottom: **load** the dataset, **build** and compile the model
its :class:`~beras.training.TrainConfig` names, **fit** it (a progress bar per epoch on
a terminal, a line per epoch with validation metrics) and **evaluate** it on the test
set, **write** the outputs, then report. Into the output folder go:

- ``weights.npz`` (``Model.save_weights``) and ``config.json`` (what rebuilds the model),
  both rewritten after every completed epoch;
- ``history.json`` (per-epoch metrics and learning rate), also rewritten every epoch;
- ``predictions.npy`` (test-set probabilities), ``metrics.json`` (test metrics, wall time);
- ``training_curves.png`` and ``predictions.png`` (matplotlib, Agg backend).

Every file is written atomically (:func:`beras.fileio.atomic_write`), so an interrupted
run never leaves half a file. Ctrl-C raises :class:`TrainingInterrupted`, whose message
says where training stopped; the last completed epoch's weights are kept.

While a run trains, ``backup/training_state.npz`` in the output folder holds everything
needed to continue it (:class:`~beras.callbacks.BackupAndRestore`: weights, optimizer,
random generators, callbacks), rewritten after every epoch and deleted once every output
file is written. ``train(..., resume=True)`` (``beras train --resume``) continues an
interrupted run from it, with the configuration in its ``config.json``, and ends with
the same files as a run that was never interrupted.

:func:`evaluate` rebuilds the model from the ``config.json`` beside saved weights and
evaluates it on a test set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable as Fn
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import config as beras_config
from . import datasets, runstate
from . import threads as blas_threads
from .callbacks import BackupAndRestore, Callback, ModelCheckpoint
from .fileio import save_npy, write_json
from .model import SequentialModel
from .training import (
    CNN_BLOCKS,
    CNN_DENSE,
    TrainConfig,
    TrainingTracker,
    TrainResult,
    architecture,
    build_model,
    compile_model,
    fit_and_evaluate,
    load_data,
    one_hot,
    plural,
)
from .utils import set_random_seed
from .validation import validation_split_sizes

__all__ = [
    "ResumeError",
    "TrainingInterrupted",
    "evaluate",
    "load_config",
    "not_found_message",
    "train",
]

# The files of a run, inside its output folder (``beras train --out``).
WEIGHTS_FILE = "weights.npz"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.npy"
CURVES_FILE = "training_curves.png"
PREDICTIONS_PNG = "predictions.png"
BACKUP_DIR = "backup"  # BackupAndRestore's folder: the state to resume from


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during ``train``: the message says where it stopped and what was kept."""


class ResumeError(ValueError):
    """``train(resume=True)`` cannot continue the run: nothing to resume, or a bad backup."""


def load_config(out: str | os.PathLike[str]) -> tuple[TrainConfig, str]:
    """The TrainConfig and float type recorded in ``out/config.json`` by ``train``.

    Raises:
        ResumeError: no readable Beras training config in ``out``.
    """
    path = Path(out) / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(
            f"no run to resume in {out}: it has no {CONFIG_FILE} (beras train writes it "
            "when training starts)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResumeError(f"{path}: not readable JSON ({err})") from None
    try:
        cfg, _, _, floatx = TrainConfig.from_json(data, str(path))
    except ValueError as err:
        raise ResumeError(str(err)) from None
    return cfg, floatx


# --------------------------------------------------------------------------- data
FALLBACK = "mnist-mini fallback"  # the data_source of a plain run that found no MNIST


class DataSource(NamedTuple):
    """Where a run's data came from (recorded in ``config.json``).

    Attributes:
        origin: ``"--data-dir"``, ``"BERAS_DATA"``, ``"cache"`` (the download cache,
            ``~/.beras/datasets`` or ``$BERAS_HOME/datasets``), ``"system"``
            (``/usr/share/datasets``), ``"download"`` (downloaded into the cache by this
            run), ``"bundled"`` (mnist-mini, inside Beras) or ``"mnist-mini fallback"``
            (plain ``beras train`` found no MNIST and used mnist-mini).
        location: the folder (or ``.npz`` file) read, None for the bundled mnist-mini.
    """

    origin: str
    location: str | None

    def describe(self) -> str:
        where = {
            "--data-dir": "--data-dir",
            "BERAS_DATA": "BERAS_DATA",
            "cache": "the download cache",
            "system": "the system dataset folder",
            "download": "downloaded into the cache",
        }
        if self.origin == FALLBACK:
            return "mnist-mini, bundled with Beras (MNIST was not found)"
        if self.location is None:
            return "bundled with Beras"
        return f"{self.location} ({where.get(self.origin, self.origin)})"


_ORIGINS = {"path": "--data-dir", "BERAS_DATA": "BERAS_DATA", "cache": "cache", "system": "system"}


def _read_data(
    cfg: TrainConfig, fallback: bool, print_fn: Fn[[str], None]
) -> tuple[TrainConfig, tuple[np.ndarray, ...], DataSource]:
    """Load ``cfg``'s data and say where from; with ``fallback``, mnist-mini when MNIST
    is nowhere (announced here, with a banner). Returns the (possibly changed) config,
    the arrays and their source."""
    found = datasets.locate(cfg.dataset, cfg.data_dir)
    try:
        arrays = load_data(cfg.dataset, cfg.data_dir)
    except datasets.DatasetNotFoundError as err:
        # a data folder the user named (--data-dir or BERAS_DATA) that holds no MNIST is
        # an error, never a silent switch to the small dataset
        named = cfg.data_dir is not None or bool(datasets.named_folders())
        if not (fallback and cfg.dataset == "mnist" and not named):
            raise
        cfg = dataclasses.replace(cfg, dataset="mnist-mini")
        print_fn(_fallback_banner(err))
        return cfg, load_data("mnist-mini"), DataSource(FALLBACK, None)
    if found is None:  # not on disk before: load_data downloaded it into the cache
        after = datasets.locate(cfg.dataset, cfg.data_dir)
        return cfg, arrays, DataSource("download", str(after[1]) if after else None)
    origin, location = found
    where = None if location is None else str(location)
    return cfg, arrays, DataSource(_ORIGINS.get(origin, origin), where)


def _how_to_get(dataset: str, command: str = "train", fallback: bool = False) -> str:
    """The command-line ways to provide ``dataset`` (MNIST or Fashion-MNIST) to
    ``beras COMMAND``, or to ``python assignment.py`` (``command="assignment.py"``,
    which takes no flags)."""
    spec = datasets.fashion_mnist.SPEC if dataset == "fashion-mnist" else datasets.mnist.SPEC
    files = " or ".join(spec.npz_names)
    idx = "the four IDX files train-images-idx3-ubyte.gz ... t10k-labels-idx1-ubyte.gz"
    if command == "assignment.py":
        return (
            f"To use {spec.title}:\n  - BERAS_DATA=PATH python assignment.py  (PATH holds "
            f"{spec.folder}/ with {idx}, or {files})\n  - run it once with network access: "
            f"{spec.title} is downloaded into {datasets.cache_dir() / spec.folder} and checked"
            "\n  - or, without the data, beras train --dataset mnist-mini: the same MLP on "
            "2,500 digits bundled with Beras"
        )
    base = "beras evaluate --weights WEIGHTS" if command == "evaluate" else f"beras {command}"
    run = base if command == "evaluate" else f"{base} --dataset {dataset}"
    ways = [
        f"{run} --data-dir PATH  (PATH holds {idx}, or {files})",
        f"BERAS_DATA=PATH {run}  (PATH holds {spec.folder}/ with those files)",
        f"run it once with network access: {spec.title} is downloaded into "
        f"{datasets.cache_dir() / spec.folder} and checked",
    ]
    if spec.install_hint:
        ways.append(spec.install_hint)
    if fallback:
        ways.append("beras train --dataset mnist-mini: the bundled digits, without this note")
    else:
        ways.append(f"or {base} --dataset mnist-mini: 2,500 digits bundled with Beras")
    return f"To use {spec.title}:" + "".join(f"\n  - {w}" for w in ways)


def not_found_message(err: BaseException, dataset: str, command: str = "train") -> str:
    """A dataset-not-found message for ``beras COMMAND``: where the loader looked and
    why it could not download, then the command-line ways to provide the files."""
    looked = str(err).split("\nTo provide the data:")[0]
    return f"{looked}\n{_how_to_get(dataset, command)}"


def _fallback_banner(err: BaseException) -> str:
    looked = str(err).split("\nTo provide the data:")[0]
    rule = "=" * 78
    return (
        f"{rule}\nWARNING: MNIST was not found, so this run trains on mnist-mini instead:\n"
        "the 2,000 training and 500 test digits bundled with Beras. Expect about 90%\n"
        "test accuracy (its default run: 89.8%) instead of about 98.5% on full MNIST.\n"
        f"{looked}\n{_how_to_get('mnist', fallback=True)}\n{rule}"
    )


# -------------------------------------------------------------------------- train
def train(
    cfg: TrainConfig,
    out: str | os.PathLike[str] | None,
    verbose: int = 1,
    plots: bool = True,
    print_fn: Fn[[str], None] = print,
    threads: int | None = None,
    fallback: bool = False,
    resume: bool = False,
) -> TrainResult:
    """Load ``cfg.dataset``, train, evaluate and write every output file into ``out``.

    ``out`` None means ``runs/<dataset>``. ``threads`` is ``--threads``: the BLAS thread
    count for the run (None: the environment's, else :mod:`beras.threads`' default, the
    idle CPUs, checked every epoch). ``fallback`` (plain ``beras train``): when MNIST is neither on
    disk nor downloadable, train on the bundled mnist-mini instead, saying so loudly at
    the start and in the summary.

    With ``resume=True``, continue the interrupted run in ``out`` from its backup (after
    its last completed epoch); ``cfg`` must be the run's own (:func:`load_config`). The
    outputs are then those of a run that was never interrupted. Without it, a backup
    left in ``out`` by an interrupted run is discarded and training starts over.

    Raises:
        TrainingInterrupted: Ctrl-C; the last completed epoch's weights, config and
            history are on disk, and the message says where training stopped.
        ResumeError: ``resume=True`` but ``out`` holds no run to continue (it completed,
            or never started), or its backup is unreadable or does not fit ``cfg``.
        beras.validation.ValidationSplitError: ``cfg.validation_split`` leaves no
            sample on one side.
        beras.datasets.DatasetNotFoundError: the dataset is nowhere to be found.
        beras.datasets.DatasetError: a dataset file is corrupt.
    """
    started = time.perf_counter()
    given_out = out
    out = Path("runs")  # until the data says which dataset the run is on
    stage = _Stage()
    try:
        cfg, data = _load(cfg, fallback, print_fn)
        out = Path(given_out) if given_out is not None else Path("runs") / cfg.dataset
        if resume:
            data.source = _recorded_source(out, cfg, data.source)
        model = _build(cfg, data)
        _announce(cfg, data, model, print_fn)
        choice = blas_threads.choose(threads)
        with blas_threads.limit(choice) as line:
            print_fn(line)
            recheck = blas_threads.Recheck(choice, print_fn if verbose else None)
            # kept until every output is written (deleted below), so a run interrupted
            # after training still resumes, to its evaluation and pictures
            backup = BackupAndRestore(out / BACKUP_DIR, delete_checkpoint=False)
            note = _prepare_backup(backup, out, cfg, resume)
            if note:
                print_fn(note)
            stage.name = "training"
            try:
                result = _fit_and_evaluate(cfg, data, model, out, stage, verbose, [backup, recheck])
            except runstate.RunStateError as err:
                raise ResumeError(f"cannot resume the run in {out}: {err}") from None
            stage.name = "writing the outputs"
            written, skipped = _write_outputs(cfg, data, model, result, out, plots, started)
            _delete_backup(backup)
    except KeyboardInterrupt:
        raise TrainingInterrupted(_interrupt_message(out, stage)) from None
    _report(result, data, out, written, skipped, started, print_fn)
    return result


@dataclasses.dataclass
class _Data:
    """A dataset as the run uses it: arrays, split sizes, and what sizes the model."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_fit: int  # training samples left after the validation split
    n_val: int
    input_size: int
    num_classes: int
    source: DataSource  # where the arrays were read (config.json records it)


@dataclasses.dataclass
class _Stage:
    """Where ``train`` is, for the message of an interrupt."""

    name: str = "loading the data"
    tracker: TrainingTracker | None = None
    writer: _EpochWriter | None = None


class _EpochWriter(ModelCheckpoint):
    """After each epoch: ``config.json``, the weights, then ``history.json`` (atomically)."""

    def __init__(self, out: Path, config_json: dict[str, Any], tracker: TrainingTracker) -> None:
        super().__init__(str(out / WEIGHTS_FILE))
        self.out, self.config_json, self.tracker = out, config_json, tracker
        self.history_saved: dict[str, list[float]] = {}
        self.saving_epoch: int | None = None  # the epoch whose weights are being written
        self.saved_file: tuple[int, ...] | None = None  # identity of the last saved file

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        write_json(self.out / CONFIG_FILE, self.config_json)
        self.saving_epoch = epoch + 1
        super().on_epoch_end(epoch, logs)  # the weights
        self.saved_file = self._file_on_disk()
        self.history_saved = {k: list(v) for k, v in self.tracker.history.items()}
        write_json(self.out / HISTORY_FILE, self.history_saved)

    def _file_on_disk(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.filepath)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def epoch_on_disk(self) -> int | None:
        """The epoch whose weights are in the file now, even if Ctrl-C came mid-save.

        An interrupt after the rename but before ``last_saved_epoch`` is updated leaves
        the new file on disk: a file other than the last one recorded means the epoch
        being saved made it.
        """
        saving = self.saving_epoch
        if saving is not None and saving != self.last_saved_epoch:
            now = self._file_on_disk()
            if now is not None and now != self.saved_file:
                return saving
        return self.last_saved_epoch


def _load(cfg: TrainConfig, fallback: bool, print_fn: Fn[[str], None]) -> tuple[TrainConfig, _Data]:
    """The dataset, checked against the validation split before anything is built.

    With ``fallback``, mnist-mini when MNIST is nowhere: the returned config then
    names it (see :func:`_read_data`)."""
    cfg, arrays, source = _read_data(cfg, fallback, print_fn)
    x_train, y_train, x_test, y_test = arrays
    n_fit, n_val = validation_split_sizes(len(x_train), cfg.validation_split, "--validation-split")
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    data = _Data(
        x_train, y_train, x_test, y_test, n_fit, n_val, x_train.shape[1], num_classes, source
    )
    return cfg, data


def _build(cfg: TrainConfig, data: _Data) -> SequentialModel:
    """The compiled model of ``cfg``, sized by the data, its weights drawn from ``cfg.seed``."""
    set_random_seed(cfg.seed)
    return compile_model(build_model(cfg, data.input_size, data.num_classes), cfg)


def _announce(
    cfg: TrainConfig, data: _Data, model: SequentialModel, print_fn: Fn[[str], None]
) -> None:
    """What is about to be trained, on what."""
    params = sum(int(np.size(w)) for w in model.weights)
    print_fn(
        f"{datasets.title(cfg.dataset)}: {data.n_fit:,} training, {data.n_val:,} validation "
        f"and {plural(len(data.x_test), 'test image')}"
    )
    print_fn(f"Data: {data.source.describe()}")
    print_fn(
        f"Model: {_model_name(cfg, data)} "
        f"({cfg.activation}, {cfg.kernel_initializer} init, {plural(params, 'parameter')})"
    )
    print_fn(f"Training: {cfg.describe()}")


def _fit_and_evaluate(
    cfg: TrainConfig,
    data: _Data,
    model: SequentialModel,
    out: Path,
    stage: _Stage,
    verbose: int,
    callbacks: list[Callback],
) -> TrainResult:
    """Fit and evaluate; config, weights and history are written after every epoch, and
    then ``callbacks`` run (the backup of the whole training state first)."""
    out.mkdir(parents=True, exist_ok=True)
    stage.tracker = TrainingTracker(cfg.epochs, math.ceil(data.n_fit / cfg.batch_size))
    config_json = cfg.to_json(data.input_size, data.num_classes, data.source)
    stage.writer = _EpochWriter(out, config_json, stage.tracker)
    write_json(out / CONFIG_FILE, config_json)  # what --resume rebuilds the run from
    return fit_and_evaluate(
        model,
        (data.x_train, data.y_train),
        (data.x_test, data.y_test),
        cfg,
        callbacks=[stage.tracker, stage.writer, *callbacks],
        verbose=verbose,
    )


def _prepare_backup(backup: BackupAndRestore, out: Path, cfg: TrainConfig, resume: bool) -> str:
    """Check (resume) or discard (new run) the backup in ``out``; the line to print."""
    if not resume:
        if backup.path.exists():
            _delete_backup(backup)
            return (
                f"Starting over: the interrupted run's backup in {out} was discarded "
                "(beras train --resume continues a run instead)."
            )
        return ""
    if not backup.path.exists():
        if (out / METRICS_FILE).exists():
            raise ResumeError(
                f"nothing to resume in {out}: the run completed (see {out / METRICS_FILE}); "
                "train into a new --out, or without --resume to start it over"
            )
        return (
            f"Resuming {out}: it has no backup yet (it stopped before its first backup was "
            "complete), so training starts again at epoch 1."
        )
    try:
        state = runstate.load(backup.path)
    except runstate.RunStateError as err:
        raise ResumeError(f"cannot resume the run in {out}: {err}") from None
    done = int(state.get("epoch", -1))
    return f"Resuming {out} after epoch {done}/{cfg.epochs} (the last completed)."


def _recorded_source(out: Path, cfg: TrainConfig, source: DataSource) -> DataSource:
    """The data source ``out/config.json`` recorded, when the resumed run read the same
    place (its ``data_dir``), so ``config.json`` stays that of the uninterrupted run."""
    try:
        data = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
        recorded = DataSource(str(data["data_source"]), data["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return source
    return recorded if recorded.location == source.location else source


def _delete_backup(backup: BackupAndRestore) -> None:
    with contextlib.suppress(FileNotFoundError):
        backup.path.unlink()
    with contextlib.suppress(OSError):
        backup.backup_dir.rmdir()


def _write_outputs(
    cfg: TrainConfig,
    data: _Data,
    model: SequentialModel,
    result: TrainResult,
    out: Path,
    plots: bool,
    started: float,
) -> tuple[list[str], str]:
    """The files of the run; returns their names and why the pictures were skipped ("")."""
    if result.status == "diverged":
        # fit kept the weights from before the bad step: save those (they may be
        # mid-epoch, newer than the last checkpoint)
        model.save_weights(str(out / WEIGHTS_FILE))
        write_json(out / CONFIG_FILE, cfg.to_json(data.input_size, data.num_classes, data.source))
        write_json(out / HISTORY_FILE, result.history)
    save_npy(out / PREDICTIONS_FILE, result.predictions)
    written = [WEIGHTS_FILE, CONFIG_FILE, HISTORY_FILE, PREDICTIONS_FILE, METRICS_FILE]
    skipped = ""
    if plots:
        try:
            _write_plots(out, cfg, result, data)
            written += [CURVES_FILE, PREDICTIONS_PNG]
        except ImportError as err:
            skipped = (
                f"Pictures skipped: {err.name or 'matplotlib'} is not installed "
                "(pip install 'beras[train]')."
            )
    write_json(
        out / METRICS_FILE,
        {
            "dataset": cfg.dataset,
            "test_loss": result.test.get("loss"),
            "test_acc": result.test.get("acc"),
            "test_samples": len(data.x_test),
            "epochs_completed": result.epochs_completed,
            "status": result.status,
            "message": result.message,
            "train_seconds": round(result.train_seconds, 3),
            "wall_seconds": round(time.perf_counter() - started, 3),
        },
    )
    return written, skipped


def _report(
    result: TrainResult,
    data: _Data,
    out: Path,
    written: list[str],
    skipped: str,
    started: float,
    print_fn: Fn[[str], None],
) -> None:
    if result.status == "diverged":
        print_fn(
            f"Training diverged (non-finite loss or gradient): {result.message} "
            "The outputs below use those weights; try a smaller --lr."
        )
    print_fn(
        f"Test loss: {result.test['loss']:.4f} - test accuracy: "
        f"{100 * result.test['acc']:.2f}% ({plural(len(data.x_test), 'image')})"
    )
    wall = time.perf_counter() - started
    print_fn(
        f"Wall time: {_duration(wall)} (training {_duration(result.train_seconds)}, "
        f"{plural(result.epochs_completed, 'epoch')})"
    )
    print_fn(f"Saved to {out}{os.sep}: {', '.join(written)}")
    if skipped:
        print_fn(skipped)
    if data.source.origin == FALLBACK:
        print_fn(
            "NOTE: this run trained on mnist-mini, not MNIST, because MNIST was not found.\n"
            + _how_to_get("mnist", fallback=True)
        )


def _interrupt_message(out: Path, stage: _Stage) -> str:
    tracker, writer = stage.tracker, stage.writer
    if tracker is None or writer is None:
        return f"Interrupted while {stage.name}; nothing was written."
    saved = writer.epoch_on_disk()
    if stage.name == "training" and saved is not None and saved == tracker.epoch + 1:
        # during the epoch-end bookkeeping, after this epoch's weights were written
        where = f"Interrupted at the end of epoch {saved}/{tracker.epochs}."
    elif stage.name == "training":
        where = f"Interrupted {tracker.where()}."
    else:
        where = f"Interrupted after training, while {stage.name}."
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
        f"Evaluate them with: beras evaluate --weights {weights} - or continue training "
        f"with: beras train --resume --out {out}"
    )


def _model_name(cfg: TrainConfig, data: _Data) -> str:
    """``"MLP 784-512-256-10"``, ``"CNN 28x28x1 conv32-conv64-128-10"``."""
    if cfg.model == "cnn":
        side = math.isqrt(data.input_size)
        convs = "-".join(f"conv{filters}" for filters, _, _ in CNN_BLOCKS)
        return f"CNN {side}x{side}x1 {convs}-{CNN_DENSE}-{data.num_classes}"
    return f"{cfg.model.upper()} {architecture(cfg.hidden, data.input_size, data.num_classes)}"


def _write_plots(out: Path, cfg: TrainConfig, result: TrainResult, data: _Data) -> None:
    from . import plots

    title = datasets.title(cfg.dataset)
    fig = plots.training_curves(
        result.history,
        title=f"{title}: {_model_name(cfg, data)}, {cfg.optimizer} lr {cfg.learning_rate:g}"
        + ("" if cfg.lr_schedule == "constant" else f" ({cfg.lr_schedule})")
        + f", batch {cfg.batch_size}"
        + (" (diverged)" if result.status == "diverged" else ""),
        test_metrics=result.test,
    )
    plots.save_png(fig, out / CURVES_FILE)
    fig = plots.prediction_grid(
        data.x_test,
        data.y_test,
        result.predictions,
        class_names=datasets.class_names(cfg.dataset),
        title=f"{title} test set: {100 * result.test['acc']:.2f}% correct",
    )
    plots.save_png(fig, out / PREDICTIONS_PNG)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


# ----------------------------------------------------------------------- evaluate
def evaluate(
    weights: str | os.PathLike[str],
    config_path: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 256,
    threads: int | None = None,
    print_fn: Fn[[str], None] | None = None,
) -> tuple[dict[str, float], np.ndarray, TrainConfig]:
    """Rebuild the model saved by ``train``, load ``weights`` and evaluate on a test set.

    The architecture comes from ``config_path`` (default: ``config.json`` beside the
    weights); the test set from ``dataset`` (default: the one it was trained on).
    Returns the test metrics, the predictions and the config. ``threads`` is the BLAS
    thread count (as in :func:`train`); the line saying which is passed to ``print_fn``.

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
    cfg, input_size, num_classes, floatx = TrainConfig.from_json(data, str(config_path))
    name = dataset or cfg.dataset
    # the folder the run read, when the user named it (--data-dir; older configs only
    # recorded that); data found by searching is searched for again
    if (
        data_dir is None
        and name == cfg.dataset
        and data.get("data_source", "--data-dir") == "--data-dir"
    ):
        data_dir = cfg.data_dir
    try:
        _, _, x_test, y_test = load_data(name, data_dir)
    except datasets.DatasetNotFoundError as err:
        recorded = cfg.data_dir if data_dir is None and name == cfg.dataset else None
        if recorded is None or not Path(recorded).exists():
            message = not_found_message(err, name, "evaluate")
            raise datasets.DatasetNotFoundError(message) from None
        # not where a search looks now (BERAS_DATA unset since?): where the run read it
        if print_fn is not None:
            print_fn(f"Data: {recorded} (where the run read it, from {config_path.name})")
        _, _, x_test, y_test = load_data(name, recorded)
    if x_test.shape[1] != input_size or int(y_test.max()) >= num_classes:
        raise ValueError(
            f"the model in {config_path} takes {input_size} inputs and {num_classes} "
            f"classes; the {name} test set has {x_test.shape[1]} inputs and labels up to "
            f"{int(y_test.max())}"
        )
    choice = blas_threads.choose(threads, per_epoch=False)
    previous = beras_config.floatx()
    beras_config.set_floatx(floatx)
    try:
        with blas_threads.limit(choice) as line:
            if print_fn is not None:
                print_fn(line)
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
