"""``beras train --resume --out DIR``: an interrupted run continued in-process ends with the
files of the uninterrupted run; flags that contradict the recorded run, a missing run,
a completed run and a corrupted backup are refused clearly, changing nothing.

Runs use the bundled mnist-mini with a small hidden layer; the interruption is a
``KeyboardInterrupt`` raised by a training step, as Ctrl-C would (the kill -9 case is in
``tests/system/test_cli_resume.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from beras import cli
from beras.model import SequentialModel

RUN = "train --dataset mnist-mini --hidden 16 --epochs 4 --seed 3 --batch-size 200 --verbose 2"
FILES = ("weights.npz", "config.json", "history.json", "predictions.npy")
BACKUP = Path("backup") / "training_state.npz"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BERAS_HOME", str(tmp_path / "home" / ".beras"))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", "")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("BERAS_DATA", raising=False)
    # a fixed thread count: the default follows the machine's load epoch by epoch, and
    # another count sums in another order (README, "Reproducible")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")


def _run(argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(argv.split())
    except SystemExit as exc:  # argparse errors
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _interrupt_on_step(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = SequentialModel.batch_step
    count = {"n": 0}

    def batch_step(self, x, y, training=True):  # type: ignore[no-untyped-def]
        if training:
            count["n"] += 1
            if count["n"] == step:
                raise KeyboardInterrupt
        return original(self, x, y, training)

    monkeypatch.setattr(SequentialModel, "batch_step", batch_step)


def _interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A run stopped in epoch 3 (9 steps per epoch, stopped at the 23rd)."""
    out = tmp_path / "A"
    with monkeypatch.context() as patch:
        _interrupt_on_step(patch, 9 + 9 + 5)
        code, _, err = _run(f"{RUN} --no-plots --out {out}", capsys)
    assert code == 130, err
    assert f"continue training with: beras train --resume --out {out}" in err
    return out


def _same_files(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (a, b)]
    for m in metrics:
        del m["train_seconds"], m["wall_seconds"]
    assert metrics[0] == metrics[1]


def test_resume_ends_with_the_uninterrupted_files(tmp_path, monkeypatch, capsys):
    reference = tmp_path / "B"
    assert _run(f"{RUN} --no-plots --out {reference}", capsys)[0] == 0
    out = _interrupted(tmp_path, monkeypatch, capsys)
    with np.load(out / BACKUP) as state:
        assert int(state["epoch"]) == 2
    code, stdout, err = _run(f"train --resume --out {out} --verbose 2 --no-plots", capsys)
    assert code == 0, err
    assert f"Resuming {out} after epoch 2/4 (the last completed)." in stdout
    assert [line[:9] for line in stdout.splitlines() if line.startswith("Epoch")] == [
        "Epoch 3/4",
        "Epoch 4/4",
    ]
    _same_files(out, reference)
    assert not (out / "backup").exists()


def test_resume_accepts_flags_equal_to_the_recorded_ones(tmp_path, monkeypatch, capsys):
    out = _interrupted(tmp_path, monkeypatch, capsys)
    argv = f"train --resume --out {out} --epochs 4 --seed 3 --hidden 16 --verbose 0 --no-plots"
    code, _, err = _run(argv, capsys)
    assert code == 0, err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--epochs 6", "--epochs 6 (the run has 4)"),
        ("--seed 4 --lr 0.01", "--lr 0.01 (the run has 0.001); --seed 4 (the run has 3)"),
        ("--optimizer sgd", "--optimizer sgd (the run has adam)"),
        ("--epochs 15", "--epochs 15 (the run has 4)"),  # the default value, given explicitly
    ],
)
def test_resume_refuses_flags_that_contradict_the_run(
    tmp_path, monkeypatch, capsys, flags, message
):
    out = _interrupted(tmp_path, monkeypatch, capsys)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    backup = (out / BACKUP).read_bytes()
    code, _, err = _run(f"train --resume --out {out} {flags}", capsys)
    assert code == 2
    assert message in err
    assert f"continues the run recorded in {out / 'config.json'}" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert (out / BACKUP).read_bytes() == backup


def test_resume_needs_out(capsys):
    code, _, err = _run("train --resume", capsys)
    assert code == 2
    assert "--resume needs --out DIR" in err


