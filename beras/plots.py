"""Pictures of a training run, drawn with matplotlib (imported only when drawing).

Figures are built with ``matplotlib.figure.Figure`` on the Agg canvas, so drawing never
needs a display nor touches pyplot's global backend; pass ``pyplot=True`` for a figure
that ``plt.show()`` displays.

- :func:`training_curves`: loss and accuracy per epoch, train and validation;
- :func:`prediction_grid`: correct and wrong test images, each with its predicted
  label and confidence;
- :func:`save_png`: write a figure as PNG atomically.
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .fileio import atomic_write

__all__ = ["has_display", "new_figure", "prediction_grid", "save_png", "training_curves"]

CORRECT_COLOR = "#1a7f37"  # green
WRONG_COLOR = "#cf222e"  # red
TRAIN_COLOR = "#0969da"  # blue
VAL_COLOR = "#bc4c00"  # orange
TEST_COLOR = "#57606a"  # grey

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def has_display() -> bool:
    """True if an interactive matplotlib window can be shown here."""
    backend = os.environ.get("MPLBACKEND", "").strip().lower()
    if backend in _NON_INTERACTIVE or backend.startswith("module://matplotlib_inline"):
        return False
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return False
    import matplotlib

    return matplotlib.get_backend().lower() not in _NON_INTERACTIVE


def new_figure(width: float, height: float, pyplot: bool = False) -> Any:
    """A ``Figure`` with constrained layout: on the Agg canvas (no pyplot involved), or
    with ``pyplot=True`` a pyplot figure that ``plt.show()`` displays."""
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=(width, height), layout="constrained")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any, dpi: int = 100) -> bytes:
    """The figure rendered as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


