"""Properties of Concatenate beyond 2-D batches: it joins any inputs that agree on every
axis but the last, whatever their rank (unbatched 1-D vectors too), and routes each slice of
the upstream back to the input it came from."""

from __future__ import annotations

import numpy as np
import pytest

from beras.core import Tensor
from beras.gradient_tape import GradientTape
from beras.layers import Add, Concatenate

RNG = np.random.default_rng(0)


def test_rank3_inputs_are_joined_on_the_last_axis():
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 3, 1))
    layer = Concatenate()
    out = layer(a, b)
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=-1))
    up = RNG.normal(size=(2, 3, 5))
    da, db = layer.compose_input_gradients([up])
    np.testing.assert_array_equal(da, up[..., :4])
    np.testing.assert_array_equal(db, up[..., 4:])
    ga, gb = layer.get_input_gradients()  # selection matrices (n_k, n_total)
    np.testing.assert_array_equal(ga, np.eye(5)[:4])
    np.testing.assert_array_equal(gb, np.eye(5)[4:])


def test_rank3_gradients_through_the_tape():
    a = Tensor(RNG.normal(size=(2, 2, 3)))
    layer = Concatenate()
    with GradientTape() as tape:
        out = layer(a, RNG.normal(size=(2, 2, 2)))
    (da,) = tape.gradient(out, [a])
    np.testing.assert_array_equal(da, np.ones((2, 2, 3)))


def test_unbatched_vectors_are_joined():
    out = Concatenate()(np.array([1.0, 2.0]), np.array([3.0]))
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


def test_an_unknown_keyword_is_an_error_not_silently_dropped():
    a = np.ones((2, 3))
    with pytest.raises(TypeError, match="axis"):
        Concatenate()(a, a, axis=0)
    out = Concatenate()([a, a], training=True)  # models pass training to every layer
    assert out.shape == (2, 6)


@pytest.mark.parametrize("layer", [Add(), Concatenate()])
def test_mixed_float_inputs_promote_whatever_their_order(layer):
    """float32 then float64 gives float64, as NumPy's promotion does (not the first's type)."""
    a, b = np.full((2, 3), 1.5, np.float32), np.full((2, 3), 1e-10, np.float64)
    for inputs in ((a, b), (b, a)):
        out = layer(*inputs)
        assert out.dtype == np.float64
    np.testing.assert_array_equal(Add()(a, b), np.full((2, 3), 1.5 + 1e-10))
