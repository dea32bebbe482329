r"""Merging layers: element-wise combinations, concatenation and batched dot products.

Each layer takes a list of arrays and returns one; its ``backward_input``
returns one gradient per input. The element-wise layers follow Keras's
broadcasting rule: the batch sizes must be equal; an input of lower rank gets
size-1 axes inserted right after the batch axis until the ranks match; then
the sample axes broadcast as in NumPy (equal sizes, or a size of 1). The
gradient of an input that was broadcast is summed over the broadcast axes,

.. math::

    \frac{\partial z}{\partial X_i}
      = \operatorname{unbroadcast}_{X_i}\Big(\frac{\partial z}{\partial Y}
        \odot \frac{\partial Y}{\partial X_i}\Big).

The functional forms (``ln.layers.add``, ``ln.layers.concatenate``, ...) are
``Layer(...)(inputs)``: a new layer called once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from .. import threads
from .._validation import check_bool, is_int, shape_str
from .base import MAX_JACOBIAN_ENTRIES, Layer, is_shape_list

__all__ = [
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
]


class MergeSaved(NamedTuple):
    """What an element-wise merging layer keeps for backward."""

    shapes: list[tuple[int, ...]]  #: the shapes of the inputs as given
    xs: list[np.ndarray] | None  #: the inputs, rank-aligned (``Multiply``)
    winner: np.ndarray | None  #: which input won each entry (``Maximum``, ``Minimum``)


def _shapes_text(shapes: Sequence[Sequence[int | None]]) -> str:
    return ", ".join(shape_str(s) for s in shapes)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (an input's shape before alignment and broadcasting)."""
    aligned = (shape[0],) + (1,) * (g.ndim - len(shape)) + tuple(shape[1:])
    axes = tuple(i for i, (a, n) in enumerate(zip(aligned, g.shape, strict=True)) if a != n)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.array(g.reshape(shape))  # a new array: never a view of the upstream gradient


def _align(x: np.ndarray, ndim: int) -> np.ndarray:
    """Insert size-1 axes after the batch axis until ``x`` has ``ndim`` dims (Keras's rule)."""
    return x.reshape((x.shape[0],) + (1,) * (ndim - x.ndim) + x.shape[1:])


