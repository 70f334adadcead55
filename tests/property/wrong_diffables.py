"""Deliberately wrong Diffables: the checker's self-test (each bug must be reported).

Each class reproduces one classic gradient bug in exactly one place; ``BUGS`` pairs it
with the input domain it is checked on (the domain of the correct layer it imitates).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import beras
from beras.core import Diffable, Tensor, Variable
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


# ------------------------------------------------------------ convolution-family bugs
class FlippedKernelConv2D(beras.layers.Conv2D):
    """The input gradient uses the kernel flipped in both spatial axes: the forward pass is a
    cross-correlation, the gradient that of a convolution."""

    def compose_input_gradients(self, J: Any = None) -> list:
        kernel = self.kernel
        self.kernel = Variable(np.ascontiguousarray(np.asarray(kernel)[::-1, ::-1]), name="kernel")
        try:
            return super().compose_input_gradients(J)
        finally:
            self.kernel = kernel


class SamePaddingOffByOneConv2D(beras.layers.Conv2D):
    """With "same" padding, the input gradient is cropped as if the odd extra row and
    column of padding were at the top and left (they are at the bottom and right)."""

    def _geometry(self, x_shape: tuple) -> tuple:
        pads, out_hw = super()._geometry(x_shape)
        if self._in_backward:
            (top, bottom), (left, right) = pads
            pads = ((bottom, top), (right, left))
        return pads, out_hw

    _in_backward = False

    def compose_input_gradients(self, J: Any = None) -> list:
        self._in_backward = True
        try:
            return super().compose_input_gradients(J)
        finally:
            self._in_backward = False


class StrideOneScatterConv2D(beras.layers.Conv2D):
    """The input gradient of a strided convolution scattered with stride 1: each output
    pixel's gradient lands on neighbouring input positions, not those it read."""

    def compose_input_gradients(self, J: Any = None) -> list:
        geometry = self._geometry(np.shape(self.inputs[0]))  # the true padding and output size
        strides, self.strides = self.strides, (1, 1)
        self._geometry = lambda shape: geometry  # type: ignore[method-assign]
        try:
            return super().compose_input_gradients(J)
        finally:
            self.strides = strides
            del self._geometry


class UnsummedBiasConv2D(beras.layers.Conv2D):
    """The bias gradient summed over the batch but averaged over the output positions."""

    def compose_weight_gradients(self, J: Any = None) -> list:
        grads = super().compose_weight_gradients(J)
        g = np.asarray(J[0])
        grads[1] = Tensor(g.sum(axis=0).mean(axis=(0, 1)))
        return grads


class WholeWindowMaxPool2D(beras.layers.MaxPool2D):
    """Max-pool whose gradient goes to every element of the window, not only the maximum."""

    def _vjp(self, g: np.ndarray) -> np.ndarray:
        return self._scatter(g, lambda k, up: up)


class NoMeanTermBatchNormalization(beras.layers.BatchNormalization):
    """Training-mode batch norm whose input gradient misses the mean term ``-mean(g)``:
    the gradient through the batch mean is forgotten."""

    def compose_input_gradients(self, J: Any = None) -> list:
        grads = super().compose_input_gradients(J)
        if not self._batch_stats:
            return grads
        _, sum_g, _ = self._sums(J[0])
        scale = self._gamma(self._centered.dtype) * self._inv_std
        dx2 = self._to_2d(np.asarray(grads[0]), self._axis) + self._wide(
            scale * sum_g / self._count
        )
        return [Tensor(self._from_2d(dx2, self._shape, self._axis))]


class UnscaledDropout(beras.layers.Dropout):
    """Dropout whose gradient uses the 0/1 mask without the ``1 / (1 - rate)`` scale."""

    def get_input_gradients(self) -> list:
        grads = super().get_input_gradients()
        if self._mask is None:
            return grads
        return [Tensor((np.asarray(grads[0]) != 0).astype(grads[0].dtype))]

    def compose_input_gradients(self, J: Any = None) -> list:
        if J is None:
            return self.get_input_gradients()
        return [Tensor(self.get_input_gradients()[0] * np.asarray(J[0]))]


