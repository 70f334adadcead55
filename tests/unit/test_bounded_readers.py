"""Bounded readers: every size a file declares is checked before memory is spent on it.

``beras.npzfile.read_npz`` (weights and ``.npz`` datasets), ``_idx.gunzip`` (IDX gzip)
and the download size limit. Each hostile file is refused with the library's error
naming the file; none gets to allocate what it declares.
"""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from beras.datasets import DatasetError, _idx, mnist
from beras.fileio import BadFileError
from beras.npzfile import read_npz


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=True)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_round_trip_of_every_numeric_dtype_and_order(tmp_path):
    arrays = {
        "f": np.arange(6, dtype=np.float32).reshape(2, 3),
        "F": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "b": np.array([True, False]),
        "i": np.array([-1, 2], dtype=">i8"),
        "c": np.array([1 + 2j]),
        "empty": np.zeros((0, 4)),
        "scalar": np.array(3.5),
    }
    loaded = read_npz(_npz(tmp_path / "a.npz", **arrays))
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].flags.writeable


def test_compressed_archives_are_read(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, z=np.zeros((100, 100)))
    np.testing.assert_array_equal(read_npz(path)["z"], np.zeros((100, 100)))


def test_pickles_are_refused_not_unpickled(tmp_path):
    path = _zip(tmp_path / "p.npz", {"obj.npy": _npy(np.array([{"a": 1}], dtype=object))})
    with pytest.raises(BadFileError, match=r"p\.npz\[obj\.npy\]: holds Python objects"):
        read_npz(path)


@pytest.mark.parametrize(
    "array", [np.array(["text"]), np.zeros(2, dtype=[("a", "f4")]), np.array(["2020"], "M8[D]")]
)
def test_non_numeric_dtypes_are_refused(tmp_path, array):
    path = _zip(tmp_path / "s.npz", {"s.npy": _npy(array)})
    with pytest.raises(BadFileError, match="is not numeric"):
        read_npz(path)


