"""Optimizers: update parameters in place from their gradients.

State (RMSProp's ``v``, Adam's ``m``/``v``) is keyed by parameter identity, so the order
and subset of parameters passed to ``apply_gradients`` may change between calls. Updates
are computed in place into a per-parameter scratch buffer: no temporaries per step.

``get_state()`` / ``set_state(state)`` turn everything an optimizer carries from one step
to the next (learning rate, step count, slot arrays) into a flat ``{name: np.ndarray}``
that ``np.savez`` stores without pickles, and back: see :meth:`_Optimizer.get_state`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .validation import positive_float, unit_interval

__all__ = ["SGD", "Adam", "BasicOptimizer", "RMSProp"]


class _Optimizer:
    """Shared validation and per-parameter state."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = positive_float(learning_rate, "learning_rate", type(self).__name__)
        self._params: dict[int, np.ndarray] = {}  # keeps each keyed parameter alive
        self._scratch: dict[int, np.ndarray] = {}
        #: Successful ``apply_gradients`` calls so far (Keras's ``optimizer.iterations``).
        self.iterations = 0

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
            pairs.append((p, np.asarray(g, dtype=p.dtype)))
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

    # ------------------------------------------------------------------ state
    def _slots(self) -> dict[str, dict[int, np.ndarray]]:
        """The per-parameter state carried between steps, by slot name (not the scratch)."""
        return {}

    def _config(self) -> dict[str, Any]:
        """Hyperparameters a state only fits with (checked by ``set_state``)."""
        return {}

    def get_state(self, variables: Sequence[Any] | None = None) -> dict[str, np.ndarray]:
        """Everything this optimizer carries between steps, as a flat dict of arrays.

        Keys: ``"class"`` and ``"config/<name>"`` (what the state fits: the optimizer
        type and hyperparameters such as ``beta_1``), ``"learning_rate"`` (the current
        one, which schedules change), ``"iterations"`` (steps taken), and
        ``"slots/<slot>/<i>"``: the slot array (Adam's ``m``, ``v``, ``v_max``;
        RMSProp's ``v``) of the ``i``-th of ``variables``, for each variable that has
        one. ``variables`` defaults to the parameters in the order this optimizer first
        updated them; pass the model's weights for an order that does not depend on
        history. Every array is a copy, and all of them save with
        ``np.savez`` and load with ``allow_pickle=False``.
        """
        variables = self._variables(variables)
        state: dict[str, np.ndarray] = {
            "class": np.array(type(self).__name__),
            "learning_rate": np.array(float(self.learning_rate)),  # float64
            "iterations": np.array(int(self.iterations)),  # NumPy's default integer
        }
        for name, value in self._config().items():
            state[f"config/{name}"] = np.array(value)
        for slot, table in self._slots().items():
            for i, p in enumerate(variables):
                key = id(p)
                if key in table and self._params.get(key) is p:
                    state[f"slots/{slot}/{i}"] = table[key].copy()
        return state

    def set_state(self, state: Mapping[str, Any], variables: Sequence[Any] | None = None) -> None:
        """Restore a state from :meth:`get_state` (same optimizer type and hyperparameters).

        ``variables`` must list the parameters in the order ``get_state`` was given
        (default: the order this optimizer first updated them). Everything is checked
        first (keys, type, hyperparameters, shapes, dtypes); on any mismatch a
        ``ValueError`` says what differs and nothing changes. On success the state
        replaces the current one: slots absent from ``state`` start again from zeros.
        """
        name = type(self).__name__
        variables = self._variables(variables)
        if not isinstance(state, Mapping):
            raise TypeError(
                f"{name}.set_state expected a mapping of arrays (from get_state), got "
                f"{type(state).__name__}"
            )
        state = {str(k): np.asarray(v) for k, v in state.items()}
        problems: list[str] = []
        missing = [k for k in ("class", "learning_rate", "iterations") if k not in state]
        if missing:
            problems.append(f"missing entries {missing}")
        elif str(state["class"]) != name:
            problems.append(f"it is the state of a {state['class']!s}, not of a {name}")
        config = self._config()
        for setting, want in config.items():
            key = f"config/{setting}"
            if key not in state:
                problems.append(f"missing entry {key!r}")
            elif state[key].shape != () or state[key].item() != want:
                problems.append(
                    f"{setting} is {state[key].tolist()!r} in the state but {want!r} here"
                )
        lr = iterations = None
        if not problems:
            lr = _state_scalar(state["learning_rate"], np.floating)
            iterations = _state_scalar(state["iterations"], np.integer)
            if lr is None or not np.isfinite(lr) or lr <= 0:
                problems.append(
                    f"learning_rate must be a positive finite number, got {state['learning_rate']!r}"
                )
            if iterations is None or iterations < 0:
                problems.append(
                    f"iterations must be a non-negative integer, got {state['iterations']!r}"
                )
        slots = self._slots()
        restored: list[tuple[str, np.ndarray, np.ndarray]] = []
        known = {"class", "learning_rate", "iterations", *(f"config/{k}" for k in config)}
        for key in sorted(set(state) - known):
            parts = key.split("/")
            if len(parts) != 3 or parts[0] != "slots" or parts[1] not in slots:
                problems.append(f"unexpected entry {key!r} (slots here: {sorted(slots)})")
                continue
            if not parts[2].isdigit() or int(parts[2]) >= len(variables):
                problems.append(
                    f"{key!r} names variable {parts[2]}, but there are {len(variables)} variables"
                )
                continue
            p, value = variables[int(parts[2])], state[key]
            if value.shape != np.shape(p):
                problems.append(f"{key}: expected shape {np.shape(p)}, the state has {value.shape}")
            elif value.dtype != np.asarray(p).dtype:
                problems.append(
                    f"{key}: expected dtype {np.asarray(p).dtype}, the state has {value.dtype}"
                )
            else:
                restored.append((parts[1], p, value))
        if problems:
            raise ValueError(
                f"{name}.set_state: the state does not fit this optimizer (nothing was "
                "changed): " + "; ".join(problems)
            )
        self._params = {}
        for table in self._tables():
            table.clear()
        self.learning_rate = float(lr)  # type: ignore[arg-type]
        self.iterations = int(iterations)  # type: ignore[arg-type]
        for slot, p, value in restored:
            self._params[id(p)] = p
            slots[slot][id(p)] = value.copy()

    def _variables(self, variables: Sequence[Any] | None) -> list[Any]:
        if variables is None:
            return list(self._params.values())
        return list(variables)


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
        self.iterations += 1


