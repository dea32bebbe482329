r"""Metrics with Keras's stateful API: ``update_state``, ``result``, ``reset_state``.

A metric accumulates over batches (``update_state(y_true, y_pred, sample_weight)``,
Keras's order) and gives one number for the epoch (``result()``). Its state is a
list of arrays, :attr:`Metric.variables`, made only of **sums** (weighted totals,
weights, confusion-matrix counts): summing the states of several processes
(data-parallel ranks) element by element and calling ``result()`` gives the
metric of all their data. :func:`pack_variables` and :func:`unpack_variables`
flatten them into one buffer for a single all-reduce.

They are chosen by name in ``compile(metrics=[...])`` (Keras's names: ``"accuracy"``,
``"mse"``, ``"mae"``, ``"mape"``, ``"auc"``, ``"precision"``, ``"recall"``, ...), as
objects, or as plain functions ``f(y_true, y_pred)`` returning per-sample values
(wrapped in :class:`MeanMetricWrapper`); the logs use the name given.

Mean-type metrics follow Keras's weighting: per-sample values :math:`m_n` (a value
with more axes, e.g. per time step, is first averaged over them) give
:math:`\sum_n w_n m_n / \sum_n w_n`, or the plain mean without weights. The trainer's
older calls ``update(y_pred, y_true, sample_weight)`` (prediction first) and
``reset()`` remain as aliases.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._validation import (
    as_array,
    check_finite,
    check_number,
    is_int,
    missing_attribute,
    shape_str,
    snake_case,
)

if TYPE_CHECKING:
    from .variables import Variable

EPSILON = 1e-7
NEG_INF = -1e10  # Keras's threshold when `top_k` is given and no threshold is


def check_sample_weight(
    sample_weight: Any, n: int, owner: str, per_step: bool = False
) -> np.ndarray:
    """``sample_weight`` as a float64 array of shape ``(n,)``, non-negative and finite.

    With ``per_step``, also ``(n, T, ...)``: one weight per time step (Keras's temporal
    sample weights; a trailing axis of length 1 is dropped), checked against the loss's
    values when a loss takes them.
    """
    w = as_array(sample_weight, owner, "sample_weight")
    if w.shape == (n, 1) or (per_step and w.ndim >= 3 and w.shape[-1] == 1):
        w = w[..., 0]
    if w.shape != (n,) and not (per_step and w.ndim >= 2 and len(w) == n):
        expected = f"({n},) (one weight per sample)"
        if per_step:
            expected += f" or ({n}, timesteps) (one per time step)"
        raise ValueError(
            f"{owner}: expected `sample_weight` of shape {expected}, "
            f"received shape {shape_str(w.shape)}."
        )
    w = w.astype(np.float64)
    check_finite(w, owner, "sample_weight")
    if np.any(w < 0):
        raise ValueError(
            f"{owner}: expected non-negative `sample_weight`, received a minimum of {w.min()}."
        )
    return w


def _same_rank(a: np.ndarray, b: np.ndarray, expand_rank_1: bool = True):
    """Keras's rule: where ranks differ by one and the longer ends in 1, match them."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1 and expand_rank_1:
            b = b[:, None]
        else:
            a = a[..., 0]
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1 and expand_rank_1:
            a = a[:, None]
        else:
            b = b[..., 0]
    return a, b


def _left_broadcast(w: np.ndarray, shape: tuple[int, ...], owner: str) -> np.ndarray:
    """Weights whose shape starts ``shape`` (one per sample, per step, ...) broadcast to it."""
    if w.ndim > len(shape) or w.shape != shape[: w.ndim]:
        raise ValueError(
            f"{owner}: expected `sample_weight` of shape {shape_str(shape[:1])} (one weight per "
            f"sample) or a leading part of {shape_str(shape)}, received shape "
            f"{shape_str(w.shape)}."
        )
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def _weights(sample_weight: Any, owner: str) -> np.ndarray:
    w = as_array(sample_weight, owner, "sample_weight").astype(np.float64)
    check_finite(w, owner, "sample_weight")
    return w


