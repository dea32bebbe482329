r"""How many BLAS threads layernet's matrix products use: a budget, spent only where it pays.

NumPy's BLAS (OpenBLAS or MKL) runs every product on all its threads. On a
machine with spare cores that speeds up large products; on small ones the
threads only synchronise, and when another process keeps a core busy a thread
waiting for it stalls the whole product (measured on 2 cores with one other
CPU-bound process: an MNIST-1D epoch 41 ms -> 88 ms with 2 threads, 44 ms with
one). So layernet keeps a *budget* (:func:`set_num_threads`, or the
``LAYERNET_NUM_THREADS`` environment variable) and gives it to a product only
when the product has at least ``MIN_PARALLEL_FLOPS`` floating-point
operations; smaller ones run on one thread.

The count is set through the BLAS library's own thread functions (the ones
:func:`layernet.distributed.set_blas_threads` calls), looked up once: around a
small product it drops to one thread and returns to the budget after it (each
call a fraction of a microsecond), so code outside layernet finds BLAS at the
budget. A
count set from outside (:func:`layernet.distributed.set_blas_threads`,
threadpoolctl) becomes the budget at the next product (OpenBLAS, whose count
can be read back).

**A machine shared with other work.** On Linux the budget also adapts to the
load: every ``LOAD_INTERVAL`` seconds (at most; only when a large product asks)
layernet reads how much CPU the *other* processes used since the last reading
(``/proc/stat`` less this process's own CPU time) and gives large products at
most the cores they left free, never fewer than one. On 2 cores with one other
CPU-bound process a two-thread product waits for the thread that shares its
core with that process, so the step ran 1.6-2.3x slower than on the quiet
machine; one thread on the free core runs it 1.03-1.13x slower. Set
``ADAPT_TO_LOAD = False`` (or ``LAYERNET_ADAPT_THREADS=0`` in the environment)
to keep the budget whatever the load. The thread count never changes a result:
OpenBLAS splits a product's rows and columns between threads, not its sums.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import _ops
from ._validation import check_positive_int

__all__ = [
    "ADAPT_TO_LOAD",
    "LOAD_INTERVAL",
    "MIN_PARALLEL_FLOPS",
    "free_cores",
    "get_num_threads",
    "held",
    "matmul",
    "set_num_threads",
]

#: Products with fewer floating-point operations (``2 m k n``) run on one thread.
#: Measured on a 2-core machine shared with other work (same-run comparisons): two
#: threads gain nothing below about 1.3 Mflop (OpenBLAS itself stays on one there),
#: 35-45 % from 2.5 Mflop on an idle core, but lose up to 2x on products of 2-20 Mflop
#: when another process holds a core; from about 8 Mflop the gain on an idle core is
#: worth the risk.
MIN_PARALLEL_FLOPS = 8_000_000

#: Whether large products take only the cores other processes leave free (Linux).
ADAPT_TO_LOAD = os.environ.get("LAYERNET_ADAPT_THREADS", "1").strip().lower() not in (
    "0",
    "false",
    "no",
)

#: Seconds between two readings of the other processes' CPU use.
LOAD_INTERVAL = 0.1

#: The shortest span a reading is compared over (``/proc/stat`` counts in 10 ms ticks).
_MIN_SPAN = 0.04

_OPENBLAS_SETTERS = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
)
_OPENBLAS_GETTERS = tuple(s.replace("set_", "get_") for s in _OPENBLAS_SETTERS)
_MKL_SETTER = "MKL_Set_Num_Threads"


class _State:
    setters: list[Any] | None = None  # None: not looked up yet
    getter: Any = None  # OpenBLAS's thread-count getter, when there is one
    budget: int | None = None
    current: int | None = None  # what BLAS was last set to by this module


def _lookup() -> list[Any]:
    if _State.setters is None:
        from . import distributed  # the library lookup lives there (also for DataParallel)

        setters = distributed._blas_functions((*_OPENBLAS_SETTERS, _MKL_SETTER))
        for fn in setters:
            fn.restype = None
        getters = distributed._blas_functions(_OPENBLAS_GETTERS)
        if getters:
            getters[0].restype = ctypes.c_int
            _State.getter = getters[0]
        _State.setters = setters
        budget = _env_budget()
        if budget is None:
            budget = distributed.get_blas_threads() or os.cpu_count() or 1
        _State.budget = budget
        _set_blas(budget)
    return _State.setters


def _env_budget() -> int | None:
    raw = os.environ.get("LAYERNET_NUM_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"LAYERNET_NUM_THREADS: invalid value: expected a positive int, received {raw!r}."
        )
    return value


def _sync() -> None:
    """Adopt a thread count set behind this module's back as the budget.

    :func:`layernet.distributed.set_blas_threads` (which :class:`~layernet.DataParallel`
    calls for each rank), threadpoolctl or a user's own call change the BLAS count
    directly; a product that would change the count adopts it first (a product that
    would not runs on it as it is).
    """
    if _State.getter is not None:
        actual = int(_State.getter())
        if actual != _State.current:
            _State.budget = _State.current = actual


def _set_blas(n: int) -> None:
    for fn in _State.setters or ():
        fn(ctypes.c_int(n))
    _State.current = n


def set_num_threads(n: int) -> None:
    r"""Set layernet's BLAS thread budget (products large enough to gain use ``n`` threads).

    Parameters
    ----------
    n : int
        Threads for large products; ``1`` keeps every product on one thread
        (for instance one process per core in data-parallel runs, or a machine
        shared with other CPU-bound work). The ``LAYERNET_NUM_THREADS``
        environment variable sets the initial budget; without it the budget is
        the thread count NumPy's BLAS started with.

    Raises
    ------
    ValueError
        ``n`` is not a positive int.

    See Also
    --------
    get_num_threads, layernet.distributed.set_blas_threads

    Notes
    -----
    A product :math:`A_{m\times k} B_{k\times n}` runs on ``n`` threads when
    :math:`2mkn \ge` ``layernet.threads.MIN_PARALLEL_FLOPS`` (8 Mflop), else on
    one; on Linux it gets at most the cores other processes left free over the
    last ``layernet.threads.LOAD_INTERVAL`` seconds (see :func:`layernet.threads.free_cores`; off
    with ``layernet.threads.ADAPT_TO_LOAD = False`` or
    ``LAYERNET_ADAPT_THREADS=0``). With a BLAS whose threads cannot be set at run
    time (macOS Accelerate) the budget is recorded and nothing changes.

    Examples
    --------
    >>> import layernet as ln
    >>> before = ln.get_num_threads()
    >>> ln.set_num_threads(1)
    >>> ln.get_num_threads()
    1
    >>> ln.set_num_threads(before)
    """
    n = check_positive_int(n, "n", "set_num_threads")
    _lookup()
    _State.budget = n
    _set_blas(n)


def get_num_threads() -> int:
    """layernet's BLAS thread budget (see :func:`set_num_threads`).

    Returns
    -------
    int
        The threads large products use.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.get_num_threads() >= 1
    True
    """
    _lookup()
    _sync()
    assert _State.budget is not None
    return _State.budget


class _Load:
    """The last reading of the machine's CPU use (see :func:`free_cores`)."""

    at: float | None = None  # time.monotonic() of the last reading; None: none yet
    busy: float = 0.0  # CPU seconds all processes had used, from /proc/stat
    own: float = 0.0  # CPU seconds this process had used
    free: float | None = None  # cores left free by other processes over the last interval
    cores: int = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    tick: float = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01


