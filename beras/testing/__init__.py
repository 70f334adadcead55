"""beras.testing: the verification layer (like ``numpy.testing``).

* :func:`numerical_jacobian`: central differences in float64 with a per-entry error
  estimate (Richardson pair of steps), kink detection and step refinement;
* :func:`check_gradients`: every derivative of one Diffable in three views (local
  Jacobians, VJPs, tape) plus invariants, with tolerances that know the numerical error;
* :func:`check_tape` / :func:`check_model`: end-to-end gradients of recorded graphs;
* :func:`register_domain` and the registry of input domains, which
  :mod:`beras.testing.strategies` (hypothesis, imported on demand) turns into test cases.

Everything here needs NumPy only, except ``beras.testing.strategies``.
"""

from ._check import check_gradients, float64_twin
from ._compare import (
    Entry,
    Finding,
    GradientCheckError,
    GradientCheckResult,
    InconclusiveGradientCheck,
)
from ._numeric import NumericalJacobian, numerical_jacobian
from ._registry import (
    Case,
    Domain,
    Input,
    domains,
    library_diffables,
    register_domain,
    sample_case,
    unregistered_diffables,
)
from ._tape import check_model, check_tape

__all__ = [
    "Case",
    "Domain",
    "Entry",
    "Finding",
    "GradientCheckError",
    "GradientCheckResult",
    "InconclusiveGradientCheck",
    "Input",
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
    "unregistered_diffables",
]
