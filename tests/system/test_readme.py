"""The README's Python code blocks run exactly as written, so the README cannot rot.

Each ```python block is written to a file and run with the current interpreter in an empty
folder; it must exit 0. Blocks that read real MNIST need it (``BERAS_DATA``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def _cases() -> list[object]:
    cases = []
    for i, code in enumerate(BLOCKS):
        first = next(line for line in code.splitlines() if line and not line.startswith("import"))
        marks = [pytest.mark.needs_data("mnist")] if "mnist.load_data()" in code else []
        cases.append(pytest.param(code, id=f"block{i}-{first[:40]}", marks=marks))
    return cases


def test_the_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 2, "the README's Python examples were not found"


@pytest.mark.parametrize("code", _cases())
def test_readme_block_runs_as_written(code: str, tmp_path: Path) -> None:
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"
