r"""``RNN`` over a cell written the Keras way: a layer with ``call(inputs, states)``.

Keras lets any layer be a recurrent cell: it has a ``state_size`` (an int, or a
list of ints for several states), optionally an ``output_size``, and a
``call(inputs, states)`` that returns ``(output, new_states)`` for one time step.
``ln.layers.RNN(cell)`` with such a cell builds a :class:`CellRNN`: it unrolls
the cell over the time axis inside its own traced ``call``, so the derivatives
are those of the ops the cell's ``call`` records, composed through time — the
same backpropagation through time that the built-in cells write out by hand,
here derived by the tape.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .. import ops
from .._validation import check_bool
from .base import Layer

__all__ = ["CellRNN", "is_keras_cell"]


def is_keras_cell(cell: Any) -> bool:
    """Whether ``cell`` is a layer written as a Keras cell (``call`` and ``state_size``)."""
    return (
        isinstance(cell, Layer)
        and callable(getattr(cell, "call", None))
        and hasattr(cell, "state_size")
    )


def _sizes(state_size: Any) -> list[tuple[int, ...]]:
    """Each state's shape without the batch axis."""
    sizes = state_size if isinstance(state_size, list | tuple) else [state_size]
    out = []
    for s in sizes:
        out.append(tuple(int(d) for d in s) if isinstance(s, list | tuple) else (int(s),))
    return out


