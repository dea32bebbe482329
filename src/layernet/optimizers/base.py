r"""The optimizer base class: learning rate, clipping, weight decay, EMA and step counting."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from .._validation import check_bool, check_number, is_int, is_real
from .schedules import SCHEDULES, deserialize, serialize

LearningRate = float | Callable[[int], float]


def check_rate(
    value: Any, arg: str, owner: str, *, low: float = 0.0, low_open: bool = False, high=None
) -> float:
    """A finite float within ``[low, high)`` (``(low, high)`` with ``low_open``)."""
    return check_number(
        value, arg, owner, low=low, low_open=low_open, high=high, high_open=high is not None
    )


def _optional(value: Any, arg: str, owner: str) -> float | None:
    return None if value is None else check_number(value, arg, owner, low=0.0)


class Optimizer:
    r"""Base class of optimizers: learning rate, clipping, weight decay, EMA and state.

    A subclass implements ``_update(key, param, grad, lr)``, which changes
    ``param`` in place from one (already clipped) gradient. :meth:`step` clips
    the gradients, applies the weight decay, calls ``_update`` for every
    parameter, updates the moving average of the weights and counts the step.
    A model calls :meth:`step` once per batch; ``compile`` accepts an instance
    or a name (``"sgd"``, ``"adam"``, ``"rmsprop"``, ...; see
    :func:`layernet.optimizers.get`). Custom training loops use Keras's
    :meth:`apply_gradients` or :meth:`apply` on NumPy arrays instead.
    Importable as ``ln.optimizers.Optimizer``.

    Parameters
    ----------
    learning_rate : float or callable
        A finite float > 0, or a schedule (a
        :class:`~layernet.optimizers.schedules.LearningRateSchedule`, or any
        callable) mapping the step count 0, 1, 2, ... to one.
    weight_decay : float, optional
        Decay coefficient :math:`\lambda \ge 0`; ``None`` or 0 for none. Keras's
        decoupled form: before the update every parameter shrinks as
        :math:`\theta \leftarrow \theta - \eta_t\lambda\theta`. (:class:`~layernet.SGD` and
        :class:`~layernet.Adam` keep layernet's earlier form, an L2 term
        :math:`\lambda\theta` added to the gradient, as PyTorch's.)
    clipnorm : float, optional
        Clip each gradient to this L2 norm: :math:`g \leftarrow g\,c/\max(\|g\|, c)`.
    clipvalue : float, optional
        Clip each gradient entry to :math:`[-c, c]`.
    global_clipnorm : float, optional
        Scale all gradients together so that the norm of their concatenation is
        at most :math:`c`: :math:`g_i \leftarrow g_i\,c/\max(\|(g_1, g_2,
        \dots)\|, c)`. At most one of the three clipping options may be set; a
        value of 0 means no clipping, as in Keras.
    use_ema : bool, default False
        Keep an exponential moving average of every parameter (the optimizer
        state ``"average"``), updated after each step.
    ema_momentum : float, default 0.99
        Momentum :math:`\mu \in [0, 1]` of that average.
    ema_overwrite_frequency : int, optional
        With ``use_ema``, copy the averages into the parameters every this many
        steps; ``None`` leaves that to :meth:`finalize_variable_values`.

    Attributes
    ----------
    iterations : int
        Number of steps taken; the step count a schedule is called with.
    state : dict of str to dict of str to ndarray
        Per-parameter buffers (momentum, moment estimates, averages) by parameter
        key, each of the parameter's shape. Model files store them with
        :attr:`iterations`, so that a loaded model resumes bit for bit.

    Raises
    ------
    ValueError
        ``<Optimizer>: invalid value for `learning_rate`: expected a finite number
        > 0, ...``, the same form for ``weight_decay``, ``clipnorm``,
        ``clipvalue``, ``global_clipnorm`` (``>= 0``), ``ema_momentum`` (in
        ``[0, 1]``) and ``ema_overwrite_frequency`` (a positive int); ``<Optimizer>:
        only one of `clipnorm`, `clipvalue` and `global_clipnorm` may be set, ...``.

    See Also
    --------
    layernet.SGD, layernet.Adam, layernet.RMSprop

    Notes
    -----
    One step, with :math:`\eta_t` the learning rate at step :math:`t`
    (``iterations``):

    1. clip the gradients (``clipnorm``, ``clipvalue`` or ``global_clipnorm``);
    2. decay: :math:`\theta \leftarrow \theta - \eta_t\lambda\theta`;
    3. the subclass's rule updates :math:`\theta` from :math:`g`;
    4. with ``use_ema``: :math:`a \leftarrow \mu' a + (1-\mu')\theta`, where
       :math:`\mu' = 0` at the first step and :math:`\mu` afterwards; every
       ``ema_overwrite_frequency`` steps :math:`\theta \leftarrow a`;
    5. :math:`t \leftarrow t + 1`.

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

    Keras's custom-loop interface updates arrays in place:

    >>> w = np.array([1.0, 2.0])
    >>> sgd = ln.SGD(learning_rate=0.1)
    >>> sgd.apply_gradients([(np.array([1.0, -1.0]), w)])
    >>> w, sgd.iterations
    (array([0.9, 2.1]), 1)
    """

    name = "optimizer"
    #: Whether ``weight_decay`` is Keras's decoupled decay (else an L2 term in the gradient).
    decoupled_weight_decay: ClassVar[bool] = True

    def __init__(
        self,
        learning_rate: LearningRate,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
    ) -> None:
        owner = type(self).__name__
        self.learning_rate = learning_rate
        self.weight_decay = (
            0.0 if weight_decay is None else check_rate(weight_decay, "weight_decay", owner)
        )
        self.clipnorm = _optional(clipnorm, "clipnorm", owner)
        self.clipvalue = _optional(clipvalue, "clipvalue", owner)
        self.global_clipnorm = _optional(global_clipnorm, "global_clipnorm", owner)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            given = ", ".join(f"{k}={v!r}" for k, v in clips.items() if v is not None)
            raise ValueError(
                f"{owner}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` may be "
                f"set, received {given}."
            )
        self.use_ema = check_bool(use_ema, "use_ema", owner)
        self.ema_momentum = check_number(ema_momentum, "ema_momentum", owner, low=0.0, high=1.0)
        if ema_overwrite_frequency is not None and not (
            is_int(ema_overwrite_frequency) and ema_overwrite_frequency >= 1
        ):
            raise ValueError(
                f"{owner}: invalid value for `ema_overwrite_frequency`: expected a positive "
                f"int or None, received {ema_overwrite_frequency!r}."
            )
        self.ema_overwrite_frequency = (
            None if ema_overwrite_frequency is None else int(ema_overwrite_frequency)
        )
        self.iterations = 0
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self._variables: list[np.ndarray] = []  # for apply/apply_gradients, by position

    # ----------------------------------------------------------- learning rate
    @property
    def learning_rate(self) -> LearningRate:
        """The learning rate as given: a float or a schedule (settable).

        Setting it checks the value as the constructor does. The value the next
        step uses is :attr:`current_learning_rate`.
        """
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: LearningRate) -> None:
        if not callable(value):
            value = check_rate(value, "learning_rate", type(self).__name__, low_open=True)
        self._learning_rate = value

    @property
    def current_learning_rate(self) -> float:
        """The learning rate the next step will use.

        Raises
        ------
        ValueError
            If a schedule returns something other than a finite number
            (``<Optimizer>: the learning-rate schedule returned ... at step ...``).
        """
        lr = self._learning_rate
        value = lr(self.iterations) if callable(lr) else lr
        if not (is_real(value) and math.isfinite(value)):
            raise ValueError(
                f"{type(self).__name__}: the learning-rate schedule returned "
                f"{value!r} at step {self.iterations}; expected a finite float."
            )
        return float(value)

    # -------------------------------------------------------------------- step
    def step(self, params_and_grads: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Update every parameter in place from its gradient; advance the step count.

        Parameters
        ----------
        params_and_grads : dict of str to (ndarray, ndarray)
            ``{key: (param, grad)}``; each ``param`` is changed in place, the
            gradients are left alone. The key names the optimizer's state for
            that parameter, so it must stay the same from step to step (a model
            uses ``"<layer index>.<layer name>.<param name>"``).

        Raises
        ------
        ValueError
            If the learning-rate schedule returns a non-finite value (see
            :attr:`current_learning_rate`).
        """
        lr = self.current_learning_rate
        items = list(params_and_grads.items())
        grads = self._clip([g for _, (_, g) in items])
        for (key, (p, _)), g in zip(items, grads, strict=True):
            if self.weight_decay:
                if self.decoupled_weight_decay:
                    p -= (p * self.weight_decay * lr).astype(p.dtype, copy=False)
                else:
                    g = g + self.weight_decay * p
            self._update(key, p, g, lr)
        if self.use_ema:
            self._update_average(items)
        self.iterations += 1

    def _clip(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clipnorm:
            c = self.clipnorm
            out = []
            for g in grads:
                norm = float(np.sqrt(np.sum(np.square(g, dtype=np.float64))))
                out.append(g * (c / max(norm, c)))
            return out
        if self.global_clipnorm:
            c = self.global_clipnorm
            norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
            scale = c / max(norm, c) if math.isfinite(norm) else math.nan
            return [g * scale for g in grads]
        if self.clipvalue:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _update_average(self, items: list[tuple[str, tuple[np.ndarray, np.ndarray]]]) -> None:
        mu = self.ema_momentum if self.iterations else 0.0
        overwrite = bool(self.ema_overwrite_frequency) and (
            (self.iterations + 1) % int(self.ema_overwrite_frequency or 1) == 0
        )
        for key, (p, _) in items:
            avg = self._slot(key, "average", p)
            avg *= mu
            avg += (1 - mu) * p
            if overwrite:
                p[...] = avg

    def _update(self, key: str, p: np.ndarray, g: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    @property
    def slot_names(self) -> tuple[str, ...]:
        """The names of the state arrays this optimizer keeps for every parameter it updates.

        Each has the shape and dtype of its parameter. Model files store them,
        and loading refuses state arrays under other names, or a parameter
        holding only some of them. They are found by one update of a throwaway
        copy of the optimizer on a one-entry parameter.

        Examples
        --------
        >>> import layernet as ln
        >>> ln.Adam().slot_names, ln.SGD(momentum=0.9).slot_names, ln.SGD().slot_names
        (('m', 'v'), ('velocity',), ())
        >>> ln.RMSprop(momentum=0.9, centered=True).slot_names
        ('average_gradient', 'momentum', 'velocity')
        """
        probe = copy.copy(self)
        probe.state = {}
        p = np.zeros(1)
        probe._update("probe", p, np.ones(1), 1e-3)
        names = set(probe.state.get("probe", {}))
        if self.use_ema:
            names.add("average")
        return tuple(sorted(names))

    def _slot(self, key: str, name: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``name`` of parameter ``key``, created as ``fill`` on first use."""
        slots = self.state.setdefault(key, {})
        if name not in slots:
            slots[name] = np.full_like(like, fill) if fill else np.zeros_like(like)
        return slots[name]

    # ------------------------------------------------------ Keras's custom loops
    def build(self, variables: Sequence[np.ndarray]) -> None:
        """Register the arrays that :meth:`apply` and :meth:`apply_gradients` update.

        Called by the first :meth:`apply`; the state of the ``i``-th array is
        kept under the key ``"variable_<i>"``.

        Parameters
        ----------
        variables : sequence of ndarray
            Writable floating-point arrays (updated in place).

        Raises
        ------
        TypeError
            ``<Optimizer>: expected `variables` to be writable float ndarrays, ...``.
        """
        variables = list(variables)
        for v in variables:
            self._check_variable(v)
        self._variables = variables

    def _check_variable(self, v: Any) -> None:
        if not (isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.flags.writeable):
            raise TypeError(
                f"{type(self).__name__}: expected `variables` to be writable float ndarrays "
                f"(updated in place), received {type(v).__name__}"
                f"{'' if not isinstance(v, np.ndarray) else ' of dtype ' + str(v.dtype)}."
            )

    def _key(self, v: np.ndarray) -> str:
        for i, known in enumerate(self._variables):
            if known is v:
                return f"variable_{i}"
        raise ValueError(
            f"{type(self).__name__}: unknown variable of shape {v.shape}: this optimizer was "
            f"built on {len(self._variables)} other arrays; use one optimizer per set of "
            f"variables."
        )

    def apply(
        self, grads: Sequence[np.ndarray | None], variables: Sequence[np.ndarray] | None = None
    ) -> None:
        """Update ``variables`` in place from ``grads`` (Keras's ``optimizer.apply``).

        Parameters
        ----------
        grads : sequence of ndarray or None
            One gradient per variable, each of its shape; ``None`` skips that
            variable.
        variables : sequence of ndarray, optional
            The arrays to update; the first call registers them (see
            :meth:`build`), later calls may leave them out or pass the same
            arrays (or some of them).

        Raises
        ------
        ValueError
            Unknown variables, a gradient whose shape is not its variable's, or
            a different number of gradients and variables.
        TypeError
            Variables that are not writable float arrays.
        """
        owner = type(self).__name__
        if variables is None:
            if not self._variables:
                raise ValueError(
                    f"{owner}: pass `variables` on the first call to apply() (or call "
                    f"build(variables) first)."
                )
            variables = self._variables
        variables = list(variables)
        grads = list(grads)
        if len(grads) != len(variables):
            raise ValueError(
                f"{owner}: expected one gradient per variable, received {len(grads)} "
                f"gradients for {len(variables)} variables."
            )
        if not self._variables:
            self.build(variables)
        pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for g, v in zip(grads, variables, strict=True):
            self._check_variable(v)
            key = self._key(v)
            if g is None:
                continue
            g = np.asarray(g)
            if g.shape != v.shape:
                raise ValueError(
                    f"{owner}: expected a gradient of shape {v.shape} (its variable's), "
                    f"received shape {g.shape}."
                )
            pairs[key] = (v, g.astype(v.dtype, copy=False))
        self.step(pairs)

    def apply_gradients(
        self, grads_and_vars: Iterable[tuple[np.ndarray | None, np.ndarray]]
    ) -> None:
        """Update variables in place from ``(gradient, variable)`` pairs (Keras's name).

        Parameters
        ----------
        grads_and_vars : iterable of (ndarray or None, ndarray)
            As :meth:`apply` takes them, zipped.

        Raises
        ------
        ValueError, TypeError
            As :meth:`apply`.
        """
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def finalize_variable_values(
        self, variables: dict[str, np.ndarray] | Sequence[np.ndarray]
    ) -> None:
        """With ``use_ema``, copy the moving averages into the parameters (else nothing).

        Parameters
        ----------
        variables : dict of str to ndarray, or sequence of ndarray
            ``{key: param}`` with the keys that :meth:`step` was given (a model's
            trainer), or the arrays given to :meth:`apply`.
        """
        if not self.use_ema:
            return
        pairs = (
            variables.items()
            if isinstance(variables, dict)
            else [(self._key(v), v) for v in variables]
        )
        for key, p in pairs:
            avg = self.state.get(key, {}).get("average")
            if avg is not None:
                p[...] = avg

    # ----------------------------------------------------------- configuration
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a dict (model files store optimizers by these).

        Returns
        -------
        dict
            ``learning_rate``, ``weight_decay``, the clipping and EMA options and
            the subclass's arguments. A schedule from
            :mod:`layernet.optimizers.schedules` appears as ``{"class_name": ...,
            "config": ...}``, any other callable as its ``repr`` (and then
            :attr:`serializable` is false).
        """
        lr = self._learning_rate
        if isinstance(lr, float):
            value: Any = lr
        elif type(lr) in SCHEDULES.values():
            value = serialize(lr)  # type: ignore[arg-type]
        else:
            value = repr(lr)
        return {
            "learning_rate": value,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuild an optimizer of this class from :meth:`get_config`'s output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize(config["learning_rate"])
        return cls(**config)

    @property
    def serializable(self) -> bool:
        """Whether a model file can store this optimizer (no arbitrary callables)."""
        return not isinstance(self.get_config()["learning_rate"], str)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
