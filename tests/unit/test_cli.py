"""The ``beras`` command: argument parsing and validation, a real training run on the
bundled mnist-mini set (every output file), ``beras evaluate``, divergence and Ctrl-C.

Every run uses ``mnist-mini`` (shipped inside Beras), with ``BERAS_DATA`` unset, ``HOME``
and ``BERAS_HOME`` in a temporary folder and downloads disabled: nothing here needs the
network or a data folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from beras import cli, runs, training
from beras.model import SequentialModel

PICTURES = ("training_curves.png", "predictions.png")
#: What a run writes; the pictures only where matplotlib is installed (the [train] extra).
OUTPUTS = (
    "weights.npz",
    "config.json",
    "history.json",
    "metrics.json",
    "predictions.npy",
) + (PICTURES if importlib.util.find_spec("matplotlib") else ())
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BERAS_DATA"}
    env.update(
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        MPLBACKEND="Agg",
        OPENBLAS_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in _offline_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BERAS_DATA", raising=False)
    (tmp_path / "home").mkdir()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse errors and --help
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path.name} is not a PNG"
    import matplotlib.image

    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 400


# --------------------------------------------------------------------------- parsing
def test_defaults_build_the_default_config() -> None:
    args = cli.build_parser().parse_args(["train"])
    assert cli._config_from_args(args) == training.TrainConfig()
    assert args.out is None
    assert args.verbose == 1


def test_flags_are_parsed() -> None:
    args = cli.build_parser().parse_args(
        [
            "train",
            "--dataset",
            "Fashion_MNIST",
            "--hidden",
            "300,100,50",
            "--activation",
            "sigmoid",
            "--optimizer",
            "RMSProp",
            "--lr",
            "0.01",
            "--lr-schedule",
            "plateau",
            "--epochs",
            "3",
            "--batch-size",
            "64",
            "--seed",
            "7",
            "--validation-split",
            "0.2",
            "--out",
            "somewhere",
        ]
    )
    cfg = cli._config_from_args(args)
    assert cfg == training.TrainConfig(
        dataset="fashion-mnist",
        hidden=(300, 100, 50),
        activation="sigmoid",
        optimizer="rmsprop",
        lr=0.01,
        lr_schedule="plateau",
        epochs=3,
        batch_size=64,
        seed=7,
        validation_split=0.2,
    )
    assert args.out == "somewhere"
    assert cfg.kernel_initializer == "xavier"  # auto: Glorot for sigmoid
    assert training.TrainConfig(optimizer="sgd").learning_rate == 0.1


@pytest.mark.parametrize(
    ("argv", "flag", "fragment"),
    [
        (["--dataset", "cifar10"], "--dataset", "cifar10"),
        (["--activation", "tanh"], "--activation", "tanh"),
        (["--optimizer", "adagrad"], "--optimizer", "adagrad"),
        (["--lr", "0"], "--lr", "positive"),
        (["--lr", "-0.1"], "--lr", "positive"),
        (["--lr", "nan"], "--lr", "positive"),
        (["--lr", "fast"], "--lr", "positive"),
        (["--hidden", "0"], "--hidden", "positive integers"),
        (["--hidden", "256,-128"], "--hidden", "positive integers"),
        (["--hidden", "256,,128"], "--hidden", "positive integers"),
        (["--hidden", "2.5"], "--hidden", "positive integers"),
        (["--hidden", "wide"], "--hidden", "positive integers"),
        (["--validation-split", "0"], "--validation-split", "between 0 and 1"),
        (["--validation-split", "1"], "--validation-split", "between 0 and 1"),
        (["--validation-split", "-0.5"], "--validation-split", "between 0 and 1"),
        (["--validation-split", "half"], "--validation-split", "between 0 and 1"),
        (["--epochs", "0"], "--epochs", ">= 1"),
        (["--batch-size", "-8"], "--batch-size", ">= 1"),
        (["--seed", "-1"], "--seed", ">= 0"),
        (["--lr-schedule", "step"], "--lr-schedule", "step"),
        (["--frobnicate"], "--frobnicate", "unrecognized"),
    ],
)
def test_invalid_values_are_one_line_usage_errors(
    argv: list[str], flag: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["train", *argv], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("beras train: error:"), err
    assert flag in last, last
    assert fragment in last, last
    assert "Traceback" not in err
    assert out == ""


def test_usage_error_from_the_console_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "beras", "train", "--lr", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "beras train: error: argument --lr: expected a positive number, got '-1'"
    )
    assert "Traceback" not in proc.stderr


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run([], capsys)
    assert code == 2
    assert "required" in err


TRAIN_FLAGS = (
    "--dataset",
    "--data-dir",
    "--model",
    "--hidden",
    "--activation",
    "--initializer",
    "--optimizer",
    "--lr",
    "--lr-schedule",
    "--epochs",
    "--batch-size",
    "--seed",
    "--validation-split",
    "--out",
    "--verbose",
    "--no-plots",
    "--threads",
    "--resume",
)


def _option_blocks(help_text: str) -> dict[str, str]:
    """``{"--flag": "its help, unwrapped"}`` from an argparse help page."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        found = re.match(r"^  (?:-\w, )?(--[\w-]+)", line)
        if found:
            current = found.group(1)
            blocks[current] = line
        elif current and line.startswith("      "):
            blocks[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in blocks.items()}


