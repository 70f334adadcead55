"""Atomic writes (``beras.fileio``): the one implementation behind weights, JSON, .npy
and PNG files."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from beras import fileio


def _fsync_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Record fsyncs (of a file or a folder) and renames, in order."""
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(("fsync", kind))
        real_fsync(fd)

    def replace(src: str, dst: os.PathLike[str]) -> None:
        events.append(("replace", os.fspath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_data_then_rename_then_folder_are_synced(tmp_path, monkeypatch):
    events = _fsync_log(monkeypatch)
    path = tmp_path / "metrics.json"
    fileio.write_json(path, {"a": 1})
    assert events == [("fsync", "file"), ("replace", str(path)), ("fsync", "folder")]
    assert os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temp(tmp_path, error):
    path = tmp_path / "data.bin"
    fileio.atomic_write(path, b"old")

    def half_then_fail(f):  # type: ignore[no-untyped-def]
        f.write(b"half of the new")
        raise error

    with pytest.raises(type(error)):
        fileio.atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_save_npy_refuses_pickles_and_leaves_nothing(tmp_path):
    path = tmp_path / "p.npy"
    with pytest.raises(ValueError):
        fileio.save_npy(path, np.array([{"a": 1}], dtype=object))
    assert os.listdir(tmp_path) == []
    fileio.save_npy(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    loaded = np.load(path)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, np.arange(6).reshape(2, 3))


def test_write_json_is_strict_json(tmp_path):
    path = tmp_path / "sub" / "h.json"  # missing folders are created
    fileio.write_json(path, {"loss": [np.float32(0.5), float("nan")], 3: np.int64(7)})
    assert json.loads(path.read_text()) == {"loss": [0.5, None], "3": 7}


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("writer", ["write_json", "save_npy"])
def test_files_get_the_umask_mode(tmp_path, writer):
    previous = os.umask(0o027)
    try:
        getattr(fileio, writer)(tmp_path / "f", [1.0])
    finally:
        os.umask(previous)
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o640


@pytest.mark.parametrize("code", ["ENOSPC", "EIO"])
@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_storage_errors_raise_write_error_keep_the_old_file_and_leave_no_temp(
    tmp_path, monkeypatch, code, where
):
    """Disk full or an I/O error at any step: WriteError naming the file, old file intact."""
    import errno

    path = tmp_path / "w.bin"
    fileio.atomic_write(path, b"old")
    err = OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise err

    if where == "write":
        content = lambda f: (f.write(b"half"), fail())  # noqa: E731
    else:
        content = b"new"
        monkeypatch.setattr(os, where, fail)
    with pytest.raises(fileio.WriteError) as raised:
        fileio.atomic_write(path, content)
    monkeypatch.undo()
    assert str(path) in str(raised.value)
    assert raised.value.errno == getattr(errno, code)
    assert code in str(raised.value)
    assert isinstance(raised.value, OSError)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["w.bin"]


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_dead_writers_temp_is_removed_and_a_live_one_is_kept(tmp_path):
    """Only temporaries nobody holds a lock on are orphans; the next write removes them."""
    import fcntl

    stale = tmp_path / ".w.bin.0123abcd.tmp"
    stale.write_bytes(b"half of a killed write")
    live = tmp_path / ".w.bin.fedc4321.tmp"
    live.write_bytes(b"being written")
    other = tmp_path / ".other.bin.00000000.tmp"  # another target's: left to its own writer
    other.write_bytes(b"x")
    unrelated = tmp_path / ".w.bin.notatemp.tmp"
    unrelated.write_bytes(b"x")
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        fileio.atomic_write(tmp_path / "w.bin", b"new")
        assert sorted(os.listdir(tmp_path)) == sorted(
            ["w.bin", live.name, other.name, unrelated.name]
        )
        assert fileio.clean_stale_temps(tmp_path) == [str(other)]
    assert fileio.clean_stale_temps(tmp_path) == [str(live)]
    assert sorted(os.listdir(tmp_path)) == sorted(["w.bin", unrelated.name])
    assert (tmp_path / "w.bin").read_bytes() == b"new"


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_the_temp_is_locked_while_it_is_written(tmp_path):
    import fcntl

    seen = []

    def content(f):  # type: ignore[no-untyped-def]
        (temp,) = os.listdir(tmp_path)
        with open(tmp_path / temp, "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seen.append(temp)
        assert fileio.clean_stale_temps(tmp_path) == []
        f.write(b"data")

    fileio.atomic_write(tmp_path / "w.bin", content)
    assert len(seen) == 1
    assert seen[0].startswith(".w.bin.")
    assert seen[0].endswith(".tmp")
    assert os.listdir(tmp_path) == ["w.bin"]


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_file_system_without_locks_still_gets_atomic_writes(tmp_path, monkeypatch):
    """flock failing (ENOLCK, as on some network file systems): the write goes ahead
    unlocked, and the cleaner, unable to lock either, removes nothing."""
    import errno
    import fcntl

    def no_locks(fd, op):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    orphan = tmp_path / ".w.bin.0123abcd.tmp"
    orphan.write_bytes(b"x")
    fileio.atomic_write(tmp_path / "w.bin", b"data")
    assert (tmp_path / "w.bin").read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == [orphan.name, "w.bin"]
