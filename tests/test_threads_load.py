"""The thread budget adapts to other processes' load: large products take only free cores."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import layernet as ln
from layernet import threads

LARGE = threads.MIN_PARALLEL_FLOPS


@pytest.fixture
def fresh_load(monkeypatch):
    """No reading yet, and readings from a fake /proc/stat and process clock."""
    monkeypatch.setattr(threads._Load, "at", None)
    monkeypatch.setattr(threads._Load, "free", None)
    monkeypatch.setattr(threads._Load, "cores", 2)
    clock = {"busy": 100.0, "own": 10.0}
    monkeypatch.setattr(threads, "_busy_seconds", lambda: clock["busy"])
    monkeypatch.setattr(threads, "_own_seconds", lambda: clock["own"])
    return clock


def test_free_cores_are_the_cores_less_what_other_processes_used(fresh_load):
    assert threads.free_cores(now=1000.0) is None  # one reading: nothing to compare yet
    # over 1 s: all processes used 1.5 CPU seconds, this one 0.5 -> others 1.0 of 2 cores
    fresh_load["busy"] += 1.5
    fresh_load["own"] += 0.5
    assert threads.free_cores(now=1001.0) == pytest.approx(1.0)
    # within LOAD_INTERVAL the last reading stands, whatever happened since
    fresh_load["busy"] += 100.0
    assert threads.free_cores(now=1001.0 + threads.LOAD_INTERVAL / 2) == pytest.approx(1.0)
    # then re-read: over the next 0.5 s only this process ran (two cores busy, both its own)
    fresh_load["busy"] = 101.5 + 1.0
    fresh_load["own"] = 10.5 + 1.0
    assert threads.free_cores(now=1001.5) == pytest.approx(2.0)


def test_free_cores_stay_between_zero_and_the_cores(fresh_load):
    threads.free_cores(now=0.0)
    fresh_load["busy"] += 10.0  # others used 10 CPU seconds in 1 s: more than the cores
    assert threads.free_cores(now=1.0) == 0.0
    fresh_load["own"] += 5.0  # this process's clock ran ahead of /proc/stat's ticks
    assert threads.free_cores(now=2.0) == 2.0


def test_without_proc_stat_the_budget_stands(monkeypatch):
    monkeypatch.setattr(threads._Load, "at", None)
    monkeypatch.setattr(threads._Load, "free", None)
    monkeypatch.setattr(threads, "_busy_seconds", lambda: None)
    assert threads.free_cores(now=0.0) is None
    assert threads.free_cores(now=10.0) is None


def test_busy_seconds_reads_the_cpu_line(tmp_path):
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal
    stat.write_text("cpu  100 5 50 1000 30 2 3 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
    assert threads._busy_seconds(str(stat)) == pytest.approx((100 + 5 + 50 + 2 + 3 + 10) / 100)
    stat.write_text("intr 1 2 3\n")
    assert threads._busy_seconds(str(stat)) is None
    assert threads._busy_seconds(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    ("free", "adapt", "expected"),
    [
        (None, True, 2),
        (2.0, True, 2),
        (1.6, True, 2),
        (1.4, True, 1),
        (0.0, True, 1),
        (0.3, False, 2),
    ],
)
def test_large_products_take_at_most_the_free_cores(monkeypatch, free, adapt, expected):
    before = ln.get_num_threads()
    monkeypatch.setattr(threads, "free_cores", lambda now=None: free)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", adapt)
    try:
        ln.set_num_threads(2)
        assert threads.threads_for(LARGE) == expected
        assert threads.threads_for(LARGE - 1) == 1  # small products: one thread, always
    finally:
        ln.set_num_threads(before)


def test_a_product_on_the_free_cores_gives_the_same_numbers(monkeypatch, rng):
    if ln.distributed.get_blas_threads() is None:
        pytest.skip("the BLAS thread count cannot be read here (not OpenBLAS)")
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 300)).astype(np.float32)
    seen = []
    real = np.matmul

    def spying(*args, **kwargs):
        seen.append(ln.distributed.get_blas_threads())
        return real(*args, **kwargs)

    before = ln.get_num_threads()
    try:
        ln.set_num_threads(2)
        monkeypatch.setattr(threads.np, "matmul", spying)
        monkeypatch.setattr(threads, "free_cores", lambda now=None: 1.0)
        busy = threads.matmul(a, b)
        monkeypatch.setattr(threads, "free_cores", lambda now=None: 2.0)
        quiet = threads.matmul(a, b)
        assert seen == [1, 2]
        assert ln.distributed.get_blas_threads() == 2  # the budget, restored after the product
        np.testing.assert_array_equal(busy, quiet)
    finally:
        monkeypatch.undo()
        ln.set_num_threads(before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat (Linux)")
def test_a_cpu_bound_process_alongside_is_seen(monkeypatch):
    """With a real busy loop in another process, at least most of a core is not free."""
    monkeypatch.setattr(threads._Load, "at", None)
    monkeypatch.setattr(threads._Load, "free", None)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start
        t0 = time.monotonic()
        threads.free_cores(now=t0)
        time.sleep(1.0)
        free = threads.free_cores(now=time.monotonic())
    finally:
        hog.kill()
        hog.wait()
    assert free is not None
    assert free <= threads._Load.cores - 0.5


def test_a_loop_of_equal_products_switches_blas_once(monkeypatch, rng):
    """The per-tap products of a convolution's input gradient (and the blocks of a kernel
    gradient) all have one size: BLAS is set for the loop, not around every product."""
    from layernet import _ops, threads

    before = ln.get_num_threads()
    ln.set_num_threads(2)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    calls = []
    real = threads._set_blas
    monkeypatch.setattr(threads, "_set_blas", lambda n: (calls.append(n), real(n)))
    try:
        w = rng.standard_normal((5, 5, 6, 16)).astype("float32")
        dy2 = rng.standard_normal((2 * 8 * 8, 16)).astype("float32")
        dxp = np.zeros((2, 12, 12, 6), "float32")
        _ops.conv_transpose(dy2, w, dxp, (8, 8), (1, 1), (1, 1), _ops.Workspace())
        assert calls == [1, 2]  # 25 small products on one thread, then back to the budget
        expected = np.zeros_like(dxp)
        for i in range(5):
            for j in range(5):
                expected[:, i : i + 8, j : j + 8] += (dy2 @ w[i, j].T).reshape(2, 8, 8, 6)
        np.testing.assert_allclose(dxp, expected, rtol=1e-5, atol=1e-5)
        calls.clear()
        col = rng.standard_normal((9000, 4)).astype("float32")
        g = rng.standard_normal((9000, 3)).astype("float32")
        np.testing.assert_allclose(_ops.weight_grad(col, g), col.T @ g, rtol=1e-4, atol=1e-4)
        assert calls == [1, 2]  # three blocks, one switch
    finally:
        monkeypatch.undo()
        ln.set_num_threads(before)


def test_inside_a_step_blas_stays_at_a_products_count_and_is_set_back_after(monkeypatch, rng):
    before = ln.get_num_threads()
    ln.set_num_threads(2)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    calls = []
    real = threads._set_blas
    monkeypatch.setattr(threads, "_set_blas", lambda n: (calls.append(n), real(n)))
    small = rng.standard_normal((10, 10))
    try:
        threads.matmul(small, small)
        assert calls == [1, 2]  # outside a step: set back after every product
        calls.clear()
        with threads.held():
            with threads.held():  # blocks nest: only the outermost sets BLAS back
                for _ in range(3):
                    np.testing.assert_allclose(threads.matmul(small, small), small @ small)
            assert calls == [1] and threads._State.current == 1
        assert calls == [1, 2] and threads._State.current == 2
        calls.clear()
        model = ln.Sequential([ln.Dense(3, seed=0), ln.Dense(2, seed=1)])
        model.compile(ln.SGD(0.1), "mse")
        x = rng.standard_normal((16, 4)).astype("float32")
        model.fit(x, x[:, :2], batch_size=4, epochs=1, verbose=0)
        assert calls == [1, 2] * 4  # one switch per step, set back when the step ends
        assert threads._State.current == 2  # code after fit finds the budget
        model.evaluate(x, x[:, :2], batch_size=8, verbose=0)
        model.predict(x, batch_size=8, verbose=0)
        assert threads._State.current == 2 and getattr(threads._HELD_DEPTH, "n", 0) == 0
    finally:
        monkeypatch.undo()
        ln.set_num_threads(before)


SPIN_PROBE = """
import ctypes, os
import numpy as np
import layernet as ln
from layernet import distributed, threads
ln.get_num_threads()  # the first thread count layernet sets
a = np.ones((300, 300), np.float32)
ok = bool(((a @ a) == 300).all())  # products still run (the threads start again)
values = []
for path in distributed._loaded_libraries():
    if "openblas" in os.path.basename(path).lower():
        fn = getattr(ctypes.CDLL(path), "openblas_thread_timeout", None)
        if fn is not None:
            fn.restype = ctypes.c_int
            values.append(fn())
print(ok, os.environ.get("OPENBLAS_THREAD_TIMEOUT"), threads.BLAS_SPIN, values)
"""


def _spin_probe(env_value):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if env_value is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", SPIN_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=3)
    values = ast.literal_eval(out[3])  # the list of ints the probe printed
    if not values:
        pytest.skip("no OpenBLAS with a readable idle spin is loaded here")
    return out[0], out[1], int(out[2]), values


def test_openblas_idle_spin_is_shortened_when_layernet_first_sets_threads():
    ok, env_after, spin, values = _spin_probe(None)
    assert ok == "True"
    assert env_after == "None"  # the variable was set for OpenBLAS's reading only
    assert values == [spin] * len(values) and spin < 28  # OpenBLAS's default is 2**28


def test_openblas_idle_spin_set_by_the_user_is_kept():
    ok, env_after, _, values = _spin_probe("25")
    assert ok == "True" and env_after == "25"
    assert values == [25] * len(values)
