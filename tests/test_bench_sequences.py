"""The sequence benchmark's work functions run (no timing here)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_sequences


@pytest.mark.parametrize("case", sorted(bench_sequences.CASES))
def test_layernet_cases_run(case):
    bench_sequences.layernet_case(case)()


@pytest.mark.parametrize("case", sorted(bench_sequences.CASES))
def test_torch_cases_run(case):
    pytest.importorskip("torch", reason="PyTorch is the benchmark baseline ('oracle' extra)")
    bench_sequences.torch_case(case)()


def test_the_block_has_the_same_parameter_count_as_torch():
    torch = pytest.importorskip("torch")
    import layernet as ln

    b = bench_sequences.BLOCK
    ours = bench_sequences.transformer_block(ln, b["length"], b["width"], b["heads"], b["ff"])
    theirs = torch.nn.TransformerEncoderLayer(b["width"], b["heads"], b["ff"], batch_first=True)
    assert ours.count_params() == sum(p.numel() for p in theirs.parameters())
    x, y = bench_sequences._data("lstm_step")
    assert x.shape == (64, 100, 32) and np.isfinite(y).all()


def test_a_worker_reports_wall_and_cpu_time_and_the_memory_its_steps_add(capsys):
    import json

    bench_sequences.worker("layernet", "lstm_step", repeat=1)
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(report) == {"median_s", "cpu_s", "peak_mb", "training_mb"}
    assert report["median_s"] > 0 and report["cpu_s"] > 0
    assert report["peak_mb"] >= report["training_mb"] >= 0
