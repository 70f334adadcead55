"""Tensor, Variable, Weighted and Diffable: the building blocks of the course stencil."""

from __future__ import annotations

import numpy as np
import pytest

from beras.core import Callable, Diffable, Tensor, Variable, Weighted
from beras.gradient_tape import GradientTape
from beras.layers import Dense
from beras.losses import MeanSquaredError

# ----------------------------------------------------------------------------- Tensor


def test_tensor_is_a_view_of_the_array():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a)
    assert isinstance(t, np.ndarray)
    assert np.shares_memory(t, a)
    a[0, 0] = 42.0
    assert t[0, 0] == 42.0


def test_tensor_of_a_tensor_is_the_same_object():
    t = Tensor([1.0, 2.0])
    assert Tensor(t) is t
    v = Variable([1.0, 2.0])
    assert Tensor(v) is v


def test_tensor_from_a_list_and_default_trainable():
    t = Tensor([[1, 2], [3, 4]])
    assert t.shape == (2, 2)
    assert t.trainable is True


@pytest.mark.parametrize("flag", [True, False])
def test_trainable_propagates_through_views_and_ufuncs(flag):
    t = Tensor(np.arange(6.0).reshape(2, 3))
    t.trainable = flag
    assert t[0].trainable is flag
    assert t.T.trainable is flag
    assert t.reshape(3, 2).trainable is flag
    assert (t + 1).trainable is flag
    assert np.exp(t).trainable is flag
    assert isinstance(t + 1, Tensor)


def test_assign_writes_in_place():
    t = Tensor(np.zeros((2, 3)))
    buffer_id = t.__array_interface__["data"][0]
    t.assign(np.ones((2, 3)))
    np.testing.assert_array_equal(t, np.ones((2, 3)))
    assert t.__array_interface__["data"][0] == buffer_id
    t.assign(5.0)  # broadcasts
    assert np.all(t == 5.0)


def test_assign_rejects_a_wrong_shape():
    t = Tensor(np.zeros((1, 3)))
    with pytest.raises(
        ValueError, match=r"assign expected a value of shape \(1, 3\), got \(2, 3\)"
    ):
        t.assign(np.ones((2, 3)))
    with pytest.raises(
        ValueError, match=r"Tensor.assign expected a value of shape \(1, 3\), got \(4,\)"
    ):
        t.assign(np.ones(4))  # not broadcastable at all
    assert np.all(t == 0.0)


def test_variable_is_a_tensor_with_assign():
    v = Variable(np.zeros((1, 2)))
    assert isinstance(v, Tensor)
    assert v.trainable is True
    v.assign(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(v, [[1.0, 2.0]])


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([object(), 1], dtype=object)])
def test_tensor_of_non_numeric_dtype_is_a_type_error(bad):
    with pytest.raises(TypeError, match=r"Tensor expected numeric data.*got an array of dtype"):
        Tensor(bad)


def test_callable_wraps_forward_in_a_tensor():
    class Double(Callable):
        def forward(self, x):
            return np.asarray(x) * 2

    out = Double()([1.0, 2.0])
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out, [2.0, 4.0])


# ---------------------------------------------------------------------------- Weighted


class _TwoWeights(Weighted):
    def __init__(self):
        self.a = Variable(np.zeros(2))
        self.b = Variable(np.ones(3))

    @property
    def weights(self):
        return [self.a, self.b]


def test_weighted_trainable_and_non_trainable_variables():
    layer = _TwoWeights()
    assert layer.trainable is True
    assert [id(w) for w in layer.trainable_variables] == [id(layer.a), id(layer.b)]
    assert layer.non_trainable_variables == []

    layer.b.trainable = False
    assert [id(w) for w in layer.trainable_variables] == [id(layer.a)]
    assert [id(w) for w in layer.non_trainable_variables] == [id(layer.b)]
    assert layer.trainable is True  # any weight trainable

    layer.trainable = False
    assert layer.a.trainable is False
    assert layer.b.trainable is False
    assert layer.trainable is False
    assert layer.trainable_variables == []

    layer.trainable = True
    assert layer.a.trainable is True
    assert layer.b.trainable is True


def test_dense_trainable_setter_freezes_both_weights():
    d = Dense(2, 3, seed=0)
    d.trainable = False
    assert d.trainable_variables == []
    assert len(d.non_trainable_variables) == 2


# ---------------------------------------------------------------- Diffable bookkeeping


