r"""Neural-network ops with Keras's names (``keras.ops.nn``): activations, losses, conv.

Each docstring states the derivative; :math:`G = \partial z/\partial y`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import numpy as onp
from . import primitives as P
from .numpy import _axis, _ndim, _shape, op
from .tensor import apply, unwrap


@op()
def tanh(x: Any) -> Any:
    r""":math:`\tanh x`. Derivative: :math:`(1-\tanh^2 x)\odot G`."""
    return apply(P.TANH, x)


@op()
def relu(x: Any) -> Any:
    r""":math:`\max(x, 0)`. Derivative: :math:`G` where :math:`x>0`, else 0.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.ops.relu([-1.0, 2.0])
    array([0., 2.])
    """
    return apply(P.RELU, x)


@op()
def relu6(x: Any) -> Any:
    r""":math:`\min(\max(x, 0), 6)`. Derivative: :math:`G` where :math:`0<x<6` (via
    :func:`~layernet.ops.clip`)."""
    return onp.clip(x, 0.0, 6.0)


@op()
def sigmoid(x: Any) -> Any:
    r""":math:`\sigma(x) = 1/(1+e^{-x})`. Derivative: :math:`\sigma(1-\sigma)\odot G`."""
    return apply(P.SIGMOID, x)


@op()
def softplus(x: Any) -> Any:
    r""":math:`\ln(1+e^x)`. Derivative: :math:`\sigma(x)\odot G`."""
    return apply(P.SOFTPLUS, x)


@op()
def log_sigmoid(x: Any) -> Any:
    r""":math:`\ln\sigma(x) = -\operatorname{softplus}(-x)`. Derivative: :math:`(1-\sigma(x))
    \odot G`."""
    return onp.negative(softplus(onp.negative(x)))


@op()
def silu(x: Any) -> Any:
    r""":math:`x\,\sigma(x)`. Derivative: :math:`\sigma(x)(1 + x(1-\sigma(x)))\odot G`."""
    return apply(P.SILU, x)


swish = silu


@op()
def gelu(x: Any, approximate: bool = True) -> Any:
    r"""GELU: :math:`x\Phi(x)` (``approximate=False``) or its tanh form (Keras's default).

    Derivative: :math:`(\Phi(x) + x\varphi(x))\odot G` (exact form), the tanh form's
    derivative otherwise.
    """
    return apply(P.GELU, x, approximate=bool(approximate))


@op()
def elu(x: Any, alpha: float = 1.0) -> Any:
    r""":math:`x` for :math:`x>0`, :math:`\alpha(e^x-1)` otherwise. Derivative: :math:`G`
    or :math:`(y+\alpha)\odot G`."""
    return apply(P.ELU, x, alpha=float(alpha))


@op()
def leaky_relu(x: Any, negative_slope: float = 0.2) -> Any:
    r""":math:`x` for :math:`x>0`, :math:`s x` otherwise. Derivative: :math:`G` or :math:`sG`."""
    return apply(P.LEAKY_RELU, x, negative_slope=float(negative_slope))


@op()
def softmax(x: Any, axis: int = -1) -> Any:
    r""":math:`y = e^{x}/\sum e^{x}` along ``axis``. Derivative:
    :math:`y\odot(G - \sum_{\text{axis}} G\odot y)`."""
    return apply(P.SOFTMAX, x, axis=_axis("softmax", axis, _ndim(x)))


@op()
def log_softmax(x: Any, axis: int = -1) -> Any:
    r""":math:`y = x - \ln\sum e^{x}` along ``axis``. Derivative:
    :math:`G - e^{y}\sum_{\text{axis}} G`."""
    return apply(P.LOG_SOFTMAX, x, axis=_axis("log_softmax", axis, _ndim(x)))


@op()
def moments(x: Any, axes: Any, keepdims: bool = False) -> tuple[Any, Any]:
    r"""Mean and variance over ``axes``. Derivatives: those of :func:`~layernet.ops.mean`
    and :func:`~layernet.ops.var`."""
    return onp.mean(x, axis=axes, keepdims=keepdims), onp.var(x, axis=axes, keepdims=keepdims)


one_hot = onp.one_hot


@op()
def conv(
    inputs: Any,
    kernel: Any,
    strides: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
    dilation_rate: Any = 1,
) -> Any:
    r"""N-d convolution (cross-correlation), channels-last, as ``keras.ops.conv``.

    ``inputs`` of shape ``(batch, *spatial, in_channels)``, ``kernel`` of shape
    ``(*window, in_channels, out_channels)``; ``padding`` ``"valid"`` or ``"same"``.

    Notes
    -----
    With :math:`X_t` the input slice that kernel tap :math:`t` meets,
    :math:`Y = \sum_t X_t K_t`; the derivatives are
    :math:`\partial z/\partial K_t = X_t^T G` and :math:`G K_t^T` added into slice
    :math:`t` of :math:`\partial z/\partial X`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ops.conv(np.ones((1, 4, 1)), np.ones((2, 1, 1))).ravel()
    array([2., 2., 2.])
    """
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"ops.conv: invalid value for `data_format`: expected 'channels_last' (the only "
            f"layout), received {data_format!r}."
        )
    if padding not in ("valid", "same"):
        raise ValueError(
            f"ops.conv: invalid value for `padding`: expected 'valid' or 'same', received "
            f"{padding!r}."
        )
    xs, ks = _shape(inputs), _shape(kernel)
    if len(xs) < 3 or len(ks) != len(xs) or ks[-2] != xs[-1]:
        raise ValueError(
            f"ops.conv: expected inputs (batch, *spatial, channels) and a kernel "
            f"(*window, channels, filters) with as many window as spatial axes and matching "
            f"channels, got shapes {xs} and {ks}."
        )
    return apply(
        P.CONV, inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate
    )


def _eps() -> float:
    from .. import backend

    return backend.epsilon()


@op()
def binary_crossentropy(target: Any, output: Any, from_logits: bool = False) -> Any:
    r"""Element-wise :math:`-(t\ln p + (1-t)\ln(1-p))`, as ``keras.ops.binary_crossentropy``.

    Probabilities are clipped to :math:`[\epsilon, 1-\epsilon]`; with ``from_logits`` the
    output goes through :func:`log_sigmoid`. Derivative (logits): :math:`(\sigma(x)-t)\odot G`;
    (probabilities, inside the clip): :math:`\frac{p-t}{p(1-p)}\odot G`.
    """
    onp._broadcast("binary_crossentropy", target, output)
    if from_logits:
        return onp.negative(
            onp.add(
                onp.multiply(target, log_sigmoid(output)),
                onp.multiply(onp.subtract(1.0, target), log_sigmoid(onp.negative(output))),
            )
        )
    eps = _eps()
    p = onp.clip(output, eps, 1.0 - eps)
    return onp.negative(
        onp.add(
            onp.multiply(target, onp.log(p)),
            onp.multiply(onp.subtract(1.0, target), onp.log(onp.subtract(1.0, p))),
        )
    )


@op()
def categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    r""":math:`-\sum_{\text{axis}} t\ln p`, as ``keras.ops.categorical_crossentropy``.

    Probabilities are normalised along ``axis`` and clipped to :math:`[\epsilon, 1-\epsilon]`;
    with ``from_logits`` :math:`\ln p` is :func:`log_softmax`. Derivative (logits, targets
    summing to 1): :math:`(\operatorname{softmax}(x) - t)\odot G`.
    """
    if _shape(target) != _shape(output):
        raise ValueError(
            f"ops.categorical_crossentropy: expected `target` and `output` of one shape, got "
            f"shapes {_shape(target)} and {_shape(output)}."
        )
    axis = _axis("categorical_crossentropy", axis, _ndim(output))
    if from_logits:
        logp = log_softmax(output, axis=axis)
    else:
        eps = _eps()
        p = onp.divide(output, onp.sum(output, axis=axis, keepdims=True))
        logp = onp.log(onp.clip(p, eps, 1.0 - eps))
    return onp.negative(onp.sum(onp.multiply(target, logp), axis=axis))


@op()
def sparse_categorical_crossentropy(
    target: Any, output: Any, from_logits: bool = False, axis: int = -1
) -> Any:
    r""":math:`-\ln p_t` with integer class ids ``target``: :func:`categorical_crossentropy`
    of the one-hot target. Derivative (logits): :math:`(\operatorname{softmax}(x) - e_t)\odot G`.
    """
    t = np.asarray(unwrap(target))
    if t.ndim == _ndim(output) and t.shape[-1] == 1:
        t = t[..., 0]
    n = _shape(output)[axis]
    if t.size and (t.min() < 0 or t.max() >= n):
        raise ValueError(
            f"ops.sparse_categorical_crossentropy: expected class ids in [0, {n}), received "
            f"values from {t.min()} to {t.max()}."
        )
    onehot = onp.one_hot(t.astype(int), n, axis=axis, dtype=np.asarray(unwrap(output)).dtype)
    return categorical_crossentropy(onehot, output, from_logits=from_logits, axis=axis)
