"""An LSTM classifier on MNIST-1D read as a sequence of 40 values.

MNIST-1D (Greydanus & Kobak, "Scaling down deep learning", 2020) is generated
locally by ``ln.datasets.load_mnist1d()``: 4,000 training and 1,000 test
sequences of shape (40, 1), ten classes. The model reads the sequence one value
per step:

    LSTM(64) -> Dense(10)   (logits)

trained with Adam (learning rate 5e-3, batch 100) on the softmax cross-entropy.
It prints the test accuracy. The paper's GRU reaches about 91% test accuracy.

    python examples/mnist1d_lstm.py [--epochs 40] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import layernet as ln


def build_model(units: int = 64) -> ln.Sequential:
    return ln.Sequential(
        [ln.Input(shape=(40, 1)), ln.layers.LSTM(units), ln.layers.Dense(10)],
        name="mnist1d_lstm",
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps, for a smoke test")
    args = parser.parse_args(argv)
    ln.set_seed(args.seed)
    (x, y), (x_test, y_test) = ln.datasets.load_mnist1d()
    epochs, units = args.epochs, 64
    if args.quick:
        x, y, x_test, y_test = x[:300], y[:300], x_test[:100], y_test[:100]
        epochs, units = 1, 8
    model = build_model(units)
    model.compile(
        ln.Adam(learning_rate=5e-3),
        ln.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x, y, batch_size=100, epochs=epochs, verbose=0 if args.quick else 2)
    seconds = time.perf_counter() - start
    pred = model.predict(x_test, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(pred == y_test))
    train_accuracy = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))
    print(
        f"MNIST-1D LSTM({units}), {epochs} epochs ({seconds:.0f} s): train accuracy "
        f"{train_accuracy:.3f}, test accuracy {accuracy:.3f}"
    )
    return {"test_accuracy": accuracy, "train_accuracy": train_accuracy, "seconds": seconds}


if __name__ == "__main__":
    main(sys.argv[1:])
