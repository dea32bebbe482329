r"""Weight constraints: projections applied to a parameter after every optimizer step.

Layers take them as ``kernel_constraint`` and ``bias_constraint`` (objects or
names), with Keras's names, defaults and definitions; the trainer calls
:meth:`layernet.layers.Layer.apply_constraints` after each step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_number, is_int

#: The epsilon Keras adds to norms before dividing by them.
EPSILON = 1e-7

Axis = int | list[int] | tuple[int, ...]


def _axis(axis: Any, owner: str) -> int | tuple[int, ...]:
    if is_int(axis):
        return int(axis)
    if isinstance(axis, list | tuple) and axis and all(is_int(a) for a in axis):
        return tuple(int(a) for a in axis)
    raise ValueError(
        f"{owner}: invalid value for `axis`: expected an int or a list of ints, received {axis!r}."
    )


def _norms(w: np.ndarray, axis: int | tuple[int, ...], owner: str) -> np.ndarray:
    axes = (axis,) if isinstance(axis, int) else axis
    if any(not -w.ndim <= a < w.ndim for a in axes):
        raise ValueError(
            f"{owner}: `axis`={axis!r} is out of range for an array of shape {w.shape}."
        )
    return np.sqrt(np.sum(np.square(w), axis=axis, keepdims=True))


class Constraint:
    r"""Base class of constraints: ``constraint(w)`` returns the projected array.

    A subclass implements ``__call__(w) -> ndarray`` (the same shape and dtype)
    and ``get_config()``. The base class is the identity.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> class Clip(ln.constraints.Constraint):
    ...     def __call__(self, w):
    ...         return np.clip(w, -1, 1)
    >>> Clip()(np.array([-3.0, 0.5]))
    array([-1. ,  0.5])
    """

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return w

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (layer configs store constraints by these)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        """Rebuild a constraint from :meth:`get_config`'s output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Constraint)
            and type(self) is type(other)
            and (self.get_config() == other.get_config())
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self.get_config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class MaxNorm(Constraint):
    r"""Scale down the slices of ``w`` whose L2 norm over ``axis`` exceeds ``max_value``.

    Parameters
    ----------
    max_value : float, default 2
        Largest norm :math:`c \ge 0`.
    axis : int or list of int, default 0
        The axes the norm runs over (Keras's default 0: for a Dense kernel of
        shape ``(in, units)``, the weight vector of each unit; use ``[0, 1, 2]``
        for a 2-D convolution kernel).

    Raises
    ------
    ValueError
        ``MaxNorm: invalid value for `max_value`: expected a finite number >= 0,
        ...`` or ``MaxNorm: invalid value for `axis`: ...``.

    Notes
    -----
    With :math:`n = \|w\|_{\text{axis}}` and :math:`\epsilon = 10^{-7}`:

    .. math:: w \leftarrow w\,\frac{\min(n, c)}{\epsilon + n}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> np.round(ln.constraints.MaxNorm(1.0)(np.array([[3.0, 0.1], [4.0, 0.2]])), 4)
    array([[0.6, 0.1],
           [0.8, 0.2]])
    """

    def __init__(self, max_value: float = 2, axis: Axis = 0) -> None:
        owner = type(self).__name__
        self.max_value = check_number(max_value, "max_value", owner, low=0.0)
        self.axis = _axis(axis, owner)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis, type(self).__name__)
        desired = np.clip(norms, 0, self.max_value)
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": _plain(self.axis)}


class MinMaxNorm(Constraint):
    r"""Move the L2 norm over ``axis`` of each slice of ``w`` into ``[min_value, max_value]``.

    Parameters
    ----------
    min_value : float, default 0.0
        Smallest norm :math:`a \ge 0`.
    max_value : float, default 1.0
        Largest norm :math:`b \ge a`.
    rate : float, default 1.0
        :math:`r \in [0, 1]`: how far to move towards the interval per call
        (1 projects exactly).
    axis : int or list of int, default 0
        The axes the norm runs over, as for :class:`MaxNorm`.

    Raises
    ------
    ValueError
        ``MinMaxNorm: invalid value for `max_value`: expected a finite number >=
        <min_value>, ...``; the same form for the other arguments.

    Notes
    -----
    .. math::

        w \leftarrow w\,\frac{r\,\operatorname{clip}(n, a, b) + (1 - r)\,n}{\epsilon + n},
        \qquad n = \|w\|_{\text{axis}},\ \epsilon = 10^{-7}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> w = ln.constraints.MinMaxNorm(1.0, 2.0)(np.array([[0.3], [0.4]]))
    >>> np.round(np.linalg.norm(w), 5)
    np.float64(1.0)
    """

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: Axis = 0
    ) -> None:
        owner = type(self).__name__
        self.min_value = check_number(min_value, "min_value", owner, low=0.0)
        self.max_value = check_number(max_value, "max_value", owner, low=self.min_value)
        self.rate = check_number(rate, "rate", owner, low=0.0, high=1.0)
        self.axis = _axis(axis, owner)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis, type(self).__name__)
        desired = (
            self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        )
        return (w * (desired / (EPSILON + norms))).astype(w.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": _plain(self.axis),
        }


