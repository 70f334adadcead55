"""Toy Diffables of every kind the checker handles, each correct and with a classic bug.

* several outputs: :class:`TwoHeads` returns ``[x * w, sin(x)]``;
* stochastic with a training flag: :class:`NoisyDrop`, an inverted dropout whose mask
  comes from ``self.rng`` and which counts its training calls in a non-trainable weight
  (as BatchNormalization updates its moving statistics);
* batch-coupled without local Jacobian: :class:`Centre`, ``(x - mean over the batch) * g``
  (``has_local_jacobian = False``, VJPs only);
* a max with ties: :class:`RowMax`, the maximum of each row, whose gradient goes to the
  first maximum (NumPy's argmax), declared with a tie detector.

``KINDS`` pairs each kind with its domain, its correct class and its wrong variants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from beras.core import Diffable, Tensor, Variable
from beras.testing import Domain, Input, tied_groups


# ------------------------------------------------------------------ several outputs
class TwoHeads(Diffable):
    """``[x * w, sin(x)]``: two outputs, one weight; VJPs only (several outputs)."""

    has_local_jacobian = False

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.w = Variable(rng.normal(size=(n,)), name="w")

    @property
    def weights(self) -> list[Tensor]:
        return [self.w]

    def forward(self, x: Any) -> list[np.ndarray]:
        x = np.asarray(x, dtype=self.w.dtype)
        return [x * self.w, np.sin(x)]

    def get_input_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def get_weight_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        return [Tensor(np.asarray(J[0]) * self.w + np.asarray(J[1]) * np.cos(x))]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        return [Tensor((np.asarray(J[0]) * x).sum(axis=0))]


class TwoHeadsFirstOnly(TwoHeads):
    """Forgets the second output's upstream."""

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        return [Tensor(np.asarray(J[0]) * self.w)]


class TwoHeadsSwapped(TwoHeads):
    """Composes each output's derivative with the other output's upstream."""

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        return [Tensor(np.asarray(J[1]) * self.w + np.asarray(J[0]) * np.cos(x))]


# ------------------------------------------------------------------ stochastic, training flag
class NoisyDrop(Diffable):
    """Inverted dropout with rate 0.5 in training, identity otherwise; a scale weight ``s``.

    Every draw comes from ``self.rng`` (``stochastic = True``); each training call adds 1
    to the non-trainable ``calls`` (state the checker must restore).
    """

    stochastic = True
    input_gradient_layout = "elementwise"
    rate = 0.5

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.rng = np.random.default_rng(int(rng.integers(2**32)))
        self.s = Variable(rng.uniform(0.5, 2.0, size=(n,)), name="s")
        self.calls = Variable(np.zeros((n,)), name="calls", trainable=False)

    @property
    def weights(self) -> list[Tensor]:
        return [self.s, self.calls]

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.s.dtype)
        self.scale = np.ones_like(x)
        if training:
            keep = self.rng.random(x.shape) >= self.rate
            self.scale = keep / (1.0 - self.rate)
            self.calls += 1.0
        return x * self.scale * self.s

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(self.scale * self.s)]

    def get_weight_gradients(self) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.s.dtype)
        # per sample (B, 1, n): sum_b g[b] * J[b] is the stencil's rule for s
        return [Tensor((x * self.scale)[:, None, :]), Tensor(np.zeros_like(self.calls))]

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        return [Tensor(self.get_input_gradients()[0] * np.asarray(J[0]))]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.s.dtype)
        return [
            Tensor((np.asarray(J[0]) * x * self.scale).sum(axis=0)),
            Tensor(np.zeros_like(self.calls)),
        ]


class NoisyDropRedraws(NoisyDrop):
    """The gradient draws a fresh mask instead of using the forward's."""

    def get_input_gradients(self) -> list[Tensor]:
        if not np.all(self.scale == 1.0):
            keep = self.rng.random(self.scale.shape) >= self.rate
            return [Tensor(keep / (1.0 - self.rate) * self.s)]
        return super().get_input_gradients()


class NoisyDropUnscaled(NoisyDrop):
    """Training-mode gradients forget the ``1 / (1 - rate)`` of inverted dropout."""

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor((self.scale > 0) * self.s)]


# ------------------------------------------------------------------ batch-coupled, no local Jacobian
class Centre(Diffable):
    """``(x - mean over the batch) * g``: every sample's output depends on every input.

    Declares ``has_local_jacobian = False``: only the VJPs exist.
    """

    has_local_jacobian = False

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.g = Variable(rng.normal(size=(n,)), name="g")

    @property
    def weights(self) -> list[Tensor]:
        return [self.g]

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x, dtype=self.g.dtype)
        return (x - x.mean(axis=0)) * self.g

    def get_input_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def get_weight_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        up = np.asarray(J[0]) * self.g
        return [Tensor(up - up.mean(axis=0))]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.g.dtype)
        return [Tensor((np.asarray(J[0]) * (x - x.mean(axis=0))).sum(axis=0))]


class CentrePerSample(Centre):
    """Treats samples as independent: drops the ``- mean(J)`` coupling term."""

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        return [Tensor(np.asarray(J[0]) * self.g)]


