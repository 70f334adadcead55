"""BatchNormalization, as ``keras.layers.BatchNormalization`` (Keras 3 semantics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import float_dtype
from ..core import Diffable, Tensor, Variable
from ..validation import as_float_array

__all__ = ["BatchNormalization"]


class BatchNormalization(Diffable):
    """Normalises each feature (channel) over the batch, then scales and shifts it.

    ``out = gamma * (x - mean) / sqrt(var + epsilon) + beta`` per feature along ``axis``
    (the channels of ``(batch, height, width, channels)``, the features of
    ``(batch, features)``), with mean and variance over every other axis.

    Args:
        axis: the feature axis, default -1 (channels last).
        momentum: of the moving statistics, default 0.99.
        epsilon: added to the variance, default 1e-3.
        center: learn an offset ``beta`` (else 0).
        scale: learn a factor ``gamma`` (else 1).

    * ``training=True`` (``fit``, ``batch_step``): the batch's own mean and (biased)
      variance normalise it, and the moving statistics are updated in place,
      ``moving = moving * momentum + batch_stat * (1 - momentum)``;
    * ``training=False`` (the default; ``evaluate``, ``predict``): ``moving_mean`` and
      ``moving_variance`` normalise, and nothing changes.

    A frozen layer (``layer.trainable = False``) runs in inference mode even when called
    with ``training=True``, and never updates its statistics: Keras 3's semantics, so
    fine-tuning a frozen pretrained layer keeps its statistics.

    The weights, created on the first call (or by ``build(input_shape)``) with one entry
    per feature, are ``gamma`` (ones) and ``beta`` (zeros), trainable, then
    ``moving_mean`` (zeros) and ``moving_variance`` (ones), non-trainable Variables that
    are saved and loaded with the others; before that ``weights`` is empty.

    No local Jacobian is materialised (``has_local_jacobian = False``): in training mode
    every output depends on every sample of the batch, and the input gradient is the
    exact batch-coupled product
    ``dx = inv_std / N * (N * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))``
    with ``dxhat = dout * gamma`` and sums over the ``N`` normalised positions.
    """

    has_local_jacobian = False

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
    ) -> None:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization: axis must be an int, got {axis!r}")
        if not _real(momentum) or not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        if not _real(epsilon) or not float(epsilon) > 0.0:
            raise ValueError(f"BatchNormalization: epsilon must be > 0, got {epsilon!r}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.gamma: Variable | None = None
        self.beta: Variable | None = None
        self.moving_mean: Variable | None = None
        self.moving_variance: Variable | None = None
        self._trainable = True
        self._ndim: int | None = None
        self._tile = 1  # feature vectors per row of the wide view (set per call)
        # (upstream, centered input, its two sums): shared by the two VJPs of one upstream
        self._sums_of: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        extra = "" if self.axis == -1 else f"axis={self.axis}"
        return f"BatchNormalization({extra})"

    # ------------------------------------------------------------------ weights
    @property
    def built(self) -> bool:
        return self.moving_mean is not None

    @property
    def weights(self) -> list[Tensor]:
        found = [self.gamma, self.beta, self.moving_mean, self.moving_variance]
        return [w for w in found if w is not None]

    @property
    def trainable(self) -> bool:
        """Whether ``gamma``/``beta`` train and ``training=True`` uses batch statistics."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for w in (self.gamma, self.beta):
            if w is not None:
                w.trainable = self._trainable

    def _feature_axis(self, shape: tuple[Any, ...]) -> int:
        ndim = len(shape)
        if ndim < 2 or not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(
                f"{self!r} expected inputs with a batch axis and a feature axis {self.axis} "
                f"(not the batch axis), got shape {tuple(shape)}"
            )
        axis = self.axis % ndim
        if self.moving_mean is not None:
            features = self.moving_mean.shape[0]
            if ndim != self._ndim or shape[axis] != features:
                raise ValueError(
                    f"{self!r} was built for inputs of rank {self._ndim} with {features} "
                    f"features on axis {self.axis}, got shape {tuple(shape)}"
                )
        return axis

    def build(self, input_shape: tuple[Any, ...]) -> None:
        """Create the weights for inputs of ``input_shape`` (``batch`` may be None)."""
        shape = tuple(input_shape)
        axis = self._feature_axis(shape)
        if self.moving_mean is not None:
            return
        n = shape[axis]
        if n is None or n < 1:
            raise ValueError(f"{self!r} expected a positive feature count, got shape {shape}")
        dtype = float_dtype()
        if self.scale:
            self.gamma = Variable(np.ones(n, dtype=dtype), name="gamma", trainable=self._trainable)
        if self.center:
            self.beta = Variable(np.zeros(n, dtype=dtype), name="beta", trainable=self._trainable)
        self.moving_variance = Variable(
            np.ones(n, dtype=dtype), name="moving_variance", trainable=False
        )
        self.moving_mean = Variable(np.zeros(n, dtype=dtype), name="moving_mean", trainable=False)
        self._ndim = len(shape)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        self._feature_axis(tuple(input_shape))
        return tuple(input_shape)

    # ------------------------------------------------------------------ forward
    # The computation works on a wide 2-D view of the input, ``(rows, k * features)``:
    # with the feature axis last, as for channels-last images, the input reshaped so each
    # row holds ``k`` whole feature vectors (``k`` the length of the axis before the
    # features), else a transposed copy with ``k = 1``. Per-feature vectors are tiled
    # ``k`` times to broadcast over a row, and per-feature sums are matrix-vector products
    # folded by ``k``: long rows keep every elementwise pass at memory speed.
    def _to_2d(self, arr: np.ndarray, axis: int) -> np.ndarray:
        if axis != arr.ndim - 1:
            arr = np.moveaxis(arr, axis, -1)
        return arr.reshape(-1, self._tile * arr.shape[-1])

    def _from_2d(self, arr2: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
        if axis == len(shape) - 1:
            return arr2.reshape(shape)
        moved = (*shape[:axis], *shape[axis + 1 :], shape[axis])
        return np.ascontiguousarray(np.moveaxis(arr2.reshape(moved), -1, axis))

    def _sum(self, wide: np.ndarray) -> np.ndarray:
        """Per-feature sums of a wide array, ``(features,)``."""
        return _column_sums(wide).reshape(self._tile, -1).sum(axis=0)

    def _dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per-feature sums of ``a * b`` for two wide arrays."""
        return np.einsum("nc,nc->c", a, b).reshape(self._tile, -1).sum(axis=0)

    def _wide(self, v: np.ndarray) -> np.ndarray:
        """A per-feature vector tiled to broadcast over a wide row."""
        return np.tile(v, self._tile)

    def forward(self, x: Any, training: bool = False) -> np.ndarray:
        arr = as_float_array(x, owner=self)
        axis = self._feature_axis(arr.shape)
        self.build(arr.shape)
        assert self.moving_mean is not None
        assert self.moving_variance is not None
        dtype = self.moving_mean.dtype
        self._tile = arr.shape[-2] if axis == arr.ndim - 1 and arr.ndim > 2 else 1
        x2 = self._to_2d(np.asarray(arr, dtype=dtype), axis)
        n = dtype.type(arr.size // arr.shape[axis])
        use_batch = bool(training) and self._trainable
        if use_batch:
            mean = self._sum(x2) / n
            centered = x2 - self._wide(mean)
            var = self._dot(centered, centered) / n  # biased, as Keras
        else:
            mean = np.asarray(self.moving_mean)
            var = np.asarray(self.moving_variance)
            centered = x2 - self._wide(mean)
        inv_std = 1.0 / np.sqrt(var + dtype.type(self.epsilon))
        out2 = centered * self._wide(self._gamma(dtype) * inv_std)
        if self.beta is not None:
            out2 += self._wide(np.asarray(self.beta))
        # the per-call state the gradients need (the tape snapshots it per call)
        self._centered, self._inv_std, self._batch_stats = centered, inv_std, use_batch
        self._axis, self._shape, self._count = axis, arr.shape, n
        if use_batch:
            m = dtype.type(self.momentum)
            self.moving_mean[...] = self.moving_mean * m + mean * (1 - m)
            self.moving_variance[...] = self.moving_variance * m + var * (1 - m)
        return self._from_2d(out2, arr.shape, axis)

    def _gamma(self, dtype: np.dtype) -> np.ndarray:
        return np.asarray(self.gamma) if self.gamma is not None else np.ones(1, dtype=dtype)

    # ---------------------------------------------------------------- gradients
    def get_input_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def get_weight_gradients(self) -> list[Tensor]:
        raise self._no_local_jacobian()

    def _sums(self, up: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``up`` as a wide array, and per feature ``sum(up)`` and ``sum(up * xhat)``.

        The tape asks for the input and then the weight gradients with the same upstream
        array: the sums of the first call are kept for the second.
        """
        g2 = self._to_2d(np.asarray(up), self._axis)
        cached = self._sums_of
        if cached is not None and cached[0] is up and cached[1] is self._centered:
            return g2, cached[2], cached[3]
        sum_g = self._sum(g2)
        sum_gxhat = self._dot(g2, self._centered) * self._inv_std
        self._sums_of = (up, self._centered, sum_g, sum_gxhat)
        return g2, sum_g, sum_gxhat

    def compose_input_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        centered, inv_std, axis, n = self._centered, self._inv_std, self._axis, self._count
        scale = self._gamma(centered.dtype) * inv_std  # d out / d x with constant statistics
        result = []
        for up in J:
            if not self._batch_stats:
                dx2 = self._to_2d(np.asarray(up), axis) * self._wide(scale)
            else:
                # dx = scale * (g - mean(g) - xhat * mean(g * xhat)), xhat = centered * inv_std
                g2, sum_g, sum_gxhat = self._sums(up)
                dx2 = g2 * self._wide(scale)
                dx2 -= centered * self._wide(scale * inv_std * sum_gxhat / n)
                dx2 -= self._wide(scale * sum_g / n)
            result.append(Tensor(self._from_2d(dx2, self._shape, axis)))
        return result

    def compose_weight_gradients(self, J: Any = None) -> list[Tensor]:
        if J is None or J[0] is None:
            raise self._no_local_jacobian()
        result = []
        for up in J:
            _, sum_g, sum_gx = self._sums(up)
            self._sums_of = None
            if self.gamma is not None:
                result.append(Tensor(sum_gx))
            if self.beta is not None:
                result.append(Tensor(sum_g))
            if self._batch_stats:  # the output does not depend on the moving statistics
                result += [Tensor(np.zeros_like(sum_g)), Tensor(np.zeros_like(sum_g))]
            else:  # out = gamma * (x - m) / sqrt(v + eps) + beta
                gamma = self._gamma(self._centered.dtype)
                d_mean = -gamma * self._inv_std * sum_g
                d_var = -0.5 * gamma * self._inv_std**2 * sum_gx
                result += [Tensor(d_mean), Tensor(d_var)]
        return result


def _column_sums(a2: np.ndarray) -> np.ndarray:
    """``a2.sum(axis=0)`` of an ``(N, C)`` array as one matrix-vector product (BLAS)."""
    return np.ones(a2.shape[0], dtype=a2.dtype) @ a2


def _real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
