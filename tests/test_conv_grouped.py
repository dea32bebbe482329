"""The input gradient of convolutions strided along the last axis (``_ops.grouped_transpose``).

When the last spatial axis has a stride of at least 2 (and no dilation) and the
whole patch gradient fits ``_ops.GROUPED_MAX_BYTES``, Conv's input gradient is one
product for every tap, added back in blocks of taps that land side by side. The
tests lift the threshold so that small shapes of every rank, stride, dilation and
padding take it, and compare with the fast paths off (the per-tap scatter), with
central finite differences (a layer in front, float64) and with PyTorch autograd;
the real threshold is checked on the MNIST-1D CNN's convolutions (taken) and on
others (not taken).
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import (
    fresh_gradients,
    front_layer,
    record_kernel_shapes,
    torch_conv_input_grad,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops, threads


def count_calls(mp: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Record the kernel shape of every grouped input gradient (the banded one, taken
    first for few channels and wide rows, turned off)."""
    mp.setattr(_ops, "BANDED_MAX_CHANNELS", 0)
    return record_kernel_shapes(mp, _ops, "grouped_transpose")


def strided_geometry(draw, max_kernel: int):
    """Rank 1-3, kernels up to ``max_kernel``, a stride of 2-4 along the last axis (1-3
    elsewhere), dilation 1-2 on the other axes and none on the last."""
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.lists(st.integers(1, max_kernel), min_size=rank, max_size=rank)))
    strides = (*draw(st.lists(st.integers(1, 3), min_size=rank - 1, max_size=rank - 1)),)
    strides += (draw(st.integers(2, 4)),)
    dilation = (*draw(st.lists(st.integers(1, 2), min_size=rank - 1, max_size=rank - 1)), 1)
    return rank, kernel, strides, dilation


@st.composite
def conv_cases(draw):
    rank, kernel, strides, dilation = strided_geometry(draw, 5)
    padding = draw(
        st.one_of(
            st.just("valid"),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(draw(st.integers(e, e + 6)) for e in extent)
    return kernel, strides, dilation, padding, spatial


@settings(max_examples=80, deadline=None)
@given(conv_cases(), st.integers(1, 4), st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**16))
def test_grouped_input_gradient_equals_the_scatter(case, batch, channels, filters, seed):
    kernel, strides, dilation, padding, spatial = case
    rng = np.random.default_rng(seed)
    layer = ln.Conv(
        filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
        dtype="float64", seed=0,
    )  # fmt: skip
    x = rng.standard_normal((batch, *spatial, channels))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    with _ops.fast_paths(False):
        off = fresh_gradients(layer, x, dy)
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        mp.setattr(_ops, "GROUPED_MAX_BYTES", 10**12)
        on = fresh_gradients(layer, x, dy)
        again = fresh_gradients(layer, x, 2 * dy)  # reused scratch arrays: a fresh result each time
    assert calls == [layer.params["kernel"].shape] * 2
    for a, b in zip(on[:2], off[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(again[1], 2 * off[1], rtol=1e-12, atol=1e-12)
    assert on[1] is not again[1] and not np.shares_memory(on[1], again[1])


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, padding",
    [
        ((2, 13, 3), 4, 3, 2, ((1, 1),)),  # the MNIST-1D CNN's geometry
        ((2, 9, 8, 3), 2, (3, 4), (1, 3), "valid"),
        ((1, 5, 6, 7, 2), 3, (2, 1, 3), (2, 1, 2), ((0, 1), (1, 0), (2, 1))),
    ],
)
def test_grouped_gradient_by_finite_differences(shape, filters, kernel, strides, padding, rng):
    """A layer in front, a non-uniform upstream gradient (gradcheck's default)."""
    x = rng.standard_normal(shape)
    layer = ln.Conv(filters, kernel, strides=strides, padding=padding, dtype="float64", seed=1)
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        mp.setattr(_ops, "GROUPED_MAX_BYTES", 10**12)
        result = ln.gradcheck([front_layer(x.shape), layer], x, training=True, jacobians=False)
    assert calls  # the grouped path ran
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, dilation",
    [
        ((3, 21, 25), 25, 3, 2, 1),  # the MNIST-1D CNN's second convolution, padded
        ((2, 11, 9, 5), 4, (3, 2), (2, 3), (2, 1)),
        ((2, 17, 4), 3, 2, 4, 1),  # kernel shorter than the stride: positions no tap reads
        ((2, 6, 7, 8, 2), 3, (2, 3, 5), (1, 2, 2), (2, 1, 1)),
    ],
)
def test_grouped_input_gradient_against_torch(shape, filters, kernel, strides, dilation):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    rng = np.random.default_rng(0)
    layer = ln.Conv(
        filters, kernel, strides=strides, dilation_rate=dilation, dtype="float64", seed=0
    )
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(layer.output_shape(x.shape))
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        mp.setattr(_ops, "GROUPED_MAX_BYTES", 10**12)
        layer.forward(x, training=True)
        dx = layer.backward_input(dy)
    assert calls
    expected = torch_conv_input_grad(torch, layer.params["kernel"], x, dy, strides, dilation)
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)