class SGD(_Optimizer):
    """Gradient descent with momentum, as Keras's ``SGD``.

    ``velocity = momentum * velocity - lr * g``, then ``w += velocity`` (or, with
    ``nesterov=True``, ``w += momentum * velocity - lr * g``). With ``momentum=0`` this
    is :class:`BasicOptimizer`. Like it, a step ``lr * g`` that overflows raises
    ``FloatingPointError`` and nothing (weights or velocity) is updated.
    """

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = unit_interval(momentum, "momentum", "SGD")
        self.nesterov = bool(nesterov)
        self.velocity: dict[int, np.ndarray] = {}

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch, self.velocity]

    def _slots(self) -> dict[str, dict[int, np.ndarray]]:
        return {"velocity": self.velocity} if self.momentum else {}

    def _config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def apply_gradients(self, trainable_params: Sequence[Any], grads: Sequence[Any]) -> None:
        pairs = self._pairs(trainable_params, grads)
        steps = []
        for p, g in pairs:
            tmp = self._tmp(p)
            with np.errstate(over="ignore"):
                np.multiply(g, -self.learning_rate, out=tmp)  # -lr g
            steps.append(tmp)
        if not all_finite(steps):
            raise FloatingPointError(
                f"SGD: learning_rate * gradient is not finite (learning_rate="
                f"{self.learning_rate}); no parameter was updated"
            )
        for (p, _), step in zip(pairs, steps):
            if not self.momentum:
                p += step
                continue
            velocity = self._state(self.velocity, p)
            velocity *= self.momentum
            velocity += step
            if self.nesterov:
                p += step
                np.multiply(velocity, self.momentum, out=step)
                p += step
            else:
                p += velocity
        self.iterations += 1


class RMSProp(_Optimizer):
    """``v = beta v + (1 - beta) g^2``; ``w -= lr g / (sqrt(v) + epsilon)`` (epsilon outside the root)."""

    def __init__(self, learning_rate: float, beta: float = 0.9, epsilon: float = 1e-6) -> None:
        super().__init__(learning_rate)
        self.beta = unit_interval(beta, "beta", "RMSProp")
        self.epsilon = positive_float(epsilon, "epsilon", "RMSProp")
        self.v: dict[int, np.ndarray] = {}

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch, self.v]

    def _slots(self) -> dict[str, dict[int, np.ndarray]]:
        return {"v": self.v}

    def _config(self) -> dict[str, Any]:
        return {"beta": self.beta, "epsilon": self.epsilon}

    def apply_gradients(self, trainable_params: Sequence[Any], grads: Sequence[Any]) -> None:
        pairs = self._pairs(trainable_params, grads)
        self.iterations += 1
        for p, g in pairs:
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

    @property
    def t(self) -> int:
        """The step count of the bias correction: ``iterations``."""
        return self.iterations

    @t.setter
    def t(self, value: int) -> None:
        self.iterations = value

    def _tables(self) -> list[dict[int, np.ndarray]]:
        return [self._scratch, self.m, self.v, self.v_max]

    def _slots(self) -> dict[str, dict[int, np.ndarray]]:
        slots = {"m": self.m, "v": self.v}
        if self.amsgrad:
            slots["v_max"] = self.v_max
        return slots

    def _config(self) -> dict[str, Any]:
        return {
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }

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
    if all(a is None or np.isfinite(np.vdot(a, a)) for a in arrays):  # vdot sets no FP flags
        return True
    return all(a is None or bool(np.isfinite(a).all()) for a in arrays)


def _state_scalar(value: np.ndarray, kind: type) -> Any:
    """A 0-d array whose dtype is a ``kind`` (``np.floating``...) as a Python number, else None."""
    if value.shape != () or not np.issubdtype(value.dtype, kind):
        return None
    return value.item()


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
