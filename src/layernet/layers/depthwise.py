r"""Depthwise and depthwise-separable convolutions (channels-last, any spatial rank).

A depthwise convolution is the grouped :class:`~layernet.Conv` with one group per
input channel; these layers keep Keras's weight layout (a depthwise kernel of shape
``(*kernel_size, in_channels, depth_multiplier)``) and compute all channels at once:
one multiply-add per kernel tap over a strided slice of the padded input, instead of
one product per group, and without copying the patches (memory of the input's size).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _ops, initializers, threads
from .._validation import check_positive_int
from . import activations
from .conv import Conv

#: Conv's penalty arguments, which these layers do not take (yet).
_PENALTY_KEYS = (
    "kernel_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "activity_regularizer",
)


class DepthwiseSaved(NamedTuple):
    """What the depthwise layers keep for backward."""

    padded: np.ndarray  #: the zero-padded input ``(N, *padded spatial, C)`` (no patch copies)
    depthwise: np.ndarray | None  #: the depthwise output ``(M, C * depth_multiplier)``
    padded_shape: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out: tuple[int, ...]
    activation: Any = None


def _patches(layer: Conv, x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The zero-padded input and the call's geometry.

    The patches :math:`P[m, t, c]` are never copied out: each kernel tap ``t`` reads
    one strided slice of the padded input (:func:`layernet._ops.taps`), so memory
    stays that of the input, not ``K`` times it.
    """
    k, s, d, pads, out = layer._geometry(x.shape)
    xp = _ops.pad(x, pads)
    return xp, (xp.shape, k, s, d, pads, out)


def _depthwise(padded: np.ndarray, kernel: np.ndarray, geometry: tuple) -> np.ndarray:
    """``D[m, c*dm + j] = Σ_t P[m, t, c] W[t, c, j]``, one strided slice per tap."""
    _, k, s, d, _, out = geometry
    c = padded.shape[-1]
    w = kernel.reshape(-1, c, kernel.shape[-1])
    acc = np.zeros((padded.shape[0], *out, c, w.shape[2]), dtype=np.result_type(padded, w))
    for t, (_, sl) in enumerate(_ops.taps(k, out, s, d)):
        acc += padded[sl][..., None] * w[t]
    return acc.reshape(-1, c * w.shape[2])


def _depthwise_kernel_grad(saved: DepthwiseSaved, g: np.ndarray, shape: tuple) -> np.ndarray:
    """``∂z/∂W[t, c, j] = Σ_m P[m, t, c] G[m, c*dm + j]``."""
    c, dm = shape[-2], shape[-1]
    g = g.reshape(-1, c, dm)
    grad = np.empty((math.prod(saved.kernel), c, dm), dtype=g.dtype)
    for t, (_, sl) in enumerate(_ops.taps(saved.kernel, saved.out, saved.strides, saved.dilation)):
        xs = saved.padded[sl].reshape(-1, c)
        grad[t] = np.einsum("mc,mcj->cj", xs, g, optimize=True)
    return grad.reshape(shape)


def _depthwise_input_grad(g: np.ndarray, kernel: np.ndarray, saved: DepthwiseSaved) -> np.ndarray:
    """Scatter ``∂z/∂P[m, t, c] = Σ_j G[m, c*dm + j] W[t, c, j]`` back onto the input."""
    c = saved.padded_shape[-1]
    w = kernel.reshape(-1, c, kernel.shape[-1])
    g = g.reshape(saved.padded_shape[0], *saved.out, c, w.shape[2])
    dxp = np.zeros(saved.padded_shape, dtype=g.dtype)
    for t, (_, sl) in enumerate(_ops.taps(saved.kernel, saved.out, saved.strides, saved.dilation)):
        if w.shape[2] == 1:
            dxp[sl] += g[..., 0] * w[t, :, 0]
        else:
            dxp[sl] += np.einsum("...cj,cj->...c", g, w[t], optimize=True)
    return np.ascontiguousarray(_ops.crop(dxp, saved.pads))


