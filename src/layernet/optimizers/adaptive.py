r"""Optimizers with per-entry step sizes from accumulated squared gradients.

RMSprop, Adagrad, Adadelta and FTRL, with Keras's update rules and defaults.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_bool, check_number
from .base import LearningRate, Optimizer, check_rate


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, 2012): divide by a running root mean square of the gradients.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule).
    rho : float, default 0.9
        Decay :math:`\rho \in [0, 1)` of the mean square.
    momentum : float, default 0.0
        Momentum :math:`\mu \in [0, 1)`; 0 for none.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`, added under the square root (Keras's placement;
        PyTorch adds it after the root).
    centered : bool, default False
        Divide by the estimated standard deviation instead (subtract the
        squared running mean of the gradients).
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``RMSprop: invalid value for `rho`: expected a number in [0, 1), ...``;
        the same form for the other arguments.

    Notes
    -----
    .. math::

        \begin{aligned}
        v_t &= \rho v_{t-1} + (1-\rho) g_t^2,\qquad
        a_t = \rho a_{t-1} + (1-\rho) g_t \ \text{(centered)},\\
        \Delta_t &= \frac{\eta_t\, g_t}{\sqrt{v_t - a_t^2 + \epsilon}}
            \ \text{(centered) or}\ \frac{\eta_t\, g_t}{\sqrt{v_t + \epsilon}},\\
        \theta_t &= \theta_{t-1} - \Delta_t \quad\text{or, with momentum,}\quad
            b_t = \mu b_{t-1} + \Delta_t,\ \theta_t = \theta_{t-1} - b_t.
        \end{aligned}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.RMSprop(learning_rate=0.01).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 5)   # 1 - 0.01 * 2 / sqrt(0.1 * 4)
    array([0.96838])
    """

    name = "rmsprop"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.rho = check_rate(rho, "rho", owner, high=1.0)
        self.momentum = check_rate(momentum, "momentum", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)
        self.centered = check_bool(centered, "centered", owner)

    def _update(self, key, p, g, lr):
        v = self._slot(key, "velocity", p)
        v *= self.rho
        v += (1 - self.rho) * (g * g)
        if self.centered:
            a = self._slot(key, "average_gradient", p)
            a *= self.rho
            a += (1 - self.rho) * g
            denom = v - a * a + self.epsilon
        else:
            denom = v + self.epsilon
        increment = lr * g / np.sqrt(denom)
        if self.momentum > 0:
            b = self._slot(key, "momentum", p)
            b *= self.momentum
            b += increment
            increment = b
        p -= increment.astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011): divide by the root of all squared gradients so far.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule).
    initial_accumulator_value : float, default 0.1
        Starting value :math:`s_0 \ge 0` of the accumulator.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`, added under the square root.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Adagrad: invalid value for `initial_accumulator_value`: expected a
        finite number >= 0, ...``; the same form for the other arguments.

    Notes
    -----
    .. math::

        s_t = s_{t-1} + g_t^2,\qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t\, g_t}{\sqrt{s_t + \epsilon}}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=0.0,
    ...                       epsilon=1e-12).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 6)
    array([0.9])
    """

    name = "adagrad"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.initial_accumulator_value = check_rate(
            initial_accumulator_value, "initial_accumulator_value", owner
        )
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)

    def _update(self, key, p, g, lr):
        s = self._slot(key, "accumulator", p, self.initial_accumulator_value)
        s += g * g
        p -= (lr * g / np.sqrt(s + self.epsilon)).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012): steps scaled by running RMS of past steps and gradients.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Factor :math:`\eta_t` on every step (Keras's default; the paper's rule
        is ``learning_rate=1.0``).
    rho : float, default 0.95
        Decay :math:`\rho \in [0, 1)` of both running averages.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`, added under both square roots.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Adadelta: invalid value for `rho`: expected a number in [0, 1), ...``;
        the same form for the other arguments.

    Notes
    -----
    .. math::

        \begin{aligned}
        s_t &= \rho s_{t-1} + (1-\rho) g_t^2,\qquad
        \Delta_t = -\frac{\sqrt{d_{t-1} + \epsilon}}{\sqrt{s_t + \epsilon}}\, g_t,\\
        d_t &= \rho d_{t-1} + (1-\rho)\Delta_t^2,\qquad
        \theta_t = \theta_{t-1} + \eta_t \Delta_t.
        \end{aligned}

    This is PyTorch's ``Adadelta`` rule exactly.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.Adadelta(learning_rate=1.0).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 6)
    array([0.998586])
    """

    name = "adadelta"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.rho = check_rate(rho, "rho", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)

    def _update(self, key, p, g, lr):
        s = self._slot(key, "accumulated_grad", p)
        d = self._slot(key, "accumulated_delta_var", p)
        s *= self.rho
        s += (1 - self.rho) * (g * g)
        delta = -np.sqrt(d + self.epsilon) * g / np.sqrt(s + self.epsilon)
        d *= self.rho
        d += (1 - self.rho) * (delta * delta)
        p += (lr * delta).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Ftrl(Optimizer):
    r"""FTRL-Proximal (McMahan et al., 2013), Keras's rule.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        :math:`\eta_t` (a float > 0 or a schedule).
    learning_rate_power : float, default -0.5
        :math:`p \le 0`: how the per-entry rate falls with the accumulator.
    initial_accumulator_value : float, default 0.1
        Starting value :math:`n_0 \ge 0` of the squared-gradient accumulator.
    l1_regularization_strength : float, default 0.0
        :math:`\lambda_1 \ge 0`.
    l2_regularization_strength : float, default 0.0
        :math:`\lambda_2 \ge 0`.
    l2_shrinkage_regularization_strength : float, default 0.0
        :math:`\lambda_s \ge 0`, an L2 term in the gradient only.
    beta : float, default 0.0
        :math:`\beta \ge 0`, added to :math:`\lambda_2` as :math:`\beta/(2\eta_t)`.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Ftrl: invalid value for `learning_rate_power`: expected a finite number
        <= 0, ...``; the same form for the other arguments.

    Notes
    -----
    With :math:`\tilde g_t = g_t + 2\lambda_s\theta_{t-1}`,
    :math:`\lambda_2' = \lambda_2 + \beta/(2\eta_t)`:

    .. math::

        \begin{aligned}
        n_t &= n_{t-1} + g_t^2,\qquad
        z_t = z_{t-1} + \tilde g_t - \frac{n_t^{-p} - n_{t-1}^{-p}}{\eta_t}\,\theta_{t-1},\\
        \theta_t &= \frac{\operatorname{clip}(z_t, -\lambda_1, \lambda_1) - z_t}
            {n_t^{-p}/\eta_t + 2\lambda_2'}.
        \end{aligned}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.Ftrl(learning_rate=0.1, initial_accumulator_value=0.0
    ...                    ).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 6)   # z = 2 - 20 * 1, theta = -z / 20
    array([0.9])
    """

    name = "ftrl"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.learning_rate_power = check_number(
            learning_rate_power, "learning_rate_power", owner, high=0.0
        )
        self.initial_accumulator_value = check_rate(
            initial_accumulator_value, "initial_accumulator_value", owner
        )
        self.l1_regularization_strength = check_rate(
            l1_regularization_strength, "l1_regularization_strength", owner
        )
        self.l2_regularization_strength = check_rate(
            l2_regularization_strength, "l2_regularization_strength", owner
        )
        self.l2_shrinkage_regularization_strength = check_rate(
            l2_shrinkage_regularization_strength, "l2_shrinkage_regularization_strength", owner
        )
        self.beta = check_rate(beta, "beta", owner)

    def _update(self, key, p, g, lr):
        n = self._slot(key, "accumulator", p, self.initial_accumulator_value)
        z = self._slot(key, "linear", p)
        power = -self.learning_rate_power
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        g_used = g + 2 * self.l2_shrinkage_regularization_strength * p
        new_n = n + g * g
        z += g_used - (new_n**power - n**power) / lr * p
        quadratic = new_n**power / lr + 2 * l2
        l1 = self.l1_regularization_strength
        p[...] = (np.clip(z, -l1, l1) - z) / quadratic
        n[...] = new_n

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }
