r"""Tracing: :class:`Tensor`, the :class:`Tape` of a ``call()``, and the one dispatch point.

While a layer's ``call()`` runs, its inputs are :class:`Tensor` objects. Every
op applied to a Tensor computes its NumPy value at once and appends a
:class:`Node` ``(primitive, inputs, outputs, saved)`` to the active
:class:`Tape`; a layer called on Tensors appends a node for that call. The
backward pass walks the nodes in reverse and, at each, multiplies the upstream
gradient by the op's local Jacobian (its ``backward``); where a Tensor fed
several nodes the gradients are summed. This is the chain rule of the notes
applied inside one layer:

.. math::

    \frac{\partial z}{\partial x} = \sum_{\text{paths}}
        \frac{\partial z}{\partial y}\,J_{n}\cdots J_{1}.

Every public op goes through :func:`dispatch`: when an argument is symbolic
(:func:`is_symbolic`), the op is handed to the handler installed with
:func:`set_symbolic_handler` instead of computing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from .primitives import Primitive

# ------------------------------------------------------------------ symbolic hook
_symbolic_handler: Callable[..., Any] | None = None


def is_symbolic(obj: Any) -> bool:
    """Whether ``obj`` is a symbolic tensor: it has the attribute ``_layernet_symbolic = True``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.ops.is_symbolic(np.ones(2))
    False
    """
    return getattr(obj, "_layernet_symbolic", False) is True


def set_symbolic_handler(handler: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """Install the function that receives ops applied to symbolic tensors; return the old one.

    When any argument of an op (at any depth of lists and tuples) is symbolic
    (:func:`is_symbolic`), the op does not compute; it returns
    ``handler(op_name, fn, args, kwargs)``, where ``fn(*args, **kwargs)``
    applies the same op to Tensors or arrays: ``fn`` is the public op itself
    (``layernet.ops.add``), so ``layers.Lambda`` can wrap a recorded op and store
    it by its registered name. A graph engine installs one to record ops on its
    symbolic inputs. ``None`` removes it.

    Parameters
    ----------
    handler : callable or None
        ``handler(op_name: str, fn: callable, args: tuple, kwargs: dict)``.

    Returns
    -------
    callable or None
        The handler installed before.

    Examples
    --------
    >>> import layernet as ln
    >>> class Sym:
    ...     _layernet_symbolic = True
    >>> old = ln.ops.set_symbolic_handler(lambda name, fn, args, kwargs: f"recorded {name}")
    >>> ln.ops.add(Sym(), 1.0)
    'recorded add'
    >>> _ = ln.ops.set_symbolic_handler(old)
    """
    global _symbolic_handler
    old, _symbolic_handler = _symbolic_handler, handler
    return old


def _any_symbolic(obj: Any) -> bool:
    if isinstance(obj, list | tuple):
        return any(_any_symbolic(o) for o in obj)
    if isinstance(obj, dict):
        return any(_any_symbolic(o) for o in obj.values())
    return is_symbolic(obj)


def dispatch(
    name: str,
    fn: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    public: Callable[..., Any] | None = None,
) -> Any:
    """The one entry of every public op: hand symbolic calls to the handler, else compute.

    Parameters
    ----------
    name : str
        The op's name (``"add"``, ``"image.resize"``).
    fn : callable
        Computes the op on arrays and Tensors.
    args, kwargs
        The call's arguments.
    public : callable, optional
        The public op (e.g. ``layernet.ops.add``), handed to the symbolic handler
        in place of ``fn``: it computes the same on arrays and Tensors, and a
        :class:`~layernet.layers.Lambda` stores it by its registered name
        (``"layernet>ops.add"``).

    Returns
    -------
    object
        The op's result, or the handler's.
    """
    if _symbolic_handler is not None and (_any_symbolic(args) or _any_symbolic(kwargs)):
        return _symbolic_handler(name, public or fn, args, kwargs)
    return fn(*args, **kwargs)


# ---------------------------------------------------------------------------- tape
class Node:
    """One recorded call: a primitive or a layer, its input and output Tensors, what it kept."""

    __slots__ = ("attrs", "index", "inputs", "op", "outputs", "saved")

    def __init__(self, op: Any, inputs: list, outputs: list, saved: Any, attrs: dict) -> None:
        self.op, self.inputs, self.outputs, self.saved, self.attrs = (
            op,
            inputs,
            outputs,
            saved,
            attrs,
        )
        self.index = 0

    @property
    def name(self) -> str:
        from ..layers.base import Layer

        if isinstance(self.op, Layer):
            return f"layer {self.op.name}"
        return str(self.op.name)


class Tape:
    """The ops recorded while one ``call()`` ran (kept as the layer's ``saved``).

    Attributes
    ----------
    nodes : list of Node
        In the order they ran.
    leaves : dict
        ``id(variable) -> (variable, Tensor)``: the Tensor that stands for each
        :class:`~layernet.Variable` read during the call.
    losses : list
        Tensors (or numbers) given to ``add_loss`` during the call.
    training : bool
        The call's training flag (passed on to layers called inside).
    """

    def __init__(self, training: bool = False) -> None:
        self.nodes: list[Node] = []
        self.leaves: dict[int, tuple[Any, Tensor]] = {}
        self.losses: list[Any] = []
        self.training = training

    def leaf(self, variable: Any) -> Tensor:
        """The Tensor that stands for ``variable`` in this call (made on first read)."""
        entry = self.leaves.get(id(variable))
        if entry is None:
            entry = (variable, Tensor(variable._value, self))
            self.leaves[id(variable)] = entry
        return entry[1]

    def record(self, op: Any, inputs: list, outputs: list, saved: Any, attrs: dict) -> None:
        node = Node(op, inputs, outputs, saved, attrs)
        node.index = len(self.nodes)
        self.nodes.append(node)

    def backward(
        self,
        seeds: Sequence[tuple[Tensor, np.ndarray]],
        on_layer: Callable[[Any, Any, Any], Any] | None = None,
        with_losses: bool = False,
    ) -> dict[int, np.ndarray]:
        """Walk the nodes in reverse from ``seeds`` (Tensor, gradient) pairs.

        Returns the gradient of every Tensor reached, by ``id``; gradients of a
        Tensor used several times are summed. ``on_layer(layer, dy, saved)``
        handles a recorded layer call: it returns the input gradient(s). With
        ``with_losses``, a layer call whose own call added losses is visited even
        when none of its outputs has a gradient (its losses still do).
        """
        grads: dict[int, np.ndarray] = {}
        for t, g in seeds:
            _accumulate(grads, t, np.asarray(g))
        for node in reversed(self.nodes):
            dys = [grads.get(id(o)) for o in node.outputs]
            if all(d is None for d in dys) and not (with_losses and node.attrs.get("losses")):
                continue
            dys = [
                np.zeros(o.shape, o.dtype) if d is None else d
                for d, o in zip(dys, node.outputs, strict=True)
            ]
            dy: Any = dys if node.attrs.get("__multi__") else dys[0]
            if isinstance(node.op, Primitive):
                if not node.op.differentiable:
                    continue
                gin = node.op.backward(dy, node.saved)
            else:
                assert on_layer is not None
                gin = on_layer(node.op, dy, node.saved)
                if not isinstance(gin, list | tuple):
                    gin = (gin,)
            for inp, g in zip(node.inputs, gin, strict=False):
                if isinstance(inp, Tensor) and g is not None:
                    _accumulate(grads, inp, g)
        return grads


def _accumulate(grads: dict[int, np.ndarray], t: Tensor, g: Any) -> None:
    g = np.asarray(g)
    if g.shape != t.shape:
        g = np.broadcast_to(g, t.shape)
    if g.dtype != t.dtype and t.dtype.kind == "f":
        g = g.astype(t.dtype)
    prev = grads.get(id(t))
    grads[id(t)] = g.copy() if prev is None else prev + g


_local = threading.local()


def _stack() -> list[Tape]:
    s = getattr(_local, "tapes", None)
    if s is None:
        s = _local.tapes = []
    return s


def active_tape() -> Tape | None:
    """The tape of the ``call()`` now running, or ``None`` outside any."""
    s = _stack()
    return s[-1] if s else None


@contextlib.contextmanager
def recording(tape: Tape) -> Iterator[Tape]:
    """Make ``tape`` the active tape inside the block."""
    s = _stack()
    s.append(tape)
    try:
        yield tape
    finally:
        s.pop()


# -------------------------------------------------------------------------- Tensor
class Tensor:
    """A value flowing through a traced ``call()``: a NumPy array plus its tape.

    Ops and Python operators on Tensors compute at once and record themselves
    on the tape, so the layer's derivative is available afterwards. A Tensor
    reads like an array: ``.shape``, ``.dtype``, ``.ndim``, ``len``, ``.T``,
    indexing, ``numpy.asarray(t)``.

    Parameters
    ----------
    value : ndarray
        The value.
    tape : Tape
        The tape its ops are recorded on.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> class Square(ln.layers.Layer):
    ...     def call(self, x):
    ...         return x * x        # x is a Tensor here
    >>> layer = Square(dtype="float64")
    >>> layer(np.array([[3.0]]))
    array([[9.]])
    >>> layer.backward_input(np.ones((1, 1)))
    array([[6.]])
    """

    __array_priority__ = 1000

    def __init__(self, value: Any, tape: Tape) -> None:
        self.value = np.asarray(value)
        self.tape = tape

    # reading like an array
    @property
    def shape(self) -> tuple[int, ...]:
        """The value's shape."""
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        """The value's dtype."""
        return self.value.dtype

    @property
    def ndim(self) -> int:
        """The value's number of axes."""
        return self.value.ndim

    @property
    def size(self) -> int:
        """The value's number of entries."""
        return int(self.value.size)

    def __len__(self) -> int:
        return len(self.value)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.value if dtype is None else self.value.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array."""
        return self.value

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, dtype={self.dtype.name})"

    def __bool__(self) -> bool:
        return bool(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __iter__(self) -> Iterator[Any]:
        from . import numpy as ops

        return iter(ops.unstack(self, axis=0))

    __hash__ = object.__hash__

    @property
    def T(self) -> Any:
        from . import numpy as ops

        return ops.transpose(self)

    def __getitem__(self, key: Any) -> Any:
        from . import numpy as ops

        return ops.getitem(self, key)

    def astype(self, dtype: Any) -> Any:
        from . import numpy as ops

        return ops.cast(self, dtype)

    def reshape(self, *shape: Any) -> Any:
        from . import numpy as ops

        return ops.reshape(self, shape[0] if len(shape) == 1 else shape)


def _binary(name: str, reflected: bool = False) -> Callable[[Any, Any], Any]:
    def method(self: Any, other: Any) -> Any:
        from . import numpy as ops

        fn = getattr(ops, name)
        return fn(other, self) if reflected else fn(self, other)

    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


def _unary(name: str) -> Callable[[Any], Any]:
    def method(self: Any) -> Any:
        from . import numpy as ops

        return getattr(ops, name)(self)

    return method


#: Python operator -> op name (shared with :class:`~layernet.Variable`).
OPERATORS = {
    "add": "add",
    "sub": "subtract",
    "mul": "multiply",
    "truediv": "divide",
    "matmul": "matmul",
    "pow": "power",
}
COMPARISONS = {
    "lt": "less",
    "gt": "greater",
    "le": "less_equal",
    "ge": "greater_equal",
    "eq": "equal",
    "ne": "not_equal",
}


def add_operators(cls: type) -> type:
    """Give ``cls`` the Python operators ``+ - * / @ ** -x abs()`` and comparisons, as ops."""
    for py, op in OPERATORS.items():
        setattr(cls, f"__{py}__", _binary(op))
        setattr(cls, f"__r{py}__", _binary(op, reflected=True))
    for py, op in COMPARISONS.items():
        setattr(cls, f"__{py}__", _binary(op))
    setattr(cls, "__neg__", _unary("negative"))  # noqa: B010
    setattr(cls, "__pos__", lambda self: self)  # noqa: B010
    setattr(cls, "__abs__", _unary("absolute"))  # noqa: B010
    setattr(cls, "__hash__", object.__hash__)  # noqa: B010
    return cls


add_operators(Tensor)


# ---------------------------------------------------------------------- applying
def _is_variable(x: Any) -> bool:
    return getattr(x, "_layernet_variable", False) is True


def _numeric(x: Any, op: str, arg: str) -> Any:
    """The NumPy value of one argument (Python scalars stay scalars: NumPy's weak typing)."""
    if isinstance(x, Tensor):
        return x.value
    if _is_variable(x):
        return x._value
    if isinstance(x, bool | int | float) and not isinstance(x, np.generic):
        return x
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except (TypeError, ValueError):
            a = np.asarray(x, dtype=object)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"ops.{op}: expected `{arg}` to be a real numeric array, Tensor or number, "
            f"received {type(x).__name__} (dtype {a.dtype})."
        )
    return a


def apply(prim: Primitive, *xs: Any, **attrs: Any) -> Any:
    """Run ``prim`` on ``xs`` and, if any is a Tensor or a Variable read in a trace, record it.

    Returns a NumPy array when nothing is traced, else a :class:`Tensor`.
    """
    tape = None
    for x in xs:
        if isinstance(x, Tensor):
            tape = x.tape
            break
    if tape is None:
        active = active_tape()
        if active is not None and any(_is_variable(x) for x in xs):
            tape = active
    values = [_numeric(x, prim.name, f"x{i + 1}" if len(xs) > 1 else "x") for i, x in enumerate(xs)]
    y, saved = prim.forward(*values, **attrs)
    if tape is None or not prim.differentiable:
        return Tensor(y, tape) if tape is not None else np.asarray(y)
    inputs: list[Any] = []
    for x in xs:
        if isinstance(x, Tensor):
            inputs.append(x)
        elif _is_variable(x):
            inputs.append(tape.leaf(x))
        else:
            inputs.append(None)
    out = Tensor(y, tape)
    tape.record(prim, inputs, [out], saved, attrs)
    return out


def unwrap(x: Any) -> Any:
    """The NumPy value(s) of a Tensor, Variable, or list/tuple/dict of them."""
    if isinstance(x, Tensor):
        return x.value
    if _is_variable(x):
        return x._value
    if isinstance(x, list | tuple):
        return type(x)(unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: unwrap(v) for k, v in x.items()}
    return x


def is_tensor(x: Any) -> bool:
    """Whether ``x`` is a traced :class:`Tensor` (or a list holding one)."""
    if isinstance(x, list | tuple):
        return any(is_tensor(v) for v in x)
    return isinstance(x, Tensor)
