"""Input domains: each Diffable declares once what valid inputs look like.

A :class:`Domain` says how to build an instance from named dimensions and what each
input is: its symbolic shape (``("batch", "in")``), its kind (``"real"``,
``"probabilities"``, ``"one_hot"``), whether it is a constant (labels), plus values where
the derivative has a kink. From a domain, :func:`sample_case` (NumPy) and
``beras.testing.strategies.cases`` (hypothesis) draw ready-to-check cases, and the test
suite checks that every public Diffable in ``beras`` has one.

Declaring the domain of a new elementwise activation::

    class Cube(beras.activations.Activation):
        def forward(self, x):
            return x ** 3

        def get_input_gradients(self):
            return [3 * self.inputs[0] ** 2]

    register_domain(Cube, [Input(("batch", "n"))])
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Diffable
from ._compare import KinkConvention

__all__ = [
    "Case",
    "Domain",
    "Input",
    "domains",
    "library_diffables",
    "register_domain",
    "registered_conventions",
    "sample_case",
    "tied_groups",
    "unregister_domain",
    "unregistered_diffables",
]

KINDS = ("real", "probabilities", "one_hot")
#: Default ranges of named dimensions (inclusive); shapes stay small so checks are fast.
DEFAULT_DIMS: dict[str, tuple[int, int]] = {"batch": (1, 4)}
OTHER_DIM = (1, 6)


@dataclass(frozen=True)
class Input:
    """One input of a Diffable: symbolic shape, kind, and whether it is differentiated.

    ``kind`` is ``"real"`` (finite floats), ``"probabilities"`` (rows in ``[0, 1]`` that
    sum to 1; differentiated inside the bounds ``(0, 1)``) or ``"one_hot"``. Dimensions
    are names (drawn per case, distinct from each other) or fixed ints.
    """

    shape: tuple[str | int, ...]
    kind: str = "real"
    constant: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Input: kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def bounds(self) -> tuple[float, float] | None:
        return (0.0, 1.0) if self.kind == "probabilities" else None


@dataclass(frozen=True)
class Domain:
    """How to build a Diffable and what its valid inputs are.

    Attributes:
        cls: the Diffable class the domain belongs to.
        factory: ``factory(dims, rng) -> instance``; ``dims`` maps each dimension name to
            its drawn size, ``rng`` is a seeded ``np.random.Generator`` for weights.
        inputs: one :class:`Input` per positional input.
        dims: ranges ``(lo, hi)`` of named dimensions (others: ``(1, 6)``).
        kinks: input values where the derivative is one-sided (e.g. ``0.0`` for ReLU);
            strategies place some inputs exactly there.
        kink_values: derivative values the Diffable's documented convention returns at
            a kink; ``check_gradients`` accepts them at detected kinks for every instance
            of ``cls`` (unless told otherwise) and lists the entries they accepted.
        convention: whose convention ``kink_values`` is, for the report.
        extreme: the largest safe input magnitude, as a fraction of the float type's
            decimal range (``0.99``: any finite magnitude; ``0.3`` for a matmul).
        name: a label for reports and test ids.
        params: constructor parameters drawn per case: ``{"strides": (1, 2)}``; the
            drawn values reach the factory in ``dims`` beside the dimensions.
        where: ``where(dims) -> bool`` over the drawn dimensions and parameters; cases
            where it is False are not drawn (e.g. a kernel no larger than the padded
            input).
        ties: ``ties(layer, inputs) -> [(input index, flat indices), ...]``: the groups
            of tied entries a max breaks (see :func:`tied_groups`); ``check_gradients``
            checks each group's common direction, and strategies draw repeated values
            for such a domain.
    """

    cls: type
    factory: Callable[[Mapping[str, int], np.random.Generator], Diffable]
    inputs: tuple[Input, ...]
    dims: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    kinks: tuple[float, ...] = ()
    kink_values: tuple[float, ...] = ()
    extreme: float = 0.99
    name: str = ""
    convention: str = ""
    params: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    where: Callable[[Mapping[str, Any]], bool] | None = None
    ties: Callable[[Any, Sequence[np.ndarray]], Sequence[tuple[int, Any]]] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        name = self.name or self.cls.__name__
        if not all(isinstance(i, Input) for i in self.inputs):
            raise TypeError(f"Domain {name}: inputs must be Input objects, got {self.inputs!r}")
        for dim, bounds in dict(self.dims).items():
            lo, hi = bounds
            if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi):
                raise ValueError(
                    f"Domain {name}: dims[{dim!r}] must be (lo, hi) ints with 0 <= lo <= hi, got {bounds!r}"
                )
        params = {k: tuple(v) for k, v in dict(self.params).items()}
        for key, choices in params.items():
            if not choices:
                raise ValueError(f"Domain {name}: parameter {key!r} has no choices")
        for what in ("where", "ties"):
            if getattr(self, what) is not None and not callable(getattr(self, what)):
                raise TypeError(f"Domain {name}: {what} must be a function or None")
        if not 0.0 < float(self.extreme) <= 1.0:
            raise ValueError(f"Domain {name}: extreme must be in (0, 1], got {self.extreme!r}")
        set_(self, "dims", dict(self.dims))
        set_(self, "params", params)
        set_(self, "kinks", tuple(float(k) for k in self.kinks))
        set_(self, "kink_values", tuple(float(k) for k in self.kink_values))
        set_(self, "extreme", float(self.extreme))
        set_(self, "inputs", tuple(self.inputs))

    def kink_convention(self) -> KinkConvention:
        """The domain's kink convention (possibly without values)."""
        return KinkConvention(self.kink_values, self.convention or f"{self.name}'s convention")

    def accepts(self, dims: Mapping[str, Any]) -> bool:
        """Whether drawn dimensions and parameters satisfy ``where``."""
        return self.where is None or bool(self.where(dims))

    def dim_names(self) -> list[str]:
        names: list[str] = []
        for inp in self.inputs:
            for d in inp.shape:
                if isinstance(d, str) and d not in names:
                    names.append(d)
        return names + [d for d in self.dims if d not in names]

    def dim_range(self, name: str) -> tuple[int, int]:
        return self.dims.get(name, DEFAULT_DIMS.get(name, OTHER_DIM))

    def shapes(self, dims: Mapping[str, Any]) -> list[tuple[int, ...]]:
        return [
            tuple(dims[d] if isinstance(d, str) else int(d) for d in inp.shape)
            for inp in self.inputs
        ]

    def build(
        self, dims: Mapping[str, Any], arrays: Sequence[np.ndarray], rng: np.random.Generator
    ) -> Case:
        """A :class:`Case` from drawn dimensions and input arrays."""
        layer = self.factory(dict(dims), rng)
        return Case(self, layer, list(arrays), dict(dims))


