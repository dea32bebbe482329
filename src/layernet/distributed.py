r"""Data-parallel training over MPI: one copy of the model per process, each batch split.

Launch the same script on ``P`` processes (ranks) and pass a
:class:`~layernet.DataParallel` strategy to :meth:`~layernet.training.trainer.Trainer.fit`,
:meth:`~layernet.training.trainer.Trainer.evaluate` or
:meth:`~layernet.training.trainer.Trainer.predict`::

    mpiexec -n 4 python train.py

Every rank holds the whole data set and the whole model (SPMD, the design of
Horovod and ChainerMN). :class:`~layernet.DataParallel` is a :class:`Strategy`: it
has no loop of its own but plugs into the Trainer's loops. Each training step takes the
next *global* batch of ``batch_size`` samples, identical on every rank, and the
data path gives rank ``r`` its contiguous share :math:`B_r` (sizes differ by at
most one; a rank's share may be empty). Each rank backpropagates its share; inside
the step, before the optimizer update, one ``Allreduce`` on one flat buffer sums
the weighted gradients, the ``BatchNorm`` moving statistics and the loss, and a
second one the loss tracker's and the metrics' variables; then every rank applies
the same optimizer step to the same weights and reports the same logs. Several
inputs and outputs (lists or dicts of arrays) share the same rows of every array.
Over a generator or :class:`~layernet.utils.PyDataset` every rank reads its own copy
of the source, which must yield the same batches in the same order: each batch is
a global batch, and one small ``Allgather`` before each step checks that every rank
has it, with the same shapes (:meth:`DataParallel.agree_batch`).

MPI comes from the optional ``mpi4py`` package (``pip install -e '.[mpi]'``
brings it with an MPI library); importing :mod:`layernet` never needs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import inspect
import math
import os
import sys
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    pass

__all__ = [
    "DataParallel",
    "DataParallelError",
    "Gathered",
    "GradientStep",
    "Strategy",
    "auto_blas_threads",
    "get_blas_threads",
    "set_blas_threads",
]

#: Environment variables that, when set, mean the user chose the BLAS thread count.
BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_OPENBLAS_SETTERS = (
    "openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
)
_OPENBLAS_GETTERS = tuple(s.replace("set_", "get_") for s in _OPENBLAS_SETTERS)
_MKL_SETTER = "MKL_Set_Num_Threads"


class DataParallelError(RuntimeError):
    """Raised on every rank that did not fail when another rank's step raised.

    The rank that failed raises its own exception; the message here names that
    rank and repeats its exception type and message.

    Parameters
    ----------
    message : str
        Which rank failed, with its exception's type and message.

    Examples
    --------
    >>> import layernet as ln
    >>> issubclass(ln.DataParallelError, RuntimeError)
    True
    """


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(
            "DataParallel needs mpi4py and an MPI library, which layernet does not "
            "install by default; install them with `pip install -e '.[mpi]'` "
            "(or build mpi4py against your system's MPI)."
        ) from exc
    return MPI


def _mpi_available() -> bool:
    """Whether mpi4py can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("mpi4py") is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------- BLAS threads