def test_threshold_picks_the_mnist1d_cnn_and_leaves_other_layers(rng):
    """With the real threshold: the MNIST-1D CNN's strided convolutions (batch 100) take
    it, in float32 close to float64; stride 1, a dilated last axis, more than
    ``GROUPED_MAX_BYTES`` of patch gradient, or the fast paths off: the other paths."""
    assert _ops.use_grouped((100, 21, 25), (3, 25, 25), (10,), (2,), (1,), 4)
    assert _ops.use_grouped((100, 12, 25), (3, 25, 25), (5,), (2,), (1,), 4)
    assert not _ops.use_grouped((100, 21, 25), (3, 25, 25), (19,), (1,), (1,), 4)  # stride 1
    assert not _ops.use_grouped((100, 21, 25), (3, 25, 25), (9,), (2,), (2,), 4)  # dilated
    assert not _ops.use_grouped((64, 30, 30, 32), (3, 3, 32, 64), (14, 14), (2, 2), (1, 1), 4)
    with _ops.fast_paths(False):
        assert not _ops.use_grouped((100, 21, 25), (3, 25, 25), (10,), (2,), (1,), 4)
    x = rng.standard_normal((100, 19, 25))
    dy = rng.standard_normal((100, 10, 25))
    results = []
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        for dtype in ("float64", "float32"):
            layer = ln.Conv1D(25, 3, strides=2, padding=1, dtype=dtype, seed=0)
            results.append(fresh_gradients(layer, x.astype(dtype), dy.astype(dtype))[1])
        wide = ln.Conv2D(64, 3, strides=2, seed=0)
        fresh_gradients(
            wide, rng.standard_normal((64, 30, 30, 32)), rng.standard_normal((64, 14, 14, 64))
        )
    assert calls == [(3, 25, 25)] * 2
    with _ops.fast_paths(False):
        reference = fresh_gradients(
            ln.Conv1D(25, 3, strides=2, padding=1, dtype="float64", seed=0), x, dy
        )[1]
    np.testing.assert_allclose(results[0], reference, rtol=1e-12, atol=1e-12)
    assert results[1].dtype == np.float32
    np.testing.assert_allclose(results[1], reference, atol=1e-5 * np.abs(reference).max())


@st.composite
def transpose_cases(draw):
    rank, kernel, strides, dilation = strided_geometry(draw, 4)
    padding = draw(st.sampled_from(["valid", "same"]))
    output_padding = None
    if draw(st.booleans()):
        output_padding = tuple(draw(st.integers(0, s - 1)) for s in strides)
    spatial = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    return kernel, strides, dilation, padding, output_padding, spatial


