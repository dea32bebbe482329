r"""Activation layers (ReLU, Sigmoid, Tanh, Softmax, LeakyReLU, ELU, GELU, Softplus,
Activation) and the activation functions that ``Dense`` and ``Conv`` apply by name."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from .. import _ops
from .._validation import check_bool, check_number, is_int, shape_str
from .base import MAX_JACOBIAN_ENTRIES, Layer


class ReLUSaved(NamedTuple):
    """What :class:`ReLU` keeps for backward."""

    mask: np.ndarray  #: the derivative: ``X > 0``, or its values with Keras's arguments


class OutputSaved(NamedTuple):
    """What :class:`Sigmoid` and :class:`Tanh` keep for backward."""

    y: np.ndarray  #: the output, from which the derivative follows


class _Elementwise(Layer):
    r"""A layer :math:`Y = r(X)` applied entry by entry; no parameters.

    Its input Jacobian is diagonal, :math:`\operatorname{diag}(r'(\operatorname{vec} X))`,
    built here in closed form.
    """

    def compute_output_shape(self, input_shape):
        return input_shape

    def derivative(self, saved) -> np.ndarray:
        """:math:`r'(X)`, from what forward saved."""
        raise NotImplementedError

    def compute_backward_input(self, dy, saved):
        return dy * self.derivative(saved)

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        x, y, saved = self._jacobian_setup(x, options)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        # The diagonal is the backward rule applied to ones (so that a subclass that
        # overrides compute_backward_input gets its own Jacobian).
        ones = np.ones(y.shape, dtype=self.dtype)
        return np.diag(self.compute_backward_input(ones, saved).ravel()).astype(
            self.dtype, copy=False
        )


class ReLU(_Elementwise):
    r"""Rectified linear unit (the notes' *ramp* layer), :math:`r(x) = \max(0, x)`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    max_value : float, optional
        Keras's argument: outputs are capped at this value (``None``: no cap).
    negative_slope : float, default 0.0
        Keras's argument: the slope below ``threshold`` (0: the plain ramp).
    threshold : float, default 0.0
        Keras's argument: inputs at or below it give ``negative_slope * (x - threshold)``.
    name : str, optional
        Layer name (``"relu_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: an invalid
        ``max_value``, ``negative_slope``, ``threshold``, ``dtype``, ``name``, ``seed``
        or ``trainable``. On an input: fewer than
        2 dims. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With the defaults,

    .. math::

        Y = \max(0, X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot \mathbb 1[X > 0].

    The derivative :math:`r'(x)` is 1 for :math:`x > 0` and 0 for :math:`x < 0`;
    at :math:`x = 0` the function has a kink and no derivative (the lecture notes
    leave it undefined). layernet uses 0 there, as PyTorch and TensorFlow do; it is
    one valid subgradient. The Jacobian
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T =
    \operatorname{diag}(\mathbb 1[\operatorname{vec}(X) > 0])` is diagonal.
    There are no parameters.

    With Keras's arguments :math:`m` (``max_value``), :math:`a` (``negative_slope``)
    and :math:`t` (``threshold``), as Keras defines them,

    .. math::

        r(x) = \begin{cases} \min(x, m) & x > t\\ a\,(x - t) & x \le t\end{cases},
        \qquad
        r'(x) = \begin{cases} \mathbb 1[x < m] & x > t\\ a & x < t\end{cases},

    (at the kinks :math:`x = t` and :math:`x = m` layernet uses :math:`a` and 0),
    and :math:`\partial z/\partial X = G \odot r'(X)`, a diagonal Jacobian.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> relu = ln.ReLU(dtype="float64")
    >>> relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    array([[0., 0., 2.]])
    >>> relu.backward_input(np.array([[5.0, 5.0, 5.0]]))
    array([[0., 0., 5.]])
    >>> ln.ReLU(max_value=1.5, negative_slope=0.1, dtype="float64").forward(
    ...     np.array([[-1.0, 0.5, 2.0]]))
    array([[-0.1,  0.5,  1.5]])
    """

    _default_name = "relu"
    fresh_output = True
    fresh_gradient = True
    in_place = True

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        self.max_value = (
            None if max_value is None else _check_number(max_value, "max_value", o, minimum=0)
        )
        self.negative_slope = _check_number(negative_slope, "negative_slope", o, minimum=0)
        self.threshold = _check_number(threshold, "threshold", o, minimum=0)
        self._plain = self.max_value is None and self.negative_slope == 0 and self.threshold == 0

    def get_config(self) -> dict[str, Any]:
        return {
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
            **super().get_config(),
        }

    def compute_forward(self, x, training):
        if not self._plain:
            t, a = x.dtype.type(self.threshold), x.dtype.type(self.negative_slope)
            m = np.inf if self.max_value is None else x.dtype.type(self.max_value)
            above = x > t
            y = np.where(above, np.minimum(x, m), a * (x - t))
            slope = np.where(above, (x < m).astype(x.dtype), a)
            return y, ReLUSaved(slope)
        if self.overwrite_inputs:  # inside a model's training step: x is a private activation
            mask = self.workspace.get("mask", x.shape, np.dtype(bool))[0]
            np.greater(x, 0, out=mask)
            return _ops.relu(x, x), ReLUSaved(mask)
        return _ops.relu(x, np.empty(x.shape, x.dtype)), ReLUSaved(x > 0)

    def derivative(self, saved):
        return saved.mask

    def compute_backward_input(self, dy, saved):
        if self.overwrite_inputs and dy.flags.writeable:
            return np.multiply(dy, saved.mask, out=dy)
        return dy * saved.mask


class Sigmoid(_Elementwise):
    r"""Logistic sigmoid, :math:`\sigma(x) = 1/(1 + e^{-x})`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    name : str, optional
        Layer name (``"sigmoid_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: fewer than
        2 dims. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    .. math::

        Y = \sigma(X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot Y \odot (1 - Y),

    with a diagonal Jacobian :math:`\operatorname{diag}(\operatorname{vec}(Y(1-Y)))`.
    Computed without overflow for large :math:`|x|`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Sigmoid(dtype="float64").forward(np.array([[0.0]]))
    array([[0.5]])
    """

    _default_name = "sigmoid"
    fresh_gradient = True

    def compute_forward(self, x, training):
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return y, OutputSaved(y)

    def derivative(self, saved):
        return saved.y * (1 - saved.y)


class Tanh(_Elementwise):
    r"""Hyperbolic tangent.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    name : str, optional
        Layer name (``"tanh_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: fewer than
        2 dims. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    .. math::

        Y = \tanh(X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot (1 - Y^2),

    with a diagonal Jacobian.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Tanh(dtype="float64").forward(np.array([[0.0]]))
    array([[0.]])
    """

    _default_name = "tanh"
    fresh_gradient = True

    def compute_forward(self, x, training):
        y = np.tanh(x)
        return y, OutputSaved(y)

    def derivative(self, saved):
        return 1 - saved.y * saved.y


# --------------------------------------------------------------------------- named functions
class ActivationFn(NamedTuple):
    """One activation function by name: forward, backward and Jacobian rules (not public).

    ``forward(x) -> (y, cache)``; ``backward(dy, cache) -> dx``; ``derivative(cache)``
    is :math:`r'(x)` entrywise for element-wise functions and ``None`` for the
    functions that mix entries (softmax), whose ``jacobian(cache, shape)`` builds
    the explicit matrix.
    """

    name: str
    forward: Callable[[np.ndarray], tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any], np.ndarray]
    derivative: Callable[[Any], np.ndarray] | None = None
    jacobian: Callable[[Any, tuple[int, ...]], np.ndarray] | None = None


def _elementwise(name: str, forward, derivative) -> ActivationFn:
    return ActivationFn(name, forward, lambda dy, cache: dy * derivative(cache), derivative)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))
_INV_SQRT_2 = float(1 / np.sqrt(2))
_INV_SQRT_2PI = float(1 / np.sqrt(2 * np.pi))
_GELU_C = 0.044715


def _relu_fn() -> ActivationFn:
    return _elementwise(
        "relu", lambda x: (_ops.relu(x, np.empty(x.shape, x.dtype)), x > 0), lambda m: m
    )


def _relu6_fn() -> ActivationFn:
    return _elementwise("relu6", lambda x: (np.clip(x, 0, 6), (x > 0) & (x < 6)), lambda m: m)


def _linear_fn() -> ActivationFn:
    return ActivationFn(
        "linear",
        lambda x: (x.copy(), x.shape),
        lambda dy, shape: dy.copy(),
        lambda shape: np.ones(shape),
    )


def _sigmoid_fn() -> ActivationFn:
    def fwd(x):
        y = _sigmoid(x)
        return y, y

    return _elementwise("sigmoid", fwd, lambda y: y * (1 - y))


def _hard_sigmoid_fn() -> ActivationFn:
    def fwd(x):
        return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False), x

    def der(x):
        return ((x > -3) & (x < 3)) / x.dtype.type(6)

    return _elementwise("hard_sigmoid", fwd, der)


def _tanh_fn() -> ActivationFn:
    def fwd(x):
        y = np.tanh(x)
        return y, y

    return _elementwise("tanh", fwd, lambda y: 1 - y * y)


def _leaky_relu_fn(negative_slope: float) -> ActivationFn:
    def fwd(x):
        y = np.where(x > 0, x, x * x.dtype.type(negative_slope))
        return y, x

    def der(x):
        return np.where(x > 0, x.dtype.type(1), x.dtype.type(negative_slope))

    return _elementwise("leaky_relu", fwd, der)


def _elu_fn(alpha: float, scale: float = 1.0, name: str = "elu") -> ActivationFn:
    def fwd(x):
        neg = alpha * np.expm1(np.minimum(x, 0))
        y = scale * np.where(x > 0, x, neg)
        return y.astype(x.dtype, copy=False), x

    def der(x):
        d = np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))
        return (scale * d).astype(x.dtype, copy=False)

    return _elementwise(name, fwd, der)


def _gelu_fn(approximate: bool) -> ActivationFn:
    if approximate:

        def fwd(x):
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x**3))
            return 0.5 * x * (1 + t), (x, t)

        def der(cache):
            x, t = cache
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_OVER_PI * (
                1 + 3 * _GELU_C * x * x
            )

        return _elementwise("gelu", fwd, der)

    def fwd_exact(x):
        cdf = 0.5 * (1 + special.erf(x * _INV_SQRT_2))
        return x * cdf, (x, cdf)

    def der_exact(cache):
        x, cdf = cache
        return cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)

    return _elementwise("gelu", fwd_exact, der_exact)


def _softplus_fn() -> ActivationFn:
    def fwd(x):
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))), x

    return _elementwise("softplus", fwd, _sigmoid)


def _softsign_fn() -> ActivationFn:
    def fwd(x):
        return x / (1 + np.abs(x)), x

    return _elementwise("softsign", fwd, lambda x: 1 / (1 + np.abs(x)) ** 2)


def _swish_fn(name: str) -> ActivationFn:
    def fwd(x):
        s = _sigmoid(x)
        return x * s, (x, s)

    def der(cache):
        x, s = cache
        return s * (1 + x * (1 - s))

    return _elementwise(name, fwd, der)


def _exponential_fn() -> ActivationFn:
    def fwd(x):
        y = np.exp(x)
        return y, y

    return _elementwise("exponential", fwd, lambda y: y)


def _block_jacobian(blocks: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Place per-row square blocks (rows taken along ``axis``) into the full Jacobian."""
    size = math.prod(shape)
    idx = np.moveaxis(np.arange(size).reshape(shape), axis, -1).reshape(-1, shape[axis])
    jac = np.zeros((size, size), dtype=blocks.dtype)
    for rows, block in zip(idx, blocks, strict=True):
        jac[np.ix_(rows, rows)] = block
    return jac


def _softmax_fn(axis: int) -> ActivationFn:
    def fwd(x):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True, initial=-np.inf))  # empty axis: ok
        y = e / np.sum(e, axis=axis, keepdims=True)
        return y, y

    def bwd(dy, y):
        return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))

    def jac(y, shape):
        p = np.moveaxis(y, axis, -1).reshape(-1, shape[axis])
        blocks = np.einsum("ri,ij->rij", p, np.eye(p.shape[1], dtype=p.dtype))
        blocks -= p[:, :, None] * p[:, None, :]
        return _block_jacobian(blocks, shape, axis)

    return ActivationFn("softmax", fwd, bwd, None, jac)


def _log_softmax_fn(axis: int) -> ActivationFn:
    def fwd(x):
        if x.size == 0:  # an empty batch or axis: nothing to normalise (log(0) otherwise)
            return x.copy(), x.copy()
        shifted = x - np.max(x, axis=axis, keepdims=True)
        lse = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        y = shifted - lse
        return y, np.exp(y)

    def bwd(dy, p):
        return dy - p * np.sum(dy, axis=axis, keepdims=True)

    def jac(p, shape):
        q = np.moveaxis(p, axis, -1).reshape(-1, shape[axis])
        eye = np.eye(q.shape[1], dtype=q.dtype)
        blocks = eye[None] - q[:, None, :]
        return _block_jacobian(blocks, shape, axis)

    return ActivationFn("log_softmax", fwd, bwd, None, jac)


#: Keras's activation names (``keras.activations``) and the functions they select.
#: ``"leaky_relu"`` uses Keras's function default slope 0.2 (the ``LeakyReLU``
#: layer's default is 0.3, as in Keras).
ACTIVATIONS: dict[str, Callable[[], ActivationFn]] = {
    "linear": _linear_fn,
    "relu": _relu_fn,
    "relu6": _relu6_fn,
    "sigmoid": _sigmoid_fn,
    "hard_sigmoid": _hard_sigmoid_fn,
    "tanh": _tanh_fn,
    "softmax": lambda: _softmax_fn(-1),
    "log_softmax": lambda: _log_softmax_fn(-1),
    "elu": lambda: _elu_fn(1.0),
    "selu": lambda: _elu_fn(_SELU_ALPHA, _SELU_SCALE, "selu"),
    "gelu": lambda: _gelu_fn(False),
    "softplus": _softplus_fn,
    "softsign": _softsign_fn,
    "swish": lambda: _swish_fn("swish"),
    "silu": lambda: _swish_fn("silu"),
    "leaky_relu": lambda: _leaky_relu_fn(0.2),
    "exponential": _exponential_fn,
}


def get(name: str | None, owner: str, arg: str = "activation") -> ActivationFn | None:
    """Look an activation up by Keras name (``None`` and ``"linear"`` give ``None``).

    One of :mod:`layernet.activations`' functions (``layernet.activations.gelu``) stands
    for its name, as Keras's ``activation=keras.activations.gelu`` does. Raises a clear
    error naming ``owner`` and ``arg`` for anything else.
    """
    if name is None:
        return None
    if callable(name) and getattr(name, "__module__", None) == "layernet.activations":
        name = getattr(name, "__name__", name)
    if not isinstance(name, str):
        raise TypeError(
            f"{owner}: invalid value for `{arg}`: expected an activation name (str), one of "
            f"layernet.activations' functions, or None, received {type(name).__name__} "
            f"{name!r}."
        )
    key = name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected one of {sorted(ACTIVATIONS)} or "
            f"None, received {name!r}."
        )
    return None if key == "linear" else ACTIVATIONS[key]()


def apply(fn: ActivationFn | None, z: np.ndarray) -> tuple[np.ndarray, Any]:
    """``(a(z), saved)`` for a layer's ``activation=``; the output never aliases ``saved``.

    A layer that applies an activation after its affine map can then still hand
    out its output as a fresh array (the next layer may overwrite it in place).
    """
    if fn is None:
        return z, None
    a, saved = fn.forward(z)
    parts = saved if isinstance(saved, tuple) else (saved,)
    if any(isinstance(p, np.ndarray) and np.shares_memory(a, p) for p in parts):
        a = a.copy()
    return a, saved


def jacobian_of(fn: ActivationFn, cache: Any, shape: tuple[int, ...]) -> np.ndarray:
    r"""The explicit Jacobian :math:`\partial\operatorname{vec}(A)/\partial\operatorname{vec}(Z)^T`.

    ``cache`` is what ``fn.forward`` kept for input of shape ``shape``.
    """
    if fn.derivative is not None:
        return np.diag(np.broadcast_to(fn.derivative(cache), shape).ravel())
    if fn.jacobian is None:
        raise NotImplementedError(f"activation {fn.name!r} has neither derivative nor jacobian")
    return fn.jacobian(cache, shape)


class ActivationSaved(NamedTuple):
    """What the activation layers (:class:`Softmax`, :class:`Activation`, ...) keep."""

    function: Any  #: what the activation function's forward kept (input, output or both)


class _FnLayer(Layer):
    """A parameter-free layer computing one :class:`ActivationFn` (not public)."""

    _fn: ActivationFn

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        y, kept = self._fn.forward(x)
        return y, ActivationSaved(kept)

    def compute_backward_input(self, dy, saved):
        return self._fn.backward(dy, saved.function).astype(dy.dtype, copy=False)

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        x, y, saved = self._jacobian_setup(x, options)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        return jacobian_of(self._fn, saved.function, x.shape).astype(self.dtype, copy=False)


def _check_number(value: Any, arg: str, owner: str, *, minimum: float | None = None) -> float:
    return check_number(value, arg, owner, low=minimum)


class Softmax(_FnLayer):
    r"""Softmax along one axis: :math:`y_i = e^{x_i}/\sum_j e^{x_j}`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape, each slice along ``axis`` summing to 1.

    Parameters
    ----------
    axis : int, default -1
        The axis normalised (Keras's default: the last); never the batch axis.
    name : str, optional
        Layer name (``"softmax_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``Softmax
        'softmax_1': invalid value for `axis`: expected a non-zero int (axis 0
        is the batch), received 0.``; an invalid ``dtype``, ``name``, ``seed``
        or ``trainable``. On an input: fewer than 2 dims, or ```axis`=... is out
        of range or the batch axis for input of shape ...``. In backward: a
        ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    For each slice :math:`x` along ``axis`` (computed after subtracting the
    slice's maximum, so large inputs cannot overflow),

    .. math::

        y_i = \frac{e^{x_i}}{\sum_j e^{x_j}},\qquad
        \frac{\partial y_i}{\partial x_j} = y_i(\delta_{ij} - y_j),\qquad
        \frac{\partial z}{\partial x} = y \odot \Big(g - \sum_j g_j y_j\Big),

    with :math:`g = \partial z/\partial y`. The input Jacobian is block diagonal,
    one block :math:`\operatorname{diag}(y) - y y^T` per slice (symmetric, rank
    deficient: adding a constant to a slice does not change its softmax). There
    are no parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> sm = ln.Softmax(dtype="float64")
    >>> sm.forward(np.array([[0.0, np.log(3.0)]]))
    array([[0.25, 0.75]])
    >>> sm.jacobian_input(np.array([[0.0, np.log(3.0)]]))
    array([[ 0.1875, -0.1875],
           [-0.1875,  0.1875]])
    """

    _default_name = "softmax"

    def __init__(
        self,
        axis: int = -1,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        if not is_int(axis) or axis == 0:
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: expected a non-zero int (axis 0 is "
                f"the batch), received {axis!r}."
            )
        self.axis = int(axis)
        self._fn = _softmax_fn(self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if not -len(shape) < self.axis < len(shape) or self.axis % len(shape) == 0:
            raise ValueError(
                f"{self.owner}: `axis`={self.axis} is out of range or the batch axis for "
                f"input of shape {shape_str(shape)}."
            )


class LeakyReLU(_FnLayer):
    r"""Leaky rectifier: :math:`r(x) = x` for :math:`x > 0`, :math:`a x` otherwise.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    negative_slope : float, default 0.3
        The slope :math:`a \ge 0` for negative inputs (Keras's default; PyTorch's
        ``LeakyReLU`` uses 0.01).
    name : str, optional
        Layer name (``"leaky_relu_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``negative_slope``
        not a finite number >= 0 (``invalid value for `negative_slope`: expected
        ...``); an invalid ``dtype``, ``name``, ``seed`` or ``trainable``. On an
        input: fewer than 2 dims. In backward: a ``dy`` whose shape is not the
        last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    .. math::

        r(x) = \begin{cases} x & x > 0\\ a x & x \le 0\end{cases},\qquad
        r'(x) = \begin{cases} 1 & x > 0\\ a & x < 0\end{cases},\qquad
        \frac{\partial z}{\partial X} = G \odot r'(X).

    At the kink :math:`x = 0` layernet uses :math:`a` (as PyTorch does). The
    Jacobian is :math:`\operatorname{diag}(r'(\operatorname{vec} X))`; no parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.LeakyReLU(dtype="float64").forward(np.array([[-2.0, 3.0]]))
    array([[-0.6,  3. ]])
    """

    _default_name = "leaky_relu"

    def __init__(
        self,
        negative_slope: float = 0.3,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.negative_slope = _check_number(negative_slope, "negative_slope", self.owner, minimum=0)
        self._fn = _leaky_relu_fn(self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope, **super().get_config()}


class ELU(_FnLayer):
    r"""Exponential linear unit: :math:`r(x) = x` if :math:`x > 0`, else :math:`\alpha(e^x - 1)`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    alpha : float, default 1.0
        Scale :math:`\alpha` of the negative part (Keras's and PyTorch's default).
    name : str, optional
        Layer name (``"elu_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``alpha`` not a
        finite number (``invalid value for `alpha`: expected ...``); an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: fewer than
        2 dims. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    .. math::

        r(x) = \begin{cases} x & x > 0\\ \alpha(e^x - 1) & x \le 0\end{cases},\qquad
        r'(x) = \begin{cases} 1 & x > 0\\ \alpha e^x & x \le 0\end{cases},\qquad
        \frac{\partial z}{\partial X} = G \odot r'(X),

    a diagonal Jacobian :math:`\operatorname{diag}(r'(\operatorname{vec} X))`. With
    :math:`\alpha = 1` the derivative is continuous at 0. No parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ELU(dtype="float64").forward(np.array([[0.0, 2.0]]))
    array([[0., 2.]])
    """

    _default_name = "elu"

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.alpha = _check_number(alpha, "alpha", self.owner)
        self._fn = _elu_fn(self.alpha)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **super().get_config()}


class GELU(_FnLayer):
    r"""Gaussian error linear unit: :math:`r(x) = x\,\Phi(x)`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    approximate : bool, default False
        Use the tanh approximation instead of the exact :math:`\Phi` (Keras's
        ``gelu(x, approximate=...)``; PyTorch's ``approximate="tanh"``).
    name : str, optional
        Layer name (``"gelu_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``approximate`` not
        a bool; an invalid ``dtype``, ``name``, ``seed`` or ``trainable``. On an
        input: fewer than 2 dims. In backward: a ``dy`` whose shape is not the
        last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Exact, with :math:`\Phi` the standard normal CDF and :math:`\varphi` its density:

    .. math::

        r(x) = x\,\Phi(x) = \tfrac x2\big(1 + \operatorname{erf}(x/\sqrt2)\big),\qquad
        r'(x) = \Phi(x) + x\,\varphi(x).

    Approximate, with :math:`u = \sqrt{2/\pi}\,(x + 0.044715\,x^3)` and
    :math:`t = \tanh u`:

    .. math::

        r(x) = \tfrac x2 (1 + t),\qquad
        r'(x) = \tfrac12(1 + t) + \tfrac x2 (1 - t^2)\sqrt{2/\pi}\,(1 + 3\cdot 0.044715\,x^2).

    In both cases :math:`\partial z/\partial X = G \odot r'(X)` and the Jacobian is
    diagonal. No parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.GELU(dtype="float64").forward(np.array([[0.0, 1.0]])).round(6)
    array([[0.      , 0.841345]])
    """

    _default_name = "gelu"

    def __init__(
        self,
        approximate: bool = False,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.approximate = check_bool(approximate, "approximate", self.owner)
        self._fn = _gelu_fn(self.approximate)

    def get_config(self) -> dict[str, Any]:
        return {"approximate": self.approximate, **super().get_config()}


class Softplus(_FnLayer):
    r"""Softplus, the smooth ramp :math:`r(x) = \log(1 + e^x)`.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    name : str, optional
        Layer name (``"softplus_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: fewer than
        2 dims. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    .. math::

        r(x) = \log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|}),\qquad
        r'(x) = \sigma(x) = \frac{1}{1 + e^{-x}},

    computed in the second form so that large :math:`|x|` cannot overflow;
    :math:`\partial z/\partial X = G \odot \sigma(X)`, a diagonal Jacobian. No
    parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Softplus(dtype="float64").forward(np.array([[0.0]]))
    array([[0.69314718]])
    """

    _default_name = "softplus"

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self._fn = _softplus_fn()


class Activation(_FnLayer):
    r"""Apply an activation function chosen by its Keras name.

    .. rubric:: Input and output shape

    Any input with at least 2 dims ``(batch, ...)``; the output has the same
    shape (``"softmax"`` and ``"log_softmax"`` work along the last axis).

    Parameters
    ----------
    activation : str or None
        One of ``"linear"`` (or ``None``), ``"relu"``, ``"relu6"``, ``"sigmoid"``,
        ``"hard_sigmoid"``, ``"tanh"``, ``"softmax"`` and ``"log_softmax"`` (last
        axis), ``"elu"``, ``"selu"``, ``"gelu"`` (exact), ``"softplus"``,
        ``"softsign"``, ``"swish"`` / ``"silu"``, ``"leaky_relu"`` (slope 0.2,
        Keras's function default), ``"exponential"``.
    name : str, optional
        Layer name (``"activation_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``Activation
        'activation_1': invalid value for `activation`: expected one of [...] or
        None, received 'foo'.`` (a name that is not a str is refused likewise);
        an invalid ``dtype``, ``name``, ``seed`` or ``trainable``. On an input:
        fewer than 2 dims. In backward: a ``dy`` whose shape is not the last
        output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Element-wise functions :math:`Y = r(X)` have
    :math:`\partial z/\partial X = G \odot r'(X)` and a diagonal Jacobian:

    * ``relu``: :math:`\max(0, x)`; :math:`\mathbb 1[x > 0]`.
    * ``relu6``: :math:`\min(\max(0, x), 6)`; :math:`\mathbb 1[0 < x < 6]`.
    * ``sigmoid``: :math:`\sigma(x) = 1/(1+e^{-x})`; :math:`\sigma(x)(1-\sigma(x))`.
    * ``hard_sigmoid``: :math:`\min(\max(x/6 + 1/2, 0), 1)`;
      :math:`\tfrac16\,\mathbb 1[-3 < x < 3]`.
    * ``tanh``: :math:`\tanh x`; :math:`1 - \tanh^2 x`.
    * ``elu``: :math:`x` for :math:`x > 0`, else :math:`e^x - 1`; :math:`1`, else :math:`e^x`.
    * ``selu``: :math:`\lambda\,\mathrm{elu}_\alpha(x)`; :math:`\lambda\,\mathrm{elu}_\alpha'(x)`.
    * ``gelu``: :math:`x\Phi(x)`; :math:`\Phi(x) + x\varphi(x)`.
    * ``softplus``: :math:`\log(1+e^x)`; :math:`\sigma(x)`.
    * ``softsign``: :math:`x/(1+|x|)`; :math:`1/(1+|x|)^2`.
    * ``swish``, ``silu``: :math:`x\sigma(x)`; :math:`\sigma(x)(1 + x(1-\sigma(x)))`.
    * ``leaky_relu``: :math:`x` for :math:`x > 0`, else :math:`0.2x`; :math:`1`, else :math:`0.2`.
    * ``exponential``: :math:`e^x`; :math:`e^x`.

    (``selu``: :math:`\alpha \approx 1.6733`, :math:`\lambda \approx 1.0507`.)
    ``softmax`` is :class:`Softmax` on the last axis; ``log_softmax`` is
    :math:`y = x - \log\sum_j e^{x_j}` with
    :math:`\partial y_i/\partial x_j = \delta_{ij} - \mathrm{softmax}(x)_j` and
    :math:`\partial z/\partial x = g - \mathrm{softmax}(x)\sum_j g_j`; both have
    block-diagonal Jacobians, one block per row. No parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Activation("relu", dtype="float64").forward(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    >>> ln.Activation("softmax", dtype="float64").forward(np.zeros((1, 4)))
    array([[0.25, 0.25, 0.25, 0.25]])
    """

    #: Passes an input mask on unchanged (Keras's ``supports_masking``).
    supports_masking = True

    _default_name = "activation"

    def __init__(
        self,
        activation: str | None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self._fn = get(activation, self.owner) or _linear_fn()
        self.activation = self._fn.name

    def get_config(self) -> dict[str, Any]:
        return {"activation": self.activation, **super().get_config()}
