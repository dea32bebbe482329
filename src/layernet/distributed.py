r"""Data-parallel training over MPI: one copy of the model per process, each batch split.

Launch the same script on ``P`` processes (ranks) and pass a :class:`DataParallel`
strategy to :meth:`~layernet.training.trainer.Trainer.fit`,
:meth:`~layernet.training.trainer.Trainer.evaluate` or
:meth:`~layernet.training.trainer.Trainer.predict`::

    mpiexec -n 4 python train.py

Every rank holds the whole data set and the whole model (SPMD, the design of
Horovod and ChainerMN). Each training step takes the next *global* batch of
``batch_size`` samples, identical on every rank, and gives rank ``r`` its
contiguous share :math:`B_r` (sizes differ by at most one; a rank's share may be
empty). Each rank backpropagates its share; one ``Allreduce`` on one flat buffer
sums the weighted gradients, the loss and the metric sums; then every rank
applies the same optimizer step to the same weights.

MPI comes from the optional ``mpi4py`` package (``pip install -e '.[mpi]'``
brings it with an MPI library); importing :mod:`layernet` never needs it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
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
class DataParallel:
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
    batch, as in one process, up to float rounding. Metrics are combined with the
    same weights. ``BatchNorm`` normalises each rank's share with that share's
    statistics (as PyTorch's ``DistributedDataParallel`` without ``SyncBatchNorm``);
    its running statistics are averaged with the weights :math:`n_r/n`, so they
    stay identical on every rank. ``Dropout`` draws each rank's masks from that
    rank's copy of the layer's generator; the copies start alike, so shares of
    equal size get equal masks.

    **Agreement.** Training starts from rank 0's weights and optimizer state
    (broadcast); shuffling depends only on the seed (rank 0's) and the epoch;
    logs are global, so callbacks see the same values everywhere. A stop asked for
    by a callback on any rank is agreed on in the next step's reduction (that step
    is then dropped on every rank) or at the end of the epoch; at each epoch's end
    the ranks also compare checksums of their weights.

    **Errors.** An exception inside a rank's share of a step is reported through
    the step's reduction: that rank raises it, every other rank raises
    :class:`DataParallelError` with its message. Any other exception raised on
    one rank only (in a callback, say) is printed with its traceback, and
    ``MPI_Abort`` ends every rank at once. With several ranks, an exception that
    ends the script anywhere (outside ``fit`` too) also ends every rank this way.

    **Callbacks.** Every rank runs its callbacks with the same global logs. In a
    step, ``on_train_batch_begin`` runs once the step's reduction is done, just
    before the update.

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

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0, the rank that prints and writes files."""
        return self.rank == 0

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

    # -------------------------------------------------------------- training
    def begin_fit(
        self,
        model: Any,
        x: np.ndarray,
        y: np.ndarray,
        seed: int,
        validation: tuple[np.ndarray, ...] | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> int:
        """Check the ranks agree on the data and model, broadcast rank 0's; return its seed.

        Raises
        ------
        ValueError
            On every rank, when the ranks were given different numbers, shapes or
            values of samples (compared through a checksum of up to 1024 of them),
            or models with different weights' shapes.

        Called by :class:`~layernet.Sequential`'s methods; not for direct use.

        :meta private:
        """
        checks = {
            "number of samples": len(x),
            "sample shape": tuple(x.shape[1:]),
            "target shape": tuple(y.shape[1:]),
            "data checksum": tuple(_sample_checksum(a) for a in (x, y, sample_weight)),
            "validation data checksum": None
            if validation is None
            else tuple(_sample_checksum(a) for a in validation),
            "weight shapes": [tuple(w.shape) for w in model.get_weights()],
        }
        views = self.comm.allgather(checks)
        for r, theirs in enumerate(views):
            for what, value in theirs.items():
                if value != views[0][what]:
                    mismatch = ValueError(
                        f"fit: the ranks were given different data or models: {what} "
                        f"{views[0][what]!r:.200} on rank 0, {value!r:.200} on rank {r}; "
                        f"every rank must pass the whole data set and the same model."
                    )
                    raise _agree(mismatch)
        self.broadcast_model(model)
        return int(self.comm.bcast(int(seed), root=0))

    def train_epoch(
        self,
        model: Any,
        x: np.ndarray,
        y: np.ndarray,
        order: np.ndarray,
        batch_size: int,
        callbacks: Iterable[Any],
        sample_weight: np.ndarray | None = None,
    ) -> dict[str, float]:
        """One epoch of synchronous steps over the global batches of ``order``; global logs.

        Called by :class:`~layernet.Sequential`'s methods; not for direct use.

        :meta private:
        """
        cbs = list(callbacks)
        optimizer, _ = model._require_compiled("fit")
        layout = _Layout(model)
        buf = np.zeros(layout.size)
        sums = np.zeros(layout.n_sums)  # loss, each metric, the metrics' weight
        seen = 0
        logs: dict[str, float] = {}
        for step in range(math.ceil(len(order) / batch_size)):
            idx = order[step * batch_size : (step + 1) * batch_size]
            layout.keep_states()
            out = self._reduce_step(model, layout, buf, x, y, idx, sample_weight)
            if out is None:  # a rank asked to stop after the previous step
                layout.restore_states()
                break
            z, step_sums = out
            for c in cbs:
                c.on_train_batch_begin(step)
            layout.unpack_states(buf)
            if math.isfinite(z):  # never apply a non-finite step
                optimizer.step(layout.unpack_grads(buf))
            sums += step_sums
            seen += len(idx)
            logs = {"loss": sums[0] / seen, **_metric_logs(model.metrics, sums[1:])}
            for c in cbs:
                c.on_train_batch_end(step, {**logs, "loss": z} if not math.isfinite(z) else logs)
        return logs

    def _reduce_step(self, model, layout, buf, x, y, idx, sw) -> tuple[float, np.ndarray] | None:
        n = len(idx)
        local = idx[self.shard(n)]
        nr = len(local)
        weight = nr / n
        buf.fill(0.0)
        error = None
        try:
            if nr:
                xb, yb = x[local], y[local]
                wb = None if sw is None else sw[local]
                z, pred = model._compute_gradients(xb, yb, wb)
                buf[layout.loss] = z * nr
                if math.isfinite(z):
                    layout.pack_grads(buf, weight)
                _pack_metrics(buf[layout.loss + 1 : layout.stop], model.metrics, pred, yb, wb)
            layout.pack_states(buf, weight)
        except Exception as exc:
            error = exc
        buf[layout.stop] = 1.0 if model.stop_training else 0.0
        self._allreduce(buf, error)
        if buf[layout.stop] > 0:
            model.stop_training = True
            return None
        sums = buf[layout.loss : layout.stop].copy()
        return float(sums[0] / n), sums

    def end_epoch(self, model: Any) -> None:
        """Agree on ``model.stop_training`` (any rank) and on the weights (rank 0's if not).

        Called by :class:`~layernet.Sequential`'s methods; not for direct use.

        :meta private:
        """
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

    # ------------------------------------------------------- evaluate, predict
    def evaluate(
        self,
        model: Any,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        sample_weight: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Global loss and metrics: each rank evaluates its share of ``(x, y)``.

        Called by :class:`~layernet.Sequential`'s methods; not for direct use.

        :meta private:
        """
        local = self.shard(len(x))
        nr = local.stop - local.start
        buf = np.zeros(len(model.metrics) + 3)  # loss, each metric, metrics' weight, error
        error = None
        try:
            if nr:
                wb = None if sample_weight is None else sample_weight[local]
                res = model._evaluate_batches(x[local], y[local], batch_size, wb)
                buf[0] = res["loss"] * nr
                c = nr if wb is None else float(np.sum(wb, dtype=np.float64))
                for i, m in enumerate(model.metrics):
                    buf[1 + i] = res[m.name] * c if c else 0.0
                buf[-2] = c
        except Exception as exc:
            error = exc
        self._allreduce(buf, error)
        return {"loss": float(buf[0] / len(x)), **_metric_logs(model.metrics, buf[1:-1])}

    def predict(self, model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Every rank predicts its share of ``x``; every rank returns all predictions.

        Called by :class:`~layernet.Sequential`'s methods; not for direct use.

        :meta private:
        """
        local = self.shard(len(x))
        out_shape = tuple(int(d or 0) for d in model.compute_output_shape((None, *x.shape[1:]))[1:])
        per = int(np.prod(out_shape, dtype=np.int64))
        mine = np.empty((0, *out_shape), model._dtype())
        error = None
        try:
            if local.stop > local.start:
                mine = model.predict(x[local], batch_size=batch_size, verbose=0)
        except Exception as exc:
            error = exc
        self.check(error)
        out = np.empty((len(x), *out_shape), mine.dtype)
        counts = [
            (s.stop - s.start) * per
            for s in (_shard(len(x), r, self.size) for r in range(self.size))
        ]
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        kind = self._mpi.Datatype.fromcode(mine.dtype.char)
        self.comm.Allgatherv(np.ascontiguousarray(mine), [out, counts, displs, kind])
        return out


# ------------------------------------------------------------------------ helpers
def _pack_metrics(
    out: np.ndarray, metrics: list[Any], pred: np.ndarray, y: np.ndarray, w: np.ndarray | None
) -> None:
    """Each metric's value on this share times the share's weight, then that weight.

    A metric is a weighted mean (weighted by the sample weights, or 1 per sample),
    so summing ``value * weight`` and ``weight`` over the ranks and dividing gives
    its value over the global batch.
    """
    c = len(pred) if w is None else float(np.sum(w, dtype=np.float64))
    for i, m in enumerate(metrics):
        m.reset()
        m.update(pred, y, w)
        out[i] = m.result() * c if c else 0.0
    out[len(metrics)] = c


def _metric_logs(metrics: list[Any], sums: np.ndarray) -> dict[str, float]:
    """``{name: value}`` from the summed ``value * weight`` entries and the weight."""
    weight = sums[len(metrics)]
    return {m.name: float(sums[i] / weight) if weight else math.nan for i, m in enumerate(metrics)}


def _shard(n: int, rank: int, size: int) -> slice:
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def _sample_checksum(a: np.ndarray | None, rows: int = 1024) -> int | None:
    """CRC-32 of up to ``rows`` evenly spaced samples of ``a`` (cheap for any size)."""
    if a is None:
        return None
    step = max(1, len(a) // rows)
    return zlib.crc32(np.ascontiguousarray(a[::step]).reshape(-1).view(np.uint8).data)


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
    offset = 0
    for a in arrays:
        view = flat[offset : offset + a.size]
        if scale == 1.0:
            view[...] = a.ravel()
        else:
            np.multiply(a.ravel(), scale, out=view)
        offset += a.size


class _Layout:
    """Where each gradient, state array and scalar sits in a step's flat buffer.

    ``[gradients of trainable parameters | changes of the state arrays in the step |
    loss sum, metric sums, metric weight | stop flag | error flag]``, all float64. State arrays
    (``BatchNorm``'s running statistics, frozen parameters) get the weighted mean of
    the ranks' changes, so arrays no rank changed stay exactly as they were.
    """

    def __init__(self, model: Any) -> None:
        self.keys: list[str] = []
        self.params: list[np.ndarray] = []
        self.grads: list[np.ndarray] = []
        self.states: list[np.ndarray] = []
        for i, layer in enumerate(model.layers):
            if layer.trainable:
                for k, p in layer.params.items():
                    self.keys.append(f"{i}.{layer.name}.{k}")
                    self.params.append(p)
                    self.grads.append(layer.grads[k])
            self.states.extend(layer.state.values())
        self.kept = [s.copy() for s in self.states]
        self.n_grads = sum(g.size for g in self.grads)
        self.n_states = sum(s.size for s in self.states)
        self.loss = self.n_grads + self.n_states
        self.n_sums = len(model.metrics) + 2  # loss, each metric, the metrics' weight
        self.stop = self.loss + self.n_sums
        self.size = self.stop + 2

    def pack_grads(self, buf: np.ndarray, weight: float) -> None:
        _pack(buf[: self.n_grads], self.grads, weight)

    def keep_states(self) -> None:
        for dst, src in zip(self.kept, self.states, strict=True):
            np.copyto(dst, src)

    def restore_states(self) -> None:
        for dst, src in zip(self.states, self.kept, strict=True):
            np.copyto(dst, src)

    def pack_states(self, buf: np.ndarray, weight: float) -> None:
        offset = self.n_grads
        for s, k in zip(self.states, self.kept, strict=True):
            view = buf[offset : offset + s.size]
            np.subtract(s.ravel(), k.ravel(), out=view)
            view *= weight
            offset += s.size

    def unpack_grads(self, buf: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        offset = 0
        for g in self.grads:
            np.copyto(g, buf[offset : offset + g.size].reshape(g.shape))
            offset += g.size
        return {k: (p, g) for k, p, g in zip(self.keys, self.params, self.grads, strict=True)}

    def unpack_states(self, buf: np.ndarray) -> None:
        offset = self.n_grads
        for s, k in zip(self.states, self.kept, strict=True):
            np.add(k, buf[offset : offset + s.size].reshape(s.shape), out=s, casting="unsafe")
            offset += s.size


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


def resolve(distribute: Any, fn: str) -> DataParallel | None:
    """The strategy to use for ``distribute``: None for none or a single rank."""
    if distribute is None:
        return None
    if not isinstance(distribute, DataParallel):
        raise TypeError(
            f"{fn}: invalid value for `distribute`: expected a "
            f"layernet.distributed.DataParallel or None, received {distribute!r}."
        )
    return distribute if distribute.size > 1 else None


def entry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a model method taking ``distribute``: with several ranks, run it guarded."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind_partial(self, *args, **kwargs)
        dp = resolve(bound.arguments.get("distribute"), fn.__name__)
        if dp is None:
            return fn(self, *args, **kwargs)
        with dp.guard(fn.__name__):
            return fn(self, *args, **kwargs)

    return wrapper


def is_root(model: Any) -> bool:
    """Whether this process prints and writes for ``model`` (True unless a non-root rank)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is None or strategy.rank == 0
