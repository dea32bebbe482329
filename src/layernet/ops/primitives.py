r"""Primitives: the differentiable building blocks behind :mod:`layernet.ops`.

A primitive is a small object with a uniform interface:

``forward(*arrays, **attrs) -> (y, saved)``
    Compute the output from NumPy arrays and keep what the backward rule needs.
``backward(dy, saved) -> tuple``
    The vector-Jacobian products :math:`\partial z/\partial x_i = J_i^T\,\partial z/\partial y`,
    one per input (``None`` for an input that has no derivative: indices, conditions).
``jacobians(dy_shape, saved, x_shapes) -> list``
    The explicit matrices
    :math:`J_i = \partial\operatorname{vec}(y)/\partial\operatorname{vec}(x_i)^T`
    (C-order ``vec``), built exactly from ``backward`` with unit vectors.

Every primitive is registered by name in :data:`PRIMITIVES`. Broadcasting
inputs get their gradient summed back over the broadcast axes (:func:`unbroadcast`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _ops, threads

#: Every primitive by name.
PRIMITIVES: dict[str, Primitive] = {}


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    r"""Sum ``g`` over the axes along which an input of ``shape`` was broadcast.

    If :math:`y = f(\tilde x)` with :math:`\tilde x` the broadcast of :math:`x`, then
    :math:`\partial z/\partial x` sums :math:`\partial z/\partial\tilde x` over the
    copies: over the leading axes ``x`` lacks and over its size-1 axes.
    """
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1
    )
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class Primitive:
    """One operation with forward, backward and explicit Jacobians (see the module)."""

    name: str = ""
    #: Whether any input has a derivative (comparisons, argmax, floor... do not).
    differentiable: bool = True

    def __init__(self, name: str) -> None:
        self.name = name
        PRIMITIVES[name] = self

    def forward(self, *xs: Any, **attrs: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def backward(self, dy: Any, saved: Any) -> tuple[Any, ...]:
        raise NotImplementedError

    def jacobians(
        self, y_shape: tuple[int, ...], saved: Any, x_shapes: Sequence[tuple[int, ...] | None]
    ) -> list[np.ndarray | None]:
        r"""The matrices :math:`\partial\operatorname{vec}(y)/\partial\operatorname{vec}(x_i)^T`.

        Row ``k`` is ``backward`` applied to the ``k``-th unit vector of the
        output space (exact). ``None`` for an input without a derivative.
        """
        size = math.prod(y_shape)
        e = np.zeros(size)
        rows: list[tuple[Any, ...]] = []
        for k in range(size):
            e[k] = 1
            back = self.backward(e.reshape(y_shape), saved)  # may be a view of e: copy
            rows.append(tuple(None if r is None else np.array(r, dtype=float) for r in back))
            e[k] = 0
        out: list[np.ndarray | None] = []
        for i, shape in enumerate(x_shapes):
            if shape is None or (rows and rows[0][i] is None) or not self.differentiable:
                out.append(None)
            elif not rows:
                out.append(np.zeros((0, math.prod(shape))))
            else:
                out.append(np.stack([np.asarray(r[i], dtype=float).ravel() for r in rows]))
        return out

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


class NonDifferentiable(Primitive):
    """An op whose output has no derivative (zero gradient for every input)."""

    differentiable = False

    def __init__(self, name: str, fn: Callable[..., Any]) -> None:
        super().__init__(name)
        self.fn = fn

    def forward(self, *xs, **attrs):
        return self.fn(*xs, **attrs), tuple(np.shape(x) for x in xs)

    def backward(self, dy, saved):
        return tuple(None for _ in saved)


class Unary(Primitive):
    r"""Element-wise :math:`y = f(x)`: :math:`\partial z/\partial x = f'(x)\,\partial z/\partial y`.

    ``df(x, y, **attrs)`` gives :math:`f'` from the input and the output.
    """

    def __init__(self, name: str, f: Callable[..., Any], df: Callable[..., Any]) -> None:
        super().__init__(name)
        self.f, self.df = f, df

    def forward(self, x, **attrs):
        y = self.f(x, **attrs)
        return y, (x, y, attrs)

    def backward(self, dy, saved):
        x, y, attrs = saved
        return (dy * self.df(x, y, **attrs),)

    def jacobians(self, y_shape, saved, x_shapes):
        x, y, attrs = saved  # diagonal: J = diag(f'(vec x))
        return [np.diag(np.broadcast_to(self.df(x, y, **attrs), y_shape).ravel().astype(float))]


class Binary(Primitive):
    """Broadcasting :math:`y = f(a, b)` with partial derivatives ``da(a, b, y)``, ``db(...)``."""

    def __init__(self, name: str, f, da, db) -> None:
        super().__init__(name)
        self.f, self.da, self.db = f, da, db

    def forward(self, a, b):
        y = self.f(a, b)
        return y, (a, b, y)

    def backward(self, dy, saved):
        a, b, y = saved
        ga = unbroadcast(dy * self.da(a, b, y), np.shape(a))
        gb = unbroadcast(dy * self.db(a, b, y), np.shape(b))
        return ga, gb


def _ones(a, b, y):
    return 1.0


def _safe_div(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def _erf(x):
    from scipy.special import erf

    return erf(x)


def _sigmoid(x):
    out = np.empty_like(x, dtype=np.result_type(x, np.float32))
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out


def _softplus(x):
    return np.logaddexp(0, x).astype(np.result_type(x, np.float32), copy=False)


_SQRT_2_PI = math.sqrt(2 / math.pi)


def _gelu(x, approximate=True):
    if approximate:
        return 0.5 * x * (1 + np.tanh(_SQRT_2_PI * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _gelu_grad(x, y, approximate=True):
    if approximate:
        u = _SQRT_2_PI * (x + 0.044715 * x**3)
        t = np.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * _SQRT_2_PI * (1 + 3 * 0.044715 * x**2)
    return 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


# ------------------------------------------------------------- element-wise, one input
NEGATIVE = Unary("negative", lambda x: -x, lambda x, y: -np.ones_like(y))
SQUARE = Unary("square", np.square, lambda x, y: 2 * x)
SQRT = Unary("sqrt", np.sqrt, lambda x, y: _safe_div(0.5, y))
RSQRT = Unary("rsqrt", lambda x: 1 / np.sqrt(x), lambda x, y: -0.5 * y**3)
EXP = Unary("exp", np.exp, lambda x, y: y)
EXPM1 = Unary("expm1", np.expm1, lambda x, y: y + 1)
LOG = Unary("log", np.log, lambda x, y: _safe_div(1.0, x))
LOG1P = Unary("log1p", np.log1p, lambda x, y: _safe_div(1.0, 1 + x))
ABS = Unary("absolute", np.abs, lambda x, y: np.sign(x))
RELU = Unary("relu", lambda x: np.maximum(x, 0), lambda x, y: (x > 0).astype(y.dtype))
SIGMOID = Unary("sigmoid", _sigmoid, lambda x, y: y * (1 - y))
TANH = Unary("tanh", np.tanh, lambda x, y: 1 - y**2)
SOFTPLUS = Unary("softplus", _softplus, lambda x, y: _sigmoid(x))
SILU = Unary("silu", lambda x: x * _sigmoid(x), lambda x, y: (s := _sigmoid(x)) * (1 + x * (1 - s)))
ERF = Unary("erf", _erf, lambda x, y: 2 / math.sqrt(math.pi) * np.exp(-(x**2)))
GELU = Unary("gelu", _gelu, _gelu_grad)
ELU = Unary(
    "elu",
    lambda x, alpha=1.0: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))),
    lambda x, y, alpha=1.0: np.where(x > 0, 1.0, y + alpha),
)
LEAKY_RELU = Unary(
    "leaky_relu",
    lambda x, negative_slope=0.2: np.where(x > 0, x, negative_slope * x),
    lambda x, y, negative_slope=0.2: np.where(x > 0, 1.0, negative_slope),
)
CLIP = Unary(
    "clip",
    lambda x, x_min=None, x_max=None: np.clip(x, x_min, x_max),
    lambda x, y, x_min=None, x_max=None: (
        ((True if x_min is None else x >= x_min) & (True if x_max is None else x <= x_max))
        * np.ones_like(y)
    ),
)

# ------------------------------------------------------------ element-wise, two inputs
ADD = Binary("add", np.add, _ones, _ones)
SUBTRACT = Binary("subtract", np.subtract, _ones, lambda a, b, y: -1.0)
MULTIPLY = Binary("multiply", np.multiply, lambda a, b, y: b, lambda a, b, y: a)
DIVIDE = Binary(
    "divide", np.true_divide, lambda a, b, y: _safe_div(1.0, b), lambda a, b, y: -_safe_div(y, b)
)
POWER = Binary(
    "power",
    np.power,
    lambda a, b, y: b * np.power(a, np.subtract(b, 1)),
    lambda a, b, y: y * np.log(np.where(np.asarray(a) > 0, a, 1)),
)
# The larger (smaller) input gets the gradient; ties split it equally (as JAX does).
MAXIMUM = Binary(
    "maximum",
    np.maximum,
    lambda a, b, y: np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)),
    lambda a, b, y: np.where(b > a, 1.0, np.where(a == b, 0.5, 0.0)),
)
MINIMUM = Binary(
    "minimum",
    np.minimum,
    lambda a, b, y: np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0)),
    lambda a, b, y: np.where(b < a, 1.0, np.where(a == b, 0.5, 0.0)),
)


class _Where(Primitive):
    def forward(self, cond, a, b):
        return np.where(cond, a, b), (np.asarray(cond, bool), np.shape(a), np.shape(b))

    def backward(self, dy, saved):
        cond, sa, sb = saved
        return (
            None,
            unbroadcast(np.where(cond, dy, 0), sa),
            unbroadcast(np.where(cond, 0, dy), sb),
        )


WHERE = _Where("where")


class _Cast(Primitive):
    def forward(self, x, dtype):
        return np.asarray(x).astype(dtype), np.asarray(x).dtype

    def backward(self, dy, saved):
        return (dy.astype(saved) if saved.kind == "f" else None,)


CAST = _Cast("cast")


# ---------------------------------------------------------------------- reductions
def _keep(g: np.ndarray, shape: tuple[int, ...], axis: Any, keepdims: bool) -> np.ndarray:
    """Put the reduced axes back (size 1) so ``g`` broadcasts against the input."""
    if keepdims or (axis is None and g.ndim == len(shape)):
        return g
    if axis is None:
        return np.reshape(g, (1,) * len(shape))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return np.expand_dims(g, tuple(a % len(shape) for a in axes))


class _Sum(Primitive):
    def forward(self, x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims), (np.shape(x), axis, keepdims)

    def backward(self, dy, saved):
        shape, axis, keepdims = saved
        return (np.broadcast_to(_keep(dy, shape, axis, keepdims), shape).copy(),)


class _Mean(Primitive):
    def forward(self, x, axis=None, keepdims=False):
        y = np.mean(x, axis=axis, keepdims=keepdims)
        return y, (np.shape(x), axis, keepdims, max(np.size(x), 1) // max(np.size(y), 1))

    def backward(self, dy, saved):
        shape, axis, keepdims, n = saved
        return (np.broadcast_to(_keep(dy, shape, axis, keepdims) / n, shape).copy(),)


class _Extremum(Primitive):
    """max/min: the gradient goes to the extreme entries, split equally between ties."""

    def __init__(self, name: str, fn) -> None:
        super().__init__(name)
        self.fn = fn

    def forward(self, x, axis=None, keepdims=False):
        y = self.fn(x, axis=axis, keepdims=keepdims)
        return y, (x, y, axis, keepdims)

    def backward(self, dy, saved):
        x, y, axis, keepdims = saved
        shape = np.shape(x)
        hit = x == _keep(y, shape, axis, keepdims)
        count = np.sum(hit, axis=axis, keepdims=True)
        return (hit * _keep(dy, shape, axis, keepdims) / count,)


class _Prod(Primitive):
    def forward(self, x, axis=None, keepdims=False):
        return np.prod(x, axis=axis, keepdims=keepdims), (x, axis, keepdims)

    def backward(self, dy, saved):
        x, axis, keepdims = saved
        shape = np.shape(x)
        # product of the other entries, exact also when entries are zero
        ax = tuple(range(len(shape))) if axis is None else axis
        ax = (ax,) if isinstance(ax, int) else tuple(a % len(shape) for a in ax)
        moved = np.moveaxis(x, ax, tuple(range(-len(ax), 0)))
        flat = moved.reshape(*moved.shape[: moved.ndim - len(ax)], -1)
        n = flat.shape[-1]
        left = np.concatenate([np.ones_like(flat[..., :1]), np.cumprod(flat, -1)[..., :-1]], -1)
        right = np.concatenate(
            [np.cumprod(flat[..., ::-1], -1)[..., ::-1][..., 1:], np.ones_like(flat[..., :1])], -1
        )
        others = (left * right).reshape(moved.shape)[..., :] if n else flat.reshape(moved.shape)
        others = np.moveaxis(others, tuple(range(-len(ax), 0)), ax)
        return (others * _keep(dy, shape, axis, keepdims),)


class _Var(Primitive):
    def forward(self, x, axis=None, keepdims=False):
        mean = np.mean(x, axis=axis, keepdims=True)
        y = np.mean((x - mean) ** 2, axis=axis, keepdims=keepdims)
        return y, (x, mean, axis, keepdims, max(np.size(x), 1) // max(np.size(y), 1))

    def backward(self, dy, saved):
        x, mean, axis, keepdims, n = saved
        return (2 * (x - mean) / n * _keep(dy, np.shape(x), axis, keepdims),)


class _Cumsum(Primitive):
    def forward(self, x, axis=None):
        return np.cumsum(x, axis=axis), (np.shape(x), axis)

    def backward(self, dy, saved):
        shape, axis = saved
        if axis is None:
            return (np.flip(np.cumsum(np.flip(dy.ravel()))).reshape(shape),)
        return (np.flip(np.cumsum(np.flip(dy, axis), axis=axis), axis),)


SUM = _Sum("sum")
MEAN = _Mean("mean")
MAX = _Extremum("max", np.max)
MIN = _Extremum("min", np.min)
PROD = _Prod("prod")
VAR = _Var("var")
CUMSUM = _Cumsum("cumsum")


class _Softmax(Primitive):
    def forward(self, x, axis=-1):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        y = e / np.sum(e, axis=axis, keepdims=True)
        return y, (y, axis)

    def backward(self, dy, saved):
        y, axis = saved
        return (y * (dy - np.sum(dy * y, axis=axis, keepdims=True)),)


class _LogSoftmax(Primitive):
    def forward(self, x, axis=-1):
        s = x - np.max(x, axis=axis, keepdims=True)
        y = s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
        return y, (y, axis)

    def backward(self, dy, saved):
        y, axis = saved
        return (dy - np.exp(y) * np.sum(dy, axis=axis, keepdims=True),)


SOFTMAX = _Softmax("softmax")
LOG_SOFTMAX = _LogSoftmax("log_softmax")


# ----------------------------------------------------------------- linear algebra
def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` on the threads the product earns (:func:`layernet.threads.matmul`)."""
    if a.ndim >= 2 and b.ndim >= 2:
        return threads.matmul(a, b)
    return _ops.product(a, b)


