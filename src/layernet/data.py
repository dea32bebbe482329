r"""In-memory input pipelines with ``tf.data``'s vocabulary (a small subset of ``tf.data``).

Keras's examples build their input pipelines with TensorFlow's ``tf.data``:
``Dataset.from_tensor_slices((x, y)).shuffle(n).batch(b).map(f).prefetch(AUTOTUNE)``.
This module gives the same calls over NumPy arrays, so such a script runs with
``import layernet as tf`` (or ``from layernet import data as tf_data``) in place of
TensorFlow. A :class:`Dataset` is a Keras ``PyDataset`` as well: ``fit``,
``evaluate`` and ``predict`` take it, one element per step (batch it first).

What differs from ``tf.data``: everything runs in the calling thread, when an element
is asked for (``num_parallel_calls`` and ``prefetch`` are accepted and change nothing);
elements are NumPy arrays; ``shuffle`` draws from NumPy's generator, so its orders are
not TensorFlow's (its buffer works as ``tf.data``'s does).

Examples
--------
>>> import numpy as np
>>> from layernet import data
>>> x, y = np.arange(10.0).reshape(5, 2), np.arange(5)
>>> ds = data.Dataset.from_tensor_slices((x, y)).batch(2).map(lambda a, b: (a * 10, b))
>>> len(ds), [b.tolist() for _, b in ds]
(3, [[0, 1], [2, 3], [4]])
>>> ds.prefetch(data.AUTOTUNE).take(1)[0][0]
array([[ 0., 10.],
       [20., 30.]])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._validation import is_int

__all__ = ["AUTOTUNE", "Dataset"]

#: ``tf.data.AUTOTUNE``: accepted wherever ``tf.data`` takes it (it changes nothing here).
AUTOTUNE = -1


def _structure_map(fn: Callable[[Any], Any], s: Any) -> Any:
    if isinstance(s, tuple | list):
        return type(s)(_structure_map(fn, v) for v in s)
    if isinstance(s, dict):
        return {k: _structure_map(fn, v) for k, v in s.items()}
    return fn(s)


def _leaves(s: Any) -> list[Any]:
    if isinstance(s, tuple | list):
        return [leaf for v in s for leaf in _leaves(v)]
    if isinstance(s, dict):
        return [leaf for v in s.values() for leaf in _leaves(v)]
    return [s]


def _stack(elements: list[Any]) -> Any:
    first = elements[0]
    if isinstance(first, tuple | list):
        return type(first)(_stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])


def _call(fn: Callable[..., Any], element: Any) -> Any:
    """``tf.data``'s rule: a tuple element is passed as positional arguments."""
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _check_positive(value: Any, arg: str, where: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(
            f"Dataset.{where}: invalid value for `{arg}`: expected a positive int, "
            f"received {value!r}."
        )
    return int(value)


class Dataset:
    r"""A sequence of elements built by ``tf.data``'s methods (see the module's notes).

    Make one with :meth:`from_tensor_slices` (or from a Keras ``PyDataset`` such
    as :func:`~layernet.utils.image_dataset_from_directory`'s, with
    :meth:`from_batches`); every method returns a new Dataset. ``len(ds)`` is its
    number of elements, ``ds[i]`` its ``i``-th, and iterating gives them in order.
    :meth:`on_epoch_end` (called by ``fit`` after every epoch) draws the next order
    of every :meth:`shuffle` in the pipeline.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def _gather(self, indices: np.ndarray) -> Any:
        """The elements at ``indices``, stacked (a batch)."""
        return _stack([self[int(i)] for i in indices])

    def on_epoch_end(self) -> None:
        """Start a new epoch: every shuffle in the pipeline draws its next order."""

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    def _index(self, index: Any) -> int:
        n = len(self)
        if not is_int(index) or not -n <= index < n:
            raise IndexError(f"Dataset: index {index!r} out of range for {n} elements.")
        return int(index) % n

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)} elements>"

    # ------------------------------------------------------------ constructors
    @staticmethod
    def from_tensor_slices(tensors: Any) -> Dataset:
        """A Dataset of the slices of ``tensors`` along their first axis.

        Parameters
        ----------
        tensors : array, or tuple, list or dict of arrays
            All with the same first dimension; an element has the same structure
            (``(x[i], y[i])`` for ``(x, y)``).

        Returns
        -------
        Dataset

        Raises
        ------
        ValueError
            Arrays with different first dimensions, or a scalar.
        """
        return _Slices(tensors)

    @staticmethod
    def from_batches(source: Any) -> Dataset:
        """A Dataset whose elements are the batches of a Keras ``PyDataset``.

        ``source[i]`` is element ``i``; ``on_epoch_end`` is passed on (it reshuffles
        :func:`~layernet.utils.image_dataset_from_directory`'s files).
        """
        return _Batches(source)

    # ----------------------------------------------------------------- methods
    def shuffle(
        self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True
    ) -> Dataset:
        """Elements in a random order drawn with a buffer of ``buffer_size``, as ``tf.data``.

        The next element is drawn uniformly from a buffer holding the next
        ``buffer_size`` elements not yet taken (``buffer_size >= len(self)``: a
        full shuffle). A new order is drawn at every epoch unless
        ``reshuffle_each_iteration=False``.
        """
        size = _check_positive(buffer_size, "buffer_size", "shuffle")
        return _Shuffled(self, size, seed, bool(reshuffle_each_iteration))

    def batch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Consecutive elements stacked into batches of ``batch_size`` (the last may be smaller)."""
        size = _check_positive(batch_size, "batch_size", "batch")
        return _Batched(self, size, bool(drop_remainder))

    def map(
        self,
        map_func: Callable[..., Any],
        num_parallel_calls: int | None = None,
        deterministic: bool | None = None,
    ) -> Dataset:
        """``map_func`` applied to every element (a tuple element is unpacked into arguments).

        ``num_parallel_calls`` and ``deterministic`` are accepted for ``tf.data``'s
        scripts; the function runs in the calling thread when an element is asked for.
        """
        if not callable(map_func):
            raise ValueError(
                f"Dataset.map: invalid value for `map_func`: expected a function, received "
                f"{map_func!r}."
            )
        return _Mapped(self, map_func)

    def take(self, count: int) -> Dataset:
        """The first ``count`` elements (all of them for ``count=-1``)."""
        if not is_int(count) or count < -1:
            raise ValueError(
                f"Dataset.take: invalid value for `count`: expected an int >= -1, received "
                f"{count!r}."
            )
        return self if count == -1 else _Taken(self, int(count))

    def prefetch(self, buffer_size: int) -> Dataset:
        """The same Dataset (accepted for ``tf.data``'s scripts; nothing runs ahead here)."""
        return self

    def cache(self, filename: str = "") -> Dataset:
        """The same Dataset (its arrays are already in memory)."""
        return self


class _Slices(Dataset):
    def __init__(self, tensors: Any) -> None:
        self._tensors = _structure_map(np.asarray, tensors)
        sizes = {int(a.shape[0]) if a.ndim else -1 for a in _leaves(self._tensors)}
        if -1 in sizes or len(sizes) != 1:
            raise ValueError(
                f"Dataset.from_tensor_slices: expected arrays with the same first dimension, "
                f"received first dimensions {sorted(sizes)} (-1: a scalar)."
            )
        self._n = sizes.pop()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> Any:
        i = self._index(index)
        return _structure_map(lambda a: a[i], self._tensors)

    def _gather(self, indices: np.ndarray) -> Any:
        return _structure_map(lambda a: a[indices], self._tensors)


class _Child(Dataset):
    def __init__(self, parent: Dataset) -> None:
        self._parent = parent

    def on_epoch_end(self) -> None:
        self._parent.on_epoch_end()


class _Batches(Dataset):
    def __init__(self, source: Any) -> None:
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> Any:
        return self._source[self._index(index)]

    def on_epoch_end(self) -> None:
        if hasattr(self._source, "on_epoch_end"):
            self._source.on_epoch_end()


def _buffer_order(n: int, buffer_size: int, rng: np.random.Generator) -> np.ndarray:
    """``tf.data``'s shuffle: take a random buffer entry, refill it with the next element."""
    buffer = list(range(min(buffer_size, n)))
    following = len(buffer)
    order = np.empty(n, dtype=np.int64)
    draws = rng.random(n)
    for k in range(n):
        j = int(draws[k] * len(buffer))
        order[k] = buffer[j]
        if following < n:
            buffer[j] = following
            following += 1
        else:
            buffer[j] = buffer[-1]
            buffer.pop()
    return order


class _Shuffled(_Child):
    def __init__(self, parent: Dataset, buffer_size: int, seed: Any, reshuffle: bool) -> None:
        super().__init__(parent)
        self._buffer_size = buffer_size
        self._rng = np.random.default_rng(seed)
        self._reshuffle = reshuffle
        self._order = _buffer_order(len(parent), buffer_size, self._rng)

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> Any:
        return self._parent[int(self._order[self._index(index)])]

    def _gather(self, indices: np.ndarray) -> Any:
        return self._parent._gather(self._order[indices])

    def on_epoch_end(self) -> None:
        super().on_epoch_end()
        if self._reshuffle:
            self._order = _buffer_order(len(self._parent), self._buffer_size, self._rng)


class _Batched(_Child):
    def __init__(self, parent: Dataset, batch_size: int, drop_remainder: bool) -> None:
        super().__init__(parent)
        self.batch_size = batch_size
        self._drop = drop_remainder

    def __len__(self) -> int:
        n = len(self._parent)
        return n // self.batch_size if self._drop else -(-n // self.batch_size)

    def __getitem__(self, index: int) -> Any:
        i = self._index(index)
        stop = min((i + 1) * self.batch_size, len(self._parent))
        return self._parent._gather(np.arange(i * self.batch_size, stop))


class _Mapped(_Child):
    def __init__(self, parent: Dataset, fn: Callable[..., Any]) -> None:
        super().__init__(parent)
        self._fn = fn
        self.batch_size = getattr(parent, "batch_size", None)

    def __len__(self) -> int:
        return len(self._parent)

    def __getitem__(self, index: int) -> Any:
        out = _call(self._fn, self._parent[self._index(index)])
        return _structure_map(np.asarray, out)


class _Taken(_Child):
    def __init__(self, parent: Dataset, count: int) -> None:
        super().__init__(parent)
        self._count = count
        self.batch_size = getattr(parent, "batch_size", None)

    def __len__(self) -> int:
        return min(self._count, len(self._parent))

    def __getitem__(self, index: int) -> Any:
        return self._parent[self._index(index)]

    def _gather(self, indices: np.ndarray) -> Any:
        return self._parent._gather(indices)
