"""beras.datasets: real MNIST / Fashion-MNIST / mnist_mini, every error path on small
synthetic IDX files, the search order, and downloads from a local HTTP server.

Real MNIST comes from ``$BERAS_DATA/mnist`` (CI sets ``BERAS_DATA``), Fashion-MNIST
from Debian's ``/usr/share/datasets/fashion-mnist``. No test touches the internet:
every test runs with ``BERAS_DATASET_MIRRORS`` empty or pointing at 127.0.0.1, and
with ``BERAS_HOME`` and the system folder inside ``tmp_path``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from beras import datasets
from beras.datasets import (
    ChecksumError,
    DatasetError,
    DatasetNotFoundError,
    _fetch,
    fashion_mnist,
    mnist,
    mnist_mini,
)

# Captured at import, before the autouse fixture clears BERAS_DATA for each test.
REAL_DATA = os.environ.get("BERAS_DATA", "")
SYSTEM_DATASETS = Path("/usr/share/datasets")
FASHION_DIR = SYSTEM_DATASETS / "fashion-mnist"

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
STEMS = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


needs_real_mnist = pytest.mark.needs_data("mnist")


def _real_root() -> Path:
    """The ``BERAS_DATA`` entry holding mnist/ (tests that call it need real MNIST)."""
    return next(Path(p) for p in REAL_DATA.split(os.pathsep) if p and (Path(p) / "mnist").is_dir())


# --- synthetic IDX files ---


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one big-endian int32 per dimension, uint8 data."""
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


