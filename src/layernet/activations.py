r"""Activation functions with Keras's names (``keras.activations``), built from :mod:`layernet.ops`.

They apply to arrays, and inside a layer's ``call()`` to Tensors (recording
their ops, so they are differentiated like any op). :func:`get` resolves a
name, :func:`serialize` gives a function's name, :func:`deserialize` the
function back. (The :class:`~layernet.Activation` layer takes the same names.)

Examples
--------
>>> import layernet as ln
>>> import numpy as np
>>> ln.activations.get("relu")(np.array([-1.0, 2.0]))
array([0., 2.])
>>> ln.activations.serialize(ln.activations.gelu)
'gelu'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ops


def relu(
    x: Any, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0
) -> Any:
    r""":math:`\max(x, 0)` (Keras's options: a slope below ``threshold``, a ceiling)."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ops.relu(x)
    y = ops.where(
        ops.greater(x, threshold), x, ops.multiply(negative_slope, ops.subtract(x, threshold))
    )
    return y if max_value is None else ops.minimum(y, max_value)


def relu6(x: Any) -> Any:
    r""":math:`\min(\max(x, 0), 6)`."""
    return ops.relu6(x)


def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    r""":math:`x` for :math:`x > 0`, else :math:`s x`."""
    return ops.leaky_relu(x, negative_slope)


def sigmoid(x: Any) -> Any:
    r""":math:`1/(1+e^{-x})`."""
    return ops.sigmoid(x)


def tanh(x: Any) -> Any:
    r""":math:`\tanh x`."""
    return ops.tanh(x)


def softmax(x: Any, axis: int = -1) -> Any:
    r""":math:`e^{x}/\sum e^{x}` along ``axis``."""
    return ops.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    r""":math:`x - \ln\sum e^{x}` along ``axis``."""
    return ops.log_softmax(x, axis=axis)


def softplus(x: Any) -> Any:
    r""":math:`\ln(1+e^x)`."""
    return ops.softplus(x)


def softsign(x: Any) -> Any:
    r""":math:`x/(1+|x|)`."""
    return ops.divide(x, ops.add(1.0, ops.abs(x)))


def silu(x: Any) -> Any:
    r""":math:`x\sigma(x)`."""
    return ops.silu(x)


swish = silu


def gelu(x: Any, approximate: bool = False) -> Any:
    r""":math:`x\Phi(x)` (exact by default, as Keras's activation)."""
    return ops.gelu(x, approximate=approximate)


def elu(x: Any, alpha: float = 1.0) -> Any:
    r""":math:`x` for :math:`x>0`, else :math:`\alpha(e^x-1)`."""
    return ops.elu(x, alpha)


def selu(x: Any) -> Any:
    r"""Scaled ELU with the self-normalising constants."""
    return ops.multiply(1.0507009873554805, ops.elu(x, 1.6732632423543772))


def exponential(x: Any) -> Any:
    r""":math:`e^x`."""
    return ops.exp(x)


def hard_sigmoid(x: Any) -> Any:
    r""":math:`\max(0, \min(1, x/6 + 1/2))`."""
    return ops.clip(ops.add(ops.divide(x, 6.0), 0.5), 0.0, 1.0)


def linear(x: Any) -> Any:
    """The identity."""
    return x


_ALL: dict[str, Callable[..., Any]] = {
    f.__name__: f
    for f in (
        relu,
        relu6,
        leaky_relu,
        sigmoid,
        tanh,
        softmax,
        log_softmax,
        softplus,
        softsign,
        silu,
        gelu,
        elu,
        selu,
        exponential,
        hard_sigmoid,
        linear,
    )
}
_ALL["swish"] = silu


def get(identifier: Any) -> Callable[..., Any]:
    """The activation function for a name, a function, or ``None`` (the identity).

    Parameters
    ----------
    identifier : str, callable or None

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        ``activations.get: unknown activation 'foo'; expected one of ...``.
    """
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    if isinstance(identifier, dict):
        identifier = identifier.get("config", identifier.get("class_name"))
    if isinstance(identifier, str) and identifier in _ALL:
        return _ALL[identifier]
    raise ValueError(
        f"activations.get: unknown activation {identifier!r}; expected one of "
        f"{', '.join(sorted(_ALL))}, a function or None."
    )


def serialize(activation: Callable[..., Any]) -> str:
    """The name of an activation function (for configs).

    Raises
    ------
    ValueError
        For a function that is not one of this module's.
    """
    for name, fn in _ALL.items():
        if fn is activation:
            return "silu" if fn is silu else name
    raise ValueError(
        f"activations.serialize: {activation!r} is not one of layernet's activations; "
        f"expected one of {', '.join(sorted(_ALL))}."
    )


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Callable[..., Any]:
    """The function for a name given by :func:`serialize` (``custom_objects`` first)."""
    if custom_objects and isinstance(config, str) and config in custom_objects:
        return custom_objects[config]
    return get(config)
