"""Optimizers: update parameters in place from their gradients.

State (RMSProp's ``v``, Adam's ``m``/``v``) is keyed by parameter identity, so the order
and subset of parameters passed to ``apply_gradients`` may change between calls. Updates
are computed in place into a per-parameter scratch buffer: no temporaries per step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .validation import positive_float, unit_interval

__all__ = ["Adam", "BasicOptimizer", "RMSProp"]


class _Optimizer:
    """Shared validation and per-parameter state."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = positive_float(learning_rate, "learning_rate", type(self).__name__)
        self._params: dict[int, np.ndarray] = {}  # keeps each keyed parameter alive
        self._scratch: dict[int, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(learning_rate={self.learning_rate})"

    def _pairs(
        self, trainable_params: Sequence[Any], grads: Sequence[Any]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Validate everything before any parameter changes; drop ``None`` gradients."""
        name = type(self).__name__
        params, grads = list(trainable_params), list(grads)
        if len(params) != len(grads):
            raise ValueError(
                f"{name}.apply_gradients expected one gradient per parameter, got "
                f"{len(params)} parameters and {len(grads)} gradients"
            )
        pairs = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise TypeError(
                    f"{name}.apply_gradients expected float arrays (Variables) as parameters to "
                    f"update in place, got {type(p).__name__} at index {i}"
                )
            g = np.asarray(g)
            if g.shape != p.shape:
                raise ValueError(
                    f"{name}.apply_gradients: gradient {i} has shape {g.shape}, but its parameter "
                    f"has shape {p.shape}"
                )
            if not p.flags.writeable:
                raise ValueError(f"{name}.apply_gradients: parameter {i} is read-only")
            pairs.append((p, g.astype(p.dtype, copy=False)))
        return pairs

    def _state(self, table: dict[int, np.ndarray], p: np.ndarray) -> np.ndarray:
        key = id(p)
        if self._params.get(key) is not p:  # a new parameter (or a recycled id)
            self._forget(key)
            self._params[key] = p
        state = table.get(key)
        if state is None:
            state = table[key] = np.zeros(p.shape, dtype=p.dtype)
        return state

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch]

    def _forget(self, key: int) -> None:
        for table in self._tables():
            table.pop(key, None)

    def _tmp(self, p: np.ndarray) -> np.ndarray:
        return self._state(self._scratch, p)


class BasicOptimizer(_Optimizer):
    """Plain gradient descent: ``w -= learning_rate * g``."""

    def apply_gradients(self, trainable_params: Sequence[Any], grads: Sequence[Any]) -> None:
        """``w -= lr * g`` for every pair; raises ``FloatingPointError`` (updating nothing)
        if a step ``lr * g`` overflows, since the unbounded step is the one that can."""
        pairs = self._pairs(trainable_params, grads)
        steps = []
        for p, g in pairs:
            tmp = self._tmp(p)
            with np.errstate(over="ignore"):
                np.multiply(g, self.learning_rate, out=tmp)
            steps.append(tmp)
        if not all_finite(steps):
            raise FloatingPointError(
                f"BasicOptimizer: learning_rate * gradient is not finite (learning_rate="
                f"{self.learning_rate}); no parameter was updated"
            )
        for (p, _), step in zip(pairs, steps):
            p -= step


class RMSProp(_Optimizer):
    """``v = beta v + (1 - beta) g^2``; ``w -= lr g / (sqrt(v) + epsilon)`` (epsilon outside the root)."""

    def __init__(self, learning_rate: float, beta: float = 0.9, epsilon: float = 1e-6) -> None:
        super().__init__(learning_rate)
        self.beta = unit_interval(beta, "beta", "RMSProp")
        self.epsilon = positive_float(epsilon, "epsilon", "RMSProp")
        self.v: dict[int, np.ndarray] = {}

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch, self.v]

    def apply_gradients(self, trainable_params: Sequence[Any], grads: Sequence[Any]) -> None:
        for p, g in self._pairs(trainable_params, grads):
            v, tmp = self._state(self.v, p), self._tmp(p)
            # beta v + (1 - beta) g^2, never v + (1 - beta)(g^2 - v): once g^2 overflows to
            # inf, inf - inf would turn v (and then the weights) into NaN
            v *= self.beta
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - self.beta
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += self.epsilon
            np.divide(g, tmp, out=tmp)
            tmp *= self.learning_rate
            p -= tmp


class Adam(_Optimizer):
    """Adam with bias correction, optionally AMSGrad.

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)``, ``w -= lr m_hat / (sqrt(v_hat) + epsilon)``; ``t`` counts
    ``apply_gradients`` calls. With ``amsgrad=True`` the denominator uses the running
    maximum of ``v`` (bias-corrected like ``v``), as ``torch.optim.Adam`` and Keras do.
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.beta_1 = unit_interval(beta_1, "beta_1", "Adam")
        self.beta_2 = unit_interval(beta_2, "beta_2", "Adam")
        self.epsilon = positive_float(epsilon, "epsilon", "Adam")
        self.amsgrad = bool(amsgrad)
        self.m: dict[int, np.ndarray] = {}
        self.v: dict[int, np.ndarray] = {}
        self.v_max: dict[int, np.ndarray] = {}
        self.t = 0

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch, self.m, self.v, self.v_max]

    def apply_gradients(self, trainable_params: Sequence[Any], grads: Sequence[Any]) -> None:
        pairs = self._pairs(trainable_params, grads)
        self.t += 1
        correction_1 = 1.0 - self.beta_1**self.t
        # a Python float, like the other factors: a NumPy float64 here would make NumPy 2
        # compute float32 updates in float64 and cast back (slower, and not float32 math)
        inv_sqrt_correction_2 = 1.0 / float(np.sqrt(1.0 - self.beta_2**self.t))
        step = self.learning_rate / correction_1
        for p, g in pairs:
            m, v, tmp = self._state(self.m, p), self._state(self.v, p), self._tmp(p)
            # b1 m + (1 - b1) g and b2 v + (1 - b2) g^2 as written: the shorter
            # m + (1 - b1)(g - m) overflows (g - m) and gives inf - inf = NaN at extremes
            m *= self.beta_1
            np.multiply(g, 1.0 - self.beta_1, out=tmp)
            m += tmp
            v *= self.beta_2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - self.beta_2
            v += tmp
            if self.amsgrad:
                v = np.maximum(self._state(self.v_max, p), v, out=self.v_max[id(p)])
            np.sqrt(v, out=tmp)
            tmp *= inv_sqrt_correction_2  # sqrt(v_hat)
            tmp += self.epsilon
            np.divide(m, tmp, out=tmp)
            tmp *= step  # lr * m_hat / (sqrt(v_hat) + eps)
            p -= tmp


