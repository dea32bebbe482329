"""Time sequence models, layernet against PyTorch eager on the CPU, each in its own process.

    python benchmarks/bench_sequences.py            # full run (several rounds)
    python benchmarks/bench_sequences.py --quick    # smoke run: one round, few repeats
    python benchmarks/bench_sequences.py --threads 1 --rounds 3 --repeat 5

Cases (one SGD training step each, mean squared error on random targets):

* ``lstm_step``: LSTM(128) over 100 steps of 32 features, then Dense(10);
  batch 64 (PyTorch: ``nn.LSTM`` + ``nn.Linear``).
* ``transformer_step``: one transformer encoder block, post-norm
  (MultiHeadAttention self-attention with 4 heads of 32, Add, LayerNormalization,
  Dense 512 ReLU, Dense 128, Add, LayerNormalization) on batch 32, length 64,
  width 128 (PyTorch: ``nn.TransformerEncoderLayer(128, 4, 512, dropout=0,
  batch_first=True)``, the same block).

Like ``bench.py``: each case runs in a fresh worker per framework, alternating
layernet, PyTorch, ... over the rounds; a worker warms up and reports the median
of its timed steps, in wall-clock time and in CPU time (``time.process_time``:
on one thread it is the figure another process's load disturbs least); the
table shows medians over rounds and the ratios layernet / PyTorch (below 1:
layernet is faster). Every framework gets the same thread count: ``--threads``
(default: layernet's budget, :func:`layernet.get_num_threads`) as
``LAYERNET_NUM_THREADS`` for layernet and ``torch.set_num_threads`` for PyTorch.

Memory, read as ``bench.py`` reads it: each worker is a fresh process, notes its
resident size once the model and the data are in memory and no step has run,
and reports its peak (``VmHWM``) after the timed steps; the difference is what
the training steps add. The LSTM step's figures (medians over rounds) are
printed below the table with their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import blas_threads, cpu_name, peak_mb, rss_mb

CASES = {
    "lstm_step": "LSTM(128), 100 steps x 32 features, batch 64, SGD step",
    "transformer_step": "transformer block, batch 32, length 64, width 128, 4 heads, SGD step",
}
LSTM = {"batch": 64, "steps": 100, "features": 32, "units": 128}
BLOCK = {"batch": 32, "length": 64, "width": 128, "heads": 4, "ff": 512}
#: The case whose peak memory is compared, and the target ratio layernet / PyTorch.
MEMORY_CASE = "lstm_step"
MEMORY_TARGET = 1.5


def _data(case: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if case == "lstm_step":
        x = rng.standard_normal((LSTM["batch"], LSTM["steps"], LSTM["features"]))
        y = rng.standard_normal((LSTM["batch"], 10))
    else:
        x = rng.standard_normal((BLOCK["batch"], BLOCK["length"], BLOCK["width"]))
        y = rng.standard_normal(x.shape)
    return x.astype("float32"), y.astype("float32")


def lstm_model(K):
    """LSTM(128) over the sequence, then Dense(10), written once (K = layernet or keras)."""
    return K.Sequential(
        [
            K.Input((LSTM["steps"], LSTM["features"])),
            K.layers.LSTM(LSTM["units"]),
            K.layers.Dense(10),
        ]
    )


def transformer_block(K, length: int, width: int, heads: int, ff: int):
    """The post-norm encoder block, written once (K = layernet or keras)."""
    x = K.Input(shape=(length, width))
    a = K.layers.MultiHeadAttention(num_heads=heads, key_dim=width // heads)(x, x)
    h = K.layers.LayerNormalization()(K.layers.Add()([x, a]))
    f = K.layers.Dense(ff, activation="relu")(h)
    f = K.layers.Dense(width)(f)
    y = K.layers.LayerNormalization()(K.layers.Add()([h, f]))
    return K.Model(x, y)


def layernet_case(case: str) -> Callable[[], None]:
    import layernet as ln

    x, y = _data(case)
    if case == "lstm_step":
        model = lstm_model(ln)
    else:
        model = transformer_block(ln, BLOCK["length"], BLOCK["width"], BLOCK["heads"], BLOCK["ff"])
    model.compile(ln.SGD(learning_rate=0.01), "mse")

    def step() -> None:
        model.train_on_batch(x, y)

    return step


def torch_case(case: str) -> Callable[[], None]:
    import torch

    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in _data(case))
    if case == "lstm_step":
        lstm = torch.nn.LSTM(LSTM["features"], LSTM["units"], batch_first=True)
        head = torch.nn.Linear(LSTM["units"], 10)
        params = [*lstm.parameters(), *head.parameters()]

        def forward():
            return head(lstm(x)[0][:, -1])
    else:
        block = torch.nn.TransformerEncoderLayer(
            BLOCK["width"], BLOCK["heads"], BLOCK["ff"], dropout=0.0, batch_first=True
        )
        params = list(block.parameters())

        def forward():
            return block(x)

    opt = torch.optim.SGD(params, lr=0.01)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.mse_loss(forward(), y).backward()
        opt.step()

    return step


def worker(framework: str, case: str, repeat: int) -> None:
    fn = (layernet_case if framework == "layernet" else torch_case)(case)
    before = rss_mb()  # libraries, data and model in memory; no step run yet
    for _ in range(2):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(
        json.dumps(
            {
                "median_s": statistics.median(wall),
                "cpu_s": statistics.median(cpu),
                "peak_mb": peak_mb(),
                "training_mb": peak_mb() - before,
            }
        )
    )


def run_worker(framework: str, case: str, repeat: int, threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads is not None:
        env["LAYERNET_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", framework, case, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if out.returncode:
        raise RuntimeError(f"{framework} {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=None, help="timed steps per worker")
    parser.add_argument("--threads", type=int, default=None, help="threads for every framework")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.repeat or 10)
        return
    rounds = 1 if args.quick else args.rounds
    repeat = args.repeat or (3 if args.quick else 10)
    threads = args.threads or blas_threads()
    import torch

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch "
        f"{torch.__version__}; threads {threads} for every framework; {rounds} round(s), "
        f"A B A B; load average {_load()}"
    )
    header = (
        f"{'case':<18}{'layernet ms':>13}{'PyTorch ms':>12}{'ratio':>8}"
        f"{'layernet cpu':>14}{'PyTorch cpu':>13}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    results: dict[str, tuple[list[dict], list[dict]]] = {}
    for case in args.cases:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(run_worker("layernet", case, repeat, threads))
            theirs.append(run_worker("torch", case, repeat, threads))
        results[case] = (ours, theirs)
        a, b = (statistics.median(r["median_s"] for r in rs) * 1e3 for rs in (ours, theirs))
        ca, cb = (statistics.median(r["cpu_s"] for r in rs) * 1e3 for rs in (ours, theirs))
        print(
            f"{case:<18}{a:>13.1f}{b:>12.1f}{a / b:>8.2f}{ca:>14.1f}{cb:>13.1f}{ca / cb:>8.2f}",
            flush=True,
        )
    if MEMORY_CASE in results:
        ours, theirs = results[MEMORY_CASE]
        a, b = (statistics.median(r["training_mb"] for r in rs) for rs in (ours, theirs))
        pa, pb = (statistics.median(r["peak_mb"] for r in rs) for rs in (ours, theirs))
        print(
            f"\npeak memory of {MEMORY_CASE} training, MiB: whole process (libraries included) "
            f"layernet {pa:.0f}, PyTorch {pb:.0f}, ratio {pa / pb:.2f}; growth from the loaded "
            f"model and data to the peak: layernet {a:.1f}, PyTorch {b:.1f}, ratio "
            f"{a / b:.2f} (target <= {MEMORY_TARGET}); load average {_load()}"
        )


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


if __name__ == "__main__":
    main()
