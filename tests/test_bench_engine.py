"""The engine benchmark's work and its driver run (tiny sizes; no timing is judged here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_engine  # noqa: E402  (from benchmarks/, put on the path above)


@pytest.mark.parametrize(
    ("case", "variant"),
    [
        ("mnist1d_epoch", ""),
        ("lenet_64", ""),
        ("lenet_256_memory", ""),
        ("call_dense_64", "dense"),
        ("call_dense_64", "call"),
    ],
)
def test_work_runs_on_this_tree(case, variant):
    bench_engine.work(case, ROOT, tiny=True, variant=variant)()


def test_call_dense_is_a_dense():
    """The call()-written LeNet computes what ln.Dense's does, before and after a step."""
    dense, x, t = bench_engine.lenet_call_dense(4, written=False)
    call, x2, t2 = bench_engine.lenet_call_dense(4, written=True)
    np.testing.assert_array_equal(x, x2)
    kinds = [type(layer).__name__ for layer in call.layers]
    assert kinds.count("CallDense") == 3 and "Dense" not in kinds
    np.testing.assert_allclose(call.predict(x, verbose=0), dense.predict(x, verbose=0), atol=1e-6)
    z_dense, _ = dense.train_step(x, t)
    z_call, _ = call.train_step(x2, t2)
    assert z_call == pytest.approx(z_dense, rel=1e-6)
    for a, b in zip(call.get_weights(), dense.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_traced_step_reads_the_peak_above_the_start():
    held: list[np.ndarray] = []

    def make():
        held.append(np.ones(2**18))  # 2 MiB held from the start
        return lambda: np.ones(2**17).sum()  # 1 MiB for the length of a step

    out = bench_engine.traced_step(make, warmup=1, repeat=2)
    assert out["step_mb"] == pytest.approx(1.0, abs=0.05)
    assert out["peak_mb"] == pytest.approx(3.0, abs=0.1)


def test_ratios_and_worker_environment():
    med, lo, mid = bench_engine.ratios([2.0, 3.0, 4.0], [2.0, 2.0, 2.0])
    assert (med, lo, mid) == (1.5, 1.0, 1.5)
    env = bench_engine.worker_env(ROOT, 1)
    assert env["PYTHONPATH"] == str(ROOT / "src")
    assert env["OPENBLAS_NUM_THREADS"] == env["LAYERNET_NUM_THREADS"] == "1"


def _has_base_commit() -> bool:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "cat-file", "-e", f"{bench_engine.BASE}^{{commit}}"],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0


@pytest.mark.skipif(not _has_base_commit(), reason="needs the git history (the base commit)")
def test_quick_run_on_tiny_sizes_against_the_base(capsys):
    """The whole driver: the base tree unpacked, workers on both trees, the table printed."""
    cases = ["mnist1d_epoch", "lenet_64", "lenet_256_memory", "call_dense_64"]
    results = bench_engine.main(["--quick", "--tiny", "--cases", *cases])
    assert list(results) == cases
    for case in ("mnist1d_epoch", "lenet_64"):
        for side in ("base", "current"):
            (run,) = results[case][side]
            assert run["median_s"] > 0 and run["cpu_s"] >= 0
    assert set(results["call_dense_64"]) == {"dense", "call"}
    for side in ("base", "current"):
        (run,) = results["lenet_256_memory"][side]
        assert run["peak_mb"] >= run["step_mb"] > 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "load average" in out
    for case in cases[:2]:
        assert case in out
