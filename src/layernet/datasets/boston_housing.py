"""Boston house prices from Keras's ``boston_housing.npz`` (``keras.datasets.boston_housing``)."""

from __future__ import annotations

import numpy as np

from ._keras_files import check_test_split, fetch, split

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(path: str = "boston_housing.npz", test_split: float = 0.2, seed: int = 113) -> Split:
    """Load the Boston housing data as ``keras.datasets.boston_housing.load_data`` does.

    Parameters
    ----------
    path : str, default "boston_housing.npz"
        Name of the file in ``$KERAS_HOME/datasets``.
    test_split : float, default 0.2
        Share held out for testing, in [0, 1).
    seed : int, default 113
        Seed of the shuffle (``numpy.random.RandomState``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 13)`` float64, ``y`` of shape ``(n,)`` float64
        (median values in k$); 404 and 102 samples by default.

    Raises
    ------
    ValueError
        ``boston_housing.load_data: invalid value for `test_split`: ...``.
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.boston_housing.load_data()  # doctest: +SKIP
    """
    where = "boston_housing.load_data"
    test_split = check_test_split(test_split, where)
    with np.load(fetch("boston_housing.npz", where, path), allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    return split(x, y, test_split, seed)
