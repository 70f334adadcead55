"""The invariants of a Diffable, checked on the layer itself, in its own dtype.

Inputs, weights and upstream not mutated; gradient shapes and dtypes equal the
variables'; zero upstream gives exactly zero; the VJP is linear in the upstream;
repeated calls give identical results; returned gradients alias neither each other nor
the inputs (nor, for VJPs, the weights); a forward never changes a trainable weight.
A layer without local Jacobians (``has_local_jacobian = False``) or with several outputs
is checked through its VJPs only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core import NoLocalJacobianError
from ..validation import result_float_dtype
from ._compare import Finding, invariant, max_abs
from ._subject import Subject

__all__ = ["Invariants"]

Grads = list[Any] | None


def same(a: Any, b: Any) -> bool:
    """Equal shape, dtype and values (NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def unique_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normal values that stay distinct in ``dtype`` (so permutations show)."""
    while True:
        v = rng.standard_normal(shape).astype(dtype)
        if v.size < 2 or np.unique(v).size == v.size:
            return v


class Invariants:
    """Runs the layer of a :class:`Subject` in its own dtype; records every broken invariant."""

    def __init__(self, subject: Subject, rng: np.random.Generator, sink: list[Finding]) -> None:
        self.subject, self.rng, self.sink = subject, rng, sink
        self.layer = subject.layer
        self.inputs = list(subject.inputs)
        self.name = repr(subject.layer) + (f" ({subject.where})" if subject.where else "")
        self.in_names, self.w_names = subject.names()
        self.local_scale = 0.0

    def fail(self, message: str) -> None:
        self.sink.append(invariant(self.name, message))

    def run(self) -> bool:
        """Whether the views can run (a float output, no exception in forward)."""
        weights = list(self.layer.weights)
        saved = [np.array(x, copy=True) for x in self.inputs + weights]
        outs = [np.asarray(o) for o in self.subject.call(*self.inputs)]
        again = [np.asarray(o) for o in self.subject.call(*self.inputs)]
        if len(outs) != len(again) or not all(same(a, b) for a, b in zip(outs, again)):
            self.fail("forward: two calls with the same inputs gave different outputs")
        if any(o.dtype.kind != "f" for o in outs):
            self.fail(f"forward: expected float outputs, got dtypes {[str(o.dtype) for o in outs]}")
            return False
        self.local_scale = max(max_abs(o) for o in outs)
        if self.subject.has_local and len(outs) == 1:
            self._local(weights)
        elif not self.subject.has_local:
            self._no_local()
        ups = [[unique_normal(self.rng, o.shape, o.dtype) for o in outs] for _ in range(2)]
        saved_ups = [np.array(u, copy=True) for J in ups for u in J]
        # determinism on the first upstream; the second is composed once
        vjps = [
            (self._compose("input", J, twice=i == 0), self._compose("weight", J, twice=i == 0))
            for i, J in enumerate(ups)
        ]
        self._vjp_shapes(vjps[0], ups, outs, weights)
        self._zero_upstream(outs)
        self._linearity(ups, vjps)
        self._unchanged(saved, saved_ups, ups, weights)
        return True

    # ------------------------------------------------------------------ local gradients
    def _local(self, weights: list[Any]) -> None:
        layer = self.layer
        local_in = self._twice("get_input_gradients", layer.get_input_gradients)
        local_w = self._twice("get_weight_gradients", layer.get_weight_gradients)
        numeric = [
            g for g in (local_in or []) + (local_w or []) if np.asarray(g).dtype.kind in "fiub"
        ]
        self.local_scale = max([self.local_scale] + [max_abs(g) for g in numeric])
        for what, grads, n, of in (
            ("get_input_gradients()", local_in, len(self.inputs), "inputs"),
            ("get_weight_gradients()", local_w, len(weights), "weights"),
        ):
            if grads is None:
                continue
            if len(grads) != n:
                self.fail(f"{what} returned {len(grads)} gradients for {n} {of}")
            self._no_alias(what, grads, [("input", x) for x in self.inputs])

    def _no_local(self) -> None:
        """``has_local_jacobian = False``: ``get_*_gradients`` raise NoLocalJacobianError."""
        for what in ("get_input_gradients", "get_weight_gradients"):
            try:
                getattr(self.layer, what)()
            except NoLocalJacobianError:
                continue
            except Exception as err:
                self.fail(
                    f"{what}() raised {type(err).__name__}, expected NoLocalJacobianError "
                    "(the layer declares has_local_jacobian = False)"
                )
                continue
            self.fail(
                f"{what}() returned, but the layer declares has_local_jacobian = False: it "
                "should raise NoLocalJacobianError (beras.core)"
            )

    def _twice(self, what: str, call: Callable[[], Any]) -> Grads:
        """Two calls must agree and be finite; returns the first call's own arrays."""
        try:
            first = list(call())
            snapshot = [np.array(g) for g in first]
            second = list(call())
        except Exception as err:  # reported as a failure, with the exception
            self.fail(f"{what} raised {type(err).__name__}: {err}")
            return None
        if len(snapshot) != len(second) or not all(same(a, b) for a, b in zip(snapshot, second)):
            self.fail(f"{what}: two calls gave different results")
        self._finite(what, snapshot)
        return first

    def _finite(self, what: str, grads: list[np.ndarray]) -> None:
        for g in grads:
            if g.dtype.kind in "fc" and not np.all(np.isfinite(g)):
                self.fail(f"{what} returned NaN or infinite entries for finite inputs")
                break

    # ------------------------------------------------------------------ VJPs
    def _compose(self, kind: str, J: list[np.ndarray], twice: bool) -> Grads:
        call = getattr(self.layer, f"compose_{kind}_gradients")
        what = f"compose_{kind}_gradients(J)"
        if twice:
            return self._twice(what, lambda: call(J))
        try:
            grads = list(call(J))
        except Exception as err:  # reported as a failure, with the exception
            self.fail(f"{what} raised {type(err).__name__}: {err}")
            return None
        self._finite(what, [np.asarray(g) for g in grads])
        return grads

    def _vjp_shapes(
        self,
        vjp: tuple[Grads, Grads],
        ups: list[list[np.ndarray]],
        outs: list[np.ndarray],
        weights: list[Any],
    ) -> None:
        others = (
            [("input", x) for x in self.inputs]
            + [("upstream", u) for J in ups for u in J]
            + [("weight", w) for w in weights]
            + [("output", o) for o in outs]
        )
        ci, cw = vjp
        if ci is not None:
            what = "compose_input_gradients(J)"
            self._shapes(what, ci, self.inputs, self.in_names, outs[0].dtype)
            self._no_alias(what, ci, others)
        if cw is not None:
            what = "compose_weight_gradients(J)"
            self._shapes(what, cw, weights, self.w_names, None)
            self._no_alias(what, cw, others)

    def _shapes(
        self,
        what: str,
        grads: Sequence[Any],
        variables: Sequence[Any],
        names: Sequence[str],
        compute: Any,
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
            allowed = {expected, compute}
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

    def _zero_upstream(self, outs: list[np.ndarray]) -> None:
        zero = [np.zeros(o.shape, dtype=o.dtype) for o in outs]
        for kind in ("input", "weight"):
            what = f"compose_{kind}_gradients"
            try:
                grads = getattr(self.layer, what)(zero)
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

    def _linearity(self, ups: list[list[np.ndarray]], vjps: list[tuple[Grads, Grads]]) -> None:
        a, b = 0.75, -1.5
        mixed = [
            (a * u1.astype(np.float64) + b * u2.astype(np.float64)).astype(u1.dtype)
            for u1, u2 in zip(ups[0], ups[1])
        ]
        eps = float(np.finfo(result_float_dtype(ups[0][0])).eps)
        up_scale = abs(a) * max(map(max_abs, ups[0])) + abs(b) * max(map(max_abs, ups[1]))
        for pos, kind in enumerate(("input", "weight")):
            g1, g2 = vjps[0][pos], vjps[1][pos]
            if g1 is None or g2 is None:
                continue
            what = f"compose_{kind}_gradients"
            try:
                g12 = getattr(self.layer, what)(mixed)
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
                floor = self.local_scale * up_scale
                tol = 64.0 * eps * (size + np.sqrt(max(x12.size, 1)) * (scale + floor))
                if not np.all(np.abs(x12 - expected) <= tol):
                    worst = float(np.nanmax(np.abs(x12 - expected)))
                    self.fail(
                        f"{what} is not linear in the upstream J: for J = {a} J1 + {b} J2 "
                        f"gradient {k} differs from {a} g(J1) + {b} g(J2) by up to {worst:.3g}"
                    )

    # ------------------------------------------------------------------ nothing changed
    def _unchanged(
        self,
        saved: list[np.ndarray],
        saved_ups: list[np.ndarray],
        ups: list[list[np.ndarray]],
        weights: list[Any],
    ) -> None:
        for x, before, name in zip(self.inputs + weights, saved, self.in_names + self.w_names):
            if not same(x, before):
                self.fail(f"{name} was modified in place by forward or a gradient method")
        for j in sorted(set(self.subject.own.changed)):
            self.fail(f"forward changed the trainable {self.w_names[j]} in place")
        if not all(same(u, s) for u, s in zip((u for J in ups for u in J), saved_ups)):
            self.fail("the upstream gradient J was modified in place by a compose method")
