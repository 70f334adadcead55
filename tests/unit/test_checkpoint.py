"""Durable checkpoints: atomic save_weights, fully checked load_weights, exact round trips."""

from __future__ import annotations

import os

import numpy as np
import pytest

from beras import checkpoint, config
from beras.activations import LeakyReLU, Softmax
from beras.layers import Dense
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import Adam


def _model(hidden=5, seed=0, extra_layer=False):
    layers = [
        Dense(4, hidden, initializer="xavier", seed=seed),
        LeakyReLU(),
        Dense(hidden, 3, seed=seed + 1),
    ]
    if extra_layer:
        layers += [Dense(3, 3, seed=seed + 2)]
    model = SequentialModel([*layers, Softmax()])
    model.compile(Adam(0.01), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def _x():
    return np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)


def _snapshot(model):
    return [np.array(w, copy=True) for w in model.weights]


def _assert_unchanged(model, snapshot):
    for w, before in zip(model.weights, snapshot):
        np.testing.assert_array_equal(w, before)


def test_round_trip_reproduces_predictions_exactly(tmp_path):
    source = _model(seed=0)
    x = _x()
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    source.fit(x, y, epochs=2, batch_size=3, verbose=0, seed=0)
    path = tmp_path / "weights.npz"
    source.save_weights(path)

    target = _model(seed=10)
    assert not np.array_equal(target.predict(x), source.predict(x))
    ids = [id(w) for w in target.weights]
    target.load_weights(path)
    assert [id(w) for w in target.weights] == ids  # loaded in place
    np.testing.assert_array_equal(target.predict(x), source.predict(x))
    for a, b in zip(target.weights, source.weights):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_saved_file_names_every_weight(tmp_path):
    model = _model()
    path = tmp_path / "w.npz"
    model.save_weights(str(path))
    with np.load(path) as data:
        assert sorted(data.files) == sorted(model.weight_names())
    assert model.weight_names() == [
        "layers.0.Dense.w",
        "layers.0.Dense.b",
        "layers.2.Dense.w",
        "layers.2.Dense.b",
    ]


def test_save_is_temp_file_fsync_then_rename_in_the_same_folder(tmp_path, monkeypatch):
    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", fd))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint.os, "replace", replace)
    path = tmp_path / "w.npz"
    _model().save_weights(path)
    kinds = [e[0] for e in events]
    assert "replace" in kinds
    assert "fsync" in kinds[: kinds.index("replace")]  # the data is on disk before the rename
    _, src, dst = events[kinds.index("replace")]
    assert os.path.dirname(os.path.abspath(src)) == str(tmp_path)
    assert os.path.abspath(dst) == str(path)
    assert os.listdir(tmp_path) == ["w.npz"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, error):
    path = tmp_path / "w.npz"
    old_model = _model(seed=0)
    old_model.save_weights(path)
    old_bytes = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise error

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    with pytest.raises(type(error)):
        _model(seed=5).save_weights(path)
    monkeypatch.undo()

    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["w.npz"]
    fresh = _model(seed=7)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(_x()), old_model.predict(_x()))


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(
    ("umask", "mode"),
    [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)],
    ids=["umask022", "umask027", "umask077"],
)
def test_save_gives_the_file_the_umask_mode(tmp_path, umask, mode):
    """As ``open`` would: a temporary file's private 0o600 must not survive the rename."""
    path = tmp_path / "w.npz"
    previous = os.umask(umask)
    try:
        _model().save_weights(path)
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == mode


def test_save_creates_missing_folders(tmp_path):
    path = tmp_path / "a" / "b" / "w.npz"
    _model().save_weights(path)
    assert path.exists()


def _assert_load_fails_cleanly(model, path, *keywords):
    before = _snapshot(model)
    with pytest.raises(
        ValueError,
        match=r"SequentialModel.load_weights: .* does not match this model \(nothing was loaded\)",
    ) as err:
        model.load_weights(path)
    for word in keywords:
        assert word in str(err.value)
    _assert_unchanged(model, before)


def test_load_with_different_names_changes_nothing(tmp_path):
    path = tmp_path / "w.npz"
    _model(extra_layer=True).save_weights(path)
    _assert_load_fails_cleanly(_model(), path, "unexpected weights", "layers.3.Dense.w")


def test_load_with_missing_names_changes_nothing(tmp_path):
    path = tmp_path / "w.npz"
    _model().save_weights(path)
    _assert_load_fails_cleanly(
        _model(extra_layer=True), path, "missing weights", "layers.3.Dense.w"
    )


def test_load_with_a_different_shape_changes_nothing(tmp_path):
    path = tmp_path / "w.npz"
    _model(hidden=6).save_weights(path)
    _assert_load_fails_cleanly(
        _model(hidden=5), path, "layers.0.Dense.w: expected shape (4, 5), file has (4, 6)"
    )


def test_load_with_one_bad_array_among_good_ones_changes_nothing(tmp_path):
    path = tmp_path / "w.npz"
    model = _model(seed=3)
    arrays = {name: np.array(w) + 1.0 for name, w in zip(model.weight_names(), model.weights)}
    arrays["layers.2.Dense.b"] = np.zeros((1, 4), dtype=np.float32)
    np.savez(path, **arrays)
    _assert_load_fails_cleanly(
        model, path, "layers.2.Dense.b: expected shape (1, 3), file has (1, 4)"
    )


def test_load_with_a_different_dtype_changes_nothing(tmp_path):
    path = tmp_path / "w.npz"
    previous = config.floatx()
    config.set_floatx("float64")
    try:
        _model().save_weights(path)
    finally:
        config.set_floatx(previous)
    _assert_load_fails_cleanly(_model(), path, "expected dtype float32, file has float64")


def test_load_of_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SequentialModel\.load_weights: no such file"):
        _model().load_weights(tmp_path / "nope.npz")


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_load_of_a_corrupt_file_changes_nothing(tmp_path, kind):
    path = tmp_path / "w.npz"
    if kind == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        _model(seed=4).save_weights(path)
        path.write_bytes(path.read_bytes()[:300])
    model = _model()
    before = _snapshot(model)
    with pytest.raises(
        ValueError, match=r"SequentialModel.load_weights: .* is not a readable .npz weights file"
    ):
        model.load_weights(path)
    _assert_unchanged(model, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_refuses_non_finite_weights_and_changes_nothing(tmp_path, bad):
    """A file holding NaN or +-inf is refused, the message names the weight, nothing loads."""
    model = _model(seed=3)
    arrays = {name: np.array(w) + 1.0 for name, w in zip(model.weight_names(), model.weights)}
    arrays["layers.2.Dense.w"][1, 2] = bad
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    before = _snapshot(model)
    with pytest.raises(checkpoint.WeightsFileError, match="non-finite") as err:
        model.load_weights(path)
    assert "layers.2.Dense.w: 1 " in str(err.value)
    assert "layers.0.Dense.w" not in str(err.value)
    assert isinstance(err.value, ValueError)
    _assert_unchanged(model, before)


def test_load_refuses_pickled_objects(tmp_path):
    model = _model()
    arrays = {name: np.array(w) for name, w in zip(model.weight_names(), model.weights)}
    arrays["layers.0.Dense.b"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    before = _snapshot(model)
    with pytest.raises(
        checkpoint.WeightsFileError, match=r"layers\.0\.Dense\.b\.npy\]: holds Python objects"
    ):
        model.load_weights(path)
    _assert_unchanged(model, before)
