r"""Losses: the last layer of the chain, mapping a prediction and a target to a scalar :math:`z`.

A loss has no parameters (:math:`\partial z/\partial w^L = 0` in the notes), so
its only derivative is :math:`\partial z/\partial X^L`, returned by
:meth:`Loss.backward_input`. Every loss is called in two orders:

* **Keras's**: ``loss(y_true, y_pred, sample_weight=None)``, target first,
  returns the reduced loss (Keras's ``"sum_over_batch_size"`` by default); the
  lowercase functions such as :func:`mean_squared_error` return Keras's
  per-sample values;
* **the notes' layer order**: ``loss.forward(x, t)``, prediction first, keeps
  what :meth:`Loss.backward_input` needs (this is what training calls).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from . import _ops, registry
from ._validation import (
    as_array,
    cast_checked,
    check_finite,
    check_number,
    check_positive_int,
    is_int,
    missing_attribute,
    resolve_dtype,
    shape_str,
    snake_case,
)
from .layers.base import _REGISTRY, MAX_JACOBIAN_ENTRIES
from .metrics import check_sample_weight
from .ops.tensor import Tape, Tensor, recording


class Loss:
    r"""Base class of losses: ``forward(x, t) -> z`` and ``backward_input(dz) -> ∂z/∂x``.

    A loss is not a layer: it takes a target as well as a prediction, returns a
    scalar and has no parameters (:math:`\partial z/\partial w^L = 0`). It is
    used in two orders, side by side:

    ==========================================  ========================================
    Keras's call (target first)                 the notes' layer (prediction first)
    ==========================================  ========================================
    ``z = loss(y_true, y_pred)``                ``z = loss.forward(x, t)``
    ``loss(y_true, y_pred, sample_weight=w)``   ``loss.forward(x, t, sample_weight=w)``
    nothing kept; :attr:`saved` untouched       keeps :attr:`saved`, then
                                                ``loss.backward_input()`` gives
                                                :math:`\partial z/\partial x`
    ==========================================  ========================================

    Both give the same number. Keras's losses (``layernet.losses.MeanSquaredError``
    and the others named as in Keras) also take Keras's ``reduction``
    (``"sum_over_batch_size"``, ``"sum"``, ``"mean"``, or ``"none"``/``None``,
    which makes the call return the weighted per-sample values; ``forward`` then
    refuses, since training needs a scalar). A subclass implements three hooks:

    * ``check_target(x, t) -> t``: validate and convert the target for the
      prediction ``x`` (raise ``ValueError`` naming :attr:`owner` otherwise);
    * ``compute_loss(x, t) -> (z, saved)``: the scalar ``z`` and what the backward
      rule needs, kept in :attr:`saved` (a small ``NamedTuple``); a loss that
      takes per-sample weights accepts ``compute_loss(x, t, sample_weight=w)``
      with ``w`` of shape ``(N,)`` (every built-in loss does);
    * ``compute_backward_input(dz, saved) -> dz * ∂z/∂x``.

    Or, as in Keras, it implements only ``call(y_true, y_pred)`` with
    :mod:`layernet.ops`, whose derivative comes from the recorded ops
    (:func:`~layernet.losses.traced_loss`).

    Parameters
    ----------
    name : str, optional
        Used in error messages; ``"<kind>_<n>"`` by default.
    dtype : {"float32", "float64"}, default "float32"
        Predictions and gradients are computed in this dtype.

    Attributes
    ----------
    saved : NamedTuple or None
        What the last :meth:`forward` kept for :meth:`backward_input`.

    Raises
    ------
    ValueError
        At construction: ``<Kind>: invalid value for `name`: expected a
        non-empty str, ...`` or an invalid ``dtype``. In :meth:`forward`:
        ``expected input with 2 dims (batch, features), got shape ...`` (for
        losses with a fixed rank), ``expected at least one sample, ...``, and
        whatever ``check_target`` refuses. In :meth:`backward_input`:
        ``expected a scalar `dz`, ...``. In :meth:`jacobian_input`: a matrix
        above ``max_entries``.
    RuntimeError
        ``<Kind> '<name>': backward called before forward; call forward(x, t)
        first.``
    TypeError
        A prediction or target that is not a real numeric array.

    Examples
    --------
    A loss of your own (the mean absolute error, halved):

    >>> import layernet as ln
    >>> import numpy as np
    >>> class HalfMAE(ln.Loss):
    ...     def check_target(self, x, t):
    ...         return np.asarray(t, dtype=self.dtype).reshape(x.shape)
    ...     def compute_loss(self, x, t):
    ...         d = x - t
    ...         return float(0.5 * np.abs(d).sum() / len(x)), np.sign(d) / (2 * len(x))
    ...     def compute_backward_input(self, dz, saved):
    ...         return dz * saved
    >>> loss = HalfMAE(dtype="float64")
    >>> loss.forward(np.array([[1.0, -3.0]]), np.zeros((1, 2)))
    2.0
    >>> loss.backward_input()
    array([[ 0.5, -0.5]])
    """

    _default_name: ClassVar[str] = "loss"
    #: Declares that :meth:`backward_input` returns a new array the loss does not keep,
    #: so that a model may let the last layer overwrite it. Honoured only when set in
    #: the class's own body (see :meth:`declares`).
    fresh_gradient: ClassVar[bool] = False
    #: Number of dims of the prediction (batch included), or ``None`` for any >= 2.
    input_ndim: ClassVar[int | None] = None
    _counters: ClassVar[dict[str, itertools.count]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_default_name" not in cls.__dict__:  # a user class: "MyLoss" -> "my_loss_1"
            cls._default_name = snake_case(cls.__name__.lstrip("_")) or "loss"
        if cls.__module__.startswith("layernet.") and not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls
            registry.register_builtin(cls)

    def __init__(self, *, name: str | None = None, dtype: str = "float32") -> None:
        kind = type(self).__name__
        if name is None:
            counter = Loss._counters.setdefault(self._default_name, itertools.count(1))
            name = f"{self._default_name}_{next(counter)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(
                f"{kind}: invalid value for `name`: expected a non-empty str, received {name!r}."
            )
        self.name = name
        self.dtype = resolve_dtype(dtype, f"{kind} '{name}'")
        self.saved: Any = None

    @classmethod
    def declares(cls, flag: str) -> bool:
        """Whether ``flag`` (``"fresh_gradient"``) is set in this class's own body."""
        return bool(cls.__dict__.get(flag, False))

    @property
    def owner(self) -> str:
        """How error messages refer to this loss, e.g. ``MSELoss 'mse_loss_1'``."""
        return f"{type(self).__name__} '{self.name}'"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this loss (JSON-serialisable)."""
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from :meth:`get_config`'s output."""
        return cls(**config)

    # hooks for subclasses ----------------------------------------------------
    def check_target(self, x: np.ndarray, t: Any) -> np.ndarray:
        """Validate the target ``t`` for the prediction ``x``; return it converted.

        For a loss written as Keras's ``call(y_true, y_pred)``: the target as an array.
        """
        if _user_call(type(self)):
            return as_array(t, self.owner, "target")
        raise NotImplementedError

    def compute_loss(
        self, x: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, Any]:
        """Return ``(z, saved)`` for a validated prediction and target.

        ``sample_weight`` (per-sample weights, already checked) is passed only when
        the caller gives one; a loss that does not support weights may leave it out
        of its signature. For a loss written as Keras's ``call(y_true, y_pred)``: the
        call traced on ``x`` (see :func:`~layernet.losses.traced_loss`).
        """
        if _user_call(type(self)):
            return traced_loss(self.call, x, t, sample_weight, self.owner)  # type: ignore[attr-defined]
        raise NotImplementedError

    def compute_backward_input(self, dz: np.ndarray, saved: Any) -> np.ndarray:
        """Return ``dz * ∂z/∂x`` from what :meth:`compute_loss` saved."""
        if isinstance(saved, TracedLossSaved):
            return saved.backward(dz)
        raise NotImplementedError

    # ------------------------------------------------------------ computation
    def check_input(self, x: Any) -> np.ndarray:
        """The prediction as an array of this loss's dtype, or a clear error."""
        x = as_array(x, self.owner, "input")
        nd = self.input_ndim
        if (nd is not None and x.ndim != nd) or x.ndim < 2:
            layout = "(batch, features)" if nd == 2 else "(batch, ...)"
            dims = f"{nd} dims" if nd is not None else "at least 2 dims"
            raise ValueError(
                f"{self.owner}: expected input with {dims} {layout}, got shape "
                f"{shape_str(x.shape)}."
            )
        if x.shape[0] == 0:
            raise ValueError(
                f"{self.owner}: expected at least one sample, got input of shape "
                f"{shape_str(x.shape)}."
            )
        return x.astype(self.dtype, copy=False)

    def forward(
        self, x: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        r"""Return the scalar loss of prediction ``x`` against target ``t``.

        Parameters
        ----------
        x : ndarray of shape (batch, ...)
            The prediction (the last layer's output).
        t : ndarray
            The target; its expected shape depends on the loss.
        sample_weight : ndarray of shape (batch,), optional
            Non-negative weights :math:`w_n`. The loss becomes
            :math:`\frac1N\sum_n w_n z_n` (Keras's ``"sum_over_batch_size"``:
            divided by the batch size, not by :math:`\sum_n w_n`), and each
            sample's gradient is scaled by :math:`w_n`.

        Returns
        -------
        float
        """
        x = self.check_input(x)
        z, saved = self._compute(x, self.check_target(x, t), sample_weight)
        self.saved = saved
        return z

    def _compute(self, x: np.ndarray, t: np.ndarray, sample_weight: Any) -> tuple[float, Any]:
        if sample_weight is None:
            return self.compute_loss(x, t)
        w = check_sample_weight(sample_weight, len(x), self.owner).astype(self.dtype, copy=False)
        return self.compute_loss(x, t, sample_weight=w)

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> float | np.ndarray:
        r"""Keras's call: ``loss(y_true, y_pred)``, **target first**, returns the reduced loss.

        The same number as ``forward(y_pred, y_true)`` (prediction first, the
        notes' layer order), but :attr:`saved` is left untouched, so a call never
        disturbs a pending :meth:`backward_input`.

        Parameters
        ----------
        y_true : array_like
            The target.
        y_pred : ndarray of shape (batch, ...)
            The prediction.
        sample_weight : array_like, optional
            Per-sample weights, as in :meth:`forward`.

        Returns
        -------
        float or ndarray
            The loss (a float); the weighted per-sample values for a loss built
            with ``reduction="none"``.
        """
        if _symbolic(y_true) or _symbolic(y_pred) or _symbolic(sample_weight):
            return record_loss_call(self, y_true, y_pred, sample_weight)
        if _traced(y_true) or _traced(y_pred):  # inside a layer's traced call(): recorded
            return _traced_loss_call(self, y_true, y_pred, sample_weight)
        if _user_forward(type(self)):  # a subclass's own forward(x, t) defines the loss
            kept = self.__dict__.get("saved")
            try:
                if sample_weight is None:
                    return self.forward(y_pred, y_true)
                return self.forward(y_pred, y_true, sample_weight=sample_weight)
            finally:
                self.__dict__["saved"] = kept
        x = self.check_input(y_pred)
        z, _ = self._compute(x, self.check_target(x, y_true), sample_weight)
        return z

    def backward_input(self, dz: float = 1.0) -> np.ndarray:
        r"""Return :math:`dz\,\partial z/\partial x` at the last :meth:`forward`.

        Parameters
        ----------
        dz : float, default 1.0
            Upstream gradient of the scalar (1 when the loss is the objective).

        Returns
        -------
        ndarray
            Same shape as the last prediction.
        """
        if self.saved is None:
            raise RuntimeError(
                f"{self.owner}: backward called before forward; call forward(x, t) first."
            )
        d = as_array(dz, self.owner, "dz")
        if d.shape != ():
            raise ValueError(
                f"{self.owner}: expected a scalar `dz`, got shape {shape_str(d.shape)}."
            )
        return self.compute_backward_input(d.astype(self.dtype), self.saved)

    def backward_params(self, dz: float = 1.0) -> dict[str, np.ndarray]:
        """Losses have no parameters (:math:`\\partial z/\\partial w^L = 0`): always ``{}``."""
        return {}

    def jacobian_params(
        self, x: np.ndarray, t: np.ndarray, *, max_entries: int = MAX_JACOBIAN_ENTRIES
    ) -> dict[str, np.ndarray]:
        """Losses have no parameters: always ``{}`` (``x`` and ``t`` are still checked)."""
        x = self.check_input(x)
        self.check_target(x, t)
        return {}

    def jacobian_input(
        self,
        x: np.ndarray,
        t: np.ndarray,
        *,
        max_entries: int = MAX_JACOBIAN_ENTRIES,
        sample_weight: np.ndarray | None = None,
    ) -> np.ndarray:
        r"""The row vector :math:`\partial z/\partial\mathrm{vec}(x)^T`, shape ``(1, x.size)``.

        :attr:`saved` is left untouched.
        """
        max_entries = check_positive_int(
            max_entries, "max_entries", f"{self.owner}: jacobian_input"
        )
        x = self.check_input(x)
        t = self.check_target(x, t)
        if x.size > max_entries:
            raise ValueError(
                f"{self.owner}: jacobian_input would have 1 x {x.size} = {x.size:,} entries, "
                f"above max_entries={max_entries:,}; use a smaller input or raise max_entries."
            )
        _, saved = self._compute(x, t, sample_weight)
        return self.compute_backward_input(np.ones((), dtype=self.dtype), saved).reshape(1, -1)


class MSESaved(NamedTuple):
    """What :class:`MSELoss` keeps for backward."""

    diff: np.ndarray  #: ``x - t``
    n: int  #: batch size


class MSELoss(Loss):
    r"""Half squared error per sample, averaged over the batch: the notes' loss.

    .. rubric:: Input and target shape

    Predictions ``(batch, ...)`` with at least 2 dims; targets of exactly the
    same shape (nothing is broadcast). The loss is a float.

    Parameters
    ----------
    name : str, optional
        Used in error messages; ``"mse_loss_<n>"`` by default.
    dtype : {"float32", "float64"}, default "float32"
        Predictions and gradients are computed in this dtype.

    Raises
    ------
    ValueError
        ``MSELoss 'mse_loss_1': expected target of shape (N, K) (the
        prediction's shape; nothing is broadcast), got shape ...``; a
        prediction with fewer than 2 dims or no sample; and the errors of
        :class:`Loss` (construction, ``dz``, backward before forward).
    RuntimeError
        :meth:`backward_input` before any :meth:`forward`.
    TypeError
        A prediction or target that is not a real numeric array.

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

    **Keras's** ``"mse"`` **is a different loss**: :class:`~layernet.losses.MeanSquaredError`
    averages the squared error over all :math:`K` entries of a sample and has no
    :math:`\tfrac12`, so for :math:`K` outputs per sample

    .. math::

        z_{\text{MSELoss}} = \tfrac K2\, z_{\text{mse}},
        \qquad
        \frac{\partial z_{\text{MSELoss}}}{\partial x}
        = \tfrac K2\,\frac{\partial z_{\text{mse}}}{\partial x}:

    training with this loss at learning rate :math:`\eta` takes the steps of
    SGD on ``"mse"`` at :math:`\tfrac K2\eta` (adaptive optimizers such as Adam
    largely cancel the factor). By name it is ``"half_squared_error"`` (or
    ``"mse_loss"``); ``"mse"`` is Keras's. With ``sample_weight`` each sample's
    term (and gradient) is scaled by :math:`w_n`, still divided by :math:`N`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.MSELoss(dtype="float64")
    >>> loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    2.5
    >>> loss.backward_input()
    array([[1., 2.]])
    """

    _default_name = "mse_loss"
    fresh_gradient = True

    def check_target(self, x, t):
        t = as_array(t, self.owner, "target")
        if t.shape != x.shape:
            raise ValueError(
                f"{self.owner}: expected target of shape {shape_str(x.shape)} (the prediction's "
                f"shape; nothing is broadcast), got shape {shape_str(t.shape)}."
            )
        return cast_checked(t, self.dtype, self.owner, "target")

    def compute_loss(self, x, t, sample_weight=None):
        diff = x - t
        n = x.shape[0]
        if sample_weight is not None:
            flat = diff.reshape(n, -1)
            z = float(np.dot(sample_weight, 0.5 * np.einsum("ni,ni->n", flat, flat)) / n)
            return z, MSESaved(diff * _per_sample(sample_weight, diff.ndim), n)
        return float(0.5 * np.vdot(diff, diff) / n), MSESaved(diff, n)

    def compute_backward_input(self, dz, saved):
        return saved.diff * (dz / saved.n)


@functools.lru_cache(maxsize=64)
def _row_starts(n: int, k: int) -> np.ndarray:
    """``arange(n) * k``, read-only: where each of ``n`` rows of ``k`` entries starts."""
    starts = np.arange(n, dtype=np.intp) * k
    starts.flags.writeable = False
    return starts


class SoftmaxCrossEntropySaved(NamedTuple):
    """What :class:`SoftmaxCrossEntropy` keeps for backward."""

    p_minus_t: np.ndarray  #: ``softmax(x) - T``
    n: int  #: batch size


class SoftmaxCrossEntropy(Loss):
    r"""Softmax followed by cross-entropy, on logits, averaged over the batch.

    Targets are integer class labels of shape ``(N,)`` or probability rows (e.g.
    one-hot) of shape ``(N, K)``.

    .. rubric:: Input and target shape

    Logits ``(N, K)``; targets ``(N,)`` (labels in ``0 .. K-1``) or ``(N, K)``
    (rows that are probability vectors). The loss is a float.

    Parameters
    ----------
    name : str, optional
        Used in error messages; ``"softmax_cross_entropy_<n>"`` by default.
    dtype : {"float32", "float64"}, default "float32"
        Predictions and gradients are computed in this dtype.

    Raises
    ------
    ValueError
        ``SoftmaxCrossEntropy '...': expected target of shape (N,) (integer
        labels) or (N, K) (one-hot or probabilities) for logits of shape (N,
        K), got shape ...``; ``expected integer class labels in target, ...``;
        ``expected class labels in [0, K-1] for K logits, ...``; ``expected
        target rows that are probability vectors (non-negative, summing to 1),
        e.g. one-hot.``; logits that are not 2-D; and the errors of
        :class:`Loss`.
    RuntimeError
        :meth:`backward_input` before any :meth:`forward`.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    With :math:`p_n = \operatorname{softmax}(x_n)` and target rows :math:`T_n`
    (one-hot for labels),

    .. math::

        z = \frac1N \sum_n \Big(\log\sum_k e^{x_{nk}} - \sum_k T_{nk} x_{nk}\Big)
          = -\frac1N\sum_n\sum_k T_{nk}\log p_{nk},

    .. math::

        \frac{\partial z}{\partial x} = \frac{p - T}{N}.

    The log-sum-exp is computed after subtracting each row's maximum, so large
    logits neither overflow nor lose the gradient.

    On one-hot or probability targets this is Keras's
    ``CategoricalCrossentropy(from_logits=True)`` (and on labels
    ``SparseCategoricalCrossentropy(from_logits=True)``), and PyTorch's
    ``cross_entropy``, value and gradient. With ``sample_weight`` each sample's
    term and gradient are scaled by :math:`w_n`, still divided by :math:`N`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.SoftmaxCrossEntropy(dtype="float64")
    >>> round(loss.forward(np.zeros((1, 4)), np.array([2])), 6)   # log 4
    1.386294
    >>> loss.backward_input()
    array([[ 0.25,  0.25, -0.75,  0.25]])
    """

    _default_name = "softmax_cross_entropy"
    fresh_gradient = True
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
            with np.errstate(over="ignore", invalid="ignore"):  # judged just below
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

    def compute_loss(self, x, t, sample_weight=None):
        n, k = x.shape
        shifted = np.subtract(x, _ops.row_max(x), order="C")  # (flat positions below)
        p = np.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        log_z = np.log(s)
        p /= s
        if t.ndim == 1:
            at = _row_starts(n, k) + t  # the targets' flat positions
            per_sample = log_z[:, 0] - shifted.reshape(-1)[at]
            p.reshape(-1)[at] -= 1
        else:
            per_sample = log_z[:, 0] - np.sum(t * shifted, axis=1)
            p -= t
        if sample_weight is None:
            return float(per_sample.sum() / n), SoftmaxCrossEntropySaved(p, n)
        p *= sample_weight[:, None]
        return float(np.dot(sample_weight, per_sample) / n), SoftmaxCrossEntropySaved(p, n)

    def compute_backward_input(self, dz, saved):
        return saved.p_minus_t * (dz / saved.n)


# ---------------------------------------------------------------------------
# Keras's losses, with Keras's names, arguments and definitions.

EPSILON = 1e-7
"""Keras's fuzz factor (``keras.config.epsilon()``): probabilities are clipped to
``[EPSILON, 1 - EPSILON]`` before their logarithm is taken."""


class LossGradient(NamedTuple):
    """What the Keras losses keep for backward: :math:`\\partial z/\\partial x` at ``dz = 1``."""

    grad: np.ndarray


REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None)
"""Keras's reductions of the per-sample values: ``"sum_over_batch_size"`` (and its
synonym ``"mean"``) divides the weighted sum by the number of values, ``"sum"``
keeps the sum, ``"none"`` (or ``None``) returns the weighted values."""


