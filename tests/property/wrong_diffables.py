"""Deliberately wrong Diffables: the checker's self-test (each bug must be reported).

Each class reproduces one classic gradient bug in exactly one place; ``BUGS`` pairs it
with the input domain it is checked on (the domain of the correct layer it imitates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import beras
from beras.core import Diffable, Tensor
from beras.testing import Domain, Input

X = Input(("batch", "n"))


def _dense(d: dict, rng: np.random.Generator, cls: type) -> Any:
    layer = cls(d["in"], d["out"], seed=rng)
    layer.entry = (
        int(rng.integers(d["in"])),
        int(rng.integers(d["out"])),
    )  # where a one-entry bug sits
    return layer


class SignFlipDense(beras.Dense):
    """The weight VJP has the sign of one entry flipped."""

    entry = (0, 0)

    def compose_weight_gradients(self, J: Any = None) -> list:
        grads = super().compose_weight_gradients(J)
        if J is not None:
            grads[0] = Tensor(np.array(grads[0]))
            grads[0][self.entry] *= -1
        return grads


class SignFlipLocalDense(beras.Dense):
    """Local weight gradient as full per-sample ``(B, in, out)`` arrays, one entry's sign flipped;
    the VJP is the stencil's composition of it, so views (a) and (c) must catch it."""

    entry = (0, 0)
    factor = -1.0

    def get_weight_gradients(self) -> list:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        g = np.repeat(x[:, :, None], self.output_size, axis=2)
        g[:, self.entry[0], self.entry[1]] *= self.factor
        return [Tensor(g), Tensor(np.ones_like(self.b))]

    def compose_weight_gradients(self, J: Any = None) -> list:
        return Diffable.compose_weight_gradients(self, J)


class ScaledEntryDense(SignFlipDense):
    """One entry of the weight VJP off by a relative 1e-3."""

    factor = 1.001

    def compose_weight_gradients(self, J: Any = None) -> list:
        grads = beras.Dense.compose_weight_gradients(self, J)
        if J is not None:
            grads[0] = Tensor(np.array(grads[0]))
            grads[0][self.entry] *= self.factor
        return grads


class TransposedDense(beras.Dense):
    """The weight gradient computed as ``(J^T x)`` reshaped: a transposition bug."""

    def compose_weight_gradients(self, J: Any = None) -> list:
        if J is None:
            return self.get_weight_gradients()
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        up = np.asarray(J[0])
        return [Tensor((up.T @ x).reshape(self.w.shape)), Tensor(up.sum(axis=0, keepdims=True))]


class AveragedBiasDense(beras.Dense):
    """The bias gradient averaged over the batch instead of summed."""

    def compose_weight_gradients(self, J: Any = None) -> list:
        grads = super().compose_weight_gradients(J)
        if J is not None:
            grads[1] = Tensor(np.asarray(J[0]).mean(axis=0, keepdims=True))
        return grads

    def get_weight_gradients(self) -> list:
        x = np.asarray(self.inputs[0], dtype=self.w.dtype)
        return [Tensor(x[:, :, None].copy()), Tensor(np.ones_like(self.b) / len(x))]


class NoBatchMeanMSE(beras.MeanSquaredError):
    """MSE whose gradient misses the 1/B of the batch mean."""

    def get_input_gradients(self) -> list:
        pred, true = (np.asarray(a, dtype=np.float64) for a in self.inputs)
        grad = 2.0 * (pred - true) / pred.shape[-1]
        return [Tensor(grad.astype(np.asarray(self.inputs[0]).dtype)), Tensor(np.zeros_like(true))]


class NoBatchMeanCCE(beras.CategoricalCrossEntropy):
    """Cross-entropy whose gradient misses the 1/B of the batch mean."""

    def get_input_gradients(self) -> list:
        grads = super().get_input_gradients()
        batch = np.shape(self.inputs[0])[0]
        return [Tensor(np.asarray(grads[0]) * batch), grads[1]]


class DiagonalSoftmax(beras.Softmax):
    """Softmax whose Jacobian lacks the off-diagonal terms ``-y_i y_j`` (local and VJP)."""

    def get_input_gradients(self) -> list:
        y = np.asarray(self.outputs[0])
        jac = np.zeros(y.shape + y.shape[-1:], dtype=y.dtype)
        idx = np.arange(y.shape[-1])
        jac[..., idx, idx] = y * (1 - y)
        return [Tensor(jac)]

    def compose_input_gradients(self, J: Any = None) -> list:
        if J is None:
            return self.get_input_gradients()
        y = np.asarray(self.outputs[0])
        return [Tensor(y * (1 - y) * np.asarray(J[0]))]


