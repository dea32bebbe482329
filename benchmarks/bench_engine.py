"""What the graph engine costs: this tree against layernet before it (commit 05c79eb).

    python benchmarks/bench_engine.py                 # full run (5 rounds, a few minutes)
    python benchmarks/bench_engine.py --quick         # smoke run: one round, few repeats
    python benchmarks/bench_engine.py --quick --tiny  # the same on tiny sizes (the test's run)
    python benchmarks/bench_engine.py --cases lenet_64 call_dense_64 --rounds 9

The baseline is a ``git archive`` of ``--base`` (default 05c79eb, layernet
before the graph engine: layers kept their backward state on themselves and
Sequential had its own loop) unpacked in a temporary folder. Every case runs in
a fresh worker process that imports layernet from one tree or the other
(``PYTHONPATH``), alternating base, current, base, current, ... over the rounds,
so both trees meet the same load. A worker builds its model and data once,
warms up, times ``repeat`` runs and reports their median wall-clock time and
their median CPU time (``time.process_time``: BLAS runs on one thread in both
trees, so this is the work done, little changed by other processes taking the
cores). Only same-run ratios mean anything on a shared machine: per case the
table gives each tree's median over rounds, the ratio of those medians (now /
base, below 1: the current tree is faster) and the minimum and median of the
per-round ratios, for both clocks.

Cases (the builders are :mod:`bench`'s: ``lenet`` and the MNIST-1D paper's CNN):

* ``mnist1d_epoch``: one ``fit`` epoch of the MNIST-1D CNN (4,000 samples, batch
  100, SGD with momentum), as ``bench.py``'s case of that name.
* ``lenet_64``, ``lenet_256``: one LeNet-5 ``train_step`` (SGD with momentum, MSE).
* ``lenet_256_memory``: the memory of a LeNet-5 batch-256 step, two ways. With
  :mod:`tracemalloc` (NumPy reports its array buffers to it), on a model built
  after every module is imported: the peak held during a step (model, data,
  optimizer state, kept buffers and the step's temporaries; exact and
  repeatable: the number compared), and that peak above what the step began
  with. And the resident set's peak (``VmHWM``) over the steps above the
  resident set with the model built (depends on the allocator; for reference).
* ``call_dense_64``, ``call_dense_256``: current tree only, LeNet-5 whose three
  Dense layers are written as ``call()`` (``build`` with ``add_weight``, ``call``
  with :mod:`layernet.ops`), against the same model with ``ln.Dense``; the
  ratio is call() / Dense.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (the builders and machine readings of the main benchmark)

BASE = "05c79eb"
CASES: dict[str, str] = {
    "mnist1d_epoch": "MNIST-1D CNN, one fit epoch (4000 samples, batch 100)",
    "lenet_64": "LeNet-5 training step, batch 64",
    "lenet_256": "LeNet-5 training step, batch 256",
    "lenet_256_memory": "LeNet-5 batch-256 step, memory",
    "call_dense_64": "LeNet-5 step, batch 64: call()-written Dense / ln.Dense",
    "call_dense_256": "LeNet-5 step, batch 256: call()-written Dense / ln.Dense",
}
#: The sizes of ``--tiny``: batches and samples small enough for a test.
TINY = {"lenet": 4, "mnist1d": 200}


# ------------------------------------------------------------------ the work
def mnist1d_epoch(tree: Path, tiny: bool = False) -> Callable[[], None]:
    """One epoch of the MNIST-1D CNN (``tree``'s ``examples/train_mnist1d.build_model``)."""
    sys.path.insert(0, str(tree / "examples"))
    import train_mnist1d  # the tree's own example (its layernet's API)

    import layernet as ln

    (x, y), _ = ln.datasets.load_mnist1d()
    if tiny:
        x, y = x[: TINY["mnist1d"]], y[: TINY["mnist1d"]]
    model = train_mnist1d.build_model()
    model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
    # keywords: before the graph engine fit's order was (x, y, epochs, batch_size)
    return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0)


def lenet_step(n: int) -> Callable[[], None]:
    """One LeNet-5 training step on a batch of ``n`` (``bench.lenet``)."""
    model, x, t = bench.lenet(n)
    return lambda: model.train_step(x, t)


