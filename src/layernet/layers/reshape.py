r"""Layers that only rearrange entries: Flatten, Reshape, ZeroPadding, UpSampling."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_data_format, int_tuple, is_int, pair_tuple, shape_str
from . import _resample
from .base import MAX_JACOBIAN_ENTRIES, Layer


class FlattenSaved(NamedTuple):
    """What :class:`Flatten` keeps for backward."""

    input_shape: tuple[int, ...]  #: the shape to restore


class Flatten(Layer):
    r"""Flatten every sample to a vector: ``(N, d_1, ..., d_k) -> (N, d_1 ⋯ d_k)``.

    .. rubric:: Input and output shape

    Input ``(batch, d_1, ..., d_k)`` with at least 2 dims; output ``(batch, d_1
    * ... * d_k)`` (a batch of vectors is returned as it is).

    Parameters
    ----------
    name : str, optional
        Layer name (``"flatten_<n>"`` by default); see :class:`Layer`.
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
    In C order flattening does not move any entry of :math:`\operatorname{vec}(X)`, so

    .. math::

        \operatorname{vec}(Y) = \operatorname{vec}(X), \qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T} = I,

    .. math::

        \frac{\partial z}{\partial X} = \operatorname{reshape}\Big(\frac{\partial z}{\partial Y},
        \text{shape of } X\Big).

    There are no parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Flatten().forward(np.zeros((2, 5, 3))).shape
    (2, 15)
    """

    _default_name = "flatten"
    passes_views = True

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else math.prod(rest)
        return (input_shape[0], size)

    def compute_forward(self, x, training):
        y = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        return y, FlattenSaved(x.shape)

    def compute_backward_input(self, dy, saved):
        return dy.reshape(saved.input_shape)

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        x, y, _ = self._jacobian_setup(x, options)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        return np.eye(x.size, dtype=self.dtype)


class RearrangeSaved(NamedTuple):
    """What :class:`Reshape`, the zero paddings and the upsamplings keep for backward."""

    x_shape: tuple[int, ...]  #: the input's shape


class _Rearrange(Layer):
    r"""A layer whose every output entry is one input entry or a zero (not public).

    Its input Jacobian is a 0/1 selection matrix, built here exactly by sending
    the input's flat indices through the same rearrangement.
    """

    def _rearrange(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def compute_forward(self, x, training):
        return self._rearrange(x), RearrangeSaved(x.shape)

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        x, y, _ = self._jacobian_setup(x, options)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        ids = np.arange(1, x.size + 1, dtype=np.float64).reshape(x.shape)
        source = self._rearrange(ids).ravel()
        jac = np.zeros((y.size, x.size), dtype=self.dtype)
        rows = np.flatnonzero(source)
        jac[rows, source[rows].astype(np.int64) - 1] = 1
        return jac


class Reshape(_Rearrange):
    r"""Reshape every sample to ``target_shape`` (C order; the batch axis is kept).

    .. rubric:: Input and output shape

    Input ``(batch, d_1, ..., d_k)``; output ``(batch, *target_shape)``, with a
    ``-1`` entry replaced by ``(d_1 * ... * d_k) / (product of the other
    entries)``. The number of entries per sample must not change.

    Parameters
    ----------
    target_shape : tuple of int
        The sample shape of the output, without the batch axis. One entry may be
        ``-1``: it is inferred from the input's size, as in Keras and NumPy.
    name : str, optional
        Layer name (``"reshape_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``Reshape
        'reshape_1': invalid value for `target_shape`: expected a non-empty
        tuple of positive ints with at most one -1, received ...``; an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: ``cannot
        reshape samples of shape ... (N entries) to ...`` when the sizes do not
        match (or do not divide, with ``-1``). In backward: a ``dy`` whose shape
        is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Reshaping in C order moves no entry of :math:`\operatorname{vec}(X)`:

    .. math::

        \operatorname{vec}(Y) = \operatorname{vec}(X),\qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T} = I,\qquad
        \frac{\partial z}{\partial X} = \operatorname{reshape}(G, \text{shape of } X).

    No parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Reshape((3, -1)).forward(np.zeros((2, 12))).shape
    (2, 3, 4)
    >>> ln.Reshape((2, 6)).output_shape((None, 3, 4))
    (None, 2, 6)
    """

    _default_name = "reshape"

    def __init__(
        self,
        target_shape: Sequence[int],
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        if (
            not isinstance(target_shape, Sequence)
            or isinstance(target_shape, str)
            or len(target_shape) == 0
            or not all(is_int(t) and (t >= 1 or t == -1) for t in target_shape)
            or sum(t == -1 for t in target_shape) > 1
        ):
            raise ValueError(
                f"{self.owner}: invalid value for `target_shape`: expected a non-empty tuple "
                f"of positive ints with at most one -1, received {target_shape!r}."
            )
        self.target_shape = tuple(int(t) for t in target_shape)

    def get_config(self) -> dict[str, Any]:
        return {"target_shape": list(self.target_shape), **super().get_config()}

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(s is None for s in rest):
            return (input_shape[0], *(None if t == -1 else t for t in self.target_shape))
        total = math.prod(rest)
        known = math.prod([t for t in self.target_shape if t != -1])
        if -1 in self.target_shape:
            if total % known:
                raise ValueError(
                    f"{self.owner}: cannot reshape samples of shape {shape_str(rest)} "
                    f"({total} entries) to {shape_str(self.target_shape)}: {total} is not a "
                    f"multiple of {known}."
                )
            out = tuple(total // known if t == -1 else t for t in self.target_shape)
        else:
            if known != total:
                raise ValueError(
                    f"{self.owner}: cannot reshape samples of shape {shape_str(rest)} "
                    f"({total} entries) to {shape_str(self.target_shape)} ({known} entries)."
                )
            out = self.target_shape
        return (input_shape[0], *out)

    def _rearrange(self, x):
        return x.reshape(self.compute_output_shape(x.shape))

    def compute_backward_input(self, dy, saved):
        return dy.reshape(saved.x_shape)


class _ZeroPadding(_Rearrange):
    """Zero padding of the spatial axes (the public classes fix the rank)."""

    _rank = 1

    def __init__(
        self,
        padding: Any,
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.data_format = check_data_format(data_format, self.owner)
        self.padding = pair_tuple(padding, self._rank, "padding", self.owner)

    @property
    def input_ndim(self) -> int:  # type: ignore[override]
        return self._rank + 2

    def get_config(self) -> dict[str, Any]:
        return {
            "padding": list(self.padding[0])
            if self._rank == 1
            else [list(p) for p in self.padding],
            "data_format": self.data_format,
            **super().get_config(),
        }

    def compute_output_shape(self, input_shape):
        spatial = tuple(
            None if n is None else n + b + a
            for n, (b, a) in zip(input_shape[1:-1], self.padding, strict=True)
        )
        return (input_shape[0], *spatial, input_shape[-1])

    def _rearrange(self, x):
        return np.pad(x, ((0, 0), *self.padding, (0, 0)))

    def compute_backward_input(self, dy, saved):
        x_shape = saved.x_shape
        index = tuple(
            slice(b, b + n) for n, (b, _) in zip(x_shape[1:-1], self.padding, strict=True)
        )
        return np.ascontiguousarray(dy[(slice(None), *index)])


_ZERO_PADDING_NOTES = r"""
    Notes
    -----
    With :math:`p_i` zeros before axis :math:`i` (and :math:`q_i` after),

    .. math::

        Y_{n,\,p + o,\,c} = X_{n,o,c},\ \text{zeros elsewhere};\qquad
        \frac{\partial z}{\partial X_{n,o,c}} = G_{n,\,p + o,\,c},

    the gradient is :math:`G` with the border cropped. The Jacobian
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T` is a 0/1
    matrix with one 1 in each row of an input entry and all-zero rows for the
    padding; no parameters.
"""


class ZeroPadding1D(_ZeroPadding):
    r"""Pad the length axis of ``(batch, length, channels)`` with zeros.

    .. rubric:: Input and output shape

    Input ``(batch, length, channels)``; output ``(batch, length + p_before +
    p_after, channels)``.

    Parameters
    ----------
    padding : int or (int, int), default 1
        Zeros before and after (an int: the same on both sides).
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"zero_padding1d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``padding`` not a
        non-negative int or pair; ``data_format`` other than
        ``"channels_last"``; an invalid ``dtype``, ``name``, ``seed`` or
        ``trainable``. On an input: a number of dims other than 3. In backward:
        a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ZeroPadding1D((1, 2), dtype="float64").forward(np.ones((1, 2, 1)))[0, :, 0]
    array([0., 1., 1., 0., 0.])
    """

    _default_name = "zero_padding1d"
    _rank = 1

    def __init__(
        self,
        padding: int | tuple[int, int] = 1,
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            padding, data_format, name=name, dtype=dtype, seed=seed, trainable=trainable
        )


class ZeroPadding2D(_ZeroPadding):
    r"""Pad height and width of ``(batch, height, width, channels)`` with zeros.

    .. rubric:: Input and output shape

    Input ``(batch, height, width, channels)``; output ``(batch, height + top +
    bottom, width + left + right, channels)``.

    Parameters
    ----------
    padding : int, (int, int) or ((int, int), (int, int)), default (1, 1)
        An int pads every side equally; ``(h, w)`` pads ``h`` above and below and
        ``w`` left and right; ``((top, bottom), (left, right))`` sets each side.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"zero_padding2d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``padding`` not an
        int, a pair of ints or two ``(before, after)`` pairs of non-negative
        ints; ``data_format`` other than ``"channels_last"``; an invalid
        ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: a number of
        dims other than 4. In backward: a ``dy`` whose shape is not the last
        output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ZeroPadding2D(((1, 0), (0, 2))).output_shape((None, 3, 3, 4))
    (None, 4, 5, 4)
    """

    _default_name = "zero_padding2d"
    _rank = 2

    def __init__(
        self,
        padding: Any = (1, 1),
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            padding, data_format, name=name, dtype=dtype, seed=seed, trainable=trainable
        )


class ZeroPadding3D(_ZeroPadding):
    r"""Pad depth, height and width of ``(batch, depth, height, width, channels)`` with zeros.

    .. rubric:: Input and output shape

    Input ``(batch, d_1, d_2, d_3, channels)``; output ``(batch, d_1 + p_1 +
    q_1, d_2 + p_2 + q_2, d_3 + p_3 + q_3, channels)`` with :math:`p_i`,
    :math:`q_i` the zeros before and after axis :math:`i`.

    Parameters
    ----------
    padding : int, tuple of 3 ints, or 3 (before, after) pairs, default ((1, 1), (1, 1), (1, 1))
        As for :class:`ZeroPadding2D`, one entry per spatial axis.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"zero_padding3d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``padding`` not an
        int, three ints or three ``(before, after)`` pairs of non-negative ints;
        ``data_format`` other than ``"channels_last"``; an invalid ``dtype``,
        ``name``, ``seed`` or ``trainable``. On an input: a number of dims other
        than 5. In backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> ln.ZeroPadding3D(1).output_shape((None, 2, 3, 4, 1))
    (None, 4, 5, 6, 1)
    """

    _default_name = "zero_padding3d"
    _rank = 3

    def __init__(
        self,
        padding: Any = ((1, 1), (1, 1), (1, 1)),
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            padding, data_format, name=name, dtype=dtype, seed=seed, trainable=trainable
        )


class _UpSampling(_Rearrange):
    """Nearest-neighbour upsampling by repetition (the public classes fix the rank)."""

    _rank = 1

    def __init__(
        self,
        size: Any,
        data_format: str | None = None,
        interpolation: str = "nearest",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.data_format = check_data_format(data_format, self.owner)
        self.size = int_tuple(size, self._rank, "size", self.owner)
        allowed = ("nearest", "bilinear") if self._rank == 2 else ("nearest",)
        if interpolation not in allowed:
            raise ValueError(
                f"{self.owner}: invalid value for `interpolation`: expected one of "
                f"{', '.join(repr(a) for a in allowed)}, received {interpolation!r}."
            )
        self.interpolation = interpolation

    @property
    def input_ndim(self) -> int:  # type: ignore[override]
        return self._rank + 2

    def get_config(self) -> dict[str, Any]:
        cfg = {"size": list(self.size), "data_format": self.data_format}
        if self._rank == 2:
            cfg["interpolation"] = self.interpolation
        return {**cfg, **super().get_config()}

    def compute_output_shape(self, input_shape):
        spatial = tuple(
            None if n is None else n * s for n, s in zip(input_shape[1:-1], self.size, strict=True)
        )
        return (input_shape[0], *spatial, input_shape[-1])

    def _bilinear(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Keras's bilinear upsampling (``jax.image.resize``) as two matrices."""
        (h, w), (sh, sw) = shape[1:3], self.size
        return (
            _resample.resize_matrix(h, h * sh, "bilinear", self.dtype),
            _resample.resize_matrix(w, w * sw, "bilinear", self.dtype),
        )

    def jacobian_input(self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray:  # type: ignore[override]
        if self.interpolation == "bilinear":  # not a selection: built from backward
            return Layer.jacobian_input(self, x, max_entries=max_entries)
        return super().jacobian_input(x, max_entries=max_entries)

    def _rearrange(self, x):
        if self.interpolation == "bilinear":
            return _resample.apply(x, *self._bilinear(x.shape))
        n, *spatial, c = x.shape
        split = (n, *(v for m in spatial for v in (m, 1)), c)
        wide = (n, *(v for m, s in zip(spatial, self.size, strict=True) for v in (m, s)), c)
        out = np.broadcast_to(x.reshape(split), wide)
        return out.reshape(self.compute_output_shape(x.shape))

    def compute_backward_input(self, dy, saved):
        if self.interpolation == "bilinear":
            return _resample.apply_transpose(dy, *self._bilinear(saved.x_shape))
        n, *spatial, c = saved.x_shape
        wide = (n, *(v for m, s in zip(spatial, self.size, strict=True) for v in (m, s)), c)
        return dy.reshape(wide).sum(axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


_UPSAMPLING_NOTES = r"""
    Notes
    -----
    Each entry is repeated :math:`s_i` times along spatial axis :math:`i`
    (nearest-neighbour upsampling), so with :math:`\lfloor\cdot\rfloor` per axis

    .. math::

        Y_{n,o,c} = X_{n,\lfloor o/s \rfloor,c},\qquad
        \frac{\partial z}{\partial X_{n,p,c}} = \sum_{o\,:\,\lfloor o/s\rfloor = p} G_{n,o,c}:

    the gradient sums :math:`G` over each block of :math:`\prod s_i` copies. The
    Jacobian is a 0/1 matrix with one 1 per row (each output copies one input)
    and :math:`\prod s_i` ones per column; no parameters.
"""


class UpSampling1D(_UpSampling):
    r"""Repeat each step of ``(batch, length, channels)`` ``size`` times.

    .. rubric:: Input and output shape

    Input ``(batch, length, channels)``; output ``(batch, length * size,
    channels)``.

    Parameters
    ----------
    size : int, default 2
        The upsampling factor.
    name : str, optional
        Layer name (``"up_sampling1d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``size`` not a
        positive int; an invalid ``dtype``, ``name``, ``seed`` or ``trainable``.
        On an input: a number of dims other than 3. In backward: a ``dy`` whose
        shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.UpSampling1D(2, dtype="float64").forward(np.array([[[1.0], [2.0]]]))[0, :, 0]
    array([1., 1., 2., 2.])
    """

    _default_name = "up_sampling1d"
    _rank = 1

    def __init__(
        self,
        size: int = 2,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(size, name=name, dtype=dtype, seed=seed, trainable=trainable)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg["size"] = self.size[0]
        del cfg["data_format"]
        return cfg


class UpSampling2D(_UpSampling):
    r"""Repeat rows and columns of ``(batch, height, width, channels)``.

    .. rubric:: Input and output shape

    Input ``(batch, height, width, channels)``; output ``(batch, height * s_1,
    width * s_2, channels)`` with ``size = (s_1, s_2)``.

    Parameters
    ----------
    size : int or (int, int), default (2, 2)
        Factors for height and width.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    interpolation : {"nearest", "bilinear"}, default "nearest"
        ``"nearest"`` repeats entries; ``"bilinear"`` interpolates between
        neighbours with half-pixel centres (Keras's ``ops.image.resize``; see
        :class:`~layernet.Resizing`): per sample and channel :math:`Y = R_h X R_w^T`,
        :math:`\partial z/\partial X = R_h^T G R_w`.
    name : str, optional
        Layer name (``"up_sampling2d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``size`` not a
        positive int or pair of positive ints; ``interpolation`` other than
        ``"nearest"`` or ``"bilinear"``; ``data_format`` other than ``"channels_last"``; an
        invalid ``dtype``, ``name``, ``seed`` or ``trainable``. On an input: a
        number of dims other than 4. In backward: a ``dy`` whose shape is not
        the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    >>> ln.UpSampling2D((1, 2), dtype="float64").forward(x)[0, :, :, 0]
    array([[1., 1., 2., 2.],
           [3., 3., 4., 4.]])
    """

    _default_name = "up_sampling2d"
    _rank = 2

    def __init__(
        self,
        size: int | tuple[int, int] = (2, 2),
        data_format: str | None = None,
        interpolation: str = "nearest",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            size, data_format, interpolation, name=name, dtype=dtype, seed=seed, trainable=trainable
        )


class UpSampling3D(_UpSampling):
    r"""Repeat entries along depth, height and width of 5-D channels-last inputs.

    .. rubric:: Input and output shape

    Input ``(batch, d_1, d_2, d_3, channels)``; output ``(batch, d_1 s_1, d_2
    s_2, d_3 s_3, channels)`` with ``size = (s_1, s_2, s_3)``.

    Parameters
    ----------
    size : int or (int, int, int), default (2, 2, 2)
        Factors for depth, height and width.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"up_sampling3d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``size`` not a
        positive int or three positive ints; ``data_format`` other than
        ``"channels_last"``; an invalid ``dtype``, ``name``, ``seed`` or
        ``trainable``. On an input: a number of dims other than 5. In backward:
        a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.
    {notes}
    Examples
    --------
    >>> import layernet as ln
    >>> ln.UpSampling3D(2).output_shape((None, 1, 2, 3, 4))
    (None, 2, 4, 6, 4)
    """

    _default_name = "up_sampling3d"
    _rank = 3

    def __init__(
        self,
        size: int | tuple[int, int, int] = (2, 2, 2),
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(size, data_format, name=name, dtype=dtype, seed=seed, trainable=trainable)


for _pad in (ZeroPadding1D, ZeroPadding2D, ZeroPadding3D):
    _pad.__doc__ = (_pad.__doc__ or "").replace("    {notes}\n", _ZERO_PADDING_NOTES + "\n")
for _up in (UpSampling1D, UpSampling2D, UpSampling3D):
    _up.__doc__ = (_up.__doc__ or "").replace("    {notes}\n", _UPSAMPLING_NOTES + "\n")
