r"""Learning-rate schedules: the rate as a function of the optimizer's step count.

Pass a schedule as an optimizer's ``learning_rate``. Before every update the
optimizer calls it with its step count :math:`t` = ``optimizer.iterations``
(0 at the first update, one step per batch) and uses the float it returns.
Every schedule here is a :class:`LearningRateSchedule`: it has
:meth:`~LearningRateSchedule.get_config` and
:meth:`~LearningRateSchedule.from_config`, and model files store it with the
optimizer. Importable as ``ln.optimizers.schedules``, with Keras's names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from .._validation import check_bool, check_number, check_positive_int, is_real


def _lr(value: Any, arg: str, owner: str, *, positive: bool = False) -> float:
    """A finite learning rate (``> 0`` when ``positive``, else ``>= 0``)."""
    return check_number(value, arg, owner, low=0.0, low_open=positive)


def _name(value: Any, owner: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{owner}: invalid value for `name`: expected a non-empty str, received {value!r}."
        )
    return value


def _step(step: Any, owner: str) -> float:
    if not is_real(step) or not math.isfinite(float(step)) or float(step) < 0:
        raise ValueError(
            f"{owner}: invalid value for `step`: expected a finite number >= 0, received {step!r}."
        )
    return float(step)


class LearningRateSchedule:
    r"""Base class of learning-rate schedules: a callable of the step count with a config.

    A subclass implements ``__call__(step) -> float`` and ``get_config()``; the
    constructor arguments that ``get_config`` returns rebuild it through
    :meth:`from_config`. Any callable of the step count is accepted as a
    learning rate too, but only the schedules of this module are stored in
    model files.

    Examples
    --------
    >>> import layernet as ln
    >>> class Halving(ln.optimizers.schedules.LearningRateSchedule):
    ...     def __init__(self, rate):
    ...         self.rate = rate
    ...     def __call__(self, step):
    ...         return self.rate / 2**step
    ...     def get_config(self):
    ...         return {"rate": self.rate}
    >>> s = Halving.from_config(Halving(1.0).get_config())
    >>> s(0), s(3)
    (1.0, 0.125)
    """

    def __call__(self, step: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step).")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (model files store schedules by these)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_config().")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LearningRateSchedule:
        """Rebuild a schedule from :meth:`get_config`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class StepDecay(LearningRateSchedule):
    r"""Learning-rate schedule that multiplies the rate by ``gamma`` every ``step_size`` steps.

    layernet's own schedule (PyTorch's ``StepLR`` counted in steps); the Keras
    equivalent is :class:`~layernet.optimizers.schedules.ExponentialDecay` with
    ``staircase=True``.

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
    layernet.optimizers.schedules.ExponentialDecay, layernet.CosineDecay,
    layernet.LearningRateScheduler

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
        self.initial_learning_rate = _lr(
            initial_learning_rate, "initial_learning_rate", "StepDecay", positive=True
        )
        self.step_size = check_positive_int(step_size, "step_size", "StepDecay")
        self.gamma = check_number(gamma, "gamma", "StepDecay", low=0.0)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }


class ExponentialDecay(LearningRateSchedule):
    r"""Exponential decay: the rate shrinks by ``decay_rate`` every ``decay_steps`` steps.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number >= 0.
    decay_steps : int
        Steps :math:`T` per factor of :math:`r`; a positive int.
    decay_rate : float
        The factor :math:`r`; a finite number >= 0.
    staircase : bool, default False
        Decay in whole steps (:math:`\lfloor t/T\rfloor`) instead of continuously.
    name : str, default "ExponentialDecay"
        Kept in the config, as Keras does.

    Raises
    ------
    ValueError
        ``ExponentialDecay: invalid value for `decay_steps`: expected a positive
        int, ...``; the same form for the other arguments.

    See Also
    --------
    InverseTimeDecay, layernet.StepDecay

    Notes
    -----
    .. math::

        \eta_t = \eta_0\, r^{p},\qquad
        p = \begin{cases} \lfloor t/T\rfloor & \text{staircase}\\ t/T & \text{otherwise.}
        \end{cases}

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> s(0), s(10), round(s(5), 6)
    (0.1, 0.05, 0.070711)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "ExponentialDecay",
    ) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _lr(initial_learning_rate, "initial_learning_rate", owner)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", owner)
        self.decay_rate = check_number(decay_rate, "decay_rate", owner, low=0.0)
        self.staircase = check_bool(staircase, "staircase", owner)
        self.name = _name(name, owner)

    def _p(self, step: int) -> float:
        p = _step(step, type(self).__name__) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate * self.decay_rate ** self._p(step)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


