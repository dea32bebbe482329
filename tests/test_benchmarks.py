"""The benchmark script's work functions run and agree across frameworks (no timing here)."""

from __future__ import annotations

import importlib.util
import os
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


@pytest.mark.parametrize("case", ["lenet_64", "gru_step"])
def test_keras_cases_run(case):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras", reason="Keras (JAX) is a benchmark column ('oracle')")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras was imported with another backend in this process")
    bench.keras_case(case)()


def test_every_training_case_has_a_keras_column_and_workers_share_the_thread_count():
    assert set(bench.KERAS_CASES) <= set(bench.CASES)
    assert {"mnist1d_epoch", "lenet_64", "lenet_256", "mnist_convnet_epoch", "gru_step"} <= set(
        bench.KERAS_CASES
    )
    env = bench.worker_env("keras", 1)
    assert env["KERAS_BACKEND"] == "jax" and env["LAYERNET_NUM_THREADS"] == "1"
    assert "intra_op_parallelism_threads=1" in env["XLA_FLAGS"]
    assert bench.worker_env("torch", 2)["LAYERNET_NUM_THREADS"] == "2"
    assert bench.cpu_name()
    med, spread = bench.median_spread([{"median_s": 0.001}, {"median_s": 0.003}])
    assert med == pytest.approx(2.0) and spread == pytest.approx(50.0)


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


def test_resnet_block_and_functional_lenet_cases_run_in_every_framework():
    assert {"resnet_block_step", "lenet_64_functional"} <= set(bench.CASES)
    assert "resnet_block_step" in bench.KERAS_CASES
    bench.layernet_case("resnet_block_step")()
    bench.layernet_case("lenet_64_functional")()
    if importlib.util.find_spec("torch") is not None:
        bench.torch_case("resnet_block_step")()
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if importlib.util.find_spec("keras") is not None:
        import keras

        if keras.backend.backend() == "jax":
            bench.keras_case("resnet_block_step")()
