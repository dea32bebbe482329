r"""Agreement between data-parallel ranks: every rank checks it was given what the others were.

Data-parallel training is SPMD: every rank runs the same script on the same data
and model, and the ranks meet in collective calls. Ranks that were given
different arguments (another batch size, more epochs, a model with one more
layer) would otherwise call different collectives, or collectives of different
sizes, and hang, abort MPI (``Message truncated``) or silently train different
models. :func:`agree` turns any such difference into the same
:class:`~layernet.DataParallelError` on every rank, naming the first entry that
differs and its value on each rank.

The protocol costs one small collective when the ranks agree:

1. every rank serialises its entries (canonical JSON; arrays and long values as
   a SHA-256 digest) and hashes them, with the function's name, into a 32-byte
   digest;
2. one ``Allgather`` of the fixed-size digests (every rank, always);
3. only if the digests differ, a second ``allgather`` of the serialised entries
   (every rank, since every rank sees the same gathered digests) to build the
   message.

No rank leaves before the others reach the same collectives, whatever it was
given: serialising never raises (a value that cannot be serialised becomes a
marker, and the error is raised only after the collectives).

Entries the trainer compares (see :data:`FIT_ENTRIES`, :data:`EVALUATE_ENTRIES`,
:data:`PREDICT_ENTRIES`): the run's arguments from :func:`fit_entries`,
:func:`evaluate_entries` or :func:`predict_entries`, the model from
:func:`describe_model` and its compile settings from :func:`describe_compile`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .distributed import DataParallelError
from .registry import get_registered_name

__all__ = [
    "EVALUATE_ENTRIES",
    "FIT_ENTRIES",
    "PREDICT_ENTRIES",
    "agree",
    "describe_array",
    "describe_compile",
    "describe_model",
    "evaluate_entries",
    "fit_entries",
    "predict_entries",
    "stable_hash",
]

#: Serialised values longer than this (in characters) are compared and shown by digest.
MAX_SHOWN = 250
#: Rows of an array hashed for its checksum (evenly spaced, first and last included).
CHECKSUM_ROWS = 1024
_UNSERIALISABLE = "<unserialisable>"

#: The argument entries every rank's ``fit`` must agree on (from :func:`fit_entries`).
FIT_ENTRIES: tuple[str, ...] = (
    "epochs",
    "initial_epoch",
    "batch_size",
    "steps",
    "shuffle",
    "seed",
    "x samples",
    "x shape",
    "x dtype",
    "x checksum",
    "y samples",
    "y shape",
    "y dtype",
    "y checksum",
    "sample_weight",
    "class_weight",
    "validation_split",
    "validation_data",
)
#: The argument entries every rank's ``evaluate`` must agree on (from :func:`evaluate_entries`).
EVALUATE_ENTRIES: tuple[str, ...] = (
    "batch_size",
    "steps",
    "x samples",
    "x shape",
    "x dtype",
    "x checksum",
    "y samples",
    "y shape",
    "y dtype",
    "y checksum",
    "sample_weight",
)
#: The argument entries every rank's ``predict`` must agree on (from :func:`predict_entries`).
PREDICT_ENTRIES: tuple[str, ...] = (
    "batch_size",
    "steps",
    "x samples",
    "x shape",
    "x dtype",
    "x checksum",
)


# ------------------------------------------------------------------ serialising
def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (tuples as lists, NumPy scalars as numbers, arrays
    by :func:`describe_array`'s digest); raises TypeError for anything else."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else repr(v)  # JSON has no NaN/inf; keep them distinct
    if isinstance(value, np.ndarray):
        return _array_digest(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.dtype):
        return value.name
    raise TypeError(
        f"a {type(value).__name__} cannot be compared between ranks (expected JSON data, "
        f"NumPy scalars or arrays)"
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(value: Any) -> str:
    """A SHA-256 digest of ``value`` that is the same in every process and on every run.

    ``value`` is serialised as canonical JSON (sorted keys, tuples as lists,
    NumPy scalars as numbers, arrays by their bytes, shape and dtype), never
    through ``hash()`` or ``repr`` of objects, so two ranks holding equal values
    get equal digests.

    Parameters
    ----------
    value : JSON-like data
        None, bools, numbers, strings, lists, tuples, dicts with string keys,
        NumPy scalars and arrays, nested in any way.

    Returns
    -------
    str
        ``"sha256:"`` followed by 64 hexadecimal digits.

    Raises
    ------
    TypeError
        For a value of another type (``a ... cannot be compared between ranks``).

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet._agreement import stable_hash
    >>> stable_hash({"b": (1, 2), "a": 1.0}) == stable_hash({"a": 1.0, "b": [1, 2]})
    True
    >>> stable_hash([1]) == stable_hash([2])
    False
    """
    return "sha256:" + hashlib.sha256(_canonical(_jsonable(value)).encode()).hexdigest()


def _array_digest(a: np.ndarray) -> str:
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
    return f"array{tuple(a.shape)} {a.dtype.name} sha256:{h.hexdigest()[:16]}"


def _serialise(entries: Any) -> tuple[list[tuple[str, str]], str | None]:
    """``(key, text)`` pairs in the entries' order, and the first error; never raises."""
    if not isinstance(entries, Mapping):
        return [], f"`entries` must be a dict of str to values, received {type(entries).__name__}"
    out: list[tuple[str, str]] = []
    error = None
    for key in entries:
        try:
            text = _canonical(_jsonable(entries[key]))
        except (TypeError, ValueError, RecursionError) as exc:
            text = f"{_UNSERIALISABLE} {type(entries[key]).__name__}"
            error = error or f"entry `{key}`: {exc}"
        if len(text) > MAX_SHOWN:
            text = f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:16]} ({len(text)} chars)"
        out.append((str(key), text))
    return out, error


