"""The benchmark script's work functions run and agree across frameworks; its report and its
``--busy`` process (no timing is judged here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench  # noqa: E402  (from benchmarks/, put on the path above)


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
    training = {c for c in bench.CASES if bench.is_training_case(c)}
    assert training >= {"mnist1d_epoch", "lenet_64", "lenet_256", "mnist_convnet_epoch"}
    assert training >= {"gru_step", "lstm_step", "transformer_step"}
    assert not training & {"conv_B_fwdbwd", "conv_A_fwd", "maxpool_fwdbwd"}
    assert {"lstm_step", "transformer_step", "lenet_64", "mnist1d_epoch"} <= set(bench.KERAS_CASES)
    assert set(bench.PLAIN_TORCH_CASES) <= training
    assert set(bench.KERAS_TARGETS) | set(bench.MEMORY_TARGETS) <= training
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


def test_targets_as_they_stand():
    torch_targets = {c: t for c, (_, t) in bench.CASES.items() if t is not None}
    assert torch_targets == {
        "mnist1d_epoch": 0.5,
        "lenet_64": 1.0,
        "lenet_256": 1.0,
        "conv_B_fwdbwd": 1.3,
        "conv_C_fwdbwd": 1.3,
        "lstm_step": 1.5,
        "transformer_step": 1.5,
    }
    assert bench.KERAS_TARGETS == {"mnist1d_epoch": 1.0, "lenet_64": 1.0}
    assert bench.MEMORY_TARGETS["lstm_step"] == 1.5 and bench.BUSY_TARGET == 1.3
    assert bench.verdict(1.0, 1.0) == "met" and bench.verdict(1.01, 1.0) == "not met"
    assert bench.verdict(None, 1.0) == "not measured" and bench.verdict(2.0, None) == ""
    assert bench.plain_outside(1.11) and bench.plain_outside(0.89)
    assert not bench.plain_outside(1.0) and not bench.plain_outside(None)


@pytest.mark.parametrize("case", ["lenet_64", "mnist1d_epoch"])
def test_plain_torch_loops_run(case):
    torch = pytest.importorskip("torch", reason="PyTorch is the benchmark baseline ('oracle')")
    train = bench.torch_plain_case(case)
    train()
    assert torch.get_num_threads() == bench.blas_threads()


def test_plain_torch_loop_has_the_benchmark_models():
    torch = pytest.importorskip("torch", reason="PyTorch is the benchmark baseline ('oracle')")
    for case in bench.PLAIN_TORCH_CASES:
        plain = bench.torch_plain_case(case)
        ours = bench.torch_case(case)
        # The closures hold the models: the same layer shapes in both loops.
        shapes = [
            sorted(
                tuple(p.shape)
                for cell in fn.__closure__ or ()
                if isinstance(cell.cell_contents, torch.nn.Module)
                for p in cell.cell_contents.parameters()
            )
            for fn in (plain, ours)
        ]
        assert shapes[0] and shapes[0] == shapes[1], case
    with pytest.raises(ValueError, match="no plain PyTorch loop"):
        bench.torch_plain_case("conv_B_fwdbwd")


def test_sequence_cases_are_bench_sequences_models():
    import layernet as ln

    seq = bench.sequences()
    b = seq.BLOCK
    bench.layernet_case("transformer_step")()
    assert seq.lstm_model(ln).count_params() == 4 * 128 * (32 + 128 + 1) + 129 * 10
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras", reason="Keras (JAX) is a benchmark column ('oracle')")
    if keras.backend.backend() != "jax":
        pytest.skip("Keras was imported with another backend in this process")
    assert seq.lstm_model(keras).count_params() == seq.lstm_model(ln).count_params()
    theirs = seq.transformer_block(keras, b["length"], b["width"], b["heads"], b["ff"])
    ours = seq.transformer_block(ln, b["length"], b["width"], b["heads"], b["ff"])
    assert theirs.count_params() == ours.count_params()


# ------------------------------------------------------------------ the report
def fake_run_worker(framework, case, repeat, threads, busy=False, quick=False):
    """A worker's answer without running it: PyTorch 2 ms, layernet 1 ms, ..."""
    ms = {"layernet": 1.0, "torch": 2.0, "keras": 0.5, "torch_plain": 1.5}[framework]
    mb = {"layernet": 33.0, "torch": 20.0, "keras": 60.0, "torch_plain": 21.0}[framework]
    busy_factor = (1.5 if framework == "layernet" else 1.2) if busy else 1.0
    return {
        "median_s": ms * busy_factor / 1e3,
        "cpu_s": ms / 1e3,
        "peak_mb": mb + 100,
        "training_mb": mb,
    }


