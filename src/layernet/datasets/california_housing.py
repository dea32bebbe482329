"""California house prices from Keras's ``california_housing.npz``."""

from __future__ import annotations

import numpy as np

from ._keras_files import check_test_split, fetch, split

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(
    version: str = "large",
    path: str = "california_housing.npz",
    test_split: float = 0.2,
    seed: int = 113,
) -> Split:
    """Load the California housing data as ``keras.datasets.california_housing.load_data``.

    Parameters
    ----------
    version : {"large", "small"}, default "large"
        All 20,640 districts, or the first 600.
    path : str, default "california_housing.npz"
        Name of the file in ``$KERAS_HOME/datasets``.
    test_split : float, default 0.2
        Share held out for testing, in [0, 1).
    seed : int, default 113
        Seed of the shuffle (``numpy.random.RandomState``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 8)``, ``y`` of shape ``(n,)`` (median house values).

    Raises
    ------
    ValueError
        An unknown ``version`` or a ``test_split`` outside [0, 1).
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.california_housing.load_data("small")  # doctest: +SKIP
    """
    where = "california_housing.load_data"
    test_split = check_test_split(test_split, where)
    if version not in ("large", "small"):
        raise ValueError(
            f"{where}: invalid value for `version`: expected 'large' or 'small', "
            f"received {version!r}."
        )
    with np.load(fetch("california_housing.npz", where, path), allow_pickle=False) as f:
        x, y = f["x"], f["y"]
    if version == "small":
        x, y = x[:600], y[:600]
    return split(x, y, test_split, seed)
