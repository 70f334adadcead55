"""``beras train --model cnn``: the CNN through the same pipeline as the MLP (outputs,
pictures, config.json, ``beras evaluate``, Ctrl-C), its per-model defaults and its
thread-policy cost estimate."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from beras import cli, runs, training
from beras.model import SequentialModel

PICTURES = ("training_curves.png", "predictions.png")
OUTPUTS = ("weights.npz", "config.json", "history.json", "metrics.json", "predictions.npy") + (
    PICTURES if importlib.util.find_spec("matplotlib") else ()
)


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BERAS_DATA"}
    env.update(
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        MPLBACKEND="Agg",
        OPENBLAS_NUM_THREADS="1",
    )
    return env


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


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in _offline_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BERAS_DATA", raising=False)
    (tmp_path / "home").mkdir()


# ------------------------------------------------------------------ configuration
def test_epochs_default_depends_on_the_model() -> None:
    parser = cli.build_parser()
    assert cli._config_from_args(parser.parse_args(["train"])).epochs == 15
    assert cli._config_from_args(parser.parse_args(["train", "--model", "cnn"])).epochs == 10
    given = parser.parse_args(["train", "--model", "cnn", "--epochs", "2"])
    assert cli._config_from_args(given).epochs == 2
    assert training.TrainConfig(model="cnn").epochs == training.DEFAULT_EPOCHS["cnn"] == 10
    assert training.TrainConfig(model="mlp", epochs=3).epochs == 3


def test_help_describes_the_cnn(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["train", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert (
        "cnn: two blocks of Conv2D (32 then 64 3x3 filters, padding same), 2x2 max pooling" in text
    )
    assert "10 for cnn" in text
    assert "15 for mlp" in text


# -------------------------------------------------------------------------- model
def test_cnn_architecture_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    model = training.build_model(training.TrainConfig(model="cnn"), 784, 10)
    names = [type(layer).__name__ for layer in model.layers]
    assert names == [
        "Reshape",
        "Conv2D",
        "MaxPool2D",
        "BatchNormalization",
        "ReLU",
        "Conv2D",
        "MaxPool2D",
        "BatchNormalization",
        "ReLU",
        "Flatten",
        "Dropout",
        "Dense",
        "ReLU",
        "Dropout",
        "Dense",
        "Softmax",
    ]
    model.summary()
    text = capsys.readouterr().out
    for shape in ("28, 28, 32", "14, 14, 32", "14, 14, 64", "7, 7, 64"):
        assert f"(None, {shape})" in text  # "same" convolutions, 2x2 poolings
    assert "(None, 3136)" in text
    # 320 + 18,496 conv, 128 + 256 BN (half of it moving statistics), 401,536 + 1,290 dense
    assert "Total params: 422,026" in text
    assert model.predict(np.zeros((3, 784), np.float32)).shape == (3, 10)


def test_cnn_weights_come_from_the_seed() -> None:
    def weights(seed: int) -> list[np.ndarray]:
        model = training.build_model(training.TrainConfig(model="cnn", seed=seed), 784, 10)
        return [np.array(w) for w in model.weights]

    a, b, c = weights(1), weights(1), weights(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    # and so does dropout: two fits from the same seed give the same weights
    x = np.random.default_rng(0).random((64, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(64) % 10]
    fitted = []
    for _ in range(2):
        cfg = training.TrainConfig(model="cnn", epochs=1, batch_size=32, seed=3)
        model = training.compile_model(training.build_model(cfg, 784, 10), cfg)
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=3)
        fitted.append([np.array(w) for w in model.weights])
    assert all(np.array_equal(p, q) for p, q in zip(*fitted, strict=True))


def test_cnn_rejects_inputs_that_are_not_square_images() -> None:
    cfg = training.TrainConfig(model="cnn")
    with pytest.raises(ValueError, match=r"square single-channel images .* got input size 785"):
        training.build_model(cfg, 785, 10)
    with pytest.raises(ValueError, match=r"at least 4x4 pixels, got 3x3"):
        training.build_model(cfg, 9, 10)
    assert training.build_model(cfg, 16, 10).predict(np.zeros((2, 16))).shape == (2, 10)


# ---------------------------------------------------------------- a real run on disk
@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real 1-epoch ``beras train --model cnn`` on mnist-mini, in process, offline."""
    root = tmp_path_factory.mktemp("cnn")
    home = root / "home"
    home.mkdir()
    out = root / "out"
    mp = pytest.MonkeyPatch()
    for key, value in _offline_env(home).items():
        mp.setenv(key, value)
    mp.delenv("BERAS_DATA", raising=False)
    stdout = io.StringIO()
    argv = ["train", "--model", "cnn", "--dataset", "mnist-mini", "--epochs", "1"]
    try:
        with contextlib.redirect_stdout(stdout):
            code = cli.main([*argv, "--out", str(out)])
    finally:
        mp.undo()
    return {"code": code, "out": out, "stdout": stdout.getvalue()}


