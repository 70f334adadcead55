"""The Diffable under check: its float64 twin, names, and evaluations that change nothing.

Float32 layers are checked through their float64 evaluation (:func:`float64_twin`: a deep
copy whose weights are float64 copies, fed float64 inputs).

Every evaluation (each call of ``forward`` for an output, a finite difference or the tape)
runs under :class:`Frozen`, which holds what a call could change fixed:

* a *stochastic* layer (class attribute ``stochastic = True``, every random draw from
  ``self.rng``, a ``np.random.Generator``): ``rng.bit_generator.state`` is saved once and
  restored before and after every evaluation, so every evaluation sees the same noise
  (the same dropout mask) and the check leaves the generator where it found it;
* a layer with a training mode (``forward`` takes ``training``; Dropout,
  BatchNormalization): the weights, trainable or not (moving statistics), are restored
  in place after every evaluation, and attributes that held them are rebound, so
  checking ``training=True`` changes nothing either.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Diffable, Variable, has_training_mode

__all__ = ["Frozen", "Subject", "as_float64", "float64_twin", "with_dtype"]


def float64_twin(layer: Any) -> Any:
    """A deep copy of ``layer`` whose weights are float64 Variables (same trainable flags)."""
    return with_dtype(layer, np.float64)


def with_dtype(layer: Any, dtype: Any) -> Any:
    """A deep copy of ``layer`` (or model) whose weights are Variables of ``dtype``."""
    memo: dict[int, Any] = {}
    originals = list(layer.weights)
    for w in originals:
        twin = Variable(np.array(w, dtype=dtype), name=getattr(w, "name", None))
        twin.trainable = bool(getattr(w, "trainable", True))
        memo[id(w)] = twin
    copied = copy.deepcopy(layer, memo)
    if [id(w) for w in copied.weights] != [id(memo[id(w)]) for w in originals]:
        raise TypeError(
            f"{type(layer).__name__}.weights must return weight objects the layer keeps as "
            "attributes (the gradient check evaluates a float64 copy of the layer by replacing "
            "them); it returned new arrays on each access"
        )
    return copied


def as_float64(x: Any) -> np.ndarray:
    """A float64 copy of a float array (other arrays: a plain copy)."""
    arr = np.asarray(x)
    return np.array(arr, dtype=np.float64) if arr.dtype.kind == "f" else np.array(arr)


class Frozen:
    """Holds a layer's randomness and state fixed across evaluations (module docstring)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        rng = getattr(layer, "rng", None) if getattr(layer, "stochastic", False) else None
        if getattr(layer, "stochastic", False) and not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"{type(layer).__name__} declares stochastic = True but its rng attribute is "
                f"{type(rng).__name__}, expected a np.random.Generator (beras.core)"
            )
        self.rng_state = rng.bit_generator.state if rng is not None else None
        self.stateful = has_training_mode(layer)
        self.weights = list(layer.weights) if self.stateful else []
        self.values = [np.array(w, copy=True) for w in self.weights]
        self.bindings = {k: v for k, v in vars(layer).items() if any(v is w for w in self.weights)}
        #: indices of trainable weights a forward changed in place (see ``restore``)
        self.changed: list[int] = []

    def reset(self) -> None:
        """Before an evaluation: the saved random state."""
        if self.rng_state is not None:
            self.layer.rng.bit_generator.state = self.rng_state

    def restore(self, watch: bool = False) -> None:
        """After an evaluation: the saved random state, weights and bindings.

        With ``watch``, trainable weights that differ from the saved values are recorded
        in ``changed`` first (a forward may update moving statistics, never trainables).
        """
        self.reset()
        if not self.stateful:
            return
        vars(self.layer).update(self.bindings)
        for j, (w, saved) in enumerate(zip(self.weights, self.values)):
            if watch and getattr(w, "trainable", True) and not np.array_equal(w, saved):
                self.changed.append(j)
            w[...] = saved


@dataclass
class Subject:
    """One Diffable in one training mode: its float64 twin and its evaluations.

    ``training`` is ``None`` for a layer without a training mode; otherwise it is passed
    to every call.
    """

    layer: Diffable
    inputs: list[Any]
    training: bool | None
    twin: Diffable = field(init=False)
    inputs64: list[np.ndarray] = field(init=False)
    own: Frozen = field(init=False)
    frozen: Frozen = field(init=False)

    def __post_init__(self) -> None:
        self.own = Frozen(self.layer)
        self.twin = float64_twin(self.layer)
        self.frozen = Frozen(self.twin)
        self.inputs64 = [as_float64(x) for x in self.inputs]

    @property
    def where(self) -> str:
        """``"training=True"`` / ``"training=False"``, or ``""`` without a training mode."""
        return "" if self.training is None else f"training={self.training}"

    @property
    def has_local(self) -> bool:
        return bool(getattr(self.layer, "has_local_jacobian", True))

    def kwargs(self) -> dict[str, Any]:
        return {} if self.training is None else {"training": self.training}

    def call(self, *args: Any) -> list[Any]:
        """``layer(*args)`` in its own dtype (recording the call); outputs as a list."""
        self.own.reset()
        try:
            out = self.layer(*args, **self.kwargs())
        finally:
            self.own.restore(watch=True)
        return out if isinstance(out, list) else [out]

    def call64(self, args: Sequence[Any] | None = None) -> list[Any]:
        """The twin called on float64 inputs (recording the call); outputs as a list."""
        self.frozen.reset()
        try:
            out = self.twin(*(self.inputs64 if args is None else args), **self.kwargs())
        finally:
            self.frozen.restore()
        return out if isinstance(out, list) else [out]

    def forward64(self, args: Sequence[Any]) -> np.ndarray:
        """The twin's ``forward`` (nothing recorded), every output flattened into one vector."""
        self.frozen.reset()
        try:
            out = self.twin.forward(*args, **self.kwargs())
        finally:
            self.frozen.restore()
        outs = out if isinstance(out, (list, tuple)) else [out]
        return np.concatenate([np.asarray(o, dtype=np.float64).ravel() for o in outs])

    def names(self) -> tuple[list[str], list[str]]:
        """Labels of inputs (``"input 0 'x'"``) and weights (``"weight 1 'b'"``)."""
        return input_names(self.layer, len(self.inputs)), weight_names(self.layer)


def short_names(layer: Any, n_inputs: int) -> tuple[list[str], list[str]]:
    """The short names of inputs (``x``) and weights (``w``) used in entry labels."""
    argnames = list(getattr(layer, "argnames", ()) or ())
    ins = [argnames[k] if k < len(argnames) else "" for k in range(n_inputs)]
    attrs = {id(v): k for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    ws = [attrs.get(id(w)) or getattr(w, "name", None) or "" for w in layer.weights]
    return ins, ws


def input_names(layer: Any, n_inputs: int) -> list[str]:
    ins, _ = short_names(layer, n_inputs)
    return [f"input {k}" + (f" '{n}'" if n else "") for k, n in enumerate(ins)]


def weight_names(layer: Any) -> list[str]:
    _, ws = short_names(layer, 0)
    return [f"weight {j}" + (f" '{n}'" if n else "") for j, n in enumerate(ws)]
