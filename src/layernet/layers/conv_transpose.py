r"""Transposed convolution: the adjoint of :class:`~layernet.layers.Conv`, 1-D, 2-D, 3-D, N-D."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np

from .. import _ops, initializers, threads
from .._validation import (
    check_bool,
    check_data_format,
    check_positive_int,
    int_tuple,
    is_int,
    shape_str,
)
from . import activations
from .base import Layer


class _Geometry(NamedTuple):
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    crop: tuple[int, ...]  # entries of the full output dropped at the start of each axis
    full: tuple[int, ...]  # (n - 1) s + d (k - 1) + 1 per axis
    out: tuple[int, ...]  # the output's spatial shape


class ConvTransposeSaved(NamedTuple):
    """What :class:`ConvTranspose`'s forward pass keeps for the backward rules."""

    x: np.ndarray
    geometry: _Geometry
    activation: Any


def _overlap(geo: _Geometry) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices of the full output and of the output that hold the same entries."""
    src, dst = [slice(None)], [slice(None)]
    for c, f, o in zip(geo.crop, geo.full, geo.out, strict=True):
        m = min(o, f - c)
        src.append(slice(c, c + m))
        dst.append(slice(0, m))
    return tuple(src), tuple(dst)


class ConvTranspose(Layer):
    r"""Transposed convolution (Keras's ``Conv*DTranspose``), the adjoint of :class:`Conv`.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)``; output ``(batch, o_1, ..., o_r,
    filters)``. Along each spatial axis, with :math:`K = d(k-1) + 1` the dilated
    kernel extent and :math:`s` the stride,

    .. math::

        o = \begin{cases}
            (n-1)s + \max(K, s) & \text{"valid"},\\
            n s & \text{"same"},
        \end{cases}

    and with ``output_padding`` :math:`p`: :math:`(n-1)s + K + p` ("valid") or
    :math:`(n-1)s + (K \bmod 2) + p` ("same"), Keras's formulas. For example a
    stride-2, 3-tap kernel maps length 5 to 11 ("valid") or 10 ("same").

    Parameters
    ----------
    filters : int
        Number of output channels :math:`F`.
    kernel_size : int or tuple of int
        Window size :math:`k`; a tuple fixes the spatial rank, an int is used
        along every spatial axis of the first input.
    strides : int or tuple of int, default 1
        The upsampling step :math:`s` (the stride of the convolution this is the
        adjoint of).
    padding : {"valid", "same"}, default "valid"
        As in Keras: ``"valid"`` gives :math:`(n-1)s + \max(K, s)` outputs per
        axis and ``"same"`` gives :math:`n s`, where :math:`K = d(k-1)+1` is the
        dilated kernel extent.
    output_padding : int or tuple of int, optional
        Extra outputs at the end of each axis, each smaller than the stride; then
        ``"valid"`` gives :math:`(n-1)s + K + p` and ``"same"`` gives
        :math:`(n-1)s + (K \bmod 2) + p` outputs (Keras's formulas).
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    dilation_rate : int or tuple of int, default 1
        Spacing :math:`d` between kernel taps.
    activation : str or None, optional
        Applied after the affine map (see :class:`Activation` for the names).
    use_bias : bool, default True
        Whether to add a bias per filter.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        Initialiser of the kernel, see :mod:`layernet.initializers`.
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of the bias.
    kernel_regularizer : str, Regularizer or None, default None
        Penalty on the kernel (``"l1"``, ``"l2"``, ``"l1_l2"``, an object from
        :mod:`layernet.regularizers`); a trainer adds it to the loss and its
        gradient to the kernel's (:meth:`~Layer.regularization_penalty`).
    bias_regularizer : str, Regularizer or None, default None
        Penalty on the bias, likewise.
    activity_regularizer : str, Regularizer or None, default None
        Penalty on the output, divided by the batch size as in Keras
        (:meth:`~Layer.activity_regularization`).
    kernel_constraint : str, Constraint or None, default None
        Projection of the kernel after every optimizer step (``"max_norm"``,
        ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``, an object from
        :mod:`layernet.constraints`; :meth:`~Layer.apply_constraints`).
    bias_constraint : str, Constraint or None, default None
        Projection of the bias, likewise.
    name : str, optional
        Layer name (``"conv_transpose_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and the computation.
    seed : int, optional
        Seed of the initial values (global seed when ``None``).
    trainable : bool, default True
        Whether optimisers update the parameters.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``filters``,
        ``kernel_size``, ``strides``, ``dilation_rate`` (positive ints, one per
        axis when tuples), ``padding`` (``expected 'valid' or 'same'``),
        ``output_padding`` (``expected each entry smaller than the stride
        ...``), ``activation`` (a Keras name), ``data_format`` other than
        ``"channels_last"``, the initialisers, ``use_bias``, ``dtype``,
        ``name``, ``seed`` and ``trainable``. On an input: fewer than 3 dims,
        ``expected at least 1 input channel``, ``expected at least one input
        position along every spatial axis``, ``the output would be empty along
        spatial axis ...``, or a channel count other than the built one. In
        backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Attributes
    ----------
    params : dict
        ``"kernel"`` of shape ``(*kernel_size, filters, in_channels)`` (Keras's
        layout: the kernel of the :class:`Conv` that maps the output back to the
        input) and, with a bias, ``"bias"`` of shape ``(filters,)``.

    Notes
    -----
    Let :math:`W` be the kernel and :math:`\operatorname{conv}_W` the convolution
    (no padding, strides :math:`s`, dilation :math:`d`) that maps an array
    :math:`U` of spatial size :math:`(n-1)s + K` with :math:`F` channels to
    one of spatial size :math:`n` with :math:`C` channels,
    :math:`\operatorname{conv}_W(U)_{n,o,c} = \sum_{t,f} W_{t,f,c}\,U_{n,\,os+td,\,f}`.
    The transposed convolution is its adjoint, scattered back:

    .. math::

        \tilde Y_{n,p,f} = \sum_{(o,t)\,:\,os + td = p}\ \sum_c W_{t,f,c}\,X_{n,o,c},
        \qquad Y = a\big(\operatorname{crop}(\tilde Y) + b\big),

    where :math:`\operatorname{crop}` drops :math:`\lfloor\cdot\rfloor` entries
    at the start of each axis (none for ``"valid"``; Keras's and TensorFlow's
    count for ``"same"``) and keeps or zero-extends to the output size, and
    :math:`a` is the activation (identity by default). With the same padding
    rule and geometry, ``ConvTranspose`` is exactly the map
    :math:`G \mapsto \partial z/\partial X` of :class:`Conv`: its input Jacobian is
    Conv's input Jacobian transposed,

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T} =
        \Big(\frac{\partial\operatorname{vec}(\operatorname{conv}_W(U))}
                  {\partial\operatorname{vec}(U)^T}\Big)^T
        \quad(\text{no activation, crop} = 0).

    **Derivatives.** With :math:`G = \partial z/\partial Y`, :math:`H = G \odot a'`
    (or the activation's backward rule) and :math:`\tilde H` the gradient of the
    full output (:math:`H` placed at the crop offset, zeros elsewhere):

    .. math::

        \frac{\partial z}{\partial X} = \operatorname{conv}_W(\tilde H),

    .. math::

        \frac{\partial z}{\partial W_{t,f,c}} = \sum_{n,o}\tilde H_{n,\,os+td,\,f}\,X_{n,o,c},
        \qquad
        \frac{\partial z}{\partial b_f} = \sum_{n,p} H_{n,p,f}.

    So the backward rule of the input is an ordinary convolution, and the kernel
    gradient is the convolution kernel gradient with the roles of input and
    output exchanged. Its explicit Jacobians are built exactly from these rules.

    Examples
    --------
    Stride 2 with a (1, 1) kernel spreads each input over two outputs:

    >>> import layernet as ln
    >>> import numpy as np
    >>> up = ln.Conv1DTranspose(1, 2, strides=2, use_bias=False, dtype="float64")
    >>> up.build((None, 3, 1))
    >>> up.params["kernel"][:] = 1.0
    >>> up.forward(np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1))[0, :, 0]
    array([1., 1., 2., 2., 3., 3.])
    >>> ln.Conv2DTranspose(8, 3, strides=2, padding="same").output_shape((None, 7, 7, 4))
    (None, 14, 14, 8)
    """

    _default_name = "conv_transpose"
    fresh_output = True
    _rank: int | None = None

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        output_padding: int | tuple[int, ...] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.set_weight_penalties(
            {"kernel": kernel_regularizer, "bias": bias_regularizer},
            {"kernel": kernel_constraint, "bias": bias_constraint},
            activity_regularizer,
        )
        o = self.owner
        self.filters = check_positive_int(filters, "filters", o)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(
                f"{o}: invalid value for `padding`: expected 'valid' or 'same', "
                f"received {padding!r}."
            )
        self.padding = padding.lower()
        self.data_format = check_data_format(data_format, o)
        raw = {
            "kernel_size": kernel_size,
            "strides": strides,
            "dilation_rate": dilation_rate,
            "output_padding": output_padding,
        }
        rank = self._rank
        for arg, val in raw.items():
            if val is None:
                continue
            checked = int_tuple(val, rank, arg, o, minimum=0 if arg == "output_padding" else 1)
            if rank is None and not is_int(val):
                rank = len(checked)
        self._raw = raw
        self.rank = rank
        self.use_bias = check_bool(use_bias, "use_bias", o)
        self._activation = activations.get(activation, o)
        self.activation = None if self._activation is None else self._activation.name
        initializers.get(kernel_initializer, o, "kernel_initializer")
        initializers.get(bias_initializer, o, "bias_initializer")
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._set_rank(rank or 1)
        if rank is None:
            self.rank = None

    def _set_rank(self, rank: int) -> None:
        o = self.owner
        self.rank = rank
        self.kernel_size = int_tuple(self._raw["kernel_size"], rank, "kernel_size", o)
        self.strides = int_tuple(self._raw["strides"], rank, "strides", o)
        self.dilation_rate = int_tuple(self._raw["dilation_rate"], rank, "dilation_rate", o)
        op = self._raw["output_padding"]
        self.output_padding = (
            None if op is None else int_tuple(op, rank, "output_padding", o, minimum=0)
        )
        if self.output_padding is not None and any(
            p >= s for p, s in zip(self.output_padding, self.strides, strict=True)
        ):
            raise ValueError(
                f"{o}: invalid value for `output_padding`: expected each entry smaller than "
                f"the stride {self.strides}, received {op!r}."
            )

    def _keras_tuple(self, arg: str) -> Any:
        """``arg`` as Keras's configs give it: a tuple once the rank is known."""
        return getattr(self, arg) if self.rank is not None else self._raw[arg]

    def get_config(self) -> dict[str, Any]:
        return {
            "filters": self.filters,
            "kernel_size": self._keras_tuple("kernel_size"),
            "strides": self._keras_tuple("strides"),
            "padding": self.padding,
            "output_padding": self._raw["output_padding"],
            "data_format": self.data_format,
            "dilation_rate": self._keras_tuple("dilation_rate"),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            **self.penalty_config(),
            **super().get_config(),
        }

    # ------------------------------------------------------------------ shapes
    @property
    def input_ndim(self) -> int | None:  # type: ignore[override]
        return None if self.rank is None else self.rank + 2

    def _expected_layout(self) -> str:
        if self.rank is None:
            return "(batch, *spatial, channels)"
        return super()._expected_layout()

    def check_input_shape(self, shape: tuple[int | None, ...]) -> None:
        if self.rank is None and len(shape) < 3:
            raise ValueError(
                f"{self.owner}: expected input with at least 3 dims (batch, *spatial, "
                f"channels), got shape {shape_str(shape)}."
            )
        super().check_input_shape(shape)
        if shape[-1] is not None and shape[-1] < 1:
            raise ValueError(
                f"{self.owner}: expected at least 1 input channel, got shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.params["kernel"].shape[-1], "channels")
        self._geometry_any_rank(shape)

    def _geometry_any_rank(self, shape: tuple[int | None, ...]) -> _Geometry:
        """:meth:`_geometry`, before the first input fixed the rank: for the rank of ``shape``."""
        if self.rank is not None:
            return self._geometry(shape)
        saved = (self.kernel_size, self.strides, self.dilation_rate, self.output_padding)
        try:
            self._set_rank(len(shape) - 2)
            return self._geometry(shape)
        finally:
            self.rank = None
            self.kernel_size, self.strides, self.dilation_rate, self.output_padding = saved

    def _geometry(self, shape: tuple[int | None, ...]) -> _Geometry:
        k, s, d = self.kernel_size, self.strides, self.dilation_rate
        op = self.output_padding
        crop, full, out = [], [], []
        for i, n in enumerate(shape[1:-1]):
            ext = d[i] * (k[i] - 1) + 1
            if self.padding == "valid":
                c = 0
                length = (
                    None
                    if n is None
                    else (n - 1) * s[i] + (max(ext, s[i]) if op is None else ext + op[i])
                )
            else:
                pad_len = s[i] + ext - 2 if op is None else ext + ext % 2 - 2 + op[i]
                left = min(pad_len // 2 + pad_len % 2, ext - 1)
                c = ext - 1 - left
                length = None if n is None else (n - 1) * s[i] + pad_len - ext + 2
            if n is not None and n < 1:
                raise ValueError(
                    f"{self.owner}: expected at least one input position along every spatial "
                    f"axis, got shape {shape_str(shape)}."
                )
            if length is not None and length < 1:
                raise ValueError(
                    f"{self.owner}: the output would be empty along spatial axis {i} for input "
                    f"shape {shape_str(shape)} (padding {self.padding!r}, output_padding {op})."
                )
            crop.append(c)
            full.append(None if n is None else (n - 1) * s[i] + ext)
            out.append(length)
        # (full and out hold None along axes of unknown size: shapes only, never sliced)
        return _Geometry(k, s, d, tuple(crop), cast(Any, tuple(full)), cast(Any, tuple(out)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._geometry_any_rank(input_shape).out, self.filters)

    # ----------------------------------------------------------------- build
    def build_params(self, input_shape, rng):
        if self.rank is None:
            self._set_rank(len(input_shape) - 2)
        c = input_shape[-1]
        k = self.kernel_size
        shape = (*k, self.filters, c)
        # Keras's fans for this kernel layout: receptive field times the last two axes.
        fan_in, fan_out = int(np.prod(k)) * self.filters, int(np.prod(k)) * c
        init = initializers.get(self.kernel_initializer, self.owner, "kernel_initializer")
        self.params["kernel"] = init(shape, fan_in, fan_out, rng, self.dtype)
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            self.params["bias"] = init_b((self.filters,), fan_in, fan_out, rng, self.dtype)

    # ------------------------------------------------------------- compute
    def compute_forward(self, x, training):
        geo = self._geometry(x.shape)
        n, c = x.shape[0], x.shape[-1]
        if _ops.use_correlation(self.filters):  # only the kept window, as one correlation
            region = [(b, b + o) for b, o in zip(geo.crop, geo.out, strict=True)]
            y = np.empty((n, *geo.out, self.filters), dtype=x.dtype)
            kernel = self.params["kernel"]
            _ops.conv_input_grad(x, kernel, region, geo.strides, geo.dilation, y, self.workspace)
        else:  # tap by tap (or in blocks of taps) into the full output, then the kept window
            full_shape = (n, *geo.full, self.filters)
            spatial = x.shape[1:-1]
            kernel = self.params["kernel"]
            geometry = (spatial, geo.strides, geo.dilation)
            if _ops.use_grouped(full_shape, kernel.shape, *geometry, x.dtype.itemsize):
                unpadded = ((0, 0),) * len(spatial)
                full = _ops.grouped_transpose(  # (its last axis may hold a few more entries)
                    x.reshape(-1, c), kernel, full_shape, unpadded, *geometry, self.workspace, True
                )
            else:
                full = np.zeros(full_shape, dtype=x.dtype)
                _ops.conv_transpose(x.reshape(-1, c), kernel, full, *geometry, self.workspace)
            src, dst = _overlap(geo)
            y = np.zeros((n, *geo.out, self.filters), dtype=x.dtype)
            y[dst] = full[src]
        if self.use_bias:
            y += self.params["bias"]
        y, act = activations.apply(self._activation, y)
        return y, ConvTransposeSaved(x, geo, act)

    def _full_grad(
        self, dy: np.ndarray, saved: ConvTransposeSaved
    ) -> tuple[np.ndarray, np.ndarray]:
        """The gradient of the affine output, and of the uncropped full output."""
        if self._activation is not None:
            dy = self._activation.backward(dy, saved.activation).astype(dy.dtype, copy=False)
        geo = saved.geometry
        src, dst = _overlap(geo)
        dfull = np.zeros((dy.shape[0], *geo.full, self.filters), dtype=dy.dtype)
        dfull[src] = dy[dst]
        return dy, dfull

    def _patches(self, dfull: np.ndarray, saved: ConvTransposeSaved) -> np.ndarray:
        geo = saved.geometry
        return _ops.im2col(dfull, geo.kernel, saved.x.shape[1:-1], geo.strides, geo.dilation)

    def compute_backward_input(self, dy, saved):
        _, dfull = self._full_grad(dy, saved)
        w = self.params["kernel"]
        dx = threads.matmul(self._patches(dfull, saved), w.reshape(-1, w.shape[-1]))
        return dx.reshape(saved.x.shape)

    def compute_backward_params(self, dy, saved):
        dpre, dfull = self._full_grad(dy, saved)
        x = saved.x
        g = threads.matmul(self._patches(dfull, saved).T, x.reshape(-1, x.shape[-1]))
        grads = {"kernel": g.reshape(self.params["kernel"].shape)}
        if self.use_bias:
            grads["bias"] = dpre.reshape(-1, self.filters).sum(axis=0)
        return grads


class Conv1DTranspose(ConvTranspose):
    r"""1-D transposed convolution: :class:`ConvTranspose` for ``(batch, length, channels)``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv1DTranspose(4, 3, strides=2).output_shape((None, 10, 2))
    (None, 21, 4)
    """

    _default_name = "conv1d_transpose"
    _rank = 1


class Conv2DTranspose(ConvTranspose):
    r"""2-D transposed convolution: :class:`ConvTranspose` for ``(batch, h, w, channels)``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv2DTranspose(16, (3, 3), strides=(2, 2)).output_shape((None, 7, 7, 32))
    (None, 15, 15, 16)
    """

    _default_name = "conv2d_transpose"
    _rank = 2


class Conv3DTranspose(ConvTranspose):
    r"""3-D transposed convolution: :class:`ConvTranspose` for ``(batch, d, h, w, channels)``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv3DTranspose(2, 2, strides=2).output_shape((None, 2, 3, 4, 1))
    (None, 4, 6, 8, 2)
    """

    _default_name = "conv3d_transpose"
    _rank = 3