def test_cnn_run_writes_every_output(cnn_run: dict) -> None:
    assert cnn_run["code"] == 0, cnn_run["stdout"]
    out: Path = cnn_run["out"]
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    _no_temp_files(out)
    for name in set(PICTURES) & set(OUTPUTS):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "cnn"
    assert config["epochs"] == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["test_acc"] > 0.5  # one epoch on 1,800 digits


def test_cnn_run_names_its_model(cnn_run: dict) -> None:
    text = cnn_run["stdout"]
    assert "Model: CNN 28x28x1 conv32-conv64-128-10 (relu, kaiming init, 422,026 parameters)" in (
        text
    )
    assert "BLAS threads: 1 (from OPENBLAS_NUM_THREADS)" in text  # the tests set it
    assert "Epoch 1/1 - loss:" in text


def test_evaluate_rebuilds_the_cnn_and_reproduces_its_accuracy(
    cnn_run: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    out: Path = cnn_run["out"]
    saved = json.loads((out / "metrics.json").read_text())
    metrics, predictions, cfg = runs.evaluate(out / "weights.npz")
    assert cfg.model == "cnn"
    assert metrics["acc"] == saved["test_acc"]
    assert metrics["loss"] == pytest.approx(saved["test_loss"], rel=1e-5)
    np.testing.assert_allclose(predictions, np.load(out / "predictions.npy"), atol=1e-6)
    code, text, err = _run(["evaluate", "--weights", str(out / "weights.npz")], capsys)
    assert code == 0, err
    assert f"accuracy {100 * saved['test_acc']:.2f}% (500 images)" in text


def test_cnn_weights_do_not_load_into_the_mlp(cnn_run: dict, tmp_path: Path) -> None:
    """config.json's model decides the architecture: a config saying mlp is refused."""
    out: Path = cnn_run["out"]
    config = json.loads((out / "config.json").read_text())
    config["model"] = "mlp"
    other = tmp_path / "mlp.json"
    other.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match this model"):
        runs.evaluate(out / "weights.npz", config_path=other)


def test_interrupting_a_cnn_run_keeps_the_last_completed_epoch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    original = SequentialModel.batch_step
    count = {"n": 0}

    def batch_step(self, x, y, training=True):  # type: ignore[no-untyped-def]
        if training:
            count["n"] += 1
            if count["n"] == 15 + 2:  # 15 batches per epoch
                raise KeyboardInterrupt
        return original(self, x, y, training)

    monkeypatch.setattr(SequentialModel, "batch_step", batch_step)
    out = tmp_path / "run"
    argv = f"train --model cnn --dataset mnist-mini --epochs 2 --no-plots --verbose 0 --out {out}"
    code, _, err = _run(argv.split(), capsys)
    assert code == 130
    assert "Interrupted at epoch 2/2, batch 1/15." in err
    assert "The weights of epoch 1 (the last completed)" in err
    metrics, _, cfg = runs.evaluate(out / "weights.npz")
    assert cfg.model == "cnn"
    assert 0.0 <= metrics["acc"] <= 1.0
    _no_temp_files(out)