def _divide(a: Any, b: Any) -> Any:
    """``a / b``, 0 where ``b`` is 0 (Keras's ``divide_no_nan``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    out = np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)
    return out


def _scalar(x: np.ndarray) -> float | np.ndarray:
    return float(np.asarray(x).reshape(-1)[0]) if np.size(x) == 1 and np.ndim(x) <= 1 else x


class Metric:
    r"""Base class: Keras's stateful metric, its state a list of summable arrays.

    A subclass creates its state with :meth:`add_variable` in ``__init__`` (or in
    a ``build`` at the first update, when the shape depends on the data), adds
    to it in :meth:`update_state` and computes :meth:`result` from it.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default: the metric's Keras name).
    dtype : str, optional
        Accepted for Keras compatibility; states are float64, results floats.

    Attributes
    ----------
    variables : list of ndarray
        The state, float64 arrays that are sums over the batches seen. Summing
        the ``variables`` of several ranks element by element (then assigning
        them in place) makes :meth:`result` the metric of all their data.

    Raises
    ------
    ValueError
        ``<Metric>: invalid value for `name`: expected a non-empty str, ...``;
        in :meth:`update_state`, shapes that do not match and weights that do
        not broadcast, each naming the metric.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.MeanAbsoluteError()
    >>> m.update_state(np.array([[1.0], [3.0]]), np.array([[0.0], [0.0]]), sample_weight=[1, 3])
    >>> m.result()
    2.5
    >>> [v.tolist() for v in m.variables]  # weighted total and total weight
    [10.0, 4.0]
    """

    name = "metric"
    #: Whether larger is better (``"up"``) or smaller (``"down"``), for callbacks that monitor.
    direction: str = "up"

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"{type(self).__name__}: invalid value for `name`: expected a non-empty "
                    f"str, received {name!r}."
                )
            self.name = name
        self.dtype = dtype or "float32"
        self._state: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # -------------------------------------------------------------- state
    def _add_state(self, name: str, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Create a zero state array (float64) kept in :attr:`variables`; returns it."""
        var = np.zeros(shape, dtype=np.float64)
        self._state[name] = var
        return var

    def add_variable(
        self,
        shape: tuple[int, ...] = (),
        initializer: Any = "zeros",
        dtype: str | None = None,
        aggregation: str = "sum",
        name: str | None = None,
    ) -> Variable:
        """A state variable of a metric of your own (Keras's ``Metric.add_variable``).

        Parameters
        ----------
        shape : tuple of int, default ()
            Its shape.
        initializer : str or callable, default "zeros"
            Its first value (an initializer name or ``initializer(shape, dtype)``);
            :meth:`reset_state` sets it back to zeros, as in Keras.
        dtype : str, optional
            Accepted for Keras compatibility; the state is float64.
        aggregation : {"sum", "mean"}, default "sum"
            Accepted for Keras compatibility (how ranks combine it).
        name : str, optional
            Its name (``"variable_<i>"`` by default).

        Returns
        -------
        Variable
            A view of the state array: ``assign``, ``assign_add``, ``numpy()``.

        Raises
        ------
        ValueError
            ``name`` already used, or an ``aggregation`` other than "sum" or "mean".

        Examples
        --------
        >>> import layernet as ln
        >>> class Count(ln.metrics.Metric):
        ...     def __init__(self):
        ...         super().__init__(name="count")
        ...         self.n = self.add_variable(shape=(), initializer="zeros", name="n")
        ...     def update_state(self, y_true, y_pred, sample_weight=None):
        ...         self.n.assign_add(len(y_true))
        ...     def result(self):
        ...         return self.n
        >>> m = Count()
        >>> m.update_state([1, 2, 3], [1, 2, 3])
        >>> float(m.result().numpy())
        3.0
        """
        from . import initializers
        from .variables import Variable as _Variable

        if aggregation not in ("sum", "mean"):
            raise ValueError(
                f"{type(self).__name__}: invalid value for `aggregation`: expected 'sum' or "
                f"'mean', received {aggregation!r}."
            )
        name = name or f"variable_{len(self._state)}"
        if name in self._state:
            raise ValueError(
                f"{type(self).__name__}: invalid value for `name`: a variable named "
                f"{name!r} exists already."
            )
        shape = tuple(shape)
        var = self._add_state(name, shape)
        if callable(initializer) and not isinstance(initializer, initializers.Initializer):
            value = initializer(shape, "float64")
        else:
            obj = initializers.get(initializer, type(self).__name__, "initializer")
            fan = max(1, math.prod(shape))
            value = obj(shape, fan, fan, np.random.default_rng(), np.float64)
        var[...] = np.asarray(value, dtype=np.float64).reshape(shape)
        return _Variable._view(var, name, False, self)

    def add_weight(
        self,
        shape: tuple[int, ...] = (),
        initializer: Any = None,
        dtype: str | None = None,
        name: str | None = None,
    ) -> Variable:
        """Alias of :meth:`add_variable` (Keras's ``Metric.add_weight``; zeros by default)."""
        return self.add_variable(shape, initializer or "zeros", dtype, "sum", name)

    @property
    def variables(self) -> list[np.ndarray]:
        """The state arrays, in creation order (the arrays themselves, assignable in place)."""
        return list(self._state.values())

    def reset_state(self) -> None:
        """Forget every batch seen so far (the state arrays are zeroed in place)."""
        for var in self._state.values():
            var[...] = 0

    def reset(self) -> None:
        """Alias of :meth:`reset_state` (the trainer's name)."""
        self.reset_state()

    # -------------------------------------------------------------- updates
    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Add one batch (Keras's order: target first)."""
        raise NotImplementedError

    def update(self, y_pred: Any, y_true: Any, sample_weight: Any = None) -> None:
        """:meth:`update_state` with the prediction first (the trainer's order)."""
        self.update_state(y_true, y_pred, sample_weight)

    def result(self) -> Any:
        """The metric over every batch since the last reset."""
        raise NotImplementedError

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Update with one batch and return :meth:`result` (as Keras's ``metric(...)``)."""
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    # -------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-serialisable)."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Rebuild a metric from :meth:`get_config`'s output."""
        return cls(**config)


def pack_variables(metrics: Sequence[Metric]) -> np.ndarray:
    """Every metric's state in one flat float64 buffer (for one all-reduce by sum).

    Parameters
    ----------
    metrics : sequence of Metric

    Returns
    -------
    ndarray of shape (total size,)

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> a, b = ln.metrics.Mean(), ln.metrics.Mean()
    >>> a.update_state([1.0, 2.0]); b.update_state([6.0])
    >>> summed = ln.metrics.pack_variables([a]) + ln.metrics.pack_variables([b])
    >>> ln.metrics.unpack_variables([a], summed)
    >>> a.result()  # the mean of all three values
    3.0
    """
    arrays = [v.ravel() for m in metrics for v in m.variables]
    return np.concatenate(arrays) if arrays else np.zeros(0)


def unpack_variables(metrics: Sequence[Metric], flat: np.ndarray) -> None:
    """Assign a buffer made by :func:`pack_variables` (e.g. summed over ranks) back in place.

    Raises
    ------
    ValueError
        A buffer whose size is not that of the metrics' states.
    """
    sizes = [v.size for m in metrics for v in m.variables]
    flat = np.asarray(flat, dtype=np.float64)
    if flat.shape != (sum(sizes),):
        raise ValueError(
            f"unpack_variables: expected a buffer of shape ({sum(sizes)},), received shape "
            f"{shape_str(flat.shape)}."
        )
    offset = 0
    for m in metrics:
        for v in m.variables:
            v[...] = flat[offset : offset + v.size].reshape(v.shape)
            offset += v.size


# ============================================================================ reductions
class Sum(Metric):
    """Keras's ``Sum``: the (weighted) sum of the values given.

    Parameters
    ----------
    name : str, default "sum"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.Sum()
    >>> m.update_state([1.0, 3.0, 5.0], sample_weight=[1, 0, 2])
    >>> m.result()
    11.0
    """

    name = "sum"

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name, dtype)
        self.total = self._add_state("total")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Add ``values`` (times ``sample_weight``, broadcast from the left)."""
        v, _ = _samplewise(self.name, values, sample_weight, np.sum)
        self.total += v.sum()

    def update(self, y_pred: Any, y_true: Any = None, sample_weight: Any = None) -> None:
        self.update_state(y_pred, sample_weight)

    def result(self) -> float:
        return float(self.total)


def _samplewise(owner, values, sample_weight, reduce):
    """Keras's reduction of values (and weights) to one per sample: ``(values * w, w)``."""
    v = as_array(values, owner, "values").astype(np.float64)
    w = None
    if sample_weight is not None:
        w = _weights(sample_weight, owner)
        v, w = _same_rank(v, w)
        if v.ndim > w.ndim:
            v = reduce(v, axis=tuple(range(w.ndim, v.ndim)))
        w = _left_broadcast(w, v.shape, owner)
        v = v * w
        if w.ndim > 1:
            w = reduce(w, axis=tuple(range(1, w.ndim)))
    if v.ndim > 1:
        v = reduce(v, axis=tuple(range(1, v.ndim)))
    return v, w


class Mean(Metric):
    """Keras's ``Mean``: the (weighted) mean of the values given.

    Values with more than one axis are first averaged per sample (over every
    axis but the first, or over the axes the weights do not have).

    Parameters
    ----------
    name : str, default "mean"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.Mean()
    >>> m.update_state([1.0, 3.0, 5.0], sample_weight=[1, 0, 2])
    >>> round(m.result(), 6)
    3.666667
    """

    name = "mean"
    direction = "down"

    def __init__(self, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name, dtype)
        self.total = self._add_state("total")
        self.count = self._add_state("count")

    def update_state(self, values: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        """Add ``values`` with their weights."""
        v, w = _samplewise(self.name, values, sample_weight, np.mean)
        self.total += v.sum()
        self.count += w.sum() if w is not None else (v.shape[0] if v.ndim else 1)

    def update(self, y_pred: Any, y_true: Any = None, sample_weight: Any = None) -> None:
        self.update_state(y_pred, sample_weight)

    def result(self) -> float:
        return float(_divide(self.total, self.count))


class MeanMetricWrapper(Mean):
    """Keras's ``MeanMetricWrapper``: the weighted mean of ``fn(y_true, y_pred)``.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)`` returning per-sample values (shape
        ``(N,)`` or ``(N, ...)``), e.g. :func:`layernet.losses.huber`.
    name : str, optional
        Default: the function's name.
    dtype : str, optional
    **kwargs
        Passed to ``fn``.

    Raises
    ------
    ValueError
        ``fn`` not callable.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.MeanMetricWrapper(lambda t, p: np.abs(t - p).max(axis=-1), name="max_err")
    >>> m.update_state(np.zeros((2, 2)), np.array([[1.0, -3.0], [0.5, 0.0]]))
    >>> m.result()
    1.75
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise ValueError(
                f"MeanMetricWrapper: invalid value for `fn`: expected a function "
                f"f(y_true, y_pred), received {fn!r}."
            )
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        y_true = as_array(y_true, self.name, "y_true")
        y_pred = as_array(y_pred, self.name, "y_pred")
        if y_pred.ndim == 0:
            raise ValueError(
                f"{self.name}: expected predictions with a batch axis, received a scalar."
            )
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def update(self, y_pred: Any, y_true: Any = None, sample_weight: Any = None) -> None:
        self.update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        """Rebuild the metric of a named built-in function (a wrapper of your own: pass ``fn``)."""
        config = dict(config)
        fn = config.pop("fn", None) or _FUNCTIONS.get(config.get("name", ""))
        if fn is None:
            raise ValueError(
                f"MeanMetricWrapper.from_config: expected a config with `fn`, or the name of a "
                f"built-in metric function, received {config!r}."
            )
        return cls(fn, **config)


# ============================================================================ functions
def _pair(y_true: Any, y_pred: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    t = as_array(y_true, owner, "y_true")
    p = as_array(y_pred, owner, "y_pred")
    if p.ndim == 0:
        raise ValueError(f"{owner}: expected predictions with a batch axis, received a scalar.")
    return t, p


def _matched(y_true: Any, y_pred: Any, owner: str) -> tuple[np.ndarray, np.ndarray]:
    t, p = _same_rank(*_pair(y_true, y_pred, owner))
    if t.shape != p.shape:
        raise ValueError(
            f"{owner}: expected targets of the predictions' shape {shape_str(p.shape)}, "
            f"received shape {shape_str(t.shape)}."
        )
    return t.astype(np.float64), p.astype(np.float64)


def _labels(y_true: np.ndarray, y_pred: np.ndarray, owner: str) -> np.ndarray:
    """Integer labels of the predictions' shape without its class axis."""
    t = y_true
    if t.ndim == y_pred.ndim and t.shape[-1] == 1:
        t = t[..., 0]
    if t.shape != y_pred.shape[:-1]:
        raise ValueError(
            f"{owner}: expected integer labels of shape {shape_str(y_pred.shape[:-1])} (or with "
            f"a last axis of 1) for predictions of shape {shape_str(y_pred.shape)}, received "
            f"shape {shape_str(y_true.shape)}."
        )
    if t.dtype.kind == "f" and not np.array_equal(t, np.round(t)):
        raise ValueError(f"{owner}: expected integer labels, received non-integer values.")
    return t.astype(np.int64)


def _classes(y_pred: np.ndarray, owner: str) -> None:
    if y_pred.ndim < 2:
        raise ValueError(
            f"{owner}: expected predictions of shape (N, ..., classes), received shape "
            f"{shape_str(y_pred.shape)}."
        )


def accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Keras's ``accuracy``: 1 where the prediction equals the target exactly, per entry.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.accuracy([[1], [2]], [[1], [3]])
    array([[1.],
           [0.]])
    """
    t, p = _matched(y_true, y_pred, "accuracy")
    return (t == p).astype(np.float64)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Keras's ``binary_accuracy``: mean over the last axis of ``(y_pred > threshold) == y_true``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.binary_accuracy([[1, 0], [1, 1]], [[0.7, 0.6], [0.9, 0.8]])
    array([0.5, 1. ])
    """
    t, p = _matched(y_true, y_pred, "binary_accuracy")
    return np.mean(t == (p > threshold), axis=-1)


def categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Keras's ``categorical_accuracy``: 1 where the arg-max of prediction and one-hot agree.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.categorical_accuracy([[0, 1], [0, 1]], [[0.1, 0.9], [0.8, 0.2]])
    array([1., 0.])
    """
    t, p = _pair(y_true, y_pred, "categorical_accuracy")
    _classes(p, "categorical_accuracy")
    if t.shape != p.shape:
        raise ValueError(
            f"categorical_accuracy: expected one-hot targets of the predictions' shape "
            f"{shape_str(p.shape)}, received shape {shape_str(t.shape)}."
        )
    return (t.argmax(axis=-1) == p.argmax(axis=-1)).astype(np.float64)


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """Keras's ``sparse_categorical_accuracy``: 1 where the arg-max is the integer label.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.sparse_categorical_accuracy([1, 1], [[0.1, 0.9], [0.8, 0.2]])
    array([1., 0.])
    """
    t, p = _pair(y_true, y_pred, "sparse_categorical_accuracy")
    _classes(p, "sparse_categorical_accuracy")
    labels = _labels(t, p, "sparse_categorical_accuracy")
    return (p.argmax(axis=-1) == labels).astype(np.float64)


def _in_top_k(p: np.ndarray, labels: np.ndarray, k: int, owner: str) -> np.ndarray:
    n_classes = p.shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"{owner}: expected labels in [0, {n_classes - 1}], received labels from "
            f"{labels.min()} to {labels.max()}."
        )
    at_label = np.take_along_axis(p, labels[..., None], axis=-1)
    rank = 1 + np.sum(p > at_label, axis=-1)  # ties with the label's score count as in
    return (rank <= k).astype(np.float64)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """Keras's ``top_k_categorical_accuracy``: 1 where the one-hot class is among the k largest.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.top_k_categorical_accuracy([[0, 1, 0]], [[0.5, 0.3, 0.2]], k=2)
    array([1.])
    """
    t, p = _pair(y_true, y_pred, "top_k_categorical_accuracy")
    _classes(p, "top_k_categorical_accuracy")
    if t.shape != p.shape:
        raise ValueError(
            f"top_k_categorical_accuracy: expected one-hot targets of the predictions' shape "
            f"{shape_str(p.shape)}, received shape {shape_str(t.shape)}."
        )
    return _in_top_k(p, t.argmax(axis=-1), k, "top_k_categorical_accuracy")


def sparse_top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> np.ndarray:
    """Keras's ``sparse_top_k_categorical_accuracy``: the integer label among the k largest.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.sparse_top_k_categorical_accuracy([2], [[0.5, 0.3, 0.2]], k=2)
    array([0.])
    """
    owner = "sparse_top_k_categorical_accuracy"
    t, p = _pair(y_true, y_pred, owner)
    _classes(p, owner)
    return _in_top_k(p, _labels(t, p, owner), k, owner)


def mean_squared_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Keras's ``mean_squared_error``: mean over the last axis of :math:`(t - x)^2`.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.mean_squared_error([[0.0, 0.0]], [[1.0, 3.0]])
    array([5.])
    """
    t, p = _matched(y_true, y_pred, "mean_squared_error")
    return np.mean((t - p) ** 2, axis=-1)


def mean_absolute_error(y_true: Any, y_pred: Any) -> np.ndarray:
    """Keras's ``mean_absolute_error``: mean over the last axis of :math:`|t - x|`.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.mean_absolute_error([[0.0, 0.0]], [[1.0, -3.0]])
    array([2.])
    """
    t, p = _matched(y_true, y_pred, "mean_absolute_error")
    return np.mean(np.abs(t - p), axis=-1)


def mean_absolute_percentage_error(y_true: Any, y_pred: Any) -> np.ndarray:
    r"""Keras's ``mean_absolute_percentage_error``: :math:`100\,|t - x|/\max(|t|, \epsilon)`, mean.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.mean_absolute_percentage_error([[2.0, 4.0]], [[1.0, 5.0]])
    array([37.5])
    """
    t, p = _matched(y_true, y_pred, "mean_absolute_percentage_error")
    return 100 * np.mean(np.abs(t - p) / np.maximum(np.abs(t), EPSILON), axis=-1)


def mean_squared_logarithmic_error(y_true: Any, y_pred: Any) -> np.ndarray:
    r"""Keras's ``mean_squared_logarithmic_error``: of :math:`\log(1 + \max(\cdot, \epsilon))`.

    Examples
    --------
    >>> import layernet as ln
    >>> round(float(ln.metrics.mean_squared_logarithmic_error([[1.0]], [[0.0]])[0]), 4)
    0.4805
    """
    t, p = _matched(y_true, y_pred, "mean_squared_logarithmic_error")
    a = np.log1p(np.maximum(p, EPSILON)) - np.log1p(np.maximum(t, EPSILON))
    return np.mean(a * a, axis=-1)


def _auto_accuracy(y_true: Any, y_pred: Any) -> np.ndarray:
    """The accuracy the string ``"accuracy"`` means, picked from the shapes as Keras does."""
    t, p = _pair(y_true, y_pred, "accuracy")
    if p.ndim == 1 or p.shape[-1] == 1:
        return binary_accuracy(t, p)
    if t.ndim < p.ndim or t.shape[-1] == 1:
        return sparse_categorical_accuracy(t, p)
    return categorical_accuracy(t, p)


# ============================================================================ wrappers
class _Wrapper(MeanMetricWrapper):
    """A built-in :class:`MeanMetricWrapper` with its function and arguments fixed."""

    fn: ClassVar[Callable[..., Any]]

    def __init__(self, name: str | None = None, dtype: str | None = None, **kwargs: Any) -> None:
        super().__init__(type(self).fn, name or type(self).name, dtype, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return Metric.get_config(self) | self._fn_kwargs

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)


class Accuracy(_Wrapper):
    """Keras's ``Accuracy``: how often the prediction equals the target exactly.

    This is the class; the *string* ``"accuracy"`` in ``compile`` picks binary,
    sparse categorical or categorical accuracy from the shapes (as Keras does)
    — :func:`get` returns that metric, named as given.

    Parameters
    ----------
    name : str, default "accuracy"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.Accuracy()
    >>> m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    >>> m.result()
    0.75
    """

    name = "accuracy"
    fn = staticmethod(accuracy)


class BinaryAccuracy(_Wrapper):
    """Keras's ``BinaryAccuracy``: share of entries where ``y_pred > threshold`` equals ``y_true``.

    Parameters
    ----------
    name : str, default "binary_accuracy"
    dtype : str, optional
    threshold : float, default 0.5

    Raises
    ------
    ValueError
        a ``threshold`` that is not a number; targets whose shape is not the predictions'.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.BinaryAccuracy()
    >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1.0], [0.0], [0.6]])
    >>> m.result()
    0.75
    """

    name = "binary_accuracy"
    fn = staticmethod(binary_accuracy)

    def __init__(
        self, name: str | None = None, dtype: str | None = None, threshold: float = 0.5
    ) -> None:
        threshold = check_number(threshold, "threshold", "BinaryAccuracy")
        super().__init__(name, dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(_Wrapper):
    """Keras's ``CategoricalAccuracy``: arg-max of the prediction equals that of the one-hot target.

    Over any rank: predictions ``(N, ..., classes)`` give one value per position.

    Parameters
    ----------
    name : str, default "categorical_accuracy"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.CategoricalAccuracy()
    >>> m.update_state([[0, 1], [0, 1]], [[0.1, 0.9], [0.8, 0.2]])
    >>> m.result()
    0.5
    """

    name = "categorical_accuracy"
    fn = staticmethod(categorical_accuracy)


class SparseCategoricalAccuracy(_Wrapper):
    """Keras's ``SparseCategoricalAccuracy``: arg-max of the prediction equals the integer label.

    Parameters
    ----------
    name : str, default "sparse_categorical_accuracy"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.SparseCategoricalAccuracy()
    >>> m.update_state([1, 1], [[0.1, 0.9], [0.8, 0.2]])
    >>> m.result()
    0.5
    """

    name = "sparse_categorical_accuracy"
    fn = staticmethod(sparse_categorical_accuracy)


class TopKCategoricalAccuracy(_Wrapper):
    """Keras's ``TopKCategoricalAccuracy``: the one-hot class among the ``k`` largest outputs.

    Ties with the ``k``-th largest output count as in (as in Keras).

    Parameters
    ----------
    k : int, default 5
    name : str, default "top_k_categorical_accuracy"
    dtype : str, optional

    Raises
    ------
    ValueError
        ``k`` not a positive int.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.TopKCategoricalAccuracy(k=2)
    >>> m.update_state([[0, 1, 0], [0, 0, 1]], [[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    >>> m.result()
    0.5
    """

    name = "top_k_categorical_accuracy"
    fn = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None, dtype: str | None = None) -> None:
        if not is_int(k) or k < 1:
            raise ValueError(
                f"{type(self).__name__}: invalid value for `k`: expected a positive int, "
                f"received {k!r}."
            )
        super().__init__(name, dtype, k=int(k))
        self.k = int(k)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Keras's ``SparseTopKCategoricalAccuracy``: the integer label among the ``k`` largest.

    Parameters
    ----------
    k : int, default 5
    name : str, default "sparse_top_k_categorical_accuracy"
    dtype : str, optional

    Raises
    ------
    ValueError
        ``k`` not a positive int; labels of the wrong shape.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.SparseTopKCategoricalAccuracy(k=1)
    >>> m.update_state([0, 1], [[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])
    >>> m.result()
    0.5
    """

    name = "sparse_top_k_categorical_accuracy"
    fn = staticmethod(sparse_top_k_categorical_accuracy)


class MeanSquaredError(_Wrapper):
    """Keras's ``MeanSquaredError`` metric: the weighted mean of :func:`mean_squared_error`.

    Parameters
    ----------
    name : str, default "mean_squared_error"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.MeanSquaredError()
    >>> m.update_state([[0.0, 0.0]], [[1.0, 3.0]])
    >>> m.result()
    5.0
    """

    name = "mean_squared_error"
    direction = "down"
    fn = staticmethod(mean_squared_error)


class MeanAbsoluteError(_Wrapper):
    """Keras's ``MeanAbsoluteError`` metric: the weighted mean of :func:`mean_absolute_error`.

    Parameters
    ----------
    name : str, default "mean_absolute_error"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.MeanAbsoluteError()
    >>> m.update_state([[0.0, 0.0]], [[1.0, -3.0]])
    >>> m.result()
    2.0
    """

    name = "mean_absolute_error"
    direction = "down"
    fn = staticmethod(mean_absolute_error)


class MeanAbsolutePercentageError(_Wrapper):
    """Keras's ``MeanAbsolutePercentageError`` metric (of :func:`mean_absolute_percentage_error`).

    Parameters
    ----------
    name : str, default "mean_absolute_percentage_error"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.MeanAbsolutePercentageError()
    >>> m.update_state([[2.0, 4.0]], [[1.0, 5.0]])
    >>> m.result()
    37.5
    """

    name = "mean_absolute_percentage_error"
    direction = "down"
    fn = staticmethod(mean_absolute_percentage_error)


class RootMeanSquaredError(Mean):
    r"""Keras's ``RootMeanSquaredError``: :math:`\sqrt{\text{weighted mean of }(t - x)^2}`.

    The state is that of :class:`Mean` over the squared errors, so it sums
    across ranks; the square root is taken in :meth:`result`.

    Parameters
    ----------
    name : str, default "root_mean_squared_error"
    dtype : str, optional

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.RootMeanSquaredError()
    >>> m.update_state([[0.0], [0.0]], [[3.0], [4.0]], sample_weight=[1, 1])
    >>> round(m.result(), 6)  # sqrt((9 + 16) / 2)
    3.535534
    """

    name = "root_mean_squared_error"

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:  # type: ignore[override]
        t, p = _matched(y_true, y_pred, self.name)
        super().update_state((p - t) ** 2, sample_weight)

    def update(self, y_pred: Any, y_true: Any = None, sample_weight: Any = None) -> None:
        self.update_state(y_true, y_pred, sample_weight)

    def result(self) -> float:
        return math.sqrt(super().result())


class _AutoAccuracy(_Wrapper):
    """What the string ``"accuracy"`` (``"acc"``) gives: Keras's choice from the shapes."""

    name = "accuracy"
    fn = staticmethod(_auto_accuracy)


# ============================================================================ confusion
def _check_thresholds(thresholds: Any, owner: str, default: float) -> list[float]:
    if thresholds is None:
        return [default]
    values = [thresholds] if not isinstance(thresholds, list | tuple | np.ndarray) else thresholds
    out = []
    for t in values:
        if isinstance(t, bool) or not isinstance(t, int | float | np.number) or not 0 <= t <= 1:
            raise ValueError(
                f"{owner}: invalid value for `thresholds`: expected a float or a list of floats "
                f"in [0, 1], received {thresholds!r}."
            )
        out.append(float(t))
    if not out:
        raise ValueError(f"{owner}: invalid value for `thresholds`: expected at least one.")
    return out


def _confusion(
    owner: str,
    y_true: Any,
    y_pred: Any,
    sample_weight: Any,
    thresholds: np.ndarray,
    top_k: int | None = None,
    class_id: int | None = None,
    multi_label: bool = False,
) -> dict[str, np.ndarray]:
    """Weighted counts of tp, fp, tn, fn at each threshold (``prediction > threshold``).

    Shapes ``(T,)``, or ``(T, labels)`` with ``multi_label``.
    """
    p, t = _same_rank(*reversed(_pair(y_true, y_pred, owner)))
    if t.shape != p.shape:
        raise ValueError(
            f"{owner}: expected targets of the predictions' shape {shape_str(p.shape)}, "
            f"received shape {shape_str(t.shape)}."
        )
    p = p.astype(np.float64)
    w = None
    if sample_weight is not None:
        w = _weights(sample_weight, owner)
        if w.ndim == p.ndim and w.ndim and w.shape[-1] == 1 and p.shape[-1] != 1:
            w = w[..., 0]  # (N, 1) weights for (N, K) predictions: one per sample
        elif w.ndim == p.ndim + 1 and w.shape[-1] == 1:
            w = w[..., 0]
        w = _left_broadcast(w, p.shape, owner)
    if top_k is not None:
        kth = -np.sort(-p, axis=-1)[..., top_k - 1 : top_k]
        p = np.where(p >= kth, p, NEG_INF)
    if class_id is not None:
        if p.ndim < 2 or not 0 <= class_id < p.shape[-1]:
            raise ValueError(
                f"{owner}: invalid value for `class_id`: expected a class of predictions of "
                f"shape {shape_str(p.shape)}, received {class_id}."
            )
        t, p = t[..., class_id], p[..., class_id]
        w = None if w is None else w[..., class_id]
    label = t.astype(bool)
    weight = np.ones(p.shape) if w is None else np.asarray(w, dtype=np.float64)
    if multi_label:
        n_labels = p.shape[-1] if p.ndim > 1 else 1
        cols = [
            _counts(
                p.reshape(-1, n_labels)[:, j],
                label.reshape(-1, n_labels)[:, j],
                weight.reshape(-1, n_labels)[:, j],
                thresholds,
            )
            for j in range(n_labels)
        ]
        return {k: np.stack([c[k] for c in cols], axis=1) for k in ("tp", "fp", "tn", "fn")}
    return _counts(p.ravel(), label.ravel(), weight.ravel(), thresholds)


def _counts(p, label, w, thresholds):
    """Weighted positives and negatives above each threshold, by sorting once."""
    out = {}
    for cls_name, mask in (("pos", label), ("neg", ~label)):
        pp, ww = p[mask], w[mask]
        order = np.argsort(pp, kind="stable")
        sorted_p, cum = pp[order], np.concatenate([[0.0], np.cumsum(ww[order])])
        at_or_below = cum[np.searchsorted(sorted_p, thresholds, side="right")]
        out[cls_name] = (cum[-1] - at_or_below, at_or_below)
    return {
        "tp": out["pos"][0],
        "fn": out["pos"][1],
        "fp": out["neg"][0],
        "tn": out["neg"][1],
    }


class _ConfusionMatrixConditionCount(Metric):
    """One weighted confusion-matrix count at each threshold."""

    _key: ClassVar[str] = "tp"

    def __init__(
        self,
        thresholds: float | list[float] | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name, dtype)
        self.init_thresholds = thresholds
        self.thresholds = _check_thresholds(thresholds, type(self).__name__, 0.5)
        self.accumulator = self._add_state("accumulator", (len(self.thresholds),))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = _confusion(self.name, y_true, y_pred, sample_weight, np.asarray(self.thresholds))
        self.accumulator += counts[self._key]

    def result(self) -> float | np.ndarray:
        return _scalar(self.accumulator.copy())

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Keras's ``TruePositives``: the weighted count of ``y_true = 1`` with ``y_pred > threshold``.

    Parameters
    ----------
    thresholds : float or list of float, default 0.5
        In [0, 1]; with a list the result is an array, one count per threshold.
    name : str, default "true_positives"
    dtype : str, optional

    Raises
    ------
    ValueError
        thresholds outside [0, 1]; targets whose shape is not the predictions'.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.TruePositives()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1], sample_weight=[0, 0, 1, 2])
    >>> m.result()
    3.0
    """

    name = "true_positives"
    _key = "tp"


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Keras's ``TrueNegatives``: the weighted count of ``y_true = 0`` with ``y_pred <= threshold``.

    Parameters
    ----------
    thresholds : float or list of float, default 0.5
    name : str, default "true_negatives"
    dtype : str, optional

    Raises
    ------
    ValueError
        thresholds outside [0, 1]; targets whose shape is not the predictions'.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.TrueNegatives()
    >>> m.update_state([0, 1, 0, 0], [1, 1, 0, 0])
    >>> m.result()
    2.0
    """

    name = "true_negatives"
    _key = "tn"


class FalsePositives(_ConfusionMatrixConditionCount):
    """Keras's ``FalsePositives``: the weighted count of ``y_true = 0`` with ``y_pred > threshold``.

    Parameters
    ----------
    thresholds : float or list of float, default 0.5
    name : str, default "false_positives"
    dtype : str, optional

    Raises
    ------
    ValueError
        thresholds outside [0, 1]; targets whose shape is not the predictions'.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.FalsePositives()
    >>> m.update_state([0, 1, 0, 0], [0, 0, 1, 1])
    >>> m.result()
    2.0
    """

    name = "false_positives"
    _key = "fp"


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Keras's ``FalseNegatives``: the weighted count of ``y_true = 1``, ``y_pred <= threshold``.

    Parameters
    ----------
    thresholds : float or list of float, default 0.5
    name : str, default "false_negatives"
    dtype : str, optional

    Raises
    ------
    ValueError
        thresholds outside [0, 1]; targets whose shape is not the predictions'.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.FalseNegatives()
    >>> m.update_state([0, 1, 1, 1], [0, 1, 0, 0])
    >>> m.result()
    2.0
    """

    name = "false_negatives"
    _key = "fn"


class _PrecisionRecall(Metric):
    """Precision and recall: true positives and one other count per threshold."""

    _other: ClassVar[str] = "fp"

    def __init__(
        self,
        thresholds: float | list[float] | None = None,
        top_k: int | None = None,
        class_id: int | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name, dtype)
        owner = type(self).__name__
        for arg, value in (("top_k", top_k), ("class_id", class_id)):
            if value is not None and (not is_int(value) or value < (1 if arg == "top_k" else 0)):
                raise ValueError(
                    f"{owner}: invalid value for `{arg}`: expected None or a "
                    f"{'positive' if arg == 'top_k' else 'non-negative'} int, received {value!r}."
                )
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = _check_thresholds(thresholds, owner, 0.5 if top_k is None else NEG_INF)
        self.true_positives = self._add_state("true_positives", (len(self.thresholds),))
        other = "false_positives" if self._other == "fp" else "false_negatives"
        self.other = self._add_state(other, (len(self.thresholds),))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        counts = _confusion(
            self.name,
            y_true,
            y_pred,
            sample_weight,
            np.asarray(self.thresholds),
            self.top_k,
            self.class_id,
        )
        self.true_positives += counts["tp"]
        self.other += counts[self._other]

    def result(self) -> float | np.ndarray:
        return _scalar(_divide(self.true_positives, self.true_positives + self.other))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecall):
    r"""Keras's ``Precision``: :math:`\mathrm{TP}/(\mathrm{TP} + \mathrm{FP})`, weighted counts.

    Parameters
    ----------
    thresholds : float or list of float, optional
        A prediction above the threshold is positive; default 0.5 (with
        ``top_k``, every top-``k`` entry is positive). A list gives one value each.
    top_k : int, optional
        Only the ``k`` largest predictions of each sample may be positive.
    class_id : int, optional
        The precision of this class alone (the last axis's index).
    name : str, default "precision"
    dtype : str, optional

    Raises
    ------
    ValueError
        thresholds outside [0, 1]; an invalid ``top_k`` or ``class_id``;
        targets whose shape is not the predictions'.

    Notes
    -----
    The state is the weighted true- and false-positive counts, so it sums
    across ranks. With no positive prediction the result is 0 (as in Keras).

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.Precision()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> round(m.result(), 6)
    0.666667
    """

    name = "precision"
    _other = "fp"


class Recall(_PrecisionRecall):
    r"""Keras's ``Recall``: :math:`\mathrm{TP}/(\mathrm{TP} + \mathrm{FN})`, weighted counts.

    Parameters
    ----------
    thresholds : float or list of float, optional
        As in :class:`Precision`.
    top_k : int, optional
    class_id : int, optional
    name : str, default "recall"
    dtype : str, optional

    Raises
    ------
    ValueError
        As :class:`Precision`.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.Recall()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> round(m.result(), 6)
    0.666667
    """

    name = "recall"
    _other = "fn"


class AUC(Metric):
    r"""Keras's ``AUC``: area under the ROC or precision-recall curve, from threshold counts.

    Parameters
    ----------
    num_thresholds : int, default 200
        Evenly spaced thresholds in [0, 1], the first just below 0 and the last
        just above 1 (:math:`\mp\epsilon`, :math:`\epsilon = 10^{-7}`).
    curve : {"ROC", "PR"}, default "ROC"
    summation_method : {"interpolation", "minoring", "majoring"}, default "interpolation"
        Trapezoids (for PR, Davis and Goadrich's interpolation of precision, as
        Keras), or the lower/upper Riemann sums.
    name : str, default "auc"
    dtype : str, optional
    thresholds : list of float, optional
        Thresholds in [0, 1] to use instead (ends :math:`\mp\epsilon` added).
    multi_label : bool, default False
        One curve per label (last axis), averaged; otherwise every entry is one
        binary decision.
    num_labels : int, optional
        Accepted for Keras compatibility (the labels are counted at the first update).
    from_logits : bool, default False
        Apply a sigmoid to the predictions first.

    Raises
    ------
    ValueError
        ``num_thresholds`` < 2; an unknown ``curve`` or ``summation_method``;
        thresholds outside [0, 1]; targets whose shape is not the predictions'.

    Notes
    -----
    The state is the weighted counts :math:`\mathrm{TP}_i, \mathrm{FP}_i,
    \mathrm{TN}_i, \mathrm{FN}_i` at each threshold :math:`\theta_i`
    (``y_pred > θ_i``), summable across ranks. ROC: with recall
    :math:`r_i = \mathrm{TP}_i/(\mathrm{TP}_i + \mathrm{FN}_i)` and false-positive
    rate :math:`f_i = \mathrm{FP}_i/(\mathrm{FP}_i + \mathrm{TN}_i)`,
    :math:`\mathrm{AUC} = \sum_i (f_i - f_{i+1})(r_i + r_{i+1})/2`. PR with
    interpolation: precision varies linearly in :math:`P = \mathrm{TP} + \mathrm{FP}`
    between thresholds, integrated exactly (Davis and Goadrich, 2006).

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.AUC(num_thresholds=3)
    >>> m.update_state([0, 0, 1, 1], [0.0, 0.5, 0.3, 0.9])
    >>> m.result()
    0.75
    """

    name = "auc"
    true_positives: np.ndarray
    false_positives: np.ndarray
    true_negatives: np.ndarray
    false_negatives: np.ndarray

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: str | None = None,
        dtype: str | None = None,
        thresholds: list[float] | None = None,
        multi_label: bool = False,
        num_labels: int | None = None,
        from_logits: bool = False,
    ) -> None:
        super().__init__(name, dtype)
        owner = type(self).__name__
        if thresholds is not None:
            inner = sorted(_check_thresholds(list(thresholds), owner, 0.5))
            num_thresholds = len(inner) + 2
        else:
            if not is_int(num_thresholds) or num_thresholds < 2:
                raise ValueError(
                    f"{owner}: invalid value for `num_thresholds`: expected an int > 1, "
                    f"received {num_thresholds!r}."
                )
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        curve_key = str(curve).upper() if isinstance(curve, str) else curve
        if curve_key not in ("ROC", "PR"):
            raise ValueError(
                f"{owner}: invalid value for `curve`: expected 'ROC' or 'PR', received {curve!r}."
            )
        method = str(summation_method).lower() if isinstance(summation_method, str) else None
        if method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f"{owner}: invalid value for `summation_method`: expected 'interpolation', "
                f"'minoring' or 'majoring', received {summation_method!r}."
            )
        for arg, value in (("multi_label", multi_label), ("from_logits", from_logits)):
            if not isinstance(value, bool):
                raise ValueError(
                    f"{owner}: invalid value for `{arg}`: expected a bool, received {value!r}."
                )
        self.num_thresholds = int(num_thresholds)
        self._init_thresholds = thresholds
        self._thresholds = np.array([0.0 - EPSILON, *inner, 1.0 + EPSILON])
        self.curve, self.summation_method = curve_key, method
        self.multi_label, self.num_labels, self.from_logits = multi_label, num_labels, from_logits
        if not multi_label:
            self._build(())
        elif num_labels:
            self._build((int(num_labels),))

    @property
    def thresholds(self) -> list[float]:
        """The thresholds, the two outer ones included."""
        return self._thresholds.tolist()

    def _build(self, labels: tuple[int, ...]) -> None:
        shape = (self.num_thresholds, *labels)
        for key in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            setattr(self, key, self._add_state(key, shape))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        p = as_array(y_pred, self.name, "y_pred").astype(np.float64)
        if self.from_logits:
            p = 0.5 * (1 + np.tanh(0.5 * p))
        counts = _confusion(
            self.name, y_true, p, sample_weight, self._thresholds, multi_label=self.multi_label
        )
        if not self._state:
            self._build(counts["tp"].shape[1:])
        if counts["tp"].shape != self.true_positives.shape:
            raise ValueError(
                f"{self.name}: expected predictions with {self.true_positives.shape[1]} labels "
                f"(as before), received shape {shape_str(p.shape)}."
            )
        self.true_positives += counts["tp"]
        self.false_positives += counts["fp"]
        self.true_negatives += counts["tn"]
        self.false_negatives += counts["fn"]

    def _interpolate_pr(self) -> np.ndarray:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
        return _divide(slope * (dtp + intercept * log_ratio), np.maximum(tp[1:] + fn[1:], 0))

    def result(self) -> float:
        if not self._state:
            return 0.0
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr()
        else:
            recall = _divide(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide(fp, fp + tn), recall
            else:
                x, y = recall, _divide(tp, tp + fp)
            if self.summation_method == "interpolation":
                heights = (y[:-1] + y[1:]) / 2
            elif self.summation_method == "minoring":
                heights = np.minimum(y[:-1], y[1:])
            else:
                heights = np.maximum(y[:-1], y[1:])
            terms = (x[:-1] - x[1:]) * heights
        by_label = terms.sum(axis=0)
        return float(np.mean(by_label)) if self.multi_label else float(by_label)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "thresholds": self._init_thresholds,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "from_logits": self.from_logits,
        }


class FBetaScore(Metric):
    r"""Keras's ``FBetaScore``: :math:`(1+\beta^2)PR/(\beta^2P + R)` per class, optionally averaged.

    Parameters
    ----------
    average : {None, "micro", "macro", "weighted"}, default None
        None: one score per class (an array); ``"micro"``: from the counts
        summed over classes; ``"macro"``: the mean of the class scores;
        ``"weighted"``: their mean weighted by each class's (weighted) support.
    beta : float, default 1.0
        Positive.
    threshold : float, optional
        A prediction above it is positive; by default each sample's largest
        output is its one positive (a one-hot of the arg-max).
    name : str, default "fbeta_score"
    dtype : str, optional

    Raises
    ------
    ValueError
        an unknown ``average``; ``beta`` not positive; ``threshold`` outside
        (0, 1]; predictions that are not 2-D ``(batch, classes)`` or a target
        of another shape.

    Notes
    -----
    The state, per class (or summed for ``"micro"``), is the weighted
    :math:`\mathrm{TP}`, :math:`\mathrm{FP}`, :math:`\mathrm{FN}` and support,
    so it sums across ranks. :math:`P` and :math:`R` divide with
    :math:`\epsilon = 10^{-7}` added, as Keras does.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.F1Score(average="macro")
    >>> m.update_state([[1, 0], [0, 1], [0, 1]], [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    >>> round(m.result(), 4)
    0.6667
    """

    name = "fbeta_score"
    true_positives: np.ndarray
    false_positives: np.ndarray
    false_negatives: np.ndarray
    intermediate_weights: np.ndarray

    def __init__(
        self,
        average: str | None = None,
        beta: float = 1.0,
        threshold: float | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name, dtype)
        owner = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                f"{owner}: invalid value for `average`: expected None, 'micro', 'macro' or "
                f"'weighted', received {average!r}."
            )
        self.average = average
        self.beta = check_number(beta, "beta", owner, low=0, low_open=True)
        self.threshold = (
            None
            if threshold is None
            else check_number(threshold, "threshold", owner, low=0, high=1, low_open=True)
        )

    def _build(self, n_classes: int) -> None:
        shape = () if self.average == "micro" else (n_classes,)
        for key in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, key, self._add_state(key, shape))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        t, p = _pair(y_true, y_pred, self.name)
        if p.ndim != 2 or t.shape != p.shape:
            raise ValueError(
                f"{self.name}: expected 2-D predictions (batch, classes) and targets of the same "
                f"shape, received shapes {shape_str(p.shape)} and {shape_str(t.shape)}."
            )
        if not self._state:
            self._build(p.shape[1])
        if self.threshold is None:
            pos = (p >= p.max(axis=-1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            pos = p > self.threshold
        pred = pos.astype(np.float64)
        t = t.astype(np.float64)
        w = (
            1.0
            if sample_weight is None
            else _left_broadcast(_weights(sample_weight, self.name), p.shape, self.name)
        )
        axis = None if self.average == "micro" else 0
        self.true_positives += np.sum(w * pred * t, axis=axis)
        self.false_positives += np.sum(w * pred * (1 - t), axis=axis)
        self.false_negatives += np.sum(w * (1 - pred) * t, axis=axis)
        self.intermediate_weights += np.sum(w * t, axis=axis)

    def result(self) -> float | np.ndarray:
        if not self._state:
            return 0.0
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta**2
        f = (1 + b2) * precision * recall / (b2 * precision + recall + EPSILON)
        if self.average == "weighted":
            iw = self.intermediate_weights
            return float(np.sum(f * iw / (np.sum(iw) + EPSILON)))
        if self.average is not None:
            return float(np.mean(f))
        return f.copy()

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    r"""Keras's ``F1Score``: :class:`FBetaScore` with :math:`\beta = 1`.

    Parameters
    ----------
    average : {None, "micro", "macro", "weighted"}, default None
    threshold : float, optional
    name : str, default "f1_score"
    dtype : str, optional

    Raises
    ------
    ValueError
        As :class:`FBetaScore`.

    Examples
    --------
    >>> import layernet as ln
    >>> m = ln.metrics.F1Score(threshold=0.5)
    >>> m.update_state([[1, 0], [0, 1]], [[0.9, 0.6], [0.2, 0.8]])
    >>> m.result().round(4)
    array([1.    , 0.6667])
    """

    name = "f1_score"

    def __init__(
        self,
        average: str | None = None,
        threshold: float | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config


# ============================================================================ get
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        accuracy,
        binary_accuracy,
        categorical_accuracy,
        sparse_categorical_accuracy,
        top_k_categorical_accuracy,
        sparse_top_k_categorical_accuracy,
        mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
    )
}

_ALIASES: dict[str, type[Metric]] = {
    "accuracy": _AutoAccuracy,
    "acc": _AutoAccuracy,
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "rmse": RootMeanSquaredError,
    "auc": AUC,
}
for _cls in (
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    MeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    RootMeanSquaredError,
    Precision,
    Recall,
    TruePositives,
    TrueNegatives,
    FalsePositives,
    FalseNegatives,
    F1Score,
    FBetaScore,
    Mean,
    Sum,
):
    _ALIASES.setdefault(_cls.name, _cls)
    _ALIASES.setdefault(snake_case(_cls.__name__), _cls)


def get(identifier: str | Metric | Callable[..., Any]) -> Metric:
    """A metric from a Keras name, an instance, a class or a function ``f(y_true, y_pred)``.

    Parameters
    ----------
    identifier : str, Metric, Metric subclass or callable
        A name (any case): ``"accuracy"``/``"acc"`` (binary, sparse categorical
        or categorical accuracy, picked from the shapes as Keras does),
        ``"binary_accuracy"``, ``"categorical_accuracy"``,
        ``"sparse_categorical_accuracy"``, ``"top_k_categorical_accuracy"``,
        ``"sparse_top_k_categorical_accuracy"``, ``"mse"``, ``"mae"``, ``"mape"``,
        ``"msle"``, ``"rmse"``, ``"auc"``, ``"precision"``, ``"recall"``,
        ``"f1_score"``, ``"true_positives"`` ... (the snake-case class names), or
        a loss's name (``"binary_crossentropy"``, ``"kl_divergence"``, ...): the
        mean of its per-sample values. The metric is logged under the name
        given. A :class:`Metric` instance is returned as it is; a class is
        instantiated; a plain function becomes a :class:`MeanMetricWrapper`
        named after it.

    Returns
    -------
    Metric

    Raises
    ------
    ValueError
        ``compile: invalid value in `metrics`: expected one of [...], a Metric
        instance or a function f(y_true, y_pred), received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.get("mse")
    MeanSquaredError(name='mse')
    >>> ln.metrics.get("auc").num_thresholds
    200
    """
    from . import losses as losses_mod  # losses import this module

    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ALIASES:
            return _ALIASES[key](name=identifier)
        if key in ("msle", "mean_squared_logarithmic_error"):
            return MeanMetricWrapper(mean_squared_logarithmic_error, name=identifier)
        loss_cls = losses_mod._NAMES.get(key)
        fn = getattr(losses_mod, snake_case(loss_cls.__name__), None) if loss_cls else None
        fn = fn if fn is not None else getattr(losses_mod, key, None)
        if callable(fn) and hasattr(fn, "_layernet_loss"):
            wrapper = MeanMetricWrapper(fn, name=identifier)
            wrapper.direction = "down"
            return wrapper
    elif callable(identifier):
        return MeanMetricWrapper(identifier)
    names = sorted({*_ALIASES, "msle"})
    raise ValueError(
        f"compile: invalid value in `metrics`: expected one of {names}, a loss name, a Metric "
        f"instance or a function f(y_true, y_pred), received {identifier!r}."
    )


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
