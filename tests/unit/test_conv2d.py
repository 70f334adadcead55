"""Conv2D: forward against SciPy's correlate, exact gradients, lazy build, clear errors."""

from __future__ import annotations

import itertools
import os
import signal as posix_signal
import time

import numpy as np
import pytest
from finite_differences import numeric_grad
from scipy import signal

from beras import initializers
from beras.core import NoLocalJacobianError, Tensor, Variable
from beras.gradient_tape import GradientTape
from beras.layers import Conv2D
from beras.layers import _conv_utils as cu


def _tf_same(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def reference(x, kernel, bias, strides, padding):
    """Per (in, out) channel pair a SciPy 2-D correlation, summed over the inputs."""
    kh, kw = kernel.shape[:2]
    if padding == "same":
        pads = (_tf_same(x.shape[1], kh, strides[0]), _tf_same(x.shape[2], kw, strides[1]))
    else:
        pads = ((0, 0), (0, 0))
    return _correlate(x, kernel, bias, strides, pads)


def _correlate(x, kernel, bias, strides, pads):
    xp = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    b, _, _, c_in = x.shape
    f = kernel.shape[3]
    outs = []
    for n in range(b):
        planes = []
        for o in range(f):
            acc = sum(
                signal.correlate(xp[n, :, :, c], kernel[:, :, c, o], mode="valid")
                for c in range(c_in)
            )
            planes.append(acc[:: strides[0], :: strides[1]] + bias[o])
        outs.append(np.stack(planes, axis=-1))
    return np.stack(outs)


def make(filters, kernel_size, c_in, seed=0, **kwargs):
    layer = Conv2D(filters, kernel_size, seed=seed, **kwargs)
    layer.build((None, 9, 9, c_in))
    rng = np.random.default_rng(seed + 1)
    if layer.bias is not None:
        layer.bias[...] = rng.normal(size=layer.bias.shape)
    return layer


# ------------------------------------------------------------------------------ forward
CASES = [
    # (input shape, filters, kernel, strides, padding)
    ((2, 7, 6, 3), 4, (3, 3), (1, 1), "valid"),
    ((2, 7, 6, 3), 4, (3, 3), (1, 1), "same"),
    ((1, 8, 8, 2), 3, (2, 2), (1, 1), "same"),  # even kernel: odd padding after
    ((2, 9, 7, 1), 2, (4, 2), (2, 3), "same"),
    ((2, 9, 7, 2), 2, (3, 2), (2, 2), "valid"),
    ((1, 5, 5, 2), 1, (5, 5), (1, 1), "valid"),  # the window covers the whole input
    ((3, 6, 6, 2), 2, (1, 1), (2, 2), "same"),
]


@pytest.mark.parametrize(("shape", "filters", "kernel", "strides", "padding"), CASES)
def test_forward_matches_scipy_correlate(float64, shape, filters, kernel, strides, padding):
    rng = np.random.default_rng(1)
    layer = make(filters, kernel, shape[-1], strides=strides, padding=padding)
    x = rng.normal(size=shape)
    out = layer(x)
    expected = reference(x, np.asarray(layer.kernel), np.asarray(layer.bias), strides, padding)
    assert out.shape == expected.shape
    assert layer.compute_output_shape(shape) == expected.shape
    assert layer.compute_output_shape((None, *shape[1:])) == (None, *expected.shape[1:])
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)


def test_same_padding_is_tensorflows():
    # total padding 1 for an even kernel at stride 1: none before, one after
    assert cu.same_padding(8, 2, 1) == (0, 1)
    assert cu.same_padding(7, 3, 1) == (1, 1)
    assert cu.same_padding(9, 4, 2) == (1, 2)
    assert cu.same_padding(6, 1, 2) == (0, 0)


def test_no_bias_and_int_arguments(float64):
    layer = Conv2D(2, 3, strides=1, use_bias=False, seed=0)
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 2))
    out = layer(x)
    assert [w.name for w in layer.weights] == ["kernel"]
    assert layer.kernel_size == (3, 3)
    np.testing.assert_allclose(
        out, reference(x, np.asarray(layer.kernel), np.zeros(2), (1, 1), "valid"), atol=1e-12
    )


