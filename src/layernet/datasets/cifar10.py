"""CIFAR-10 from Keras's cached archive (``keras.datasets.cifar10``)."""

from __future__ import annotations

import os

import numpy as np

from ._keras_files import fetch, load_cifar_batch

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data() -> Split:
    """Load CIFAR-10 as ``keras.datasets.cifar10.load_data`` does (channels-last).

    The archive ``cifar-10-python.tar.gz`` is kept as
    ``$KERAS_HOME/datasets/cifar-10-batches-py-target_archive`` and extracted to
    ``cifar-10-batches-py-target/cifar-10-batches-py/`` (``data_batch_1`` to
    ``data_batch_5``, ``test_batch``), Keras 3's layout.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 32, 32, 3)`` uint8, ``y`` of shape ``(n, 1)`` uint8
        (50,000 and 10,000 images).

    Raises
    ------
    layernet.utils.DownloadError
        Not cached and not downloadable (the message names the file, its URL and
        the folder).

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.cifar10.load_data()  # doctest: +SKIP
    """
    root = os.path.join(
        fetch("cifar-10-batches-py-target", "cifar10.load_data", extract=True),
        "cifar-10-batches-py",
    )
    xs, ys = [], []
    for i in range(1, 6):
        x, y = load_cifar_batch(os.path.join(root, f"data_batch_{i}"))
        xs.append(x.astype(np.uint8))
        ys.append(np.asarray(y, dtype=np.uint8))
    x_train, y_train = np.concatenate(xs), np.concatenate(ys)
    x_test, y_test = load_cifar_batch(os.path.join(root, "test_batch"))
    return (x_train.transpose(0, 2, 3, 1), y_train.reshape(-1, 1)), (
        np.asarray(x_test).astype(np.uint8).transpose(0, 2, 3, 1),
        np.asarray(y_test).reshape(-1, 1).astype(np.uint8),
    )
