"""The benchmark script's work functions run and agree across frameworks (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench


@pytest.mark.parametrize(
    "case",
    ["conv_A_fwd", "conv_A_fwdbwd", "maxpool_fwdbwd", "avgpool_fwdbwd", "lenet_64", "gru_step"],
)
def test_layernet_cases_run(case):
    bench.layernet_case(case)()


@pytest.mark.parametrize("case", ["conv_A_fwdbwd", "maxpool_fwdbwd", "lenet_64", "gru_step"])
def test_torch_cases_run(case):
    pytest.importorskip("torch", reason="PyTorch is the benchmark baseline ('oracle' extra)")
    bench.torch_case(case)()


def test_memory_reading_is_positive():
    assert bench.peak_mb() > 0 and bench.rss_mb() > 0
    assert bench.blas_threads() >= 1
    assert set(bench.CASES) >= {"mnist1d_epoch", "lenet_256", "conv_C_fwdbwd"}
    assert np.isfinite(bench.peak_mb())


@pytest.mark.parametrize("case", ["lenet_256", "conv_C_fwdbwd"])
def test_data_parallel_cases_run_on_one_rank(case):
    pytest.importorskip("mpi4py", reason="data-parallel cases need the 'mpi' extra")
    import bench_distributed

    import layernet as ln

    bench_distributed.layernet_work(case, ln.DataParallel())()
    assert set(bench_distributed.CASES) == {
        "lenet_256",
        "lenet_1024",
        "mnist1d_epoch",
        "conv_C_fwdbwd",
    }
