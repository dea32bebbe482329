"""Every shape-keyed fast path, reached by a shape that takes it, against an independent result.

The kernels in ``_ops.py``, ``conv.py`` and ``pooling.py`` pick a different code
path for some shapes: the blocked kernel gradient (one input channel, many
output positions), the transposed one-channel patch layout, patch rows padded
to a multiple of 16 floats, disjoint and tiled pooling windows (assigned, not
accumulated; not even zeroed when they tile the input), a single-tap pool, the
bias sum as a matrix-vector product, the convolution input gradient (and the
transposed convolution's forward pass) as one correlation from 64 channels, and
the per-product BLAS thread count. Each test asserts that its shape takes the
path, compares float64 with a computation that does not take it, and float32
with float64. ``_ops.fast_paths(False)`` (or ``LAYERNET_FAST_PATHS=0``) turns
the switchable paths off; ``tests/test_conv_grad_gemm.py`` compares the
convolutions with it on and off over many shapes.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from _harness import distinct_values

import layernet as ln
from layernet import _ops, threads


def run(layer, x, dy):
    y = layer.forward(x)
    return y, layer.backward_input(dy), layer.backward_params(dy)


def assert_float32_close(make, x, dy, rtol=2e-4):
    """The float32 layer agrees with the float64 one (same initial parameters)."""
    y64, dx64, g64 = run(make("float64"), x, dy)
    y32, dx32, g32 = run(make("float32"), x, dy)
    assert y32.dtype == dx32.dtype == np.float32
    for a, b in [(y32, y64), (dx32, dx64), *((g32[k], g64[k]) for k in g64)]:
        scale = float(np.max(np.abs(b))) or 1.0
        np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


# ------------------------------------------------------------------ convolution
def test_blocked_kernel_gradient_for_one_channel_and_many_positions(rng):
    conv = lambda dtype: ln.Conv1D(4, 3, seed=0, dtype=dtype)  # noqa: E731
    x = rng.standard_normal((4, 2100, 1))
    dy = rng.standard_normal((4, 2098, 4))
    m, width, filters = 4 * 2098, 3 + 1, 4  # rows of the patch matrix, columns (+ bias)
    assert m > 8192 and width * filters <= 1024  # weight_grad sums blocks of rows here
    layer = conv("float64")
    _, _, grads = run(layer, x, dy)
    split = conv("float64")  # one sample at a time: 2098 rows, one plain product each
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for i in range(4):
        _, _, g = run(split, x[i : i + 1], dy[i : i + 1])
        for k in g:
            total[k] += g[k]
    for k in grads:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-12, atol=1e-10)
    col = layer.saved.patches
    np.testing.assert_allclose(
        _ops.weight_grad(col, dy.reshape(-1, 4)), col.T @ dy.reshape(-1, 4), rtol=1e-12
    )
    assert_float32_close(conv, x, dy)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_one_channel_patch_layout_equals_the_several_channel_layout(padding, rng):
    x = rng.standard_normal((2, 7, 6, 1))
    one = ln.Conv2D(3, 3, padding=padding, seed=0, dtype="float64")
    y, dx, g = run(one, x, dy := rng.standard_normal(one.output_shape(x.shape)))
    assert one.saved.patches.flags.f_contiguous  # the transposed one-channel buffer
    # The same convolution with a second, all-zero channel takes the several-channel path.
    two = ln.Conv2D(3, 3, padding=padding, dtype="float64")
    two.build((None, 7, 6, 2))
    two.params["kernel"][...] = 0
    two.params["kernel"][..., :1, :] = one.params["kernel"]
    two.params["bias"][...] = one.params["bias"]
    x2 = np.concatenate([x, np.zeros_like(x)], axis=-1)
    y2, dx2, g2 = run(two, x2, dy)
    assert two.saved.patches.flags.c_contiguous
    np.testing.assert_allclose(y, y2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, dx2[..., :1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g["kernel"], g2["kernel"][..., :1, :], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g["bias"], g2["bias"], rtol=1e-12, atol=1e-12)
    assert_float32_close(lambda dtype: ln.Conv2D(3, 3, padding=padding, seed=0, dtype=dtype), x, dy)


def test_wide_patch_rows_padded_to_16_equal_channel_groups(rng):
    x = rng.standard_normal((2, 6, 5, 8))
    wide = ln.Conv2D(3, 3, padding="same", seed=0, dtype="float64")
    dy = rng.standard_normal(wide.output_shape(x.shape))
    y, dx, g = run(wide, x, dy)
    col = wide.saved.patches
    assert col.shape[1] == 3 * 3 * 8 + 1 > 64 and col.base.shape[1] % 16 == 0  # padded rows
    # Convolution is linear in the channels: the sum over groups of two channels (rows of
    # 19 floats, not padded) is the same map.
    y_sum, dx_parts, gw_parts = np.zeros_like(y), [], []
    for c in range(0, 8, 2):
        part = ln.Conv2D(3, 3, padding="same", use_bias=False, dtype="float64")
        part.build((None, 6, 5, 2))
        part.params["kernel"][...] = wide.params["kernel"][..., c : c + 2, :]
        yp, dxp, gp = run(part, x[..., c : c + 2], dy)
        assert part.saved.patches.base is None or part.saved.patches.shape[1] <= 64
        y_sum += yp
        dx_parts.append(dxp)
        gw_parts.append(gp["kernel"])
    np.testing.assert_allclose(y, y_sum + wide.params["bias"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, np.concatenate(dx_parts, -1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g["kernel"], np.concatenate(gw_parts, -2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g["bias"], dy.sum(axis=(0, 1, 2)), rtol=1e-12)
    assert_float32_close(lambda dtype: ln.Conv2D(3, 3, padding="same", seed=0, dtype=dtype), x, dy)


def test_reused_scratch_buffers_give_the_results_of_fresh_ones(rng):
    """Padded input, patch matrix with its ones column and padded gradient are reused."""
    layer = ln.Conv1D(2, 3, padding="same", seed=0, dtype="float64")
    for _ in range(3):
        x = rng.standard_normal((3, 8, 2))
        dy = rng.standard_normal((3, 8, 2))
        fresh = ln.Conv1D(2, 3, padding="same", seed=0, dtype="float64")
        for got, want in zip(run(layer, x, dy)[:2], run(fresh, x, dy)[:2]):
            np.testing.assert_array_equal(got, want)
    assert layer.workspace.allocations == fresh.workspace.allocations  # all reused


# ---------------------------------------------------------------------- pooling
def naive_pool(x, k, s, pads, kind, dy):
    """Loop over every window: forward and input gradient (first winner on ties)."""
    n, *spatial, c = x.shape
    out = [(sp + b + a - kk) // ss + 1 for sp, kk, ss, (b, a) in zip(spatial, k, s, pads)]
    y = np.zeros((n, *out, c))
    dx = np.zeros_like(x)
    for o in itertools.product(*map(range, out)):
        cells = [
            p
            for p in itertools.product(
                *(range(oi * si - b, oi * si - b + ki) for oi, si, ki, (b, _) in zip(o, s, k, pads))
            )
            if all(0 <= pi < sp for pi, sp in zip(p, spatial))
        ]
        vals = np.stack([x[(slice(None), *p)] for p in cells])  # (cells, n, c)
        if kind == "max":
            win = vals.argmax(axis=0)
            y[(slice(None), *o)] = vals.max(axis=0)
            for j, p in enumerate(cells):
                dx[(slice(None), *p)] += (win == j) * dy[(slice(None), *o)]
        else:
            y[(slice(None), *o)] = vals.mean(axis=0)
            for p in cells:
                dx[(slice(None), *p)] += dy[(slice(None), *o)] / len(cells)
    return y, dx


POOL_CASES = {
    # name: (pool_size, strides, padding, input spatial, what the shape exercises)
    "disjoint_tiled": ((2, 2), None, "valid", (4, 6), "assigned, buffer not zeroed"),
    "disjoint_not_tiled": ((2, 2), None, "valid", (5, 7), "assigned into zeros"),
    "disjoint_tiled_padded": ((2, 3), None, "same", (3, 7), "reused padded buffer, not zeroed"),
    "disjoint_stride_above_window": ((2, 2), (3, 3), "valid", (7, 8), "gaps between windows"),
    "overlapping": ((3, 3), (2, 1), "valid", (7, 5), "accumulated"),
    "overlapping_padded": ((3, 2), (1, 1), "same", (4, 5), "accumulated, reused zeroed buffer"),
    "single_tap": ((1, 1), None, "valid", (3, 4), "one view, copied"),
}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pooling_paths_against_a_loop_over_windows(kind, case, rng):
    k, s, padding, spatial, _ = POOL_CASES[case]
    cls = ln.MaxPool2D if kind == "max" else ln.AvgPool2D
    make = lambda dtype: cls(k, strides=s, padding=padding, dtype=dtype)  # noqa: E731
    layer = make("float64")
    x = distinct_values((2, *spatial, 3), rng)
    y = layer.forward(x)
    pads = layer.saved.pads
    strides = layer.saved.strides
    disjoint = all(si >= ki for si, ki in zip(strides, k))
    out, padded_shape = layer.saved.out, layer.saved.padded_shape
    tiled = disjoint and all(o * ki == n for o, ki, n in zip(out, k, padded_shape[1:-1]))
    assert disjoint == case.startswith(("disjoint", "single"))
    assert tiled == (case in ("disjoint_tiled", "disjoint_tiled_padded", "single_tap"))
    assert any(b or a for b, a in pads) == case.endswith("padded")
    for _ in range(2):  # twice: reused buffers must not carry the last call's values
        dy = rng.standard_normal(y.shape)
        ref_y, ref_dx = naive_pool(x, k, strides, pads, kind, dy)
        np.testing.assert_allclose(layer.forward(x), ref_y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward_input(dy), ref_dx, rtol=1e-12, atol=1e-12)
    assert_float32_close(make, x, dy)


# ------------------------------------------------------------------------- bias
def test_bias_gradient_as_one_matrix_vector_product_for_many_rows(rng):
    make = lambda dtype: ln.Dense(64, seed=0, dtype=dtype)  # noqa: E731
    x = rng.standard_normal((5000, 8))
    dy = rng.standard_normal((5000, 64))
    _, _, g = run(make("float64"), x, dy)
    np.testing.assert_allclose(g["bias"], dy.sum(axis=0), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(g["kernel"], x.T @ dy, rtol=1e-12, atol=1e-10)
    assert_float32_close(make, x, dy)


# ------------------------------------------------------------- the fast-path switch
def test_switch_turns_the_blocked_kernel_gradient_off(rng, monkeypatch):
    col = rng.standard_normal((9000, 4))
    dy2 = rng.standard_normal((9000, 3))
    blocks = []
    monkeypatch.setattr(_ops, "threads", _CountingThreads(blocks))
    _ops.weight_grad(col, dy2)
    assert len(blocks) == 3  # 9000 rows in blocks of 4096
    blocks.clear()
    with _ops.fast_paths(False):
        assert not _ops.FAST_PATHS
        np.testing.assert_allclose(_ops.weight_grad(col, dy2), col.T @ dy2, rtol=1e-12)
    assert len(blocks) == 1 and _ops.FAST_PATHS


class _CountingThreads:
    def __init__(self, calls):
        self.calls = calls

    def matmul(self, a, b, out=None):
        self.calls.append(a.shape)
        return ln.threads.matmul(a, b, out)

    def sized(self, flops):
        return ln.threads.sized(flops)


def test_environment_variable_turns_fast_paths_off():
    code = "from layernet import _ops; print(_ops.FAST_PATHS)"
    env = {**os.environ, "LAYERNET_FAST_PATHS": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("kind", ["conv", "transpose"])
def test_correlation_from_64_channels_equals_the_scatter(kind, rng):
    """The shapes of the real threshold; the smaller ones are in test_conv_grad_gemm.py."""
    if kind == "conv":
        make = lambda dtype: ln.Conv2D(4, 3, padding="same", seed=0, dtype=dtype)  # noqa: E731
        x = rng.standard_normal((2, 5, 4, 64))
    else:
        make = lambda dtype: ln.Conv2DTranspose(64, 3, strides=2, seed=0, dtype=dtype)  # noqa: E731
        x = rng.standard_normal((2, 3, 4, 5))
    layer = make("float64")
    dy = rng.standard_normal(layer.output_shape(x.shape))
    assert _ops.use_correlation(64) and not _ops.use_correlation(63)
    # from half the channels with at most as many filters and little waste
    assert _ops.use_correlation(32, 32) and _ops.use_correlation(32, 8, 1.1)
    assert not _ops.use_correlation(31, 8) and not _ops.use_correlation(32, 33)
    assert not _ops.use_correlation(32, 8, 1.2) and not _ops.use_correlation(32)
    assert _ops.use_correlation(32, 8, 1.0, (1, 1)) and _ops.use_correlation(64, 8, 1.0, (2, 1))
    assert not _ops.use_correlation(32, 8, 0.6, (1, 2))  # the 32-channel rule: stride 1 only
    fast = run(layer, x, dy)
    with _ops.fast_paths(False):
        assert not _ops.use_correlation(64)
        plain = run(layer, x, dy)
    assert fast[2].keys() == plain[2].keys()
    pairs = [(fast[0], plain[0]), (fast[1], plain[1])]
    for a, b in [*pairs, *((fast[2][k], plain[2][k]) for k in plain[2])]:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert_float32_close(make, x, dy)


# ------------------------------------------------------------------- BLAS threads
def test_small_products_run_on_one_thread_large_ones_on_the_budget(rng, monkeypatch):
    if ln.distributed.get_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not OpenBLAS)")
    before = ln.get_num_threads()
    seen = []  # the BLAS thread count during each product
    real_matmul = np.matmul

    def spying_matmul(*args, **kwargs):
        seen.append(ln.distributed.get_blas_threads())
        return real_matmul(*args, **kwargs)

    small = rng.standard_normal((10, 10))
    large = rng.standard_normal((200, 200))  # 16 Mflop >= MIN_PARALLEL_FLOPS
    assert 2 * 200**3 >= ln.threads.MIN_PARALLEL_FLOPS > 2 * 10**3
    monkeypatch.setattr(ln.threads, "ADAPT_TO_LOAD", False)  # the budget, whatever the load
    try:
        ln.set_num_threads(2)
        assert ln.get_num_threads() == 2
        monkeypatch.setattr(ln.threads.np, "matmul", spying_matmul)
        np.testing.assert_allclose(ln.threads.matmul(small, small), small @ small)
        np.testing.assert_allclose(ln.threads.matmul(large, large), large @ large)
        with _ops.fast_paths(False):  # off: every product on the budget
            ln.threads.matmul(small, small)
        assert seen == [1, 2, 2]
        assert ln.distributed.get_blas_threads() == 2  # restored after the small product
        ln.set_num_threads(1)
        ln.threads.matmul(large, large)
        assert seen[-1] == 1
    finally:
        monkeypatch.undo()
        ln.set_num_threads(before)


def test_a_sized_block_sets_its_count_and_puts_the_previous_one_back(monkeypatch):
    """threads.sized: the block's count while inside (nested blocks too), the count from
    before after it, also when the block raises; a block that needs no change sets none."""
    if ln.distributed.get_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not OpenBLAS)")
    before = ln.get_num_threads()
    big = ln.threads.MIN_PARALLEL_FLOPS * 64
    monkeypatch.setattr(ln.threads, "ADAPT_TO_LOAD", False)
    try:
        ln.set_num_threads(2)
        count = ln.distributed.get_blas_threads
        with ln.threads.sized(10):
            assert count() == 1
            with ln.threads.sized(big):
                assert count() == 2
            assert count() == 1
        assert count() == 2
        with pytest.raises(KeyError), ln.threads.sized(10):
            assert count() == 1
            raise KeyError("inside")
        assert count() == 2
        block = ln.threads.sized(10)
        with block:
            assert count() == 1
            with pytest.raises(RuntimeError, match="while it is active"), block:
                pass
            assert count() == 1  # the refused entry changed nothing
        assert count() == 2
        with block:  # entered again once it has ended
            assert count() == 1
        assert count() == 2
        with ln.threads.sized(big):  # already at its count: nothing to put back
            assert count() == 2
        assert count() == 2
    finally:
        monkeypatch.undo()
        ln.set_num_threads(before)


def test_a_count_set_from_outside_becomes_the_budget(rng):
    """DataParallel sets each rank's count with distributed.set_blas_threads: it holds."""
    if ln.distributed.get_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not OpenBLAS)")
    before = ln.get_num_threads()
    large = rng.standard_normal((200, 200))
    try:
        ln.set_num_threads(2)
        assert ln.distributed.set_blas_threads(1)
        ln.threads.matmul(large, large)
        assert ln.distributed.get_blas_threads() == 1 and ln.get_num_threads() == 1
        assert ln.distributed.set_blas_threads(2)
        assert ln.get_num_threads() == 2
    finally:
        ln.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: invalid value for `n`"):
        ln.set_num_threads(bad)


