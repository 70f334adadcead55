"""Finding a dataset on disk, and downloading it into the cache when it is nowhere.

Search order (the first folder holding a complete copy wins):

1. ``path=`` given to ``load_data``: a folder holding the files (or its ``<name>/``
   subfolder), or an ``.npz`` file. Nothing else is searched then, nothing downloaded.
2. ``$BERAS_DATA/<name>/`` (``BERAS_DATA`` may list several folders, ``os.pathsep``
   separated).
3. The cache, ``$BERAS_HOME/datasets/<name>/`` or ``~/.beras/datasets/<name>/``.
4. ``/usr/share/datasets/<name>/`` (:data:`SYSTEM_DATA_DIRS`), where Debian's
   ``dataset-fashion-mnist`` package installs Fashion-MNIST.

A complete copy is the four IDX files (each ``.gz`` or raw) or a Keras ``.npz``. If
there is none, the missing IDX files are downloaded into the cache from the dataset's
mirrors (or those in ``$BERAS_DATASET_MIRRORS``), each checked against its SHA-256
and written atomically.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..fileio import atomic_write
from . import _idx
from ._errors import ChecksumError, DatasetError, DatasetNotFoundError

DATA_ENV = "BERAS_DATA"
HOME_ENV = "BERAS_HOME"
MIRRORS_ENV = "BERAS_DATASET_MIRRORS"

#: System-wide folders searched last. A module attribute so tests can replace it.
SYSTEM_DATA_DIRS: list[Path] = [Path("/usr/share/datasets")]

#: Seconds to wait on a silent connection before trying the next mirror.
DOWNLOAD_TIMEOUT = 30.0

#: Largest download accepted (bytes, compressed); Fashion-MNIST's largest file is 26 MB.
MAX_DOWNLOAD_BYTES = 1 << 27

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

Split = _idx.Split

_LOCAL_HINT = (
    ". Delete it (a cached file is then downloaded again), or pass verify=False "
    "to load_data to use a deliberately modified copy"
)


@dataclass(frozen=True)
class DatasetSpec:
    """What identifies one IDX dataset: its names, mirrors and checksums."""

    title: str  #: for messages, e.g. ``"MNIST"``
    folder: str  #: subfolder name under BERAS_DATA, the cache, /usr/share/datasets
    npz_names: tuple[str, ...]  #: single-file Keras archives accepted in a folder
    mirrors: tuple[str, ...]  #: base URLs, each holding ``<IDX file>.gz``
    sha256: Mapping[str, str] = field(default_factory=dict)  #: of decompressed files
    install_hint: str = ""  #: an extra way to get the files, for the not-found message
    image_shape: tuple[int, int] = (28, 28)
    num_classes: int = 10


def cache_dir() -> Path:
    """The download cache: ``$BERAS_HOME/datasets``, else ``~/.beras/datasets``."""
    home = os.environ.get(HOME_ENV)
    base = Path(home).expanduser() if home else Path.home() / ".beras"
    return base / "datasets"


def search_roots() -> list[tuple[str, Path]]:
    """``(label, folder)`` pairs searched in order, each holding ``<dataset>/``."""
    roots = [
        (DATA_ENV, Path(p).expanduser())
        for p in os.environ.get(DATA_ENV, "").split(os.pathsep)
        if p.strip()
    ]
    roots.append(("cache", cache_dir()))
    roots.extend(("system", Path(d)) for d in SYSTEM_DATA_DIRS)
    return roots


def mirrors_for(spec: DatasetSpec) -> list[str]:
    """The base URLs to download from, each ending in ``/``.

    ``$BERAS_DATASET_MIRRORS`` (URLs separated by spaces or commas, ``{dataset}``
    replaced by the dataset's folder name, e.g. ``mnist``) replaces the built-in
    list when set; set to an empty string it disables downloading.
    """
    env = os.environ.get(MIRRORS_ENV)
    if env is None:
        bases = list(spec.mirrors)
    else:
        bases = [u.replace("{dataset}", spec.folder) for u in re.split(r"[\s,]+", env) if u]
    return [u if u.endswith("/") else u + "/" for u in bases]


# --- finding files on disk ---


def idx_files_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """The standard IDX files in ``folder`` (``.gz`` preferred), and those missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for stem in IDX_FILES:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                found[stem] = folder / name
                break
        else:
            missing.append(stem)
    return found, missing


def scan_folder(spec: DatasetSpec, folder: Path) -> tuple[dict[str, Path] | Path | None, str]:
    """A complete copy in ``folder`` (the IDX files, or an ``.npz`` path) or why not."""
    if not folder.exists():
        return None, "does not exist"
    if not folder.is_dir():
        return None, "not a folder"
    found, missing = idx_files_in(folder)
    if not missing:
        return found, ""
    for name in spec.npz_names:
        if (folder / name).is_file():
            return folder / name, ""
    if found:
        return None, "incomplete: missing " + ", ".join(m + "[.gz]" for m in missing)
    return None, "no dataset files"


def load_idx_files(
    spec: DatasetSpec, files: Mapping[str, Path], *, verify: bool = True
) -> tuple[Split, Split]:
    """Read, validate and (if ``verify``) checksum the four IDX files of ``spec``."""
    arrays = {}
    for stem in IDX_FILES:
        path = files[stem]
        data = _idx.read_idx_bytes(path)
        if stem.endswith("idx3-ubyte"):
            arrays[stem] = _idx.parse_images(data, str(path), spec.image_shape)
        else:
            arrays[stem] = _idx.parse_labels(data, str(path), spec.num_classes)
        if verify and stem in spec.sha256:
            where = f"{path} ({spec.title} {stem})"
            _idx.verify_sha256(data, spec.sha256[stem], where, _LOCAL_HINT)
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        _idx.check_split(arrays[images], arrays[labels], str(files[images]), str(files[labels]))
    return (
        (arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS]),
        (arrays[TEST_IMAGES], arrays[TEST_LABELS]),
    )


