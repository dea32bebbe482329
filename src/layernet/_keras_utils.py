"""Keras's small ``keras.utils`` helpers: data packing, normalisation, time-series windows,
custom-object scopes and the session reset. Re-exported by :mod:`layernet.utils`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import registry
from ._validation import as_array, is_int, shape_str

__all__ = [
    "CustomObjectScope",
    "clear_session",
    "custom_object_scope",
    "get_custom_objects",
    "get_registered_object",
    "get_source_inputs",
    "is_keras_tensor",
    "normalize",
    "pack_x_y_sample_weight",
    "split_dataset",
    "standardize_dtype",
    "timeseries_dataset_from_array",
    "unpack_x_y_sample_weight",
]


# ------------------------------------------------------------------ data packing
def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """Pack a batch as ``fit`` and ``train_step`` receive it (Keras's rule).

    Parameters
    ----------
    x : array or structure of arrays
    y : array, optional
    sample_weight : array, optional

    Returns
    -------
    object
        ``x`` alone (``(x,)`` when ``x`` is itself a tuple or list, so that it is
        not read as ``(x, y)``), ``(x, y)`` or ``(x, y, sample_weight)``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.pack_x_y_sample_weight([1, 2])
    ([1, 2],)
    >>> ln.utils.pack_x_y_sample_weight(1, 2)
    (1, 2)
    """
    if y is None:
        return (x,) if isinstance(x, tuple | list) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def unpack_x_y_sample_weight(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from a batch: ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``.

    The counterpart of :func:`pack_x_y_sample_weight`, for a ``train_step``
    override; missing parts are ``None``. A list is read as a tuple.

    Parameters
    ----------
    data : object

    Returns
    -------
    tuple
        ``(x, y, sample_weight)``.

    Raises
    ------
    ValueError
        A tuple of more than three parts.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.unpack_x_y_sample_weight((1, 2))
    (1, 2, None)
    >>> ln.utils.unpack_x_y_sample_weight(5)
    (5, None, None)
    """
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return (data, None, None)
    if len(data) == 1:
        return (data[0], None, None)
    if len(data) == 2:
        return (data[0], data[1], None)
    if len(data) == 3:
        return (data[0], data[1], data[2])
    raise ValueError(
        f"unpack_x_y_sample_weight: expected data as x, (x,), (x, y) or (x, y, sample_weight), "
        f"received a tuple of {len(data)}."
    )


# ------------------------------------------------------------------ normalisation
def normalize(x: Any, axis: int = -1, order: int = 2) -> np.ndarray:
    r"""``x`` divided by its ``order``-norm along ``axis`` (rows of norm 0 are left as they are).

    .. math:: \hat x = x / \max(\lVert x \rVert_p, [\lVert x\rVert_p = 0])

    Parameters
    ----------
    x : array_like
    axis : int, default -1
    order : int, default 2
        The norm's order, as :func:`numpy.linalg.norm` takes it (2: Euclidean).

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        An ``axis`` outside ``x``'s dimensions.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.normalize([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    a = as_array(x, "normalize", "x")
    if not is_int(axis) or not -a.ndim <= axis < max(a.ndim, 1):
        raise ValueError(
            f"normalize: invalid value for `axis`: expected an axis of an array of shape "
            f"{shape_str(a.shape)}, received {axis!r}."
        )
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
    norm = np.atleast_1d(np.linalg.norm(a, order, axis))
    norm[norm == 0] = 1
    return a / np.expand_dims(norm, axis)


# ------------------------------------------------------------------ time series
def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> Any:
    r"""Batches of sliding windows over an array (with their targets), as Keras makes them.

    Window :math:`i` starts at position :math:`p_i = i \cdot` ``sequence_stride``
    of ``data[start_index:end_index]`` and holds the rows :math:`p_i,\ p_i + r,
    \dots, p_i + (L - 1) r` (:math:`L` = ``sequence_length``, :math:`r` =
    ``sampling_rate``); its target is ``targets[start_index:][p_i]``. There are
    as many windows as fit in the data (and no more than there are targets).

    Parameters
    ----------
    data : array_like
        Time steps along the first axis.
    targets : array_like or None
        ``targets[i]`` belongs to the window that starts at ``data[i]``; ``None``
        for windows alone.
    sequence_length : int
        Rows per window.
    sequence_stride : int, default 1
        Steps between the starts of two windows.
    sampling_rate : int, default 1
        Steps between two rows of a window.
    batch_size : int or None, default 128
        Windows per batch; ``None`` yields single windows.
    shuffle : bool, default False
        Shuffle the windows (their start positions, with ``numpy.random.RandomState(seed)``).
    seed : int, optional
    start_index, end_index : int, optional
        Use only ``data[start_index:end_index]``.

    Returns
    -------
    layernet.data.Dataset
        Of ``(windows, targets)`` batches (or ``windows``), which ``fit``,
        ``evaluate`` and ``predict`` take.

    Raises
    ------
    ValueError
        A non-positive length, stride or rate, one not below the data's length,
        indices outside the data, or ``targets`` of another length than ``data``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ds = ln.utils.timeseries_dataset_from_array(
    ...     np.arange(10), np.arange(10) * 10, sequence_length=3, batch_size=4)
    >>> x, y = next(iter(ds))
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5]], [0, 10, 20, 30])
    """
    from .data import Dataset

    fn = "timeseries_dataset_from_array"
    arr = np.asarray(data)
    if arr.ndim == 0:
        raise ValueError(f"{fn}: expected `data` with time steps along a first axis, got a scalar.")
    n = len(arr)
    for arg, value in (
        ("sequence_length", sequence_length),
        ("sequence_stride", sequence_stride),
        ("sampling_rate", sampling_rate),
    ):
        if not is_int(value) or value <= 0:
            raise ValueError(
                f"{fn}: invalid value for `{arg}`: expected a positive int, received {value!r}."
            )
    for arg, value in (("sampling_rate", sampling_rate), ("sequence_stride", sequence_stride)):
        if value >= n:
            raise ValueError(
                f"{fn}: invalid value for `{arg}`: expected less than the data's length {n}, "
                f"received {value}."
            )
    if batch_size is not None and (not is_int(batch_size) or batch_size <= 0):
        raise ValueError(
            f"{fn}: invalid value for `batch_size`: expected a positive int or None, "
            f"received {batch_size!r}."
        )
    start = 0 if start_index is None else start_index
    end = n if end_index is None else end_index
    if not is_int(start) or not 0 <= start < n:
        raise ValueError(
            f"{fn}: invalid value for `start_index`: expected 0 <= start_index < {n} (the "
            f"data's length), received {start_index!r}."
        )
    if not is_int(end) or not start < end <= n:
        raise ValueError(
            f"{fn}: invalid value for `end_index`: expected {start} < end_index <= {n}, "
            f"received {end_index!r}."
        )
    tgt = None
    if targets is not None:
        tgt = np.asarray(targets)
        if tgt.ndim == 0 or len(tgt) != n:
            raise ValueError(
                f"{fn}: expected `targets` with one entry per time step of `data` ({n}), "
                f"received shape {shape_str(tgt.shape)}."
            )
    count = end - start - (sequence_length - 1) * sampling_rate
    if tgt is not None:
        count = min(count, len(tgt))
    starts = np.arange(0, max(count, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = int(np.random.default_rng().integers(10**6))
        np.random.RandomState(seed).shuffle(starts)  # Keras shuffles with this generator
    rows = start + starts[:, None] + sampling_rate * np.arange(sequence_length)[None, :]
    windows = arr[rows]
    elements: Any = windows if tgt is None else (windows, tgt[start + starts])
    ds = Dataset.from_tensor_slices(elements)
    return ds if batch_size is None else ds.batch(batch_size)


def split_dataset(
    dataset: Any,
    left_size: float | int | None = None,
    right_size: float | int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> tuple[Any, Any]:
    """Split arrays (or a tuple/dict of arrays, or a :class:`layernet.data.Dataset` of
    single elements) in two along the first axis, as Keras's ``split_dataset``.

    Parameters
    ----------
    dataset : array, tuple/list/dict of arrays, or Dataset
    left_size, right_size : float or int, optional
        A fraction in (0, 1) or a number of samples; one may be left out (the
        rest); both left out: 0.5 each.
    shuffle : bool, default False
    seed : int, optional

    Returns
    -------
    tuple of two layernet.data.Dataset

    Raises
    ------
    ValueError
        Sizes that are negative, not numbers, or add up to more than the samples.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> left, right = ln.utils.split_dataset(np.arange(10), left_size=0.8)
    >>> len(left), len(right)
    (8, 2)
    """
    from .data import Dataset

    fn = "split_dataset"
    if isinstance(dataset, Dataset):
        elements = list(dataset)
        if not elements:
            raise ValueError(f"{fn}: `dataset` is empty.")
        first = elements[0]
        if isinstance(first, tuple):
            dataset = tuple(np.stack([e[k] for e in elements]) for k in range(len(first)))
        elif isinstance(first, dict):
            dataset = {k: np.stack([e[k] for e in elements]) for k in first}
        else:
            dataset = np.stack(elements)
    leaves = (
        list(dataset.values())
        if isinstance(dataset, dict)
        else list(dataset)
        if isinstance(dataset, tuple | list)
        else [dataset]
    )
    arrays = [np.asarray(a) for a in leaves]
    n = len(arrays[0]) if arrays and arrays[0].ndim else 0
    if n == 0 or any(a.ndim == 0 or len(a) != n for a in arrays):
        raise ValueError(
            f"{fn}: expected arrays with the same number of samples along the first axis, "
            f"received shapes {[shape_str(a.shape) for a in arrays]}."
        )

    def count(size: Any, arg: str) -> int | None:
        if size is None:
            return None
        if isinstance(size, float) and 0 < size < 1:
            return round(size * n)
        if is_int(size) and 0 < size <= n:
            return int(size)
        raise ValueError(
            f"{fn}: invalid value for `{arg}`: expected a fraction in (0, 1) or a number of "
            f"samples in 1..{n}, received {size!r}."
        )

    left, right = count(left_size, "left_size"), count(right_size, "right_size")
    if left is None and right is None:
        left = n // 2
    if left is None:
        left = n - (right or 0)
    if right is None:
        right = n - left
    if left + right > n:
        raise ValueError(
            f"{fn}: `left_size` and `right_size` ({left} and {right} samples) add up to more "
            f"than the {n} samples."
        )
    order = np.arange(n)
    if shuffle:
        np.random.default_rng(seed).shuffle(order)

    def part(idx: np.ndarray) -> Any:
        if isinstance(dataset, dict):
            return Dataset.from_tensor_slices({k: np.asarray(v)[idx] for k, v in dataset.items()})
        if isinstance(dataset, tuple | list):
            return Dataset.from_tensor_slices(tuple(a[idx] for a in arrays))
        return Dataset.from_tensor_slices(arrays[0][idx])

    return part(order[:left]), part(order[left : left + right])


# ------------------------------------------------------------------ symbolic tensors
def is_keras_tensor(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor (from :func:`layernet.Input` or a layer called on one).

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.is_keras_tensor(ln.Input((3,))), ln.utils.is_keras_tensor([1.0])
    (True, False)
    """
    from .graph.tensor import KerasTensor

    return isinstance(x, KerasTensor)


