"""IMDB movie-review sentiment from Keras's ``imdb.npz`` (``keras.datasets.imdb``)."""

from __future__ import annotations

import json

import numpy as np

from ._keras_files import check_sequence_args, drop_long, encode, fetch, load_npz, shift

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(
    path: str = "imdb.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> Split:
    """Load IMDB as ``keras.datasets.imdb.load_data`` does, from the same cached file.

    Each review is a list of word indices (1 is the most frequent word); the two
    halves are shuffled with ``numpy.random.RandomState(seed)``.

    Parameters
    ----------
    path : str, default "imdb.npz"
        Name of the file in ``$KERAS_HOME/datasets``.
    num_words : int, optional
        Keep the ``num_words`` most frequent words (indices below ``num_words``
        after shifting); others become ``oov_char``.
    skip_top : int, default 0
        Replace the ``skip_top`` most frequent words by ``oov_char`` too.
    maxlen : int, optional
        Drop the sequences of ``maxlen`` words or more.
    seed : int, default 113
        Seed of the shuffle.
    start_char : int or None, default 1
        Marks the start of every sequence.
    oov_char : int or None, default 2
        Index of the words cut; ``None`` drops them.
    index_from : int, default 3
        Added to every word index.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` an object array of lists of ints (25,000 each), ``y`` int labels
        (0 negative, 1 positive).

    Raises
    ------
    ValueError
        For invalid options, and when ``maxlen`` leaves no sequence.
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.imdb.load_data(num_words=10000)  # doctest: +SKIP
    """
    where = "imdb.load_data"
    check_sequence_args(
        where, num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
        start_char=start_char, oov_char=oov_char, index_from=index_from,
    )  # fmt: skip
    f = load_npz(fetch("imdb.npz", where, path))
    x_train, labels_train = f["x_train"], f["y_train"]
    x_test, labels_test = f["x_test"], f["y_test"]
    rng = np.random.RandomState(seed)
    order = np.arange(len(x_train))
    rng.shuffle(order)
    x_train, labels_train = x_train[order], labels_train[order]
    order = np.arange(len(x_test))
    rng.shuffle(order)
    x_test, labels_test = x_test[order], labels_test[order]

    xs_train, xs_test = (
        shift(x_train, start_char, index_from),
        shift(x_test, start_char, index_from),
    )
    if maxlen:
        xs_train, labels_train = drop_long(maxlen, xs_train, labels_train)
        xs_test, labels_test = drop_long(maxlen, xs_test, labels_test)
        if not xs_train or not xs_test:
            raise ValueError(
                f"{where}: no sequence is shorter than maxlen={maxlen}; increase `maxlen`."
            )
    xs = encode(xs_train + xs_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    idx = len(xs_train)
    return (np.array(xs[:idx], dtype="object"), labels[:idx]), (
        np.array(xs[idx:], dtype="object"),
        labels[idx:],
    )


def get_word_index(path: str = "imdb_word_index.json") -> dict[str, int]:
    """The IMDB word index, ``{word: index}`` (Keras's ``imdb_word_index.json``).

    Indices in :func:`load_data`'s sequences are these plus ``index_from`` (3).

    Parameters
    ----------
    path : str, default "imdb_word_index.json"
        Name of the file in ``$KERAS_HOME/datasets``.

    Returns
    -------
    dict of str to int

    Raises
    ------
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> index = ln.datasets.imdb.get_word_index()  # doctest: +SKIP
    """
    with open(fetch("imdb_word_index.json", "imdb.get_word_index", path)) as f:
        return dict(json.load(f))
