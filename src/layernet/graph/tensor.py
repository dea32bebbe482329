"""Symbolic tensors: a shape, a dtype and the call that produced them."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import shape_str

if TYPE_CHECKING:
    from .node import Node

_names = itertools.count(1)


class KerasTensor:
    r"""A symbolic tensor: the shape and dtype of a value a model will compute.

    Made by :func:`layernet.Input` and by calling a layer on symbolic tensors;
    it holds no numbers. ``model = ln.Model(inputs, outputs)`` turns the calls
    that lead from ``inputs`` to ``outputs`` into a model.

    Parameters
    ----------
    shape : tuple of int or None
        The full shape, batch axis first (``None`` where any size is taken).
    dtype : str, default "float32"
    name : str, optional
    node : Node, optional
        The call that produced the tensor (``None`` for a tensor of
        :func:`~layernet.Input`).
    index : int, default 0
        Which of the node's outputs this is.

    Attributes
    ----------
    shape : tuple
    dtype : str
    ndim : int
    name : str
    node : Node or None

    Examples
    --------
    >>> import layernet as ln
    >>> x = ln.Input(shape=(8,), name="features")
    >>> x.shape, x.dtype, x.ndim
    ((None, 8), 'float32', 2)
    >>> y = ln.Dense(4)(x)
    >>> y.shape
    (None, 4)
    """

    #: Marks symbolic objects for :func:`is_symbolic` (and for :mod:`layernet.ops`).
    _layernet_symbolic = True

    def __init__(
        self,
        shape: tuple[int | None, ...],
        dtype: Any = "float32",
        name: str | None = None,
        node: Node | None = None,
        index: int = 0,
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype).name
        self.name = name or f"keras_tensor_{next(_names)}"
        self.node = node
        self.index = index

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def _keras_history(self) -> tuple[Any, int, int]:
        """Keras's ``(layer, node_index, tensor_index)`` triple."""
        layer = None if self.node is None else self.node.layer
        return (layer, 0, self.index)

    def __repr__(self) -> str:
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, name={self.name}>"

    def __hash__(self) -> int:
        return id(self)

    def __len__(self) -> int:
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"{self!r}: len() of a tensor whose first axis has no fixed size.")
        return int(self.shape[0])

    def __bool__(self) -> bool:
        raise TypeError(
            f"{self!r}: a symbolic tensor has no value yet, so it cannot be used as a "
            f"condition; use layernet.ops.where or a layer's call() for value-dependent code."
        )

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError(
            f"{self!r}: a symbolic tensor has no value yet; it cannot be converted to a NumPy "
            f"array. Build a model with ln.Model(inputs, outputs) and call it on data."
        )

    # Python operators go through layernet.ops, which records them as calls.
    def _op(self, name: str, *args: Any) -> Any:
        from .. import ops  # the operators need the ops package

        return getattr(ops, name)(*args)

    def __add__(self, other: Any) -> Any:
        return self._op("add", self, other)

    def __radd__(self, other: Any) -> Any:
        return self._op("add", other, self)

    def __sub__(self, other: Any) -> Any:
        return self._op("subtract", self, other)

    def __rsub__(self, other: Any) -> Any:
        return self._op("subtract", other, self)

    def __mul__(self, other: Any) -> Any:
        return self._op("multiply", self, other)

    def __rmul__(self, other: Any) -> Any:
        return self._op("multiply", other, self)

    def __truediv__(self, other: Any) -> Any:
        return self._op("divide", self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return self._op("divide", other, self)

    def __matmul__(self, other: Any) -> Any:
        return self._op("matmul", self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return self._op("matmul", other, self)

    def __pow__(self, other: Any) -> Any:
        return self._op("power", self, other)

    def __neg__(self) -> Any:
        return self._op("negative", self)

    def __abs__(self) -> Any:
        return self._op("abs", self)

    def __getitem__(self, key: Any) -> Any:
        from .. import ops

        return ops.getitem(self, key) if hasattr(ops, "getitem") else ops.slice_tensor(self, key)  # type: ignore[attr-defined]


def is_symbolic(x: Any) -> bool:
    """Whether ``x`` is a symbolic tensor (or a list, tuple or dict holding one)."""
    if getattr(x, "_layernet_symbolic", False) is True and not isinstance(x, type):
        return True
    if isinstance(x, list | tuple):
        return any(is_symbolic(a) for a in x)
    if isinstance(x, dict):
        return any(is_symbolic(a) for a in x.values())
    return False
