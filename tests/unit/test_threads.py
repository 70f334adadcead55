"""The BLAS thread policy of ``beras train``, ``beras evaluate`` and ``assignment.py``
(:mod:`beras.threads`): ``--threads`` first, then a thread variable the user set (left
alone), else the idle CPUs, checked again every epoch; the choice is applied for the run
only and printed in its header. No timings here: the default's speed is measured by
``python -m benchmarks.threads`` (BENCHMARKS.md)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from beras import cli, runs, threads, training


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


needs_blas = pytest.mark.skipif(
    not _blas_threads(), reason="threadpoolctl finds no BLAS library under this NumPy"
)


# ------------------------------------------------------------------------ the policy
@pytest.mark.parametrize(
    ("cpus", "idle", "expected"),
    [
        (2, 2.0, 2),  # quiet two-core machine: both
        (2, 1.6, 2),
        (2, 1.0, 1),  # one core busy elsewhere: threads would wait for it
        (2, 0.4, 1),
        (2, 0.0, 1),  # fully loaded: one thread, never zero
        (8, 8.0, threads.MAX_DEFAULT_THREADS),
        (8, 3.2, 3),
        (2, 5.0, 2),  # never more than the CPUs
        (1, 1.0, 1),
    ],
)
def test_the_default_is_the_idle_cpus(cpus: int, idle: float, expected: int) -> None:
    assert threads.default_threads(cpus=cpus, idle=idle) == expected


def test_idle_cpus_is_between_zero_and_the_cpu_count() -> None:
    idle = threads.idle_cpus(interval=0.05)
    assert idle is None or 0.0 <= idle <= (threads.os.cpu_count() or 1) + 1e-9


@pytest.mark.parametrize("name", threads.THREAD_VARIABLES)
def test_a_thread_variable_set_by_the_user_is_honoured(name: str) -> None:
    choice = threads.choose(None, environ={name: "3"}, cpus=8, idle=8.0)
    assert (choice.threads, choice.source, choice.apply) == (3, name, False)
    assert choice.describe() == f"BLAS threads: 3 (from {name})"


def test_an_empty_thread_variable_counts_as_unset() -> None:
    choice = threads.choose(None, environ={"OPENBLAS_NUM_THREADS": ""}, cpus=4, idle=4.0)
    assert (choice.source, choice.threads) == ("default", 4)


def test_threads_flag_beats_the_environment() -> None:
    choice = threads.choose(2, environ={"OPENBLAS_NUM_THREADS": "1"})
    assert (choice.threads, choice.source, choice.apply) == (2, "--threads", True)
    assert choice.describe() == "BLAS threads: 2 (from --threads)"


def test_threads_flag_must_be_positive() -> None:
    with pytest.raises(ValueError, match="--threads"):
        threads.choose(0, environ={})


def test_the_default_says_why_and_how_to_change_it() -> None:
    quiet = threads.choose(None, environ={}, cpus=2, idle=1.9)
    assert quiet.describe() == (
        "BLAS threads: 2 (default for 1.9 idle CPUs, checked every epoch; --threads to change)"
    )
    busy = threads.choose(None, environ={}, cpus=2, idle=0.3)
    assert busy.describe().startswith("BLAS threads: 1 (default for 0.3 idle CPUs")
    once = threads.choose(None, environ={}, cpus=2, idle=2.0, per_epoch=False)
    assert once.describe() == "BLAS threads: 2 (default for 2.0 idle CPUs; --threads to change)"
    script = threads.choose(None, environ={}, idle=1.0, override="OPENBLAS_NUM_THREADS=N")
    assert script.describe().endswith("; OPENBLAS_NUM_THREADS=N to change)")


# ------------------------------------------------------------- checked every epoch
class _Clock:
    """Stands in for ``/proc/stat`` and ``os.times``: ``tick(others, own)`` advances one
    second on 2 CPUs in which other processes were busy ``others`` CPU-seconds and this
    one ``own``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.idle, self.total, self.own = 0, 0, 0.0
        monkeypatch.setattr(threads, "_proc_stat", lambda: (self.idle, self.total, 2))
        monkeypatch.setattr(
            threads.os, "times", lambda: type("T", (), {"user": self.own, "system": 0.0})()
        )
        monkeypatch.setattr(threads.os, "sysconf", lambda name: 100, raising=False)
        monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)

    def tick(self, others: float, own: float) -> None:
        self.total += 200
        self.idle += round(100 * (2.0 - others - own))
        self.own += own