def _per_sample(w: np.ndarray, ndim: int) -> np.ndarray:
    """Sample weights of shape (N,) shaped to broadcast over an array of rank ``ndim``."""
    return w.reshape((-1,) + (1,) * (ndim - 1))


def _check_bool(value: Any, arg: str, owner: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a bool, received {value!r}."
        )
    return bool(value)


def _check_smoothing(value: Any, owner: str) -> float:
    return check_number(value, "label_smoothing", owner, low=0, high=1)


def _check_reduction(value: Any, owner: str) -> str | None:
    if not (value is None or isinstance(value, str)) or value not in REDUCTIONS:
        raise ValueError(
            f"{owner}: invalid value for `reduction`: expected one of "
            f"'sum_over_batch_size', 'sum', 'mean', 'none' or None, received {value!r}."
        )
    return value


def _value_weights(sample_weight: Any, shape: tuple[int, ...], owner: str) -> np.ndarray:
    """Weights for per-sample values of ``shape``: the values' shape or a leading part of it.

    ``(N,)`` weights one value per sample (broadcast over the other axes of the
    values, e.g. time steps), ``(N, T)`` one per time step; a trailing axis of
    length 1 is dropped. Returned broadcast to ``shape``, float64, checked finite
    and non-negative.
    """
    w = as_array(sample_weight, owner, "sample_weight")
    if w.ndim == len(shape) + 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim == 0 or w.shape != shape[: w.ndim]:
        raise ValueError(
            f"{owner}: expected `sample_weight` of shape {shape_str(shape[:1])} (one weight per "
            f"sample) or {shape_str(shape)} (one per value), received shape "
            f"{shape_str(w.shape)}."
        )
    w = w.astype(np.float64)
    check_finite(w, owner, "sample_weight")
    if np.any(w < 0):
        raise ValueError(
            f"{owner}: expected non-negative `sample_weight`, received a minimum of {w.min()}."
        )
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