def all_finite(arrays: Sequence[Any]) -> bool:
    """True if no array has a NaN or inf: one cheap sum each, the exact test only if one fails.

    The cheap sum is the sum of squares (``vdot``, one BLAS pass: 3x faster than
    ``np.sum``); any NaN or inf makes it non-finite, and so may an overflow of finite
    values, which the exact test then clears.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if all(a is None or np.isfinite(np.vdot(a, a)) for a in arrays):
            return True
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


class _Entry(NamedTuple):
    make: Callable[..., _Optimizer]
    default_learning_rate: float  # what ``beras train`` starts at when no --lr is given


#: Every optimizer by name; ``get``, ``beras train --optimizer`` and ``TrainConfig`` (for
#: the default learning rate) all read this table.
OPTIMIZERS: dict[str, _Entry] = {
    "adam": _Entry(Adam, 1e-3),
    "amsgrad": _Entry(functools.partial(Adam, amsgrad=True), 1e-3),
    "rmsprop": _Entry(RMSProp, 1e-3),
    "sgd": _Entry(BasicOptimizer, 0.1),
}
_ALIASES = {"basic": "sgd"}


def _entry(name: str) -> _Entry:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}: expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[key]


def get(name: str, learning_rate: float | None = None, **kwargs: Any) -> _Optimizer:
    """An optimizer by name: ``"sgd"`` (BasicOptimizer), ``"rmsprop"``, ``"adam"``, ``"amsgrad"``.

    Names are case-insensitive. Without ``learning_rate``, the optimizer's default
    (:func:`default_learning_rate`).
    """
    entry = _entry(name)
    if learning_rate is None:
        learning_rate = entry.default_learning_rate
    return entry.make(learning_rate, **kwargs)


def default_learning_rate(name: str) -> float:
    """The learning rate ``beras train`` uses for optimizer ``name`` when none is given."""
    return _entry(name).default_learning_rate