def call_dense_class() -> type:
    """A Dense layer written the Keras way: ``build`` with ``add_weight``, ``call`` with ops."""
    import layernet as ln

    class CallDense(ln.layers.Layer):
        def __init__(self, units: int, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
            )
            self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

        def call(self, inputs):
            return ln.ops.matmul(inputs, self.kernel) + self.bias

    return CallDense


def lenet_call_dense(n: int, written: bool):
    """LeNet-5 as ``bench.lenet`` builds it, its Dense layers written as call() if ``written``.

    Both variants start from the same weights (the call() model copies ``bench.lenet``'s).
    """
    import layernet as ln

    model, x, t = bench.lenet(n)
    if not written:
        return model, x, t
    dense = call_dense_class()
    layers = [
        dense(layer.units)
        if isinstance(layer, ln.Dense)
        else type(layer).from_config(layer.get_config())
        for layer in model.layers
    ]
    other = ln.Sequential(layers)
    other.compile(ln.SGD(0.01, momentum=0.9), "mse")
    other.build(x.shape, seed=0)
    other.set_weights(model.get_weights())
    return other, x, t


def work(case: str, tree: Path, tiny: bool = False, variant: str = "") -> Callable[[], None]:
    """The function a worker times for ``case`` (``variant``: "dense" or "call")."""
    if case == "mnist1d_epoch":
        return mnist1d_epoch(tree, tiny)
    if case.startswith("lenet"):
        return lenet_step(TINY["lenet"] if tiny else int(case.split("_")[1]))
    if case.startswith("call_dense"):
        n = TINY["lenet"] if tiny else int(case.split("_")[-1])
        model, x, t = lenet_call_dense(n, variant == "call")
        return lambda: model.train_step(x, t)
    raise ValueError(case)


def traced_step(make: Callable[[], Callable[[], None]], warmup: int, repeat: int) -> dict:
    """:mod:`tracemalloc` readings (MiB) of a step made by ``make`` (called after the start).

    NumPy reports its array buffers to :mod:`tracemalloc`, so the readings count
    arrays and Python objects alike, allocated since the model was made (the
    libraries are imported before): ``peak_mb``, the most held at once during a
    step (model, data, optimizer state, buffers kept between steps and the step's
    temporaries); ``step_mb``, that peak above what was held when the step began.
    Medians over ``repeat`` steps after ``warmup`` (they agree: NumPy's sizes are
    exact).
    """
    tracemalloc.start()
    try:
        fn = make()
        for _ in range(warmup):
            fn()
        peaks, steps = [], []
        for _ in range(max(repeat, 1)):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            fn()
            peak = tracemalloc.get_traced_memory()[1]
            peaks.append(peak / 2**20)
            steps.append((peak - before) / 2**20)
    finally:
        tracemalloc.stop()
    return {"peak_mb": statistics.median(peaks), "step_mb": statistics.median(steps)}


def worker(case: str, tree: Path, repeat: int, warmup: int, tiny: bool, variant: str) -> dict:
    """Build, warm up and time ``case`` in this process; what the parent reads back."""
    if case == "lenet_256_memory":
        # The resident set first (as bench.py): its peak over the steps above what the
        # process held with the model built, before any step.
        fn = work(case, tree, tiny, variant)
        before = bench.rss_mb()
        for _ in range(warmup + 1):
            fn()
        out = {"rss_growth_mb": bench.peak_mb() - before}
        # Then tracemalloc on a second model, every module now imported.
        out.update(traced_step(lambda: work(case, tree, tiny, variant), warmup, min(repeat, 3)))
        return out
    fn = work(case, tree, tiny, variant)
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "cpu_s": statistics.median(cpu)}