def test_float32_policy_and_int_inputs():
    layer = Conv2D(2, 3, seed=0)
    out = layer(np.ones((1, 4, 4, 1), dtype=np.int64))
    assert layer.kernel.dtype == np.float32
    assert out.dtype == np.float32
    out64 = layer(np.ones((1, 4, 4, 1), dtype=np.float64))
    assert out64.dtype == np.float32  # inputs are cast to the weights' dtype


# ------------------------------------------------------------------------ weights, build
def test_weights_built_lazily_from_the_channel_count():
    layer = Conv2D(5, (3, 2), seed=0)
    assert layer.weights == []
    assert not layer.built
    layer(np.zeros((2, 6, 6, 4)))
    assert layer.built
    assert [w.name for w in layer.weights] == ["kernel", "bias"]
    assert layer.kernel.shape == (3, 2, 4, 5)
    assert layer.bias.shape == (5,)
    assert all(isinstance(w, Variable) and w.trainable for w in layer.weights)
    np.testing.assert_array_equal(layer.bias, 0.0)


def test_glorot_uniform_uses_the_receptive_field():
    assert initializers.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert initializers.compute_fans((4, 8)) == (4, 8)
    layer = Conv2D(64, 3, seed=0)
    layer.build((None, 5, 5, 32))
    limit = np.sqrt(6.0 / (3 * 3 * 32 + 3 * 3 * 64))
    kernel = np.asarray(layer.kernel)
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit  # not a narrower (dense-fan) distribution
    np.testing.assert_allclose(kernel.std(), limit / np.sqrt(3), rtol=0.03)


def test_seed_makes_the_draw_reproducible():
    a, b = Conv2D(3, 3, seed=7), Conv2D(3, 3, seed=7)
    a.build((None, 4, 4, 2))
    b.build((None, 4, 4, 2))
    np.testing.assert_array_equal(a.kernel, b.kernel)


# ---------------------------------------------------------------------------- gradients
GRAD_CASES = [
    ((2, 5, 5, 3), 2, (3, 3), (1, 1), "valid"),
    ((2, 5, 6, 2), 3, (3, 3), (1, 1), "same"),
    ((1, 6, 6, 2), 2, (2, 2), (1, 1), "same"),
    ((2, 7, 6, 1), 2, (3, 2), (2, 3), "same"),
    ((2, 7, 7, 2), 2, (3, 3), (2, 2), "valid"),  # stride leaves the last row unread
    ((1, 4, 4, 2), 2, (2, 2), (3, 3), "valid"),
]


@pytest.mark.parametrize(("shape", "filters", "kernel", "strides", "padding"), GRAD_CASES)
def test_gradients_match_central_differences(float64, shape, filters, kernel, strides, padding):
    rng = np.random.default_rng(2)
    layer = make(filters, kernel, shape[-1], strides=strides, padding=padding)
    x = rng.normal(size=shape)
    out = layer(x)
    upstream = rng.normal(size=out.shape)

    (dx,) = layer.compose_input_gradients([upstream])
    dk, db = layer.compose_weight_gradients([upstream])
    np.testing.assert_allclose(dx, numeric_grad(lambda: layer.forward(x), x, upstream), atol=1e-7)
    np.testing.assert_allclose(
        dk, numeric_grad(lambda: layer.forward(x), layer.kernel, upstream), atol=1e-7
    )
    np.testing.assert_allclose(
        db, numeric_grad(lambda: layer.forward(x), layer.bias, upstream), atol=1e-7
    )


def test_gradient_tape_end_to_end(float64):
    """Two Conv2D calls through a tape: the gradients of sum(out) match central differences."""
    rng = np.random.default_rng(3)
    first = make(3, 3, 2, seed=1, padding="same")
    second = make(2, 2, 3, seed=2, strides=2)
    x = Variable(rng.normal(size=(2, 6, 6, 2)))
    with GradientTape() as tape:
        out = second(first(x))
    grads = tape.gradient(out, [x, first.kernel, second.kernel, second.bias])
    ones = np.ones(out.shape)

    def f():
        return second.forward(first.forward(x))

    for grad, source in zip(grads, [x, first.kernel, second.kernel, second.bias]):
        np.testing.assert_allclose(grad, numeric_grad(f, source, ones), atol=1e-7)


