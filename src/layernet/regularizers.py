r"""Weight and activity regularizers: penalties added to the loss, with their gradients.

A regularizer maps an array :math:`x` (a parameter, or a layer's output) to a
penalty :math:`R(x)` that the trainer adds to the loss, and gives its
derivative :math:`\partial R/\partial x` so that the gradient of the penalty
can be added to the parameter's (or the output's) gradient. Layers take them
as ``kernel_regularizer``, ``bias_regularizer`` and ``activity_regularizer``
(objects or names), with Keras's names and definitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import check_number

#: The epsilon Keras uses in its normalisations.
EPSILON = 1e-7


def _factor(value: Any, arg: str, owner: str) -> float:
    return check_number(value, arg, owner, low=0.0)


def _array(x: Any, owner: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{owner}: expected a real numeric array, received dtype {a.dtype}.")
    return a


class Regularizer:
    r"""Base class of regularizers: a penalty :math:`R(x)` and its gradient.

    A subclass implements ``__call__(x) -> float``, ``gradient(x) -> ndarray``
    (the derivative :math:`\partial R/\partial x`, of ``x``'s shape) and
    ``get_config()``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> class Sum(ln.regularizers.Regularizer):
    ...     def __call__(self, x):
    ...         return float(np.sum(x))
    ...     def gradient(self, x):
    ...         return np.ones_like(x)
    >>> Sum()(np.array([1.0, 2.0])), Sum().gradient(np.array([1.0, 2.0]))
    (3.0, array([1., 1.]))
    """

    def __call__(self, x: np.ndarray) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(x).")

    def gradient(self, x: np.ndarray) -> np.ndarray:
        r"""The derivative :math:`\partial R/\partial x`, an array of ``x``'s shape and dtype."""
        raise NotImplementedError(f"{type(self).__name__} must implement gradient(x).")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (layer configs store regularizers by these)."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Rebuild a regularizer from :meth:`get_config`'s output."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Regularizer)
            and type(self) is type(other)
            and (self.get_config() == other.get_config())
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    r"""The sum of an L1 and an L2 penalty: :math:`\ell_1\sum|x| + \ell_2\sum x^2`.

    Parameters
    ----------
    l1 : float, default 0.0
        :math:`\ell_1 \ge 0`.
    l2 : float, default 0.0
        :math:`\ell_2 \ge 0`.

    Raises
    ------
    ValueError
        ``L1L2: invalid value for `l1`: expected a finite number >= 0, ...``
        (likewise for ``l2``).

    Notes
    -----
    .. math::

        R(x) = \ell_1 \sum_i |x_i| + \ell_2 \sum_i x_i^2,\qquad
        \frac{\partial R}{\partial x_i} = \ell_1 \operatorname{sign}(x_i) + 2\ell_2 x_i

    (with :math:`\operatorname{sign}(0) = 0`, as in TensorFlow and PyTorch; JAX's
    derivative of :math:`|x|` is 1 at 0).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> r = ln.regularizers.L1L2(l1=0.1, l2=0.5)
    >>> r(np.array([1.0, -2.0]))
    2.8
    >>> r.gradient(np.array([1.0, -2.0]))
    array([ 1.1, -2.1])
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        owner = type(self).__name__
        self.l1 = _factor(l1, "l1", owner)
        self.l2 = _factor(l2, "l2", owner)

    def __call__(self, x: np.ndarray) -> float:
        x = _array(x, type(self).__name__)
        out = 0.0
        if self.l1:
            out += self.l1 * float(np.sum(np.abs(x), dtype=np.float64))
        if self.l2:
            out += self.l2 * float(np.sum(np.square(x, dtype=np.float64)))
        return out

    def gradient(self, x: np.ndarray) -> np.ndarray:
        x = _array(x, type(self).__name__)
        g = np.zeros_like(x, dtype=np.result_type(x.dtype, np.float32))
        if self.l1:
            g += self.l1 * np.sign(x)
        if self.l2:
            g += 2 * self.l2 * x
        return g

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    r"""L1 penalty :math:`\ell_1\sum_i|x_i|` (Keras's default :math:`\ell_1 = 0.01`).

    Parameters
    ----------
    l1 : float, default 0.01
        :math:`\ell_1 \ge 0`.

    Raises
    ------
    ValueError
        ``L1: invalid value for `l1`: expected a finite number >= 0, ...``.

    Notes
    -----
    .. math:: R(x) = \ell_1\sum_i |x_i|,\qquad
        \frac{\partial R}{\partial x_i} = \ell_1\operatorname{sign}(x_i).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.regularizers.L1(0.5)(np.array([1.0, -3.0]))
    2.0
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    r"""L2 penalty :math:`\ell_2\sum_i x_i^2` (Keras's default :math:`\ell_2 = 0.01`).

    Parameters
    ----------
    l2 : float, default 0.01
        :math:`\ell_2 \ge 0`.

    Raises
    ------
    ValueError
        ``L2: invalid value for `l2`: expected a finite number >= 0, ...``.

    Notes
    -----
    .. math:: R(x) = \ell_2\sum_i x_i^2,\qquad \frac{\partial R}{\partial x_i} = 2\ell_2 x_i.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.regularizers.L2(0.5)(np.array([1.0, -3.0]))
    5.0
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    r"""Penalise non-orthogonal rows (or columns) of a 2-D array (Keras's definition).

    Parameters
    ----------
    factor : float, default 0.01
        :math:`f \ge 0`.
    mode : {"rows", "columns"}, default "rows"
        Which vectors should be orthogonal: the rows of :math:`W` or its columns
        (for a Dense kernel of shape ``(in, units)``, ``"columns"`` makes the
        units' weight vectors orthogonal).

    Raises
    ------
    ValueError
        ``OrthogonalRegularizer: invalid value for `mode`: expected 'rows' or
        'columns', ...``; on a call, an input that is not 2-D.

    Notes
    -----
    In ``"rows"`` mode, with :math:`u_i = w_i/\|w_i\|` the normalised rows
    (:math:`w_i\min(1/\|w_i\|, 10^7)`), :math:`P = UU^T` and :math:`n` rows:

    .. math::

        R(W) = \frac{f}{n(n-1)} \sum_{i\ne j} |P_{ij}|,\qquad
        \frac{\partial R}{\partial U} = \frac{2f}{n(n-1)}\, S U,\quad
        S_{ij} = \operatorname{sign}(P_{ij})\,[i \ne j],

    .. math::

        \frac{\partial R}{\partial w_i} = \frac{1}{\|w_i\|}
            \Big(I - u_i u_i^T\Big)\frac{\partial R}{\partial u_i}.

    ``"columns"`` is the same on :math:`W^T`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> r = ln.regularizers.OrthogonalRegularizer(factor=1.0)
    >>> r(np.eye(3)), r(np.array([[1.0, 0.0], [1.0, 0.0]]))
    (0.0, 1.0)
    """

    def __init__(self, factor: float = 0.01, mode: str = "rows") -> None:
        owner = type(self).__name__
        self.factor = _factor(factor, "factor", owner)
        if mode not in ("rows", "columns"):
            raise ValueError(
                f"{owner}: invalid value for `mode`: expected 'rows' or 'columns', "
                f"received {mode!r}."
            )
        self.mode = mode

    def _parts(self, x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = _array(x, type(self).__name__)
        if x.ndim != 2:
            raise ValueError(
                f"{type(self).__name__}: expected a 2-D array, received shape {x.shape}."
            )
        w = np.asarray(x, dtype=np.float64)
        w = w if self.mode == "rows" else w.T
        inv = np.minimum(
            1.0 / np.sqrt(np.maximum(np.sum(w * w, axis=1)[:, None], 0.0)), 1 / EPSILON
        )
        return w, inv, w * inv

    def __call__(self, x: np.ndarray) -> float:
        _, _, u = self._parts(x)
        n = u.shape[0]
        if n < 2:
            return 0.0
        product = u @ u.T
        np.fill_diagonal(product, 0.0)
        return float(self.factor * np.sum(np.abs(product)) / (n * (n - 1)))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        w, inv, u = self._parts(x)
        n = u.shape[0]
        out = np.zeros_like(w)
        if n >= 2:
            s = np.sign(u @ u.T)
            np.fill_diagonal(s, 0.0)
            du = (2 * self.factor / (n * (n - 1))) * (s @ u)
            clipped = inv[:, 0] >= 1 / EPSILON  # tiny rows: u = w / eps, linear in w
            radial = np.sum(du * u, axis=1, keepdims=True) * u
            out = np.where(clipped[:, None], du * inv, (du - radial) * inv)
        out = out if self.mode == "rows" else out.T
        dtype = np.asarray(x).dtype
        return out.astype(dtype if dtype.kind == "f" else np.float64)

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "mode": self.mode}


#: Keras's lowercase aliases.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

#: Regularizer classes by Keras name (class names and lowercase aliases).
REGULARIZERS: dict[str, type[Regularizer]] = {
    "L1": L1,
    "L2": L2,
    "L1L2": L1L2,
    "OrthogonalRegularizer": OrthogonalRegularizer,
    "l1": L1,
    "l2": L2,
    "l1_l2": L1L2,
    "orthogonal_regularizer": OrthogonalRegularizer,
}


def serialize(regularizer: Regularizer | None) -> dict[str, Any] | None:
    """What a layer's config stores: ``None``, or ``{"module", "class_name", "config"}``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.regularizers.serialize(ln.regularizers.L2(0.1))
    {'module': 'layernet.regularizers', 'class_name': 'L2', 'config': {'l2': 0.1}}
    """
    if regularizer is None:
        return None
    return {
        "module": "layernet.regularizers",
        "class_name": type(regularizer).__name__,
        "config": regularizer.get_config(),
    }


def get(
    identifier: Any, owner: str = "regularizers.get", arg: str = "identifier"
) -> Regularizer | None:
    """A regularizer from ``None``, a name, a serialised dict or an instance (Keras's ``get``).

    Parameters
    ----------
    identifier : None, str, dict or Regularizer
        ``None`` (no regularizer); a name (``"l1"``, ``"l2"``, ``"l1_l2"``,
        ``"orthogonal_regularizer"`` or a class name), which gives Keras's
        defaults; a dict as :func:`serialize` writes it (``"module"`` optional);
        or an instance, returned as it is.
    owner, arg : str
        Who asks and for which argument, for the error message.

    Returns
    -------
    Regularizer or None

    Raises
    ------
    ValueError
        ``<owner>: invalid value for `<arg>`: expected one of [...], a
        Regularizer or None, received ...``, or the class's own message for a
        config it refuses.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.regularizers.get("l2")
    L2(l2=0.01)
    >>> ln.regularizers.get({"class_name": "L1L2", "config": {"l1": 0.1, "l2": 0.0}})
    L1L2(l1=0.1, l2=0.0)
    """
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    if (
        isinstance(identifier, dict)
        and {"class_name", "config"} <= set(identifier) <= {"module", "class_name", "config"}
        and identifier.get("module", "layernet.regularizers") == "layernet.regularizers"
        and identifier["class_name"] in REGULARIZERS
        and isinstance(identifier["config"], dict)
    ):
        return REGULARIZERS[identifier["class_name"]].from_config(identifier["config"])
    raise ValueError(
        f"{owner}: invalid value for `{arg}`: expected one of {sorted(REGULARIZERS)}, a "
        f"Regularizer or None, received {identifier!r:.200}."
    )


__all__ = [
    "L1",
    "L1L2",
    "L2",
    "OrthogonalRegularizer",
    "Regularizer",
    "get",
    "l1",
    "l1_l2",
    "l2",
    "orthogonal_regularizer",
    "serialize",
]
