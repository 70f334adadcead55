"""``beras._memory``: freed array memory is kept for reuse (glibc's malloc tuned once at
import), unless the user opts out or tunes malloc already. Each case runs in a fresh
interpreter, where the tuning happens at ``import beras``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

PROBE = "import beras, beras._memory as m; print(m._applied, m.keep_freed_memory())"
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _applied(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "BERAS_KEEP"))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env={**environ, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="the tuning applies to glibc's malloc only")
def test_applied_once_at_import_on_glibc() -> None:
    assert _applied() == "True True"


def test_not_applied_elsewhere_nor_when_declined() -> None:
    assert _applied(BERAS_KEEP_MEMORY="0") == "False False"
    assert _applied(MALLOC_TRIM_THRESHOLD_="131072") == "False False"
    assert _applied(MALLOC_MMAP_THRESHOLD_="131072") == "False False"
    if not GLIBC:
        assert _applied() == "False False"
