r"""Optimizers and learning-rate schedules.

An optimizer owns its state (momentum buffers, moment estimates), keyed by
parameter name; layers only hold parameters and gradients. A model calls
:meth:`Optimizer.step` once per batch with ``{name: (param, grad)}`` and the
optimizer updates the parameters in place.

The learning rate may be a float, a schedule from this module, or any callable
mapping the step count (0, 1, 2, ...) to a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from ._validation import check_bool, check_number, check_positive_int, is_real, missing_attribute

LearningRate = float | Callable[[int], float]


def _check_number(
    value: Any, arg: str, owner: str, *, low: float = 0.0, low_open=False, high: float | None = None
) -> float:
    return check_number(
        value, arg, owner, low=low, low_open=low_open, high=high, high_open=high is not None
    )


# ----------------------------------------------------------------- schedules
class StepDecay:
    r"""Learning-rate schedule that multiplies the rate by ``gamma`` every ``step_size`` steps.

    Pass an instance as an optimizer's ``learning_rate``: before every update the
    optimizer calls it with its step count :math:`t = 0, 1, 2, \dots` (one step per
    batch) and uses the float it returns.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number > 0.
    step_size : int
        Number of steps :math:`T` between two decays; a positive int.
    gamma : float, default 0.1
        Factor :math:`\gamma` applied at every decay; a finite number >= 0.

    Raises
    ------
    ValueError
        ``StepDecay: invalid value for `initial_learning_rate`: expected a finite
        number > 0, ...`` (likewise for ``gamma`` with ``>= 0``), or
        ``StepDecay: invalid value for `step_size`: expected a positive int, ...``.

    See Also
    --------
    CosineDecay, LearningRateScheduler

    Notes
    -----
    Calling the schedule with step :math:`t` returns

    .. math:: \eta_t = \eta_0\,\gamma^{\lfloor t / T\rfloor}.

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.StepDecay(0.1, step_size=10, gamma=0.5)
    >>> s(0), s(9), s(10), s(25)
    (0.1, 0.1, 0.05, 0.025)
    >>> opt = ln.SGD(learning_rate=s)
    >>> opt.current_learning_rate
    0.1
    """

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1) -> None:
        self.initial_learning_rate = _check_number(
            initial_learning_rate, "initial_learning_rate", "StepDecay", low_open=True
        )
        self.step_size = check_positive_int(step_size, "step_size", "StepDecay")
        self.gamma = _check_number(gamma, "gamma", "StepDecay")

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (model files store schedules by these)."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }

    def __repr__(self) -> str:
        return (
            f"StepDecay({self.initial_learning_rate!r}, step_size={self.step_size}, "
            f"gamma={self.gamma!r})"
        )


class CosineDecay:
    r"""Learning-rate schedule that decays along a cosine to ``alpha`` times the initial rate.

    Pass an instance as an optimizer's ``learning_rate``: before every update the
    optimizer calls it with its step count :math:`t = 0, 1, 2, \dots` (one step per
    batch). After ``decay_steps`` steps the rate stays at :math:`\alpha\eta_0`.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number > 0.
    decay_steps : int
        Number of steps :math:`T` over which the rate decays; a positive int.
    alpha : float, default 0.0
        Final rate as a fraction of :math:`\eta_0`; a finite number >= 0.

    Raises
    ------
    ValueError
        ``CosineDecay: invalid value for `initial_learning_rate`: expected a finite
        number > 0, ...`` (likewise for ``alpha`` with ``>= 0``), or
        ``CosineDecay: invalid value for `decay_steps`: expected a positive int, ...``.

    See Also
    --------
    StepDecay, LearningRateScheduler

    Notes
    -----
    Calling the schedule with step :math:`t` returns

    .. math::

        \eta_t = \eta_0\Big(\alpha + (1-\alpha)\,
            \tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big)\Big).

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.CosineDecay(0.1, decay_steps=100)
    >>> s(0), round(s(50), 6), s(100), s(200)
    (0.1, 0.05, 0.0, 0.0)
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        self.initial_learning_rate = _check_number(
            initial_learning_rate, "initial_learning_rate", "CosineDecay", low_open=True
        )
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", "CosineDecay")
        self.alpha = _check_number(alpha, "alpha", "CosineDecay")

    def __call__(self, step: int) -> float:
        frac = min(step, self.decay_steps) / self.decay_steps
        cos = 0.5 * (1 + math.cos(math.pi * frac))
        return self.initial_learning_rate * (self.alpha + (1 - self.alpha) * cos)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (model files store schedules by these)."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
        }

    def __repr__(self) -> str:
        return (
            f"CosineDecay({self.initial_learning_rate!r}, decay_steps={self.decay_steps}, "
            f"alpha={self.alpha!r})"
        )