def test_kernel_gradient_outside_a_tape_rebuilds_the_columns(float64):
    layer = make(2, 3, 2)
    x = np.random.default_rng(4).normal(size=(2, 5, 5, 2))
    upstream = np.random.default_rng(5).normal(size=(2, 3, 3, 2))
    layer(x)  # no tape: no columns kept
    assert layer._cols is None
    outside = layer.compose_weight_gradients([upstream])
    with GradientTape():
        layer(x)
    assert layer._cols is not None
    inside = layer.compose_weight_gradients([upstream])
    for a, b in zip(outside, inside):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_has_no_local_jacobian():
    layer = Conv2D(2, 3, seed=0)
    layer(np.zeros((1, 4, 4, 1)))
    assert Conv2D.has_local_jacobian is False
    with pytest.raises(NoLocalJacobianError):
        layer.get_input_gradients()
    with pytest.raises(NoLocalJacobianError):
        layer.get_weight_gradients()


# ------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"filters": 0, "kernel_size": 3}, "filters"),
        ({"filters": 2, "kernel_size": 0}, "kernel_size"),
        ({"filters": 2, "kernel_size": (3, -1)}, "kernel_size"),
        ({"filters": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
        ({"filters": 2, "kernel_size": 3, "strides": 0}, "strides"),
        ({"filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
        ({"filters": 2, "kernel_size": 3, "kernel_initializer": "orthogonal"}, "initializer"),
        ({"filters": 2, "kernel_size": 3, "seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Conv2D(**kwargs)


def test_wrong_rank_names_the_layer_and_changes_nothing():
    layer = Conv2D(2, 3, seed=0)
    with pytest.raises(ValueError, match=r"Conv2D.*rank 4.*\(5, 5, 1\).*batch axis"):
        layer(np.zeros((5, 5, 1)))
    assert not layer.built
    assert layer.weights == []


def test_channel_mismatch_after_build_changes_nothing():
    layer = Conv2D(2, 3, seed=0)
    layer(np.ones((1, 5, 5, 3)))
    kernel = np.array(layer.kernel)
    out_before = np.array(layer.outputs[0])
    with pytest.raises(ValueError, match=r"Conv2D.*built for inputs with 3 channels.*got.*4"):
        layer(np.ones((1, 5, 5, 4)))
    np.testing.assert_array_equal(layer.kernel, kernel)
    np.testing.assert_array_equal(layer.outputs[0], out_before)
    assert layer.inputs[0].shape == (1, 5, 5, 3)


def test_window_larger_than_the_input():
    layer = Conv2D(2, (4, 2), seed=0)
    with pytest.raises(ValueError, match=r"Conv2D.*kernel \(4, 2\) is larger.*\(3, 5\)"):
        layer(np.ones((1, 3, 5, 1)))
    assert not layer.built
    # "same" pads up to the window: the same input is fine there
    assert Conv2D(2, (4, 2), padding="same", seed=0)(np.ones((1, 3, 5, 1))).shape == (1, 3, 5, 2)


def test_non_numeric_inputs_are_refused():
    with pytest.raises(TypeError, match="Conv2D"):
        Conv2D(2, 3)(np.full((1, 4, 4, 1), "a"))


def test_non_contiguous_inputs_give_the_same_result(float64):
    """im2col reads an unpadded input through its strides: views (slices, flips) work as is."""
    rng = np.random.default_rng(6)
    base = rng.normal(size=(2, 9, 12, 3))
    for padding in ("valid", "same"):
        layer = make(2, 3, 3, padding=padding)
        for view in (base[:, ::2, ::-1], base[:, 1:8, 2:11:2], base.transpose(0, 2, 1, 3)):
            assert not view.flags.c_contiguous
            kernel, bias = np.asarray(layer.kernel), np.asarray(layer.bias)
            expected = reference(np.ascontiguousarray(view), kernel, bias, (1, 1), padding)
            np.testing.assert_allclose(layer(view), expected, atol=1e-12)


def test_a_recorded_call_keeps_its_columns_while_later_calls_run(float64):
    """The columns' memory is reused from call to call, but never while a tape holds it:
    the same layer called again, in other tapes and outside any, leaves the first
    tape's kernel gradient as it was."""
    rng = np.random.default_rng(6)
    layer = make(3, 3, 2, seed=1)
    x, other = rng.normal(size=(2, 5, 5, 2)), rng.normal(size=(2, 5, 5, 2))
    with GradientTape() as first:
        out = layer(x)
    with GradientTape() as second:
        layer(other)
    layer(other)
    (kernel_grad,) = first.gradient(out, [layer.kernel])
    np.testing.assert_allclose(
        kernel_grad,
        numeric_grad(lambda: layer.forward(x), layer.kernel, np.ones(out.shape)),
        atol=1e-7,
    )
    del first, second


def test_the_columns_memory_is_reused_once_no_tape_holds_it(float64):
    layer = make(3, 3, 2, seed=1)
    x = np.random.default_rng(7).normal(size=(2, 5, 5, 2))
    with GradientTape():
        layer(x)
    block = id(layer._block)
    with GradientTape():  # the first tape is gone: its block is free again
        layer(x)
    assert id(layer._block) == block
    with GradientTape() as held:
        layer(x)
    with GradientTape():
        layer(2 * x)  # the first tape still holds the block: a new one
    assert id(layer._block) != block
    del held
    layer(x[:1])  # another batch size: another block
    assert layer._block.shape[0] == 1


def test_the_input_is_never_written_even_when_it_is_its_own_columns(float64):
    """A kernel as large as the input makes im2col's window view the input itself."""
    layer = make(2, 4, 1, seed=1)
    x = np.random.default_rng(8).normal(size=(3, 4, 4, 1))
    kept = x.copy()
    for scale in (1.0, 2.0, 3.0):
        with GradientTape():
            layer(scale * x)
        layer(x)
    np.testing.assert_array_equal(x, kept)


def test_a_block_held_anywhere_else_is_never_overwritten(float64):
    layer = make(3, 3, 2, seed=1)
    x = np.random.default_rng(9).normal(size=(2, 5, 5, 2))
    layer(x)
    held = layer._block  # one more reference than the layer's own
    kept = held.copy()
    layer(2 * x)
    assert layer._block is not held
    np.testing.assert_array_equal(held, kept)


@pytest.mark.parametrize("batch", [1, 3, 7])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_a_batch_split_across_threads_computes_the_same_step(monkeypatch, batch, padding):
    """With several BLAS threads a Conv2D step runs on parts of the batch in parallel
    threads: the output and the input gradient are the same arrays, bit for bit, as one
    pass over the whole batch (any batch, even one smaller than the thread count); the
    kernel and bias gradients add the parts' sums, equal up to rounding."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch, 6, 5, 3))
    up = rng.standard_normal((batch, 6, 5, 4) if padding == "same" else (batch, 4, 3, 4))

    def run(threads):
        monkeypatch.setattr(cu, "blas_threads", lambda: threads)
        layer = Conv2D(4, 3, padding=padding, seed=1)
        with GradientTape():
            y = layer(x)
        return [
            np.asarray(y),
            *layer.compose_input_gradients([up]),
            *layer.compose_weight_gradients([up]),
        ]

    monkeypatch.setattr(cu, "PARALLEL_FLOPS", 0)  # split even these small convolutions
    one = run(1)
    parts = []
    original = cu.over_batch

    def counting(work, batch, nbytes):
        return original(lambda part: parts.append(part) or work(part), batch, nbytes)

    monkeypatch.setattr(cu, "over_batch", counting)
    split = run(3)
    assert len(parts) == 3 * min(3, batch)  # forward, input and kernel gradients
    y, dx, dw, db = split
    np.testing.assert_array_equal(y, one[0])
    np.testing.assert_array_equal(dx, one[1])
    np.testing.assert_allclose(dw, one[2], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(db, one[3], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_over_batch_covers_every_sample_once_in_order(monkeypatch, threads):
    monkeypatch.setattr(cu, "PARALLEL_FLOPS", 0)
    monkeypatch.setattr(cu, "blas_threads", lambda: threads)
    for batch in (1, 2, 5, 8):
        out = np.zeros((batch, 3))

        def work(part, out=out):
            out[part] += 1
            return (part.start, part.stop)

        spans = cu.over_batch(work, batch, out.nbytes)
        np.testing.assert_array_equal(out, np.ones((batch, 3)))
        assert len(spans) == min(threads, batch)
        assert spans[0][0] == 0
        assert spans[-1][1] == batch
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_small_work_is_not_split(monkeypatch):
    monkeypatch.setattr(cu, "blas_threads", lambda: 4)
    assert cu.over_batch(lambda part: part, 8, cu.PARALLEL_FLOPS - 1) == [slice(0, 8)]
    assert len(cu.over_batch(lambda part: part, 8, cu.PARALLEL_FLOPS)) == 4


def test_each_part_runs_on_single_threaded_blas_and_the_limit_comes_back():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cu._blas.cache_clear()  # looked up afresh, as in a new process
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        assert cu.blas_threads() == 2
        seen = cu.over_batch(lambda part: cu.blas_threads(), 4, cu.PARALLEL_FLOPS)
        assert seen == [1, 1]
        assert cu.blas_threads() == 2
        with pytest.raises(RuntimeError, match="a part failed"):
            cu.over_batch(_fail_second_part, 4, cu.PARALLEL_FLOPS)
        assert cu.blas_threads() == 2  # restored after a failure too


def _fail_second_part(part):
    if part.start:
        raise RuntimeError("a part failed")


def test_blas_threads_follows_the_limit_in_force():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert cu.blas_threads() == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_splits_with_threads_of_its_own(monkeypatch):
    """The parent's pool threads do not exist in a forked child: the child starts its own
    instead of handing work to threads that will never run it (a hang)."""
    monkeypatch.setattr(cu, "PARALLEL_FLOPS", 0)
    monkeypatch.setattr(cu, "blas_threads", lambda: 2)
    out = np.zeros((4, 2))
    cu.over_batch(lambda part: out[part].fill(1), 4, 0)  # the parent's pool now exists
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if the split work completes
        child = np.zeros((4, 2))
        cu.over_batch(lambda part: child[part].fill(1), 4, 0)
        os._exit(0 if child.all() else 1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, posix_signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung in over_batch")


@pytest.mark.parametrize(
    ("start", "stop", "sample_bytes"), [(0, 128, 86528), (5, 9, 10), (0, 3, 1 << 30)]
)
def test_chunks_cover_a_part_in_blocks_of_several_samples(start, stop, sample_bytes):
    blocks = list(cu.chunks(slice(start, stop), sample_bytes))
    assert blocks[0].start == start
    assert blocks[-1].stop == stop
    assert all(a.stop == b.start for a, b in itertools.pairwise(blocks))
    sizes = [b.stop - b.start for b in blocks]
    step = max(cu.CHUNK_MIN_SAMPLES, cu.CHUNK_BYTES // sample_bytes)
    assert all(size == step for size in sizes[:-1])  # every block but the last is full
    assert 0 < sizes[-1] <= step


def test_the_input_gradient_is_the_same_in_any_blocks(monkeypatch):
    """Blocks of samples only change the order of independent work: same bits."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 7, 6, 3))
    layer = Conv2D(4, (3, 2), strides=(2, 1), padding="same", seed=2)
    y = layer(x)
    up = [rng.standard_normal(y.shape)]
    whole = layer.compose_input_gradients(up)[0]
    monkeypatch.setattr(cu, "CHUNK_MIN_SAMPLES", 1)
    monkeypatch.setattr(cu, "CHUNK_BYTES", 1)  # one sample per block
    np.testing.assert_array_equal(layer.compose_input_gradients(up)[0], whole)


def test_the_kernel_gradient_reads_the_columns_the_recorded_call_kept(monkeypatch):
    """Inside a tape the forward pass keeps its columns; the kernel gradient uses them
    instead of copying the windows again."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 5, 5, 3))
    layer = Conv2D(2, 3, seed=0)
    with GradientTape():
        y = layer(x)
    monkeypatch.setattr(cu, "im2col", _no_im2col)
    up = rng.standard_normal(y.shape)
    (dk, db) = layer.compose_weight_gradients([up])
    monkeypatch.undo()
    expected = Conv2D(2, 3, seed=0)
    expected(x)  # outside a tape: the columns are rebuilt from the input
    for got, want in zip((dk, db), expected.compose_weight_gradients([up]), strict=True):
        np.testing.assert_array_equal(got, want)


def _no_im2col(*args, **kwargs):
    raise AssertionError("im2col called again")


@pytest.mark.parametrize("channels", [None, 0])
def test_an_unknown_channel_count_is_refused_exactly(channels):
    layer = Conv2D(4, 3)
    with pytest.raises(ValueError) as err:
        layer.compute_output_shape((None, 5, 5, channels))
    assert str(err.value) == (
        f"Conv2D(4, kernel_size=(3, 3)) expected a known positive channel count, got input "
        f"shape "
        f"(None, 5, 5, {channels})"
    )


@pytest.mark.parametrize("padding", [None, 3, ("same",)])
def test_a_padding_that_is_not_a_string_is_refused_exactly(padding):
    with pytest.raises(ValueError) as err:
        Conv2D(4, 3, padding=padding)
    assert str(err.value) == f"Conv2D: padding must be one of ['valid', 'same'], got {padding!r}"


@pytest.mark.parametrize(
    ("shape", "filters", "split"), [((8, 26, 26, 32), 64, True), ((8, 14, 14, 32), 64, False)]
)
def test_a_step_is_split_by_the_work_of_its_products(monkeypatch, shape, filters, split):
    """Each phase passes its GEMM's floating-point operations, 2·B·H'·W'·kh·kw·C·F; the
    threshold scaled to this batch of 8 splits the 26x26x32 -> 64 convolution and not the
    14x14x32 -> 64 one, as it does at B = 128."""
    monkeypatch.setattr(cu, "blas_threads", lambda: 2)
    monkeypatch.setattr(cu, "PARALLEL_FLOPS", 1.5e9 * 8 / 128)
    seen = []
    original = cu.over_batch

    def recording(work, batch, flops):
        seen.append(flops)
        return original(work, batch, flops)

    monkeypatch.setattr(cu, "over_batch", recording)
    x = np.random.default_rng(7).standard_normal(shape).astype(np.float32)
    layer = Conv2D(filters, 3)
    with GradientTape() as tape:
        y = layer(x)
    tape.gradient(y, [layer.kernel])
    layer.compose_input_gradients([np.ones(y.shape, np.float32)])
    _, h, w, c = shape
    flops = 2.0 * shape[0] * (h - 2) * (w - 2) * 9 * c * filters
    assert seen == [flops, flops, flops]  # forward, kernel and input gradients
    assert all((f >= cu.PARALLEL_FLOPS) == split for f in seen)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_an_empty_batch_goes_through_a_tape(padding):
    """A batch of 0 images: an empty output and gradients of the right shapes, no error."""
    layer = Conv2D(4, 3, padding=padding, seed=0)
    x = Tensor(np.zeros((0, 5, 5, 2)))
    with GradientTape() as tape:
        y = layer(x)
    dx, dk, db = tape.gradient(y, [x, layer.kernel, layer.bias])
    assert y.shape == ((0, 5, 5, 4) if padding == "same" else (0, 3, 3, 4))
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dk, np.zeros((3, 3, 2, 4)))
    np.testing.assert_array_equal(db, np.zeros(4))
