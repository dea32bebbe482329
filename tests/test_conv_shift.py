"""Stride-1 convolutions by shifted products (``_ops.shifted_*``), against the patch paths.

``_ops.use_shifted`` picks the shifted products per shape and direction; the
tests force it on (or on for some directions only) so that small shapes take
every combination, and compare the forward pass, the input gradient and the
parameter gradients with the fast paths off (patch matrices and the per-tap
scatter), in float64 to a tight tolerance and in float32 to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops

DIRECTIONS = ("forward", "params", "input")


def force(monkeypatch, **flags):
    """``use_shifted`` answers ``flags[direction]`` wherever the path applies (stride 1)."""
    real = _ops.use_shifted
    taken: list[str] = []

    def forced(direction, padded_shape, kernel_shape, strides, out):
        on = flags.get(direction, True)
        if on and all(s == 1 for s in strides) and padded_shape[0] and _ops.FAST_PATHS:
            taken.append(direction)
            return True
        return False

    monkeypatch.setattr(_ops, "use_shifted", forced)
    assert real is not forced
    return taken


def run(layer, x, dy):
    layer.zero_grad()
    y = layer.forward(x, training=True)
    return y, layer.backward_input(dy), layer.backward_params(dy)


def on_and_off(layer, x, dy):
    out = []
    for enabled in (True, False):
        with _ops.fast_paths(enabled):
            out.append(run(layer, x, dy))
    return out


def assert_same(a, b, rtol=1e-12, atol=1e-12):
    (y1, dx1, g1), (y0, dx0, g0) = a, b
    np.testing.assert_allclose(y1, y0, rtol=rtol, atol=atol)
    np.testing.assert_allclose(dx1, dx0, rtol=rtol, atol=atol)
    assert g1.keys() == g0.keys()
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=rtol, atol=atol)


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    strides = draw(st.sampled_from([1, 1, 1, 2]))  # stride 2: the patch paths, unchanged
    padding = draw(
        st.one_of(
            st.sampled_from(["valid", "same"]),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    spatial = tuple(draw(st.integers(e, e + 4)) for e in extent)
    channels = draw(st.integers(1, 5))
    filters = draw(st.integers(1, 5))
    batch = draw(st.integers(1, 3))
    use_bias = draw(st.booleans())
    activation = draw(st.sampled_from([None, None, "tanh"]))
    directions = draw(st.sampled_from([DIRECTIONS, ("forward", "input"), ("params",), ()]))
    kwargs = dict(
        kernel_size=kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=use_bias,
        activation=activation,
    )
    return kwargs, (batch, *spatial, channels), filters, directions


@given(conv_cases(), st.integers(0, 2**16))
def test_shifted_products_equal_the_patch_paths(case, seed):
    """Every combination of directions; float64 tight, float32 to rounding."""
    kwargs, shape, filters, directions = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    with pytest.MonkeyPatch.context() as mp:
        taken = force(mp, **{d: d in directions for d in DIRECTIONS})
        layer = ln.Conv(filters, dtype="float64", seed=0, **kwargs)
        dy = rng.standard_normal(layer.output_shape(x.shape))
        on, off = on_and_off(layer, x, dy)
        if kwargs["strides"] == 1:  # every direction asked for took the shifted products
            want = set(directions) - ({"params"} if "forward" not in directions else set())
            assert set(taken) == want
        else:
            assert not taken
        assert_same(on, off)
        layer32 = ln.Conv(filters, dtype="float32", seed=0, **kwargs)
        y32, dx32, g32 = run(layer32, x.astype(np.float32), dy.astype(np.float32))
    assert y32.dtype == dx32.dtype == np.float32
    y, dx, g = off
    for a, b in [(y32, y), (dx32, dx), *((g32[k], g[k]) for k in g)]:
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * (float(np.abs(b).max()) or 1.0))


def test_shifted_products_against_torch(rng, monkeypatch):
    """2-D and 3-D with dilation and asymmetric padding, against PyTorch autograd."""
    torch = pytest.importorskip("torch")
    force(monkeypatch)
    f = torch.nn.functional
    for rank, kernel, dilation, padding in [
        (2, (3, 2), (1, 2), ((1, 1), (2, 2))),
        (3, 2, (2, 1, 1), ((1, 1), (0, 0), (1, 1))),
    ]:
        layer = ln.Conv(4, kernel, padding=padding, dilation_rate=dilation, dtype="float64")
        x = rng.standard_normal((2, *[7, 8, 6][:rank], 3))
        y, dx, g = run(layer, x, dy := rng.standard_normal(layer.output_shape(x.shape)))
        assert layer.saved.padded is not None and layer.saved.patches is None
        perm = (0, rank + 1, *range(1, rank + 1))
        xt = torch.tensor(x.transpose(perm), requires_grad=True)
        wt = torch.tensor(
            layer.params["kernel"].transpose(rank + 1, rank, *range(rank)), requires_grad=True
        )
        pad = tuple(p[0] for p in padding)
        conv = f.conv2d if rank == 2 else f.conv3d
        yt = conv(xt, wt, torch.tensor(layer.params["bias"]), 1, pad, dilation)
        inv = (0, *range(2, rank + 2), 1)
        np.testing.assert_allclose(yt.detach().numpy().transpose(inv), y, rtol=1e-10)
        yt.backward(torch.tensor(dy.transpose(perm)))
        np.testing.assert_allclose(xt.grad.numpy().transpose(inv), dx, rtol=1e-10, atol=1e-12)
        back = (*range(2, rank + 2), 1, 0)
        np.testing.assert_allclose(
            wt.grad.numpy().transpose(back), g["kernel"], rtol=1e-10, atol=1e-12
        )


def test_finite_differences_through_the_shifted_products(rng, monkeypatch):
    taken = force(monkeypatch)
    layer = ln.Conv2D(3, 3, padding=((1, 0), (2, 1)), dilation_rate=(2, 1), dtype="float64")
    assert ln.gradcheck(layer, rng.standard_normal((2, 6, 5, 2))).passed
    assert {"forward", "params", "input"} <= set(taken)


def test_reused_buffers_keep_the_zero_grid(rng, monkeypatch):
    """The output-gradient grid is reused: its positions outside the output stay zero."""
    force(monkeypatch)
    layer = ln.Conv2D(2, 3, padding=1, dtype="float64", seed=0)
    for _ in range(3):
        x = rng.standard_normal((2, 5, 6, 3))
        dy = rng.standard_normal((2, 5, 6, 2))
        got = run(layer, x, dy)
        fresh = ln.Conv2D(2, 3, padding=1, dtype="float64", seed=0)
        assert_same(got, run(fresh, x, dy), rtol=0, atol=0)
    before = layer.workspace.allocations
    run(layer, x, dy)
    assert layer.workspace.allocations == before  # nothing new after the first call


def test_gemm_accumulate_adds_in_place_without_a_copy(rng):
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal((50, 7)).astype(dtype)
        b = rng.standard_normal((7, 4)).astype(dtype)
        c0 = rng.standard_normal((50, 4)).astype(dtype)
        c = c0.copy()
        address = c.ctypes.data
        _ops.gemm_accumulate(a, b, c)
        assert c.ctypes.data == address
        np.testing.assert_allclose(c, c0 + a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12)
        bt = np.ascontiguousarray(b.T)
        c2 = c0.copy()
        _ops.gemm_accumulate(a, bt, c2, transpose_b=True)
        np.testing.assert_allclose(c2, c, rtol=0, atol=0)
    # and gemm itself writes into c: the array it returns is c's memory
    from scipy.linalg import blas

    c = np.zeros((4, 3))
    result = blas.dgemm(1.0, np.ones((2, 3)).T, np.ones((4, 2)).T, 1.0, c.T, overwrite_c=1)
    assert np.shares_memory(result, c) and np.all(c == 2)


def test_the_thread_budget_reaches_scipys_blas(rng):
    """After the first shifted product SciPy's BLAS is one of the libraries set."""
    if ln.distributed.get_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not OpenBLAS)")
    _ops.gemm_accumulate(np.ones((2, 2)), np.ones((2, 2)), np.zeros((2, 2)))
    import scipy.linalg.blas  # noqa: F401  (loaded by the product above)

    getters = ln.distributed._blas_functions(
        ("scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_")
    )
    scipy_getters = [g for g in getters if "scipy_openblas_get_num_threads" == g.__name__]
    if not scipy_getters:
        pytest.skip("SciPy's BLAS is not a separate OpenBLAS here")
    before = ln.get_num_threads()
    seen = []
    try:
        ln.set_num_threads(2)
        assert all(int(g()) == 2 for g in scipy_getters)
        with ln.threads.sized(10):  # a small product: one thread, in SciPy's BLAS too
            seen.append([int(g()) for g in scipy_getters])
        assert seen == [[1] * len(scipy_getters)]
        assert all(int(g()) == 2 for g in scipy_getters)
    finally:
        ln.set_num_threads(before)


