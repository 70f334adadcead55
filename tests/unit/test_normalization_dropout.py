"""BatchNormalization and Dropout: training flag, statistics, exact gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
from finite_differences import numeric_grad

from beras.core import NoLocalJacobianError, Variable
from beras.gradient_tape import GradientTape
from beras.layers import BatchNormalization, Dropout
from beras.utils import get_rng, set_random_seed


def loop_batchnorm(x, gamma, beta, mean=None, var=None, eps=1e-3):
    """The reference, channels last: per channel, statistics by explicit loops."""
    out = np.empty_like(x)
    flat = x.reshape(-1, x.shape[-1])
    res = out.reshape(-1, x.shape[-1])
    stats = []
    for c in range(x.shape[-1]):
        column = [flat[i, c] for i in range(flat.shape[0])]
        m = sum(column) / len(column) if mean is None else mean[c]
        v = sum((value - m) ** 2 for value in column) / len(column) if var is None else var[c]
        stats.append((m, v))
        for i in range(flat.shape[0]):
            res[i, c] = gamma[c] * (flat[i, c] - m) / np.sqrt(v + eps) + beta[c]
    return out, stats


def built_bn(shape, seed=0, **kwargs):
    layer = BatchNormalization(**kwargs)
    layer.build(shape)
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        if w.name == "moving_variance":
            w[...] = rng.uniform(0.5, 2.0, size=w.shape)
        else:
            w[...] = rng.normal(size=w.shape)
    return layer


# ------------------------------------------------------------------ BatchNormalization
def test_weights_names_trainability_and_lazy_build():
    layer = BatchNormalization()
    assert layer.weights == []
    assert not layer.built
    layer(np.ones((4, 3, 3, 5)))
    assert [w.name for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.trainable for w in layer.weights] == [True, True, False, False]
    assert all(isinstance(w, Variable) and w.shape == (5,) for w in layer.weights)
    np.testing.assert_array_equal(layer.gamma, 1.0)
    np.testing.assert_array_equal(layer.moving_variance, 1.0)
    np.testing.assert_array_equal(layer.beta, 0.0)
    np.testing.assert_array_equal(layer.moving_mean, 0.0)
    assert layer.trainable_variables == [layer.gamma, layer.beta]
    assert layer.non_trainable_variables == [layer.moving_mean, layer.moving_variance]
    assert layer.gamma.dtype == np.float32


def test_center_and_scale_off():
    layer = BatchNormalization(center=False, scale=False)
    layer(np.ones((2, 3)))
    assert [w.name for w in layer.weights] == ["moving_mean", "moving_variance"]
    assert BatchNormalization(center=False).build((None, 3)) is None


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2), (2, 3, 3, 3)])
def test_training_forward_matches_loops(float64, shape):
    x = np.random.default_rng(1).normal(2.0, 3.0, size=shape)
    layer = built_bn((None, *shape[1:]))
    out = layer(x, training=True)
    expected, _ = loop_batchnorm(x, layer.gamma, layer.beta)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_inference_uses_the_moving_statistics_and_changes_nothing(float64):
    x = np.random.default_rng(2).normal(size=(4, 3, 3, 2))
    layer = built_bn((None, 3, 3, 2))
    before = [np.array(w) for w in layer.weights]
    out = layer(x)  # training defaults to False
    expected, _ = loop_batchnorm(
        x, layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance
    )
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    for w, old in zip(layer.weights, before):
        np.testing.assert_array_equal(w, old)


def test_moving_statistics_update_only_in_training(float64):
    rng = np.random.default_rng(3)
    layer = BatchNormalization(momentum=0.9)
    x1, x2 = rng.normal(1.0, 2.0, size=(8, 3)), rng.normal(-1.0, 0.5, size=(8, 3))
    layer(x1, training=True)
    np.testing.assert_allclose(layer.moving_mean, 0.1 * x1.mean(axis=0))
    np.testing.assert_allclose(layer.moving_variance, 0.9 + 0.1 * x1.var(axis=0))  # biased
    layer(x2, training=True)
    np.testing.assert_allclose(layer.moving_mean, 0.9 * 0.1 * x1.mean(0) + 0.1 * x2.mean(0))
    expected_var = 0.9 * (0.9 + 0.1 * x1.var(0)) + 0.1 * x2.var(0)
    np.testing.assert_allclose(layer.moving_variance, expected_var)
    mean, var = np.array(layer.moving_mean), np.array(layer.moving_variance)
    layer(x1, training=False)
    np.testing.assert_array_equal(layer.moving_mean, mean)
    np.testing.assert_array_equal(layer.moving_variance, var)


def test_frozen_layer_runs_in_inference_mode(float64):
    """Keras 3: trainable=False means inference mode even inside fit (training=True)."""
    x = np.random.default_rng(4).normal(size=(5, 3))
    layer = built_bn((None, 3))
    layer.trainable = False
    assert layer.trainable_variables == []
    assert not layer.moving_mean.trainable
    before = [np.array(w) for w in layer.weights]
    out = layer(x, training=True)
    np.testing.assert_allclose(out, layer(x, training=False))
    for w, old in zip(layer.weights, before):
        np.testing.assert_array_equal(w, old)
    layer.trainable = True
    assert layer.trainable_variables == [layer.gamma, layer.beta]
    assert not layer.moving_mean.trainable  # unfreezing never makes the statistics trainable
    assert not np.allclose(layer(x, training=True), out)


def test_frozen_before_build_stays_frozen():
    layer = BatchNormalization()
    layer.trainable = False
    layer(np.ones((2, 3)))
    assert layer.trainable_variables == []


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [((5, 3), {}), ((3, 2, 3, 2), {}), ((2, 3, 2, 2), {"axis": 1}), ((4, 2), {"center": False})],
)
def test_gradients_match_central_differences(float64, training, shape, kwargs):
    """d/dx for every element of every sample (training couples the batch), and the weights."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=shape)
    layer = built_bn((None, *shape[1:]), seed=6, **kwargs)
    out = layer(x, training=training)
    upstream = rng.normal(size=out.shape)
    (dx,) = layer.compose_input_gradients([upstream])
    weight_grads = layer.compose_weight_gradients([upstream])

    def f():
        return layer.forward(x, training=training)

    np.testing.assert_allclose(dx, numeric_grad(f, x, upstream), atol=1e-7)
    assert len(weight_grads) == len(layer.weights)
    for w, g in zip(layer.weights, weight_grads):
        np.testing.assert_allclose(g, numeric_grad(f, w, upstream), atol=1e-7, err_msg=w.name)