@dataclass
class Case:
    """A Diffable instance with valid inputs, ready for :func:`check_gradients`."""

    domain: Domain
    diffable: Diffable
    inputs: list[np.ndarray]
    dims: dict[str, Any]

    @property
    def constants(self) -> tuple[int, ...]:
        return tuple(k for k, inp in enumerate(self.domain.inputs) if inp.constant)

    @property
    def bounds(self) -> dict[int, tuple[float, float]]:
        return {k: inp.bounds for k, inp in enumerate(self.domain.inputs) if inp.bounds is not None}

    def check(self, **options: Any) -> Any:
        """``check_gradients`` on this case (options are passed on)."""
        from ._check import check_gradients

        options.setdefault("kink_values", self.domain.kink_convention())
        options.setdefault("ties", self.domain.ties or False)
        return check_gradients(
            self.diffable, *self.inputs, constants=self.constants, bounds=self.bounds, **options
        )

    def __repr__(self) -> str:
        shapes = ", ".join(str(np.shape(x)) for x in self.inputs)
        return f"Case({self.diffable!r}, inputs {shapes})"


_DOMAINS: list[Domain] = []
#: The keyword options of ``register_domain`` (fields of :class:`Domain`).
DOMAIN_OPTIONS = (
    "dims",
    "params",
    "where",
    "kinks",
    "kink_values",
    "convention",
    "ties",
    "extreme",
    "name",
)