def synthetic(n_train: int = 6, n_test: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: (np.arange(n_train) % 10).astype(np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        TEST_LABELS: (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


def encode(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Raw IDX bytes of each file."""
    return {stem: idx_bytes(arr, 0x803 if arr.ndim == 3 else 0x801) for stem, arr in arrays.items()}


def write_set(folder: Path, n_train: int = 6, n_test: int = 4, *, gz: bool = True, seed=0):
    """Write the four synthetic IDX files into ``folder``; return their arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = synthetic(n_train, n_test, seed)
    for stem, data in encode(arrays).items():
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def hashes_of(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {s: hashlib.sha256(b).hexdigest() for s, b in encode(arrays).items()}


def assert_same(result, arrays) -> None:
    (x, y), (xt, yt) = result
    for got, stem in ((x, TRAIN_IMAGES), (y, TRAIN_LABELS), (xt, TEST_IMAGES), (yt, TEST_LABELS)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[stem])


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No BERAS_DATA, a private cache, a private system folder, downloads disabled."""
    monkeypatch.delenv("BERAS_DATA", raising=False)
    monkeypatch.setenv("BERAS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", "")
    monkeypatch.setattr(_fetch, "SYSTEM_DATA_DIRS", [tmp_path / "system"])
    return tmp_path


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "home" / "datasets" / "mnist"


@pytest.fixture
def synthetic_hashes(monkeypatch):
    """Make MNIST's checksum table that of ``synthetic()`` (seed 0, 6 + 4 digits)."""
    arrays = synthetic()
    monkeypatch.setattr(mnist, "SPEC", dataclasses.replace(mnist.SPEC, sha256=hashes_of(arrays)))
    return arrays


# --- real data ---


@pytest.fixture(scope="module")
def real_mnist(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BERAS_DATA", REAL_DATA)
        mp.setenv("BERAS_HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("BERAS_DATASET_MIRRORS", "")
        mp.setattr(_fetch, "SYSTEM_DATA_DIRS", [])
        return mnist.load_data()


@needs_real_mnist
def test_real_mnist_via_beras_data(real_mnist):
    (x, y), (xt, yt) = real_mnist
    assert (x.shape, y.shape, xt.shape, yt.shape) == (
        (60000, 28, 28),
        (60000,),
        (10000, 28, 28),
        (10000,),
    )
    assert {a.dtype for a in (x, y, xt, yt)} == {np.dtype(np.uint8)}
    assert np.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(yt, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert x.flags.writeable
    assert x.max() == 255
    assert x.min() == 0


@pytest.mark.needs_data("fashion-mnist")
def test_real_fashion_mnist_from_system_folder(monkeypatch):
    roots = [SYSTEM_DATASETS, *map(Path, filter(None, REAL_DATA.split(os.pathsep)))]
    root = next(r for r in roots if (r / "fashion-mnist").is_dir())
    monkeypatch.setattr(_fetch, "SYSTEM_DATA_DIRS", [root])
    (x, y), (xt, yt) = datasets.load("fashion_mnist")
    assert (x.shape, y.shape, xt.shape, yt.shape) == (
        (60000, 28, 28),
        (60000,),
        (10000, 28, 28),
        (10000,),
    )
    assert {a.dtype for a in (x, y, xt, yt)} == {np.dtype(np.uint8)}
    assert np.bincount(y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(yt, minlength=10).tolist() == [1000] * 10
    assert len(fashion_mnist.CLASS_NAMES) == 10


def test_mnist_mini_shapes_and_balance():
    (x, y), (xt, yt) = mnist_mini.load_data()
    assert (x.shape, y.shape, xt.shape, yt.shape) == (
        (2000, 28, 28),
        (2000,),
        (500, 28, 28),
        (500,),
    )
    assert {a.dtype for a in (x, y, xt, yt)} == {np.dtype(np.uint8)}
    assert np.bincount(y, minlength=10).tolist() == [200] * 10
    assert np.bincount(yt, minlength=10).tolist() == [50] * 10
    packaged = Path(mnist_mini.__file__).parent / mnist_mini.RESOURCE
    assert packaged.stat().st_size < 500_000


@needs_real_mnist
def test_mnist_mini_digits_are_real_mnist_rows(real_mnist):
    (x, y), (xt, yt) = real_mnist
    (mx, my), (mxt, myt) = mnist_mini.load_data()
    with np.load(Path(mnist_mini.__file__).parent / mnist_mini.RESOURCE) as npz:
        train_idx, test_idx = npz["train_indices"], npz["test_indices"]
    np.testing.assert_array_equal(mx, x[train_idx])
    np.testing.assert_array_equal(my, y[train_idx])
    np.testing.assert_array_equal(mxt, xt[test_idx])
    np.testing.assert_array_equal(myt, yt[test_idx])
    # Independently of the stored indices: every mini image is a full-set image
    # with the same label.
    full_train = {img.tobytes(): lab for img, lab in zip(x, y)}
    full_test = {img.tobytes(): lab for img, lab in zip(xt, yt)}
    assert all(full_train.get(img.tobytes()) == lab for img, lab in zip(mx, my))
    assert all(full_test.get(img.tobytes()) == lab for img, lab in zip(mxt, myt))


# --- load(name) ---


@pytest.mark.parametrize("name", ["mnist-mini", "mnist_mini", "MNIST_Mini"])
def test_load_by_name_mini(name):
    (x, _), (xt, _) = datasets.load(name)
    assert x.shape == (2000, 28, 28)
    assert xt.shape == (500, 28, 28)


def test_load_by_name_passes_path(tmp_path, synthetic_hashes):
    write_set(tmp_path / "mine")
    assert_same(datasets.load("mnist", path=tmp_path / "mine"), synthetic_hashes)


def test_load_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'") as info:
        datasets.load("cifar10")
    for name in ("mnist", "fashion-mnist", "mnist-mini"):
        assert name in str(info.value)


# --- loading synthetic files ---


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_synthetic_folder_loads(tmp_path, gz):
    arrays = write_set(tmp_path / "d", gz=gz)
    assert_same(mnist.load_data(tmp_path / "d", verify=False), arrays)


def test_local_files_are_checksummed(tmp_path):
    write_set(tmp_path / "d")
    with pytest.raises(ChecksumError) as info:
        mnist.load_data(tmp_path / "d")
    message = str(info.value)
    assert TRAIN_IMAGES in message
    assert "checksum mismatch" in message
    assert "verify=False" in message
    assert isinstance(info.value, DatasetError)
    assert isinstance(info.value, ValueError)


def test_local_files_pass_a_matching_checksum(tmp_path, synthetic_hashes):
    write_set(tmp_path / "d")
    assert_same(mnist.load_data(tmp_path / "d"), synthetic_hashes)


def test_explicit_parent_folder_uses_subfolder(tmp_path):
    arrays = write_set(tmp_path / "root" / "mnist")
    assert_same(mnist.load_data(str(tmp_path / "root"), verify=False), arrays)


def test_npz_file_and_npz_in_folder(tmp_path, monkeypatch):
    arrays = synthetic()
    npz = tmp_path / "d" / "mnist.npz"
    npz.parent.mkdir()
    np.savez_compressed(
        npz,
        x_train=arrays[TRAIN_IMAGES],
        y_train=arrays[TRAIN_LABELS],
        x_test=arrays[TEST_IMAGES],
        y_test=arrays[TEST_LABELS],
    )
    assert_same(mnist.load_data(npz), arrays)
    monkeypatch.setenv("BERAS_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    npz.parent.rename(tmp_path / "data" / "mnist")
    assert_same(mnist.load_data(), arrays)


# --- error paths ---


def test_missing_everywhere_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("BERAS_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for place in (tmp_path / "nowhere" / "mnist", tmp_path / "home" / "datasets" / "mnist"):
        assert str(place) in message
    assert str(tmp_path / "system" / "mnist") in message
    for words in ("Looked in", "BERAS_DATA", "does not exist", "disabled", "mnist_mini"):
        assert words in message
    assert not (tmp_path / "home").exists()


def test_missing_fashion_mentions_debian_package():
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load_data()


def test_missing_with_unreachable_mirror_says_why(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/mnist/"
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", url)
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert url + TRAIN_IMAGES + ".gz" in message
    assert "refused" in message.lower()
    assert not (tmp_path / "home" / "datasets" / "mnist").exists()


def test_explicit_missing_path(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nothing else is searched") as info:
        mnist.load_data(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value)


def test_explicit_path_to_a_non_npz_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match=r"notes\.txt"):
        mnist.load_data(tmp_path / "notes.txt")


def test_incomplete_folder_is_reported(tmp_path, monkeypatch):
    write_set(tmp_path / "data" / "mnist")
    (tmp_path / "data" / "mnist" / (TEST_LABELS + ".gz")).unlink()
    monkeypatch.setenv("BERAS_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError, match=f"incomplete: missing {TEST_LABELS}"):
        mnist.load_data()


@pytest.mark.parametrize(
    "mangle",
    [lambda gz: b"this is not gzip at all", lambda gz: gz[: len(gz) // 2]],
    ids=["garbage", "truncated-gzip"],
)
def test_corrupt_gzip(tmp_path, mangle):
    write_set(tmp_path / "d")
    bad = tmp_path / "d" / (TRAIN_LABELS + ".gz")
    bad.write_bytes(mangle(bad.read_bytes()))
    with pytest.raises(DatasetError, match="not a valid gzip file") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize(
    ("cut", "words"),
    [(-5, "truncated"), (8, "truncated"), (2, "too short for an IDX header")],
)
def test_truncated_idx(tmp_path, cut, words):
    write_set(tmp_path / "d", gz=False)
    bad = tmp_path / "d" / TEST_IMAGES
    data = bad.read_bytes()
    bad.write_bytes(data[:cut])
    with pytest.raises(DatasetError, match=words) as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert TEST_IMAGES in str(info.value)


def test_trailing_bytes(tmp_path):
    write_set(tmp_path / "d")
    bad = tmp_path / "d" / (TEST_LABELS + ".gz")
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes()) + b"\0\0\0"))
    with pytest.raises(DatasetError, match="3 unexpected trailing bytes") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert TEST_LABELS in str(info.value)


def test_wrong_magic(tmp_path):
    write_set(tmp_path / "d", gz=False)
    bad = tmp_path / "d" / TRAIN_IMAGES
    bad.write_bytes(b"\x00\x00\x09\x03" + bad.read_bytes()[4:])
    with pytest.raises(DatasetError, match="wrong magic number 0x00000903") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert TRAIN_IMAGES in str(info.value)


def test_swapped_files_are_named(tmp_path):
    write_set(tmp_path / "d", gz=False)
    images, labels = tmp_path / "d" / TEST_IMAGES, tmp_path / "d" / TEST_LABELS
    a, b = images.read_bytes(), labels.read_bytes()
    images.write_bytes(b)
    labels.write_bytes(a)
    with pytest.raises(DatasetError, match="swapped") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert TEST_IMAGES in str(info.value)


def test_gzip_data_under_a_raw_name(tmp_path):
    write_set(tmp_path / "d")
    gz = tmp_path / "d" / (TRAIN_LABELS + ".gz")
    gz.rename(tmp_path / "d" / TRAIN_LABELS)
    with pytest.raises(DatasetError, match="gzip-compressed"):
        mnist.load_data(tmp_path / "d", verify=False)


def test_image_label_count_mismatch(tmp_path):
    write_set(tmp_path / "d")
    labels = np.arange(5, dtype=np.uint8)
    (tmp_path / "d" / (TRAIN_LABELS + ".gz")).write_bytes(gzip.compress(idx_bytes(labels, 0x801)))
    with pytest.raises(DatasetError, match="count mismatch") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    message = str(info.value)
    assert TRAIN_IMAGES in message
    assert TRAIN_LABELS in message
    assert "6 images" in message
    assert "5 labels" in message


def test_labels_out_of_range(tmp_path):
    write_set(tmp_path / "d")
    labels = np.array([0, 1, 2, 10], dtype=np.uint8)
    (tmp_path / "d" / (TEST_LABELS + ".gz")).write_bytes(gzip.compress(idx_bytes(labels, 0x801)))
    with pytest.raises(DatasetError, match="out of range") as info:
        mnist.load_data(tmp_path / "d", verify=False)
    assert TEST_LABELS in str(info.value)


def test_wrong_image_size(tmp_path):
    write_set(tmp_path / "d")
    images = np.zeros((6, 27, 28), dtype=np.uint8)
    (tmp_path / "d" / (TRAIN_IMAGES + ".gz")).write_bytes(gzip.compress(idx_bytes(images, 0x803)))
    with pytest.raises(DatasetError, match=r"shape \(6, 27, 28\)"):
        mnist.load_data(tmp_path / "d", verify=False)


def test_npz_missing_keys(tmp_path):
    npz = tmp_path / "mnist.npz"
    np.savez(npz, x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match="missing key") as info:
        mnist.load_data(npz)
    message = str(info.value)
    assert str(npz) in message
    assert "x_test" in message
    assert "y_test" in message


def test_npz_not_an_archive(tmp_path):
    npz = tmp_path / "mnist.npz"
    npz.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DatasetError, match=r"mnist\.npz"):
        mnist.load_data(npz)


def test_npz_float_images_rejected(tmp_path):
    npz = tmp_path / "mnist.npz"
    x = np.zeros((2, 28, 28), np.float32)
    y = np.zeros(2, np.uint8)
    np.savez(npz, x_train=x, y_train=y, x_test=x, y_test=y)
    with pytest.raises(DatasetError, match=r"x_train\]: dtype float32"):
        mnist.load_data(npz)


# --- search order ---


def test_search_order(tmp_path, monkeypatch):
    """path= beats BERAS_DATA beats the cache beats the system folder."""
    explicit = tmp_path / "explicit"
    places = {
        "explicit": write_set(explicit, 1, 1, seed=1),
        "data": write_set(tmp_path / "data" / "mnist", 2, 1, seed=2),
        "cache": write_set(tmp_path / "home" / "datasets" / "mnist", 3, 1, seed=3),
        "system": write_set(tmp_path / "system" / "mnist", 4, 1, seed=4),
    }
    monkeypatch.setenv("BERAS_DATA", str(tmp_path / "data"))
    assert_same(mnist.load_data(explicit, verify=False), places["explicit"])
    assert_same(mnist.load_data(verify=False), places["data"])
    monkeypatch.delenv("BERAS_DATA")
    assert_same(mnist.load_data(verify=False), places["cache"])
    monkeypatch.setenv("BERAS_HOME", str(tmp_path / "empty-home"))
    assert_same(mnist.load_data(verify=False), places["system"])


def test_beras_data_may_list_several_folders(tmp_path, monkeypatch):
    arrays = write_set(tmp_path / "second" / "mnist")
    monkeypatch.setenv(
        "BERAS_DATA", os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second")])
    )
    assert_same(mnist.load_data(verify=False), arrays)


def test_cache_dir_default_and_beras_home(monkeypatch, tmp_path):
    assert datasets.cache_dir() == tmp_path / "home" / "datasets"
    monkeypatch.delenv("BERAS_HOME")
    assert datasets.cache_dir() == Path.home() / ".beras" / "datasets"


def test_mirror_list_override(monkeypatch):
    monkeypatch.delenv("BERAS_DATASET_MIRRORS")
    assert _fetch.mirrors_for(mnist.SPEC) == list(mnist.SPEC.mirrors)
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", "http://a/{dataset}, http://b/x/")
    assert _fetch.mirrors_for(fashion_mnist.SPEC) == ["http://a/fashion-mnist/", "http://b/x/"]


# --- downloads from a local HTTP server ---


class Server:
    """A tiny HTTP server on 127.0.0.1: ``routes`` maps URL paths to bodies."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.truncated: set[str] = set()
        self.requests: list[str] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.requests.append(self.path)
                body = state.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in state.truncated:  # promise everything, send half
                    body = body[: len(body) // 2]
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def serve(self, prefix: str, files: dict[str, bytes]) -> str:
        """Serve ``files`` (name -> body) under ``prefix``; return that base URL."""
        for name, body in files.items():
            self.routes[f"{prefix}{name}"] = body
        return self.url + prefix


@pytest.fixture
def server():
    srv = Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    srv.thread.join(timeout=5)


def gz_files(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {s + ".gz": gzip.compress(b, mtime=0) for s, b in encode(arrays).items()}


@needs_real_mnist
def test_download_real_mnist_populates_the_cache(server, monkeypatch, cache):
    real = {p.name: p.read_bytes() for p in (_real_root() / "mnist").glob("*.gz")}
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/mnist/", real))
    (x, y), (xt, yt) = mnist.load_data()
    assert x.shape == (60000, 28, 28)
    assert xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(yt).tolist() == MNIST_TEST_COUNTS
    assert leftovers(cache) == sorted(s + ".gz" for s in STEMS)
    assert len(server.requests) == 4
    server.routes.clear()  # the second load must come from the cache
    (x2, _), _ = mnist.load_data()
    assert len(server.requests) == 4
    np.testing.assert_array_equal(x, x2)


def test_download_verifies_hash_and_populates_cache(server, monkeypatch, cache, synthetic_hashes):
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", gz_files(synthetic_hashes)))
    assert_same(mnist.load_data(), synthetic_hashes)
    assert leftovers(cache) == sorted(s + ".gz" for s in STEMS)
    assert sorted(server.requests) == sorted(f"/m/{s}.gz" for s in STEMS)


def test_download_bad_bytes_is_a_checksum_error(server, monkeypatch, cache, synthetic_hashes):
    other = gz_files(synthetic(seed=99))  # valid IDX, wrong content
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", other))
    with pytest.raises(ChecksumError) as info:
        mnist.load_data()
    message = str(info.value)
    assert "checksum mismatch" in message
    assert TRAIN_IMAGES + ".gz" in message
    assert server.url + "/m/" in message
    assert not (cache / (TRAIN_IMAGES + ".gz")).exists()
    assert leftovers(cache) == []


def test_download_not_gzip_is_rejected(server, monkeypatch, cache, synthetic_hashes):
    files = {s + ".gz": b"<html>a captive portal</html>" for s in STEMS}
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", files))
    with pytest.raises(DatasetError, match="not a valid gzip file"):
        mnist.load_data()
    assert leftovers(cache) == []


def test_first_mirror_404_then_second_mirror(server, monkeypatch, cache, synthetic_hashes):
    first = server.url + "/empty/"
    second = server.serve("/good/", gz_files(synthetic_hashes))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", f"{first} {second}")
    with pytest.warns(RuntimeWarning, match="HTTP 404"):
        assert_same(mnist.load_data(), synthetic_hashes)
    for stem in STEMS:
        assert server.requests.index(f"/empty/{stem}.gz") < server.requests.index(
            f"/good/{stem}.gz"
        )
    assert leftovers(cache) == sorted(s + ".gz" for s in STEMS)


def test_corrupt_first_mirror_then_good_second(server, monkeypatch, synthetic_hashes):
    bad = server.serve("/bad/", gz_files(synthetic(seed=5)))
    good = server.serve("/good/", gz_files(synthetic_hashes))
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", f"{bad},{good}")
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        assert_same(mnist.load_data(), synthetic_hashes)


def test_all_mirrors_404(server, monkeypatch, cache, synthetic_hashes):
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", f"{server.url}/a/ {server.url}/b/")
    with pytest.raises(DatasetNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert f"{server.url}/a/{TRAIN_IMAGES}.gz: HTTP 404" in message
    assert f"{server.url}/b/{TRAIN_IMAGES}.gz: HTTP 404" in message
    assert not cache.exists()


def test_only_missing_files_are_downloaded(server, monkeypatch, cache, synthetic_hashes):
    write_set(cache)
    for stem in (TRAIN_IMAGES, TEST_LABELS):
        (cache / (stem + ".gz")).unlink()
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", gz_files(synthetic_hashes)))
    assert_same(mnist.load_data(), synthetic_hashes)
    assert sorted(server.requests) == sorted([f"/m/{TRAIN_IMAGES}.gz", f"/m/{TEST_LABELS}.gz"])


def test_failed_replace_leaves_no_file(server, monkeypatch, cache, synthetic_hashes):
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", gz_files(synthetic_hashes)))

    def broken_replace(src, dst):
        raise OSError("simulated crash during rename")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(DatasetNotFoundError, match="simulated crash during rename"):
        mnist.load_data()
    assert leftovers(cache) == []


def test_truncated_transfer_leaves_no_file(server, monkeypatch, cache, synthetic_hashes):
    base = server.serve("/m/", gz_files(synthetic_hashes))
    server.truncated.add(f"/m/{TRAIN_IMAGES}.gz")
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", base)
    with pytest.raises(DatasetNotFoundError, match="incomplete download: got"):
        mnist.load_data()
    assert leftovers(cache) == []


def test_interrupt_mid_write_leaves_no_file(server, monkeypatch, tmp_path, synthetic_hashes):
    big = {TRAIN_IMAGES + ".gz": os.urandom(300_000)}  # several 64 KiB chunks
    monkeypatch.setenv("BERAS_DATASET_MIRRORS", server.serve("/m/", big))
    written = []

    def progress(total, desc):
        def update(n):
            written.append(n)
            if len(written) == 2:
                raise KeyboardInterrupt

        return update, lambda: None

    monkeypatch.setattr(_fetch, "_progress", progress)
    folder = tmp_path / "dl"
    folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        _fetch.download_file(server.url + f"/m/{TRAIN_IMAGES}.gz", folder / "x.gz", None)
    assert len(written) == 2
    assert leftovers(folder) == []