def _communicator(comm: Any) -> Any:
    """The MPI communicator behind ``comm`` (a DataParallel strategy or a communicator)."""
    return getattr(comm, "comm", comm)


# ------------------------------------------------------------------ agreeing
def agree(comm: Any, fn: str, entries: dict[str, object]) -> None:
    r"""Check that every rank was given the same ``entries``; raise the same error on all if not.

    Every rank of ``comm`` must call it at the same point with the same ``fn``
    (that, too, is checked). It costs one ``Allgather`` of 32 bytes per rank
    when the ranks agree; when they do not, one more ``allgather`` of the
    serialised entries builds the message. Both are reached by every rank in
    every case, so a disagreement can neither hang nor abort the job.

    Parameters
    ----------
    comm : mpi4py communicator, DataParallel or None
        The ranks that must agree; ``None`` or a single rank: nothing to check.
    fn : str
        The name of the calling function, the start of the message (``"fit"``).
    entries : dict of str to object
        The values that must be equal on every rank, by name. Values are JSON
        data (None, bools, numbers, strings, lists, tuples, dicts) or NumPy
        scalars and arrays (compared by their bytes); serialised values longer
        than :data:`MAX_SHOWN` characters are compared by SHA-256 (use
        :func:`stable_hash` for large things such as a model config).

    Raises
    ------
    DataParallelError
        On every rank, the same message, naming the first differing entry (in
        rank 0's order) and its value on each rank:
        ``fit: ranks disagree on `batch_size`: rank 0 has 32, rank 1 has 64.``
        An entry one rank lacks shows as ``(missing)``.
    TypeError
        On every rank, when all ranks agree but an entry cannot be compared
        (``fit: entry `x`: a object cannot be compared between ranks ...``), or
        ``entries`` is not a dict.

    Notes
    -----
    Each rank :math:`r` computes :math:`d_r = \mathrm{SHA256}(fn, \text{entries}_r)`.
    After the gather every rank holds :math:`(d_0, \dots, d_{P-1})` and so takes
    the same branch: return if all are equal, else gather the entries and raise.

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet._agreement import agree
    >>> agree(None, "fit", {"batch_size": 32})  # one process: nothing to compare

    Under ``mpiexec -n 2`` with ``batch_size`` 32 on rank 0 and 64 on rank 1,
    both ranks raise ``DataParallelError("fit: ranks disagree on `batch_size`:
    rank 0 has 32, rank 1 has 64.")``.
    """
    comm = _communicator(comm)
    payload, error = _serialise(entries)
    if comm is None or comm.Get_size() == 1:
        if error:
            raise TypeError(f"{fn}: {error}.")
        return
    ordered = sorted(payload)  # the order of the entries does not matter, their values do
    digest = hashlib.sha256(_canonical([str(fn), ordered, error is not None]).encode()).digest()
    mine = np.frombuffer(digest, dtype=np.uint8).copy()
    gathered = np.empty((comm.Get_size(), mine.size), dtype=np.uint8)
    comm.Allgather(mine, gathered)
    if (gathered == gathered[0]).all():
        if error:  # every rank has the same unserialisable entry: raise everywhere alike
            raise _agreed(TypeError(f"{fn}: {error}."))
        return
    views = comm.allgather((str(fn), payload))
    raise _agreed(DataParallelError(_message(fn, views)))


