"""CIFAR-100 from Keras's cached archive (``keras.datasets.cifar100``)."""

from __future__ import annotations

import os

import numpy as np

from ._keras_files import fetch, load_cifar_batch

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(label_mode: str = "fine") -> Split:
    """Load CIFAR-100 as ``keras.datasets.cifar100.load_data`` does (channels-last).

    The archive ``cifar-100-python.tar.gz`` is kept as
    ``$KERAS_HOME/datasets/cifar-100-python-target_archive`` and extracted to
    ``cifar-100-python-target/cifar-100-python/`` (``train``, ``test``).

    Parameters
    ----------
    label_mode : {"fine", "coarse"}, default "fine"
        The 100 fine classes or the 20 superclasses.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 32, 32, 3)`` uint8, ``y`` of shape ``(n, 1)`` int64
        (50,000 and 10,000 images).

    Raises
    ------
    ValueError
        ``cifar100.load_data: invalid value for `label_mode`: expected 'fine' or
        'coarse', received ...``.
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.cifar100.load_data("coarse")  # doctest: +SKIP
    """
    if label_mode not in ("fine", "coarse"):
        raise ValueError(
            f"cifar100.load_data: invalid value for `label_mode`: expected 'fine' or "
            f"'coarse', received {label_mode!r}."
        )
    root = os.path.join(
        fetch("cifar-100-python-target", "cifar100.load_data", extract=True), "cifar-100-python"
    )
    key = f"{label_mode}_labels"
    x_train, y_train = load_cifar_batch(os.path.join(root, "train"), key)
    x_test, y_test = load_cifar_batch(os.path.join(root, "test"), key)
    return (
        x_train.transpose(0, 2, 3, 1),
        np.reshape(y_train, (len(y_train), 1)),
    ), (x_test.transpose(0, 2, 3, 1), np.reshape(y_test, (len(y_test), 1)))
