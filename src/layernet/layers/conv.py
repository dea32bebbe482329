r"""Convolution (cross-correlation) layers for 1-D, 2-D and N-D channels-last inputs."""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _ops, initializers, threads
from .._validation import (
    check_bool,
    check_data_format,
    check_padding,
    check_positive_int,
    int_tuple,
    is_int,
    resolve_padding,
    shape_str,
)
from . import activations
from .base import Layer


class ConvSaved(NamedTuple):
    """What :class:`Conv` keeps for backward: the patches and the geometry of the call."""

    patches: Any  #: im2col matrix (with a column of ones when there is a bias), or None
    padded_shape: tuple[int, ...]  #: shape of the zero-padded input
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  #: ``(before, after)`` per spatial axis
    out: tuple[int, ...]  #: output positions per spatial axis
    activation: Any = None  #: what the activation kept (``None`` without one)
    #: the padded input, when the forward pass took the shifted products
    #: (:func:`layernet._ops.shifted_forward`, C-contiguous) or did not keep its patches
    #: (``blocked``); ``patches`` is then ``None``
    padded: np.ndarray | None = None
    #: output positions along the last axis per row of ``patches`` when they are band
    #: patches (:func:`layernet._ops.band_product`); 0 for im2col's
    band: int = 0
    #: whether the forward pass multiplied its patches block by block without keeping
    #: them (``patches`` is then ``None`` and ``padded`` the padded input they come from)
    blocked: bool = False


