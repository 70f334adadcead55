"""Properties of GradientTape.gradient beyond single-output chains.

* A layer with several outputs gets one upstream per output (zeros for an output the
  target does not depend on) and its gradients combine every output that leads to the
  target, and only those.
* ``gradient`` leaves every layer as it found it: a layer called several times inside the
  tape has its last call's ``inputs``/``outputs`` afterwards, whatever order the tape
  replayed the calls in.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from beras.activations import Sigmoid
from beras.core import Diffable, NoLocalJacobianError, Tensor, Variable
from beras.gradient_tape import GradientTape
from beras.layers import Add, Dense


class _TwoHeads(Diffable):
    """``[w * x, x**2]``: two outputs, composed directly (no local Jacobians)."""

    has_local_jacobian = False

    def __init__(self, w):
        self.w = Variable(np.asarray(w, dtype=np.float64))

    @property
    def weights(self):
        return [self.w]

    def forward(self, x):
        x = np.asarray(x)
        return [x * np.asarray(self.w), x * x]

    def get_input_gradients(self):
        raise self._no_local_jacobian()

    def get_weight_gradients(self):
        raise self._no_local_jacobian()

    def compose_input_gradients(self, J=None):
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        x = np.asarray(self.inputs[0])
        j_scaled, j_square = (np.asarray(u) for u in J)
        return [Tensor(j_scaled * np.asarray(self.w) + j_square * 2 * x)]

    def compose_weight_gradients(self, J=None):
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        x = np.asarray(self.inputs[0])
        return [Tensor((np.asarray(J[0]) * x).sum(axis=0))]


X = np.array([[1.0, -2.0], [3.0, 0.5]])
W = np.array([3.0, -1.0])


def _source(x=X):
    return Tensor(np.array(x))


def test_the_second_output_alone_drives_the_gradient():
    """y = x**2 (the second head): dy/dx = 2x, and w, which feeds only the first head, gets 0."""
    heads, x = _TwoHeads(W), _source()
    with GradientTape() as tape:
        _, square = heads(x)
    dx, dw = tape.gradient(square, [x, heads.w])
    np.testing.assert_array_equal(dx, 2 * X)
    np.testing.assert_array_equal(dw, np.zeros_like(W))


def test_the_first_output_alone_drives_the_gradient():
    heads, x = _TwoHeads(W), _source()
    with GradientTape() as tape:
        scaled, _ = heads(x)
    dx, dw = tape.gradient(scaled, [x, heads.w])
    np.testing.assert_array_equal(dx, np.broadcast_to(W, X.shape))
    np.testing.assert_array_equal(dw, X.sum(axis=0))


def test_both_outputs_add_up():
    """y = w x + x**2 summed: dy/dx = w + 2x, dy/dw = sum_b x."""
    heads, x = _TwoHeads(W), _source()
    with GradientTape() as tape:
        scaled, square = heads(x)
        y = Add()(scaled, square)
    dx, dw = tape.gradient(y, [x, heads.w])
    np.testing.assert_array_equal(dx, W + 2 * X)
    np.testing.assert_array_equal(dw, X.sum(axis=0))


def test_a_multi_output_layer_never_sees_a_missing_upstream():
    """The layer raises on J=None: the tape must always hand it one array per output."""
    heads, x = _TwoHeads(W), _source()
    heads(x)
    with pytest.raises(NoLocalJacobianError) as err:
        heads.compose_input_gradients(None)
    # names the layer, the reason and what to call instead, each as a whole word
    for fact in (repr(heads), "has_local_jacobian = False", "compose_input_gradients(J)"):
        assert re.search(rf"(?<!\w){re.escape(fact)}(?!\w)", str(err.value)), fact
    with GradientTape() as tape:
        _, square = heads(x)
        y = Sigmoid()(square)
    (dx,) = tape.gradient(y, [x])
    s = 1 / (1 + np.exp(-(X * X)))
    np.testing.assert_allclose(dx, s * (1 - s) * 2 * X, rtol=1e-14)


def test_every_layer_gets_its_last_calls_state_back():
    """Two Dense layers, each called twice (d1, d2, d1, d2): after ``gradient`` each holds
    the inputs and outputs of its own second call, not the first one the tape replayed last."""
    d1, d2 = Dense(2, 2, seed=0), Dense(2, 2, seed=1)
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    with GradientTape() as tape:
        h1 = d1(x)
        h2 = d2(h1)
        h3 = d1(h2)
        y = d2(h3)
    before = {layer: (layer.inputs[0], layer.outputs[0]) for layer in (d1, d2)}
    assert before[d1][0] is h2
    assert before[d2][0] is h3
    tape.gradient(y, [d1.w, d2.w, d1.b, d2.b])
    for layer in (d1, d2):
        inputs, outputs = before[layer]
        assert layer.inputs[0] is inputs, f"{layer!r} kept a replayed call's inputs"
        assert layer.outputs[0] is outputs, f"{layer!r} kept a replayed call's outputs"


class _RecordingHeads(_TwoHeads):
    """``_TwoHeads`` in float32 that records the dtype and shape of every upstream."""

    def __init__(self, w):
        super().__init__(w)
        self.w = Variable(np.asarray(w, dtype=np.float32))
        self.seen: list[list[tuple[np.dtype, tuple[int, ...]]]] = []

    def compose_input_gradients(self, J=None):
        self.seen.append([(np.asarray(u).dtype, np.shape(u)) for u in J])
        return super().compose_input_gradients(J)


def test_the_tape_seeds_and_fills_in_each_outputs_dtype_and_shape():
    """A float32 target is seeded with float32 ones; an output the target does not use gets
    float32 zeros of its own shape: nothing widens a float32 graph to float64."""
    heads = _RecordingHeads(W)
    x = Tensor(X.astype(np.float32))
    with GradientTape() as tape:
        _, square = heads(x)
    (dx,) = tape.gradient(square, [x])
    assert heads.seen == [[(np.dtype(np.float32), X.shape), (np.dtype(np.float32), X.shape)]]
    assert dx.dtype == np.float32


def test_a_later_call_that_leads_nowhere_does_not_end_the_walk():
    """The second call depends on x but feeds nothing the target uses: the tape skips it
    (it has no upstream) and still reaches the first call."""
    heads, x = _TwoHeads(W), _source()
    with GradientTape() as tape:
        _, square = heads(x)
        heads(square)
    (dx,) = tape.gradient(square, [x])
    np.testing.assert_array_equal(dx, 2 * X)


class _Sloppy(Diffable):
    """``x * w`` with a float32 ``w`` of shape (1, 2), whose input gradient comes back in
    float64 and whose weight gradient without its unit axis: the tape must still hand
    back each source's dtype and shape."""

    has_local_jacobian = False

    def __init__(self):
        self.w = Variable(np.full((1, 2), 2.0, dtype=np.float32))

    @property
    def weights(self):
        return [self.w]

    def forward(self, x):
        return np.asarray(x) * np.asarray(self.w)

    def get_input_gradients(self):
        raise self._no_local_jacobian()

    def get_weight_gradients(self):
        raise self._no_local_jacobian()

    def compose_input_gradients(self, J=None):  # the right shape, in float64
        return [Tensor(np.asarray(J[0], dtype=np.float64) * np.asarray(self.w))]

    def compose_weight_gradients(self, J=None):  # float32, without the unit axis
        return [(np.asarray(J[0]) * np.asarray(self.inputs[0])).sum(axis=0)]


