r"""NumPy-like ops with Keras's names, arguments and broadcasting (``keras.ops``).

On NumPy arrays and Python numbers they compute at once and return NumPy
arrays; inside a layer's ``call()`` they take :class:`~layernet.ops.Tensor`
inputs and record themselves, so the layer's derivative comes from theirs.
Each docstring gives the op's derivative (:math:`G = \partial z/\partial y`
the upstream gradient); inputs that were broadcast get their gradient summed
over the broadcast axes.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from . import primitives as P
from .tensor import Tensor, apply, dispatch, unwrap

F = TypeVar("F", bound=Callable[..., Any])

#: Public op name -> the function (every op of this package).
OPS: dict[str, Callable[..., Any]] = {}
#: Names of the ops that have a derivative (the tests require a case for each).
DIFFERENTIABLE: set[str] = set()


def op(differentiable: bool = True, name: str | None = None) -> Callable[[F], F]:
    """Make ``fn`` a public op: every call goes through :func:`~layernet.ops.dispatch`."""

    def decorate(fn: F) -> F:
        op_name = name or fn.__name__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return dispatch(op_name, fn, args, kwargs, wrapper)

        OPS[op_name] = wrapper
        if differentiable:
            DIFFERENTIABLE.add(op_name)
        return wrapper  # type: ignore[return-value]

    return decorate


# -------------------------------------------------------------------- validation
def _shape(x: Any) -> tuple[int, ...]:
    if isinstance(x, Tensor) or hasattr(x, "shape"):
        return tuple(x.shape)
    return np.shape(x)


def _ndim(x: Any) -> int:
    return len(_shape(x))


def _axis(name: str, axis: Any, ndim: int, arg: str = "axis") -> Any:
    """Check an axis (or tuple of axes) against ``ndim``; return it normalised (non-negative)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, int | np.integer) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, int | np.integer) or isinstance(a, bool) or not -ndim <= a < ndim:
            raise ValueError(
                f"ops.{name}: invalid value for `{arg}`: expected an int in [{-ndim}, {ndim}) "
                f"for an input with {ndim} dims, received {axis!r}."
            )
        out.append(int(a) % ndim)
    return out[0] if isinstance(axis, int | np.integer) else tuple(out)


def _broadcast(name: str, *xs: Any) -> tuple[int, ...]:
    shapes = [_shape(x) for x in xs]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"ops.{name}: shapes {' and '.join(str(s) for s in shapes)} do not broadcast "
            f"(trailing axes must be equal or 1)."
        ) from None


def _binary(prim: P.Primitive, x1: Any, x2: Any) -> Any:
    _broadcast(prim.name, x1, x2)
    return apply(prim, x1, x2)


# ------------------------------------------------------------- arithmetic (binary)
@op()
def add(x1: Any, x2: Any) -> Any:
    r"""Element-wise :math:`x_1 + x_2` (broadcasting). Derivative: :math:`G` to each input.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.ops.add([1.0, 2.0], 1.0)
    array([2., 3.])
    """
    return _binary(P.ADD, x1, x2)


@op()
def subtract(x1: Any, x2: Any) -> Any:
    r"""Element-wise :math:`x_1 - x_2`. Derivative: :math:`G` and :math:`-G`."""
    return _binary(P.SUBTRACT, x1, x2)


@op()
def multiply(x1: Any, x2: Any) -> Any:
    r"""Element-wise :math:`x_1 x_2`. Derivative: :math:`G\odot x_2` and :math:`G\odot x_1`."""
    return _binary(P.MULTIPLY, x1, x2)


@op()
def divide(x1: Any, x2: Any) -> Any:
    r"""Element-wise :math:`x_1/x_2`. Derivative: :math:`G/x_2` and :math:`-G\,x_1/x_2^2`."""
    return _binary(P.DIVIDE, x1, x2)


true_divide = divide


@op()
def power(x1: Any, x2: Any) -> Any:
    r"""Element-wise :math:`x_1^{x_2}`.

    Derivative: :math:`G\,x_2 x_1^{x_2-1}` and :math:`G\,x_1^{x_2}\ln x_1` (taken as 0 where
    :math:`x_1 \le 0`).
    """
    return _binary(P.POWER, x1, x2)


@op()
def maximum(x1: Any, x2: Any) -> Any:
    r"""Element-wise maximum. Derivative: :math:`G` to the larger input (halved on ties)."""
    return _binary(P.MAXIMUM, x1, x2)


