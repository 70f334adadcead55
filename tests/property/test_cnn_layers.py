"""The convolution-family layers, checked by the registry in every view they have.

``test_diffables`` draws their cases like any Diffable's; here the edges a convolution or
a pooling gets wrong are pinned with ``@example``: a kernel as large as the input, a
stride larger than the kernel, "same" padding with even kernels, max-pool windows with
ties, batch normalisation over a batch of 2, and dropout at rate 0. Each is checked in
both modes when the layer has a training flag (``check_gradients`` does that itself).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from beras.testing import check_gradients, domains
from beras.testing._registry import Case, Domain, max_pool_ties
from beras.testing.strategies import budget, cases


def _domain(name: str) -> Domain:
    return next(d for d in domains() if d.name == name)


def _case(name: str, x: Any, **params: Any) -> Case:
    """A case of domain ``name`` on input ``x`` with the given constructor parameters."""
    x = np.asarray(x, dtype=np.float64)
    dims: dict[str, Any] = dict(params)
    if x.ndim == 4:
        dims.update(batch=x.shape[0], h=x.shape[1], w=x.shape[2], c=x.shape[3])
    else:
        dims.update(batch=x.shape[0], n=x.shape[1])
    return _domain(name).build(dims, [x], np.random.default_rng(7))


def _image(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


CONV = {"f": 2, "use_bias": True}
KERNEL_IS_INPUT = _case(
    "Conv2D", _image(2, 3, 4, 2), kernel=(3, 4), strides=(1, 1), padding="valid", **CONV
)
STRIDE_BEYOND_KERNEL = _case(
    "Conv2D", _image(2, 6, 5, 1), kernel=(2, 2), strides=(3, 3), padding="valid", **CONV
)
SAME_EVEN_KERNEL = _case(
    "Conv2D", _image(1, 5, 4, 2), kernel=(2, 2), strides=(1, 1), padding="same", **CONV
)
SAME_EVEN_KERNEL_STRIDED = _case(
    "Conv2D", _image(2, 5, 6, 1), kernel=(2, 3), strides=(2, 2), padding="same", **CONV
)
TIES = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 3.0, -1.0, 0.5], [4.0, 4.0, 4.0, 4.0]])
POOL_TIES = _case("MaxPool2D", TIES[None, :, :, None], pool=(2, 2), strides=None, padding="valid")
POOL_TIES_OVERLAPPING = _case(
    "MaxPool2D", TIES[None, :, :, None], pool=(2, 2), strides=(1, 1), padding="same"
)
AVG_SAME_EVEN = _case(
    "AveragePooling2D", _image(2, 3, 5, 2), pool=(2, 2), strides=None, padding="same"
)
BN_BATCH_OF_2 = _case("BatchNormalization(images)", _image(2, 3, 2, 3), center=True, scale=True)
BN_FEATURES_BATCH_OF_2 = _case(
    "BatchNormalization(features)", _image(2, 4), center=True, scale=True
)
DROPOUT_RATE_0 = _case("Dropout", _image(3, 4), rate=0.0)

EDGES = [
    KERNEL_IS_INPUT,
    STRIDE_BEYOND_KERNEL,
    SAME_EVEN_KERNEL,
    SAME_EVEN_KERNEL_STRIDED,
    POOL_TIES,
    POOL_TIES_OVERLAPPING,
    AVG_SAME_EVEN,
    BN_BATCH_OF_2,
    BN_FEATURES_BATCH_OF_2,
    DROPOUT_RATE_0,
]
CNN = [d for d in domains() if d.cls.__module__.startswith("beras.layers.") and d.name != "Dense"]
CNN = [d for d in CNN if d.cls.__name__ not in ("Add", "Concatenate")]


@settings(max_examples=budget(40))
@given(case=st.sampled_from(CNN).flatmap(cases))
@example(case=KERNEL_IS_INPUT)
@example(case=STRIDE_BEYOND_KERNEL)
@example(case=SAME_EVEN_KERNEL)
@example(case=SAME_EVEN_KERNEL_STRIDED)
@example(case=POOL_TIES)
@example(case=POOL_TIES_OVERLAPPING)
@example(case=AVG_SAME_EVEN)
@example(case=BN_BATCH_OF_2)
@example(case=BN_FEATURES_BATCH_OF_2)
@example(case=DROPOUT_RATE_0)
def test_convolution_family_and_its_edges(case: Case) -> None:
    copy.deepcopy(case).check(inconclusive="raise")


def test_the_pinned_edges_are_what_they_claim() -> None:
    """Each pinned case really is its edge (a refactor of the helpers cannot silently
    turn it into an ordinary case)."""
    conv = KERNEL_IS_INPUT.diffable
    assert conv.kernel_size == KERNEL_IS_INPUT.inputs[0].shape[1:3]
    assert STRIDE_BEYOND_KERNEL.diffable.strides[0] > STRIDE_BEYOND_KERNEL.diffable.kernel_size[0]
    assert SAME_EVEN_KERNEL.diffable.padding == "same"
    assert SAME_EVEN_KERNEL.diffable.kernel_size[0] % 2 == 0
    for pool in (POOL_TIES, POOL_TIES_OVERLAPPING):
        assert max_pool_ties(pool.diffable, pool.inputs), "no tie in the tied max-pool case"
    assert BN_BATCH_OF_2.inputs[0].shape[0] == 2
    assert DROPOUT_RATE_0.diffable.rate == 0.0


@pytest.mark.parametrize("case", [POOL_TIES, POOL_TIES_OVERLAPPING], ids=["valid", "overlapping"])
def test_max_pool_ties_are_judged_as_kinks(case: Case) -> None:
    """Declared ties are checked along their common direction: a gradient shared between
    the tied entries (the sum of the window's gradient split) still fails."""
    case = copy.deepcopy(case)
    assert case.check(raise_on_failure=False).status == "pass"
    layer = case.diffable

    def split_between_ties(g: np.ndarray) -> np.ndarray:
        share = layer._scatter(g, lambda k, up: up)  # every window element, then rescale
        return share / float(np.prod(layer.pool_size))

    layer._vjp = split_between_ties
    assert case.check(raise_on_failure=False).status == "fail"


def test_batch_norm_gradient_couples_every_sample() -> None:
    """In training mode each output depends on every sample of the batch: a check of the
    per-sample (inference) gradient used in training fails."""
    case = copy.deepcopy(BN_BATCH_OF_2)
    layer = case.diffable
    original = type(layer).compose_input_gradients

    def per_sample(J: Any = None) -> list:
        batch_stats, layer._batch_stats = layer._batch_stats, False
        try:
            return original(layer, J)
        finally:
            layer._batch_stats = batch_stats

    layer.compose_input_gradients = per_sample
    result = case.check(raise_on_failure=False)
    assert result.status == "fail"
    assert all("training=True" in f.where + f.target for f in result.failures), result.report()


def test_a_conv2d_check_leaves_the_layer_as_it_was() -> None:
    case = copy.deepcopy(SAME_EVEN_KERNEL_STRIDED)
    before = [np.array(w) for w in case.diffable.weights]
    check_gradients(case.diffable, *case.inputs)
    for w, b in zip(case.diffable.weights, before):
        np.testing.assert_array_equal(w, b)
