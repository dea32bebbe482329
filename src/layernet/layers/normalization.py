r"""Batch normalisation over every axis but the channels."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _ops, initializers
from .._validation import check_bool, check_number, is_int, shape_str
from .base import Layer


class BatchNormSaved(NamedTuple):
    """What :class:`BatchNorm` keeps for backward."""

    training: bool  #: whether batch statistics were used (else the running ones)
    xhat: np.ndarray  #: the normalised input, ``(entries, channels)``
    inv: np.ndarray  #: :math:`1/\sqrt{\sigma^2 + \epsilon}` per channel


class BatchNorm(Layer):
    r"""Batch normalisation (Ioffe & Szegedy, 2015) of each channel (the last axis).

    .. rubric:: Input and output shape

    Input ``(batch, ..., channels)`` with at least two dims; the output has the
    same shape. Statistics are taken per channel over every other axis (the
    batch and all positions).

    Parameters
    ----------
    axis : int, default -1
        The channel axis (Keras's argument); layernet is channels-last, so only
        the last axis (``-1`` or ``ndim - 1``) is accepted.
    momentum : float, default 0.99
        Weight of the old value in the running statistics,
        :math:`\mu_\text{run} \leftarrow m\,\mu_\text{run} + (1-m)\,\mu_B`
        (Keras' convention; PyTorch's ``momentum=0.1`` is ``0.9`` here). Any value
        in :math:`[0, 1]`; with 1 the running statistics never change.
    epsilon : float, default 1e-3
        Added to the variance before the square root.
    center : bool, default True
        Learn an offset ``beta``.
    scale : bool, default True
        Learn a factor ``gamma``.
    beta_initializer : str or Initializer, default "zeros"
        Initial value of ``beta`` (see :mod:`layernet.initializers`).
    gamma_initializer : str or Initializer, default "ones"
        Initial value of ``gamma``.
    moving_mean_initializer : str or Initializer, default "zeros"
        Initial running mean.
    moving_variance_initializer : str or Initializer, default "ones"
        Initial running variance.
    beta_regularizer : str, Regularizer or None, default None
        Penalty on :math:`\beta` (``"l1"``, ``"l2"``, ``"l1_l2"``, an object from
        :mod:`layernet.regularizers`); see :meth:`~Layer.regularization_penalty`.
    gamma_regularizer : str, Regularizer or None, default None
        Penalty on :math:`\gamma`, likewise.
    beta_constraint : str, Constraint or None, default None
        Projection of :math:`\beta` after every optimizer step (a name or an
        object from :mod:`layernet.constraints`; :meth:`~Layer.apply_constraints`).
    gamma_constraint : str, Constraint or None, default None
        Projection of :math:`\gamma`, likewise.
    activity_regularizer : str, Regularizer or None, default None
        Penalty on the output, divided by the batch size as in Keras
        (:meth:`~Layer.activity_regularization`).
    name : str, optional
        Layer name (``"batch_norm_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters, the statistics and the computation.
    seed : int, optional
        Seed for initialisers that draw random values (the defaults are constants).
    trainable : bool, default True
        A frozen BatchNorm (``trainable=False``, also set later) runs in
        inference mode even in a training pass: it normalises with the moving
        statistics and leaves them unchanged, as Keras does (the usual way to
        fine-tune a pretrained network).

    Attributes
    ----------
    params : dict
        ``"gamma"`` and ``"beta"``, each of shape ``(channels,)``.
    state : dict
        ``"moving_mean"`` and ``"moving_variance"`` (Keras's names), updated by every
        training forward pass and used at inference; saved in model files, never
        touched by optimisers. Files that call the variance ``"moving_var"`` (the
        earlier name) still load.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument:
        ``BatchNorm 'batch_norm_1': invalid value for `momentum`: expected a
        number in [0, 1), received 1.5.``; the same form for ``epsilon``
        (>= 0), ``center``, ``scale`` and ``trainable`` (bools), ``dtype``,
        ``name`` and ``seed``. On an input: fewer than 2 dims, or ``expected
        input with 3 channels (last axis, as built), got shape ...``. In
        backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Over the :math:`m` entries of a channel in the batch (all samples and positions),
    with :math:`\mu = \frac1m\sum x_j` and :math:`\sigma^2 = \frac1m\sum (x_j-\mu)^2`:

    .. math::

        \hat x_j = \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}},\qquad
        y_j = \gamma\,\hat x_j + \beta .

    **Derivatives** (training mode, where :math:`\mu` and :math:`\sigma^2` depend on
    every :math:`x_j` of the channel), with :math:`g_j = \gamma\,\partial z/\partial y_j`:

    .. math::

        \frac{\partial z}{\partial x_j} = \frac{1}{m\sqrt{\sigma^2+\epsilon}}
            \Big(m\,g_j - \sum_k g_k - \hat x_j \sum_k g_k \hat x_k\Big),

    .. math::

        \frac{\partial z}{\partial \gamma} = \sum_j \frac{\partial z}{\partial y_j}\hat x_j,
        \qquad
        \frac{\partial z}{\partial \beta} = \sum_j \frac{\partial z}{\partial y_j}.

    The input Jacobian of a channel is dense in training mode,
    :math:`\frac{\gamma}{\sqrt{\sigma^2+\epsilon}}\big(I - \frac1m\mathbf 1\mathbf 1^T
    - \frac1m\hat x\hat x^T\big)`, and diagonal at inference, where the running
    statistics are constants: :math:`y = \gamma (x - \mu_\text{run})/
    \sqrt{\sigma^2_\text{run}+\epsilon} + \beta`. :meth:`jacobian_input` and
    :meth:`jacobian_params` give the inference ones. A frozen layer
    (``trainable=False``) uses the inference map, and so these diagonal rules,
    in training passes too:
    :math:`\partial z/\partial x_j = \gamma\,(\partial z/\partial y_j)/
    \sqrt{\sigma^2_\text{run}+\epsilon}`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> bn = ln.BatchNorm(epsilon=0.0, dtype="float64")
    >>> x = np.array([[1.0], [3.0]])
    >>> bn.forward(x, training=True)[:, 0]
    array([-1.,  1.])
    >>> bn.state["moving_mean"]
    array([0.02])
    """

    _default_name = "batch_norm"
    fresh_output = True
    fresh_gradient = True

    #: State renamed since earlier versions (old name -> new), for old model files.
    renamed_weights: ClassVar[dict[str, str]] = {"moving_var": "moving_variance"}

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        *,
        name: str | None = None,
        activity_regularizer: Any = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.set_weight_penalties(
            {"beta": beta_regularizer, "gamma": gamma_regularizer},
            {"beta": beta_constraint, "gamma": gamma_constraint},
            activity_regularizer,
        )
        o = self.owner
        self.momentum = check_number(momentum, "momentum", o, low=0, high=1)
        self.epsilon = check_number(epsilon, "epsilon", o, low=0)
        self.center = check_bool(center, "center", o)
        self.scale = check_bool(scale, "scale", o)
        if not is_int(axis):
            raise ValueError(
                f"{o}: invalid value for `axis`: expected an int (the channel axis, -1), "
                f"received {axis!r}."
            )
        self.axis = int(axis)
        self.initializers = {
            "beta": beta_initializer,
            "gamma": gamma_initializer,
            "moving_mean": moving_mean_initializer,
            "moving_variance": moving_variance_initializer,
        }
        for key, spec in self.initializers.items():
            initializers.get(spec, o, f"{key}_initializer")

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{f"{k}_initializer": initializers.serialize(v) for k, v in self.initializers.items()},
            **self.penalty_config(),
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if shape[-1] == 0:
            raise ValueError(
                f"{self.owner}: expected at least one channel (last axis), got shape "
                f"{shape_str(shape)}."
            )
        if self.axis not in (-1, len(shape) - 1):
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: layernet is channels-last and "
                f"normalises the last axis (-1 or {len(shape) - 1} here), received "
                f"axis={self.axis} for input of shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.state["moving_mean"].shape[0], "channels")

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        c = input_shape[-1]

        def init(key):
            fn = initializers.get(self.initializers[key], self.owner, f"{key}_initializer")
            return fn((c,), c, c, rng, self.dtype)

        if self.scale:
            self.params["gamma"] = init("gamma")
        if self.center:
            self.params["beta"] = init("beta")
        self.state["moving_mean"] = init("moving_mean")
        self.state["moving_variance"] = init("moving_variance")

    def compute_forward(self, x, training):
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        m = x2.shape[0]
        if training and m > 0 and self.trainable:  # frozen: inference mode, as in Keras
            mean = _ops.column_sums(x2, self.workspace) / m
            xc = x2 - mean
            var = _ops.column_sums(xc * xc, self.workspace) / m
            inv = 1 / np.sqrt(var + self.epsilon)
            xhat = xc * inv
            for key, value in (("moving_mean", mean), ("moving_variance", var)):
                run = self.state[key]
                run *= self.momentum
                run += (1 - self.momentum) * value
        else:
            inv = 1 / np.sqrt(self.state["moving_variance"] + self.epsilon)
            xhat = (x2 - self.state["moving_mean"]) * inv
            training = False
        y = xhat * self.params["gamma"] if self.scale else xhat.copy()
        if self.center:
            y += self.params["beta"]
        return y.reshape(x.shape), BatchNormSaved(training, xhat, inv.astype(x.dtype, copy=False))

    def compute_backward_params(self, dy, saved):
        xhat = saved.xhat
        dy2 = dy.reshape(xhat.shape)
        grads = {}
        if self.scale:
            grads["gamma"] = _ops.column_sums(dy2 * xhat, self.workspace)
        if self.center:
            grads["beta"] = _ops.column_sums(dy2, self.workspace)
        return grads

    def compute_backward_input(self, dy, saved):
        xhat, inv = saved.xhat, saved.inv
        g = dy.reshape(xhat.shape)
        if self.scale:
            g = g * self.params["gamma"]
        if not saved.training:
            return (g * inv).reshape(dy.shape)
        m = g.shape[0]
        sum_g = _ops.column_sums(g, self.workspace)
        sum_gx = _ops.column_sums(g * xhat, self.workspace)
        dx = (m * g - sum_g - xhat * sum_gx) * (inv / m)
        return dx.reshape(dy.shape)


class BatchNormalization(BatchNorm):
    """Keras's name for :class:`BatchNorm` (same arguments and defaults).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> bn = ln.BatchNormalization(dtype="float64")
    >>> bn.trainable = False          # frozen: inference mode even when training
    >>> bn.forward(np.array([[1.0], [3.0]]), training=True)[:, 0].round(4)
    array([0.9995, 2.9985])
    >>> bn.state["moving_mean"]       # unchanged
    array([0.])
    """

    _default_name = "batch_normalization"
    fresh_output = True  # the same computation as its parent's
