"""2-D pooling over ``(batch, height, width, channels)``: MaxPool2D and AveragePooling2D.

Both loop over the ``ph·pw`` window offsets (one strided slice of the input each), never
over the batch or the output pixels. Their local Jacobians (``get_input_gradients``) are
materialised per sample, ``(B, H·W·C, H'·W'·C)``, for small inputs and teaching; the
tape uses ``compose_input_gradients``, the same scatter applied to the upstream
gradient directly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..core import Diffable, Tensor
from ..validation import as_float_array
from . import _conv_utils as cu

__all__ = ["AveragePooling2D", "AvgPool2D", "MaxPool2D", "MaxPooling2D"]


class _Pooling2D(Diffable):
    """Shared arguments, shape checks and the local Jacobian of the 2-D poolings."""

    input_gradient_layout = "matmul"

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
    ) -> None:
        name = type(self).__name__
        self.pool_size = cu.pair(pool_size, "pool_size", name)
        self.strides = self.pool_size if strides is None else cu.pair(strides, "strides", name)
        self.padding = cu.padding_mode(padding, name)

    def __repr__(self) -> str:
        extra = "" if self.strides == self.pool_size else f", strides={self.strides}"
        extra += "" if self.padding == "valid" else f", padding={self.padding!r}"
        return f"{type(self).__name__}(pool_size={self.pool_size}{extra})"

    @property
    def weights(self) -> list[Tensor]:
        return []

    def _check_input_shape(self, shape: tuple[Any, ...]) -> tuple[int, int]:
        if len(shape) != 4:
            hint = " (a single image? add a batch axis: x[None])" if len(shape) == 3 else ""
            raise ValueError(
                f"{self!r} expected inputs of rank 4, (batch, height, width, channels), got "
                f"shape {tuple(shape)}{hint}"
            )
        return cu.check_spatial(
            tuple(shape),
            self.pool_size,
            self.strides,
            self.padding,
            repr(self),
            "pool window",
        )

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        """``(batch, H', W', C)`` for ``(batch, H, W, C)``."""
        shape = tuple(input_shape)
        out_h, out_w = self._check_input_shape(shape)
        return (shape[0], out_h, out_w, shape[3])

    def _prepare(self, x: Any) -> tuple[np.ndarray, tuple[int, int]]:
        arr = as_float_array(x, owner=self)
        out_hw = self._check_input_shape(arr.shape)
        return arr, out_hw

    def _pads(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], tuple[int, int]]:
        return cu.pads(shape, self.pool_size, self.strides, self.padding)

    def _offsets(self) -> list[tuple[int, int]]:
        """Window offsets in row-major order."""
        return [(i, j) for i in range(self.pool_size[0]) for j in range(self.pool_size[1])]

    def _scatter(self, g: np.ndarray, weight_of: Any) -> np.ndarray:
        """``sum_k`` scatter of ``weight_of(k) * g`` onto window offset ``k``, cropped.

        ``g`` is ``(..., B, H', W', C)``; leading axes are carried along (the local
        Jacobian passes one basis vector per output element there).
        """
        x_shape = np.shape(self.inputs[0])
        pads = self._pads(x_shape)
        (top, bottom), (left, right) = pads
        padded = (*g.shape[:-4], x_shape[0], x_shape[1] + top + bottom, x_shape[2] + left + right)
        out = np.zeros((*padded, x_shape[3]), dtype=g.dtype)
        out_hw = g.shape[-3:-1]
        for k, (i, j) in enumerate(self._offsets()):
            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
            out[..., rows, columns, :] += weight_of(k, g)
        return np.ascontiguousarray(cu.crop(out, pads))

    def _vjp(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_input_gradients(self) -> list[Tensor]:
        """Per sample ``d out / d in`` as a ``(B, H·W·C, H'·W'·C)`` array (small inputs)."""
        out = np.asarray(self.outputs[0])
        n_out = math.prod(out.shape[1:])
        basis = np.eye(n_out, dtype=out.dtype).reshape(n_out, 1, *out.shape[1:])
        rows = self._vjp(basis)  # (n_out, B, H, W, C): row o of every sample's Jacobian
        b = out.shape[0]
        return [Tensor(np.ascontiguousarray(rows.reshape(n_out, b, -1).transpose(1, 2, 0)))]

    def get_weight_gradients(self) -> list[Tensor]:
        return []

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            return self.get_input_gradients()
        return [Tensor(self._vjp(np.asarray(up))) for up in J]

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        return []


class MaxPool2D(_Pooling2D):
    """The maximum of each ``pool_size`` window (``keras.layers.MaxPooling2D``).

    Args:
        pool_size: the window ``(ph, pw)`` or one int; default ``(2, 2)``.
        strides: the step between windows, default ``pool_size``.
        padding: ``"valid"`` or ``"same"`` (TensorFlow's: the odd extra row/column at the
            bottom/right; padded positions never win the maximum).

    Ties: the gradient of a window goes to ONE of its maximal elements, the first in
    row-major window order (as TensorFlow does), not shared between them. Where windows
    overlap (``strides < pool_size``) an element receives the gradient of every window
    it wins.
    """

    def forward(self, x: Any) -> np.ndarray:
        arr, out_hw = self._prepare(x)
        xp = cu.pad(arr, self._pads(arr.shape), value=-np.inf)
        offsets = self._offsets()
        rows, columns = cu.window_slice(*offsets[0], out_hw, self.strides)
        best = xp[:, rows, columns, :].copy()
        for i, j in offsets[1:]:
            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
            np.maximum(best, xp[:, rows, columns, :], out=best)
        return best

    def _vjp(self, g: np.ndarray) -> np.ndarray:
        """Each window's gradient to its first maximal element (row-major window order).

        The winners are found again from the input and the output: at offset ``k`` an
        element wins if it equals its window's maximum and no earlier offset won.
        """
        x = as_float_array(self.inputs[0])
        xp = cu.pad(x, self._pads(x.shape), value=-np.inf)
        out = np.asarray(self.outputs[0])
        _, out_h, out_w, _ = out.shape
        out_hw = (out_h, out_w)
        (top, bottom), (left, right) = self._pads(x.shape)
        padded = (*g.shape[:-4], x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right)
        # windows that do not overlap write disjoint slices: assign instead of add; when
        # they also tile the padded input exactly, every entry is written once
        disjoint = g.ndim == 4 and all(s >= p for s, p in zip(self.strides, self.pool_size))
        tiled = disjoint and self.strides == self.pool_size
        tiled = tiled and all(
            n * p == size for n, p, size in zip(out_hw, self.pool_size, padded[-2:])
        )
        dtype = np.result_type(g, out)
        if tiled:
            fast = _tiled_max_vjp(xp, out, g, self.pool_size, dtype)
            if fast is not None:
                return np.ascontiguousarray(cu.crop(fast, self._pads(x.shape)))
        dxp = (np.empty if tiled else np.zeros)((*padded, x.shape[3]), dtype=dtype)
        taken: np.ndarray | None = None
        hit = np.empty(out.shape, dtype=bool)
        for i, j in self._offsets():
            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
            np.equal(xp[:, rows, columns, :], out, out=hit)
            if taken is None:
                taken = hit.copy()
            else:
                np.greater(hit, taken, out=hit)  # a maximum here, none at an earlier offset
                taken |= hit
            if disjoint:
                np.multiply(g, hit, out=dxp[..., rows, columns, :])
            else:
                dxp[..., rows, columns, :] += g * hit
        return np.ascontiguousarray(cu.crop(dxp, self._pads(x.shape)))


def _tiled_max_vjp(
    xp: np.ndarray, out: np.ndarray, g: np.ndarray, pool: tuple[int, int], dtype: np.dtype
) -> np.ndarray | None:
    """The max-pooling VJP when the windows tile ``xp`` exactly and no window has a tie.

    Each window is a block of the ``(B, H', ph, W', pw, C)`` reshape of ``xp``: one comparison
    marks the maxima and one product spreads ``g`` onto them, both over the whole
    (contiguous) input. Returns None when a window holds its maximum more than once (or a
    NaN), where the general path applies the first-maximum rule.
    """
    b, hp, wp, c = xp.shape
    (ph, pw), (oh, ow) = pool, out.shape[1:3]
    blocks = xp.reshape(b, oh, ph, ow, pw, c)
    if np.isnan(out).any():  # a NaN window has no maximum to find
        return None
    hits = blocks == out[:, :, None, :, None, :]
    # every window holds its maximum at least once: exactly once in each iff the counts add up
    if np.count_nonzero(hits) != out.size:  # a tie: the first maximum alone must win
        return None
    dxp = np.multiply(hits, g[:, :, None, :, None, :], dtype=dtype)
    return dxp.reshape(b, hp, wp, c)


class AveragePooling2D(_Pooling2D):
    """The mean of each ``pool_size`` window (``keras.layers.AveragePooling2D``).

    Args:
        pool_size: the window ``(ph, pw)`` or one int; default ``(2, 2)``.
        strides: the step between windows, default ``pool_size``.
        padding: ``"valid"`` or ``"same"``; with ``"same"`` the padded positions are
            left out of the mean (a border window averages only its real elements), as
            TensorFlow does.
    """

    def _counts(self, shape: tuple[int, ...], out_hw: tuple[int, int]) -> np.ndarray:
        """How many real (unpadded) elements each window holds, ``(H', W', 1)``."""
        ones = cu.pad(np.ones((shape[1], shape[2], 1)), self._pads(shape))  # (Hp, Wp, 1)
        counts = np.zeros((*out_hw, 1))
        for i, j in self._offsets():
            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
            counts += ones[rows, columns, :]
        return counts

    def forward(self, x: Any) -> np.ndarray:
        arr, out_hw = self._prepare(x)
        xp = cu.pad(arr, self._pads(arr.shape))
        total = np.zeros((arr.shape[0], *out_hw, arr.shape[3]), dtype=arr.dtype)
        for i, j in self._offsets():
            rows, columns = cu.window_slice(i, j, out_hw, self.strides)
            total += xp[:, rows, columns, :]
        self._scale = (1.0 / self._counts(arr.shape, out_hw)).astype(arr.dtype)
        total *= self._scale
        return total

    def _vjp(self, g: np.ndarray) -> np.ndarray:
        shared = g * self._scale
        return self._scatter(shared, lambda k, up: up)


MaxPooling2D = MaxPool2D
AvgPool2D = AveragePooling2D
