"""Time layernet against PyTorch on the CPU, each framework in its own process.

    python benchmarks/bench.py            # full run (several rounds)
    python benchmarks/bench.py --quick    # smoke run: one round, few repeats
    python benchmarks/bench.py --cases conv_B_fwdbwd lenet_256

Each case runs in a fresh worker process per framework, alternating
layernet, PyTorch, layernet, PyTorch, ... over the rounds (OpenBLAS and
PyTorch's OpenMP threads slow each other inside one process). A worker warms
up, times ``repeat`` runs and reports their median and its peak resident
memory above what it held before the timed work. The table shows medians over
rounds and the ratio layernet / PyTorch (below 1: layernet is faster).
PyTorch runs with as many threads as NumPy's BLAS uses.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# name: (description, target ratio or None)
CASES: dict[str, tuple[str, float | None]] = {
    "mnist1d_epoch": ("MNIST-1D CNN, one epoch (4000 samples, batch 100)", 0.5),
    "lenet_64": ("LeNet-5 training step, batch 64", 1.3),
    "lenet_256": ("LeNet-5 training step, batch 256", 1.5),
    "conv_A_fwd": ("Conv2D A: N64 28x28 1->32 k3 p1, forward", None),
    "conv_A_fwdbwd": ("Conv2D A, forward+backward", None),
    "conv_B_fwd": ("Conv2D B: N64 14x14 32->64 k3 p1, forward", None),
    "conv_B_fwdbwd": ("Conv2D B, forward+backward", 1.3),
    "conv_C_fwd": ("Conv2D C: N32 32x32 64->128 k3 p1, forward", None),
    "conv_C_fwdbwd": ("Conv2D C, forward+backward", 1.3),
    "maxpool_fwdbwd": ("MaxPool 2x2 on B's output (N64 14x14 64), forward+backward", None),
    "avgpool_fwdbwd": ("AvgPool 2x2 on B's output, forward+backward", None),
    "gru_step": ("MNIST-1D bidirectional GRU (6 units, 40 steps), Adam step, batch 100", None),
}
CONV = {"A": (64, 28, 1, 32), "B": (64, 14, 32, 64), "C": (32, 32, 64, 128)}
MEMORY_CASE = "lenet_256"
MEMORY_TARGET = 1.5


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return int(infos[0]["num_threads"])
    except ImportError:
        pass
    return os.cpu_count() or 1


def rss_mb() -> float:
    """Current resident set size in MiB (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM``, which belongs to this program's address space. (``ru_maxrss``
    would not do: a child started by fork and exec inherits its parent's peak.)
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


# --------------------------------------------------------------- layernet work
def lenet(n: int):
    """LeNet-5 (compiled, built with seed 0), a batch of ``n`` images and one-hot targets."""
    import layernet as ln

    rng = np.random.default_rng(0)
    model = ln.Sequential(
        [
            ln.Conv2D(6, 5),
            ln.ReLU(),
            ln.MaxPool(2),
            ln.Conv2D(16, 5),
            ln.ReLU(),
            ln.MaxPool(2),
            ln.Flatten(),
            ln.Dense(120),
            ln.ReLU(),
            ln.Dense(84),
            ln.ReLU(),
            ln.Dense(10),
        ]
    )
    model.compile(ln.SGD(0.01, momentum=0.9), "mse")
    x = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    model.build(x.shape, seed=0)
    return model, x, t


def layernet_case(case: str) -> Callable[[], None]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    import layernet as ln

    rng = np.random.default_rng(0)
    if case == "mnist1d_epoch":
        from train_mnist1d import build_model

        (x, y), _ = ln.datasets.load_mnist1d()
        model = build_model()
        model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
        return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    if case.startswith("lenet"):
        model, x, t = lenet(int(case.split("_")[1]))
        return lambda: model.train_step(x, t)
    if case.startswith("conv"):
        n, hw, cin, cout = CONV[case.split("_")[1]]
        layer = ln.Conv2D(cout, 3, padding=1, seed=0)
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        if case.endswith("_fwd"):
            return lambda: layer.forward(x)

        def step():
            layer.forward(x, training=True)
            layer.backward_params(dy)
            layer.backward_input(dy)

        return step
    if case.endswith("pool_fwdbwd"):
        layer = (ln.MaxPool if case.startswith("max") else ln.AvgPool)(2)
        x = rng.standard_normal((64, 14, 14, 64)).astype(np.float32)
        dy = rng.standard_normal((64, 7, 7, 64)).astype(np.float32)

        def step():
            layer.forward(x, training=True)
            layer.backward_input(dy)

        return step
    if case == "gru_step":
        (x, y), _ = ln.datasets.load_mnist1d()
        model = ln.Sequential(
            [ln.Bidirectional(ln.GRU(6, return_sequences=True)), ln.Flatten(), ln.Dense(10)]
        )
        model.compile(ln.Adam(1e-2), "softmax_cross_entropy")
        model.build((None, 40, 1), seed=0)
        xb, yb = x[:100], y[:100]
        return lambda: model.train_step(xb, yb)
    raise ValueError(case)


# ---------------------------------------------------------------- PyTorch work
def torch_case(case: str) -> Callable[[], None]:
    import torch

    torch.set_num_threads(blas_threads())
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if case == "mnist1d_epoch":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        xt = torch.tensor(x.transpose(0, 2, 1).copy())
        yt = torch.tensor(y)
        model = nn.Sequential(
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(125, 10),
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def epoch():
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 100):
                idx = perm[i : i + 100]
                opt.zero_grad()
                F.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()

        return epoch
    if case.startswith("lenet"):
        n = int(case.split("_")[1])
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.tensor(rng.standard_normal((n, 1, 28, 28)).astype(np.float32))
        t = torch.tensor(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)])

        def step():
            opt.zero_grad()
            out = model(x)
            (0.5 * ((out - t) ** 2).sum() / n).backward()
            opt.step()

        return step
    if case.startswith("conv"):
        n, hw, cin, cout = CONV[case.split("_")[1]]
        conv = nn.Conv2d(cin, cout, 3, padding=1)
        x = torch.tensor(rng.standard_normal((n, cin, hw, hw)).astype(np.float32))
        if case.endswith("_fwd"):

            def fwd():
                with torch.no_grad():
                    conv(x)

            return fwd
        xg = x.clone().requires_grad_(True)
        dy = torch.tensor(rng.standard_normal((n, cout, hw, hw)).astype(np.float32))

        def step():
            conv.zero_grad()
            xg.grad = None
            conv(xg).backward(dy)

        return step
    if case.endswith("pool_fwdbwd"):
        pool = F.max_pool2d if case.startswith("max") else F.avg_pool2d
        x = torch.tensor(
            rng.standard_normal((64, 64, 14, 14)).astype(np.float32), requires_grad=True
        )
        dy = torch.tensor(rng.standard_normal((64, 64, 7, 7)).astype(np.float32))

        def step():
            x.grad = None
            pool(x, 2).backward(dy)

        return step
    if case == "gru_step":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
        linear = nn.Linear(480, 10)
        opt = torch.optim.Adam([*gru.parameters(), *linear.parameters()], lr=1e-2)
        xb, yb = torch.tensor(x[:100]), torch.tensor(y[:100])

        def step():
            opt.zero_grad()
            out, _ = gru(xb)
            F.cross_entropy(linear(out.reshape(100, -1)), yb).backward()
            opt.step()

        return step
    raise ValueError(case)


