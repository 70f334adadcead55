"""The course-stencil entry points at the repository root: ``preprocess.py``,
``assignment.py`` and ``visualize.py`` (docs/stencil-contract.md, "Course entry points")."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import beras
from beras import training
from beras.core import Tensor

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import assignment  # noqa: E402
import preprocess  # noqa: E402
import visualize  # noqa: E402

needs_real_mnist = pytest.mark.needs_data("mnist")


def _mini() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return training.load_data("mnist-mini")


# ---------------------------------------------------------------------- preprocess
@needs_real_mnist
def test_load_and_preprocess_data_contract() -> None:
    data = preprocess.load_and_preprocess_data()
    assert len(data) == 4
    train_x, train_y, test_x, test_y = data
    for array in data:
        assert isinstance(array, Tensor)
    assert train_x.shape == (60000, 784)
    assert test_x.shape == (10000, 784)
    assert train_y.shape == (60000,)
    assert test_y.shape == (10000,)
    for x in (train_x, test_x):
        assert x.dtype == np.float32
        assert x.min() == 0.0
        assert x.max() == 1.0
    # MNIST's own order (no shuffling): the first labels of each split
    assert train_y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    # flattened row-major and divided by 255, nothing else
    (raw_x, raw_y), (raw_tx, _) = beras.datasets.mnist.load_data()
    np.testing.assert_array_equal(train_y, raw_y)
    for i in (0, 12345, 59999):
        np.testing.assert_allclose(train_x[i], raw_x[i].reshape(-1) / 255.0, rtol=1e-6)
    np.testing.assert_allclose(test_x[-1], raw_tx[-1].reshape(-1) / 255.0, rtol=1e-6)


# ---------------------------------------------------------------------- assignment
def test_assignment_getters_return_the_stencil_types() -> None:
    model = assignment.get_model()
    assert isinstance(model, beras.SequentialModel)
    dense = [layer for layer in model.layers if isinstance(layer, beras.Dense)]
    assert dense[0].input_size == 784
    assert dense[-1].output_size == 10
    assert isinstance(model.layers[-1], beras.activations.Softmax)
    assert isinstance(assignment.get_optimizer(), beras.Adam)
    assert isinstance(assignment.get_loss_fn(), beras.CategoricalCrossEntropy)
    assert isinstance(assignment.get_acc_fn(), beras.metrics.CategoricalAccuracy)
    # the same model as `beras train` with its default flags
    reference = training.build_model(training.TrainConfig())
    assert [type(layer) for layer in model.layers] == [type(x) for x in reference.layers]
    for a, b in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(a, b)


def test_assignment_main_trains_and_saves_predictions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``assignment.main`` end to end, on mnist-mini for speed (full MNIST is the same
    code with more data)."""

    def mini_data() -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return tuple(Tensor(a) for a in _mini())  # type: ignore[return-value]

    monkeypatch.setattr(assignment, "load_and_preprocess_data", mini_data)
    monkeypatch.setattr(
        assignment, "CONFIG", dataclasses.replace(assignment.CONFIG, epochs=1, hidden=(64,))
    )
    target = tmp_path / "predictions.npy"
    acc = assignment.main(str(target))
    predictions = np.load(target)
    assert predictions.shape == (500, 10)
    assert acc == pytest.approx(np.mean(predictions.argmax(axis=1) == _mini()[3]))
    assert acc > 0.5
    assert f"test accuracy: {100 * acc:.2f}%" in capsys.readouterr().out


# ----------------------------------------------------------------------- visualize
def test_visualize_predictions_saves_a_png_without_a_display(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip(
        "matplotlib", reason="the picture needs matplotlib (pip install '.[train]')"
    )
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    _, _, test_x, test_y = _mini()
    model = training.build_model(training.TrainConfig(hidden=(16,)))  # untrained: many mistakes
    target = tmp_path / "grid.png"
    saved = visualize.visualize_predictions(
        model, test_x, training.one_hot(test_y, 10), num_searching=100, path=str(target)
    )
    assert saved == str(target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(target)).shape[2] in (3, 4)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]  # no temp file left


def test_has_display_is_false_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    from beras import plots

    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert plots.has_display() is False
    monkeypatch.delenv("MPLBACKEND")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert plots.has_display() is False


def test_prediction_grid_marks_correct_and_wrong() -> None:
    pytest.importorskip(
        "matplotlib", reason="the picture needs matplotlib (pip install '.[train]')"
    )
    from beras import plots

    images = np.zeros((4, 784), dtype=np.float32)
    labels = np.array([1, 2, 3, 4])
    probs = np.full((4, 10), 0.02)
    probs[[0, 1, 2, 3], [1, 2, 7, 4]] = 0.82  # sample 2 is wrong (7 for a 3)
    fig = plots.prediction_grid(images, labels, probs, n_correct=8, n_wrong=8, columns=4)
    titles = [[ax.get_title() for ax in sub.axes if ax.get_title()] for sub in fig.subfigs]
    assert titles == [["pred 1 (82%)", "pred 2 (82%)", "pred 4 (82%)"], ["pred 7 (82%)\ntrue 3"]]
    headings = [" ".join(t.get_text() for t in sub.texts) for sub in fig.subfigs]
    assert headings[0].startswith("Correct: 3 of 4")
    assert headings[1].startswith("Wrong: 1 of 4")


def test_assignment_without_data_prints_the_cli_message_and_exits_1(tmp_path: Path) -> None:
    """No MNIST anywhere and no network: the loader's how-to, no traceback, status 1."""
    import os
    import subprocess

    empty, home = tmp_path / "data", tmp_path / "home"
    empty.mkdir()
    home.mkdir()
    env = {
        **os.environ,
        "BERAS_DATA": str(empty),
        "HOME": str(home),
        "BERAS_HOME": str(home / ".beras"),
        "BERAS_DATASET_MIRRORS": "",  # downloads disabled
        "PYTHONPATH": str(ROOT),
    }
    # the system folder is searched too; empty it so a machine that has MNIST there
    # still exercises the missing-data path
    code = (
        "import runpy, sys; from beras.datasets import _fetch; "
        "_fetch.SYSTEM_DATA_DIRS[:] = []; "
        f"sys.argv = ['assignment.py']; runpy.run_path({str(ROOT / 'assignment.py')!r}, "
        "run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("assignment.py: error: MNIST was not found")
    assert str(empty / "mnist") in run.stderr  # where it looked
    ways = run.stderr.split("To use MNIST:")[1]  # the command-line ways, as beras train's
    assert "BERAS_DATA=PATH python assignment.py" in ways
    assert "beras train --dataset mnist-mini" in ways
    assert "load_data(" not in run.stderr  # no Python calls for a command-line user
    assert not (tmp_path / "predictions.npy").exists()


def test_assignment_help_describes_it_and_trains_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        assignment._run(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: assignment.py [-h]")
    assert "predictions.npy" in out
    assert "beras train --help" in out
    with pytest.raises(SystemExit) as exit_:
        assignment._run(["--epochs", "3"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --epochs 3" in capsys.readouterr().err
    assert not (tmp_path / "predictions.npy").exists()