class _Affine(Diffable):
    """y = a * x + b * z (elementwise), with keyword-friendly forward."""

    def __init__(self):
        self.scale = Variable(np.array([[2.0, 3.0]]))

    @property
    def weights(self):
        return [self.scale]

    def forward(self, x, z):
        return np.asarray(x) * self.scale + np.asarray(z)

    def get_input_gradients(self):
        return []

    def get_weight_gradients(self):
        return []


def test_call_records_argnames_input_dict_inputs_and_outputs():
    layer = _Affine()
    x, z = np.ones((1, 2)), np.full((1, 2), 10.0)
    out = layer(x, z)
    assert tuple(layer.argnames) == ("x", "z")
    assert set(layer.input_dict) == {"x", "z"}
    assert layer.input_dict["x"] is x
    assert layer.input_dict["z"] is z
    assert layer.inputs[0] is x
    assert layer.inputs[1] is z
    assert isinstance(layer.outputs, list)
    assert len(layer.outputs) == 1
    assert layer.outputs[0] is out
    assert isinstance(out, Tensor)
    np.testing.assert_array_equal(out, [[12.0, 13.0]])


def test_keyword_inputs_are_ordered_as_forwards_parameters():
    layer = _Affine()
    x, z = np.ones((1, 2)), np.zeros((1, 2))
    layer(z=z, x=x)
    assert layer.inputs[0] is x
    assert layer.inputs[1] is z
    layer(x, z=z)
    assert layer.inputs[0] is x
    assert layer.inputs[1] is z
    assert layer.input_dict == {"x": x, "z": z}


def test_list_outputs_are_returned_as_a_list():
    class Split(Diffable):
        def forward(self, x):
            x = np.asarray(x)
            return [x[:, :1], x[:, 1:]]

        def get_input_gradients(self):
            return []

        def get_weight_gradients(self):
            return []

    s = Split()
    outs = s(np.arange(6.0).reshape(2, 3))
    assert isinstance(outs, list)
    assert len(outs) == 2
    assert all(isinstance(o, Tensor) for o in outs)
    assert [o.shape for o in s.outputs] == [(2, 1), (2, 2)]


def test_call_registers_outputs_with_the_active_tape_only():
    d = Dense(2, 2, seed=0)
    x = np.ones((3, 2))
    out = d(x)
    assert Diffable.gradient_tape is None
    with GradientTape() as tape:
        assert Diffable.gradient_tape is tape
        out = d(x)
        loss = MeanSquaredError()(out, np.zeros((3, 2)))
    assert Diffable.gradient_tape is None
    assert tape.previous_layers[id(out)] is d
    assert isinstance(tape.previous_layers[id(loss)], MeanSquaredError)
    assert tape.previous_layers[id(x)] is None  # a defaultdict of None


def test_a_failing_call_keeps_the_previous_calls_bookkeeping():
    d = Dense(3, 2, seed=0)
    good = np.ones((4, 3))
    out = d(good)
    with pytest.raises(ValueError, match="expected inputs of shape"):
        d(np.ones((4, 5)))
    assert d.inputs[0] is good
    assert d.input_dict["x"] is good
    assert d.outputs[0] is out


def test_a_failing_first_call_leaves_no_bookkeeping():
    d = Dense(3, 2, seed=0)
    with pytest.raises(ValueError):
        d(np.ones((4, 5)))
    assert not hasattr(d, "inputs")
    assert not hasattr(d, "outputs")


def test_output_that_is_an_input_becomes_a_fresh_tensor():
    class Identity(Diffable):
        def forward(self, x):
            return x

        def get_input_gradients(self):
            return [Tensor(np.ones_like(self.inputs[0]))]

        def get_weight_gradients(self):
            return []

    x = Tensor(np.ones((2, 2)))
    y = Identity()(x)
    assert y is not x
    assert np.shares_memory(y, x)


# ------------------------------------------------- stencil default compose semantics


class _StencilLayer(Diffable):
    """A user-style layer defining only local Jacobians: f(x) = (x * x) @ W + b.

    get_input_gradients is batched (B, in, out): diag(2 x[b]) @ W;
    get_weight_gradients are a per-sample (B, in, 1) for W and a shared (1, out) for b.
    """

    def __init__(self, w, b):
        self.w, self.b = Variable(w), Variable(b)

    @property
    def weights(self):
        return [self.w, self.b]

    def forward(self, x):
        x = np.asarray(x)
        return (x * x) @ self.w + self.b

    def get_input_gradients(self):
        x = np.asarray(self.inputs[0])
        return [Tensor(2 * x[:, :, None] * np.asarray(self.w)[None])]

    def get_weight_gradients(self):
        x = np.asarray(self.inputs[0])
        return [Tensor((x * x)[:, :, None]), Tensor(np.ones_like(self.b))]


