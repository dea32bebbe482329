"""Data adapters: one way to walk the batches of arrays, generators and PyDatasets.

``fit``, ``evaluate`` and ``predict`` take arrays (batched by the trainer through
:func:`array_batches`) or a source of ready-made batches: a Python generator or
iterator yielding ``(x, y)`` or ``(x, y, sample_weight)``, or a :class:`PyDataset`.
:func:`batch_source` wraps the latter in one interface.
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, overload

import numpy as np


class PyDataset:
    """A dataset of batches: ``__len__`` batches, ``__getitem__(i)`` the i-th (Keras's).

    Subclass it and implement ``__len__`` and ``__getitem__`` returning ``(x, y)`` or
    ``(x, y, sample_weight)``; ``on_epoch_end`` is called after every epoch (to
    reshuffle, say). ``fit(dataset)`` takes it directly.

    Parameters
    ----------
    workers, use_multiprocessing, max_queue_size
        Accepted for Keras compatibility; batches are made in this process.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> class Batches(ln.utils.PyDataset):
    ...     def __init__(self, x, y, batch_size):
    ...         super().__init__()
    ...         self.x, self.y, self.batch_size = x, y, batch_size
    ...     def __len__(self):
    ...         return -(-len(self.x) // self.batch_size)
    ...     def __getitem__(self, i):
    ...         s = slice(i * self.batch_size, (i + 1) * self.batch_size)
    ...         return self.x[s], self.y[s]
    >>> x = np.zeros((10, 3), "float32")
    >>> len(Batches(x, x[:, 0], 4))
    3
    """

    def __init__(
        self, workers: int = 1, use_multiprocessing: bool = False, max_queue_size: int = 10
    ) -> None:
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Called after every epoch."""

    @property
    def num_batches(self) -> int | None:
        try:
            return len(self)
        except NotImplementedError:
            return None


@overload
def array_batches(
    order: int, batch_size: int, shard: Callable[[int], slice] | None = None
) -> Iterator[tuple[int, slice]]: ...
@overload
def array_batches(
    order: np.ndarray, batch_size: int, shard: Callable[[int], slice] | None = None
) -> Iterator[tuple[int, np.ndarray]]: ...
def array_batches(
    order: int | np.ndarray, batch_size: int, shard: Callable[[int], slice] | None = None
) -> Iterator[tuple[int, Any]]:
    """The steps of a pass over arrays: ``(step, samples)`` for each global batch.

    Parameters
    ----------
    order : int or ndarray of int
        The samples' indices in the order of the pass, or ``n`` for samples
        ``0 .. n-1`` in order (then each step's samples are a ``slice``).
    batch_size : int
        Samples per global batch (the last one may be shorter).
    shard : callable, optional
        ``shard(m)`` gives this process's part of a global batch of ``m`` samples
        (a strategy's ``shard``); every step
        then yields only that part, which may be empty. Default: all of it.

    Yields
    ------
    (int, slice or ndarray)
        The step's index and the indices of this process's samples in it.

    Examples
    --------
    >>> import numpy as np
    >>> from layernet.training.data_adapters import array_batches
    >>> [idx.tolist() for _, idx in array_batches(np.array([4, 0, 3, 1, 2]), 2)]
    [[4, 0], [3, 1], [2]]
    >>> [s for _, s in array_batches(5, 2, shard=lambda m: slice(0, (m + 1) // 2))]
    [slice(0, 1, None), slice(2, 3, None), slice(4, 5, None)]
    """
    n = order if isinstance(order, int) else len(order)
    for step in range(math.ceil(n / batch_size)):
        start = step * batch_size
        stop = min(start + batch_size, n)
        part = slice(0, stop - start) if shard is None else shard(stop - start)
        if isinstance(order, int):
            yield step, slice(start + part.start, start + part.stop)
        else:
            yield step, order[start:stop][part]


def epoch_order(seed: int, epoch: int, n: int, shuffle: bool) -> np.ndarray:
    """The order of the samples in ``epoch``: a function of the seed and the epoch only,
    so that a run resumed at any epoch sees the orders of an uninterrupted one.

    Examples
    --------
    >>> from layernet.training.data_adapters import epoch_order
    >>> epoch_order(0, 3, 4, shuffle=False).tolist()
    [0, 1, 2, 3]
    >>> bool((epoch_order(0, 3, 50, True) == epoch_order(0, 3, 50, True)).all())
    True
    """
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


class ArrayEpochs:
    """The batches of each epoch of ``fit`` over arrays: ``(step, (x, y, sample_weight))``.

    Each epoch visits the samples in :func:`epoch_order`; each step takes the next
    global batch of ``batch_size`` samples, of which this process gets its
    ``shard`` (see :func:`array_batches`).

    Parameters
    ----------
    x, y : array or list of arrays indexed together
    sample_weight : ndarray or None
    batch_size : int
    seed : int
        The seed of the epochs' orders.
    shuffle : bool
    steps_per_epoch : int or None
        Ends each epoch after this many steps.
    shard : callable, optional
        This process's share of a global batch (a strategy's ``shard``).
    """

    def __init__(
        self,
        x: Any,
        y: Any,
        sample_weight: np.ndarray | None,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool,
        steps_per_epoch: int | None = None,
        shard: Callable[[int], slice] | None = None,
    ) -> None:
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.steps_per_epoch, self.shard = steps_per_epoch, shard

    @property
    def steps(self) -> int:
        """Steps per epoch."""
        steps = math.ceil(len(self.x) / self.batch_size)
        return steps if self.steps_per_epoch is None else min(steps, self.steps_per_epoch)

    def batches(self, epoch: int) -> Iterator[tuple[int, tuple[Any, Any, Any]]]:
        """The steps of ``epoch``: each with this process's share of its global batch."""
        order = epoch_order(self.seed, epoch, len(self.x), self.shuffle)
        if self.steps_per_epoch is not None:
            order = order[: self.steps_per_epoch * self.batch_size]
        sw = self.sample_weight
        for step, idx in array_batches(order, self.batch_size, self.shard):
            yield step, (self.x[idx], self.y[idx], None if sw is None else sw[idx])

    def end_epoch(self) -> None:
        """Called after each epoch's steps (nothing to do for arrays)."""


class SourceEpochs:
    """The batches of each epoch of ``fit`` over a source (generator, iterator, PyDataset).

    In one process each step is the source's next batch. Under a data-parallel
    strategy every rank iterates its own copy of the source, which must yield the
    same batches in the same order; before each step the ranks check that they
    all have a next batch, of the same shapes (``agree``), and each takes its
    ``shard`` of it, as of a global batch of arrays.

    Parameters
    ----------
    source
        What ``batch_source`` returns.
    steps : int or None
        Batches per epoch (None: all of a PyDataset, or a generator to its end).
    prepare : callable
        Turns a batch the source yields into ``(x, y, sample_weight)`` as the
        training step takes it.
    agree : callable, optional
        A strategy's ``agree_batch(owner, index, where, spec, error)``: whether
        every process has batch ``index`` (False: every source ended there), or
        the same error on every process. None (one process): no check.
    shard : callable, optional
        This process's share of a batch of ``m`` samples (a strategy's ``shard``);
        None: all of it.
    owner : str, default "fit"
        The call that reads the source, named in messages.
    """

    def __init__(
        self,
        source: Any,
        steps: int | None,
        prepare: Callable[[Any], tuple[Any, Any, Any]],
        *,
        agree: Callable[[str, int, str, str | None, BaseException | None], bool] | None = None,
        shard: Callable[[int], slice] | None = None,
        owner: str = "fit",
    ) -> None:
        self.source, self.steps, self.prepare = source, steps, prepare
        self.agree, self.shard, self.owner = agree, shard, owner
        self._ahead: tuple[Iterator[Any], Any, Any] | None = None

    def batches(self, epoch: int | None) -> Iterator[tuple[int, tuple[Any, Any, Any]]]:
        """The steps of ``epoch`` (None: a pass outside ``fit``'s epochs): the source's next
        batches (this process's shares)."""
        if self.agree is None and self.shard is None and self._ahead is None:
            for step, batch in enumerate(self.source.batches(self.steps)):
                yield step, self.prepare(batch)
            return
        for step, _, data in self.shares("" if epoch is None else f" of epoch {epoch}"):
            yield step, data

    def peek(self) -> None:
        """Read and prepare the next epoch's first batch now (preparing builds a model
        that is not built yet); that epoch then starts with it."""
        it = self.source.batches(self.steps)
        raw = next(it, _END)
        self._ahead = (it, raw, None if raw is _END else self.prepare(raw))

    def shares(self, where: str = "") -> Iterator[tuple[int, slice, tuple[Any, Any, Any]]]:
        """One pass over the source: ``(step, rows, data)`` for each batch, where ``data`` is
        this process's share of the batch and ``rows`` the indices of its samples among
        all the samples of the pass.

        ``where`` ends the batch's description in messages (``" of epoch 2"``).
        """
        ahead, self._ahead = self._ahead, None
        it = self.source.batches(self.steps) if ahead is None else ahead[0]
        offset = 0
        for step in itertools.count():
            raw: Any = _END
            data: Any = None
            error: BaseException | None = None
            try:
                if step == 0 and ahead is not None:
                    raw, data = ahead[1], ahead[2]
                else:
                    raw = next(it, _END)
                if raw is not _END and data is None:
                    data = self.prepare(raw)
            except Exception as exc:
                if self.agree is None:
                    raise
                error = exc
            if self.agree is not None:
                spec = None if raw is _END else batch_spec(raw)
                if not self.agree(self.owner, step, where, spec, error):
                    return
            elif raw is _END:
                return
            x, y, sw = data
            n = len(x)
            part = slice(0, n) if self.shard is None else self.shard(n)
            if part != slice(0, n):
                x = x[part]
                y = None if y is None else y[part]
                sw = None if sw is None else sw[part]
            yield step, slice(offset + part.start, offset + part.stop), (x, y, sw)
            offset += n

    def end_epoch(self) -> None:
        """Tell the source the epoch ended (a PyDataset's ``on_epoch_end``)."""
        self.source.epoch_end()


#: What a pass over a source reads once the source has no more batches.
_END: Any = object()


def batch_spec(batch: Any) -> str:
    """A short description of a batch: its parts' structure, shapes and dtypes.

    What data-parallel ranks compare before each step over a source of batches
    (the values are not compared). Never raises.

    Examples
    --------
    >>> import numpy as np
    >>> from layernet.training.data_adapters import batch_spec
    >>> batch_spec((np.zeros((8, 5)), np.zeros(8, "int64")))
    'x: (8, 5) float64, y: (8,) int64'
    >>> batch_spec(({"b": np.zeros((2, 1)), "a": np.zeros((2, 3))}, None))
    "x: {'a': (2, 3) float64, 'b': (2, 1) float64}, y: None"
    """
    try:
        if isinstance(batch, tuple) and 1 <= len(batch) <= 3:
            names = ("x", "y", "sample_weight")
            return ", ".join(f"{k}: {_spec(v)}" for k, v in zip(names, batch, strict=False))
        return f"x: {_spec(batch)}"
    except Exception as exc:  # a part whose shape cannot be read
        return f"<{type(batch).__name__}: {type(exc).__name__}>"


def _spec(a: Any) -> str:
    if a is None:
        return "None"
    shape = getattr(a, "shape", None)
    if shape is not None:
        dtype = getattr(a, "dtype", None)
        name = getattr(dtype, "name", None) or str(dtype)
        return f"{_shape_str(tuple(shape))} {name}"
    if isinstance(a, Mapping):
        items = sorted(a.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{k!r}: {_spec(v)}" for k, v in items) + "}"
    if isinstance(a, list | tuple) and any(
        hasattr(v, "shape") or isinstance(v, Mapping | list | tuple) for v in a
    ):
        return "[" + ", ".join(_spec(v) for v in a) + "]"
    try:
        return f"{type(a).__name__} of {len(a)}"
    except TypeError:
        return type(a).__name__


def _shape_str(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + (",)" if len(shape) == 1 else ")")


class _Source:
    """Batches from a PyDataset (or any sequence with ``__len__``/``__getitem__``)."""

    finite_hint = True

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def length(self) -> int | None:
        return len(self.dataset)

    def batches(self, steps: int | None) -> Iterator[Any]:
        n = len(self.dataset)
        for i in range(n if steps is None else min(steps, n)):
            yield self.dataset[i]

    def epoch_end(self) -> None:
        hook = getattr(self.dataset, "on_epoch_end", None)
        if hook is not None:
            hook()


class _IteratorSource:
    """Batches from a generator or iterator: each epoch takes the next ``steps`` batches.

    A finite generator without ``steps`` is read to its end in the first epoch (as
    Keras does, it cannot be restarted).
    """

    finite_hint = True

    def __init__(self, iterator: Any) -> None:
        self.iterator = iter(iterator)
        self.exhausted = False

    def length(self) -> int | None:
        return None

    def batches(self, steps: int | None) -> Iterator[Any]:
        k = 0
        while steps is None or k < steps:
            try:
                batch = next(self.iterator)
            except StopIteration:
                self.exhausted = True
                return
            yield batch
            k += 1

    def epoch_end(self) -> None:
        pass


class _IterableSource:
    """Batches from a re-iterable object (a PyTorch ``DataLoader``, say): each epoch
    iterates it afresh, as Keras does, taking at most ``steps`` batches."""

    finite_hint = True

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable

    def length(self) -> int | None:
        try:
            return len(self.iterable)
        except TypeError:
            return None

    def batches(self, steps: int | None) -> Iterator[Any]:
        for k, batch in enumerate(self.iterable):
            if steps is not None and k >= steps:
                return
            # A DataLoader collates the (x, y) pairs of its dataset into a list [x, y].
            yield tuple(batch) if isinstance(batch, list) else batch

    def epoch_end(self) -> None:
        pass


def batch_source(x: Any) -> Any:
    """A batch source for a generator, iterator, PyDataset or a re-iterable object such
    as a PyTorch ``DataLoader``; ``None`` for array data."""
    if x is None:
        return None
    if isinstance(x, PyDataset) or (
        hasattr(x, "__getitem__")
        and hasattr(x, "__len__")
        and hasattr(x, "on_epoch_end")
        and not hasattr(x, "shape")
    ):
        return _Source(x)
    if inspect.isgenerator(x) or isinstance(x, Iterator):
        return _IteratorSource(x)
    if (
        hasattr(x, "__iter__")
        and not hasattr(x, "shape")
        and not isinstance(x, list | tuple | dict | str | bytes | np.ndarray)
    ):
        return _IterableSource(x)
    return None
