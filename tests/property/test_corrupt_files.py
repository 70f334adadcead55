"""Corrupted real files end in the library's error, within bounded time and memory.

Three real files are damaged by hypothesis (``tests/property/corruptions.py``):

- a weights file saved by ``save_weights`` from a small model, loaded by
  ``load_weights``;
- real MNIST IDX files (the first 100 test digits, as ``.gz`` and raw) in a folder,
  loaded by ``mnist.load_data(path, verify=False)``;
- the ``.npz`` dataset shipped with Beras (real MNIST digits), loaded by
  ``mnist_mini.load_data(path)``.

For every corruption the load must end in one of two ways, decided exactly:

- the documented error (``WeightsFileError`` / ``DatasetError``, both ``BadFileError``)
  naming the file, with nothing changed: the model's weights identical, the files on
  disk identical, nothing created;
- or success with exactly the arrays a reference decoder reads from the damaged bytes
  (for weights and ``.npz``, whose zip CRCs cover the data, that is the original; for
  IDX, the standard library's gzip and a direct reading of the header and data).

And always: no hang (a watchdog), and a peak of traced memory bounded by a few times
the size of the legitimate data, whatever sizes the damaged file declares.
"""

from __future__ import annotations

import functools
import gzip
import os
import shutil
import struct
import tempfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beras.activations import LeakyReLU, Softmax
from beras.checkpoint import WeightsFileError
from beras.datasets import DatasetError, mnist, mnist_mini
from beras.fileio import BadFileError
from beras.layers import Dense
from beras.model import SequentialModel
from beras.testing.strategies import budget

from .corruptions import (
    bounded,
    byte_corruptions,
    gzip_bombs,
    idx_bytes,
    idx_corruptions,
    npz_corruptions,
)