class _DepthwiseBase(Conv):
    """Shared set-up: :class:`Conv`'s geometry and checks with a per-channel kernel."""

    renamed_weights: ClassVar[dict[str, str]] = {}
    renamed_arguments: ClassVar[dict[str, str]] = {}
    _kernel_name: ClassVar[str] = "kernel"
    depth_multiplier: int
    depthwise_initializer: Any

    def check_input_shape(self, shape):
        built = self.built
        self.built = False  # Conv's own check looks for a grouped "kernel"
        try:
            super().check_input_shape(shape)
        finally:
            self.built = built
        if built:  # the rank is fixed once built, so only the channels remain to check
            self._check_last_axis(shape, self.params[self._kernel_name].shape[-2], "channels")

    def _depthwise_params(self, input_shape, rng) -> int:
        if self.rank is None:
            self._set_rank(len(input_shape) - 2)
        c, k, dm = int(input_shape[-1]), self.kernel_size, self.depth_multiplier
        rf = math.prod(k)
        init = initializers.get(self.depthwise_initializer, self.owner, "depthwise_initializer")
        self.params[self._kernel_name] = init((*k, c, dm), rf * c, rf * dm, rng, self.dtype)
        return c * dm


class DepthwiseConv(_DepthwiseBase):
    r"""Depthwise convolution: each input channel convolved with its own ``depth_multiplier``
    filters (Keras's ``DepthwiseConv1D``/``DepthwiseConv2D`` in any spatial rank).

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, C)``; output ``(batch, o_1, ..., o_r, C·M)``
    with :math:`M` = ``depth_multiplier`` and the spatial sizes of
    :class:`~layernet.Conv` (:math:`o = \lfloor (n + p_\text{before} + p_\text{after}
    - d(k-1) - 1)/s\rfloor + 1`). Output channel :math:`cM + j` comes from input
    channel :math:`c` and its :math:`j`-th filter.

    Parameters
    ----------
    kernel_size : int or tuple of int
        Window size :math:`(k_1, \dots, k_r)`.
    strides : int or tuple of int, default 1
        Step between windows.
    padding : {"valid", "same", "causal"} or int or tuple, default "valid"
        As for :class:`~layernet.Conv` (``"causal"`` in 1-D only).
    depth_multiplier : int, default 1
        Number of filters :math:`M` per input channel.
    data_format : {"channels_last", None}, optional
        Only channels-last is supported.
    dilation_rate : int or tuple of int, default 1
        Spacing between kernel taps.
    activation : str or None, optional
        Applied after the bias, by Keras name.
    use_bias : bool, default True
        Add a bias per output channel.
    depthwise_initializer : str or Initializer, default "glorot_uniform"
        Initialiser of the kernel (fans as Keras computes them: :math:`\prod k_i \cdot C`
        in, :math:`\prod k_i \cdot M` out).
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of the bias.
    name, dtype, seed, trainable
        See :class:`~layernet.Layer`.

    Attributes
    ----------
    params : dict
        ``"kernel"`` of shape ``(*kernel_size, C, M)`` and ``"bias"`` of shape
        ``(C·M,)``: Keras's names, shapes and order, so
        ``layer.set_weights(keras_layer.get_weights())``-style copies work
        (``params["kernel"][...] = w0; params["bias"][...] = w1``).

    Raises
    ------
    ValueError
        As :class:`~layernet.Conv` for ``kernel_size``, ``strides``, ``padding``,
        ``dilation_rate``, ``activation``, ``use_bias`` and the initialisers; also
        ``depth_multiplier`` (a positive int). On inputs: the rank, channels other
        than the built kernel's, a window larger than the padded input.
    RuntimeError
        Backward before forward.

    Notes
    -----
    With :math:`\tilde X` the padded input and :math:`t` running over the kernel taps,

    .. math::

        Y_{n,o,cM+j} = b_{cM+j} + \sum_t W_{t,c,j}\,\tilde X_{n,\,os+td,\,c}.

    **Derivatives.** The map is linear in :math:`X` and in :math:`W`; with
    :math:`G = \partial z/\partial Y` (times :math:`a'` with an activation),

    .. math::

        \frac{\partial z}{\partial W_{t,c,j}} = \sum_{n,o} G_{n,o,cM+j}\,
            \tilde X_{n,\,os+td,\,c},\qquad
        \frac{\partial z}{\partial b_{q}} = \sum_{n,o} G_{n,o,q},

    .. math::

        \frac{\partial z}{\partial \tilde X_{n,p,c}} = \sum_{(o,t):\,os+td=p}\;
            \sum_{j} G_{n,o,cM+j}\,W_{t,c,j},

    cropped to :math:`X`. It is :class:`~layernet.Conv` with ``groups`` :math:`= C`
    and ``filters`` :math:`= CM`, kernel ``W.reshape(*k, 1, C*M)``; the Jacobians
    are that layer's, block diagonal over channels.

    See Also
    --------
    SeparableConv, layernet.Conv

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.DepthwiseConv2D(3, depth_multiplier=2, padding="same", dtype="float64")
    >>> layer.output_shape((None, 8, 8, 3))
    (None, 8, 8, 6)
    >>> layer.build((None, 8, 8, 3))
    >>> layer.params["kernel"].shape
    (3, 3, 3, 2)
    >>> ln.gradcheck(layer, np.random.default_rng(0).standard_normal((1, 4, 4, 3))).passed
    True
    """

    _default_name = "depthwise_conv"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str | int | tuple = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            1, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
            use_bias, depthwise_initializer, bias_initializer,
            name=name, dtype=dtype, seed=seed, trainable=trainable,
        )  # fmt: skip
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier", self.owner)
        initializers.get(depthwise_initializer, self.owner, "depthwise_initializer")
        self.depthwise_initializer = depthwise_initializer

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        for key in ("filters", "groups", "kernel_initializer", *_PENALTY_KEYS):
            cfg.pop(key, None)
        cfg["depth_multiplier"] = self.depth_multiplier
        cfg["depthwise_initializer"] = initializers.serialize(self.depthwise_initializer)
        return cfg

    def compute_output_shape(self, input_shape):
        _, _, _, _, out = self._geometry(input_shape)
        c = input_shape[-1]
        return (input_shape[0], *out, None if c is None else c * self.depth_multiplier)

    def build_params(self, input_shape, rng):
        channels = self._depthwise_params(input_shape, rng)
        self.filters = channels
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            rf = math.prod(self.kernel_size)
            self.params["bias"] = init_b(
                (channels,), rf * int(input_shape[-1]), rf * self.depth_multiplier, rng, self.dtype
            )

    def compute_forward(self, x, training):
        xp, geometry = _patches(self, x)
        padded, k, s, d, pads, out = geometry
        y = _depthwise(xp, self.params["kernel"], geometry)
        if self.use_bias:
            y += self.params["bias"]
        y, act = activations.apply(self._activation, y.reshape(x.shape[0], *out, y.shape[-1]))
        return y, DepthwiseSaved(xp, None, padded, k, s, d, pads, out, act)

    def compute_backward_params(self, dy, saved):
        g = self._affine_grad(dy, saved).reshape(-1, self.filters)
        w = self.params["kernel"]
        grads = {"kernel": _depthwise_kernel_grad(saved, g, w.shape)}
        if self.use_bias:
            grads["bias"] = g.sum(axis=0)
        return grads

    def compute_backward_input(self, dy, saved):
        g = self._affine_grad(dy, saved).reshape(-1, self.filters)
        return _depthwise_input_grad(g, self.params["kernel"], saved)


