r"""Batch normalisation over every axis but the channels."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _ops
from .._validation import check_bool
from .base import Layer


class BatchNormSaved(NamedTuple):
    """What :class:`BatchNorm` keeps for backward."""

    training: bool  #: whether batch statistics were used (else the running ones)
    xhat: np.ndarray  #: the normalised input, ``(entries, channels)``
    inv: np.ndarray  #: :math:`1/\sqrt{\sigma^2 + \epsilon}` per channel


class BatchNorm(Layer):
    r"""Batch normalisation (Ioffe & Szegedy, 2015) of each channel (the last axis).

    Parameters
    ----------
    momentum : float, default 0.99
        Weight of the old value in the running statistics,
        :math:`\mu_\text{run} \leftarrow m\,\mu_\text{run} + (1-m)\,\mu_B`
        (Keras' convention; PyTorch's ``momentum=0.1`` is ``0.9`` here).
    epsilon : float, default 1e-3
        Added to the variance before the square root.
    center : bool, default True
        Learn an offset ``beta``.
    scale : bool, default True
        Learn a factor ``gamma``.
    name, dtype, seed, trainable
        See :class:`~layernet.layers.Layer`.

    Attributes
    ----------
    params : dict
        ``"gamma"`` and ``"beta"``, each of shape ``(channels,)``.
    state : dict
        ``"moving_mean"`` and ``"moving_var"``, updated by every training forward pass
        and used at inference; saved in model files, never touched by optimisers.

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
            \Big(m\,g_j - \sum_k g_k - \hat x_j \sum_k g_k \hat x_k\Big),\qquad
        \frac{\partial z}{\partial \gamma} = \sum_j \frac{\partial z}{\partial y_j}\hat x_j,\qquad
        \frac{\partial z}{\partial \beta} = \sum_j \frac{\partial z}{\partial y_j}.

    The input Jacobian of a channel is dense in training mode,
    :math:`\frac{\gamma}{\sqrt{\sigma^2+\epsilon}}\big(I - \frac1m\mathbf 1\mathbf 1^T
    - \frac1m\hat x\hat x^T\big)`, and diagonal at inference, where the running
    statistics are constants: :math:`y = \gamma (x - \mu_\text{run})/
    \sqrt{\sigma^2_\text{run}+\epsilon} + \beta`. :meth:`jacobian_input` and
    :meth:`jacobian_params` give the inference ones.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
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

    def __init__(
        self,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        for arg, value, ok in (
            ("momentum", momentum, lambda v: 0 <= v < 1),
            ("epsilon", epsilon, lambda v: v >= 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or not ok(value):
                bound = "in [0, 1)" if arg == "momentum" else ">= 0"
                raise ValueError(
                    f"{o}: invalid value for `{arg}`: expected a number {bound}, "
                    f"received {value!r}."
                )
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = check_bool(center, "center", o)
        self.scale = check_bool(scale, "scale", o)

    def get_config(self) -> dict[str, Any]:
        return {
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if self.built:
            self._check_last_axis(shape, self.state["moving_mean"].shape[0], "channels")

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        c = input_shape[-1]
        if self.scale:
            self.params["gamma"] = np.ones(c, self.dtype)
        if self.center:
            self.params["beta"] = np.zeros(c, self.dtype)
        self.state["moving_mean"] = np.zeros(c, self.dtype)
        self.state["moving_var"] = np.ones(c, self.dtype)

    def compute_forward(self, x, training):
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        m = x2.shape[0]
        if training and m > 0:
            mean = _ops.column_sums(x2, self.workspace) / m
            xc = x2 - mean
            var = _ops.column_sums(xc * xc, self.workspace) / m
            inv = 1 / np.sqrt(var + self.epsilon)
            xhat = xc * inv
            for key, value in (("moving_mean", mean), ("moving_var", var)):
                run = self.state[key]
                run *= self.momentum
                run += (1 - self.momentum) * value
        else:
            inv = 1 / np.sqrt(self.state["moving_var"] + self.epsilon)
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
        training, xhat, inv = saved
        g = dy.reshape(xhat.shape)
        if self.scale:
            g = g * self.params["gamma"]
        if not training:
            return (g * inv).reshape(dy.shape)
        m = g.shape[0]
        sum_g = _ops.column_sums(g, self.workspace)
        sum_gx = _ops.column_sums(g * xhat, self.workspace)
        dx = (m * g - sum_g - xhat * sum_gx) * (inv / m)
        return dx.reshape(dy.shape)
