"""Numerical derivatives: central differences in float64 with a per-entry error estimate.

Each *column* of a Jacobian (one coordinate of an array, or one direction ``u`` for a
directional derivative) is estimated from the function at ``x +- h`` and ``x +- h/2``,
with ``h = eps**(1/3) * max(|x|, 1)`` (the step that balances truncation and round-off
for central differences) and the actual steps ``(x + h) - x`` that floating point
takes. From those five values (``f(x)`` is shared):

* the central differences ``c(h)`` and ``c(h/2)`` give the Richardson extrapolation
  ``(4 c(h/2) - c(h)) / 3`` and, from ``|c(h) - c(h/2)|`` (three times the truncation
  error of ``c(h/2)``, and far more than that of the extrapolation), the error estimate;
  round-off adds ``~ eps * |f| / h``;
* the one-sided differences on each side, extrapolated the same way, detect a *kink*:
  when each side is self-consistent but the sides disagree, the derivative is a
  one-sided notion and the estimate is the interval between the two sides (an analytic
  value is accepted anywhere inside it, bounds included);
* an entry whose estimates at ``h`` and ``h/2`` disagree beyond what round-off explains
  (a kink or a clipping bound inside the stencil but not at ``x``, a steep region) is
  recomputed with steps divided by 8, down to ``64 * eps * max(|x|, 1)``; an entry still
  unresolved there is marked unreliable, and the checks report it as *inconclusive*
  instead of passing or failing it.

Inputs with a bounded domain (probabilities in ``[0, 1]``) are evaluated as
``f(clip(x, lo, hi))``: the function is extended by a constant outside the domain, so
a point on a bound is a kink between the inside slope and zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NumericalJacobian", "numerical_jacobian"]

EPS64 = float(np.finfo(np.float64).eps)
#: The relative step of central differences, ``eps**(1/3)`` (about 6.06e-6).
STEP = EPS64 ** (1.0 / 3.0)
#: Refined steps shrink by this factor.
SHRINK = 8.0
#: The smallest step, relative to ``max(|x|, 1)``.
MIN_STEP = 64.0 * EPS64
#: A truncation discrepancy below this fraction of an entry's scale counts as resolved.
THETA = 1e-5
#: One-sided estimates are self-consistent below this fraction (they converge as O(h)).
THETA_SIDE = 1e-3


@dataclass
class Estimates:
    """Estimates of a ``(n_outputs, n_columns)`` block of derivatives.

    ``lower <= true value <= upper`` up to ``error``; ``value`` is the best point estimate
    (the interval's midpoint at a kink).
    """

    value: np.ndarray
    error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    kink: np.ndarray
    reliable: np.ndarray
    step: np.ndarray  # the step each column ended with
    evaluations: int
    #: ``(lower, upper)`` before a kink convention widened them (see ``_compare.widen``)
    plain: tuple[np.ndarray, np.ndarray] | None = None
    #: the convention's values themselves, accepted at kinks (direct estimates only)
    values: tuple[float, ...] = ()


@dataclass
class NumericalJacobian:
    """The numerical Jacobian of ``f`` with respect to one array.

    ``value[o, i]`` is d(output entry ``o``)/d(array entry ``i``), outputs flattened and
    concatenated in order, array entries flattened (C order). ``error`` is the per-entry
    error estimate; at a kink (``kink[o, i]``) the derivative is only known to lie in
    ``[lower, upper]``; ``reliable`` is False where even the smallest step did not
    resolve the derivative. ``evaluations`` counts calls of ``f``.
    """

    value: np.ndarray
    error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    kink: np.ndarray
    reliable: np.ndarray
    evaluations: int
    output_shapes: list[tuple[int, ...]]
    input_shape: tuple[int, ...]


class Column:
    """One direction of differentiation: a coordinate of ``x`` or a dense vector."""

    def __init__(self, x: np.ndarray, index: int | None, direction: np.ndarray | None) -> None:
        self.x, self.index, self.direction = x, index, direction
        if index is not None:
            self.scale = max(abs(float(x.flat[index])), 1.0)
        else:
            assert direction is not None
            size = float(np.max(np.abs(direction))) if direction.size else 1.0
            x_scale = float(np.max(np.abs(x))) if x.size else 0.0
            self.scale = max(x_scale, 1.0) / max(size, 1e-300)

    def point(self, t: float) -> tuple[np.ndarray, float]:
        """``x + t * direction`` and the step actually taken."""
        moved = self.x.copy()
        if self.index is not None:
            old = float(self.x.flat[self.index])
            new = old + t
            moved.flat[self.index] = new
            return moved, new - old
        assert self.direction is not None
        moved += t * self.direction
        return moved, t


def _differences(
    g: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    column: Column,
    h: float,
    f0: np.ndarray,
    m0: np.ndarray,
    eps: float,
) -> dict[str, np.ndarray]:
    """Central and one-sided differences at steps ``h`` and ``h/2``, with their errors."""
    values, mags, steps = {}, [m0], {}
    for name, t in (("p1", h), ("m1", -h), ("p2", h / 2), ("m2", -h / 2)):
        point, actual = column.point(t)
        # a step may leave the function's domain: its NaN/inf marks the entry unresolved
        with np.errstate(all="ignore"):
            values[name], mag = g(point)
        mags.append(mag)
        steps[name] = abs(actual)
    if min(steps.values()) == 0.0:
        raise FloatingPointError("the step vanished in floating point")
    with np.errstate(all="ignore"):
        return _combine(values, mags, steps, f0, h, eps)


def _combine(
    values: dict, mags: list, steps: dict, f0: np.ndarray, h: float, eps: float
) -> dict[str, np.ndarray]:
    round_off = eps * np.max(mags, axis=0)
    c1 = (values["p1"] - values["m1"]) / (steps["p1"] + steps["m1"])
    c2 = (values["p2"] - values["m2"]) / (steps["p2"] + steps["m2"])
    fw1, fw2 = (values["p1"] - f0) / steps["p1"], (values["p2"] - f0) / steps["p2"]
    bw1, bw2 = (f0 - values["m1"]) / steps["m1"], (f0 - values["m2"]) / steps["m2"]
    return {
        "central": (4.0 * c2 - c1) / 3.0,
        "central_trunc": np.abs(c1 - c2),
        "central_round": 6.0 * round_off / h,
        "forward": 2.0 * fw2 - fw1,
        "forward_trunc": np.abs(fw1 - fw2),
        "backward": 2.0 * bw2 - bw1,
        "backward_trunc": np.abs(bw1 - bw2),
        "side_round": 20.0 * round_off / h,
    }


def _classify(d: dict[str, np.ndarray], scale: np.ndarray) -> dict[str, np.ndarray]:
    """Per output: smooth, kink or unresolved, with value, interval and error."""
    side_ok = (d["forward_trunc"] <= THETA_SIDE * scale + 4.0 * d["side_round"]) & (
        d["backward_trunc"] <= THETA_SIDE * scale + 4.0 * d["side_round"]
    )
    side_err = d["forward_trunc"] + d["backward_trunc"] + 2.0 * d["side_round"]
    kink = side_ok & (np.abs(d["forward"] - d["backward"]) > 4.0 * side_err)
    smooth = ~kink & (d["central_trunc"] <= THETA * scale + 4.0 * d["central_round"])
    lower = np.where(kink, np.minimum(d["forward"], d["backward"]), d["central"])
    upper = np.where(kink, np.maximum(d["forward"], d["backward"]), d["central"])
    error = np.where(kink, side_err, d["central_trunc"] + d["central_round"])
    return {
        "value": (lower + upper) / 2.0,
        "lower": lower,
        "upper": upper,
        "error": error,
        "kink": kink,
        "resolved": kink | smooth,
    }


def estimate_columns(
    g: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    columns: Sequence[Column],
    eps: float = EPS64,
    max_refinements: int = 12,
) -> Estimates:
    """Derivatives of ``g(x)[0]`` (a vector) along each column, refined where unresolved.

    ``g`` returns ``(values, magnitudes)``: the outputs and the absolute size of the
    quantities they were computed from (for the round-off estimate).
    """
    f0, m0 = g(x)
    evaluations = 1
    n_out, n_col = f0.size, len(columns)
    shape = (n_out, n_col)
    raw: list[dict[str, np.ndarray]] = []
    steps = np.array([STEP * c.scale for c in columns], dtype=np.float64)
    for j, column in enumerate(columns):
        raw.append(_differences(g, column, steps[j], f0, m0, eps))
        evaluations += 4
    central = np.stack([d["central"] for d in raw], axis=1) if raw else np.zeros(shape)
    finite = central[np.isfinite(central)]
    block_scale = float(np.max(np.abs(finite))) if finite.size else 0.0

    out = {k: np.zeros(shape) for k in ("value", "lower", "upper", "error")}
    kink = np.zeros(shape, dtype=bool)
    resolved = np.zeros(shape, dtype=bool)

    def store(j: int, d: dict[str, np.ndarray], rows: np.ndarray) -> None:
        with np.errstate(all="ignore"):
            scale = np.maximum(np.abs(d["central"]), 1e-3 * block_scale)
            c = _classify(d, scale)
        for k in out:
            out[k][rows, j] = c[k][rows]
        kink[rows, j] = c["kink"][rows]
        resolved[rows, j] = c["resolved"][rows]

    everything = np.ones(n_out, dtype=bool)
    for j, d in enumerate(raw):
        store(j, d, everything)
    for _ in range(max_refinements):
        todo = [j for j in range(n_col) if not resolved[:, j].all()]
        if not todo:
            break
        progressed = False
        for j in todo:
            h = steps[j] / SHRINK
            if h < MIN_STEP * columns[j].scale:
                continue
            steps[j] = h
            try:
                d = _differences(g, columns[j], h, f0, m0, eps)
            except FloatingPointError:
                continue
            evaluations += 4
            progressed = True
            store(j, d, ~resolved[:, j])
        if not progressed:
            break
    return Estimates(
        value=out["value"],
        error=out["error"],
        lower=out["lower"],
        upper=out["upper"],
        kink=kink,
        reliable=resolved,
        step=steps,
        evaluations=evaluations,
    )


def coordinate_columns(x: np.ndarray) -> list[Column]:
    """One column per entry of ``x``."""
    return [Column(x, i, None) for i in range(x.size)]


def direction_columns(x: np.ndarray, directions: Sequence[np.ndarray]) -> list[Column]:
    """One column per direction (same shape as ``x``)."""
    return [Column(x, None, np.asarray(u, dtype=np.float64)) for u in directions]


def flatten_outputs(out: Any) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """All outputs (an array or a list of arrays) as one flat float64 vector."""
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    arrays = [np.asarray(o) for o in outs]
    flat = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    return (np.concatenate(flat) if flat else np.zeros(0)), [a.shape for a in arrays]


def output_eps(out: Any) -> float:
    """The machine epsilon of the least precise output (float64 if none is a float)."""
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    eps = EPS64
    for o in outs:
        dtype = np.result_type(o)
        if dtype.kind == "f":
            eps = max(eps, float(np.finfo(dtype).eps))
    return eps


def numerical_jacobian(
    f: Callable[..., Any],
    *arrays: Any,
    argnums: int | Sequence[int] | None = None,
    bounds: dict[int, tuple[float, float]] | None = None,
) -> list[NumericalJacobian]:
    """Numerical Jacobians of ``f(*arrays)`` with respect to the chosen arrays.

    Central differences in float64 with a step relative to each value
    (``eps**(1/3) * max(|x|, 1)``) and a Richardson pair of steps (``h``, ``h/2``) that
    gives a per-entry error estimate; one-sided differences detect kinks (the estimate
    is then the interval between the two sides) and unresolved entries are recomputed
    with smaller steps (see the module docstring).

    Args:
        f: a function of the arrays returning an array or a list of arrays.
        *arrays: the point; float arrays are differentiated in float64 (copies).
        argnums: which arrays to differentiate (default: every float array).
        bounds: ``{argnum: (lo, hi)}`` for arrays with a bounded domain; ``f`` is
            evaluated at ``clip(x, lo, hi)`` so no evaluation leaves the domain.

    Returns:
        One :class:`NumericalJacobian` per differentiated array, of shape
        ``(total output size, array size)``.

    >>> import numpy as np
    >>> jac, = numerical_jacobian(np.sin, np.array([0.0, 1.0]))
    >>> np.allclose(jac.value, np.diag(np.cos([0.0, 1.0])))
    True
    """
    points = [_as_point(a) for a in arrays]
    if argnums is None:
        chosen = [i for i, p in enumerate(points) if p.dtype.kind == "f"]
    else:
        chosen = [argnums] if isinstance(argnums, int) else list(argnums)
    bounds = dict(bounds or {})
    _validate(len(points), chosen, bounds)
    results = []
    for i in chosen:
        if points[i].dtype.kind != "f":
            raise TypeError(
                f"numerical_jacobian: array {i} has dtype {points[i].dtype}, not a float"
            )
        lo, hi = bounds.get(i, (-np.inf, np.inf))
        base = points[i]

        def g(
            x: np.ndarray, i: int = i, lo: float = lo, hi: float = hi
        ) -> tuple[np.ndarray, np.ndarray]:
            args = list(points)
            args[i] = np.clip(x, lo, hi) if (lo > -np.inf or hi < np.inf) else x
            out = f(*args)
            flat, _ = flatten_outputs(out)
            return flat, np.abs(flat)

        out0 = f(*points)
        _, shapes = flatten_outputs(out0)
        est = estimate_columns(g, base, coordinate_columns(base), eps=output_eps(out0))
        results.append(
            NumericalJacobian(
                value=est.value,
                error=est.error,
                lower=est.lower,
                upper=est.upper,
                kink=est.kink,
                reliable=est.reliable,
                evaluations=est.evaluations + 1,
                output_shapes=shapes,
                input_shape=base.shape,
            )
        )
    return results


def _validate(n: int, chosen: list[Any], bounds: dict[int, tuple[float, float]]) -> None:
    for i in chosen:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < n:
            raise ValueError(
                f"numerical_jacobian: argnums must be indices of the {n} arrays, got {i!r}"
            )
    for i, pair in bounds.items():
        lo, hi = pair
        if not lo < hi:
            raise ValueError(
                f"numerical_jacobian: bounds[{i}] must be (lo, hi) with lo < hi, got {pair!r}"
            )


def _as_point(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind in "fc":
        return np.array(arr, dtype=np.float64)
    return np.array(arr)
