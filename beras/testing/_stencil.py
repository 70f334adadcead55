"""The course stencil's composition rules, written once, plainly, as the reference.

A Diffable's local gradients (``get_input_gradients()`` / ``get_weight_gradients()``)
mean something only through the rule that composes them with an upstream gradient
``J`` (which has the output's shape, batch first):

* inputs, ``input_gradient_layout == "matmul"``: per sample ``b``, ``g[b] @ J[b]``
  where ``g`` is batched ``(B, in, out)`` (3-D) or shared ``(in, out)``; so
  ``g[b][i, j] = d out[b, j] / d in[b, i]`` and samples do not interact;
* inputs, ``"elementwise"``: ``g * J`` broadcast (activations, ``Add``; losses, whose
  scalar output makes ``J`` a 0-d array);
* weights: ``sum_b w_grad[b] * J[b]`` if ``w_grad`` is 3-D (per sample), else
  ``w_grad * J.sum(0)`` (shared by the batch).

This module implements those rules with explicit per-sample loops, independently of
``Diffable``'s own (vectorised) defaults, and expands local gradients into full
Jacobians by composing them with every basis vector of the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LAYOUTS = ("matmul", "elementwise")


class LayoutError(ValueError):
    """A local gradient whose shape the declared layout cannot compose."""


def _reshape(value: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    if value.size != int(np.prod(shape, dtype=np.int64)):
        raise LayoutError(f"{what}: the composition has shape {value.shape}, expected {shape}")
    return value.reshape(shape)


def input_vjp(
    layout: str, local: Any, input_shape: tuple[int, ...], upstream: np.ndarray, what: str
) -> np.ndarray:
    """The stencil's ``dL/d input`` from one local input gradient and the upstream ``J``."""
    g = np.asarray(local, dtype=np.float64)
    up = np.asarray(upstream, dtype=np.float64)
    if layout == "elementwise":
        try:
            shape = np.broadcast_shapes(g.shape, up.shape)
        except ValueError:
            raise LayoutError(
                f"{what}: an 'elementwise' local gradient of shape {g.shape} does not broadcast "
                f"with the upstream gradient of shape {up.shape}"
            ) from None
        if shape != tuple(input_shape):
            raise LayoutError(
                f"{what}: 'elementwise' composition g * J gives shape {shape}, but the input "
                f"has shape {tuple(input_shape)}"
            )
        return g * up
    if layout != "matmul":
        raise LayoutError(
            f"{what}: unknown input_gradient_layout {layout!r}; expected one of {LAYOUTS}"
        )
    if up.ndim == 0:
        raise LayoutError(
            f"{what}: 'matmul' composition needs a batched output, got a scalar output"
        )
    batch = up.shape[0]
    up2 = up.reshape(batch, -1)
    if g.ndim == 3:
        if g.shape[0] != batch or g.shape[2] != up2.shape[1]:
            raise LayoutError(
                f"{what}: a batched 'matmul' local gradient must have shape (B, in, out) = "
                f"({batch}, in, {up2.shape[1]}), got {g.shape}"
            )
        composed = np.stack([g[b] @ up2[b] for b in range(batch)])
    else:
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim >= 1 else g.reshape(1, 1)
        if g2.shape[1] != up.shape[-1]:
            raise LayoutError(
                f"{what}: a shared 'matmul' local gradient must have shape (in, out) with out = "
                f"{up.shape[-1]}, got {g.shape}"
            )
        composed = np.stack([up[b] @ g2.T for b in range(batch)])
    return _reshape(composed, tuple(input_shape), what)


def weight_vjp(
    local: Any, weight_shape: tuple[int, ...], upstream: np.ndarray, what: str
) -> np.ndarray:
    """The stencil's ``dL/d weight`` from one local weight gradient and the upstream ``J``."""
    g = np.asarray(local, dtype=np.float64)
    up = np.asarray(upstream, dtype=np.float64)
    try:
        if up.ndim == 0:
            composed = g * up
        elif g.ndim == 3:
            if g.shape[0] != up.shape[0]:
                raise LayoutError(
                    f"{what}: a per-sample (3-D) weight gradient must have the batch size "
                    f"{up.shape[0]} first, got shape {g.shape}"
                )
            composed = sum(g[b] * up[b] for b in range(up.shape[0]))
        else:
            composed = g * up.sum(axis=0)
    except ValueError as err:
        if isinstance(err, LayoutError):
            raise
        raise LayoutError(
            f"{what}: a weight gradient of shape {g.shape} does not broadcast with the upstream "
            f"gradient of shape {up.shape} ({err})"
        ) from None
    return _reshape(np.asarray(composed, dtype=np.float64), tuple(weight_shape), what)


def _basis(shape: tuple[int, ...]) -> Sequence[np.ndarray]:
    size = int(np.prod(shape, dtype=np.int64))
    eye = np.eye(size)
    return [eye[k].reshape(shape) for k in range(size)]


def input_jacobian(
    layout: str, local: Any, input_shape: tuple[int, ...], output_shape: tuple[int, ...], what: str
) -> np.ndarray:
    """The full ``(output size, input size)`` Jacobian that a local input gradient means."""
    rows = [input_vjp(layout, local, input_shape, e, what).ravel() for e in _basis(output_shape)]
    return np.array(rows).reshape(len(rows), int(np.prod(input_shape, dtype=np.int64)))


def weight_jacobian(
    local: Any, weight_shape: tuple[int, ...], output_shape: tuple[int, ...], what: str
) -> np.ndarray:
    """The full ``(output size, weight size)`` Jacobian that a local weight gradient means."""
    rows = [weight_vjp(local, weight_shape, e, what).ravel() for e in _basis(output_shape)]
    return np.array(rows).reshape(len(rows), int(np.prod(weight_shape, dtype=np.int64)))