def register_domain(
    cls: type,
    inputs: Sequence[Input],
    factory: Callable[[Mapping[str, Any], np.random.Generator], Diffable] | None = None,
    **options: Any,
) -> Domain:
    """Declare the input domain of a Diffable class (several per class are allowed).

    Args:
        cls: the Diffable subclass.
        inputs: one :class:`Input` per positional input of ``forward``.
        factory: ``factory(dims, rng) -> instance``; default ``cls()``.
        **options: the keyword fields of :class:`Domain`, validated there: ``dims``
            (ranges of named dimensions, e.g. ``{"in": (1, 5)}``), ``params``
            (constructor parameters drawn per case), ``where`` (a constraint on the
            drawn dimensions and parameters), ``kinks``, ``kink_values``,
            ``convention``, ``ties`` (a tie detector, see :func:`tied_groups`),
            ``extreme`` and ``name`` (default the class name).

    Returns the registered :class:`Domain`.
    """
    if not (isinstance(cls, type) and issubclass(cls, Diffable)):
        raise TypeError(f"register_domain expected a Diffable subclass, got {cls!r}")
    unknown = sorted(set(options) - set(DOMAIN_OPTIONS))
    if unknown:
        raise TypeError(
            f"register_domain({cls.__name__}): unexpected options {unknown}; "
            f"expected some of {', '.join(DOMAIN_OPTIONS)}"
        )
    options.setdefault("name", cls.__name__)
    domain = Domain(
        cls=cls,
        factory=factory if factory is not None else (lambda dims, rng: cls()),
        inputs=tuple(inputs),
        **options,
    )
    _DOMAINS.append(domain)
    return domain


def unregister_domain(domain: Domain) -> None:
    """Remove a registered domain (a test's temporary registration, for instance)."""
    if domain not in _DOMAINS:
        raise LookupError(f"domain {domain.name!r} is not registered")
    _DOMAINS.remove(domain)


def domains(cls: type | None = None) -> list[Domain]:
    """The registered domains (of one class, if given)."""
    return [d for d in _DOMAINS if cls is None or d.cls is cls]


def registered_conventions(cls: type) -> tuple[KinkConvention | None, Any]:
    """The kink convention (every domain's values) and tie detector registered for ``cls``."""
    found = domains(cls)
    values = tuple(dict.fromkeys(v for d in found for v in d.kink_values))
    described = [d.convention for d in found if d.kink_values and d.convention]
    about = "; ".join(dict.fromkeys(described)) or f"{cls.__name__}'s registered convention"
    convention = KinkConvention(values, about) if values else None
    ties = next((d.ties for d in found if d.ties is not None), None)
    return convention, ties


def tied_groups(x: np.ndarray, windows: np.ndarray) -> list[np.ndarray]:
    """Groups of entries that tie for the maximum of their window (two entries or more).

    ``windows`` has ``x``'s shape and labels each entry with its window (a max-pool's
    pooling window, a row for a max over the last axis); entries labelled ``-1`` belong
    to none. Returns one array of flat indices per window whose maximum is shared: the
    kinks a max breaks by a convention (the first maximum, as NumPy's argmax).

    >>> tied_groups(np.array([[1.0, 3.0, 3.0]]), np.zeros((1, 3), dtype=int))
    [array([1, 2])]
    """
    flat_x, flat_w = np.asarray(x).ravel(), np.asarray(windows).ravel()
    groups = []
    for label in np.unique(flat_w[flat_w >= 0]):
        members = np.flatnonzero(flat_w == label)
        top = members[flat_x[members] == flat_x[members].max()]
        if top.size >= 2:
            groups.append(top)
    return groups


# ------------------------------------------------------------------ NumPy sampling
def _draw_dims(domain: Domain, rng: np.random.Generator, tries: int = 200) -> dict[str, Any]:
    """Distinct sizes for the named dimensions where the ranges allow it, parameters drawn
    from their choices, redrawn until ``where`` holds."""
    for _ in range(tries):
        dims: dict[str, Any] = {}
        for name in domain.dim_names():
            lo, hi = domain.dim_range(name)
            sizes = [v for v in dims.values() if isinstance(v, int)]
            choices = [v for v in range(lo, hi + 1) if v not in sizes] or list(range(lo, hi + 1))
            dims[name] = int(rng.choice(choices))
        for key, values in domain.params.items():
            dims[key] = values[int(rng.integers(len(values)))]
        if domain.accepts(dims):
            return dims
    raise ValueError(f"{domain.name}: no dimensions satisfying `where` in {tries} draws")


