"""The building blocks: Tensor, Variable, Callable, Weighted and Diffable.

Every derivative in Beras has three views (docs/architecture.md):

1. ``get_input_gradients()`` / ``get_weight_gradients()``: the local Jacobians of the
   course stencil (the teaching view);
2. ``compose_input_gradients(J)`` / ``compose_weight_gradients(J)``: vector-Jacobian
   products with an upstream gradient ``J`` (the fast path the tape uses);
3. ``GradientTape.gradient``: the end-to-end gradient through a recorded graph.

The default compositions below implement the stencil's per-sample semantics
(``g[b] @ J[b]`` for inputs, ``sum_b w_grad[b] * J[b]`` for weights) batched with
matmul/einsum, so a new layer is correct (if not optimal) with only the local
Jacobians; the library's layers override them with the cheapest exact product.

Three declarations on a Diffable class tell the tape and the verification layer more:

* ``input_gradient_layout``: how ``get_input_gradients()`` composes with ``J``;
* ``has_local_jacobian = False``: the layer materialises no local Jacobian (Conv2D's
  would be ``(B·H·W·C) × (B·H'·W'·F)``); its ``get_*_gradients`` raise
  :class:`NoLocalJacobianError`, it overrides both ``compose_*`` methods, and
  ``beras.testing`` checks those products against finite differences directly;
* ``stochastic = True``: every random draw of ``forward`` comes from the instance's
  ``rng`` attribute (a ``np.random.Generator``), so restoring ``rng``'s state replays the
  same noise; ``beras.testing`` holds the randomness fixed that way during a check.

A ``forward`` with a ``training`` parameter has a training mode (Dropout,
BatchNormalization): ``layer(x, training=True)`` passes it through, and ``training`` is
not an input (not in ``inputs``/``input_dict``). Layers without one ignore the flag, so
models pass ``training`` to every layer, as Keras does.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

__all__ = ["Callable", "Diffable", "NoLocalJacobianError", "Tensor", "Variable", "Weighted"]

_NUMERIC_KINDS = frozenset("biuf")


class Tensor(np.ndarray):
    """A NumPy array with a ``trainable`` flag (default True)."""

    trainable: bool

    def __new__(cls, input_array: Any) -> Tensor:
        if isinstance(input_array, Tensor):
            return input_array
        arr = np.asarray(input_array)
        if arr.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(
                f"{cls.__name__} expected numeric data (bool, int or float), got an array of "
                f"dtype {arr.dtype} (kind {arr.dtype.kind!r}); convert it first, e.g. "
                f"np.asarray(data, dtype=np.float32)"
            )
        obj = arr.view(cls)
        obj.trainable = True
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        # Called for every view, slice and ufunc result: keep it minimal.
        self.trainable = getattr(obj, "trainable", True)

    def assign(self, value: Any) -> None:
        """Write ``value`` into this tensor in place (``self[...] = value``)."""
        value = np.asarray(value)
        try:
            fits = np.broadcast_shapes(value.shape, self.shape) == self.shape
        except ValueError:  # not broadcastable at all
            fits = False
        if not fits:
            raise ValueError(
                f"{type(self).__name__}.assign expected a value of shape {self.shape}, "
                f"got {value.shape}"
            )
        self[...] = value


class Variable(Tensor):
    """A parameter: a Tensor the optimizers update in place.

    ``Variable(value, name="w", trainable=True)``: the layer that creates a weight names
    it (as Keras's ``add_weight(name=...)``); checkpoints store weights under their names.
    A non-trainable Variable (BatchNormalization's moving statistics) is saved and loaded
    with the others but never receives a gradient.
    """

    #: The weight's name within its layer (``"w"``, ``"kernel"``, ...); ``None`` if unnamed.
    name: str | None = None

    def __new__(
        cls, input_array: Any, name: str | None = None, trainable: bool | None = None
    ) -> Variable:
        obj: Any = super().__new__(cls, input_array)  # the same object if already a Tensor
        if name is not None:
            obj.name = str(name)
        if trainable is not None:
            obj.trainable = bool(trainable)
        return obj


class Callable(ABC):
    """Anything with a ``forward``; calling it returns ``Tensor(self.forward(...))``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        return Tensor(self.forward(*args, **kwargs))

    @abstractmethod
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation this object performs."""


class Weighted(ABC):
    """Anything that owns weights."""

    @property
    @abstractmethod
    def weights(self) -> list[Tensor]:
        """Every weight, in a fixed order."""

    @property
    def trainable_variables(self) -> list[Tensor]:
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_variables(self) -> list[Tensor]:
        return [w for w in self.weights if not w.trainable]

    @property
    def trainable(self) -> bool:
        return any(w.trainable for w in self.weights)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for w in self.weights:
            w.trainable = bool(value)


class NoLocalJacobianError(NotImplementedError):
    """Raised by ``get_*_gradients`` of a layer that declares ``has_local_jacobian = False``."""


# What Diffable.__call__ records before forward runs (restored if forward raises).
_BOOKKEEPING = ("argnames", "input_dict", "inputs")


class _ForwardSpec:
    """``forward``'s input parameter names, its ``*args`` name, and whether it takes ``training``."""

    __slots__ = ("names", "takes_training", "varargs")

    def __init__(self, cls: type[Callable]) -> None:
        params = list(inspect.signature(cls.forward).parameters.values())[1:]  # drop self
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.takes_training = any(p.name == "training" for p in params)
        self.names = tuple(
            p.name
            for p in params
            if p.name != "training" and (p.kind in kinds or p.kind == p.KEYWORD_ONLY)
        )
        self.varargs = next((p.name for p in params if p.kind == p.VAR_POSITIONAL), None)


_FORWARD_SPECS: dict[type[Callable], _ForwardSpec] = {}


def _forward_spec(cls: type[Callable]) -> _ForwardSpec:
    spec = _FORWARD_SPECS.get(cls)
    if spec is None:
        spec = _FORWARD_SPECS[cls] = _ForwardSpec(cls)
    return spec


def has_training_mode(obj: Any) -> bool:
    """Whether ``obj``'s ``forward`` takes a ``training`` flag (Dropout, BatchNormalization)."""
    return _forward_spec(type(obj)).takes_training


class Diffable(Callable, Weighted):
    """A differentiable computation: forward, local Jacobians and their products.

    Calling an instance records ``argnames``, ``input_dict``, ``inputs`` and ``outputs``
    (the course stencil's bookkeeping) and, when a ``GradientTape`` is active, records
    the call on that tape. Subclasses implement ``forward``, ``get_input_gradients`` and
    ``get_weight_gradients`` and compute their gradients from ``self.inputs``,
    ``self.outputs`` and their weights only: the tape restores those per call, so one
    instance may be called several times inside one tape.
    """

    gradient_tape: Any = None
    #: How ``get_input_gradients()`` composes with an upstream ``J``: ``"matmul"`` is the
    #: stencil's ``g[b] @ J[b]`` (``g`` batched ``(B, in, out)`` or shared ``(in, out)``);
    #: ``"elementwise"`` is ``g * J`` (activations, losses, Add). The verification layer
    #: reads this to turn local gradients into full Jacobians.
    input_gradient_layout: str = "matmul"
    #: False for a layer that materialises no local Jacobian (see the module docstring).
    has_local_jacobian: bool = True
    #: True for a layer whose ``forward`` draws random numbers, all from ``self.rng``.
    stochastic: bool = False

    def __call__(self, *args: Any, training: bool | None = None, **kwargs: Any) -> Any:
        spec = _forward_spec(type(self))
        names, varargs = spec.names, spec.varargs
        if spec.takes_training:
            kwargs["training"] = bool(training)
        n_named = min(len(args), len(names))
        # A call whose forward raises (e.g. a shape error) leaves the previous call's
        # bookkeeping in place: restored below.
        state: dict[str, Any] = vars(self)
        previous = {k: state[k] for k in _BOOKKEEPING if k in state}
        self.argnames = names
        self.input_dict = dict(zip(names, args))
        extra = args[n_named:]
        if varargs is not None and extra:
            self.input_dict[varargs] = extra
        self.input_dict.update((k, v) for k, v in kwargs.items() if k != "training")
        self.inputs = [*args[:n_named], *extra] + [kwargs[k] for k in names if k in kwargs]

        try:
            outputs = self.forward(*args, **kwargs)
        except BaseException:
            for k in _BOOKKEEPING:  # each was set above
                del state[k]
            state.update(previous)
            raise
        is_list = isinstance(outputs, (list, tuple))
        outs = list(outputs) if is_list else [outputs]
        for i, out in enumerate(outs):
            if any(out is inp for inp in self.inputs):
                out = out.view()  # a fresh node, so the graph stays acyclic
            outs[i] = Tensor(out)
        self.outputs = outs

        tape = Diffable.gradient_tape
        if tape is not None:
            for out in outs:
                tape.previous_layers[id(out)] = self
            tape._record(self)
        return outs if is_list else outs[0]

    @property
    def weights(self) -> list[Tensor]:
        return []

    def _no_local_jacobian(self) -> NoLocalJacobianError:
        """The error ``get_*_gradients`` raise when ``has_local_jacobian`` is False."""
        return NoLocalJacobianError(
            f"{self!r} materialises no local Jacobian (has_local_jacobian = False): use "
            "compose_input_gradients(J) / compose_weight_gradients(J) with an upstream J"
        )

    @abstractmethod
    def get_input_gradients(self) -> list[Tensor]:
        """Local Jacobians of the output with respect to each input, in ``inputs`` order."""

    @abstractmethod
    def get_weight_gradients(self) -> list[Tensor]:
        """Local Jacobians of the output with respect to each weight, in ``weights`` order."""

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        """Compose upstream gradient(s) ``J`` with the input gradients.

        Stencil semantics: per sample ``b``, ``g[b] @ J[b]`` where ``g`` is batched
        ``(B, in, out)`` or shared ``(in, out)``. Batched here with matmul/einsum.
        """
        if J is None or J[0] is None:
            return self.get_input_gradients()
        local = self.get_input_gradients()
        result: list[Tensor] = []
        for upstream in J:
            up = np.asarray(upstream)
            for inp, grad in zip(self.inputs, local):
                g = np.asarray(grad)
                if g.ndim == 3:  # batched: (B, in, out) @ (B, out) per sample
                    composed = np.einsum("bio,bo->bi", g, up.reshape(up.shape[0], -1))
                else:  # shared: g @ J[b] for every b == J @ g.T over the last axes
                    composed = np.tensordot(up, g, axes=([up.ndim - 1], [g.ndim - 1]))
                result.append(Tensor(composed.reshape(np.shape(inp))))
        return result

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        """Compose upstream gradient(s) ``J`` with the weight gradients.

        Stencil semantics: ``sum_b w_grad[b] * J[b]`` (elementwise, broadcast), where a
        3-D ``w_grad`` is per sample and anything else is shared by the batch.
        """
        if J is None or J[0] is None:
            return self.get_weight_gradients()
        local = self.get_weight_gradients()
        result: list[Tensor] = []
        for upstream in J:
            up = np.asarray(upstream)
            for weight, grad in zip(self.weights, local):
                g = np.asarray(grad)
                if g.ndim == 3:  # sum_b g[b] * up[b], without materialising the products
                    g_b, up_b = _align_per_sample(g, up)
                    summed = np.einsum("b...,b...->...", g_b, up_b)
                else:  # shared: sum_b g * up[b] == g * sum_b up[b]
                    summed = g * up.sum(axis=0)
                result.append(Tensor(np.reshape(summed, weight.shape)))
        return result


def _align_per_sample(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Broadcast ``a[i]`` against ``b[i]`` for every sample ``i`` (views, no copies)."""
    ndim = max(a.ndim, b.ndim) - 1
    a = a.reshape(a.shape[0], *([1] * (ndim - a.ndim + 1)), *a.shape[1:])
    b = b.reshape(b.shape[0], *([1] * (ndim - b.ndim + 1)), *b.shape[1:])
    shape = np.broadcast_shapes(a.shape, b.shape)
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)


class _Elementwise(Diffable):
    """A weightless Diffable whose local input gradients compose elementwise, ``g * J``.

    The base of activations (``g`` has the input's shape) and losses (a scalar output, so
    ``J`` is a 0-d upstream).
    """

    input_gradient_layout = "elementwise"

    @property
    def weights(self) -> list[Tensor]:
        return []

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        local = self.get_input_gradients()
        return [Tensor(np.multiply(g, up)) for up in J for g in local]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