def _tensordot(a: np.ndarray, b: np.ndarray, axes: tuple[list[int], list[int]]) -> np.ndarray:
    """``np.tensordot`` on the threads its product earns."""
    shared = math.prod(a.shape[i] for i in axes[0])
    with threads.sized(2 * a.size * (b.size // shared if shared else 0)):
        return np.tensordot(a, b, axes)


class _Matmul(Primitive):
    def forward(self, a, b):
        return _matmul(a, b), (a, b)

    def backward(self, dy, saved):
        a, b = saved
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = (*np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]), a2.shape[-2], b2.shape[-1])
        d2 = np.reshape(dy, out)
        ga = _matmul(d2, np.swapaxes(b2, -1, -2))
        gb = _matmul(np.swapaxes(a2, -1, -2), d2)
        ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


MATMUL = _Matmul("matmul")


def _einsum_letters(spec: str, ndims: Sequence[int]) -> tuple[list[str], str]:
    """Expand ``...`` into letters, and give the output explicitly."""
    if "->" in spec:
        ins, out = spec.replace(" ", "").split("->")
    else:
        ins, out = spec.replace(" ", ""), None
    terms = ins.split(",")
    used = set(spec)
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    ell = ""
    for i, t in enumerate(terms):
        if "..." in t:
            n = ndims[i] - (len(t) - 3)
            ell = ell if len(ell) >= n else "".join(free[:n])
            terms[i] = t.replace("...", ell[len(ell) - n :] if n else "")
    if out is None:
        counts: dict[str, int] = {}
        for t in terms:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return terms, out