@settings(max_examples=60, deadline=None)
@given(
    transpose_cases(),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 2**16),
)
def test_transposed_convolution_forward_equals_the_scatter(case, batch, channels, filters, seed):
    """A transposed convolution's forward pass is the same sum: its full output in blocks
    of adjacent taps (the last axis rounded up), then the kept window."""
    kernel, strides, dilation, padding, output_padding, spatial = case
    rng = np.random.default_rng(seed)
    layer = ln.ConvTranspose(
        filters, kernel, strides=strides, padding=padding, output_padding=output_padding,
        dilation_rate=dilation, dtype="float64", seed=0,
    )  # fmt: skip
    x = rng.standard_normal((batch, *spatial, channels))
    try:
        out_shape = layer.output_shape(x.shape)
    except ValueError:  # a geometry whose output would be empty
        assume(False)
    dy = rng.standard_normal(out_shape)
    with _ops.fast_paths(False):
        off = fresh_gradients(layer, x, dy)
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        mp.setattr(_ops, "GROUPED_MAX_BYTES", 10**12)
        on = fresh_gradients(layer, x, dy)
    assert calls == [layer.params["kernel"].shape]
    np.testing.assert_allclose(on[0], off[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(on[1], off[1], rtol=1e-12, atol=1e-12)
    for key in off[2]:
        np.testing.assert_allclose(on[2][key], off[2][key], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, output_padding",
    [
        ((2, 6, 3), 4, 3, 2, None),
        ((2, 4, 3, 2), 3, (2, 3), (1, 3), (0, 1)),
    ],
)
def test_transposed_convolution_against_torch(shape, filters, kernel, strides, output_padding):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    rng = np.random.default_rng(0)
    rank = len(shape) - 2
    layer = ln.ConvTranspose(
        filters, kernel, strides=strides, output_padding=output_padding, dtype="float64", seed=0
    )
    x = rng.standard_normal(shape)
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        y = layer.forward(x)
    assert calls
    f = torch.nn.functional
    conv_t = {1: f.conv_transpose1d, 2: f.conv_transpose2d}[rank]
    perm = (0, rank + 1, *range(1, rank + 1))
    w = layer.params["kernel"]  # (*k, F, C) -> (C, F, *k)
    wt = torch.tensor(w.transpose(rank + 1, rank, *range(rank)).copy())
    pad = output_padding or 0
    yt = conv_t(torch.tensor(x.transpose(perm).copy()), wt, None, strides, 0, pad)
    inv = (0, *range(2, rank + 2), 1)
    np.testing.assert_allclose(y, yt.numpy().transpose(inv), rtol=1e-10, atol=1e-12)


def test_transposed_convolution_by_finite_differences(rng):
    """A layer in front, a non-uniform upstream gradient (gradcheck's default)."""
    x = rng.standard_normal((2, 3, 4, 2))
    layer = ln.ConvTranspose(3, (2, 3), strides=(2, 2), padding="same", dtype="float64", seed=1)
    with pytest.MonkeyPatch.context() as mp:
        calls = count_calls(mp)
        result = ln.gradcheck([front_layer(x.shape), layer], x, training=True, jacobians=False)
    assert calls
    assert result.passed, str(result)


def test_blocks_of_different_widths_share_one_thread_count(monkeypatch, rng):
    """A last block narrower than the others (kernel 5, stride 4: blocks of 4 taps and 1)
    runs on the threads the widest block earns: BLAS's count is set at most once for
    the blocks and once back, not around every narrow product."""
    before = ln.get_num_threads()
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    layer = ln.Conv2D(64, (3, 5), strides=(1, 4), seed=0)
    x = rng.standard_normal((4, 12, 105, 16)).astype("float32")
    dy = rng.standard_normal(layer.output_shape(x.shape)).astype("float32")
    layer.forward(x, training=True)
    ln.set_num_threads(2)
    try:
        calls = count_calls(monkeypatch)
        switches: list[int] = []
        real = threads._set_blas
        monkeypatch.setattr(threads, "_set_blas", lambda n: (switches.append(n), real(n)))
        with threads.held():
            dx = layer.backward_input(dy)
    finally:
        ln.set_num_threads(before)
    assert calls == [(3, 5, 16, 64)]
    assert len(switches) <= 2  # (into the blocks' count, and back when the step ends)
    with _ops.fast_paths(False):
        layer.forward(x, training=True)
        reference = layer.backward_input(dy)
    np.testing.assert_allclose(dx, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
