"""Training progress: a line per epoch, and a live per-batch bar where someone watches it.

The live bar (tqdm when installed, else a plain ``\\r`` line) is drawn only on a terminal
or in a Jupyter notebook: written to a log file or a pipe, its per-batch ``\\r`` updates
would only bloat the log. The per-epoch summary line is printed either way.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO


def _fmt(metrics: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in metrics.items())


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _tqdm_bar(total: int, desc: str) -> Any:
    """A tqdm bar on ``sys.stdout``, or None when it stays hidden.

    Raises ImportError without tqdm. tqdm's ``disable=None`` hides the bar when the
    stream is not a terminal; Jupyter's widget (whose stream is not one either) is kept.
    """
    from tqdm.auto import tqdm

    widget = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
    bar = tqdm(
        total=total,
        desc=desc,
        unit="batch",
        leave=False,
        file=sys.stdout,
        dynamic_ncols=True,
        disable=False if widget else None,
    )
    return None if bar.disable else bar


class Progress:
    """``verbose=0`` silent; ``1`` a live per-batch bar (see above) and an epoch line;
    ``2`` the epoch line only."""

    def __init__(self, verbose: int, num_batches: int, epoch: int, epochs: int) -> None:
        self.verbose = verbose
        self.num_batches = num_batches
        self.title = f"Epoch {epoch + 1}/{epochs}"
        self.bar: Any = None
        self.plain_line = False  # the live display without tqdm: a \r line
        self.batch = 0
        if verbose == 1:
            try:
                self.bar = _tqdm_bar(num_batches, self.title)
            except ImportError:  # tqdm is optional
                self.plain_line = _is_terminal(sys.stdout)

    def update(self, metrics: dict[str, float]) -> None:
        self.batch += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()}, refresh=False)
        elif self.plain_line:
            print(
                f"\r{self.title} - batch {self.batch}/{self.num_batches} - {_fmt(metrics)}",
                end="",
                flush=True,
            )

    def close(self, logs: dict[str, float] | None = None) -> None:
        """End the live display; with ``logs`` (the epoch's metrics), print the epoch line.

        After a close with ``logs``, further closes print nothing.
        """
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.plain_line:
            print()
            self.plain_line = False
        if logs is not None and self.verbose in (1, 2):
            print(f"{self.title} - {_fmt(logs)}", flush=True)
        self.verbose = 0 if logs is not None else self.verbose
