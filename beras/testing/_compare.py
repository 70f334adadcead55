"""The comparison engine: tolerances that know the numerical error, findings with fields.

An analytic value ``a`` is compared with a numerical estimate known to lie in
``[lower, upper]`` up to an error estimate ``e`` (``lower == upper`` away from kinks):

    fail  iff  a < lower - tol  or  a > upper + tol,
    tol = k * e + rtol * |estimate| + row_rtol * max |estimate in the same output row|

so the tolerance grows with the estimate's own error, never with the array's size
(``k = 4``, ``rtol = 1e-7``, ``row_rtol = 1e-8``: the round-off of a sum inside ``f``
can exceed ``eps |f| / h``, and the row term bounds it by the output's own scale).
Entries whose estimate is unreliable are *unjudged* (the check is then inconclusive):
neither passed nor failed. At a kink, a documented convention's values (``kink_values``)
widen the accepted interval to include them; the entries only that widening accepted
are listed in the result (:class:`ConventionUse`).

Analytic-versus-analytic comparisons (a VJP against the local Jacobians contracted with
the same upstream) use a round-off bound instead: ``k * eps * sum |g| |J|``.

Every comparison returns a :class:`Comparison`; its failures are :class:`Finding`
objects with structured fields (view, target, counts, the worst entries ranked by how
far they are beyond their tolerance), formatted only when a report is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._numeric import Estimates

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

Label = Callable[[int, int], str]


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


#: What each kind of finding says about its entries.
_WHAT = {
    "numeric": "differ from the numerical derivative beyond its error estimate",
    "exact": "differ from the local Jacobians contracted with the same upstream gradient "
    "beyond round-off",
    "unjudged": "could not be judged (numerical estimate unreliable)",
}


@dataclass
class Finding:
    """A failed or unjudged comparison of one view for one variable, or a broken invariant.

    Attributes:
        view: ``"local"``, ``"vjp"``, ``"tape"`` or ``"invariant"``.
        target: the variable (``"weight 0 'w'"``) or, for an invariant, the subject.
        kind: ``"numeric"`` / ``"exact"`` (analytic against finite differences / against
            another analytic computation), ``"unjudged"`` or ``"invariant"``.
        where: what was compared beyond the variable (``"upstream 1"``, ``"random
            directions"``, ``"training=True"``), or ``""``.
        bad: entries that failed (or could not be judged); ``total``: entries compared.
        worst: the worst entries, ranked by error / tolerance, worst first.
        located: for a failing projection, the wrong entry it leads to (by bisection).
        message: an invariant's message, or a note prefixed to the summary.
        reference: what the analytic values were compared with (a column header).
    """

    view: str
    target: str
    kind: str = "numeric"
    where: str = ""
    bad: int = 0
    total: int = 0
    worst: list[Entry] = field(default_factory=list)
    located: Entry | None = None
    message: str = ""
    reference: str = "numeric"

    @property
    def summary(self) -> str:
        """One line: what failed, how many of how many entries, what the rows show."""
        if self.kind == "invariant":
            return self.message
        text = f"{self.bad} of {self.total} entries {_WHAT[self.kind]}"
        if self.message:
            text = f"{self.message} {text}"
        if self.located is not None:
            return f"{text}; the first row is the wrong entry the worst projection leads to, then the worst projections ranked by error / tolerance:"
        return f"{text}; worst first, ranked by error / tolerance:"

    def label(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"[{self.view}] {self.target}{where}"

    def format(self) -> str:
        lines = [f"{self.label()}: {self.summary}"]
        rows = ([self.located] if self.located is not None else []) + self.worst
        if rows:
            header = (
                "index",
                "analytic",
                self.reference,
                "abs err",
                "rel err",
                "err est",
                "tolerance",
            )
            table = [header] + [e.row() for e in rows]
            widths = [max(len(r[i]) for r in table) for i in range(len(header))]
            for r in table:
                lines.append("    " + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
        return "\n".join(lines)


@dataclass(frozen=True)
class KinkConvention:
    """Derivative values a Diffable's documented convention returns at a kink.

    ``values`` are accepted at a detected kink besides the interval between the one-sided
    derivatives; ``description`` says whose convention it is (for the report).
    """

    values: tuple[float, ...]
    description: str = ""


@dataclass(frozen=True)
class ConventionUse:
    """Entries accepted only because a documented kink convention's value was allowed."""

    view: str
    target: str
    convention: KinkConvention
    entries: tuple[str, ...]

    def format(self) -> str:
        values = ", ".join(f"{v:g}" for v in self.convention.values)
        about = f" ({self.convention.description})" if self.convention.description else ""
        shown = ", ".join(self.entries[:WORST]) + (" ..." if len(self.entries) > WORST else "")
        return (
            f"[{self.view}] {self.target}: the kink convention{about}, value {values}, "
            f"accepted {len(self.entries)} entries: {shown}"
        )


@dataclass
class Comparison:
    """What one comparison found: a failure, unjudged entries, convention acceptances."""

    view: str
    target: str
    total: int
    failure: Finding | None = None
    unjudged: Finding | None = None
    accepted: tuple[str, ...] = ()


def _index(label: str, shape: tuple[int, ...], flat: int) -> str:
    if not shape:
        return label
    return f"{label}[{', '.join(str(int(i)) for i in np.unravel_index(flat, shape))}]"


def entry_labels(
    row_label: str | None, row_shape: tuple[int, ...], col_label: str, col_shape: tuple[int, ...]
) -> Label:
    """A function ``(row, col) -> 'd out[..]/d w[..]'`` for 2-D blocks (or ``w[..]`` for 1-D)."""

    def label(row: int, col: int) -> str:
        if row_label is None:
            return _index(col_label, col_shape, col)
        return f"d {_index(row_label, row_shape, row)} / d {_index(col_label, col_shape, col)}"

    return label


def projection_labels(upstream: int | None = None) -> Label:
    """Labels of projections ``<v, J u>``: "random direction c" (of upstream ``i``)."""
    prefix = "" if upstream is None else f"upstream {upstream}, "
    return lambda r, c: f"{prefix}random direction {c}"


def widen(est: Estimates, values: Sequence[float]) -> Estimates:
    """At kinks, accept a convention's ``values`` besides ``[lower, upper]``.

    Compared directly, an entry at a kink passes inside its interval or at one of the
    values. ``lower``/``upper`` become the hull of both (what :func:`project` carries
    into projections, where the values mix), and ``plain`` keeps the interval alone, so
    the comparison can tell which entries only the convention accepted.
    """
    if not values:
        return est
    lower, upper = est.lower, est.upper
    for c in values:
        lower = np.where(est.kink, np.minimum(lower, c), lower)
        upper = np.where(est.kink, np.maximum(upper, c), upper)
    return replace(
        est, lower=lower, upper=upper, plain=(est.lower, est.upper), values=tuple(values)
    )


def project(est: Estimates, v: np.ndarray) -> Estimates:
    """``v^T`` applied to a block of estimates, with interval arithmetic at kinks."""
    v = v.reshape(-1, 1)

    def interval(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = np.minimum(v * lower, v * upper).sum(axis=0, keepdims=True)
        hi = np.maximum(v * lower, v * upper).sum(axis=0, keepdims=True)
        return lo, hi

    lo, hi = interval(est.lower, est.upper)  # the hull: a convention's values mix here
    err = (np.abs(v) * est.error).sum(axis=0, keepdims=True)
    reliable = np.all(est.reliable | (v == 0), axis=0, keepdims=True)
    kink = np.any(est.kink & (v != 0), axis=0, keepdims=True)
    plain = interval(*est.plain) if est.plain is not None else None
    return Estimates((lo + hi) / 2, err, lo, hi, kink, reliable, est.step, est.evaluations, plain)


def _tolerance(est: Estimates, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    size = np.maximum(np.abs(lower), np.abs(upper))
    size = np.where(np.isfinite(size), size, 0.0)
    # round-off inside f (a sum's intermediates) can exceed eps |f| / h: a floor relative
    # to the largest derivative of the same output (row) covers it
    row = size.max(axis=-1, keepdims=True) if size.size else size
    return K_ERROR * est.error + RTOL * size + ROW_RTOL * row


def _distance(a: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    distance = np.maximum(lower - a, a - upper)
    return np.where(np.isfinite(a), np.maximum(distance, 0.0), np.inf)


def compare_numeric(
    view: str, target: str, analytic: np.ndarray, est: Estimates, label: Label
) -> Comparison:
    """Compare analytic values with numerical estimates (same 2-D shape)."""
    a = np.asarray(analytic, dtype=np.float64)
    tol = _tolerance(est, est.lower, est.upper)
    distance = _distance(a, est.lower, est.upper)
    numeric_ok = np.isfinite(est.lower) & np.isfinite(est.upper) & np.isfinite(tol)
    reliable = est.reliable & numeric_ok
    bad = reliable & (distance > tol)
    accepted = np.zeros(a.shape, dtype=bool)
    if est.plain is not None:
        plain_tol = _tolerance(est, *est.plain)
        plain_distance = _distance(a, *est.plain)
        plain_bad = reliable & (plain_distance > plain_tol)
        if est.values:  # compared directly: inside the interval, or at a convention's value
            at_value = np.zeros(a.shape, dtype=bool)
            for c in est.values:
                at_value |= np.abs(a - c) <= plain_tol
            accepted = plain_bad & est.kink & at_value
            bad, distance, tol = plain_bad & ~accepted, plain_distance, plain_tol
        else:  # projected: the hull of both
            accepted = plain_bad & ~bad
    ratio = np.where(
        tol > 0, distance / np.where(tol > 0, tol, 1.0), np.where(distance > 0, np.inf, 0.0)
    )

    def worst(mask: np.ndarray) -> list[Entry]:
        idx = np.flatnonzero(mask)
        order = idx[np.argsort(-ratio.ravel()[idx], kind="stable")][:WORST]
        return [_numeric_entry(int(flat), a, est, distance, tol, label) for flat in order]

    n = int(a.size)
    found = Comparison(view, target, n)
    if bad.any():
        found.failure = Finding(view, target, "numeric", bad=int(bad.sum()), total=n)
        found.failure.worst = worst(bad)
    if (~reliable).any():
        found.unjudged = Finding(view, target, "unjudged", bad=int((~reliable).sum()), total=n)
        found.unjudged.worst = worst(~reliable)
    if accepted.any():
        shape = a.shape if a.ndim == 2 else (1, a.size)
        flat = np.flatnonzero(accepted)
        found.accepted = tuple(label(*map(int, np.unravel_index(k, shape))) for k in flat)
    return found


def _numeric_entry(
    flat: int, a: np.ndarray, est: Estimates, distance: np.ndarray, tol: np.ndarray, label: Label
) -> Entry:
    r, c = np.unravel_index(flat, a.shape) if a.ndim == 2 else (0, flat)
    av = float(a.ravel()[flat])
    lo, hi = float(est.lower.ravel()[flat]), float(est.upper.ravel()[flat])
    nv = lo if lo == hi else (lo + hi) / 2
    err = float(distance.ravel()[flat])
    return Entry(
        index=label(int(r), int(c)) + (" (kink)" if lo != hi else ""),
        analytic=av,
        numeric=nv,
        abs_err=err,
        rel_err=err / max(abs(nv), abs(av), 1e-300),
        tolerance=float(tol.ravel()[flat]),
        estimate=float(est.error.ravel()[flat]),
        interval=(lo, hi) if lo != hi else None,
    )


@dataclass(frozen=True)
class Exact:
    """A reference for :func:`compare_exact`: the value, ``sum |g| |J|``, and a floor.

    ``magnitude`` is ``sum |g| |J|`` (the reference rule applied to absolute values) and
    ``floor`` is ``max(|g|, |y|) * max |J|`` (``y`` the output), the largest product an
    equivalent formula may form.
    """

    value: np.ndarray
    magnitude: np.ndarray
    floor: float
    eps: float


def compare_exact(
    view: str, target: str, analytic: np.ndarray, reference: Exact, label: Label
) -> Comparison:
    """Compare two analytic computations of one quantity up to round-off.

    The tolerance, ``K_ROUND * eps * (magnitude + max(magnitude) + floor)``, is the
    round-off bound of each entry plus that of intermediates an equivalent formula may
    use: Softmax's ``y * (J - sum(J * y))`` rounds relative to ``|y| |J|``, while the
    Jacobian entries ``y - y**2`` it stands for may be far smaller. A relative error
    ``r`` in an entry ``a`` is caught when ``r |a|`` exceeds that: ``r ~ 1e-13`` for an
    entry as large as the array's largest product.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    ref = np.asarray(reference.value, dtype=np.float64).ravel()
    mag = np.asarray(reference.magnitude, dtype=np.float64).ravel()
    top = float(mag.max()) if mag.size else 0.0
    tol = K_ROUND * reference.eps * (mag + top + reference.floor)
    diff = np.abs(a - ref)
    bad = ~(diff <= tol)  # NaN fails
    found = Comparison(view, target, int(a.size))
    if not bad.any():
        return found
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
            estimate=float(tol[i] / K_ROUND),
        )
        for i in order
    ]
    found.failure = Finding(
        view, target, "exact", bad=int(bad.sum()), total=found.total, worst=entries
    )
    found.failure.reference = "local . J"
    return found


def invariant(target: str, message: str) -> Finding:
    """A failed invariant (mutation, aliasing, shape, dtype, determinism, linearity)."""
    return Finding("invariant", target, "invariant", message=message)


def max_abs(x: Any) -> float:
    """The largest absolute entry (0 for an empty array)."""
    arr = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(arr))) if arr.size else 0.0
