"""A one-channel convolution as band patches times a band kernel (``_ops.band_product``).

A row of band patches holds, for ``J`` consecutive outputs along the last spatial
axis, the ``U`` input positions they read there (times every tap of the other axes);
the band kernel places each kernel entry where output ``j`` of the row reads it. Over
ranks 1-3, batch, filters, kernel, stride, dilation, padding, bias, every ``J`` that
divides the last axis's outputs, block sizes and 1-3 threads: the output equals
im2col times the kernel matrix, and the kernel gradient (``_ops.band_weight_grad``)
im2col's transpose times the output gradient, to float rounding. A ``Conv`` layer that
takes the band patches gives the outputs and gradients of the fast paths off, passes
central finite differences behind a layer in front, and matches PyTorch autograd. The
real thresholds pick LeNet-5's first layer and leave the layers where im2col was
measured faster.
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import front_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops, threads


@st.composite
def one_channel_cases(draw):
    """``(x, kernel, strides, dilation, pads, out)`` for a one-channel padded input."""
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(draw(st.integers(max(1, e - 2), e + 8)) for e in extent)
    padded = [n + b + a for n, (b, a) in zip(spatial, pads, strict=True)]
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, strides, strict=True))
    return spatial, kernel, strides, dilation, pads, out


def divisors(n: int) -> list[int]:
    return [j for j in range(1, n + 1) if n % j == 0]


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=one_channel_cases(),
    batch=st.integers(1, 4),
    filters=st.integers(1, 5),
    ones=st.booleans(),
    pick=st.integers(0, 100),
    block_bytes=st.sampled_from([None, 1, 300, 1 << 20]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_band_product_equals_im2col(
    case, batch, filters, ones, pick, block_bytes, parts, seed, forced
):
    spatial, kernel, strides, dilation, pads, out = case
    if min(out) < 1:
        return  # no output: nothing to compare
    rng = np.random.default_rng(seed)
    xp = _ops.pad(rng.standard_normal((batch, *spatial, 1)), pads)
    band = divisors(out[-1])[pick % len(divisors(out[-1]))]
    w = rng.standard_normal((int(np.prod(kernel)) + int(ones), filters))
    col_ref = _ops.im2col(xp, kernel, out, strides, dilation, ones=ones)
    if block_bytes is not None:  # the patches copied and multiplied block by block
        forced(block_bytes, parts)
    col, y = _ops.band_product(xp, kernel, out, strides, dilation, w, band, _ops.Workspace(), ones)
    np.testing.assert_allclose(y, col_ref @ w, rtol=1e-12, atol=1e-12)
    dy2 = rng.standard_normal(y.shape)
    g = _ops.band_weight_grad(col, dy2, kernel, strides[-1], dilation[-1], band, ones)
    np.testing.assert_allclose(g, col_ref.T @ dy2, rtol=1e-12, atol=1e-12)
    if block_bytes is not None:  # the same blocks on one thread: the same bits
        forced(block_bytes, 1)
        _, y1 = _ops.band_product(
            xp, kernel, out, strides, dilation, w, band, _ops.Workspace(), ones
        )
        np.testing.assert_array_equal(y1, y)


def test_band_kernel_places_each_entry_where_its_output_reads_it():
    """1-D, kernel (a, b, c), two outputs a row, stride 2: U = 5 inputs a row."""
    w = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [7.0, 70.0]])  # 3 taps, bias row
    bk = _ops.band_kernel(w, (3,), 2, 1, 2, ones=True)
    expected = np.array(
        [  # columns: (output 0, filter 0), (0, 1), (1, 0), (1, 1)
            [1, 10, 0, 0],
            [2, 20, 0, 0],
            [3, 30, 1, 10],
            [0, 0, 2, 20],
            [0, 0, 3, 30],
            [7, 70, 7, 70],  # the bias, once for each output of the row
        ]
    )
    np.testing.assert_array_equal(bk, expected)
    x = np.arange(1.0, 10.0)[None, :, None]  # one sample, 9 positions: 4 outputs
    col, y = _ops.band_product(x, (3,), (4,), (2,), (1,), w, 2, _ops.Workspace(), ones=True)
    assert col.shape == (2, 6)  # two rows of 5 inputs and the 1
    sums = np.array([1 + 4 + 9, 3 + 8 + 15, 5 + 12 + 21, 7 + 16 + 27])  # (1, 2, 3) at 2o
    np.testing.assert_allclose(y, np.stack([sums + 7, 10 * sums + 70], axis=1))


def run_layer(layer: ln.Layer, x: np.ndarray, dy: np.ndarray):
    """Output, the band width the forward pass took, input gradient and parameter gradients."""
    y, saved = layer.compute_forward(x, True)
    return (
        y,
        saved.band,
        layer.compute_backward_input(dy, saved),
        layer.compute_backward_params(dy, saved),
    )


def lift_thresholds(mp: pytest.MonkeyPatch) -> None:
    """Every one-channel convolution takes the band patches (the widest ``J`` that divides)."""
    mp.setattr(_ops, "BAND_MAX_COLUMNS", 10**9)
    mp.setattr(_ops, "BAND_MAX_SHARE", float("inf"))


@settings(max_examples=40, deadline=None)
@given(
    case=one_channel_cases(),
    batch=st.integers(1, 3),
    filters=st.integers(1, 4),
    use_bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv_layer_with_band_patches_same_as_fast_paths_off(case, batch, filters, use_bias, seed):
    spatial, kernel, strides, dilation, pads, out = case
    if min(out) < 1:
        return
    rng = np.random.default_rng(seed)
    layer = ln.Conv(
        filters, kernel, strides=strides, dilation_rate=dilation, padding=pads,
        use_bias=use_bias, dtype="float64", seed=0,
    )  # fmt: skip
    # one channel of two, a strided view: the band patches read the input's own strides
    x = rng.standard_normal((batch, *spatial, 2))[..., 1:]
    layer.build(x.shape)
    dy = rng.uniform(0.5, 1.5, (batch, *out, filters)) * rng.choice([-1, 1], (batch, *out, filters))
    with _ops.fast_paths(False):
        y0, band0, dx0, g0 = run_layer(layer, x, dy)
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        y1, band1, dx1, g1 = run_layer(layer, x, dy)
    assert band0 == 0
    assert band1 == (max(divisors(out[-1])) if out[-1] > 1 else 0)
    np.testing.assert_allclose(y1, y0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-12, atol=1e-12)
    assert g1.keys() == g0.keys()
    for key in g0:
        np.testing.assert_allclose(g1[key], g0[key], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, dilation, padding",
    [
        ((2, 12, 12, 1), 3, 5, 1, 1, "valid"),  # LeNet-5's first layer, smaller
        ((2, 11, 10, 1), 2, (3, 2), (2, 2), (1, 2), "same"),
        ((2, 17, 1), 3, 4, 3, 2, "valid"),
        ((1, 6, 7, 8, 1), 2, (2, 3, 2), (1, 1, 2), (2, 1, 1), "valid"),
    ],
)
def test_band_gradients_by_finite_differences(shape, filters, kernel, strides, dilation, padding):
    """With a layer in front (a 1x1 convolution) and a non-uniform upstream gradient."""
    x = np.random.default_rng(0).standard_normal(shape)
    layer = ln.Conv(
        filters, kernel, strides=strides, dilation_rate=dilation, padding=padding,
        dtype="float64", seed=1,
    )  # fmt: skip
    taken = []
    original = _ops.band_product

    def recording(*args, **kwargs):
        taken.append(args[6])  # the band width
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        mp.setattr(_ops, "band_product", recording)
        result = ln.gradcheck([front_layer(shape), layer], x, training=True, jacobians=False)
    assert taken and min(taken) > 1  # the band patches ran, several outputs a row
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, dilation",
    [
        ((3, 28, 28, 1), 6, 5, 1, 1),  # LeNet-5's first layer
        ((2, 13, 12, 1), 4, (3, 4), (2, 1), (1, 2)),
        ((2, 40, 1), 5, 5, 2, 1),
        ((2, 5, 6, 9, 1), 3, (2, 2, 3), 1, (1, 2, 1)),
    ],
)
def test_band_layer_against_torch(shape, filters, kernel, strides, dilation):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    rng = np.random.default_rng(0)
    rank = len(shape) - 2
    layer = ln.Conv(
        filters, kernel, strides=strides, dilation_rate=dilation, dtype="float64", seed=0
    )
    x = rng.standard_normal(shape)
    layer.build(x.shape)
    dy = rng.standard_normal(layer.output_shape(x.shape))
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        y, band, _, grads = run_layer(layer, x, dy)
    assert band > 1
    conv = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)
    perm = (0, rank + 1, *range(1, rank + 1))
    back = (0, *range(2, rank + 2), 1)
    wt = torch.tensor(
        layer.params["kernel"].transpose(rank + 1, rank, *range(rank)).copy(), requires_grad=True
    )
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = conv[rank - 1](torch.tensor(x.transpose(perm).copy()), wt, bt, strides, 0, dilation)
    yt.backward(torch.tensor(dy.transpose(perm).copy()))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(back), rtol=1e-10, atol=1e-12)
    kernel_grad = wt.grad.numpy().transpose(*range(2, rank + 2), 1, 0)
    np.testing.assert_allclose(grads["kernel"], kernel_grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_thresholds_pick_lenet_first_layer_and_leave_others(rng):
    """LeNet-5's first layer: 8 outputs a row; im2col where it was measured faster."""
    assert _ops.band_positions((64, 28, 28, 1), (5, 5), (1, 1), (1, 1), (24, 24), 6) == 8
    # 26 outputs, at most 4 a row: 2, reading 6 inputs for 2 x 5
    assert _ops.band_positions((64, 30, 30, 1), (5, 5), (1, 1), (1, 1), (26, 26), 12) == 0
    assert _ops.band_positions((64, 28, 28, 1), (5, 5), (1, 1), (1, 1), (24, 24), 12) == 4
    # several channels; a 3-wide kernel (the keras.io convnet's first layer); the
    # MNIST-1D CNN's first layer (two outputs a row at most: 7 inputs for 2 x 5)
    assert _ops.band_positions((64, 28, 28, 3), (5, 5), (1, 1), (1, 1), (24, 24), 6) == 0
    assert _ops.band_positions((128, 28, 28, 1), (3, 3), (1, 1), (1, 1), (26, 26), 32) == 0
    assert _ops.band_positions((100, 40, 1), (5,), (2,), (1,), (18,), 25) == 0
    assert _ops.band_positions((0, 28, 28, 1), (5, 5), (1, 1), (1, 1), (24, 24), 6) == 0
    with _ops.fast_paths(False):
        assert _ops.band_positions((64, 28, 28, 1), (5, 5), (1, 1), (1, 1), (24, 24), 6) == 0
    x = rng.standard_normal((4, 28, 28, 1))
    dy = rng.standard_normal((4, 24, 24, 6))
    results = []
    for dtype in ("float64", "float32"):
        layer = ln.Conv2D(6, 5, dtype=dtype, seed=0)
        layer.build(x.shape)
        y, band, _, grads = run_layer(layer, x.astype(dtype), dy.astype(dtype))
        assert band == 8
        assert y.dtype == grads["kernel"].dtype == grads["bias"].dtype == np.dtype(dtype)
        results.append((y, grads))
    with _ops.fast_paths(False):
        layer = ln.Conv2D(6, 5, dtype="float64", seed=0)
        layer.build(x.shape)
        y0, _, _, g0 = run_layer(layer, x, dy)
    for (y, grads), tol in zip(results, (1e-12, 1e-5), strict=True):
        np.testing.assert_allclose(y, y0, rtol=tol, atol=tol * np.abs(y0).max())
        for key in g0:
            np.testing.assert_allclose(
                grads[key], g0[key], rtol=tol, atol=tol * np.abs(g0[key]).max()
            )


def test_band_blocks_from_the_split_threshold(monkeypatch):
    """LeNet-5's first layer: one copy and one product up to a batch of 243, blocks from 244
    (the patches written and read twice, and the output: 16,416 entries a sample)."""
    calls = []
    original = threads.over_batch

    def recording(fn, n, size):
        calls.append(size)
        return original(fn, n, size)

    monkeypatch.setattr(threads, "over_batch", recording)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((26, 6)).astype(np.float32)
    for batch in (243, 244):
        xp = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
        geometry = ((5, 5), (24, 24), (1, 1), (1, 1))
        expected = _ops.im2col(xp, *geometry, ones=True) @ w
        calls.clear()
        _, y = _ops.band_product(xp, *geometry, w, 8, _ops.Workspace(), ones=True)
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
        if batch == 243:
            assert calls == []
        else:
            assert calls == [16416 * 244] and calls[0] >= threads.MIN_SPLIT_SIZE
