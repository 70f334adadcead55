"""(f) Conv2D against PyTorch, and (g) what pooling and batch normalisation cost after it.

(f) ``conv2d``: one forward and backward pass (input, kernel and bias gradients, from an
upstream gradient of ones) of a 3x3 ``Conv2D`` at B = 128, float32, on the two layers of
the usual small MNIST CNN, with 1 and 2 BLAS threads:

* ``beras``: ``Conv2D`` called inside a ``GradientTape``, then ``tape.gradient`` with
  respect to the input, the kernel and the bias (channels-last, as Beras stores images);
* ``torch``: ``torch.nn.functional.conv2d`` on the same numbers in PyTorch's own layout
  (channels-first), then ``torch.autograd.grad`` of the same three; CPU, with
  ``torch.set_num_threads`` set to the same thread count. These benchmarks are skipped
  when PyTorch is not installed (``tox -e bench-torch`` installs it).

The BLAS thread count is set per benchmark with threadpoolctl (the suite's default, one
thread, is restored after each).

(g) ``cnn_layer_cost``: the layers that follow each convolution of ``beras train
--model cnn`` (28x28x1 -> 32 and 14x14x32 -> 64, 3x3, "same"), forward and backward
inside a tape at B = 128, float32, one BLAS thread, each as a ratio to that convolution
(``conv``): ``maxpool`` and ``avgpool`` (2x2) on its output, ``batchnorm`` (training
mode: batch statistics and the moving-statistics update) on the pooled maps, where the
CNN normalises, and ``batchnorm_unpooled`` on the convolution's output, where the usual
conv -> BN -> ReLU -> pool order would (for comparison, no target).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import beras
from benchmarks.common import floatx, tag

BATCH = 128
#: (height, width, in channels, filters) of the two 3x3 convolutions benchmarked
CONV_SHAPES = ((28, 28, 1, 32), (26, 26, 32, 64))
THREADS = (1, 2)
CONV_CASES = [
    (shape, threads, role)
    for shape in CONV_SHAPES
    for threads in THREADS
    for role in ("beras", "torch")
]


def _case_name(shape: tuple[int, int, int, int], threads: int) -> str:
    h, w, c, f = shape
    return f"{h}x{w}x{c}->{f} B={BATCH} {threads} thread{'s' if threads > 1 else ''}"


def _data(shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input ``(B, H, W, C)``, kernel ``(3, 3, C, F)`` and bias ``(F,)``, float32."""
    h, w, c, f = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, h, w, c)).astype(np.float32)
    kernel = (rng.standard_normal((3, 3, c, f)) / np.sqrt(9 * c)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    return x, kernel, bias


def beras_conv_step(shape: tuple[int, int, int, int]) -> Callable[[], list[Any]]:
    """Forward and backward of a Beras ``Conv2D``: d(sum of outputs)/d(input, kernel, bias)."""
    x, kernel, bias = _data(shape)
    with floatx("float32"):
        layer = beras.Conv2D(shape[3], 3)
        layer.build(x.shape)
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    x_tensor = beras.Tensor(x)
    sources = [x_tensor, layer.kernel, layer.bias]

    def step() -> list[Any]:
        with beras.GradientTape() as tape:
            y = layer(x_tensor)
        return tape.gradient(y, sources)

    return step


def torch_conv_step(shape: tuple[int, int, int, int]) -> Callable[[], list[Any]]:
    """The same computation in PyTorch (channels-first, its native layout)."""
    torch = pytest.importorskip("torch")
    x, kernel, bias = _data(shape)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)
    wt = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).requires_grad_(True)
    bt = torch.from_numpy(bias).requires_grad_(True)

    def step() -> list[Any]:
        y = torch.nn.functional.conv2d(xt, wt, bt)
        return list(torch.autograd.grad(y, [xt, wt, bt], torch.ones_like(y)))

    return step


