"""Tolerances that know the numerical error, and reports that name the worst entries.

An analytic value ``a`` is compared with a numerical estimate known to lie in
``[lower, upper]`` up to an error estimate ``e`` (``lower == upper`` away from kinks):

    fail  iff  a < lower - tol  or  a > upper + tol,
    tol = k * e + rtol * |estimate| + row_rtol * max |estimate in the same output row|

so the tolerance grows with the estimate's own error, never with the array's size
(``k = 4``, ``rtol = 1e-7``, ``row_rtol = 1e-8``: the round-off of a sum inside ``f``
can exceed ``eps |f| / h``, and the row term bounds it by the output's own scale).
Entries whose estimate is unreliable are *inconclusive*: neither passed nor failed.
Analytic-versus-analytic comparisons (a VJP against the local Jacobians contracted with
the same upstream) use a round-off bound instead: ``k * eps * sum |g| |J|``.

Failure messages follow ``numpy.testing.assert_allclose``: a summary line, then the
worst few entries (index, analytic, numeric, absolute and relative error, the error
estimate and the tolerance derived from it),
never whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Multiple of the error estimate an analytic value may be off by.
K_ERROR = 4.0
#: Relative floor of the numerical comparison.
RTOL = 1e-7
#: Floor relative to the largest derivative of the same output (row of the Jacobian).
ROW_RTOL = 1e-8
#: Multiple of ``eps * sum |g| |J|`` allowed between two analytic computations.
K_ROUND = 64.0
#: Entries shown in a report.
WORST = 5


@dataclass(frozen=True)
class Entry:
    """One compared entry: where, the two values, and how far apart."""

    index: str
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    tolerance: float
    estimate: float = 0.0  # the numerical error estimate (round-off bound for exact views)
    interval: tuple[float, float] | None = None  # at a kink: between the one-sided values

    def row(self) -> tuple[str, ...]:
        numeric = (
            f"[{self.interval[0]:.6g}, {self.interval[1]:.6g}]"
            if self.interval
            else f"{self.numeric:.9g}"
        )
        return (
            self.index,
            f"{self.analytic:.9g}",
            numeric,
            f"{self.abs_err:.3g}",
            f"{self.rel_err:.3g}",
            f"{self.estimate:.3g}",
            f"{self.tolerance:.3g}",
        )


@dataclass
class Finding:
    """A failed or inconclusive comparison of one view for one input or weight."""

    view: str
    target: str
    summary: str
    worst: list[Entry] = field(default_factory=list)
    reference: str = "numeric"  # what the analytic values were compared with

    def format(self) -> str:
        lines = [f"[{self.view}] {self.target}: {self.summary}"]
        if self.worst:
            header = (
                "index",
                "analytic",
                self.reference,
                "abs err",
                "rel err",
                "err est",
                "tolerance",
            )
            rows = [header] + [e.row() for e in self.worst]
            widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
            for r in rows:
                lines.append("    " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
        return "\n".join(lines)


class GradientCheckError(AssertionError):
    """A gradient check failed; the message names the view, the variable and the worst entries."""

    __module__ = "beras.testing"  # its public home, shown in tracebacks

    def __init__(self, message: str, result: GradientCheckResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class GradientCheckResult:
    """What a gradient check found.

    Attributes:
        subject: what was checked (``repr`` of the Diffable, or a description).
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"`` (nothing failed, but some
            numerical estimates were too unreliable to judge some entries).
        failures: the failed comparisons and invariants, worst entries first.
        inconclusive: the comparisons with unreliable numerical estimates.
        evaluations: how many times the function was evaluated numerically.
        mode: ``"full"`` (per-entry Jacobians) or ``"projection"`` (random projections)
            per checked variable.
        checked: number of compared entries per view.
    """

    subject: str
    failures: list[Finding] = field(default_factory=list)
    inconclusive: list[Finding] = field(default_factory=list)
    evaluations: int = 0
    mode: dict[str, str] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.failures:
            return "fail"
        return "inconclusive" if self.inconclusive else "pass"

    @property
    def passed(self) -> bool:
        return not self.failures and not self.inconclusive

    def __bool__(self) -> bool:
        return self.passed

    def failed_views(self) -> set[str]:
        """The views (``"local"``, ``"vjp"``, ``"tape"``, ``"invariant"``) that failed."""
        return {f.view for f in self.failures}

    def report(self) -> str:
        """A readable account of the failures and inconclusive entries."""
        counts = ", ".join(f"{k}: {v}" for k, v in self.checked.items())
        head = (
            f"gradient check of {self.subject}: {self.status} "
            f"({self.evaluations} function evaluations; entries compared: {counts or 'none'})"
        )
        parts = [head]
        if self.failures:
            parts.append(f"{len(self.failures)} failed:")
            parts += [f.format() for f in self.failures]
        if self.inconclusive:
            parts.append(
                f"{len(self.inconclusive)} inconclusive (the numerical estimate itself is "
                "unreliable there: a kink or steep region even the smallest step did not resolve):"
            )
            parts += [f.format() for f in self.inconclusive]
        return "\n".join(parts)

    def raise_for_status(self, inconclusive: str = "warn") -> GradientCheckResult:
        """Raise :class:`GradientCheckError` on failure; on inconclusive, ``"warn"``, ``"raise"`` or ``"ignore"``."""
        if self.failures or (self.inconclusive and inconclusive == "raise"):
            raise GradientCheckError(self.report(), self)
        if self.inconclusive and inconclusive == "warn":
            import warnings

            warnings.warn(self.report(), InconclusiveGradientCheck, stacklevel=3)
        return self


class InconclusiveGradientCheck(UserWarning):
    """Some numerical estimates were too unreliable to pass or fail their entries."""

    __module__ = "beras.testing"  # its public home, shown in tracebacks


def _index(label: str, shape: tuple[int, ...], flat: int) -> str:
    if not shape:
        return label
    return f"{label}[{', '.join(str(int(i)) for i in np.unravel_index(flat, shape))}]"


def entry_labels(
    row_label: str | None, row_shape: tuple[int, ...], col_label: str, col_shape: tuple[int, ...]
) -> Any:
    """A function ``(row, col) -> 'd out[..]/d w[..]'`` for 2-D blocks (or ``w[..]`` for 1-D)."""

    def label(row: int, col: int) -> str:
        if row_label is None:
            return _index(col_label, col_shape, col)
        return f"d {_index(row_label, row_shape, row)} / d {_index(col_label, col_shape, col)}"

    return label


def compare_numeric(
    view: str,
    target: str,
    analytic: np.ndarray,
    estimate: Any,
    label: Any,
    *,
    k_error: float = K_ERROR,
    rtol: float = RTOL,
    row_rtol: float = ROW_RTOL,
    atol: float = 0.0,
) -> tuple[Finding | None, Finding | None, int]:
    """Compare analytic values with numerical estimates (same 2-D shape).

    Returns ``(failure or None, inconclusive or None, number of entries compared)``.
    """
    a = np.asarray(analytic, dtype=np.float64)
    lower, upper = estimate.lower, estimate.upper
    size = np.maximum(np.abs(lower), np.abs(upper))
    size = np.where(np.isfinite(size), size, 0.0)
    # round-off inside f (a sum's intermediates) can exceed eps |f| / h: a floor relative
    # to the largest derivative of the same output (row) covers it
    row = size.max(axis=-1, keepdims=True) if size.size else size
    tol = k_error * estimate.error + rtol * size + row_rtol * row + atol
    distance = np.maximum(lower - a, a - upper)
    distance = np.where(np.isfinite(a), np.maximum(distance, 0.0), np.inf)
    numeric_ok = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(tol)
    reliable = estimate.reliable & numeric_ok
    bad = reliable & (distance > tol)
    unsure = ~reliable
    ratio = np.where(
        tol > 0, distance / np.where(tol > 0, tol, 1.0), np.where(distance > 0, np.inf, 0.0)
    )

    def worst(mask: np.ndarray) -> list[Entry]:
        idx = np.flatnonzero(mask)
        order = idx[np.argsort(-ratio.ravel()[idx], kind="stable")][:WORST]
        entries = []
        for flat in order:
            r, c = np.unravel_index(flat, a.shape) if a.ndim == 2 else (0, flat)
            av = float(a.ravel()[flat])
            lo, hi = float(lower.ravel()[flat]), float(upper.ravel()[flat])
            nv = lo if lo == hi else (lo + hi) / 2
            err = float(distance.ravel()[flat])
            entries.append(
                Entry(
                    index=label(int(r), int(c)) + (" (kink)" if lo != hi else ""),
                    analytic=av,
                    numeric=nv,
                    abs_err=err,
                    rel_err=err / max(abs(nv), abs(av), 1e-300),
                    tolerance=float(tol.ravel()[flat]),
                    estimate=float(estimate.error.ravel()[flat]),
                    interval=(lo, hi) if lo != hi else None,
                )
            )
        return entries

    failure = inconclusive = None
    n = int(a.size)
    if bad.any():
        failure = Finding(
            view,
            target,
            f"{int(bad.sum())} of {n} entries differ from the numerical derivative beyond "
            "its error estimate; worst:",
            worst(bad),
        )
    if unsure.any():
        inconclusive = Finding(
            view,
            target,
            f"{int(unsure.sum())} of {n} entries could not be judged (numerical estimate "
            "unreliable); worst:",
            worst(unsure),
        )
    return failure, inconclusive, n


def compare_exact(
    view: str,
    target: str,
    analytic: np.ndarray,
    reference: np.ndarray,
    magnitude: np.ndarray,
    eps: float,
    label: Any,
    *,
    floor: float = 0.0,
    k_round: float = K_ROUND,
) -> tuple[Finding | None, int]:
    """Compare two analytic computations of one quantity up to round-off.

    ``magnitude`` is ``sum |g| |J|`` (the reference rule applied to absolute values) and
    ``floor`` is ``max(|g|, |y|) * max |J|`` (``y`` the output), the largest product an
    equivalent formula may form. The tolerance,
    ``k_round * eps * (magnitude + max(magnitude) + floor)``, is the round-off bound of
    each entry plus that of intermediates an equivalent formula may use: Softmax's
    ``y * (J - sum(J * y))`` rounds relative to ``|y| |J|``, while the Jacobian entries
    ``y - y**2`` it stands for may be far smaller. A relative error ``r`` in an entry
    ``a`` is caught when ``r |a|`` exceeds that: ``r ~ 1e-13`` for an entry as large as
    the array's largest product.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    ref = np.asarray(reference, dtype=np.float64).ravel()
    mag = np.asarray(magnitude, dtype=np.float64).ravel()
    tol = k_round * eps * (mag + (float(mag.max()) if mag.size else 0.0) + floor)
    diff = np.abs(a - ref)
    bad = ~(diff <= tol)  # NaN fails
    n = int(a.size)
    if not bad.any():
        return None, n
    ratio = np.where(tol > 0, diff / np.where(tol > 0, tol, 1.0), np.inf)
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    idx = np.flatnonzero(bad)
    order = idx[np.argsort(-ratio[idx], kind="stable")][:WORST]
    entries = [
        Entry(
            index=label(0, int(i)),
            analytic=float(a[i]),
            numeric=float(ref[i]),
            abs_err=float(diff[i]),
            rel_err=float(diff[i] / max(abs(ref[i]), abs(a[i]), 1e-300)),
            tolerance=float(tol[i]),
            estimate=float(tol[i] / k_round),
        )
        for i in order
    ]
    return (
        Finding(
            view,
            target,
            f"{int(bad.sum())} of {n} entries differ from the local Jacobians contracted with "
            "the same upstream gradient beyond round-off; worst:",
            entries,
            reference="local . J",
        ),
        n,
    )


def invariant(target: str, message: str) -> Finding:
    """A failed invariant (mutation, aliasing, shape, dtype, determinism, linearity)."""
    return Finding("invariant", target, message)
