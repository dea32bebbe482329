r"""Variables: a layer's weights, the Keras way (``layer.add_weight`` returns one).

A :class:`Variable` holds one NumPy array, the very array that appears in its
layer's ``params`` (trainable) or ``state`` (non-trainable): an optimizer that
updates ``params`` in place updates the variable, and ``assign`` writes in
place so ``params`` sees it. Inside a traced ``call()`` a variable read becomes
a leaf of the tape; its gradient accumulates into the owning layer's ``grads``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ops.tensor import Tensor, active_tape, add_operators, unwrap


class Variable:
    r"""A named, assignable array owned by a layer (Keras's ``keras.Variable``).

    Parameters
    ----------
    initializer : array_like or callable
        The initial value, or ``initializer(shape, dtype)`` giving it.
    shape : tuple of int, optional
        Needed when ``initializer`` is a callable.
    dtype : str, optional
        The dtype (that of the value by default).
    trainable : bool, default True
        Whether optimisers update it (it then sits in the layer's ``params``).
    name : str, default "variable"
        The name within its layer.

    Attributes
    ----------
    regularizer, constraint : callable or None
        Set by :meth:`~layernet.layers.Layer.add_weight`: the regularizer's value is
        added to the layer's losses at each call; the constraint is applied by
        :meth:`apply_constraint` after an optimizer step.

    Notes
    -----
    In a trace a read of :math:`w` is a leaf :math:`w` of the recorded graph;
    :math:`\partial z/\partial w` is the sum over the ops that read it.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> v = ln.Variable(np.zeros(2), name="counter")
    >>> _ = v.assign_add([1.0, 2.0])
    >>> v.numpy(), v.shape, v.name, (v + 1.0)
    (array([1., 2.]), (2,), 'counter', array([2., 3.]))
    """

    _layernet_variable = True
    __array_priority__ = 1000

    def __init__(
        self,
        initializer: Any,
        shape: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        name: str | None = None,
    ) -> None:
        if callable(initializer):
            if shape is None:
                raise ValueError(
                    f"Variable {name!r}: expected a `shape` with a callable initializer, "
                    f"received shape=None."
                )
            value = np.asarray(initializer(tuple(shape), dtype))
        else:
            value = np.asarray(unwrap(initializer))
        self._value = np.array(value, dtype=dtype if dtype is not None else value.dtype)
        if shape is not None and tuple(shape) != self._value.shape:
            raise ValueError(
                f"Variable {name!r}: the initial value has shape {self._value.shape}, "
                f"expected {tuple(shape)}."
            )
        self._grad = np.zeros_like(self._value)
        self.name = name or "variable"
        self._trainable = bool(trainable)
        self._auto_name = name is None
        self.owner: Any = None
        self.regularizer: Any = None
        self.constraint: Any = None

    @classmethod
    def _view(cls, array: np.ndarray, name: str, trainable: bool, owner: Any) -> Variable:
        """A variable over an existing array (a hand-written layer's parameter)."""
        v = cls.__new__(cls)
        v._value, v.name, v._trainable, v._auto_name, v.owner = array, name, trainable, False, owner
        grad = owner.grads.get(name) if trainable else None
        v._grad = np.zeros_like(array) if grad is None else grad
        v.regularizer = v.constraint = None
        return v

    # ------------------------------------------------------------------ reading
    @property
    def value(self) -> Any:
        """The value: the array, or inside a traced ``call()`` the Tensor that stands for it."""
        tape = active_tape()
        return tape.leaf(self) if tape is not None else self._value

    def numpy(self) -> np.ndarray:
        """The value as a NumPy array (the variable's own array, not a copy)."""
        return self._value

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape."""
        return self._value.shape

    @property
    def dtype(self) -> str:
        """The dtype's name, e.g. ``"float32"``."""
        return self._value.dtype.name

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self._value.ndim

    @property
    def trainable(self) -> bool:
        """Whether optimisers update it."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)

    @property
    def path(self) -> str:
        """``"<layer name>/<variable name>"`` (the name alone when it has no layer)."""
        return f"{self.owner.name}/{self.name}" if self.owner is not None else self.name

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self._value if dtype is None else self._value.astype(dtype)

    def __float__(self) -> float:
        return float(self._value)

    def __format__(self, spec: str) -> str:
        """Formats as its value does (``f"{v:.4f}"`` for a scalar variable)."""
        return format(self._value[()] if self._value.ndim == 0 else self._value, spec)

    def __len__(self) -> int:
        return len(self._value)

    def __getitem__(self, key: Any) -> Any:
        from .ops import numpy as onp

        return onp.getitem(self, key)

    @property
    def T(self) -> Any:
        from .ops import numpy as onp

        return onp.transpose(self)

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
            f"value={np.array2string(self._value, threshold=6)}>"
        )

    # ---------------------------------------------------------------- writing
    def _checked(self, value: Any, fn: str) -> np.ndarray:
        value = np.asarray(unwrap(value) if not isinstance(value, Tensor) else value.value)
        try:
            np.broadcast_to(value, self.shape)
        except ValueError:
            raise ValueError(
                f"Variable '{self.path}': {fn}: expected a value of shape {self.shape}, "
                f"received shape {value.shape}."
            ) from None
        return value

    def assign(self, value: Any) -> Variable:
        """Write ``value`` into the variable's array, in place (no derivative flows through)."""
        self._value[...] = self._checked(value, "assign")
        return self

    def assign_add(self, value: Any) -> Variable:
        """Add ``value`` in place."""
        self._value += self._checked(value, "assign_add")
        return self

    def assign_sub(self, value: Any) -> Variable:
        """Subtract ``value`` in place."""
        self._value -= self._checked(value, "assign_sub")
        return self

    def apply_constraint(self) -> None:
        """Project the value with its constraint (if any), in place; call after an update."""
        if self.constraint is not None:
            self._value[...] = np.asarray(unwrap(self.constraint(self._value)))


add_operators(Variable)
