"""Pooling over phases: the last spatial axis's taps copied apart first.

With few channels, NumPy runs an element-wise operation on a strided tap slice as one
short inner loop per position; :func:`layernet._ops.split_phases` copies each tap of the
last spatial axis into a contiguous array (``phases[b][..., o, :] = xp[..., o s + b, :]``)
and the forward pass of max and average pooling reads row slices of those; max
pooling's backward pass writes each tap's share into its phase and
:func:`layernet._ops.merge_phases` puts the phases back.
Over ranks 1-3, windows, strides, paddings, channels, dtypes, ties, strided inputs and
1-3 threads, the output and the input gradient equal those of the fast paths off bit
for bit; the gradients pass central finite differences behind a layer in front and
match PyTorch; the thresholds pick the layers measured faster.
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import front_layer, non_contiguous
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops


def lift_thresholds(mp: pytest.MonkeyPatch) -> None:
    """Every max pooling with at least 2 channels and a window of 2 or more takes phases."""
    mp.setattr(_ops, "PHASE_MAX_BYTES", 10**9)
    mp.setattr(_ops, "PHASE_GRAD_MAX_BYTES", 10**9)


def counting(mp: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the calls of ``split_phases`` and ``merge_phases`` (still run)."""
    calls = {"split_phases": 0, "merge_phases": 0}
    for name in calls:
        original = getattr(_ops, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        mp.setattr(_ops, name, counted)
    return calls


def run_pool(layer: ln.Layer, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = layer.forward(x)
    return y, layer.backward_input(dy)


@st.composite
def pool_cases(draw):
    """``(shape, pool_size, strides, padding)`` with at least one output per axis."""
    rank = draw(st.integers(1, 3))
    window = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    strides = draw(st.none() | st.lists(st.integers(1, 5), min_size=rank, max_size=rank).map(tuple))
    padding = draw(st.sampled_from(["valid", "same", "ints"]))
    if padding == "ints":  # each side smaller than the window
        padding = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in window)
    spatial = tuple(draw(st.integers(k, k + 9)) for k in window)
    shape = (draw(st.integers(1, 4)), *spatial, draw(st.integers(1, 9)))
    return shape, window, strides, padding


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    case=pool_cases(),
    dtype=st.sampled_from(["float32", "float64"]),
    ties=st.booleans(),
    strided=st.sampled_from([None, "batch", "channels"]),
    parts=st.sampled_from([1, 2, 3]),
    kind=st.sampled_from(["max", "avg"]),
    seed=st.integers(0, 2**16),
)
def test_phases_same_bits_as_fast_paths_off(case, dtype, ties, strided, parts, kind, seed, forced):
    shape, window, strides, padding = case
    pool = ln.MaxPool if kind == "max" else ln.AvgPool
    rng = np.random.default_rng(seed)
    if ties:  # few distinct values: the first winner in C order must be kept
        x = rng.integers(0, 3, shape).astype(dtype)
    else:
        x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(dtype)
    if strided == "channels":  # phases need a contiguous channel axis (or a padded copy)
        x = non_contiguous(x)
    elif strided == "batch":
        x = np.concatenate([x, x])[::2]
    forced(_ops.PATCH_BLOCK_BYTES, parts)  # the batch split between threads whatever its size
    with _ops.fast_paths(False):
        layer = pool(window, strides=strides, padding=padding, dtype=dtype)
        y0 = layer.forward(x)
        dy = rng.standard_normal(y0.shape).astype(dtype)
        dx0 = layer.backward_input(dy)
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        calls = counting(mp)
        layer = pool(window, strides=strides, padding=padding, dtype=dtype)
        y1, dx1 = run_pool(layer, x, dy)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)
    assert y1.dtype == dx1.dtype == np.dtype(dtype)
    padded = any(b or a for b, a in layer._geometry(x.shape)[2])
    taken = window[-1] > 1 and shape[-1] > 1 and (strided != "channels" or padded)
    assert (calls["split_phases"] > 0) == taken
    stride = window if strides is None else strides
    disjoint = all(s >= k for s, k in zip(stride, window, strict=True))
    backward = window[-1] > 1 and shape[-1] > 1 and disjoint and stride[:-1] == window[:-1]
    backward = backward and kind == "max"  # average pooling's backward pass assigns per tap
    assert (calls["merge_phases"] > 0) == backward


def test_split_and_merge_phases_move_whole_positions():
    """Windows of 2 with stride 3 along a last axis of 8: taps at 3o and 3o + 1."""
    xp = np.arange(2 * 8 * 3, dtype=np.float32).reshape(1, 2, 8, 3)
    phases = np.full((2, 1, 2, 2, 3), -1.0, np.float32)
    _ops.split_phases(xp, 2, 3, 2, phases)
    np.testing.assert_array_equal(phases[0], xp[:, :, [0, 3]])
    np.testing.assert_array_equal(phases[1], xp[:, :, [1, 4]])
    back = np.zeros_like(xp)
    _ops.merge_phases(phases, 3, back)
    expected = np.zeros_like(xp)
    expected[:, :, [0, 1, 3, 4]] = xp[:, :, [0, 1, 3, 4]]
    np.testing.assert_array_equal(back, expected)
    # only the leading rows named: the second row stays as it was
    back = np.zeros_like(xp)
    _ops.merge_phases(phases, 3, back, (slice(None), slice(0, 1)))
    np.testing.assert_array_equal(back[:, 1], 0)
    np.testing.assert_array_equal(back[:, 0], expected[:, 0])


