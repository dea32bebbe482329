r"""Stochastic gradient descent."""

from __future__ import annotations

from typing import Any

from .._validation import check_bool
from .base import LearningRate, Optimizer, check_rate


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional (Nesterov) momentum and weight decay.

    Parameters
    ----------
    learning_rate : float or callable, default 0.01
        Step size :math:`\eta_t`: a finite float > 0, or a schedule such as
        :class:`~layernet.StepDecay` (any callable of the step count).
    momentum : float, default 0.0
        Momentum :math:`\mu \in [0, 1)`.
    nesterov : bool, default False
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default 0.0
        L2 coefficient :math:`\lambda \ge 0` added to the gradient as
        :math:`\lambda\theta` (layernet's form since its first version, as
        PyTorch's; Keras's SGD decays the weights directly,
        :math:`\theta \leftarrow \theta - \eta\lambda\theta`, which differs once
        there is momentum).
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``SGD: invalid value for `momentum`: expected a number in [0, 1), ...``;
        the same form for ``learning_rate`` (> 0) and ``weight_decay`` (>= 0);
        ``SGD: invalid value for `nesterov`: expected a bool, ...``;
        ``SGD: `nesterov=True` needs a positive `momentum`, received 0.``

    Notes
    -----
    With :math:`g_t = \partial z/\partial\theta + \lambda\theta_t` (PyTorch's convention):

    .. math::

        v_{t+1} = \mu v_t + g_t,\qquad
        \theta_{t+1} = \theta_t - \eta_t \begin{cases}
            g_t + \mu v_{t+1} & \text{(Nesterov)}\\ v_{t+1} & \text{otherwise.}\end{cases}

    With a constant rate this is Keras's rule (Keras keeps
    :math:`-\eta v` as its momentum); with a schedule, layernet scales the
    whole velocity by the current rate. With :math:`\mu = 0` it is plain
    gradient descent, :math:`\theta \leftarrow \theta - \eta\,\partial z/\partial\theta`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> ln.SGD(learning_rate=0.1).step({"w": (p, g)})
    >>> p
    array([0.95])

    In a model: ``model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")``.
    """

    name = "sgd"
    decoupled_weight_decay = False

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.momentum = check_rate(momentum, "momentum", "SGD", high=1.0)
        nesterov = check_bool(nesterov, "nesterov", "SGD")
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: `nesterov=True` needs a positive `momentum`, received 0.")
        self.nesterov = nesterov

    def _update(self, key, p, g, lr):
        if self.momentum:
            v = self._slot(key, "velocity", p)
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= lr * g

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