class Conv(Layer):
    r"""Convolution layer (cross-correlation, as in the lecture notes and every DL library).

    Works in any spatial rank; :class:`Conv1D` and :class:`Conv2D` fix it to 1 and 2.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)``; output ``(batch, o_1, ..., o_r,
    filters)``. Along each spatial axis, with kernel size :math:`k`, stride
    :math:`s`, dilation :math:`d` and padding :math:`p_\text{before}`,
    :math:`p_\text{after}`,

    .. math::

        o = \left\lfloor \frac{n + p_\text{before} + p_\text{after} - d(k-1) - 1}{s}
            \right\rfloor + 1.

    ``"valid"`` means :math:`p = 0` (a remainder that does not fill a whole window
    is dropped: :math:`n = 10, k = 3, s = 2` gives 4); ``"same"`` pads so that
    :math:`o = \lceil n/s \rceil`. For example ``Conv1D(25, 5, strides=2,
    padding=1)`` maps length 40 to :math:`\lfloor (40 + 2 - 4 - 1)/2\rfloor + 1 = 19`.

    Parameters
    ----------
    filters : int
        Number of output channels :math:`F`.
    kernel_size : int or tuple of int
        Window size :math:`(k_1, \dots, k_r)`. A tuple fixes the spatial rank
        :math:`r`; an int is used along every spatial axis and the rank is taken
        from the first input (``ndim - 2``).
    strides : int or tuple of int, default 1
        Step :math:`s_i` between neighbouring windows.
    padding : {"valid", "same", "causal"} or int or tuple, default "valid"
        ``"valid"``: no padding. ``"same"``: zero padding so that the output has
        :math:`\lceil n_i / s_i \rceil` entries, any odd pad going after (TensorFlow's
        convention, for any stride). ``"causal"`` (1-D only): :math:`d(k-1)` zeros
        before the sequence and none after, so output :math:`t` depends on inputs
        up to :math:`t` only. An int pads both sides of every axis; a tuple gives
        one int or one ``(before, after)`` pair per axis.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported (``"channels_first"``
        is refused with an explanation).
    dilation_rate : int or tuple of int, default 1
        Spacing :math:`d_i` between kernel taps (Keras's name).
    groups : int, default 1
        Split the input channels and the filters into this many groups; group
        :math:`g`'s filters see only group :math:`g`'s channels. ``filters`` and the
        input channels must be multiples of it.
    activation : str or None, optional
        Applied after the affine map, by Keras name (``"relu"``, ``"softmax"``,
        ...; see :class:`~layernet.Activation`); ``None`` (default) or
        ``"linear"`` for none.
    use_bias : bool, default True
        Whether to add a bias per filter.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        See :mod:`layernet.initializers` (``"he_normal"``, ``"he_uniform"``, ...;
        ``"torch_uniform"`` for kernel and bias reproduces PyTorch's default).
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of the bias, by name or object as for ``kernel_initializer``.
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
        Layer name (``"conv_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and the computation.
    seed : int, optional
        Seed of the kernel's initial values (global seed when ``None``).
    trainable : bool, default True
        Whether optimisers update the parameters.

    Attributes
    ----------
    params : dict
        ``"kernel"`` of shape ``(*kernel_size, in_channels // groups, filters)`` and,
        with a bias, ``"bias"`` of shape ``(filters,)`` (Keras's names and layout;
        files written with the earlier names ``"W"`` and ``"b"`` still load).

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument, e.g.
        ``Conv 'conv_1': invalid value for `kernel_size`: expected positive ints,
        received 0.``: for ``filters`` (a positive int),
        ``kernel_size``, ``strides``, ``dilation`` (positive ints, one per axis
        when given as tuples of different lengths or for :class:`Conv1D` /
        :class:`Conv2D`), ``padding`` (``'valid'``, ``'same'``, a non-negative
        int, or a tuple of those or ``(before, after)`` pairs), ``use_bias``
        and ``trainable`` (bools), ``kernel_initializer`` and
        ``bias_initializer`` (a known name), ``dtype``, ``name`` and ``seed``.
        On an input: ``expected input with 3 dims (batch, length, channels),
        got shape ...`` (wrong rank), ``expected input with 4 channels (last
        axis, as built), got shape ...`` (channels differ from the built
        kernel), ``kernel (dilated extent ...) is larger than the padded input
        ...``, and the padding tuple's length against the input's spatial rank.
        In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With :math:`\tilde X` the zero-padded input of shape :math:`(N, *\tilde n, C)`,
    the output is

    .. math::

        Y_{n,o,f} = b_f + \sum_{t}\sum_{c=1}^{C} W_{t,c,f}\,\tilde X_{n,\,o s + t d,\,c},

    where :math:`t` runs over the kernel taps, :math:`o s + t d` is taken per axis,
    and along axis :math:`i` the output positions are
    :math:`o_i = 0, \dots, \lfloor(\tilde n_i - d_i(k_i - 1) - 1)/s_i\rfloor`.
    In one dimension with one channel, stride 1 and no padding this is the notes'
    :math:`(X * W)_i = \sum_{j=1}^{k} w_j X_{i+j-1}`: a length-10 input and a
    3-tap kernel give 8 outputs.

    **Derivatives.** The map is linear in :math:`X` and linear in :math:`W`, so both
    derivatives are the other argument, rearranged:

    .. math::

        \frac{\partial z}{\partial W_{t,c,f}} = \sum_{n,o}
            \frac{\partial z}{\partial Y_{n,o,f}}\,\tilde X_{n,\,o s + t d,\,c},
        \qquad
        \frac{\partial z}{\partial b_f} = \sum_{n,o}\frac{\partial z}{\partial Y_{n,o,f}},

    .. math::

        \frac{\partial z}{\partial \tilde X_{n,p,c}} =
            \sum_{(o,t)\,:\,o s + t d = p}\;\sum_{f}
            \frac{\partial z}{\partial Y_{n,o,f}}\, W_{t,c,f},

    and :math:`\partial z/\partial X` is :math:`\partial z/\partial\tilde X` without
    the padded border (the transposed convolution of :math:`\partial z/\partial Y`).

    **Groups and activation.** With ``groups`` :math:`G > 1` the channels and
    filters split into :math:`G` blocks and each block is the convolution above
    on its own channels (:math:`W` holds :math:`C/G` input channels per filter);
    every rule below holds block by block, and the Jacobians are block sparse.
    With an ``activation`` :math:`a` the output is :math:`A = a(Y)`; the backward
    rules below then start from :math:`\partial z/\partial Y = G \odot a'(Y)`
    (softmax: :math:`A \odot (G - \sum_f G_f A_f)`) instead of :math:`G`, and the
    Jacobians are :math:`J_a J_Y`.

    **Jacobian structure.** Gather the patches into the matrix
    :math:`P` of shape :math:`(N\prod o_i,\ \prod k_i \cdot C)` (im2col), so that
    :math:`Y = P\,W_\text{mat} + \mathbf 1 b^T`. In C-order vec,

    .. math::

        \frac{\partial \operatorname{vec}(Y)}{\partial \operatorname{vec}(W)^T}
            = P \otimes I_F,
        \qquad
        \frac{\partial \operatorname{vec}(Y)}{\partial b^T} = \mathbf 1 \otimes I_F,

    and :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T` is a
    sparse banded matrix whose nonzeros are kernel entries :math:`W_{t,c,f}`; for one
    channel, stride 1 and no padding it is the Toeplitz matrix with rows
    :math:`(w_1, \dots, w_k)` shifted one column per output.

    Computation: one contiguous im2col buffer built by a loop over the kernel taps
    (each a strided slice over all positions), then one matrix product. For one input
    channel and a wide kernel (the first layer of an image model) the patches are
    instead band patches (``layernet._ops.band_product``): a row holds, for :math:`J`
    consecutive outputs along the last axis, the :math:`(J-1)s + (k-1)d + 1` inputs
    they read there, and a band kernel matrix with :math:`J F` columns places each
    :math:`W_{t,f}` where output :math:`j` of the row reads it; the patch matrix is then
    a fraction of im2col's, and the kernel gradient sums the band kernel's gradient
    over the :math:`J` places of each entry. A patch matrix of 32 MB or more, or of
    12 MB or more from 16 input channels (``layernet._ops.rebuild_patches``), is not
    kept: the forward pass multiplies it block by block from a buffer of one block, and
    the kernel gradient
    :math:`P^T \partial z/\partial Y` builds the blocks again from the padded input and
    sums their products in block order (``layernet._ops.blocked_weight_grad``). The input
    gradient, with 64 or more input channels per group (or, at stride 1, 32 or more
    with at most as many filters and about as many input as output positions), is the
    correlation of the zero-padded :math:`\partial z/\partial Y` with the kernel flipped along every
    spatial axis (again patches and one product, taken block by block and not kept;
    with strides, one such product per phase :math:`p \bmod s`); otherwise one product
    per kernel tap added into its strided slice, which is faster there
    (``layernet._ops.use_correlation``). With a stride :math:`s \ge 2` (and
    no dilation) along the last axis and a patch gradient of at most 1 MB, the taps
    :math:`qs, \ldots, qs + s - 1` of that axis land side by side (in row :math:`o + q`
    of the gradient seen as rows of :math:`s` positions): one product per such block
    of taps, added into whole rows (``layernet._ops.grouped_transpose``). With stride
    1, where the padded input holds at most 2% more positions than the output (a long
    1-D sequence; a 1x1 kernel for the input gradient) and the products' shared
    dimension has at least 16 channels, the rules are instead sums of one product per
    tap over contiguous row slices of the padded input, with no patch matrix
    (``layernet._ops.use_shifted`` decides per call and direction): with the input's
    rows :math:`R` and tap :math:`t` at row offset :math:`\mathrm{off}_t`,
    :math:`Y = \sum_t R[\mathrm{off}_t:\mathrm{off}_t + M]\,W_t` on the padded grid,
    cropped to the output.

    See Also
    --------
    Conv1D, Conv2D, MaxPool, AvgPool

    Examples
    --------
    The notes' second-difference kernel :math:`(1, -2, 1)` on samples of
    :math:`f(x) = x^2` with :math:`h = 1` recovers :math:`h^2 f'' = 2`:

    >>> import layernet as ln
    >>> import numpy as np
    >>> conv = ln.Conv(1, 3, use_bias=False, dtype="float64")
    >>> x = (np.arange(10.0) ** 2).reshape(1, 10, 1)   # (batch, length, channels)
    >>> conv.build(x.shape)
    >>> conv.params["kernel"][:, 0, 0] = [1.0, -2.0, 1.0]
    >>> conv.forward(x)[0, :, 0]
    array([2., 2., 2., 2., 2., 2., 2., 2.])

    Output sizes, and the backward rules against finite differences:

    >>> ln.Conv(8, (3, 3), strides=2, padding="same").output_shape((None, 28, 28, 1))
    (None, 14, 14, 8)
    >>> ln.Conv(2, 3, dtype="float64", seed=0).output_shape((None, 10, 1))
    (None, 8, 2)
    >>> ln.gradcheck(ln.Conv(2, 3, dtype="float64", seed=0), np.ones((1, 10, 1))).passed
    True
    """

    _default_name = "conv"
    fresh_output = True
    fresh_gradient = True
    _rank: int | None = None

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str | int | tuple = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
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
        self.data_format = check_data_format(data_format, o)
        if isinstance(padding, str) and padding.lower() == "causal":
            self.padding: str | int | tuple = "causal"
            if self._rank not in (None, 1):
                raise ValueError(
                    f"{o}: invalid value for `padding`: 'causal' is for 1-D convolutions "
                    f"(inputs (batch, length, channels)), received it for rank {self._rank}."
                )
        else:
            self.padding = check_padding(padding, o)
        self.groups = check_positive_int(groups, "groups", o)
        if self.filters % self.groups:
            raise ValueError(
                f"{o}: invalid value for `groups`: `filters`={self.filters} must be a multiple "
                f"of `groups`, received groups={groups!r}."
            )
        self._activation = activations.get(activation, o)
        self.activation = None if self._activation is None else self._activation.name
        self._geometry_cache: dict = {}
        raw = {"kernel_size": kernel_size, "strides": strides, "dilation_rate": dilation_rate}
        # The first tuple among these arguments fixes the spatial rank; ints alone leave it
        # to the first input. Every value is validated now either way.
        rank = self._rank
        for arg, val in raw.items():
            checked = int_tuple(val, rank, arg, o)
            if rank is None and not is_int(val):
                rank = len(checked)
        if rank is None and isinstance(self.padding, tuple):
            rank = len(self.padding)
        if rank is None and self.padding == "causal":
            rank = 1
        self._raw = raw
        self.rank = rank
        self.kernel_size = int_tuple(kernel_size, rank or 1, "kernel_size", o)
        self.strides = int_tuple(strides, rank or 1, "strides", o)
        self.dilation_rate = int_tuple(dilation_rate, rank or 1, "dilation_rate", o)
        self.use_bias = check_bool(use_bias, "use_bias", o)
        initializers.get(kernel_initializer, o, "kernel_initializer")
        initializers.get(bias_initializer, o, "bias_initializer")
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        if self.rank is not None:
            self._set_rank(self.rank)

    def _set_rank(self, rank: int) -> None:
        o = self.owner
        self.rank = rank
        for arg in ("kernel_size", "strides", "dilation_rate"):
            setattr(self, arg, int_tuple(self._raw[arg], rank, arg, o))
        if self.padding == "causal" and rank != 1:
            raise ValueError(
                f"{o}: invalid value for `padding`: 'causal' is for 1-D convolutions (inputs "
                f"(batch, length, channels)), got a rank-{rank} convolution."
            )
        if isinstance(self.padding, tuple) and len(self.padding) != rank:
            raise ValueError(
                f"{o}: invalid value for `padding`: expected {rank} entries (one per spatial "
                f"axis), received {self.padding!r}."
            )

    #: Constructor arguments renamed since earlier versions (old name -> new), so that
    #: configurations saved by them still load.
    renamed_arguments: ClassVar[dict[str, str]] = {"dilation": "dilation_rate"}
    #: Parameters renamed since earlier versions (old name -> new), for old model files.
    renamed_weights: ClassVar[dict[str, str]] = {"W": "kernel", "b": "bias"}

    def _keras_tuple(self, arg: str) -> Any:
        """``arg`` as Keras's configs give it: a tuple once the rank is known."""
        return getattr(self, arg) if self.rank is not None else self._raw[arg]

    def get_config(self) -> dict[str, Any]:
        cfg = {
            "filters": self.filters,
            "kernel_size": self._keras_tuple("kernel_size"),
            "strides": self._keras_tuple("strides"),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self._keras_tuple("dilation_rate"),
            "groups": self.groups,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }
        return {**cfg, **self.penalty_config(), **super().get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Conv:
        """Rebuild from :meth:`get_config`; configurations saved with ``dilation`` load too."""
        config = {cls.renamed_arguments.get(k, k): v for k, v in config.items()}
        return cls(**config)

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
        if shape[-1] is not None and shape[-1] % self.groups:
            raise ValueError(
                f"{self.owner}: expected input channels divisible by `groups`={self.groups}, "
                f"got shape {shape_str(shape)}."
            )
        if self.built:
            w = self.params["kernel"]
            self._check_last_axis(shape, w.shape[-2] * self.groups, "channels")
        if self.padding == "causal" and len(shape) != 3:
            raise ValueError(
                f"{self.owner}: padding 'causal' is for 1-D convolutions: expected input with 3 "
                f"dims (batch, length, channels), got shape {shape_str(shape)}."
            )
        self._geometry(shape)

    def _geometry(self, shape: tuple[int | None, ...]):
        """Kernel, strides, dilation, pads and output sizes for inputs of ``shape``."""
        key = (tuple(shape[1:]), self.rank)
        cached = self._geometry_cache.get(key)
        if cached is not None:
            return cached
        result = self._compute_geometry(shape)
        if None not in shape[1:]:
            self._geometry_cache[key] = result
        return result

    def _compute_geometry(self, shape: tuple[int | None, ...]):
        rank = len(shape) - 2
        k = self.kernel_size if len(self.kernel_size) == rank else self.kernel_size * rank
        s = self.strides if len(self.strides) == rank else self.strides * rank
        d = self.dilation_rate if len(self.dilation_rate) == rank else self.dilation_rate * rank
        window = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True))
        if self.padding == "causal":  # all the padding before: output o sees inputs <= o
            if shape[1] is None:
                return k, s, d, None, (None,)
            spatial: tuple[int, ...] = (int(shape[1]),)
            pads: tuple[tuple[int, int], ...] = ((window[0] - 1, 0),)
        else:
            if any(n is None for n in shape[1:-1]):
                return k, s, d, None, (None,) * rank
            spatial = tuple(int(n) for n in shape[1:-1] if n is not None)
            pads = resolve_padding(self.padding, spatial, window, s, self.owner)
        out, padded = _ops.output_sizes(spatial, window, s, pads)
        if any(o < 1 for o in out):
            raise ValueError(
                f"{self.owner}: kernel (dilated extent {window}) is larger than the padded "
                f"input {padded} (input shape {shape_str(shape)}, padding {self.padding!r})."
            )
        return k, s, d, pads, out

    def compute_output_shape(self, input_shape):
        _, _, _, _, out = self._geometry(input_shape)
        return (input_shape[0], *out, self.filters)

    # ----------------------------------------------------------------- build
    def build_params(self, input_shape, rng):
        if self.rank is None:
            self._set_rank(len(input_shape) - 2)
        c = input_shape[-1] // self.groups
        k = self.kernel_size
        fan_in = int(np.prod(k)) * c
        fan_out = int(np.prod(k)) * self.filters
        init = initializers.get(self.kernel_initializer, self.owner, "kernel_initializer")
        self.params["kernel"] = init((*k, c, self.filters), fan_in, fan_out, rng, self.dtype)
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            self.params["bias"] = init_b((self.filters,), fan_in, fan_out, rng, self.dtype)

    # ------------------------------------------------------------- compute
    def compute_forward(self, x, training):
        k, s, d, pads, out = self._geometry(x.shape)
        xp = _ops.pad(x, pads, ws=self.workspace)
        params = self.params  # read once: a property
        w_shape = params["kernel"].shape
        if self.groups == 1 and _ops.use_shifted("forward", xp.shape, w_shape, s, out):
            xp = np.ascontiguousarray(xp)
            bias = params["bias"] if self.use_bias else None
            y = _ops.shifted_forward(xp, params["kernel"], out, d, self.workspace, bias)
            y, act = activations.apply(self._activation, y)
            return y, ConvSaved(None, xp.shape, k, s, d, pads, out, act, xp)
        band = 0
        if self.groups == 1:
            w = params["kernel"].reshape(-1, self.filters)
            if self.use_bias:  # the bias is the last row of the kernel matrix (ones in col)
                w = np.concatenate((w, params["bias"][None]))
            band = _ops.band_positions(xp.shape, k, s, d, out, self.filters)
            if band:
                col, y = _ops.band_product(xp, k, out, s, d, w, band, self.workspace, self.use_bias)
            else:  # (very large patches: multiplied block by block and not kept)
                keep = not _ops.rebuild_patches(x.shape[0], out, k, x.shape[-1], x.itemsize)
                col, y = _ops.patch_product(
                    xp, k, out, s, d, w, self.workspace, self.use_bias, keep=keep
                )
            y = y.reshape(x.shape[0], *out, self.filters)
            if col is None:  # the kernel gradient builds the blocks again from xp
                y, act = activations.apply(self._activation, y)
                return y, ConvSaved(None, xp.shape, k, s, d, pads, out, act, xp, blocked=True)
        else:  # one product per group of channels; the patches of each group kept
            cg, fg = x.shape[-1] // self.groups, self.filters // self.groups
            col = [
                _ops.im2col(xp[..., g * cg : (g + 1) * cg], k, out, s, d)
                for g in range(self.groups)
            ]
            w = params["kernel"].reshape(-1, self.filters)
            y = np.concatenate(
                [threads.matmul(c, w[:, g * fg : (g + 1) * fg]) for g, c in enumerate(col)],
                axis=-1,
            ).reshape(x.shape[0], *out, self.filters)
            if self.use_bias:
                y += params["bias"]
        y, act = activations.apply(self._activation, y)
        return y, ConvSaved(col, xp.shape, k, s, d, pads, out, act, band=band)

    def _affine_grad(self, dy: np.ndarray, saved: ConvSaved) -> np.ndarray:
        """The gradient with respect to the affine output (before the activation)."""
        if self._activation is None:
            return dy
        return self._activation.backward(dy, saved.activation).astype(dy.dtype, copy=False)

    def compute_backward_params(self, dy, saved):
        dy2 = self._affine_grad(dy, saved).reshape(-1, self.filters)
        shape = self.params["kernel"].shape
        if saved.blocked:  # the patches again, block by block
            geometry = (saved.kernel, saved.out, saved.strides, saved.dilation)
            kernel = _ops.blocked_weight_grad(saved.padded, *geometry, dy2, self.workspace)
            grads = {"kernel": kernel.reshape(shape)}
            if self.use_bias:
                grads["bias"] = _ops.column_sums(dy2, self.workspace)
            return grads
        if saved.padded is not None:  # the forward pass took the shifted products
            return self._backward_params_shifted(dy2, saved)
        if self.groups == 1:
            if saved.band:  # band patches (a one-channel input)
                geometry = (saved.kernel, saved.strides[-1], saved.dilation[-1], saved.band)
                g = _ops.band_weight_grad(saved.patches, dy2, *geometry, self.use_bias)
            else:
                g = _ops.weight_grad(saved.patches, dy2)
            if not self.use_bias:
                return {"kernel": g.reshape(shape)}
            return {"kernel": g[:-1].reshape(shape), "bias": g[-1].copy()}
        fg = self.filters // self.groups
        g = np.concatenate(
            [
                _ops.weight_grad(c, dy2[:, i * fg : (i + 1) * fg])
                for i, c in enumerate(saved.patches)
            ],
            axis=-1,
        )
        grads = {"kernel": g.reshape(shape)}
        if self.use_bias:
            grads["bias"] = _ops.column_sums(dy2, self.workspace)
        return grads

    def _backward_params_shifted(self, dy2: np.ndarray, saved: ConvSaved) -> dict:
        """Kernel and bias gradients after a shifted forward pass (see ``_ops.use_shifted``)."""
        xp, w_shape = saved.padded, self.params["kernel"].shape
        assert xp is not None
        if _ops.use_shifted("params", xp.shape, w_shape, saved.strides, saved.out):
            offsets = _ops.shift_offsets(xp.shape[1:-1], saved.kernel, saved.dilation)
            dy = dy2.reshape(xp.shape[0], *saved.out, self.filters)
            grid = _ops.shifted_dy_grid(dy, xp.shape[1:-1], offsets[-1], self.workspace)
            kernel = _ops.shifted_weight_grad(xp, grid, saved.kernel, saved.dilation)
        else:  # the patches the forward pass did not build, and one product
            geometry = (saved.kernel, saved.out, saved.strides, saved.dilation)
            col = _ops.im2col(xp, *geometry, self.workspace, name="col_params")
            kernel = _ops.weight_grad(col, dy2).reshape(w_shape)
        grads = {"kernel": kernel}
        if self.use_bias:
            grads["bias"] = _ops.column_sums(dy2, self.workspace)
        return grads

    def compute_backward_input(self, dy, saved):
        w = self.params["kernel"]
        padded_shape = saved.padded_shape
        if self.groups == 1 and _ops.use_shifted(
            "input", padded_shape, w.shape, saved.strides, saved.out
        ):
            dy = self._affine_grad(dy, saved)
            offsets = _ops.shift_offsets(padded_shape[1:-1], saved.kernel, saved.dilation)
            grid = _ops.shifted_dy_grid(dy, padded_shape[1:-1], offsets[-1], self.workspace)
            return _ops.shifted_input_grad(
                grid, w, padded_shape, saved.pads, saved.dilation, self.workspace
            )
        spatial = tuple(
            n - b - a for n, (b, a) in zip(saved.padded_shape[1:-1], saved.pads, strict=True)
        )
        waste = math.prod(spatial) / max(math.prod(saved.out), 1)  # input / output positions
        filters = w.shape[-1] // self.groups
        if not _ops.use_correlation(w.shape[-2], filters, waste, saved.strides):
            return self._backward_input_scatter(dy, saved)
        dy = self._affine_grad(dy, saved)
        region = [(b, b + n) for n, (b, _) in zip(spatial, saved.pads, strict=True)]
        dx = np.empty((dy.shape[0], *spatial, saved.padded_shape[-1]), dy.dtype)
        args = (region, saved.strides, saved.dilation)
        if self.groups == 1:
            return _ops.conv_input_grad(dy, w, *args, dx, self.workspace)
        cg, fg = w.shape[-2], self.filters // self.groups
        for g in range(self.groups):
            _ops.conv_input_grad(
                dy[..., g * fg : (g + 1) * fg],
                w[..., g * fg : (g + 1) * fg],
                *args,
                dx[..., g * cg : (g + 1) * cg],
                self.workspace,
            )
        return dx

    def _backward_input_scatter(self, dy, saved):
        """Each tap's product added into its slice of the padded gradient (per tap, in
        blocks of taps side by side along a strided last axis, or banded)."""
        dy2 = self._affine_grad(dy, saved).reshape(-1, self.filters)
        w = self.params["kernel"]
        banded = self.groups == 1 and _ops.use_banded(saved.padded_shape, w.shape)
        geometry = (saved.out, saved.strides, saved.dilation)
        if (
            self.groups == 1
            and not banded
            and _ops.use_grouped(saved.padded_shape, w.shape, *geometry, dy2.dtype.itemsize)
        ):
            return _ops.grouped_transpose(
                dy2, w, saved.padded_shape, saved.pads, *geometry, self.workspace
            )
        dxp = _ops.zeros_padded(saved.padded_shape, saved.pads, dy.dtype, self.workspace)
        if banded:
            _ops.banded_transpose(dy2, w, dxp, saved.out, saved.strides, saved.dilation)
        elif self.groups == 1:
            _ops.conv_transpose(
                dy2, w, dxp, saved.out, saved.strides, saved.dilation, self.workspace
            )
        else:
            cg, fg = w.shape[-2], self.filters // self.groups
            for g in range(self.groups):
                _ops.conv_transpose(
                    np.ascontiguousarray(dy2[:, g * fg : (g + 1) * fg]),
                    w[..., g * fg : (g + 1) * fg],
                    dxp[..., g * cg : (g + 1) * cg],
                    saved.out,
                    saved.strides,
                    saved.dilation,
                    self.workspace,
                )
        return _ops.crop_copy(dxp, saved.pads)