class _Einsum(Primitive):
    def forward(self, *xs, subscripts):
        terms, out = _einsum_letters(subscripts, [np.ndim(x) for x in xs])
        for t in terms:
            if len(set(t)) != len(t):
                raise ValueError(
                    f"ops.einsum: repeated indices within one operand ({subscripts!r}) are "
                    f"not supported."
                )
        return np.einsum(f"{','.join(terms)}->{out}", *xs), (xs, terms, out)

    def backward(self, dy, saved):
        xs, terms, out = saved
        grads = []
        for i, (x, t) in enumerate(zip(xs, terms, strict=True)):
            others = [xs[j] for j in range(len(xs)) if j != i]
            other_terms = [terms[j] for j in range(len(xs)) if j != i]
            seen = set(out).union(*map(set, other_terms)) if other_terms else set(out)
            target = "".join(c for c in t if c in seen)
            g = np.einsum(f"{','.join([out, *other_terms])}->{target}", dy, *others)
            if target != t:  # indices summed in this operand alone: copy along them
                g = np.expand_dims(g, tuple(k for k, c in enumerate(t) if c not in seen))
                g = np.broadcast_to(g, np.shape(x)).copy()
            grads.append(g)
        return tuple(grads)


EINSUM = _Einsum("einsum")


class _Tensordot(Primitive):
    def forward(self, a, b, axes=2):
        if isinstance(axes, int):
            ax_a = list(range(a.ndim - axes, a.ndim))
            ax_b = list(range(axes))
        else:
            ax_a, ax_b = (
                ([axes[0]] if isinstance(axes[0], int) else list(axes[0])),
                ([axes[1]] if isinstance(axes[1], int) else list(axes[1])),
            )
            ax_a = [x % a.ndim for x in ax_a]
            ax_b = [x % b.ndim for x in ax_b]
        return _tensordot(a, b, (ax_a, ax_b)), (a, b, ax_a, ax_b)

    def backward(self, dy, saved):
        a, b, ax_a, ax_b = saved
        free_a = [i for i in range(a.ndim) if i not in ax_a]
        free_b = [i for i in range(b.ndim) if i not in ax_b]
        na = len(free_a)
        # dA: contract dy's b-free axes with b's free axes; what is left of b are the
        # contracted axes in b's order, each standing for its partner axis of a
        ga = _tensordot(dy, b, (list(range(na, dy.ndim)), free_b))
        ga = np.transpose(ga, np.argsort(free_a + [ax_a[ax_b.index(k)] for k in sorted(ax_b)]))
        gb = _tensordot(a, dy, (free_a, list(range(na))))
        gb = np.transpose(gb, np.argsort([ax_b[ax_a.index(k)] for k in sorted(ax_a)] + free_b))
        return ga, gb


