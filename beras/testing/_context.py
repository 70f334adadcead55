"""The small state one gradient check carries: what is checked, with which options, where to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import Diffable, Tensor
from ._compare import Comparison, Finding, KinkConvention
from ._options import CheckOptions
from ._result import GradientCheckResult
from ._subject import Subject, short_names

__all__ = ["Context", "Contract", "Target", "TieHook"]

#: ``ties(layer, inputs) -> [(input index, flat indices of one group of tied entries), ...]``
TieHook = Callable[[Any, Sequence[np.ndarray]], Sequence[tuple[int, Any]]]


@dataclass(frozen=True)
class Target:
    """One variable of the float64 twin to differentiate: an input or a weight."""

    kind: str  # "input" or "weight"
    index: int
    short: str  # the name entries are labelled with ("x", "w"), or ""
    array: np.ndarray
    bounds: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        return f"{self.kind} {self.index}" + (f" '{self.short}'" if self.short else "")

    @property
    def entry_name(self) -> str:
        return self.short or self.kind


@dataclass
class Context:
    """One Diffable in one training mode, the options, the generator and the result."""

    subject: Subject
    options: CheckOptions
    rng: np.random.Generator
    result: GradientCheckResult
    constants: tuple[int, ...] = ()
    bounds: Mapping[int, tuple[float, float]] | None = None
    convention: KinkConvention | None = None
    ties: TieHook | None = None

    @property
    def where(self) -> str:
        return self.subject.where

    @property
    def suffix(self) -> str:
        return f" ({self.where})" if self.where else ""

    def key(self, t: Target) -> str:
        """``result.mode``'s key of a variable."""
        return t.name + self.suffix

    def record(self, found: Comparison, where: str) -> Finding | None:
        """Add a comparison to the result, labelled with ``where`` and the training mode."""
        label = ", ".join(w for w in (where, self.where) if w)
        for finding in (found.failure, found.unjudged):
            if finding is not None:
                finding.where = label
        return self.result.add(found, self.convention)

    def _variables(self, differentiated_only: bool) -> list[Target]:
        s = self.subject
        ins, ws = short_names(s.twin, len(s.inputs64))
        bounds = dict(self.bounds or {})
        targets = [
            Target("input", k, ins[k], x, bounds.get(k) if differentiated_only else None)
            for k, x in enumerate(s.inputs64)
            if not differentiated_only or (x.dtype.kind == "f" and k not in self.constants)
        ]
        return targets + [Target("weight", j, ws[j], w) for j, w in enumerate(s.twin.weights)]

    def targets(self) -> list[Target]:
        """The differentiated variables: float inputs that are not constants, and weights."""
        return self._variables(differentiated_only=True)

    def all_targets(self) -> list[Target]:
        """Every input and weight (the exact VJP view compares them all)."""
        return self._variables(differentiated_only=False)

    def evaluator(self, t: Target) -> Callable[[np.ndarray], np.ndarray]:
        """``x -> flat outputs`` with ``t`` replaced by ``x`` (clipped to its bounds)."""
        s = self.subject
        base = t.array.copy()
        lo, hi = t.bounds if t.bounds is not None else (-np.inf, np.inf)

        def evaluate(x: np.ndarray) -> np.ndarray:
            point = np.clip(x, lo, hi) if t.bounds is not None else x
            if t.kind == "input":
                args = list(s.inputs64)
                args[t.index] = point
                return s.forward64(args)
            t.array[...] = point
            try:
                return s.forward64(s.inputs64)
            finally:
                t.array[...] = base

        return evaluate

    def tie_groups(self, t: Target) -> list[np.ndarray]:
        """The declared groups of tied entries of an input (two entries or more each)."""
        if self.ties is None or t.kind != "input":
            return []
        groups = self.ties(self.subject.twin, self.subject.inputs64)
        return [np.asarray(g).ravel() for k, g in groups if k == t.index and np.size(g) >= 2]


class Contract(Diffable):
    """``sum_o <v_o, x_o>``: the random linear functional the tape view differentiates."""

    input_gradient_layout = "elementwise"

    def __init__(self, vs: Sequence[np.ndarray]) -> None:
        self.vs = [np.asarray(v, dtype=np.float64) for v in vs]

    def forward(self, *xs: Any) -> Tensor:
        total = sum(np.sum(v * np.asarray(x, dtype=np.float64)) for v, x in zip(self.vs, xs))
        return Tensor(np.asarray(total))

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(v.copy()) for v in self.vs]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        return [Tensor(v * np.asarray(J[0], dtype=np.float64)) for v in self.vs]
