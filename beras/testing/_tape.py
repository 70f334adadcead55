"""End-to-end checks: the gradient a ``GradientTape`` computes through a whole graph.

``check_tape(fn, sources)`` records ``fn()`` (which calls layers on the sources and
returns the target) on a tape, asks for ``tape.gradient(target, sources)``, and compares
it with finite differences of ``sum(fn())`` for every source: entry by entry for small
sources, with random projections for large ones (``_directions`` decides, draws and
locates a wrong entry, as for ``check_gradients``). ``check_model`` does this for a
model's loss over every trainable variable, through a float64 copy of the model, and
checks that the model's own (float32) tape agrees with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core import Diffable
from ..gradient_tape import GradientTape
from ._check import finish
from ._compare import compare_numeric, entry_labels, invariant
from ._directions import Functional, Projections, draw, gradient, use_full
from ._invariants import same
from ._numeric import output_eps
from ._options import CheckOptions
from ._result import GradientCheckResult
from ._subject import as_float64, float64_twin

__all__ = ["check_model", "check_tape"]

OPTIONS = (
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
    numerical derivative of zero. ``names`` label the sources in reports; ``options``
    are those of :class:`CheckOptions` that apply (``mode``, ``max_full_size``,
    ``projections``, ``projection``, ``seed``, ``raise_on_failure``, ``inconclusive``).

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
    __tracebackhide__ = True
    opts = CheckOptions.parse("check_tape", OPTIONS, options)
    sources = list(sources)
    _require_float64(sources)
    labels = list(names) if names is not None else [f"source {i}" for i in range(len(sources))]
    result = GradientCheckResult(subject=subject)
    saved = [s.copy() for s in sources]
    with GradientTape() as tape:
        target = fn()
    grads = tape.gradient(target, sources)
    probe = fn()
    if not same(probe, fn()):
        result.failures.append(invariant(subject, "fn(): two calls gave different results"))
    _gradient_invariants(result, sources, grads, labels)
    rng, eps = opts.rng(), output_eps(probe)
    for s, g, label, base in zip(sources, grads, labels, saved):
        if not np.array_equal(s, base):
            message = f"{label} was modified by recording or differentiating"
            result.failures.append(invariant(subject, message))
            s[...] = base
        functional = Functional(_evaluator(fn, s, base))
        _check_source(result, opts, rng, functional, (s, g, label, eps))
    return finish(result, opts)


def _require_float64(sources: list[Any]) -> None:
    __tracebackhide__ = True
    if Diffable.gradient_tape is not None:
        raise RuntimeError("check_tape cannot run inside an active GradientTape")
    for i, s in enumerate(sources):
        if not isinstance(s, np.ndarray) or s.dtype != np.float64:
            raise TypeError(
                f"check_tape: source {i} must be a float64 array (got "
                f"{getattr(s, 'dtype', type(s).__name__)}); use check_model, which checks a "
                "float64 copy of a model, or build the graph with beras.config.set_floatx('float64')"
            )


def _gradient_invariants(
    result: GradientCheckResult, sources: list[Any], grads: list[Any], labels: list[str]
) -> None:
    for s, g, label in zip(sources, grads, labels):
        if g is None:
            continue
        g_arr = np.asarray(g)
        if g_arr.shape != s.shape or g_arr.dtype != s.dtype:
            message = (
                f"GradientTape.gradient: {label} got a gradient of shape {g_arr.shape} and "
                f"dtype {g_arr.dtype}, expected {s.shape} and {s.dtype}"
            )
            result.failures.append(invariant(result.subject, message))
        if any(np.shares_memory(g_arr, o) for o in sources if o.size and g_arr.size):
            message = f"GradientTape.gradient: {label}'s gradient shares memory with a source"
            result.failures.append(invariant(result.subject, message))


def _evaluator(
    fn: Callable[[], Any], s: np.ndarray, base: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    def evaluate(x: np.ndarray) -> np.ndarray:
        s[...] = x
        try:
            out = fn()
        finally:
            s[...] = base
        outs = out if isinstance(out, (list, tuple)) else [out]
        return np.concatenate([np.asarray(o, dtype=np.float64).ravel() for o in outs])

    return evaluate


def _check_source(
    result: GradientCheckResult,
    opts: CheckOptions,
    rng: np.random.Generator,
    functional: Functional,
    source: tuple[np.ndarray, Any, str, float],
) -> None:
    """One source: its tape gradient against finite differences of ``sum(fn())``."""
    s, g, label, eps = source
    base = s.copy()
    short = label.replace(" ", "")
    grad = np.zeros(s.shape) if g is None else np.asarray(g, dtype=np.float64).reshape(s.shape)
    full = use_full(opts, s.size)
    result.mode[label] = "full" if full else "projection"
    if full:
        est = gradient(functional, base, eps)
        result.evaluations += est.evaluations
        labels = entry_labels(None, (), short, s.shape)
        found = compare_numeric("tape", label, grad.reshape(1, -1), est, labels)
        where = ""
    else:
        directions = draw(rng, s.shape, opts.projections, opts.projection)
        probe = Projections.estimate(functional, base, eps, directions)
        result.evaluations += probe.est.evaluations
        found = probe.compare("tape", label, grad, lambda r, c: f"<grad, u{c}>")
        result.evaluations += probe.locate_failure(found, grad, short)
        where = "projections"
    for finding in (found.failure, found.unjudged):
        if finding is not None:
            finding.where = where
            if g is None:
                finding.message = "the tape returned None (unconnected), but"
    result.add(found)


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
    gradient to within that dtype's precision. ``options`` go to :func:`check_tape`
    (``subject`` too).
    """
    __tracebackhide__ = True
    subject = options.pop("subject", f"{type(model).__name__} with {type(loss_fn).__name__}")
    opts = CheckOptions.parse("check_model", OPTIONS, options)
    twin = float64_twin(model)
    x64, y64 = as_float64(x), as_float64(y)
    variables = list(twin.trainable_variables)
    names = _variable_names(twin, variables)
    checked = {**opts.as_dict(), "raise_on_failure": False, "inconclusive": "ignore"}
    del checked["views"], checked["kink_values"], checked["ties"], checked["training"]
    result = check_tape(
        lambda: loss_fn(twin(x64), y64), variables, names=names, subject=subject, **checked
    )
    own = list(model.trainable_variables)
    with GradientTape() as tape:
        loss = loss_fn(model(x), y)
    grads = tape.gradient(loss, own)
    with GradientTape() as tape64:
        loss64 = loss_fn(twin(x64), y64)
    grads64 = tape64.gradient(loss64, variables)
    for v, g, g64, name in zip(own, grads, grads64, names):
        message = _dtype_agreement(v, g, g64, name)
        if message:
            result.failures.append(invariant(result.subject, message))
    return finish(result, opts)


