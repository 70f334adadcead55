"""Properties of Diffable's call bookkeeping and of its default compositions.

* ``layer(...)`` records as inputs exactly the arrays ``forward`` takes as inputs: every
  positional, keyword-only and ``*args`` input, in ``forward``'s order, and never the
  ``training`` flag, which reaches ``forward`` as a bool (False when not given) only for a
  ``forward`` that declares it.
* The default compositions follow the stencil for inputs of any shape: a per-sample
  input Jacobian ``(B, in, out)`` acts on the flattened sample and the result has the
  input's shape; a per-sample weight gradient ``(B, ...)`` broadcasts against each
  sample's upstream as NumPy broadcasts, whatever the upstream's rank.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras.core import Diffable, Tensor, Variable
from beras.gradient_tape import GradientTape


class _Weightless(Diffable):
    def get_input_gradients(self):
        return []

    def get_weight_gradients(self):
        return []


# Each test defines its layer class afresh: Diffable caches what it reads from a class's
# ``forward`` signature, and a fresh class is read anew (as a user's new layer is).
def _train_layer():
    class Train(_Weightless):
        """``x * 2`` in training, ``x`` otherwise; records the flag it was given."""

        def forward(self, x, training=False):
            self.seen = training
            return np.asarray(x) * (2.0 if training else 1.0)

    return Train()


def _keyword_only_layer():
    class KeywordOnly(_Weightless):
        def forward(self, x, *, scale):
            return np.asarray(x) * np.asarray(scale)

    return KeywordOnly()


def _star_layer():
    class Star(_Weightless):
        def forward(self, first, *rest):
            return sum((np.asarray(r) for r in rest), np.asarray(first))

    return Star()


def test_training_reaches_forward_as_a_bool_and_is_not_an_input():
    layer, x = _train_layer(), np.ones((2, 3))
    np.testing.assert_array_equal(layer(x, training=True), 2 * x)
    assert layer.seen is True
    assert layer.inputs == [x]
    assert list(layer.input_dict) == ["x"]
    assert tuple(layer.argnames) == ("x",)
    np.testing.assert_array_equal(layer(x), x)
    assert layer.seen is False  # not given: False, not None
    layer(x, training=1)
    assert layer.seen is True


def test_a_forward_without_training_never_receives_it():
    layer, x = _keyword_only_layer(), np.ones((2, 2))
    out = layer(x, scale=3.0, training=True)  # models pass training to every layer
    np.testing.assert_array_equal(out, 3 * x)
    assert "training" not in layer.input_dict


def test_keyword_only_parameters_are_inputs():
    layer, x, scale = _keyword_only_layer(), np.ones((2, 2)), np.full((2, 2), 5.0)
    layer(x, scale=scale)
    assert tuple(layer.argnames) == ("x", "scale")
    assert layer.inputs[0] is x
    assert layer.inputs[1] is scale
    assert layer.input_dict == {"x": x, "scale": scale}


def test_star_args_are_inputs_recorded_under_their_name():
    layer = _star_layer()
    a, b, c = np.ones(2), np.full(2, 2.0), np.full(2, 3.0)
    np.testing.assert_array_equal(layer(a, b, c), [6.0, 6.0])
    assert tuple(layer.argnames) == ("first",)
    assert layer.inputs == [a, b, c]
    assert layer.input_dict["first"] is a
    assert layer.input_dict["rest"] == (b, c)


def test_star_args_given_nothing_are_not_recorded():
    """``forward(first, *rest)`` called with ``first`` alone records ``first`` only, as a
    forward without ``*rest`` would."""
    layer, a = _star_layer(), np.ones(2)
    layer(a)
    assert layer.input_dict == {"first": a}
    assert layer.inputs == [a]


def test_a_failing_first_call_raises_its_own_error_and_records_nothing():
    class Fails(_Weightless):
        def forward(self, x):
            raise ValueError("bad input")

    layer = Fails()
    with pytest.raises(ValueError, match=r"^bad input$"):
        layer(np.ones(2))
    assert not {"argnames", "input_dict", "inputs"} & set(vars(layer))


@pytest.mark.parametrize("make", [lambda a: a.view(Tensor), lambda a: a[1:].view(Tensor)])
def test_a_tensor_made_from_a_plain_array_is_trainable(make):
    """A plain array (or a slice of one) viewed as a Tensor is trainable, as a new Tensor
    is; views and slices of a tensor marked not trainable inherit the mark."""
    assert make(np.zeros(3)).trainable is True
    frozen = Tensor(np.zeros(3))
    frozen.trainable = False
    assert frozen.view(Tensor).trainable is False
    assert frozen[1:].trainable is False


class _FlatLinear(Diffable):
    """``y[b] = M @ x[b].ravel()`` on (B, 2, 3) inputs, with per-sample local Jacobians."""

    def __init__(self, m):
        self.m = np.asarray(m)

    def forward(self, x):
        x = np.asarray(x)
        return x.reshape(len(x), -1) @ self.m.T

    def get_input_gradients(self):
        batch = len(self.inputs[0])
        return [Tensor(np.broadcast_to(self.m.T, (batch, *self.m.T.shape)).copy())]

    def get_weight_gradients(self):
        return []


def test_default_input_composition_gives_gradients_of_the_inputs_shape():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 6))
    layer, x = _FlatLinear(m), rng.normal(size=(3, 2, 3))
    layer(x)
    up = rng.normal(size=(3, 4))
    (dx,) = layer.compose_input_gradients([up])
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx, (up @ m).reshape(x.shape), rtol=1e-12)


class _OuterPerStep(Diffable):
    """``y[b, t, i, o] = x[b, i] * w[t, i, o]``: a per-sample weight gradient ``(B, in, 1)``
    against a per-sample upstream ``(T, in, out)`` of higher rank."""

    def __init__(self, w):
        self.w = Variable(np.asarray(w, dtype=np.float64))

    @property
    def weights(self):
        return [self.w]

    def forward(self, x):
        return np.asarray(x)[:, None, :, None] * np.asarray(self.w)[None]

    def get_input_gradients(self):
        raise NotImplementedError  # not needed: only the weight gradient is checked

    def compose_input_gradients(self, J=None):
        return [Tensor(np.einsum("btio,tio->bi", np.asarray(J[0]), np.asarray(self.w)))]

    def get_weight_gradients(self):
        return [Tensor(np.asarray(self.inputs[0])[:, :, None])]


def test_default_weight_composition_broadcasts_each_sample_like_numpy():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(2, 3, 4))  # (T, in, out)
    layer, x = _OuterPerStep(w), rng.normal(size=(5, 3))  # B = 5: no axis of size 5 in w
    layer(x)
    up = rng.normal(size=(5, 2, 3, 4))
    (dw,) = layer.compose_weight_gradients([up])
    expected = np.einsum("bi,btio->tio", x, up)
    assert dw.shape == w.shape
    np.testing.assert_allclose(dw, expected, rtol=1e-12)
    # the tape, which uses these compositions, agrees
    source = Tensor(x)
    with GradientTape() as tape:
        y = layer(source)
    (dw_tape,) = tape.gradient(y, [layer.w])
    np.testing.assert_allclose(dw_tape, np.einsum("bi,btio->tio", x, np.ones_like(up)), rtol=1e-12)


@pytest.mark.parametrize("bad", [np.ones((3,)), np.ones((2, 3)), np.ones((1, 2, 2))])
def test_assign_of_a_shape_that_does_not_fit_changes_nothing(bad):
    t = Tensor(np.arange(4.0).reshape(2, 2))
    with pytest.raises(ValueError, match=r"expected a value of shape \(2, 2\), got"):
        t.assign(bad)
    np.testing.assert_array_equal(t, [[0.0, 1.0], [2.0, 3.0]])
