"""Reuters newswire topics from Keras's ``reuters.npz`` (``keras.datasets.reuters``)."""

from __future__ import annotations

import json

import numpy as np

from ._keras_files import (
    check_sequence_args,
    check_test_split,
    drop_long,
    encode,
    fetch,
    load_npz,
    shift,
)

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def load_data(
    path: str = "reuters.npz",
    num_words: int | None = None,
    skip_top: int = 0,
    maxlen: int | None = None,
    test_split: float = 0.2,
    seed: int = 113,
    start_char: int | None = 1,
    oov_char: int | None = 2,
    index_from: int = 3,
) -> Split:
    """Load Reuters as ``keras.datasets.reuters.load_data`` does, from the same cached file.

    11,228 newswires over 46 topics, shuffled with
    ``numpy.random.RandomState(seed)`` and split ``1 - test_split`` /
    ``test_split``.

    Parameters
    ----------
    path : str, default "reuters.npz"
        Name of the file in ``$KERAS_HOME/datasets``.
    num_words, skip_top, maxlen, seed, start_char, oov_char, index_from
        As in :func:`layernet.datasets.imdb.load_data`.
    test_split : float, default 0.2
        Share of the data held out for testing, in [0, 1).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` an object array of lists of ints, ``y`` the topic indices.

    Raises
    ------
    ValueError
        For invalid options.
    layernet.utils.DownloadError
        Not cached and not downloadable.

    Examples
    --------
    >>> import layernet as ln
    >>> (x, y), _ = ln.datasets.reuters.load_data(num_words=10000)  # doctest: +SKIP
    """
    where = "reuters.load_data"
    check_sequence_args(
        where, num_words=num_words, skip_top=skip_top, maxlen=maxlen, seed=seed,
        start_char=start_char, oov_char=oov_char, index_from=index_from,
    )  # fmt: skip
    test_split = check_test_split(test_split, where)
    f = load_npz(fetch("reuters.npz", where, path))
    xs_raw, labels = f["x"], f["y"]
    order = np.arange(len(xs_raw))
    np.random.RandomState(seed).shuffle(order)
    xs_raw, labels = xs_raw[order], labels[order]
    xs = shift(xs_raw, start_char, index_from)
    if maxlen:
        xs, labels = drop_long(maxlen, xs, labels)
    xs = encode(xs, num_words, skip_top, oov_char)
    idx = int(len(xs) * (1 - test_split))
    return (np.array(xs[:idx], dtype="object"), np.array(labels[:idx])), (
        np.array(xs[idx:], dtype="object"),
        np.array(labels[idx:]),
    )


def get_word_index(path: str = "reuters_word_index.json") -> dict[str, int]:
    """The Reuters word index, ``{word: index}`` (Keras's ``reuters_word_index.json``).

    Parameters
    ----------
    path : str, default "reuters_word_index.json"
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
    >>> index = ln.datasets.reuters.get_word_index()  # doctest: +SKIP
    """
    with open(fetch("reuters_word_index.json", "reuters.get_word_index", path)) as f:
        return dict(json.load(f))