def save_png(fig: Any, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write the figure to ``path`` as PNG, atomically (see :func:`beras.fileio.atomic_write`)."""
    atomic_write(path, png_bytes(fig, dpi=dpi))


# ------------------------------------------------------------------ training curves
def training_curves(
    history: Mapping[str, Sequence[float]],
    title: str | None = None,
    test_metrics: Mapping[str, float] | None = None,
    pyplot: bool = False,
) -> Any:
    """Loss (left) and accuracy in % (right) per epoch, train and validation.

    ``history`` is ``Model.fit``'s (keys ``loss``, ``acc``, optionally ``val_loss``,
    ``val_acc`` and ``epoch``); ``test_metrics`` (``loss``, ``acc``) adds a dotted line
    for the final test result; ``pyplot=True`` draws in a pyplot figure. Returns the
    figure.
    """
    fig = new_figure(11, 4.2, pyplot)
    ax_loss, ax_acc = fig.subplots(1, 2)
    n = len(history.get("loss", []))
    epochs = list(history.get("epoch", range(1, n + 1)))[:n]
    panels = (
        (ax_loss, "loss", "Loss (categorical cross-entropy)", 1.0),
        (ax_acc, "acc", "Accuracy (%)", 100.0),
    )
    for ax, key, label, scale in panels:
        for prefix, name, color, marker, style in (
            ("", "train", TRAIN_COLOR, "o", "-"),
            ("val_", "validation", VAL_COLOR, "s", "--"),
        ):
            values = history.get(prefix + key)
            if values:
                y = [_nan(v) * scale for v in values][:n]
                ax.plot(epochs, y, style, color=color, marker=marker, ms=4, label=name)
        test_value = (test_metrics or {}).get(key)
        if n and test_value is not None and math.isfinite(test_value):
            value = float(test_value) * scale
            text = f"test {value:.2f}%" if key == "acc" else f"test {value:.4f}"
            ax.axhline(value, color=TEST_COLOR, linestyle=":", linewidth=1.5, label=text)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if n == 0:
            ax.text(
                0.5,
                0.5,
                "no completed epoch",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color=TEST_COLOR,
            )
        else:
            ax.set_xlim(0.5, max(epochs) + 0.5)
            ax.legend(loc="best")
    losses = [
        v
        for k in ("loss", "val_loss")
        for v in history.get(k, [])
        if v is not None and math.isfinite(v) and v > 0
    ]
    if losses and max(losses) / min(losses) > 20:
        ax_loss.set_yscale("log")
    ax_loss.set_title("Loss per epoch")
    ax_acc.set_title("Accuracy per epoch")
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def _nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------ prediction grid
def prediction_grid(
    images: Any,
    labels: Any,
    probabilities: Any,
    class_names: Sequence[str] | None = None,
    n_correct: int = 16,
    n_wrong: int = 16,
    columns: int = 8,
    title: str | None = None,
    pyplot: bool = False,
) -> Any:
    """The first ``n_correct`` correctly and first ``n_wrong`` wrongly predicted images.

    Args:
        images: ``(N, H, W)`` images, or ``(N, H*W)`` rows of square images.
        labels: the true classes, ``(N,)`` integers (or one-hot rows).
        probabilities: the model's outputs, ``(N, classes)``.
        class_names: names shown instead of class numbers (e.g. Fashion-MNIST's).
        pyplot: draw in a pyplot figure (for ``plt.show()``) instead of an Agg one.

    Each image is titled with its predicted label and confidence (the predicted class's
    probability), framed and titled green when right; red, with the true label, when
    wrong. Returns the figure.
    """
    images = _as_images(images)
    probs = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if not (len(images) == len(labels) == len(probs)):
        raise ValueError(
            f"prediction_grid expected as many images, labels and predictions, got "
            f"{len(images)}, {len(labels)} and {len(probs)}"
        )
    predicted = probs.argmax(axis=1)
    confidence = probs[np.arange(len(probs)), predicted]
    right = predicted == labels
    correct_idx = np.flatnonzero(right)[:n_correct]
    wrong_idx = np.flatnonzero(~right)[:n_wrong]

    def name(k: int) -> str:
        return str(class_names[k]) if class_names is not None else str(k)

    long_names = class_names is not None and max(map(len, class_names)) > 6
    rows_c = max(1, math.ceil(len(correct_idx) / columns))
    rows_w = max(1, math.ceil(len(wrong_idx) / columns))
    cell = 1.8 if long_names else 1.35
    fig = new_figure(columns * cell, (rows_c + rows_w) * cell * 1.12 + 0.9, pyplot)
    if title:
        fig.suptitle(title, fontsize=13)
    sub_c, sub_w = fig.subfigures(2, 1, height_ratios=[rows_c, rows_w], hspace=0.04)
    total = len(labels)
    sections = (
        (sub_c, correct_idx, int(right.sum()), "Correct", CORRECT_COLOR),
        (sub_w, wrong_idx, int((~right).sum()), "Wrong", WRONG_COLOR),
    )
    for sub, idx, count, heading, color in sections:
        shown = f" (first {len(idx)} shown)" if 0 < len(idx) < count else ""
        sub.suptitle(
            f"{heading}: {count:,} of {total:,}{shown}. Predicted label (confidence)",
            color=color,
            fontsize=11,
            fontweight="bold",
        )
        rows = max(1, math.ceil(len(idx) / columns))
        axes = np.atleast_1d(sub.subplots(rows, columns)).ravel()
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_axis_off()
        if len(idx) == 0:
            axes[0].text(0, 0.5, "none", color=color, transform=axes[0].transAxes)
        for ax, i in zip(axes, idx):
            ax.set_axis_on()
            ax.imshow(images[i], cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_edgecolor(color)
                spine.set_linewidth(2.5)
            text = f"pred {name(predicted[i])} ({_percent(confidence[i])})"
            if not right[i]:
                text += f"\ntrue {name(labels[i])}"
            ax.set_title(text, color=color, fontsize=8.5, pad=3)
    return fig


def _percent(p: float) -> str:
    if not math.isfinite(p):
        return "nan"
    if p >= 0.995:
        return f"{100 * p:.1f}%" if p < 0.9995 else ">99.9%"
    return f"{100 * p:.0f}%"


def _as_images(images: Any) -> np.ndarray:
    """Images as floats in [0, 1], shape ``(N, H, W)``."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        side = math.isqrt(arr.shape[1])
        if side * side != arr.shape[1]:
            raise ValueError(
                f"prediction_grid expected square images, got rows of {arr.shape[1]} pixels"
            )
        arr = arr.reshape(len(arr), side, side)
    if arr.ndim != 3:
        raise ValueError(
            f"prediction_grid expected images of shape (N, H, W) or (N, H*W), got {arr.shape}"
        )
    arr = arr.astype(np.float64)
    if arr.size and arr.max() > 1.0:
        arr = arr / 255.0
    return arr