def _loaded_libraries() -> list[str]:
    """Paths of the shared libraries mapped into this process (Linux; else empty)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[-1].strip() for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if ".so" in os.path.basename(p))


def _blas_functions(names: Iterable[str]) -> list[Any]:
    """The first of ``names`` found in each loaded OpenBLAS or MKL library (ctypes functions)."""
    out: list[Any] = []
    for path in _loaded_libraries():
        base = os.path.basename(path).lower()
        if "openblas" not in base and "mkl_rt" not in base:
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in names:
            fn = getattr(lib, name, None)
            if fn is not None:
                out.append(fn)
                break
    return out


def auto_blas_threads(cores: int, ranks_on_host: int, environ: Mapping[str, str]) -> int | None:
    """BLAS threads per rank by default: None (leave BLAS alone) when one of
    ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` is set, else the
    host's cores divided by the ranks on it, at least 1.

    Examples
    --------
    >>> auto_blas_threads(16, 4, {}), auto_blas_threads(2, 3, {})
    (4, 1)
    >>> auto_blas_threads(16, 4, {"OMP_NUM_THREADS": "2"}) is None
    True
    """
    if any(environ.get(v) for v in BLAS_ENV_VARS):
        return None
    return max(1, cores // max(1, ranks_on_host))


def set_blas_threads(n: int) -> bool:
    """Set the thread count of the BLAS libraries NumPy has loaded (OpenBLAS or MKL).

    Parameters
    ----------
    n : int
        The number of threads (1 for one rank per core in data-parallel runs).

    Returns
    -------
    bool
        Whether a library took the setting (False, for instance, with macOS's
        Accelerate, whose threads cannot be set at run time: set
        ``OMP_NUM_THREADS`` before starting Python there).

    Examples
    --------
    >>> import layernet as ln
    >>> before = ln.distributed.get_blas_threads()
    >>> took = ln.distributed.set_blas_threads(1)
    >>> took in (True, False)
    True
    >>> if before is not None:
    ...     _ = ln.distributed.set_blas_threads(before)
    """
    done = False
    for fn in _blas_functions((*_OPENBLAS_SETTERS, _MKL_SETTER)):
        fn.restype = None
        fn(ctypes.c_int(int(n)))
        done = True
    return done


def get_blas_threads() -> int | None:
    """The thread count of NumPy's OpenBLAS, or None when it cannot be read.

    Returns
    -------
    int or None

    Examples
    --------
    >>> import layernet as ln
    >>> n = ln.distributed.get_blas_threads()
    >>> n is None or n >= 1
    True
    """
    for fn in _blas_functions(_OPENBLAS_GETTERS):
        fn.restype = ctypes.c_int
        return int(fn())
    return None


# ------------------------------------------------------------------------ strategy
class GradientStep:
    """What a training step hands its strategy: this process's samples and their loss.

    :meth:`Strategy.gradient_step` yields one; the Trainer sets ``loss`` to the
    loss of this process's share and, once the ``with`` block ends, reads back the
    loss of the global batch.

    Attributes
    ----------
    size : int
        The samples of this process's share of the global batch (0 for an empty share).
    loss : float
        This share's loss inside the block; the global batch's loss after it.
    """

    __slots__ = ("loss", "size")

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.loss: float = 0.0


class Gathered:
    """What a prediction loop hands its strategy: its outputs and the samples they are for.

    :meth:`Strategy.gather` yields one; the Trainer sets ``outputs`` (``None``
    when this process predicted nothing) and ``rows`` (the index of each output
    row among all the samples); once the ``with`` block ends ``outputs`` holds
    every sample's output, in the samples' order.

    Attributes
    ----------
    outputs : ndarray or None
    rows : ndarray of int64
    """

    __slots__ = ("outputs", "rows")

    def __init__(self) -> None:
        self.outputs: Any = None
        self.rows: np.ndarray = np.zeros(0, np.int64)


class Strategy:
    r"""How the Trainer's loops run: in one process (this class) or data-parallel.

    The Trainer's ``fit``, ``evaluate`` and ``predict`` have one loop each, and
    call a strategy at fixed points of it; this base class is the one-process
    strategy, where every call changes nothing. :class:`~layernet.DataParallel` overrides
    the calls to share each global batch between MPI ranks and reduce inside the
    steps. The calls, in the order ``fit`` makes them:

    1. :meth:`agree` (the rank-agreement handshake), then :meth:`begin_fit`
       (rank 0's weights, optimizer state and seed on every rank);
    2. for each step, the data path takes :meth:`shard` of the global batch; the
       training step computes this share's gradients inside :meth:`gradient_step`
       (the gradients, the non-trainable variables and the loss are reduced when
       the block ends, before the optimizer update) and updates the loss tracker
       and metrics inside :meth:`metrics_step` (their variables are reduced when it
       ends, before the logs are read); after ``on_train_batch_end``,
       :meth:`should_stop` decides whether the epoch ends;
    3. after ``on_epoch_end``, :meth:`end_epoch`.

    ``evaluate`` calls :meth:`agree`, :meth:`shard` and :meth:`metrics_step` (in
    every test step); ``predict`` calls :meth:`agree`, :meth:`shard` and
    :meth:`gather`. Over a generator or PyDataset the data path also calls
    :meth:`agree_batch` before each step, then takes :meth:`shard` of the batch.

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of processes (0 and 1 here).

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.distributed.Strategy()
    >>> s.rank, s.size, s.is_root, s.shard(5)
    (0, 1, True, slice(0, 5, None))
    """

    rank: int = 0
    size: int = 1

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the process that prints and writes files."""
        return self.rank == 0

    def agree(self, fn: str, entries: Callable[[], dict[str, object]]) -> None:
        """Check that every process was given the same ``entries()`` (one process: nothing).

        Parameters
        ----------
        fn : str
            The calling method (``"fit"``, ``"evaluate"``, ``"predict"``).
        entries : callable returning a dict
            Builds the values to compare (called only when there is something to
            compare them with).
        """

    def begin_fit(self, model: Any, seed: int) -> int:
        """Make every process start ``fit`` alike; returns the seed of the run (``seed`` here)."""
        return seed

    def shard(self, n: int) -> slice:
        """This process's contiguous share of ``n`` items (all of them here)."""
        return slice(0, n)

    def gradient_step(
        self, model: Any, size: int
    ) -> contextlib.AbstractContextManager[GradientStep]:
        """The scope of a training step's forward and backward on this process's share.

        Parameters
        ----------
        model : Trainer
            Its ``trainable_gradients`` and ``state_variables`` are what
            the block computes.
        size : int
            The samples of this process's share.

        Yields
        ------
        GradientStep
            Set its ``loss`` in the block; after the block it holds the global loss.
        """
        return _Unchanged(GradientStep(size))

    def metrics_step(self, model: Any, size: int) -> contextlib.AbstractContextManager[None]:
        """The scope of a step's updates of ``model.metrics_variables`` with ``size`` samples
        of this process (nothing to reduce here)."""
        return _Unchanged(None)

    def agree_batch(
        self,
        owner: str,
        index: int,
        where: str,
        spec: str | None,
        error: BaseException | None,
    ) -> bool:
        """Whether a source of batches has a batch ``index`` (here: whether ``spec`` is given).

        The data path calls it before each step over a generator or PyDataset,
        with a description of the batch it read (``spec``, from
        :func:`~layernet.training.data_adapters.batch_spec`; None when its source
        ended) or the exception reading or preparing it raised (raised here).

        Parameters
        ----------
        owner : str
            The call reading the source (``"fit"``), for messages.
        index : int
            The batch's index in the pass (from 0).
        where : str
            The end of the batch's description in messages (``" of epoch 2"``).
        spec : str or None
        error : Exception or None
        """
        if error is not None:
            raise error
        return spec is not None

    def should_stop(self, model: Any) -> bool:
        """Whether the epoch ends after this step: ``model.stop_training``."""
        return bool(model.stop_training)

    def end_epoch(self, model: Any) -> None:
        """Called after ``on_epoch_end``'s callbacks (nothing to do here)."""

    def gather(self, n: int | None = None) -> contextlib.AbstractContextManager[Gathered]:
        """The scope of a prediction loop over ``n`` samples (None: as many as the loop
        predicts, for a source of batches); its outputs are all of them here."""
        return _Unchanged(Gathered())


class _Unchanged(contextlib.AbstractContextManager):
    """A scope that gives ``value`` and changes nothing (cheaper than a generator's)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc: object) -> None:
        return None


class DataParallel(Strategy):
    r"""Synchronous data-parallel training over the ranks of an MPI communicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The ranks that train together; default ``MPI.COMM_WORLD`` (every process
        ``mpiexec`` started). Every rank of ``comm`` must make the same calls.
    blas_threads : int, "auto" or None, default "auto"
        BLAS threads per rank. ``"auto"``: the cores this host gives the ranks on
        it (the union of their CPU affinities) divided by the number of those
        ranks, at least 1 -- unless ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or
        ``MKL_NUM_THREADS`` is set, which is then left to rule. An int sets that
        many; ``None`` leaves BLAS alone. With one rank nothing is changed.

    Attributes
    ----------
    comm : mpi4py.MPI.Comm
    rank, size : int
        This process's rank in ``comm`` and the number of ranks.
    local_rank, local_size : int
        The same among the ranks on this host.
    is_root : bool
        Whether this is rank 0: the rank that prints progress and writes files.
    blas_threads : int or None
        The BLAS thread count this strategy set (None: left as it was).

    Notes
    -----
    **The global batch.** ``batch_size`` in ``fit`` is the number of samples one
    optimizer step sees, summed over ranks. A global batch :math:`B` of
    :math:`n = |B|` samples is cut into contiguous shares :math:`B_r` of sizes
    :math:`\lfloor n/P\rfloor` or :math:`\lceil n/P\rceil` (the first
    :math:`n \bmod P` ranks take one more; with :math:`n < P` some shares are empty).
    Every loss averages over its batch, so with :math:`z_r` the loss of share
    :math:`B_r` and :math:`n_r = |B_r|`

    .. math::

        z = \frac1n\sum_{i\in B} \ell_i = \sum_r \frac{n_r}{n}\,z_r ,\qquad
        \frac{\partial z}{\partial\theta} = \sum_r \frac{n_r}{n}\,
            \frac{\partial z_r}{\partial\theta},

    which is what the ``Allreduce`` computes: the gradient of the whole global
    batch, as in one process, up to float rounding. The loss tracker and every
    compiled metric keep sums :math:`v` (totals, counts, confusion counts); with
    :math:`\Delta v_r` what rank :math:`r` added to them in a step, every rank
    continues from :math:`v + \sum_r \Delta v_r`, the state one process reaches
    after the same global batch. ``BatchNorm`` normalises each rank's share with that share's
    statistics (as PyTorch's ``DistributedDataParallel`` without ``SyncBatchNorm``);
    its running statistics are averaged with the weights :math:`n_r/n`, so they
    stay identical on every rank. ``Dropout`` draws each rank's masks from that
    rank's copy of the layer's generator; the copies start alike, so shares of
    equal size get equal masks.

    **Agreement.** Every ``fit``, ``evaluate`` and ``predict`` starts with a
    handshake in which the ranks check they were given the same model, compile
    settings, data and arguments (:meth:`agree`). Training starts from rank 0's
    weights and optimizer state (broadcast); shuffling depends only on the seed
    (rank 0's) and the epoch; logs are global, so callbacks see the same values
    everywhere. A stop asked for by a callback on any rank is agreed on after the
    step's ``on_train_batch_end`` (:meth:`should_stop`) or at the end of the epoch;
    at each epoch's end the ranks also compare checksums of their weights.

    **Errors.** An exception inside a rank's share of a step (training, test or
    prediction) is reported through the step's reduction: that rank raises it,
    every other rank raises :class:`DataParallelError` with its message. Any
    other exception raised on one rank only (in a callback, say) is printed with
    its traceback, and
    ``MPI_Abort`` ends every rank at once. With several ranks, an exception that
    ends the script anywhere (outside ``fit`` too) also ends every rank this way.

    **One loop.** The strategy has no loop of its own: ``fit``, ``evaluate`` and
    ``predict`` run the Trainer's loops, the same in one process and on every
    rank, and call the methods of :class:`~layernet.distributed.Strategy` (the
    data path takes each rank's :meth:`shard` of every global batch; :meth:`gradient_step` and
    :meth:`metrics_step` reduce inside the steps). So every rank makes the
    callback calls one process makes, in the same order, with the same logs:
    the loss and every compiled metric (``Precision``, ``AUC`` and other
    stateful metrics too) are those of the global batches. A ``train_step``
    overridden in a subclass keeps this as long as it trains through
    ``super().train_step(data)``.

    Examples
    --------
    A script to launch as ``mpiexec -n 4 python train.py``; started as ``python
    train.py`` it has one rank and trains as plain ``fit`` does:

    >>> import numpy as np
    >>> import layernet as ln
    >>> strategy = ln.DataParallel()
    >>> strategy.rank, strategy.size
    (0, 1)
    >>> model = ln.Sequential([ln.Dense(3, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> x = np.random.default_rng(0).standard_normal((64, 2)).astype("float32")
    >>> history = model.fit(x, x[:, :1] * [1, 2, 3], epochs=3, batch_size=16, seed=0,
    ...                     verbose=0, distribute=strategy)
    >>> round(history.history["loss"][-1], 4) < round(history.history["loss"][0], 4)
    True
    """

    def __init__(self, comm: Any = None, *, blas_threads: int | str | None = "auto") -> None:
        mpi = _import_mpi()
        if comm is None:
            comm = mpi.COMM_WORLD
        if not isinstance(comm, mpi.Comm) or comm == mpi.COMM_NULL:
            raise TypeError(
                f"DataParallel: invalid value for `comm`: expected an mpi4py "
                f"communicator (e.g. MPI.COMM_WORLD), received {comm!r}."
            )
        if not (
            blas_threads is None
            or blas_threads == "auto"
            or (
                isinstance(blas_threads, int)
                and not isinstance(blas_threads, bool)
                and blas_threads > 0
            )
        ):
            raise ValueError(
                f"DataParallel: invalid value for `blas_threads`: expected a positive "
                f"int, 'auto' or None, received {blas_threads!r}."
            )
        self._mpi = mpi
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        node = comm.Split_type(mpi.COMM_TYPE_SHARED, key=self.rank)
        try:
            self.local_rank: int = node.Get_rank()
            self.local_size: int = node.Get_size()
            cores = _host_cores(node)
        finally:
            node.Free()
        self.blas_threads: int | None = None
        if self.size > 1 and blas_threads is not None:
            if blas_threads == "auto":
                self.blas_threads = auto_blas_threads(cores, self.local_size, os.environ)
            else:
                self.blas_threads = int(blas_threads)
            if self.blas_threads is not None and not set_blas_threads(self.blas_threads):
                self.blas_threads = None
        if self.size > 1:
            _abort_on_uncaught_exceptions(comm)

    def __repr__(self) -> str:
        return (
            f"DataParallel(rank={self.rank}, size={self.size}, local_size={self.local_size}, "
            f"blas_threads={self.blas_threads})"
        )

    # ---------------------------------------------------------------- sharing
    def shard(self, n: int) -> slice:
        """This rank's contiguous share of ``n`` items (the first ``n % size`` ranks get one more).

        With 3 ranks and ``n = 8`` the shares are ``[0:3]``, ``[3:6]`` and ``[6:8]``.
        """
        return _shard(n, self.rank, self.size)

    def broadcast_model(self, model: Any) -> None:
        """Give every rank rank 0's weights (parameters and state) and optimizer state.

        Parameters
        ----------
        model : Sequential
            Built, on every rank; rank 0's weights and optimizer state win.
        """
        weights = model.get_weights()
        sizes = [w.size for w in weights]
        flat = np.empty(sum(sizes), np.float64)
        if self.is_root:
            _pack(flat, weights)
        self.comm.Bcast(flat, root=0)
        offsets = np.cumsum([0, *sizes])
        model.set_weights(
            [
                flat[a:b].reshape(w.shape).astype(w.dtype)
                for w, a, b in zip(weights, offsets[:-1], offsets[1:], strict=True)
            ]
        )
        opt = model.optimizer
        if opt is not None:
            iterations, state = self.comm.bcast((opt.iterations, opt.state), root=0)
            if not self.is_root:
                opt.iterations = iterations
                opt.state = state

    def checksum(self, model: Any) -> int:
        """CRC-32 of every weight's bytes (equal on every rank while they agree)."""
        crc = 0
        for w in model.get_weights():
            crc = zlib.crc32(np.ascontiguousarray(w).reshape(-1).view(np.uint8).data, crc)
        return crc

    # ----------------------------------------------------------------- errors
    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Run a block that every rank enters; a one-rank failure inside ends every rank.

        An exception that every rank knows of (raised through a reduction) passes
        through; any other one is printed with its traceback on stderr, then
        ``MPI_Abort`` ends all ranks, so that none waits forever in a collective
        call the failed rank will never make.
        """
        try:
            yield
        except BaseException as exc:
            if self.size == 1 or _is_agreed(exc):
                raise
            text = "".join(traceback.format_exception(exc))
            sys.stdout.flush()
            sys.stderr.write(
                f"layernet.distributed: rank {self.rank} of {self.size} failed in "
                f"{what}; ending every rank.\n{text}"
            )
            _abort(self.comm)
            raise  # pragma: no cover - Abort does not return

    def _allreduce(self, buf: np.ndarray, error: BaseException | None) -> None:
        """Sum ``buf`` over ranks in place; its last entry carries the error flags."""
        buf[-1] = 1.0 if error is not None else 0.0
        self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)
        if buf[-1] > 0:
            self._raise_agreed(error)

    def _raise_agreed(self, error: BaseException | None) -> None:
        note = None if error is None else f"{type(error).__name__}: {error}"
        notes = self.comm.allgather(note)
        if error is not None:
            _agree(error)
            raise error
        failed = [(r, n) for r, n in enumerate(notes) if n is not None]
        rank, note = failed[0]
        exc = DataParallelError(f"rank {rank} of {self.size} failed: {note}")
        _agree(exc)
        raise exc

    def check(self, error: BaseException | None) -> None:
        """A collective check that no rank failed; raise the failure everywhere if one did."""
        self._allreduce(np.zeros(1), error)

    # ------------------------------------------------- the Trainer's calls
    def agree(self, fn: str, entries: Callable[[], dict[str, object]]) -> None:
        """The strategy's first step: every rank checks it was given what the others were.

        One small collective (``layernet._agreement.agree``); ranks given
        different models, compile settings, data or arguments all raise the same
        :class:`DataParallelError`, naming what differs.
        """
        from ._agreement import agree  # (it imports this module)

        agree(self.comm, fn, entries())

    def begin_fit(self, model: Any, seed: int) -> int:
        """Give every rank rank 0's weights and optimizer state; return rank 0's ``seed``."""
        self.broadcast_model(model)
        return int(self.comm.bcast(int(seed), root=0))

    @contextlib.contextmanager
    def gradient_step(self, model: Any, size: int) -> Iterator[GradientStep]:
        r"""Reduce a training step's gradients, state changes and loss over the ranks.

        The block computes this rank's share (``size`` samples, possibly none):
        ``model.trainable_gradients`` and the loss :math:`z_r` it sets on the
        yielded :class:`~layernet.distributed.GradientStep`, and it may change
        ``model.state_variables`` (``BatchNorm``'s moving statistics). When
        it ends, one ``Allreduce`` on one flat float64 buffer sums
        :math:`n_r g_r`, :math:`n_r \Delta s_r`, :math:`n_r z_r`, :math:`n_r` and an
        error flag; every rank then holds the global batch's gradients
        :math:`\sum_r n_r g_r / n`, its loss, and states moved by the weighted mean
        change (left as they were when no rank changed them). Gradients are left
        alone when the global loss is not finite (no update follows). An exception
        in the block is raised on its rank, and :class:`DataParallelError` on the
        others, after the reduction.
        """
        step = GradientStep(size)
        grads = model.trainable_gradients
        states = model.state_variables
        kept = [s.copy() for s in states]
        error: BaseException | None = None
        try:
            yield step
        except Exception as exc:
            error = exc
        n_grads = sum(g.size for g in grads)
        n_states = sum(s.size for s in states)
        loss_at = n_grads + n_states
        buf = np.zeros(loss_at + 3)  # gradients, state changes, loss sum, samples, error flag
        if error is None and step.size:
            z = float(step.loss)
            buf[loss_at] = z * step.size
            if math.isfinite(z):
                _pack(buf[:n_grads], grads, step.size)
            changes = [s - k for s, k in zip(states, kept, strict=True)]
            _pack(buf[n_grads:loss_at], changes, step.size)
        buf[loss_at + 1] = step.size
        self._allreduce(buf, error)
        n = buf[loss_at + 1]
        buf[:loss_at] /= n
        step.loss = float(buf[loss_at] / n)
        if math.isfinite(step.loss):
            _unpack(buf[:n_grads], grads)
        offset = n_grads
        for s, k in zip(states, kept, strict=True):
            np.add(k, buf[offset : offset + s.size].reshape(s.shape), out=s, casting="unsafe")
            offset += s.size

    @contextlib.contextmanager
    def metrics_step(self, model: Any, size: int) -> Iterator[None]:
        """Sum what the ranks add to ``model.metrics_variables`` in the block.

        The loss tracker and every compiled metric keep sums (weighted totals,
        counts, confusion counts), so adding every rank's change makes them, on
        every rank, the state one process would have after the same global batch:
        ``Mean``-like metrics and stateful ones (``Precision``, ``AUC``, ...) alike.
        One ``Allreduce`` per step; an exception in the block is agreed on as in
        :meth:`gradient_step`. A metric that creates its state at its first update
        (``F1Score``, ``AUC(multi_label=True)`` without ``num_labels``) costs two
        small collectives more in that step, one before it: every rank must have
        samples (``size > 0``) then, or none of them updates.

        Raises
        ------
        ValueError
            On every rank, before the block, when a metric has no state yet and
            some rank's share is empty (a first batch with fewer samples than ranks).
        """
        # (the same on every rank: their metrics' states agree at the start of a run,
        # which the handshake checks, and change alike in every step)
        unmade = [m.name for ms in model.output_metrics for m in ms if not m.variables]
        if unmade:
            votes = np.array([1.0 if size == 0 else 0.0, 0.0])  # empty shares, error flag
            self._allreduce(votes, None)
            if votes[0] > 0:
                raise _agree(
                    ValueError(
                        f"DataParallel: the metric(s) {unmade} create their state at their "
                        f"first update, and {int(votes[0])} rank(s) have no samples in this "
                        f"batch; give every rank samples in the first batch (at least "
                        f"{self.size}, one per rank)."
                    )
                )
        variables = model.metrics_variables
        kept = [v.copy() for v in variables]
        error: BaseException | None = None
        try:
            yield
        except Exception as exc:
            error = exc
        buf = np.zeros(sum(v.size for v in variables) + 1)  # changes, error flag
        if error is None:
            _pack(buf[:-1], [v - k for v, k in zip(variables, kept, strict=True)])
        self._allreduce(buf, error)
        offset = 0
        for v, k in zip(variables, kept, strict=True):
            np.add(k, buf[offset : offset + v.size].reshape(v.shape), out=v)
            offset += v.size
        if unmade:  # the states made in the block (from zero), summed in their turn
            known = {id(v) for v in variables}
            made = [v for v in model.metrics_variables if id(v) not in known]
            total = np.zeros(sum(v.size for v in made) + 1)
            _pack(total[:-1], made)
            self._allreduce(total, None)
            _unpack(total[:-1], made)

    def should_stop(self, model: Any) -> bool:
        """Whether any rank set ``model.stop_training``; sets it on every rank alike."""
        buf = np.array([1.0 if model.stop_training else 0.0, 0.0])  # stop votes, error flag
        self._allreduce(buf, None)
        model.stop_training = bool(buf[0] > 0)
        return model.stop_training

    def agree_batch(
        self,
        owner: str,
        index: int,
        where: str,
        spec: str | None,
        error: BaseException | None,
    ) -> bool:
        """Whether every rank's source has a batch ``index``, of the same shapes.

        Every rank reads its own copy of the source; before each step the ranks
        compare what they read in one ``Allgather`` of two integers per rank (a
        status and a digest of ``spec``), so that a source that ends early on one
        rank, or yields a batch of other shapes, cannot leave the other ranks
        waiting in the step's collectives.

        Returns
        -------
        bool
            True when every rank has the batch, with equal ``spec``; False when
            every rank's source ended.

        Raises
        ------
        DataParallelError
            On every rank, when some ranks have the batch and others do not, or
            their batches' shapes differ: the message names the batch and what
            each rank has.
        Exception
            When reading or preparing the batch raised on some rank (and the
            ranks' batches agree otherwise): that rank raises its exception, the
            others :class:`DataParallelError` with its message.
        """
        status = 2 if error is not None else (0 if spec is None else 1)
        digest = hashlib.blake2b(str(spec).encode(), digest_size=7).digest()
        mine = np.array([status, int.from_bytes(digest, "little")], np.int64)
        every = np.empty((self.size, 2), np.int64)
        self.comm.Allgather(mine, every)
        read = every[every[:, 0] != 2]  # the ranks that read a batch or found the end
        if len(read) and (read != read[0]).any():
            note = None if error is None else f"{type(error).__name__}: {error}"
            views = self.comm.allgather((spec, note))
            raise _agree(DataParallelError(_batches_differ(owner, index, where, views)))
        if (every[:, 0] == 2).any():
            self._raise_agreed(error)
        return bool(every[0, 0] == 1)

    def end_epoch(self, model: Any) -> None:
        """Agree on ``model.stop_training`` (any rank) and on the weights (rank 0's if not)."""
        votes = self.comm.allgather((bool(model.stop_training), self.checksum(model)))
        model.stop_training = any(v[0] for v in votes)
        if len({v[1] for v in votes}) > 1:
            if self.is_root:
                warnings.warn(
                    "DataParallel: the ranks' weights drifted apart (the MPI library's "
                    "sums differ between ranks); every rank takes rank 0's weights.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            self.broadcast_model(model)

    @contextlib.contextmanager
    def gather(self, n: int | None = None) -> Iterator[Gathered]:
        """Every rank's predictions, on every rank, in the samples' order.

        The block predicts this rank's shares and sets the yielded
        :class:`~layernet.distributed.Gathered`'s ``outputs`` (an array, a list
        of arrays for several outputs, or None) and ``rows`` (each output row's
        index among the ``n`` samples; ``n`` None: the samples of every rank's
        rows together); after it, ``outputs`` holds all the rows, each output
        gathered in turn (one ``Allgatherv`` per output and one for the rows). An
        exception in the block is agreed on as in :meth:`gradient_step`.
        """
        got = Gathered()
        error: BaseException | None = None
        try:
            yield got
        except Exception as exc:
            error = exc
        mine = got.outputs if error is None else None
        listed = isinstance(mine, list)  # a model with several outputs
        arrays = None if mine is None else (list(mine) if listed else [mine])
        meta = (
            (0, None, False)
            if arrays is None
            else (
                len(got.rows),
                [(np.dtype(a.dtype).str, tuple(a.shape[1:])) for a in arrays],
                listed,
            )
        )
        views = self.comm.allgather((meta, error is not None))
        if any(failed for _, failed in views):
            self._raise_agreed(error)
        counts = [m[0] for m, _ in views]
        if not any(counts):  # no rank predicted anything
            return
        _, specs, listed = next(m for m, _ in views if m[0])
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        n = sum(counts) if n is None else n
        rows = np.empty(n, np.int64)
        self.comm.Allgatherv(
            np.ascontiguousarray(got.rows, np.int64),
            [rows, counts, displs.tolist(), self._mpi.INT64_T],
        )
        outputs = []
        for k, (dtype_str, shape) in enumerate(specs):
            dtype = np.dtype(dtype_str)
            part = np.empty((0, *shape), dtype) if arrays is None else arrays[k]
            per = int(np.prod(shape, dtype=np.int64))
            flat = np.empty((n, *shape), dtype)
            self.comm.Allgatherv(
                np.ascontiguousarray(part, dtype),
                [
                    flat,
                    [c * per for c in counts],
                    (displs * per).tolist(),
                    self._mpi.Datatype.fromcode(dtype.char),
                ],
            )
            out = np.empty_like(flat)
            out[rows] = flat
            outputs.append(out)
        got.outputs = outputs if listed else outputs[0]


# ------------------------------------------------------------------------ helpers
def _shard(n: int, rank: int, size: int) -> slice:
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def _batches_differ(
    owner: str, index: int, where: str, views: list[tuple[str | None, str | None]]
) -> str:
    """The message for ranks whose sources gave different batches at ``index``.

    ``views`` holds each rank's ``(spec, failure)``: the batch's description, or
    None when its source had ended, and the exception reading it raised, if any.

    Examples
    --------
    >>> from layernet.distributed import _batches_differ
    >>> message = _batches_differ("fit", 3, " of epoch 0", [("x: (8, 5) float64", None),
    ...                                                    (None, None)])
    >>> message.split(": ", 1)[1][:60]
    "the ranks' sources gave different batches at batch 3 of epoc"
    >>> "rank 1 has none (its source ended after 3 batches)" in message
    True
    """
    shown = [
        f"failed reading it ({failure})"
        if failure is not None
        else f"has ({spec})"
        if spec is not None
        else f"has none (its source ended after {index} batches)"
        for spec, failure in views
    ]
    if len(shown) > 2:
        groups: dict[str, list[int]] = {}
        for r, text in enumerate(shown):
            groups.setdefault(text, []).append(r)
        parts = []
        for text, ranks in groups.items():
            if len(ranks) == 1:
                parts.append(f"rank {ranks[0]} {text}")
            else:
                listed = ", ".join(map(str, ranks[:8])) + (", ..." if len(ranks) > 8 else "")
                verb = text.replace("has", "have", 1) if text.startswith("has") else text
                parts.append(f"ranks {listed} {verb}")
    else:
        parts = [f"rank {r} {text}" for r, text in enumerate(shown)]
    return (
        f"{owner}: the ranks' sources gave different batches at batch {index}{where}: "
        + "; ".join(parts)
        + ". Every rank's source must yield the same batches in the same order."
    )


def _host_cores(node: Any) -> int:
    """Cores the ranks on this host may use together: the union of their affinities."""
    try:
        mine = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        mine = list(range(os.cpu_count() or 1))
    cores: set[int] = set()
    for theirs in node.allgather(mine):
        cores.update(theirs)
    return len(cores) or (os.cpu_count() or 1)


def _pack(flat: np.ndarray, arrays: Iterable[np.ndarray], scale: float = 1.0) -> None:
    """Write ``arrays`` (times ``scale``, in float64) one after another into ``flat``."""
    offset = 0
    for a in arrays:
        view = flat[offset : offset + a.size]
        if scale == 1.0:
            view[...] = a.ravel()
        else:
            np.multiply(a.ravel(), scale, out=view, dtype=np.float64)
        offset += a.size


def _unpack(flat: np.ndarray, arrays: Iterable[np.ndarray]) -> None:
    """Copy ``flat`` back into ``arrays`` in place (cast to each array's dtype)."""
    offset = 0
    for a in arrays:
        np.copyto(a, flat[offset : offset + a.size].reshape(a.shape), casting="unsafe")
        offset += a.size


def _agree(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised on every rank at the same point (no need to abort)."""
    exc._layernet_agreed = True  # type: ignore[attr-defined]
    return exc


def _is_agreed(exc: BaseException | None) -> bool:
    return isinstance(exc, DataParallelError) or bool(getattr(exc, "_layernet_agreed", False))


def _abort(comm: Any) -> None:
    """``MPI_Abort`` once what this rank printed has had time to reach the launcher.

    The launcher forwards each rank's output asynchronously and stops forwarding
    when the abort kills the ranks, so the last lines of a traceback written just
    before it could be lost without the short pause.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(0.5)
    comm.Abort(1)


def _abort_on_uncaught_exceptions(comm: Any) -> None:
    """Make an exception that ends this rank's script end every rank (``MPI_Abort``).

    Without this, a rank whose script dies outside ``fit`` (loading its data, say)
    would leave the other ranks waiting in their next collective call forever.
    """
    previous = sys.excepthook
    if getattr(previous, "_layernet_aborts", False):
        return

    def hook(kind, value, tb):
        if _is_agreed(value):  # every rank raises an agreed error and ends by itself
            previous(kind, value, tb)
            return
        sys.stdout.flush()
        sys.stderr.write("".join(traceback.format_exception(kind, value, tb)))
        _abort(comm)

    hook._layernet_aborts = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def resolve(distribute: Any, fn: str) -> Strategy:
    """The strategy the Trainer's loops use for ``distribute``.

    ``distribute`` itself when it spans several ranks; the one-process
    :class:`Strategy` for None or a single rank (which is then plain ``fit``).

    Raises
    ------
    TypeError
        ``distribute`` is neither None nor a :class:`~layernet.DataParallel`.
    """
    if distribute is None:
        return _ONE_PROCESS
    if not isinstance(distribute, DataParallel):
        raise TypeError(
            f"{fn}: invalid value for `distribute`: expected a "
            f"layernet.distributed.DataParallel or None, received {distribute!r}."
        )
    return distribute if distribute.size > 1 else _ONE_PROCESS


def entry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a model method taking ``distribute``: with several ranks, run it guarded."""
    signature = inspect.signature(fn)
    params = signature.parameters
    param = params.get("distribute")
    keyword_only = param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY
    names = frozenset(params)
    positional = sum(
        p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        for p in params.values()
    )

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        # binding the whole signature costs more than a small model's step: only when
        # `distribute` could be positional or an argument is unknown (which then raises
        # here, before any guard, as a TypeError on this rank)
        if keyword_only and len(args) < positional and names.issuperset(kwargs):
            given = kwargs.get("distribute")
        else:
            given = signature.bind_partial(self, *args, **kwargs).arguments.get("distribute")
        dp = resolve(given, fn.__name__)
        if not isinstance(dp, DataParallel):
            return fn(self, *args, **kwargs)
        with dp.guard(fn.__name__):
            return fn(self, *args, **kwargs)

    return wrapper


#: The strategy of every run not given a ``DataParallel`` of several ranks.
_ONE_PROCESS = Strategy()


def is_root(model: Any) -> bool:
    """Whether this process prints and writes for ``model`` (True unless a non-root rank)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is None or strategy.rank == 0