class IgnoresUpstreamSigmoid(beras.Sigmoid):
    """A VJP that returns the local gradient whatever the upstream."""

    def compose_input_gradients(self, J: Any = None) -> list:
        return self.get_input_gradients()


class WrongAtKinkLeakyReLU(beras.LeakyReLU):
    """Overlapping masks: gradient ``1 + alpha`` at exactly 0, right everywhere else."""

    def get_input_gradients(self) -> list:
        x = np.asarray(self.inputs[0])
        return [Tensor(((x >= 0) + (x <= 0) * self.alpha).astype(x.dtype))]


class ForgetsChainRuleSigmoid(beras.Sigmoid):
    """Local gradient ``s`` instead of ``s (1 - s)``."""

    def get_input_gradients(self) -> list:
        return [Tensor(np.array(self.outputs[0]))]


class SwappedConcatenateGradients(beras.layers.Concatenate):
    """Concatenate whose VJP hands each input the other input's slice (same widths)."""

    def compose_input_gradients(self, J: Any = None) -> list:
        grads = super().compose_input_gradients(J)
        return grads[::-1] if J is not None else grads


def _domain(cls: type, inputs: list, factory: Any = None, **kw: Any) -> Domain:
    return Domain(
        cls=cls,
        factory=factory or (lambda d, rng: cls()),
        inputs=tuple(inputs),
        name=cls.__name__,
        **kw,
    )


DENSE_DIMS = {"in": (2, 6), "out": (2, 6)}
BUGS: dict[str, Domain] = {
    "sign flip in one entry (VJP)": _domain(
        SignFlipDense,
        [Input(("batch", "in"))],
        lambda d, rng: _dense(d, rng, SignFlipDense),
        dims=DENSE_DIMS,
    ),
    "sign flip in one entry (local + VJP)": _domain(
        SignFlipLocalDense,
        [Input(("batch", "in"))],
        lambda d, rng: _dense(d, rng, SignFlipLocalDense),
        dims=DENSE_DIMS,
    ),
    "transposed weight gradient": _domain(
        TransposedDense,
        [Input(("batch", "in"))],
        lambda d, rng: _dense(d, rng, TransposedDense),
        dims=DENSE_DIMS,
    ),
    "transposed weight gradient (square)": _domain(
        TransposedDense,
        [Input(("batch", "in"))],
        lambda d, rng: TransposedDense(d["in"], d["in"], seed=rng),
        dims={"in": (2, 6)},
    ),
    "bias gradient averaged, not summed": _domain(
        AveragedBiasDense,
        [Input(("batch", "in"))],
        lambda d, rng: _dense(d, rng, AveragedBiasDense),
        dims={"batch": (2, 4), **DENSE_DIMS},
    ),
    "missing 1/B (MSE)": _domain(
        NoBatchMeanMSE, [X, Input(("batch", "n"), constant=True)], dims={"batch": (2, 4)}
    ),
    "missing 1/B (cross-entropy)": _domain(
        NoBatchMeanCCE,
        [Input(("batch", "n"), "probabilities"), Input(("batch", "n"), "one_hot", constant=True)],
        dims={
            "batch": (2, 4),
            "n": (2, 6),
        },  # n = 1 makes every probability 1: clipped, zero gradient
    ),
    "softmax Jacobian without off-diagonal terms": _domain(
        DiagonalSoftmax, [X], dims={"n": (2, 6)}
    ),
    "VJP ignores its upstream": _domain(IgnoresUpstreamSigmoid, [X]),
    "gradient wrong only at the kink": _domain(
        WrongAtKinkLeakyReLU,
        [X],
        kinks=(0.0,),
        kink_values=(0.0,),
        dims={"batch": (2, 4), "n": (3, 6)},
    ),
    "local gradient misses the chain rule": _domain(ForgetsChainRuleSigmoid, [X]),
    "multi-input VJP gradients swapped": _domain(
        SwappedConcatenateGradients,
        [Input(("batch", "n")), Input(("batch", "n"))],
        lambda d, rng: SwappedConcatenateGradients(),
    ),
}
