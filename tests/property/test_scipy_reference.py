"""Beras against SciPy, a test-only reference.

Forward values against ``scipy.special`` (softmax, log_softmax, expit);
``scipy.differentiate.jacobian`` as an independent numerical derivative of every
registered Diffable; Kolmogorov-Smirnov tests of the initializers against ``truncnorm``
and ``uniform`` with Keras's parameters (seeded, so deterministic; an untruncated normal
with the right variance fails them).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

import beras
from beras import initializers
from beras.testing import domains, float64_twin
from beras.testing._stencil import input_jacobian
from beras.testing.strategies import budget, cases, finite_arrays, shapes

pytest.importorskip("scipy.differentiate")
from scipy.differentiate import jacobian as scipy_jacobian


@settings(max_examples=budget(40))
@given(x=shapes().flatmap(lambda s: finite_arrays(s, high=50.0)))
def test_forward_against_scipy_special(x: np.ndarray) -> None:
    np.testing.assert_allclose(
        beras.Softmax()(x), special.softmax(x, axis=-1), rtol=1e-12, atol=1e-300
    )
    np.testing.assert_allclose(beras.Sigmoid()(x), special.expit(x), rtol=1e-12, atol=1e-300)
    onehot = np.eye(x.shape[-1])[np.argmax(x, axis=-1)]
    expected = -np.mean(np.sum(onehot * special.log_softmax(x, axis=-1), axis=-1))
    got = beras.CategoricalCrossEntropy(from_logits=True)(x, onehot)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@settings(max_examples=budget(20))
@given(x=shapes().flatmap(lambda s: finite_arrays(s, high=1e4)))
def test_forward_float32_against_scipy(x: np.ndarray) -> None:
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(
        beras.Softmax()(x32),
        special.softmax(x32.astype(np.float64), axis=-1),
        rtol=1e-5,
        atol=1e-37,
    )
    np.testing.assert_allclose(
        beras.Sigmoid()(x32), special.expit(x32.astype(np.float64)), rtol=1e-5, atol=1e-37
    )


def _smooth(domain) -> bool:
    return (
        not domain.kinks
        and domain.ties is None  # a max-pool's ties are kinks
        and not any(i.kind == "probabilities" for i in domain.inputs)
    )


def _jacobian_from_vjps(layer, k: int, x_shape: tuple, out: np.ndarray) -> np.ndarray:
    """``d out / d input k`` as ``(out.size, x.size)``, one VJP per output entry (for the
    layers that materialise no local Jacobian: Conv2D, BatchNormalization)."""
    rows = []
    for i in range(out.size):
        basis = np.zeros(out.size)
        basis[i] = 1.0
        rows.append(np.asarray(layer.compose_input_gradients([basis.reshape(out.shape)])[k]))
    return np.stack(rows).reshape(out.size, int(np.prod(x_shape)))


@pytest.mark.parametrize("domain", [d for d in domains() if _smooth(d)], ids=lambda d: d.name)
@settings(max_examples=budget(6))
@given(data=st.data())
def test_local_jacobians_against_scipy_differentiate(domain, data) -> None:
    case = data.draw(cases(domain, dtype=np.float64))
    layer = float64_twin(case.diffable)
    inputs = [np.asarray(x, dtype=np.float64) for x in case.inputs]
    out = np.asarray(layer(*inputs))
    local = layer.get_input_gradients() if layer.has_local_jacobian else None
    for k in set(range(len(inputs))) - set(case.constants):
        x0 = inputs[k]

        def f(flat, k=k, x0=x0):  # scipy passes (n, ...) with trailing batch axes
            flat = np.asarray(flat)
            cols = flat.reshape(x0.size, -1)
            values = []
            for j in range(cols.shape[1]):
                args = list(inputs)
                args[k] = cols[:, j].reshape(x0.shape)
                values.append(np.asarray(layer.forward(*args), dtype=np.float64).ravel())
            return np.stack(values, axis=-1).reshape((out.size, *flat.shape[1:]))

        ref = scipy_jacobian(f, x0.ravel(), tolerances={"atol": 1e-10, "rtol": 1e-10})
        # scipy reports failure where a derivative is exactly 0 (no relative convergence);
        # those entries are still compared, by value
        assert np.all(ref.success | (np.abs(ref.df) < 1e-9)), "scipy.differentiate did not converge"
        if local is None:
            ours = _jacobian_from_vjps(layer, k, x0.shape, out).reshape(ref.df.shape)
        else:
            ours = input_jacobian(
                layer.input_gradient_layout, local[k], x0.shape, out.shape, repr(layer)
            )
        np.testing.assert_allclose(
            ours, ref.df, rtol=1e-6, atol=1e-8 * max(1.0, np.abs(ref.df).max())
        )


# ------------------------------------------------------------------ initializers
KERAS = {  # name -> (scale, fan), for an (in, out) kernel
    "xavier": lambda i, o: (1.0, (i + o) / 2),
    "kaiming": lambda i, o: (2.0, i),
    "xavier uniform": lambda i, o: (1.0, (i + o) / 2),
    "kaiming uniform": lambda i, o: (2.0, i),
}
SHAPE = (300, 200)
ALPHA = 1e-4  # p-value threshold; the draws are seeded, so the outcome is fixed


def _reference(name: str, shape=SHAPE):
    scale, fan = KERAS[name](*shape)
    if name.endswith("uniform"):
        limit = np.sqrt(3 * scale / fan)
        return stats.uniform(loc=-limit, scale=2 * limit)
    std = np.sqrt(scale / fan) / 0.87962566103423978
    return stats.truncnorm(-2.0, 2.0, loc=0.0, scale=std)


@pytest.mark.parametrize("name", sorted(KERAS))
@pytest.mark.parametrize("seed", [0, 1])
def test_initializers_match_keras_distributions(name: str, seed: int) -> None:
    w = initializers.kernel(name, SHAPE, np.random.default_rng(seed), dtype=np.float64)
    assert w.shape == SHAPE
    ref = _reference(name)
    assert stats.kstest(w.ravel(), ref.cdf).pvalue > ALPHA
    assert np.abs(w).max() <= ref.support()[1]
    scale, fan = KERAS[name](*SHAPE)
    np.testing.assert_allclose(w.std(), np.sqrt(scale / fan), rtol=0.02)


@pytest.mark.parametrize("name", ["xavier", "kaiming"])
def test_ks_test_catches_an_untruncated_normal(name: str) -> None:
    scale, fan = KERAS[name](*SHAPE)
    impostor = np.random.default_rng(0).normal(0.0, np.sqrt(scale / fan), SHAPE)  # right variance
    assert stats.kstest(impostor.ravel(), _reference(name).cdf).pvalue < ALPHA


def test_normal_and_zero_initializers() -> None:
    w = initializers.kernel("normal", SHAPE, np.random.default_rng(0), dtype=np.float64)
    assert stats.kstest(w.ravel(), stats.norm().cdf).pvalue > ALPHA
    assert not initializers.kernel("zero", (3, 4), np.random.default_rng(0)).any()


@pytest.mark.parametrize("name", [*sorted(KERAS), "normal", "zero"])
def test_dense_uses_the_initializer_with_in_out_fans(name: str) -> None:
    """Dense(in, out) draws an (in, out) kernel: the fans must not be swapped."""
    layer = beras.Dense(SHAPE[0], SHAPE[1], initializer=name, seed=0)
    w = np.asarray(layer.w, dtype=np.float64)
    assert (w.shape == SHAPE and w.dtype == np.float32) or layer.w.dtype == np.float32
    assert not np.asarray(layer.b).any()
    assert layer.b.shape == (1, SHAPE[1])
    if name in KERAS:
        assert stats.kstest(w.ravel(), _reference(name).cdf).pvalue > ALPHA
    elif name == "normal":
        assert stats.kstest(w.ravel(), stats.norm().cdf).pvalue > ALPHA