# ---------------------------------------------------------------- the driver
@contextlib.contextmanager
def base_tree(commit: str) -> Iterator[Path]:
    """``commit``'s ``src`` and ``examples`` (``git archive``) in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="layernet-base-"))
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "src", "examples"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def worker_env(tree: Path, threads: int) -> dict[str, str]:
    """A worker's environment: layernet from ``tree``, BLAS on ``threads`` threads in both trees.

    The base tree has no thread budget of its own (it leaves BLAS at all cores), so
    the count is fixed from outside for both: the comparison is of the engines.
    """
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "LAYERNET_NUM_THREADS": str(threads)}
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


def run_worker(
    case: str, tree: Path, repeat: int, warmup: int, tiny: bool, variant: str = "", threads: int = 1
) -> dict:
    """Run ``case`` in a fresh process importing layernet from ``tree``/src."""
    env = worker_env(tree, threads)
    cmd = [sys.executable, __file__, "--worker", case, str(tree), "--repeat", str(repeat)]
    cmd += ["--warmup", str(warmup), *(["--tiny"] if tiny else [])]
    cmd += ["--variant", variant] if variant else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=tree)
    if out.returncode:
        raise RuntimeError(f"{case} ({tree}) failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratios(new: list[float], old: list[float]) -> tuple[float, float, float]:
    """Ratio of the medians, and the minimum and median of the per-round ratios."""
    per_round = [a / b for a, b in zip(new, old, strict=True)]
    return (
        statistics.median(new) / statistics.median(old),
        min(per_round),
        statistics.median(per_round),
    )


def load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "?"


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--tiny", action="store_true", help="tiny batches (a smoke test)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--base", default=BASE, help="the commit to compare with")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads in both trees")
    parser.add_argument(
        "--current",
        type=Path,
        default=ROOT,
        help="the tree compared with the base (default: this one; any folder with src/ "
        "and examples/)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "TREE"), help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        case, tree = args.worker
        print(
            json.dumps(worker(case, Path(tree), args.repeat, args.warmup, args.tiny, args.variant))
        )
        return {}
    rounds = 1 if args.quick else args.rounds
    warmup = 1 if args.quick else 2
    print(
        f"CPU: {bench.cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"NumPy {np.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}; load average "
        f"{load_average()}; base {args.base} vs {args.current}; BLAS threads {args.threads}; "
        f"{rounds} round(s), trees alternating"
    )
    results: dict[str, dict] = {}
    with base_tree(args.base) as old:
        current = args.current.resolve()
        trees = {"base": old, "current": current}
        cols = f"{'base ms':>10}{'now ms':>10}{'ratio':>7}{'min':>7}{'median':>7} "
        print(f"{'':<18}{'wall-clock time':^42}{'CPU time of the process':^42}")
        print(f"{'case':<18}{cols}{cols}")
        print(
            "(ratio: now / base, of the medians over rounds; min, median: of the per-round "
            "ratios; call_dense: base = ln.Dense, now = call()-written Dense)"
        )
        for case in args.cases:
            epoch = case.endswith("epoch")
            repeat = args.repeat or ((1 if epoch else 3) if args.quick else (5 if epoch else 20))
            if case.startswith("call_dense"):
                sides = {"dense": current, "call": current}
            else:
                sides = trees
            runs: dict[str, list[dict]] = {s: [] for s in sides}
            for _ in range(rounds):
                for side, tree in sides.items():
                    variant = side if case.startswith("call_dense") else ""
                    runs[side].append(
                        run_worker(case, tree, repeat, warmup, args.tiny, variant, args.threads)
                    )
            results[case] = runs
            a, b = list(sides)
            if case == "lenet_256_memory":
                for key, what in (
                    ("peak_mb", "tracemalloc: peak during a step, all since the model's build"),
                    ("step_mb", "tracemalloc: that peak above what the step began with"),
                    ("rss_growth_mb", "VmHWM over the steps above the RSS with the model built"),
                ):
                    old_v = [r[key] for r in runs[a]]
                    new_v = [r[key] for r in runs[b]]
                    print(
                        f"{'lenet_256 memory':<18}{statistics.median(old_v):>8.2f}MB"
                        f"{statistics.median(new_v):>10.2f}MB"
                        f"{statistics.median(new_v) / max(statistics.median(old_v), 1e-9):>8.3f}"
                        f"   {what}",
                        flush=True,
                    )
                continue
            row = f"{case:<18}"
            for key in ("median_s", "cpu_s"):
                old_t = [r[key] * 1e3 for r in runs[a]]
                new_t = [r[key] * 1e3 for r in runs[b]]
                med, lo, mid = ratios(new_t, old_t)
                row += f"{statistics.median(old_t):>10.2f}{statistics.median(new_t):>10.2f}"
                row += f"{med:>7.3f}{lo:>7.3f}{mid:>7.3f} "
            print(row, flush=True)
    return results


if __name__ == "__main__":
    main()
