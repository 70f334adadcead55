"""MaxPool2D, AveragePooling2D and Flatten against plain loops; exact gradients; errors."""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import numeric_grad

from beras.core import Diffable, Variable
from beras.gradient_tape import GradientTape
from beras.layers import AveragePooling2D, AvgPool2D, Flatten, MaxPool2D, MaxPooling2D


def tf_same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def loop_pool(x, pool, strides, padding, reduce):
    """The reference: every window by explicit loops; padded cells are left out."""
    b, h, w, c = x.shape
    if padding == "same":
        (top, _), (left, _) = tf_same(h, pool[0], strides[0]), tf_same(w, pool[1], strides[1])
        oh, ow = -(-h // strides[0]), -(-w // strides[1])
    else:
        top = left = 0
        oh, ow = (h - pool[0]) // strides[0] + 1, (w - pool[1]) // strides[1] + 1
    out = np.zeros((b, oh, ow, c))
    for n in range(b):
        for y in range(oh):
            for z in range(ow):
                for ch in range(c):
                    values = [
                        x[n, r, q, ch]
                        for r in range(y * strides[0] - top, y * strides[0] - top + pool[0])
                        for q in range(z * strides[1] - left, z * strides[1] - left + pool[1])
                        if 0 <= r < h and 0 <= q < w
                    ]
                    out[n, y, z, ch] = reduce(values)
    return out


CASES = [
    # (input shape, pool, strides, padding)
    ((2, 6, 6, 3), (2, 2), None, "valid"),
    ((2, 7, 5, 2), (2, 2), None, "valid"),  # odd sizes: the last row/column is dropped
    ((2, 7, 5, 2), (2, 2), None, "same"),
    ((1, 7, 7, 2), (3, 3), (2, 2), "same"),  # overlapping windows
    ((2, 6, 5, 1), (3, 2), (1, 2), "valid"),
    ((1, 5, 6, 2), (4, 3), (3, 1), "same"),
]
KINDS = [(MaxPool2D, max), (AveragePooling2D, lambda v: sum(v) / len(v))]


@pytest.mark.parametrize(("cls", "reduce"), KINDS)
@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), CASES)
def test_forward_matches_loops(float64, cls, reduce, shape, pool, strides, padding):
    x = np.random.default_rng(0).normal(size=shape)
    layer = cls(pool, strides, padding)
    out = layer(x)
    expected = loop_pool(x, pool, strides or pool, padding, reduce)
    assert out.shape == expected.shape == layer.compute_output_shape(shape)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cls", "reduce"), KINDS)
@pytest.mark.parametrize(("shape", "pool", "strides", "padding"), CASES)
def test_gradients_match_central_differences(float64, cls, reduce, shape, pool, strides, padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)  # continuous: no ties, max pooling is differentiable
    layer = cls(pool, strides, padding)
    out = layer(x)
    upstream = rng.normal(size=out.shape)
    (dx,) = layer.compose_input_gradients([upstream])
    np.testing.assert_allclose(dx, numeric_grad(lambda: layer.forward(x), x, upstream), atol=1e-8)
    # the local Jacobian composes, by the stencil's per-sample rule, to the same product
    (jac,) = layer.get_input_gradients()
    assert jac.shape == (shape[0], int(np.prod(shape[1:])), int(np.prod(out.shape[1:])))
    (composed,) = Diffable.compose_input_gradients(layer, [upstream])
    np.testing.assert_allclose(composed, dx, atol=1e-12)
    assert layer.get_weight_gradients() == []
    assert layer.weights == []


def test_average_same_excludes_the_padding():
    x = np.ones((1, 3, 3, 1))
    out = AveragePooling2D(2, padding="same")(x)  # windows at the border hold padded cells
    np.testing.assert_array_equal(out, np.ones((1, 2, 2, 1)))


def test_max_same_never_picks_padding():
    x = -np.ones((1, 3, 3, 1))
    out = MaxPool2D(2, padding="same")(x)
    np.testing.assert_array_equal(out, -np.ones((1, 2, 2, 1)))


