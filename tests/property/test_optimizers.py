"""Optimizers against their formulas over many random steps: in place, keyed by identity.

Formulas (float64 references, per parameter):
SGD ``w -= lr g``; RMSProp ``v = b v + (1-b) g^2; w -= lr g / (sqrt(v) + eps)``;
Adam ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr m_hat / (sqrt(v_hat) + eps)``
with ``m_hat = m / (1 - b1^t)``, ``v_hat = v / (1 - b2^t)``; AMSGrad (as torch and Keras):
``v_max = max(v_max, v)`` over the raw ``v``, then ``v_hat = v_max / (1 - b2^t)``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import beras
from beras.core import Variable
from beras.testing.strategies import budget, shapes


class Reference:
    def __init__(self, kind: str, lr: float, **hp: float) -> None:
        self.kind, self.lr, self.hp, self.t = kind, lr, hp, 0
        self.state: dict[int, dict[str, np.ndarray]] = {}

    def step(self, keys: list[int], params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        self.t += 1
        for key, w, g in zip(keys, params, grads):
            s = self.state.setdefault(key, {n: np.zeros_like(w) for n in ("m", "v", "vmax")})
            if self.kind == "sgd":
                w -= self.lr * g
            elif self.kind == "rmsprop":
                b, eps = self.hp["beta"], self.hp["epsilon"]
                s["v"] = b * s["v"] + (1 - b) * g**2
                w -= self.lr * g / (np.sqrt(s["v"]) + eps)
            else:
                b1, b2, eps = self.hp["beta_1"], self.hp["beta_2"], self.hp["epsilon"]
                s["m"] = b1 * s["m"] + (1 - b1) * g
                s["v"] = b2 * s["v"] + (1 - b2) * g**2
                v = s["v"]
                if self.kind == "amsgrad":
                    s["vmax"] = np.maximum(s["vmax"], s["v"])
                    v = s["vmax"]
                m_hat = s["m"] / (1 - b1**self.t)
                v_hat = v / (1 - b2**self.t)
                w -= self.lr * m_hat / (np.sqrt(v_hat) + eps)


def _make(kind: str, lr: float, hp: dict) -> object:
    if kind == "sgd":
        return beras.BasicOptimizer(lr)
    if kind == "rmsprop":
        return beras.RMSProp(lr, **hp)
    return beras.Adam(lr, amsgrad=kind == "amsgrad", **hp)


def _hyper(kind: str) -> st.SearchStrategy[dict]:
    if kind == "sgd":
        return st.just({})
    if kind == "rmsprop":
        return st.fixed_dictionaries(
            {"beta": st.floats(0.0, 0.99), "epsilon": st.sampled_from([1e-6, 1e-3, 0.1])}
        )
    return st.fixed_dictionaries(
        {
            "beta_1": st.floats(0.0, 0.99),
            "beta_2": st.floats(0.5, 0.999),
            "epsilon": st.sampled_from([1e-7, 1e-3, 0.1]),
        }
    )


@settings(max_examples=budget(150))
@given(
    kind=st.sampled_from(["sgd", "rmsprop", "adam", "amsgrad"]),
    data=st.data(),
    lr=st.floats(1e-3, 0.5),
    n_params=st.integers(1, 3),
    steps=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_optimizer_matches_formula(kind, data, lr, n_params, steps, seed) -> None:
    hp = data.draw(_hyper(kind))
    rng = np.random.default_rng(seed)
    shape_list = [data.draw(shapes(max_side=4)) for _ in range(n_params)]
    params = [Variable(rng.normal(size=s)) for s in shape_list]
    ids = [id(p) for p in params]
    ref_params = [np.array(p) for p in params]
    opt, ref = _make(kind, lr, hp), Reference(kind, lr, **hp)
    for _ in range(steps):
        # the order (and, sometimes, the subset) of parameters changes between steps:
        # state must follow each parameter's identity
        order = rng.permutation(n_params)[: rng.integers(1, n_params + 1)]
        grads = [rng.normal(size=params[i].shape) * 10.0 ** rng.uniform(-3, 1) for i in order]
        opt.apply_gradients([params[i] for i in order], grads)
        ref.step([int(i) for i in order], [ref_params[i] for i in order], grads)
    assert [id(p) for p in params] == ids  # updated in place
    for p, r in zip(params, ref_params):
        np.testing.assert_allclose(p, r, rtol=1e-9, atol=1e-12)


@settings(max_examples=budget(20))
@given(kind=st.sampled_from(["sgd", "rmsprop", "adam", "amsgrad"]), seed=st.integers(0, 2**32 - 1))
def test_float32_parameters_stay_float32_and_in_place(kind, seed) -> None:
    rng = np.random.default_rng(seed)
    w = Variable(rng.normal(size=(3, 2)).astype(np.float32))
    before = np.array(w, dtype=np.float64)
    opt = _make(kind, 0.01, {})
    view = w[:]  # a view sees in-place updates
    opt.apply_gradients([w], [rng.normal(size=(3, 2))])
    assert w.dtype == np.float32
    assert np.shares_memory(view, w)
    assert not np.array_equal(np.asarray(view, dtype=np.float64), before)


def test_amsgrad_uses_the_running_max_of_raw_v() -> None:
    """A large gradient then small ones: the denominator keeps the max of v (raw), bias-corrected."""
    w = Variable(np.zeros(1))
    opt = beras.Adam(0.1, beta_1=0.0, beta_2=0.5, epsilon=1e-12, amsgrad=True)
    ref = Reference("amsgrad", 0.1, beta_1=0.0, beta_2=0.5, epsilon=1e-12)
    r = np.zeros(1)
    for g in (10.0, 0.1, 0.1, 0.1):
        opt.apply_gradients([w], [np.array([g])])
        ref.step([0], [r], [np.array([g])])
    np.testing.assert_allclose(w, r, rtol=1e-12)
    plain = Reference("adam", 0.1, beta_1=0.0, beta_2=0.5, epsilon=1e-12)
    p = np.zeros(1)
    for g in (10.0, 0.1, 0.1, 0.1):
        plain.step([0], [p], [np.array([g])])
    assert not np.allclose(w, p)  # the test distinguishes AMSGrad from Adam