def test_fast_paths_off_never_take_the_shifted_products(rng):
    layer = ln.Conv2D(8, 3, padding=1, dtype="float64", seed=0)
    x = rng.standard_normal((4, 16, 16, 32))
    with _ops.fast_paths(False):
        for direction in DIRECTIONS:
            assert not _ops.use_shifted(direction, (4, 18, 18, 32), (3, 3, 32, 8), (1, 1), (16, 16))
        layer.forward(x)
        assert layer.saved.padded is None


@pytest.mark.parametrize(
    ("make", "shape", "forward", "input"),
    [
        (lambda dt: ln.Conv1D(16, 3, padding=1, dtype=dt, seed=0), (2, 200, 16), True, True),
        (lambda dt: ln.Conv2D(16, 1, dtype=dt, seed=0), (2, 5, 6, 16), False, True),
        (lambda dt: ln.Conv2D(16, 1, padding=1, dtype=dt, seed=0), (2, 5, 6, 16), False, True),
        (lambda dt: ln.Conv1D(8, 3, padding=1, dtype=dt, seed=0), (2, 200, 8), False, False),
        (lambda dt: ln.Conv1D(8, 3, padding=1, dtype=dt, seed=0), (2, 200, 16), True, False),
        (lambda dt: ln.Conv2D(16, 3, padding=1, dtype=dt, seed=0), (2, 14, 14, 32), False, False),
        (
            lambda dt: ln.Conv1D(16, 3, strides=2, padding=1, dtype=dt, seed=0),
            (2, 200, 16),
            False,
            False,
        ),
    ],
)
def test_the_rule_takes_the_shifted_products_where_they_measured_faster(
    make, shape, forward, input, rng, monkeypatch
):
    """Grids of at most ``SHIFT_MAX_WASTE`` times the output, ``SHIFT_MIN_CHANNELS`` channels."""
    layer = make("float64")
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(layer.output_shape(x.shape))
    asked = []
    real = _ops.use_shifted
    monkeypatch.setattr(
        _ops, "use_shifted", lambda d, *a: asked.append((d, real(d, *a))) or real(d, *a)
    )
    on, off = on_and_off(layer, x, dy)
    layer.forward(x)
    assert (layer.saved.padded is not None) == forward
    assert (layer.saved.patches is None) == forward
    assert ("input", input) in asked and ("forward", forward) in asked
    assert ("params", True) in asked if forward else all(d != "params" for d, _ in asked)
    assert_same(on, off)
    y, dx, g = off
    y32, dx32, g32 = run(make("float32"), x.astype(np.float32), dy.astype(np.float32))
    for a, b in [(y32, y), (dx32, dx), *((g32[k], g[k]) for k in g)]:
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * float(np.abs(b).max()))


def test_accumulating_products_are_shifted_only_on_one_thread(monkeypatch):
    """Large products get the budget's threads: then the patch paths are kept."""
    monkeypatch.setattr(ln.threads, "ADAPT_TO_LOAD", False)  # the budget, whatever the load
    before = ln.get_num_threads()
    geometry = ((16, 1026, 64), (3, 64, 64), (1,), (1024,))  # 134 Mflop per tap product
    pointwise = ((16, 1024, 64), (1, 64, 64), (1,), (1024,))
    try:
        ln.set_num_threads(1)
        assert _ops.use_shifted("forward", *geometry) and _ops.use_shifted("input", *geometry)
        ln.set_num_threads(2)
        assert not _ops.use_shifted("forward", *geometry)
        assert not _ops.use_shifted("input", *geometry)
        assert _ops.use_shifted("input", *pointwise)  # one product: no accumulation
        assert not _ops.use_shifted("forward", *pointwise)
    finally:
        ln.set_num_threads(before)