def test_help_documents_every_flag_with_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(["train", "--help"], capsys)
    assert code == 0
    blocks = _option_blocks(out)
    assert set(blocks) == {"--help", *TRAIN_FLAGS}
    for flag in TRAIN_FLAGS:
        if flag not in ("--no-plots", "--resume"):
            assert "(default:" in blocks[flag], blocks[flag]
    assert "(default: mnist)" in blocks["--dataset"]
    assert "(default: 512,256)" in blocks["--hidden"]
    assert "(default: 0.001 for adam" in blocks["--lr"]
    for name in ("weights.npz", "history.json", "predictions.npy", "130"):
        assert name in out

    code, out, _ = _run(["evaluate", "--help"], capsys)
    assert code == 0
    blocks = _option_blocks(out)
    assert set(blocks) == {
        "--help",
        "--weights",
        "--config",
        "--dataset",
        "--data-dir",
        "--batch-size",
        "--predictions",
        "--threads",
    }


# ---------------------------------------------------------------- a real run on disk
@pytest.fixture(scope="module")
def mini_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real 1-epoch ``beras train`` on mnist-mini, in process, offline."""
    root = tmp_path_factory.mktemp("mini")
    home = root / "home"
    home.mkdir()
    out = root / "out"
    mp = pytest.MonkeyPatch()
    for key, value in _offline_env(home).items():
        mp.setenv(key, value)
    mp.delenv("BERAS_DATA", raising=False)
    import contextlib
    import io

    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = cli.main(
                ["train", "--dataset", "mnist-mini", "--epochs", "1", "--out", str(out)]
            )
    finally:
        mp.undo()
    return {"code": code, "out": out, "stdout": stdout.getvalue()}


def test_train_writes_every_output(mini_run: dict) -> None:
    assert mini_run["code"] == 0
    out: Path = mini_run["out"]
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    _no_temp_files(out)
    predictions = np.load(out / "predictions.npy")
    assert predictions.shape == (500, 10)
    assert predictions.dtype == np.float32
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1]
    for key in ("loss", "acc", "val_loss", "val_acc", "lr"):
        assert len(history[key]) == 1, key
        assert np.isfinite(history[key][0]), key
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["epochs_completed"] == 1
    assert metrics["test_samples"] == 500
    labels = training.load_data("mnist-mini")[3]
    assert metrics["test_acc"] == pytest.approx(np.mean(predictions.argmax(1) == labels))
    assert metrics["test_acc"] > 0.6  # one epoch on 1,800 digits already learns a lot


def test_train_draws_its_pictures(mini_run: dict) -> None:
    pytest.importorskip(
        "matplotlib", reason="the pictures need matplotlib (pip install '.[train]')"
    )
    for name in PICTURES:
        _assert_png(mini_run["out"] / name)


def test_train_prints_progress_and_the_result(mini_run: dict) -> None:
    text = mini_run["stdout"]
    assert "MNIST-mini: 1,800 training, 200 validation and 500 test images" in text
    assert "MLP 784-512-256-10" in text
    epoch_line = re.search(r"Epoch 1/1 - loss: [\d.]+ - acc: [\d.]+ - val_loss: .*", text)
    assert epoch_line, text
    assert "val_acc" in epoch_line.group(0)
    acc = json.loads((mini_run["out"] / "metrics.json").read_text())["test_acc"]
    assert f"test accuracy: {100 * acc:.2f}% (500 images)" in text
    assert "Wall time:" in text
    assert "\r" not in text  # no live bar when stdout is not a terminal (a log, a pipe)


def test_a_terminal_sees_a_progress_bar_per_epoch(tmp_path: Path) -> None:
    """What a user at a terminal sees with the default --verbose 1."""
    pytest.importorskip("tqdm")
    import contextlib
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stdout = Terminal()
    argv = "train --dataset mnist-mini --hidden 16 --epochs 2 --no-plots --out"
    with contextlib.redirect_stdout(stdout):
        code = cli.main([*argv.split(), str(tmp_path / "run")])
    assert code == 0
    text = stdout.getvalue()
    for epoch in (1, 2):
        assert re.search(rf"\rEpoch {epoch}/2: +\d+%\|.*\| \d+/15 \[", text), text
        # then the bar is cleared and the epoch line written over it
        assert re.search(rf"\rEpoch {epoch}/2 - loss: [\d.]+ - acc: [\d.]+ - val_loss: ", text)


def test_weights_load_into_the_architecture_in_config(mini_run: dict) -> None:
    out: Path = mini_run["out"]
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [512, 256]
    assert config["input_size"] == 784
    cfg = training.TrainConfig(hidden=tuple(config["hidden"]), seed=123)
    model = training.build_model(cfg)
    before = [np.array(w) for w in model.weights]
    model.load_weights(str(out / "weights.npz"))
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.weights))


def test_evaluate_reproduces_the_test_accuracy(
    mini_run: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out: Path = mini_run["out"]
    saved = json.loads((out / "metrics.json").read_text())
    metrics, predictions, cfg = runs.evaluate(out / "weights.npz")
    assert cfg.dataset == "mnist-mini"
    assert metrics["acc"] == saved["test_acc"]
    assert metrics["loss"] == pytest.approx(saved["test_loss"], rel=1e-5)
    np.testing.assert_allclose(predictions, np.load(out / "predictions.npy"), atol=1e-6)

    target = tmp_path / "again.npy"
    argv = ["evaluate", "--weights", str(out / "weights.npz"), "--predictions", str(target)]
    code, text, err = _run(argv, capsys)
    assert code == 0, err
    assert f"accuracy {100 * saved['test_acc']:.2f}% (500 images)" in text
    np.testing.assert_allclose(np.load(target), predictions)


def test_evaluate_errors_are_clear(
    mini_run: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(["evaluate", "--weights", str(tmp_path / "nope.npz")], capsys)
    assert code == 1
    assert "beras evaluate: error: no weights file at" in err

    lonely = tmp_path / "weights.npz"
    lonely.write_bytes((mini_run["out"] / "weights.npz").read_bytes())
    code, _, err = _run(["evaluate", "--weights", str(lonely)], capsys)
    assert code == 1
    assert "no config at" in err
    assert "--config" in err

    config = json.loads((mini_run["out"] / "config.json").read_text())
    config["hidden"] = [64]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(config))
    argv = ["evaluate", "--weights", str(lonely), "--config", str(other)]
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert "does not match this model" in err
    assert "Traceback" not in err

    other.write_text("{}")
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert "expected a Beras training config" in err


def test_missing_dataset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        ["train", "--dataset", "fashion-mnist", "--data-dir", "/nonexistent"], capsys
    )
    assert code == 1
    assert err.startswith("beras train: error:")
    assert "Traceback" not in err


def test_validation_split_leaving_no_sample_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["train", "--dataset", "mnist-mini", "--validation-split", "0.0001"]
    code, _, err = _run([*argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "leaves 2000 training and 0 validation samples" in err


# --------------------------------------------------------------------- divergence
def test_divergence_is_reported_and_outputs_are_still_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "diverged"
    argv = "train --dataset mnist-mini --optimizer sgd --lr 1e37 --activation leaky_relu "
    argv += f"--hidden 32 --epochs 2 --verbose 0 --out {out}"
    code, text, err = _run(argv.split(), capsys)
    assert code == 1
    assert "Training diverged" in text
    assert "epoch 1, batch 2/15" in text
    assert "the loss is nan" in text
    assert "smaller --lr" in text
    assert "RuntimeWarning" not in err
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())  # strict JSON: no NaN
    assert metrics["status"] == "diverged"
    assert "batch 2/15" in metrics["message"]
    assert metrics["epochs_completed"] == 0
    # the saved weights are those from before the bad step: finite
    model = training.build_model(training.TrainConfig(hidden=(32,), activation="leaky_relu"))
    model.load_weights(str(out / "weights.npz"))
    assert all(np.isfinite(w).all() for w in model.weights)


# ------------------------------------------------------------------------- Ctrl-C
def _interrupt_on_batch(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the ``call``-th training step raise KeyboardInterrupt, as Ctrl-C would."""
    original = SequentialModel.batch_step
    count = {"n": 0}

    def batch_step(self, x, y, training=True):  # type: ignore[no-untyped-def]
        if training:
            count["n"] += 1
            if count["n"] == call:
                raise KeyboardInterrupt
        return original(self, x, y, training)

    monkeypatch.setattr(SequentialModel, "batch_step", batch_step)