def _conv(cls: type, **fixed: Any) -> Any:
    def make(d: dict, rng: np.random.Generator) -> Any:
        layer = cls(d["f"], d["kernel"], strides=d["strides"], padding=d["padding"], seed=rng)
        layer.build((None, d["h"], d["w"], d["c"]))
        layer.bias[...] = rng.normal(size=layer.bias.shape)
        return layer

    return make


IMAGE = Input(("batch", "h", "w", "c"))
IMAGE_DIMS = {"h": (3, 6), "w": (3, 6), "c": (1, 3), "f": (1, 3)}


def _strided_outputs(d: dict) -> int:
    """Output positions along the most strided axis (a stride shows from two on)."""
    axis = int(d["strides"][1] > d["strides"][0])
    size, k, s = d["hw"[axis]], d["kernel"][axis], d["strides"][axis]
    return -(-size // s) if d["padding"] == "same" else (size - k) // s + 1


def _fits(d: dict, key: str = "kernel") -> bool:
    kh, kw = d[key]
    return d["padding"] == "same" or (kh <= d["h"] and kw <= d["w"])


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
    "convolution's kernel flipped in the input gradient": _domain(
        FlippedKernelConv2D,
        [IMAGE],
        _conv(FlippedKernelConv2D),
        dims=IMAGE_DIMS,
        params={
            "kernel": ((2, 2), (3, 3), (2, 3)),
            "strides": ((1, 1), (2, 2)),
            "padding": ("valid", "same"),
        },
        where=_fits,
    ),
    'convolution\'s "same" padding off by one in the gradient': _domain(
        SamePaddingOffByOneConv2D,
        [IMAGE],
        _conv(SamePaddingOffByOneConv2D),
        dims=IMAGE_DIMS,
        params={"kernel": ((2, 2), (2, 3), (3, 2)), "strides": ((1, 1),), "padding": ("same",)},
    ),
    "strided convolution's gradient scattered with stride 1": _domain(
        StrideOneScatterConv2D,
        [IMAGE],
        _conv(StrideOneScatterConv2D),
        dims=IMAGE_DIMS,
        params={
            "kernel": ((1, 1), (2, 2), (3, 3)),
            "strides": ((2, 2), (3, 3), (2, 1)),
            "padding": ("valid", "same"),
        },
        where=lambda d: _fits(d) and _strided_outputs(d) >= 2,
    ),
    "convolution's bias gradient not summed over positions": _domain(
        UnsummedBiasConv2D,
        [IMAGE],
        _conv(UnsummedBiasConv2D),
        dims=IMAGE_DIMS,
        params={"kernel": ((1, 1), (2, 2)), "strides": ((1, 1),), "padding": ("valid", "same")},
    ),
    "max-pool gradient sent to the whole window": _domain(
        WholeWindowMaxPool2D,
        [IMAGE],
        lambda d, rng: WholeWindowMaxPool2D(d["kernel"], None, d["padding"]),
        dims=IMAGE_DIMS,
        params={"kernel": ((2, 2), (3, 3), (2, 1)), "padding": ("valid", "same")},
        where=_fits,
    ),
    "batch norm missing the mean term of its input gradient": _domain(
        NoMeanTermBatchNormalization,
        [X],
        lambda d, rng: NoMeanTermBatchNormalization(),
        dims={"batch": (2, 4)},
    ),
    "dropout without the 1/(1 - rate) scale": _domain(
        UnscaledDropout,
        [X],
        lambda d, rng: UnscaledDropout(d["rate"], seed=rng),
        dims={"batch": (3, 4), "n": (4, 6)},  # at least 12 entries: some are kept
        params={"rate": (0.25, 0.5)},
    ),
}
