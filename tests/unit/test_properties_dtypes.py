"""Property: every gradient keeps the dtype the layer computes in, in every view.

A float32 model must train in float32: a local Jacobian, a vector-Jacobian product or a
tape gradient that silently comes back in float64 doubles memory and time, and (for the
weights) makes the optimizer cast on every step. The compute dtype is the inputs' float
type, except for layers with weights, which cast their inputs to the weights' dtype (as
Keras autocasts): their gradients have the weights' dtype whatever the inputs were.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras import config
from beras.gradient_tape import GradientTape
from beras.layers import Dense
from beras.testing import domains, sample_case

DTYPES = [np.float32, np.float64]
DOMAINS = domains()


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def floatx(request):
    previous = config.floatx()
    config.set_floatx(np.dtype(request.param).name)
    yield np.dtype(request.param)
    config.set_floatx(previous)


def _views(layer, inputs, outputs):
    """Every gradient of every view, by name: local, composed, and through the tape."""
    views = {}
    if layer.has_local_jacobian:
        views["get_input_gradients"] = layer.get_input_gradients()
        views["get_weight_gradients"] = layer.get_weight_gradients()
    upstream = [np.ones(np.shape(out), dtype=out.dtype) for out in outputs]
    views["compose_input_gradients"] = layer.compose_input_gradients(upstream)
    views["compose_weight_gradients"] = layer.compose_weight_gradients(upstream)
    with GradientTape() as tape:
        sources = [np.asarray(x).view(type(outputs[0])) for x in inputs]
        out = layer(*sources)
    first = out[0] if isinstance(out, list) else out
    views["tape"] = tape.gradient(first, [*sources, *layer.trainable_variables])
    return views


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.name or d.cls.__name__)
def test_every_gradient_has_the_compute_dtype(domain, floatx):
    case = sample_case(domain, rng=3, dtype=floatx)
    layer = case.diffable
    out = layer(*case.inputs)
    outputs = out if isinstance(out, list) else [out]
    for name, grads in _views(layer, case.inputs, outputs).items():
        for k, g in enumerate(grads):
            if g is None:  # the tape's answer for a constant input
                continue
            assert np.asarray(g).dtype == floatx, (
                f"{layer!r}.{name}()[{k}] is {np.asarray(g).dtype}, expected {floatx}"
            )


@pytest.mark.parametrize("input_dtype", [np.float64, np.float16, np.int64])
def test_dense_gradients_have_the_weights_dtype_whatever_the_inputs(input_dtype):
    """float32 weights and float64/float16/int inputs: the layer computes in float32."""
    layer = Dense(3, 2, seed=0)
    assert layer.w.dtype == np.float32
    x = (np.arange(12).reshape(4, 3) - 5).astype(input_dtype)
    out = layer(x)
    assert out.dtype == np.float32
    up = [np.ones((4, 2), dtype=np.float32)]
    grads = {
        "get_input_gradients": layer.get_input_gradients(),
        "get_weight_gradients": layer.get_weight_gradients(),
        "compose_input_gradients": layer.compose_input_gradients(up),
        "compose_weight_gradients": layer.compose_weight_gradients(up),
    }
    for name, gs in grads.items():
        for k, g in enumerate(gs):
            assert g.dtype == np.float32, f"Dense.{name}()[{k}] is {g.dtype}"
    # and the values are those of the float32 copy of x
    np.testing.assert_array_equal(grads["get_weight_gradients"][0][..., 0], x.astype(np.float32))


@pytest.mark.parametrize("label_dtype", [np.float64, np.int64, np.bool_])
def test_losses_compute_in_the_predictions_dtype_whatever_the_labels(label_dtype):
    """Labels are constants: float32 predictions give a float32 loss and float32 gradients."""
    from beras.losses import CategoricalCrossEntropy, MeanSquaredError

    pred = np.array([[0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    labels = np.array([[0, 1], [1, 0]]).astype(label_dtype)
    for loss in (MeanSquaredError(), CategoricalCrossEntropy()):
        value = loss(pred, labels)
        assert value.dtype == np.float32, repr(loss)
        for g in loss.get_input_gradients():
            assert g.dtype == np.float32, repr(loss)
