"""Reproduce the MNIST-1D paper's benchmark table with layernet, using the paper's own recipe.

Four models (logistic regression, MLP with a residual layer, CNN, bidirectional
GRU), on MNIST-1D and on its spatially shuffled variant, each trained over
several seeds exactly as the MNIST-1D repository's benchmark notebook trains
them: Adam with learning rate 1e-2 and no weight decay, batch 100, batches
taken in order from the unshuffled training set (step ``s`` uses samples
``100 s mod 4000`` onwards), 6,000 steps; weights initialised as PyTorch does.
Prints layernet's test accuracy (after the last step, mean over seeds) beside the
paper's figures and writes the results and the learning curves.

    python examples/mnist1d_table.py [--seeds 0 1 2] [--steps 6000] [--out outputs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

if __name__ == "__main__":
    # The models are tiny: one BLAS thread is fastest (no hand-offs between threads on
    # 100 x 100 products) and leaves the other cores to others. Set before NumPy loads.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np

import layernet as ln

#: The paper's figures (Greydanus & Kobak, "Scaling down deep learning", table 1), in %.
PAPER = {
    "regular": {"logistic": 32, "mlp": 68, "cnn": 94, "gru": 91},
    "shuffled": {"logistic": 32, "mlp": 68, "cnn": 56, "gru": 57},
}
TITLES = {"logistic": "logistic regression", "mlp": "MLP", "cnn": "CNN", "gru": "GRU"}
VARIANTS = {"regular": "MNIST-1D", "shuffled": "MNIST-1D, spatially shuffled"}
#: PyTorch's default initialisation of Linear and Conv1d: weights and biases U(+-1/sqrt(fan_in)).
TORCH_INIT = {"kernel_initializer": "torch_uniform", "bias_initializer": "torch_uniform"}


def logistic() -> ln.Sequential:
    """``nn.Linear(40, 10)``: a softmax regression on the 40 values."""
    return ln.Sequential([ln.Flatten(), ln.Dense(10, **TORCH_INIT)], name="logistic")


def mlp() -> ln.Sequential:
    """40 -> 100 -> 100 -> 10 with a residual middle layer: h = relu(W1 x); h = h + relu(W2 h)."""
    return ln.Sequential(
        [
            ln.Flatten(),
            ln.Dense(100, **TORCH_INIT),
            ln.ReLU(),
            ln.Residual([ln.Dense(100, **TORCH_INIT), ln.ReLU()]),
            ln.Dense(10, **TORCH_INIT),
        ],
        name="mlp",
    )


def cnn() -> ln.Sequential:
    """Three convolutions of 25 channels (k5 s2 p1, k3 s2 p1, k3 s2 p1) and a linear classifier."""
    return ln.Sequential(
        [
            ln.Conv1D(25, 5, strides=2, padding=1, **TORCH_INIT),
            ln.ReLU(),
            ln.Conv1D(25, 3, strides=2, padding=1, **TORCH_INIT),
            ln.ReLU(),
            ln.Conv1D(25, 3, strides=2, padding=1, **TORCH_INIT),
            ln.ReLU(),
            ln.Flatten(),
            ln.Dense(10, **TORCH_INIT),
        ],
        name="cnn",
    )


def gru() -> ln.Sequential:
    """Bidirectional GRU, 6 units each way over the 40 steps, every step's output -> linear."""
    return ln.Sequential(
        [
            ln.Bidirectional(ln.GRU(6, return_sequences=True)),
            ln.Flatten(),
            ln.Dense(10, **TORCH_INIT),
        ],
        name="gru",
    )


MODELS: dict[str, Callable[[], ln.Sequential]] = {
    "logistic": logistic,
    "mlp": mlp,
    "cnn": cnn,
    "gru": gru,
}


def torch_like_gru_init(model: ln.Sequential, rng: np.random.Generator) -> None:
    """PyTorch's GRU initialisation: every weight and bias U(+-1/sqrt(units))."""
    for layer in model.layers:
        if isinstance(layer, ln.Bidirectional):
            for direction in layer.layers:
                a = 1 / np.sqrt(direction.units)
                for p in direction.params.values():
                    p[...] = rng.uniform(-a, a, p.shape)


