"""What a check found: :class:`GradientCheckResult`, and the errors and warnings it raises."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from ._compare import Comparison, ConventionUse, Finding, KinkConvention

__all__ = ["GradientCheckError", "GradientCheckResult", "InconclusiveGradientCheck"]


class GradientCheckError(AssertionError):
    """A gradient check failed; the message names the view, the variable and the worst entries.

    An ``AssertionError``, so pytest shows it as a test failure; ``result`` holds the
    :class:`GradientCheckResult` with every finding as structured fields.
    """

    def __init__(self, message: str, result: GradientCheckResult) -> None:
        super().__init__(message)
        self.result = result


class InconclusiveGradientCheck(UserWarning):
    """Some numerical estimates were too unreliable to pass or fail their entries."""


@dataclass
class GradientCheckResult:
    """What a gradient check found.

    ``str(result)`` is a one-line summary when the check passed and the full
    :meth:`report` otherwise.

    Attributes:
        subject: what was checked (``repr`` of the Diffable, or a description).
        status: ``"pass"``, ``"fail"`` or ``"inconclusive"`` (nothing failed, but some
            numerical estimates were too unreliable to judge some entries).
        failures: the failed comparisons and invariants, worst entries first.
        inconclusive: the comparisons with unreliable numerical estimates.
        conventions: entries accepted only by a documented kink convention.
        notes: remarks that qualify a pass (a VJP agreeing with a wrong local Jacobian).
        evaluations: how many times the function was evaluated numerically.
        mode: ``"full"`` (per-entry Jacobians) or ``"projection"`` (random projections)
            per checked variable.
        checked: number of compared entries per view.
    """

    subject: str
    failures: list[Finding] = field(default_factory=list)
    inconclusive: list[Finding] = field(default_factory=list)
    conventions: list[ConventionUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
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

    def add(self, found: Comparison, convention: KinkConvention | None = None) -> Finding | None:
        """Record a :class:`Comparison`; returns its failure, if any."""
        self.count(found.view, found.total)
        if found.failure is not None:
            self.failures.append(found.failure)
        if found.unjudged is not None:
            self.inconclusive.append(found.unjudged)
        if found.accepted and convention is not None:
            self.conventions.append(
                ConventionUse(found.view, found.target, convention, found.accepted)
            )
        return found.failure

    def count(self, view: str, n: int) -> None:
        self.checked[view] = self.checked.get(view, 0) + n

    def summary(self) -> str:
        """One line: subject, status, evaluations and entries compared per view."""
        counts = ", ".join(f"{k}: {v}" for k, v in self.checked.items())
        return (
            f"gradient check of {self.subject}: {self.status} "
            f"({self.evaluations} function evaluations; entries compared: {counts or 'none'})"
        )

    def report(self) -> str:
        """A readable account of the failures, unjudged entries, conventions and notes."""
        parts = [self.summary()]
        if self.failures:
            parts.append(f"{len(self.failures)} failed:")
            parts += [f.format() for f in self.failures]
        if self.inconclusive:
            parts.append(
                f"{len(self.inconclusive)} inconclusive (the numerical estimate itself is "
                "unreliable there: a kink or steep region even the smallest step did not resolve):"
            )
            parts += [f.format() for f in self.inconclusive]
        if self.notes:
            parts.append("notes:")
            parts += [f"  {n}" for n in self.notes]
        if self.conventions:
            parts.append("accepted by a documented kink convention:")
            parts += [f"  {c.format()}" for c in self.conventions]
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.summary() if self.status == "pass" else self.report()

    def raise_for_status(self, inconclusive: str = "warn") -> GradientCheckResult:
        """Raise :class:`GradientCheckError` on failure; on inconclusive, ``"warn"``, ``"raise"`` or ``"ignore"``."""
        __tracebackhide__ = True
        if self.failures or (self.inconclusive and inconclusive == "raise"):
            raise GradientCheckError(self.report(), self)
        if self.inconclusive and inconclusive == "warn":
            warnings.warn(self.report(), InconclusiveGradientCheck, stacklevel=4)
        return self
