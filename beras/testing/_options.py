"""The options of every check, validated in one place.

``check_gradients``, ``check_tape`` and ``check_model`` take their keyword options as
``**options`` and build one :class:`CheckOptions` from them with :meth:`CheckOptions.parse`:
an unknown option is a ``TypeError`` and a bad value a ``ValueError`` (or ``TypeError``
for a wrong type), each naming the function, the option, what was expected and what came,
the same way for every check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from ._compare import KinkConvention

__all__ = ["CheckOptions"]

VIEWS = ("local", "vjp", "tape")
MODES = ("auto", "full", "projection")
PROJECTIONS_KINDS = ("rademacher", "gaussian")
INCONCLUSIVE = ("warn", "raise", "ignore")
#: Variables (and outputs) up to this many entries get full per-entry Jacobians.
MAX_FULL_SIZE = 512
#: Random projections per variable in projection mode.
PROJECTIONS = 16


@dataclass(frozen=True)
class CheckOptions:
    """Keyword options shared by the checks (each check accepts the ones that apply).

    Attributes:
        views: which of ``"local"``, ``"vjp"``, ``"tape"`` to check (``check_gradients``).
        mode: ``"full"`` (per-entry Jacobians), ``"projection"`` (random projections
            ``v^T J u``), or ``"auto"``: full up to ``max_full_size`` entries.
        max_full_size: the largest variable (and output) checked entry by entry in
            ``"auto"`` mode.
        projections: random projections per variable in projection mode.
        projection: ``"rademacher"`` (default) or ``"gaussian"`` directions ``u``.
        seed: seeds the random upstreams and directions (deterministic by default).
        kink_values: derivative values a documented convention returns at a kink, also
            accepted there (a sequence of numbers or a :class:`KinkConvention`); ``None``
            (default): the conventions of the Diffable's class's registered domains;
            ``()``: none.
        ties: ``ties(layer, inputs) -> [(input index, flat indices), ...]``, the groups of
            tied entries (a max's kinks) checked along their common direction; ``None``
            (default): the registered domain's tie detector; ``False``: none.
        training: the training modes to check a layer whose ``forward`` takes a
            ``training`` flag in; ``None`` (default): both, ``(False, True)``.
        raise_on_failure: raise :class:`GradientCheckError` (an ``AssertionError``) on a
            failure; if False, return the result whatever it is.
        inconclusive: when nothing failed but some entries could not be judged:
            ``"warn"`` (an :class:`InconclusiveGradientCheck` warning), ``"raise"`` or
            ``"ignore"``. Applies only when ``raise_on_failure`` is True.
    """

    views: tuple[str, ...] = VIEWS
    mode: str = "auto"
    max_full_size: int = MAX_FULL_SIZE
    projections: int = PROJECTIONS
    projection: str = "rademacher"
    seed: int | np.random.Generator | None = 0
    kink_values: Any = None
    ties: Any = None
    training: tuple[bool, ...] | None = None
    raise_on_failure: bool = True
    inconclusive: str = "warn"
    caller: str = "check_gradients"

    @classmethod
    def parse(cls, caller: str, allowed: Sequence[str], options: dict[str, Any]) -> CheckOptions:
        """Validated options of ``caller``, which accepts the option names in ``allowed``."""
        __tracebackhide__ = True
        for name in options:
            if name not in allowed:
                raise TypeError(
                    f"{caller}() got an unexpected keyword argument {name!r}; "
                    f"its options are {', '.join(allowed)}"
                )
        return cls(caller=caller, **options)

    def __post_init__(self) -> None:
        __tracebackhide__ = True
        set_ = object.__setattr__
        views = (self.views,) if isinstance(self.views, str) else tuple(self.views)
        unknown = sorted(set(views) - set(VIEWS))
        if unknown:
            self._fail(f"unknown views {unknown}; expected some of {VIEWS}")
        set_(self, "views", views)
        self._choice("mode", MODES)
        self._choice("projection", PROJECTIONS_KINDS)
        self._choice("inconclusive", INCONCLUSIVE)
        self._positive_int("max_full_size", minimum=0)
        self._positive_int("projections", minimum=1)
        if not (
            self.seed is None or isinstance(self.seed, np.random.Generator) or _is_int(self.seed)
        ):
            self._fail(f"seed must be an int, a np.random.Generator or None, got {self.seed!r}")
        if self.kink_values is not None and not isinstance(self.kink_values, KinkConvention):
            values = self._floats("kink_values", self.kink_values)
            set_(self, "kink_values", KinkConvention(values, "given as kink_values"))
        if not (self.ties is None or self.ties is False or callable(self.ties)):
            self._fail(f"ties must be a function, False or None, got {self.ties!r}")
        if self.training is not None:
            modes = (self.training,) if isinstance(self.training, bool) else self.training
            if not modes or not all(isinstance(m, bool) for m in modes):
                self._fail(
                    f"training must be True, False or a tuple of them, got {self.training!r}"
                )
            set_(self, "training", tuple(dict.fromkeys(modes)))
        if not isinstance(self.raise_on_failure, bool):
            self._fail(f"raise_on_failure must be True or False, got {self.raise_on_failure!r}")

    def rng(self) -> np.random.Generator:
        """The generator of the random upstreams and directions."""
        if isinstance(self.seed, np.random.Generator):
            return self.seed
        return np.random.default_rng(self.seed)

    def with_(self, **changes: Any) -> CheckOptions:
        """A copy with some options changed (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "caller"}

    # ------------------------------------------------------------------ validators
    def _fail(self, message: str) -> None:
        __tracebackhide__ = True
        raise ValueError(f"{self.caller}: {message}")

    def _choice(self, name: str, choices: Sequence[str]) -> None:
        __tracebackhide__ = True
        value = getattr(self, name)
        if value not in choices:
            expected = ", ".join(repr(c) for c in choices)
            self._fail(f"{name} must be one of {expected}; got {value!r}")

    def _positive_int(self, name: str, minimum: int) -> None:
        __tracebackhide__ = True
        value = getattr(self, name)
        if not _is_int(value) or value < minimum:
            self._fail(f"{name} must be an int >= {minimum}, got {value!r}")

    def _floats(self, name: str, values: Any) -> tuple[float, ...]:
        __tracebackhide__ = True
        try:
            floats = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            self._fail(f"{name} must be a sequence of numbers, got {values!r}")
        if not all(np.isfinite(floats)):
            self._fail(f"{name} must be finite numbers, got {values!r}")
        return floats


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
