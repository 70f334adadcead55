"""Where ``beras train`` gets its data, and what it says about it.

- Plain ``beras train`` (no ``--dataset``, no ``--data-dir``) when MNIST is neither on
  disk nor downloadable trains on the bundled mnist-mini, exits 0 and says so loudly at
  the start and in the summary, with the command-line ways to get MNIST.
- ``--dataset mnist`` (or ``--data-dir``) given: the same situation is an error, with
  the same command-line ways (``--data-dir``, ``BERAS_DATA``, ``--dataset mnist-mini``).
- ``config.json`` records where the data came from (``data_dir``: the folder or file
  read; ``data_source``: ``--data-dir``, ``BERAS_DATA``, ``cache``, ``download``,
  ``bundled`` or ``mnist-mini fallback``).
- Counts in the output take the right plural ("1 epoch").

Downloads are disabled (``BERAS_DATASET_MIRRORS`` empty), ``HOME`` and ``BERAS_HOME`` are
temporary, and the system dataset folder is emptied, so nothing here reads real data.
A stand-in "MNIST" is the bundled mnist-mini archive copied as ``mnist.npz``.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pytest

from beras import cli, runs, training
from beras.datasets import _fetch

MINI_NPZ = resources.files("beras.datasets").joinpath("data/mnist_mini.npz")
QUICK = ["--epochs", "1", "--hidden", "16", "--no-plots", "--verbose", "0"]
CLI_WAYS = ("--data-dir PATH", "BERAS_DATA=PATH", "--dataset mnist-mini")


@pytest.fixture
def no_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No MNIST anywhere, no network; returns the (empty) BERAS_DATA folder."""
    home = tmp_path / "home"
    empty = tmp_path / "empty"
    home.mkdir()
    empty.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BERAS_HOME", str(home / ".beras"))
    monkeypatch.setenv("BERAS_DATA", str(empty))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", "")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(_fetch, "SYSTEM_DATA_DIRS", [])
    monkeypatch.chdir(tmp_path)
    return empty


def _fake_mnist(folder: Path) -> Path:
    """A complete "MNIST" (the mnist-mini archive as mnist.npz) in ``folder/mnist``."""
    (folder / "mnist").mkdir(parents=True, exist_ok=True)
    target = folder / "mnist" / "mnist.npz"
    with resources.as_file(MINI_NPZ) as source:
        shutil.copyfile(source, target)
    return target


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _config(folder: Path) -> dict[str, object]:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------- the mnist-mini fallback
@pytest.mark.usefixtures("no_mnist")
def test_plain_train_without_mnist_falls_back_to_mnist_mini_loudly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BERAS_DATA")  # no data folder named anywhere
    code, out, err = _run(["train", *QUICK], capsys)
    assert code == 0, err
    lines = out.splitlines()
    # loudly, before anything else
    assert lines[1].startswith("WARNING: MNIST was not found, so this run trains on mnist-mini")
    head = out.split("MNIST-mini: ")[0]
    for way in CLI_WAYS:
        assert way in head, way
    assert "load_data(" not in out  # command-line ways, not Python calls
    # and again in the summary, after the files were saved
    saved = next(i for i, line in enumerate(lines) if line.startswith("Saved to "))
    tail = "\n".join(lines[saved + 1 :])
    assert tail.startswith("NOTE: this run trained on mnist-mini, not MNIST")
    for way in CLI_WAYS[:2]:
        assert way in tail, way
    # the run is named and recorded for what it is
    run = tmp_path / "runs" / "mnist-mini"
    assert f"Saved to {Path('runs') / 'mnist-mini'}" in out
    config = _config(run)
    assert config["dataset"] == "mnist-mini"
    assert config["data_source"] == "mnist-mini fallback"
    assert config["data_dir"] is None
    assert json.loads((run / "metrics.json").read_text())["test_samples"] == 500
    assert not (tmp_path / "runs" / "mnist").exists()


@pytest.mark.usefixtures("no_mnist")
def test_explicit_dataset_mnist_without_mnist_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["train", "--dataset", "mnist", *QUICK, "--out", "run"], capsys)
    assert code == 1
    assert err.startswith("beras train: error: MNIST was not found")
    assert "Looked in:" in err  # where it looked
    for way in CLI_WAYS:
        assert way in err, way
    assert "load_data(" not in err
    assert "Traceback" not in err
    assert "WARNING" not in out
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.usefixtures("no_mnist")
def test_a_beras_data_folder_without_mnist_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BERAS_DATA names a folder as --data-dir does: no silent switch to mnist-mini."""
    code, out, err = _run(["train", *QUICK, "--out", "run"], capsys)
    assert code == 1
    assert err.startswith("beras train: error: MNIST was not found"), err
    assert "WARNING" not in out
    assert not (tmp_path / "run").exists()


def test_explicit_data_dir_without_mnist_is_an_error(
    no_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["train", "--data-dir", str(no_mnist), *QUICK, "--out", "run"], capsys)
    assert code == 1
    assert "MNIST not found at the given path" in err
    for way in CLI_WAYS:
        assert way in err, way
    assert not (tmp_path / "run").exists()


@pytest.mark.usefixtures("no_mnist")
def test_evaluate_without_its_data_gives_the_command_line_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["train", "--dataset", "mnist-mini", *QUICK, "--out", "run"], capsys)[0] == 0
    code, _, err = _run(["evaluate", "--weights", "run/weights.npz", "--dataset", "mnist"], capsys)
    assert code == 1
    assert err.startswith("beras evaluate: error: MNIST was not found")
    assert "beras evaluate --weights WEIGHTS --data-dir PATH" in err
    assert "BERAS_DATA=PATH beras evaluate" in err
    assert "load_data(" not in err


# ----------------------------------------------------------------- config.json source
def test_config_records_beras_data(
    no_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _fake_mnist(no_mnist)
    code, out, err = _run(["train", *QUICK, "--out", "run"], capsys)
    assert code == 0, err
    assert "WARNING" not in out
    assert f"Data: {npz} (BERAS_DATA)" in out
    config = _config(tmp_path / "run")
    assert (config["dataset"], config["data_source"]) == ("mnist", "BERAS_DATA")
    assert config["data_dir"] == str(npz)
    # found by searching, so searched for again: BERAS_DATA may point elsewhere later
    moved = tmp_path / "moved"
    shutil.move(str(no_mnist), str(moved))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERAS_DATA", str(moved))
        assert _run(["evaluate", "--weights", "run/weights.npz"], capsys)[0] == 0


def test_evaluate_falls_back_to_where_the_run_read_its_data(
    no_mnist: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run trained with BERAS_DATA; later, in a shell without it, evaluate finds
    nothing by searching and reads the folder config.json recorded, saying so."""
    npz = _fake_mnist(no_mnist)
    assert _run(["train", *QUICK, "--out", "run"], capsys)[0] == 0
    monkeypatch.delenv("BERAS_DATA")
    code, out, err = _run(["evaluate", "--weights", "run/weights.npz"], capsys)
    assert code == 0, err
    assert f"Data: {npz} (where the run read it, from config.json)" in out
    npz.unlink()  # gone from there too: the usual not-found message
    code, _, err = _run(["evaluate", "--weights", "run/weights.npz"], capsys)
    assert code == 1
    assert err.startswith("beras evaluate: error: MNIST was not found")


def test_config_records_the_data_dir_flag(
    no_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mydata"
    npz = _fake_mnist(folder)
    code, _, err = _run(["train", "--data-dir", str(folder), *QUICK, "--out", "run"], capsys)
    assert code == 0, err
    config = _config(tmp_path / "run")
    assert (config["data_source"], config["data_dir"]) == ("--data-dir", str(npz))
    # evaluate reads the folder the user named, with no BERAS_DATA at all
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BERAS_DATA")
        code, out, err = _run(["evaluate", "--weights", "run/weights.npz"], capsys)
    assert code == 0, err
    assert "MNIST test set" in out


def test_config_records_the_default_cache(
    no_mnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    npz = _fake_mnist(tmp_path / "home" / ".beras" / "datasets")
    code, out, err = _run(["train", *QUICK, "--out", "run"], capsys)
    assert code == 0, err
    assert f"Data: {npz} (the download cache)" in out
    config = _config(tmp_path / "run")
    assert (config["data_source"], config["data_dir"]) == ("cache", str(npz))


def test_config_records_a_download(
    no_mnist: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "home" / ".beras" / "datasets"
    real = runs.load_data

    def downloading(dataset: str, data_dir: object = None) -> object:
        # what the loader does when nothing is on disk and a mirror answers
        if dataset == "mnist" and data_dir is None:
            _fake_mnist(cache)
        return real(dataset, data_dir)  # type: ignore[arg-type]

    monkeypatch.setattr(runs, "load_data", downloading)
    code, _, err = _run(["train", *QUICK, "--out", "run"], capsys)
    assert code == 0, err
    config = _config(tmp_path / "run")
    assert config["data_source"] == "download"
    assert config["data_dir"] == str(cache / "mnist" / "mnist.npz")


@pytest.mark.usefixtures("no_mnist")
def test_config_records_the_bundled_mnist_mini(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(["train", "--dataset", "mnist-mini", *QUICK, "--out", "run"], capsys)
    assert code == 0
    assert "WARNING" not in out
    assert "NOTE" not in out
    assert "Data: bundled with Beras" in out
    config = _config(tmp_path / "run")
    assert (config["data_source"], config["data_dir"]) == ("bundled", None)


# -------------------------------------------------------------------------- plurals
@pytest.mark.usefixtures("no_mnist")
def test_one_epoch_is_singular(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["train", "--dataset", "mnist-mini", *QUICK, "--out", "run"], capsys)
    assert code == 0
    assert "1 epochs" not in out
    assert ", 1 epoch, batch 128" in out  # the Training: line
    assert "1 epoch)" in out  # the Wall time: line


@pytest.mark.parametrize(
    ("n", "word", "text"),
    [
        (1, "epoch", "1 epoch"),
        (2, "epoch", "2 epochs"),
        (0, "image", "0 images"),
        (60000, "image", "60,000 images"),
        (1, "parameter", "1 parameter"),
    ],
)
def test_plural(n: int, word: str, text: str) -> None:
    assert training.plural(n, word) == text
