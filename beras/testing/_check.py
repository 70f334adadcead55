"""``check_gradients``: one Diffable, three views of its derivative, and the invariants.

1. **local** (view a): ``get_input_gradients()`` / ``get_weight_gradients()``, expanded
   into full Jacobians by the stencil's composition rule, against finite differences of
   ``forward``;
2. **vjp** (view b): ``compose_input_gradients(J)`` / ``compose_weight_gradients(J)``
   against the local Jacobians contracted with the same random upstream ``J``, entry by
   entry, up to round-off;
3. **tape** (view c): the gradient that ``GradientTape`` computes for a random linear
   functional ``<v, output>`` against finite differences of that functional.

Small variables are checked entry by entry (full Jacobians); large ones with random
projections ``v^T J u`` (Rademacher ``u``: a wrong entry ``k`` shifts every projection
by exactly its error times ``+-1``, so a single-entry error larger than the projection's
tolerance is caught with certainty, and two errors cancel in one projection with
probability at most 1/2, so in all of them with probability at most ``2**-projections``).
View (b) is exact per entry at every size.

Float32 layers are checked through their float64 evaluation (a deep copy whose weights
are float64 copies, fed float64 inputs); the layer itself is exercised in its own dtype
for the invariants: inputs, weights and upstream not mutated; gradient shapes and dtypes
equal the variables'; zero upstream gives exactly zero; the VJP is linear in the
upstream; repeated calls give identical results; returned gradients alias neither each
other nor the inputs (nor, for VJPs, the weights).

At a kink the analytic value must lie between the one-sided derivatives (inclusive); a
Diffable whose documented convention is another value there (the course handout's
LeakyReLU has gradient 0 at exactly 0, outside ``[alpha, 1]``) declares it with
``kink_values``, which widens the accepted interval at detected kinks (full mode) to
include those values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core import Diffable, Tensor, Variable
from ..gradient_tape import GradientTape
from ..validation import result_float_dtype
from . import _stencil
from ._compare import (
    K_ERROR,
    RTOL,
    Entry,
    Finding,
    GradientCheckResult,
    compare_exact,
    compare_numeric,
    entry_labels,
    invariant,
)
from ._numeric import (
    EPS64,
    Estimates,
    _Column,
    coordinate_columns,
    direction_columns,
    estimate_columns,
    flatten_outputs,
    output_eps,
)

__all__ = ["check_gradients"]

VIEWS = ("local", "vjp", "tape")
#: Variables (and outputs) up to this many entries get full per-entry Jacobians.
MAX_FULL_SIZE = 512
#: Random projections per variable in projection mode.
PROJECTIONS = 16


class _Contract(Diffable):
    """``<v, x>``: the random linear functional the tape view differentiates."""

    input_gradient_layout = "elementwise"

    def __init__(self, v: np.ndarray) -> None:
        self.v = np.asarray(v, dtype=np.float64)

    def forward(self, x: Any) -> Tensor:
        return Tensor(np.sum(self.v * np.asarray(x, dtype=np.float64)))

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(self.v.copy())]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        return [Tensor(self.v * np.asarray(J[0], dtype=np.float64))]


def float64_twin(layer: Any) -> Any:
    """A deep copy of ``layer`` whose weights are float64 Variables (same trainable flags)."""
    return with_dtype(layer, np.float64)


def with_dtype(layer: Any, dtype: Any) -> Any:
    """A deep copy of ``layer`` (or model) whose weights are Variables of ``dtype``."""
    memo: dict[int, Any] = {}
    originals = list(layer.weights)
    for w in originals:
        twin = Variable(np.array(w, dtype=dtype))
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


def _as_float64(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    return np.array(arr, dtype=np.float64) if arr.dtype.kind == "f" else np.array(arr)


def _names(layer: Any, inputs: Sequence[Any]) -> tuple[list[str], list[str]]:
    argnames = list(getattr(layer, "argnames", ()) or ())
    in_names = []
    for k in range(len(inputs)):
        name = argnames[k] if k < len(argnames) else None
        in_names.append(f"input {k}" + (f" '{name}'" if name else ""))
    attrs = {id(v): k for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    w_names = []
    for j, w in enumerate(layer.weights):
        name = attrs.get(id(w))
        w_names.append(f"weight {j}" + (f" '{name}'" if name else ""))
    return in_names, w_names


def _unique_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normal values that stay distinct in ``dtype`` (so permutations show)."""
    while True:
        v = rng.standard_normal(shape).astype(dtype)
        if v.size < 2 or np.unique(v).size == v.size:
            return v


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _max_abs(x: Any) -> float:
    arr = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(arr))) if arr.size else 0.0


