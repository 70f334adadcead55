"""Hypothesis strategies for Beras (the only module of ``beras.testing`` that needs hypothesis).

* :func:`distinct_dims` / :func:`shapes`: dimensions that differ from each other, so a
  transposition bug shows;
* :func:`finite_arrays`: finite floats of controlled magnitude (and exact kink values);
  :func:`tied_arrays`: values that repeat (a max's ties);
* :func:`probability_rows`, :func:`one_hot`, :func:`upstream` (unique values);
* :func:`cases`: an instance with valid inputs of every registered Diffable (the
  registry of ``beras.testing.register_domain``: dimensions, constructor parameters,
  constraints, ties);
* :func:`sequential_models` and :func:`graphs`: random models and random recorded graphs
  (branches, ``Add``/``Concatenate`` merges, reused layer instances);
* :func:`register_profiles` and :func:`budget`: the ``dev``/``ci``/``thorough`` profiles.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import activations, layers, losses
from ..core import Variable
from ..model import SequentialModel
from ._registry import Case, Domain, Input, domains

__all__ = [
    "Graph",
    "budget",
    "cases",
    "distinct_dims",
    "finite_arrays",
    "graphs",
    "one_hot",
    "probability_rows",
    "register_profiles",
    "sequential_models",
    "shapes",
    "tied_arrays",
    "upstream",
]


# ------------------------------------------------------------------ profiles
PROFILES = ("dev", "ci", "thorough")
#: ``max_examples`` per profile; tests ask for ``budget(n)`` (n examples under ``ci``).
_EXAMPLES = {"dev": 30, "ci": 100, "thorough": 1000}


def register_profiles() -> str:
    """Register the ``dev``, ``ci`` and ``thorough`` profiles and load one.

    ``dev`` (fast, random), ``ci`` (derandomised, ``deadline=None``, ``print_blob=True``,
    no example database: reproducible and never flaky), ``thorough`` (10x ``ci``). The
    profile comes from ``HYPOTHESIS_PROFILE`` (default ``dev``); pytest's
    ``--hypothesis-profile`` option, applied later by hypothesis's plugin, wins.
    Returns the loaded profile's name.
    """
    common = settings(
        deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
    )
    settings.register_profile("dev", common, max_examples=_EXAMPLES["dev"])
    settings.register_profile(
        "ci",
        common,
        max_examples=_EXAMPLES["ci"],
        derandomize=True,
        print_blob=True,
        database=None,
    )
    settings.register_profile("thorough", common, max_examples=_EXAMPLES["thorough"])
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev") or "dev"
    if name not in PROFILES:
        raise ValueError(f"HYPOTHESIS_PROFILE must be one of {PROFILES}, got {name!r}")
    settings.load_profile(name)
    return name


def budget(n: int) -> int:
    """``n`` examples under ``ci``, scaled by the loaded profile (``dev`` 0.3x, ``thorough`` 10x).

    Read at decoration time: use as ``@settings(max_examples=budget(20))``.
    """
    current = settings.default
    examples = current.max_examples if current is not None else _EXAMPLES["ci"]
    return max(2, math.ceil(n * examples / _EXAMPLES["ci"]))


# ------------------------------------------------------------------ shapes and arrays
@st.composite
def distinct_dims(draw: Any, names: Sequence[str], ranges: Any = None) -> dict[str, int]:
    """Sizes for named dimensions, pairwise distinct where the ranges allow it.

    ``ranges`` maps a name to ``(lo, hi)`` (default ``(1, 6)``).
    """
    ranges = ranges or {}
    dims: dict[str, int] = {}
    for name in names:
        lo, hi = ranges.get(name, (1, 6)) if isinstance(ranges, dict) else ranges(name)
        free = [v for v in range(lo, hi + 1) if v not in dims.values()] or list(range(lo, hi + 1))
        dims[name] = draw(st.sampled_from(free))
    return dims


def shapes(
    ndim: int = 2, min_side: int = 1, max_side: int = 6
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes whose sides are pairwise distinct (``(3, 5)``, never ``(4, 4)``)."""
    names = [f"d{i}" for i in range(ndim)]
    return distinct_dims(names, {n: (min_side, max_side) for n in names}).map(
        lambda d: tuple(d[n] for n in names)
    )