def test_the_sampler_leaves_out_this_process_own_work(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    sampler = threads.CpuSampler()
    clock.tick(others=0.0, own=2.0)  # both cores busy, with this run's own threads
    assert sampler.available() == pytest.approx(2.0)
    clock.tick(others=1.5, own=0.5)  # another job took one and a half cores
    assert sampler.available() == pytest.approx(0.5)
    clock.tick(others=0.25, own=1.0)
    assert sampler.available() == pytest.approx(1.75)
    assert sampler.available() is None  # no time passed


@needs_blas
def test_recheck_follows_the_load_from_the_second_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    said: list[str] = []
    with threadpool_limits(limits=2, user_api="blas"):
        recheck = threads.Recheck(threads.ThreadChoice(2, "default", 2.0), said.append)
        clock.tick(others=1.8, own=0.2)  # busy already, but the start was measured
        recheck.on_epoch_begin(0)
        assert (recheck.threads, set(_blas_threads())) == (2, {2})
        clock.tick(others=1.6, own=0.4)
        recheck.on_epoch_begin(1)
        assert (recheck.threads, set(_blas_threads())) == (1, {1})
        clock.tick(others=1.6, own=0.4)
        recheck.on_epoch_begin(2)  # still busy: no change, nothing said
        clock.tick(others=0.0, own=1.0)
        recheck.on_epoch_begin(3)
        assert (recheck.threads, set(_blas_threads())) == (2, {2})
        assert recheck.changes == [(1, 1, pytest.approx(0.4)), (3, 2, pytest.approx(2.0))]
        assert said == [
            "BLAS threads: 1 from epoch 2 (0.4 CPUs left idle)",
            "BLAS threads: 2 from epoch 4 (2.0 CPUs left idle)",
        ]


@needs_blas
@pytest.mark.parametrize("source", ["--threads", "OPENBLAS_NUM_THREADS"])
def test_recheck_never_overrides_the_user(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    clock = _Clock(monkeypatch)
    with threadpool_limits(limits=2, user_api="blas"):
        recheck = threads.Recheck(threads.ThreadChoice(2, source))
        for epoch in range(3):
            clock.tick(others=2.0, own=0.0)
            recheck.on_epoch_begin(epoch)
        assert (recheck.threads, recheck.changes, set(_blas_threads())) == (2, [], {2})


# ----------------------------------------------------------------------- applying it
@needs_blas
def test_limit_applies_for_the_block_and_restores() -> None:
    before = _blas_threads()
    target = 1 if max(before) > 1 else 2
    with threads.limit(threads.ThreadChoice(target, "--threads")) as line:
        assert _blas_threads() == [target] * len(before)
        assert line == f"BLAS threads: {target} (from --threads)"
    assert _blas_threads() == before


@needs_blas
def test_limit_leaves_a_user_variable_alone() -> None:
    before = _blas_threads()
    with threads.limit(threads.ThreadChoice(7, "OMP_NUM_THREADS")) as line:
        assert _blas_threads() == before
    assert line == "BLAS threads: 7 (from OMP_NUM_THREADS)"


# ------------------------------------------------------------------ in the commands
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BERAS_HOME", str(tmp_path / ".beras"))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", "")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name in threads.THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _train(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    start: int | None = None,
) -> tuple[int, list[str], list[list[int]]]:
    """Run ``beras train`` on mnist-mini with BLAS at ``start`` threads beforehand; its
    output lines and the BLAS threads in use while it trained."""
    seen: list[list[int]] = []
    real = runs.fit_and_evaluate

    def spy(*args: Any, **kwargs: Any) -> training.TrainResult:
        seen.append(_blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "fit_and_evaluate", spy)
    base = ["train", "--dataset", "mnist-mini", "--epochs", "1", "--no-plots", "--verbose", "0"]
    with contextlib.ExitStack() as stack:
        if start is not None:
            stack.enter_context(threadpool_limits(limits=start, user_api="blas"))
        code = cli.main([*base, "--out", str(tmp_path / "run"), *argv])
    return code, capsys.readouterr().out.splitlines(), seen


@needs_blas
@pytest.mark.usefixtures("offline")
def test_train_uses_and_prints_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for idle, expected in ((0.6, 1), (2.0, 2)):
        monkeypatch.setattr(threads, "idle_cpus", lambda idle=idle: idle)
        monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
        code, lines, seen = _train([], tmp_path, monkeypatch, capsys, start=3 - expected)
        assert code == 0
        assert (
            f"BLAS threads: {expected} (default for {idle:.1f} idle CPUs, checked every "
            "epoch; --threads to change)"
        ) in lines
        assert len(seen) == 1
        assert all(n == expected for n in seen[0]), seen


@needs_blas
@pytest.mark.usefixtures("offline")
def test_train_threads_flag_is_used_and_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, seen = _train(["--threads", "2"], tmp_path, monkeypatch, capsys, start=1)
    assert code == 0
    assert "BLAS threads: 2 (from --threads)" in lines
    assert len(seen) == 1
    assert all(n == 2 for n in seen[0]), seen


@needs_blas
@pytest.mark.usefixtures("offline")
def test_train_leaves_a_user_variable_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    # BLAS read the variable when NumPy loaded it; stand in for that with 2 threads
    code, lines, seen = _train([], tmp_path, monkeypatch, capsys, start=2)
    assert code == 0
    assert "BLAS threads: 2 (from OPENBLAS_NUM_THREADS)" in lines
    assert seen == [[2] * len(seen[0])]


@pytest.mark.usefixtures("offline")
def test_evaluate_prints_its_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--dataset", "mnist-mini", "--epochs", "1", "--no-plots", "--verbose", "0"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    weights = str(out / "weights.npz")
    assert cli.main(["evaluate", "--weights", weights, "--threads", "1"]) == 0
    assert "BLAS threads: 1 (from --threads)" in capsys.readouterr().out
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    assert cli.main(["evaluate", "--weights", weights]) == 0
    assert "BLAS threads: 1 (from MKL_NUM_THREADS)" in capsys.readouterr().out


@pytest.mark.usefixtures("offline")
def test_threads_flag_zero_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--threads", "0"])
    assert exit_.value.code == 2
    assert "--threads" in capsys.readouterr().err
