"""A batch's per-sample work split between threads (``threads.over_batch``).

The split paths (the patch copies of a convolution, its per-tap input gradient,
max and average pooling both ways) are forced with ``MIN_SPLIT_SIZE = 0`` and a
budget of 2 or 3 threads (load adaptation off, so the quiet-machine count is
used), and compared with the same layer's serial results: pooling and the
copies exactly, products to float rounding. The helper itself: every sample is
covered once, an exception in a part is raised after all parts finished, a
split inside a split runs serially, products inside run on one thread.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from _harness import distinct_values
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops, threads


@pytest.fixture
def split(monkeypatch):
    """Split every batch of two or more samples into up to ``parts`` parts."""

    def force(parts: int) -> None:
        monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 0)
        monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
        before = ln.get_num_threads()
        ln.set_num_threads(parts)
        restore.append(before)

    restore: list[int] = []
    yield force
    for before in restore:
        ln.set_num_threads(before)


def run_layer(make, x, dy):
    layer = make()
    y = layer.forward(x, training=True)
    dx = layer.backward_input(dy)
    grads = layer.backward_params(dy) if layer.params else {}
    return y, dx, grads


def both_ways(make, x, dy, monkeypatch, split, parts):
    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 10**15)
    serial = run_layer(make, x, dy)
    split(parts)
    assert threads.split_count(x.shape[0], x.size) == min(parts, x.shape[0])
    return serial, run_layer(make, x, dy)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 7),
    size=st.integers(4, 9),
    channels=st.integers(1, 4),
    pool=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["valid", "same"]),
    parts=st.integers(2, 3),
    kind=st.sampled_from(["max", "avg"]),
)
def test_pooling_split_equals_serial(n, size, channels, pool, stride, padding, parts, kind):
    with pytest.MonkeyPatch.context() as mp:
        restore: list[int] = []

        def force(p):
            mp.setattr(threads, "MIN_SPLIT_SIZE", 0)
            mp.setattr(threads, "ADAPT_TO_LOAD", False)
            restore.append(ln.get_num_threads())
            ln.set_num_threads(p)

        cls = ln.MaxPool if kind == "max" else ln.AvgPool
        rng = np.random.default_rng(size)
        x = distinct_values((n, size, size, channels), rng).astype(np.float32)
        shape = cls(pool, strides=stride, padding=padding).output_shape(x.shape)
        dy = np.random.default_rng(1).standard_normal(shape).astype(np.float32)

        def make():
            return cls(pool, strides=stride, padding=padding)

        try:
            (y0, dx0, _), (y1, dx1, _) = both_ways(make, x, dy, mp, force, parts)
        finally:
            for before in restore:
                ln.set_num_threads(before)
    np.testing.assert_array_equal(y1, y0)
    np.testing.assert_array_equal(dx1, dx0)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(2, 6),
    size=st.integers(5, 10),
    channels=st.sampled_from([1, 3]),
    filters=st.integers(1, 5),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same"]),
    parts=st.integers(2, 3),
)
def test_conv_split_equals_serial(
    n, size, channels, filters, kernel, stride, dilation, padding, parts
):
    if stride > 1 and dilation > 1:
        dilation = 1  # Keras's rule: not both
    with pytest.MonkeyPatch.context() as mp:
        restore: list[int] = []

        def force(p):
            mp.setattr(threads, "MIN_SPLIT_SIZE", 0)
            mp.setattr(threads, "ADAPT_TO_LOAD", False)
            restore.append(ln.get_num_threads())
            ln.set_num_threads(p)

        rng = np.random.default_rng(size)
        x = rng.standard_normal((n, size, size, channels))

        def make():
            layer = ln.Conv2D(
                filters,
                kernel,
                strides=stride,
                dilation_rate=dilation,
                padding=padding,
                dtype="float64",
            )
            layer.build(x.shape, rng=np.random.default_rng(3))
            return layer

        dy = rng.standard_normal(make().output_shape(x.shape))
        try:
            (y0, dx0, g0), (y1, dx1, g1) = both_ways(make, x, dy, mp, force, parts)
        finally:
            for before in restore:
                ln.set_num_threads(before)
    np.testing.assert_allclose(y1, y0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-12, atol=1e-12)
    for name in g0:
        np.testing.assert_allclose(g1[name], g0[name], rtol=1e-12, atol=1e-12)


def test_lenet_layers_take_the_split(monkeypatch, split):
    """LeNet-5's first layers at batch 8 reach every split path (counted), same results."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 28, 28, 1)).astype(np.float32)

    def model():
        m = ln.Sequential(
            [ln.Conv2D(6, 5), ln.ReLU(), ln.MaxPool(2), ln.Conv2D(16, 5), ln.AvgPool(2)]
        )
        m.build(x.shape, seed=0)
        return m

    def step(m):
        y = m.forward(x, training=True)
        dy = np.linspace(-1, 1, y.size, dtype=np.float32).reshape(y.shape)
        for layer in reversed(m.layers):
            dy = layer.backward_input(dy)
        return y, dy

    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 10**15)
    monkeypatch.setattr(_ops, "PATCH_BLOCK_BYTES", 1)  # a block per sample: 8 blocks to split
    y0, dx0 = step(model())
    split(2)
    calls = []
    original = threads.over_batch

    def counted(fn, n, size):
        calls.append(threads.split_count(n, size))
        return original(fn, n, size)

    monkeypatch.setattr(threads, "over_batch", counted)
    y1, dx1 = step(model())
    np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-5, atol=1e-6)
    # patches (one channel, then six), both input gradients, both pools both ways; the
    # ReLU's 8 x 24 x 24 x 6 entries are one block of its comparison with zeros, which
    # it compares without asking for a split
    assert calls == [2] * 8