TENSORDOT = _Tensordot("tensordot")


# --------------------------------------------------------------------- shape ops
class _Reshape(Primitive):
    def forward(self, x, newshape):
        return np.reshape(x, newshape), np.shape(x)

    def backward(self, dy, saved):
        return (np.reshape(dy, saved),)


class _Transpose(Primitive):
    def forward(self, x, axes=None):
        return np.transpose(x, axes), (np.ndim(x), axes)

    def backward(self, dy, saved):
        nd, axes = saved
        inv = None if axes is None else np.argsort([a % nd for a in axes])
        return (np.transpose(dy, inv),)


class _BroadcastTo(Primitive):
    def forward(self, x, shape):
        return np.broadcast_to(x, shape).copy(), np.shape(x)

    def backward(self, dy, saved):
        return (unbroadcast(dy, saved),)


class _GetItem(Primitive):
    def forward(self, x, key):
        return np.asarray(x[key]).copy(), (np.shape(x), np.asarray(x).dtype, key)

    def backward(self, dy, saved):
        shape, dtype, key = saved
        g = np.zeros(shape, dtype=np.result_type(dtype, dy.dtype))
        np.add.at(g, key, dy)
        return (g,)


class _Concatenate(Primitive):
    def forward(self, *xs, axis=0):
        y = np.concatenate(xs, axis=axis)
        return y, ([np.shape(x)[axis] for x in xs], axis)

    def backward(self, dy, saved):
        sizes, axis = saved
        return tuple(np.split(dy, np.cumsum(sizes)[:-1], axis=axis))


