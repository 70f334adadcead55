"""The ``beras`` command: ``beras train`` and ``beras evaluate`` (see ``beras --help``).

This module is the command line only: the argument parser, its help pages, and ``main``,
which maps outcomes to messages and exit statuses. The work is done by the pipelines
:func:`beras.runs.train` and :func:`beras.runs.evaluate`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Callable as Fn
from collections.abc import Iterable, Sequence
from typing import Any

from .datasets import DATASETS
from .datasets import title as dataset_title
from .fileio import save_npy
from .optimizers import OPTIMIZERS
from .runs import (
    ResumeError,
    TrainingInterrupted,
    evaluate,
    load_config,
    not_found_message,
    train,
)
from .training import (
    DEFAULT_EPOCHS,
    HIDDEN_ACTIVATIONS,
    INITIALIZERS,
    MODELS,
    SCHEDULES,
    TrainConfig,
    plural,
)
from .validation import ValidationSplitError

__all__ = ["main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


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


def _number(convert: Fn[[str], Any], accept: Fn[[Any], bool], expected: str) -> Fn[[str], Any]:
    """A parser of ``text`` into ``convert(text)`` when ``accept`` takes it, else a ValueError."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise ValueError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


_positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
_fraction = _number(float, lambda v: 0.0 < v < 1.0, "a number strictly between 0 and 1")


def _int_at_least(minimum: int) -> Fn[[str], int]:
    return _number(int, lambda v: v >= minimum, f"an integer >= {minimum}")


def _choice(names: Iterable[str]) -> Fn[[str], str]:
    """Case-insensitive choice among ``names``; ``-`` and ``_`` are interchangeable."""
    options = tuple(names)

    def parse(text: str) -> str:
        key = text.strip().lower()
        for option in options:
            if key.replace("-", "_") == option.replace("-", "_"):
                return option
        raise ValueError(f"invalid choice {text!r} (choose from {', '.join(options)})")

    parse.__name__ = "choice"
    return parse


def _default_learning_rates() -> str:
    """``"0.001 for adam, amsgrad and rmsprop; 0.1 for sgd"``, from the optimizer table."""
    names: dict[float, list[str]] = {}
    for name, entry in OPTIMIZERS.items():
        names.setdefault(entry.default_learning_rate, []).append(name)
    return "; ".join(
        f"{lr:g} for "
        + (" and ".join([", ".join(group[:-1]), group[-1]]) if group[1:] else group[0])
        for lr, group in names.items()
    )


def _add_choice(
    parser: argparse.ArgumentParser, flag: str, names: Iterable[str], default: Any, help: str
) -> None:
    """A flag whose value is one of ``names`` (see :func:`_choice`), listed in the usage."""
    names = tuple(names)
    parser.add_argument(
        flag,
        type=_type(_choice(names)),
        default=default,
        metavar="{" + ",".join(names) + "}",
        help=help,
    )


def _add_threads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=_type(_int_at_least(1)),
        default=None,
        metavar="N",
        help="BLAS threads for matrix products (default: OPENBLAS_NUM_THREADS, "
        "OMP_NUM_THREADS or MKL_NUM_THREADS if set, else the idle CPUs, checked again "
        "every epoch: 1 on a busy machine)",
    )


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
  130  interrupted (Ctrl-C); the last completed epoch's weights are kept, and
       beras train --resume --out DIR continues the run
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
  beras train --resume --out runs/mnist         # continue an interrupted run

resuming: while a run trains, DIR/backup/ holds its full state (weights, optimizer,
random generators, schedule), rewritten after every epoch and deleted when the run
completes. After a Ctrl-C, a kill or a crash, beras train --resume --out DIR continues
from the last completed epoch with the settings in DIR/config.json; its weights, history,
predictions and pictures are those of a run that was never interrupted, bit for bit.
Training flags that differ from the recorded ones are refused; a new run in DIR (without
--resume) discards the backup.