def get_source_inputs(tensor: Any) -> list[Any]:
    """The :func:`layernet.Input` tensors that ``tensor`` was computed from, in call order.

    Parameters
    ----------
    tensor : KerasTensor

    Returns
    -------
    list of KerasTensor

    Raises
    ------
    TypeError
        ``tensor`` is not a symbolic tensor.

    Examples
    --------
    >>> import layernet as ln
    >>> a, b = ln.Input((2,), name="a"), ln.Input((2,), name="b")
    >>> y = ln.layers.Add()([ln.Dense(2)(a), b])
    >>> [t.name for t in ln.utils.get_source_inputs(y)]
    ['a', 'b']
    """
    if not is_keras_tensor(tensor):
        raise TypeError(
            f"get_source_inputs: expected a symbolic tensor (from ln.Input or a layer called on "
            f"one), received {type(tensor).__name__}."
        )
    found: list[Any] = []
    seen: set[int] = set()
    stack = [tensor]
    visited: set[int] = set()
    while stack:
        t = stack.pop()
        if id(t) in visited:
            continue
        visited.add(id(t))
        if t.node is None:
            if id(t) not in seen:
                seen.add(id(t))
                found.append(t)
            continue
        stack.extend(reversed(t.node.parents))
    return found


# ------------------------------------------------------------------ custom objects
def get_custom_objects() -> dict[str, Any]:
    """The global dict of custom objects that loading consults (Keras's ``get_custom_objects``).

    Adding ``{"MyLayer": MyLayer}`` to it lets :func:`layernet.load_model` build
    ``MyLayer`` without ``custom_objects=``; :func:`custom_object_scope` adds
    entries for a block only.

    Returns
    -------
    dict
        The dict itself (edit it in place).

    Examples
    --------
    >>> import layernet as ln
    >>> isinstance(ln.utils.get_custom_objects(), dict)
    True
    """
    return registry.GLOBAL_CUSTOM_OBJECTS