class _Tile(Primitive):
    def forward(self, x, repeats):
        reps = (repeats,) if isinstance(repeats, int) else tuple(repeats)
        y = np.tile(x, reps)
        return y, (np.shape(x), y.shape)

    def backward(self, dy, saved):
        shape, yshape = saved
        full = (1,) * (len(yshape) - len(shape)) + tuple(shape)
        split = []
        for n, m in zip(full, yshape, strict=True):
            split += [m // n if n else 0, n]
        g = dy.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return (g.reshape(shape),)


class _Repeat(Primitive):
    def forward(self, x, repeats, axis=None):
        return np.repeat(x, repeats, axis=axis), (np.shape(x), repeats, axis)

    def backward(self, dy, saved):
        shape, repeats, axis = saved
        if axis is None:
            flat_n = math.prod(shape)
            idx = np.repeat(np.arange(flat_n), repeats)
            g = np.zeros(flat_n, dy.dtype)
            np.add.at(g, idx, dy.ravel())
            return (g.reshape(shape),)
        idx = np.repeat(np.arange(shape[axis]), repeats)
        g = np.zeros(shape, dy.dtype)
        moved = np.moveaxis(g, axis, 0)
        np.add.at(moved, idx, np.moveaxis(dy, axis, 0))
        return (g,)


class _Pad(Primitive):
    def forward(self, x, pad_width, constant_values=0):
        y = np.pad(x, pad_width, mode="constant", constant_values=constant_values)
        return y, (np.shape(x), np.broadcast_to(np.asarray(pad_width), (np.ndim(x), 2)))

    def backward(self, dy, saved):
        shape, pads = saved
        key = tuple(slice(int(a), int(a) + n) for (a, _), n in zip(pads, shape, strict=True))
        return (dy[key].copy(),)


class _Flip(Primitive):
    def forward(self, x, axis=None):
        return np.flip(x, axis).copy(), axis

    def backward(self, dy, saved):
        return (np.flip(dy, saved).copy(),)


class _Take(Primitive):
    def forward(self, x, indices, axis=None):
        idx = np.asarray(indices)
        return np.take(x, idx, axis=axis), (np.shape(x), idx, axis)

    def backward(self, dy, saved):
        shape, idx, axis = saved
        g = np.zeros(shape, dy.dtype)
        if axis is None:
            flat = g.reshape(-1)
            np.add.at(flat, idx.ravel() % max(flat.size, 1), dy.reshape(-1))
            return g, None
        ax = axis % len(shape)
        moved = np.moveaxis(g, ax, 0)
        dmoved = np.moveaxis(dy.reshape(*shape[:ax], idx.size, *shape[ax + 1 :]), ax, 0)
        np.add.at(moved, idx.ravel() % shape[ax], dmoved)
        return g, None


class _TakeAlongAxis(Primitive):
    def forward(self, x, indices, axis=None):
        idx = np.asarray(indices)
        return np.take_along_axis(x, idx, axis=axis), (np.shape(x), idx, axis)

    def backward(self, dy, saved):
        shape, idx, axis = saved
        g = np.zeros(shape, dy.dtype)
        if axis is None:
            np.add.at(g.reshape(-1), idx, dy)
            return g, None
        ax = axis % len(shape)
        full_idx = list(np.indices(idx.shape, sparse=True))
        full_idx[ax] = idx
        if any(g.shape[k] != idx.shape[k] for k in range(len(shape)) if k != ax):
            bshape = np.broadcast_shapes(
                tuple(1 if k == ax else g.shape[k] for k in range(len(shape))),
                tuple(1 if k == ax else idx.shape[k] for k in range(len(shape))),
            )
            bidx = np.broadcast_to(idx, (*bshape[:ax], idx.shape[ax], *bshape[ax + 1 :]))
            full_idx = list(np.indices(bidx.shape, sparse=True))
            full_idx[ax] = bidx
            gb = np.zeros((*bshape[:ax], shape[ax], *bshape[ax + 1 :]), dy.dtype)
            np.add.at(gb, tuple(full_idx), np.broadcast_to(dy, bidx.shape))
            return unbroadcast(gb, shape), None
        np.add.at(g, tuple(full_idx), dy)
        return g, None


RESHAPE = _Reshape("reshape")
TRANSPOSE = _Transpose("transpose")
BROADCAST_TO = _BroadcastTo("broadcast_to")
GETITEM = _GetItem("getitem")
CONCATENATE = _Concatenate("concatenate")
TILE = _Tile("tile")
REPEAT = _Repeat("repeat")
PAD = _Pad("pad")
FLIP = _Flip("flip")
TAKE = _Take("take")
TAKE_ALONG_AXIS = _TakeAlongAxis("take_along_axis")


# --------------------------------------------------------------------- convolution
def _conv_pads(
    spatial: Sequence[int], kernel: Sequence[int], strides, dilation, padding: str
) -> list[tuple[int, int]]:
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    pads = []
    for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=True):
        eff = (k - 1) * d + 1
        out = -(-n // s)
        total = max((out - 1) * s + eff - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


class _Conv(Primitive):
    r"""N-d channels-last cross-correlation, as a sum over the kernel's taps.

    For each tap :math:`t` the input entries it meets form one strided slice
    :math:`X_t`, and :math:`Y = \sum_t X_t K_t`; so
    :math:`\partial z/\partial K_t = X_t^T G` and :math:`G K_t^T` is added into the
    slice :math:`t` of :math:`\partial z/\partial X`.
    """

    def forward(self, x, kernel, strides=1, padding="valid", dilation_rate=1):
        nsp = x.ndim - 2
        strides = (strides,) * nsp if isinstance(strides, int) else tuple(strides)
        dil = (dilation_rate,) * nsp if isinstance(dilation_rate, int) else tuple(dilation_rate)
        ksp = kernel.shape[:nsp]
        pads = _conv_pads(x.shape[1:-1], ksp, strides, dil, padding)
        xp = np.pad(x, [(0, 0), *pads, (0, 0)])
        out = [
            (n + a + b - ((k - 1) * d + 1)) // s + 1
            for n, (a, b), k, s, d in zip(x.shape[1:-1], pads, ksp, strides, dil, strict=True)
        ]
        if min(out, default=1) < 1:
            raise ValueError(
                f"ops.conv: the kernel (spatial shape {tuple(ksp)}, dilation {dil}) is larger "
                f"than the padded input (spatial shape {tuple(x.shape[1:-1])})."
            )
        y = np.zeros((x.shape[0], *out, kernel.shape[-1]), np.result_type(x, kernel))
        taps = list(np.ndindex(*ksp))
        for t in taps:
            y += _ops.product(xp[self._slice(t, out, strides, dil)], kernel[t])
        return y, (x.shape, xp.shape, pads, kernel, xp, out, strides, dil, taps)

    @staticmethod
    def _slice(t, out, strides, dil):
        return (
            slice(None),
            *(
                slice(ti * d, ti * d + (o - 1) * s + 1, s)
                for ti, o, s, d in zip(t, out, strides, dil, strict=True)
            ),
            slice(None),
        )

    def backward(self, dy, saved):
        xshape, xpshape, pads, kernel, xp, out, strides, dil, taps = saved
        gxp = np.zeros(xpshape, dy.dtype)
        gk = np.zeros(kernel.shape, dy.dtype)
        cin = xshape[-1]
        d2 = dy.reshape(-1, dy.shape[-1])
        for t in taps:
            sl = self._slice(t, out, strides, dil)
            gxp[sl] += _ops.product(dy, kernel[t].T)
            gk[t] = _ops.product(xp[sl].reshape(-1, cin).T, d2)
        key = (
            slice(None),
            *(slice(a, a + n) for (a, _), n in zip(pads, xshape[1:-1], strict=True)),
            slice(None),
        )
        return gxp[key].copy(), gk


CONV = _Conv("conv")


# ------------------------------------------------------------ without derivative
def _nd(name: str, fn: Callable[..., Any]) -> NonDifferentiable:
    return NonDifferentiable(name, fn)


ARGMAX = _nd("argmax", lambda x, axis=None, keepdims=False: np.argmax(x, axis, keepdims=keepdims))
ARGMIN = _nd("argmin", lambda x, axis=None, keepdims=False: np.argmin(x, axis, keepdims=keepdims))
ARGSORT = _nd("argsort", lambda x, axis=-1: np.argsort(x, axis=axis, kind="stable"))
FLOOR = _nd("floor", np.floor)
CEIL = _nd("ceil", np.ceil)
ROUND = _nd("round", lambda x, decimals=0: np.round(x, decimals))
SIGN = _nd("sign", np.sign)
LESS = _nd("less", np.less)
GREATER = _nd("greater", np.greater)
EQUAL = _nd("equal", np.equal)
NOT_EQUAL = _nd("not_equal", np.not_equal)
LESS_EQUAL = _nd("less_equal", np.less_equal)
GREATER_EQUAL = _nd("greater_equal", np.greater_equal)
LOGICAL_AND = _nd("logical_and", np.logical_and)
LOGICAL_OR = _nd("logical_or", np.logical_or)
LOGICAL_NOT = _nd("logical_not", np.logical_not)
ISNAN = _nd("isnan", np.isnan)
ANY = _nd("any", lambda x, axis=None, keepdims=False: np.any(x, axis=axis, keepdims=keepdims))
ALL = _nd("all", lambda x, axis=None, keepdims=False: np.all(x, axis=axis, keepdims=keepdims))


def _one_hot(x, num_classes, axis=-1, dtype="float32"):
    x = np.asarray(x)
    y = (x[..., None] == np.arange(num_classes)).astype(dtype)
    return np.moveaxis(y, -1, axis) if axis != -1 else y


ONE_HOT = _nd("one_hot", _one_hot)
