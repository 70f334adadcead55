"""``Model.summary``: a Keras-like table of layers, output shapes and parameter counts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

__all__ = ["summary"]

_HEADERS = ("Layer (type)", "Output Shape", "Param #")


def _rows(model: Any) -> tuple[list[tuple[str, str, str]], int, int]:
    """One row per layer, and the total and trainable parameter counts."""
    rows: list[tuple[str, str, str]] = []
    counts: defaultdict[str, int] = defaultdict(int)
    shape: tuple[Any, ...] | None = None
    total = trainable = 0
    for layer in model.layers:
        kind = type(layer).__name__
        name = kind.lower() if counts[kind] == 0 else f"{kind.lower()}_{counts[kind]}"
        counts[kind] += 1
        output_size = getattr(layer, "output_size", None)
        if output_size is not None:
            shape = (None, output_size)
        elif getattr(layer, "outputs", None):
            shape = (None, *np.shape(layer.outputs[0])[1:])
        params = sum(int(np.size(w)) for w in layer.weights)
        total += params
        trainable += sum(int(np.size(w)) for w in layer.trainable_variables)
        rows.append((f"{name} ({kind})", "?" if shape is None else str(shape), f"{params:,}"))
    return rows, total, trainable


def summary(model: Any, print_fn: Any = print) -> str:
    """The table for ``model``, passed to ``print_fn`` (unless None) and returned."""
    rows, total, trainable = _rows(model)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(_HEADERS)]
    rule = "-" * (sum(widths) + 6)
    lines = [
        f'Model: "{type(model).__name__.lower()}"',
        rule,
        "  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths)),
        rule.replace("-", "="),
        *("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows),
        rule.replace("-", "="),
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        rule,
    ]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text