class DepthwiseConv1D(DepthwiseConv):
    r"""1-D depthwise convolution: :class:`DepthwiseConv` for ``(batch, length, channels)``.

    .. rubric:: Input and output shape

    Input ``(batch, length, C)``; output ``(batch, out_length, C * depth_multiplier)``,
    spatial sizes as :class:`~layernet.Conv`.

    Parameters
    ----------
    *args, **kwargs
        The arguments of :class:`DepthwiseConv`, with ``kernel_size``, ``strides`` and
        ``dilation_rate`` ints or 1-tuples.

    Raises
    ------
    ValueError
        As :class:`DepthwiseConv`; also tuples of another length and inputs of another rank.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.DepthwiseConv1D(3, depth_multiplier=4).output_shape((None, 10, 2))
    (None, 8, 8)
    """

    _default_name = "depthwise_conv1d"
    fresh_output = True
    fresh_gradient = True
    _rank = 1


class DepthwiseConv2D(DepthwiseConv):
    r"""2-D depthwise convolution: :class:`DepthwiseConv` for ``(batch, height, width, channels)``.

    .. rubric:: Input and output shape

    Input ``(batch, height, width, C)``;
    output ``(batch, out_height, out_width, C * depth_multiplier)``,
    spatial sizes as :class:`~layernet.Conv`.

    Parameters
    ----------
    *args, **kwargs
        The arguments of :class:`DepthwiseConv`, with ``kernel_size``, ``strides`` and
        ``dilation_rate`` ints or pairs.

    Raises
    ------
    ValueError
        As :class:`DepthwiseConv`; also tuples of another length and inputs of another rank.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.DepthwiseConv2D((3, 3), strides=2, padding="same").output_shape((None, 9, 9, 5))
    (None, 5, 5, 5)
    """

    _default_name = "depthwise_conv2d"
    fresh_output = True
    fresh_gradient = True
    _rank = 2