class NonNeg(Constraint):
    r"""Set negative entries to zero: :math:`w \leftarrow \max(w, 0)`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.constraints.NonNeg()(np.array([-1.0, 2.0]))
    array([0., 2.])
    """

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return np.maximum(w, 0).astype(w.dtype, copy=False)


class UnitNorm(Constraint):
    r"""Scale each slice of ``w`` to unit L2 norm over ``axis``.

    Parameters
    ----------
    axis : int or list of int, default 0
        The axes the norm runs over, as for :class:`MaxNorm`.

    Raises
    ------
    ValueError
        ``UnitNorm: invalid value for `axis`: ...``.

    Notes
    -----
    .. math:: w \leftarrow \frac{w}{\epsilon + \|w\|_{\text{axis}}},\qquad \epsilon = 10^{-7}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> np.round(ln.constraints.UnitNorm()(np.array([[3.0], [4.0]])), 4)
    array([[0.6],
           [0.8]])
    """

    def __init__(self, axis: Axis = 0) -> None:
        self.axis = _axis(axis, type(self).__name__)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        norms = _norms(w, self.axis, type(self).__name__)
        return (w / (EPSILON + norms)).astype(w.dtype, copy=False)

    def get_config(self) -> dict[str, Any]:
        return {"axis": _plain(self.axis)}


def _plain(axis: int | tuple[int, ...]) -> int | list[int]:
    return axis if isinstance(axis, int) else list(axis)


#: Keras's lowercase aliases.
max_norm = MaxNorm
min_max_norm = MinMaxNorm
non_neg = NonNeg
unit_norm = UnitNorm

#: Constraint classes by Keras name (class names and lowercase aliases).
CONSTRAINTS: dict[str, type[Constraint]] = {
    "MaxNorm": MaxNorm,
    "MinMaxNorm": MinMaxNorm,
    "NonNeg": NonNeg,
    "UnitNorm": UnitNorm,
    "max_norm": MaxNorm,
    "min_max_norm": MinMaxNorm,
    "non_neg": NonNeg,
    "unit_norm": UnitNorm,
}


def serialize(constraint: Constraint | None) -> dict[str, Any] | None:
    """What a layer's config stores: ``None``, or ``{"module", "class_name", "config"}``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.constraints.serialize(ln.constraints.NonNeg())
    {'module': 'layernet.constraints', 'class_name': 'NonNeg', 'config': {}}
    """
    if constraint is None:
        return None
    return {
        "module": "layernet.constraints",
        "class_name": type(constraint).__name__,
        "config": constraint.get_config(),
    }


def get(
    identifier: Any, owner: str = "constraints.get", arg: str = "identifier"
) -> Constraint | None:
    """A constraint from ``None``, a name, a serialised dict or an instance (Keras's ``get``).

    Parameters
    ----------
    identifier : None, str, dict or Constraint
        ``None`` (no constraint); a name (``"max_norm"``, ``"min_max_norm"``,
        ``"non_neg"``, ``"unit_norm"`` or a class name), which gives Keras's
        defaults; a dict as :func:`serialize` writes it (``"module"`` optional);
        or an instance, returned as it is.
    owner, arg : str
        Who asks and for which argument, for the error message.

    Returns
    -------
    Constraint or None

    Raises
    ------
    ValueError
        ``<owner>: invalid value for `<arg>`: expected one of [...], a Constraint
        or None, received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.constraints.get("max_norm")
    MaxNorm(max_value=2.0, axis=0)
    """
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str) and identifier in CONSTRAINTS:
        return CONSTRAINTS[identifier]()
    if (
        isinstance(identifier, dict)
        and {"class_name", "config"} <= set(identifier) <= {"module", "class_name", "config"}
        and identifier.get("module", "layernet.constraints") == "layernet.constraints"
        and identifier["class_name"] in CONSTRAINTS
        and isinstance(identifier["config"], dict)
    ):
        return CONSTRAINTS[identifier["class_name"]].from_config(identifier["config"])
    raise ValueError(
        f"{owner}: invalid value for `{arg}`: expected one of {sorted(CONSTRAINTS)}, a "
        f"Constraint or None, received {identifier!r:.200}."
    )


__all__ = [
    "Constraint",
    "MaxNorm",
    "MinMaxNorm",
    "NonNeg",
    "UnitNorm",
    "get",
    "max_norm",
    "min_max_norm",
    "non_neg",
    "serialize",
    "unit_norm",
]
