"""The convolution input gradient banded along the last spatial axis (``_ops.banded_transpose``).

Below ``_ops.BANDED_MAX_CHANNELS`` input channels, for rows wide enough and a band
that wastes little arithmetic, Conv's input gradient is one product per tap of the
leading kernel axes with a band matrix instead of one narrow product per tap. The
tests lift the thresholds so that small shapes of every rank, stride, dilation and
padding take it, and compare with the fast paths off (the per-tap scatter), with
the batch split between threads, with central finite differences (a layer in
front, float64) and with PyTorch autograd; the real thresholds are checked on
LeNet-5's second convolution (taken) and on wider ones (not taken).
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
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops, threads


def lift_thresholds(mp: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Every one-group convolution's input gradient is banded; the calls are recorded."""
    mp.setattr(_ops, "BANDED_MAX_CHANNELS", 10**9)
    mp.setattr(_ops, "BANDED_MIN_WIDTH", 0)
    mp.setattr(_ops, "BANDED_MAX_WASTE", float("inf"))
    mp.setattr(_ops, "BANDED_MAX_ENTRIES", 10**12)
    return record_kernel_shapes(mp, _ops, "banded_transpose")


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    if padding == "same":
        strides = (1,) * rank
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(draw(st.integers(e, e + 5)) for e in extent)
    return kernel, strides, dilation, padding, spatial


@settings(max_examples=60, deadline=None)
@given(
    conv_cases(),
    st.integers(1, 4),
    st.integers(1, 5),
    st.integers(1, 3),
    st.sampled_from([1, 2, 3]),
    st.integers(0, 2**16),
)
def test_banded_input_gradient_equals_the_scatter(case, batch, channels, filters, parts, seed):
    """Also with the batch split into ``parts`` parts on as many threads."""
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
    before = ln.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        calls = lift_thresholds(mp)
        mp.setattr(threads, "MIN_SPLIT_SIZE", 0 if parts > 1 else 10**15)
        mp.setattr(threads, "ADAPT_TO_LOAD", False)
        ln.set_num_threads(parts)
        try:
            on = fresh_gradients(layer, x, dy)
        finally:
            ln.set_num_threads(before)
    assert calls == [layer.params["kernel"].shape]
    for a, b in zip(on[:2], off[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_banded_gradient_by_finite_differences(rng):
    """LeNet-5's second convolution, with a layer in front, non-uniform upstream gradient."""
    x = rng.standard_normal((2, 14, 13, 3))
    chain = [front_layer(x.shape), ln.Conv2D(6, 5, strides=(1, 2), dtype="float64", seed=1)]
    with pytest.MonkeyPatch.context() as mp:
        calls = lift_thresholds(mp)
        result = ln.gradcheck(chain, x, training=True, jacobians=False)
    assert calls  # the banded path ran
    assert result.passed, str(result)


@pytest.mark.parametrize(
    "shape, filters, kernel, strides, dilation, padding",
    [
        ((3, 12, 12, 6), 16, 5, 1, 1, "valid"),  # LeNet-5's second convolution
        ((2, 11, 9, 5), 4, (3, 2), (2, 1), (1, 2), "valid"),
        ((2, 15, 4), 3, 4, 3, 2, "valid"),
        ((2, 6, 7, 5, 2), 3, (2, 3, 2), (1, 2, 1), (2, 1, 1), "valid"),
    ],
)
def test_banded_input_gradient_against_torch(shape, filters, kernel, strides, dilation, padding):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    rng = np.random.default_rng(0)
    layer = ln.Conv(
        filters, kernel, strides=strides, dilation_rate=dilation, padding=padding,
        dtype="float64", seed=0,
    )  # fmt: skip
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(layer.output_shape(x.shape))
    with pytest.MonkeyPatch.context() as mp:
        calls = lift_thresholds(mp)
        layer.forward(x, training=True)
        dx = layer.backward_input(dy)
    assert calls
    expected = torch_conv_input_grad(torch, layer.params["kernel"], x, dy, strides, dilation)
    np.testing.assert_allclose(dx, expected, rtol=1e-10, atol=1e-12)


def test_thresholds_pick_lenet_and_leave_wide_layers(rng):
    """With the real thresholds: 6 channels 12 wide (k5) banded, float32 close to float64;
    16 channels, a 3-wide kernel on 16 columns, or rows of under 48 entries: per tap."""
    assert _ops.use_banded((64, 12, 12, 6), (5, 5, 6, 16))
    assert not _ops.use_banded((64, 12, 12, 16), (5, 5, 16, 16))  # channels
    assert not _ops.use_banded((64, 16, 16, 6), (3, 3, 6, 16))  # waste 16 / 3
    assert not _ops.use_banded((64, 30, 30, 1), (3, 3, 1, 32))  # rows of 30 entries
    with _ops.fast_paths(False):
        assert not _ops.use_banded((64, 12, 12, 6), (5, 5, 6, 16))
    x = rng.standard_normal((4, 12, 12, 6))
    dy = rng.standard_normal((4, 8, 8, 16))
    results, calls = [], []
    original = _ops.banded_transpose

    def counting(*args):
        calls.append(args[1].shape)
        return original(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ops, "banded_transpose", counting)
        for dtype in ("float64", "float32"):
            layer = ln.Conv2D(16, 5, dtype=dtype, seed=0)
            results.append(fresh_gradients(layer, x.astype(dtype), dy.astype(dtype))[1])
    assert calls == [(5, 5, 6, 16)] * 2
    with _ops.fast_paths(False):
        reference = fresh_gradients(ln.Conv2D(16, 5, dtype="float64", seed=0), x, dy)[1]
    np.testing.assert_allclose(results[0], reference, rtol=1e-12, atol=1e-12)
    assert results[1].dtype == np.float32
    np.testing.assert_allclose(results[1], reference, atol=1e-5 * np.abs(reference).max())