@op()
def minimum(x1: Any, x2: Any) -> Any:
    r"""Element-wise minimum. Derivative: :math:`G` to the smaller input (halved on ties)."""
    return _binary(P.MINIMUM, x1, x2)


@op()
def matmul(x1: Any, x2: Any) -> Any:
    r"""Matrix product :math:`Y = AB` (batched over leading axes, NumPy's rules).

    Derivative: :math:`\partial z/\partial A = G B^T`, :math:`\partial z/\partial B = A^T G`
    (summed over broadcast batch axes).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ops.matmul(np.eye(2), np.array([[1.0], [2.0]]))
    array([[1.],
           [2.]])
    """
    s1, s2 = _shape(x1), _shape(x2)
    if not s1 or not s2:
        raise ValueError(
            f"ops.matmul: expected arrays with at least 1 dim, got shapes {s1} and {s2}."
        )
    k1 = s1[-1]
    k2 = s2[0] if len(s2) == 1 else s2[-2]
    if k1 != k2:
        raise ValueError(
            f"ops.matmul: shapes {s1} and {s2} do not match: the last axis of x1 ({k1}) must "
            f"equal the {'only' if len(s2) == 1 else 'second-to-last'} axis of x2 ({k2})."
        )
    if len(s1) > 2 or len(s2) > 2:
        try:
            np.broadcast_shapes(s1[:-2], s2[:-2])
        except ValueError:
            raise ValueError(
                f"ops.matmul: the batch axes of shapes {s1} and {s2} do not broadcast."
            ) from None
    return apply(P.MATMUL, x1, x2)


@op()
def dot(x1: Any, x2: Any) -> Any:
    r"""NumPy's ``dot``: :func:`matmul` for 1-d and 2-d inputs, a product for scalars, and
    a contraction of ``x1``'s last axis with ``x2``'s second-to-last otherwise.

    Derivative: that of :func:`matmul` / :func:`tensordot` / :func:`multiply`.
    """
    n1, n2 = _ndim(x1), _ndim(x2)
    if n1 == 0 or n2 == 0:
        return multiply(x1, x2)
    if n2 <= 2:
        return matmul(x1, x2)
    return tensordot(x1, x2, axes=([n1 - 1], [n2 - 2]))


@op()
def tensordot(x1: Any, x2: Any, axes: Any = 2) -> Any:
    r"""Contraction over ``axes`` (NumPy's ``tensordot``).

    Derivative: :math:`G` contracted with the other operand over its free axes,
    axes put back in the operand's order.
    """
    return apply(P.TENSORDOT, x1, x2, axes=axes)


@op()
def einsum(subscripts: str, *operands: Any) -> Any:
    r"""Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)``.

    Derivative of operand :math:`i`: the einsum of :math:`G` with the other operands
    onto operand :math:`i`'s indices (copied along indices only that operand sums).
    Repeated indices within one operand (diagonals) are not supported.
    """
    return apply(P.EINSUM, *operands, subscripts=subscripts)


# --------------------------------------------------------------------- unary math
def _unary(prim: P.Primitive, x: Any, **attrs: Any) -> Any:
    return apply(prim, x, **attrs)


@op()
def negative(x: Any) -> Any:
    r""":math:`-x`. Derivative: :math:`-G`."""
    return _unary(P.NEGATIVE, x)


@op()
def square(x: Any) -> Any:
    r""":math:`x^2`. Derivative: :math:`2x\odot G`."""
    return _unary(P.SQUARE, x)


@op()
def sqrt(x: Any) -> Any:
    r""":math:`\sqrt x`. Derivative: :math:`G/(2\sqrt x)`."""
    return _unary(P.SQRT, x)


@op()
def rsqrt(x: Any) -> Any:
    r""":math:`1/\sqrt x`. Derivative: :math:`-\tfrac12 x^{-3/2}\odot G`."""
    return _unary(P.RSQRT, x)


@op()
def exp(x: Any) -> Any:
    r""":math:`e^x`. Derivative: :math:`e^x\odot G`."""
    return _unary(P.EXP, x)


@op()
def expm1(x: Any) -> Any:
    r""":math:`e^x - 1`. Derivative: :math:`e^x\odot G`."""
    return _unary(P.EXPM1, x)


@op()
def log(x: Any) -> Any:
    r""":math:`\ln x`. Derivative: :math:`G/x`."""
    return _unary(P.LOG, x)