class InverseTimeDecay(ExponentialDecay):
    r"""Inverse-time decay: :math:`\eta_0 / (1 + r\,t/T)`.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number >= 0.
    decay_steps : int
        The step scale :math:`T`; a positive int.
    decay_rate : float
        The rate :math:`r`; a finite number >= 0.
    staircase : bool, default False
        Use :math:`\lfloor t/T\rfloor` instead of :math:`t/T`.
    name : str, default "InverseTimeDecay"
        Kept in the config, as Keras does.

    Raises
    ------
    ValueError
        ``InverseTimeDecay: invalid value for `decay_steps`: expected a positive
        int, ...``; the same form for the other arguments.

    See Also
    --------
    ExponentialDecay

    Notes
    -----
    .. math:: \eta_t = \frac{\eta_0}{1 + r\,p},\qquad p = t/T
        \ (\text{or } \lfloor t/T\rfloor \text{ with staircase}).

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=0.5)
    >>> s(0), s(2)
    (0.1, 0.05)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        name: str = "InverseTimeDecay",
    ) -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: int) -> float:
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._p(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    r"""Piecewise-constant rate: ``values[i]`` while ``boundaries[i-1] < t <= boundaries[i]``.

    Parameters
    ----------
    boundaries : sequence of int
        Increasing step counts :math:`b_0 < b_1 < \dots`.
    values : sequence of float
        The rates, one more than ``boundaries``; finite numbers >= 0.
    name : str, default "PiecewiseConstant"
        Kept in the config, as Keras does.

    Raises
    ------
    ValueError
        ``PiecewiseConstantDecay: invalid value for `values`: expected one more
        value than boundaries, ...``, or boundaries that are not increasing numbers.

    Notes
    -----
    .. math::

        \eta_t = \begin{cases} v_0 & t \le b_0\\ v_i & b_{i-1} < t \le b_i\\
            v_n & t > b_{n-1}. \end{cases}

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001])
    >>> s(0), s(10), s(11), s(21)
    (0.1, 0.1, 0.01, 0.001)
    """

    def __init__(
        self, boundaries: Sequence[float], values: Sequence[float], name: str = "PiecewiseConstant"
    ) -> None:
        owner = type(self).__name__
        if not isinstance(boundaries, list | tuple) or not all(is_real(b) for b in boundaries):
            raise ValueError(
                f"{owner}: invalid value for `boundaries`: expected a list of numbers, "
                f"received {boundaries!r}."
            )
        if not isinstance(values, list | tuple) or len(values) != len(boundaries) + 1:
            raise ValueError(
                f"{owner}: invalid value for `values`: expected one more value than "
                f"boundaries ({len(boundaries) + 1}), received {values!r}."
            )
        bounds = [check_number(b, "boundaries", owner) for b in boundaries]
        if any(b >= c for b, c in itertools.pairwise(bounds)):
            raise ValueError(
                f"{owner}: invalid value for `boundaries`: expected increasing numbers, "
                f"received {boundaries!r}."
            )
        self.boundaries = [int(b) if float(b).is_integer() else b for b in bounds]
        self.values = [_lr(v, "values", owner) for v in values]
        self.name = _name(name, owner)

    def __call__(self, step: int) -> float:
        t = _step(step, type(self).__name__)
        for b, v in zip(self.boundaries, self.values, strict=False):
            if t <= b:
                return v
        return self.values[-1]

    def get_config(self) -> dict[str, Any]:
        return {"boundaries": list(self.boundaries), "values": list(self.values), "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    r"""Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate`` in ``decay_steps``.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number >= 0.
    decay_steps : int
        Steps :math:`T` of the decay; a positive int.
    end_learning_rate : float, default 0.0001
        The final rate :math:`\eta_T`; a finite number >= 0.
    power : float, default 1.0
        The exponent :math:`k` (1 is linear); a finite number.
    cycle : bool, default False
        After :math:`T`, restart with a :math:`T` stretched to the next multiple
        of itself instead of staying at :math:`\eta_T`.
    name : str, default "PolynomialDecay"
        Kept in the config, as Keras does.

    Raises
    ------
    ValueError
        ``PolynomialDecay: invalid value for `decay_steps`: expected a positive
        int, ...``; the same form for the other arguments.

    Notes
    -----
    .. math::

        \eta_t = (\eta_0 - \eta_T)\,(1 - t'/T')^{k} + \eta_T,\qquad
        (t', T') = \begin{cases}
            (t,\ T\max(1, \lceil t/T\rceil)) & \text{cycle}\\
            (\min(t, T),\ T) & \text{otherwise.}\end{cases}

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules.PolynomialDecay(0.1, 10, end_learning_rate=0.0)
    >>> s(0), round(s(5), 6), s(10), s(20)
    (0.1, 0.05, 0.0, 0.0)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        end_learning_rate: float = 0.0001,
        power: float = 1.0,
        cycle: bool = False,
        name: str = "PolynomialDecay",
    ) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _lr(initial_learning_rate, "initial_learning_rate", owner)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", owner)
        self.end_learning_rate = _lr(end_learning_rate, "end_learning_rate", owner)
        self.power = check_number(power, "power", owner)
        self.cycle = check_bool(cycle, "cycle", owner)
        self.name = _name(name, owner)

    def __call__(self, step: int) -> float:
        t = _step(step, type(self).__name__)
        steps = float(self.decay_steps)
        if self.cycle:
            steps *= 1.0 if t == 0 else math.ceil(t / self.decay_steps)
        else:
            t = min(t, steps)
        frac = (1.0 - t / steps) ** self.power
        return (self.initial_learning_rate - self.end_learning_rate) * frac + self.end_learning_rate

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class CosineDecay(LearningRateSchedule):
    r"""Cosine decay to ``alpha`` times the rate, with an optional linear warmup (Keras's).

    Without ``warmup_target`` the rate decays from ``initial_learning_rate`` over
    ``decay_steps`` steps and then stays at :math:`\alpha\eta_0` (the rule of
    earlier layernet versions, unchanged). With ``warmup_target`` the rate first
    rises linearly from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps`` steps, then decays from ``warmup_target``.
    ``ln.CosineDecay`` and ``ln.optimizers.schedules.CosineDecay`` are this class.

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number > 0.
    decay_steps : int
        Number of steps :math:`T` over which the rate decays; a positive int.
    alpha : float, default 0.0
        Final rate as a fraction of the rate decayed from; a finite number >= 0.
    name : str, default "CosineDecay"
        Kept in the config, as Keras does.
    warmup_target : float, optional
        The rate :math:`\eta_w` reached at the end of the warmup; ``None`` for no
        warmup.
    warmup_steps : int, default 0
        Number of warmup steps :math:`W`; an int >= 0.

    Raises
    ------
    ValueError
        ``CosineDecay: invalid value for `initial_learning_rate`: expected a finite
        number > 0, ...`` (likewise for ``alpha`` and ``warmup_target`` with
        ``>= 0``), or ``CosineDecay: invalid value for `decay_steps`: expected a
        positive int, ...``.

    See Also
    --------
    layernet.optimizers.schedules.CosineDecayRestarts, layernet.StepDecay

    Notes
    -----
    Without warmup, calling the schedule with step :math:`t` returns

    .. math::

        \eta_t = \eta_0\Big(\alpha + (1-\alpha)\,
            \tfrac12\big(1 + \cos(\pi \min(t, T)/T)\big)\Big).

    With warmup, :math:`s = \min(t, W + T)`:

    .. math::

        \eta_t = \begin{cases} \eta_0 + (\eta_w - \eta_0)\, s/W & s < W\\
            \eta_w\big(\alpha + (1-\alpha)\tfrac12(1 + \cos(\pi (s - W)/T))\big)
            & \text{otherwise.}\end{cases}

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.CosineDecay(0.1, decay_steps=100)
    >>> s(0), round(s(50), 6), s(100), s(200)
    (0.1, 0.05, 0.0, 0.0)
    >>> w = ln.CosineDecay(0.0001, 100, warmup_target=0.1, warmup_steps=10)
    >>> round(w(5), 6), w(10)
    (0.05005, 0.1)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "CosineDecay",
        warmup_target: float | None = None,
        warmup_steps: int = 0,
    ) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _lr(
            initial_learning_rate, "initial_learning_rate", owner, positive=True
        )
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", owner)
        self.alpha = check_number(alpha, "alpha", owner, low=0.0)
        self.name = _name(name, owner)
        self.warmup_target = (
            None if warmup_target is None else _lr(warmup_target, "warmup_target", owner)
        )
        if isinstance(warmup_steps, bool) or not (is_real(warmup_steps) and warmup_steps >= 0):
            raise ValueError(
                f"{owner}: invalid value for `warmup_steps`: expected an int >= 0, "
                f"received {warmup_steps!r}."
            )
        self.warmup_steps = int(warmup_steps)

    def _decay(self, step: float, start: float) -> float:
        frac = min(step, self.decay_steps) / self.decay_steps
        cos = 0.5 * (1 + math.cos(math.pi * frac))
        return start * (self.alpha + (1 - self.alpha) * cos)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(step, self.initial_learning_rate)
        s = min(_step(step, type(self).__name__), self.decay_steps + self.warmup_steps)
        if s < self.warmup_steps:
            delta = self.warmup_target - self.initial_learning_rate
            return delta * (s / self.warmup_steps) + self.initial_learning_rate
        return self._decay(s - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(LearningRateSchedule):
    r"""Cosine decay with warm restarts (SGDR, Loshchilov & Hutter, 2017).

    Parameters
    ----------
    initial_learning_rate : float
        The rate :math:`\eta_0` at step 0; a finite number >= 0.
    first_decay_steps : int
        Length :math:`T_0` of the first period; a positive int.
    t_mul : float, default 2.0
        Each period is :math:`t_{mul}` times longer than the one before; > 0.
    m_mul : float, default 1.0
        Each restart starts from :math:`m_{mul}` times the previous start; >= 0.
    alpha : float, default 0.0
        Final rate of each period as a fraction of its start; >= 0.
    name : str, default "SGDRDecay"
        Kept in the config, as Keras does.

    Raises
    ------
    ValueError
        ``CosineDecayRestarts: invalid value for `first_decay_steps`: expected a
        positive int, ...``; the same form for the other arguments.

    Notes
    -----
    With :math:`f = t/T_0`, the period index :math:`i` and the fraction
    :math:`c \in [0, 1)` of it already done are :math:`i = \lfloor f\rfloor`,
    :math:`c = f - i` when :math:`t_{mul} = 1`, otherwise

    .. math::

        i = \Big\lfloor \frac{\log(1 - f(1 - t_{mul}))}{\log t_{mul}} \Big\rfloor,\qquad
        c = \Big(f - \frac{1 - t_{mul}^i}{1 - t_{mul}}\Big) \Big/ t_{mul}^i,

    and :math:`\eta_t = \eta_0\big(\alpha + (1-\alpha)\, m_{mul}^i\,
    \tfrac12(1 + \cos \pi c)\big)`.

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules.CosineDecayRestarts(0.1, first_decay_steps=10)
    >>> s(0), round(s(5), 6), s(10), s(30)
    (0.1, 0.05, 0.1, 0.1)
    """

    def __init__(
        self,
        initial_learning_rate: float,
        first_decay_steps: int,
        t_mul: float = 2.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        name: str = "SGDRDecay",
    ) -> None:
        owner = type(self).__name__
        self.initial_learning_rate = _lr(initial_learning_rate, "initial_learning_rate", owner)
        self.first_decay_steps = check_positive_int(first_decay_steps, "first_decay_steps", owner)
        self.t_mul = check_number(t_mul, "t_mul", owner, low=0.0, low_open=True)
        self.m_mul = check_number(m_mul, "m_mul", owner, low=0.0)
        self.alpha = check_number(alpha, "alpha", owner, low=0.0)
        self.name = _name(name, owner)

    def __call__(self, step: int) -> float:
        frac = _step(step, type(self).__name__) / self.first_decay_steps
        if self.t_mul == 1.0:
            i = math.floor(frac)
            frac -= i
        else:
            i = math.floor(math.log(1.0 - frac * (1.0 - self.t_mul)) / math.log(self.t_mul))
            done = (1.0 - self.t_mul**i) / (1.0 - self.t_mul)
            frac = (frac - done) / self.t_mul**i
        cos = 0.5 * self.m_mul**i * (1.0 + math.cos(math.pi * frac))
        return self.initial_learning_rate * ((1 - self.alpha) * cos + self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


#: The schedules that model files store, by class name.
SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (
        StepDecay,
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def serialize(schedule: LearningRateSchedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a schedule of this module.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.optimizers.schedules.serialize(ln.StepDecay(0.1, 5, gamma=0.5))["config"]
    {'initial_learning_rate': 0.1, 'step_size': 5, 'gamma': 0.5}
    """
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def _plain(value: Any) -> bool:
    """JSON scalars and lists of numbers: what a schedule's config may hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


def deserialize(config: dict[str, Any]) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output (only this module's schedules).

    Raises
    ------
    ValueError
        ``unknown learning-rate schedule ...`` for anything else, or the
        schedule's own message for a config it refuses.

    Examples
    --------
    >>> import layernet as ln
    >>> s = ln.optimizers.schedules
    >>> s.deserialize(s.serialize(s.ExponentialDecay(0.1, 10, 0.9)))(10)
    0.09000000000000001
    """
    cls = SCHEDULES.get(str(config.get("class_name"))) if isinstance(config, dict) else None
    cfg = config.get("config") if isinstance(config, dict) else None
    if cls is None or not isinstance(cfg, dict) or not all(_plain(v) for v in cfg.values()):
        raise ValueError(f"unknown learning-rate schedule {config!r:.200}")
    try:
        return cls.from_config(cfg)
    except TypeError as exc:
        raise ValueError(f"malformed learning-rate schedule {config!r:.200}: {exc}") from None


__all__ = [
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "InverseTimeDecay",
    "LearningRateSchedule",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "StepDecay",
    "deserialize",
    "serialize",
]