def _busy_seconds(path: str = "/proc/stat") -> float | None:
    """CPU seconds spent by all processes since boot (``None`` where unknown)."""
    try:
        with open(path, "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 5 or fields[0] != b"cpu":
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy
    ticks = [int(v) for v in fields[1:9]]
    busy = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy * _Load.tick


def _own_seconds() -> float:
    """CPU seconds this process (all its threads) has used."""
    return time.process_time()


def free_cores(now: float | None = None) -> float | None:
    """Cores the other processes left free over the last ``LOAD_INTERVAL`` seconds.

    Re-read at most every ``LOAD_INTERVAL`` seconds from ``/proc/stat`` (all
    processes' CPU time) less this process's own CPU time; between readings the
    last value is returned. The first reading is taken when ``layernet`` is
    imported, so the first large product already has a span to compare (at least
    40 ms). ``None`` before that span or where ``/proc/stat`` does not exist (not
    Linux).

    Parameters
    ----------
    now : float, optional
        ``time.monotonic()``, when the caller already has it.

    Returns
    -------
    float or None
        Between 0 and the number of cores this process may run on.

    Examples
    --------
    >>> import layernet as ln
    >>> free = ln.threads.free_cores()
    >>> free is None or 0.0 <= free
    True
    """
    now = time.monotonic() if now is None else now
    if _Load.at is not None:
        elapsed = now - _Load.at
        if elapsed < LOAD_INTERVAL and (_Load.free is not None or elapsed < _MIN_SPAN):
            return _Load.free
    busy = _busy_seconds()
    own = _own_seconds()
    if busy is None:
        _Load.at = now
        return None
    if _Load.at is not None:
        others = max(0.0, (busy - _Load.busy) - (own - _Load.own)) / (now - _Load.at)
        _Load.free = min(float(_Load.cores), max(0.0, _Load.cores - others))
    _Load.at, _Load.busy, _Load.own = now, busy, own
    return _Load.free


def threads_for(flops: int) -> int:
    """The threads a product of ``flops`` floating-point operations gets.

    One below ``MIN_PARALLEL_FLOPS``; else the budget, or, with
    ``ADAPT_TO_LOAD``, at most the cores other processes left free (rounded,
    at least one).
    """
    if _State.setters is None:
        _lookup()
    budget = _State.budget or 1
    if flops < MIN_PARALLEL_FLOPS or budget == 1:
        return 1
    if ADAPT_TO_LOAD:
        free = free_cores()
        if free is not None:
            return max(1, min(budget, int(free + 0.5)))
    return budget


def matmul(
    a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None, *, flops: int | None = None
) -> np.ndarray:
    """``a @ b`` (``b`` 2-D) on the threads its size earns (see :func:`set_num_threads`).

    A product below the threshold runs on one thread; after it BLAS is set back to
    what a large product gets (the budget, or on a busy machine the cores other
    processes leave free, see :func:`free_cores`), so that code outside layernet
    finds BLAS at the budget on a quiet machine.
    For a stack of products (``a`` and ``b`` with leading axes, which NumPy runs
    as one BLAS product each), ``flops`` gives the operations of one of them
    (by default those of ``a[..., i, :, :] @ b[..., i, :, :]`` when ``b`` has
    more than 2 dims): each gets the threads its own size earns.
    """
    if _State.setters is None:
        _lookup()
    if flops is None:  # (a stack of products: one of them)
        rows = a.size if b.ndim == 2 else a.shape[-2] * a.shape[-1]
        flops = 2 * rows * b.shape[-1]
    n = _count(flops)
    if n != _State.current:
        _sync()  # before switching: a count set behind this module's back becomes the budget
        n = _count(flops)
    if n == _State.current:  # (a count set behind this module's back is used as it is)
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    _set_blas(n)
    if getattr(_HELD_DEPTH, "n", 0):  # inside a step: the next product that needs another sets it
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    try:
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    finally:
        _set_blas(_between())


def _count(flops: int) -> int:
    """The threads a product of ``flops`` gets now (the budget with the fast paths off)."""
    if not _ops.FAST_PATHS:
        return _State.budget or 1
    if flops < MIN_PARALLEL_FLOPS or _State.budget == 1:  # threads_for's first rule, inline
        return 1
    return threads_for(flops)


def _between() -> int:
    """Where BLAS sits between products: what a large product gets now (the budget, or on
    a busy machine the cores left free, so that NumPy's own products, a matrix-vector sum
    in a normalisation for instance, do not stall on a busy core either)."""
    return _count(MIN_PARALLEL_FLOPS)


def rescan() -> None:
    """Look the BLAS libraries up again, keeping the budget (after one more was loaded).

    SciPy's BLAS (``scipy.linalg.blas``) is a library of its own, loaded on first
    use; its thread count is then set along with NumPy's.
    """
    if _State.setters is None:
        _lookup()
        return
    _sync()
    from . import distributed

    setters = distributed._blas_functions((*_OPENBLAS_SETTERS, _MKL_SETTER))
    for fn in setters:
        fn.restype = None
    _State.setters = setters
    _set_blas(_State.budget or 1)


#: Depth of this thread's `held()` blocks (per thread: a block in one thread does not
#: keep another thread's products from setting BLAS back).
_HELD_DEPTH = threading.local()


class _Held:
    """The context manager :func:`held` returns (a class: cheaper than a generator)."""

    __slots__ = ()

    def __enter__(self) -> None:
        _HELD_DEPTH.n = getattr(_HELD_DEPTH, "n", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _HELD_DEPTH.n -= 1
        if not _HELD_DEPTH.n and _State.setters is not None:
            rest = _between()
            if _State.current != rest:
                _set_blas(rest)


_HELD = _Held()


def held() -> contextlib.AbstractContextManager[None]:
    """A block of layernet's own work (a training, test or prediction step) whose products
    leave BLAS at their thread count.

    Outside such a block every product that runs on fewer threads than a large one
    gets sets BLAS back after it (two calls into BLAS per product); inside, BLAS stays
    at the last product's count until a product needs another, and is set back once
    when the outermost block ends. NumPy's own products inside the block run on at most
    the load-adapted count (never more threads than a large product would get). Blocks
    nest; results do not change (only the number of threads does).

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> with ln.threads.held():
    ...     y = ln.threads.matmul(np.ones((2, 3)), np.ones((3, 4)))
    >>> y.shape
    (2, 4)
    """
    return _HELD


@contextlib.contextmanager
def sized(flops: int) -> Iterator[None]:
    """Run the block's BLAS calls on the threads that a product of ``flops`` earns."""
    if _State.setters is None:
        _lookup()
    _sync()
    n = _count(flops)
    if n == _State.current:
        yield
        return
    budget = _State.current
    _set_blas(n)
    try:
        yield
    finally:
        _set_blas(budget)  # type: ignore[arg-type]


if ADAPT_TO_LOAD:
    free_cores()  # the first reading: later ones compare with it