# --------------------------------------------------------------------------- invariants
class _Invariants:
    """Runs ``layer`` in its own dtype and records every broken invariant."""

    def __init__(
        self,
        layer: Any,
        inputs: Sequence[Any],
        result: GradientCheckResult,
        rng: np.random.Generator,
    ) -> None:
        self.layer, self.inputs, self.result, self.rng = layer, list(inputs), result, rng
        self.name = repr(layer)
        self.in_names, self.w_names = _names(layer, inputs)

    def fail(self, message: str) -> None:
        self.result.failures.append(invariant(self.name, message))

    def run(self) -> tuple[list[np.ndarray], list[Any], list[Any]] | None:
        """Returns the upstreams used and the layer's VJPs for them (for the float check)."""
        layer, inputs = self.layer, self.inputs
        weights = list(layer.weights)
        saved_inputs = [np.array(x, copy=True) for x in inputs]
        saved_weights = [np.array(w, copy=True) for w in weights]

        out = layer(*inputs)
        outs = out if isinstance(out, list) else [out]
        if len(outs) != 1:
            raise ValueError(
                f"check_gradients supports Diffables with one output; {self.name} returned "
                f"{len(outs)} outputs"
            )
        out = np.asarray(outs[0])
        again = np.asarray(layer(*inputs))
        if not _same(out, again):
            self.fail("forward: two calls with the same inputs gave different outputs")
        if out.dtype.kind != "f":
            self.fail(f"forward: expected a float output, got dtype {out.dtype}")
            return None

        local_in = self._twice("get_input_gradients", layer.get_input_gradients)
        local_w = self._twice("get_weight_gradients", layer.get_weight_gradients)
        self.local_scale = max(
            [
                _max_abs(g)
                for g in (local_in or []) + (local_w or [])
                if np.asarray(g).dtype.kind in "fiub"
            ]
            + [_max_abs(out)],
        )
        if local_in is not None and len(local_in) != len(inputs):
            self.fail(
                f"get_input_gradients() returned {len(local_in)} gradients for {len(inputs)} inputs"
            )
        if local_w is not None and len(local_w) != len(weights):
            self.fail(
                f"get_weight_gradients() returned {len(local_w)} gradients for {len(weights)} weights"
            )
        for what, grads in (
            ("get_input_gradients()", local_in),
            ("get_weight_gradients()", local_w),
        ):
            if grads is not None:
                self._no_alias(what, grads, [("input", x) for x in inputs])

        ups = [_unique_normal(self.rng, out.shape, out.dtype) for _ in range(2)]
        saved_ups = [u.copy() for u in ups]
        vjps: list[tuple[Any, Any]] = []
        for up in ups:
            ci = self._twice(
                "compose_input_gradients(J)", lambda up=up: layer.compose_input_gradients([up])
            )
            cw = self._twice(
                "compose_weight_gradients(J)", lambda up=up: layer.compose_weight_gradients([up])
            )
            vjps.append((ci, cw))
        ci, cw = vjps[0]
        if ci is not None:
            self._shapes("compose_input_gradients(J)", ci, inputs, self.in_names, out.dtype)
            self._no_alias(
                "compose_input_gradients(J)",
                ci,
                [("input", x) for x in inputs]
                + [("upstream", u) for u in ups]
                + [("weight", w) for w in weights]
                + [("output", out)],
            )
        if cw is not None:
            self._shapes("compose_weight_gradients(J)", cw, weights, self.w_names)
            self._no_alias(
                "compose_weight_gradients(J)",
                cw,
                [("input", x) for x in inputs]
                + [("upstream", u) for u in ups]
                + [("weight", w) for w in weights]
                + [("output", out)],
            )
        self._zero_upstream(out)
        self._linearity(ups, vjps)

        for x, saved, name in zip(inputs, saved_inputs, self.in_names):
            if not _same(x, saved):
                self.fail(f"{name} was modified in place by forward or a gradient method")
        for w, saved, name in zip(weights, saved_weights, self.w_names):
            if not _same(w, saved):
                self.fail(f"{name} was modified in place by forward or a gradient method")
        for up, saved in zip(ups, saved_ups):
            if not _same(up, saved):
                self.fail("the upstream gradient J was modified in place by a compose method")
        return ups, [v[0] for v in vjps], [v[1] for v in vjps]

    def _twice(self, what: str, call: Any) -> list[np.ndarray] | None:
        try:
            first = [np.array(g) for g in call()]
            second = call()
        except Exception as err:  # reported as a failure, with the exception
            self.fail(f"{what} raised {type(err).__name__}: {err}")
            return None
        first_raw = call()
        if len(first) != len(second) or not all(_same(a, b) for a, b in zip(first, second)):
            self.fail(f"{what}: two calls gave different results")
        for g in first:
            if g.dtype.kind in "fc" and not np.all(np.isfinite(g)):
                self.fail(f"{what} returned NaN or infinite entries for finite inputs")
                break
        return list(first_raw)

    def _shapes(
        self,
        what: str,
        grads: Sequence[Any],
        variables: Sequence[Any],
        names: Sequence[str],
        compute_dtype: Any = None,
    ) -> None:
        if len(grads) != len(variables):
            self.fail(f"{what} returned {len(grads)} gradients for {len(variables)} variables")
            return
        for g, v, name in zip(grads, variables, names):
            g_arr, v_arr = np.asarray(g), np.asarray(v)
            if g_arr.shape != v_arr.shape:
                self.fail(
                    f"{what}: the gradient of {name} has shape {g_arr.shape}, expected {v_arr.shape}"
                )
            expected = v_arr.dtype if v_arr.dtype.kind == "f" else None
            # an input may also get the dtype the layer computes in (Dense casts its input
            # to its weights' dtype, as Keras autocasts)
            allowed = {expected, compute_dtype} if what.startswith("compose_input") else {expected}
            if expected is not None and g_arr.dtype not in allowed:
                self.fail(
                    f"{what}: the gradient of {name} has dtype {g_arr.dtype}, expected {expected}"
                )
            elif expected is None and g_arr.dtype.kind != "f":
                self.fail(
                    f"{what}: the gradient of {name} has dtype {g_arr.dtype}, expected a float dtype"
                )

    def _no_alias(self, what: str, grads: Sequence[Any], others: Sequence[tuple[str, Any]]) -> None:
        arrays = [np.asarray(g) for g in grads]
        for i, a in enumerate(arrays):
            for j in range(i + 1, len(arrays)):
                if a.size and arrays[j].size and np.shares_memory(a, arrays[j]):
                    self.fail(f"{what}: gradients {i} and {j} share memory")
            for kind, other in others:
                o = np.asarray(other)
                if a.size and o.size and np.shares_memory(a, o):
                    self.fail(f"{what}: gradient {i} shares memory with an {kind}")
                    break

    def _zero_upstream(self, out: np.ndarray) -> None:
        zero = np.zeros(out.shape, dtype=out.dtype)
        for what, call in (
            ("compose_input_gradients", self.layer.compose_input_gradients),
            ("compose_weight_gradients", self.layer.compose_weight_gradients),
        ):
            try:
                grads = call([zero])
            except Exception as err:
                self.fail(f"{what}([zeros]) raised {type(err).__name__}: {err}")
                continue
            for k, g in enumerate(grads):
                g = np.asarray(g)
                if g.dtype.kind in "fc" and not np.all(g == 0):
                    self.fail(
                        f"{what}([zeros]): gradient {k} is not zero (max |entry| "
                        f"{np.nanmax(np.abs(g)) if g.size else 0:.3g}); a VJP must be linear in J"
                    )

    def _linearity(self, ups: Sequence[np.ndarray], vjps: Sequence[tuple[Any, Any]]) -> None:
        a, b = 0.75, -1.5
        mixed = (a * ups[0].astype(np.float64) + b * ups[1].astype(np.float64)).astype(ups[0].dtype)
        eps = float(np.finfo(result_float_dtype(ups[0])).eps)
        calls = (
            ("compose_input_gradients", self.layer.compose_input_gradients, 0),
            ("compose_weight_gradients", self.layer.compose_weight_gradients, 1),
        )
        for what, call, pos in calls:
            g1, g2 = vjps[0][pos], vjps[1][pos]
            if g1 is None or g2 is None:
                continue
            try:
                g12 = call([mixed])
            except Exception as err:
                self.fail(f"{what} raised {type(err).__name__}: {err}")
                continue
            for k, (x1, x2, x12) in enumerate(zip(g1, g2, g12)):
                x1, x2, x12 = (np.asarray(v, dtype=np.float64) for v in (x1, x2, x12))
                if x1.shape != x12.shape or x2.shape != x12.shape:
                    continue  # reported by the shape check
                expected = a * x1 + b * x2
                size = np.abs(a * x1) + np.abs(b * x2)
                scale = float(size.max()) if size.size else 0.0
                # an equivalent formula may round relative to |g| |J|, not to the result
                floor = self.local_scale * (abs(a) * _max_abs(ups[0]) + abs(b) * _max_abs(ups[1]))
                tol = 64.0 * eps * (size + np.sqrt(max(x12.size, 1)) * (scale + floor))
                if not np.all(np.abs(x12 - expected) <= tol):
                    worst = float(np.nanmax(np.abs(x12 - expected)))
                    self.fail(
                        f"{what} is not linear in the upstream J: for J = {a} J1 + {b} J2 "
                        f"gradient {k} differs from {a} g(J1) + {b} g(J2) by up to {worst:.3g}"
                    )


