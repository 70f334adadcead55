"""``check_gradients``: one Diffable, three views of its derivative, and the invariants.

The views are described in ``_views``, the invariants in ``_invariants``, the tolerances
in ``_compare`` and the choice between full Jacobians and random projections in
``_directions``. Float32 layers are checked through their float64 evaluation; the layer
itself is exercised in its own dtype for the invariants (``_subject``).

Every kind of Diffable is covered:

* several outputs (``forward`` returns a list): each output gets its own random upstream;
* ``has_local_jacobian = False``: the VJPs are checked against finite differences
  directly, plus the tape;
* ``stochastic = True``: the randomness is held fixed by restoring ``rng``'s state
  around every evaluation;
* a ``training`` flag: both modes are checked (``training=`` option), and the weights
  (moving statistics included) are restored after every evaluation;
* weights created on the first call: the layer's ``build(input_shape)`` (Keras's
  convention) is called first, so every weight is seen, copied and restored.

At a kink the analytic value must lie between the one-sided derivatives (inclusive). A
Diffable whose documented convention is another value there (the course handout's
LeakyReLU has gradient 0 at exactly 0, outside ``[alpha, 1]``) declares it in its
registered domain (``register_domain(kink_values=..., convention=...)``):
``check_gradients`` uses the conventions of the Diffable's class by default, and the
result lists the entries only a convention accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..core import Diffable, has_training_mode
from ._compare import KinkConvention
from ._context import Context, TieHook
from ._invariants import Invariants
from ._options import CheckOptions
from ._result import GradientCheckResult
from ._subject import Subject, float64_twin, with_dtype
from ._views import Views

__all__ = ["check_gradients", "finish", "float64_twin", "with_dtype"]

OPTIONS = (
    "views",
    "mode",
    "max_full_size",
    "projections",
    "projection",
    "seed",
    "kink_values",
    "ties",
    "training",
    "raise_on_failure",
    "inconclusive",
)


def check_gradients(
    diffable: Diffable,
    *inputs: Any,
    constants: Sequence[int] = (),
    bounds: Mapping[int, tuple[float, float]] | None = None,
    **options: Any,
) -> GradientCheckResult:
    """Check every derivative of a Diffable at ``inputs``: three views and the invariants.

    Views: ``"local"`` (get_*_gradients against finite differences of ``forward``),
    ``"vjp"`` (compose_*_gradients against the local Jacobians contracted with random
    upstreams, or against finite differences for a layer without local Jacobians),
    ``"tape"`` (``GradientTape`` on a random linear functional of the outputs against
    finite differences).

    Args:
        diffable: the layer, activation or loss to check.
        *inputs: the point, as ``diffable(*inputs)`` would be called.
        constants: indices of inputs that are not differentiated (labels).
        bounds: ``{input index: (lo, hi)}`` for inputs with a bounded domain
            (probabilities); numerical evaluations stay inside it.
        **options: see :class:`CheckOptions` (``views``, ``mode``, ``max_full_size``,
            ``projections``, ``projection``, ``seed``, ``kink_values``, ``ties``,
            ``training``, ``raise_on_failure``, ``inconclusive``).

    Returns:
        A :class:`GradientCheckResult` (``status``, ``failures`` with the worst entries,
        ``evaluations``); raises :class:`GradientCheckError` on a failure unless
        ``raise_on_failure=False``.

    >>> import numpy as np, beras
    >>> from beras.testing import check_gradients
    >>> layer = beras.Dense(3, 2)
    >>> check_gradients(layer, np.random.default_rng(0).normal(size=(4, 3))).status
    'pass'
    """
    __tracebackhide__ = True
    opts = CheckOptions.parse("check_gradients", OPTIONS, options)
    if not isinstance(diffable, Diffable):
        raise TypeError(f"check_gradients expected a Diffable, got {type(diffable).__name__}")
    if Diffable.gradient_tape is not None:
        raise RuntimeError("check_gradients cannot run inside an active GradientTape")
    build(diffable, inputs)
    result = GradientCheckResult(subject=repr(diffable))
    rng = opts.rng()
    for training in training_modes(diffable, opts):
        subject = Subject(diffable, list(inputs), training)
        ctx = Context(subject, opts, rng, result, tuple(constants), bounds)
        ctx.convention, ctx.ties = conventions(diffable, opts)
        if Invariants(subject, rng, result.failures).run():
            Views(ctx).run()
    return finish(result, opts)


def build(diffable: Diffable, inputs: Sequence[Any]) -> None:
    """Create lazily built weights first (Keras's ``build(input_shape)``, a no-op once
    built), so the check sees, copies and restores every weight."""
    make = getattr(diffable, "build", None)
    if callable(make) and inputs:
        make(np.shape(inputs[0]))


def training_modes(diffable: Diffable, opts: CheckOptions) -> tuple[bool | None, ...]:
    """``(None,)`` without a training mode; else the requested modes (both by default)."""
    if not has_training_mode(diffable):
        return (None,)
    return opts.training if opts.training is not None else (False, True)


def conventions(
    diffable: Diffable, opts: CheckOptions
) -> tuple[KinkConvention | None, TieHook | None]:
    """The kink convention and tie detector: the options', else the registered domain's."""
    from ._registry import registered_conventions

    convention, ties = registered_conventions(type(diffable))
    if opts.kink_values is not None:
        convention = opts.kink_values if opts.kink_values.values else None
    if opts.ties is not None:
        ties = opts.ties or None
    return convention, ties


def finish(result: GradientCheckResult, opts: CheckOptions) -> GradientCheckResult:
    """Raise or warn as the options ask; return the result."""
    __tracebackhide__ = True
    if opts.raise_on_failure:
        result.raise_for_status(opts.inconclusive)
    return result