class CustomObjectScope:
    """A block in which loading also finds the given custom objects (Keras's).

    Parameters
    ----------
    *custom_objects : dict
        Name-to-class (or function) dicts; later ones win.

    Examples
    --------
    >>> import layernet as ln
    >>> class Mine(ln.Dense):
    ...     pass
    >>> with ln.utils.custom_object_scope({"Mine": Mine}):
    ...     ln.utils.get_registered_object("Mine") is Mine
    True
    >>> ln.utils.get_registered_object("Mine") is None
    True
    """

    def __init__(self, *custom_objects: Mapping[str, Any]) -> None:
        merged: dict[str, Any] = {}
        for objects in custom_objects:
            if objects is None:
                continue
            if not isinstance(objects, Mapping):
                raise TypeError(
                    f"custom_object_scope: expected dicts of name to class, received "
                    f"{type(objects).__name__}."
                )
            merged.update(objects)
        self.custom_objects = merged

    def __enter__(self) -> CustomObjectScope:
        registry.SCOPED_CUSTOM_OBJECTS.append(self.custom_objects)
        return self

    def __exit__(self, *exc: object) -> None:
        registry.SCOPED_CUSTOM_OBJECTS.remove(self.custom_objects)


def custom_object_scope(*custom_objects: Mapping[str, Any]) -> CustomObjectScope:
    """A :class:`CustomObjectScope` (Keras's lowercase name for it).

    Parameters
    ----------
    *custom_objects : dict

    Returns
    -------
    CustomObjectScope
    """
    return CustomObjectScope(*custom_objects)


