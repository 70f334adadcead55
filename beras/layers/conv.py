"""Conv2D: the 2-D convolution layer (channels-last), as ``keras.layers.Conv2D``."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from .. import initializers
from ..core import Diffable, Tensor, Variable
from ..utils import get_rng
from ..validation import as_float_array, positive_int
from . import _conv_utils as cu

__all__ = ["Conv2D"]


class Conv2D(Diffable):
    """2-D convolution over ``(batch, height, width, channels)`` inputs.

    ``out[b, y, x, f] = bias[f] + sum_{i,j,c} xp[b, y*sh + i, x*sw + j, c] * kernel[i, j, c, f]``
    with ``xp`` the (padded) input: a cross-correlation, as in every deep-learning library.

    Args:
        filters: output channels ``F``.
        kernel_size: the window ``(kh, kw)``, or one int for a square window.
        strides: ``(sh, sw)`` or one int; default ``(1, 1)``.
        padding: ``"valid"`` (no padding: ``H' = floor((H - kh) / sh) + 1``) or ``"same"``
            (``H' = ceil(H / sh)``, zeros padded as TensorFlow does: half on each side,
            the odd one at the bottom/right).
        use_bias: whether to add a bias per filter.
        kernel_initializer: how the kernel is drawn (``"glorot_uniform"`` by default, any
            name of :mod:`beras.initializers`); the fans count the receptive field,
            ``fan_in = kh*kw*C``, ``fan_out = kh*kw*F``.
        bias_initializer: ``"zeros"`` by default.
        seed: an int or ``np.random.Generator`` for the initial draw; default Beras's
            global generator at build time.

    The weights are ``kernel`` ``(kh, kw, C, F)`` and ``bias`` ``(F,)``. They are
    created on the first call (or by ``build(input_shape)``) from the input's channel
    count ``C``; before that ``weights`` is empty and ``built`` is False. Inputs are cast
    to the weights' dtype (``beras.config.floatx()`` at build time).

    The layer materialises no local Jacobian (``has_local_jacobian = False``); its
    gradients are exact vector-Jacobian products. The forward pass copies every window
    into one contiguous ``(B·H'·W', kh·kw·C)`` matrix (im2col) and multiplies it by the
    ``(kh·kw·C, F)`` kernel; the input gradient multiplies the upstream gradient by the
    kernel's transpose and scatters the windows back (col2im).
    """

    has_local_jacobian = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        self.filters = positive_int(filters, "filters", "Conv2D")
        self.kernel_size = cu.pair(kernel_size, "kernel_size", "Conv2D")
        self.strides = cu.pair(strides, "strides", "Conv2D")
        self.padding = cu.padding_mode(padding, "Conv2D")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.normalize_name(kernel_initializer)
        self.bias_initializer = initializers.normalize_name(bias_initializer)
        self.seed = cu.check_seed(seed, "Conv2D")
        self.kernel: Variable | None = None
        self.bias: Variable | None = None
        self._cols: np.ndarray | None = None
        self._block: np.ndarray | None = None  # the im2col columns' memory, see _workspace

    def __repr__(self) -> str:
        extra = "" if self.strides == (1, 1) else f", strides={self.strides}"
        extra += "" if self.padding == "valid" else f", padding={self.padding!r}"
        return f"Conv2D({self.filters}, kernel_size={self.kernel_size}{extra})"

    # ------------------------------------------------------------------ weights
    @property
    def built(self) -> bool:
        return self.kernel is not None

    @property
    def weights(self) -> list[Tensor]:
        if self.kernel is None:
            return []
        return [self.kernel] if self.bias is None else [self.kernel, self.bias]

    def _check_input_shape(self, shape: tuple[Any, ...]) -> tuple[int, int]:
        """``(H', W')`` for inputs of ``shape``; a ``ValueError`` (nothing changed) if unfit."""
        if len(shape) != 4:
            hint = " (a single image? add a batch axis: x[None])" if len(shape) == 3 else ""
            raise ValueError(
                f"{self!r} expected inputs of rank 4, (batch, height, width, channels), got "
                f"shape {tuple(shape)}{hint}"
            )
        channels = shape[3]
        if self.kernel is not None and channels != self.kernel.shape[2]:
            raise ValueError(
                f"{self!r} was built for inputs with {self.kernel.shape[2]} channels (kernel "
                f"{self.kernel.shape}), got inputs of shape {tuple(shape)} with {channels} "
                "channels"
            )
        if not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(
                f"{self!r} expected a known positive channel count, got input shape {tuple(shape)}"
            )
        return cu.check_spatial(
            tuple(shape), self.kernel_size, self.strides, self.padding, repr(self), "kernel"
        )

    def build(self, input_shape: tuple[Any, ...]) -> None:
        """Create ``kernel`` and ``bias`` for inputs of ``input_shape`` (``batch`` may be None)."""
        shape = tuple(input_shape)
        self._check_input_shape(shape)
        if self.kernel is not None:
            return
        rng = get_rng(self.seed)  # weights in the dtype policy's float type
        kshape = (*self.kernel_size, int(shape[3]), self.filters)
        kernel = initializers.kernel(self.kernel_initializer, kshape, rng)
        if self.use_bias:
            bias = initializers.kernel(self.bias_initializer, (self.filters,), rng)
            self.bias = Variable(bias, name="bias")
        self.kernel = Variable(kernel, name="kernel")

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, H', W', filters)`` for ``(batch, H, W, C)``."""
        shape = tuple(input_shape)
        out_h, out_w = self._check_input_shape(shape)
        return (shape[0], out_h, out_w, self.filters)

    # ------------------------------------------------------------------ forward
    def _geometry(
        self, x_shape: tuple[int, ...]
    ) -> tuple[tuple[tuple[int, int], tuple[int, int]], tuple[int, int]]:
        """The padding ``((top, bottom), (left, right))`` and ``(H', W')`` for ``x_shape``."""
        ks, st = self.kernel_size, self.strides
        out_hw = (
            cu.output_length(x_shape[1], ks[0], st[0], self.padding),
            cu.output_length(x_shape[2], ks[1], st[1], self.padding),
        )
        return cu.pads(x_shape, ks, st, self.padding), out_hw

    def _columns(self, x: np.ndarray) -> np.ndarray:
        """The im2col matrix of ``x``, ``(B·H'·W', kh·kw·C)``, a new contiguous array."""
        hw_pads, _ = self._geometry(x.shape)
        cols = cu.im2col(cu.pad(x, hw_pads), self.kernel_size, self.strides)
        return cols.reshape(-1, self.kernel_size[0] * self.kernel_size[1] * x.shape[3])

    def _gemm_flops(self, x_shape: tuple[int, ...]) -> float:
        """The floating-point operations of each of a step's three products (forward,
        input and kernel gradients), ``2·B·H'·W'·kh·kw·C·F``: :func:`_conv_utils.over_batch`
        splits a phase across threads only when it is large."""
        _, (out_h, out_w) = self._geometry(x_shape)
        kernel_size = math.prod(self.kernel_size) * x_shape[3]
        return 2.0 * x_shape[0] * out_h * out_w * kernel_size * self.filters

    def _workspace(self, x: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
        """A block for the im2col columns of ``x``: the last call's, if nothing holds it.

        The columns are the largest array of a training step (9x the input for a 3x3
        kernel); writing them into the previous step's block saves the kernel faulting
        in fresh pages for them on every step. The block is one this layer allocated,
        reused only when nothing else (a tape still holding a recorded call's columns,
        which are a view of it) refers to it, so recorded columns never change.
        """
        self._cols = None
        shape = (x.shape[0], *out_hw, *self.kernel_size, x.shape[3])
        last = self._block
        # referents when free: ``self._block``, ``last`` and getrefcount's argument
        free = last is not None and sys.getrefcount(last) <= 3
        if last is not None and free and last.shape == shape and last.dtype == x.dtype:
            return last
        self._block = np.empty(shape, dtype=x.dtype)
        return self._block

    def forward(self, x: Any) -> np.ndarray:
        arr = as_float_array(x, owner=self)
        self.build(arr.shape)  # checks the shape
        assert self.kernel is not None
        kernel = np.asarray(self.kernel)
        x = np.asarray(arr, dtype=kernel.dtype)
        hw_pads, out_hw = self._geometry(x.shape)
        block = self._workspace(x, out_hw)  # (B, H', W', kh, kw, C)
        k2 = kernel.reshape(-1, self.filters)
        out = np.empty((x.shape[0], *out_hw, self.filters), dtype=x.dtype)

        def part(b: slice) -> None:  # the columns and outputs of samples b
            cols = cu.im2col(cu.pad(x[b], hw_pads), self.kernel_size, self.strides, block[b])
            np.matmul(cols.reshape(-1, k2.shape[0]), k2, out=out[b].reshape(-1, self.filters))
            if self.bias is not None:
                out[b] += np.asarray(self.bias)

        cu.over_batch(part, x.shape[0], self._gemm_flops(x.shape))
        # keep the columns for the kernel gradient only while a tape records this call
        recording = Diffable.gradient_tape is not None
        self._cols = block.reshape(-1, k2.shape[0]) if recording else None
        return out

    # ---------------------------------------------------------------- gradients
    def get_input_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def get_weight_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        assert self.kernel is not None
        kernel = np.asarray(self.kernel)
        x_shape = np.shape(self.inputs[0])
        hw_pads, out_hw = self._geometry(x_shape)
        (top, bottom), (left, right) = hw_pads
        padded = (x_shape[0], x_shape[1] + top + bottom, x_shape[2] + left + right, x_shape[3])
        result = []
        for up in J:
            g = np.asarray(up).reshape(x_shape[0], *out_hw, self.filters)
            dxp = np.empty(padded, dtype=np.result_type(g, kernel))  # zeroed chunk by chunk

            def part(b: slice, g: np.ndarray = g, dxp: np.ndarray = dxp) -> None:
                # col2im fused with the product: each kernel offset's columns
                # (samples c, H', W', C) go straight onto the positions that offset read
                for c in cu.chunks(b, dxp.itemsize * math.prod(padded[1:])):
                    dxp[c] = 0
                    g_c = g[c].reshape(-1, self.filters)
                    for i in range(self.kernel_size[0]):
                        for j in range(self.kernel_size[1]):
                            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
                            dxp[c, rows, columns, :] += (g_c @ kernel[i, j].T).reshape(
                                -1, *out_hw, x_shape[3]
                            )

            cu.over_batch(part, x_shape[0], self._gemm_flops(x_shape))
            result.append(Tensor(np.ascontiguousarray(cu.crop(dxp, hw_pads))))
        return result

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        assert self.kernel is not None
        cols = self._cols
        if cols is None:  # called outside a tape: rebuild the columns from the input
            cols = self._columns(as_float_array(self.inputs[0], self.kernel.dtype))
        x_shape = np.shape(self.inputs[0])
        per_sample = cols.shape[0] // max(
            x_shape[0], 1
        )  # column rows (output positions) per sample
        result = []
        for up in J:
            g = np.asarray(up).reshape(-1, self.filters)

            def part(b: slice, g: np.ndarray = g) -> list[np.ndarray]:
                rows = slice(b.start * per_sample, b.stop * per_sample)
                grads = [cols[rows].T @ g[rows]]
                if self.bias is not None:  # column sums as a matrix-vector product (BLAS)
                    grads.append(np.ones(rows.stop - rows.start, g.dtype) @ g[rows])
                return grads

            partials = cu.over_batch(part, x_shape[0], self._gemm_flops(x_shape))  # per part
            kernel_grad, *bias_grad = (np.add.reduce(each) for each in zip(*partials))
            result.append(Tensor(kernel_grad.reshape(self.kernel.shape)))
            result.extend(Tensor(grad) for grad in bias_grad)
        return result
