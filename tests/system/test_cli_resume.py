"""``beras train`` killed (SIGKILL) or interrupted (SIGINT) while epoch 3 runs, then
``beras train --resume --out A``, ends with the files of the run that was never stopped
(``--out B``): the same weights (max |diff| = 0), history, config, predictions and
pictures, byte for byte.

The runs use ``--batch-size 8`` so that an epoch of the bundled mnist-mini takes a second
or more: the test reads the run's stdout until epoch 2's line, waits for epoch 2's backup
(``A/backup/training_state.npz`` says ``epoch`` 2), then sends the signal, while epoch 3
trains.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--dataset", "mnist-mini", "--epochs", "5", "--seed", "7", "--batch-size", "8"]
OUTPUTS = [
    "config.json",
    "history.json",
    "predictions.npy",
    "training_curves.png",
    "predictions.png",
]
BACKUP = Path("backup") / "training_state.npz"
TIMEOUT = 300  # seconds for any one run, on a slow shared machine


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BERAS_DATA"}
    env.update(
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        MPLBACKEND="Agg",
        OPENBLAS_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def _beras(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "beras", "train", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("uninterrupted")
    run = _beras(*ARGS, "--verbose", "2", "--out", str(base / "B"), home=base / "home")
    assert run.returncode == 0, run.stderr
    return base / "B"


def _backup_epoch(out: Path) -> int | None:
    try:
        with np.load(out / BACKUP, allow_pickle=False) as data:
            return int(data["epoch"])
    except (OSError, ValueError, KeyError):  # not there yet, or being replaced
        return None


def _stop_during_epoch_3(out: Path, home: Path, signum: int) -> tuple[int, str, str]:
    """Start the run, send ``signum`` once epoch 2's backup exists; (status, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "beras", "train", *ARGS, "--verbose", "2", "--out", str(out)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job inherits SIGINT ignored, and Python then never turns
        # it into KeyboardInterrupt: give the run the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(line.startswith("Epoch 2/5") for line in seen):
            assert proc.poll() is None, f"the run ended early: {seen}"
            assert time.monotonic() < deadline, f"epoch 2 did not end in time: {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.05))
        while _backup_epoch(out) != 2:  # epoch 2's bookkeeping ends with its backup
            assert proc.poll() is None, f"the run ended early: {seen}"
            assert time.monotonic() < deadline, "epoch 2's backup was not written in time"
            time.sleep(0.01)
        proc.send_signal(signum)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    while not lines.empty():
        seen.append(lines.get())
    stderr = proc.stderr.read() if proc.stderr else ""
    return proc.returncode, "".join(seen), stderr


def _assert_same_run(resumed: Path, reference: Path) -> None:
    with np.load(resumed / "weights.npz") as a, np.load(reference / "weights.npz") as b:
        assert a.files == b.files
        diff = max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)
        assert diff == 0.0
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    for name in OUTPUTS:
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (resumed, reference)]
    for m in metrics:  # the timings differ between any two runs
        del m["train_seconds"], m["wall_seconds"]
    assert metrics[0] == metrics[1]
    assert metrics[0]["epochs_completed"] == 5
    assert not (resumed / "backup").exists()  # deleted once every output was written


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_run_stopped_in_epoch_3_resumes_to_the_uninterrupted_result(
    tmp_path: Path, uninterrupted: Path, signum: int
) -> None:
    out, home = tmp_path / "A", tmp_path / "home"
    status, stdout, stderr = _stop_during_epoch_3(out, home, signum)
    if signum == signal.SIGKILL:
        assert status == -signal.SIGKILL
    else:
        assert status == 130, stderr
        assert "Traceback" not in stderr
        assert f"beras train --resume --out {out}" in stderr
    assert "Epoch 3/5" not in stdout  # stopped while epoch 3 ran
    assert _backup_epoch(out) == 2
    assert not (out / "metrics.json").exists()

    resumed = _beras("--resume", "--out", str(out), "--verbose", "2", home=home)
    assert resumed.returncode == 0, resumed.stderr
    assert f"Resuming {out} after epoch 2/5 (the last completed)." in resumed.stdout
    epoch_lines = [line[:9] for line in resumed.stdout.splitlines() if line.startswith("Epoch ")]
    assert epoch_lines == ["Epoch 3/5", "Epoch 4/5", "Epoch 5/5"]
    _assert_same_run(out, uninterrupted)
