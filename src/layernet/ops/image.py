r"""Image ops with Keras's names (``keras.ops.image``), channels-last.

Both are linear in the image, composed of differentiable ops, so their
derivatives are the transposed maps: resizing applies an interpolation
matrix per spatial axis, patch extraction is a convolution with an identity
kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import numpy as onp
from .nn import conv
from .numpy import _shape, op


def _interpolation_matrix(n_in: int, n_out: int, method: str) -> np.ndarray:
    """``(n_out, n_in)`` weights with half-pixel centres (TensorFlow's and JAX's)."""
    m = np.zeros((n_out, n_in))
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    if method == "nearest":
        idx = np.clip(np.floor(src + 0.5).astype(int), 0, n_in - 1)
        m[np.arange(n_out), idx] = 1.0
        return m
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    np.add.at(m, (np.arange(n_out), lo), 1 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


@op(name="image.resize")
def resize(
    images: Any,
    size: Any,
    interpolation: str = "bilinear",
    antialias: bool = False,
    crop_to_aspect_ratio: bool = False,
    pad_to_aspect_ratio: bool = False,
    fill_mode: str = "constant",
    fill_value: float = 0.0,
    data_format: str | None = None,
) -> Any:
    r"""Resize ``(batch, height, width, channels)`` (or one image) to ``size``.

    ``interpolation`` ``"bilinear"`` or ``"nearest"``, half-pixel centres, no antialiasing.

    Notes
    -----
    :math:`Y = A_h\,X\,A_w^T` per image and channel, with interpolation matrices
    :math:`A`; the derivative is :math:`\partial z/\partial X = A_h^T G A_w`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ops.image.resize(np.arange(2.0).reshape(1, 1, 2, 1), (1, 4))[0, 0, :, 0]
    array([0.  , 0.25, 0.75, 1.  ])
    """
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(
            f"ops.image.resize: invalid value for `interpolation`: expected 'bilinear' or "
            f"'nearest', received {interpolation!r}."
        )
    if antialias or crop_to_aspect_ratio or pad_to_aspect_ratio:
        raise ValueError(
            "ops.image.resize: antialias, crop_to_aspect_ratio and pad_to_aspect_ratio are "
            "not supported; expected them False."
        )
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"ops.image.resize: invalid value for `data_format`: expected 'channels_last', "
            f"received {data_format!r}."
        )
    shape = _shape(images)
    if len(shape) not in (3, 4) or len(tuple(size)) != 2:
        raise ValueError(
            f"ops.image.resize: expected images of shape (batch, height, width, channels) or "
            f"(height, width, channels) and a size (height, width), got shape {shape} and "
            f"size {size!r}."
        )
    h_ax = len(shape) - 3
    a_h = _interpolation_matrix(shape[h_ax], int(size[0]), interpolation)
    a_w = _interpolation_matrix(shape[h_ax + 1], int(size[1]), interpolation)
    dtype = np.asarray(onp.unwrap(images)).dtype
    a_h, a_w = a_h.astype(dtype), a_w.astype(dtype)
    sub = "bhwc" if len(shape) == 4 else "hwc"
    out = sub.replace("h", "H").replace("w", "W")
    return onp.einsum(f"Hh,Ww,{sub}->{out}", a_h, a_w, images)


@op(name="image.extract_patches")
def extract_patches(
    images: Any,
    size: Any,
    strides: Any = None,
    dilation_rate: Any = 1,
    padding: str = "valid",
    data_format: str | None = None,
) -> Any:
    r"""Patches of ``size`` from ``(batch, height, width, channels)`` images, flattened on the
    last axis in ``(row, column, channel)`` order, as ``keras.ops.image.extract_patches``.

    Notes
    -----
    A convolution with the identity kernel :math:`K` of shape
    ``(h, w, C, h*w*C)``; its derivative adds each patch's gradient back onto the
    pixels it came from.
    """
    size = (size, size) if isinstance(size, int) else tuple(size)
    strides = size if strides is None else strides
    shape = _shape(images)
    one = len(shape) == 3
    x = onp.expand_dims(images, 0) if one else images
    c = _shape(x)[-1]
    dtype = np.asarray(onp.unwrap(images)).dtype
    kernel = np.eye(size[0] * size[1] * c, dtype=dtype).reshape(size[0], size[1], c, -1)
    y = conv(
        x,
        kernel,
        strides=strides,
        padding=padding,
        dilation_rate=dilation_rate,
        data_format=data_format,
    )
    return onp.squeeze(y, 0) if one else y
