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

**Work BLAS does not share.** A convolution's patch copies, the adds of its input
gradient and a pooling pass are memory-bound NumPy work that runs on one core
whatever BLAS's count. When it is large (``MIN_SPLIT_SIZE``) and independent per
sample, layers hand it to :func:`over_batch`, which runs one part of the batch on
each core a large product would get (NumPy releases the GIL in copies, ufuncs and
products). OpenBLAS's idle threads spin for about 0.1 s after each product before
they sleep, and a thread sharing a core with one runs at half speed, so layernet
shortens that spin (``BLAS_SPIN``) when it first sets a thread count.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _ops
from ._validation import check_positive_int

__all__ = [
    "ADAPT_TO_LOAD",
    "BLAS_SPIN",
    "LOAD_INTERVAL",
    "MIN_PARALLEL_FLOPS",
    "MIN_SPLIT_SIZE",
    "free_cores",
    "get_num_threads",
    "held",
    "matmul",
    "over_batch",
    "set_num_threads",
    "split_count",
]

#: Products with fewer floating-point operations (``2 m k n``) run on one thread.
#: Measured on a 2-core machine shared with other work (same-run comparisons): two
#: threads gain nothing below about 1.3 Mflop (OpenBLAS itself stays on one there),
#: 35-45 % from 2.5 Mflop on an idle core, but lose up to 2x on products of 2-20 Mflop
#: when another process holds a core; from about 8 Mflop the gain on an idle core is
#: worth the risk.
MIN_PARALLEL_FLOPS = 8_000_000

#: Fewest array entries (read and written, every pass counted) a batch's per-sample
#: memory-bound work must touch before :func:`over_batch` splits it between threads.
#: Measured on 2 cores (AMD EPYC), the thresholds alternating inside one process, a
#: LeNet-5 training step against no split at all: at batch 256 0.80 with 2 M or 4 M
#: (its patch copies, the second convolution's input gradient and the first max-pool
#: both ways split), at batch 64 1.04 with 2 M and 1.00 with 4 M (nothing split: its
#: parts are too short to pay for the hand-over); the MNIST-1D CNN epoch (at most
#: 75 k entries) is never split.
MIN_SPLIT_SIZE = 4_000_000

#: How long an idle OpenBLAS thread spins before it sleeps: ``2**BLAS_SPIN`` processor
#: cycles (``OPENBLAS_THREAD_TIMEOUT``). OpenBLAS's own default, ``2**28`` cycles, is
#: about 0.1 s: after every multi-threaded product its threads keep the other cores
#: busy for that long, and a thread of :func:`over_batch` sharing a core with one runs
#: at half speed (2 cores, the per-tap input gradient of LeNet-5's second convolution
#: at batch 256, split in two: 3.48 ms with the default spin, 1.95 ms with ``2**20``,
#: serial 3.13). ``2**20`` cycles (under a millisecond) still keeps them awake between
#: the back-to-back products of a recurrent layer's steps. Applied when layernet first
#: sets a thread count, to the OpenBLAS libraries loaded then (and at :func:`rescan`),
#: unless ``OPENBLAS_THREAD_TIMEOUT`` is set in the environment; ``None`` leaves
#: OpenBLAS as it is.
BLAS_SPIN: int | None = 20

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
    split: int = 0  # depth of over_batch() blocks: their products run on one BLAS thread


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
        _shorten_spin()
        budget = _env_budget()
        if budget is None:
            budget = distributed.get_blas_threads() or os.cpu_count() or 1
        _State.budget = budget
        _set_blas(budget)
    return _State.setters


#: OpenBLAS libraries whose idle spin was already shortened (by path).
_SPUN: set[str] = set()


def _shorten_spin() -> None:
    """Give every loaded OpenBLAS ``BLAS_SPIN`` as its idle spin (see there)."""
    if BLAS_SPIN is None or os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip():
        return
    from . import distributed

    for path in distributed._loaded_libraries():
        if path in _SPUN or "openblas" not in os.path.basename(path).lower():
            continue
        _SPUN.add(path)
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        names = ("openblas_read_env", "openblas_thread_timeout", "blas_thread_shutdown_")
        read, timeout, shutdown = (getattr(lib, name, None) for name in names)
        if read is None or timeout is None or shutdown is None:
            continue
        # OpenBLAS reads the spin from its environment variable when it starts its
        # threads: set it for the reading only, then stop the threads, which start
        # again with it at the next multi-threaded product.
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(BLAS_SPIN)
        try:
            read()
        finally:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
        timeout.restype = ctypes.c_int
        if timeout() == BLAS_SPIN:
            shutdown()


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
    Floating-point flags raised inside BLAS are not turned into NumPy warnings (its
    kernels may raise them on memory they read past the operands); a product that
    overflows shows as inf or NaN in its result.
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
        return _ops.product(a, b, out)
    _set_blas(n)
    if getattr(_HELD_DEPTH, "n", 0):  # inside a step: the next product that needs another sets it
        return _ops.product(a, b, out)
    try:
        return _ops.product(a, b, out)
    finally:
        _set_blas(_between())