def test_max_ties_send_the_gradient_to_the_first_maximum():
    """One element per window gets the gradient: the first maximum in row-major order."""
    x = np.array([[1.0, 3.0, 2.0, 2.0], [3.0, 3.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)
    layer = MaxPool2D((2, 2))
    out = layer(x)
    np.testing.assert_array_equal(out.ravel(), [3.0, 2.0])
    (dx,) = layer.compose_input_gradients([np.array([10.0, 20.0]).reshape(1, 1, 2, 1)])
    expected = np.array([[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(dx, expected)


def test_overlapping_max_windows_add_up():
    x = np.array([0.0, 1.0, 5.0, 1.0, 0.0]).reshape(1, 1, 5, 1)
    layer = MaxPool2D((1, 3), strides=(1, 1))  # the 5 wins all three windows
    layer(x)
    (dx,) = layer.compose_input_gradients([np.ones((1, 1, 3, 1))])
    np.testing.assert_array_equal(dx.ravel(), [0.0, 0.0, 3.0, 0.0, 0.0])


def test_aliases_and_defaults():
    assert MaxPooling2D is MaxPool2D
    assert AvgPool2D is AveragePooling2D
    layer = MaxPool2D()
    assert layer.pool_size == (2, 2)
    assert layer.strides == (2, 2)
    assert layer.padding == "valid"
    assert AveragePooling2D(3).strides == (3, 3)


def test_dtype_is_kept():
    x = np.ones((1, 4, 4, 1), dtype=np.float32)
    assert MaxPool2D()(x).dtype == np.float32
    assert AveragePooling2D()(x).dtype == np.float32


def test_pooling_through_a_tape(float64):
    x = Variable(np.random.default_rng(2).normal(size=(2, 4, 4, 2)))
    pool = MaxPool2D()
    with GradientTape() as tape:
        out = pool(x)
    (grad,) = [tape.gradient(out, x)]
    np.testing.assert_allclose(
        grad, numeric_grad(lambda: pool.forward(x), x, np.ones(out.shape)), atol=1e-8
    )


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("cls", [MaxPool2D, AveragePooling2D])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": (2, 2, 2)}, "pool_size"),
        ({"strides": -1}, "strides"),
        ({"strides": (1, 0)}, "strides"),
        ({"padding": "causal"}, "padding"),
    ],
)
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=f"{cls.__name__}.*{match}"):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MaxPool2D, AveragePooling2D])
def test_wrong_rank_and_too_large_window(cls):
    layer = cls((3, 3))
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*rank 4.*\(4, 4\)"):
        layer(np.ones((4, 4)))
    with pytest.raises(ValueError, match=rf"{cls.__name__}.*\(3, 3\) is larger.*\(2, 5\)"):
        layer(np.ones((1, 2, 5, 1)))
    with pytest.raises(ValueError, match=cls.__name__):
        layer.compute_output_shape((None, 2, 5, 1))
    assert not hasattr(layer, "inputs")  # nothing recorded by the failed calls


# ------------------------------------------------------------------------------ Flatten
def test_flatten_is_row_major_and_copies(float64):
    x = np.arange(24.0).reshape(2, 2, 3, 2)
    layer = Flatten()
    out = layer(x)
    np.testing.assert_array_equal(out, x.reshape(2, 12))
    assert not np.shares_memory(out, x)
    assert layer.compute_output_shape((None, 2, 3, 2)) == (None, 12)
    assert Flatten()(np.arange(3.0)).shape == (3, 1)  # a (batch,) input: (batch, 1)


def test_flatten_gradients(float64):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2, 2, 2))
    layer = Flatten()
    out = layer(x)
    upstream = rng.normal(size=out.shape)
    (dx,) = layer.compose_input_gradients([upstream])
    np.testing.assert_array_equal(dx, upstream.reshape(x.shape))
    (jac,) = layer.get_input_gradients()
    np.testing.assert_array_equal(jac, np.eye(8))
    (composed,) = Diffable.compose_input_gradients(layer, [upstream])
    np.testing.assert_array_equal(composed, dx)


def test_flatten_refuses_scalars():
    with pytest.raises(ValueError, match=r"Flatten.*batch axis"):
        Flatten()(np.float64(3.0))