@pytest.mark.parametrize(("value", "expected"), [("1", "1"), ("3", "3"), ("zero", "error")])
def test_num_threads_environment_variable(value, expected):
    code = "import layernet as ln; print(ln.get_num_threads())"
    env = {**os.environ, "LAYERNET_NUM_THREADS": value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if expected == "error":
        assert "LAYERNET_NUM_THREADS: invalid value: expected a positive int" in out.stderr
    else:
        assert out.stdout.strip() == expected, out.stderr


# ------------------------------------------------------------ validation done once
def test_an_input_of_the_checked_shape_and_dtype_is_not_checked_again(rng, monkeypatch):
    layer = ln.Conv2D(3, 3, seed=0)
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    layer.forward(x)
    checks = []
    original = type(layer).check_input_shape
    monkeypatch.setattr(
        type(layer), "check_input_shape", lambda self, s: (checks.append(s), original(self, s))
    )
    y = layer.forward(x)
    layer.backward_input(np.ones_like(y))
    assert checks == []  # same shape and dtype: no second check
    layer.forward(x.astype(np.float64))  # another dtype: checked (and cast)
    assert checks == [x.shape]
    with pytest.raises(ValueError, match=r"expected input with 2 channels"):
        layer.forward(rng.standard_normal((2, 6, 6, 3)).astype(np.float32))
    with pytest.raises(ValueError, match=r"expected `dy` of shape"):
        layer.backward_input(np.ones((2, 4, 4, 4), np.float32))
    layer.build((None, 6, 6, 3))  # rebuilt: the next input is checked again
    checks.clear()
    layer.forward(rng.standard_normal((2, 6, 6, 3)).astype(np.float32))
    assert checks == [(2, 6, 6, 3)]


def test_products_report_no_floating_point_flags_and_keep_their_values(rng):
    """BLAS may raise flags on memory past the operands: a product never warns, and a
    product that does overflow or meets inf * 0 shows it in its result."""
    a, b = rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal((5, 1))
    b = b.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(threads.matmul(a, b), np.matmul(a, b))
        out = threads.matmul(np.array([[np.inf, 1.0]], np.float32), np.zeros((2, 2), np.float32))
        assert np.isnan(out).all()
        big = threads.matmul(np.full((2, 2), 3e38, np.float32), np.full((2, 2), 3e38, np.float32))
        assert np.isinf(big).all()
        # the products that pick no thread count (column sums, ops, cells) read no flags either
        sums = _ops.column_sums(np.array([[np.inf], [-np.inf]], np.float32), _ops.Workspace())
        assert np.isnan(sums).all()
        vec = ln.ops.matmul(np.array([np.inf, 1.0], np.float32), np.zeros(2, np.float32))
        assert np.isnan(np.asarray(vec)).all()


def test_products_leave_the_callers_error_state_as_it_was(rng, monkeypatch):
    """A product ignores BLAS's flags without np.errstate's cost, and what the caller set
    (error handling, buffer size) holds again after it; without NumPy's context variable
    the product falls back to np.errstate with the same result."""
    a, b = rng.standard_normal((7, 4)).astype(np.float32), rng.standard_normal((4, 3))
    b = b.astype(np.float32)
    inf = np.array([[np.inf, 1.0]], np.float32)
    real_matmul, during = np.matmul, []

    def spying_matmul(*args, **kwargs):  # the state the product itself runs under
        during.append((np.geterr(), np.getbufsize(), np.geterrcall()))
        return real_matmul(*args, **kwargs)

    def callback(kind, flag):  # a caller's error callback: kept during the product
        pass

    ignore = dict.fromkeys(("divide", "over", "under", "invalid"), "ignore")
    for state in (None, "fallback"):
        if state == "fallback":
            monkeypatch.setattr(_ops, "_ERROR_STATE", None)
        with np.errstate(all="raise", call=callback):
            np.setbufsize(16384)
            try:
                before = (np.geterr(), np.getbufsize())
                with monkeypatch.context() as spy:
                    spy.setattr(np, "matmul", spying_matmul)
                    got = _ops.product(a, b)
                assert during == [(ignore, 16384, callback)]
                during.clear()
                np.testing.assert_array_equal(got, np.matmul(a, b))
                out = np.empty((1, 2), np.float32)
                assert _ops.product(inf, np.zeros((2, 2), np.float32), out=out) is out
                assert np.isnan(out).all()  # inf * 0, with flags that would raise outside
                assert (np.geterr(), np.getbufsize()) == before
                with pytest.raises(FloatingPointError):
                    np.float32(3e38) * np.float32(10)  # the caller's "raise" is back
            finally:
                np.setbufsize(8192)
    assert np.geterr()["invalid"] != "raise"


def test_products_on_threads_keep_each_threads_error_state(rng):
    """Each thread's error state is its own: products on another thread change neither."""
    import threading

    a = rng.standard_normal((5, 5)).astype(np.float32)
    seen = []

    def work():
        with np.errstate(over="raise"):
            np.setbufsize(16384)
            try:
                for _ in range(200):
                    _ops.product(a, a)
                seen.append((np.geterr()["over"], np.getbufsize()))
            finally:
                np.setbufsize(8192)

    with np.errstate(over="warn"):
        t = threading.Thread(target=work)
        t.start()
        for _ in range(200):
            _ops.product(a, a)
        t.join()
        assert np.geterr()["over"] == "warn" and np.getbufsize() == 8192
    assert seen == [("raise", 16384)]


@pytest.mark.parametrize("n", [1, 15, 16, 100])
@pytest.mark.parametrize("k", [1, 2, 10, _ops.ROW_MAX_WIDTH, _ops.ROW_MAX_WIDTH + 1, 70])
def test_row_maxima_equal_numpys_on_both_sides_of_the_width(rng, n, k, monkeypatch):
    x = rng.standard_normal((n, k)).astype(np.float32)
    x[0, -1] = np.nan
    x[-1, 0] = -np.inf
    x[n // 2] = np.inf if n > 2 else x[n // 2]
    want = x.max(axis=1, keepdims=True)
    strided = np.repeat(x, 2, axis=1)[:, ::2]  # a view: the same maxima
    for fast in (True, False):
        monkeypatch.setattr(_ops, "FAST_PATHS", fast)
        for a in (x, strided, np.asfortranarray(x), x.astype(np.float64)):
            got = _ops.row_max(a)
            assert got.shape == (n, 1) and got.dtype == a.dtype
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n, k", [(3, 4), (100, 10), (40, 33)])
def test_labels_and_one_hot_rows_give_the_same_softmax_cross_entropy(rng, n, k):
    """Integer labels (flat positions of the targets) and one-hot rows: the same loss and
    the same gradient, on both sides of the narrow-row maximum."""
    x = rng.standard_normal((n, k)) * 3
    labels = rng.integers(0, k, n)
    p = np.exp(x - x.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    want_grad = (p - np.eye(k)[labels]) / n
    loss = ln.SoftmaxCrossEntropy(dtype="float64")
    for logits in (x, np.asfortranarray(x), np.repeat(x, 2, axis=1)[:, ::2]):
        for kind in (np.int64, np.int32, np.uint8):
            z_labels = loss.forward(logits, labels.astype(kind))
            g_labels = loss.backward_input(1.0)
            np.testing.assert_allclose(g_labels, want_grad, rtol=1e-12, atol=1e-15)
        z_rows = loss.forward(logits, np.eye(k)[labels])
        g_rows = loss.backward_input(1.0)
        np.testing.assert_allclose(z_labels, z_rows, rtol=1e-13)
        np.testing.assert_allclose(g_labels, g_rows, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(z_labels, -np.mean(np.log(p[np.arange(n), labels])), rtol=1e-12)


def test_padding_plans_tell_fill_values_apart():
    """``_ops.pad`` plans each geometry once: 0.0 and -0.0 (equal keys) keep their own
    borders, -inf its own buffer, pads given as lists the same result as tuples."""
    ws = _ops.Workspace()
    x = np.ones((2, 3, 1))
    plus = _ops.pad(x, ((1, 1),), 0.0, ws)
    minus = _ops.pad(x, ((1, 1),), -0.0, ws)
    assert plus is not minus
    assert not np.signbit(plus[0, 0, 0]) and np.signbit(minus[0, 0, 0])
    low = _ops.pad(x, [[2, 0]], -np.inf, ws)
    np.testing.assert_array_equal(low[0, :, 0], [-np.inf, -np.inf, 1, 1, 1])
    np.testing.assert_array_equal(_ops.pad(x, ((2, 0),), -np.inf, ws), low)
    assert _ops.pad(x, ((0, 0),), 0.0, ws) is x