class Conv1D(Conv):
    r"""1-D convolution: :class:`Conv` for inputs ``(batch, length, channels)``.

    Takes the same arguments as :class:`Conv`; ``kernel_size``, ``strides`` and
    ``dilation`` are ints or 1-tuples.

    .. rubric:: Input and output shape

    Input ``(batch, length, channels)``, output ``(batch, out_length, filters)``
    with :math:`\text{out} = \lfloor (n + p_\text{before} + p_\text{after}
    - d(k-1) - 1)/s \rfloor + 1` (see :class:`Conv`).

    Raises
    ------
    ValueError
        As :class:`Conv`; also a tuple with more than one entry for
        ``kernel_size``, ``strides`` or ``dilation``, and inputs that are not 3-D.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv1D(25, 5, strides=2, padding=1).output_shape((None, 40, 1))
    (None, 19, 25)
    """

    _default_name = "conv1d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 1


class Conv2D(Conv):
    r"""2-D convolution: :class:`Conv` for inputs ``(batch, height, width, channels)``.

    Takes the same arguments as :class:`Conv`; ``kernel_size``, ``strides`` and
    ``dilation`` are ints (used for both axes) or pairs.

    .. rubric:: Input and output shape

    Input ``(batch, height, width, channels)``, output ``(batch, out_height,
    out_width, filters)``, each spatial size given by :math:`\lfloor (n +
    p_\text{before} + p_\text{after} - d(k-1) - 1)/s \rfloor + 1` (see :class:`Conv`).

    Raises
    ------
    ValueError
        As :class:`Conv`; also tuples that do not have two entries, and inputs
        that are not 4-D.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv2D(6, 5).output_shape((None, 28, 28, 1))
    (None, 24, 24, 6)
    """

    _default_name = "conv2d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 2


class Conv3D(Conv):
    r"""3-D convolution: :class:`Conv` for inputs ``(batch, depth, height, width, channels)``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.Conv3D(4, 3, padding="same").output_shape((None, 8, 8, 8, 1))
    (None, 8, 8, 8, 4)
    """

    _default_name = "conv3d"
    fresh_output = True  # the same computation as its parent's
    _rank = 3
