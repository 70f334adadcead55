"""GradientTape: records Diffable calls and differentiates through them.

The tape keeps every call (the layer and a snapshot of its per-call state), in call
order. Call order is a topological order of the recorded graph, so walking it backwards
visits each call after every consumer of its outputs: gradients are summed where one
tensor feeds several consumers, and a layer instance called several times contributes
once per call (its state is restored to that call before its gradients are composed).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .core import Diffable, Tensor
from .validation import result_float_dtype

__all__ = ["GradientTape"]


class _Call:
    """One recorded call: the layer and a shallow snapshot of its attributes."""

    __slots__ = ("inputs", "layer", "outputs", "state", "weights")

    def __init__(self, layer: Diffable) -> None:
        self.layer = layer
        self.state = dict(vars(layer))
        self.inputs = layer.inputs
        self.outputs = layer.outputs
        self.weights = layer.weights


class GradientTape:
    """Context manager recording the Diffables called inside it (as ``tf.GradientTape``).

    >>> with GradientTape() as tape:
    ...     loss = loss_fn(model.forward(x), y)
    >>> grads = tape.gradient(loss, model.trainable_variables)
    """

    def __init__(self) -> None:
        self.previous_layers: defaultdict[int, Any] = defaultdict(lambda: None)
        self._calls: list[_Call] = []

    def __enter__(self) -> GradientTape:
        if Diffable.gradient_tape is not None:
            raise RuntimeError(
                "GradientTape: another GradientTape is already recording; nested tapes are "
                "not supported. Compute the inner gradient after leaving the outer tape."
            )
        Diffable.gradient_tape = self
        return self

    def __exit__(self, *exc: Any) -> None:
        Diffable.gradient_tape = None

    def _record(self, layer: Diffable) -> None:
        self._calls.append(_Call(layer))

    def gradient(self, target: Any, sources: Any) -> Any:
        """d(sum of ``target``)/d(each source), aligned with ``sources``.

        Sources the target does not depend on get ``None`` (as in TensorFlow). Every
        other gradient has its source's shape and float dtype, even where a layer's
        ``compose_*_gradients`` returned a broadcastable or wider array.
        """
        single = not isinstance(sources, (list, tuple))
        source_list = [sources] if single else list(sources)
        if self.previous_layers.get(id(target)) is None:
            raise ValueError(
                "GradientTape.gradient: the target was not produced by a layer called inside "
                "this tape. Compute it inside `with GradientTape() as tape:` by calling "
                "layers (layer(x), not layer.forward(x))."
            )
        source_ids = {id(s) for s in source_list}
        calls = self._relevant_calls(source_ids)

        grads: dict[int, np.ndarray] = {
            id(target): np.ones(np.shape(target), dtype=result_float_dtype(target))
        }
        saved = {id(c.layer): (c.layer, dict(vars(c.layer))) for c, _, _ in calls}
        try:
            for call, need_inputs, need_weights in reversed(calls):
                outputs = call.outputs
                if len(outputs) == 1:  # the common case, without the list juggling below
                    upstream = [grads.get(id(outputs[0]))]
                    if upstream[0] is None:
                        continue
                else:
                    upstream = [grads.get(id(out)) for out in outputs]
                    if all(u is None for u in upstream):
                        continue
                    upstream = [
                        np.zeros(np.shape(out), dtype=result_float_dtype(out)) if u is None else u
                        for u, out in zip(upstream, outputs)
                    ]
                layer = call.layer
                layer.__dict__.update(call.state)
                if True in need_inputs:
                    composed = layer.compose_input_gradients(upstream)
                    for inp, g, needed in zip(call.inputs, composed, need_inputs):
                        if needed:
                            _accumulate(grads, inp, g)
                if need_weights:
                    composed = layer.compose_weight_gradients(upstream)
                    for w, g in zip(call.weights, composed):
                        if id(w) in source_ids:
                            _accumulate(grads, w, g)
        finally:
            for layer, state in saved.values():
                layer.__dict__.update(state)

        result: list[Tensor | None] = []
        for source in source_list:
            found = grads.get(id(source))
            if found is None:
                result.append(None)
                continue
            grad, shape, dtype = np.asarray(found), np.shape(source), result_float_dtype(source)
            if grad.shape != shape or grad.dtype != dtype:
                # a layer returned a broadcastable or wider array: a new one that fits
                grad = np.array(np.broadcast_to(grad, shape), dtype=dtype)
            result.append(Tensor(grad))
        return result[0] if single else result

    def _relevant_calls(self, source_ids: set[int]) -> list[tuple[_Call, list[bool], bool]]:
        """Each call that depends on a source, with which inputs lead to one."""
        depends = set(source_ids)  # ids of tensors that depend on some source
        relevant = []
        for call in self._calls:
            need_inputs = [id(x) in depends for x in call.inputs]
            need_weights = not source_ids.isdisjoint(map(id, call.weights))
            if need_weights or True in need_inputs:
                depends.update(map(id, call.outputs))
                relevant.append((call, need_inputs, need_weights))
        return relevant


def _accumulate(grads: dict[int, np.ndarray], tensor: Any, g: Any) -> None:
    key = id(tensor)
    previous = grads.get(key)
    grads[key] = np.asarray(g) if previous is None else previous + g