def _agreed(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised on every rank (so no rank aborts the others)."""
    exc._layernet_agreed = True  # type: ignore[attr-defined]
    return exc


def _message(fn: str, views: list[tuple[str, list[tuple[str, str]]]]) -> str:
    names = [v[0] for v in views]
    fn = names[0]  # the same words on every rank
    if len(set(names)) > 1:
        return f"{fn}: ranks disagree on the call: " + _per_rank(names) + "."
    tables = [dict(v[1]) for v in views]
    keys: list[str] = []
    for table in tables:
        keys += [k for k in table if k not in keys]
    for key in keys:
        values = [t.get(key) for t in tables]
        if len(set(values)) > 1:
            shown = [_shown(v) for v in values]
            return f"{fn}: ranks disagree on `{key}`: {_per_rank(shown)}."
    # equal entries give equal digests, so some entry differs when the digests do
    return f"{fn}: ranks disagree on their entries (the digests differ)."  # pragma: no cover


def _shown(text: str | None) -> str:
    """A serialised value as Python writes it (``None``, ``'adam'``; digests as they are)."""
    if text is None:
        return "(missing)"
    if text.startswith((_UNSERIALISABLE, "sha256:")):
        return text
    try:
        return repr(json.loads(text))
    except ValueError:  # pragma: no cover - every text was written by json.dumps
        return text


def _per_rank(values: list[str]) -> str:
    """``rank 0 has 32, rank 1 has 64``; ranks with equal values grouped beyond two ranks."""
    if len(values) <= 2:
        return ", ".join(f"rank {r} has {v}" for r, v in enumerate(values))
    groups: dict[str, list[int]] = {}
    for r, v in enumerate(values):
        groups.setdefault(v, []).append(r)
    parts = []
    for v, ranks in groups.items():
        shown = ", ".join(map(str, ranks[:8])) + (", ..." if len(ranks) > 8 else "")
        parts.append(f"rank {shown} has {v}" if len(ranks) == 1 else f"ranks {shown} have {v}")
    return "; ".join(parts)


# ------------------------------------------------------------------ describing
def describe_array(a: Any, name: str) -> dict[str, Any]:
    """The entries by which ranks compare a data array: samples, shape, dtype, checksum.

    Parameters
    ----------
    a : array-like, list or dict of arrays, or None
        The array (``None`` gives ``{name: None}``). A list or tuple of arrays,
        or a dict of them, gives ``name``'s structure (its keys, or its number of
        arrays) and each array's entries under ``"<name>[<key or index>]"``;
        anything that is not array data (a generator, a PyDataset) gives
        ``{name: "<its type> of <its length>"}``.
    name : str
        Prefix of the entries (``"x"`` gives ``"x samples"``, ``"x shape"``, ...).

    Returns
    -------
    dict
        ``"<name> samples"`` (length of the first axis), ``"<name> shape"``
        (the other axes), ``"<name> dtype"`` and ``"<name> checksum"`` (SHA-256
        of up to :data:`CHECKSUM_ROWS` evenly spaced samples, so that it costs
        little on large data yet sees a different data set).

    Examples
    --------
    >>> import numpy as np
    >>> from layernet._agreement import describe_array
    >>> d = describe_array(np.zeros((10, 3), dtype="float32"), "x")
    >>> d["x samples"], d["x shape"], d["x dtype"]
    (10, [3], 'float32')
    """
    if a is None:
        return {name: None}
    if isinstance(a, Mapping):  # several arrays by input or output name
        out: dict[str, Any] = {name: sorted(map(str, a))}
        for key in sorted(a, key=str):
            out.update(describe_array(a[key], f"{name}[{str(key)!r}]"))
        return out
    if _several_arrays(a):
        out = {name: f"{len(a)} arrays"}
        for i, v in enumerate(a):
            out.update(describe_array(v, f"{name}[{i}]"))
        return out
    if not _data_like(a):  # a generator, a PyDataset, ...: by kind and length
        try:
            return {name: f"<{type(a).__name__}> of {len(a)}"}
        except Exception:
            return {name: f"<{type(a).__name__}>"}
    arr = np.asarray(a)
    if arr.ndim == 0:
        return {f"{name} shape": [], f"{name} dtype": arr.dtype.name, f"{name} checksum": str(arr)}
    n = arr.shape[0]
    rows: Any = (
        np.unique(np.linspace(0, n - 1, min(n, CHECKSUM_ROWS)).astype(np.int64)) if n else []
    )
    h = hashlib.sha256()
    if arr.dtype.kind in "biuf":
        h.update(np.ascontiguousarray(arr[rows]).view(np.uint8).reshape(-1).data)
    else:
        h.update(repr(arr[rows].tolist()).encode())
    return {
        f"{name} samples": int(n),
        f"{name} shape": [int(s) for s in arr.shape[1:]],
        f"{name} dtype": arr.dtype.name,
        f"{name} checksum": "sha256:" + h.hexdigest()[:16],
    }


def _several_arrays(a: Any) -> bool:
    """Whether ``a`` is a list or tuple of arrays (a model's several inputs or targets)."""
    return (
        isinstance(a, list | tuple)
        and any(v is not None for v in a)
        and all(v is None or getattr(v, "ndim", 0) >= 1 or isinstance(v, Mapping) for v in a)
    )


def _data_like(a: Any) -> bool:
    """Whether ``a`` is array data (an array, nested lists, a number), not a batch source."""
    return (
        hasattr(a, "shape")
        or hasattr(a, "__array__")
        or isinstance(a, list | tuple | int | float | complex | bool | str | bytes)
    )


def _samples(x: Any) -> int:
    """The samples of ``x``: of its first array when it holds several."""
    if isinstance(x, Mapping):
        return _samples(next(iter(x.values())))
    if _several_arrays(x):
        return _samples(next(v for v in x if v is not None))
    return len(x)


def _strip_names(value: Any) -> Any:
    """A layer config without its ``name`` entries (names are counters, local to a process)."""
    if isinstance(value, dict):
        return {k: _strip_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, list | tuple):
        return [_strip_names(v) for v in value]
    if hasattr(value, "get_config") and not isinstance(value, type):  # an initializer, a layer
        return {"class_name": get_registered_name(type(value)), "config": value.get_config()}
    return value


def _layer_spec(layer: Any) -> dict[str, Any]:
    return {
        "class_name": get_registered_name(type(layer)),
        "config": _strip_names(layer.get_config()),
        "dtype": np.dtype(layer.dtype).name,
    }


def describe_model(model: Any) -> dict[str, object]:
    """The entries that must be equal on every rank for ``model``.

    Parameters
    ----------
    model : Sequential
        Built or not.

    Returns
    -------
    dict
        ``"model class"``; ``"model input shape"``; ``"model layers"`` (the
        registered class names, in order); ``"layer <i> (<class>) <argument>"``
        for every layer's dtype and configuration entry (so that a message
        names the argument that differs); ``"model weight shapes"`` (every
        weight's shape and dtype, state such as BatchNorm's moving averages
        included); ``"model config"`` (a
        :func:`stable_hash` of every layer's class, configuration (names
        excepted: they count instances in one process) and dtype, the
        trainable flags included). Weights' *values* are not compared:
        data-parallel training broadcasts rank 0's.

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet._agreement import describe_model
    >>> a = ln.Sequential([ln.Dense(3)]); a.build((None, 2))
    >>> b = ln.Sequential([ln.Dense(4)]); b.build((None, 2))
    >>> da, db = describe_model(a), describe_model(b)
    >>> [k for k in da if da[k] != db[k]]
    ['layer 0 (Dense) units', 'model weight shapes', 'model config']
    """
    layers = list(getattr(model, "layers", []))
    shape = getattr(model, "input_shape", None)
    specs = []
    for layer in layers:
        try:
            specs.append(_layer_spec(layer))
        except Exception as exc:  # a user layer whose config cannot be read
            specs.append({"class_name": get_registered_name(type(layer)), "error": str(exc)})
    weights = [
        [list(w.shape), np.dtype(w.dtype).name] for w in (model.get_weights() if layers else [])
    ]
    try:
        config = stable_hash(specs)
    except TypeError:
        config = stable_hash([s["class_name"] for s in specs]) + " (configs not comparable)"
    out: dict[str, object] = {
        "model class": type(model).__name__,
        "model input shape": None if shape is None else list(shape),
        "model layers": [s["class_name"] for s in specs],
    }
    for i, spec in enumerate(specs):  # readable messages: the first argument that differs
        short = spec["class_name"].rsplit(">", 1)[-1]
        out[f"layer {i} ({short}) dtype"] = spec.get("dtype")
        for key, value in (spec.get("config") or {"error": spec.get("error")}).items():
            out[f"layer {i} ({short}) {key}"] = value
    out["model weight shapes"] = weights
    out["model config"] = config
    return out


def _callable_name(value: Any) -> str:
    """A name for a callable that is the same in every process (no memory addresses)."""
    kind = type(value)
    name = getattr(value, "__qualname__", None) or kind.__qualname__
    return f"{getattr(value, '__module__', kind.__module__)}.{name}"


def describe_compile(model: Any) -> dict[str, object]:
    """The compile settings that must be equal on every rank: optimizer, loss, metrics.

    Parameters
    ----------
    model : Sequential
        Compiled or not (``"compiled": False`` then, and nothing else).

    Returns
    -------
    dict
        ``"optimizer"`` (class and configuration; a learning rate given as a
        Python callable by its qualified name), ``"loss"`` (registered class
        name and configuration) and ``"metrics"`` (their names, in order).

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet._agreement import describe_compile
    >>> m = ln.Sequential([ln.Dense(1)])
    >>> m.compile(ln.SGD(0.1), "mse", ["mae"])
    >>> d = describe_compile(m)
    >>> d["optimizer"]["class_name"], d["metrics"]
    ('SGD', ['mae'])
    """
    loss = getattr(model, "loss", None)
    if loss is None:
        return {"compiled": False}
    opt = model.optimizer
    # the settings in use: options left at None and EMA settings without EMA say nothing
    opt_config = {
        k: v
        for k, v in opt.get_config().items()
        if v is not None and not (k.startswith("ema_") and not opt.get_config().get("use_ema"))
    }
    lr = getattr(opt, "learning_rate", None)
    if callable(lr) and isinstance(opt_config.get("learning_rate"), str):
        opt_config["learning_rate"] = _callable_name(lr)
    return {
        "compiled": True,
        "optimizer": {"class_name": type(opt).__name__, "config": opt_config},
        "loss": {
            "class_name": get_registered_name(type(loss)),
            "config": _strip_names(loss.get_config()),
        },
        "metrics": [m.name for m in getattr(model, "metrics", [])],
    }


def _steps(x: Any, batch_size: Any) -> int | None:
    try:
        n = _samples(x)
        return math.ceil(n / batch_size) if isinstance(batch_size, int) and batch_size > 0 else None
    except (TypeError, StopIteration):
        return None


def fit_entries(
    x: Any,
    y: Any,
    *,
    epochs: Any,
    batch_size: Any,
    shuffle: Any,
    seed: Any,
    initial_epoch: Any = 0,
    validation_split: Any = 0.0,
    validation_data: Any = None,
    sample_weight: Any = None,
    class_weight: Any = None,
    steps: Any = None,
) -> dict[str, object]:
    """The argument entries of ``fit`` (:data:`FIT_ENTRIES`), as :func:`agree` compares them.

    Pass the training arrays after the validation split (what the ranks train
    on) and the arguments as resolved (``batch_size`` 32 when ``None``). Several
    arrays (a list, or a dict by input or output name) are compared array by
    array (``"x['a'] checksum"``); a source of batches (a generator, a
    PyDataset) by its kind and length, with ``steps`` its batches per epoch
    (None: counted from ``x`` and ``batch_size``).
    ``validation_data`` is compared through :func:`describe_array` of each of
    its arrays; ``seed`` is the user's (``None`` on every rank is agreement:
    rank 0's drawn seed is broadcast).

    Examples
    --------
    >>> import numpy as np
    >>> from layernet._agreement import fit_entries
    >>> e = fit_entries(np.zeros((10, 2)), np.zeros(10), epochs=3, batch_size=4,
    ...                 shuffle=True, seed=None)
    >>> e["steps"], e["x samples"], e["epochs"]
    (3, 10, 3)
    """
    val: Any = None
    if isinstance(validation_data, list | tuple):
        val = {}
        for name, a in zip(("x_val", "y_val", "sample_weight_val"), validation_data, strict=False):
            val.update(describe_array(a, name))
    elif validation_data is not None:
        val = f"<{type(validation_data).__name__}>"
    cw: Any = None
    if isinstance(class_weight, Mapping):
        cw = sorted([_jsonable(k), _jsonable(v)] for k, v in class_weight.items())
    elif class_weight is not None:
        cw = f"<{type(class_weight).__name__}>"
    return {
        "epochs": epochs,
        "initial_epoch": initial_epoch,
        "batch_size": batch_size,
        "steps": _steps(x, batch_size) if steps is None else steps,
        "shuffle": shuffle,
        "seed": seed,
        **describe_array(x, "x"),
        **describe_array(y, "y"),
        "sample_weight": None
        if sample_weight is None
        else describe_array(sample_weight, "w")["w checksum"],
        "class_weight": cw,
        "validation_split": validation_split,
        "validation_data": val,
    }


def evaluate_entries(
    x: Any, y: Any, *, batch_size: Any, sample_weight: Any = None, steps: Any = None
) -> dict[str, object]:
    """The argument entries of ``evaluate`` (:data:`EVALUATE_ENTRIES`); ``x``, ``y`` and
    ``steps`` as in :func:`fit_entries`.

    Examples
    --------
    >>> import numpy as np
    >>> from layernet._agreement import evaluate_entries
    >>> evaluate_entries(np.zeros((5, 2)), np.zeros(5), batch_size=2)["steps"]
    3
    """
    return {
        "batch_size": batch_size,
        "steps": _steps(x, batch_size) if steps is None else steps,
        **describe_array(x, "x"),
        **describe_array(y, "y"),
        "sample_weight": None
        if sample_weight is None
        else describe_array(sample_weight, "w")["w checksum"],
    }


def predict_entries(x: Any, *, batch_size: Any, steps: Any = None) -> dict[str, object]:
    """The argument entries of ``predict`` (:data:`PREDICT_ENTRIES`); ``x`` and ``steps`` as
    in :func:`fit_entries`.

    Examples
    --------
    >>> import numpy as np
    >>> from layernet._agreement import predict_entries
    >>> sorted(predict_entries(np.zeros((5, 2)), batch_size=2))
    ['batch_size', 'steps', 'x checksum', 'x dtype', 'x samples', 'x shape']
    """
    return {
        "batch_size": batch_size,
        "steps": _steps(x, batch_size) if steps is None else steps,
        **describe_array(x, "x"),
    }