class SeparableConv(_DepthwiseBase):
    r"""Depthwise-separable convolution: a depthwise convolution then a 1x1 convolution
    (Keras's ``SeparableConv1D``/``SeparableConv2D`` in any spatial rank).

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, C)``; output ``(batch, o_1, ..., o_r, filters)``,
    spatial sizes as :class:`~layernet.Conv`.

    Parameters
    ----------
    filters : int
        Number of output channels :math:`F`.
    kernel_size : int or tuple of int
        Window of the depthwise step.
    strides, padding, data_format, dilation_rate
        As :class:`DepthwiseConv` (applied to the depthwise step).
    depth_multiplier : int, default 1
        Depthwise filters :math:`M` per input channel.
    activation : str or None, optional
        Applied at the end, by Keras name.
    use_bias : bool, default True
        Add a bias per output filter (after the pointwise step).
    depthwise_initializer, pointwise_initializer : str or Initializer, default "glorot_uniform"
        Initialisers of the two kernels.
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of the bias.
    name, dtype, seed, trainable
        See :class:`~layernet.Layer`.

    Attributes
    ----------
    params : dict
        ``"depthwise_kernel"`` ``(*kernel_size, C, M)``, ``"pointwise_kernel"``
        ``(1, ..., 1, C·M, F)`` and ``"bias"`` ``(F,)``: Keras's names, shapes and order.

    Raises
    ------
    ValueError
        As :class:`DepthwiseConv`, and ``filters`` (a positive int) and
        ``pointwise_initializer`` (a known name).
    RuntimeError
        Backward before forward.

    Notes
    -----
    With :math:`D` the depthwise output of :class:`DepthwiseConv` (no bias) and
    :math:`P` the pointwise kernel as a :math:`CM \times F` matrix,

    .. math::

        D_{n,o,cM+j} = \sum_t W^{d}_{t,c,j}\,\tilde X_{n,\,os+td,\,c},\qquad
        Y_{n,o,f} = b_f + \sum_{q} D_{n,o,q}\,P_{q,f}.

    **Derivatives.** With :math:`G = \partial z/\partial Y` (times :math:`a'`):

    .. math::

        \frac{\partial z}{\partial P_{q,f}} = \sum_{n,o} D_{n,o,q}\,G_{n,o,f},\qquad
        \frac{\partial z}{\partial b_f} = \sum_{n,o} G_{n,o,f},\qquad
        \frac{\partial z}{\partial D} = G P^T,

    and :math:`\partial z/\partial W^d`, :math:`\partial z/\partial X` follow from
    :math:`\partial z/\partial D` by :class:`DepthwiseConv`'s rules. The input
    Jacobian is the product :math:`(I \otimes P^T)\,J_D` of the pointwise and
    depthwise Jacobians.

    See Also
    --------
    DepthwiseConv, layernet.Conv

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.SeparableConv2D(4, 3, depth_multiplier=2, dtype="float64", seed=0)
    >>> layer.output_shape((None, 6, 6, 3))
    (None, 4, 4, 4)
    >>> layer.build((None, 6, 6, 3))
    >>> [(k, v.shape) for k, v in layer.params.items()]
    [('depthwise_kernel', (3, 3, 3, 2)), ('pointwise_kernel', (1, 1, 6, 4)), ('bias', (4,))]
    >>> ln.gradcheck(layer, np.random.default_rng(0).standard_normal((1, 4, 4, 3))).passed
    True
    """

    _default_name = "separable_conv"
    fresh_output = True
    fresh_gradient = True
    _kernel_name = "depthwise_kernel"

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str | int | tuple = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        depth_multiplier: int = 1,
        activation: str | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation,
            use_bias, depthwise_initializer, bias_initializer,
            name=name, dtype=dtype, seed=seed, trainable=trainable,
        )  # fmt: skip
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier", self.owner)
        initializers.get(depthwise_initializer, self.owner, "depthwise_initializer")
        initializers.get(pointwise_initializer, self.owner, "pointwise_initializer")
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        for key in ("groups", "kernel_initializer", *_PENALTY_KEYS):
            cfg.pop(key, None)
        cfg["depth_multiplier"] = self.depth_multiplier
        cfg["depthwise_initializer"] = initializers.serialize(self.depthwise_initializer)
        cfg["pointwise_initializer"] = initializers.serialize(self.pointwise_initializer)
        return cfg

    def build_params(self, input_shape, rng):
        cm = self._depthwise_params(input_shape, rng)
        init = initializers.get(self.pointwise_initializer, self.owner, "pointwise_initializer")
        rank = len(input_shape) - 2
        self.params["pointwise_kernel"] = init(
            (*(1,) * rank, cm, self.filters), cm, self.filters, rng, self.dtype
        )
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            self.params["bias"] = init_b((self.filters,), cm, self.filters, rng, self.dtype)

    def compute_forward(self, x, training):
        xp, geometry = _patches(self, x)
        padded, k, s, d, pads, out = geometry
        dw = _depthwise(xp, self.params["depthwise_kernel"], geometry)
        y = threads.matmul(dw, self.params["pointwise_kernel"].reshape(-1, self.filters))
        if self.use_bias:
            y += self.params["bias"]
        y, act = activations.apply(self._activation, y.reshape(x.shape[0], *out, self.filters))
        return y, DepthwiseSaved(xp, dw, padded, k, s, d, pads, out, act)

    def compute_backward_params(self, dy, saved):
        g = self._affine_grad(dy, saved).reshape(-1, self.filters)
        p = self.params["pointwise_kernel"]
        gd = threads.matmul(g, p.reshape(-1, self.filters).T)
        w = self.params["depthwise_kernel"]
        grads = {
            "depthwise_kernel": _depthwise_kernel_grad(saved, gd, w.shape),
            "pointwise_kernel": threads.matmul(saved.depthwise.T, g).reshape(p.shape),
        }
        if self.use_bias:
            grads["bias"] = g.sum(axis=0)
        return grads

    def compute_backward_input(self, dy, saved):
        g = self._affine_grad(dy, saved).reshape(-1, self.filters)
        gd = threads.matmul(g, self.params["pointwise_kernel"].reshape(-1, self.filters).T)
        return _depthwise_input_grad(gd, self.params["depthwise_kernel"], saved)


