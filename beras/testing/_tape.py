"""End-to-end checks: the gradient a ``GradientTape`` computes through a whole graph.

``check_tape(fn, sources)`` records ``fn()`` (which calls layers on the sources and
returns the target) on a tape, asks for ``tape.gradient(target, sources)``, and compares
it with finite differences of ``sum(fn())`` for every source: entry by entry for small
sources, with random projections for large ones (see ``_check``). ``check_model`` does
this for a model's loss over every trainable variable, through a float64 copy of the
model, and checks that the model's own (float32) tape agrees with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core import Diffable
from ..gradient_tape import GradientTape
from ._check import (
    _as_float64,
    _finish,
    _record,
    _same,
    add_located_entry,
    float64_twin,
)
from ._compare import GradientCheckResult, entry_labels, invariant
from ._numeric import (
    coordinate_columns,
    direction_columns,
    estimate_columns,
    flatten_outputs,
    output_eps,
)
from ._options import CheckOptions

__all__ = ["check_model", "check_tape"]

TAPE_OPTIONS = (
    "mode",
    "max_full_size",
    "projections",
    "projection",
    "seed",
    "raise_on_failure",
    "inconclusive",
)


def check_tape(
    fn: Callable[[], Any],
    sources: Sequence[Any],
    *,
    names: Sequence[str] | None = None,
    subject: str = "a recorded graph",
    **options: Any,
) -> GradientCheckResult:
    """Check ``GradientTape.gradient(fn(), sources)`` against finite differences.

    ``fn`` takes no arguments, calls Diffables (layers, activations, losses) on arrays
    that include the sources, and returns the target; a non-scalar target is summed, as
    the tape does. The sources (float64 arrays: Variables or inputs) are perturbed in
    place and restored. A source the tape reports as unconnected (``None``) must have a
    numerical derivative of zero.

    Returns a :class:`GradientCheckResult`; raises :class:`GradientCheckError` on a
    failure unless ``raise_on_failure=False``.

    >>> import numpy as np, beras
    >>> from beras.testing import check_tape
    >>> beras.config.set_floatx("float64")
    >>> dense, x = beras.Dense(3, 2), np.ones((4, 3))
    >>> check_tape(lambda: beras.Sigmoid()(dense(x)), [dense.w, dense.b]).status
    'pass'
    >>> beras.config.set_floatx("float32")
    """
    opts = CheckOptions.parse("check_tape", TAPE_OPTIONS, options)
    mode, max_full_size, projections = opts.mode, opts.max_full_size, opts.projections
    projection, raise_on_failure, inconclusive = (
        opts.projection,
        opts.raise_on_failure,
        opts.inconclusive,
    )
    sources = list(sources)
    if Diffable.gradient_tape is not None:
        raise RuntimeError("check_tape cannot run inside an active GradientTape")
    for i, s in enumerate(sources):
        if not isinstance(s, np.ndarray) or s.dtype != np.float64:
            raise TypeError(
                f"check_tape: source {i} must be a float64 array (got "
                f"{getattr(s, 'dtype', type(s).__name__)}); use check_model, which checks a "
                "float64 copy of a model, or build the graph with beras.config.set_floatx('float64')"
            )
    rng = opts.rng()
    labels = list(names) if names is not None else [f"source {i}" for i in range(len(sources))]
    result = GradientCheckResult(subject=subject)
    saved = [s.copy() for s in sources]

    with GradientTape() as tape:
        target = fn()
    grads = tape.gradient(target, sources)
    probe = fn()
    again = fn()
    if not _same(probe, again):
        result.failures.append(invariant(subject, "fn(): two calls gave different results"))
    eps = output_eps(probe)

    for s, g, label in zip(sources, grads, labels):
        if g is None:
            continue
        g_arr = np.asarray(g)
        if g_arr.shape != s.shape or g_arr.dtype != s.dtype:
            result.failures.append(
                invariant(
                    subject,
                    f"GradientTape.gradient: {label} got a gradient of shape {g_arr.shape} and "
                    f"dtype {g_arr.dtype}, expected {s.shape} and {s.dtype}",
                )
            )
        if any(np.shares_memory(g_arr, o) for o in sources if o.size and g_arr.size):
            result.failures.append(
                invariant(
                    subject,
                    f"GradientTape.gradient: {label}'s gradient shares memory with a source",
                )
            )

    for s, g, label, base in zip(sources, grads, labels, saved):
        if not np.array_equal(s, base):
            result.failures.append(
                invariant(subject, f"{label} was modified by recording or differentiating")
            )
            s[...] = base
        short = label.split("'")[1] if "'" in label else label.replace(" ", "")

        def evaluate(x: np.ndarray, s: np.ndarray = s, base: np.ndarray = base) -> np.ndarray:
            s[...] = x
            try:
                flat = flatten_outputs(fn())[0]
            finally:
                s[...] = base
            return flat

        def functional(x: np.ndarray, evaluate: Any = evaluate) -> tuple[np.ndarray, np.ndarray]:
            flat = evaluate(x)
            return np.array([flat.sum()]), np.array([np.abs(flat).sum()])

        grad = np.zeros(s.shape) if g is None else np.asarray(g, dtype=np.float64).reshape(s.shape)
        full = mode == "full" or (mode == "auto" and s.size <= max_full_size)
        result.mode[label] = "full" if full else "projection"
        if full:
            est = estimate_columns(functional, base, coordinate_columns(base), eps=eps)
            result.evaluations += est.evaluations
            _record(
                result,
                "tape",
                label,
                grad.reshape(1, -1),
                est,
                entry_labels(None, (), short, s.shape),
            )
        else:
            directions = [
                (rng.integers(0, 2, s.shape) * 2 - 1).astype(np.float64)
                if projection == "rademacher"
                else rng.standard_normal(s.shape)
                for _ in range(projections)
            ]
            est = estimate_columns(functional, base, direction_columns(base, directions), eps=eps)
            result.evaluations += est.evaluations
            analytic = np.array([[float(np.sum(grad * u)) for u in directions]])
            failure = _record(
                result,
                "tape",
                f"{label} (projections)",
                analytic,
                est,
                lambda r, c: f"<grad, u{c}>",
            )
            add_located_entry(
                result, failure, functional, base, directions, grad, analytic, est, eps, short
            )
        if g is None and result.failures and result.failures[-1].target.startswith(label):
            result.failures[-1].summary = (
                "the tape returned None (unconnected), but " + result.failures[-1].summary
            )
    return _finish(result, raise_on_failure, inconclusive)


def check_model(
    model: Any,
    x: Any,
    y: Any,
    loss_fn: Callable[[Any, Any], Any],
    **options: Any,
) -> GradientCheckResult:
    """Check the gradient of ``loss_fn(model(x), y)`` for every trainable variable.

    The model is checked through a float64 copy (``check_tape`` on its trainable
    variables); the model itself is then differentiated in its own dtype, and each of its
    gradients must have its variable's shape and dtype and agree with the float64
    gradient to within that dtype's precision. ``options`` go to :func:`check_tape`.
    """
    twin = float64_twin(model)
    x64 = _as_float64(x)
    y64 = _as_float64(y)
    variables = list(twin.trainable_variables)
    try:
        all_names = list(twin.weight_names())
        by_id = {id(w): n for w, n in zip(twin.weights, all_names)}
        names = [f"{by_id.get(id(v), 'variable')}" for v in variables]
        names = [f"variable {i} '{n}'" for i, n in enumerate(names)]
    except Exception:
        names = [f"variable {i}" for i in range(len(variables))]
    options.setdefault("subject", f"{type(model).__name__} with {type(loss_fn).__name__}")
    raise_on_failure = options.pop("raise_on_failure", True)
    inconclusive = options.pop("inconclusive", "warn")
    result = check_tape(
        lambda: loss_fn(twin(x64), y64),
        variables,
        names=names,
        raise_on_failure=False,
        inconclusive="ignore",
        **options,
    )

    own = list(model.trainable_variables)
    with GradientTape() as tape:
        loss = loss_fn(model(x), y)
    grads = tape.gradient(loss, own)
    with GradientTape() as tape64:
        loss64 = loss_fn(twin(x64), y64)
    grads64 = tape64.gradient(loss64, variables)
    for v, g, g64, name in zip(own, grads, grads64, names):
        if g is None or g64 is None:
            if (g is None) != (g64 is None):
                result.failures.append(
                    invariant(result.subject, f"{name}: connected in one dtype only")
                )
            continue
        g_arr = np.asarray(g)
        if g_arr.shape != v.shape or g_arr.dtype != v.dtype:
            result.failures.append(
                invariant(
                    result.subject,
                    f"{name}: the tape's gradient has shape {g_arr.shape} and dtype "
                    f"{g_arr.dtype}, expected {v.shape} and {v.dtype}",
                )
            )
            continue
        if v.dtype == np.float64:
            continue
        ref = np.asarray(g64)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        tol = 1e4 * float(np.finfo(v.dtype).eps) * scale
        diff = np.abs(g_arr.astype(np.float64) - ref)
        if not np.all(diff <= tol):
            result.failures.append(
                invariant(
                    result.subject,
                    f"{name}: the {v.dtype} gradient differs from the float64 one by up to "
                    f"{np.nanmax(diff):.3g} (allowed {tol:.3g})",
                )
            )
    return _finish(result, raise_on_failure, inconclusive)