def _huge_header(shape: tuple[int, ...]) -> bytes:
    """A valid .npy header declaring ``shape`` of float64, followed by 16 data bytes."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + bytes(16)


def test_a_header_declaring_a_huge_shape_allocates_nothing(tmp_path):
    """1e12 float64 values declared in a 150-byte member: refused before any allocation."""
    path = _zip(tmp_path / "h.npz", {"w.npy": _huge_header((10**6, 10**6))})
    tracemalloc.start()
    try:
        with pytest.raises(BadFileError, match=r"declares shape \(1000000, 1000000\)"):
            read_npz(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_too_many_members(tmp_path):
    path = _npz(tmp_path / "m.npz", **{f"a{i}": np.zeros(1) for i in range(5)})
    with pytest.raises(BadFileError, match="5 arrays, more than the limit of 4"):
        read_npz(path, max_members=4)
    assert len(read_npz(path, max_members=5)) == 5


def test_total_size_limit_is_checked_before_reading(tmp_path):
    path = _npz(tmp_path / "t.npz", a=np.zeros(100), b=np.zeros(100))
    with pytest.raises(BadFileError, match="declare 1600 bytes, more than the limit of 1000"):
        read_npz(path, max_bytes=1000)


def test_check_sees_headers_before_any_data_is_read(tmp_path, monkeypatch):
    path = _npz(tmp_path / "c.npz", w=np.zeros((3, 4), np.float32))
    seen = {}

    def check(members):  # type: ignore[no-untyped-def]
        seen.update(members)
        raise BadFileError("refused by the caller")

    with pytest.raises(BadFileError, match="refused by the caller"):
        read_npz(path, check=check)
    assert seen["w"].shape == (3, 4)
    assert seen["w"].dtype == np.float32
    assert seen["w"].nbytes == 48


def test_a_lying_deflate_ratio_is_refused(tmp_path):
    """A central directory claiming 10 GB from a few bytes is not believed."""
    path = _zip(tmp_path / "d.npz", {"w.npy": _npy(np.zeros(10))}, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    cd = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, cd + 24, 10**10 & 0xFFFFFFFF)  # uncompressed size
    path.write_bytes(bytes(data))
    with pytest.raises(BadFileError, match=r"d\.npz"):
        read_npz(path)


def test_a_flipped_data_byte_fails_the_crc(tmp_path):
    path = _npz(tmp_path / "f.npz", w=np.arange(50, dtype=np.float64))
    data = bytearray(path.read_bytes())
    data[data.index(b"\x93NUMPY") + 200] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(BadFileError, match=r"(?i)crc"):
        read_npz(path)


# --- gzip ---


def _images_header(n: int) -> bytes:
    return struct.pack(">IIII", 0x803, n, 28, 28)


def test_gunzip_equals_gzip_for_several_members_and_zero_padding():
    raw = gzip.compress(b"abc") + gzip.compress(b"def") + bytes(7)
    assert _idx.gunzip(raw, "x") == b"abcdef"


def test_gzip_garbage_after_the_stream_is_an_error():
    with pytest.raises(DatasetError, match="garbage after the gzip data"):
        _idx.gunzip(gzip.compress(b"abc") + b"junk", "x")


def test_gzip_bomb_with_an_honest_header_is_refused_early():
    """A header announcing 60,000 images, in 60 KB of gzip: more than 100x, refused."""
    bomb = gzip.compress(_images_header(60_000) + bytes(60_000 * 784))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="announces 47,040,016 bytes, more than"):
            _idx.gunzip(bomb, "bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(bomb) < 100_000
    assert peak < 4 << 20


def test_gzip_bomb_with_a_small_header_stops_after_the_announced_size():
    """The header says 1 image; 50 MB of zeros follow: decompression stops near 800 bytes."""
    bomb = gzip.compress(_images_header(1) + bytes(50_000_000))
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="unexpected trailing bytes after the 800 bytes"):
            _idx.gunzip(bomb, "bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_gzip_bomb_without_an_idx_header_stops_at_the_header():
    """50 MB of zeros: no IDX magic, so decompression stops once that is seen."""
    bomb = gzip.compress(bytes(50_000_000))
    tracemalloc.start()
    try:
        head = _idx.gunzip(bomb, "bomb.gz")
        with pytest.raises(DatasetError, match="wrong magic number 0x00000000"):
            _idx.parse_images(head, "bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(head) <= 2 << 20
    assert peak < 4 << 20


def test_gzip_stops_at_the_announced_size_or_the_callers_limit():
    empty = gzip.compress(b"\0\0\x08\x01" + bytes(4) + bytes(10_000_000))  # 0 labels
    with pytest.raises(DatasetError, match="unexpected trailing bytes after the 8 bytes"):
        _idx.gunzip(empty, "empty.gz")
    big = gzip.compress(b"\0\0\x08\x01\0\x98\x96\x80" + bytes(10**7))  # 10^7 labels
    assert len(_idx.gunzip(big, "big.gz", limit=20_000_000)) == 10**7 + 8
    with pytest.raises(DatasetError, match="announces 10,000,008 bytes, more than 1,000"):
        _idx.gunzip(big, "big.gz", limit=1000)


def test_oversized_raw_idx_is_not_read(tmp_path, monkeypatch):
    path = tmp_path / "big"
    path.write_bytes(_images_header(1) + bytes(784))
    monkeypatch.setattr(_idx, "MAX_IDX_BYTES", 500)
    with pytest.raises(DatasetError, match="larger than the 500 an IDX"):
        _idx.read_idx_bytes(path)


# --- .npz datasets ---


def test_npz_dataset_with_a_huge_declared_shape_is_refused_before_reading(tmp_path):
    header = {"descr": "|u1", "fortran_order": False, "shape": (10**9, 28, 28)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    y = _npy(np.zeros(2, np.uint8))
    x = _npy(np.zeros((2, 28, 28), np.uint8))
    path = _zip(
        tmp_path / "mnist.npz",
        {"x_train.npy": buf.getvalue() + bytes(10), "y_train.npy": y, "x_test.npy": x},
    )
    with pytest.raises(DatasetError, match=r"mnist\.npz\[x_train\.npy\]: its header declares"):
        mnist.load_data(path)


def test_npz_dataset_with_a_pickle_is_refused(tmp_path):
    x = np.zeros((2, 28, 28), np.uint8)
    y = np.zeros(2, np.uint8)
    path = _zip(
        tmp_path / "mnist.npz",
        {
            "x_train.npy": _npy(x),
            "y_train.npy": _npy(np.array([1, 2], dtype=object)),
            "x_test.npy": _npy(x),
            "y_test.npy": _npy(y),
        },
    )
    with pytest.raises(DatasetError, match=r"y_train\.npy\]: holds Python objects"):
        mnist.load_data(path)


# --- downloads ---


class _Response(io.BytesIO):
    def __init__(self, body: bytes, length: str | None) -> None:
        super().__init__(body)
        self.headers = {"Content-Length": length} if length is not None else {}


@pytest.mark.parametrize("announced", [True, False], ids=["announced", "unannounced"])
def test_an_oversized_download_is_stopped_and_leaves_no_file(tmp_path, monkeypatch, announced):
    from beras.datasets import _fetch

    body = bytes(5000)
    monkeypatch.setattr(_fetch, "MAX_DOWNLOAD_BYTES", 1000)
    read = []

    def urlopen(request, timeout):  # type: ignore[no-untyped-def]
        response = _Response(body, str(len(body)) if announced else None)
        real_read = response.read
        response.read = lambda n=-1: read.append(n) or real_read(n)  # type: ignore[method-assign]
        return response

    monkeypatch.setattr(_fetch.urllib.request, "urlopen", urlopen)
    dest = tmp_path / "f.gz"
    with pytest.raises(DatasetError, match="more than"):
        _fetch.download_file("http://example.invalid/f.gz", dest, None)
    assert list(tmp_path.iterdir()) == []
    assert len(read) <= 1  # stopped at once, not read to the end


def test_only_the_requested_arrays_are_read(tmp_path):
    """An unused member declaring 50 MB (a deflate bomb) is checked, never inflated."""
    path = _zip(
        tmp_path / "k.npz",
        {"a.npy": _npy(np.arange(3)), "bomb.npy": _npy(np.zeros(50_000_000, np.uint8))},
        zipfile.ZIP_DEFLATED,
    )
    tracemalloc.start()
    try:
        loaded = read_npz(path, keys=["a"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(loaded) == ["a"]
    assert peak < 1 << 20


def test_text_arrays_are_read_only_when_allowed(tmp_path):
    path = _npz(tmp_path / "t.npz", name=np.array("PCG64"), n=np.arange(2))
    with pytest.raises(BadFileError, match="is not numeric"):
        read_npz(path)
    assert read_npz(path, allow_text=True)["name"] == "PCG64"
    pickled = _zip(tmp_path / "p.npz", {"o.npy": _npy(np.array(["a", 1], dtype=object))})
    with pytest.raises(BadFileError, match="holds Python objects"):
        read_npz(pickled, allow_text=True)


def test_a_training_state_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    from beras import runstate

    path = _zip(
        tmp_path / "training_state.npz",
        {"format.npy": _npy(np.array(runstate.FORMAT)), "epoch.npy": _huge_header((2**40,))},
    )
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="not a readable Beras training state"):
            runstate.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_a_header_numpy_cannot_tokenize_is_a_bad_file(tmp_path):
    """Found by the corruption suite: a header cut inside a bracket makes numpy's parser
    raise tokenize.TokenError, which must still end as the library's error."""
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,"
    header = text + b" " * (63 - len(text)) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(24)
    path = _zip(tmp_path / "t.npz", {"w.npy": member})
    with pytest.raises(BadFileError, match=r"t\.npz\[w\.npy\]: not a valid \.npy header"):
        read_npz(path)