def _magnitudes(dtype: Any, low: float, high: float) -> st.SearchStrategy[float]:
    lo, hi = math.log10(low), math.log10(high)
    return st.builds(lambda s, e: s * 10.0**e, st.sampled_from([-1.0, 1.0]), st.floats(lo, hi))


def finite_arrays(
    shape: tuple[int, ...],
    dtype: Any = np.float64,
    low: float = 1e-2,
    high: float = 10.0,
    zeros: bool = True,
    kinks: Sequence[float] = (),
    unique: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """Finite floats with ``low <= |x| <= high`` (or exactly 0, or exactly a kink value).

    Controlled magnitudes keep finite differences meaningful; the numerical-safety tests
    pass ``high`` up to the float type's range.
    """
    elements = _magnitudes(dtype, low, high)
    specials = ([0.0] if zeros else []) + [float(k) for k in kinks]
    if specials:
        elements = st.one_of(elements, st.sampled_from(specials))
    elements = elements.map(lambda v: float(np.asarray(v, dtype=dtype)))
    return hnp.arrays(dtype, shape, elements=elements, unique=unique)


def upstream(shape: tuple[int, ...], dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Upstream gradients with unique entries (so a permutation of entries shows)."""
    return finite_arrays(shape, dtype, low=0.1, high=3.0, zeros=False, unique=True)


@st.composite
def probability_rows(
    draw: Any,
    shape: tuple[int, ...],
    dtype: Any = np.float64,
    low: float = 0.02,
    edges: bool = True,
) -> np.ndarray:
    """Rows of probabilities (non-negative, summing to 1 over the last axis).

    Entries are at least ``low`` before normalising, except that with ``edges`` some
    entries may be exactly 0 (and so some rows exactly one-hot, with a probability of 1):
    the clipping bounds of a cross-entropy.
    """
    raw = draw(hnp.arrays(np.float64, shape, elements=st.floats(low, 1.0)))
    if edges and raw.size:
        zeros = draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
        zeros &= draw(st.booleans())  # most examples keep every entry positive
        keep = np.argmax(raw, axis=-1)[..., None]  # one entry per row stays positive
        np.put_along_axis(zeros, keep, False, axis=-1)
        raw[zeros] = 0.0
    return (raw / raw.sum(axis=-1, keepdims=True)).astype(dtype)


@st.composite
def one_hot(draw: Any, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """One-hot rows over the last axis."""
    n = shape[-1]
    idx = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, n - 1)))
    return np.eye(n, dtype=dtype)[idx]


@st.composite
def tied_arrays(
    draw: Any, shape: tuple[int, ...], dtype: Any = np.float64, high: float = 10.0
) -> np.ndarray:
    """Finite floats where values repeat: entries drawn from a pool of about half as many
    distinct values (the ties of a max, a max-pool's window)."""
    size = int(np.prod(shape, dtype=np.int64))
    pool = draw(finite_arrays((max(1, size // 2),), dtype, high=high, zeros=False, unique=True))
    idx = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, pool.size - 1)))
    return pool[idx]


def input_array(
    inp: Input,
    shape: tuple[int, ...],
    dtype: Any,
    kinks: Sequence[float] = (),
    high: float = 10.0,
    with_ties: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """An array of an :class:`Input`'s kind (real inputs with repeated values if ``with_ties``)."""
    if inp.kind == "probabilities":
        return probability_rows(shape, dtype)
    if inp.kind == "one_hot":
        return one_hot(shape, dtype)
    if with_ties and not inp.constant:
        return tied_arrays(shape, dtype, high=high)
    return finite_arrays(shape, dtype, kinks=() if inp.constant else kinks, high=high)


@st.composite
def domain_dims(draw: Any, domain: Domain) -> dict[str, Any]:
    """Dimensions (pairwise distinct where possible) and constructor parameters of a
    domain, satisfying its ``where`` constraint."""
    dims: dict[str, Any] = draw(distinct_dims(domain.dim_names(), domain.dim_range))
    for key, choices in domain.params.items():
        dims[key] = draw(st.sampled_from(choices))
    assume(domain.accepts(dims))
    return dims


@st.composite
def cases(
    draw: Any,
    domain: Domain | type | None = None,
    dtype: Any = None,
    high: float = 10.0,
    with_ties: bool | None = None,
) -> Case:
    """A registered Diffable with valid inputs (of one domain or class, or any).

    ``dtype`` (default: drawn from float64 and float32) is the inputs' dtype; weights are
    drawn from a seeded generator, so examples replay exactly. Constructor parameters
    (``params``) are drawn, and ``where`` holds. ``with_ties`` (default: whether the
    domain declares ties) draws real inputs with repeated values in about half the cases.
    """
    chosen = _choose(draw, domain)
    dtype = (
        np.dtype(dtype)
        if dtype is not None
        else draw(st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)]))
    )
    dims = draw(domain_dims(chosen))
    ties = with_ties if with_ties is not None else chosen.ties is not None and draw(st.booleans())
    arrays = [
        draw(input_array(inp, shape, dtype, chosen.kinks, high, ties))
        for inp, shape in zip(chosen.inputs, chosen.shapes(dims))
    ]
    seed = draw(st.integers(0, 2**32 - 1))
    return chosen.build(dims, arrays, np.random.default_rng(seed))


def _choose(draw: Any, domain: Domain | type | None) -> Domain:
    if domain is None:
        return draw(st.sampled_from(domains()))
    if isinstance(domain, Domain):
        return domain
    found = domains(domain)
    if not found:
        raise LookupError(f"no input domain registered for {domain.__name__}")
    return draw(st.sampled_from(found))


# ------------------------------------------------------------------ models and graphs
def _float64_dense(n_in: int, n_out: int, rng: np.random.Generator) -> layers.Dense:
    layer = layers.Dense(n_in, n_out, initializer="xavier", seed=rng)
    layer.w, layer.b = (
        Variable(layer.w.astype(np.float64)),
        Variable(rng.normal(0, 0.1, (1, n_out))),
    )
    return layer


_ACTIVATIONS = activations.ACTIVATIONS


@dataclass
class ModelCase:
    """A random SequentialModel with data and a loss, for ``check_model``."""

    model: SequentialModel
    x: np.ndarray
    y: np.ndarray
    loss: Any

    def __repr__(self) -> str:
        names = " -> ".join(repr(layer) for layer in self.model.layers)
        return f"ModelCase({names}; {self.loss!r}; x {self.x.shape})"


@st.composite
def sequential_models(
    draw: Any, max_layers: int = 3, max_width: int = 5, dtype: Any = np.float32
) -> ModelCase:
    """A SequentialModel of Dense layers and activations, data, and a matching loss.

    Weights have ``dtype`` (float32 by default, as the library's default); ``check_model``
    evaluates a float64 copy.
    """
    n_dense = draw(st.integers(1, max_layers))
    widths = draw(st.lists(st.integers(1, max_width), min_size=n_dense + 1, max_size=n_dense + 1))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    stack: list[Any] = []
    for i in range(n_dense):
        dense = layers.Dense(widths[i], widths[i + 1], initializer="xavier", seed=rng)
        dense.w = Variable(dense.w.astype(dtype))
        dense.b = Variable(rng.normal(0, 0.1, (1, widths[i + 1])).astype(dtype))
        stack.append(dense)
        if i < n_dense - 1:
            stack.append(_ACTIVATIONS[draw(st.sampled_from(["relu", "leaky_relu", "sigmoid"]))]())
    batch = draw(st.integers(1, 4))
    x = draw(finite_arrays((batch, widths[0]), np.dtype(dtype), low=0.05, high=2.0))
    n_out = widths[-1]
    loss_kind = draw(st.sampled_from(["mse", "cce", "cce_logits"]))
    if loss_kind == "mse":
        y = draw(finite_arrays((batch, n_out), np.dtype(dtype), high=2.0))
        loss: Any = losses.MeanSquaredError()
    else:
        y = draw(one_hot((batch, n_out), np.dtype(dtype)))
        if loss_kind == "cce":
            stack.append(activations.Softmax())
            loss = losses.CategoricalCrossEntropy()
        else:
            loss = losses.CategoricalCrossEntropy(from_logits=True)
    return ModelCase(SequentialModel(stack), x, y, loss)


@dataclass
class Graph:
    """A random recorded graph: ``fn()`` rebuilds it and returns the scalar loss.

    ``sources`` are the float64 input and every weight; ``ops`` describes the graph.
    ``unused`` holds the weights of a layer the graph never calls (their gradient is None).
    """

    fn: Callable[[], Any]
    sources: list[np.ndarray]
    names: list[str]
    ops: list[str] = field(default_factory=list)
    unused: list[np.ndarray] = field(default_factory=list)

    def __repr__(self) -> str:
        return "Graph(" + "; ".join(self.ops) + ")"


class _GraphBuilder:
    """Grows a random graph op by op: each method draws one kind of op and records it."""

    def __init__(self, draw: Any, rng: np.random.Generator, x: np.ndarray, max_width: int) -> None:
        self.draw, self.rng, self.max_width = draw, rng, max_width
        self.x = x
        self.plan: list[tuple[Any, tuple[int, ...]]] = []  # (layer, input positions)
        self.widths = [x.shape[1]]
        self.denses: list[layers.Dense] = []
        self.ops: list[str] = []

    def _call(self, layer: Any, args: tuple[int, ...], width: int, text: str) -> None:
        self.plan.append((layer, args))
        self.widths.append(width)
        self.ops.append(f"t{len(self.widths) - 1} = {text}")

    def kinds(self) -> list[str]:
        kinds = ["dense", "activation"] + (["add"] if self.same_widths() else []) + ["concat"]
        if self.denses:
            kinds += ["reuse", "reuse"]  # the tape's hardest case: one instance, several calls
        return kinds

    def same_widths(self) -> list[tuple[int, int]]:
        w = self.widths
        return [(i, j) for i in range(len(w)) for j in range(i, len(w)) if w[i] == w[j]]

    def dense(self, src: int) -> None:
        n_out = self.draw(st.integers(1, self.max_width))
        dense = _float64_dense(self.widths[src], n_out, self.rng)
        self.denses.append(dense)
        self._call(dense, (src,), n_out, f"{dense!r}(t{src}) [dense {len(self.denses) - 1}]")

    def reuse(self, src: int) -> None:
        dense = self.draw(st.sampled_from(list(self.denses)))
        fits = [i for i, w in enumerate(self.widths) if w == dense.input_size]
        if not fits:
            self.dense(src)
            return
        src = self.draw(st.sampled_from(fits))
        text = f"{dense!r}(t{src}) [reused dense {self.denses.index(dense)}]"
        self._call(dense, (src,), dense.output_size, text)

    def activation(self, src: int) -> None:
        name = self.draw(st.sampled_from(sorted(_ACTIVATIONS)))
        self._call(_ACTIVATIONS[name](), (src,), self.widths[src], f"{name}(t{src})")

    def add(self, src: int) -> None:
        i, j = self.draw(st.sampled_from(self.same_widths()))
        self._call(layers.Add(), (i, j), self.widths[i], f"Add(t{i}, t{j})")

    def concat(self, src: int) -> None:
        j = self.draw(st.integers(0, len(self.widths) - 1))
        width = self.widths[src] + self.widths[j]
        self._call(layers.Concatenate(), (src, j), width, f"Concatenate(t{src}, t{j})")

    def finish(self) -> Graph:
        target = self.rng.normal(0.0, 1.0, (self.x.shape[0], self.widths[-1]))
        loss = losses.MeanSquaredError()
        self.ops.append(f"loss = MSE(t{len(self.widths) - 1})")
        x, plan = self.x, list(self.plan)

        def fn() -> Any:
            tensors: list[Any] = [x]
            for layer, args in plan:
                tensors.append(layer(*[tensors[a] for a in args]))
            return loss(tensors[-1], target)

        spare = _float64_dense(1, 1, self.rng)
        sources = [x] + [w for d in self.denses for w in d.weights]
        names = ["x"] + [f"dense {i} {'wb'[j]}" for i in range(len(self.denses)) for j in range(2)]
        return Graph(fn, sources, names, self.ops, unused=list(spare.weights))


@st.composite
def graphs(draw: Any, max_ops: int = 6, max_width: int = 4) -> Graph:
    """A random DAG of layers: branches, Add/Concatenate merges, reused Dense instances.

    Every tensor is float64 (batch, width). The graph ends in a loss of its last tensor;
    earlier tensors may feed several consumers, and a Dense may be called several times.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    batch = draw(st.integers(1, 3))
    width0 = draw(st.integers(1, max_width))
    builder = _GraphBuilder(draw, rng, rng.normal(0.0, 1.0, (batch, width0)), max_width)
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(builder.kinds()))
        src = draw(st.integers(0, len(builder.widths) - 1))
        getattr(builder, kind)(src)
    return builder.finish()
