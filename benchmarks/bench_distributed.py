"""Time data-parallel layernet (``mpiexec -n P``) against PyTorch on the same cores.

    python benchmarks/bench_distributed.py                 # P = 1, 2 on 2 cores (default)
    python benchmarks/bench_distributed.py --quick         # smoke run: one round, few repeats
    python benchmarks/bench_distributed.py --scaling       # the 16-core table: P = 1..16,
                                                           # one BLAS thread per rank

Each measurement runs in fresh processes: layernet as ``mpiexec -n P python
bench_distributed.py --worker ...`` with a :class:`layernet.DataParallel`
strategy (the global batch split over P ranks, one ``Allreduce`` per step),
PyTorch as ``bench.py``'s worker with ``--cores`` threads, alternating over the
rounds. A layernet worker times each run between two barriers, so the time is
the slowest rank's. The table gives medians over rounds, the ratio of the best
layernet time to PyTorch's, and the scaling efficiency ``t(1) / (P t(P))``.

Cases: the LeNet-5 training step at global batch 256 and 1024 (steps of
``DataParallel`` on one batch), the MNIST-1D CNN's training epoch (``fit`` with
``distribute=``), and Conv2D C (N32 32x32 64->128 k3 p1) forward + backward with
the batch split and the weight gradients summed by one ``Allreduce``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402

CASES = {
    "lenet_256": "LeNet-5 training step, global batch 256",
    "lenet_1024": "LeNet-5 training step, global batch 1024",
    "mnist1d_epoch": "MNIST-1D CNN, one epoch (4000 samples, batch 100)",
    "conv_C_fwdbwd": "Conv2D C (N32 32x32 64->128 k3 p1), forward + backward",
}
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# ---------------------------------------------------------------- layernet work
def layernet_work(case: str, dp):
    """A function running one unit of ``case`` data-parallel over ``dp``'s ranks."""
    import layernet as ln

    if case.startswith("lenet"):
        model, x, t = bench.lenet(int(case.split("_")[1]))
        if dp.size == 1:
            return lambda: model.train_step(x, t)
        dp.broadcast_model(model)
        share = dp.shard(len(x))
        xs, ts = x[share], t[share]

        def lenet_step():
            with model.distribution_scope(dp):  # the step of fit: one Allreduce
                model.train_step(xs, ts)

        return lenet_step
    if case == "mnist1d_epoch":
        sys.path.insert(0, str(HERE.parent / "examples"))
        from train_mnist1d import build_model

        (x, y), _ = ln.datasets.load_mnist1d()
        model = build_model()
        model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
        return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0, distribute=dp)
    if case == "conv_C_fwdbwd":
        n, hw, cin, cout = bench.CONV["C"]
        rng = np.random.default_rng(0)
        layer = ln.Conv2D(cout, 3, padding=1, seed=0)
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        dy = rng.standard_normal((n, hw, hw, cout)).astype(np.float32)
        share = dp.shard(n)
        xs, dys = x[share], dy[share]
        layer.build(x.shape)
        size = sum(g.size for g in layer.grads.values())
        buf = np.zeros(size + 1)

        def step():
            layer.zero_grad()
            if len(xs):
                layer.forward(xs, training=True)
                layer.backward_params(dys)
                layer.backward_input(dys)
            weight = len(xs) / n
            offset = 0
            for g in layer.grads.values():
                np.multiply(g.ravel(), weight, out=buf[offset : offset + g.size])
                offset += g.size
            dp._allreduce(buf, None)

        return step
    raise ValueError(case)


def worker(case: str, repeat: int, threads: int | None) -> None:
    from layernet.distributed import DataParallel

    dp = DataParallel(blas_threads=threads if threads else "auto")
    fn = layernet_work(case, dp)
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeat):
        dp.comm.Barrier()
        start = time.perf_counter()
        fn()
        dp.comm.Barrier()
        times.append(time.perf_counter() - start)
    if dp.is_root:
        print(json.dumps({"median_s": statistics.median(times), "blas": dp.blas_threads}))


