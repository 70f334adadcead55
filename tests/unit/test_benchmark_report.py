"""benchmarks/report.py: ratios from pytest-benchmark JSON, and the sections it rewrites."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_report", ROOT / "benchmarks" / "report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench(group: str, case: str, role: str, seconds: float, timer: str) -> dict[str, Any]:
    return {
        "extra_info": {"group": group, "case": case, "role": role},
        "stats": {"min": seconds, "median": seconds, "rounds": 5},
        "options": {"timer": timer},
    }


def _run(tmp_path: Path, name: str, beras: float, torch: float, timer: str = "perf_counter") -> str:
    case = "26x26x32->64 B=128 1 thread"
    data = {
        "machine_info": {"openblas_runtime": {"threads": 1}},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            _bench("conv2d", case, "beras", beras, timer),
            _bench("conv2d", case, "torch", torch, timer),
        ],
    }
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_conv_ratio_and_target_verdict(report: ModuleType, tmp_path: Path) -> None:
    """Beras / PyTorch per run, judged against the 1.5x target; CPU-time runs are named."""
    met = _run(tmp_path, "a.json", beras=0.12, torch=0.1)
    missed = _run(tmp_path, "b.json", beras=0.2, torch=0.1, timer="process_time")
    text = report.render([report.load(met), report.load(missed)])
    row = next(line for line in text.splitlines() if line.startswith("| 26x26x32->64"))
    assert "**1.20×**" in row
    assert "**2.00×**" in row
    assert row.endswith("<= 1.5: met, **missed** |")
    assert "run 2 (1 BLAS thread, CPU time)" in text


def test_strict_target_is_strict(report: ModuleType) -> None:
    assert report._verdict(("<", 1.0), 0.99) == "met"
    assert report._verdict(("<", 1.0), 1.0) == "**missed**"
    assert report._verdict(("<=", 1.0), 1.0) == "met"


def test_update_rewrites_only_the_named_section(report: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "tables.txt"
    doc.write_text(
        "intro\n<!-- report:begin -->\nMLP TABLES\n<!-- report:end -->\nmiddle\n"
        "<!-- report:begin conv -->\nOLD\n<!-- report:end conv -->\ntail\n",
        encoding="utf-8",
    )
    run = _run(tmp_path, "a.json", beras=0.15, torch=0.1)
    assert report.main([run, "--section", "conv", "--update", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "MLP TABLES" in text  # the unnamed section is left alone
    assert "OLD" not in text
    conv = text.split("<!-- report:begin conv -->", 1)[1].split("<!-- report:end conv -->", 1)[0]
    assert "**1.50×**" in conv
    assert text.startswith("intro\n")
    assert text.endswith("tail\n")


def test_update_without_the_section_changes_nothing(report: ModuleType, tmp_path: Path) -> None:
    doc = tmp_path / "tables.txt"
    doc.write_text("no markers here\n", encoding="utf-8")
    run = _run(tmp_path, "a.json", beras=0.15, torch=0.1)
    assert report.main([run, "--section", "conv", "--update", str(doc)]) == 2
    assert doc.read_text(encoding="utf-8") == "no markers here\n"
