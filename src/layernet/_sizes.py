"""The largest array layernet allocates, checked before the allocation.

A layer's output, parameters and scratch arrays are checked against one limit
before they are allocated, so that an input or a configuration asking for more
memory than the machine has ends in an :class:`ArrayTooLargeError` naming the
layer, the shape and the bytes, not in NumPy's bare ``MemoryError`` (or, where
the system overcommits memory, in the process being killed later).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import is_int, shape_str

__all__ = ["ArrayTooLargeError", "get_max_array_bytes", "set_max_array_bytes"]

_limit: int | None = None  # None: the machine's physical memory


class ArrayTooLargeError(MemoryError):
    """An array a layer would allocate is larger than :func:`get_max_array_bytes` allows.

    Raised before anything is allocated; the message names the layer, what it
    was about to allocate (output, parameter, scratch array), its shape, dtype
    and size in bytes. A subclass of :class:`MemoryError`.

    Parameters
    ----------
    message : str
        The layer, the array's shape and bytes, and the limit.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.set_max_array_bytes(1_000)
    >>> try:
    ...     ln.Dense(1_000, dtype="float64", name="wide").forward(np.zeros((1, 2)))
    ... except ln.ArrayTooLargeError as err:
    ...     print(str(err))
    Dense 'wide': building for inputs of shape (1, 2): a parameter of shape (2, 1000) and
    dtype float64 would take 16,000 bytes (15.6 KiB), above the limit of 1,000 bytes (see
    layernet.set_max_array_bytes).
    >>> ln.set_max_array_bytes(None)
    """


@functools.cache
def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 1 << 62


def set_max_array_bytes(nbytes: int | None) -> None:
    """Set the size of the largest array a layer may allocate (output, parameter, scratch).

    Parameters
    ----------
    nbytes : int or None
        A positive number of bytes, or ``None`` for the default: the machine's
        physical memory (no single array can be larger and still be useful).

    Raises
    ------
    ValueError
        ``set_max_array_bytes: invalid value for `nbytes`: expected a positive int
        or None, received ...``.

    See Also
    --------
    get_max_array_bytes, ArrayTooLargeError

    Examples
    --------
    >>> import layernet as ln
    >>> ln.set_max_array_bytes(2**30)
    >>> ln.get_max_array_bytes()
    1073741824
    >>> ln.set_max_array_bytes(None)  # back to the machine's memory
    """
    global _limit
    if nbytes is not None and not (is_int(nbytes) and nbytes > 0):
        raise ValueError(
            f"set_max_array_bytes: invalid value for `nbytes`: expected a positive int or None, "
            f"received {nbytes!r}."
        )
    _limit = None if nbytes is None else int(nbytes)


def get_max_array_bytes() -> int:
    """The size in bytes of the largest array a layer may allocate.

    See :func:`set_max_array_bytes`.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.get_max_array_bytes() > 0
    True
    """
    return _physical_memory() if _limit is None else _limit


def _human(n: int) -> str:
    """`` (15.6 KiB)`` for sizes of 1 KiB and more, nothing below."""
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        size /= 1024
        if size < 1024 or unit == "EiB":
            return f" ({size:.1f} {unit})" if n >= 1024 else ""
    return ""  # pragma: no cover - the loop returns at "EiB" at the latest


def check_array_bytes(
    shape: Sequence[int], dtype: Any, owner: str, what: str, context: str = ""
) -> None:
    """Raise :class:`ArrayTooLargeError` if an array of ``shape`` and ``dtype`` is too large.

    The size is computed with Python integers, so shapes whose product overflows
    64 bits are refused too.
    """
    itemsize = np.dtype(dtype).itemsize
    nbytes = math.prod(int(s) for s in shape) * itemsize
    limit = get_max_array_bytes()
    if nbytes > limit:
        prefix = f"{owner}: " if owner else ""
        raise ArrayTooLargeError(
            f"{prefix}{what} of shape {shape_str(tuple(shape))} and dtype "
            f"{np.dtype(dtype).name}{context} would take {nbytes:,} bytes{_human(nbytes)}, "
            f"above the limit of {limit:,} bytes{_human(limit)} (see layernet.set_max_array_bytes)."
        )
