"""A convolution's patches copied and multiplied block by block (``_ops.patch_product``),
and its per-tap input gradient taken in blocks of samples (``_ops.conv_transpose``).

The forward pass of a convolution with several channels builds its patch matrix a
few samples at a time and multiplies each block while it is in cache, the blocks
handed to threads. Over shapes, strides, dilations, paddings, bias, block sizes
(one sample a block to the whole batch) and 1-3 threads: the output equals the whole
patch matrix times the kernel matrix to float rounding, the patch matrix it returns
is :func:`_ops.im2col`'s exactly (the kernel gradient reads it), a fixed block size
gives the same bits whatever the number of threads, and a ``Conv`` layer gives the
same outputs and gradients with the fast paths on and off. Small patch matrices and
one channel take the whole product. The correlation input gradient goes through the
same blocks, and the per-tap input gradient in blocks of samples (down to one sample a
block, split or not) equals the plain path's.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops, threads

geometry = st.tuples(
    st.integers(1, 2),  # spatial dims
    st.integers(1, 7),  # batch
    st.integers(2, 5),  # channels (one channel takes the transposed im2col)
    st.integers(1, 4),  # filters
    st.integers(1, 3),  # kernel
    st.integers(1, 2),  # stride
    st.integers(1, 2),  # dilation
    st.integers(0, 2),  # padding
)


def layer_input(g, seed):
    """A generator seeded with ``seed`` and an input that geometry ``g`` fits."""
    rank, n, c, _, k, _, d, _ = g
    rng = np.random.default_rng(seed)
    size = k + (k - 1) * (d - 1) + rng.integers(0, 5)
    return rng, rng.standard_normal((n, *(size,) * rank, c))


def geometry_arrays(g, seed):
    """``(rng, xp, (kernel, out, strides, dilation))``: the padded input and its geometry."""
    rank, _, _, _, k, s, d, p = g
    rng, x = layer_input(g, seed)
    xp = _ops.pad(x, ((p, p),) * rank)
    kernel, strides, dilation = (k,) * rank, (s,) * rank, (d,) * rank
    out = tuple((m - (k - 1) * d - 1) // s + 1 for m in xp.shape[1:-1])
    return rng, xp, (kernel, out, strides, dilation)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    g=geometry,
    ones=st.booleans(),
    block_bytes=st.sampled_from([1, 200, 4096, 1 << 20]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_blocks_equal_the_whole_product(g, ones, block_bytes, parts, seed, forced):
    rng, xp, (kernel, out, strides, dilation) = geometry_arrays(g, seed)
    w = rng.standard_normal((math.prod(kernel) * xp.shape[-1] + int(ones), g[3]))
    col_ref = _ops.im2col(xp, kernel, out, strides, dilation, ones=ones)
    expected = col_ref @ w
    forced(block_bytes, parts)
    col, y = _ops.patch_product(xp, kernel, out, strides, dilation, w, _ops.Workspace(), ones)
    np.testing.assert_array_equal(col, col_ref)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # the same blocks on one thread: the same bits
    forced(block_bytes, 1)
    _, y1 = _ops.patch_product(xp, kernel, out, strides, dilation, w, _ops.Workspace(), ones)
    np.testing.assert_array_equal(y1, y)


def test_several_blocks_and_parts_are_taken(forced, monkeypatch):
    """A batch of 6 on 2 threads: a sample a block (6 blocks), or a row of one (24)."""
    calls = []
    original = threads.over_batch

    def counted(fn, n, size):
        calls.append((n, threads.split_count(n, size)))
        return original(fn, n, size)

    monkeypatch.setattr(threads, "over_batch", counted)
    x = np.random.default_rng(0).standard_normal((6, 5, 5, 3)).astype(np.float32)
    w = np.ones((2 * 2 * 3, 4), np.float32)
    expected = _ops.im2col(x, (2, 2), (4, 4), (1, 1), (1, 1)) @ w
    for block_bytes, blocks in ((16 * 12 * 4, 6), (1, 24)):  # 16 rows of 12 floats a sample
        forced(block_bytes, 2)
        _, y = _ops.patch_product(x, (2, 2), (4, 4), (1, 1), (1, 1), w, _ops.Workspace())
        assert calls[-1] == (blocks, 2)
        np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_small_patches_take_one_product(monkeypatch):
    """Below ``MIN_SPLIT_SIZE`` entries, and with one channel: im2col and one product."""
    monkeypatch.setattr(_ops, "PATCH_BLOCK_BYTES", 1)  # the blocks would be a row of 4 each
    rows = []
    original = threads.matmul

    def counted(a, b, out=None, **kw):
        rows.append(a.shape[0])
        return original(a, b, out, **kw)

    monkeypatch.setattr(threads, "matmul", counted)
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3))
    w = np.ones((2 * 2 * 3, 4))
    _, y = _ops.patch_product(x, (2, 2), (4, 4), (1, 1), (1, 1), w, _ops.Workspace())
    np.testing.assert_allclose(y, _ops.im2col(x, (2, 2), (4, 4), (1, 1), (1, 1)) @ w)
    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 0)
    _ops.patch_product(x[..., :1], (2, 2), (4, 4), (1, 1), (1, 1), w[:4], _ops.Workspace())
    assert rows == [32, 32]  # one product of both samples' 16 rows, each time
    _ops.patch_product(x, (2, 2), (4, 4), (1, 1), (1, 1), w, _ops.Workspace())
    assert rows == [32, 32] + [4] * 8  # several channels, split allowed: a product a block


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(g=geometry, use_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_layer_same_with_fast_paths_off(g, use_bias, seed, forced):
    _, _, _, f, k, s, d, p = g
    _, x = layer_input(g, seed)
    forced(1, 2)

    def run():
        layer = ln.layers.Conv(
            f,
            k,
            strides=s,
            dilation_rate=d,
            padding=p,
            use_bias=use_bias,
            dtype="float64",
            seed=0,
        )
        y = layer.forward(x, training=True)
        dy = np.linspace(-1, 1, y.size).reshape(y.shape)
        return y, layer.backward_input(dy), layer.backward_params(dy)

    y1, dx1, g1 = run()
    with _ops.fast_paths(False):
        y0, dx0, g0 = run()
    np.testing.assert_allclose(y1, y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-10, atol=1e-12)
    for key in g0:
        np.testing.assert_allclose(g1[key], g0[key], rtol=1e-10, atol=1e-12)


def check_input_gradient(g, seed, force) -> None:
    """A ``Conv``'s input gradient after ``force()`` equals the plain path's (fast paths off)."""
    _, _, _, f, k, s, d, p = g
    rng, x = layer_input(g, seed)
    layer = ln.layers.Conv(f, k, strides=s, dilation_rate=d, padding=p, dtype="float64", seed=0)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    with _ops.fast_paths(False):
        expected = layer.backward_input(dy)
    force()
    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward_input(dy), expected, rtol=1e-10, atol=1e-12)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    g=geometry,
    block_bytes=st.sampled_from([1, 300, 1 << 20]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_input_gradient_as_blocked_correlation(g, block_bytes, parts, seed, forced, monkeypatch):
    """The input gradient as a correlation (every phase of a stride) through the blocks."""
    monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
    check_input_gradient(g, seed, lambda: forced(block_bytes, parts))


def test_empty_batch_with_every_split_forced(forced):
    """A batch of no samples, with work split however small: empty outputs and gradients
    of the right shapes, and zero kernel gradients."""
    forced(300, 2)
    layer = ln.Conv2D(3, 2, padding="same", dtype="float64", seed=0)
    x = np.zeros((0, 5, 5, 4))
    y = layer.forward(x, training=True)
    assert y.shape == (0, 5, 5, 3)
    dy = np.zeros(y.shape)
    assert layer.backward_input(dy).shape == x.shape
    grads = layer.backward_params(dy)
    assert grads["kernel"].shape == (2, 2, 4, 3) and not grads["kernel"].any()


def test_correlation_keeps_no_whole_patch_matrix(forced, monkeypatch):
    """The correlation's patches go through buffers of one block each, one for each
    thread; no patch matrix of the whole batch is written or kept, and the gradient is
    the plain path's. Patches too few to split are one matrix, as before."""
    monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 7, 7, 4))
    layer = ln.Conv2D(5, 3, padding="same", dtype="float64", seed=0)
    dy = rng.standard_normal(layer.output_shape(x.shape))
    layer.forward(x, training=True)
    with _ops.fast_paths(False):
        expected = layer.backward_input(dy)
    rows, row = 6 * 7 * 7, 9 * 5 * 8  # the patches of dy: rows, and bytes a row
    forced(3 * 7 * 7 * row, 2)  # blocks of 3 samples, split between 2 threads

    def kept() -> dict[str, tuple[int, ...]]:
        arrays = layer.workspace._arrays
        return {k: v[0].shape for k, v in arrays.items() if k.startswith("dcol")}

    layer.forward(x, training=True)
    np.testing.assert_allclose(layer.backward_input(dy), expected, rtol=1e-10, atol=1e-12)
    assert kept() == {"dcol0_block0": (3 * 7 * 7, 45), "dcol0_block1": (3 * 7 * 7, 45)}
    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 2 * rows * row)  # one matrix now
    layer.workspace.clear()
    np.testing.assert_allclose(layer.backward_input(dy), expected, rtol=1e-10, atol=1e-12)
    assert kept() == {"dcol0": (rows, 45)}


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    g=geometry,
    tap_bytes=st.sampled_from([1, 300, 1 << 20]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_per_tap_input_gradient_in_blocks(g, tap_bytes, parts, seed, forced, monkeypatch):
    """The per-tap input gradient in blocks of samples (``TAP_BLOCK_BYTES``), split or not."""
    monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 10**9)
    monkeypatch.setattr(_ops, "BANDED_MAX_CHANNELS", 0)

    def force() -> None:
        forced(1 << 20, parts)
        monkeypatch.setattr(_ops, "TAP_BLOCK_BYTES", tap_bytes)

    check_input_gradient(g, seed, force)


