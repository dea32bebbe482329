"""Fashion-MNIST from Keras's four gzip files (``keras.datasets.fashion_mnist``)."""

from __future__ import annotations

import gzip

import numpy as np

from ._keras_files import fetch

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


def _read(path: str, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_data() -> Split:
    """Load Fashion-MNIST as ``keras.datasets.fashion_mnist.load_data`` does.

    Reads ``train-labels-idx1-ubyte.gz``, ``train-images-idx3-ubyte.gz``,
    ``t10k-labels-idx1-ubyte.gz`` and ``t10k-images-idx3-ubyte.gz`` from
    ``$KERAS_HOME/datasets/fashion-mnist``.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 28, 28)`` uint8, ``y`` of shape ``(n,)`` uint8 with
        labels 0 to 9 (60,000 and 10,000 images).

    Raises
    ------
    layernet.utils.DownloadError
        A file is neither cached nor downloadable; the message names it, its URL
        and the folder to put it in.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.fashion_mnist.load_data()  # doctest: +SKIP
    """
    paths = [fetch(f"fashion-mnist/{f}", "fashion_mnist.load_data") for f in FILES]
    y_train = _read(paths[0], 8)
    x_train = _read(paths[1], 16).reshape(len(y_train), 28, 28)
    y_test = _read(paths[2], 8)
    x_test = _read(paths[3], 16).reshape(len(y_test), 28, 28)
    return (x_train, y_train), (x_test, y_test)
