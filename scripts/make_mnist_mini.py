#!/usr/bin/env python3
"""Regenerate ``beras/datasets/data/mnist_mini.npz`` from the full MNIST files.

The subset is deterministic: the first 200 digits of each class of the MNIST training
set (2,000) and the first 50 of each class of the test set (500), kept in their
original order. The archive holds ``x_train``, ``y_train``, ``x_test``, ``y_test``
(uint8, as ``np.savez_compressed`` writes them) plus ``train_indices`` and
``test_indices``, the rows taken from the full set. Zip entries get a fixed timestamp,
so the same input always gives byte-identical output.

Usage::

    BERAS_DATA=/path/to/datasets python scripts/make_mnist_mini.py
    python scripts/make_mnist_mini.py --mnist /path/to/mnist --out some.npz
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "beras" / "datasets" / "data" / "mnist_mini.npz"
TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 50


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` rows of each label, in ascending order."""
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(10)]
    if any(len(p) < per_class for p in picks):
        raise SystemExit(f"some class has fewer than {per_class} examples")
    return np.sort(np.concatenate(picks)).astype(np.uint16)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a compressed ``.npz`` whose bytes depend only on the data."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, npy.getvalue(), compresslevel=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mnist",
        help="folder holding the four MNIST IDX files, or mnist.npz "
        "(default: beras's usual search: BERAS_DATA, the cache, ...)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))  # this checkout's beras, installed or not
    from beras.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data(args.mnist)
    train_idx = first_per_class(y_train, TRAIN_PER_CLASS)
    test_idx = first_per_class(y_test, TEST_PER_CLASS)
    write_npz(
        args.out,
        {
            "x_train": x_train[train_idx],
            "y_train": y_train[train_idx],
            "x_test": x_test[test_idx],
            "y_test": y_test[test_idx],
            "train_indices": train_idx,
            "test_indices": test_idx,
        },
    )
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
