r"""Metrics reported by :meth:`Sequential.fit` and :meth:`Sequential.evaluate`, with Keras's names.

A metric accumulates over batches (``update``), then gives one number
(``result``) for the epoch. Each batch adds a per-sample value :math:`m_n`;
with sample weights :math:`w_n` the result is the weighted mean
:math:`\sum_n w_n m_n / \sum_n w_n` (Keras's rule), otherwise the plain mean.
They are chosen by name in ``compile(metrics=[...])``, and the logs use the
name given there:

=======================================  ==============================================
name                                     per-sample value :math:`m_n`
=======================================  ==============================================
``"accuracy"`` (``"acc"``)               one of the three below, picked from the shapes
                                         as Keras does: a single output column is
                                         binary; labels with one axis fewer than the
                                         output (or a last axis of 1) are sparse;
                                         otherwise categorical
``"categorical_accuracy"``               1 if ``argmax x_n == argmax t_n`` (one-hot)
``"sparse_categorical_accuracy"``        1 if ``argmax x_n == t_n`` (integer labels)
``"binary_accuracy"``                    mean over entries of ``(x > 0.5) == t``
``"top_k_categorical_accuracy"``         1 if the one-hot class is among the ``k=5``
                                         largest outputs (ties count as in)
``"sparse_top_k_categorical_accuracy"``  the same for integer labels
``"mse"`` (``"mean_squared_error"``)     mean of :math:`(x - t)^2` over the entries
``"mae"`` (``"mean_absolute_error"``)    mean of :math:`|x - t|` over the entries
=======================================  ==============================================

Without sample weights the ``"mse"`` metric equals the ``"mse"`` loss
(:class:`layernet.losses.MeanSquaredError`) on the same predictions.
Arguments are in layernet's order, prediction first (``update(y_pred, y_true)``);
:meth:`Metric.update_state` takes Keras's order ``(y_true, y_pred)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import as_array, check_finite, check_number, is_int, missing_attribute, shape_str


class Metric:
    """Base class: a weighted running total of per-sample values and the total weight.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default: the metric's Keras name).

    Raises
    ------
    ValueError
        ``<Metric>: invalid value for `name`: expected a non-empty str, ...``;
        in ``update_state``, a prediction without a batch axis, or a
        ``sample_weight`` that is not one non-negative weight per sample
        (``expected `sample_weight` of shape (N,) (one weight per sample),
        ...``).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.MeanAbsoluteError()
    >>> m.update_state(np.array([[0.0], [0.0]]), np.array([[1.0], [3.0]]), sample_weight=[1, 3])
    >>> m.result()
    2.5
    """

    name = "metric"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ValueError(
                    f"{type(self).__name__}: invalid value for `name`: expected a non-empty "
                    f"str, received {name!r}."
                )
            self.name = name
        self.reset()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments."""
        return {"name": self.name}

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._total = 0.0
        self._count = 0.0

    reset_state = reset

    def update(
        self, y_pred: np.ndarray, y_true: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> None:
        """Add one batch of predictions and targets (optionally weighted per sample).

        Parameters
        ----------
        y_pred : ndarray of shape (N, ...)
        y_true : ndarray
        sample_weight : ndarray of shape (N,), optional
            Non-negative weights; the result is the weighted mean.
        """
        y_pred = as_array(y_pred, self.name, "y_pred")
        y_true = as_array(y_true, self.name, "y_true")
        if y_pred.ndim == 0:
            raise ValueError(
                f"{self.name}: expected predictions with a batch axis, received a scalar."
            )
        values = np.asarray(self._values(y_pred, y_true), dtype=np.float64)
        n = y_pred.shape[0]
        if sample_weight is None:
            self._total += float(values.sum())
            self._count += n
            return
        w = check_sample_weight(sample_weight, n, self.name)
        self._total += float(np.dot(w, values))
        self._count += float(w.sum())

    def update_state(
        self, y_true: np.ndarray, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> None:
        """:meth:`update` with Keras's argument order ``(y_true, y_pred)``."""
        self.update(y_pred, y_true, sample_weight)

    def result(self) -> float:
        """The metric over every batch since :meth:`reset` (NaN before any, or zero weight)."""
        return self._total / self._count if self._count else float("nan")

    def _values(self, y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
        """Per-sample values, shape ``(N,)``."""
        raise NotImplementedError


def check_sample_weight(sample_weight: Any, n: int, owner: str) -> np.ndarray:
    """``sample_weight`` as a float64 array of shape ``(n,)``, non-negative and finite."""
    w = as_array(sample_weight, owner, "sample_weight")
    if w.shape == (n, 1):
        w = w[:, 0]
    if w.shape != (n,):
        raise ValueError(
            f"{owner}: expected `sample_weight` of shape ({n},) (one weight per sample), "
            f"received shape {shape_str(w.shape)}."
        )
    w = w.astype(np.float64)
    check_finite(w, owner, "sample_weight")
    if np.any(w < 0):
        raise ValueError(
            f"{owner}: expected non-negative `sample_weight`, received a minimum of {w.min()}."
        )
    return w


def _flat_rows(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1)


def _labels(y_true: np.ndarray, n: int, k: int, owner: str) -> np.ndarray:
    """Integer labels of shape (n,) from (n,) or (n, 1), checked against k classes."""
    t = y_true.reshape(n) if y_true.shape in ((n,), (n, 1)) else None
    if t is None:
        raise ValueError(
            f"{owner}: expected integer labels of shape ({n},) or ({n}, 1), received "
            f"shape {shape_str(y_true.shape)}."
        )
    if t.dtype.kind == "f" and not np.array_equal(t, np.round(t)):
        raise ValueError(f"{owner}: expected integer labels, received non-integer values.")
    return t.astype(np.int64)


def _one_hot_classes(y_pred: np.ndarray, y_true: np.ndarray, owner: str) -> np.ndarray:
    if y_true.shape != y_pred.shape or y_pred.ndim != 2:
        raise ValueError(
            f"{owner}: expected one-hot targets of the predictions' shape "
            f"{shape_str(y_pred.shape)} (N, classes), received shape {shape_str(y_true.shape)}."
        )
    return y_true.argmax(axis=1)


class CategoricalAccuracy(Metric):
    """Share of samples whose arg-max output is the arg-max of the one-hot target.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"categorical_accuracy"``).

    Raises
    ------
    ValueError
        targets that are not one-hot rows of the predictions' shape; an invalid
        ``name`` or ``sample_weight`` (see :class:`Metric`).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.CategoricalAccuracy()
    >>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([[0, 1], [0, 1]]))
    >>> m.result()
    0.5
    """

    name = "categorical_accuracy"

    def _values(self, y_pred, y_true):
        return y_pred.argmax(axis=-1) == _one_hot_classes(y_pred, y_true, self.name)


class SparseCategoricalAccuracy(Metric):
    """Share of samples whose arg-max output is the integer label.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"sparse_categorical_accuracy"``).

    Raises
    ------
    ValueError
        ``expected integer labels of shape (N,) or (N, 1), ...`` or non-integer
        labels; an invalid ``name`` or ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.SparseCategoricalAccuracy()
    >>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    >>> m.result()
    0.5
    """

    name = "sparse_categorical_accuracy"

    def _values(self, y_pred, y_true):
        n = y_pred.shape[0]
        if y_pred.ndim != 2:
            raise ValueError(
                f"{self.name}: expected predictions of shape (N, classes), received "
                f"shape {shape_str(y_pred.shape)}."
            )
        return y_pred.argmax(axis=1) == _labels(y_true, n, y_pred.shape[1], self.name)


class BinaryAccuracy(Metric):
    """Share of entries where ``y_pred > threshold`` equals the 0/1 target, averaged per sample.

    Parameters
    ----------
    name : str, optional
    threshold : float, default 0.5

    Raises
    ------
    ValueError
        targets whose shape is not the predictions'; a ``threshold`` that is not
        a number; an invalid ``name`` or ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.BinaryAccuracy()
    >>> m.update(np.array([[0.98], [1.0], [0.0], [0.6]]), np.array([[1], [1], [0], [0]]))
    >>> m.result()
    0.75
    """

    name = "binary_accuracy"

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        self.threshold = check_number(threshold, "threshold", "BinaryAccuracy")
        super().__init__(name)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "threshold": self.threshold}

    def _values(self, y_pred, y_true):
        if y_true.size != y_pred.size:
            raise ValueError(
                f"{self.name}: expected targets with the predictions' shape "
                f"{shape_str(y_pred.shape)}, received shape {shape_str(y_true.shape)}."
            )
        t = y_true.reshape(y_pred.shape)
        return _flat_rows((y_pred > self.threshold) == t).mean(axis=1)


class Accuracy(Metric):
    """Accuracy that picks binary, sparse categorical or categorical from the shapes, like Keras.

    What ``compile(metrics=["accuracy"])`` gives. With predictions ``(N, K)``:
    ``K == 1`` (or predictions of shape ``(N,)``) is :class:`BinaryAccuracy`;
    labels of shape ``(N,)`` or ``(N, 1)`` with ``K > 1`` are
    :class:`SparseCategoricalAccuracy`; otherwise :class:`CategoricalAccuracy`.
    (Keras's ``keras.metrics.Accuracy`` class instead tests ``y_true == y_pred``
    exactly; the string ``"accuracy"`` behaves as here.)

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"accuracy"``).

    Raises
    ------
    ValueError
        labels of the wrong shape for the predictions; an invalid ``name`` or
        ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.Accuracy()
    >>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    >>> m.result()
    0.5
    """

    name = "accuracy"

    def _values(self, y_pred, y_true):
        k = y_pred.shape[-1] if y_pred.ndim > 1 else 1
        if y_pred.ndim == 1 or k == 1:
            return BinaryAccuracy()._values(y_pred, y_true)
        if y_true.ndim < y_pred.ndim or y_true.shape[-1] == 1:
            return SparseCategoricalAccuracy()._values(y_pred, y_true)
        return CategoricalAccuracy()._values(y_pred, y_true)


def _in_top_k(y_pred: np.ndarray, labels: np.ndarray, k: int, owner: str) -> np.ndarray:
    if y_pred.ndim != 2:
        raise ValueError(
            f"{owner}: expected predictions of shape (N, classes), received shape "
            f"{shape_str(y_pred.shape)}."
        )
    if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[1]):
        raise ValueError(
            f"{owner}: expected labels in [0, {y_pred.shape[1] - 1}], received labels "
            f"from {labels.min()} to {labels.max()}."
        )
    target = np.take_along_axis(y_pred, labels[:, None], axis=1)
    kk = min(k, y_pred.shape[1])
    kth = -np.partition(-y_pred, kk - 1, axis=1)[:, kk - 1 : kk]
    return (target >= kth)[:, 0]


class TopKCategoricalAccuracy(Metric):
    """Share of samples whose one-hot class is among the ``k`` largest outputs.

    Ties with the ``k``-th largest output count as in the top ``k`` (as in Keras).

    Parameters
    ----------
    k : int, default 5
    name : str, optional

    Raises
    ------
    ValueError
        ``k`` not a positive int; targets that are not one-hot rows of the
        predictions' shape; an invalid ``name`` or ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.TopKCategoricalAccuracy(k=2)
    >>> m.update(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]), np.array([[0, 1, 0], [0, 0, 1]]))
    >>> m.result()
    0.5
    """

    name = "top_k_categorical_accuracy"

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        if not is_int(k) or k < 1:
            raise ValueError(
                f"{type(self).__name__}: invalid value for `k`: expected a positive int, "
                f"received {k!r}."
            )
        self.k = int(k)
        super().__init__(name)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k}

    def _values(self, y_pred, y_true):
        return _in_top_k(y_pred, _one_hot_classes(y_pred, y_true, self.name), self.k, self.name)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Share of samples whose integer label is among the ``k`` largest outputs.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"sparse_top_k_categorical_accuracy"``).

    Raises
    ------
    ValueError
        ``k`` not a positive int; labels that are not integers of shape (N,) or
        (N, 1); an invalid ``name`` or ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.SparseTopKCategoricalAccuracy(k=1)
    >>> m.update(np.array([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]]), np.array([0, 1]))
    >>> m.result()
    0.5
    """

    name = "sparse_top_k_categorical_accuracy"

    def _values(self, y_pred, y_true):
        n = y_pred.shape[0]
        k = y_pred.shape[-1] if y_pred.ndim > 1 else 1
        return _in_top_k(y_pred, _labels(y_true, n, k, self.name), self.k, self.name)


def _same_shape(y_pred: np.ndarray, y_true: np.ndarray, owner: str) -> np.ndarray:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{owner}: expected targets of the predictions' shape {shape_str(y_pred.shape)}, "
            f"received shape {shape_str(y_true.shape)}."
        )
    return y_pred.astype(np.float64) - y_true


class MeanSquaredError(Metric):
    """Mean of the squared error over each sample's entries, averaged over samples.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"mean_squared_error"``).

    Raises
    ------
    ValueError
        targets whose shape is not the predictions'; an invalid ``name`` or
        ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.MeanSquaredError()
    >>> m.update(np.array([[1.0, 3.0]]), np.array([[0.0, 0.0]]))
    >>> m.result()
    5.0
    """

    name = "mean_squared_error"

    def _values(self, y_pred, y_true):
        d = _flat_rows(_same_shape(y_pred, y_true, self.name))
        return np.mean(d * d, axis=1) if d.shape[1] else np.zeros(len(d))


class MeanAbsoluteError(Metric):
    """Mean of the absolute error over each sample's entries, averaged over samples.

    Parameters
    ----------
    name : str, optional
        The key in the logs (default ``"mean_absolute_error"``).

    Raises
    ------
    ValueError
        targets whose shape is not the predictions'; an invalid ``name`` or
        ``sample_weight``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> m = ln.metrics.MeanAbsoluteError()
    >>> m.update(np.array([[1.0, -3.0]]), np.array([[0.0, 0.0]]))
    >>> m.result()
    2.0
    """

    name = "mean_absolute_error"

    def _values(self, y_pred, y_true):
        d = _flat_rows(_same_shape(y_pred, y_true, self.name))
        return np.mean(np.abs(d), axis=1) if d.shape[1] else np.zeros(len(d))


_ALIASES: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier: str | Metric) -> Metric:
    """A fresh metric from its Keras name (logged under that name), or the given instance.

    Parameters
    ----------
    identifier : str or Metric
        A name such as ``"accuracy"``, ``"mse"``, ``"top_k_categorical_accuracy"``
        (any case), or a :class:`Metric` instance, returned as it is.

    Returns
    -------
    Metric

    Raises
    ------
    ValueError
        ``compile: invalid value in `metrics`: expected one of [...] or a Metric
        instance, received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.metrics.get("mse")
    MeanSquaredError(name='mse')
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _ALIASES:
        return _ALIASES[identifier.lower()](name=identifier)
    raise ValueError(
        f"compile: invalid value in `metrics`: expected one of "
        f"{sorted(_ALIASES)} or a Metric instance, received {identifier!r}."
    )


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
