r"""Losses: the last layer of the chain, mapping a prediction and a target to a scalar :math:`z`.

A loss has no parameters (:math:`\partial z/\partial w^L = 0` in the notes), so
its only derivative is :math:`\partial z/\partial X^L`, returned by
:meth:`Loss.backward_input`. Every loss averages over the batch.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._validation import as_array, shape_str
from .layers.base import MAX_JACOBIAN_ENTRIES, Layer


class Loss(Layer):
    r"""Base class of losses: ``forward(x, t) -> z`` and ``backward_input() -> ∂z/∂x``.

    Parameters
    ----------
    name, dtype
        See :class:`~layernet.layers.Layer`.
    """

    _default_name = "loss"

    def __init__(self, *, name: str | None = None, dtype: str = "float32") -> None:
        super().__init__(name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype.name}

    def compute_output_shape(self, input_shape):
        return ()

    def check_target(self, x: np.ndarray, t: Any) -> np.ndarray:
        raise NotImplementedError

    def compute_loss(self, x: np.ndarray, t: np.ndarray) -> tuple[float, Any]:
        raise NotImplementedError

    def _prepare(self, x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self._prepare_input(x)
        if x.shape[0] == 0:
            raise ValueError(
                f"{self.owner}: expected at least one sample, got input of shape "
                f"{shape_str(x.shape)}."
            )
        return x, self.check_target(x, t)

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        """Return the scalar loss of prediction ``x`` against target ``t``.

        Parameters
        ----------
        x : ndarray of shape (batch, ...)
            The prediction (the last layer's output).
        t : ndarray
            The target; its expected shape depends on the loss.

        Returns
        -------
        float
        """
        x, t = self._prepare(x, t)
        return self._forward_checked(x, t)

    def _forward_checked(self, x: np.ndarray, t: np.ndarray) -> float:
        """``forward`` for a prediction and target already validated (by a model's fit)."""
        z, cache = self.compute_loss(x, t)
        self.saved = cache
        self._y_shape = ()
        return z

    __call__ = forward  # type: ignore[assignment]

    def _check_dz(self, dz: Any) -> np.ndarray:
        if self._y_shape is None:
            raise RuntimeError(
                f"{self.owner}: backward called before forward; call forward(x, t) first."
            )
        dz = as_array(dz, self.owner, "dz")
        if dz.shape != ():
            raise ValueError(
                f"{self.owner}: expected a scalar `dz`, got shape {shape_str(dz.shape)}."
            )
        return dz.astype(self.dtype)

    def backward_input(self, dz: float = 1.0) -> np.ndarray:  # type: ignore[override]
        r"""Return :math:`\partial z/\partial x` at the last forward (times ``dz``)."""
        return self.compute_backward_input(self._check_dz(dz), self.saved)

    def backward_params(self, dz: float = 1.0) -> dict[str, np.ndarray]:  # type: ignore[override]
        """Losses have no parameters: always ``{}``."""
        self._check_dz(dz)
        return {}

    def jacobian_input(
        self,
        x: np.ndarray,
        t: np.ndarray,
        *,  # type: ignore[override]
        max_entries: int = MAX_JACOBIAN_ENTRIES,
    ) -> np.ndarray:
        r"""The row vector :math:`\partial z/\partial\mathrm{vec}(x)^T`, shape ``(1, x.size)``."""
        x, t = self._prepare(x, t)
        self._check_jacobian_size(1, x.size, max_entries, "jacobian_input")
        _, cache = self.compute_loss(x, t)
        return self.compute_backward_input(np.ones((), dtype=self.dtype), cache).reshape(1, -1)

    def jacobian_params(
        self,
        x: np.ndarray,
        t: np.ndarray,
        *,  # type: ignore[override]
        max_entries: int = MAX_JACOBIAN_ENTRIES,
    ) -> dict[str, np.ndarray]:
        """Losses have no parameters: always ``{}``."""
        self._prepare(x, t)
        return {}


class MSESaved(NamedTuple):
    """What :class:`MSELoss` keeps for backward."""

    diff: np.ndarray  #: ``x - t``
    n: int  #: batch size


class MSELoss(Loss):
    r"""Half squared error per sample, averaged over the batch: the notes' loss.

    Notes
    -----
    For predictions :math:`x_n` and targets :math:`t_n`, :math:`n = 1, \dots, N`,

    .. math::

        z = \frac{1}{N}\sum_{n=1}^{N} \tfrac12 \lVert t_n - x_n \rVert^2,
        \qquad
        \frac{\partial z}{\partial x} = \frac{x - t}{N}.

    For one sample this is the lecture notes' :math:`z = \tfrac12\lVert t - x\rVert^2`
    with :math:`\partial z/\partial x = x - t`. (PyTorch's ``MSELoss`` instead
    averages over every entry and has no :math:`\tfrac12`; ``0.5 *
    mse_loss(x, t, reduction="sum") / N`` equals this loss.) The target must have
    exactly the prediction's shape: nothing is broadcast.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> loss = ln.MSELoss(dtype="float64")
    >>> loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    2.5
    >>> loss.backward_input()
    array([[1., 2.]])
    """

    _default_name = "mse_loss"
    fresh_output = True

    def check_target(self, x, t):
        t = as_array(t, self.owner, "target")
        if t.shape != x.shape:
            raise ValueError(
                f"{self.owner}: expected target of shape {shape_str(x.shape)} (the prediction's "
                f"shape; nothing is broadcast), got shape {shape_str(t.shape)}."
            )
        return t.astype(self.dtype, copy=False)

    def compute_loss(self, x, t):
        diff = x - t
        n = x.shape[0]
        return float(0.5 * np.vdot(diff, diff) / n), MSESaved(diff, n)

    def compute_backward_input(self, dz, saved):
        return saved.diff * (dz / saved.n)


class SoftmaxCrossEntropySaved(NamedTuple):
    """What :class:`SoftmaxCrossEntropy` keeps for backward."""

    p_minus_t: np.ndarray  #: ``softmax(x) - T``
    n: int  #: batch size


class SoftmaxCrossEntropy(Loss):
    r"""Softmax followed by cross-entropy, on logits, averaged over the batch.

    Targets are integer class labels of shape ``(N,)`` or probability rows (e.g.
    one-hot) of shape ``(N, K)``.

    Notes
    -----
    With :math:`p_n = \operatorname{softmax}(x_n)` and target rows :math:`T_n`
    (one-hot for labels),

    .. math::

        z = \frac1N \sum_n \Big(\log\sum_k e^{x_{nk}} - \sum_k T_{nk} x_{nk}\Big)
          = -\frac1N\sum_n\sum_k T_{nk}\log p_{nk},
        \qquad
        \frac{\partial z}{\partial x} = \frac{p - T}{N}.

    The log-sum-exp is computed after subtracting each row's maximum, so large
    logits neither overflow nor lose the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> loss = ln.SoftmaxCrossEntropy(dtype="float64")
    >>> round(loss.forward(np.zeros((1, 4)), np.array([2])), 6)   # log 4
    1.386294
    >>> loss.backward_input()
    array([[ 0.25,  0.25, -0.75,  0.25]])
    """

    _default_name = "softmax_cross_entropy"
    fresh_output = True
    input_ndim = 2

    def check_target(self, x, t):
        t = as_array(t, self.owner, "target")
        n, k = x.shape
        if t.shape == (n,):
            labels = t
            if t.dtype.kind == "f":
                if not np.all(np.isfinite(t)) or not np.array_equal(t, np.round(t)):
                    raise ValueError(
                        f"{self.owner}: expected integer class labels in target, "
                        f"received non-integer values (dtype {t.dtype})."
                    )
                labels = t.astype(np.int64)
            if labels.size and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(
                    f"{self.owner}: expected class labels in [0, {k - 1}] for {k} logits, "
                    f"received labels from {labels.min()} to {labels.max()}."
                )
            return labels.astype(np.intp, copy=False)
        if t.shape == (n, k):
            t = t.astype(self.dtype, copy=False)
            if (
                not np.all(np.isfinite(t))
                or np.any(t < 0)
                or not np.allclose(t.sum(axis=1), 1, atol=1e-4)
            ):
                raise ValueError(
                    f"{self.owner}: expected target rows that are probability "
                    f"vectors (non-negative, summing to 1), e.g. one-hot."
                )
            return t
        raise ValueError(
            f"{self.owner}: expected target of shape ({n},) (integer labels) or "
            f"{shape_str(x.shape)} (one-hot or probabilities) for logits of shape "
            f"{shape_str(x.shape)}, got shape {shape_str(t.shape)}."
        )

    def compute_loss(self, x, t):
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        log_z = np.log(s)
        p /= s
        if t.ndim == 1:
            rows = np.arange(n)
            z = float(np.sum(log_z[:, 0] - shifted[rows, t]) / n)
            p[rows, t] -= 1
        else:
            z = float(np.sum(log_z[:, 0] - np.sum(t * shifted, axis=1)) / n)
            p -= t
        return z, SoftmaxCrossEntropySaved(p, n)

    def compute_backward_input(self, dz, saved):
        return saved.p_minus_t * (dz / saved.n)
