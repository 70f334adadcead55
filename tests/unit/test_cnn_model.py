"""A CNN inside SequentialModel: training flag, fit/evaluate/predict, weights on disk, summary."""

from __future__ import annotations

import numpy as np
import pytest

import beras
from beras import config
from beras.activations import ReLU, Softmax
from beras.gradient_tape import GradientTape
from beras.layers import (
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
)
from beras.losses import CategoricalCrossEntropy
from beras.metrics import CategoricalAccuracy
from beras.model import SequentialModel
from beras.optimizers import Adam


def cnn(seed=0):
    """8x8x1 images -> 3 classes: every new layer once."""
    return SequentialModel(
        [
            Conv2D(4, 3, padding="same", seed=seed),
            BatchNormalization(),
            ReLU(),
            MaxPool2D(),
            Conv2D(6, 2, seed=seed + 1),
            AveragePooling2D(padding="same"),
            Flatten(),
            Dropout(0.25, seed=seed + 2),
            Dense(24, 3, initializer="xavier", seed=seed + 3),
            Softmax(),
        ]
    )


def data(n=48, seed=0):
    """Three classes told apart by where the bright square is."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    x = rng.normal(0.0, 0.3, size=(n, 8, 8, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        r = 1 + 2 * label
        x[i, r : r + 3, r : r + 3, 0] += 2.0
    return x, np.eye(3, dtype=np.float32)[labels]


def compiled(model, lr=0.01):
    model.compile(Adam(lr), CategoricalCrossEntropy(), CategoricalAccuracy())
    return model


def test_a_small_cnn_trains_and_its_loss_decreases():
    model = compiled(cnn())
    x, y = data()
    before, _ = model.evaluate(x, y)
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0, seed=0)
    after, preds = model.evaluate(x, y)
    assert history["loss"][-1] < history["loss"][0]
    assert after["loss"] < 0.7 * before["loss"]
    assert preds.shape == (48, 3)
    assert all(w.dtype == np.float32 for w in model.weights)


def test_fit_trains_batchnorm_evaluate_and_predict_do_not():
    model = compiled(cnn())
    x, y = data()
    bn = model.layers[1]
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)
    moving = [np.array(bn.moving_mean), np.array(bn.moving_variance)]
    assert not np.allclose(moving[0], 0.0)  # fit updated the moving statistics
    model.evaluate(x, y)
    model.predict(x)
    np.testing.assert_array_equal(bn.moving_mean, moving[0])
    np.testing.assert_array_equal(bn.moving_variance, moving[1])


def test_predict_is_deterministic_and_dropout_is_off():
    model = compiled(cnn())
    x, _ = data()
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    assert model.layers[7]._mask is None


def test_batch_step_passes_training_to_dropout_and_batchnorm():
    model = compiled(cnn())
    x, y = data(16)
    bn, dropout = model.layers[1], model.layers[7]
    model.batch_step(x, y, training=True)
    assert dropout._mask is not None
    assert bn._batch_stats is True
    model.batch_step(x, y, training=False)
    assert dropout._mask is None
    assert bn._batch_stats is False


def test_gradients_through_the_whole_cnn_match_central_differences():
    previous = config.floatx()
    config.set_floatx("float64")
    try:
        model = cnn(seed=5)
        x, y = data(6, seed=1)
        x = x.astype(np.float64)
        model(x)  # build
        loss_fn = CategoricalCrossEntropy()
        dropout = model.layers[7]
        state = dropout.rng.bit_generator.state

        def loss():
            dropout.rng.bit_generator.state = state  # the same mask every time
            return float(loss_fn(model(x, training=True), y))

        with GradientTape() as tape:
            dropout.rng.bit_generator.state = state
            value = loss_fn(model(x, training=True), y)
        params = model.trainable_variables
        grads = tape.gradient(value, params)
        rng = np.random.default_rng(0)
        for w, g in zip(params, grads):
            for idx in [tuple(rng.integers(0, n) for n in w.shape) for _ in range(3)]:
                old = w[idx]
                w[idx] = old + 1e-6
                plus = loss()
                w[idx] = old - 1e-6
                minus = loss()
                w[idx] = old
                assert g[idx] == pytest.approx((plus - minus) / 2e-6, rel=1e-5, abs=1e-8)
    finally:
        config.set_floatx(previous)


def test_save_load_round_trip_includes_non_trainable_weights(tmp_path):
    model = compiled(cnn())
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)
    names = model.weight_names()
    assert len(names) == len(set(names)) == len(model.weights)
    assert "layers.1.BatchNormalization.moving_mean" in names
    assert "layers.0.Conv2D.kernel" in names
    path = tmp_path / "cnn.npz"
    model.save_weights(path)
    expected = model.predict(x)

    other = compiled(cnn(seed=9))
    other(x[:1])  # build
    assert not np.allclose(other.predict(x), expected)
    other.load_weights(path)
    for a, b in zip(model.weights, other.weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other.predict(x), expected)
    assert [w.trainable for w in other.weights] == [w.trainable for w in model.weights]


def test_summary_counts_trainable_and_non_trainable_parameters():
    model = cnn()
    model(np.zeros((2, 8, 8, 1), dtype=np.float32))
    assert model.input_shape == (None, 8, 8, 1)  # the shapes come from the last call's input
    text = model.summary(print_fn=None)
    conv1 = 3 * 3 * 1 * 4 + 4
    bn = 4 * 4
    conv2 = 2 * 2 * 4 * 6 + 6
    dense = 24 * 3 + 3
    assert f"Total params: {conv1 + bn + conv2 + dense:,}" in text
    assert f"Trainable params: {conv1 + 8 + conv2 + dense:,}" in text
    assert "Non-trainable params: 8" in text
    assert "(None, 8, 8, 4)" in text
    assert "(None, 4, 4, 4)" in text
    assert "(None, 3, 3, 6)" in text
    assert "(None, 2, 2, 6)" in text
    assert "(None, 24)" in text


def test_freezing_the_model_keeps_statistics_non_trainable():
    model = cnn()
    model(np.zeros((2, 8, 8, 1), dtype=np.float32))
    bn = model.layers[1]
    model.trainable = False
    assert model.trainable_variables == []
    model.trainable = True
    assert not bn.moving_mean.trainable
    assert not bn.moving_variance.trainable
    assert bn.trainable
    assert len(model.trainable_variables) == len(model.weights) - 2


def test_exported_from_beras():
    for name in [
        "Conv2D",
        "MaxPool2D",
        "MaxPooling2D",
        "AveragePooling2D",
        "AvgPool2D",
        "Flatten",
        "Dropout",
        "BatchNormalization",
    ]:
        assert getattr(beras, name) is getattr(beras.layers, name)


# ----------------------------------------------------------------- build, unbuilt models
def test_build_creates_every_weight_from_the_input_shape():
    model = cnn()
    assert not model.built
    assert model.compute_output_shape((None, 8, 8, 1)) == (None, 3)
    assert not model.built  # computing shapes builds nothing
    model.build((None, 8, 8, 1))
    assert model.built
    assert model.layers[0].kernel.shape == (3, 3, 1, 4)
    assert model.layers[4].kernel.shape == (2, 2, 4, 6)
    assert model.layers[1].gamma.shape == (4,)
    assert model.input_shape == (None, 8, 8, 1)


def test_build_with_a_wrong_shape_builds_nothing():
    model = cnn()
    with pytest.raises(ValueError, match=r"layer 8 \(Dense\).*\(None, 54\)"):
        model.build((None, 12, 12, 1))  # Flatten gives 54 features, Dense wants 24
    assert not any(getattr(layer, "built", False) for layer in model.layers)
    assert len(model.weights) == 2  # only Dense's own, created with it


def test_summary_of_a_built_model_before_any_call():
    model = cnn()
    model.build((None, 8, 8, 1))
    text = model.summary(print_fn=None)
    assert "(None, 8, 8, 4)" in text
    assert "(None, 24)" in text
    assert "Non-trainable params: 8" in text


def test_summary_of_an_unbuilt_model_says_so():
    text = cnn().summary(print_fn=None)
    assert "0 (unbuilt)" in text
    assert "Total params: 75" in text  # only Dense(24, 3) exists yet


def test_save_and_load_refuse_an_unbuilt_model(tmp_path):
    model = cnn()
    path = tmp_path / "w.npz"
    with pytest.raises(ValueError, match=r"save_weights: the model is not built.*Conv2D.*build"):
        model.save_weights(path)
    assert not path.exists()
    built = cnn()
    built.build((None, 8, 8, 1))
    built.save_weights(path)
    dense_before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError, match=r"load_weights: the model is not built"):
        model.load_weights(path)
    assert not model.built
    for w, old in zip(model.weights, dense_before):
        np.testing.assert_array_equal(w, old)


def test_a_layer_without_compute_output_shape_is_probed():
    """A stencil-style layer with only forward: its output shape comes from one zero sample."""

    class Halve(Dense):
        compute_output_shape = None  # as if the layer never defined it

    model = SequentialModel([Flatten(), Halve(12, 6, seed=0)])
    assert model.compute_output_shape((None, 2, 3, 2)) == (None, 6)