class _Merge(Layer):
    r"""Element-wise merging layer: shape rules, broadcasting and the mask rule."""

    #: Exact number of inputs, or ``None`` for one or more.
    n_inputs: int | None = None

    def __init__(
        self, *, name: str | None = None, dtype: str = "float32", seed: int | None = None
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable")
        return cfg

    def _check_list(self, shape: Any) -> list[tuple[int | None, ...]]:
        kind = type(self).__name__
        if not is_shape_list(shape):
            raise ValueError(
                f"{self.owner}: expected a list of input arrays (a {kind} layer merges "
                f"several inputs), got one input of shape {shape_str(shape)}."
            )
        n = self.n_inputs
        if n is not None and len(shape) != n:
            raise ValueError(
                f"{self.owner}: expected exactly {n} inputs, got {len(shape)} "
                f"(shapes {_shapes_text(shape)})."
            )
        Layer.check_input_shape(self, shape)
        batches = {s[0] for s in shape} - {None}
        if len(batches) > 1:
            raise ValueError(
                f"{self.owner}: expected inputs with the same batch size, got shapes "
                f"{_shapes_text(shape)}."
            )
        if self.built and len(shape) != len(self.input_shape):
            raise ValueError(
                f"{self.owner}: built for {len(self.input_shape)} inputs, got {len(shape)} "
                f"(shapes {_shapes_text(shape)})."
            )
        return list(shape)

    def check_input_shape(self, shape):
        shapes = self._check_list(shape)
        self._broadcast_shape(shapes)

    def _broadcast_shape(self, shapes: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
        """The sample shape of the output (Keras's rule), or the error naming both shapes."""
        out: tuple[int | None, ...] = tuple(shapes[0][1:])
        for s in shapes[1:]:
            a, b = out, tuple(s[1:])
            if len(a) < len(b):
                a, b = b, a
            b = (1,) * (len(a) - len(b)) + b
            merged: list[int | None] = []
            for i, j in zip(a, b, strict=True):
                if i is None or j is None:
                    merged.append(None if i != 1 and j != 1 else (j if i == 1 else i))
                elif i == 1 or j == 1 or i == j:
                    merged.append(j if i == 1 else i)
                else:
                    raise ValueError(
                        f"{self.owner}: expected inputs whose shapes broadcast (equal sizes "
                        f"or 1 on every axis after the batch), got shapes "
                        f"{shape_str(shapes[0])} and {shape_str(s)}."
                    )
            out = tuple(merged)
        return out

    def compute_output_shape(self, input_shape):
        shapes = self._check_list(input_shape)
        batches = {s[0] for s in shapes} - {None}
        batch = batches.pop() if batches else None
        return (batch, *self._broadcast_shape(shapes))

    def _aligned(self, x: list[np.ndarray]) -> list[np.ndarray]:
        ndim = max(a.ndim for a in x)
        return [_align(a, ndim) for a in x]

    def _coefficient(self, i: int, saved: MergeSaved, n: int) -> Any:
        r""":math:`\partial Y[p]/\partial X_i[k(p)]` for every output entry :math:`p` (it reads
        one entry :math:`k(p)` of each input): a scalar or an array broadcasting to ``Y``."""
        raise NotImplementedError

    def jacobian_input(
        self, x: Any, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> Any:
        r"""One closed-form Jacobian per input: row :math:`p` holds
        :math:`\partial Y[p]/\partial X_i[k(p)]` in column :math:`k(p)`, the entry of
        :math:`X_i` that output entry :math:`p` reads (after broadcasting).

        Parameters
        ----------
        x : list of ndarray
            The inputs at which to differentiate (small shapes only).
        max_entries : int, default 4_000_000
            Refuse to build a matrix with more entries than this.
        **options
            Unused (accepted as for every layer).

        Returns
        -------
        list of ndarray
            One ``(Y.size, X_i.size)`` matrix per input.
        """
        x, y, saved = self._jacobian_setup(x, options)
        rows = np.arange(y.size)
        mats = []
        for i, xi in enumerate(x):
            self._check_jacobian_size(y.size, xi.size, max_entries, f"jacobian_input[{i}]")
            ids = _align(np.arange(xi.size).reshape(xi.shape), y.ndim)
            coef = self._coefficient(i, saved, len(x))
            jac = np.zeros((y.size, xi.size), dtype=self.dtype)
            jac[rows, np.broadcast_to(ids, y.shape).ravel()] = np.broadcast_to(
                coef, y.shape
            ).ravel()
            mats.append(jac)
        return mats

    def compute_mask(
        self, inputs: Sequence[Any], mask: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray | None:
        r"""The output mask: Keras's rule, the logical OR of the input masks.

        A position of the output is kept when any input keeps it. ``None``
        when ``mask`` is ``None`` or any input has no mask.

        Parameters
        ----------
        inputs : list of ndarray
            The inputs (only their number is used).
        mask : list of (ndarray of bool or None), optional
            One mask per input, each of shape ``(batch, steps)`` or broadcastable.

        Returns
        -------
        ndarray of bool or None

        Raises
        ------
        ValueError
            If ``mask`` is not a list with one entry per input.
        """
        masks = _check_masks(self, inputs, mask)
        if masks is None or any(m is None for m in masks):
            return None
        out = np.asarray(masks[0], dtype=bool)
        for m in masks[1:]:
            out = np.logical_or(out, np.asarray(m, dtype=bool))
        return out


def _check_masks(layer: Layer, inputs: Any, mask: Any) -> list[Any] | None:
    if mask is None:
        return None
    if not isinstance(mask, list | tuple):
        raise ValueError(
            f"{layer.owner}: expected `mask` to be a list with one mask (or None) per "
            f"input, received {type(mask).__name__}."
        )
    if not isinstance(inputs, list | tuple) or len(mask) != len(inputs):
        n = len(inputs) if isinstance(inputs, list | tuple) else 1
        raise ValueError(
            f"{layer.owner}: expected one mask per input ({n}), received {len(mask)} masks."
        )
    return list(mask)


class Add(_Merge):
    r"""Element-wise sum of its inputs: :math:`Y = \sum_i X_i`.

    .. rubric:: Input and output shape

    A list of one or more arrays ``(batch, ...)`` with the same batch size whose
    other axes broadcast (Keras's rule: a lower-rank input gets size-1 axes after the batch axis);
    output: the broadcast shape.

    Parameters
    ----------
    name : str, optional
        Layer name (``"add_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer.

    Raises
    ------
    ValueError
        ``Add 'add_1': expected a list of input arrays ...`` for a single array;
        ``expected inputs with the same batch size, got shapes (2, 3), (4, 3).``;
        ``expected inputs whose shapes broadcast ..., got shapes (2, 3) and (2, 4).``

    Notes
    -----
    .. math::

        Y = \sum_i X_i,\qquad
        \frac{\partial z}{\partial X_i} = \operatorname{unbroadcast}_{X_i}
            \Big(\frac{\partial z}{\partial Y}\Big).

    For inputs of equal shapes each input Jacobian is the identity
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X_i)^T = I`;
    for a broadcast input it is a 0/1 matrix with one 1 per row, in the column
    of the entry that was repeated.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.Add()([np.ones((2, 3)), np.full((2, 1), 2.0)])
    array([[3., 3., 3.],
           [3., 3., 3.]], dtype=float32)
    """

    _default_name = "add"
    fresh_output = True  # a new sum; backward: a new array per input
    fresh_gradient = True

    def compute_forward(self, x, training):
        xs = self._aligned(x)
        y = np.zeros(np.broadcast_shapes(*(a.shape for a in xs)), dtype=self.dtype)
        for a in xs:
            y += a
        return y, MergeSaved([a.shape for a in x], None, None)

    def compute_backward_input(self, dy, saved):
        return [_unbroadcast(dy, s) for s in saved.shapes]

    def _coefficient(self, i, saved, n):
        return 1.0


class Subtract(_Merge):
    r"""Difference of exactly two inputs: :math:`Y = X_1 - X_2`.

    .. rubric:: Input and output shape

    A list of two arrays ``(batch, ...)`` with the same batch size whose other
    axes broadcast; output: the broadcast shape.

    Parameters
    ----------
    name : str, optional
        Layer name (``"subtract_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        ``expected exactly 2 inputs, got 3 ...``, and the shape errors of :class:`Add`.

    Notes
    -----
    .. math::

        Y = X_1 - X_2,\qquad
        \frac{\partial z}{\partial X_1} = \operatorname{unbroadcast}_{X_1}(G),\qquad
        \frac{\partial z}{\partial X_2} = -\operatorname{unbroadcast}_{X_2}(G),

    with :math:`G = \partial z/\partial Y`; the Jacobians are :math:`I` and
    :math:`-I` for equal shapes.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.subtract([np.array([[3.0, 4.0]]), np.array([[1.0, 1.0]])])
    array([[2., 3.]], dtype=float32)
    """

    _default_name = "subtract"
    n_inputs = 2

    def compute_forward(self, x, training):
        a, b = self._aligned(x)
        return a - b, MergeSaved([t.shape for t in x], None, None)

    def compute_backward_input(self, dy, saved):
        return [_unbroadcast(dy, saved.shapes[0]), -_unbroadcast(dy, saved.shapes[1])]

    def _coefficient(self, i, saved, n):
        return 1.0 if i == 0 else -1.0


class Multiply(_Merge):
    r"""Element-wise product of its inputs: :math:`Y = \prod_i X_i`.

    .. rubric:: Input and output shape

    As :class:`Add`.

    Parameters
    ----------
    name : str, optional
        Layer name (``"multiply_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        The shape errors of :class:`Add`.

    Notes
    -----
    .. math::

        Y = X_1 \odot \cdots \odot X_n,\qquad
        \frac{\partial z}{\partial X_i} = \operatorname{unbroadcast}_{X_i}
            \Big(G \odot \prod_{j \ne i} X_j\Big).

    The product of the other inputs is formed directly (no division), so zeros
    are handled. For equal shapes the Jacobian with respect to :math:`X_i` is
    :math:`\operatorname{diag}(\operatorname{vec}\prod_{j\ne i} X_j)`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.multiply([np.array([[2.0, 3.0]]), np.array([[4.0, 5.0]])])
    array([[ 8., 15.]], dtype=float32)
    """

    _default_name = "multiply"

    def compute_forward(self, x, training):
        xs = self._aligned(x)
        y = xs[0]
        for a in xs[1:]:
            y = y * a
        y = np.broadcast_to(y, np.broadcast_shapes(*(a.shape for a in xs))).copy()
        return y, MergeSaved([a.shape for a in x], xs, None)

    def compute_backward_input(self, dy, saved):
        grads = []
        for i, shape in enumerate(saved.shapes):
            g = dy
            for j, a in enumerate(saved.xs):
                if j != i:
                    g = g * a
            grads.append(_unbroadcast(np.broadcast_to(g, dy.shape), shape))
        return grads

    def _coefficient(self, i, saved, n):
        others = [a for j, a in enumerate(saved.xs) if j != i]
        out: Any = 1.0
        for a in others:
            out = out * a
        return out


class Average(_Merge):
    r"""Element-wise mean of its inputs: :math:`Y = \frac1n\sum_i X_i`.

    .. rubric:: Input and output shape

    As :class:`Add`.

    Parameters
    ----------
    name : str, optional
        Layer name (``"average_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        The shape errors of :class:`Add`.

    Notes
    -----
    .. math::

        Y = \frac1n \sum_{i=1}^n X_i,\qquad
        \frac{\partial z}{\partial X_i} = \frac1n\operatorname{unbroadcast}_{X_i}(G);

    each input Jacobian is :math:`I/n` for equal shapes.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.average([np.array([[1.0, 2.0]]), np.array([[3.0, 6.0]])])
    array([[2., 4.]], dtype=float32)
    """

    _default_name = "average"

    def compute_forward(self, x, training):
        xs = self._aligned(x)
        y = np.zeros(np.broadcast_shapes(*(a.shape for a in xs)), dtype=self.dtype)
        for a in xs:
            y += a
        y /= len(xs)
        return y, MergeSaved([a.shape for a in x], None, None)

    def compute_backward_input(self, dy, saved):
        n = len(saved.shapes)
        return [_unbroadcast(dy / n, s) for s in saved.shapes]

    def _coefficient(self, i, saved, n):
        return 1.0 / n


class _Extremum(_Merge):
    _pick: Any = None

    def compute_forward(self, x, training):
        xs = self._aligned(x)
        shape = np.broadcast_shapes(*(a.shape for a in xs))
        stacked = np.stack([np.broadcast_to(a, shape) for a in xs])
        index = type(self)._pick(stacked, axis=0)  # the first extreme input on ties
        y = np.take_along_axis(stacked, index[None], axis=0)[0]
        return y, MergeSaved([a.shape for a in x], None, index)

    def compute_backward_input(self, dy, saved):
        return [
            _unbroadcast(np.where(saved.winner == i, dy, 0).astype(dy.dtype, copy=False), s)
            for i, s in enumerate(saved.shapes)
        ]

    def _coefficient(self, i, saved, n):
        return (saved.winner == i).astype(self.dtype)


class Maximum(_Extremum):
    r"""Element-wise maximum of its inputs: :math:`Y = \max_i X_i`.

    .. rubric:: Input and output shape

    As :class:`Add`.

    Parameters
    ----------
    name : str, optional
        Layer name (``"maximum_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        The shape errors of :class:`Add`.

    Notes
    -----
    With :math:`k(p) = \min\{i : X_i[p] = Y[p]\}` the first input that attains
    the maximum at position :math:`p` (ties go to the earliest input in the
    list, like ``torch.max`` of the stacked inputs),

    .. math::

        Y[p] = \max_i X_i[p],\qquad
        \frac{\partial z}{\partial X_i} = \operatorname{unbroadcast}_{X_i}
            \big(G \odot [k = i]\big).

    Each input Jacobian (equal shapes) is the 0/1 diagonal matrix
    :math:`\operatorname{diag}(\operatorname{vec}[k = i])`. The map is not
    differentiable at ties; this is the rule chosen there.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.maximum([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])])
    array([[3., 5.]], dtype=float32)
    """

    _default_name = "maximum"
    _pick = staticmethod(np.argmax)


class Minimum(_Extremum):
    r"""Element-wise minimum of its inputs: :math:`Y = \min_i X_i`.

    .. rubric:: Input and output shape

    As :class:`Add`.

    Parameters
    ----------
    name : str, optional
        Layer name (``"minimum_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        The shape errors of :class:`Add`.

    Notes
    -----
    As :class:`Maximum` with :math:`\min`: the gradient of each position goes to
    the first input that attains the minimum there,

    .. math::

        \frac{\partial z}{\partial X_i} = \operatorname{unbroadcast}_{X_i}
            \big(G \odot [k = i]\big),\qquad k(p) = \min\{i : X_i[p] = Y[p]\}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.minimum([np.array([[1.0, 5.0]]), np.array([[3.0, 2.0]])])
    array([[1., 2.]], dtype=float32)
    """

    _default_name = "minimum"
    _pick = staticmethod(np.argmin)


class ConcatenateSaved(NamedTuple):
    """What :class:`Concatenate` keeps for backward."""

    sizes: list[int]  #: each input's size along the axis
    axis: int  #: the axis, non-negative


class Concatenate(Layer):
    r"""Concatenation of its inputs along ``axis``.

    .. rubric:: Input and output shape

    A list of one or more arrays of equal rank whose shapes agree except on
    ``axis``; output: the same shape with the sizes on ``axis`` added.

    Parameters
    ----------
    axis : int, default -1
        The axis to concatenate along (negative counts from the end).
    name : str, optional
        Layer name (``"concatenate_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        ``invalid value for `axis`: expected an int``; an axis outside the
        inputs' rank; ``expected inputs whose shapes match except on axis -1,
        got shapes (2, 3) and (2, 4, 1).``

    Notes
    -----
    With :math:`Y = [X_1, \dots, X_n]` along the axis, each input gradient is
    the matching slice of the upstream gradient,

    .. math::

        \frac{\partial z}{\partial X_i} = G[\dots, o_i : o_i + s_i, \dots],
        \qquad o_i = \sum_{j<i} s_j,

    so each input Jacobian is a 0/1 selection matrix: row :math:`p` of
    :math:`\operatorname{vec}(Y)` has a single 1, in the column of the entry of
    :math:`X_i` it copies (none when it comes from another input).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.concatenate([np.zeros((1, 2)), np.ones((1, 1))])
    array([[0., 0., 1.]], dtype=float32)
    """

    _default_name = "concatenate"

    def __init__(
        self,
        axis: int = -1,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed)
        if not is_int(axis):
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: expected an int, received {axis!r}."
            )
        self.axis = int(axis)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable")
        return {"axis": self.axis, **cfg}

    def check_input_shape(self, shape):
        if not is_shape_list(shape):
            raise ValueError(
                f"{self.owner}: expected a list of input arrays (a Concatenate layer merges "
                f"several inputs), got one input of shape {shape_str(shape)}."
            )
        Layer.check_input_shape(self, shape)
        rank = len(shape[0])
        if not -rank <= self.axis < rank:
            raise ValueError(
                f"{self.owner}: `axis` {self.axis} is out of range for inputs of shape "
                f"{shape_str(shape[0])} ({rank} dims)."
            )
        axis = self.axis % rank
        for s in shape[1:]:
            same = len(s) == rank and all(
                a == b or a is None or b is None
                for d, (a, b) in enumerate(zip(shape[0], s, strict=True))
                if d != axis
            )
            if not same:
                raise ValueError(
                    f"{self.owner}: expected inputs whose shapes match except on axis "
                    f"{self.axis}, got shapes {shape_str(shape[0])} and {shape_str(s)}."
                )

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape[0])
        out = list(input_shape[0])
        sizes = [s[axis] for s in input_shape]
        out[axis] = None if None in sizes else sum(sizes)
        return tuple(out)

    def compute_forward(self, x, training):
        axis = self.axis % x[0].ndim
        return np.concatenate(x, axis=axis), ConcatenateSaved([a.shape[axis] for a in x], axis)

    def jacobian_input(
        self, x: Any, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> Any:
        r"""One closed-form 0/1 selection matrix per input (see Notes).

        Parameters
        ----------
        x : list of ndarray
            The inputs at which to differentiate (small shapes only).
        max_entries : int, default 4_000_000
            Refuse to build a matrix with more entries than this.
        **options
            Unused (accepted as for every layer).

        Returns
        -------
        list of ndarray
            One ``(Y.size, X_i.size)`` matrix per input.
        """
        x, y, saved = self._jacobian_setup(x, options)
        owner = np.concatenate(
            [np.full(a.shape, i) for i, a in enumerate(x)], axis=saved.axis
        ).ravel()
        entry = np.concatenate(
            [np.arange(a.size).reshape(a.shape) for a in x], axis=saved.axis
        ).ravel()
        mats = []
        for i, xi in enumerate(x):
            self._check_jacobian_size(y.size, xi.size, max_entries, f"jacobian_input[{i}]")
            jac = np.zeros((y.size, xi.size), dtype=self.dtype)
            rows = np.flatnonzero(owner == i)
            jac[rows, entry[rows]] = 1
            mats.append(jac)
        return mats

    def compute_backward_input(self, dy, saved):
        cuts = np.cumsum(saved.sizes)[:-1]
        return [np.array(g) for g in np.split(dy, cuts, axis=saved.axis)]

    def compute_mask(
        self, inputs: Sequence[np.ndarray], mask: Sequence[np.ndarray | None] | None = None
    ) -> np.ndarray | None:
        r"""The output mask (Keras's rule): the input masks concatenated.

        A missing mask counts as all ones; each mask is broadcast to its input's
        shape, the masks are concatenated along ``axis``, and the result is the
        logical OR over the last axis, of shape ``output.shape[:-1]``.

        Parameters
        ----------
        inputs : list of ndarray
            The inputs.
        mask : list of (ndarray of bool or None), optional
            One mask per input.

        Returns
        -------
        ndarray of bool or None
            ``None`` when ``mask`` is ``None`` or every entry is ``None``.

        Raises
        ------
        ValueError
            If ``mask`` is not a list with one entry per input.
        """
        masks = _check_masks(self, inputs, mask)
        if masks is None or all(m is None for m in masks):
            return None
        full = []
        for a, m in zip(inputs, masks, strict=True):
            a = np.asarray(a)
            if m is None:
                full.append(np.ones(a.shape, dtype=bool))
            else:
                m = np.asarray(m, dtype=bool)
                m = m.reshape(m.shape + (1,) * (a.ndim - m.ndim))
                full.append(np.broadcast_to(m, a.shape))
        return np.asarray(np.concatenate(full, axis=self.axis % inputs[0].ndim).any(axis=-1))


class DotSaved(NamedTuple):
    """What :class:`Dot` keeps for backward."""

    a: np.ndarray  #: first input as (batch, M, K), normalised when ``normalize``
    b: np.ndarray  #: second input as (batch, K, P), normalised when ``normalize``
    x_layouts: list[Any]  #: per input: (shape, permutation, axis, 1/norm or None, unit input)


_KERAS_EPSILON = 1e-7


class Dot(Layer):
    r"""Batched dot product of two inputs over one axis each (Keras's ``batch_dot``).

    .. rubric:: Input and output shape

    Two arrays ``(batch, *a)`` and ``(batch, *b)`` of rank at least 2 with the
    same batch size and ``a[i] == b[j]`` on the contracted axes ``axes = (i, j)``
    (batch axis excluded; 0 is refused). Output: ``(batch, *a without i, *b
    without j)``, or ``(batch, 1)`` when nothing else remains.

    Parameters
    ----------
    axes : int or tuple of two ints
        The axis of each input to contract (an int for both; negative counts
        from the end).
    normalize : bool, default False
        L2-normalise each input along its contracted axis first, so that the
        dot product is the cosine similarity.
    name : str, optional
        Layer name (``"dot_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused.

    Raises
    ------
    ValueError
        ``invalid value for `axes`: expected an int or a pair of ints``;
        ``expected exactly 2 inputs``; an axis out of range or the batch axis;
        ``expected inputs of equal size on the contracted axes, got shapes
        (2, 3) and (2, 4) with axes (1, 1).``

    Notes
    -----
    After moving the contracted axis of :math:`X_1` last and that of
    :math:`X_2` first (after the batch) and flattening the rest,
    :math:`A_b \in \mathbb R^{M\times K}`, :math:`B_b \in \mathbb R^{K\times P}`
    and

    .. math::

        Y_b = A_b B_b,\qquad
        \frac{\partial z}{\partial A_b} = G_b B_b^T,\qquad
        \frac{\partial z}{\partial B_b} = A_b^T G_b,

    so :math:`\partial\operatorname{vec}(Y_b)/\partial\operatorname{vec}(A_b)^T
    = I_M \otimes B_b^T` and
    :math:`\partial\operatorname{vec}(Y_b)/\partial\operatorname{vec}(B_b)^T
    = A_b \otimes I_P` (block diagonal over the batch). With
    ``normalize=True`` each input first goes through
    :math:`u = x\,\min(\lVert x\rVert^{-1}, 1/\epsilon)` along its axis
    (:math:`\epsilon = 10^{-7}`, as Keras) whose derivative is

    .. math::

        \frac{\partial z}{\partial x} = \frac{1}{\lVert x\rVert}
            \Big(g - u\,\langle u, g\rangle\Big)
        \quad(\lVert x\rVert > \epsilon),\qquad
        \frac{\partial z}{\partial x} = g/\epsilon \quad\text{otherwise}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> a = np.array([[1.0, 2.0]]); b = np.array([[3.0, 4.0]])
    >>> ln.layers.dot([a, b], axes=1)
    array([[11.]], dtype=float32)
    >>> ln.layers.Dot(axes=1, normalize=True)([a, a])
    array([[1.]], dtype=float32)
    """

    _default_name = "dot"

    def __init__(
        self,
        axes: int | Sequence[int],
        normalize: bool = False,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed)
        ok = is_int(axes) or (
            isinstance(axes, list | tuple) and len(axes) == 2 and all(is_int(a) for a in axes)
        )
        if not ok:
            raise ValueError(
                f"{self.owner}: invalid value for `axes`: expected an int or a pair of ints, "
                f"received {axes!r}."
            )
        self.axes: int | tuple[int, int] = (
            int(cast(int, axes)) if is_int(axes) else (int(axes[0]), int(axes[1]))  # type: ignore[index]
        )
        self.normalize = check_bool(normalize, "normalize", self.owner)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable")
        axes = self.axes if isinstance(self.axes, int) else list(self.axes)
        return {"axes": axes, "normalize": self.normalize, **cfg}

    def _resolve_axes(self, shapes: list[tuple[int | None, ...]]) -> tuple[int, int]:
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        out = []
        for ax, s in zip(pair, shapes, strict=True):
            if not -len(s) <= ax < len(s) or ax % len(s) == 0:
                raise ValueError(
                    f"{self.owner}: `axes` {self.axes!r} is out of range or the batch axis "
                    f"for inputs of shapes {_shapes_text(shapes)}; expected axes in 1..rank-1 "
                    f"(or negative)."
                )
            out.append(ax % len(s))
        return out[0], out[1]

    def check_input_shape(self, shape):
        if not is_shape_list(shape) or len(shape) != 2:
            got = f"{len(shape)} inputs" if is_shape_list(shape) else "one input"
            raise ValueError(f"{self.owner}: expected exactly 2 inputs, got {got}.")
        Layer.check_input_shape(self, shape)
        s1, s2 = shape
        if len(s1) < 2 or len(s2) < 2:
            raise ValueError(
                f"{self.owner}: expected inputs with at least 2 dims (batch, ...), got shapes "
                f"{_shapes_text(shape)}."
            )
        if s1[0] is not None and s2[0] is not None and s1[0] != s2[0]:
            raise ValueError(
                f"{self.owner}: expected inputs with the same batch size, got shapes "
                f"{_shapes_text(shape)}."
            )
        a1, a2 = self._resolve_axes(list(shape))
        if s1[a1] is not None and s2[a2] is not None and s1[a1] != s2[a2]:
            raise ValueError(
                f"{self.owner}: expected inputs of equal size on the contracted axes, got "
                f"shapes {shape_str(s1)} and {shape_str(s2)} with axes {(a1, a2)}."
            )

    def compute_output_shape(self, input_shape):
        s1, s2 = (list(s) for s in input_shape)
        a1, a2 = self._resolve_axes(list(input_shape))
        s1.pop(a1)
        s2.pop(a2)
        out = s1 + s2[1:]
        return tuple([*out, 1] if len(out) == 1 else out)

    def _normalized(self, x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.normalize:
            return x, None
        with np.errstate(divide="ignore"):  # a zero vector (or an empty axis): capped below
            inv = 1.0 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
            inv = np.minimum(inv, 1.0 / _KERAS_EPSILON).astype(x.dtype, copy=False)
        return x * inv, inv

    def compute_forward(self, x, training):
        x1, x2 = x
        a1, a2 = self._resolve_axes([x1.shape, x2.shape])
        u1, inv1 = self._normalized(x1, a1)
        u2, inv2 = self._normalized(x2, a2)
        perm1 = [0, *(d for d in range(1, x1.ndim) if d != a1), a1]
        perm2 = [0, a2, *(d for d in range(1, x2.ndim) if d != a2)]
        t1, t2 = u1.transpose(perm1), u2.transpose(perm2)
        n, k = x1.shape[0], x1.shape[a1]
        a = t1.reshape(n, math.prod(t1.shape[1:-1]), k)  # sizes named: any may be 0
        b = t2.reshape(n, k, math.prod(t2.shape[2:]))
        y = threads.matmul(a, b).reshape(self.compute_output_shape([x1.shape, x2.shape]))
        layouts = [(t1.shape, perm1, a1, inv1, u1), (t2.shape, perm2, a2, inv2, u2)]
        return y, DotSaved(a, b, layouts)

    def compute_backward_input(self, dy, saved):
        n = saved.a.shape[0]
        g = dy.reshape(n, saved.a.shape[1], saved.b.shape[2])
        da = threads.matmul(g, saved.b.transpose(0, 2, 1))
        db = threads.matmul(saved.a.transpose(0, 2, 1), g)
        grads = []
        for d, (tshape, perm, axis, inv, u) in zip((da, db), saved.x_layouts, strict=True):
            du = d.reshape(tshape).transpose(np.argsort(perm))
            if inv is not None:
                capped = inv >= 1.0 / _KERAS_EPSILON
                proj = du - u * np.sum(u * du, axis=axis, keepdims=True)
                du = np.where(capped, du, proj) * inv
            grads.append(np.ascontiguousarray(du, dtype=dy.dtype))
        return grads


# ------------------------------------------------------------- functional forms
def add(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Add(**kwargs)(inputs)``: the element-wise sum of ``inputs``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Add` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Add` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Add` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.add([np.ones((1, 2)), np.ones((1, 2))])
    array([[2., 2.]], dtype=float32)
    """
    return Add(**kwargs)(cast(Any, inputs))


def subtract(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Subtract(**kwargs)(inputs)``: ``inputs[0] - inputs[1]``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Subtract` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Subtract` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Subtract` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.subtract([np.ones((1, 2)), np.ones((1, 2))])
    array([[0., 0.]], dtype=float32)
    """
    return Subtract(**kwargs)(cast(Any, inputs))


def multiply(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Multiply(**kwargs)(inputs)``: the element-wise product of ``inputs``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Multiply` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Multiply` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Multiply` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.multiply([np.full((1, 2), 2.0), np.full((1, 2), 3.0)])
    array([[6., 6.]], dtype=float32)
    """
    return Multiply(**kwargs)(cast(Any, inputs))


def average(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Average(**kwargs)(inputs)``: the element-wise mean of ``inputs``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Average` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Average` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Average` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.average([np.zeros((1, 2)), np.full((1, 2), 4.0)])
    array([[2., 2.]], dtype=float32)
    """
    return Average(**kwargs)(cast(Any, inputs))


def maximum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Maximum(**kwargs)(inputs)``: the element-wise maximum of ``inputs``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Maximum` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Maximum` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Maximum` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.maximum([np.array([[1.0, 4.0]]), np.array([[3.0, 2.0]])])
    array([[3., 4.]], dtype=float32)
    """
    return Maximum(**kwargs)(cast(Any, inputs))


def minimum(inputs: Sequence[Any], **kwargs: Any) -> Any:
    """``Minimum(**kwargs)(inputs)``: the element-wise minimum of ``inputs``.

    Parameters
    ----------
    inputs : list of ndarray
        The arrays to merge (see :class:`~layernet.Minimum` for the shapes).
    **kwargs
        Arguments of :class:`~layernet.Minimum` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Minimum` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.minimum([np.array([[1.0, 4.0]]), np.array([[3.0, 2.0]])])
    array([[1., 2.]], dtype=float32)
    """
    return Minimum(**kwargs)(cast(Any, inputs))


def concatenate(inputs: Sequence[Any], axis: int = -1, **kwargs: Any) -> Any:
    """``Concatenate(axis=axis, **kwargs)(inputs)``: ``inputs`` joined along ``axis``.

    Parameters
    ----------
    inputs : list of ndarray
        Arrays whose shapes agree except on ``axis``.
    axis : int, default -1
        The axis to join along.
    **kwargs
        Arguments of :class:`~layernet.Concatenate` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Concatenate` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.concatenate([np.zeros((1, 1)), np.ones((1, 2))])
    array([[0., 1., 1.]], dtype=float32)
    """
    return Concatenate(axis=axis, **kwargs)(cast(Any, inputs))


def dot(
    inputs: Sequence[Any], axes: int | Sequence[int] = -1, normalize: bool = False, **kwargs: Any
) -> Any:
    """``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)``: a batched dot product.

    Parameters
    ----------
    inputs : list of two ndarray
        The two arrays (see :class:`~layernet.Dot` for the shapes).
    axes : int or tuple of two ints, default -1
        The axis of each input to contract.
    normalize : bool, default False
        Whether to L2-normalise the inputs along those axes first (cosine similarity).
    **kwargs
        Arguments of :class:`~layernet.Dot` (``name``, ``dtype``, ...).

    Returns
    -------
    ndarray
        The output of a new :class:`~layernet.Dot` layer called on ``inputs``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.layers.dot([np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]])])
    array([[11.]], dtype=float32)
    """
    return Dot(axes=axes, normalize=normalize, **kwargs)(cast(Any, inputs))
