r"""Metrics reported by :meth:`Sequential.fit` and :meth:`Sequential.evaluate`.

A metric accumulates over batches (``update``), then gives one number
(``result``) for the epoch. They are chosen by name in ``compile(metrics=[...])``:

=============================  ==============================================
name                           value
=============================  ==============================================
``"accuracy"`` (``"acc"``)     share of samples whose arg-max class is the label
``"mse"``                      mean of :math:`(x - t)^2` over all entries
``"mae"``                      mean of :math:`|x - t|` over all entries
=============================  ==============================================
"""

from __future__ import annotations

import numpy as np

from ._validation import shape_str


class Metric:
    """Base class: a running total and a count."""

    name = "metric"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._total = 0.0
        self._count = 0

    def update(self, y_pred: np.ndarray, y_true: np.ndarray) -> None:
        """Add one batch of predictions and targets."""
        total, count = self._batch(np.asarray(y_pred), np.asarray(y_true))
        self._total += float(total)
        self._count += int(count)

    def result(self) -> float:
        """The metric over every batch since :meth:`reset` (NaN before any)."""
        return self._total / self._count if self._count else float("nan")

    def _batch(self, y_pred: np.ndarray, y_true: np.ndarray) -> tuple[float, int]:
        raise NotImplementedError


class Accuracy(Metric):
    """Classification accuracy for integer labels or one-hot / probability targets.

    Predictions of shape ``(N, K)`` (logits or probabilities) are compared by
    arg-max; a single output column ``(N, 1)`` is a binary prediction,
    thresholded at 0.5.

    Examples
    --------
    >>> import numpy as np
    >>> m = Accuracy()
    >>> m.update(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    >>> m.result()
    0.5
    """

    name = "accuracy"

    def _batch(self, y_pred, y_true):
        n = y_pred.shape[0]
        if y_pred.ndim == 2 and y_pred.shape[1] == 1:
            pred = (y_pred[:, 0] > 0.5).astype(np.int64)
            true = y_true.reshape(n)
        else:
            pred = y_pred.reshape(n, -1).argmax(axis=1)
            true = y_true.reshape(n, -1).argmax(axis=1) if y_true.ndim > 1 else y_true
        if true.shape != (n,):
            raise ValueError(
                f"accuracy: expected labels of shape ({n},) or one-hot rows, got "
                f"shape {shape_str(y_true.shape)}."
            )
        return float(np.sum(pred == true)), n


class MeanSquaredError(Metric):
    """Mean squared error over all entries.

    Examples
    --------
    >>> import numpy as np
    >>> m = MeanSquaredError()
    >>> m.update(np.array([[1.0, 3.0]]), np.array([[0.0, 0.0]]))
    >>> m.result()
    5.0
    """

    name = "mse"

    def _batch(self, y_pred, y_true):
        d = y_pred.astype(np.float64) - y_true
        return float(np.vdot(d, d)), d.size


class MeanAbsoluteError(Metric):
    """Mean absolute error over all entries.

    Examples
    --------
    >>> import numpy as np
    >>> m = MeanAbsoluteError()
    >>> m.update(np.array([[1.0, -3.0]]), np.array([[0.0, 0.0]]))
    >>> m.result()
    2.0
    """

    name = "mae"

    def _batch(self, y_pred, y_true):
        d = np.abs(y_pred.astype(np.float64) - y_true)
        return float(d.sum()), d.size


_ALIASES = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}


def get(identifier: str | Metric) -> Metric:
    """A fresh metric from its name, or the given instance."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _ALIASES:
        return _ALIASES[identifier.lower()]()
    raise ValueError(
        f"compile: invalid value in `metrics`: expected one of "
        f"{sorted(_ALIASES)} or a Metric instance, received {identifier!r}."
    )