class _KerasLoss(Loss):
    r"""A loss given by per-sample values and Keras's reduction of them.

    A subclass implements ``compute_values(x, t) -> (values, grad)``: the
    per-sample values :math:`v` (what the lowercase function such as
    :func:`mean_squared_error` returns: the prediction's shape without the axes
    in :meth:`reduced_axes`, by default the last) and ``grad``, of the
    prediction's shape, holding :math:`\partial v_p/\partial x_{pk}` for the value
    :math:`p` each entry belongs to. The reduction turns them into
    :math:`z = \sum_p w_p v_p / P` (``"sum_over_batch_size"``, :math:`P` values) or
    :math:`\sum_p w_p v_p` (``"sum"``), and :math:`\partial z/\partial x_{pk} =
    (w_p/P)\,\partial v_p/\partial x_{pk}`.
    """

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        *,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reduction": self.reduction}

    def compute_values(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample values and their derivatives (see the class docstring)."""
        raise NotImplementedError

    def reduced_axes(self, x: np.ndarray) -> tuple[int, ...]:
        """Axes of the prediction that one value reduces over (the last, by default)."""
        return (x.ndim - 1,)

    def target_gradient(self, x: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        r""":math:`\partial v_p/\partial t_{pk}` (the target's shape), or ``None`` for a loss
        that does not differentiate its target (used when a loss is called on symbolic
        tensors whose target is computed, as a teacher's prediction)."""
        return None

    def target_scale(self, x: np.ndarray, values_shape: tuple, sample_weight: Any) -> np.ndarray:
        r"""The factor :math:`\partial z/\partial v_p` of each value, expanded over the
        reduced axes of the prediction."""
        w = (
            np.ones(values_shape)
            if sample_weight is None
            else np.array(_value_weights(sample_weight, values_shape, self.owner))
        )
        if self.reduction not in ("sum", None, "none") and len(values_shape):
            w = w / math.prod(values_shape)
        return np.expand_dims(w, self.reduced_axes(x))

    def values(self, y_true: Any, y_pred: Any) -> np.ndarray:
        """The per-sample values for ``(y_true, y_pred)``, unweighted and unreduced."""
        x = self.check_input(y_pred)
        return self.compute_values(x, self.check_target(x, y_true))[0]

    def forward(
        self, x: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        if self.reduction in (None, "none"):
            raise ValueError(
                f"{self.owner}: forward(x, t) needs a scalar loss, but reduction="
                f"{self.reduction!r} keeps one value per sample; call loss(y_true, y_pred) "
                f"for those values, or use reduction='sum_over_batch_size' to train."
            )
        return super().forward(x, t, sample_weight)

    def _compute(self, x: np.ndarray, t: np.ndarray, sample_weight: Any) -> tuple[Any, Any]:
        return self.compute_loss(x, t, sample_weight=sample_weight)

    def compute_loss(self, x, t, sample_weight=None):
        values, grad = self.compute_values(x, t)
        divide = self.reduction not in ("sum", None, "none") and values.ndim
        if sample_weight is None:
            if self.reduction in (None, "none"):
                return values.astype(self.dtype), None
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging model: z = inf
                total = float(np.sum(values, dtype=np.float64))
                if divide:
                    total /= values.size
                    grad = grad * self.dtype.type(1.0 / values.size)
            return total, LossGradient(grad)
        if values.ndim == 0:
            raise ValueError(
                f"{self.owner}: `sample_weight` needs one loss value per sample, but this "
                f"loss reduces the whole batch to one value (axis=None)."
            )
        w = _value_weights(sample_weight, values.shape, self.owner)
        if self.reduction in (None, "none"):
            return (values * w).astype(self.dtype), None
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(values * w, dtype=np.float64))
            scale = w
            if divide:
                total /= values.size
                scale = w / values.size
            scale = np.expand_dims(np.asarray(scale, dtype=self.dtype), self.reduced_axes(x))
            return total, LossGradient(grad * scale)

    def compute_backward_input(self, dz, saved):
        return saved.grad * dz


class _ElementwiseLoss(_KerasLoss):
    """A loss whose value is a mean over the last axis of an elementwise error."""

    def check_target(self, x, t):
        t = as_array(t, self.owner, "target")
        if t.shape != x.shape:
            # Keras's rule: a trailing axis of length 1 is added or dropped to match.
            if x.ndim >= 2 and x.shape[-1] == 1 and t.shape == x.shape[:-1]:
                t = t.reshape(x.shape)
            elif t.ndim >= 2 and t.shape[-1] == 1 and t.shape[:-1] == x.shape:
                t = t.reshape(x.shape)
            else:
                raise ValueError(
                    f"{self.owner}: expected target of shape {shape_str(x.shape)} (the "
                    f"prediction's shape), got shape {shape_str(t.shape)}."
                )
        return cast_checked(t, self.dtype, self.owner, "target")

    def elementwise(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The elementwise error and its derivative with respect to ``x``."""
        raise NotImplementedError

    def elementwise_target(self, x: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        """The elementwise error's derivative with respect to ``t`` (``None``: not given)."""
        return None

    def target_gradient(self, x, t):
        de = self.elementwise_target(x, t)
        return None if de is None else de / max(x.shape[-1], 1)

    def compute_values(self, x, t):
        with np.errstate(over="ignore", invalid="ignore"):
            e, de = self.elementwise(x, t)
            k = x.shape[-1]
            return e.mean(axis=-1) if k else e.sum(axis=-1), de / max(k, 1)


class MeanSquaredError(_ElementwiseLoss):
    r"""Keras's ``"mse"``: the mean of the squared error over every entry.

    Parameters
    ----------
    name, dtype
        See :class:`~layernet.layers.Layer`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's (``expected target of shape
        ... (the prediction's shape), got shape ...``), an invalid
        ``name`` or ``dtype``; and the errors of
        :class:`~layernet.Loss` (``dz``, backward before forward).
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    For a prediction :math:`x` and target :math:`t` with :math:`N` samples of
    :math:`K` entries each (:math:`M = NK` entries in all) and optional sample
    weights :math:`w_n` (default 1),

    .. math::

        z = \frac1M \sum_{n,k} w_n (x_{nk} - t_{nk})^2,
        \qquad
        \frac{\partial z}{\partial x_{nk}} = \frac{2 w_n}{M}(x_{nk} - t_{nk}).

    The Jacobian is the row vector of these entries. This is Keras's
    ``MeanSquaredError`` (reduction ``"sum_over_batch_size"``) and PyTorch's
    ``mse_loss``; it equals the ``"mse"`` metric on the same predictions.
    The notes' :class:`MSELoss` is :math:`\tfrac K2` times this loss. A target
    of shape ``(N,)`` is accepted for predictions ``(N, 1)``, as in Keras.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.MeanSquaredError(dtype="float64")
    >>> loss.forward(np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]]))
    2.5
    >>> loss.backward_input()
    array([[1., 2.]])
    """

    _default_name = "mean_squared_error"
    fresh_output = True

    def elementwise(self, x, t):
        diff = x - t
        return diff * diff, 2 * diff

    def elementwise_target(self, x, t):
        return -2 * (x - t)


class MeanAbsoluteError(_ElementwiseLoss):
    r"""Keras's ``"mae"``: the mean of the absolute error over every entry.

    Parameters
    ----------
    name, dtype
        See :class:`~layernet.layers.Layer`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's, an invalid ``name`` or
        ``dtype``; and the errors of :class:`~layernet.Loss`
        (``dz``, backward before forward).
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    With :math:`M` entries in all and sample weights :math:`w_n` (default 1),

    .. math::

        z = \frac1M \sum_{n,k} w_n \lvert x_{nk} - t_{nk}\rvert,
        \qquad
        \frac{\partial z}{\partial x_{nk}} = \frac{w_n}{M}\operatorname{sign}(x_{nk} - t_{nk}),

    taking :math:`\operatorname{sign}(0) = 0` where the error is exactly zero
    (the subgradient PyTorch uses). Keras's ``MeanAbsoluteError``, PyTorch's
    ``l1_loss``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.MeanAbsoluteError(dtype="float64")
    >>> loss.forward(np.array([[1.0, -3.0]]), np.array([[0.0, 0.0]]))
    2.0
    >>> loss.backward_input()
    array([[ 0.5, -0.5]])
    """

    _default_name = "mean_absolute_error"
    fresh_output = True

    def elementwise(self, x, t):
        diff = x - t
        return np.abs(diff), np.sign(diff)

    def elementwise_target(self, x, t):
        return -np.sign(x - t)


def _categorical(owner, x, t, from_logits):
    """Cross-entropy over the last axis: the values (one per position) and their derivatives.

    ``x`` and ``t`` have shape (N, ..., K).
    """
    k = x.shape[-1]
    xf, tf = x.reshape(-1, k), t.reshape(-1, k)
    if from_logits:
        shifted = xf - _ops.row_max(xf)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        t_sum = tf.sum(axis=1)
        values = t_sum * np.log(s[:, 0]) - np.sum(tf * shifted, axis=1)
        grad = e / s * t_sum[:, None] - tf
    else:
        q, s = _normalised_probabilities(owner, xf)
        c = np.clip(q, EPSILON, 1 - EPSILON)
        values = -np.sum(tf * np.log(c), axis=1)
        g_q = np.where((q >= EPSILON) & (q <= 1 - EPSILON), -tf / c, 0)
        grad = (g_q - np.sum(g_q * q, axis=1, keepdims=True)) / s
    return values.reshape(x.shape[:-1]), grad.reshape(x.shape)


def _normalised_probabilities(owner: str, xf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of probabilities divided by their sums (Keras's step), and the sums."""
    if np.any(xf < 0):
        raise ValueError(
            f"{owner}: expected probabilities (e.g. a softmax output), received negative "
            f"values (minimum {xf.min()}); for logits pass from_logits=True."
        )
    s = xf.sum(axis=1, keepdims=True)
    if np.any(s == 0):
        raise ValueError(
            f"{owner}: expected probability rows with a positive sum, received a row of "
            f"zeros; for logits pass from_logits=True."
        )
    return xf / s, s


class _CrossentropyLoss(_KerasLoss):
    """Shared arguments of the cross-entropies: ``from_logits`` and ``label_smoothing``."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(reduction, name=name, dtype=dtype)
        cls = type(self).__name__
        self.from_logits = _check_bool(from_logits, "from_logits", cls)
        self.label_smoothing = _check_smoothing(label_smoothing, cls)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }

    def _check_classes_axis(self, x):
        if x.ndim < 2:
            raise ValueError(
                f"{self.owner}: expected predictions of shape (N, ..., classes), got shape "
                f"{shape_str(x.shape)}."
            )


class CategoricalCrossentropy(_CrossentropyLoss):
    r"""Keras's ``"categorical_crossentropy"``: cross-entropy of one-hot or probability targets.

    Parameters
    ----------
    from_logits : bool, default False
        False: the prediction holds probabilities (a softmax output, Keras's
        default pairing). True: it holds logits, and the softmax is applied here.
    label_smoothing : float, default 0.0
        In [0, 1]: targets become :math:`t(1 - \alpha) + \alpha/K` for :math:`K` classes.
    name, dtype
        See :class:`~layernet.layers.Layer`.

    Raises
    ------
    ValueError
        ``from_logits`` not a bool; ``label_smoothing`` not a float in [0, 1]; a
        target whose shape is not the prediction's; probabilities with negative
        values or a row of zeros when ``from_logits=False`` (``... for logits
        pass from_logits=True.``); predictions with fewer than 2 dims; and the
        errors of :class:`~layernet.Loss` (``dz``, backward before forward).
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    Classes lie along the last axis; every other position (there are :math:`P`,
    :math:`P = N` for predictions of shape ``(N, K)``) contributes one term,
    weighted by its sample's :math:`w_n` (default 1). **Probabilities in**
    (``from_logits=False``), computed as Keras does: each row is normalised,
    :math:`q = x/\sum_k x_k`, and clipped to :math:`c = \operatorname{clip}(q,
    \epsilon, 1-\epsilon)` with :math:`\epsilon = 10^{-7}`, so a zero probability
    costs :math:`-\log\epsilon \approx 16.1` instead of infinity:

    .. math::

        z = -\frac1P\sum_{p} w_p \sum_k t_{pk}\log c_{pk},
        \qquad
        g_{pk} = \frac{\partial z}{\partial q_{pk}}
               = -\frac{w_p}{P}\,\frac{t_{pk}}{c_{pk}}\,[\epsilon \le q_{pk} \le 1-\epsilon],
        \qquad
        \frac{\partial z}{\partial x_{pj}} = \frac{g_{pj} - \sum_k g_{pk} q_{pk}}{\sum_k x_{pk}}.

    Behind a softmax :math:`x = \operatorname{softmax}(a)` the chain rule gives
    the fused gradient :math:`\partial z/\partial a_p = w_p(x_p - t_p)/P` exactly
    (for targets summing to 1) wherever no probability is clipped; a clipped
    entry passes no gradient, as in Keras on its PyTorch and JAX backends.
    Layernet does not fuse the softmax into the loss; for an unclipped,
    fused-by-construction loss use ``from_logits=True`` (or
    :class:`SoftmaxCrossEntropy`) behind a linear output. **Logits in**
    (``from_logits=True``), with :math:`s = \sum_k t_{pk}`:

    .. math::

        z = \frac1P\sum_p w_p\Big(s\,\log\sum_k e^{x_{pk}} - \sum_k t_{pk}x_{pk}\Big),
        \qquad
        \frac{\partial z}{\partial x_p}
        = \frac{w_p}{P}\big(s\,\operatorname{softmax}(x_p) - t_p\big),

    computed after subtracting each row's maximum; this equals
    :class:`SoftmaxCrossEntropy` and PyTorch's ``cross_entropy`` with
    ``label_smoothing`` (whose smoothing is the same). The Jacobian is the row
    vector of :math:`\partial z/\partial x`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.CategoricalCrossentropy(dtype="float64")
    >>> round(loss.forward(np.array([[0.25, 0.75]]), np.array([[0.0, 1.0]])), 6)  # -log 0.75
    0.287682
    >>> loss.backward_input()
    array([[ 1.        , -0.33333333]])
    """

    _default_name = "categorical_crossentropy"
    fresh_output = True

    def check_target(self, x, t):
        self._check_classes_axis(x)
        t = as_array(t, self.owner, "target")
        if t.shape != x.shape:
            hint = ""
            if t.shape in (x.shape[:-1], (*x.shape[:-1], 1)):
                hint = (
                    " Integer labels need 'sparse_categorical_crossentropy', or one-hot "
                    "encode them with layernet.utils.to_categorical."
                )
            raise ValueError(
                f"{self.owner}: expected one-hot or probability targets of shape "
                f"{shape_str(x.shape)} (the prediction's shape), got shape "
                f"{shape_str(t.shape)}.{hint}"
            )
        return cast_checked(t, self.dtype, self.owner, "target")

    def compute_values(self, x, t):
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / x.shape[-1]
        return _categorical(self.owner, x, t, self.from_logits)

    def target_gradient(self, x, t):
        # v = -sum_k t_k log p_k (t smoothed): dv/dt_k = -(1 - smoothing) log p_k
        k = x.shape[-1]
        xf = x.reshape(-1, k)
        if self.from_logits:
            shifted = xf - _ops.row_max(xf)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        else:
            q, _ = _normalised_probabilities(self.owner, xf)
            log_p = np.log(np.clip(q, EPSILON, 1 - EPSILON))
        return (-(1 - self.label_smoothing) * log_p).reshape(x.shape)


class SparseCategoricalCrossentropy(_CrossentropyLoss):
    r"""Keras's ``"sparse_categorical_crossentropy"``: cross-entropy against integer labels.

    The same loss as :class:`CategoricalCrossentropy` with the one-hot rows of
    the labels as targets (no label smoothing, as in Keras).

    Parameters
    ----------
    from_logits : bool, default False
        False: the prediction holds probabilities (clipped to
        :math:`[10^{-7}, 1 - 10^{-7}]` as in Keras); True: logits.
    name, dtype
        See :class:`~layernet.layers.Layer`.

    Raises
    ------
    ValueError
        ``from_logits`` not a bool; labels that are not integers or not in ``[0,
        K-1]``; targets whose shape does not match the predictions' leading
        axes; probabilities with negative values or a row of zeros when
        ``from_logits=False``; and the errors of :class:`~layernet.Loss`
        (``dz``, backward before forward).
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    For labels :math:`y_p` and probabilities :math:`x_p` (normalised to
    :math:`q_p`, clipped to :math:`c_p`):

    .. math::

        z = -\frac1P\sum_p w_p \log c_{p,y_p},
        \qquad
        \frac{\partial z}{\partial x_{pj}} = -\frac{w_p}{P}\,
            \frac{[\epsilon \le q_{py_p} \le 1-\epsilon]}{c_{py_p}}\,
            \frac{\delta_{j y_p} - q_{py_p}}{\sum_k x_{pk}};

    for logits :math:`z = \frac1P\sum_p w_p(\log\sum_k e^{x_{pk}} - x_{p y_p})`
    and :math:`\partial z/\partial x_p = w_p(\operatorname{softmax}(x_p) - e_{y_p})/P`.
    Labels have the prediction's shape without its last axis, or with a last
    axis of length 1.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.SparseCategoricalCrossentropy(dtype="float64")
    >>> round(loss.forward(np.array([[0.25, 0.75]]), np.array([1])), 6)  # -log 0.75
    0.287682
    """

    _default_name = "sparse_categorical_crossentropy"
    fresh_output = True

    def __init__(
        self,
        from_logits: bool = False,
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(from_logits, 0.0, reduction=reduction, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["label_smoothing"]
        return config

    def check_target(self, x, t):
        self._check_classes_axis(x)
        t = as_array(t, self.owner, "target")
        k = x.shape[-1]
        if t.shape == (*x.shape[:-1], 1):
            t = t.reshape(x.shape[:-1])
        if t.shape != x.shape[:-1]:
            raise ValueError(
                f"{self.owner}: expected integer labels of shape {shape_str(x.shape[:-1])} for "
                f"predictions of shape {shape_str(x.shape)}, got shape {shape_str(t.shape)}."
            )
        if t.dtype.kind == "f" and (
            not np.all(np.isfinite(t)) or not np.array_equal(t, np.round(t))
        ):
            raise ValueError(
                f"{self.owner}: expected integer class labels in target, received "
                f"non-integer values (dtype {t.dtype})."
            )
        labels = t.astype(np.intp)
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(
                f"{self.owner}: expected class labels in [0, {k - 1}] for {k} classes, "
                f"received labels from {labels.min()} to {labels.max()}."
            )
        return labels

    def compute_values(self, x, t):
        one_hot = np.zeros(x.shape, dtype=x.dtype)
        np.put_along_axis(one_hot, t[..., None], 1, axis=-1)
        return _categorical(self.owner, x, one_hot, self.from_logits)


class BinaryCrossentropy(_CrossentropyLoss, _ElementwiseLoss):
    r"""Keras's ``"binary_crossentropy"``: elementwise cross-entropy of 0/1 (or soft) targets.

    Parameters
    ----------
    from_logits : bool, default False
        False: the prediction holds probabilities in [0, 1] (a sigmoid output),
        clipped to :math:`[\epsilon, 1-\epsilon]`, :math:`\epsilon = 10^{-7}`, as
        in Keras. True: logits, with the sigmoid applied here.
    label_smoothing : float, default 0.0
        Targets become :math:`t(1 - \alpha) + \alpha/2`.
    name, dtype
        See :class:`~layernet.layers.Layer`.

    Raises
    ------
    ValueError
        ``from_logits`` not a bool; ``label_smoothing`` not a float in [0, 1]; a
        target whose shape is not the prediction's; probabilities outside [0, 1]
        when ``from_logits=False``; and the errors of :class:`~layernet.Loss`
        (``dz``, backward before forward).
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        A prediction or target that is not a real numeric array.

    Notes
    -----
    Over all :math:`M` entries, with sample weights :math:`w_n` (default 1) and
    :math:`c = \operatorname{clip}(x, \epsilon, 1-\epsilon)`:

    .. math::

        z = -\frac1M\sum_{n,k} w_n\big(t\log c + (1-t)\log(1-c)\big),
        \qquad
        \frac{\partial z}{\partial x} = \frac{w_n}{M}\,\frac{c - t}{c(1-c)}\,
            [\epsilon \le x \le 1-\epsilon].

    Behind a sigmoid :math:`x = \sigma(a)` the chain rule gives
    :math:`\partial z/\partial a = w_n(x - t)/M` wherever nothing is clipped.
    With logits, :math:`z = \frac1M\sum w_n\big(\max(x, 0) - xt + \log(1 + e^{-|x|})\big)`
    and :math:`\partial z/\partial x = w_n(\sigma(x) - t)/M`, stable for any
    :math:`x` (PyTorch's ``binary_cross_entropy_with_logits``). The target has
    the prediction's shape (a trailing axis of length 1 may be missing).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.BinaryCrossentropy(dtype="float64")
    >>> round(loss.forward(np.array([[0.8], [0.4]]), np.array([1, 0])), 6)
    0.366985
    """

    _default_name = "binary_crossentropy"
    fresh_output = True

    def check_target(self, x, t):
        t = _ElementwiseLoss.check_target(self, x, t)
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError(
                f"{self.owner}: expected targets in [0, 1], received values from {t.min()} "
                f"to {t.max()}."
            )
        return t

    def elementwise(self, x, t):
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            values = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
            grad = 0.5 * (1 + np.tanh(0.5 * x)) - t  # sigmoid(x) - t, without overflow
        else:
            if x.size and (x.min() < 0 or x.max() > 1):
                raise ValueError(
                    f"{self.owner}: expected probabilities in [0, 1] (e.g. a sigmoid output), "
                    f"received values from {x.min()} to {x.max()}; for logits pass "
                    f"from_logits=True."
                )
            c = np.clip(x, EPSILON, 1 - EPSILON)
            values = -(t * np.log(c) + (1 - t) * np.log1p(-c))
            inside = (x >= EPSILON) & (x <= 1 - EPSILON)
            grad = np.where(inside, (c - t) / (c * (1 - c)), 0)
        return values, grad


def _hinge_labels(t: np.ndarray) -> np.ndarray:
    """Keras's rule: targets that are all 0 or 1 become -1 or 1; others are kept."""
    if t.size and np.all((t == 0) | (t == 1)):
        return 2 * t - 1
    return t


class MeanAbsolutePercentageError(_ElementwiseLoss):
    r"""Keras's ``"mape"``: the mean absolute error relative to the target, in percent.

    Parameters
    ----------
    reduction : {"sum_over_batch_size", "sum", "mean", "none", None}, default "sum_over_batch_size"
        How the per-sample values are reduced (see :class:`~layernet.Loss`).
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; an invalid ``reduction``;
        and the errors of :class:`~layernet.Loss`.

    Notes
    -----
    Per sample (mean over the :math:`K` entries of the last axis),
    with :math:`d_k = \max(|t_k|, \epsilon)`, :math:`\epsilon = 10^{-7}`:

    .. math::

        v = \frac{100}{K}\sum_k \frac{|x_k - t_k|}{d_k},
        \qquad
        \frac{\partial v}{\partial x_k} = \frac{100}{K}\,\frac{\operatorname{sign}(x_k - t_k)}{d_k}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.MeanAbsolutePercentageError()(np.array([[2.0, 4.0]]), np.array([[1.0, 5.0]]))
    37.5
    """

    _default_name = "mean_absolute_percentage_error"

    def elementwise(self, x, t):
        d = np.maximum(np.abs(t), EPSILON)
        return 100 * np.abs(x - t) / d, 100 * np.sign(x - t) / d


class MeanSquaredLogarithmicError(_ElementwiseLoss):
    r"""Keras's ``"msle"``: the mean squared difference of :math:`\log(1 + \cdot)`.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; an invalid ``reduction``;
        and the errors of :class:`~layernet.Loss`.

    Notes
    -----
    With :math:`a_k = \log(\max(x_k, \epsilon) + 1) - \log(\max(t_k, \epsilon) + 1)`:

    .. math::

        v = \frac1K\sum_k a_k^2,
        \qquad
        \frac{\partial v}{\partial x_k}
        = \frac{2 a_k}{K(\max(x_k,\epsilon) + 1)}\,[x_k \ge \epsilon].

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.MeanSquaredLogarithmicError()
    >>> round(loss(np.array([[0.0, 1.0]]), np.array([[1.0, 1.0]])), 5)  # (log 2)^2 / 2
    0.24023
    """

    _default_name = "mean_squared_logarithmic_error"

    def elementwise(self, x, t):
        xc = np.maximum(x, EPSILON)
        a = np.log1p(xc) - np.log1p(np.maximum(t, EPSILON))
        return a * a, np.where(x >= EPSILON, 2 * a / (xc + 1), 0)


class Huber(_ElementwiseLoss):
    r"""Keras's ``"huber"``: squared error near zero, absolute error beyond ``delta``.

    Parameters
    ----------
    delta : float, default 1.0
        Where the loss turns from quadratic to linear (positive).
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        ``delta`` not a positive number; a target whose shape is not the
        prediction's; and the errors of :class:`~layernet.Loss`.

    Notes
    -----
    With :math:`e = x - t`:

    .. math::

        v = \frac1K\sum_k \begin{cases} \tfrac12 e_k^2 & |e_k| \le \delta \\
            \delta|e_k| - \tfrac12\delta^2 & \text{otherwise}\end{cases},
        \qquad
        \frac{\partial v}{\partial x_k} = \frac1K \operatorname{clip}(e_k, -\delta, \delta).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.Huber()(np.array([[0.0, 0.0]]), np.array([[0.5, 3.0]]))
    1.3125
    """

    _default_name = "huber_loss"

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        *,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(reduction, name=name, dtype=dtype)
        self.delta = check_number(delta, "delta", type(self).__name__, low=0, low_open=True)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}

    def elementwise(self, x, t):
        e = x - t
        a = np.abs(e)
        d = self.delta
        return np.where(a <= d, 0.5 * e * e, d * a - 0.5 * d * d), np.clip(e, -d, d)


class LogCosh(_ElementwiseLoss):
    r"""Keras's ``"log_cosh"``: the mean of :math:`\log\cosh(x - t)`.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    With :math:`e = x - t`, computed as :math:`e + \operatorname{softplus}(-2e) - \log 2`
    so that large errors do not overflow:

    .. math::

        v = \frac1K\sum_k \log\cosh e_k,
        \qquad
        \frac{\partial v}{\partial x_k} = \frac{\tanh e_k}{K}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> round(ln.losses.LogCosh()(np.array([[0.0]]), np.array([[1.0]])), 6)  # log cosh 1
    0.433781
    """

    _default_name = "log_cosh"

    def elementwise(self, x, t):
        e = x - t
        return e + np.logaddexp(0, -2 * e) - np.log(2.0), np.tanh(e)


class Poisson(_ElementwiseLoss):
    r"""Keras's ``"poisson"``: the Poisson negative log-likelihood, up to a constant.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    For predicted rates :math:`x > 0`, with :math:`\epsilon = 10^{-7}`:

    .. math::

        v = \frac1K\sum_k \big(x_k - t_k\log(x_k + \epsilon)\big),
        \qquad
        \frac{\partial v}{\partial x_k} = \frac1K\Big(1 - \frac{t_k}{x_k + \epsilon}\Big).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> round(ln.losses.Poisson()(np.array([[1.0]]), np.array([[2.0]])), 5)  # 2 - log 2
    1.30685
    """

    _default_name = "poisson"

    def elementwise(self, x, t):
        return x - t * np.log(x + EPSILON), 1 - t / (x + EPSILON)


class KLDivergence(_ElementwiseLoss):
    r"""Keras's ``"kl_divergence"``: :math:`\mathrm{KL}(t\,\|\,x)` over the last axis.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    Both are clipped to :math:`[\epsilon, 1]` (:math:`\epsilon = 10^{-7}`),
    :math:`\bar t = \operatorname{clip}(t)`, :math:`\bar x = \operatorname{clip}(x)`; the
    value **sums** over the last axis (it is not a mean):

    .. math::

        v = \sum_k \bar t_k \log\frac{\bar t_k}{\bar x_k},
        \qquad
        \frac{\partial v}{\partial x_k} = -\frac{\bar t_k}{\bar x_k}\,[\epsilon \le x_k \le 1].

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> round(ln.losses.KLDivergence()(np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])), 6)
    0.143841
    """

    _default_name = "kl_divergence"

    def compute_values(self, x, t):
        tc = np.clip(t, EPSILON, 1)
        xc = np.clip(x, EPSILON, 1)
        values = np.sum(tc * np.log(tc / xc), axis=-1)
        return values, np.where((x >= EPSILON) & (x <= 1), -tc / xc, 0)

    def target_gradient(self, x, t):
        tc = np.clip(t, EPSILON, 1)
        xc = np.clip(x, EPSILON, 1)
        return np.where((t >= EPSILON) & (t <= 1), np.log(tc / xc) + 1, 0)


class Hinge(_ElementwiseLoss):
    r"""Keras's ``"hinge"``: :math:`\max(1 - t x, 0)` for targets :math:`\pm 1` (or 0/1).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    Targets that are all 0 or 1 become :math:`s = 2t - 1` (Keras's rule; other
    targets are used as given, :math:`s = t`):

    .. math::

        v = \frac1K\sum_k \max(1 - s_k x_k, 0),
        \qquad
        \frac{\partial v}{\partial x_k} = -\frac{s_k}{K}\,[1 - s_k x_k > 0].

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.Hinge()(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    1.0
    """

    _default_name = "hinge"

    def elementwise(self, x, t):
        s = _hinge_labels(t)
        m = 1 - s * x
        return np.maximum(m, 0), np.where(m > 0, -s, 0)


class SquaredHinge(_ElementwiseLoss):
    r"""Keras's ``"squared_hinge"``: :math:`\max(1 - t x, 0)^2` for targets :math:`\pm 1` (or 0/1).

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    With :math:`s` as in :class:`Hinge` and :math:`m_k = \max(1 - s_k x_k, 0)`:

    .. math::

        v = \frac1K\sum_k m_k^2,
        \qquad
        \frac{\partial v}{\partial x_k} = -\frac{2 s_k m_k}{K}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.SquaredHinge()(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]]))
    1.25
    """

    _default_name = "squared_hinge"

    def elementwise(self, x, t):
        s = _hinge_labels(t)
        m = np.maximum(1 - s * x, 0)
        return m * m, -2 * s * m


class CategoricalHinge(_ElementwiseLoss):
    r"""Keras's ``"categorical_hinge"``: the margin of the true class over the best other.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a target whose shape is not the prediction's; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    With one-hot targets :math:`t`, :math:`\mathrm{pos} = \sum_k t_k x_k` and
    :math:`\mathrm{neg} = \max_k (1 - t_k) x_k` reached at :math:`k^*`:

    .. math::

        v = \max(\mathrm{neg} - \mathrm{pos} + 1, 0),
        \qquad
        \frac{\partial v}{\partial x_k} = [v > 0]\big((1 - t_{k^*})\,\delta_{k k^*} - t_k\big).

    At ties for the maximum the first index is :math:`k^*` (a subgradient).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.CategoricalHinge()(np.array([[0.0, 1.0]]), np.array([[0.5, 0.25]]))
    1.25
    """

    _default_name = "categorical_hinge"

    def compute_values(self, x, t):
        pos = np.sum(t * x, axis=-1)
        other = (1 - t) * x
        k_star = np.argmax(other, axis=-1)[..., None]
        neg = np.take_along_axis(other, k_star, axis=-1)[..., 0]
        v = np.maximum(neg - pos + 1, 0)
        grad = -t
        at_k = np.take_along_axis(grad, k_star, axis=-1) + 1 - np.take_along_axis(t, k_star, -1)
        np.put_along_axis(grad, k_star, at_k, axis=-1)
        return v, grad * (v > 0)[..., None]


class CosineSimilarity(_ElementwiseLoss):
    r"""Keras's ``"cosine_similarity"``: minus the cosine of the angle of target and prediction.

    Parameters
    ----------
    axis : int, default -1
        The axis along which the vectors lie.
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        ``axis`` not an int naming a non-batch axis of the prediction; a target
        whose shape is not the prediction's; and the errors of :class:`~layernet.Loss`.

    Notes
    -----
    Vectors are normalised as Keras does, :math:`\hat u = u\,/\sqrt{\max(\lVert u\rVert^2,
    \epsilon^2)}`; with :math:`r = 1/\sqrt{\max(\lVert x\rVert^2, \epsilon^2)}`:

    .. math::

        v = -\hat t\cdot\hat x,
        \qquad
        \frac{\partial v}{\partial x} = -r\big(\hat t - (\hat t\cdot\hat x)\,\hat x\big)
        \quad(\text{or } -r\,\hat t \text{ where } \lVert x\rVert < \epsilon).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.losses.CosineSimilarity()(np.array([[0.0, 1.0]]), np.array([[0.0, 2.0]]))
    -1.0
    """

    _default_name = "cosine_similarity"

    def __init__(
        self,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        *,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(reduction, name=name, dtype=dtype)
        if not is_int(axis):
            raise ValueError(
                f"{type(self).__name__}: invalid value for `axis`: expected an int, "
                f"received {axis!r}."
            )
        self.axis = int(axis)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

    def reduced_axes(self, x):
        axis = self.axis % x.ndim if -x.ndim <= self.axis < x.ndim else None
        if axis is None or axis == 0:
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: expected a non-batch axis of "
                f"predictions of shape {shape_str(x.shape)}, received {self.axis}."
            )
        return (axis,)

    def compute_values(self, x, t):
        (axis,) = self.reduced_axes(x)
        sx = np.sum(x * x, axis=axis, keepdims=True)
        r = 1 / np.sqrt(np.maximum(sx, EPSILON * EPSILON))
        xh = x * r
        th = t / np.sqrt(np.maximum(np.sum(t * t, axis=axis, keepdims=True), EPSILON * EPSILON))
        cos = np.sum(th * xh, axis=axis, keepdims=True)
        grad = -r * np.where(sx > EPSILON * EPSILON, th - cos * xh, th)
        return -cos.squeeze(axis), grad


class _FocalMixin:
    """The focal arguments ``alpha`` and ``gamma``."""

    alpha: float
    gamma: float

    def target_gradient(self, x: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        """Not given for the focal forms (their target is not differentiated)."""
        return None

    def _focal_args(self, alpha: Any, gamma: Any) -> None:
        owner = type(self).__name__
        self.alpha = check_number(alpha, "alpha", owner, low=0, high=1)
        self.gamma = check_number(gamma, "gamma", owner, low=0)


class CategoricalFocalCrossentropy(_FocalMixin, CategoricalCrossentropy):
    r"""Keras's ``"categorical_focal_crossentropy"``: cross-entropy down-weighting easy examples.

    Parameters
    ----------
    alpha : float, default 0.25
        The weight of every class's term, in [0, 1].
    gamma : float, default 2.0
        The focusing exponent (non-negative); 0 gives ``alpha`` times the cross-entropy.
    from_logits : bool, default False
    label_smoothing : float, default 0.0
        As in :class:`CategoricalCrossentropy`.
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        ``alpha`` outside [0, 1], a negative ``gamma``, and what
        :class:`CategoricalCrossentropy` refuses.

    Notes
    -----
    Probabilities are normalised, :math:`q = x/\sum_k x_k` (after a softmax for
    logits), and clipped, :math:`c = \operatorname{clip}(q, \epsilon, 1-\epsilon)`:

    .. math::

        v = -\sum_k \alpha\,(1 - c_k)^\gamma\, t_k \log c_k,
        \qquad
        g_k = \frac{\partial v}{\partial q_k} = \alpha t_k\Big(\gamma(1 - c_k)^{\gamma-1}\log c_k
            - \frac{(1 - c_k)^\gamma}{c_k}\Big)[\epsilon \le q_k \le 1-\epsilon],

    then :math:`\partial v/\partial x_j = (g_j - \sum_k g_k q_k)/\sum_k x_k` for
    probabilities and :math:`q_j(g_j - \sum_k g_k q_k)` for logits.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.CategoricalFocalCrossentropy(gamma=0.0, alpha=1.0)
    >>> round(loss(np.array([[0.0, 1.0]]), np.array([[0.25, 0.75]])), 6)  # -log 0.75
    0.287682
    """

    _default_name = "categorical_focal_crossentropy"

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction=reduction, name=name, dtype=dtype)
        self._focal_args(alpha, gamma)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma}

    def compute_values(self, x, t):
        k = x.shape[-1]
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + self.label_smoothing / k
        xf, tf = x.reshape(-1, k), t.reshape(-1, k)
        if self.from_logits:
            e = np.exp(xf - _ops.row_max(xf))
            q, s = e / e.sum(axis=1, keepdims=True), None
        else:
            q, s = _normalised_probabilities(self.owner, xf)
        c = np.clip(q, EPSILON, 1 - EPSILON)
        a, g = self.alpha, self.gamma
        log_c = np.log(c)
        mod = (1 - c) ** g
        values = -np.sum(a * mod * tf * log_c, axis=1)
        dmod = g * (1 - c) ** (g - 1) if g else np.zeros_like(c)
        g_q = a * tf * (dmod * log_c - mod / c)
        g_q = np.where((q >= EPSILON) & (q <= 1 - EPSILON), g_q, 0)
        centred = g_q - np.sum(g_q * q, axis=1, keepdims=True)
        grad = centred * q if s is None else centred / s
        return values.reshape(x.shape[:-1]), grad.reshape(x.shape)


class BinaryFocalCrossentropy(_FocalMixin, BinaryCrossentropy):
    r"""Keras's ``"binary_focal_crossentropy"``: binary cross-entropy down-weighting easy examples.

    Parameters
    ----------
    apply_class_balancing : bool, default False
        Weight positives by ``alpha`` and negatives by ``1 - alpha``.
    alpha : float, default 0.25
    gamma : float, default 2.0
    from_logits : bool, default False
    label_smoothing : float, default 0.0
        As in :class:`BinaryCrossentropy`.
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        ``alpha`` outside [0, 1], a negative ``gamma``, a non-bool
        ``apply_class_balancing``, and what :class:`BinaryCrossentropy` refuses.

    Notes
    -----
    With :math:`p = x` (or :math:`\sigma(x)` for logits), :math:`c = \operatorname{clip}(p,
    \epsilon, 1-\epsilon)`, :math:`b = -t\log c - (1-t)\log(1-c)`,
    :math:`p_t = tp + (1-t)(1-p)` and :math:`\beta = t\alpha + (1-t)(1-\alpha)` with
    balancing (1 otherwise), per entry :math:`f = \beta(1 - p_t)^\gamma b` and

    .. math::

        \frac{\partial f}{\partial p} = \beta\Big(-\gamma(1-p_t)^{\gamma-1}(2t - 1)\,b
            + (1-p_t)^\gamma\,\frac{c - t}{c(1-c)}[\epsilon\le p\le 1-\epsilon]\Big),

    times :math:`p(1-p)` for logits; :math:`v` is the mean of :math:`f` over the last axis.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> loss = ln.losses.BinaryFocalCrossentropy(gamma=0.0)
    >>> round(loss(np.array([[1.0]]), np.array([[0.5]])), 6)  # log 2
    0.693147
    """

    _default_name = "binary_focal_crossentropy"

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(from_logits, label_smoothing, reduction=reduction, name=name, dtype=dtype)
        self.apply_class_balancing = _check_bool(
            apply_class_balancing, "apply_class_balancing", type(self).__name__
        )
        self._focal_args(alpha, gamma)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "apply_class_balancing": self.apply_class_balancing,
            "alpha": self.alpha,
            "gamma": self.gamma,
        }

    def elementwise(self, x, t):
        if self.label_smoothing:
            t = t * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            p = 0.5 * (1 + np.tanh(0.5 * x))
        else:
            if x.size and (x.min() < 0 or x.max() > 1):
                raise ValueError(
                    f"{self.owner}: expected probabilities in [0, 1] (e.g. a sigmoid output), "
                    f"received values from {x.min()} to {x.max()}; for logits pass "
                    f"from_logits=True."
                )
            p = x
        c = np.clip(p, EPSILON, 1 - EPSILON)
        b = -(t * np.log(c) + (1 - t) * np.log1p(-c))
        db = np.where((p >= EPSILON) & (p <= 1 - EPSILON), (c - t) / (c * (1 - c)), 0)
        one_minus = 1 - (t * p + (1 - t) * (1 - p))
        g = self.gamma
        mod = one_minus**g
        dmod = g * one_minus ** (g - 1) * -(2 * t - 1) if g else np.zeros_like(p)
        beta = t * self.alpha + (1 - t) * (1 - self.alpha) if self.apply_class_balancing else 1
        grad = beta * (dmod * b + mod * db)
        if self.from_logits:
            grad = grad * p * (1 - p)
        return beta * mod * b, grad


class _OverlapLoss(_KerasLoss):
    """Dice and Tversky: one value over the given axes (the whole batch by default)."""

    def __init__(
        self,
        reduction: str | None = "sum_over_batch_size",
        *,
        axis: int | tuple[int, ...] | None = None,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(reduction, name=name, dtype=dtype)
        if axis is not None:
            axes: Any = (axis,) if is_int(axis) else axis
            if not isinstance(axes, tuple | list) or not axes or not all(map(is_int, axes)):
                raise ValueError(
                    f"{type(self).__name__}: invalid value for `axis`: expected None, an int or "
                    f"a tuple of ints, received {axis!r}."
                )
            axis = tuple(int(a) for a in axes)
        self.axis = axis

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}

    check_target = _ElementwiseLoss.check_target

    def reduced_axes(self, x):
        if self.axis is None:
            return tuple(range(x.ndim))
        axes = sorted({a % x.ndim for a in self.axis if -x.ndim <= a < x.ndim})
        if len(axes) != len(self.axis) or 0 in axes:
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: expected distinct non-batch axes of "
                f"predictions of shape {shape_str(x.shape)}, received {self.axis}."
            )
        return tuple(axes)

    def overlap(self, x, t, axes):
        """The values and ``grad`` of the loss, summing over ``axes``."""
        raise NotImplementedError

    def compute_values(self, x, t):
        axes = self.reduced_axes(x)
        values, grad = self.overlap(x, t, axes)
        return values.reshape(tuple(d for i, d in enumerate(x.shape) if i not in axes)), grad


class Dice(_OverlapLoss):
    r"""Keras's ``"dice"``: one minus the Dice coefficient of target and prediction.

    Parameters
    ----------
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    axis : int or tuple of int, optional
        The axes summed over; by default every axis, batch included, so the
        loss is one number for the batch (Keras's default, which takes no
        ``sample_weight``). ``axis=(1, 2)`` gives one value per image.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        an invalid ``axis``; a target whose shape is not the prediction's;
        ``sample_weight`` with ``axis=None``; and the errors of :class:`~layernet.Loss`.

    Notes
    -----
    Over the summed axes, with :math:`I = \sum t x` and :math:`S = \sum t + \sum x + \epsilon`:

    .. math::

        v = 1 - \frac{2I}{S},
        \qquad
        \frac{\partial v}{\partial x} = -\frac{2(tS - I)}{S^2}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> round(ln.losses.Dice()(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])), 6)  # 1 - 2/3
    0.333333
    """

    _default_name = "dice"

    def overlap(self, x, t, axes):
        inter = np.sum(t * x, axis=axes, keepdims=True)
        s = np.sum(t, axis=axes, keepdims=True) + np.sum(x, axis=axes, keepdims=True) + EPSILON
        return 1 - 2 * inter / s, -2 * (t * s - inter) / (s * s)


class Tversky(_OverlapLoss):
    r"""Keras's ``"tversky"``: one minus the Tversky index (Dice with weighted errors).

    Parameters
    ----------
    alpha : float, default 0.5
        Weight of the false positives (non-negative).
    beta : float, default 0.5
        Weight of the false negatives (non-negative).
    reduction : str or None, default "sum_over_batch_size"
        See :class:`~layernet.Loss`.
    axis : int or tuple of int, optional
        As in :class:`Dice`.
    name, dtype
        See :class:`~layernet.Loss`.

    Raises
    ------
    ValueError
        a negative ``alpha`` or ``beta``, and what :class:`Dice` refuses.

    Notes
    -----
    With :math:`I = \sum xt`, :math:`F_P = \sum(1-t)x`, :math:`F_N = \sum t(1-x)` and
    :math:`D = I + \alpha F_P + \beta F_N + \epsilon`:

    .. math::

        v = 1 - \frac ID,
        \qquad
        \frac{\partial v}{\partial x} = -\frac{tD - I\,(t + \alpha(1-t) - \beta t)}{D^2}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> round(ln.losses.Tversky()(np.array([[1.0, 0.0]]), np.array([[1.0, 1.0]])), 6)
    0.333333
    """

    _default_name = "tversky"

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: str | None = "sum_over_batch_size",
        *,
        axis: int | tuple[int, ...] | None = None,
        name: str | None = None,
        dtype: str = "float32",
    ) -> None:
        super().__init__(reduction, axis=axis, name=name, dtype=dtype)
        self.alpha = check_number(alpha, "alpha", type(self).__name__, low=0)
        self.beta = check_number(beta, "beta", type(self).__name__, low=0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}

    def overlap(self, x, t, axes):
        inter = np.sum(x * t, axis=axes, keepdims=True)
        fp = np.sum((1 - t) * x, axis=axes, keepdims=True)
        fn = np.sum(t * (1 - x), axis=axes, keepdims=True)
        d = inter + self.alpha * fp + self.beta * fn + EPSILON
        dd = t + self.alpha * (1 - t) - self.beta * t
        return 1 - inter / d, -(t * d - inter * dd) / (d * d)


# ---------------------------------------------------------------------------
# Lowercase functions: Keras's per-sample values, ``f(y_true, y_pred)``.


def _values_of(cls: type[_KerasLoss], y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
    x = np.asarray(y_pred)
    dtype = "float64" if x.dtype == np.float64 else "float32"
    return cls(**kwargs, dtype=dtype).values(y_true, y_pred)


def _loss_function(
    cls: type[_KerasLoss],
    name: str,
    args: str = "",
    y_true: str = "rng.uniform(0.1, 0.9, (2, 4, 3))",
) -> Any:
    """A lowercase function ``name(y_true, y_pred, **kwargs)`` giving ``cls``'s values."""

    def fn(y_true: Any, y_pred: Any, **kwargs: Any) -> np.ndarray:
        if _symbolic(y_true) or _symbolic(y_pred):
            dtype = "float64" if getattr(y_pred, "dtype", None) == "float64" else "float32"
            return record_loss_values(cls(**kwargs, dtype=dtype), y_true, y_pred)
        return _values_of(cls, y_true, y_pred, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    fn.loss_class = cls  # type: ignore[attr-defined]  # the class it is made from
    fn.__doc__ = f"""Keras's ``{name}``: per-sample values of :class:`{cls.__name__}`.

    Parameters
    ----------
    y_true : array_like
        The target.
    y_pred : ndarray of shape (batch, ...)
        The prediction.
    **kwargs
        The arguments of :class:`{cls.__name__}`{args} (its ``reduction`` aside).

    Returns
    -------
    ndarray
        One value per sample (and per position of the axes the loss does not
        reduce), unweighted: the loss object reduces them (by default their mean).

    Raises
    ------
    ValueError
        What :class:`{cls.__name__}` refuses.

    Notes
    -----
    Given to ``compile(loss=...)`` or :func:`get`, the function is replaced by
    :class:`{cls.__name__}` (whose derivative is known); a function of your own
    cannot be differentiated, see :func:`get`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y_true, y_pred = {y_true}, rng.uniform(0.1, 0.9, (2, 4, 3))
    >>> ln.losses.{name}(y_true, y_pred).shape == ln.losses.{cls.__name__}(
    ...     reduction="none", dtype="float64")(y_true, y_pred).shape
    True
    """
    fn._layernet_loss = cls  # type: ignore[attr-defined]
    return fn


mean_squared_error = _loss_function(MeanSquaredError, "mean_squared_error")
mean_absolute_error = _loss_function(MeanAbsoluteError, "mean_absolute_error")
mean_absolute_percentage_error = _loss_function(
    MeanAbsolutePercentageError, "mean_absolute_percentage_error"
)
mean_squared_logarithmic_error = _loss_function(
    MeanSquaredLogarithmicError, "mean_squared_logarithmic_error"
)
huber = _loss_function(Huber, "huber", " (``delta``)")
log_cosh = _loss_function(LogCosh, "log_cosh")
poisson = _loss_function(Poisson, "poisson")
kl_divergence = _loss_function(KLDivergence, "kl_divergence")
hinge = _loss_function(Hinge, "hinge")
squared_hinge = _loss_function(SquaredHinge, "squared_hinge")
categorical_hinge = _loss_function(CategoricalHinge, "categorical_hinge")
cosine_similarity = _loss_function(CosineSimilarity, "cosine_similarity", " (``axis``)")
binary_crossentropy = _loss_function(
    BinaryCrossentropy, "binary_crossentropy", " (``from_logits``, ``label_smoothing``)"
)
binary_focal_crossentropy = _loss_function(
    BinaryFocalCrossentropy, "binary_focal_crossentropy", " (``alpha``, ``gamma``, ...)"
)
categorical_crossentropy = _loss_function(
    CategoricalCrossentropy, "categorical_crossentropy", " (``from_logits``, ``label_smoothing``)"
)
categorical_focal_crossentropy = _loss_function(
    CategoricalFocalCrossentropy, "categorical_focal_crossentropy", " (``alpha``, ``gamma``, ...)"
)
sparse_categorical_crossentropy = _loss_function(
    SparseCategoricalCrossentropy,
    "sparse_categorical_crossentropy",
    " (``from_logits``)",
    "rng.integers(0, 3, (2, 4))",
)
dice = _loss_function(Dice, "dice", " (``axis``)")
tversky = _loss_function(Tversky, "tversky", " (``alpha``, ``beta``, ``axis``)")


class LossFunctionWrapper(_KerasLoss):
    r"""A loss from a function ``fn(y_true, y_pred)`` written with :mod:`layernet.ops`.

    What Keras's ``compile(loss=fn)`` does with a function of your own: the
    function's values are reduced as Keras's losses reduce theirs, and the
    derivative is traced. During :meth:`~layernet.Loss.forward`, ``y_pred`` is a
    traced tensor: every :mod:`layernet.ops` op (and ``+ - * / **`` on it) records
    its local derivative, and the backward pass runs the chain rule over the
    recorded ops (as for a layer's ``call()``), so no derivative is written by hand.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred, **kwargs)`` returning the per-sample values (any shape
        whose leading axes are the batch's) or one scalar, computed from ``y_pred``
        with :mod:`layernet.ops`.
    reduction : {"sum_over_batch_size", "sum", "mean", "none", None}, default "sum_over_batch_size"
        Keras's reduction of the values (see ``layernet.losses.REDUCTIONS``).
    name : str, optional
        Defaults to the function's name.
    dtype : {"float32", "float64"}, default "float32"
        The dtype of the prediction, the target and the gradient.
    **kwargs
        Passed on to ``fn`` at every call.

    Raises
    ------
    ValueError
        ``fn`` not callable; in :meth:`~layernet.Loss.forward`, a function whose value
        is not computed from ``y_pred`` with :mod:`layernet.ops` (``... returned a
        value that does not depend on `y_pred` through layernet.ops ...``); sample
        weights for a function that returns one scalar; and the errors of
        :class:`~layernet.Loss`.

    Notes
    -----
    Before the call, the target is cast to the loss's dtype and given the
    prediction's rank as Keras does (a trailing axis of length 1 added or
    dropped). With values :math:`v_p = f(t, x)_p` (:math:`P` of them) and weights
    :math:`w_p` (default 1), ``"sum_over_batch_size"`` gives

    .. math::

        z = \frac1P \sum_p w_p v_p,
        \qquad
        \frac{\partial z}{\partial x} = \sum_p \frac{w_p}{P}\,
            \frac{\partial v_p}{\partial x},

    where :math:`\partial v/\partial x` is the product of the recorded ops' local
    Jacobians (reverse mode: the seed :math:`w/P` is carried back through them).
    ``"sum"`` drops the :math:`1/P`. A function that already returns a mean
    (one scalar) gives :math:`z = v` and :math:`\partial z/\partial x = \partial
    v/\partial x`.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> from layernet import ops
    >>> def contrastive(y_true, y_pred, margin=1.0):
    ...     return ops.mean((1 - y_true) * ops.square(y_pred)
    ...                     + y_true * ops.square(ops.maximum(margin - y_pred, 0)))
    >>> loss = ln.losses.LossFunctionWrapper(contrastive, dtype="float64")
    >>> loss.forward(np.array([[0.5], [0.25]]), np.array([0.0, 1.0]))
    0.40625
    >>> loss.backward_input()
    array([[ 0.5 ],
           [-0.75]])
    >>> model = ln.Sequential([ln.Input((3,)), ln.Dense(1)])
    >>> model.compile("sgd", loss=contrastive)  # a function: wrapped like this
    >>> type(model.loss).__name__
    'LossFunctionWrapper'
    """

    def __init__(
        self,
        fn: Any,
        reduction: str | None = "sum_over_batch_size",
        name: str | None = None,
        dtype: str = "float32",
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise ValueError(
                f"LossFunctionWrapper: invalid value for `fn`: expected a function "
                f"fn(y_true, y_pred), received {fn!r}."
            )
        if name is None:
            name = getattr(fn, "__name__", None) or None
        super().__init__(reduction, name=name, dtype=dtype)
        self.fn = fn
        self.fn_kwargs = dict(kwargs)

    def get_config(self) -> dict[str, Any]:
        fn = registry.get_registered_name(self.fn)
        return {**super().get_config(), "fn": fn, **self.fn_kwargs}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        config = dict(config)
        fn = config.pop("fn", None)
        if isinstance(fn, str):
            found = registry.resolve(fn)
            if found is None:
                raise ValueError(
                    f"LossFunctionWrapper: cannot rebuild the loss function {fn!r}: register "
                    f"it with layernet.register_serializable or pass it in custom_objects."
                )
            fn = found
        return cls(fn, **config)

    def check_target(self, x, t):
        t = as_array(t, self.owner, "target")
        # Keras's rule (squeeze_or_expand_to_same_rank): a trailing axis of length 1.
        if t.ndim == x.ndim - 1 and x.shape[-1] == 1:
            t = t[..., None]
        elif t.ndim == x.ndim + 1 and t.shape[-1] == 1:
            t = t[..., 0]
        return cast_checked(t, self.dtype, self.owner, "target")

    def _trace(self, x: np.ndarray, t: np.ndarray) -> tuple[Any, Tensor, Tape]:
        tape = Tape(training=True)
        xt = Tensor(x, tape)
        with recording(tape):
            out = self.fn(t, xt, **self.fn_kwargs)
        if not (isinstance(out, Tensor) and out.tape is tape):
            name = getattr(self.fn, "__name__", repr(self.fn))
            raise ValueError(
                f"{self.owner}: the loss function {name!r} returned a value that does not "
                f"depend on `y_pred` through layernet.ops, so its derivative cannot be "
                f"traced: compute it with layernet.ops (ops.mean, ops.square, ops.maximum, "
                f"...) rather than NumPy, or write a Loss subclass."
            )
        return out, xt, tape

    def compute_values(self, x, t):
        out, _, _ = self._trace(x, t)
        return np.asarray(out.value, dtype=self.dtype), None

    def compute_loss(self, x, t, sample_weight=None):
        out, xt, tape = self._trace(x, t)
        values = np.asarray(out.value)
        if self.reduction in (None, "none"):
            w = 1.0 if sample_weight is None else _value_weights(sample_weight, values.shape, "")
            return (values * w).astype(self.dtype), None
        if sample_weight is None:
            seed = np.ones(values.shape, np.float64)
        elif values.ndim == 0:
            raise ValueError(
                f"{self.owner}: `sample_weight` needs one loss value per sample, but this "
                f"loss function returns one value for the whole batch."
            )
        else:
            seed = np.array(_value_weights(sample_weight, values.shape, self.owner))
        if self.reduction != "sum" and values.ndim:
            seed = seed / values.size
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.sum(values * seed, dtype=np.float64))
        grads = tape.backward([(out, seed.astype(self.dtype))])
        grad = grads.get(id(xt))
        if grad is None:
            grad = np.zeros_like(x)
        return total, LossGradient(np.asarray(grad, dtype=self.dtype))


_NAMES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "huber": Huber,
    "huber_loss": Huber,
    "log_cosh": LogCosh,
    "logcosh": LogCosh,
    "poisson": Poisson,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "cosine_similarity": CosineSimilarity,
    "categorical_crossentropy": CategoricalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "dice": Dice,
    "tversky": Tversky,
    "half_squared_error": MSELoss,
    "mse_loss": MSELoss,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
}


def get(identifier: Any, dtype: str = "float32") -> Loss:
    """A loss from a Keras or layernet name, a class, a lowercase function, or an instance.

    Names: Keras's (``"mse"``, ``"mae"``, ``"mape"``, ``"msle"``, ``"huber"``,
    ``"log_cosh"``, ``"poisson"``, ``"kl_divergence"`` (``"kld"``), ``"hinge"``,
    ``"squared_hinge"``, ``"categorical_hinge"``, ``"cosine_similarity"``, the
    cross-entropies and their focal forms, ``"dice"``, ``"tversky"``; their long
    forms, and class names), and the notes' ``"half_squared_error"``
    (``"mse_loss"``, :class:`MSELoss`) and ``"softmax_cross_entropy"``
    (``"cross_entropy"``, logits in).

    Parameters
    ----------
    identifier : str, Loss, Loss subclass or function
        A name (any case) or class name; a :class:`~layernet.Loss` instance,
        returned as it is; a Loss class, instantiated with its defaults; or one
        of this module's lowercase functions such as :func:`huber` (also through
        ``functools.partial`` with its keyword arguments), replaced by its class; or
        a function ``f(y_true, y_pred)`` of one's own written with :mod:`layernet.ops`
        (Keras's custom loss), whose derivative comes from the recorded ops.
    dtype : {"float32", "float64"}, default "float32"
        The dtype of a loss made here.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        ``compile: invalid value for `loss`: expected one of [...] or a Loss
        instance, received ...``. Any other function ``fn(y_true, y_pred)`` is
        wrapped in a :class:`LossFunctionWrapper`, as Keras does: its derivative
        is traced through :mod:`layernet.ops` when it runs.

    Examples
    --------
    >>> import functools
    >>> import layernet as ln
    >>> type(ln.losses.get("mse")).__name__
    'MeanSquaredError'
    >>> type(ln.losses.get("half_squared_error")).__name__
    'MSELoss'
    >>> ln.losses.get(functools.partial(ln.losses.huber, delta=2.0)).delta
    2.0
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier(dtype=dtype)
    by_class = {cls.__name__: cls for cls in set(_NAMES.values())}
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or by_class.get(identifier)
        if cls is not None:
            return cls(dtype=dtype)
    elif callable(identifier):
        fn, kwargs = identifier, {}
        if isinstance(identifier, functools.partial) and not identifier.args:
            fn, kwargs = identifier.func, dict(identifier.keywords)
        cls = getattr(fn, "_layernet_loss", None)
        if cls is not None:
            return cls(**kwargs, dtype=dtype)
        # A function of your own, as in Keras: its derivative is traced through
        # layernet.ops when the loss runs (LossFunctionWrapper).
        return LossFunctionWrapper(identifier, dtype=dtype)
    raise ValueError(
        f"compile: invalid value for `loss`: expected one of {sorted(_NAMES)} or a Loss "
        f"instance, received {identifier!r}."
    )


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)


class TracedLossSaved(NamedTuple):
    r"""What :func:`~layernet.losses.traced_loss` keeps: the tape, the prediction's and the
    values' Tensors, and :math:`\partial z/\partial v` for the values :math:`v`.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> def mae(y_true, y_pred):
    ...     return ln.ops.mean(ln.ops.abs(y_true - y_pred), axis=-1)
    >>> _, saved = ln.losses.traced_loss(mae, np.array([[2.0, -2.0]]), np.zeros((1, 2)), None, "")
    >>> saved.dvalues, saved.backward(2.0)
    (array([1.]), array([[ 1., -1.]]))
    """

    tape: Any
    x: Any
    values: Any
    dvalues: np.ndarray

    def backward(self, dz: Any) -> np.ndarray:
        r""":math:`dz\,\partial z/\partial x`, walking the tape back from the values."""
        seed = np.asarray(dz, dtype=self.dvalues.dtype) * self.dvalues
        grads = self.tape.backward(
            [(self.values, seed)], lambda layer, d, saved: layer.compute_backward_input(d, saved)
        )
        g = grads.get(id(self.x))
        return np.zeros(self.x.shape, self.x.dtype) if g is None else g.astype(self.x.dtype)


def traced_loss(
    fn: Any, x: np.ndarray, t: np.ndarray, sample_weight: Any, owner: str
) -> tuple[float, TracedLossSaved]:
    r"""A loss ``fn(y_true, y_pred)`` written with :mod:`layernet.ops`, traced on ``x``.

    ``fn`` runs on a recorded :class:`~layernet.ops.Tensor` standing for ``x``; its values
    :math:`v` (per sample, or any shape) are reduced as Keras's default
    ``"sum_over_batch_size"``: :math:`z = \frac{1}{|v|}\sum_i w_i v_i`, with the
    per-sample weights :math:`w` broadcast over the trailing dims (all ones by default).
    Backward seeds the values with :math:`\partial z/\partial v_i = w_i/|v|` and walks the
    tape to :math:`\partial z/\partial x`.

    Parameters
    ----------
    fn : callable
        ``fn(y_true, y_pred)``, per-sample values (or any shape, or a scalar).
    x : ndarray
        The prediction.
    t : ndarray
        The target.
    sample_weight : ndarray of shape (batch,) or None
        Per-sample weights.
    owner : str
        How error messages name the loss.

    Returns
    -------
    (float, TracedLossSaved)
        The loss :math:`z` and what :meth:`TracedLossSaved.backward` needs.

    Raises
    ------
    ValueError
        When the value is not computed from ``y_pred`` with :mod:`layernet.ops` (a NumPy
        function, say): its derivative is unknown, so it cannot be a loss.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> def mse(y_true, y_pred):
    ...     return ln.ops.mean(ln.ops.square(y_true - y_pred), axis=-1)
    >>> z, saved = ln.losses.traced_loss(mse, np.array([[1.0, 3.0]]), np.zeros((1, 2)), None, "mse")
    >>> z, saved.backward(1.0)
    (5.0, array([[1., 3.]]))
    """
    from .ops.tensor import Tape, Tensor, recording

    tape = Tape(training=False)
    xt = Tensor(x, tape)
    with recording(tape):
        out = fn(t, xt)
    if not (isinstance(out, Tensor) and out.tape is tape):
        raise ValueError(
            f"{owner}: its value is not computed from `y_pred` with layernet.ops "
            f"(received {type(out).__name__}); layernet takes its derivative "
            f"from the recorded ops, so a function of NumPy calls cannot be a loss: write "
            f"it with layernet.ops (ops.mean, ops.square, ...) or as a Loss subclass."
        )
    values = np.asarray(out.value, dtype=x.dtype)
    if sample_weight is None:
        w = np.ones(values.shape, dtype=x.dtype)
    else:
        sw = np.asarray(sample_weight, dtype=x.dtype).reshape(-1)
        if values.ndim == 0:
            w = np.asarray(sw.mean(), dtype=x.dtype)
        else:
            w = np.broadcast_to(sw.reshape((-1,) + (1,) * (values.ndim - 1)), values.shape)
    size = max(values.size, 1)
    z = float((values * w).sum() / size)
    return z, TracedLossSaved(tape, xt, out, (w / size).astype(x.dtype))


def _traced(x: Any) -> bool:
    from .ops.tensor import Tensor

    return isinstance(x, Tensor)


def _traced_loss_call(loss: Loss, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
    """``loss(y_true, y_pred)`` on the Tensors of a traced ``call()`` (a loss given to
    ``add_loss``, say): recorded on the tape, so that its value has a derivative with
    respect to ``y_pred`` (and to a float ``y_true`` for the losses that define one)."""
    from .ops.tensor import Tensor, apply

    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight.value if _traced(sample_weight) else sample_weight)
    t_value = y_true.value if isinstance(y_true, Tensor) else y_true
    x = loss.check_input(y_pred.value if isinstance(y_pred, Tensor) else y_pred)
    z, saved = loss._compute(x, loss.check_target(x, t_value), sample_weight)
    if saved is None:  # reduction="none": per-sample values, no derivative kept
        return z
    tgrad = _target_grad(loss, x, t_value, None, sample_weight)
    return apply(_TRACED_LOSS_CALL, y_pred, y_true, result=(z, saved, loss, tgrad))


def _loss_call_primitive() -> Any:
    from .ops.primitives import Primitive

    class _LossCall(Primitive):
        """A loss's call on traced tensors: its value, then its own backward rules."""

        def forward(self, x: Any, t: Any, result: Any) -> tuple[Any, Any]:
            z, saved, loss, tgrad = result
            return np.asarray(z, dtype=loss.dtype), (saved, loss, tgrad, np.shape(t))

        def backward(self, dy: Any, saved: Any) -> tuple[Any, ...]:
            kept, loss, tgrad, t_shape = saved
            gx = loss.compute_backward_input(np.asarray(dy, dtype=loss.dtype), kept)
            gt = None if tgrad is None else (np.asarray(dy) * tgrad).reshape(t_shape)
            return gx, gt

    return _LossCall("traced_loss_call")


_TRACED_LOSS_CALL = _loss_call_primitive()


def _user_call(cls: type) -> bool:
    """Whether the loss is written as Keras's ``call(y_true, y_pred)`` (and no hooks)."""
    return callable(getattr(cls, "call", None)) and "compute_loss" not in {
        k for klass in cls.__mro__ if klass is not Loss for k in klass.__dict__
    }


def _user_forward(cls: type) -> bool:
    """Whether ``forward`` comes from a class outside layernet (a user's override)."""
    for klass in cls.__mro__:
        if "forward" in klass.__dict__:
            return not klass.__module__.startswith("layernet.")
    return False


def _symbolic(x: Any) -> bool:
    return getattr(x, "_layernet_symbolic", False) is True and not isinstance(x, type)


class LossCallSaved(NamedTuple):
    """What one recorded call of a loss keeps: the loss's own ``saved`` and the input dtypes."""

    saved: Any  #: what the loss's compute_loss kept
    shapes: list  #: shapes of the call's inputs (their gradients' shapes)
    dtypes: list  #: dtypes of the call's inputs
    target_grad: Any = None  #: dz/dy_true for a loss that differentiates its target


def _loss_call_layer() -> type:
    """The layer class that records ``loss(y_true, y_pred[, sample_weight[, mask]])`` in a graph.

    Made on first use: the layers package imports this module's dependencies.
    """
    global _LOSS_CALL
    if _LOSS_CALL is not None:
        return _LOSS_CALL
    from .layers.base import Layer
    from .layers.masking_utils import masked_compute

    class _LossCall(Layer):
        r"""A loss called on symbolic tensors: one call in a traced graph.

        Its inputs are ``[y_true, y_pred]``, then the sample weights and the
        prediction's mask when given (``has_weight``, ``has_mask``); its output is
        the scalar loss :math:`z`. The only derivative is the loss's own
        :math:`\partial z/\partial \hat y` (targets, weights and masks get zero).
        """

        _default_name = "loss_call"
        is_op = True

        def __init__(self, loss: Loss, has_weight: bool, has_mask: bool, **kw: Any) -> None:
            super().__init__(dtype=loss.dtype.name, **kw)
            self.loss = loss
            self.has_weight = has_weight
            self.has_mask = has_mask

        def symbolic_output(self, input_shape: Any, options: dict[str, Any]) -> tuple[Any, Any]:
            return (), self.loss.dtype.name

        def call_forward(self, x: Any, training: bool = False, **options: Any) -> tuple[Any, Any]:
            loss = self.loss
            y_true, y_pred = x[0], x[1]
            rest = list(x[2:])
            weight = rest.pop(0) if self.has_weight else None
            mask = rest.pop(0) if self.has_mask else None
            z, saved = masked_compute(loss, y_pred, y_true, mask, weight)
            target_grad = _target_grad(loss, y_pred, y_true, mask, weight)
            if saved is None:
                raise ValueError(
                    f"{loss.owner}: called on symbolic tensors it must return a scalar loss, "
                    f"but reduction={getattr(loss, 'reduction', None)!r} keeps one value per "
                    f"sample."
                )
            value = np.asarray(z, dtype=loss.dtype)
            shapes = [np.shape(a) for a in x]
            dtypes = [np.asarray(a).dtype for a in x]
            return value, LossCallSaved(saved, shapes, dtypes, target_grad)

        def call_backward(
            self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
        ) -> tuple[Any, dict[str, np.ndarray]]:
            if not need_input:
                return None, {}
            dz = np.asarray(dy, dtype=self.loss.dtype)
            g = self.loss.compute_backward_input(dz, saved.saved)
            out = [
                np.zeros(s, d if d.kind == "f" else np.float64)
                for s, d in zip(saved.shapes, saved.dtypes, strict=True)
            ]
            out[1] = np.asarray(g).reshape(saved.shapes[1]).astype(out[1].dtype, copy=False)
            if saved.target_grad is not None:
                out[0] = (dz * saved.target_grad).reshape(saved.shapes[0]).astype(out[0].dtype)
            return out, {}

        def get_config(self) -> dict[str, Any]:
            return {"loss": self.loss.get_config(), **super().get_config()}

    class _LossValuesCall(Layer):
        r"""A lowercase loss function (per-sample values) called on symbolic tensors.

        Inputs ``[y_true, y_pred]``, output the values :math:`v_p`; the backward rule
        is :math:`\partial z/\partial \hat y_{pk} = g_p\,\partial v_p/\partial
        \hat y_{pk}` for the upstream gradient :math:`g`.
        """

        _default_name = "loss_values"
        is_op = True

        def __init__(self, loss: _KerasLoss, **kw: Any) -> None:
            super().__init__(dtype=loss.dtype.name, **kw)
            self.loss = loss

        def symbolic_output(self, input_shape: Any, options: dict[str, Any]) -> tuple[Any, Any]:
            shape = input_shape[1]
            dummy = np.zeros([1 if d is None else d for d in shape])
            axes = self.loss.reduced_axes(dummy)
            return tuple(d for i, d in enumerate(shape) if i not in axes), self.loss.dtype.name

        def call_forward(self, x: Any, training: bool = False, **options: Any) -> tuple[Any, Any]:
            loss = self.loss
            pred = loss.check_input(x[1])
            target = loss.check_target(pred, x[0])
            values, grad = loss.compute_values(pred, target)
            tgrad = (
                loss.target_gradient(pred, target) if np.asarray(x[0]).dtype.kind == "f" else None
            )
            shapes = [np.shape(a) for a in x]
            dtypes = [np.asarray(a).dtype for a in x]
            axes = loss.reduced_axes(pred)
            return values.astype(loss.dtype), LossCallSaved((grad, axes), shapes, dtypes, tgrad)

        def call_backward(
            self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
        ) -> tuple[Any, dict[str, np.ndarray]]:
            if not need_input:
                return None, {}
            grad, axes = saved.saved
            g = np.expand_dims(np.asarray(dy, dtype=self.loss.dtype), axes)
            out = [
                np.zeros(s, d if d.kind == "f" else np.float64)
                for s, d in zip(saved.shapes, saved.dtypes, strict=True)
            ]
            out[1] = (g * grad).reshape(saved.shapes[1]).astype(out[1].dtype, copy=False)
            if saved.target_grad is not None:
                out[0] = (g * saved.target_grad).reshape(saved.shapes[0]).astype(out[0].dtype)
            return out, {}

    _LossCall.values_layer = _LossValuesCall  # type: ignore[attr-defined]
    _LOSS_CALL = _LossCall
    return _LossCall


_LOSS_CALL: type | None = None


def _target_grad(loss: Loss, y_pred: Any, y_true: Any, mask: Any, weight: Any) -> Any:
    r""":math:`\partial z/\partial y_{true}` for a loss with a target derivative, else None."""
    if not isinstance(loss, _KerasLoss) or np.asarray(y_true).dtype.kind != "f":
        return None
    x = loss.check_input(y_pred)
    t = loss.check_target(x, y_true)
    g = loss.target_gradient(x, t)
    if g is None:
        return None
    values_shape = tuple(s for i, s in enumerate(x.shape) if i not in loss.reduced_axes(x))
    if mask is not None:
        from .layers.masking_utils import mask_to_sample_weight

        weight = mask_to_sample_weight(mask, weight, reduction=loss.reduction or "none")
    return (g * loss.target_scale(x, values_shape, weight)).astype(loss.dtype)


def record_loss_values(loss: _KerasLoss, y_true: Any, y_pred: Any) -> Any:
    """Record a lowercase loss function's per-sample values on symbolic tensors."""
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        if not _symbolic(a):
            raise TypeError(
                f"{loss.owner}: called on symbolic tensors, `{name}` must be symbolic too, "
                f"received {type(a).__name__}."
            )
    layer = _loss_call_layer().values_layer(loss)  # type: ignore[attr-defined]
    return layer([y_true, y_pred])


def record_loss_call(
    loss: Loss, y_true: Any, y_pred: Any, sample_weight: Any = None, mask: Any = None
) -> Any:
    """Record ``loss(y_true, y_pred, sample_weight)`` on symbolic tensors as a graph call.

    Returns the symbolic scalar loss. Targets, weights and a mask must be symbolic
    tensors too (inputs of the traced function).

    Raises
    ------
    TypeError
        A target, weight or mask that is not symbolic while the prediction is.
    """
    args = [y_true, y_pred]
    if sample_weight is not None:
        args.append(sample_weight)
    if mask is not None:
        args.append(mask)
    for name, a in zip(["y_true", "y_pred", "sample_weight"], args, strict=False):
        if not _symbolic(a):
            raise TypeError(
                f"{loss.owner}: called on symbolic tensors, `{name}` must be symbolic too, "
                f"received {type(a).__name__}."
            )
    layer = _loss_call_layer()(loss, sample_weight is not None, mask is not None)
    return layer(args)