class CellRNN(Layer):
    r"""Keras's ``RNN(cell)`` for a cell written with ``call(inputs, states)``.

    .. rubric:: Input and output shape

    Input ``(batch, timesteps, ...)``; output ``(batch, output_size)``, or
    ``(batch, timesteps, output_size)`` with ``return_sequences``; with
    ``return_state`` also each state, ``(batch, state_size_i)``.

    Made by ``ln.layers.RNN(cell)`` when ``cell`` is not one of layernet's own
    cells. Input ``(batch, timesteps, ...)``; the cell runs on one step at a
    time, ``(output_t, states_t) = cell.call(x_t, states_{t-1})``, from zero
    states (or the cell's ``get_initial_state(batch_size)``, or ``initial_state``).

    Parameters
    ----------
    cell : Layer
        A layer with ``state_size`` and ``call(inputs, states[, training])``.
    return_sequences : bool, default False
        Return every step's output ``(batch, timesteps, output_size)`` instead of
        the last one.
    return_state : bool, default False
        Also return the final states: ``[output, *states]``.
    go_backwards : bool, default False
        Process the steps last to first (the sequence returned is in that order,
        as Keras returns it).
    stateful : bool, default False
        Not supported (a clear error), as for layernet's other recurrent layers.
    unroll, zero_output_for_mask : bool, default False
        ``unroll`` is accepted (the loop is always unrolled); with a mask, masked
        steps keep the previous states and output (zeros with ``zero_output_for_mask``).
    **kwargs
        ``name``, ``dtype``, ``seed``, ``trainable``.

    Raises
    ------
    ValueError
        A cell without ``state_size`` or ``call``, ``stateful=True``.

    Notes
    -----
    With :math:`s_t = f(x_t, s_{t-1}; \theta)` the chain rule through time gives

    .. math::

        \frac{\partial z}{\partial s_{t-1}} =
            \frac{\partial z}{\partial s_t}\,\frac{\partial s_t}{\partial s_{t-1}},\qquad
        \frac{\partial z}{\partial \theta} =
            \sum_t \frac{\partial z}{\partial s_t}\,\frac{\partial s_t}{\partial \theta},

    which the tape evaluates from the ops each step recorded.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> from layernet import ops
    >>> class Minimal(ln.layers.Layer):
    ...     def __init__(self, units, **kwargs):
    ...         super().__init__(**kwargs)
    ...         self.units = self.state_size = units
    ...     def build(self, input_shape):
    ...         self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
    ...         self.u = self.add_weight(shape=(self.units, self.units), name="u")
    ...     def call(self, inputs, states):
    ...         h = ops.tanh(ops.matmul(inputs, self.w) + ops.matmul(states[0], self.u))
    ...         return h, [h]
    >>> rnn = ln.layers.RNN(Minimal(4), return_sequences=True)
    >>> rnn(np.ones((2, 5, 3))).shape
    (2, 5, 4)
    """

    def __init__(
        self,
        cell: Layer,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        o = self.owner
        if isinstance(cell, dict):  # from get_config (a registered class, no code run)
            from ..saving import layer_from_spec

            cell = layer_from_spec(cell)
        if not is_keras_cell(cell):
            raise ValueError(
                f"{o}: invalid value for `cell`: expected a layer with `state_size` and "
                f"`call(inputs, states)`, received {type(cell).__name__}."
            )
        if stateful:
            raise ValueError(
                f"{o}: `stateful=True` is not supported: layernet's recurrent layers start "
                f"every batch from the initial state; pass initial_state= to carry one over."
            )
        self.cell: Any = cell
        self.return_sequences = check_bool(return_sequences, "return_sequences", o)
        self.return_state = check_bool(return_state, "return_state", o)
        self.go_backwards = check_bool(go_backwards, "go_backwards", o)
        self.stateful = False
        self.unroll = check_bool(unroll, "unroll", o)
        self.zero_output_for_mask = check_bool(zero_output_for_mask, "zero_output_for_mask", o)
        self.supports_masking = True

    @property
    def state_size(self) -> Any:
        return self.cell.state_size

    def get_config(self) -> dict[str, Any]:
        from .rnn import rnn_config

        return {**rnn_config(self), **super().get_config()}

    def split_call_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The sequence, then ``initial_state`` as further inputs (as :class:`RNN` takes them)."""
        from .rnn import RNN

        return RNN.split_call_arguments(self, *args, **kwargs)  # type: ignore[arg-type]

    def build(self, input_shape: Any = None, *args: Any, **kwargs: Any) -> None:
        shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        step = (shape[0], *shape[2:])
        if not self.cell.built:
            self.cell.build(step)

    def _output_size(self) -> tuple[int, ...]:
        size = getattr(self.cell, "output_size", None)
        if size is None:
            return _sizes(self.cell.state_size)[0]
        return tuple(int(d) for d in size) if isinstance(size, list | tuple) else (int(size),)

    def _initial_states(self, x: Any) -> list[Any]:
        batch = ops.shape(x)[0]
        make = getattr(self.cell, "get_initial_state", None)
        if callable(make):
            init = make(batch_size=batch)
            return list(init) if isinstance(init, list | tuple) else [init]
        return [ops.zeros((batch, *s), dtype=self.dtype) for s in _sizes(self.cell.state_size)]

    def call(self, inputs: Any, mask: Any = None, training: Any = None) -> Any:
        several = isinstance(inputs, list | tuple)
        x = inputs[0] if several else inputs
        states = list(inputs[1:]) if several and len(inputs) > 1 else self._initial_states(x)
        steps = x.shape[1]
        if steps == 0:
            raise ValueError(
                f"{self.owner}: expected inputs with at least one time step, got shape "
                f"{tuple(x.shape)}."
            )
        if not self.cell.built:
            self.cell.build((None, *x.shape[2:]))
        kwargs = {}
        params = inspect.signature(self.cell.call).parameters
        if "training" in params:
            kwargs["training"] = training
        m = None if mask is None else np.asarray(mask).astype(bool)
        prev = None
        outputs = []
        order = range(steps - 1, -1, -1) if self.go_backwards else range(steps)
        for t in order:
            out, new = self.cell.call(x[:, t], states, **kwargs)
            new = list(new) if isinstance(new, list | tuple) else [new]
            if m is not None:
                keep = m[:, t].reshape(-1, *([1] * (len(out.shape) - 1)))
                if prev is None:
                    prev = ops.zeros(ops.shape(out), dtype=self.dtype)
                new = [
                    ops.where(m[:, t].reshape(-1, *([1] * (len(s.shape) - 1))), n, s)
                    for n, s in zip(new, states, strict=True)
                ]
                fill = (
                    ops.zeros(ops.shape(out), dtype=self.dtype)
                    if (self.zero_output_for_mask)
                    else prev
                )
                out = ops.where(keep, out, fill)
            states, prev = new, out
            outputs.append(out)
        y = ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return [y, *states] if self.return_state else y

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, list):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * len(_sizes(self.cell.state_size))
        return out
