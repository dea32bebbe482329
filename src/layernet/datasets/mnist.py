"""MNIST digits from Keras's ``mnist.npz`` (``keras.datasets.mnist``)."""

from __future__ import annotations

import numpy as np

from ._keras_files import fetch

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(path: str = "mnist.npz") -> Split:
    """Load MNIST as ``keras.datasets.mnist.load_data`` does, from the same cached file.

    Parameters
    ----------
    path : str, default "mnist.npz"
        Name of the file in ``$KERAS_HOME/datasets`` (``~/.keras/datasets``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 28, 28)`` uint8 (60,000 and 10,000 images), ``y`` of
        shape ``(n,)`` uint8 with labels 0 to 9.

    Raises
    ------
    layernet.utils.DownloadError
        Not cached and not downloadable; the message names the file, its URL
        (``https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz``)
        and the folder to put it in.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), (x_test, y_test) = ln.datasets.mnist.load_data()  # doctest: +SKIP
    >>> x.shape, x.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    """
    file = fetch("mnist.npz", "mnist.load_data", path)
    with np.load(file, allow_pickle=False) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