def test_max_ties_beside_a_nan_window_still_send_the_gradient_to_one_element():
    """A NaN window (no hit) must not let a tied window (two hits) pass as one hit each."""
    x = np.array([[np.nan, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    layer = MaxPool2D((2, 2))
    layer(x)
    (dx,) = layer.compose_input_gradients([np.ones((1, 1, 2, 1))])
    expected = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_array_equal(dx, expected)


def test_max_pool_gradient_is_the_same_with_and_without_ties_in_a_large_batch():
    """The whole-input path (no ties) and the per-offset path agree on a tiled CNN shape."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 6, 3))
    g = rng.standard_normal((4, 3, 3, 3))
    layer = MaxPool2D((2, 2))
    layer(x)
    (fast,) = layer.compose_input_gradients([g])
    tied = x.copy()
    tied[0, 0, 1, 0] = tied[0, 0, 0, 0] = 10.0  # one tie: the per-offset path runs
    layer(tied)
    (slow,) = layer.compose_input_gradients([g])
    np.testing.assert_array_equal(slow[1:], fast[1:])  # the other samples: identical
    assert slow[0, 0, 0, 0] == g[0, 0, 0, 0]  # the first maximum takes the gradient
    assert slow[0, 0, 1, 0] == 0.0


def loop_max_vjp(x, pool, strides, padding, up):
    """The reference gradient: each window's upstream to its first real maximum."""
    _, h, w, _ = x.shape
    if padding == "same":
        (top, _), (left, _) = tf_same(h, pool[0], strides[0]), tf_same(w, pool[1], strides[1])
    else:
        top = left = 0
    dx = np.zeros_like(x, dtype=np.float64)
    for n, oi, oj, ch in np.ndindex(*up.shape):
        best = None
        for i in range(pool[0]):
            for j in range(pool[1]):
                r, col = oi * strides[0] + i - top, oj * strides[1] + j - left
                if 0 <= r < h and 0 <= col < w and (best is None or x[n, r, col, ch] > best[0]):
                    best = (x[n, r, col, ch], r, col)
        dx[n, best[1], best[2], ch] += up[n, oi, oj, ch]
    return dx


@pytest.mark.parametrize(
    ("shape", "pool", "strides", "padding", "fast"),
    [
        ((2, 4, 6, 3), (2, 2), None, "valid", True),  # windows tile the input
        ((2, 5, 6, 3), (2, 3), None, "same", True),  # tile the padded input
        ((2, 5, 6, 3), (2, 2), None, "valid", False),  # a row left over
        ((2, 4, 6, 3), (2, 2), (2, 3), "valid", False),  # disjoint, with gaps
        ((2, 4, 6, 3), (2, 2), (1, 1), "valid", False),  # overlapping
    ],
)
def test_max_pool_takes_the_one_pass_gradient_exactly_when_windows_tile(
    monkeypatch, shape, pool, strides, padding, fast
):
    """The gradient is the same on every path; windows that tile the (padded) input
    without ties take the one-pass path (a comparison and a product over the whole input),
    and it succeeds on them. Other geometries never try it."""
    from beras.layers import pooling

    results = []
    original = pooling._tiled_max_vjp

    def spy(*args):
        results.append(original(*args))
        return results[-1]

    monkeypatch.setattr(pooling, "_tiled_max_vjp", spy)
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0  # no ties
    layer = MaxPool2D(pool, strides=strides, padding=padding)
    y = layer(x)
    up = np.random.default_rng(1).standard_normal(y.shape)
    (got,) = layer.compose_input_gradients([up])
    expected = loop_max_vjp(x, pool, strides or pool, padding, up)
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)  # overlaps add in any order
    assert len(results) == (1 if fast else 0)
    assert all(r is not None for r in results)


@pytest.mark.parametrize("peak", [0.0, np.inf])
def test_max_same_padding_never_takes_the_gradient_of_a_window_whose_maximum_is_zero_or_inf(
    peak,
):
    """A 3x3 window with stride 1 pads one cell on every side; the padding never wins, so
    each window's upstream reaches a real element even when the maximum is a value padding
    could hold (0, +inf): the input gradient sums to the upstream's sum."""
    x = np.full((1, 3, 3, 1), -1.0)
    x[0, 0, 0, 0] = peak  # the first real cell of the top-left window, after its padding
    layer = MaxPool2D(3, strides=1, padding="same")
    y = layer(x)
    up = np.ones(y.shape)
    (dx,) = layer.compose_input_gradients([up])
    assert dx.sum() == up.sum()
    assert dx[0, 0, 0, 0] == 4.0  # the four windows that hold the corner all pick it
