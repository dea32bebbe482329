"""Same-process A/B timing of layernet's fast paths: off (the plain paths) against on.

    python benchmarks/ab_fast_paths.py                 # every case
    python benchmarks/ab_fast_paths.py conv_C_bwd_input lenet_64
    python benchmarks/ab_fast_paths.py --rounds 3      # quicker

For a machine shared with other work, where absolute times drift from minute to
minute: one process runs each case with ``layernet._ops.fast_paths(False)`` and
with the fast paths on, alternating off, on, off, on, ... over the rounds, and
reports the ratio on / off of the medians (and of the minima) over the rounds.
Only these same-run ratios mean anything on a loaded machine; the absolute
milliseconds are printed for reference. "Off" takes the per-tap scatter for
every convolution input gradient, the unblocked kernel gradient and every
product on the whole BLAS thread budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONV_SHAPES = {
    # name: (Conv2D keyword arguments, input shape)
    "conv_B": (dict(filters=64, kernel_size=3, padding=1), (64, 14, 14, 32)),
    "conv_C": (dict(filters=128, kernel_size=3, padding=1), (32, 32, 32, 64)),
    "conv_C_s2": (dict(filters=128, kernel_size=3, padding=1, strides=2), (32, 32, 32, 64)),
    "conv_C_d2": (dict(filters=128, kernel_size=3, padding=2, dilation_rate=2), (32, 32, 32, 64)),
    "conv_transpose_s2": (dict(filters=64, kernel_size=3, strides=2), (32, 16, 16, 128)),
}
STEP_CASES = ("mnist1d_epoch", "lenet_64", "lenet_256", "conv_B_fwdbwd", "conv_C_fwdbwd")
CASES = (*(f"{c}_bwd_input" for c in CONV_SHAPES), *STEP_CASES)


def make(case: str) -> Callable[[], object]:
    import layernet as ln

    if case in STEP_CASES:
        import bench

        return bench.layernet_case(case)
    kwargs, shape = CONV_SHAPES[case.removesuffix("_bwd_input")]
    rng = np.random.default_rng(0)
    cls = ln.Conv2DTranspose if case.startswith("conv_transpose") else ln.Conv2D
    layer = cls(seed=0, **kwargs)
    x = rng.standard_normal(shape).astype(np.float32)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    if cls is ln.Conv2DTranspose:  # its forward pass is a convolution's input gradient
        return lambda: layer.forward(x)
    return lambda: layer.backward_input(dy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=None, help="thread budget (1: compare the algorithms alone)"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {list(CASES)}")
    from bench import cpu_name

    import layernet as ln
    from layernet import _ops

    if args.threads:
        ln.set_num_threads(args.threads)
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
        f"thread budget {ln.get_num_threads()}; {args.rounds} rounds, off/on alternating"
    )
    print(f"{'case':<26}{'off ms':>10}{'on ms':>10}{'on/off':>8}{'(minima)':>10}")
    for case in args.cases or CASES:
        fn = make(case)
        reps = 1 if case.endswith("epoch") else 3
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for enabled in (False, True):
                with _ops.fast_paths(enabled):
                    fn()  # warm: buffers, thread count
                    start = time.perf_counter()
                    for _ in range(reps):
                        fn()
                    times[enabled].append((time.perf_counter() - start) / reps)
        off, on = (statistics.median(times[k]) * 1e3 for k in (False, True))
        ratio_min = min(times[True]) / min(times[False])
        print(f"{case:<26}{off:>10.2f}{on:>10.2f}{on / off:>8.2f}{ratio_min:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