def test_training_gradient_couples_the_batch(float64):
    """In training mode the output of one sample depends on the other samples."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(4, 3))
    layer = BatchNormalization()
    out = layer(x, training=True)
    upstream = np.zeros(out.shape)
    upstream[0] = rng.normal(size=3)  # a loss on sample 0 only
    (dx,) = layer.compose_input_gradients([upstream])
    assert np.abs(dx[1:]).max() > 1e-3
    np.testing.assert_allclose(
        dx, numeric_grad(lambda: layer.forward(x, training=True), x, upstream), atol=1e-7
    )


def test_batchnorm_through_a_tape(float64):
    x = Variable(np.random.default_rng(8).normal(size=(6, 2)))
    layer = built_bn((None, 2), seed=9)
    with GradientTape() as tape:
        out = layer(layer(x, training=True), training=True)  # called twice in one tape
    grads = tape.gradient(out, [x, layer.gamma, layer.beta])
    ones = np.ones(out.shape)

    def f():
        return layer.forward(layer.forward(x, training=True), training=True)

    for g, source in zip(grads, [x, layer.gamma, layer.beta]):
        np.testing.assert_allclose(g, numeric_grad(f, source, ones), atol=1e-6)


def test_batchnorm_has_no_local_jacobian():
    layer = BatchNormalization()
    layer(np.ones((2, 3)))
    with pytest.raises(NoLocalJacobianError):
        layer.get_input_gradients()
    with pytest.raises(NoLocalJacobianError):
        layer.get_weight_gradients()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"momentum": 1.5}, "momentum"),
        ({"momentum": "high"}, "momentum"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"axis": 1.0}, "axis"),
    ],
)
def test_batchnorm_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"BatchNormalization.*{match}"):
        BatchNormalization(**kwargs)


def test_batchnorm_shape_errors_change_nothing():
    layer = BatchNormalization()
    with pytest.raises(ValueError, match=r"BatchNormalization.*shape \(3,\)"):
        layer(np.ones(3))
    assert not layer.built
    with pytest.raises(ValueError, match=r"BatchNormalization.*not the batch axis"):
        BatchNormalization(axis=0)(np.ones((2, 3)))
    layer(np.ones((4, 3)), training=True)
    before = [np.array(w) for w in layer.weights]
    with pytest.raises(ValueError, match=r"BatchNormalization.*3 features.*\(4, 5\)"):
        layer(np.ones((4, 5)), training=True)
    with pytest.raises(ValueError, match=r"BatchNormalization.*rank 2.*\(4, 2, 3\)"):
        layer(np.ones((4, 2, 3)), training=True)
    for w, old in zip(layer.weights, before):
        np.testing.assert_array_equal(w, old)


def test_compute_output_shape_is_the_input_shape():
    assert BatchNormalization().compute_output_shape((None, 4, 4, 3)) == (None, 4, 4, 3)


# ------------------------------------------------------------------------------ Dropout
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.5", True, None])
def test_dropout_rate_outside_the_unit_interval(rate):
    with pytest.raises(ValueError, match=r"Dropout.*rate.*\[0, 1\)"):
        Dropout(rate)


def test_dropout_is_the_identity_at_inference():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    layer = Dropout(0.5, seed=0)
    out = layer(x)
    np.testing.assert_array_equal(out, x)
    assert out.dtype == np.float32
    assert not np.shares_memory(out, x)
    np.testing.assert_array_equal(layer.get_input_gradients()[0], np.ones_like(x))


def test_dropout_training_masks_and_rescales():
    x = np.ones((200, 50))
    layer = Dropout(0.3, seed=1)
    out = np.asarray(layer(x, training=True))
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1.0 / 0.7)
    assert abs(kept.mean() - 0.7) < 0.02  # 10,000 draws: 0.02 is > 4 standard deviations
    assert abs(out.mean() - 1.0) < 0.03  # inverted dropout keeps the expectation
    assert Dropout(0.0)(x, training=True).tolist() == x.tolist()


def test_dropout_draws_from_its_rng_and_replays_with_it_held_fixed(float64):
    x = np.random.default_rng(2).normal(size=(3, 4))
    layer = Dropout(0.5, seed=3)
    state = layer.rng.bit_generator.state
    a = np.array(layer(x, training=True))
    b = np.array(layer(x, training=True))
    assert not np.array_equal(a, b)  # a new mask per call
    layer.rng.bit_generator.state = state
    np.testing.assert_array_equal(layer(x, training=True), a)


def test_dropout_gradient_with_the_rng_fixed(float64):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 2, 2, 2))
    layer = Dropout(0.4, seed=5)
    state = layer.rng.bit_generator.state
    out = layer(x, training=True)
    upstream = rng.normal(size=out.shape)
    (dx,) = layer.compose_input_gradients([upstream])

    def f():
        layer.rng.bit_generator.state = state
        return layer.forward(x, training=True)

    np.testing.assert_allclose(dx, numeric_grad(f, x, upstream), atol=1e-8)
    (jac,) = layer.get_input_gradients()  # diagonal, elementwise: the scaled mask
    np.testing.assert_allclose(jac * upstream, dx)
    assert layer.input_gradient_layout == "elementwise"
    assert Dropout.stochastic is True


def test_dropout_seeded_from_the_global_seed():
    set_random_seed(11)
    a = np.array(Dropout(0.5)(np.ones((4, 4)), training=True))
    set_random_seed(11)
    layer = Dropout(0.5)
    b = np.array(layer(np.ones((4, 4)), training=True))
    np.testing.assert_array_equal(a, b)
    assert layer.rng is not get_rng()  # a generator of its own, not the shared global one


def test_dropout_training_flag_is_not_an_input():
    layer = Dropout(0.5, seed=0)
    layer(np.ones((2, 2)), training=True)
    assert len(layer.inputs) == 1
    assert "training" not in layer.input_dict


def test_batch_norm_input_and_weight_products_of_one_upstream_share_their_sums(monkeypatch):
    """The tape asks for the input, then the weight products of the same upstream array: the
    two per-feature sums are computed once; another upstream gets sums of its own."""
    from beras.layers import normalization

    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4, 3))
    layer = BatchNormalization()
    layer(x, training=True)
    up, other = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    fresh = BatchNormalization()
    fresh(x, training=True)
    expected_w = fresh.compose_weight_gradients([other])

    calls = []
    original = normalization.BatchNormalization._sum

    def counting(self, wide):
        calls.append(1)
        return original(self, wide)

    monkeypatch.setattr(normalization.BatchNormalization, "_sum", counting)
    layer.compose_input_gradients([up])
    layer.compose_weight_gradients([up])
    assert len(calls) == 1
    for got, want in zip(layer.compose_weight_gradients([other]), expected_w, strict=True):
        np.testing.assert_array_equal(got, want)  # not the sums of ``up``
    assert len(calls) == 2
