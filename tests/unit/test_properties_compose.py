"""Properties of ``compose_input_gradients(J)`` / ``compose_weight_gradients(J)``.

The course stencil's convention, for every Diffable:

* no upstream (``J=None``, or ``J=[None]``) means "no product": the local Jacobians are
  returned, exactly as ``get_*_gradients()`` gives them;
* ``J`` is a list of upstream gradients, and each upstream contributes its own gradients,
  one per input (or weight), in order: ``compose([u1, u2]) == compose([u1]) + compose([u2])``
  (list concatenation), so several upstreams are never dropped or overwritten;
* every product is linear in the upstream: ``compose([u1 + u2]) == compose([u1]) +
  compose([u2])`` elementwise.
"""

from __future__ import annotations

import numpy as np
import pytest

from beras.core import Diffable, NoLocalJacobianError, Tensor
from beras.testing import domains, sample_case

DOMAINS = domains()
COMPOSE = ["compose_input_gradients", "compose_weight_gradients"]
LOCAL = {
    "compose_input_gradients": "get_input_gradients",
    "compose_weight_gradients": "get_weight_gradients",
}


def _called(domain, seed=0):
    case = sample_case(domain, rng=seed)
    layer = case.diffable
    out = layer(*case.inputs)
    return layer, out if isinstance(out, list) else [out]


def _upstreams(outputs, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=np.shape(out)) for out in outputs]


def _ids(domain):
    return domain.name or domain.cls.__name__


@pytest.mark.parametrize("method", COMPOSE)
@pytest.mark.parametrize("domain", DOMAINS, ids=_ids)
def test_no_upstream_returns_the_local_jacobians(domain, method):
    layer, _ = _called(domain)
    if not layer.has_local_jacobian:  # nothing to return: it says so, for J=None too
        for J in (None, [None]):
            with pytest.raises(NoLocalJacobianError, match="materialises no local Jacobian"):
                getattr(layer, method)(J)
        return
    local = getattr(layer, LOCAL[method])()
    for J in (None, [None]):
        got = getattr(layer, method)(J)
        assert len(got) == len(local), f"{layer!r}.{method}({J})"
        for g, expected in zip(got, local):
            np.testing.assert_array_equal(g, expected, err_msg=f"{layer!r}.{method}({J})")


@pytest.mark.parametrize("method", COMPOSE)
@pytest.mark.parametrize("domain", DOMAINS, ids=_ids)
def test_several_upstreams_each_contribute_their_own_gradients(domain, method):
    layer, outputs = _called(domain)
    compose = getattr(layer, method)
    (u1,), (u2,) = _upstreams(outputs[:1], 1), _upstreams(outputs[:1], 2)
    one, two = compose([u1]), compose([u2])
    both = compose([u1, u2])
    assert len(both) == len(one) + len(two), f"{layer!r}.{method}: upstreams dropped"
    for g, expected in zip(both, one + two):
        np.testing.assert_array_equal(g, expected, err_msg=f"{layer!r}.{method}([u1, u2])")


@pytest.mark.parametrize("method", COMPOSE)
@pytest.mark.parametrize("domain", DOMAINS, ids=_ids)
def test_products_are_linear_in_the_upstream(domain, method):
    layer, outputs = _called(domain)
    compose = getattr(layer, method)
    (u1,), (u2,) = _upstreams(outputs[:1], 1), _upstreams(outputs[:1], 2)
    summed = compose([u1 + u2])
    for g, a, b in zip(summed, compose([u1]), compose([u2])):
        np.testing.assert_allclose(g, a + b, rtol=1e-10, atol=1e-12)


class _Scale(Diffable):
    """``y = w * x`` with a shared (1-D) local weight gradient: the default compositions."""

    def __init__(self, w):
        self.w = Tensor(np.asarray(w, dtype=np.float64))

    @property
    def weights(self):
        return [self.w]

    def forward(self, x):
        return np.asarray(x) * np.asarray(self.w)

    def get_input_gradients(self):
        return [Tensor(np.diag(np.asarray(self.w)))]  # shared (in, out)

    def get_weight_gradients(self):
        return [Tensor(np.asarray(self.inputs[0])[:, None, :])]  # per sample (B, 1, n)


@pytest.mark.parametrize("method", COMPOSE)
def test_the_default_compositions_keep_the_same_conventions(method):
    """Diffable's own compose_* (used by a new layer with local Jacobians only)."""
    layer = _Scale([2.0, -3.0])
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, -6.0]])
    layer(x)
    compose = getattr(layer, method)
    local = getattr(layer, LOCAL[method])()
    for J in (None, [None]):
        for g, expected in zip(compose(J), local, strict=True):
            np.testing.assert_array_equal(g, expected)
    u1, u2 = np.ones((3, 2)), np.arange(6.0).reshape(3, 2)
    both = compose([u1, u2])
    assert len(both) == 2
    for g, expected in zip(both, compose([u1]) + compose([u2])):
        np.testing.assert_array_equal(g, expected)
    # and the values are the exact derivatives of y = w * x, summed over the batch for w
    if method == "compose_input_gradients":
        np.testing.assert_array_equal(both[1], u2 * np.asarray(layer.w))
    else:
        np.testing.assert_array_equal(both[1], (u2 * x).sum(axis=0))


@pytest.mark.parametrize(
    "domain",
    [d for d in DOMAINS if getattr(d.cls, "input_gradient_layout", "") == "elementwise"],
    ids=_ids,
)
def test_elementwise_local_gradients_have_their_inputs_shapes(domain):
    """``input_gradient_layout = "elementwise"`` means ``g * J`` with ``g`` of the input's
    shape (not merely broadcastable to it): the verification layer reads it entry by entry."""
    layer, _ = _called(domain)
    inputs = layer.inputs
    for k, (x, g) in enumerate(zip(inputs, layer.get_input_gradients(), strict=True)):
        assert np.shape(g) == np.shape(x), f"{layer!r}: gradient {k} {np.shape(g)}"