def train(
    name: str,
    data: tuple,
    seed: int,
    steps: int = 6000,
    eval_every: int = 250,
    batch_size: int = 100,
) -> dict:
    """Train one model with the paper's recipe; return its final test accuracy and curves."""
    (x, y), (x_test, y_test) = data
    model = MODELS[name]()
    model.compile(ln.Adam(learning_rate=1e-2), "softmax_cross_entropy", ["accuracy"])
    model.build((None, *x.shape[1:]), seed=seed)
    torch_like_gru_init(model, np.random.default_rng([seed, 1]))
    curve_steps, curve_loss, curve_acc = [], [], []

    def evaluate(step: int) -> float:
        result = model.evaluate(x_test, y_test, batch_size=1000, return_dict=True)
        curve_steps.append(step)
        curve_loss.append(result["loss"])
        curve_acc.append(result["accuracy"])
        return result["accuracy"]

    start = time.perf_counter()
    train_loss = []
    for step in range(steps + 1):  # the reference loop runs steps + 1 updates
        i = (step * batch_size) % len(x)
        loss, _ = model.train_step(x[i : i + batch_size], y[i : i + batch_size])
        train_loss.append(float(loss))
        if eval_every and step % eval_every == 0 and step < steps:
            evaluate(step)
    final = evaluate(steps)
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "seed": seed,
        "accuracy": final,
        "seconds": seconds,
        "steps": curve_steps,
        "test_loss": curve_loss,
        "test_accuracy": curve_acc,
        "train_loss": train_loss[::50],
    }


def table(results: list[dict], seeds: list[int]) -> str:
    """Markdown table: layernet mean (sd) beside the paper's figure, per variant and model."""
    lines = [
        "| data | " + " | ".join(TITLES[m] for m in MODELS) + " |",
        "|---|" + "---:|" * len(MODELS),
    ]
    for variant, title in VARIANTS.items():
        cells = []
        for m in MODELS:
            accs = [
                100 * r["accuracy"] for r in results if r["model"] == m and r["variant"] == variant
            ]
            if not accs:
                cells.append("–")
                continue
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{statistics.mean(accs):.1f} ± {sd:.1f} (paper {PAPER[variant][m]})")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + f"\n\nlayernet: mean ± sd over seeds {seeds}, test accuracy (%) after the last step."
    )


def plot(results: list[dict], path: Path) -> bool:
    """Test accuracy against steps, every model and variant (mean over seeds, band = min..max)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, (variant, title) in zip(axes, VARIANTS.items(), strict=True):
        for k, m in enumerate(MODELS):
            runs = [r for r in results if r["model"] == m and r["variant"] == variant]
            if not runs:
                continue
            steps = runs[0]["steps"]
            acc = 100 * np.array([r["test_accuracy"] for r in runs])
            ax.plot(steps, acc.mean(0), color=f"C{k}", label=TITLES[m])
            ax.fill_between(steps, acc.min(0), acc.max(0), color=f"C{k}", alpha=0.2, lw=0)
            ax.axhline(PAPER[variant][m], color=f"C{k}", ls=":", lw=1)
        ax.set(title=title, xlabel="training step", ylim=(0, 100))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend(loc="lower right")
    fig.suptitle("layernet, the paper's recipe (dotted: the paper's figures)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(
    seeds: list[int],
    steps: int,
    models: list[str],
    variants: list[str],
    eval_every: int = 250,
    log: Callable[[str], object] = print,
) -> list[dict]:
    """Every model on every variant for every seed; returns one record per run."""
    results = []
    for variant in variants:
        data = ln.datasets.load_mnist1d(shuffle_spatial=variant == "shuffled")
        for m in models:
            for seed in seeds:
                r = train(m, data, seed, steps=steps, eval_every=eval_every)
                r["variant"] = variant
                results.append(r)
                log(
                    f"{VARIANTS[variant]:30s} {TITLES[m]:20s} seed {seed}: "
                    f"{100 * r['accuracy']:5.1f}%  ({r['seconds']:.1f}s)"
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    args = parser.parse_args()
    start = time.perf_counter()
    results = run(
        args.seeds, args.steps, args.models, args.variants, log=lambda s: print(s, flush=True)
    )
    total = time.perf_counter() - start
    args.out.mkdir(parents=True, exist_ok=True)
    info = {
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "layernet": ln.__version__,
        "seeds": args.seeds,
        "steps": args.steps,
        "total_seconds": total,
    }
    (args.out / "mnist1d_table.json").write_text(json.dumps({"info": info, "runs": results}))
    plotted = plot(results, args.out / "mnist1d_table_curves.png")
    print()
    print(table(results, args.seeds))
    print()
    for m in args.models:
        secs = [r["seconds"] for r in results if r["model"] == m]
        print(f"{TITLES[m]}: {statistics.mean(secs):.1f}s per run of {args.steps} steps")
    print(f"total {total:.0f}s on {info['cpu']}")
    print(
        f"wrote {args.out / 'mnist1d_table.json'}"
        + (f" and {args.out / 'mnist1d_table_curves.png'}" if plotted else "")
    )


if __name__ == "__main__":
    main()
