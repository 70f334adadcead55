"""Full Jacobians or random projections: the choice, the directions, and locating an error.

Small variables are checked entry by entry (full Jacobians); large ones with random
projections ``v^T J u`` (Rademacher ``u``: a wrong entry ``k`` shifts every projection
by exactly its error times ``+-1``, so a single-entry error larger than the projection's
tolerance is caught with certainty, and two errors cancel in one projection with
probability at most 1/2, so in all of them with probability at most ``2**-projections``).

When a projection fails, :func:`locate` finds a wrong entry behind it by bisection of the
direction's support (about ``log2(size)`` directional derivatives), so the report names
an entry even in projection mode. ``check_gradients`` and ``check_tape`` both decide,
draw and locate here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._compare import K_ERROR, RTOL, Comparison, Entry, Label, compare_numeric, entry_labels
from ._numeric import Column, Estimates, coordinate_columns, direction_columns, estimate_columns
from ._options import CheckOptions

__all__ = ["Functional", "Projections", "draw", "gradient", "jacobian", "locate", "use_full"]


def use_full(options: CheckOptions, size: int, output_size: int = 0) -> bool:
    """Whether a variable of ``size`` entries (and an output of ``output_size``) is checked
    entry by entry (``mode="full"``, or ``"auto"`` within ``max_full_size``)."""
    if options.mode != "auto":
        return options.mode == "full"
    return size <= options.max_full_size and output_size <= options.max_full_size


def draw(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, kind: str
) -> list[np.ndarray]:
    """``count`` random directions of ``shape``: Rademacher (``+-1``) or Gaussian."""
    if kind == "rademacher":
        return [(rng.integers(0, 2, shape) * 2 - 1).astype(np.float64) for _ in range(count)]
    return [rng.standard_normal(shape) for _ in range(count)]


@dataclass
class Functional:
    """``phi(x) = <v, f(x)>``: a scalar function of one variable for directional derivatives.

    ``evaluate(x)`` returns the flat outputs at ``x``; ``v`` weights them (``None``: their
    sum, the tape's target). Calling it returns ``(phi, |v| . |f|)``, the value and the
    magnitude its round-off is relative to.
    """

    evaluate: Callable[[np.ndarray], np.ndarray]
    v: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f = self.evaluate(x)
        if self.v is None:
            return np.array([f.sum()]), np.array([np.abs(f).sum()])
        return np.array([self.v @ f]), np.array([np.abs(self.v) @ np.abs(f)])


def jacobian(
    evaluate: Callable[[np.ndarray], np.ndarray], base: np.ndarray, eps: float
) -> Estimates:
    """The full numerical Jacobian ``(output size, variable size)`` of ``evaluate`` at ``base``."""
    return estimate_columns(
        lambda x: (lambda f: (f, np.abs(f)))(evaluate(x)), base, coordinate_columns(base), eps=eps
    )


def gradient(functional: Functional, base: np.ndarray, eps: float) -> Estimates:
    """The numerical gradient ``(1, variable size)`` of a scalar functional, entry by entry."""
    return estimate_columns(functional, base, coordinate_columns(base), eps=eps)


@dataclass
class Projections:
    """Directional derivatives of one functional along random directions, and comparisons."""

    functional: Functional
    base: np.ndarray
    eps: float
    directions: list[np.ndarray]
    est: Estimates

    @classmethod
    def estimate(
        cls, functional: Functional, base: np.ndarray, eps: float, directions: list[np.ndarray]
    ) -> Projections:
        est = estimate_columns(functional, base, direction_columns(base, directions), eps=eps)
        return cls(functional, base, eps, directions, est)

    def analytic(self, grad: Any) -> np.ndarray:
        """``grad . u`` for every direction ``u``, as a ``(1, count)`` row."""
        g = np.asarray(grad, dtype=np.float64)
        return np.array([[float(np.sum(g * u)) for u in self.directions]])

    def compare(self, view: str, target: str, grad: Any, label: Label) -> Comparison:
        return compare_numeric(view, target, self.analytic(grad), self.est, label)

    def locate_failure(self, found: Comparison, grad: Any, name: str) -> int:
        """Attach the wrong entry behind ``found``'s worst projection; returns evaluations."""
        if found.failure is None:
            return 0
        analytic = self.analytic(grad)
        gaps = np.maximum(self.est.lower - analytic, analytic - self.est.upper).ravel()
        worst = self.directions[int(np.argmax(gaps))]
        entry, evaluations = locate(self.functional, self.base, worst, grad, self.eps, name)
        found.failure.located = entry
        return evaluations


def locate(
    functional: Functional,
    base: np.ndarray,
    direction: np.ndarray,
    grad: Any,
    eps: float,
    name: str,
) -> tuple[Entry | None, int]:
    """Find one wrong entry of ``grad`` behind a failing projection, by bisection.

    ``grad`` is the analytic gradient of the scalar ``functional`` and ``direction`` a
    projection along which they disagree. The support of the direction is halved while
    the half keeps a significant discrepancy (about ``log2(size)`` directional
    derivatives); the entry found is then compared on its own. Returns the entry (or
    None if the discrepancy vanished, e.g. several errors cancelling) and the number of
    function evaluations.
    """
    flat_u = direction.ravel()
    g = np.asarray(grad, dtype=np.float64).ravel()
    evaluations = 0

    def significant(index: np.ndarray) -> bool:
        nonlocal evaluations
        u = np.zeros_like(flat_u)
        u[index] = flat_u[index]
        est = estimate_columns(
            functional, base, direction_columns(base, [u.reshape(base.shape)]), eps=eps
        )
        evaluations += est.evaluations
        analytic = float(g[index] @ flat_u[index])
        gap = max(float(est.lower[0, 0]) - analytic, analytic - float(est.upper[0, 0]), 0.0)
        return gap > K_ERROR * float(est.error[0, 0]) + RTOL * abs(float(est.value[0, 0]))

    index = np.flatnonzero(flat_u)
    while index.size > 1:
        first, second = index[: index.size // 2], index[index.size // 2 :]
        if significant(first):
            index = first
        elif significant(second):
            index = second
        else:
            return None, evaluations
    k = int(index[0])
    est = estimate_columns(functional, base, [Column(base, k, None)], eps=eps)
    evaluations += est.evaluations
    numeric = float(est.value[0, 0])
    gap = max(float(est.lower[0, 0]) - g[k], g[k] - float(est.upper[0, 0]), 0.0)
    entry = Entry(
        index=f"{entry_labels(None, (), name, base.shape)(0, k)} (located by bisection)",
        analytic=float(g[k]),
        numeric=numeric,
        abs_err=gap,
        rel_err=gap / max(abs(numeric), abs(float(g[k])), 1e-300),
        tolerance=K_ERROR * float(est.error[0, 0]) + RTOL * abs(numeric),
        estimate=float(est.error[0, 0]),
    )
    return entry, evaluations


def group_directions(shape: tuple[int, ...], groups: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One direction per group of flat indices: the group's entries moved together."""
    directions = []
    for group in groups:
        u = np.zeros(int(np.prod(shape, dtype=np.int64)))
        u[np.asarray(group, dtype=np.int64)] = 1.0
        directions.append(u.reshape(shape))
    return directions