def test_report_columns_targets_memory_busy_and_json(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "run_worker", fake_run_worker)
    monkeypatch.setattr(bench, "exit_on_sigterm", lambda: None)  # keep pytest's handler
    # A case added by the pattern of the others (CASES, KERAS_CASES, the case functions).
    monkeypatch.setitem(bench.CASES, "resnet_block_step", ("a residual block, step", None))
    monkeypatch.setattr(bench, "KERAS_CASES", (*bench.KERAS_CASES, "resnet_block_step"))
    path = tmp_path / "figures.json"
    cases = ["mnist1d_epoch", "lenet_64", "lstm_step", "resnet_block_step", "conv_A_fwd"]
    report = bench.main(
        ["--quick", "--busy", "--threads", "2", "--cases", *cases, "--json", str(path)]
    )
    out = capsys.readouterr().out
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    got = report["cases"]
    assert set(got) == set(cases)
    assert set(got["lenet_64"]["frameworks"]) == {"layernet", "torch", "keras", "torch_plain"}
    assert set(got["lstm_step"]["frameworks"]) == {"layernet", "torch", "keras"}
    assert set(got["resnet_block_step"]["frameworks"]) == {"layernet", "torch", "keras"}
    assert set(got["conv_A_fwd"]["frameworks"]) == {"layernet", "torch"}
    lenet = got["lenet_64"]
    assert lenet["ratios"]["layernet/torch"] == pytest.approx(0.5)
    assert lenet["ratios"]["layernet/keras"] == pytest.approx(2.0)
    assert lenet["ratios"]["torch/torch_plain"] == pytest.approx(2.0 / 1.5)
    assert lenet["frameworks"]["layernet"]["busy/quiet"] == pytest.approx(1.5)
    assert got["lstm_step"]["ratios"]["memory layernet/torch"] == pytest.approx(1.65)
    assert got["lstm_step"]["targets"]["memory layernet/torch"] == 1.5
    assert got["resnet_block_step"]["targets"]["busy/quiet"] == bench.BUSY_TARGET
    assert got["conv_A_fwd"]["targets"]["busy/quiet"] is None
    assert report["machine"]["threads"] == 2 and report["machine"]["cpu"]
    summary, busy, memory = out.split("\n\n")[1:4]
    # layernet / PyTorch: 0.5, all met; layernet / Keras: 2.0, not met; the plain loop flagged
    assert "mnist1d_epoch" in summary and "0.50  <= 0.5  met" in summary and "<= 1.0  met" in summary
    assert summary.count("not met") == 2 and "outside" in summary
    assert "lstm_step" in summary and "resnet_block_step" not in summary
    # busy: layernet 1.5x its quiet time in every training case, none in conv_A_fwd
    assert "layernet: 0 of 4 training cases within 1.3x" in busy
    assert busy.count("not met") == 5 and "conv_A_fwd" in busy
    # memory: the training cases, the target where one is set
    rows = {line.split()[0]: line for line in memory.splitlines()[2:]}
    assert set(rows) == {"mnist1d_epoch", "lenet_64", "lstm_step", "resnet_block_step"}
    assert rows["lstm_step"].endswith("not met") and "1.65" in rows["resnet_block_step"]


def test_quick_run_of_a_case_writes_every_figure(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is the benchmark baseline ('oracle')")
    path = tmp_path / "quick.json"
    command = [sys.executable, str(BENCHMARKS / "bench.py"), "--quick", "--repeat", "1"]
    command += ["--threads", "1", "--cases", "lenet_64", "--json", str(path)]
    command += ["--frameworks", "layernet", "torch", "torch_plain"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert "PyTorch column / plain PyTorch loop" in out.stdout
    cell = json.loads(path.read_text())["cases"]["lenet_64"]
    assert set(cell["frameworks"]) == {"layernet", "torch", "torch_plain"}
    for figures in cell["frameworks"].values():
        assert figures["median_ms"] > 0 and figures["peak_mb"] > 0
    assert cell["ratios"]["layernet/torch"] > 0 and cell["ratios"]["torch/torch_plain"] > 0


# --------------------------------------------------------- the --busy process
def running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads process states from /proc"
)


def kill_if_still(pid: int, text: str) -> None:
    """Kill ``pid`` if it still runs the command it ran (its command line holds ``text``)."""
    try:
        line = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return
    if running(pid) and text in line:
        os.kill(pid, signal.SIGKILL)


def wait_until_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(pid)


@needs_proc
def test_hog_ends_with_its_block_even_on_an_error():
    with pytest.raises(RuntimeError, match="stop"), bench.cpu_hog() as hog:
        assert running(hog.pid)
        raise RuntimeError("stop")
    assert not running(hog.pid)


@needs_proc
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_hog_ends_when_the_benchmark_is_killed(sig):
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            f"sys.path.insert(0, {str(BENCHMARKS)!r})\n"
            "import bench\n"
            "bench.exit_on_sigterm()\n"
            "with bench.cpu_hog() as hog:\n"
            "    print(hog.pid, flush=True)\n"
            "    time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    hog = int(parent.stdout.readline())
    try:
        assert running(hog)
        parent.send_signal(sig)
        parent.wait(timeout=10)
        assert wait_until_gone(hog), f"the CPU-bound process outlived its parent ({sig!r})"
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()
        kill_if_still(hog, "getppid")


def children(pid: int) -> dict[int, str]:
    """The running processes whose parent is ``pid``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid and stat[0] != "Z":
                    found[int(entry.name)] = (entry / "cmdline").read_text().replace("\0", " ")
            except (OSError, IndexError, ValueError):
                continue
    return found


@needs_proc
def test_killed_busy_run_leaves_no_cpu_bound_process():
    command = [sys.executable, str(BENCHMARKS / "bench.py"), "--busy", "--quick", "--repeat"]
    command += ["1", "--threads", "1", "--cases", "conv_A_fwd", "--frameworks", "layernet"]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            seen.update(children(run.pid))
            if any("getppid" in line for line in seen.values()):
                break
            time.sleep(0.02)
        hogs = [pid for pid, line in seen.items() if "getppid" in line]
        assert len(hogs) == 1, "the busy run started no CPU-bound process"
        run.kill()
        run.wait()
        assert wait_until_gone(hogs[0]), "the CPU-bound process outlived the killed benchmark"
    finally:
        run.kill()
        run.wait()
        for pid, line in seen.items():  # the worker ends by itself; leave nothing behind
            kill_if_still(pid, line)


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
