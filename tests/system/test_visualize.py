"""``python visualize.py`` as a newcomer runs it: headless, it draws the latest
``beras train`` run's predictions (or, with no run yet, a quick mnist-mini model's, and
says so) into a PNG and prints where the PNG went. Offline: downloads disabled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the picture needs matplotlib (pip install '.[train]')")

ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(
        MPLBACKEND="Agg",
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(cwd / "home"),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).ndim == 3


def test_without_a_run_it_trains_a_quick_model_and_says_so(tmp_path: Path) -> None:
    run = _run([str(ROOT / "visualize.py")], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "No beras train run found" in run.stdout
    assert "mnist-mini" in run.stdout
    png = tmp_path / "predictions.png"
    assert f"saved the figure to {png}" in run.stdout
    _assert_png(png)


def test_it_draws_the_latest_beras_train_run(tmp_path: Path) -> None:
    train = _run(
        ["-m", "beras", "train", "--dataset", "mnist-mini", "--epochs", "1", "--no-plots"],
        tmp_path,
    )
    assert train.returncode == 0, train.stderr
    weights = Path("runs") / "mnist-mini" / "weights.npz"
    assert (tmp_path / weights).is_file()
    run = _run([str(ROOT / "visualize.py"), "--out", "grid.png"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"Predictions of {weights}" in run.stdout
    assert "quick model" not in run.stdout
    assert f"saved the figure to {tmp_path / 'grid.png'}" in run.stdout
    _assert_png(tmp_path / "grid.png")