# --------------------------------------------------------------------------- views
class _Target:
    """One variable of the twin to differentiate: an input or a weight."""

    def __init__(
        self,
        kind: str,
        index: int,
        name: str,
        array: np.ndarray,
        bounds: tuple[float, float] | None,
    ) -> None:
        self.kind, self.index, self.name, self.array = kind, index, name, array
        self.bounds = bounds


def _projected(est: Estimates, v: np.ndarray) -> Estimates:
    """``v^T`` applied to a block of estimates, with interval arithmetic at kinks."""
    v = v.reshape(-1, 1)
    lo = np.minimum(v * est.lower, v * est.upper).sum(axis=0, keepdims=True)
    hi = np.maximum(v * est.lower, v * est.upper).sum(axis=0, keepdims=True)
    err = (np.abs(v) * est.error).sum(axis=0, keepdims=True)
    reliable = np.all(est.reliable | (v == 0), axis=0, keepdims=True)
    kink = np.any(est.kink & (v != 0), axis=0, keepdims=True)
    return Estimates((lo + hi) / 2, err, lo, hi, kink, reliable, est.step, est.evaluations)


def check_gradients(
    diffable: Diffable,
    *inputs: Any,
    constants: Sequence[int] = (),
    bounds: Mapping[int, tuple[float, float]] | None = None,
    views: Sequence[str] = VIEWS,
    mode: str = "auto",
    max_full_size: int = MAX_FULL_SIZE,
    projections: int = PROJECTIONS,
    projection: str = "rademacher",
    seed: int | np.random.Generator | None = 0,
    kink_values: Sequence[float] = (),
    raise_on_failure: bool = True,
    inconclusive: str = "warn",
) -> GradientCheckResult:
    """Check every derivative of a Diffable at ``inputs``: three views and the invariants.

    Views (see the module docstring): ``"local"`` (get_*_gradients against finite
    differences of ``forward``), ``"vjp"`` (compose_*_gradients against the local
    Jacobians contracted with random upstreams), ``"tape"`` (``GradientTape`` on a random
    linear functional of the output against finite differences).

    Args:
        diffable: the layer, activation or loss to check (one output).
        *inputs: the point, as ``diffable(*inputs)`` would be called.
        constants: indices of inputs that are not differentiated (labels).
        bounds: ``{input index: (lo, hi)}`` for inputs with a bounded domain
            (probabilities); numerical evaluations stay inside it.
        views: which of ``"local"``, ``"vjp"``, ``"tape"`` to check.
        mode: ``"full"`` (per-entry Jacobians), ``"projection"`` (random projections
            ``v^T J u``), or ``"auto"``: full up to ``max_full_size`` entries.
        projections: projections per variable in projection mode.
        projection: ``"rademacher"`` (default) or ``"gaussian"`` directions ``u``.
        seed: seeds the random upstreams and directions (deterministic by default).
        kink_values: derivative values a documented convention returns at a kink, also
            accepted there (default none: only values between the one-sided derivatives).
        raise_on_failure: raise :class:`GradientCheckError` (an ``AssertionError``) on a
            failure; if False, return the result whatever it is.
        inconclusive: when nothing failed but some entries could not be judged:
            ``"warn"`` (an :class:`InconclusiveGradientCheck` warning), ``"raise"`` or
            ``"ignore"``. Applies only when ``raise_on_failure`` is True.

    Returns:
        A :class:`GradientCheckResult` (``status``, ``failures`` with the worst entries,
        ``evaluations``).

    >>> import numpy as np, beras
    >>> from beras.testing import check_gradients
    >>> layer = beras.Dense(3, 2)
    >>> check_gradients(layer, np.random.default_rng(0).normal(size=(4, 3))).status
    'pass'
    """
    if not isinstance(diffable, Diffable):
        raise TypeError(f"check_gradients expected a Diffable, got {type(diffable).__name__}")
    if Diffable.gradient_tape is not None:
        raise RuntimeError("check_gradients cannot run inside an active GradientTape")
    unknown = set(views) - set(VIEWS)
    if unknown:
        raise ValueError(
            f"check_gradients: unknown views {sorted(unknown)}; expected some of {VIEWS}"
        )
    if mode not in ("auto", "full", "projection"):
        raise ValueError(
            f"check_gradients: mode must be 'auto', 'full' or 'projection', got {mode!r}"
        )
    if projection not in ("rademacher", "gaussian"):
        raise ValueError(
            f"check_gradients: projection must be 'rademacher' or 'gaussian', got {projection!r}"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = dict(bounds or {})
    result = GradientCheckResult(subject=repr(diffable))

    found = _Invariants(diffable, inputs, result, rng).run()
    if found is None:
        return _finish(result, raise_on_failure, inconclusive)

    twin = float64_twin(diffable)
    inputs64 = [_as_float64(x) for x in inputs]
    out64 = np.asarray(twin(*inputs64))
    in_names, w_names = _names(twin, inputs64)
    layout = getattr(twin, "input_gradient_layout", "matmul")
    local_in = list(twin.get_input_gradients())
    local_w = list(twin.get_weight_gradients())
    weights = list(twin.weights)
    if len(local_in) != len(inputs64) or len(local_w) != len(weights):
        return _finish(result, raise_on_failure, inconclusive)  # already reported

    targets = [
        _Target("input", k, in_names[k], inputs64[k], bounds.get(k))
        for k in range(len(inputs64))
        if inputs64[k].dtype.kind == "f" and k not in constants
    ] + [_Target("weight", j, w_names[j], weights[j], None) for j in range(len(weights))]

    upstreams = [_unique_normal(rng, out64.shape, np.float64) for _ in range(2)]
    try:
        vjp_in = [list(twin.compose_input_gradients([v])) for v in upstreams]
        vjp_w = [list(twin.compose_weight_gradients([v])) for v in upstreams]
    except Exception:  # already reported by the invariants, in the layer's own dtype
        views = [v for v in views if v != "vjp"]

    def local_vjp(t: _Target, v: np.ndarray, absolute: bool = False) -> np.ndarray:
        g = local_in[t.index] if t.kind == "input" else local_w[t.index]
        g = np.abs(np.asarray(g, dtype=np.float64)) if absolute else g
        vv = np.abs(v) if absolute else v
        what = f"{twin!r} {t.name}"
        if t.kind == "input":
            return _stencil.input_vjp(layout, g, t.array.shape, vv, what)
        return _stencil.weight_vjp(g, t.array.shape, vv, what)

    # view (b): the VJPs against the local Jacobians contracted with the same upstream
    all_targets = [
        _Target("input", k, in_names[k], inputs64[k], None) for k in range(len(inputs64))
    ] + [t for t in targets if t.kind == "weight"]
    for t in all_targets:
        try:
            refs = [(local_vjp(t, v), local_vjp(t, v, absolute=True)) for v in upstreams]
        except _stencil.LayoutError as err:
            result.failures.append(invariant(repr(twin), f"{t.name}: {err}"))
            continue
        for i, (ref, mag) in enumerate(refs):
            if "vjp" in views:
                grads = vjp_in[i] if t.kind == "input" else vjp_w[i]
                if len(grads) <= t.index or np.size(grads[t.index]) != ref.size:
                    continue  # a count or shape error, reported by the invariants
                got = grads[t.index]
                label = entry_labels(
                    None, (), t.name.split("'")[1] if "'" in t.name else t.kind, t.array.shape
                )
                local = local_in[t.index] if t.kind == "input" else local_w[t.index]
                # an equivalent formula may round relative to |y| |J| (Softmax's
                # y * (J - sum(J * y))) or |g| |J|, not to the (maybe tiny) result
                floor = max(_max_abs(local), _max_abs(out64)) * _max_abs(upstreams[i])
                found_b, n = compare_exact(
                    "vjp",
                    f"{t.name}, upstream {i}",
                    np.asarray(got),
                    ref,
                    mag,
                    EPS64,
                    label,
                    floor=floor,
                )
                result.checked["vjp"] = result.checked.get("vjp", 0) + n
                if found_b:
                    result.failures.append(found_b)

    # view (c): the tape's gradient of <v, output>
    tape_grads: list[list[Any]] = []
    if "tape" in views and targets:
        for v in upstreams:
            try:
                with GradientTape() as tape:
                    out = twin(*inputs64)
                    phi = _Contract(v)(out)
                tape_grads.append(list(tape.gradient(phi, [t.array for t in targets])))
            except Exception as err:
                result.failures.append(
                    invariant(
                        repr(twin), f"GradientTape.gradient raised {type(err).__name__}: {err}"
                    )
                )
                tape_grads.append([None] * len(targets))
        for i in range(len(upstreams)):
            for t, g in zip(targets, tape_grads[i]):
                if g is None:
                    tape_grads[i][targets.index(t)] = np.zeros(t.array.shape)
                elif np.shape(g) != t.array.shape:
                    result.failures.append(
                        invariant(
                            repr(twin),
                            f"GradientTape.gradient: the gradient of {t.name} has shape {np.shape(g)}, expected {t.array.shape}",
                        )
                    )
                    tape_grads[i][targets.index(t)] = np.zeros(t.array.shape)

    # views (a) and (c) against finite differences
    if ("local" in views or "tape" in views) and targets:
        twin(*inputs64)  # the local gradients above belong to this call
        for t in targets:
            _numerical_views(
                result,
                twin,
                inputs64,
                t,
                layout,
                local_in,
                local_w,
                upstreams,
                tape_grads,
                targets,
                views,
                mode,
                max_full_size,
                projections,
                projection,
                rng,
                local_vjp,
                kink_values,
            )
    return _finish(result, raise_on_failure, inconclusive)


def _numerical_views(
    result: GradientCheckResult,
    twin: Any,
    inputs64: list[np.ndarray],
    t: _Target,
    layout: str,
    local_in: list[Any],
    local_w: list[Any],
    upstreams: list[np.ndarray],
    tape_grads: list[list[Any]],
    targets: list[_Target],
    views: Sequence[str],
    mode: str,
    max_full_size: int,
    projections: int,
    projection: str,
    rng: np.random.Generator,
    local_vjp: Any,
    kink_values: Sequence[float] = (),
) -> None:
    out_shape = np.shape(twin.outputs[0])
    out_size = int(np.prod(out_shape, dtype=np.int64))
    full = mode == "full" or (
        mode == "auto" and t.array.size <= max_full_size and out_size <= max_full_size
    )
    result.mode[t.name] = "full" if full else "projection"
    base = t.array.copy()
    lo, hi = t.bounds if t.bounds is not None else (-np.inf, np.inf)
    clip = t.bounds is not None
    probe = np.asarray(twin.forward(*inputs64))
    eps = output_eps(probe)

    def evaluate(x: np.ndarray) -> np.ndarray:
        point = np.clip(x, lo, hi) if clip else x
        if t.kind == "input":
            args = list(inputs64)
            args[t.index] = point
            return flatten_outputs(twin.forward(*args))[0]
        t.array[...] = point
        try:
            return flatten_outputs(twin.forward(*inputs64))[0]
        finally:
            t.array[...] = base

    short = t.name.split("'")[1] if "'" in t.name else t.kind
    k = targets.index(t)
    if full:
        est = estimate_columns(
            lambda x: (lambda f: (f, np.abs(f)))(evaluate(x)),
            base,
            coordinate_columns(base),
            eps=eps,
        )
        result.evaluations += est.evaluations
        for c in kink_values:
            est.lower = np.where(est.kink, np.minimum(est.lower, c), est.lower)
            est.upper = np.where(est.kink, np.maximum(est.upper, c), est.upper)
        if "local" in views:
            g = local_in[t.index] if t.kind == "input" else local_w[t.index]
            what = f"{twin!r} {t.name}"
            try:
                if t.kind == "input":
                    analytic = _stencil.input_jacobian(layout, g, base.shape, out_shape, what)
                else:
                    analytic = _stencil.weight_jacobian(g, base.shape, out_shape, what)
            except _stencil.LayoutError:
                analytic = None  # reported by the VJP view
            if analytic is not None:
                label = entry_labels("out", out_shape, short, base.shape)
                _record(result, "local", t.name, analytic, est, label)
        if "tape" in views:
            for i, v in enumerate(upstreams):
                proj = _projected(est, v.ravel())
                label = entry_labels(None, (), short, base.shape)
                grad = np.asarray(tape_grads[i][k], dtype=np.float64).reshape(1, -1)
                _record(result, "tape", f"{t.name}, functional {i}", grad, proj, label)
        return

    per_v = max(1, projections // len(upstreams))
    located: set[str] = set()  # views whose wrong entry was already located
    for i, v in enumerate(upstreams):
        directions = [
            (rng.integers(0, 2, base.shape) * 2 - 1).astype(np.float64)
            if projection == "rademacher"
            else rng.standard_normal(base.shape)
            for _ in range(per_v)
        ]
        vflat = v.ravel()

        def functional(x: np.ndarray, vflat: np.ndarray = vflat) -> tuple[np.ndarray, np.ndarray]:
            f = evaluate(x)
            return np.array([vflat @ f]), np.array([np.abs(vflat) @ np.abs(f)])

        est = estimate_columns(functional, base, direction_columns(base, directions), eps=eps)
        result.evaluations += est.evaluations

        def label(r: int, c: int, i: int = i) -> str:
            return f"<v{i}, J u{c}>"

        if "local" in views:
            try:
                g_local = local_vjp(t, v)
                analytic = np.array([[float(np.sum(g_local * u)) for u in directions]])
                failure = _record(result, "local", f"{t.name} (projections)", analytic, est, label)
                if failure is not None and "local" not in located:
                    located.add("local")
                    add_located_entry(
                        result,
                        failure,
                        functional,
                        base,
                        directions,
                        g_local,
                        analytic,
                        est,
                        eps,
                        short,
                    )
            except _stencil.LayoutError:
                pass
        if "tape" in views:
            grad = np.asarray(tape_grads[i][k], dtype=np.float64)
            analytic = np.array([[float(np.sum(grad * u)) for u in directions]])
            failure = _record(
                result, "tape", f"{t.name} (projections), functional {i}", analytic, est, label
            )
            if failure is not None and "tape" not in located:
                located.add("tape")
                add_located_entry(
                    result, failure, functional, base, directions, grad, analytic, est, eps, short
                )


def _record(
    result: GradientCheckResult,
    view: str,
    target: str,
    analytic: np.ndarray,
    est: Estimates,
    label: Any,
) -> Finding | None:
    failure, unsure, n = compare_numeric(view, target, analytic, est, label)
    result.checked[view] = result.checked.get(view, 0) + n
    if failure:
        result.failures.append(failure)
    if unsure:
        result.inconclusive.append(unsure)
    return failure


def localize(
    functional: Any,
    base: np.ndarray,
    direction: np.ndarray,
    grad: np.ndarray,
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

    def discrepancy(index: np.ndarray) -> tuple[float, float]:
        nonlocal evaluations
        u = np.zeros_like(flat_u)
        u[index] = flat_u[index]
        est = estimate_columns(
            functional, base, direction_columns(base, [u.reshape(base.shape)]), eps=eps
        )
        evaluations += est.evaluations
        analytic = float(g[index] @ flat_u[index])
        gap = max(float(est.lower[0, 0]) - analytic, analytic - float(est.upper[0, 0]), 0.0)
        tol = K_ERROR * float(est.error[0, 0]) + RTOL * abs(float(est.value[0, 0]))
        return gap, tol

    index = np.flatnonzero(flat_u)
    while index.size > 1:
        first, second = index[: index.size // 2], index[index.size // 2 :]
        gap1, tol1 = discrepancy(first)
        if gap1 > tol1:
            index = first
            continue
        gap2, tol2 = discrepancy(second)
        if gap2 > tol2:
            index = second
        else:
            return None, evaluations
    k = int(index[0])
    est = estimate_columns(functional, base, [_Column(base, k, None)], eps=eps)
    evaluations += est.evaluations
    numeric = float(est.value[0, 0])
    gap = max(float(est.lower[0, 0]) - g[k], g[k] - float(est.upper[0, 0]), 0.0)
    entry = Entry(
        index=f"{_index_label(name, base.shape, k)} (located by bisection)",
        analytic=float(g[k]),
        numeric=numeric,
        abs_err=gap,
        rel_err=gap / max(abs(numeric), abs(float(g[k])), 1e-300),
        tolerance=K_ERROR * float(est.error[0, 0]) + RTOL * abs(numeric),
        estimate=float(est.error[0, 0]),
    )
    return entry, evaluations


def _index_label(name: str, shape: tuple[int, ...], flat: int) -> str:
    return entry_labels(None, (), name, shape)(0, flat)


def add_located_entry(
    result: GradientCheckResult,
    failure: Finding | None,
    functional: Any,
    base: np.ndarray,
    directions: Sequence[np.ndarray],
    grad: np.ndarray,
    analytic: np.ndarray,
    est: Estimates,
    eps: float,
    name: str,
) -> None:
    """After a failing projection, name the wrong entry it points at (first in ``worst``)."""
    if failure is None:
        return
    gaps = np.maximum(est.lower - analytic, analytic - est.upper).ravel()
    entry, evaluations = localize(
        functional, base, directions[int(np.argmax(gaps))], grad, eps, name
    )
    result.evaluations += evaluations
    if entry is not None:
        failure.worst.insert(0, entry)
        failure.summary = failure.summary.replace(
            "; worst:", "; the first row is the wrong entry the worst projection leads to:"
        )


def _finish(
    result: GradientCheckResult, raise_on_failure: bool, inconclusive: str
) -> GradientCheckResult:
    if inconclusive not in ("warn", "raise", "ignore"):
        raise ValueError(f"inconclusive must be 'warn', 'raise' or 'ignore', got {inconclusive!r}")
    if raise_on_failure:
        result.raise_for_status(inconclusive)
    return result