def sample_array(
    kind: str,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype: Any = np.float64,
    kinks: Sequence[float] = (),
    with_ties: bool = False,
) -> np.ndarray:
    """One input of the given kind (NumPy sampler; the hypothesis one is in ``strategies``).

    ``with_ties``: real values drawn from a pool of about half as many distinct values,
    so entries repeat (a max's ties).
    """
    if kind == "one_hot":
        n = shape[-1]
        idx = rng.integers(0, n, shape[:-1])
        return np.eye(n, dtype=dtype)[idx]
    if kind == "probabilities":
        p = rng.uniform(0.05, 1.0, shape)
        return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)
    x = rng.normal(0.0, 2.0, shape)
    if with_ties and x.size > 1:
        pool = rng.normal(0.0, 2.0, max(1, x.size // 2))
        x = pool[rng.integers(0, pool.size, shape)]
    if kinks and x.size:
        mask = rng.random(shape) < 0.2
        x[mask] = rng.choice(np.asarray(kinks), int(mask.sum()))
    return x.astype(dtype)


def sample_case(
    domain: Domain | type,
    rng: int | np.random.Generator | None = 0,
    dtype: Any = np.float64,
    with_ties: bool | None = None,
) -> Case:
    """A random :class:`Case` of a domain (or of a class's first registered domain).

    ``with_ties`` (default: whether the domain declares ties) draws repeated values.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if isinstance(domain, type):
        found = domains(domain)
        if not found:
            raise LookupError(
                f"no input domain registered for {domain.__name__}; use register_domain"
            )
        domain = found[0]
    dims = _draw_dims(domain, rng)
    arrays = [
        sample_array(
            inp.kind,
            shape,
            rng,
            dtype,
            domain.kinks if inp.kind == "real" and not inp.constant else (),
            with_ties=(domain.ties is not None) if with_ties is None else with_ties,
        )
        for inp, shape in zip(domain.inputs, domain.shapes(dims))
    ]
    return domain.build(dims, arrays, rng)


# ------------------------------------------------------------------ discovery
def _excluded() -> dict[type, str]:
    from ..model import Model, SequentialModel

    # Models are Diffable containers: the tape records their layers, not the model, and
    # their get_*_gradients raise by design. They are checked end to end by check_model.
    return {
        Model: "a container differentiated through its layers (check_model)",
        SequentialModel: "a container differentiated through its layers (check_model)",
    }


def library_diffables() -> list[type]:
    """Every public, concrete Diffable subclass defined in ``beras`` (modules imported first)."""
    import beras

    for info in pkgutil.walk_packages(beras.__path__, "beras."):
        if info.name.startswith("beras.testing"):
            continue
        importlib.import_module(info.name)
    found, stack = [], list(Diffable.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        module = cls.__module__
        if not (module == "beras" or module.startswith("beras.")) or module.startswith(
            "beras.testing"
        ):
            continue
        if cls.__name__.startswith("_") or inspect.isabstract(cls):
            continue
        found.append(cls)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def unregistered_diffables() -> list[type]:
    """Public Diffables in ``beras`` with neither a registered domain nor an exclusion."""
    excluded = _excluded()
    return [c for c in library_diffables() if not domains(c) and c not in excluded]


# ------------------------------------------------------------------ the library's domains
X = Input(("batch", "n"))
HANDOUT = "the course handout: gradient 0 at exactly 0"


def _register_layers() -> None:
    from ..layers import Add, Concatenate, Dense

    x = X
    register_domain(
        Dense,
        [Input(("batch", "in"))],
        lambda d, rng: Dense(d["in"], d["out"], seed=rng),
        dims={"in": (1, 5), "out": (1, 5)},
        extreme=0.3,
    )
    # a sum of k inputs must stay finite: |x| <= max / k
    register_domain(Add, [x, x], lambda d, rng: Add(), extreme=0.97, name="Add(2 inputs)")
    register_domain(Add, [x, x, x], lambda d, rng: Add(), extreme=0.97, name="Add(3 inputs)")
    register_domain(
        Concatenate,
        [Input(("batch", "n1")), Input(("batch", "n2"))],
        lambda d, rng: Concatenate(),
        name="Concatenate(2 inputs)",
        dims={"n1": (1, 4), "n2": (1, 4)},
    )
    register_domain(
        Concatenate,
        [Input(("batch", "n1")), Input(("batch", "n2")), Input(("batch", "n3"))],
        lambda d, rng: Concatenate(),
        name="Concatenate(3 inputs)",
        dims={"n1": (1, 4), "n2": (1, 4), "n3": (1, 4)},
    )


def _register_activations() -> None:
    from ..activations import LeakyReLU, ReLU, Sigmoid, Softmax

    x = X
    # The course handout's LeakyReLU has gradient 0 at exactly 0, outside [alpha, 1].
    register_domain(
        LeakyReLU,
        [x],
        lambda d, rng: LeakyReLU(),
        kinks=(0.0,),
        kink_values=(0.0,),
        convention=HANDOUT,
        name="LeakyReLU(0.3)",
    )
    register_domain(
        LeakyReLU,
        [x],
        lambda d, rng: LeakyReLU(0.01),
        kinks=(0.0,),
        kink_values=(0.0,),
        convention=HANDOUT,
        name="LeakyReLU(0.01)",
    )
    register_domain(ReLU, [x], kinks=(0.0,))
    register_domain(Sigmoid, [x])
    register_domain(Softmax, [x])


def _register_losses() -> None:
    from ..losses import CategoricalCrossEntropy, MeanSquaredError

    x = X
    register_domain(MeanSquaredError, [x, Input(("batch", "n"), constant=True)], extreme=0.45)
    register_domain(
        CategoricalCrossEntropy,
        [Input(("batch", "n"), "probabilities"), Input(("batch", "n"), "one_hot", constant=True)],
        name="CategoricalCrossEntropy",
    )
    register_domain(
        CategoricalCrossEntropy,
        [x, Input(("batch", "n"), "one_hot", constant=True)],
        lambda d, rng: CategoricalCrossEntropy(from_logits=True),
        name="CategoricalCrossEntropy(from_logits)",
    )


# Convolution-family layers: (batch, height, width, channels) inputs, their geometry
# (kernel or pool size, strides, padding) drawn per case as parameters.
IMAGE = Input(("batch", "h", "w", "c"))
IMAGE_DIMS = {"h": (1, 6), "w": (1, 6), "c": (1, 3)}
WINDOWS = ((1, 1), (2, 2), (3, 3), (2, 3), (3, 1))
STRIDES = ((1, 1), (2, 2), (1, 2), (3, 3))


def window_fits(window_key: str) -> Callable[[Mapping[str, Any]], bool]:
    """``where`` for a windowed layer: with "valid" padding the window fits the input."""

    def fits(d: Mapping[str, Any]) -> bool:
        kh, kw = d[window_key]
        return d["padding"] == "same" or (kh <= d["h"] and kw <= d["w"])

    return fits


def max_pool_ties(layer: Any, inputs: Sequence[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """The tie groups of a MaxPool2D: the flat indices of input entries sharing a pooling
    window's maximum (two or more).

    Overlapping windows (``strides < pool_size``) can share tied entries; such groups are
    merged, so every window's maxima lie wholly inside one group or outside all of them.
    Moving a merged group together then moves each window's maximum linearly, and the
    check along it is exact (a partial group would make it a sum of kinks of both signs).
    """
    x = np.asarray(inputs[0])
    (top, bottom), (left, right) = layer._pads(x.shape)
    widths = ((0, 0), (top, bottom), (left, right), (0, 0))
    xp = np.pad(x, widths, constant_values=-np.inf)
    ids = np.pad(np.arange(x.size).reshape(x.shape), widths, constant_values=-1)
    (ph, pw), (sh, sw) = layer.pool_size, layer.strides
    _, out_h, out_w, _ = layer.compute_output_shape(x.shape)
    groups: list[set[int]] = []
    for i in range(out_h):
        for j in range(out_w):
            rows, cols = slice(i * sh, i * sh + ph), slice(j * sw, j * sw + pw)
            win = xp[:, rows, cols, :].transpose(0, 3, 1, 2).reshape(x.shape[0] * x.shape[3], -1)
            idx = ids[:, rows, cols, :].transpose(0, 3, 1, 2).reshape(win.shape)
            for values, members in zip(win, idx):
                top_ = members[(values == values.max()) & (members >= 0)]
                if top_.size >= 2:
                    groups.append(set(top_.tolist()))
    merged: list[set[int]] = []
    for group in groups:
        overlapping = [m for m in merged if m & group]
        for m in overlapping:
            merged.remove(m)
            group |= m
        merged.append(group)
    return [(0, np.array(sorted(m))) for m in merged]


def _conv2d(d: Mapping[str, Any], rng: np.random.Generator) -> Diffable:
    from ..layers import Conv2D

    layer = Conv2D(
        d["f"],
        d["kernel"],
        strides=d["strides"],
        padding=d["padding"],
        use_bias=d["use_bias"],
        seed=rng,
    )
    layer.build((None, d["h"], d["w"], d["c"]))
    if layer.bias is not None:  # a non-zero bias, so a wrong bias gradient shows
        layer.bias[...] = rng.normal(size=layer.bias.shape)
    return layer


def _batch_norm(*feature_dims: str) -> Callable[[Mapping[str, Any], np.random.Generator], Diffable]:
    """A BatchNormalization factory for inputs ``(batch, *feature_dims)``."""

    def make(d: Mapping[str, Any], rng: np.random.Generator) -> Diffable:
        from ..layers import BatchNormalization

        layer = BatchNormalization(center=d["center"], scale=d["scale"])
        layer.build((None, *(d[k] for k in feature_dims)))
        return _randomised_statistics(layer, rng)

    return make


def _randomised_statistics(layer: Any, rng: np.random.Generator) -> Diffable:
    # statistics and scales away from their initial 0/1, so every term shows
    n = layer.moving_mean.shape
    layer.moving_mean[...] = rng.normal(size=n)
    layer.moving_variance[...] = rng.uniform(0.5, 2.0, size=n)
    if layer.gamma is not None:
        layer.gamma[...] = rng.uniform(0.5, 1.5, size=n)
    if layer.beta is not None:
        layer.beta[...] = rng.normal(size=n)
    return layer


def _register_cnn() -> None:
    from ..layers import (
        AveragePooling2D,
        BatchNormalization,
        Conv2D,
        Dropout,
        Flatten,
        MaxPool2D,
    )

    register_domain(
        Conv2D,
        [IMAGE],
        _conv2d,
        dims={**IMAGE_DIMS, "f": (1, 3)},
        params={
            "kernel": WINDOWS,
            "strides": STRIDES,
            "padding": ("valid", "same"),
            "use_bias": (True, False),
        },
        where=window_fits("kernel"),
        extreme=0.3,
    )
    pooling = {"pool": WINDOWS, "strides": (None, *STRIDES), "padding": ("valid", "same")}
    register_domain(
        MaxPool2D,
        [IMAGE],
        lambda d, rng: MaxPool2D(d["pool"], d["strides"], d["padding"]),
        dims=IMAGE_DIMS,
        params=pooling,
        where=window_fits("pool"),
        ties=max_pool_ties,
    )
    register_domain(
        AveragePooling2D,
        [IMAGE],
        lambda d, rng: AveragePooling2D(d["pool"], d["strides"], d["padding"]),
        dims=IMAGE_DIMS,
        params=pooling,
        where=window_fits("pool"),
    )
    register_domain(Flatten, [IMAGE], lambda d, rng: Flatten(), dims=IMAGE_DIMS)
    register_domain(
        Dropout,
        [X],
        lambda d, rng: Dropout(d["rate"], seed=rng),
        params={"rate": (0.0, 0.25, 0.5, 0.9)},
    )
    norm = {"center": (True, False), "scale": (True, False)}
    register_domain(
        BatchNormalization,
        [IMAGE],
        _batch_norm("h", "w", "c"),
        dims={"batch": (2, 4), **IMAGE_DIMS},
        params=norm,
        name="BatchNormalization(images)",
    )
    register_domain(
        BatchNormalization,
        [X],
        _batch_norm("n"),
        dims={"batch": (2, 4)},
        params=norm,
        name="BatchNormalization(features)",
    )


def _register_reshape() -> None:
    from ..layers import Reshape

    image = Input(("batch", "h", "w"))
    register_domain(
        Reshape,
        [image],
        lambda d, rng: Reshape((d["w"], d["h"], 1)),
        name="Reshape(transposed sides)",
    )
    register_domain(Reshape, [image], lambda d, rng: Reshape((-1,)), name="Reshape(-1)")
    register_domain(
        Reshape,
        [Input(("batch", "n"))],
        lambda d, rng: Reshape((1, -1, 1)),
        name="Reshape(1, -1, 1)",
    )


_register_layers()
_register_reshape()
_register_activations()
_register_losses()
_register_cnn()
