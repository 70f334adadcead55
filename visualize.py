"""Show a model's correct and wrong predictions (the course stencil's ``visualize.py``).

``python visualize.py`` draws the test-set predictions of the latest ``beras train`` run
(the newest ``runs/*/weights.npz`` under the current folder, ``beras train``'s default
``--out``), or of the weights named by ``--weights``. Without any run it first trains a
quick model on ``mnist-mini`` (the 2,000 + 500 digits shipped with Beras; a few seconds)
and says so. The figure opens in a window when there is a display; otherwise (or with
``MPLBACKEND=Agg``) it is saved as ``predictions.png`` (``--out``) and the path printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beras import plots

#: Where ``beras train`` writes its runs by default (``runs/DATASET``).
RUNS_DIR = Path("runs")
#: The quick model trained when there is no run: small, so it takes seconds.
QUICK_EPOCHS = 3


def visualize_predictions(
    model: Any,
    inputs: Any,
    labels_one_hot: Any,
    num_searching: int = 500,
    path: str = "predictions.png",
) -> str | None:
    """Plot correct and wrong predictions among the first ``num_searching`` inputs.

    Each image is titled with the predicted digit and the model's confidence; correct
    ones are framed green, wrong ones red with the true label. The figure is shown in a
    window when there is a display; otherwise (or with ``MPLBACKEND=Agg``) it is saved
    as a PNG at ``path``, whose name is returned (None when shown).
    """
    inputs = np.asarray(inputs)[:num_searching]
    labels = np.asarray(labels_one_hot)[:num_searching]
    probabilities = np.asarray(model(inputs))
    return _draw(
        inputs, labels, probabilities, path, f"Predictions on the first {len(inputs)} inputs"
    )


def _draw(
    inputs: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
    path: str,
    title: str,
    class_names: Sequence[str] | None = None,
) -> str | None:
    interactive = plots.has_display()
    fig = plots.prediction_grid(
        inputs, labels, probabilities, class_names=class_names, title=title, pyplot=interactive
    )
    if interactive:
        import matplotlib.pyplot as plt

        plt.show()
        return None
    plots.save_png(fig, path)
    print(f"No display: saved the figure to {os.path.abspath(path)}")
    return path


def find_last_run(root: str | os.PathLike[str] = RUNS_DIR) -> Path | None:
    """The newest ``weights.npz`` in a subfolder of ``root`` with a ``config.json`` beside it."""
    runs = [p for p in Path(root).glob("*/weights.npz") if (p.parent / "config.json").is_file()]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _from_run(weights: Path, out: str, num_searching: int, threads: int | None) -> str | None:
    from beras import datasets, runs, training

    print(f"Predictions of {weights} (config: {weights.parent / 'config.json'})")
    metrics, predictions, cfg = runs.evaluate(weights, threads=threads, print_fn=print)
    _, _, x_test, y_test = training.load_data(cfg.dataset, cfg.data_dir)
    title = datasets.title(cfg.dataset)
    n = min(num_searching, len(x_test))
    return _draw(
        x_test[:n],
        y_test[:n],
        predictions[:n],
        out,
        f"{title} test set, first {n} images ({100 * metrics['acc']:.2f}% correct on all "
        f"{len(x_test):,})",
        class_names=datasets.class_names(cfg.dataset),
    )


def _quick_model(out: str, num_searching: int, threads: int | None) -> str | None:
    from beras import threads as blas_threads
    from beras import training

    cfg = training.TrainConfig(dataset="mnist-mini", epochs=QUICK_EPOCHS)
    print(
        f"No beras train run found in {RUNS_DIR}{os.sep} (its default --out), so training a "
        f"quick model to show: MLP {training.architecture(cfg.hidden, 784, 10)} on "
        f"mnist-mini (the 2,000 training digits bundled with Beras), {QUICK_EPOCHS} epochs."
        "\nFor a real model run 'beras train' first (or pass --weights PATH)."
    )
    x_train, y_train, x_test, y_test = training.load_data("mnist-mini")
    model = training.compile_model(training.build_model(cfg), cfg)
    with blas_threads.limit(blas_threads.choose(threads, per_epoch=False)) as line:
        print(line)
        result = training.fit_and_evaluate(
            model, (x_train, y_train), (x_test, y_test), cfg, verbose=0
        )
    print(
        f"Quick model: {100 * result.test['acc']:.2f}% on the {len(x_test)} mnist-mini test digits"
    )
    n = min(num_searching, len(x_test))
    return _draw(
        x_test[:n],
        y_test[:n],
        result.predictions[:n],
        out,
        f"Quick mnist-mini model ({QUICK_EPOCHS} epochs): first {n} test digits, "
        f"{100 * result.test['acc']:.2f}% correct",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python visualize.py``: the exit status (0 drawn, 1 error)."""
    parser = argparse.ArgumentParser(
        prog="visualize.py", description=__doc__.split("\n\n")[1].replace("\n", " ")
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help=f"a weights.npz written by beras train (default: the newest in {RUNS_DIR}/*/)",
    )
    parser.add_argument(
        "--out",
        default="predictions.png",
        metavar="PNG",
        help="where the picture goes when there is no display (default: %(default)s)",
    )
    parser.add_argument(
        "--num",
        type=int,
        default=500,
        metavar="N",
        help="look for correct and wrong predictions among the first N test images "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="BLAS threads, as for beras train (default: the idle CPUs)",
    )
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"argument --threads: expected an integer >= 1, got {args.threads}")
    from beras.datasets import DatasetError, DatasetNotFoundError

    try:
        weights = Path(args.weights) if args.weights else find_last_run()
        if weights is not None:
            _from_run(weights, args.out, args.num, args.threads)
        else:
            _quick_model(args.out, args.num, args.threads)
    except ImportError as err:
        print(
            f"visualize.py: error: drawing needs {err.name or 'matplotlib'} "
            "(pip install 'beras[train]')",
            file=sys.stderr,
        )
        return 1
    except (DatasetError, DatasetNotFoundError, OSError, ValueError) as err:
        print(f"visualize.py: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
