"""End to end through the installed console script: ``beras train`` on the bundled
mnist-mini set for 3 epochs, offline (no data folder, empty HOME, downloads disabled),
then ``beras evaluate`` on the weights it saved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BERAS_DATA"}
    env.update(
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        MPLBACKEND="Agg",
    )
    return env


def test_console_script_trains_and_evaluates_offline(tmp_path: Path) -> None:
    beras = shutil.which("beras")
    assert beras is not None, "the `beras` console script is not installed (pip install -e .)"
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "run"
    env = _offline_env(home)
    train = subprocess.run(
        [beras, "train", "--dataset", "mnist-mini", "--epochs", "3", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert train.returncode == 0, train.stderr
    assert "Epoch 3/3 - loss:" in train.stdout
    assert "val_acc" in train.stdout
    assert "Wall time:" in train.stdout
    for name in (
        "weights.npz",
        "config.json",
        "history.json",
        "metrics.json",
        "predictions.npy",
        "training_curves.png",
        "predictions.png",
    ):
        assert (out / name).is_file(), name
    assert not (home / ".beras").exists(), "mnist-mini needs no download cache"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 3
    assert metrics["test_acc"] > 0.75
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3]

    evaluate = subprocess.run(
        [sys.executable, "-m", "beras", "evaluate", "--weights", str(out / "weights.npz")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert evaluate.returncode == 0, evaluate.stderr
    assert f"accuracy {100 * metrics['test_acc']:.2f}% (500 images)" in evaluate.stdout
    predictions = np.load(out / "predictions.npy")
    assert predictions.shape == (500, 10)
