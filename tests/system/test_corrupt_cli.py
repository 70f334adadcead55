"""``beras evaluate --weights`` on damaged weights files: a one-line error, bounded cost.

A real run is trained once (``beras train`` on the shipped MNIST subset, one epoch);
its ``weights.npz`` is then damaged in the ways of ``tests/property/corruptions.py``
and ``python -m beras evaluate --weights`` runs on each copy in a fresh process whose
address space is capped (``RLIMIT_AS``) and under a timeout. Each must exit with status
1 and a ``beras evaluate: error:`` line naming the file and the problem, without a
traceback, and leave the file as it was.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from property.corruptions import npy_bytes, npy_header_only, zip_bytes  # tests/property

resource = pytest.importorskip("resource", reason="POSIX resource limits")

#: Address-space cap of each evaluate process: NumPy and the model fit easily, an array
#: a damaged header declares does not.
ADDRESS_SPACE = 1 << 30
TIMEOUT = 120  # seconds: a hang detector, not a speed test


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "BERAS_DATA"}
    env.update(
        HOME=str(home),
        BERAS_HOME=str(home / ".beras"),
        BERAS_DATASET_MIRRORS="",
        MPLBACKEND="Agg",
        OPENBLAS_NUM_THREADS="1",
    )
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    argv = [sys.executable, "-m", "beras", "train", "--dataset", "mnist-mini", "--hidden", "8"]
    argv += ["--epochs", "1", "--verbose", "0", "--no-plots", "--out", str(out)]
    subprocess.run(argv, env=_env(out), check=True, capture_output=True, timeout=TIMEOUT)
    return out


def _members(weights: Path) -> dict[str, np.ndarray]:
    with np.load(weights) as data:
        return {k: data[k] for k in data.files}


def _damage(kind: str, original: bytes, arrays: dict[str, np.ndarray]) -> tuple[bytes, str]:
    """The damaged bytes and a phrase the error must contain."""
    first = next(iter(arrays))
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    if kind == "truncated":
        return original[: len(original) // 2], "not a readable .npz"
    if kind == "flipped":
        data = bytearray(original)
        data[original.index(b"\x93NUMPY") + 300] ^= 0x5A
        return bytes(data), "not a readable .npz"
    if kind == "nan":
        bad = arrays[first].copy()
        bad.flat[0] = np.nan
        members[f"{first}.npy"] = npy_bytes(bad)
        return zip_bytes(members), f"non-finite weights (nothing was loaded): {first}: 1 NaN"
    if kind == "pickle":
        members[f"{first}.npy"] = npy_bytes(np.array([object()], dtype=object))
        return zip_bytes(members), "holds Python objects"
    if kind == "huge header":
        # 8 TB of float32 declared, with the real data behind it
        header = npy_header_only((2**20, 2**21), arrays[first].dtype.str, arrays[first].tobytes())
        members[f"{first}.npy"] = header
        return zip_bytes(members), "its header declares shape (1048576, 2097152)"
    if kind == "huge shape, consistent sizes":
        # a member that really holds 512 MB of zeros, deflated to half a megabyte
        members[f"{first}.npy"] = npy_bytes(np.zeros((2**17, 2**10), np.float32))
        return zip_bytes(members, deflate=True), "expected shape"
    if kind == "wrong dtype":
        members[f"{first}.npy"] = npy_bytes(arrays[first].astype(np.float64))
        return zip_bytes(members), "file has float64"
    if kind == "not a zip":
        return b"\x93NUMPY this is not an archive" + bytes(100), "not a readable .npz"
    raise AssertionError(kind)


KINDS = [
    "truncated",
    "flipped",
    "nan",
    "pickle",
    "huge header",
    "huge shape, consistent sizes",
    "wrong dtype",
    "not a zip",
]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("kind", KINDS)
def test_beras_evaluate_refuses_a_damaged_weights_file(run, tmp_path, kind):
    weights = run / "weights.npz"
    damaged, phrase = _damage(kind, weights.read_bytes(), _members(weights))
    folder = tmp_path / "damaged"
    folder.mkdir()
    (folder / "config.json").write_bytes((run / "config.json").read_bytes())
    target = folder / "weights.npz"
    target.write_bytes(damaged)
    proc = subprocess.run(
        [sys.executable, "-m", "beras", "evaluate", "--weights", str(target)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "MemoryError" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("beras evaluate: error: SequentialModel.load_weights: ")
    assert str(target) in lines[0]
    assert phrase in lines[0], lines[0]
    assert target.read_bytes() == damaged
    assert sorted(os.listdir(folder)) == ["config.json", "weights.npz"]


def test_the_undamaged_file_evaluates_under_the_same_limits(run, tmp_path):
    """The control: the cap and the timeout leave a good file's evaluation alone."""
    proc = subprocess.run(
        [sys.executable, "-m", "beras", "evaluate", "--weights", str(run / "weights.npz")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=_limit_memory,
    )
    assert proc.returncode == 0, proc.stderr
    assert "accuracy" in proc.stdout


def test_damage_helpers_build_valid_archives():
    """The archives are well-formed zips (so the refusals above are about content)."""
    data = zip_bytes({"a.npy": npy_bytes(np.zeros(2))})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
