r"""Lion: sign of an interpolated momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_number
from .base import LearningRate, Optimizer


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023): a step of fixed size along the sign of a momentum.

    Parameters
    ----------
    learning_rate : float or callable, default 0.001
        Step size :math:`\eta_t` (a float > 0 or a schedule); usually 3-10 times
        smaller than Adam's.
    beta_1 : float, default 0.9
        :math:`\beta_1 \in (0, 1]`, the interpolation used for the step.
    beta_2 : float, default 0.99
        :math:`\beta_2 \in [0, 1]`, the decay of the momentum.
    weight_decay : float, optional
        Decoupled decay :math:`\lambda`, see :class:`~layernet.optimizers.Optimizer`.
    **kwargs
        ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
        ``ema_momentum``, ``ema_overwrite_frequency``: see
        :class:`~layernet.optimizers.Optimizer`.

    Raises
    ------
    ValueError
        ``Lion: invalid value for `beta_1`: expected a number in (0, 1], ...``;
        the same form for the other arguments.

    Notes
    -----
    .. math::

        \theta_t = \theta_{t-1} - \eta_t \operatorname{sign}\big(\beta_1 m_{t-1}
            + (1-\beta_1) g_t\big),\qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> p = np.array([1.0, 1.0])
    >>> ln.optimizers.Lion(learning_rate=0.1).step({"w": (p, np.array([2.0, -0.5]))})
    >>> p
    array([0.9, 1.1])
    """

    name = "lion"

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        weight_decay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, weight_decay, **kwargs)
        owner = type(self).__name__
        self.beta_1 = check_number(beta_1, "beta_1", owner, low=0.0, low_open=True, high=1.0)
        self.beta_2 = check_number(beta_2, "beta_2", owner, low=0.0, high=1.0)

    def _update(self, key, p, g, lr):
        m = self._slot(key, "momentum", p)
        p -= (lr * np.sign(m * self.beta_1 + g * (1.0 - self.beta_1))).astype(p.dtype, copy=False)
        m *= self.beta_2
        m += g * (1.0 - self.beta_2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
