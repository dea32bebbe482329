"""The convolution input gradient as a correlation (``_ops.conv_input_grad``).

Conv's input gradient and ConvTranspose's forward pass take the correlation path
(one patch matrix of the padded output gradient, strided cases split into phases)
from ``_ops.CORRELATION_MIN_CHANNELS`` channels; the tests lower that threshold
to 1 so that small shapes take it, and compare with the fast paths off (the
per-tap scatter) and with PyTorch autograd in float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops


@pytest.fixture
def always_correlate(monkeypatch):
    """Every convolution input gradient takes the correlation path, and it is counted."""
    monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
    calls = []
    original = _ops.conv_input_grad

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(_ops, "conv_input_grad", counting)
    return calls


def on_and_off(layer, x, dy):
    """Forward, input gradient and parameter gradients with the fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with _ops.fast_paths(enabled):
            layer.zero_grad()
            y = layer.forward(x, training=True)
            results.append((y, layer.backward_input(dy), layer.backward_params(dy)))
    return results


def assert_same(on, off, rtol=1e-12):
    (y1, dx1, g1), (y0, dx0, g0) = on, off
    np.testing.assert_allclose(y1, y0, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dx1, dx0, rtol=rtol, atol=rtol)
    assert g1.keys() == g0.keys()
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=rtol, atol=rtol)


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 2))
    filters = groups * draw(st.integers(1, 2))
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(draw(st.integers(e, e + 5)) for e in extent)
    batch = draw(st.integers(1, 2))
    return rank, kernel, strides, dilation, groups, channels, filters, padding, spatial, batch


@given(conv_cases(), st.integers(0, 2**16), st.sampled_from([1, 500, 32 * 2**20]))
def test_conv_input_gradient_by_correlation_equals_the_scatter(case, seed, patch_bytes):
    """Also with the batch split into chunks (``PATCH_BYTES`` 1: one sample at a time)."""
    _, kernel, strides, dilation, groups, channels, filters, padding, spatial, batch = case
    rng = np.random.default_rng(seed)
    layer = ln.Conv(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        groups=groups,
        dtype="float64",
        seed=0,
    )
    x = rng.standard_normal((batch, *spatial, channels))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
        mp.setattr(_ops, "PATCH_BYTES", patch_bytes)
        on, off = on_and_off(layer, x, dy)
    assert_same(on, off)


@given(conv_cases(), st.sampled_from(["valid", "same"]), st.booleans(), st.integers(0, 2**16))
def test_conv_transpose_forward_by_correlation_equals_the_scatter(case, padding, op, seed):
    _, kernel, strides, dilation, _, channels, filters, _, spatial, batch = case
    output_padding = tuple(s - 1 for s in strides) if op else None
    if op and any(d > 1 for d in dilation):
        output_padding = tuple(0 for _ in strides)
    rng = np.random.default_rng(seed)
    layer = ln.ConvTranspose(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=dilation,
        dtype="float64",
        seed=0,
    )
    x = rng.standard_normal((batch, *[max(1, n - 3) for n in spatial], channels))
    try:
        out_shape = layer.output_shape(x.shape)
    except ValueError:  # an empty output ('same', output_padding 0, even kernel, 1 position)
        assume(False)
    dy = rng.standard_normal(out_shape)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
        on, off = on_and_off(layer, x, dy)
    assert_same(on, off)


def test_correlation_path_is_taken_where_it_pays(rng):
    """With the real thresholds: 64 input channels correlate; 32 correlate with at most
    as many filters at stride 1 ("same": as many input as output positions) and scatter
    otherwise; 16 scatter. The same results either way."""
    calls = []
    original = _ops.conv_input_grad

    def counting(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ops, "conv_input_grad", counting)
        cases = [
            (64, 8, 1, True),
            (64, 8, 2, True),
            (64, 96, 1, True),
            (32, 8, 1, True),
            (32, 32, 1, True),
            (32, 33, 1, False),
            (32, 8, 2, False),
            (16, 8, 1, False),
        ]
        for channels, filters, strides, taken in cases:
            calls.clear()
            layer = ln.Conv2D(filters, 3, strides=strides, padding="same", dtype="float64", seed=0)
            x = rng.standard_normal((2, 5, 6, channels))
            dy = rng.standard_normal(layer.output_shape(x.shape))
            on, off = on_and_off(layer, x, dy)
            assert bool(calls) == taken
            assert_same(on, off)
            _, dx32, _ = on_and_off(
                ln.Conv2D(filters, 3, strides=strides, padding="same", seed=0), x, dy
            )[0]
            assert dx32.dtype == np.float32
            np.testing.assert_allclose(dx32, on[1], rtol=0, atol=1e-4 * np.abs(on[1]).max())


def test_strided_layers_keep_the_per_tap_rule(rng):
    """A strided layer with 32 channels scatters even where its padding leaves fewer input
    than output positions (the 32-channel rule is for stride 1); 64 channels correlate."""
    calls = []
    original = _ops.conv_input_grad

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_ops, "conv_input_grad", counting)
        for channels, taken in [(32, False), (64, True)]:
            calls.clear()
            layer = ln.Conv2D(8, 3, strides=2, padding=4, dtype="float64", seed=0)
            x = rng.standard_normal((2, 4, 4, channels))
            dy = rng.standard_normal(layer.output_shape(x.shape))
            on, off = on_and_off(layer, x, dy)
            assert bool(calls) == taken
            assert_same(on, off)


def test_phases_no_tap_reaches_give_zeros(always_correlate, rng):
    """Stride 4 with a 2-tap kernel: half the positions get no gradient at all."""
    layer = ln.Conv1D(3, 2, strides=4, dtype="float64", seed=0)
    x = rng.standard_normal((2, 13, 2))
    dy = rng.standard_normal(layer.output_shape(x.shape))
    on, off = on_and_off(layer, x, dy)
    assert always_correlate  # the correlation ran
    assert_same(on, off)
    assert np.all(on[1][:, 2::4] == 0) and np.all(on[1][:, 3::4] == 0)
    assert np.all(on[1][:, 12:] == 0)  # the last input lies in no window


# ------------------------------------------------------------------ PyTorch oracle
torch_cases = [
    # rank, kernel, strides, dilation, groups, padding (ints), channels, filters
    (1, 3, 1, 1, 1, 1, 2, 3),
    (1, 4, 3, 2, 2, 2, 4, 6),
    (2, (3, 2), (2, 1), (1, 2), 1, (1, 0), 3, 4),
    (2, 3, 2, 2, 3, 2, 6, 3),
    (2, (1, 3), (3, 3), (1, 1), 2, (0, 2), 4, 4),
    (3, 2, (1, 2, 2), (2, 1, 1), 1, 1, 2, 2),
]


@pytest.mark.parametrize("correlate", [True, False])
@pytest.mark.parametrize("case", torch_cases)
def test_conv_input_gradient_against_torch(case, correlate, rng, monkeypatch):
    torch = pytest.importorskip("torch")
    rank, kernel, strides, dilation, groups, padding, channels, filters = case
    if correlate:
        monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
    layer = ln.Conv(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        groups=groups,
        dtype="float64",
        seed=0,
    )
    x = rng.standard_normal((2, *[7, 8, 6][:rank], channels))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    gk = layer.backward_params(dy)["kernel"]

    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d}.get(
        rank, torch.nn.functional.conv3d
    )
    perm = (0, rank + 1, *range(1, rank + 1))  # channels-last -> channels-first
    xt = torch.tensor(x.transpose(perm), requires_grad=True)
    w = layer.params["kernel"]  # (*k, C/g, F) -> (F, C/g, *k)
    wt = torch.tensor(w.transpose(rank + 1, rank, *range(rank)), requires_grad=True)
    pad = padding if isinstance(padding, int) else tuple(padding)
    yt = conv(xt, wt, torch.tensor(layer.params["bias"]), strides, pad, dilation, groups)
    np.testing.assert_allclose(yt.detach().numpy().transpose(0, *range(2, rank + 2), 1), y)
    yt.backward(torch.tensor(dy.transpose(perm)))
    inv = (0, *range(2, rank + 2), 1)
    np.testing.assert_allclose(xt.grad.numpy().transpose(inv), dx, rtol=1e-10, atol=1e-12)
    back = (*range(2, rank + 2), 1, 0)
    np.testing.assert_allclose(wt.grad.numpy().transpose(back), gk, rtol=1e-10, atol=1e-12)


transpose_cases = [
    # rank, kernel, strides, dilation, output_padding, channels, filters
    (1, 3, 2, 1, 1, 2, 3),
    (1, 4, 3, 2, 0, 3, 2),
    (2, (3, 2), (2, 1), (1, 2), (1, 0), 3, 4),
    (2, 3, 3, 1, 2, 2, 2),
    (3, 2, (1, 2, 2), (2, 1, 1), (0, 1, 0), 2, 2),
]


@pytest.mark.parametrize("correlate", [True, False])
@pytest.mark.parametrize("case", transpose_cases)
def test_conv_transpose_against_torch(case, correlate, rng, monkeypatch):
    torch = pytest.importorskip("torch")
    rank, kernel, strides, dilation, output_padding, channels, filters = case
    if correlate:
        monkeypatch.setattr(_ops, "CORRELATION_MIN_CHANNELS", 1)
    layer = ln.ConvTranspose(
        filters,
        kernel,
        strides=strides,
        output_padding=output_padding,
        dilation_rate=dilation,
        dtype="float64",
        seed=0,
    )
    x = rng.standard_normal((2, *[5, 4, 3][:rank], channels))
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    gk = layer.backward_params(dy)["kernel"]

    f = torch.nn.functional
    conv_t = {1: f.conv_transpose1d, 2: f.conv_transpose2d}.get(rank, f.conv_transpose3d)
    perm = (0, rank + 1, *range(1, rank + 1))
    xt = torch.tensor(x.transpose(perm), requires_grad=True)
    w = layer.params["kernel"]  # (*k, F, C) -> (C, F, *k)
    wt = torch.tensor(w.transpose(rank + 1, rank, *range(rank)), requires_grad=True)
    yt = conv_t(
        xt,
        wt,
        torch.tensor(layer.params["bias"]),
        strides,
        0,
        output_padding,
        1,
        dilation,
    )
    inv = (0, *range(2, rank + 2), 1)
    np.testing.assert_allclose(yt.detach().numpy().transpose(inv), y, rtol=1e-10, atol=1e-12)
    yt.backward(torch.tensor(dy.transpose(perm)))
    np.testing.assert_allclose(xt.grad.numpy().transpose(inv), dx, rtol=1e-10, atol=1e-12)
    back = (*range(2, rank + 2), 1, 0)
    np.testing.assert_allclose(wt.grad.numpy().transpose(back), gk, rtol=1e-10, atol=1e-12)