def _count(flops: int) -> int:
    """The threads a product of ``flops`` gets now (the budget with the fast paths off)."""
    if not _ops.FAST_PATHS:
        return _State.budget or 1
    if _State.split:  # the batch's parts run side by side, each product on one thread
        return 1
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
    _shorten_spin()
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


class _Sized:
    """The context manager :func:`sized` returns (a class: cheaper than a generator)."""

    __slots__ = ("active", "flops", "restore")

    def __init__(self, flops: int) -> None:
        self.flops = flops
        self.restore: int | None = None
        self.active = False

    def __enter__(self) -> None:
        if self.active:
            raise RuntimeError("threads.sized: a block cannot be entered while it is active.")
        self.active = True
        if _State.setters is None:
            _lookup()
        _sync()
        n = _count(self.flops)
        if n != _State.current:
            self.restore = _State.current
            _set_blas(n)

    def __exit__(self, *exc: object) -> None:
        self.active = False
        if self.restore is not None:
            _set_blas(self.restore)
            self.restore = None


def sized(flops: int) -> contextlib.AbstractContextManager[None]:
    """Run the block's BLAS calls on the threads that a product of ``flops`` earns.

    The returned block may be entered again once it has ended, not while it is active
    (a nested ``with`` on the same object raises ``RuntimeError``); each thread makes
    its own.
    """
    return _Sized(flops)


class _Pool:
    """The threads :func:`over_batch` hands parts to (made on first use, and again in a
    forked child, where the parent's threads do not exist)."""

    executor: concurrent.futures.ThreadPoolExecutor | None = None
    pid: int = 0
    workers: int = 0


def _executor(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    pid = os.getpid()
    if _Pool.executor is None or _Pool.pid != pid or _Pool.workers < workers:
        if _Pool.executor is not None and _Pool.pid == pid:
            _Pool.executor.shutdown(wait=False)
        _Pool.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="layernet-batch"
        )
        _Pool.pid, _Pool.workers = pid, workers
    return _Pool.executor


def split_count(n: int, size: int) -> int:
    """Into how many parts :func:`layernet.threads.over_batch` splits a batch's work now.

    Parameters
    ----------
    n : int
        Samples in the batch.
    size : int
        Array entries the work reads and writes, every pass counted.

    Returns
    -------
    int
        One when ``size < MIN_SPLIT_SIZE``, with fewer than two samples, with the
        fast paths off or inside another split; else the threads a large product
        gets now (the budget, or on a busy machine the cores other processes left
        free, see :func:`layernet.threads.free_cores`), at most ``n``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.threads.split_count(64, 1000)  # too little work to hand over
    1
    """
    if n < 2 or size < MIN_SPLIT_SIZE or _State.split or not _ops.FAST_PATHS:
        return 1
    if _State.setters is None:
        _lookup()
    _sync()  # a count set from outside (a data-parallel rank's one thread) is the budget
    if _State.budget == 1:
        return 1
    return min(n, threads_for(MIN_PARALLEL_FLOPS))


def over_batch(fn: Callable[[slice], object], n: int, size: int) -> None:
    """Call ``fn(part)`` for consecutive slices covering ``range(n)``, side by side.

    For a layer's work that is independent per sample (a forward pass, an input
    gradient; never a sum over the batch) and memory-bound: NumPy's copies, ufuncs
    and products release the GIL, so the parts run on all the cores layernet may
    use, where BLAS's threads would leave that work on one. The calling thread
    takes the first part. Each sample's arithmetic is the same whatever the split,
    so the results are too.

    Parameters
    ----------
    fn : callable
        ``fn(part)`` does the work of the samples ``part`` (a ``slice``), writing
        into arrays made before the call (a :class:`~layernet.Workspace` is not
        shared between threads). Products inside run on one BLAS thread.
    n : int
        Samples in the batch.
    size : int
        Array entries the work reads and writes (see :func:`layernet.threads.split_count`, which
        decides the number of parts).

    Raises
    ------
    Exception
        What a part raised (the calling thread's part first), once every part
        has finished.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> x, y = np.arange(12.0).reshape(4, 3), np.empty((4, 3))
    >>> ln.threads.over_batch(lambda b: np.multiply(x[b], 2, out=y[b]), 4, x.size)
    >>> y[-1]
    array([18., 20., 22.])
    """
    _run_parts(fn, n, split_count(n, size))


def _run_parts(fn: Callable[[slice], object], n: int, parts: int) -> None:
    if parts == 1:
        fn(slice(0, n))
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    if _State.current != 1:
        _set_blas(1)
    _State.split += 1
    try:
        pool = _executor(parts - 1)
        futures = [pool.submit(fn, slice(bounds[i], bounds[i + 1])) for i in range(1, parts)]
        try:
            fn(slice(bounds[0], bounds[1]))
        finally:
            concurrent.futures.wait(futures)
        for f in futures:
            f.result()
    finally:
        _State.split -= 1
        if not getattr(_HELD_DEPTH, "n", 0):
            _set_blas(_between())


if ADAPT_TO_LOAD:
    free_cores()  # the first reading: later ones compare with it