def test_each_gradient_has_its_sources_dtype_and_shape():
    layer = _Sloppy()
    x = Tensor(np.array([[1.0, 3.0], [5.0, 7.0]], dtype=np.float32))
    with GradientTape() as tape:
        y = layer(x)
    dw, dx = tape.gradient(y, [layer.w, x])
    assert (dw.dtype, dw.shape) == (np.dtype(np.float32), (1, 2))
    np.testing.assert_array_equal(dw, [[6.0, 10.0]])
    assert dw.flags.writeable  # a new array, not a read-only broadcast view
    assert dw.base is None or dw.base.shape == (1, 2)
    assert (dx.dtype, dx.shape) == (np.dtype(np.float32), (2, 2))
    np.testing.assert_array_equal(dx, np.full((2, 2), 2.0))


def test_tape_errors_read_exactly():
    with GradientTape() as tape:
        y = Tensor(np.ones(2))
        with pytest.raises(RuntimeError) as nested:
            GradientTape().__enter__()
    assert str(nested.value) == (
        "GradientTape: another GradientTape is already recording; nested tapes are not "
        "supported. Compute the inner gradient after leaving the outer tape."
    )
    with pytest.raises(ValueError) as err:
        tape.gradient(y, [y])
    assert str(err.value) == (
        "GradientTape.gradient: the target was not produced by a layer called inside this "
        "tape. Compute it inside `with GradientTape() as tape:` by calling layers (layer(x), "
        "not layer.forward(x))."
    )