def get_registered_object(
    name: str,
    custom_objects: Mapping[str, Any] | None = None,
    module_objects: Mapping[str, Any] | None = None,
) -> Any:
    """The class or function registered or in scope under ``name``, else ``None`` (Keras's).

    Looks in the open :func:`custom_object_scope` blocks, :func:`get_custom_objects`,
    ``custom_objects``, the classes registered with
    :func:`layernet.saving.register_keras_serializable`, then ``module_objects``.

    Parameters
    ----------
    name : str
    custom_objects, module_objects : dict, optional

    Returns
    -------
    object or None
    """
    for scope in reversed(registry.SCOPED_CUSTOM_OBJECTS):
        if name in scope:
            return scope[name]
    if name in registry.GLOBAL_CUSTOM_OBJECTS:
        return registry.GLOBAL_CUSTOM_OBJECTS[name]
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    registered = registry.registered_object(name)
    if registered is not None:
        return registered
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


# ------------------------------------------------------------------ session and dtypes
def clear_session(free_memory: bool = True) -> None:
    """Start layer and loss names afresh (Keras's ``clear_session``).

    Automatic names (``dense_1``, ``conv2d_1``, ...) count from 1 again; models
    already built keep their names. Nothing else is global in layernet.

    Parameters
    ----------
    free_memory : bool, default True
        Accepted for Keras compatibility (Python frees what is no longer used).

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.clear_session()
    >>> ln.Dense(2).name
    'dense_1'
    """
    from .layers.base import Layer
    from .losses import Loss

    Layer._counters.clear()
    Loss._counters.clear()


def standardize_dtype(dtype: Any) -> str:
    """The name of a dtype (``"float32"``, ``"int64"``, ...); ``None`` means ``"float32"``.

    Raises
    ------
    ValueError
        Something that is not a dtype.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.utils.standardize_dtype(np.float64), ln.utils.standardize_dtype(None)
    ('float64', 'float32')
    """
    if dtype is None:
        return "float32"
    if hasattr(dtype, "name") and isinstance(dtype.name, str) and not isinstance(dtype, type):
        dtype = dtype.name
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise ValueError(
            f"standardize_dtype: invalid value for `dtype`: expected a dtype or its name, "
            f"received {dtype!r}."
        ) from None
