"""Train an MLP on MNIST with Beras (the course stencil's ``assignment.py``).

``python assignment.py`` trains the model of ``get_model()`` with ``get_optimizer()``,
``get_loss_fn()`` and ``get_acc_fn()`` exactly as ``beras train`` does with its default
flags (same architecture, learning-rate schedule, epochs, batch size and seed), prints
progress and the test accuracy, and saves the test predictions to ``predictions.npy``
(shape ``(10000, 10)``). ``beras train --help`` shows the settings and their values.
BLAS threads are chosen as ``beras train`` chooses them (the idle CPUs, checked every
epoch, unless ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` says
otherwise).
"""

from __future__ import annotations

import sys

from beras import threads, training
from beras.fileio import save_npy
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from preprocess import load_and_preprocess_data

#: The run's settings: the defaults of ``beras train``.
CONFIG = training.TrainConfig()


def get_model() -> SequentialModel:
    """Dense layers of ``CONFIG.hidden`` sizes with ReLUs, then Dense(10) and Softmax."""
    return training.build_model(CONFIG)


def get_optimizer() -> object:
    """Adam at ``CONFIG``'s initial learning rate (decayed per epoch while training)."""
    return training.build_optimizer(CONFIG)


def get_loss_fn() -> CategoricalCrossEntropy:
    return CategoricalCrossEntropy()


def get_acc_fn() -> CategoricalAccuracy:
    return CategoricalAccuracy()


def main(predictions_path: str = "predictions.npy") -> float:
    """Train, evaluate, save the test predictions; returns the test accuracy."""
    train_x, train_y, test_x, test_y = load_and_preprocess_data()
    model = get_model()
    model.compile(get_optimizer(), get_loss_fn(), get_acc_fn())
    choice = threads.choose(None, override="OPENBLAS_NUM_THREADS=N")
    with threads.limit(choice) as line:
        print(line)
        recheck = threads.Recheck(choice, print)  # follows the machine's load every epoch
        result = training.fit_and_evaluate(
            model, (train_x, train_y), (test_x, test_y), CONFIG, callbacks=[recheck]
        )
    if result.status != "completed":
        print(f"Training stopped early: {result.message}", file=sys.stderr)
    print(f"Test loss: {result.test['loss']:.4f} - test accuracy: {100 * result.test['acc']:.2f}%")
    save_npy(predictions_path, result.predictions)
    print(f"Saved {result.predictions.shape} test predictions to {predictions_path}")
    return result.test["acc"]


def _run(argv: list[str] | None = None) -> int:
    """``python assignment.py``: the exit status (0 done, 1 no data, 2 bad arguments,
    130 Ctrl-C). It takes no arguments but ``--help``."""
    import argparse

    from beras.datasets import DatasetError, DatasetNotFoundError
    from beras.runs import not_found_message

    parser = argparse.ArgumentParser(
        prog="assignment.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 done, 1 MNIST not found, 2 bad arguments, 130 Ctrl-C. "
        "beras train offers the same run with flags (beras train --help).",
    )
    parser.parse_args(argv)
    try:
        main()
    except KeyboardInterrupt:
        print("\nInterrupted: predictions.npy was not written.", file=sys.stderr)
        return 130
    except DatasetNotFoundError as err:
        # where MNIST was looked for, and the command-line ways to provide it
        print(
            f"assignment.py: error: {not_found_message(err, 'mnist', 'assignment.py')}",
            file=sys.stderr,
        )
        return 1
    except DatasetError as err:
        print(f"assignment.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_run())
