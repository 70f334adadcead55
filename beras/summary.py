"""``Model.summary``: a Keras-like table of layers, output shapes and parameter counts."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .config import float_dtype

__all__ = ["layer_built", "output_shape", "summary"]

_HEADERS = ("Layer (type)", "Output Shape", "Param #")


def layer_built(layer: Any) -> bool:
    """False for a layer that creates its weights on its first call and has not yet."""
    return bool(getattr(layer, "built", True))


def output_shape(layer: Any, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
    """``layer``'s output shape for ``input_shape`` (the batch may be None).

    Its ``compute_output_shape`` if it has one; otherwise its ``forward`` on zeros of one
    sample (a stencil-only layer), which needs every other dimension known.
    """
    shape = tuple(input_shape)
    compute = getattr(layer, "compute_output_shape", None)
    if compute is not None:
        return tuple(compute(shape))
    if not shape or any(d is None for d in shape[1:]):
        raise ValueError(f"{layer!r} has no compute_output_shape to apply to {shape}")
    probe = np.zeros((1, *shape[1:]), dtype=float_dtype())
    return (shape[0], *np.shape(layer.forward(probe))[1:])


def _shapes(model: Any) -> list[tuple[Any, ...] | None]:
    """Each layer's output shape: from the model's input shape when known, else observed."""
    shape: tuple[Any, ...] | None = getattr(model, "input_shape", None)
    if shape is None and model.layers and getattr(model.layers[0], "input_size", None):
        shape = (None, model.layers[0].input_size)
    shapes: list[tuple[Any, ...] | None] = []
    for layer in model.layers:
        if shape is not None:
            try:
                shape = output_shape(layer, shape)
            except (ValueError, TypeError):
                shape = None
        if shape is None:  # unknown input: what the layer produced on its last call
            output_size = getattr(layer, "output_size", None)
            if output_size is not None:
                shape = (None, output_size)
            elif getattr(layer, "outputs", None):
                shape = (None, *np.shape(layer.outputs[0])[1:])
        shapes.append(shape)
    return shapes


def _rows(model: Any) -> tuple[list[tuple[str, str, str]], int, int]:
    """One row per layer, and the total and trainable parameter counts."""
    rows: list[tuple[str, str, str]] = []
    counts: defaultdict[str, int] = defaultdict(int)
    total = trainable = 0
    for layer, shape in zip(model.layers, _shapes(model)):
        kind = type(layer).__name__
        name = kind.lower() if counts[kind] == 0 else f"{kind.lower()}_{counts[kind]}"
        counts[kind] += 1
        params = sum(int(np.size(w)) for w in layer.weights)
        total += params
        trainable += sum(int(np.size(w)) for w in layer.trainable_variables)
        count = f"{params:,}" if layer_built(layer) else "0 (unbuilt)"
        rows.append((f"{name} ({kind})", "?" if shape is None else str(shape), count))
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
