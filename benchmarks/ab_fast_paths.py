"""Same-process A/B timing of layernet's fast paths: off (the plain paths) against on.

    python benchmarks/ab_fast_paths.py                 # every case
    python benchmarks/ab_fast_paths.py conv_C_bwd_input lenet_64
    python benchmarks/ab_fast_paths.py --rounds 3      # quicker
    LAYERNET_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ab_fast_paths.py --shift
                                                       # stride-1 convolutions per direction:
                                                       # patches against shifted products

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
#: Stride-1 convolutions of the benchmarks and examples, timed per direction by ``--shift``
#: (the MNIST-1D CNN's layers have stride 2: the shifted products do not apply to them).
SHIFT_SHAPES = {
    "conv_B": (dict(filters=64, kernel_size=3, padding=1), (64, 14, 14, 32)),
    "conv_C": (dict(filters=128, kernel_size=3, padding=1), (32, 32, 32, 64)),
    "lenet_1_b64": (dict(filters=6, kernel_size=5), (64, 28, 28, 1)),
    "lenet_2_b64": (dict(filters=16, kernel_size=5), (64, 12, 12, 6)),
    "lenet_1_b256": (dict(filters=6, kernel_size=5), (256, 28, 28, 1)),
    "lenet_2_b256": (dict(filters=16, kernel_size=5), (256, 12, 12, 6)),
    "convnet_1": (dict(filters=32, kernel_size=3), (128, 28, 28, 1)),
    "convnet_2": (dict(filters=64, kernel_size=3), (128, 13, 13, 32)),
    "pointwise": (dict(filters=128, kernel_size=1), (32, 32, 32, 64)),
    "wide_56": (dict(filters=64, kernel_size=3, padding=1), (8, 56, 56, 64)),
    "conv1d_long": (dict(filters=64, kernel_size=3, padding=1), (16, 1024, 64)),
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


def shift_table(names: list[str], rounds: int) -> None:
    """CPU time per direction of each stride-1 shape: patches ("old") against shifted products.

    ``params`` is timed after a forward pass of its own path: "old" is the kernel
    gradient from the forward pass's patches, "new" the shifted products; "new/im2col"
    builds the patches after a shifted forward pass. The bias gradient is in every one.
    """
    import layernet as ln
    from layernet import _ops

    real = _ops.use_shifted
    modes = {
        "old": dict(forward=False, params=False, input=False),
        "new": dict(forward=True, params=True, input=True),
        "new/im2col": dict(forward=True, params=False, input=True),
    }
    print(f"{'shape':<14}{'direction':<14}{'old ms':>9}{'new ms':>9}{'new/old':>9}{'im2col':>9}")
    for name in names:
        kwargs, shape = SHIFT_SHAPES[name]
        rng = np.random.default_rng(0)
        layer = ln.Conv(seed=0, **kwargs)
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(layer.output_shape(x.shape)).astype(np.float32)
        times: dict[tuple[str, str], list[float]] = {}
        reps = 5
        for _ in range(rounds):
            for mode, flags in modes.items():
                _ops.use_shifted = lambda d, p, k, s, o, f=flags: real(d, p, k, s, o) and f[d]
                try:
                    calls = {
                        "forward": lambda lay=layer, x=x: lay.forward(x, training=True),
                        "params": lambda lay=layer, dy=dy: lay.backward_params(dy),
                        "input": lambda lay=layer, dy=dy: lay.backward_input(dy),
                    }
                    for direction, fn in calls.items():
                        if mode == "new/im2col" and direction != "params":
                            continue
                        layer.forward(x, training=True)
                        fn()  # warm: buffers
                        start, wall = time.process_time(), time.perf_counter()
                        for _ in range(reps):
                            fn()
                        elapsed = (time.process_time() - start) / reps
                        times.setdefault((mode, direction), []).append(elapsed)
                        elapsed = (time.perf_counter() - wall) / reps
                        times.setdefault((mode, direction + " wall"), []).append(elapsed)
                finally:
                    _ops.use_shifted = real
        for direction in (
            "forward",
            "params",
            "input",
            "forward wall",
            "params wall",
            "input wall",
        ):
            old, new = (statistics.median(times[m, direction]) * 1e3 for m in ("old", "new"))
            alt = times.get(("new/im2col", direction))
            alt_s = f"{statistics.median(alt) * 1e3:>9.2f}" if alt else ""
            print(f"{name:<14}{direction:<14}{old:>9.2f}{new:>9.2f}{new / old:>9.2f}{alt_s}")
        print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--threads", type=int, default=None, help="thread budget (1: compare the algorithms alone)"
    )
    parser.add_argument(
        "--shift",
        action="store_true",
        help=f"per-direction CPU times of the shifted products (cases: {', '.join(SHIFT_SHAPES)})",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(SHIFT_SHAPES if args.shift else CASES))
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
    if args.shift:
        shift_table(args.cases or list(SHIFT_SHAPES), args.rounds)
        return
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
