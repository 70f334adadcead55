"""Hand-written NumPy training steps of the benchmark MLP: the yardstick for Beras.

Both steps train ``Dense-ReLU-Dense-ReLU-Dense-Softmax`` with categorical cross-entropy
and Adam, exactly the computation ``SequentialModel.batch_step`` performs for the same
model (same forward, same loss on clipped probabilities, same Adam with bias correction
and epsilon outside the root), and return the same ``(loss, accuracy)``:

* ``OrdinaryStep`` is what a competent student writes: vectorised, temporaries
  everywhere, the fused softmax/cross-entropy gradient ``(p - y) / B``, textbook Adam
  looping over the parameters. It is the reference of every headline ratio.
* ``TunedStep`` is the same step written for speed: buffers preallocated per batch
  size, ``out=`` everywhere, gradients written into one flat buffer, and Adam applied
  to the whole flat parameter vector with a handful of ufunc calls. It is reported
  separately, to show what is left on the table.

Neither checks for NaN (Beras's ``batch_step`` does): the references do strictly less
work than Beras, so a ratio near 1 means Beras's bookkeeping costs next to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["OrdinaryStep", "TunedStep", "clone_weights"]


def clone_weights(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Plain-ndarray copies of ``[W1, b1, W2, b2, ...]`` (e.g. a Beras model's weights)."""
    return [np.array(w, copy=True) for w in weights]


class OrdinaryStep:
    """An ordinary vectorised NumPy training step (forward, fused gradient, textbook Adam)."""

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        clip: float = 1e-12,
    ) -> None:
        self.params = clone_weights(weights)
        self.initial = clone_weights(weights)
        self.lr, self.b1, self.b2, self.eps, self.clip = (
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            clip,
        )
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def reset(self) -> None:
        """Back to the initial weights and a fresh optimizer state."""
        for p, p0, m, v in zip(self.params, self.initial, self.m, self.v):
            p[...] = p0
            m[...] = 0
            v[...] = 0
        self.t = 0

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        W1, b1, W2, b2, W3, b3 = self.params
        batch = x.shape[0]
        # forward
        z1 = x @ W1 + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2 + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3 + b3
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        eps = p.dtype.type(self.clip)
        loss = -np.sum(y * np.log(np.clip(p, eps, 1 - eps))) / batch
        acc = np.mean(p.argmax(axis=1) == y.argmax(axis=1))
        # backward: fused softmax + cross-entropy
        dz3 = (p - y) / batch
        dW3 = a2.T @ dz3
        db3 = dz3.sum(axis=0, keepdims=True)
        dz2 = (dz3 @ W3.T) * (z2 > 0)
        dW2 = a1.T @ dz2
        db2 = dz2.sum(axis=0, keepdims=True)
        dz1 = (dz2 @ W2.T) * (z1 > 0)
        dW1 = x.T @ dz1
        db1 = dz1.sum(axis=0, keepdims=True)
        # textbook Adam
        self.t += 1
        for p_, g, m, v in zip(self.params, [dW1, db1, dW2, db2, dW3, db3], self.m, self.v):
            m[...] = self.b1 * m + (1 - self.b1) * g
            v[...] = self.b2 * v + (1 - self.b2) * g * g
            m_hat = m / (1 - self.b1**self.t)
            v_hat = v / (1 - self.b2**self.t)
            p_ -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return float(loss), float(acc)


class TunedStep:
    """The same step with preallocated buffers, ``out=`` and a flat, in-place Adam."""

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        clip: float = 1e-12,
    ) -> None:
        weights = clone_weights(weights)
        dtype = weights[0].dtype
        sizes = [w.size for w in weights]
        self.flat = np.concatenate([w.ravel() for w in weights]).astype(dtype)
        self.initial = self.flat.copy()
        self.grad = np.zeros_like(self.flat)
        self.m, self.v, self.tmp = (np.zeros_like(self.flat) for _ in range(3))
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        offset = 0
        for w, size in zip(weights, sizes):
            self.params.append(self.flat[offset : offset + size].reshape(w.shape))
            self.grads.append(self.grad[offset : offset + size].reshape(w.shape))
            offset += size
        self.dtype = dtype
        self.lr, self.b1, self.b2, self.eps = learning_rate, beta_1, beta_2, epsilon
        self.lo, self.hi = dtype.type(clip), dtype.type(1 - clip)
        self.t = 0
        self._buffers: dict[int, dict[str, np.ndarray]] = {}

    def reset(self) -> None:
        self.flat[...] = self.initial
        self.m[...] = 0
        self.v[...] = 0
        self.t = 0

    def _buf(self, batch: int) -> dict[str, np.ndarray]:
        buf = self._buffers.get(batch)
        if buf is None:
            shapes = {"z1": 1, "z2": 3, "z3": 5}
            buf = {
                k: np.empty((batch, self.params[i].shape[1]), self.dtype) for k, i in shapes.items()
            }
            buf["d1"] = np.empty_like(buf["z1"])
            buf["d2"] = np.empty_like(buf["z2"])
            buf["d3"] = np.empty_like(buf["z3"])
            buf["row"] = np.empty((batch, 1), self.dtype)
            self._buffers[batch] = buf
        return buf

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        W1, b1, W2, b2, W3, b3 = self.params
        gW1, gb1, gW2, gb2, gW3, gb3 = self.grads
        buf = self._buf(x.shape[0])
        z1, z2, z3, d1, d2, d3, row = (buf[k] for k in ("z1", "z2", "z3", "d1", "d2", "d3", "row"))
        inv_batch = self.dtype.type(1.0 / x.shape[0])
        # forward; z1, z2 become the activations (ReLU in place)
        np.matmul(x, W1, out=z1)
        z1 += b1
        np.maximum(z1, 0, out=z1)
        np.matmul(z1, W2, out=z2)
        z2 += b2
        np.maximum(z2, 0, out=z2)
        np.matmul(z2, W3, out=z3)
        z3 += b3
        np.max(z3, axis=1, keepdims=True, out=row)
        z3 -= row
        np.exp(z3, out=z3)
        np.sum(z3, axis=1, keepdims=True, out=row)
        z3 /= row  # z3 is now p
        acc = np.mean(z3.argmax(axis=1) == y.argmax(axis=1))
        np.clip(z3, self.lo, self.hi, out=d3)
        np.log(d3, out=d3)
        d3 *= y
        loss = -d3.sum() * inv_batch
        # backward
        np.subtract(z3, y, out=d3)
        d3 *= inv_batch
        np.matmul(z2.T, d3, out=gW3)
        np.sum(d3, axis=0, keepdims=True, out=gb3)
        np.matmul(d3, W3.T, out=d2)
        d2 *= z2 > 0
        np.matmul(z1.T, d2, out=gW2)
        np.sum(d2, axis=0, keepdims=True, out=gb2)
        np.matmul(d2, W2.T, out=d1)
        d1 *= z1 > 0
        np.matmul(x.T, d1, out=gW1)
        np.sum(d1, axis=0, keepdims=True, out=gb1)
        # flat, in-place Adam
        self.t += 1
        g, m, v, tmp = self.grad, self.m, self.v, self.tmp
        m *= self.b1
        np.multiply(g, 1.0 - self.b1, out=tmp)
        m += tmp
        v *= self.b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(1.0 - self.b2**self.t)  # a Python float: float32 math
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1.0 - self.b1**self.t)
        self.flat -= tmp
        return float(loss), float(acc)
