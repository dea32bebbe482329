"""Train the MNIST-1D CNN with layernet's recipe (or the paper's) over seeds; print mean accuracy.

python examples/mnist1d_seeds.py [--seeds 0 1 2 3 4] [--epochs 150] [--recipe layernet|paper]
"""

from __future__ import annotations

import argparse
import statistics
import time

from train_mnist1d import train


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--recipe", choices=["layernet", "paper"], default="layernet")
    args = parser.parse_args()
    accs = []
    for seed in args.seeds:
        start = time.perf_counter()
        model, _, _, (x_test, y_test) = train(args.epochs, seed, verbose=0, recipe=args.recipe)
        acc = model.evaluate(x_test, y_test, batch_size=500, return_dict=True)["accuracy"]
        accs.append(acc)
        print(
            f"seed {seed}: test accuracy {acc:.4f} ({time.perf_counter() - start:.1f}s)", flush=True
        )
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(
        f"mean over {len(accs)} seeds: {statistics.mean(accs):.4f} (sd {sd:.4f}, "
        f"min {min(accs):.4f}, max {max(accs):.4f})"
    )


if __name__ == "__main__":
    main()
