r"""Losses: the last layer of the chain, mapping a prediction and a target to a scalar :math:`z`.

A loss has no parameters (:math:`\partial z/\partial w^L = 0` in the notes), so
its only derivative is :math:`\partial z/\partial X^L`, returned by
:meth:`Loss.backward_input`. Every loss averages over the batch.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import registry
from ._validation import (
    as_array,
    cast_checked,
    check_finite,
    check_number,
    check_positive_int,
    resolve_dtype,
    shape_str,
    snake_case,
)
from .layers.base import _REGISTRY, MAX_JACOBIAN_ENTRIES
from .metrics import check_sample_weight


class Loss:
    r"""Base class of losses: ``forward(x, t) -> z`` and ``backward_input(dz) -> ∂z/∂x``.

    A loss is not a layer: it takes a target as well as a prediction, returns a
    scalar and has no parameters (:math:`\partial z/\partial w^L = 0`). A subclass
    implements three hooks:

    * ``check_target(x, t) -> t``: validate and convert the target for the
      prediction ``x`` (raise ``ValueError`` naming :attr:`owner` otherwise);
    * ``compute_loss(x, t) -> (z, saved)``: the scalar ``z`` and what the backward
      rule needs, kept in :attr:`saved` (a small ``NamedTuple``); a loss that
      takes per-sample weights accepts ``compute_loss(x, t, sample_weight=w)``
      with ``w`` of shape ``(N,)`` (every built-in loss does);
    * ``compute_backward_input(dz, saved) -> dz * ∂z/∂x``.

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
        """Validate the target ``t`` for the prediction ``x``; return it converted."""
        raise NotImplementedError

    def compute_loss(
        self, x: np.ndarray, t: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, Any]:
        """Return ``(z, saved)`` for a validated prediction and target.

        ``sample_weight`` (per-sample weights, already checked) is passed only when
        the caller gives one; a loss that does not support weights may leave it out
        of its signature.
        """
        raise NotImplementedError

    def compute_backward_input(self, dz: np.ndarray, saved: Any) -> np.ndarray:
        """Return ``dz * ∂z/∂x`` from what :meth:`compute_loss` saved."""
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
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True)
        p = np.exp(shifted)
        s = p.sum(axis=1, keepdims=True)
        log_z = np.log(s)
        p /= s
        if t.ndim == 1:
            rows = np.arange(n)
            per_sample = log_z[:, 0] - shifted[rows, t]
            p[rows, t] -= 1
        else:
            per_sample = log_z[:, 0] - np.sum(t * shifted, axis=1)
            p -= t
        if sample_weight is None:
            return float(np.sum(per_sample) / n), SoftmaxCrossEntropySaved(p, n)
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
        if sample_weight is None:
            w = np.ones(values.shape)
        else:
            if values.ndim == 0:
                raise ValueError(
                    f"{self.owner}: `sample_weight` needs one loss value per sample, but this "
                    f"loss reduces the whole batch to one value (axis=None)."
                )
            w = _value_weights(sample_weight, values.shape, self.owner)
        if self.reduction in (None, "none"):
            return (values * w).astype(self.dtype), None
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging model: z = inf
            total = float(np.sum(values * w, dtype=np.float64))
            scale = w
            if self.reduction != "sum" and values.ndim:
                total /= values.size
                scale = w / values.size
            scale = np.asarray(scale, dtype=self.dtype)
            if values.ndim:
                scale = np.expand_dims(scale, self.reduced_axes(x))
            return total, LossGradient(grad * scale)

    def compute_backward_input(self, dz, saved):
        return saved.grad * dz

    def __call__(
        self, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> float | np.ndarray:
        x = self.check_input(y_pred)
        z, _ = self.compute_loss(x, self.check_target(x, y_true), sample_weight=sample_weight)
        return z


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


def _categorical(owner, x, t, from_logits):
    """Cross-entropy over the last axis: the values (one per position) and their derivatives.

    ``x`` and ``t`` have shape (N, ..., K).
    """
    k = x.shape[-1]
    xf, tf = x.reshape(-1, k), t.reshape(-1, k)
    if from_logits:
        shifted = xf - xf.max(axis=1, keepdims=True)
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


_NAMES: dict[str, type[Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "half_squared_error": MSELoss,
    "mse_loss": MSELoss,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "cross_entropy": SoftmaxCrossEntropy,
}


def get(identifier: str | Loss | None, dtype: str = "float32") -> Loss:
    """A loss from its Keras or layernet name (or class name), or the given instance.

    Names: ``"mse"``/``"mean_squared_error"``, ``"mae"``/``"mean_absolute_error"``,
    ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``,
    ``"binary_crossentropy"`` (Keras's definitions, probabilities in), the notes'
    ``"half_squared_error"`` (``"mse_loss"``, :class:`MSELoss`) and
    ``"softmax_cross_entropy"`` (``"cross_entropy"``, logits in).

    Parameters
    ----------
    identifier : str or Loss
        A name (any case) or class name, or a :class:`~layernet.Loss` instance,
        returned as it is.
    dtype : {"float32", "float64"}, default "float32"
        The dtype of a loss made from a name.

    Returns
    -------
    Loss

    Raises
    ------
    ValueError
        ``compile: invalid value for `loss`: expected one of [...] or a Loss
        instance, received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> type(ln.losses.get("mse")).__name__
    'MeanSquaredError'
    >>> type(ln.losses.get("half_squared_error")).__name__
    'MSELoss'
    """
    if isinstance(identifier, Loss):
        return identifier
    by_class = {cls.__name__: cls for cls in set(_NAMES.values())}
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier.lower()) or by_class.get(identifier)
        if cls is not None:
            return cls(dtype=dtype)
    raise ValueError(
        f"compile: invalid value for `loss`: expected one of {sorted(_NAMES)} or a Loss "
        f"instance, received {identifier!r}."
    )
