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
from ._validation import as_array, resolve_dtype, shape_str
from .layers.base import _REGISTRY, MAX_JACOBIAN_ENTRIES


class Loss:
    r"""Base class of losses: ``forward(x, t) -> z`` and ``backward_input(dz) -> ∂z/∂x``.

    A loss is not a layer: it takes a target as well as a prediction, returns a
    scalar and has no parameters (:math:`\partial z/\partial w^L = 0`). A subclass
    implements three hooks:

    * ``check_target(x, t) -> t``: validate and convert the target for the
      prediction ``x`` (raise ``ValueError`` naming :attr:`owner` otherwise);
    * ``compute_loss(x, t) -> (z, saved)``: the scalar ``z`` and what the backward
      rule needs, kept in :attr:`saved` (a small ``NamedTuple``);
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

    Examples
    --------
    A loss of your own (the mean absolute error, halved):

    >>> import numpy as np
    >>> import layernet as ln
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

    def compute_loss(self, x: np.ndarray, t: np.ndarray) -> tuple[float, Any]:
        """Return ``(z, saved)`` for a validated prediction and target."""
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

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
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
        x = self.check_input(x)
        z, saved = self.compute_loss(x, self.check_target(x, t))
        self.saved = saved
        return z

    __call__ = forward

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

    def jacobian_input(
        self, x: np.ndarray, t: np.ndarray, *, max_entries: int = MAX_JACOBIAN_ENTRIES
    ) -> np.ndarray:
        r"""The row vector :math:`\partial z/\partial\mathrm{vec}(x)^T`, shape ``(1, x.size)``.

        :attr:`saved` is left untouched.
        """
        x = self.check_input(x)
        t = self.check_target(x, t)
        if x.size > max_entries:
            raise ValueError(
                f"{self.owner}: jacobian_input would have 1 x {x.size} = {x.size:,} entries, "
                f"above max_entries={max_entries:,}; use a smaller input or raise max_entries."
            )
        _, saved = self.compute_loss(x, t)
        return self.compute_backward_input(np.ones((), dtype=self.dtype), saved).reshape(1, -1)


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
    fresh_gradient = True

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
