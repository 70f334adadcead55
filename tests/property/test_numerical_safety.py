"""Numerical safety: no NaN, inf or floating-point warning for finite inputs of any magnitude.

Every forward, local gradient and VJP of every registered Diffable runs under
``np.errstate(over="raise", divide="raise", invalid="raise")`` with inputs up to the
largest magnitude its domain declares safe (``Domain.extreme``: a fraction of the float
type's decimal range; 0.99 means any finite magnitude, e.g. sigmoid and softmax at
+-1e300 in float64 or +-1e37 in float32).

Underflow is deliberately *not* raised: a result that underflows to zero or a subnormal
is IEEE 754's correctly rounded answer (``exp(-1000) == 0``) and NumPy ignores it by
default. Softmax is written so it does not even signal underflow, but the suite does
not require ``under="raise"`` of every product in every layer.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beras.testing import domains
from beras.testing._subject import with_dtype
from beras.testing.strategies import budget, cases


def _high(domain, dtype) -> float:
    return float(10.0 ** (domain.extreme * np.log10(np.finfo(dtype).max)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("domain", domains(), ids=lambda d: d.name)
@settings(max_examples=budget(16))  # x 2 dtypes x every domain; `thorough`: 160
@given(data=st.data())
def test_no_nan_inf_or_fp_warning(domain, dtype, data) -> None:
    case = data.draw(cases(domain, dtype=dtype, high=_high(domain, dtype)))
    layer = with_dtype(case.diffable, dtype)  # weights in the inputs' dtype
    for w in layer.weights:  # and of order 1, so a matmul stays in range
        w[...] = np.clip(w, -2, 2)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out = np.asarray(layer(*case.inputs))
        up = np.ones_like(out)
        local = (
            [*layer.get_input_gradients(), *layer.get_weight_gradients()]
            if getattr(layer, "has_local_jacobian", True)  # Conv2D, BN: products only
            else []
        )
        results = [
            out,
            *local,
            *layer.compose_input_gradients([up]),
            *layer.compose_weight_gradients([up]),
        ]
    for r in results:
        r = np.asarray(r)
        assert r.dtype.kind != "f" or np.all(np.isfinite(r)), f"{case}: non-finite values"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("magnitude", [1e4, 1e30])
def test_sigmoid_and_softmax_extremes(dtype, magnitude) -> None:
    import beras

    x = np.array([[magnitude, -magnitude, 0.0], [-magnitude, -magnitude, -magnitude]], dtype=dtype)
    with np.errstate(all="raise"):
        s, sm = beras.Sigmoid(), beras.Softmax()
        ys, ysm = np.asarray(s(x)), np.asarray(sm(x))
        s.compose_input_gradients([np.ones_like(ys)])
        sm.compose_input_gradients([np.ones_like(ysm)])
    assert ys[0, 0] == 1
    assert ys[0, 1] == 0
    np.testing.assert_allclose(ysm.sum(axis=-1), 1.0, rtol=1e-6)
