r"""The Adam family: Adam, AdamW, Adamax and Nadam."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_bool
from .base import LearningRate, Optimizer, check_rate


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with bias correction, and optionally AMSGrad.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta`: a finite float > 0, or a schedule such as
        :class:`~layernet.CosineDecay` (any callable of the step count).
    beta_1 : float, default 0.9
        Decay rate :math:`\beta_1 \in [0, 1)` of the first-moment estimate.
    beta_2 : float, default 0.999
        Decay rate :math:`\beta_2 \in [0, 1)` of the second-moment estimate.
    epsilon : float, default 1e-8
        :math:`\epsilon > 0` added to the denominator for numerical stability.
        layernet's Adam adds it to the bias-corrected root
        :math:`\sqrt{\hat v_t}` (PyTorch's placement, default 1e-8, unchanged
        since layernet's first version). Keras's Adam adds its
        :math:`\epsilon` (default 1e-7) to :math:`\sqrt{v_t}` before the bias
        correction, i.e. :math:`\epsilon/\sqrt{1-\beta_2^t}` here; the two agree
        to within :math:`\epsilon` relative to the step. :class:`AdamW` follows
        Keras's placement and default.
    amsgrad : bool, default False
        Use the running maximum :math:`\tilde v_t = \max(\tilde v_{t-1}, v_t)` of
        the second moment (AMSGrad, Reddi et al., 2018).
    weight_decay : float, default 0.0
        :math:`\lambda \ge 0`, added to the gradient as :math:`\lambda\theta`
        (L2, as PyTorch's ``Adam``; use :class:`AdamW` for decoupled decay).
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Adam: invalid value for `beta_1`: expected a number in [0, 1), ...``;
        the same form for ``beta_2``, ``learning_rate`` (> 0), ``epsilon``
        (> 0) and ``weight_decay`` (>= 0).

    Notes
    -----
    .. math::

        \begin{aligned}
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \theta_t &= \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)}
            + \epsilon},
        \end{aligned}

    with :math:`v_t` replaced by :math:`\tilde v_t = \max(\tilde v_{t-1}, v_t)`
    in the update when ``amsgrad`` is set.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> ln.Adam(learning_rate=0.1).step({"w": (p, g)})
    >>> np.round(p, 6)
    array([0.9])
    """

    name = "adam"
    decoupled_weight_decay = False

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        amsgrad: bool = False,
        weight_decay: float | None = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_rate(beta_1, "beta_1", owner, high=1.0)
        self.beta_2 = check_rate(beta_2, "beta_2", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)
        self.amsgrad = check_bool(amsgrad, "amsgrad", owner)

    def _update(self, key, p, g, lr):
        m = self._slot(key, "m", p)
        v = self._slot(key, "v", p)
        t = self.iterations + 1
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        v *= self.beta_2
        v += (1 - self.beta_2) * (g * g)
        if self.amsgrad:
            vhat = self._slot(key, "vhat", p)
            np.maximum(vhat, v, out=vhat)
            v = vhat
        step = lr / (1 - self.beta_1**t)
        denom = np.sqrt(v / (1 - self.beta_2**t))
        denom += self.epsilon
        p -= (step * m / denom).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Optimizer):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter, 2019), Keras's rule.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule).
    weight_decay : float, default 0.004
        Decoupled decay :math:`\lambda \ge 0`.
    beta_1 : float, default 0.9
        :math:`\beta_1 \in [0, 1)`.
    beta_2 : float, default 0.999
        :math:`\beta_2 \in [0, 1)`.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`, added to :math:`\sqrt{v_t}` (Keras's placement).
    amsgrad : bool, default False
        Use AMSGrad's running maximum of :math:`v_t`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``AdamW: invalid value for `beta_1`: expected a number in [0, 1), ...``;
        the same form for the other arguments.

    Notes
    -----
    .. math::

        \begin{aligned}
        \theta &\leftarrow \theta - \eta_t\lambda\theta,\qquad
        m_t = m_{t-1} + (g_t - m_{t-1})(1-\beta_1),\qquad
        v_t = v_{t-1} + (g_t^2 - v_{t-1})(1-\beta_2),\\
        \theta &\leftarrow \theta - \frac{\eta_t\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
            \frac{m_t}{\sqrt{v_t} + \epsilon}
        \end{aligned}

    (:math:`v_t` replaced by :math:`\max(\tilde v_{t-1}, v_t)` with ``amsgrad``).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.AdamW(learning_rate=0.1, weight_decay=0.5).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 6)   # 1 - 0.1*0.5*1, then one Adam step of 0.1
    array([0.85])
    """

    name = "adamw"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_rate(beta_1, "beta_1", owner, high=1.0)
        self.beta_2 = check_rate(beta_2, "beta_2", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)
        self.amsgrad = check_bool(amsgrad, "amsgrad", owner)

    def _update(self, key, p, g, lr):
        m = self._slot(key, "momentum", p)
        v = self._slot(key, "velocity", p)
        t = self.iterations + 1
        alpha = lr * np.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        if self.amsgrad:
            vhat = self._slot(key, "velocity_hat", p)
            np.maximum(vhat, v, out=vhat)
            v = vhat
        p -= (m * alpha / (np.sqrt(v) + self.epsilon)).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class Adamax(Optimizer):
    r"""Adamax: Adam with the infinity norm (Kingma & Ba, 2015, section 7.1), Keras's rule.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule).
    beta_1 : float, default 0.9
        :math:`\beta_1 \in [0, 1)`.
    beta_2 : float, default 0.999
        :math:`\beta_2 \in [0, 1)`, decay of the infinity norm.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Adamax: invalid value for `beta_1`: expected a number in [0, 1), ...``;
        the same form for the other arguments.

    Notes
    -----
    .. math::

        m_t = m_{t-1} + (g_t - m_{t-1})(1-\beta_1),\qquad
        u_t = \max(\beta_2 u_{t-1}, |g_t|),\qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t\, m_t}{(1-\beta_1^t)(u_t + \epsilon)}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.Adamax(learning_rate=0.1).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 6)
    array([0.9])
    """

    name = "adamax"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_rate(beta_1, "beta_1", owner, high=1.0)
        self.beta_2 = check_rate(beta_2, "beta_2", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)

    def _update(self, key, p, g, lr):
        m = self._slot(key, "momentum", p)
        u = self._slot(key, "norm", p)
        t = self.iterations + 1
        m += (g - m) * (1 - self.beta_1)
        np.maximum(self.beta_2 * u, np.abs(g), out=u)
        p -= (lr * m / ((1 - self.beta_1**t) * (u + self.epsilon))).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class Nadam(Optimizer):
    r"""Nadam: Adam with Nesterov momentum (Dozat, 2016), Keras's rule.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule).
    beta_1 : float, default 0.9
        :math:`\beta_1 \in [0, 1)`.
    beta_2 : float, default 0.999
        :math:`\beta_2 \in [0, 1)`.
    epsilon : float, default 1e-7
        :math:`\epsilon > 0`.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Nadam: invalid value for `beta_1`: expected a number in [0, 1), ...``;
        the same form for the other arguments.

    Notes
    -----
    With the momentum schedule :math:`\mu_t = \beta_1(1 - \tfrac12 0.96^{t})` and
    :math:`\Pi_t = \prod_{i\le t}\mu_i` (computed from the step count, so it is
    not part of the stored state):

    .. math::

        \begin{aligned}
        m_t &= m_{t-1} + (g_t - m_{t-1})(1-\beta_1),\qquad
        v_t = v_{t-1} + (g_t^2 - v_{t-1})(1-\beta_2),\\
        \hat m_t &= \frac{\mu_{t+1} m_t}{1 - \Pi_t\mu_{t+1}}
            + \frac{(1-\mu_t) g_t}{1 - \Pi_t},\qquad
        \theta_t = \theta_{t-1} - \frac{\eta_t\,\hat m_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}.
        \end{aligned}

    This is PyTorch's ``NAdam`` with ``momentum_decay=1``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0])
    >>> ln.optimizers.Nadam(learning_rate=0.1).step({"w": (p, np.array([2.0]))})
    >>> np.round(p, 4)
    array([0.9])
    """

    name = "nadam"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_rate(beta_1, "beta_1", owner, high=1.0)
        self.beta_2 = check_rate(beta_2, "beta_2", owner, high=1.0)
        self.epsilon = check_rate(epsilon, "epsilon", owner, low_open=True)
        self._product = (0, 1.0)  # (t, Π_t), recomputed from the step count when stale

    def _mu(self, t: int) -> float:
        return self.beta_1 * (1.0 - 0.5 * 0.96**t)

    def _u_product(self, t: int) -> float:
        done, value = self._product
        if done > t:
            done, value = 0, 1.0
        for i in range(done + 1, t + 1):
            value *= self._mu(i)
        self._product = (t, value)
        return value

    def _update(self, key, p, g, lr):
        m = self._slot(key, "momentum", p)
        v = self._slot(key, "velocity", p)
        t = self.iterations + 1
        u_t, u_next = self._mu(t), self._mu(t + 1)
        prod = self._u_product(t)
        m += (g - m) * (1 - self.beta_1)
        v += (g * g - v) * (1 - self.beta_2)
        m_hat = u_next * m / (1 - prod * u_next) + (1 - u_t) * g / (1 - prod)
        v_hat = v / (1 - self.beta_2**t)
        p -= (m_hat * lr / (np.sqrt(v_hat) + self.epsilon)).astype(p.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }
