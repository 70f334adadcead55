"""beras.testing: the verification layer (like ``numpy.testing``).

* :func:`numerical_jacobian`: central differences in float64 with a per-entry error
  estimate (Richardson pair of steps), kink detection and step refinement;
* :func:`check_gradients`: every derivative of one Diffable in three views (local
  Jacobians, VJPs, tape) plus invariants, with tolerances that know the numerical error;
  every kind of Diffable (several outputs, no local Jacobian, stochastic, with a
  training mode), and the kink conventions its class documents;
* :func:`check_tape` / :func:`check_model`: end-to-end gradients of recorded graphs;
* :func:`register_domain` and the registry of input domains, which
  :mod:`beras.testing.strategies` (hypothesis, imported on demand) turns into test cases.

Failures raise :class:`GradientCheckError`, an ``AssertionError`` whose message names the
view, the variable and the worst entries (pytest shows it as a test failure, without
the checker's own frames); a passing result prints as one line.

Registering a domain
--------------------
Each public Diffable declares once what valid inputs look like; the test suite checks
every registered domain in every view, and fails on a public Diffable without one::

    register_domain(
        Conv2D,
        [Input(("batch", "h", "w", "c"))],
        lambda d, rng: Conv2D(d["filters"], d["kernel_size"], strides=d["strides"],
                              padding=d["padding"], seed=rng),
        dims={"h": (3, 6), "w": (3, 6), "c": (1, 3), "filters": (1, 3)},
        params={"kernel_size": (1, 2, 3), "strides": (1, 2), "padding": ("valid", "same")},
        where=lambda d: d["padding"] == "same" or d["kernel_size"] <= min(d["h"], d["w"]),
        extreme=0.3,
    )

* ``dims``: ranges of the named dimensions (``{"batch": (2, 4)}`` for a layer that needs a
  batch of at least two, as BatchNormalization in training mode);
* ``params``: constructor parameters drawn per case; they reach the factory in ``d``;
* ``where``: a constraint over dimensions and parameters (kernel no larger than the
  padded input); cases that break it are never drawn;
* ``kinks`` / ``kink_values`` / ``convention``: input values where the derivative is
  one-sided, and the values a documented convention returns there;
* ``ties``: a tie detector ``ties(layer, inputs) -> [(input index, flat indices), ...]``
  for a max (MaxPool2D: :func:`tied_groups` with each entry's pooling window); the check
  moves each tied group together, and strategies draw inputs with repeated values;
* ``extreme``: the largest safe input magnitude, as a fraction of the float range.

Stochastic layers (``stochastic = True``, noise from ``self.rng``) and layers with a
training mode (``forward(..., training)``: Dropout, BatchNormalization) need nothing
more: ``check_gradients`` holds the noise fixed, checks both modes and restores every
weight (moving statistics included) after each evaluation. A layer with
``has_local_jacobian = False`` (Conv2D) has its VJPs checked against finite differences
directly.

Everything here needs NumPy only, except ``beras.testing.strategies``.
"""

from ._check import check_gradients, float64_twin
from ._compare import ConventionUse, Entry, Finding, KinkConvention
from ._numeric import NumericalJacobian, numerical_jacobian
from ._options import CheckOptions
from ._registry import (
    Case,
    Domain,
    Input,
    domains,
    library_diffables,
    register_domain,
    sample_case,
    tied_groups,
    unregister_domain,
    unregistered_diffables,
)
from ._result import GradientCheckError, GradientCheckResult, InconclusiveGradientCheck
from ._tape import check_model, check_tape

__all__ = [
    "Case",
    "CheckOptions",
    "ConventionUse",
    "Domain",
    "Entry",
    "Finding",
    "GradientCheckError",
    "GradientCheckResult",
    "InconclusiveGradientCheck",
    "Input",
    "KinkConvention",
    "NumericalJacobian",
    "check_gradients",
    "check_model",
    "check_tape",
    "domains",
    "float64_twin",
    "library_diffables",
    "numerical_jacobian",
    "register_domain",
    "sample_case",
    "tied_groups",
    "unregister_domain",
    "unregistered_diffables",
]

for _public in (
    Case,
    CheckOptions,
    ConventionUse,
    Domain,
    Entry,
    Finding,
    GradientCheckError,
    GradientCheckResult,
    InconclusiveGradientCheck,
    Input,
    KinkConvention,
    NumericalJacobian,
):
    _public.__module__ = "beras.testing"
del _public
