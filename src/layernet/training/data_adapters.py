"""Data adapters: one way to walk the batches of arrays, generators and PyDatasets.

``fit``, ``evaluate`` and ``predict`` take arrays (batched by the trainer) or a
source of ready-made batches: a Python generator or iterator yielding ``(x, y)``
or ``(x, y, sample_weight)``, or a :class:`PyDataset`. :func:`batch_source`
wraps the latter in one interface.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any


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


def batch_source(x: Any) -> Any:
    """A batch source for a generator, iterator or PyDataset; ``None`` for array data."""
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
    return None
