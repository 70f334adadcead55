"""The README's example: gradient-checking a user's own new Diffable in about ten lines."""

from __future__ import annotations

import numpy as np
import pytest


def test_readme_snippet() -> None:
    # --- README snippet (keep in sync) ---
    import beras
    from beras.testing import check_gradients

    class Swish(beras.activations.Activation):  # x * sigmoid(x)
        def forward(self, x):
            return x / (1 + np.exp(-x))

        def get_input_gradients(self):
            s = 1 / (1 + np.exp(-self.inputs[0]))
            return [s * (1 + self.inputs[0] * (1 - s))]

    x = np.random.default_rng(0).normal(size=(4, 5))
    check_gradients(Swish(), x)  # local Jacobian, VJP and tape; raises AssertionError on a bug
    # --- end of snippet ---

    class BuggySwish(Swish):
        def get_input_gradients(self):
            s = 1 / (1 + np.exp(-self.inputs[0]))
            return [s * (1 + self.inputs[0] * s)]  # the classic slip: s instead of 1 - s

    with pytest.raises(AssertionError, match=r"\[local\] input 0 'x'"):
        check_gradients(BuggySwish(), x)
    assert np.isfinite(x).all()
