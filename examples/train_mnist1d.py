"""Train the MNIST-1D convolutional network of Greydanus & Kobak ("Scaling down deep learning").

Network (the paper's CNN): Conv 25 k5 s2 p1, ReLU, Conv 25 k3 s2 p1, ReLU,
Conv 25 k3 s2 p1, ReLU, Flatten, Dense 10, softmax cross-entropy, weights
initialised as PyTorch does.

Two recipes:

* ``--recipe layernet`` (the default, the main job): layernet's own recipe, SGD
  with momentum 0.9, learning rate 0.05, batch 100, 150 epochs over the training
  set reshuffled every epoch (``fit``). Mean test accuracy 93.3% over 20 seeds.
* ``--recipe paper``: the recipe of the MNIST-1D repository (``notebooks/train.py``
  and its benchmark notebook): Adam, learning rate 1e-2, no weight decay, batch
  100, 6,000 steps (150 epochs' worth) over *unshuffled* batches taken in order
  (step ``s`` trains on samples ``100 s mod 4000`` onwards). See
  ``examples/mnist1d_table.py`` for the paper's whole table.

Prints the test accuracy and saves the model and a plot of the training curves
under ``outputs/``.

    python examples/train_mnist1d.py [--recipe layernet|paper] [--epochs 150] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import layernet as ln


def build_model() -> ln.Sequential:
    """The paper's CNN for inputs of shape (batch, 40, 1).

    Weights and biases start as PyTorch's layers do, uniform in +-1/sqrt(fan_in)
    ("torch_uniform"), as in the paper's PyTorch code.
    """
    init = {"kernel_initializer": "torch_uniform", "bias_initializer": "torch_uniform"}
    return ln.Sequential(
        [
            ln.Conv1D(25, 5, strides=2, padding=1, **init),
            ln.ReLU(),
            ln.Conv1D(25, 3, strides=2, padding=1, **init),
            ln.ReLU(),
            ln.Conv1D(25, 3, strides=2, padding=1, **init),
            ln.ReLU(),
            ln.Flatten(),
            ln.Dense(10, **init),
        ],
        name="mnist1d_cnn",
    )


def train(epochs: int, seed: int, verbose: int | str = "auto", recipe: str = "layernet"):
    """Train with layernet's recipe (SGD, shuffled) or the paper's (Adam, batches in order)."""
    (x, y), (x_test, y_test) = ln.datasets.load_mnist1d()
    model = build_model()
    if recipe == "paper":
        model.compile(ln.Adam(learning_rate=1e-2), "softmax_cross_entropy", ["accuracy"])
        # In-order batches are fit's unshuffled epochs: 4,000 / 100 = 40 steps each.
        shuffle = False
    else:
        model.compile(
            ln.SGD(learning_rate=0.05, momentum=0.9), "softmax_cross_entropy", ["accuracy"]
        )
        shuffle = True
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=100,
        validation_data=(x_test, y_test),
        shuffle=shuffle,
        verbose=verbose,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    return model, history, seconds, (x_test, y_test)


def plot(history: ln.History, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    h = history.history
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(h["loss"], label="train")
    a.plot(h["val_loss"], label="test")
    a.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    b.plot(h["accuracy"], label="train")
    b.plot(h["val_accuracy"], label="test")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=["layernet", "paper"], default="layernet")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--verbose", default="auto", choices=["auto", "0", "1", "2"])
    args = parser.parse_args()
    verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
    model, history, seconds, (x_test, y_test) = train(args.epochs, args.seed, verbose, args.recipe)
    result = model.evaluate(x_test, y_test, batch_size=500, return_dict=True)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "mnist1d_cnn.npz")
    plotted = plot(history, args.out / "mnist1d_curves.png")
    reloaded = ln.load_model(args.out / "mnist1d_cnn.npz")
    same = np.array_equal(reloaded.predict(x_test), model.predict(x_test))
    print(
        f"MNIST-1D CNN, {args.recipe}'s recipe: {args.epochs} epochs in {seconds:.1f}s "
        f"({seconds / max(args.epochs, 1) * 1000:.0f} ms/epoch)"
    )
    print(f"test accuracy: {result['accuracy']:.4f}  (test loss {result['loss']:.4f})")
    print(
        f"saved {args.out / 'mnist1d_cnn.npz'} (reloaded predictions identical: {same})"
        + (f" and {args.out / 'mnist1d_curves.png'}" if plotted else "")
    )


if __name__ == "__main__":
    main()