# ---------------------------------------------------------------- optimizers
class Optimizer:
    r"""Base class of optimizers: learning rate, step counting and per-parameter state.

    A subclass implements ``_update(key, param, grad, lr)``, which changes
    ``param`` in place; :meth:`step` adds the weight decay to the gradient, calls
    it for every parameter and counts the step. A model calls :meth:`step` once
    per batch; ``compile`` accepts an instance or a name (``"sgd"``, ``"adam"``).
    Importable as ``ln.optimizers.Optimizer``.

    Parameters
    ----------
    learning_rate : float or callable
        A finite float > 0, or a callable (such as :class:`~layernet.StepDecay`)
        mapping the step count 0, 1, 2, ... to one.
    weight_decay : float, default 0.0
        L2 penalty coefficient :math:`\lambda \ge 0`, added to each gradient as
        :math:`\lambda\theta` (as PyTorch's ``weight_decay``).

    Attributes
    ----------
    iterations : int
        Number of steps taken.
    state : dict of str to dict of str to ndarray
        Per-parameter buffers (momentum, moment estimates) by parameter key,
        then by slot name (one of :attr:`slot_names`).

    Raises
    ------
    ValueError
        ``<Optimizer>: invalid value for `learning_rate`: expected a finite number
        > 0, ...`` or the same for ``weight_decay`` (``>= 0``).

    See Also
    --------
    layernet.SGD, layernet.Adam

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> class SignSGD(ln.optimizers.Optimizer):
    ...     def _update(self, key, p, g, lr):
    ...         p -= lr * np.sign(g)
    >>> p = np.array([1.0, 1.0])
    >>> opt = SignSGD(learning_rate=0.5)
    >>> opt.step({"w": (p, np.array([3.0, -0.1]))})
    >>> p, opt.iterations
    (array([0.5, 1.5]), 1)
    """

    name = "optimizer"

    def __init__(self, learning_rate: LearningRate, weight_decay: float = 0.0) -> None:
        owner = type(self).__name__
        if not callable(learning_rate):
            learning_rate = _check_number(learning_rate, "learning_rate", owner, low_open=True)
        self.learning_rate = learning_rate
        self.weight_decay = _check_number(weight_decay, "weight_decay", owner)
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}

    @property
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use.

        Raises
        ------
        ValueError
            If a schedule returns something other than a finite number
            (``<Optimizer>: the learning-rate schedule returned ... at step ...``).
        """
        lr = self.learning_rate
        value = lr(self.iterations) if callable(lr) else lr
        if not (is_real(value) and math.isfinite(value)):
            raise ValueError(
                f"{type(self).__name__}: the learning-rate schedule returned "
                f"{value!r} at step {self.iterations}; expected a finite float."
            )
        return float(value)

    def step(self, params_and_grads: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Update every parameter in place from its gradient; advance the step count.

        Parameters
        ----------
        params_and_grads : dict of str to (ndarray, ndarray)
            ``{key: (param, grad)}``; each ``param`` is changed in place. The key
            names the optimizer's state for that parameter, so it must stay the
            same from step to step (a model uses ``"<layer name>.<param name>"``).

        Raises
        ------
        ValueError
            If the learning-rate schedule returns a non-finite value (see
            :attr:`current_learning_rate`).
        """
        lr = self.current_learning_rate
        for key, (p, g) in params_and_grads.items():
            if self.weight_decay:
                g = g + self.weight_decay * p
            self._update(key, p, g, lr)
        self.iterations += 1

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    @property
    def slot_names(self) -> tuple[str, ...]:
        """The names of the state arrays this optimizer keeps for every parameter it updates.

        Each has the shape and dtype of its parameter. Model files store them,
        and loading refuses state arrays under other names, or a parameter
        holding only some of them. A subclass that keeps state declares it here.

        Examples
        --------
        >>> import layernet as ln
        >>> ln.Adam().slot_names, ln.SGD(momentum=0.9).slot_names, ln.SGD().slot_names
        (('m', 'v'), ('velocity',), ())
        """
        return ()

    def _slot(self, key: str, name: str, like: np.ndarray) -> np.ndarray:
        slots = self.state.setdefault(key, {})
        if name not in slots:
            slots[name] = np.zeros_like(like)
        return slots[name]

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a dict (model files store optimizers by these).

        Returns
        -------
        dict
            ``learning_rate``, ``weight_decay`` and the subclass's arguments. A
            schedule from this module appears as ``{"class_name": ..., "config":
            ...}``, any other callable as its ``repr`` (and then
            :attr:`serializable` is false).
        """
        lr = self.learning_rate
        if isinstance(lr, float):
            value: Any = lr
        elif type(lr) in SCHEDULES.values():
            value = {"class_name": type(lr).__name__, "config": cast(Any, lr).get_config()}
        else:
            value = repr(lr)
        return {"learning_rate": value, "weight_decay": self.weight_decay}

    @property
    def serializable(self) -> bool:
        """Whether a model file can store this optimizer (no arbitrary callables)."""
        return not isinstance(self.get_config()["learning_rate"], str)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


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
        :math:`\lambda\theta`.

    Raises
    ------
    ValueError
        ``SGD: invalid value for `momentum`: expected a finite number >= 0 and < 1,
        ...``; the same form for ``learning_rate`` (> 0) and ``weight_decay``
        (>= 0); ``SGD: invalid value for `nesterov`: expected a bool, ...``;
        ``SGD: `nesterov=True` needs a positive `momentum`, received 0.``

    Notes
    -----
    With :math:`g_t = \partial z/\partial\theta + \lambda\theta_t` (PyTorch's convention):

    .. math::

        v_{t+1} = \mu v_t + g_t,\qquad
        \theta_{t+1} = \theta_t - \eta_t \begin{cases}
            g_t + \mu v_{t+1} & \text{(Nesterov)}\\ v_{t+1} & \text{otherwise.}\end{cases}

    With :math:`\mu = 0` this is plain gradient descent, :math:`\theta \leftarrow
    \theta - \eta\,\partial z/\partial\theta`.

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

    def __init__(
        self,
        learning_rate: LearningRate = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, weight_decay)
        self.momentum = _check_number(momentum, "momentum", "SGD", high=1.0)
        nesterov = check_bool(nesterov, "nesterov", "SGD")
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: `nesterov=True` needs a positive `momentum`, received 0.")
        self.nesterov = nesterov

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("velocity",) if self.momentum else ()

    def _update(self, key, p, g, lr):
        if self.momentum:
            v = self._slot(key, "velocity", p)
            v *= self.momentum
            v += g
            g = g + self.momentum * v if self.nesterov else v
        p -= lr * g

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with bias correction.

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
    weight_decay : float, default 0.0
        :math:`\lambda \ge 0`, added to the gradient as :math:`\lambda\theta`
        (L2, as PyTorch's ``Adam``).

    Raises
    ------
    ValueError
        ``Adam: invalid value for `beta_1`: expected a finite number >= 0 and < 1,
        ...``; the same form for ``beta_2``, ``learning_rate`` (> 0), ``epsilon``
        (> 0) and ``weight_decay`` (>= 0).

    Notes
    -----
    .. math::

        \begin{aligned}
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \theta_t &= \theta_{t-1} - \eta\,\frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)}
            + \epsilon}.
        \end{aligned}

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

    def __init__(
        self,
        learning_rate: LearningRate = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, weight_decay)
        self.beta_1 = _check_number(beta_1, "beta_1", "Adam", high=1.0)
        self.beta_2 = _check_number(beta_2, "beta_2", "Adam", high=1.0)
        self.epsilon = _check_number(epsilon, "epsilon", "Adam", low_open=True)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return ("m", "v")

    def _update(self, key, p, g, lr):
        m = self._slot(key, "m", p)
        v = self._slot(key, "v", p)
        t = self.iterations + 1
        m *= self.beta_1
        m += (1 - self.beta_1) * g
        v *= self.beta_2
        v += (1 - self.beta_2) * (g * g)
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
        }


#: Optimizer classes by lower-case name (each constructible with its defaults).
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"sgd": SGD, "adam": Adam}
SCHEDULES: dict[str, type] = {"StepDecay": StepDecay, "CosineDecay": CosineDecay}


def from_config(class_name: str, config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from ``type(opt).__name__`` and ``opt.get_config()``.

    Only this module's optimizers and schedules, and only numbers, are accepted.
    """
    cls = OPTIMIZERS.get(str(class_name).lower())
    if cls is None or not isinstance(config, dict):
        raise ValueError(f"unknown optimizer {class_name!r}")
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        sched = SCHEDULES.get(str(lr.get("class_name")))
        cfg = lr.get("config")
        if (
            sched is None
            or not isinstance(cfg, dict)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in cfg.values())
        ):
            raise ValueError(f"unknown learning-rate schedule {lr!r:.200}")
        config["learning_rate"] = sched(**cfg)
    if not all(
        isinstance(v, bool | int | float) or k == "learning_rate" for k, v in config.items()
    ):
        raise ValueError("optimizer settings must be numbers")
    return cls(**config)


def get(identifier: str | Optimizer) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    raise ValueError(
        f"compile: invalid value for `optimizer`: expected one of "
        f"{sorted(OPTIMIZERS)} or an Optimizer instance, received {identifier!r}."
    )


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