def test_resume_of_nothing_is_an_error(tmp_path, capsys):
    code, _, err = _run(f"train --resume --out {tmp_path / 'empty'}", capsys)
    assert code == 1
    assert "no run to resume in" in err
    assert "has no config.json" in err
    assert not (tmp_path / "empty").exists()


def test_resume_of_a_completed_run_is_an_error(tmp_path, capsys):
    out = tmp_path / "done"
    assert _run(f"{RUN} --no-plots --out {out}", capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = _run(f"train --resume --out {out}", capsys)
    assert code == 1
    assert f"nothing to resume in {out}: the run completed" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_from_a_corrupted_backup_is_an_error_that_keeps_everything(
    tmp_path, monkeypatch, capsys
):
    out = _interrupted(tmp_path, monkeypatch, capsys)
    (out / BACKUP).write_bytes((out / BACKUP).read_bytes()[:1000])
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    code, _, err = _run(f"train --resume --out {out} --no-plots", capsys)
    assert code == 1
    assert f"cannot resume the run in {out}" in err
    assert "is not a readable Beras training state" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert len((out / BACKUP).read_bytes()) == 1000


def test_resume_with_a_config_that_no_longer_fits_the_backup_is_an_error(
    tmp_path, monkeypatch, capsys
):
    out = _interrupted(tmp_path, monkeypatch, capsys)
    config = json.loads((out / "config.json").read_text())
    config["hidden"] = [17]
    (out / "config.json").write_text(json.dumps(config))
    weights = (out / "weights.npz").read_bytes()
    code, _, err = _run(f"train --resume --out {out} --no-plots", capsys)
    assert code == 1
    assert "does not fit this training run (nothing was restored)" in err
    assert "expected float32 (784, 17), the state has float32 (784, 16)" in err
    assert (out / "weights.npz").read_bytes() == weights
    assert (out / BACKUP).exists()


def test_a_new_run_over_an_interrupted_one_starts_over(tmp_path, monkeypatch, capsys):
    reference = tmp_path / "B"
    assert _run(f"{RUN} --no-plots --out {reference}", capsys)[0] == 0
    out = _interrupted(tmp_path, monkeypatch, capsys)
    code, stdout, err = _run(f"{RUN} --no-plots --out {out}", capsys)
    assert code == 0, err
    assert "Starting over: the interrupted run's backup" in stdout
    assert next(ln[:9] for ln in stdout.splitlines() if ln.startswith("Epoch")) == "Epoch 1/4"
    _same_files(out, reference)
    assert not (out / "backup").exists()


def test_run_interrupted_before_its_first_backup_resumes_from_the_start(
    tmp_path, monkeypatch, capsys
):
    reference = tmp_path / "B"
    assert _run(f"{RUN} --no-plots --out {reference}", capsys)[0] == 0
    out = tmp_path / "A"
    with monkeypatch.context() as patch:
        _interrupt_on_step(patch, 4)
        assert _run(f"{RUN} --no-plots --out {out}", capsys)[0] == 130
    assert (out / "config.json").exists()
    assert not (out / BACKUP).exists()
    code, stdout, err = _run(f"train --resume --out {out} --no-plots", capsys)
    assert code == 0, err
    assert "so training starts again at epoch 1" in stdout
    _same_files(out, reference)


def test_run_interrupted_after_training_resumes_to_its_outputs(tmp_path, monkeypatch, capsys):
    """Killed while writing the outputs: the backup (all epochs done) is still there, and
    --resume trains nothing more, evaluates and writes the same files."""
    from beras import runs

    reference = tmp_path / "B"
    assert _run(f"{RUN} --no-plots --out {reference}", capsys)[0] == 0
    out = tmp_path / "A"

    def interrupted_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runs, "save_npy", interrupted_save)
        code, _, err = _run(f"{RUN} --no-plots --out {out}", capsys)
    assert code == 130, err
    assert "Interrupted after training, while writing the outputs." in err
    assert not (out / "predictions.npy").exists()
    with np.load(out / BACKUP) as state:
        assert int(state["epoch"]) == 4
    code, stdout, err = _run(f"train --resume --out {out} --verbose 2 --no-plots", capsys)
    assert code == 0, err
    assert f"Resuming {out} after epoch 4/4 (the last completed)." in stdout
    assert not [line for line in stdout.splitlines() if line.startswith("Epoch")]
    _same_files(out, reference)
    assert not (out / "backup").exists()
