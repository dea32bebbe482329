"""Data sets: MNIST-1D (generated), scikit-learn's 8x8 digits, and Keras's loaders.

Both come from optional packages (``pip install -e '.[data]'`` from a clone of
layernet); a clear error says which one is missing. Arrays are channels-last and
``float32``; labels are ``int64``.


The submodules ``mnist``, ``fashion_mnist``, ``cifar10``,
``cifar100``, ``imdb``, ``reuters``, ``boston_housing`` and ``california_housing``
have Keras's ``load_data`` functions: the same files, read from Keras's cache
folder (``$KERAS_HOME/datasets`` or ``~/.keras/datasets``), giving the same arrays.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import check_int, check_number, missing_attribute

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _require(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this data set needs the '{package}' package: pip install {package} "
            f"(or, from a clone of layernet, pip install -e '.[data]')."
        ) from None


@functools.lru_cache(maxsize=4)
def _mnist1d(seed: int, num_samples: int) -> dict[str, np.ndarray]:
    data = _require("mnist1d.data", "mnist1d")
    args = data.get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    return data.make_dataset(args)


def spatial_permutation(length: int = 40, seed: int = 42) -> np.ndarray:
    """The fixed permutation of positions behind the spatially shuffled MNIST-1D.

    ``numpy.random.RandomState(seed).permutation(length)``: with the defaults, the
    permutation of the MNIST-1D paper's benchmark notebook (``np.random.seed(42)``
    then ``np.random.permutation(40)``).

    Parameters
    ----------
    length : int, default 40
        Number of positions.
    seed : int, default 42
        Seed of :class:`numpy.random.RandomState`.

    Returns
    -------
    ndarray of shape (length,)
        A permutation of ``0, ..., length - 1`` (int).

    Examples
    --------
    >>> import layernet as ln
    >>> ln.datasets.spatial_permutation()[:5].tolist()
    [19, 16, 15, 26, 4]
    """
    return np.random.RandomState(seed).permutation(length)


def load_mnist1d(
    seed: int = 42,
    num_samples: int = 5000,
    shuffle_spatial: bool = False,
    shuffle_seed: int = 42,
) -> Split:
    """MNIST-1D (Greydanus & Kobak, 2020), generated locally with the paper's settings.

    Uses ``mnist1d.data.make_dataset`` (never the package's download).
    With the defaults: 4,000 training and 1,000 test sequences of length 40,
    ten classes.

    Parameters
    ----------
    seed : int, default 42
        Generator seed (42 is the paper's data set).
    num_samples : int, default 5000
        Total number of sequences; 80% train, 20% test.
    shuffle_spatial : bool, default False
        Return the *spatially shuffled* variant of the paper's benchmark table:
        the 40 positions of every sequence, train and test alike, reordered by
        one fixed permutation, :func:`spatial_permutation` ``(40, shuffle_seed)``.
        Models that rely on neighbouring positions (convolutions, recurrences)
        lose their advantage; a dense layer is indifferent to the order.
    shuffle_seed : int, default 42
        Seed of that permutation (42 gives the paper's).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 40, 1)`` float32, ``y`` of shape ``(n,)`` int64
        with labels 0 to 9.

    Raises
    ------
    ImportError
        ``this data set needs the 'mnist1d' package: pip install mnist1d (or, from a
        clone of layernet, pip install -e '.[data]').``
    ValueError
        ``load_mnist1d: invalid value for `num_samples`: expected an int >= 10,
        ...``; likewise for ``shuffle_spatial`` (a bool) and ``shuffle_seed``
        (an int in [0, 2**32)).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> (x, y), (x_test, y_test) = ln.datasets.load_mnist1d(num_samples=100)
    >>> x.shape, y.shape, x_test.shape, x.dtype
    ((80, 40, 1), (80,), (20, 40, 1), dtype('float32'))
    >>> (x, y), _ = ln.datasets.load_mnist1d()  # doctest: +SKIP
    >>> (xs, ys), _ = ln.datasets.load_mnist1d(shuffle_spatial=True)  # doctest: +SKIP
    >>> np.array_equal(xs, x[:, ln.datasets.spatial_permutation()])  # doctest: +SKIP
    True
    """
    num_samples = check_int(num_samples, "num_samples", "load_mnist1d", minimum=10)
    if not isinstance(shuffle_spatial, bool):
        raise ValueError(
            f"load_mnist1d: invalid value for `shuffle_spatial`: expected a bool, "
            f"received {shuffle_spatial!r}."
        )
    if not (isinstance(shuffle_seed, int) and not isinstance(shuffle_seed, bool)) or not (
        0 <= shuffle_seed < 2**32
    ):
        raise ValueError(
            f"load_mnist1d: invalid value for `shuffle_seed`: expected an int in "
            f"[0, 2**32), received {shuffle_seed!r}."
        )
    d = _mnist1d(check_int(seed, "seed", "load_mnist1d", minimum=0), num_samples)
    x, xt = (np.asarray(d[k], dtype=np.float32)[..., None] for k in ("x", "x_test"))
    y, yt = (np.asarray(d[k], dtype=np.int64) for k in ("y", "y_test"))
    if shuffle_spatial:
        perm = spatial_permutation(x.shape[1], shuffle_seed)
        x, xt = np.ascontiguousarray(x[:, perm]), np.ascontiguousarray(xt[:, perm])
    return (x, y), (xt, yt)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Split:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels, scaled to [0, 1].

    Parameters
    ----------
    test_fraction : float, default 0.2
        Share of the images held out for testing (a seeded random split), in
        the open interval (0, 1).
    seed : int, default 0
        Seed of the split.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` of shape ``(n, 8, 8, 1)`` float32, ``y`` of shape ``(n,)`` int64
        with labels 0 to 9; ``round(1797 * test_fraction)`` test images.

    Raises
    ------
    ImportError
        ``this data set needs the 'scikit-learn' package: ...`` when
        scikit-learn is not installed.
    ValueError
        ``load_digits: invalid value for `test_fraction`: expected a float in
        (0, 1), received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), (x_test, y_test) = ln.datasets.load_digits()
    >>> x.shape, x_test.shape, float(x.max())
    ((1438, 8, 8, 1), (359, 8, 8, 1), 1.0)
    """
    test_fraction = check_number(
        test_fraction, "test_fraction", "load_digits", low=0, high=1, low_open=True, high_open=True
    )
    seed = check_int(seed, "seed", "load_digits", minimum=0)
    sk = _require("sklearn.datasets", "scikit-learn")
    bunch = sk.load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[..., None]
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


# Keras's data set loaders, one submodule each, as ``keras.datasets`` has them.
from . import (  # noqa: E402, F401
    boston_housing,
    california_housing,
    cifar10,
    cifar100,
    fashion_mnist,
    imdb,
    mnist,
    reuters,
)

if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