def test_interrupt_in_the_first_epoch_saves_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _interrupt_on_batch(monkeypatch, 4)
    out = tmp_path / "run"
    argv = f"train --dataset mnist-mini --hidden 16 --epochs 3 --verbose 0 --out {out}"
    code, _, err = _run(argv.split(), capsys)
    assert code == 130
    assert "Interrupted at epoch 1/3, batch 3/15." in err
    assert "No epoch was completed, so no weights were saved." in err
    assert not (out / "weights.npz").exists()
    _no_temp_files(out)


def test_interrupt_keeps_the_last_completed_epoch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _interrupt_on_batch(monkeypatch, 15 + 15 + 6)  # 15 batches per epoch
    out = tmp_path / "run"
    argv = f"train --dataset mnist-mini --hidden 16 --epochs 5 --verbose 0 --out {out}"
    code, _, err = _run(argv.split(), capsys)
    assert code == 130
    assert "Interrupted at epoch 3/5, batch 5/15." in err
    assert "The weights of epoch 2 (the last completed)" in err
    assert "beras evaluate --weights" in err
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    assert not (out / "predictions.npy").exists()
    metrics, _, _ = runs.evaluate(out / "weights.npz")
    assert 0.0 <= metrics["acc"] <= 1.0
    _no_temp_files(out)