def test_per_tap_blocks_are_taken(forced, monkeypatch):
    """A batch of 6 whose tap products exceed a block: 6 blocks, split in 2."""
    calls = []
    original = threads.over_batch

    def counted(fn, n, size):
        calls.append((n, threads.split_count(n, size)))
        return original(fn, n, size)

    forced(1 << 20, 2)
    monkeypatch.setattr(_ops, "TAP_BLOCK_BYTES", 1)
    monkeypatch.setattr(threads, "over_batch", counted)
    dy2 = np.ones((6 * 4, 2))
    dxp = np.zeros((6, 5, 3))
    _ops.conv_transpose(dy2, np.ones((2, 3, 2)), dxp, (4,), (1,), (1,), _ops.Workspace())
    assert calls == [(6, 2)]
    np.testing.assert_array_equal(dxp[:, [0, 4]], 2.0)  # the ends: one tap of 2 filters
    np.testing.assert_array_equal(dxp[:, 1:4], 4.0)  # the middle: two taps


# ------------------------------------------- patch matrices built again, not kept
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    g=geometry,
    ones=st.booleans(),
    block_bytes=st.sampled_from([1, 200, 4096, 1 << 20]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_blocks_not_kept_give_the_same_product(g, ones, block_bytes, parts, seed, forced):
    """``keep=False``: no patch matrix comes back, the product is the kept path's, bit for
    bit, and the same bits whatever the number of threads."""
    rng, xp, (kernel, out, strides, dilation) = geometry_arrays(g, seed)
    w = rng.standard_normal((math.prod(kernel) * xp.shape[-1] + int(ones), g[3]))
    forced(block_bytes, parts)
    _, kept = _ops.patch_product(xp, kernel, out, strides, dilation, w, _ops.Workspace(), ones)
    ws = _ops.Workspace()
    col, y = _ops.patch_product(xp, kernel, out, strides, dilation, w, ws, ones, keep=False)
    assert col is None
    np.testing.assert_array_equal(y, kept)
    # again with the buffers reused (their column of ones kept), and on one thread
    _, again = _ops.patch_product(xp, kernel, out, strides, dilation, w, ws, ones, keep=False)
    np.testing.assert_array_equal(again, kept)
    forced(block_bytes, 1)
    _, one = _ops.patch_product(xp, kernel, out, strides, dilation, w, ws, ones, keep=False)
    np.testing.assert_array_equal(one, kept)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    g=geometry,
    block_bytes=st.sampled_from([1, 200, 4096, 1 << 22]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_kernel_gradient_from_blocks_built_again(g, block_bytes, parts, seed, forced, monkeypatch):
    """``blocked_weight_grad`` equals the patch matrix transposed times ``dy2`` to float
    rounding, and gives the same bits whatever the number of threads."""
    rng, xp, geometry_ = geometry_arrays(g, seed)
    col = _ops.im2col(xp, *geometry_)
    dy2 = rng.standard_normal((col.shape[0], g[3]))
    monkeypatch.setattr(_ops, "WEIGHT_GRAD_BLOCK_BYTES", block_bytes)
    forced(1 << 20, parts)
    got = _ops.blocked_weight_grad(xp, *geometry_, dy2, _ops.Workspace())
    np.testing.assert_allclose(got, col.T @ dy2, rtol=1e-12, atol=1e-12)
    forced(1 << 20, 1)
    np.testing.assert_array_equal(_ops.blocked_weight_grad(xp, *geometry_, dy2), got)


def test_kernel_gradient_blocks_and_an_empty_batch(forced, monkeypatch):
    """Several blocks (a sample each, then rows of one) and parts are taken; an empty
    batch gives zeros of the kernel matrix's shape."""
    calls = []
    original = threads.over_batch

    def counted(fn, n, size):
        calls.append((n, threads.split_count(n, size)))
        return original(fn, n, size)

    monkeypatch.setattr(threads, "over_batch", counted)
    rng = np.random.default_rng(0)
    x, dy2 = rng.standard_normal((6, 5, 5, 3)), rng.standard_normal((6 * 16, 4))
    geometry_ = ((2, 2), (4, 4), (1, 1), (1, 1))
    expected = _ops.im2col(x, *geometry_).T @ dy2
    forced(1 << 20, 2)
    for block_bytes, blocks in ((16 * 12 * 8, 6), (1, 24)):  # 16 rows of 12 doubles a sample
        monkeypatch.setattr(_ops, "WEIGHT_GRAD_BLOCK_BYTES", block_bytes)
        got = _ops.blocked_weight_grad(x, *geometry_, dy2, _ops.Workspace())
        assert calls[-1] == (blocks, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    empty = _ops.blocked_weight_grad(x[:0], *geometry_, dy2[:0])
    np.testing.assert_array_equal(empty, np.zeros((12, 4)))


def test_only_large_patch_matrices_are_built_again(monkeypatch):
    """From ``REBUILD_PATCHES_BYTES`` of patches on, never with the fast paths off."""
    limit = _ops.REBUILD_PATCHES_BYTES
    per_sample = 10 * 10 * 9 * 8 * 4  # 10x10 outputs, 3x3 taps, 8 channels, float32
    below, at = limit // per_sample, -(-limit // per_sample)
    assert not _ops.rebuild_patches(below, (10, 10), (3, 3), 8, 4)
    assert _ops.rebuild_patches(at, (10, 10), (3, 3), 8, 4)
    with _ops.fast_paths(False):
        assert not _ops.rebuild_patches(at, (10, 10), (3, 3), 8, 4)


def test_patch_matrices_of_many_channels_are_built_again_from_less():
    """From ``REBUILD_WIDE_CHANNELS`` channels, from ``REBUILD_WIDE_BYTES`` on; fewer
    channels wait for ``REBUILD_PATCHES_BYTES``."""
    limit, c = _ops.REBUILD_WIDE_BYTES, _ops.REBUILD_WIDE_CHANNELS
    assert limit < _ops.REBUILD_PATCHES_BYTES
    per_sample = 10 * 10 * 9 * c * 4
    below, at = limit // per_sample, -(-limit // per_sample)
    assert not _ops.rebuild_patches(below, (10, 10), (3, 3), c, 4)
    assert _ops.rebuild_patches(at, (10, 10), (3, 3), c, 4)
    fewer = c - 1  # the same bytes with one channel less: kept
    assert not _ops.rebuild_patches(
        -(-limit // (10 * 10 * 9 * fewer * 4)), (10, 10), (3, 3), fewer, 4
    )
    with _ops.fast_paths(False):
        assert not _ops.rebuild_patches(at, (10, 10), (3, 3), c, 4)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(g=geometry, use_bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv_layer_without_kept_patches_same_as_fast_paths_off(
    g, use_bias, seed, forced, monkeypatch
):
    """Every patch matrix built again: a ``Conv`` keeps none (only its padded input), and
    its output and gradients (a non-uniform upstream gradient) equal the plain path's."""
    _, _, _, f, k, s, d, p = g
    _, x = layer_input(g, seed)
    forced(1, 2)
    monkeypatch.setattr(_ops, "REBUILD_PATCHES_BYTES", 0)
    monkeypatch.setattr(_ops, "WEIGHT_GRAD_BLOCK_BYTES", 1)

    def run():
        layer = ln.layers.Conv(
            f, k, strides=s, dilation_rate=d, padding=p, use_bias=use_bias, dtype="float64", seed=0
        )
        y = layer.forward(x, training=True)
        saved = layer.saved
        dy = np.linspace(-1, 1, y.size).reshape(y.shape)
        return y, layer.backward_input(dy), layer.backward_params(dy), saved

    y1, dx1, g1, saved = run()
    if not saved.band:
        assert saved.blocked and saved.patches is None and saved.padded is not None
    with _ops.fast_paths(False):
        y0, dx0, g0, plain = run()
    assert not plain.blocked and plain.patches is not None
    np.testing.assert_allclose(y1, y0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-10, atol=1e-12)
    assert g1.keys() == g0.keys()
    for key in g0:
        np.testing.assert_allclose(g1[key], g0[key], rtol=1e-10, atol=1e-12)
