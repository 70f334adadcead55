"""The three views of one Diffable's derivative, compared with each other and with finite differences.

1. **local**: ``get_input_gradients()`` / ``get_weight_gradients()``, expanded into full
   Jacobians by the stencil's composition rule (or contracted with ``v`` and projected on
   random directions ``u``), against finite differences of ``forward``;
2. **vjp**: ``compose_input_gradients(J)`` / ``compose_weight_gradients(J)`` against the
   local Jacobians contracted with the same random upstream ``J``, entry by entry, up to
   round-off; for a layer without local Jacobians (``has_local_jacobian = False``) or with
   several outputs, against finite differences of ``<J, forward>`` directly;
3. **tape**: the gradient ``GradientTape`` computes for ``<J, outputs>`` against finite
   differences of that functional.

Each random upstream ``J`` ("random direction i" in reports) holds one array per output:
a layer with several outputs is checked with every output's own upstream at once, and
with each output's upstream alone. Declared ties (``register_domain(ties=...)``) are
checked along the direction that moves a group of tied entries together: a max that
hands its gradient to every tied entry passes entry by entry (each one-sided interval
contains 1) but fails there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..gradient_tape import GradientTape
from . import _stencil
from ._compare import (
    Exact,
    compare_exact,
    compare_numeric,
    entry_labels,
    invariant,
    max_abs,
    project,
    widen,
)
from ._context import Context, Contract, Target
from ._directions import Functional, Projections, draw, group_directions, jacobian, use_full
from ._invariants import unique_normal
from ._numeric import EPS64, output_eps

__all__ = ["Views"]

Grads = list[Any]


@dataclass
class _Analytic:
    """The analytic gradients of one subject: local, VJPs per upstream, tape per upstream."""

    local_in: Grads | None
    local_w: Grads | None
    vjps: list[tuple[Grads, Grads]] | None
    tape: list[Grads] | None


class Views:
    """Runs the views of one :class:`Context` (one Diffable in one training mode)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        s = ctx.subject
        outs = [np.asarray(o) for o in s.call64()]
        self.out_shapes = [o.shape for o in outs]
        self.out_size = sum(o.size for o in outs)
        self.out_scale = max(max_abs(o) for o in outs)
        self.eps = output_eps(outs)
        self.single = len(outs) == 1
        self.uses_local = s.has_local and self.single
        self.views = ctx.options.views
        self.targets = ctx.targets()
        self.upstreams = self._upstreams()
        self.labels: list[str] = self._upstream_labels()

    # ------------------------------------------------------------------ setup
    def _upstreams(self) -> list[list[np.ndarray]]:
        """Random upstreams ``J``: two with every output's own, then each output alone."""
        rng = self.ctx.rng
        drawn = [
            [unique_normal(rng, shape, np.float64) for shape in self.out_shapes] for _ in range(2)
        ]
        if self.single:
            return drawn
        alone = []
        for o in range(len(self.out_shapes)):
            J = [np.zeros(shape) for shape in self.out_shapes]
            J[o] = drawn[0][o]
            alone.append(J)
        return drawn + alone

    def _upstream_labels(self) -> list[str]:
        labels = [f"random direction {i}" for i in range(2)]
        n = len(self.out_shapes)
        if n > 1:
            labels += [f"random direction 0 on output {o} only" for o in range(n)]
        return labels

    def run(self) -> None:
        """Every view of every variable."""
        found = self._analytic()
        if found is None:
            return  # a count mismatch, already reported by the invariants
        self.analytic = found
        if self.uses_local and "vjp" in self.views and found.vjps is not None:
            for t in self.ctx.all_targets():
                self._exact_vjp(t)
        if "tape" in self.views:
            self.analytic.tape = self._tape()
        if {"local", "tape"} & set(self.views) or not self.uses_local:
            for t in self.targets:
                self._numerical(t)
        self._notes()

    def _analytic(self) -> _Analytic | None:
        s, twin = self.ctx.subject, self.ctx.subject.twin
        local_in = local_w = None
        if self.uses_local:
            local_in = list(twin.get_input_gradients())
            local_w = list(twin.get_weight_gradients())
            if len(local_in) != len(s.inputs64) or len(local_w) != len(twin.weights):
                return None
        try:
            vjps = [
                (list(twin.compose_input_gradients(J)), list(twin.compose_weight_gradients(J)))
                for J in self.upstreams
            ]
        except Exception:  # already reported by the invariants, in the layer's own dtype
            vjps = None
        return _Analytic(local_in, local_w, vjps, None)

    # ------------------------------------------------------------------ gradients per view
    def local_vjp(self, t: Target, J: list[np.ndarray], absolute: bool = False) -> np.ndarray:
        """The stencil's composition of the local gradient of ``t`` with ``J`` (one output)."""
        local = self.analytic.local_in if t.kind == "input" else self.analytic.local_w
        assert local is not None
        g, v = local[t.index], J[0]
        if absolute:
            g, v = np.abs(np.asarray(g, dtype=np.float64)), np.abs(v)
        what = f"{self.ctx.subject.twin!r} {t.name}"
        if t.kind == "input":
            layout = getattr(self.ctx.subject.twin, "input_gradient_layout", "matmul")
            return _stencil.input_vjp(layout, g, t.array.shape, v, what)
        return _stencil.weight_vjp(g, t.array.shape, v, what)

    def vjp(self, t: Target, i: int) -> np.ndarray | None:
        vjps = self.analytic.vjps
        if vjps is None:
            return None
        grads = vjps[i][0 if t.kind == "input" else 1]
        if len(grads) <= t.index or np.size(grads[t.index]) != t.array.size:
            return None  # a count or shape error, reported by the invariants
        return np.asarray(grads[t.index], dtype=np.float64).reshape(t.array.shape)

    def against_numbers(self, t: Target, i: int) -> Iterator[tuple[str, np.ndarray]]:
        """The views compared with finite differences of ``<J_i, f>`` (besides the full local)."""
        if self.uses_local and "local" in self.views:
            try:
                local = self.local_vjp(t, self.upstreams[i])
            except _stencil.LayoutError:
                local = None  # reported by the VJP view
            if local is not None:
                yield "local", local
        if not self.uses_local and "vjp" in self.views:
            g = self.vjp(t, i)
            if g is not None:
                yield "vjp", g
        if "tape" in self.views and self.analytic.tape is not None:
            yield "tape", self.analytic.tape[i][self.targets.index(t)]

    # ------------------------------------------------------------------ view (b), exact
    def _exact_vjp(self, t: Target) -> None:
        ctx = self.ctx
        local = self.analytic.local_in if t.kind == "input" else self.analytic.local_w
        assert local is not None
        for i, J in enumerate(self.upstreams):
            try:
                ref, mag = self.local_vjp(t, J), self.local_vjp(t, J, absolute=True)
            except _stencil.LayoutError as err:
                ctx.result.failures.append(invariant(repr(ctx.subject.twin), f"{t.name}: {err}"))
                return
            got = self.vjp(t, i)
            if got is None:
                continue
            # an equivalent formula may round relative to |y| |J| (Softmax's
            # y * (J - sum(J * y))) or |g| |J|, not to the (maybe tiny) result
            floor = max(max_abs(local[t.index]), self.out_scale) * max_abs(J[0])
            label = entry_labels(None, (), t.entry_name, t.array.shape)
            found = compare_exact("vjp", t.name, got, Exact(ref, mag, floor, EPS64), label)
            ctx.record(found, self.labels[i])

    # ------------------------------------------------------------------ view (c), the tape
    def _tape(self) -> list[Grads] | None:
        ctx, grads = self.ctx, []
        arrays = [t.array for t in self.targets]
        if not arrays:
            return None
        for J in self.upstreams:
            try:
                with GradientTape() as tape:
                    outs = ctx.subject.call64()
                    phi = Contract(J)(*outs)
                found = list(tape.gradient(phi, arrays))
            except Exception as err:
                message = f"GradientTape.gradient raised {type(err).__name__}: {err}"
                ctx.result.failures.append(invariant(repr(ctx.subject.twin), message))
                found = [None] * len(arrays)
            grads.append([self._tape_grad(t, g) for t, g in zip(self.targets, found)])
        return grads

    def _tape_grad(self, t: Target, g: Any) -> np.ndarray:
        if g is not None and np.shape(g) != t.array.shape:
            message = (
                f"GradientTape.gradient: the gradient of {t.name} has shape {np.shape(g)}, "
                f"expected {t.array.shape}"
            )
            self.ctx.result.failures.append(invariant(repr(self.ctx.subject.twin), message))
            g = None
        return np.zeros(t.array.shape) if g is None else np.asarray(g, dtype=np.float64)

    # ------------------------------------------------------------------ against finite differences
    def _numerical(self, t: Target) -> None:
        ctx = self.ctx
        full = use_full(ctx.options, t.array.size, self.out_size)
        ctx.result.mode[ctx.key(t)] = "full" if full else "projection"
        evaluate = ctx.evaluator(t)
        if full:
            self._full(t, evaluate)
        else:
            self._projections(t, evaluate)
        groups = ctx.tie_groups(t)
        if groups:
            self._ties(t, evaluate, groups)

    def _full(self, t: Target, evaluate: Callable[[np.ndarray], np.ndarray]) -> None:
        ctx = self.ctx
        est = jacobian(evaluate, t.array.copy(), self.eps)
        ctx.result.evaluations += est.evaluations
        convention = ctx.convention
        est = widen(est, convention.values if convention else ())
        if self.uses_local and "local" in self.views:
            analytic = self._local_jacobian(t)
            if analytic is not None:
                label = entry_labels("out", self.out_shapes[0], t.entry_name, t.array.shape)
                ctx.record(compare_numeric("local", t.name, analytic, est, label), "")
        label = entry_labels(None, (), t.entry_name, t.array.shape)
        for i, J in enumerate(self.upstreams):
            projected = project(est, _flat(J))
            for view, grad in self.against_numbers(t, i):
                if view == "local":
                    continue  # compared above as a full Jacobian
                row = np.asarray(grad, dtype=np.float64).reshape(1, -1)
                ctx.record(compare_numeric(view, t.name, row, projected, label), self.labels[i])

    def _local_jacobian(self, t: Target) -> np.ndarray | None:
        local = self.analytic.local_in if t.kind == "input" else self.analytic.local_w
        assert local is not None
        twin = self.ctx.subject.twin
        what = f"{twin!r} {t.name}"
        try:
            if t.kind == "input":
                layout = getattr(twin, "input_gradient_layout", "matmul")
                return _stencil.input_jacobian(
                    layout, local[t.index], t.array.shape, self.out_shapes[0], what
                )
            return _stencil.weight_jacobian(local[t.index], t.array.shape, self.out_shapes[0], what)
        except _stencil.LayoutError:
            return None  # reported by the VJP view

    def _projections(self, t: Target, evaluate: Callable[[np.ndarray], np.ndarray]) -> None:
        ctx, opts = self.ctx, self.ctx.options
        per_upstream = max(1, opts.projections // len(self.upstreams))
        located: set[str] = set()  # views whose wrong entry was already located
        for i, J in enumerate(self.upstreams):
            directions = draw(ctx.rng, t.array.shape, per_upstream, opts.projection)
            probe = Projections.estimate(
                Functional(evaluate, _flat(J)), t.array.copy(), self.eps, directions
            )
            ctx.result.evaluations += probe.est.evaluations

            def label(r: int, c: int, i: int = i) -> str:
                return f"<v{i}, J u{c}>"

            for view, grad in self.against_numbers(t, i):
                found = probe.compare(view, t.name, grad, label)
                failure = ctx.record(found, f"{self.labels[i]}, projections")
                if failure is not None and view not in located:
                    located.add(view)
                    ctx.result.evaluations += probe.locate_failure(found, grad, t.entry_name)

    def _ties(
        self, t: Target, evaluate: Callable[[np.ndarray], np.ndarray], groups: list[np.ndarray]
    ) -> None:
        ctx = self.ctx
        directions = group_directions(t.array.shape, groups)
        names = [
            ", ".join(entry_labels(None, (), t.entry_name, t.array.shape)(0, int(k)) for k in g)
            for g in groups
        ]
        probe = Projections.estimate(
            Functional(evaluate, _flat(self.upstreams[0])), t.array.copy(), self.eps, directions
        )
        ctx.result.evaluations += probe.est.evaluations
        for view, grad in self.against_numbers(t, 0):
            found = probe.compare(
                view, t.name, grad, lambda r, c: f"tied {names[c]} moved together"
            )
            ctx.record(found, f"{self.labels[0]}, declared ties")

    # ------------------------------------------------------------------ notes
    def _notes(self) -> None:
        """Say so when the VJP view passed only by agreeing with a wrong local Jacobian."""
        failures = self.ctx.result.failures
        if "local" in self.views and not self.single and self.ctx.subject.has_local:
            self.ctx.result.notes.append(
                f"[local] not checked{self.ctx.suffix}: the layer has several outputs, and the "
                "stencil's local Jacobians compose one upstream; its VJPs were checked against "
                "finite differences instead"
            )
        for t in self.targets:
            mine = [f for f in failures if f.target == t.name and self.ctx.where in f.where]
            if any(f.view == "local" for f in mine) and not any(f.view == "vjp" for f in mine):
                self.ctx.result.notes.append(
                    f"[vjp] {t.name}{self.ctx.suffix}: the VJP view passed because the VJP agrees "
                    "with the local Jacobian, which is itself wrong (see [local]); the tape view "
                    "checks the VJP against finite differences"
                )


def _flat(J: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in J])