# ------------------------------------------------------------------------ runner
def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if not found:
        sys.exit("mpiexec not found: pip install 'layernet[mpi]' (or a system MPI)")
    return found


def clean_env(threads: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
    if threads:
        env.update({k: str(threads) for k in BLAS_VARS})
    src = str(HERE.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    return env


def run_layernet(case: str, ranks: int, repeat: int, threads: int | None) -> float:
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, __file__, "--worker", case]
    cmd += ["--repeat", str(repeat), "--threads", str(threads or 0)]
    # one rank: DataParallel leaves BLAS alone, so give it the threads through the environment
    env = clean_env(threads if ranks == 1 else None)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"layernet {case} P={ranks} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["median_s"]


def run_torch(case: str, repeat: int, cores: int) -> float:
    cmd = [sys.executable, str(HERE / "bench.py"), "--worker", "torch", case]
    out = subprocess.run(
        [*cmd, "--repeat", str(repeat)],
        capture_output=True,
        text=True,
        env=clean_env(cores),
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"PyTorch {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["median_s"]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--scaling", action="store_true", help="the 16-core scaling table")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ranks", type=int, nargs="+", default=None)
    parser.add_argument("--cores", type=int, default=None, help="PyTorch threads (default: all)")
    parser.add_argument(
        "--threads-per-rank",
        type=int,
        default=None,
        help="BLAS threads per rank (default: cores / ranks, DataParallel's own default)",
    )
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--worker", metavar="CASE", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeat or 10, args.threads or None)
        return
    cores = args.cores or len(os.sched_getaffinity(0))
    if args.scaling:
        ranks = args.ranks or [1, 2, 4, 8, 16]
        per_rank = args.threads_per_rank or 1
        if cores < max(ranks):
            print(f"warning: {cores} cores for up to {max(ranks)} ranks", file=sys.stderr)
    else:
        ranks = args.ranks or [1, 2]
        per_rank = args.threads_per_rank
    rounds = 1 if args.quick else args.rounds
    import torch

    print(
        f"machine: {cpu_name()}, {cores} cores; Python {platform.python_version()}, NumPy "
        f"{np.__version__}, PyTorch {torch.__version__} ({cores} threads); BLAS threads per "
        f"rank: {per_rank or 'cores / ranks'}; {rounds} round(s); load average before: "
        f"{os.getloadavg()[0]:.1f}"
    )
    # with one thread per rank, also the one-process run with every core's thread
    single = per_rank is not None and per_rank * min(ranks) < cores
    header = f"| case | PyTorch ms |{f' 1 process, {cores} threads ms |' if single else ''} "
    header += f"{' | '.join(f'P={p} ms' for p in ranks)} | best / PyTorch |"
    header += "".join(f" eff. P={p} |" for p in ranks if p > 1)
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for case in args.cases:
        epoch = case == "mnist1d_epoch"
        repeat = args.repeat or (2 if args.quick else (5 if epoch else 20))
        ours: dict[int, list[float]] = {p: [] for p in ranks}
        theirs, alone = [], []
        for _ in range(rounds):
            if single:
                alone.append(run_layernet(case, 1, repeat, cores))
            for p in ranks:
                threads = per_rank or max(1, cores // p)
                ours[p].append(run_layernet(case, p, repeat, threads))
            theirs.append(run_torch(case, repeat, cores))
        t = {p: statistics.median(v) * 1e3 for p, v in ours.items()}
        b = statistics.median(theirs) * 1e3
        cells = " | ".join(f"{t[p]:.2f}" for p in ranks)
        one = f" {statistics.median(alone) * 1e3:.2f} |" if single else ""
        row = f"| {case} | {b:.2f} |{one} {cells} | {min(t.values()) / b:.2f} |"
        row += "".join(f" {t[ranks[0]] / (p * t[p]):.0%} |" for p in ranks if p > 1)
        print(row, flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