def test_interrupt_just_after_the_weights_rename_names_the_epoch_on_disk(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Ctrl-C after epoch 2's weights replaced the file, before the save returned: the
    message, history.json and the file on disk all say epoch 2."""
    real_replace = os.replace
    renames = {"n": 0}

    def replace(src, dst):  # type: ignore[no-untyped-def]
        real_replace(src, dst)
        if os.fspath(dst).endswith("weights.npz"):
            renames["n"] += 1
            if renames["n"] == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "run"
    argv = f"train --dataset mnist-mini --hidden 16 --epochs 5 --verbose 0 --out {out}"
    code, _, err = _run(argv.split(), capsys)
    monkeypatch.undo()
    assert code == 130
    assert "Interrupted at the end of epoch 2/5." in err
    assert "The weights of epoch 2 (the last completed)" in err
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2]
    runs.evaluate(out / "weights.npz")
    _no_temp_files(out)


def test_sigint_stops_a_real_run_cleanly(tmp_path: Path) -> None:
    """``python -m beras train`` sent SIGINT once its first epoch's weights exist."""
    out = tmp_path / "run"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "beras", "train", "--dataset", "mnist-mini"]
    argv += ["--hidden", "64", "--epochs", "100000", "--verbose", "2", "--out", str(out)]
    proc = subprocess.Popen(
        argv,
        env=_offline_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job inherits SIGINT ignored, and Python then never turns
        # it into KeyboardInterrupt: give the run the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / "weights.npz").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no epoch completed within 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    found = re.search(
        r"Interrupted (?:at epoch (\d+)/100000, batch (\d+)/15|at the end of epoch "
        r"(\d+)/100000)\. The weights of epoch (\d+) \(the last completed\) are in "
        r"(\S+weights\.npz),",
        stderr,
    )
    assert found, stderr
    saved = int(found.group(4))
    if found.group(1):  # mid-epoch: the previous epoch is the last completed one
        assert saved == int(found.group(1)) - 1 >= 1
        assert 0 <= int(found.group(2)) <= 15
    else:  # during the epoch-end writes, after that epoch's weights
        assert saved == int(found.group(3)) >= 1
    assert Path(found.group(5)) == out / "weights.npz"
    assert f"Epoch {saved}/100000 - loss" in stdout
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == list(range(1, saved + 1))
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [64]
    model = training.build_model(training.TrainConfig(hidden=(64,)))
    model.load_weights(str(out / "weights.npz"))
    _no_temp_files(out)
    assert not (out / "predictions.npy").exists()