def _load_found(
    spec: DatasetSpec, found: dict[str, Path] | Path, verify: bool
) -> tuple[Split, Split]:
    if isinstance(found, Path):
        return _idx.load_npz(found, spec.image_shape, spec.num_classes)
    return load_idx_files(spec, found, verify=verify)


# --- downloading ---


class _DownloadFailed(Exception):
    def __init__(self, stem: str, attempts: list[str], corrupt: bool) -> None:
        super().__init__(stem)
        self.stem, self.attempts, self.corrupt = stem, attempts, corrupt


def _progress(total: int | None, desc: str) -> tuple[Callable[[int], object], Callable[[], object]]:
    """``(update, close)`` for a byte progress bar: tqdm if installed, else nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        return (lambda n: None), (lambda: None)
    bar = tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=None,  # no bar when stderr is not a terminal
        leave=False,
        file=sys.stderr,
    )
    return bar.update, bar.close


def download_file(url: str, dest: Path, expected_sha256: str | None) -> None:
    """Download gzip ``url`` to ``dest``, atomically, checking its decompressed SHA-256.

    The bytes stream into :func:`beras.fileio.atomic_write`'s temporary file and are
    verified before it is renamed over ``dest``; on any error or interruption the
    temporary file is removed, so ``dest`` is either absent or complete and verified.
    Network errors propagate as ``OSError``/``HTTPException``, bad content as
    :class:`DatasetError` (:class:`ChecksumError` for a hash mismatch). A response
    larger than :data:`MAX_DOWNLOAD_BYTES` (announced or received) is refused without
    being read further, and decompression has :func:`_idx.gunzip`'s bounds.
    """

    def fetch_and_verify(out: IO[bytes]) -> None:
        chunks: list[bytes] = []
        request = urllib.request.Request(url, headers={"User-Agent": "beras"})
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
            # said once a server answers: a machine without network sees no download
            # lines, only the not-found message that lists what was tried
            print(f"Downloading {url}", file=sys.stderr)
            length = response.headers.get("Content-Length")
            if length and not (length.isdigit() and int(length) <= MAX_DOWNLOAD_BYTES):
                raise DatasetError(
                    f"{url}: announces {length} bytes, more than the "
                    f"{MAX_DOWNLOAD_BYTES:,} a dataset file may have; not downloaded"
                )
            update, close = _progress(int(length) if length else None, dest.name)
            received = 0
            try:
                while chunk := response.read(1 << 16):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise DatasetError(
                            f"{url}: sent more than the {MAX_DOWNLOAD_BYTES:,} bytes a "
                            "dataset file may have; download stopped"
                        )
                    out.write(chunk)
                    chunks.append(chunk)
                    update(len(chunk))
            finally:
                close()
        if length and received != int(length):
            raise OSError(f"incomplete download: got {received} of {length} bytes")
        data = _idx.gunzip(b"".join(chunks), f"{url} (downloaded)")
        if expected_sha256:
            _idx.verify_sha256(data, expected_sha256, f"{url} (downloaded)")

    atomic_write(dest, fetch_and_verify)


def _fetch_one(spec: DatasetSpec, stem: str, folder: Path, mirrors: list[str]) -> None:
    attempts: list[str] = []
    corrupt = False
    for base in mirrors:
        url = base + stem + ".gz"
        try:
            download_file(url, folder / (stem + ".gz"), spec.sha256.get(stem))
            if attempts:
                warnings.warn(
                    f"{spec.title} {stem}: earlier mirrors failed "
                    f"({'; '.join(attempts)}), downloaded from {url}",
                    RuntimeWarning,
                    stacklevel=5,
                )
            return
        except DatasetError as exc:  # its message starts with the URL
            corrupt = True
            attempts.append(str(exc))
        except urllib.error.HTTPError as exc:
            attempts.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except urllib.error.URLError as exc:
            attempts.append(f"{url}: {exc.reason}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            attempts.append(f"{url}: {type(exc).__name__}: {exc}")
    raise _DownloadFailed(stem, attempts, corrupt)


def download(spec: DatasetSpec, folder: Path, mirrors: list[str]) -> dict[str, Path]:
    """Download the IDX files missing from ``folder``; return all four paths."""
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = f"cannot create {folder}: {exc}"
        raise _DownloadFailed(IDX_FILES[0], [reason], False) from exc
    try:
        for stem in idx_files_in(folder)[1]:
            _fetch_one(spec, stem, folder, mirrors)
    except BaseException:
        if created:  # leave no empty cache folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return idx_files_in(folder)[0]


# --- putting it together ---


def _bullets(lines: list[str]) -> str:
    return "".join(f"\n  - {line}" for line in lines)


def _how_to_provide(spec: DatasetSpec) -> str:
    names = ", ".join(s + ".gz" for s in IDX_FILES)
    ways = [
        (
            f"set {DATA_ENV} to a folder whose {spec.folder}/ subfolder holds the four "
            f"IDX files ({names}; .gz or uncompressed) or {' or '.join(spec.npz_names)}"
        ),
        (
            f"copy those files into {cache_dir() / spec.folder} (the download cache; "
            f"{HOME_ENV} moves it)"
        ),
        "pass load_data(path=...) a folder holding those files, or an .npz file",
    ]
    if spec.install_hint:
        ways.append(spec.install_hint)
    ways.append("or use the small subset shipped with Beras: beras.datasets.mnist_mini.load_data()")
    return "To provide the data:" + _bullets(ways)


def _load_explicit(spec: DatasetSpec, path: Path, verify: bool) -> tuple[Split, Split]:
    if path.is_file():
        if path.suffix == ".npz":
            return _idx.load_npz(path, spec.image_shape, spec.num_classes)
        raise DatasetError(f"{path}: path= must be a folder holding the IDX files or an .npz")
    looked = []
    candidates = [path, path / spec.folder] if path.is_dir() else [path]
    for folder in candidates:
        found, why = scan_folder(spec, folder)
        if found is not None:
            return _load_found(spec, found, verify)
        looked.append(f"path=: {folder} ({why})")
    raise DatasetNotFoundError(
        f"{spec.title} not found at the given path (nothing else is searched when "
        f"path= is given).\nLooked in:{_bullets(looked)}\n{_how_to_provide(spec)}"
    )


def locate_dataset(
    spec: DatasetSpec, path: str | os.PathLike[str] | None = None
) -> tuple[str, Path] | None:
    """Where ``load_dataset(spec, path)`` would read a complete copy from, without
    reading or downloading anything: ``(source, folder or .npz file)``, or None.

    ``source`` is ``"path"`` (``path=`` given), ``"BERAS_DATA"``, ``"cache"`` or
    ``"system"``, as in the search order of this module.
    """
    if path is not None:
        given = Path(path).expanduser()
        if given.is_file():
            return ("path", given) if given.suffix == ".npz" else None
        for folder in [given, given / spec.folder] if given.is_dir() else []:
            found, _ = scan_folder(spec, folder)
            if found is not None:
                return "path", folder if isinstance(found, dict) else found
        return None
    for label, root in search_roots():
        folder = root / spec.folder
        found, _ = scan_folder(spec, folder)
        if found is not None:
            return label, folder if isinstance(found, dict) else found
    return None


def load_dataset(
    spec: DatasetSpec,
    path: str | os.PathLike[str] | None = None,
    *,
    verify: bool = True,
) -> tuple[Split, Split]:
    """Find (or download) and load ``spec``'s dataset: see the module docstring."""
    if path is not None:
        return _load_explicit(spec, Path(path).expanduser(), verify)
    looked = []
    for label, root in search_roots():
        folder = root / spec.folder
        found, why = scan_folder(spec, folder)
        if found is not None:
            return _load_found(spec, found, verify)
        looked.append(f"{label}: {folder} ({why})")

    mirrors = mirrors_for(spec)
    target = cache_dir() / spec.folder
    if not mirrors:
        tried = f"Downloading is disabled ({MIRRORS_ENV} is set but empty)."
        raise DatasetNotFoundError(_not_found(spec, looked, tried))
    try:
        files = download(spec, target, mirrors)
    except _DownloadFailed as failed:
        tried = f"Downloading {failed.stem}.gz into {target} failed:"
        tried += _bullets(failed.attempts)
        if failed.corrupt:
            raise ChecksumError(
                f"{spec.title}: every mirror failed for {failed.stem}.gz and at least "
                "one served corrupt data (nothing was saved under that name).\n"
                + _not_found(spec, looked, tried, title=False)
            ) from None
        raise DatasetNotFoundError(_not_found(spec, looked, tried)) from None
    return load_idx_files(spec, files, verify=verify)


def _not_found(spec: DatasetSpec, looked: list[str], tried: str, title: bool = True) -> str:
    head = f"{spec.title} was not found and could not be downloaded.\n" if title else ""
    return f"{head}Looked in:{_bullets(looked)}\n{tried}\n{_how_to_provide(spec)}"
