"""``keras`` for the gallery's scripts: layernet, with IMDB's stand-in when offline.

``from _offline_imdb import keras`` gives a module that *is* layernet for every name
(``keras.Sequential``, ``keras.utils``, ``keras.datasets.mnist``, ...) except
``keras.datasets.imdb.load_data``: that one reads Keras's own ``imdb.npz`` through
:func:`layernet.datasets.imdb.load_data` (from Keras's cache folder, downloading it
when missing) and, only when that file can be neither found nor downloaded,
prints a note and returns :func:`imdb_stand_in` instead (500 reviews per half instead
of 5,000 when ``LAYERNET_GALLERY_SHORT=1`` is set, the gallery's short mode).
"""

from __future__ import annotations

import os
import types
from typing import Any

import numpy as np

import layernet
from layernet.utils import DownloadError

#: Word ids 0, 1, 2 are Keras's padding, start and out-of-vocabulary marks; real words
#: start at ``index_from + 1 = 4`` with the most frequent word.
_START, _OOV, _FIRST_WORD = 1, 2, 4


def imdb_stand_in(
    num_words: int | None = None,
    num_samples: int = 5000,
    seed: int = 0,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Made-up movie reviews in the format of ``keras.datasets.imdb.load_data``.

    Each review is a list of ints that starts with 1 (the start mark), with word ids
    from a Zipf-like vocabulary of 20,000 words (ids from 4 up; ids at or above
    ``num_words`` become 2, the out-of-vocabulary mark, as Keras does) and lengths
    spread like IMDB's (median about 175 words). The label (0 or 1, balanced) is
    learnable: 40 of the words carry sentiment, 20 positive and 20 negative, and about
    one word in twenty is one of them, drawn from the label's side with probability
    0.75. Nothing is downloaded; the same ``seed`` gives the same data.

    Parameters
    ----------
    num_words : int, optional
        Keep the most frequent ``num_words`` ids, as ``load_data(num_words=...)``.
    num_samples : int, default 5000
        Reviews in each half (training and test).
    seed : int, default 0

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        ``x`` object arrays of lists of ints, ``y`` int64 labels.
    """
    rng = np.random.default_rng(seed)
    vocabulary = 20_000
    ranks = np.arange(1, vocabulary + 1)
    p = 1.0 / ranks**1.07
    p /= p.sum()
    sentiment = rng.choice(np.arange(50, 1000), size=40, replace=False) + _FIRST_WORD
    positive, negative = sentiment[:20], sentiment[20:]
    halves = []
    for _ in range(2):
        n = num_samples
        labels = rng.permutation(np.arange(n) % 2).astype("int64")
        lengths = np.clip(rng.lognormal(np.log(175), 0.7, n), 10, 2000).astype(int)
        words = rng.choice(vocabulary, size=int(lengths.sum()), p=p) + _FIRST_WORD
        owner = np.repeat(np.arange(n), lengths)  # the review each word belongs to
        hit = rng.random(words.size) < 0.05
        own_side = rng.random(words.size) < 0.75
        is_positive = (labels[owner] == 1) == own_side
        picks = rng.integers(0, 20, words.size)
        words = np.where(hit, np.where(is_positive, positive[picks], negative[picks]), words)
        if num_words is not None:
            words = np.where(words >= num_words, _OOV, words)
        reviews = np.split(words, np.cumsum(lengths)[:-1])
        x = np.empty(n, dtype="object")
        x[:] = [[_START, *r.tolist()] for r in reviews]
        halves.append((x, labels))
    return halves[0], halves[1]


def _imdb_load_data(num_words: int | None = None, **kwargs: Any) -> Any:
    try:
        return layernet.datasets.imdb.load_data(num_words=num_words, **kwargs)
    except DownloadError as exc:
        print(
            f"Note: IMDB is not in Keras's cache and could not be downloaded ({exc}). "
            "Using a made-up stand-in of the same format instead (integer sequences, "
            "binary labels); the accuracies below are not IMDB's."
        )
        short = os.environ.get("LAYERNET_GALLERY_SHORT", "") not in ("", "0")
        return imdb_stand_in(num_words=num_words, num_samples=500 if short else 5000)


class _Namespace(types.ModuleType):
    """A module that answers every name from ``base`` unless given its own value."""

    def __init__(self, name: str, base: Any, **own: Any) -> None:
        super().__init__(name, base.__doc__)
        self.__dict__.update(own)
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


_imdb = _Namespace("imdb", layernet.datasets.imdb, load_data=_imdb_load_data)
keras = _Namespace(
    "keras", layernet, datasets=_Namespace("datasets", layernet.datasets, imdb=_imdb)
)
