"""Properties of the convolution family that mutation testing showed unguarded.

* Every bad constructor argument is an error naming the layer (its class name, as written)
  and the argument.
* ``repr`` shows the constructor arguments that differ from the defaults.
* Max pooling conserves the upstream gradient: every window sends its upstream value to
  exactly one element of the input (never to a padded position), whatever the ties.
* Gradients and outputs keep NumPy's promotion of the input and upstream dtypes; dropout
  keeps its input's dtype.
* Dropout at rate 0 is the identity and draws no random numbers; ``get_state`` hands out
  copies that later steps do not change.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from beras.core import Variable
from beras.layers import AveragePooling2D, BatchNormalization, Conv2D, Dropout, MaxPool2D
from beras.optimizers import SGD, Adam, RMSProp


def _names(message: str, *facts: str) -> None:
    """Each fact appears in the message as a whole word (case-sensitive)."""
    for fact in facts:
        assert re.search(rf"(?<!\w){re.escape(fact)}(?!\w)", message), (fact, message)


BAD_ARGUMENTS = [
    (Conv2D, {"filters": 0, "kernel_size": 3}, "filters"),
    (Conv2D, {"filters": 2, "kernel_size": 0}, "kernel_size"),
    (Conv2D, {"filters": 2, "kernel_size": 3, "strides": (1, 0)}, "strides"),
    (Conv2D, {"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    (Conv2D, {"filters": 2, "kernel_size": 3, "seed": -1}, "seed"),
    (MaxPool2D, {"pool_size": 0}, "pool_size"),
    (MaxPool2D, {"strides": -2}, "strides"),
    (AveragePooling2D, {"padding": "causal"}, "padding"),
    (Dropout, {"rate": 1.0}, "rate"),
    (Dropout, {"rate": 0.5, "seed": "seven"}, "seed"),
    (BatchNormalization, {"momentum": 1.5}, "momentum"),
    (BatchNormalization, {"epsilon": 0.0}, "epsilon"),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "what"), BAD_ARGUMENTS, ids=[f"{c.__name__}-{w}" for c, _, w in BAD_ARGUMENTS]
)
def test_a_bad_argument_names_the_layer_and_the_argument(cls, kwargs, what):
    with pytest.raises((ValueError, TypeError)) as err:
        cls(**kwargs)
    _names(str(err.value), cls.__name__, what)


def test_batch_normalization_repr_shows_a_non_default_axis():
    assert repr(BatchNormalization()) == "BatchNormalization()"
    assert repr(BatchNormalization(axis=1)) == "BatchNormalization(axis=1)"
    assert repr(BatchNormalization(axis=-2)) == "BatchNormalization(axis=-2)"


# ------------------------------------------------------------------------ max pooling
POOLS = [
    MaxPool2D(2),
    MaxPool2D(3, strides=1, padding="same"),
    MaxPool2D(2, strides=1),
    MaxPool2D((3, 2), strides=(2, 3), padding="same"),
]


@pytest.mark.parametrize("pool", POOLS, ids=repr)
@pytest.mark.parametrize("values", ["ties", "distinct", "non-positive"])
def test_max_pool_sends_each_window_gradient_to_one_real_element(pool, values):
    rng = np.random.default_rng(3)
    shape = (2, 5, 7, 3)
    x = {
        "ties": rng.integers(-1, 2, size=shape).astype(float),  # many equal maxima
        "distinct": rng.normal(size=shape),
        "non-positive": -np.abs(rng.normal(size=shape)) * (rng.random(shape) < 0.5),
    }[values]
    out = pool(x)
    up = rng.uniform(0.5, 2.0, size=out.shape)
    (dx,) = pool.compose_input_gradients([up])
    dx = np.asarray(dx)
    assert dx.shape == x.shape
    # conservation: nothing lost to padding, nothing counted twice
    np.testing.assert_allclose(dx.sum(), up.sum(), rtol=1e-12)
    assert np.all(dx[dx != 0] > 0)


@pytest.mark.parametrize("pool", [MaxPool2D(2), MaxPool2D(2, strides=1), AveragePooling2D(2)])
@pytest.mark.parametrize(
    ("x_dtype", "up_dtype"), [(np.float32, np.float64), (np.float64, np.float32)]
)
def test_pooling_gradients_promote_input_and_upstream_dtypes(pool, x_dtype, up_dtype):
    x = np.random.default_rng(4).normal(size=(2, 4, 6, 3)).astype(x_dtype)
    out = pool(x)
    (dx,) = pool.compose_input_gradients([np.ones(out.shape, dtype=up_dtype)])
    assert np.asarray(dx).dtype == np.result_type(x_dtype, up_dtype)


# ---------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_keeps_its_input_dtype(dtype):
    layer = Dropout(0.5, seed=1)
    x = np.ones((4, 6), dtype=dtype)
    assert layer(x, training=True).dtype == dtype
    assert layer(x, training=False).dtype == dtype


def test_dropout_at_rate_zero_is_the_identity_and_draws_nothing():
    layer = Dropout(0.0, seed=1)
    before = layer.rng.bit_generator.state
    x = np.random.default_rng(5).normal(size=(3, 4))
    np.testing.assert_array_equal(layer(x, training=True), x)
    assert layer.rng.bit_generator.state == before


# ---------------------------------------------------------------------- optimizer state
@pytest.mark.parametrize("opt", [Adam(0.1), RMSProp(0.1), SGD(0.1, momentum=0.9)], ids=repr)
def test_get_state_hands_out_copies(opt):
    params = [Variable(np.ones(3))]
    opt.apply_gradients(params, [np.full(3, 0.5)])
    state = opt.get_state(params)
    kept = {k: np.array(v, copy=True) for k, v in state.items()}
    opt.apply_gradients(params, [np.full(3, 0.5)])
    assert all(np.array_equal(state[k], kept[k]) for k in kept)


def test_unseeded_dropout_layers_draw_independent_masks():
    """Each unseeded layer seeds its own generator from the global one over 2**63
    values: forty layers never share a mask (a small seed range would)."""
    from beras.utils import set_random_seed

    set_random_seed(0)
    masks = {Dropout(0.5)(np.ones((1, 64)), training=True).tobytes() for _ in range(40)}
    assert len(masks) == 40


def test_batch_normalization_momentum_takes_both_ends_of_its_range():
    assert BatchNormalization(momentum=0.0).momentum == 0.0
    assert BatchNormalization(momentum=1.0).momentum == 1.0
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError) as err:
            BatchNormalization(momentum=bad)
        _names(str(err.value), "BatchNormalization", "momentum")


@pytest.mark.parametrize(
    ("shape", "axis"),
    [
        ((4, 3, 5), 1),
        ((4, 3, 5), -2),
        ((3, 2, 4, 5), 2),
        ((4, 3, 5), -1),  # features last, 5 not dividing 4 * 3
        ((6, 5), -1),
        ((2, 3, 4, 5), -1),
    ],
)
def test_batch_normalization_on_an_inner_feature_axis_matches_a_reference(float64, shape, axis):
    """Features on any axis (the one before last included): statistics over every other
    axis, as a plain NumPy computation gives them."""
    rng = np.random.default_rng(6)
    x = rng.normal(2.0, 3.0, size=shape)
    layer = BatchNormalization(axis=axis, epsilon=1e-3)
    out = np.asarray(layer(x, training=True))
    others = tuple(i for i in range(len(shape)) if i != axis % len(shape))
    mean = x.mean(axis=others, keepdims=True)
    var = x.var(axis=others, keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3), atol=1e-10)
    up = rng.normal(size=shape)
    (dx,) = layer.compose_input_gradients([up])
    n = x.size // shape[axis]
    xhat = (x - mean) / np.sqrt(var + 1e-3)
    expected = (
        (
            n * up
            - up.sum(axis=others, keepdims=True)
            - xhat * (up * xhat).sum(axis=others, keepdims=True)
        )
        / n
        / np.sqrt(var + 1e-3)
    )
    np.testing.assert_allclose(np.asarray(dx), expected, atol=1e-10)


@pytest.mark.parametrize(
    ("w_dtype", "up_dtype"), [("float64", np.float32), ("float32", np.float64)]
)
def test_conv_input_gradient_promotes_kernel_and_upstream_dtypes(w_dtype, up_dtype):
    from beras import config

    previous = config.floatx()
    config.set_floatx(w_dtype)
    try:
        layer = Conv2D(2, 3, seed=0)
        out = layer(np.ones((1, 4, 4, 1)))
    finally:
        config.set_floatx(previous)
    (dx,) = layer.compose_input_gradients([np.ones(out.shape, dtype=up_dtype)])
    assert np.asarray(dx).dtype == np.result_type(w_dtype, up_dtype)


# ------------------------------------------------------------- repr and messages, exactly
@pytest.mark.parametrize(
    ("layer", "text"),
    [
        (Conv2D(2, 3), "Conv2D(2, kernel_size=(3, 3))"),
        (
            Conv2D(2, 3, strides=2, padding="same"),
            "Conv2D(2, kernel_size=(3, 3), strides=(2, 2), padding='same')",
        ),
        (Conv2D(2, 3, strides=(1, 2)), "Conv2D(2, kernel_size=(3, 3), strides=(1, 2))"),
        (Conv2D(2, 3, strides=(2, 1)), "Conv2D(2, kernel_size=(3, 3), strides=(2, 1))"),
        (MaxPool2D(), "MaxPool2D(pool_size=(2, 2))"),
        (MaxPool2D(3, strides=1), "MaxPool2D(pool_size=(3, 3), strides=(1, 1))"),
        (MaxPool2D(2, padding="same"), "MaxPool2D(pool_size=(2, 2), padding='same')"),
        (
            AveragePooling2D(2, strides=1, padding="SAME"),
            "AveragePooling2D(pool_size=(2, 2), strides=(1, 1), padding='same')",
        ),
    ],
)
def test_repr_is_the_constructor_call_without_defaults(layer, text):
    assert repr(layer) == text


RANK = "expected inputs of rank 4, (batch, height, width, channels), got shape"


@pytest.mark.parametrize("layer", [Conv2D(2, 3), MaxPool2D()], ids=repr)
def test_shape_errors_say_exactly_what_was_expected(layer):
    def message(f):
        with pytest.raises(ValueError) as err:
            f()
        return str(err.value)

    assert message(lambda: layer(np.ones((4, 4, 3)))) == (
        f"{layer!r} {RANK} (4, 4, 3) (a single image? add a batch axis: x[None])"
    )
    assert message(lambda: layer(np.ones((1, 4, 4, 3, 1)))) == f"{layer!r} {RANK} (1, 4, 4, 3, 1)"
    window = "kernel (3, 3)" if isinstance(layer, Conv2D) else "pool window (2, 2)"
    assert message(lambda: layer.compute_output_shape((None, 1, 4, 3))) == (
        f"{layer!r}: the {window} is larger than the (padded) input of height and width "
        "(1, 4), from an input of shape (None, 1, 4, 3) with padding='valid'; use a larger "
        "input, a smaller window or padding='same'"
    )
    assert layer.compute_output_shape((None, 6, 4, 3))[0] is None
    assert layer.compute_output_shape((5, 6, 4, 3))[0] == 5


def test_a_channel_mismatch_names_the_built_channels():
    layer = Conv2D(2, 3)
    layer(np.ones((1, 4, 4, 3)))
    with pytest.raises(ValueError) as err:
        layer(np.ones((1, 4, 4, 2)))
    assert str(err.value) == (
        "Conv2D(2, kernel_size=(3, 3)) was built for inputs with 3 channels (kernel "
        "(3, 3, 3, 2)), got inputs of shape (1, 4, 4, 2) with 2 channels"
    )


def test_batch_normalization_refuses_the_batch_axis_in_every_spelling():
    for axis in (0, -3):
        with pytest.raises(ValueError) as err:
            BatchNormalization(axis=axis)(np.ones((2, 3, 4)), training=True)
        _names(str(err.value), "not the batch axis")


def test_a_seeded_conv_draws_its_bias_from_its_seed_too():
    def weights(seed):
        layer = Conv2D(2, 3, bias_initializer="normal", seed=seed)
        layer.build((None, 5, 5, 1))
        return np.asarray(layer.kernel).copy(), np.asarray(layer.bias).copy()

    (k1, b1), (k2, b2), (_, b3) = weights(4), weights(4), weights(5)
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(b1, b2)
    assert not np.array_equal(b1, b3)


@pytest.mark.parametrize("shape", [(4, 0), (None, None), (4, 3, None)])
def test_batch_normalization_needs_a_known_positive_feature_count(shape):
    layer = BatchNormalization()
    with pytest.raises(ValueError) as err:
        layer.build(shape)
    assert str(err.value) == (
        f"BatchNormalization() expected a positive feature count, got shape {shape}"
    )
    assert layer.weights == []  # nothing was built


def test_batch_normalization_refuses_a_scalar_input_exactly():
    with pytest.raises(ValueError) as err:
        BatchNormalization()(np.float64(3.0))
    assert str(err.value) == (
        "BatchNormalization() expected inputs with a batch axis and a feature axis -1 "
        "(not the batch axis), got shape ()"
    )