class SeparableConv1D(SeparableConv):
    r"""1-D separable convolution: :class:`SeparableConv` for ``(batch, length, channels)``.

    .. rubric:: Input and output shape

    Input ``(batch, length, C)``; output ``(batch, out_length, filters)``,
    spatial sizes as :class:`~layernet.Conv`.

    Parameters
    ----------
    *args, **kwargs
        The arguments of :class:`SeparableConv`, with ``kernel_size``, ``strides`` and
        ``dilation_rate`` ints or 1-tuples.

    Raises
    ------
    ValueError
        As :class:`SeparableConv`; also tuples of another length and inputs of another rank.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.SeparableConv1D(8, 3, padding="same").output_shape((None, 10, 2))
    (None, 10, 8)
    """

    _default_name = "separable_conv1d"
    fresh_output = True
    fresh_gradient = True
    _rank = 1


class SeparableConv2D(SeparableConv):
    r"""2-D separable convolution: :class:`SeparableConv` for ``(batch, height, width, channels)``.

    .. rubric:: Input and output shape

    Input ``(batch, height, width, C)``; output ``(batch, out_height, out_width, filters)``,
    spatial sizes as :class:`~layernet.Conv`.

    Parameters
    ----------
    *args, **kwargs
        The arguments of :class:`SeparableConv`, with ``kernel_size``, ``strides`` and
        ``dilation_rate`` ints or pairs.

    Raises
    ------
    ValueError
        As :class:`SeparableConv`; also tuples of another length and inputs of another rank.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.SeparableConv2D(8, 3).output_shape((None, 10, 10, 3))
    (None, 8, 8, 8)
    """

    _default_name = "separable_conv2d"
    fresh_output = True
    fresh_gradient = True
    _rank = 2