def test_over_batch_covers_every_sample_once(split):
    split(3)
    seen = np.zeros(10, int)
    parts = []
    lock = threading.Lock()

    def part(b):
        with lock:
            seen[b] += 1
            parts.append((b.start, b.stop, threading.current_thread().name))

    threads.over_batch(part, 10, 10**6)
    np.testing.assert_array_equal(seen, 1)
    assert sorted(p[:2] for p in parts) == [(0, 3), (3, 6), (6, 10)]
    main = threading.current_thread().name
    assert [p[2] == main for p in sorted(parts)] == [True, False, False]  # the first part here


def test_over_batch_small_work_stays_on_the_calling_thread(monkeypatch):
    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 100)
    calls = []
    threads.over_batch(lambda b: calls.append((b, threading.current_thread().name)), 8, 99)
    assert calls == [(slice(0, 8), threading.current_thread().name)]
    assert threads.split_count(1, 10**9) == 1  # one sample: nothing to split


def test_over_batch_fast_paths_off_runs_serially(split):
    split(2)
    with _ops.fast_paths(False):
        assert threads.split_count(8, 10**9) == 1


def test_over_batch_raises_after_every_part_finished(split):
    split(2)
    done = []

    def part(b):
        if b.start == 0:
            raise ValueError("part failed")
        done.append(b)

    with pytest.raises(ValueError, match="part failed"):
        threads.over_batch(part, 4, 10**6)
    assert done == [slice(2, 4)]
    # the pool and the count survive a failed part
    out = []
    threads.over_batch(out.append, 4, 10**6)
    assert sorted(b.start for b in out) == [0, 2]


def test_over_batch_inside_a_part_is_serial_and_products_take_one_thread(split):
    split(2)
    inner, counts = [], []

    def part(b):
        counts.append(threads._count(10**12))
        threads.over_batch(lambda c: inner.append(c), 6, 10**6)

    threads.over_batch(part, 4, 10**6)
    assert counts == [1, 1]  # a large product inside a split runs on one thread
    assert sorted((c.start, c.stop) for c in inner) == [(0, 6), (0, 6)]
    assert threads._count(10**12) == 2  # after the split: the budget again


def test_over_batch_sets_blas_back_outside_a_step(split):
    split(2)
    threads.over_batch(lambda b: None, 4, 10**6)
    getter = threads._State.getter
    if getter is not None:
        assert int(getter()) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_over_batch_in_a_forked_child(split):
    split(2)
    threads.over_batch(lambda b: None, 4, 10**6)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: its own pool, or it would wait for threads it does not have
        code = 1
        try:
            out = []
            threads.over_batch(out.append, 4, 10**6)
            code = 0 if sorted(b.start for b in out) == [0, 2] else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