def _variable_names(twin: Any, variables: list[Any]) -> list[str]:
    try:
        by_id = {id(w): n for w, n in zip(twin.weights, twin.weight_names())}
    except Exception:
        by_id = {}
    return [by_id.get(id(v), f"variable {i}") for i, v in enumerate(variables)]


def _dtype_agreement(v: Any, g: Any, g64: Any, name: str) -> str:
    """Why the model's own gradient disagrees with the float64 one ('' if it agrees)."""
    if g is None or g64 is None:
        return f"{name}: connected in one dtype only" if (g is None) != (g64 is None) else ""
    g_arr = np.asarray(g)
    if g_arr.shape != v.shape or g_arr.dtype != v.dtype:
        return (
            f"{name}: the tape's gradient has shape {g_arr.shape} and dtype "
            f"{g_arr.dtype}, expected {v.shape} and {v.dtype}"
        )
    if v.dtype == np.float64:
        return ""
    ref = np.asarray(g64)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    tol = 1e4 * float(np.finfo(v.dtype).eps) * scale
    diff = np.abs(g_arr.astype(np.float64) - ref)
    if np.all(diff <= tol):
        return ""
    return (
        f"{name}: the {v.dtype} gradient differs from the float64 one by up to "
        f"{np.nanmax(diff):.3g} (allowed {tol:.3g})"
    )