@op()
def log1p(x: Any) -> Any:
    r""":math:`\ln(1+x)`. Derivative: :math:`G/(1+x)`."""
    return _unary(P.LOG1P, x)


@op()
def absolute(x: Any) -> Any:
    r""":math:`|x|`. Derivative: :math:`\operatorname{sign}(x)\odot G` (0 at 0)."""
    return _unary(P.ABS, x)


abs = absolute
OPS["abs"] = absolute
DIFFERENTIABLE.add("abs")


@op()
def erf(x: Any) -> Any:
    r"""Error function. Derivative: :math:`\tfrac{2}{\sqrt\pi}e^{-x^2}\odot G`."""
    return _unary(P.ERF, x)


@op()
def clip(x: Any, x_min: Any, x_max: Any) -> Any:
    r"""Clip to :math:`[x_{min}, x_{max}]`. Derivative: :math:`G` where
    :math:`x_{min}\le x\le x_{max}`, 0 elsewhere."""
    return _unary(P.CLIP, x, x_min=x_min, x_max=x_max)


@op(differentiable=False)
def sign(x: Any) -> Any:
    """Sign of each entry (-1, 0, 1). No derivative (zero gradient)."""
    return _unary(P.SIGN, x)


@op(differentiable=False)
def floor(x: Any) -> Any:
    """Round down. No derivative (zero gradient)."""
    return _unary(P.FLOOR, x)


@op(differentiable=False)
def ceil(x: Any) -> Any:
    """Round up. No derivative (zero gradient)."""
    return _unary(P.CEIL, x)


@op(differentiable=False)
def round(x: Any, decimals: int = 0) -> Any:
    """Round half to even. No derivative (zero gradient)."""
    return apply(P.ROUND, x, decimals=decimals)


@op()
def where(condition: Any, x1: Any = None, x2: Any = None) -> Any:
    r"""``x1`` where ``condition`` else ``x2`` (broadcasting); with one argument, the indices
    of the true entries (as NumPy's).

    Derivative: :math:`G` to ``x1`` where the condition holds, to ``x2`` elsewhere.
    """
    if x1 is None and x2 is None:
        return np.nonzero(np.asarray(unwrap(condition)))
    _broadcast("where", condition, x1, x2)
    return apply(P.WHERE, unwrap(condition), x1, x2)


# ---------------------------------------------------------------------- reductions
def _reduce(prim: P.Primitive, x: Any, axis: Any, keepdims: bool) -> Any:
    if isinstance(x, list | tuple) and x and builtins.any(isinstance(a, Tensor) for a in x):
        x = stack(x)  # a list of traced values (``ops.sum(self.losses)``) keeps its gradient
    axis = _axis(prim.name, axis, _ndim(x))
    return apply(prim, x, axis=axis, keepdims=keepdims)


@op()
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    r"""Sum over ``axis`` (all axes by default). Derivative: :math:`G` copied over the summed
    axes."""
    return _reduce(P.SUM, x, axis, keepdims)


@op()
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    r"""Mean over ``axis``. Derivative: :math:`G/n` copied over the :math:`n` averaged
    entries."""
    return _reduce(P.MEAN, x, axis, keepdims)


