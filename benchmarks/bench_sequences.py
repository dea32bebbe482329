"""Time sequence models, layernet against PyTorch eager on the CPU, each in its own process.

    python benchmarks/bench_sequences.py            # full run (several rounds)
    python benchmarks/bench_sequences.py --quick    # smoke run: one round, few repeats

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
of its timed steps; the table shows medians over rounds and the ratio
layernet / PyTorch (below 1: layernet is faster). PyTorch runs with as many
threads as NumPy's BLAS uses.
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
from bench import blas_threads, cpu_name

CASES = {
    "lstm_step": "LSTM(128), 100 steps x 32 features, batch 64, SGD step",
    "transformer_step": "transformer block, batch 32, length 64, width 128, 4 heads, SGD step",
}
LSTM = {"batch": 64, "steps": 100, "features": 32, "units": 128}
BLOCK = {"batch": 32, "length": 64, "width": 128, "heads": 4, "ff": 512}


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
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(json.dumps({"median_s": statistics.median(times)}))


def run_worker(framework: str, case: str, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", framework, case, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{framework} {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "CASE"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.repeat or 10)
        return
    rounds = 1 if args.quick else args.rounds
    repeat = args.repeat or (3 if args.quick else 10)
    import torch

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch "
        f"{torch.__version__}; BLAS threads {blas_threads()}; {rounds} round(s), A B A B"
    )
    header = f"{'case':<18}{'layernet ms':>13}{'PyTorch ms':>12}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for case in args.cases:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(run_worker("layernet", case, repeat)["median_s"])
            theirs.append(run_worker("torch", case, repeat)["median_s"])
        a, b = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
        print(f"{case:<18}{a:>13.1f}{b:>12.1f}{a / b:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
