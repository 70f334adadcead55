"""Show a model's correct and wrong predictions (the course stencil's ``visualize.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from beras import plots


def visualize_predictions(
    model: Any,
    inputs: Any,
    labels_one_hot: Any,
    num_searching: int = 500,
    path: str = "predictions.png",
) -> str | None:
    """Plot correct and wrong predictions among the first ``num_searching`` inputs.

    Each image is titled with the predicted digit and the model's confidence; correct
    ones are framed green, wrong ones red with the true label. The figure is shown in a
    window when there is a display; otherwise (or with ``MPLBACKEND=Agg``) it is saved
    as a PNG at ``path``, whose name is returned (None when shown).
    """
    inputs = np.asarray(inputs)[:num_searching]
    labels = np.asarray(labels_one_hot)[:num_searching]
    probabilities = np.asarray(model(inputs))
    interactive = plots.has_display()
    fig = plots.prediction_grid(
        inputs,
        labels,
        probabilities,
        title=f"Predictions on the first {len(inputs)} inputs",
        pyplot=interactive,
    )
    if interactive:
        import matplotlib.pyplot as plt

        plt.show()
        return None
    plots.save_png(fig, path)
    print(f"No display: saved the figure to {path}")
    return path