@op()
def max(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Any:
    r"""Maximum over ``axis``. Derivative: :math:`G` to the maximal entries (split between
    ties)."""
    y = _reduce(P.MAX, x, axis, keepdims)
    return y if initial is None else maximum(y, initial)


@op()
def min(x: Any, axis: Any = None, keepdims: bool = False, initial: Any = None) -> Any:
    r"""Minimum over ``axis``. Derivative: :math:`G` to the minimal entries (split between
    ties)."""
    y = _reduce(P.MIN, x, axis, keepdims)
    return y if initial is None else minimum(y, initial)


@op()
def prod(x: Any, axis: Any = None, keepdims: bool = False, dtype: Any = None) -> Any:
    r"""Product over ``axis``. Derivative: :math:`G\prod_{j\ne i}x_j` for entry :math:`i`
    (exact with zeros)."""
    y = _reduce(P.PROD, x, axis, keepdims)
    return y if dtype is None else cast(y, dtype)


@op()
def var(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    r"""Variance :math:`\tfrac1n\sum(x-\bar x)^2` over ``axis``. Derivative:
    :math:`\tfrac2n(x-\bar x)\odot G`."""
    return _reduce(P.VAR, x, axis, keepdims)


@op()
def std(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    r"""Standard deviation :math:`\sqrt{\operatorname{var}(x)}`. Derivative:
    :math:`(x-\bar x)/(n\sigma)\odot G` (composed of :func:`var` and :func:`sqrt`)."""
    return sqrt(var(x, axis=axis, keepdims=keepdims))


@op()
def cumsum(x: Any, axis: Any = None, dtype: Any = None) -> Any:
    r"""Cumulative sum along ``axis`` (flattened when ``None``). Derivative: the reversed
    cumulative sum of :math:`G`."""
    axis = _axis("cumsum", axis, _ndim(x))
    y = apply(P.CUMSUM, x, axis=axis)
    return y if dtype is None else cast(y, dtype)


@op()
def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    r"""Vector or Frobenius norm (``ord`` None/"fro"/2 for vectors, 1, ``inf``).

    Derivative (2-norm): :math:`G\,x/\lVert x\rVert`; 1-norm: :math:`G\operatorname{sign}(x)`
    (composed of :func:`square`, :func:`sum`, :func:`sqrt`, :func:`absolute`, :func:`max`).
    """
    if ord in (None, "fro", "euclidean", 2) and (axis is None or isinstance(axis, int) or ord != 2):
        return sqrt(sum(square(x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return sum(absolute(x), axis=axis, keepdims=keepdims)
    if ord in (np.inf, float("inf")):
        return max(absolute(x), axis=axis, keepdims=keepdims)
    raise ValueError(
        f"ops.norm: invalid value for `ord`: expected None, 'fro', 1, 2 (vector) or inf, "
        f"received {ord!r}."
    )


@op()
def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    r""":math:`\ln\sum e^{x}` over ``axis``, computed stably. Derivative:
    :math:`\operatorname{softmax}(x)\odot G`."""
    m = stop_gradient(max(x, axis=axis, keepdims=True))
    out = log(sum(exp(subtract(x, m)), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = squeeze(out, axis=axis) if axis is not None else reshape(out, ())
    return out


@op(differentiable=False)
def argmax(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Index of the maximum along ``axis``. No derivative."""
    return apply(P.ARGMAX, x, axis=_axis("argmax", axis, _ndim(x)), keepdims=keepdims)


@op(differentiable=False)
def argmin(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Index of the minimum along ``axis``. No derivative."""
    return apply(P.ARGMIN, x, axis=_axis("argmin", axis, _ndim(x)), keepdims=keepdims)


@op(differentiable=False)
def argsort(x: Any, axis: int = -1) -> Any:
    """Indices that sort ``x`` along ``axis`` (stable). No derivative."""
    return apply(P.ARGSORT, x, axis=_axis("argsort", axis, _ndim(x)))


@op(differentiable=False)
def any(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Whether any entry is true along ``axis``. No derivative."""
    return apply(P.ANY, x, axis=_axis("any", axis, _ndim(x)), keepdims=keepdims)


@op(differentiable=False)
def all(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Whether every entry is true along ``axis``. No derivative."""
    return apply(P.ALL, x, axis=_axis("all", axis, _ndim(x)), keepdims=keepdims)


# ---------------------------------------------------------- comparisons and logic
def _compare(prim: P.Primitive, x1: Any, x2: Any) -> Any:
    _broadcast(prim.name, x1, x2)
    return apply(prim, x1, x2)


@op(differentiable=False)
def less(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 < x2``. No derivative."""
    return _compare(P.LESS, x1, x2)


@op(differentiable=False)
def greater(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 > x2``. No derivative."""
    return _compare(P.GREATER, x1, x2)


@op(differentiable=False)
def less_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 <= x2``. No derivative."""
    return _compare(P.LESS_EQUAL, x1, x2)


@op(differentiable=False)
def greater_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 >= x2``. No derivative."""
    return _compare(P.GREATER_EQUAL, x1, x2)


@op(differentiable=False)
def equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 == x2``. No derivative."""
    return _compare(P.EQUAL, x1, x2)


@op(differentiable=False)
def not_equal(x1: Any, x2: Any) -> Any:
    """Element-wise ``x1 != x2``. No derivative."""
    return _compare(P.NOT_EQUAL, x1, x2)


@op(differentiable=False)
def logical_and(x1: Any, x2: Any) -> Any:
    """Element-wise logical and. No derivative."""
    return _compare(P.LOGICAL_AND, x1, x2)


@op(differentiable=False)
def logical_or(x1: Any, x2: Any) -> Any:
    """Element-wise logical or. No derivative."""
    return _compare(P.LOGICAL_OR, x1, x2)


@op(differentiable=False)
def logical_not(x: Any) -> Any:
    """Element-wise logical not. No derivative."""
    return apply(P.LOGICAL_NOT, x)


@op(differentiable=False)
def isnan(x: Any) -> Any:
    """Element-wise test for NaN. No derivative."""
    return apply(P.ISNAN, x)


# ---------------------------------------------------------------------- shape ops
@op()
def reshape(x: Any, newshape: Any) -> Any:
    r"""Same entries in a new shape (C order; one ``-1`` allowed). Derivative: :math:`G`
    reshaped back (the Jacobian is the identity)."""
    newshape = (newshape,) if isinstance(newshape, int) else tuple(newshape)
    size = math.prod(_shape(x))
    known = math.prod(n for n in newshape if n != -1)
    if newshape.count(-1) > 1 or (
        size != known if -1 not in newshape else (known == 0 or size % known)
    ):
        raise ValueError(
            f"ops.reshape: cannot reshape an array of shape {_shape(x)} ({size} entries) into "
            f"shape {newshape}."
        )
    return apply(P.RESHAPE, x, newshape=newshape)


@op()
def transpose(x: Any, axes: Any = None) -> Any:
    r"""Permute the axes (reverse them by default). Derivative: :math:`G` with the inverse
    permutation."""
    if axes is not None:
        axes = tuple(axes)
        norm_axes = _axis("transpose", axes, _ndim(x), "axes")
        if len(axes) != _ndim(x) or len(set(norm_axes)) != len(axes):
            raise ValueError(
                f"ops.transpose: invalid value for `axes`: expected a permutation of "
                f"{_ndim(x)} axes, received {axes!r}."
            )
    return apply(P.TRANSPOSE, x, axes=axes)


@op()
def expand_dims(x: Any, axis: Any) -> Any:
    r"""Insert size-1 axes at ``axis``. Derivative: :math:`G` reshaped back."""
    shape = _shape(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    _axis("expand_dims", axes, len(shape) + len(axes))
    return reshape(x, np.expand_dims(np.empty(shape, dtype=bool), axes).shape)


@op()
def squeeze(x: Any, axis: Any = None) -> Any:
    r"""Remove size-1 axes (``axis`` or all). Derivative: :math:`G` reshaped back."""
    shape = _shape(x)
    axes = _axis("squeeze", axis, len(shape))
    if axes is None:
        axes = tuple(i for i, n in enumerate(shape) if n == 1)
    axes = (axes,) if isinstance(axes, int) else axes
    for a in axes:
        if shape[a] != 1:
            raise ValueError(
                f"ops.squeeze: cannot squeeze axis {a} of shape {shape}: its size is not 1."
            )
    return reshape(x, tuple(n for i, n in enumerate(shape) if i not in axes))


@op()
def broadcast_to(x: Any, shape: Any) -> Any:
    r"""Broadcast to ``shape``. Derivative: :math:`G` summed over the broadcast axes."""
    shape = tuple(shape)
    try:
        if np.broadcast_shapes(_shape(x), shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"ops.broadcast_to: cannot broadcast shape {_shape(x)} to {shape}."
        ) from None
    return apply(P.BROADCAST_TO, x, shape=shape)


def _key(key: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(_key(k) for k in key)
    if isinstance(key, Tensor):
        return key.value
    return key


@op()
def getitem(x: Any, key: Any) -> Any:
    r"""``x[key]``: NumPy's basic and advanced indexing. Derivative: :math:`G` added into
    zeros at the indexed positions (repeated indices add)."""
    key = _key(key)
    try:
        np.empty(_shape(x), dtype=bool)[key]
    except IndexError as exc:
        raise IndexError(
            f"ops.getitem: index {key!r} is invalid for shape {_shape(x)}: {exc}"
        ) from None
    return apply(P.GETITEM, x, key=key)


@op()
def slice(inputs: Any, start_indices: Any, shape: Any) -> Any:
    r"""The block of ``shape`` starting at ``start_indices``. Derivative: :math:`G` placed
    into zeros at that block."""
    key = tuple(
        builtins.slice(int(s), int(s) + int(n)) for s, n in zip(start_indices, shape, strict=True)
    )
    return getitem(inputs, key)


@op()
def concatenate(xs: Sequence[Any], axis: int = 0) -> Any:
    r"""Join along ``axis``. Derivative: :math:`G` split into the inputs' pieces."""
    xs = list(xs)
    if not xs:
        raise ValueError("ops.concatenate: expected at least one array, received none.")
    nd = _ndim(xs[0])
    axis = _axis("concatenate", axis, nd)
    shapes = [_shape(x) for x in xs]
    for s in shapes:
        if len(s) != nd or builtins.any(
            a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != axis
        ):
            raise ValueError(
                f"ops.concatenate: shapes {' and '.join(map(str, shapes))} differ outside "
                f"axis {axis}."
            )
    return apply(P.CONCATENATE, *xs, axis=axis)


@op()
def stack(x: Sequence[Any], axis: int = 0) -> Any:
    r"""Join along a new ``axis``. Derivative: :math:`G` split along that axis."""
    xs = list(x)
    if not xs:
        raise ValueError("ops.stack: expected at least one array, received none.")
    shapes = {_shape(a) for a in xs}
    if len(shapes) > 1:
        raise ValueError(
            f"ops.stack: expected arrays of one shape, received shapes {sorted(shapes)}."
        )
    return concatenate([expand_dims(a, axis) for a in xs], axis=axis)


@op()
def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    r"""Split along ``axis`` into equal sections or at indices. Derivative: the pieces'
    gradients joined (each piece is a slice)."""
    shape = _shape(x)
    axis = _axis("split", axis, len(shape))
    n = shape[axis]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(
                f"ops.split: axis {axis} of shape {shape} does not split into "
                f"{indices_or_sections} equal sections."
            )
        step = n // indices_or_sections
        bounds = [i * step for i in range(indices_or_sections + 1)]
    else:
        bounds = [0, *[int(i) for i in indices_or_sections], n]
    pre = (builtins.slice(None),) * axis
    return [getitem(x, (*pre, builtins.slice(a, b))) for a, b in itertools.pairwise(bounds)]


@op()
def unstack(x: Any, num: int | None = None, axis: int = 0) -> list[Any]:
    r"""The slices along ``axis``, as a list. Derivative: their gradients stacked."""
    shape = _shape(x)
    axis = _axis("unstack", axis, len(shape))
    pre = (builtins.slice(None),) * axis
    return [getitem(x, (*pre, i)) for i in range(shape[axis])]


@op()
def tile(x: Any, repeats: Any) -> Any:
    r"""Repeat the whole array ``repeats`` times per axis. Derivative: :math:`G` summed over
    the copies."""
    return apply(P.TILE, x, repeats=repeats)


@op()
def repeat(x: Any, repeats: Any, axis: Any = None) -> Any:
    r"""Repeat each entry ``repeats`` times along ``axis``. Derivative: :math:`G` summed over
    each entry's copies."""
    axis = _axis("repeat", axis, _ndim(x))
    return apply(P.REPEAT, x, repeats=repeats, axis=axis)


@op()
def pad(x: Any, pad_width: Any, mode: str = "constant", constant_values: Any = None) -> Any:
    r"""Pad with a constant (``mode="constant"``). Derivative: :math:`G` cropped back."""
    if mode != "constant":
        raise ValueError(
            f"ops.pad: invalid value for `mode`: expected 'constant', received {mode!r}."
        )
    return apply(P.PAD, x, pad_width=pad_width, constant_values=constant_values or 0)


@op()
def flip(x: Any, axis: Any = None) -> Any:
    r"""Reverse the order along ``axis`` (all axes by default). Derivative: :math:`G`
    flipped back."""
    return apply(P.FLIP, x, axis=_axis("flip", axis, _ndim(x)))


@op()
def take(x: Any, indices: Any, axis: Any = None) -> Any:
    r"""Entries at ``indices`` along ``axis`` (of the flattened array by default).
    Derivative: :math:`G` added into zeros at the indices (repeated indices add)."""
    axis = _axis("take", axis, _ndim(x))
    return apply(P.TAKE, x, np.asarray(unwrap(indices)), axis=axis)


@op()
def take_along_axis(x: Any, indices: Any, axis: Any = None) -> Any:
    r"""NumPy's ``take_along_axis``. Derivative: :math:`G` added into zeros at the indices."""
    axis = _axis("take_along_axis", axis, _ndim(x))
    return apply(P.TAKE_ALONG_AXIS, x, np.asarray(unwrap(indices)), axis=axis)


@op()
def sort(x: Any, axis: int = -1) -> Any:
    r"""Sorted along ``axis``. Derivative: :math:`G` sent back to each entry's original place
    (a permutation: :func:`take_along_axis` with the sorting indices)."""
    idx = argsort(unwrap(x), axis=axis)
    return take_along_axis(x, idx, axis=axis)


@op()
def top_k(x: Any, k: int, sorted: bool = True) -> tuple[Any, Any]:
    r"""The ``k`` largest entries along the last axis and their indices.

    Derivative: :math:`G` sent back to the chosen entries (values only; the indices
    have none).
    """
    v = np.asarray(unwrap(x))
    idx = np.argsort(-v, axis=-1, kind="stable")[..., :k]
    return take_along_axis(x, idx, axis=-1), idx


@op()
def cast(x: Any, dtype: Any) -> Any:
    r"""Convert to ``dtype``. Derivative: :math:`G` cast back between float dtypes; none
    from or to integers."""
    return apply(P.CAST, x, dtype=np.dtype(dtype))


@op(differentiable=False)
def stop_gradient(variable: Any) -> Any:
    """The same value with no derivative: the backward pass stops here."""
    value = unwrap(variable)
    if isinstance(variable, Tensor):
        return Tensor(np.array(value), variable.tape)
    return np.array(value)


# -------------------------------------------------------------- creation, plumbing
@op(differentiable=False)
def shape(x: Any) -> tuple[int, ...]:
    """The shape, as a tuple of ints."""
    return _shape(x)


@op(differentiable=False)
def ndim(x: Any) -> int:
    """The number of axes."""
    return _ndim(x)


def _dtype(dtype: Any) -> np.dtype:
    from .. import backend

    return np.dtype(backend.floatx() if dtype is None else dtype)


@op(differentiable=False)
def zeros(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of zeros (``dtype`` defaults to :func:`layernet.backend.floatx`)."""
    return np.zeros(shape, _dtype(dtype))


@op(differentiable=False)
def ones(shape: Any, dtype: Any = None) -> np.ndarray:
    """An array of ones."""
    return np.ones(shape, _dtype(dtype))


@op(differentiable=False)
def full(shape: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:
    """An array filled with ``fill_value``."""
    return np.full(shape, unwrap(fill_value), _dtype(dtype))


@op(differentiable=False)
def zeros_like(x: Any, dtype: Any = None) -> np.ndarray:
    """Zeros of ``x``'s shape (and dtype unless given)."""
    return np.zeros(_shape(x), dtype or np.asarray(unwrap(x)).dtype)


@op(differentiable=False)
def ones_like(x: Any, dtype: Any = None) -> np.ndarray:
    """Ones of ``x``'s shape (and dtype unless given)."""
    return np.ones(_shape(x), dtype or np.asarray(unwrap(x)).dtype)


@op(differentiable=False)
def full_like(x: Any, fill_value: Any, dtype: Any = None) -> np.ndarray:
    """``fill_value`` in ``x``'s shape."""
    return np.full(_shape(x), unwrap(fill_value), dtype or np.asarray(unwrap(x)).dtype)


@op(differentiable=False)
def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> np.ndarray:
    """Evenly spaced values in ``[start, stop)``."""
    return np.arange(start, stop, step, dtype=dtype)


@op(differentiable=False)
def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> np.ndarray:
    """The identity matrix."""
    return np.eye(N, M, k, dtype=_dtype(dtype))


@op(differentiable=False)
def convert_to_tensor(x: Any, dtype: Any = None, sparse: Any = None) -> Any:
    """An array from ``x`` (a Tensor inside a trace is returned as it is, or cast)."""
    if isinstance(x, Tensor):
        return x if dtype is None else cast(x, dtype)
    return np.asarray(unwrap(x), dtype=dtype)


@op(differentiable=False)
def convert_to_numpy(x: Any) -> np.ndarray:
    """The NumPy value of an array, Tensor or Variable."""
    return np.asarray(unwrap(x))


@op(differentiable=False)
def one_hot(x: Any, num_classes: int, axis: int = -1, dtype: Any = None) -> Any:
    """One-hot encoding of integer class ids along a new ``axis``. No derivative."""
    return apply(
        P.ONE_HOT, np.asarray(unwrap(x)), num_classes=num_classes, axis=axis, dtype=_dtype(dtype)
    )