@pytest.mark.parametrize(
    "shape, window, strides, padding",
    [
        ((2, 6, 8, 3), 2, None, "valid"),  # LeNet-5's pooling, smaller
        ((2, 7, 9, 2), (2, 3), None, "same"),
        ((3, 11, 4), 3, 2, "valid"),  # overlapping windows (forward phases only)
        ((1, 4, 6, 4, 2), 2, None, "valid"),
    ],
)
def test_phase_gradients_by_finite_differences(shape, window, strides, padding):
    """With a layer in front (a 1x1 convolution) and a non-uniform upstream gradient."""
    x = np.random.default_rng(0).standard_normal(shape)
    layer = ln.MaxPool(window, strides=strides, padding=padding, dtype="float64")
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        calls = counting(mp)
        result = ln.gradcheck([front_layer(shape), layer], x, training=True, jacobians=False)
    assert calls["split_phases"] > 0
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "shape, window, strides, merged",
    [
        ((3, 24, 24, 6), 2, 2, True),
        ((2, 9, 10, 4), (3, 2), (3, 2), True),
        ((2, 40, 5), 3, 2, False),  # overlapping windows: the backward pass adds per tap
    ],
)
def test_phase_pooling_against_torch(shape, window, strides, merged):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    rng = np.random.default_rng(0)
    rank = len(shape) - 2
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    layer = ln.MaxPool(window, strides=strides, dtype="float64")
    dy = rng.standard_normal(layer.output_shape(shape))
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        calls = counting(mp)
        y, dx = run_pool(layer, x, dy)
    assert calls["split_phases"] == 1 and calls["merge_phases"] == int(merged)
    pool = (torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d)[rank - 1]
    perm = (0, rank + 1, *range(1, rank + 1))
    back = (0, *range(2, rank + 2), 1)
    xt = torch.tensor(x.transpose(perm).copy(), requires_grad=True)
    yt = pool(xt, window, strides)
    yt.backward(torch.tensor(dy.transpose(perm).copy()))
    np.testing.assert_array_equal(y, yt.detach().numpy().transpose(back))
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(back), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "shape, dtype, forward, backward",
    [
        ((4, 24, 24, 6), "float32", True, False),  # LeNet-5's first pooling
        ((4, 8, 8, 16), "float32", True, False),  # its second (64 bytes a position)
        ((4, 24, 24, 4), "float32", True, True),
        ((4, 24, 24, 2), "float64", True, True),
        ((4, 24, 24, 3), "float64", True, False),
        ((4, 6, 6, 6, 4), "float32", True, True),
        ((4, 40, 6), "float32", True, False),
        ((4, 28, 28, 1), "float32", False, False),  # one channel: its slices loop along W
        ((4, 26, 26, 32), "float32", False, False),  # the keras.io convnet's (128 bytes)
        ((4, 24, 24, 16), "float64", False, False),
        ((0, 24, 24, 6), "float32", False, False),  # an empty batch
    ],
)
def test_thresholds_pick_few_channels(shape, dtype, forward, backward):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    layer = ln.MaxPool(2, dtype=dtype)
    with pytest.MonkeyPatch.context() as mp:
        calls = counting(mp)
        y, dx = run_pool(layer, x, np.ones(layer.output_shape(shape), dtype))
    assert (calls["split_phases"] > 0) == forward
    assert (calls["merge_phases"] > 0) == backward
    with _ops.fast_paths(False):
        y0, dx0 = run_pool(ln.MaxPool(2, dtype=dtype), x, np.ones(y.shape, dtype))
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dx, dx0)


@pytest.mark.parametrize("shape", [(4, 24, 24, 6), (4, 6, 6, 6, 4), (4, 40, 3)])
def test_average_pooling_takes_phases_forward(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    with pytest.MonkeyPatch.context() as mp:
        calls = counting(mp)
        y, dx = run_pool(ln.AvgPool(2), x, np.ones(ln.AvgPool(2).output_shape(shape), "float32"))
    assert calls == {"split_phases": 1, "merge_phases": 0}
    with _ops.fast_paths(False):
        y0, dx0 = run_pool(ln.AvgPool(2), x, np.ones(y.shape, "float32"))
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dx, dx0)


def test_window_of_one_along_the_last_axis_takes_no_phases(rng):
    x = rng.standard_normal((2, 8, 6, 3))
    with pytest.MonkeyPatch.context() as mp:
        lift_thresholds(mp)
        calls = counting(mp)
        run_pool(ln.MaxPool((2, 1), dtype="float64"), x, np.ones((2, 4, 6, 3)))
    assert calls == {"split_phases": 0, "merge_phases": 0}