class _SharedJacobianLayer(Diffable):
    """f(x) = x @ M with a shared (in, out) input Jacobian and no weights."""

    def __init__(self, m):
        self.m = np.asarray(m)

    def forward(self, x):
        return np.asarray(x) @ self.m

    def get_input_gradients(self):
        return [Tensor(self.m)]

    def get_weight_gradients(self):
        return []


def _loop_input_vjp(local, upstream):
    """The stencil's semantics written as a per-sample loop: g[b] @ J[b]."""
    g = np.asarray(local)
    rows = []
    for b in range(upstream.shape[0]):
        gb = g[b] if g.ndim == 3 else g
        rows.append(gb @ upstream[b])
    return np.stack(rows)


def _loop_weight_vjp(local, upstream, shape):
    """sum_b w_grad[b] * J[b] (per sample when 3-D, else shared)."""
    g = np.asarray(local)
    total = np.zeros(shape)
    for b in range(upstream.shape[0]):
        gb = g[b] if g.ndim == 3 else g
        total = total + gb * upstream[b]
    return total


def test_default_compose_matches_the_per_sample_loop():
    rng = np.random.default_rng(1)
    layer = _StencilLayer(rng.normal(size=(3, 4)), rng.normal(size=(1, 4)))
    x = rng.normal(size=(5, 3))
    layer(x)
    J = rng.normal(size=(5, 4))

    (dx,) = layer.compose_input_gradients([J])
    np.testing.assert_allclose(dx, _loop_input_vjp(layer.get_input_gradients()[0], J), rtol=1e-12)
    # and the closed form: d/dx[(x*x) @ W] . J = 2 x * (J @ W.T)
    np.testing.assert_allclose(dx, 2 * x * (J @ layer.w.T), rtol=1e-12)

    dw, db = layer.compose_weight_gradients([J])
    gw, gb = layer.get_weight_gradients()
    np.testing.assert_allclose(dw, _loop_weight_vjp(gw, J, (3, 4)), rtol=1e-12)
    np.testing.assert_allclose(db, _loop_weight_vjp(gb, J, (1, 4)), rtol=1e-12)
    np.testing.assert_allclose(dw, (x * x).T @ J, rtol=1e-12)
    np.testing.assert_allclose(db, J.sum(axis=0, keepdims=True), rtol=1e-12)
    assert dw.shape == layer.w.shape
    assert db.shape == layer.b.shape


def test_default_compose_with_a_shared_jacobian():
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, 2))
    layer = _SharedJacobianLayer(m)
    layer(rng.normal(size=(4, 3)))
    J = rng.normal(size=(4, 2))
    (dx,) = layer.compose_input_gradients([J])
    np.testing.assert_allclose(dx, _loop_input_vjp(m, J), rtol=1e-12)
    np.testing.assert_allclose(dx, J @ m.T, rtol=1e-12)
    assert layer.compose_weight_gradients([J]) == []


def test_compose_without_upstream_returns_the_local_gradients():
    rng = np.random.default_rng(3)
    layer = _StencilLayer(rng.normal(size=(2, 2)), np.zeros((1, 2)))
    layer(rng.normal(size=(3, 2)))
    for J in (None, [None]):
        (gi,) = layer.compose_input_gradients(J)
        np.testing.assert_array_equal(gi, layer.get_input_gradients()[0])
        gw, gb = layer.compose_weight_gradients(J)
        np.testing.assert_array_equal(gw, layer.get_weight_gradients()[0])
        np.testing.assert_array_equal(gb, layer.get_weight_gradients()[1])


def test_user_style_layer_differentiates_through_the_tape():
    """The default compositions are enough for the tape: compare with finite differences."""
    rng = np.random.default_rng(4)
    layer = _StencilLayer(rng.normal(size=(3, 2)), rng.normal(size=(1, 2)))
    x = rng.normal(size=(4, 3))
    y = rng.normal(size=(4, 2))
    loss_fn = MeanSquaredError()
    with GradientTape() as tape:
        loss = loss_fn(layer(x), y)
    dw, db = tape.gradient(loss, [layer.w, layer.b])
    pred = (x * x) @ layer.w + layer.b
    np.testing.assert_allclose(dw, (x * x).T @ (2 * (pred - y) / pred.size), rtol=1e-10)
    np.testing.assert_allclose(db, (2 * (pred - y) / pred.size).sum(0, keepdims=True), rtol=1e-10)
