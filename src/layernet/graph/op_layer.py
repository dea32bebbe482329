"""Ops on symbolic tensors: each becomes a call of a small layer in the graph.

``layernet.ops.add(x, y)`` (or ``x + y``) on tensors from :func:`layernet.Input`
records an :class:`OpLayer` call, a layer written as ``call()`` that applies the
op; its derivative is the op's own, traced like any ``call()`` layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import registry
from ..layers.base import Layer
from ..layers.core import _function_name
from .tensor import KerasTensor

_INPUT = "__input__"


def _template(value: Any, tensors: list[KerasTensor]) -> Any:
    """``value`` with every symbolic tensor replaced by ``{"__input__": i}`` (its position)."""
    if isinstance(value, KerasTensor):
        tensors.append(value)
        return {_INPUT: len(tensors) - 1}
    if isinstance(value, list | tuple):
        return [_template(v, tensors) for v in value]
    if isinstance(value, dict):
        return {k: _template(v, tensors) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fill(value: Any, inputs: list[Any]) -> Any:
    if isinstance(value, dict) and set(value) == {_INPUT}:
        return inputs[value[_INPUT]]
    if isinstance(value, list):
        return [_fill(v, inputs) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, inputs) for k, v in value.items()}
    return value


class OpLayer(Layer):
    r"""One op of :mod:`layernet.ops` applied to symbolic tensors, as a call in a model.

    Made for you when an op (or a Python operator) is applied to tensors from
    :func:`~layernet.Input`; it holds no weights and is not listed in
    :attr:`Model.layers` (as in Keras, where ops are not layers).

    .. rubric:: Input and output shape

    The op's: its inputs are the symbolic tensors it was applied to (a list
    for several), its output the op's result for them.

    Parameters
    ----------
    function : callable or str
        The op (``layernet.ops.add``) or its registered name.
    args : list
        The op's positional arguments, each symbolic tensor replaced by
        ``{"__input__": i}``, the position of the tensor among the layer's inputs.
    kwargs : dict, optional
        The op's keyword arguments, likewise.

    Raises
    ------
    ValueError
        A ``function`` that is not a registered op.

    Notes
    -----
    :math:`Y = f(X_1, \dots, X_k)` for the op :math:`f`; the derivatives are the
    op's own (its ``backward``), through the traced ``call()``.

    Examples
    --------
    >>> import layernet as ln
    >>> x = ln.Input(shape=(3,))
    >>> y = ln.ops.tanh(x) * 2.0
    >>> model = ln.Model(x, y)
    >>> [type(n.layer).__name__ for n in model.graph.nodes]
    ['OpLayer', 'OpLayer']
    """

    _default_name = "op"
    #: An op, not a layer of the user's: left out of ``Model.layers``.
    is_op = True

    def __init__(
        self,
        function: Any,
        args: list[Any],
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if isinstance(function, str):
            resolved = registry.resolve_function(function)
            if resolved is None:
                raise ValueError(
                    f"OpLayer: invalid value for `function`: no registered op named {function!r}."
                )
            function = resolved
        if "name" not in options or options["name"] is None:
            options["name"] = None
        super().__init__(**options)
        self.function = function
        self.args = list(args)
        self.op_kwargs = dict(kwargs or {})

    def check_input_shape(self, shape: Any) -> None:
        """An op takes tensors of any rank, scalars included (a loss is a scalar)."""
        return None

    def call(self, inputs: Any) -> Any:
        values = inputs if isinstance(inputs, list) else [inputs]
        return self.function(*_fill(self.args, values), **_fill(self.op_kwargs, values))

    def get_config(self) -> dict[str, Any]:
        return {
            "function": _function_name(self.function, self.owner),
            "args": self.args,
            "kwargs": self.op_kwargs,
            **super().get_config(),
        }


def record_op(op_name: str, fn: Any, args: tuple, kwargs: dict) -> Any:
    """The symbolic handler of :mod:`layernet.ops`: record the op as an :class:`OpLayer` call."""
    tensors: list[KerasTensor] = []
    template = _template(list(args), tensors)
    kw_template = _template(dict(kwargs), tensors)
    dtype = "float64" if any(t.dtype == "float64" for t in tensors) else "float32"
    layer = OpLayer(fn, template, kw_template, dtype=dtype)
    return layer(tensors if len(tensors) > 1 else tensors[0])