def worker(framework: str, case: str, repeat: int) -> None:
    fn = (layernet_case if framework == "layernet" else torch_case)(case)
    before = rss_mb()  # libraries, data and model in memory; no step run yet
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "median_s": statistics.median(times),
                "peak_mb": peak_mb(),
                "training_mb": peak_mb() - before,
            }
        )
    )


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
    import torch

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, PyTorch "
        f"{torch.__version__}; BLAS threads {blas_threads()}; {rounds} round(s), A B A B"
    )
    header = f"{'case':<16}{'layernet ms':>13}{'PyTorch ms':>12}{'ratio':>8}{'target':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    for case in args.cases:
        repeat = args.repeat or (3 if args.quick else (5 if case == "mnist1d_epoch" else 20))
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(run_worker("layernet", case, repeat))
            theirs.append(run_worker("torch", case, repeat))
        a = statistics.median(r["median_s"] for r in ours) * 1e3
        b = statistics.median(r["median_s"] for r in theirs) * 1e3
        target = CASES[case][1]
        mark = "" if target is None else (f"{'<=' if a / b <= target else '> '}{target}")
        print(f"{case:<16}{a:>13.2f}{b:>12.2f}{a / b:>8.2f}{mark:>8}", flush=True)
        results[case] = (ours, theirs)
    if MEMORY_CASE in results:
        ours, theirs = results[MEMORY_CASE]
        a = statistics.median(r["training_mb"] for r in ours)
        b = statistics.median(r["training_mb"] for r in theirs)
        pa = statistics.median(r["peak_mb"] for r in ours)
        pb = statistics.median(r["peak_mb"] for r in theirs)
        print(
            f"\npeak memory of {MEMORY_CASE} training, MiB: whole process (libraries included) "
            f"layernet {pa:.0f}, PyTorch {pb:.0f}, ratio {pa / pb:.2f}; growth from the loaded "
            f"model to the peak: layernet {a:.0f}, PyTorch {b:.0f}, ratio {a / b:.2f} "
            f"(target <= {MEMORY_TARGET})"
        )


if __name__ == "__main__":
    main()