SETTINGS = settings(
    max_examples=budget(100),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Rewritten archives and IDX sets cost more per example than flipped bytes.
STRUCTURED = settings(SETTINGS, max_examples=budget(40))
MiB = 1 << 20


#: (target, outcome) -> [cases, largest peak bytes, longest seconds]; printed at the end
#: of the module (run with ``-s``) as the figures of this suite.
TALLY: dict[tuple[str, str], list[float]] = {}


def _tally(target: str, outcome: str, peak: int, seconds: float) -> None:
    row = TALLY.setdefault((target, outcome), [0, 0, 0.0])
    row[0] += 1
    row[1] = max(row[1], peak)
    row[2] = max(row[2], seconds)


@pytest.fixture(scope="module", autouse=True)
def _print_tally():
    yield
    print("\ncorrupt files: target, outcome: cases, largest traced peak, longest load")
    for (target, outcome), (cases, peak, seconds) in sorted(TALLY.items()):
        print(f"  {target}, {outcome}: {cases}, {peak / MiB:.2f} MiB, {seconds:.3f} s")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# --------------------------------------------------------------------- weights
def _model(seed: int) -> SequentialModel:
    return SequentialModel(
        [Dense(6, 5, seed=seed), LeakyReLU(), Dense(5, 4, seed=seed + 1), Softmax()]
    )


@functools.cache
def weights_file() -> tuple[bytes, dict[str, np.ndarray]]:
    """The bytes ``save_weights`` writes for a small model, and its weights by name."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "w.npz"
        model = _model(seed=0)
        model.save_weights(str(path))
        raw = path.read_bytes()
    return raw, dict(zip(model.weight_names(), (w.copy() for w in model.weights)))


def _check_weights_load(tmp_path: Path, original: dict[str, np.ndarray], what: str, data: bytes):
    path = tmp_path / "w.npz"
    path.write_bytes(data)
    model = _model(seed=42)  # different weights from the file's
    before = [w.copy() for w in model.weights]
    outcome = bounded(lambda: model.load_weights(str(path)))
    assert outcome.peak_bytes < 8 * MiB + 4 * len(data), (what, outcome.peak_bytes)
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["w.npz"]
    result = "loaded the original" if outcome.error is None else "refused"
    _tally("weights", result, outcome.peak_bytes, outcome.seconds)
    if outcome.error is None:  # only the original content may load
        for w, name in zip(model.weights, model.weight_names()):
            np.testing.assert_array_equal(w, original[name], err_msg=what)
        return result
    assert isinstance(outcome.error, WeightsFileError), (what, repr(outcome.error))
    assert isinstance(outcome.error, BadFileError)
    assert str(path) in str(outcome.error)
    for w, old in zip(model.weights, before):
        np.testing.assert_array_equal(w, old, err_msg=f"{what}: the model changed")
    return "refused"


@SETTINGS
@given(data=st.data())
def test_damaged_weights_bytes_are_refused_or_are_the_original(tmp_path, data):
    raw, original = weights_file()
    what, damaged = data.draw(byte_corruptions(raw), label="corruption")
    _check_weights_load(tmp_path, original, what, damaged)


@STRUCTURED
@given(data=st.data())
def test_wrong_weights_content_is_refused(tmp_path, data):
    """Pickles, wrong dtypes or shapes, huge headers, NaN/inf, extra/missing members."""
    _, original = weights_file()
    what, damaged = data.draw(npz_corruptions(original), label="corruption")
    assert _check_weights_load(tmp_path, original, what, damaged) == "refused", what


# ------------------------------------------------------------------ IDX (MNIST)
STEMS = {
    "train-images-idx3-ubyte": 0x803,
    "train-labels-idx1-ubyte": 0x801,
    "t10k-images-idx3-ubyte": 0x803,
    "t10k-labels-idx1-ubyte": 0x801,
}


@functools.cache
def mnist_idx() -> dict[str, bytes]:
    """Raw IDX bytes of real MNIST digits: test digits 0-59 as "train", 60-99 as "test"."""
    roots = [Path(p) for p in os.environ.get("BERAS_DATA", "").split(os.pathsep) if p]
    folder = next(root / "mnist" for root in roots if (root / "mnist").is_dir())
    images = gzip.decompress((folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    x = np.frombuffer(images, np.uint8, offset=16).reshape(-1, 28, 28)[:100]
    y = np.frombuffer(labels, np.uint8, offset=8)[:100]
    return {
        "train-images-idx3-ubyte": idx_bytes(x[:60], 0x803),
        "train-labels-idx1-ubyte": idx_bytes(y[:60], 0x801),
        "t10k-images-idx3-ubyte": idx_bytes(x[60:], 0x803),
        "t10k-labels-idx1-ubyte": idx_bytes(y[60:], 0x801),
    }


def _reference_idx(raw: bytes, magic: int) -> np.ndarray | None:
    """What a correct IDX file holds, read directly; None if it is not one."""
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        return None
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    if min(dims) < 0 or 4 + 4 * ndim + int(np.prod(dims, dtype=object)) != len(raw):
        return None
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _reference_gunzip(raw: bytes, cap: int = 16 * MiB) -> bytes:
    """``gzip.decompress``, but more than ``cap`` bytes (far beyond these small files,
    so only a bomb) is not a valid file here."""
    out = bytearray()
    while raw.strip(b"\0"):
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += d.decompress(raw, cap + 1 - len(out))
        if len(out) > cap or not d.eof:
            raise EOFError("larger than the cap, or incomplete")
        raw = d.unused_data
    return bytes(out)


def _reference_load(files: dict[str, bytes]) -> tuple | None:
    """The dataset a correct loader returns from ``files`` (name -> bytes), or None."""
    arrays = {}
    for stem, magic in STEMS.items():
        name = stem + ".gz" if stem + ".gz" in files else stem
        raw = files[name]
        if name.endswith(".gz"):
            try:
                raw = _reference_gunzip(raw)
            except (OSError, EOFError, zlib.error):
                return None
        arrays[stem] = _reference_idx(raw, magic)
        if arrays[stem] is None:
            return None
    xs = [arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]]
    ys = [arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]]
    for x, y in zip(xs, ys):
        if x.shape[1:] != (28, 28) or len(x) != len(y) or (y.size and y.max() > 9):
            return None
    return (xs[0], ys[0]), (xs[1], ys[1])


@st.composite
def damaged_idx_sets(draw: st.DrawFn, idx: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
    """The four files (all .gz or all raw), one of them damaged."""
    gz = draw(st.booleans())
    stem = draw(st.sampled_from(sorted(STEMS)))
    files = {
        (s + ".gz" if gz else s): (gzip.compress(b, mtime=0) if gz else b) for s, b in idx.items()
    }
    name = stem + ".gz" if gz else stem
    raw = idx[stem]
    choices = ["bytes", "header"] + (["bomb"] if gz else [])
    how = draw(st.sampled_from(choices))
    if how == "bytes":
        what, files[name] = draw(byte_corruptions(files[name]))
    elif how == "header":
        what, damaged = draw(idx_corruptions(raw))
        files[name] = gzip.compress(damaged, mtime=0) if gz else damaged
    else:
        what, files[name] = draw(gzip_bombs(STEMS[stem]))
    return f"{name}: {what}", files


@pytest.mark.needs_data("mnist")
@STRUCTURED
@given(data=st.data())
def test_damaged_mnist_idx_files_are_refused_or_read_exactly(tmp_path, data):
    what, files = data.draw(damaged_idx_sets(mnist_idx()), label="corruption")
    folder = tmp_path / "mnist"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    legit = sum(len(b) for b in mnist_idx().values())
    outcome = bounded(lambda: mnist.load_data(folder, verify=False))
    assert outcome.peak_bytes < 8 * MiB + 4 * legit, (what, outcome.peak_bytes)
    assert _snapshot(folder) == dict(sorted(files.items())), "a dataset file changed"
    expected = _reference_load(files)
    result = "loaded as the reference reads it" if outcome.error is None else "refused"
    _tally("MNIST IDX", result, outcome.peak_bytes, outcome.seconds)
    if outcome.error is not None:
        assert isinstance(outcome.error, DatasetError), (what, repr(outcome.error))
        damaged = [n for n in files if n in str(outcome.error)]
        assert damaged, (what, str(outcome.error))
        # a refusal is never a false alarm on a file the reference reads as valid,
        # except the decompression bound (a valid file 100x smaller compressed)
        if expected is not None:
            assert "gzip bomb" in str(outcome.error) or "refusing" in str(outcome.error), (
                what,
                str(outcome.error),
            )
        return
    assert expected is not None, f"{what}: loaded, but the files are not a valid dataset"
    for got_split, want_split in zip(outcome.result, expected):
        for got, want in zip(got_split, want_split):
            np.testing.assert_array_equal(got, want, err_msg=what)


# -------------------------------------------------------------- .npz (mnist_mini)
@functools.cache
def mini_npz() -> tuple[bytes, dict[str, np.ndarray]]:
    resource = resources.files("beras.datasets").joinpath(mnist_mini.RESOURCE)
    raw = resource.read_bytes()
    with resources.as_file(resource) as path, np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return raw, arrays


def _check_npz_dataset(tmp_path: Path, arrays: dict[str, np.ndarray], what: str, data: bytes):
    path = tmp_path / "mnist.npz"
    path.write_bytes(data)
    outcome = bounded(lambda: mnist_mini.load_data(path))
    legit = sum(a.nbytes for a in arrays.values())
    assert outcome.peak_bytes < 8 * MiB + 4 * legit, (what, outcome.peak_bytes)
    assert path.read_bytes() == data
    assert os.listdir(tmp_path) == ["mnist.npz"]
    result = "loaded the original" if outcome.error is None else "refused"
    _tally(".npz dataset", result, outcome.peak_bytes, outcome.seconds)
    if outcome.error is None:
        (x, y), (xt, yt) = outcome.result
        for got, key in ((x, "x_train"), (y, "y_train"), (xt, "x_test"), (yt, "y_test")):
            assert got.dtype == np.uint8
            np.testing.assert_array_equal(got, arrays[key], err_msg=what)
        return "loaded the original"
    assert isinstance(outcome.error, DatasetError), (what, repr(outcome.error))
    assert str(path) in str(outcome.error), (what, str(outcome.error))
    return "refused"


@SETTINGS
@given(data=st.data())
def test_damaged_npz_dataset_bytes_are_refused_or_are_the_original(tmp_path, data):
    raw, arrays = mini_npz()
    what, damaged = data.draw(byte_corruptions(raw), label="corruption")
    _check_npz_dataset(tmp_path, arrays, what, damaged)


@STRUCTURED
@given(data=st.data())
def test_wrong_npz_dataset_content_is_refused_or_equivalent(tmp_path, data):
    """Wrong content is refused, unless it still holds the same digits (an extra member,
    a missing index array, labels stored as int32)."""
    _, arrays = mini_npz()
    what, damaged = data.draw(npz_corruptions(arrays), label="corruption")
    _check_npz_dataset(tmp_path, arrays, what, damaged)
