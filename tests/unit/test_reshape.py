"""Reshape: Keras's ``Reshape(target_shape)``, per sample, with a ``-1`` inferred; its
gradient is the upstream gradient reshaped back (identity local Jacobian)."""

from __future__ import annotations

import numpy as np
import pytest

from beras.gradient_tape import GradientTape
from beras.layers import Flatten, Reshape
from beras.losses import MeanSquaredError


def test_reshape_keeps_the_batch_and_row_major_order() -> None:
    x = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    out = Reshape((3, 4, 1))(x)
    assert out.shape == (2, 3, 4, 1)
    np.testing.assert_array_equal(np.asarray(out), x.reshape(2, 3, 4, 1))
    assert Reshape((-1, 2))(x).shape == (2, 6, 2)
    np.testing.assert_array_equal(np.asarray(Flatten()(Reshape((3, 4))(x))), x)


def test_compute_output_shape() -> None:
    assert Reshape((28, 28, 1)).compute_output_shape((None, 784)) == (None, 28, 28, 1)
    assert Reshape((-1, 4)).compute_output_shape((None, 2, 6)) == (None, 3, 4)
    assert Reshape((-1, 4)).compute_output_shape((None, None)) == (None, None, 4)
    with pytest.raises(ValueError, match=r"expected samples of 12 values, got samples of 10"):
        Reshape((3, 4)).compute_output_shape((None, 10))


@pytest.mark.parametrize("bad", [(), (0, 4), (-1, -1), (2.5,), "34", None, (True, 2)])
def test_invalid_target_shapes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError) as err:
        Reshape(bad)  # type: ignore[arg-type]
    assert str(err.value) == (
        "Reshape: target_shape must be a non-empty tuple of positive ints with at most one "
        f"-1, got {bad!r}"
    )


def test_a_size_mismatch_names_the_layer() -> None:
    with pytest.raises(ValueError, match=r"Reshape\(\(3, 4\)\) expected samples of 12 values"):
        Reshape((3, 4))(np.zeros((2, 10), np.float32))
    with pytest.raises(ValueError, match=r"not a multiple of 4"):
        Reshape((-1, 4))(np.zeros((2, 10), np.float32))


def test_gradient_is_the_upstream_gradient_reshaped_back() -> None:
    """Flatten(Reshape(x)) is x, so the tape's gradient through both is the loss's own."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 12))
    target = rng.normal(size=(3, 12))
    with GradientTape() as tape:
        reshaped = Reshape((2, 6))(x)
        loss = MeanSquaredError()(Flatten()(reshaped), target)
    (through,) = tape.gradient(loss, [x])
    with GradientTape() as tape:
        direct_loss = MeanSquaredError()(x, target)
    (direct,) = tape.gradient(direct_loss, [x])
    assert through.shape == x.shape
    np.testing.assert_allclose(np.asarray(through), np.asarray(direct), rtol=1e-12)


def test_local_jacobian_is_the_identity_of_each_sample() -> None:
    x = np.zeros((2, 6))
    layer = Reshape((3, 2))
    layer(x)
    (local,) = layer.get_input_gradients()
    assert local.shape == (2, 6, 6)
    np.testing.assert_array_equal(np.asarray(local)[1], np.eye(6))
    flat = Reshape((-1,))
    flat(np.zeros((2, 3, 2)))
    np.testing.assert_array_equal(np.asarray(flat.get_input_gradients()[0]), np.eye(6))


@pytest.mark.parametrize("layer", [Flatten(), Reshape((1,))], ids=["Flatten", "Reshape"])
def test_output_shape_of_a_batch_of_scalars_and_of_unknown_sizes(layer) -> None:
    """A rank-1 input is a batch of scalars: one feature each, as Keras has it. An
    unknown non-batch size makes the feature count unknown, with the batch size kept."""
    assert layer.compute_output_shape((4,)) == (4, 1)
    assert layer(np.arange(4.0)).shape == (4, 1)
    unknown = layer.compute_output_shape((7, None, 3))
    assert unknown[0] == 7
    with pytest.raises(ValueError) as err:
        layer.compute_output_shape(())
    assert repr(layer) in str(err.value)
    assert "batch axis" in str(err.value)


def test_dense_output_shape_error_says_what_it_expected() -> None:
    from beras.layers import Dense

    layer = Dense(5, 3)
    assert layer.compute_output_shape((None, 5)) == (None, 3)
    with pytest.raises(ValueError) as err:
        layer.compute_output_shape((None, 4))
    assert str(err.value) == f"{layer!r} expected inputs of shape (batch, 5), got (None, 4)"