data: MNIST and Fashion-MNIST are looked for in --data-dir, $BERAS_DATA/<name>/,
~/.beras/datasets/<name>/ and /usr/share/datasets/<name>/, then downloaded. A plain
beras train that finds MNIST nowhere trains on mnist-mini and says so; config.json
records where the data came from (data_dir, data_source).

speed: NumPy's multithreaded BLAS makes training several times slower on a machine
whose cores are busy with other work. beras train chooses the thread count itself (the
idle CPUs when it starts, checked again every epoch) and prints it; --threads or
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS set by you take precedence.

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
    _add_choice(
        t,
        "--dataset",
        DATASETS,
        default=None,  # None: mnist, falling back to mnist-mini when MNIST is nowhere
        help="the dataset; mnist-mini is bundled (no files needed). Without --dataset, "
        "--data-dir and BERAS_DATA, a run that finds MNIST neither on disk nor online trains on "
        f"mnist-mini and says so; given explicitly, a missing dataset is an error "
        f"(default: {d.dataset})",
    )
    t.add_argument(
        "--data-dir",
        default=None,
        metavar="PATH",
        help="a folder holding the dataset's files (default: the search path below)",
    )
    _add_choice(
        t,
        "--model",
        MODELS,
        default=d.model,
        help="the model to build; mlp: Dense layers of --hidden sizes; cnn: two blocks of "
        "Conv2D (32 then 64 3x3 filters, padding same), 2x2 max pooling, "
        "BatchNormalization and --activation, then Dense 128 and the output, with dropout "
        "0.25 before each Dense (ignores --hidden) (default: %(default)s)",
    )
    t.add_argument(
        "--hidden",
        type=_type(_parse_hidden),
        default=d.hidden,
        metavar="N[,N...]",
        help="hidden layer sizes, comma-separated (default: " + ",".join(map(str, d.hidden)) + ")",
    )
    _add_choice(
        t,
        "--activation",
        HIDDEN_ACTIVATIONS,
        default=d.activation,
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
    _add_choice(
        t,
        "--optimizer",
        OPTIMIZERS,
        default=d.optimizer,
        help="the optimizer; sgd is plain gradient descent (default: %(default)s)",
    )
    t.add_argument(
        "--lr",
        type=_type(_positive_float),
        default=None,
        metavar="LR",
        help=f"initial learning rate, > 0 (default: {_default_learning_rates()})",
    )
    _add_choice(
        t,
        "--lr-schedule",
        SCHEDULES,
        default=d.lr_schedule,
        help="cosine: decay per epoch to 1%% of --lr at the last epoch; plateau: "
        "x0.3 after 2 epochs without a lower val_loss; constant (default: %(default)s)",
    )
    t.add_argument(
        "--epochs",
        type=_type(_int_at_least(1)),
        default=None,
        metavar="N",
        help="passes over the training data (default: "
        + ", ".join(f"{n} for {m}" for m, n in DEFAULT_EPOCHS.items())
        + ")",
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
        type=_type(_fraction),
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
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out (required) from its last completed "
        "epoch, with the settings recorded in its config.json",
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
    _add_threads(t)

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
    _add_choice(
        e,
        "--dataset",
        DATASETS,
        default=None,
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
    _add_threads(e)
    return parser


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of ``beras train``'s arguments: each flag sets the field of its
    name; a flag left at None (``--dataset`` not given) keeps the field's default."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    cfg = TrainConfig(**given)
    cfg.hidden = tuple(cfg.hidden)
    return cfg


def _error(command: str, message: str) -> None:
    print(f"beras {command}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``beras`` command; returns the exit status (see ``beras --help``)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand, which names it: "beras train: error: ..."
        args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "train":
        return _main_train(args, argv)
    return _main_evaluate(args)


# Flags that may differ on --resume: where the data and outputs are, how much is shown,
# how many BLAS threads compute it.
_RESUME_FREE = {
    "out",
    "data_dir",
    "verbose",
    "no_plots",
    "threads",
    "resume",
    "command",
    "command_parser",
}


def _explicit_flags(argv: Sequence[str] | None) -> set[str]:
    """The ``dest`` of every ``train`` flag given on the command line (defaults aside)."""
    parser = build_parser()
    args, _ = parser.parse_known_args(argv)
    for action in args.command_parser._actions:  # argparse has no public way to list them
        action.default = argparse.SUPPRESS
    explicit, _ = parser.parse_known_args(argv)
    return set(vars(explicit))


def _resume_config(args: argparse.Namespace, argv: Sequence[str] | None) -> TrainConfig | None:
    """The recorded config of the run in ``--out``, after checking the flags; None on error."""
    if args.out is None:
        args.command_parser.error("--resume needs --out DIR, the folder of the run to continue")
    try:
        cfg, floatx = load_config(args.out)
    except ResumeError as err:
        _error("train", str(err))
        return None
    given = _config_from_args(args)
    conflicts = []
    for dest in sorted(_explicit_flags(argv) - _RESUME_FREE):
        if getattr(given, dest) != getattr(cfg, dest):
            flag = "--" + dest.replace("_", "-")
            conflicts.append(f"{flag} {getattr(given, dest)} (the run has {getattr(cfg, dest)})")
    if conflicts:
        args.command_parser.error(
            f"--resume continues the run recorded in {os.path.join(args.out, 'config.json')}; "
            f"these flags differ from it: {'; '.join(conflicts)}. Drop them, or train into a "
            "new --out"
        )
    if args.data_dir is not None:
        cfg.data_dir = args.data_dir
    from . import config as beras_config

    beras_config.set_floatx(floatx)
    return cfg


def _main_train(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    from .datasets import DatasetError, DatasetNotFoundError

    if args.resume:
        resumed = _resume_config(args, argv)
        if resumed is None:
            return EXIT_FAILURE
        cfg, fallback = resumed, False  # the recorded dataset, whatever a fallback chose
    else:
        cfg = _config_from_args(args)
        # plain `beras train` (no --dataset, no --data-dir) may fall back to mnist-mini
        fallback = args.dataset is None and args.data_dir is None
    try:
        result = train(
            cfg,
            args.out,
            verbose=args.verbose,
            plots=not args.no_plots,
            threads=args.threads,
            fallback=fallback,
            resume=args.resume,
        )
    except ResumeError as err:
        _error("train", str(err))
        return EXIT_FAILURE
    except TrainingInterrupted as err:
        print(f"\n{err}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except DatasetNotFoundError as err:
        _error("train", not_found_message(err, cfg.dataset))
        return EXIT_FAILURE
    except DatasetError as err:
        _error("train", str(err))
        return EXIT_FAILURE
    except ValidationSplitError as err:  # fits the flag's range, but not this dataset
        _error("train", str(err))
        return EXIT_USAGE
    except OSError as err:
        out = args.out if args.out is not None else "runs" + os.sep
        _error("train", f"could not write to {out}: {err}")
        return EXIT_FAILURE
    return EXIT_FAILURE if result.status == "diverged" else EXIT_OK


def _main_evaluate(args: argparse.Namespace) -> int:
    try:
        metrics, predictions, cfg = evaluate(
            args.weights,
            config_path=args.config,
            dataset=args.dataset,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            threads=args.threads,
            print_fn=print,
        )
        if args.predictions:
            save_npy(args.predictions, predictions)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (OSError, ValueError) as err:  # missing or mismatched files, DatasetError
        _error("evaluate", str(err))
        return EXIT_FAILURE
    title = dataset_title(cfg.dataset)
    print(
        f"{title} test set: loss {metrics['loss']:.4f} - accuracy "
        f"{100 * metrics['acc']:.2f}% ({plural(len(predictions), 'image')})"
    )
    if args.predictions:
        print(f"Predictions saved to {args.predictions}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
