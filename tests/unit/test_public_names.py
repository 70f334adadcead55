"""Exceptions a user sees carry public names: ``type(err).__module__`` plus its name is
an import that works (``beras.datasets.DatasetNotFoundError``, not
``beras.datasets._errors.DatasetNotFoundError``), so tracebacks and ``except`` clauses
point at something a user can write."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import beras
from beras import datasets

#: Entry points of the package, not libraries to import (``python -m beras`` runs the CLI).
NOT_IMPORTED = {"beras.__main__"}


def _public_modules() -> list[str]:
    names = ["beras"]
    for info in pkgutil.walk_packages(beras.__path__, "beras."):
        if info.name in NOT_IMPORTED or any(p.startswith("_") for p in info.name.split(".")):
            continue
        names.append(info.name)
    return names


def _exported_exceptions() -> list[tuple[str, str, type]]:
    found = []
    for name in _public_modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None) or [
            n for n in vars(module) if not n.startswith("_")
        ]
        for attr in exported:
            obj = getattr(module, attr, None)
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseException)
                and obj.__module__.split(".")[0] == "beras"
            ):
                found.append((name, attr, obj))
    return found


def _public_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _resolve(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_walk_finds_the_library_exceptions() -> None:
    names = {cls.__name__ for _, _, cls in _exported_exceptions()}
    assert {"DatasetError", "DatasetNotFoundError", "NonFiniteLossError"} <= names


@pytest.mark.parametrize(
    ("where", "name", "cls"),
    [pytest.param(*e, id=f"{e[0]}.{e[1]}") for e in _exported_exceptions()],
)
def test_every_exported_exception_names_its_public_home(where: str, name: str, cls: type) -> None:
    path = _public_path(cls)
    assert not any(part.startswith("_") for part in cls.__module__.split(".")), (
        f"{where}.{name} reports itself as {path}, a private module"
    )
    assert _resolve(path) is cls, f"{path} does not import as {where}.{name}"


def test_a_missing_dataset_error_is_importable_by_the_name_it_shows(
    tmp_path: Path,
) -> None:
    with pytest.raises(datasets.DatasetNotFoundError) as caught:
        datasets.mnist.load_data(path=tmp_path)
    path = _public_path(type(caught.value))
    assert path == "beras.datasets.DatasetNotFoundError"
    assert _resolve(path) is type(caught.value)


def test_a_corrupt_dataset_error_is_importable_by_the_name_it_shows(tmp_path: Path) -> None:
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(datasets.DatasetError) as caught:
        datasets.mnist.load_data(path=bad)
    assert _resolve(_public_path(type(caught.value))) is type(caught.value)
    assert type(caught.value).__module__ == "beras.datasets"