class CentreUncentredWeight(Centre):
    """The weight gradient uses ``x`` instead of ``x - mean``."""

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        x = np.asarray(self.inputs[0], dtype=self.g.dtype)
        return [Tensor((np.asarray(J[0]) * x).sum(axis=0))]


# ------------------------------------------------------------------ a max with ties
class RowMax(Diffable):
    """The maximum of each row, ``(batch, 1)``; the gradient goes to the first maximum."""

    def forward(self, x: Any) -> np.ndarray:
        return np.max(np.asarray(x), axis=-1, keepdims=True)

    def _mask(self) -> np.ndarray:
        x = np.asarray(self.inputs[0])
        mask = np.zeros_like(x)
        np.put_along_axis(mask, np.argmax(x, axis=-1)[:, None], 1.0, axis=-1)
        return mask

    def get_input_gradients(self) -> list[Tensor]:
        return [Tensor(self._mask()[:, :, None])]  # (batch, n, 1): the stencil's matmul

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        return [Tensor(self._mask() * np.asarray(J[0]))]


class RowMaxAllTied(RowMax):
    """Hands the full gradient to every tied maximum (their sum then counts it twice)."""

    def _mask(self) -> np.ndarray:
        x = np.asarray(self.inputs[0])
        return (x == x.max(axis=-1, keepdims=True)).astype(x.dtype)


def row_ties(layer: Any, inputs: Any) -> list[tuple[int, np.ndarray]]:
    """The tie detector of a max over the last axis: each row is a window."""
    x = np.asarray(inputs[0])
    rows = np.repeat(np.arange(x.shape[0])[:, None], x.shape[1], axis=1)
    return [(0, group) for group in tied_groups(x, rows)]


class WindowMax(Diffable):
    """A 1-D max-pool: the maximum of each window of ``pool`` entries, ``(batch, n // pool)``.

    Registered as a max-pool would be: the pool size is a constructor parameter drawn per
    case, ``where`` keeps it a divisor of the width, and the ties are declared per window.
    """

    def __init__(self, pool: int) -> None:
        self.pool = pool

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        return x.reshape(x.shape[0], -1, self.pool).max(axis=-1)

    def _mask(self) -> np.ndarray:
        x = np.asarray(self.inputs[0])
        windows = x.reshape(x.shape[0], -1, self.pool)
        mask = np.zeros_like(windows)
        np.put_along_axis(mask, np.argmax(windows, axis=-1)[..., None], 1.0, axis=-1)
        return mask

    def get_input_gradients(self) -> list[Tensor]:
        mask = self._mask()  # (batch, windows, pool)
        b, w, p = mask.shape
        local = np.zeros((b, w * p, w), dtype=mask.dtype)  # (batch, in, out): the stencil's matmul
        for k in range(w):
            local[:, k * p : (k + 1) * p, k] = mask[:, k, :]
        return [Tensor(local)]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        grad = self._mask() * np.asarray(J[0])[..., None]
        return [Tensor(grad.reshape(grad.shape[0], -1))]


def window_ties(layer: Any, inputs: Any) -> list[tuple[int, np.ndarray]]:
    """The tie detector of :class:`WindowMax`: entries labelled by their window."""
    x = np.asarray(inputs[0])
    windows = np.arange(x.size).reshape(x.shape) // layer.pool
    return [(0, group) for group in tied_groups(x, windows)]


WINDOW_MAX = Domain(
    cls=WindowMax,
    factory=lambda d, rng: WindowMax(d["pool"]),
    inputs=(Input(("batch", "n")),),
    dims={"n": (2, 6)},
    params={"pool": (1, 2, 3)},
    where=lambda d: d["n"] % d["pool"] == 0,
    ties=window_ties,
    name="WindowMax",
)


# ------------------------------------------------------------------ domains
def _domain(cls: type, factory: Any = None, **kw: Any) -> Domain:
    kw.setdefault("inputs", (Input(("batch", "n")),))
    return Domain(
        cls=cls, factory=factory or (lambda d, rng: cls(d["n"], rng)), name=cls.__name__, **kw
    )


KINDS: dict[str, tuple[type, dict[str, Any], list[type]]] = {
    "several outputs": (TwoHeads, {}, [TwoHeadsFirstOnly, TwoHeadsSwapped]),
    "stochastic, training flag": (
        NoisyDrop,
        {"dims": {"batch": (2, 4), "n": (2, 5)}},
        [NoisyDropRedraws, NoisyDropUnscaled],
    ),
    "batch-coupled, no local Jacobian": (
        Centre,
        {"dims": {"batch": (2, 4)}},
        [CentrePerSample, CentreUncentredWeight],
    ),
    "max with ties": (
        RowMax,
        {"dims": {"n": (2, 5)}, "ties": row_ties},
        [RowMaxAllTied],
    ),
}


def domain_of(cls: type, options: dict[str, Any]) -> Domain:
    """The domain of a toy class (its kind's options)."""
    factory = (lambda d, rng: cls()) if issubclass(cls, RowMax) else None
    return _domain(cls, factory, **options)
