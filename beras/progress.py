"""Training progress: a tqdm bar per epoch when tqdm is installed, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any


def _fmt(metrics: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in metrics.items())


class Progress:
    """``verbose=0`` silent; ``1`` a per-batch bar (live metrics) and an epoch line; ``2`` the epoch line only."""

    def __init__(self, verbose: int, num_batches: int, epoch: int, epochs: int) -> None:
        self.verbose = verbose
        self.num_batches = num_batches
        self.title = f"Epoch {epoch + 1}/{epochs}"
        self.bar: Any = None
        self.batch = 0
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # optional: plain \r lines instead
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=num_batches, desc=self.title, unit="batch", leave=False, file=sys.stdout, dynamic_ncols=True)

    def update(self, metrics: dict[str, float]) -> None:
        self.batch += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()}, refresh=False)
        elif self.verbose == 1:
            print(f"\r{self.title} - batch {self.batch}/{self.num_batches} - {_fmt(metrics)}", end="", flush=True)

    def close(self, logs: dict[str, float] | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.verbose == 1:
            print()
        if logs is not None and self.verbose in (1, 2):
            print(f"{self.title} - {_fmt(logs)}", flush=True)
        self.verbose = 0 if logs is not None else self.verbose