@pytest.mark.benchmark(max_time=2.0, min_rounds=5, warmup=True, warmup_iterations=2)
@pytest.mark.parametrize(
    ("shape", "threads", "role"),
    CONV_CASES,
    ids=[f"{s[0]}x{s[1]}x{s[2]}-{s[3]}-T{t}-{r}" for s, t, r in CONV_CASES],
)
def test_conv2d(
    benchmark: Any, smoke: bool, shape: tuple[int, int, int, int], threads: int, role: str
) -> None:
    tag(benchmark, "conv2d", _case_name(shape, threads), role, threads=threads)
    if role == "torch":
        torch = pytest.importorskip("torch")
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        step = torch_conv_step(shape)
    else:
        step = beras_conv_step(shape)
    try:
        with threadpool_limits(threads, user_api="blas"):
            grads = benchmark(step)
    finally:
        if role == "torch":
            torch.set_num_threads(previous)
    assert len(grads) == 3
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_conv_references_agree() -> None:
    """The two roles compute the same gradients (so the ratio compares equal work)."""
    pytest.importorskip("torch")
    shape = (8, 9, 3, 4)
    ours = beras_conv_step(shape)()
    theirs = [g.detach().numpy() for g in torch_conv_step(shape)()]
    np.testing.assert_allclose(ours[0], theirs[0].transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours[1], theirs[1].transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ours[2], theirs[2], rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------- (g) pooling, batch norm
#: The convolutions of ``beras train --model cnn`` (3x3, "same"): (H, W, C, filters)
CNN_CONVS = ((28, 28, 1, 32), (14, 14, 32, 64))
LAYER_ROLES = ("conv", "maxpool", "avgpool", "batchnorm", "batchnorm_unpooled")
LAYER_CASES = [(shape, role) for shape in CNN_CONVS for role in LAYER_ROLES]


def layer_step(shape: tuple[int, int, int, int], role: str) -> Callable[[], list[Any]]:
    """Forward and backward, inside a tape, of a layer of a block of the CNN.

    ``conv`` is the block's 3x3 "same" convolution (on a ``shape[:3]`` input);
    ``maxpool`` and ``avgpool`` (2x2) act on its ``(B, H, W, filters)`` output, and
    ``batchnorm`` on the max-pooled ``(B, H/2, W/2, filters)`` maps, as the CNN places
    them (conv -> pool -> BN -> ReLU). ``batchnorm_unpooled`` is batch normalisation
    on the convolution's output, as the usual conv -> BN -> ReLU -> pool places it.
    """
    x, kernel, bias = _data(shape)
    with floatx("float32"):
        conv = beras.Conv2D(shape[3], 3, padding="same")
        conv.build(x.shape)
        conv.kernel.assign(kernel)
        conv.bias.assign(bias)
        if role == "conv":
            layer: Any = conv
        else:
            x = np.asarray(conv(x))  # the feature maps the layer sees in the CNN
            if role == "batchnorm":
                x = np.asarray(beras.layers.MaxPool2D()(x))
            layer = {
                "maxpool": lambda: beras.layers.MaxPool2D(),
                "avgpool": lambda: beras.layers.AveragePooling2D(),
                "batchnorm": lambda: beras.layers.BatchNormalization(),
                "batchnorm_unpooled": lambda: beras.layers.BatchNormalization(),
            }[role]()
            layer(x)  # builds BatchNormalization's weights
    x_tensor = beras.Tensor(x)
    sources = [x_tensor, *layer.trainable_variables]

    def step() -> list[Any]:
        with beras.GradientTape() as tape:
            y = layer(x_tensor, training=True)
        return tape.gradient(y, sources)

    return step


def _after(shape: tuple[int, int, int, int]) -> str:
    h, w, c, f = shape
    return f"CNN block {h}x{w}x{c}->{f} same, B={BATCH} float32"


@pytest.mark.benchmark(max_time=1.0, min_rounds=10, warmup=True, warmup_iterations=2)
@pytest.mark.parametrize(
    ("shape", "role"), LAYER_CASES, ids=[f"{s[0]}x{s[1]}x{s[2]}-{s[3]}-{r}" for s, r in LAYER_CASES]
)
def test_cnn_layer_cost(benchmark: Any, shape: tuple[int, int, int, int], role: str) -> None:
    tag(benchmark, "cnn_layer_cost", _after(shape), role)
    step = layer_step(shape, role)
    grads = benchmark(step)
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads)
