r"""Recurrent layers built on cells: ``RNN(cell)``, ``SimpleRNN``, ``LSTM`` and their cells.

``RNN([cell, ...])`` runs a :class:`StackedRNNCells`: the cells on top of each
other at every step.

A cell maps one step's input and the previous states to the output and the new
states. :class:`RNN` runs a cell over the time axis and backpropagates through
time by an explicit loop in reverse over the values it kept at every step.

With :math:`a_s = x_s W + h_{s-1} U + b` (one block of columns per gate), the
cells are

* ``SimpleRNNCell``: :math:`h_s = \phi(a_s)`;
* ``LSTMCell`` (gates in Keras's order :math:`i, f, \tilde c, o`):
  :math:`i = \sigma(a^i), f = \sigma(a^f), \tilde c = \phi(a^c), o = \sigma(a^o)`,
  :math:`c_s = f \odot c_{s-1} + i \odot \tilde c`, :math:`h_s = o \odot \phi(c_s)`;
* ``GRUCell`` (``reset_after=True``, Keras 3's and PyTorch's form): gates
  :math:`z, r` and candidate :math:`\tilde h = \phi(x W_h + b_h + r\odot(h U_h + b'_h))`,
  :math:`h_s = z \odot h_{s-1} + (1 - z) \odot \tilde h`.

Backpropagation through time: with :math:`g_s = \partial z/\partial h_s` (the
upstream gradient of step :math:`s` plus what step :math:`s+1` sends back),

* SimpleRNN: :math:`\delta_s = g_s \odot \phi'(a_s)`, :math:`g_{s-1} \mathrel{+}= \delta_s U^T`;
* LSTM: :math:`\partial c_s = g_s \odot o \odot \phi'(c_s) + \partial c_{s+1} \odot f_{s+1}`,
  :math:`\delta^o = g_s \odot \phi(c_s) \odot \sigma'`,
  :math:`\delta^i = \partial c_s \odot \tilde c \odot \sigma'`,
  :math:`\delta^f = \partial c_s \odot c_{s-1} \odot \sigma'`,
  :math:`\delta^c = \partial c_s \odot i \odot \phi'`, :math:`g_{s-1} \mathrel{+}= \delta_s U^T`;

and for every cell :math:`\partial z/\partial W = \sum_s x_s^T \delta_s`,
:math:`\partial z/\partial U = \sum_s h_{s-1}^T \delta_s`,
:math:`\partial z/\partial b = \sum_s \mathbf 1^T \delta_s`,
:math:`\partial z/\partial x_s = \delta_s W^T`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import numpy as np

from .. import _ops, _random, initializers, threads
from .._validation import check_bool, check_number, check_positive_int, shape_str
from .base import Layer
from .container import _Container, deserialize_layer, serialize_layer
from .recurrent import ACTIVATIONS, _check_activation


class _CellCache(NamedTuple):
    """What one step keeps (per cell kind, by position)."""

    values: tuple[Any, ...]


class _Cell(Layer):
    """Base of the recurrent cells: weights ``kernel``, ``recurrent_kernel``, ``bias``."""

    #: Number of column blocks of the kernels (gates).
    blocks = 1

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        o = self.owner
        self.units = check_positive_int(units, "units", o)
        self.activation = _check_activation(activation, "activation", o)
        self.recurrent_activation = _check_activation(
            recurrent_activation, "recurrent_activation", o
        )
        self.use_bias = check_bool(use_bias, "use_bias", o)
        for arg, value in (
            ("kernel_initializer", kernel_initializer),
            ("recurrent_initializer", recurrent_initializer),
            ("bias_initializer", bias_initializer),
        ):
            initializers.get(value, o, arg)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = check_number(dropout, "dropout", o, low=0, high=1, high_open=True)
        self.recurrent_dropout = check_number(
            recurrent_dropout, "recurrent_dropout", o, low=0, high=1, high_open=True
        )

    @property
    def state_size(self) -> list[int]:
        return [self.units]

    @property
    def output_size(self) -> int:
        return self.units

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            **super().get_config(),
        }

    def bias_shape(self) -> tuple[int, ...]:
        return (self.blocks * self.units,)

    def build_params(self, input_shape, rng):
        x = input_shape[0] if isinstance(input_shape, list) else input_shape
        f, u, k = x[-1], self.units, self.blocks
        o = self.owner
        init = initializers.get(self.kernel_initializer, o, "kernel_initializer")
        self.params["kernel"] = init((f, k * u), f, k * u, rng, self.dtype)
        init = initializers.get(self.recurrent_initializer, o, "recurrent_initializer")
        self.params["recurrent_kernel"] = init((u, k * u), u, k * u, rng, self.dtype)
        if self.use_bias:
            init = initializers.get(self.bias_initializer, o, "bias_initializer")
            self.params["bias"] = init(self.bias_shape(), f, k * u, rng, self.dtype)

    # The step interface used by RNN. ``xw`` is x_s W (+ the input bias), an array the
    # cell may overwrite (LSTMCell keeps its gates there).
    def input_bias(self) -> np.ndarray | None:
        return self.params.get("bias") if self.use_bias else None

    def step(self, xw: np.ndarray, states: list[np.ndarray]) -> tuple[np.ndarray, list, Any]:
        raise NotImplementedError

    def step_back(
        self,
        dh: np.ndarray,
        dstates: list[np.ndarray],
        cache: Any,
        states: list[np.ndarray],
        out: np.ndarray | None = None,
    ) -> tuple[Any, ...]:
        """``(δ input side, δ recurrent side, gradients of the previous states but h[, a
        direct gradient of the previous h])``; a cell may write the input side's δ into
        ``out`` (an array of its shape) and return ``out``."""
        raise NotImplementedError

    def recurrent_bias_grad(self, rec_side: np.ndarray) -> np.ndarray | None:
        return None

    # A cell called on its own runs one step: ``cell([x, *states])`` gives
    # ``[output, *new_states]`` (Keras's ``cell(x, states)`` returns the same pair).
    def split_call_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if len(args) == 2:
            states = args[1] if isinstance(args[1], list | tuple) else [args[1]]
            return [args[0], *states], kwargs
        return super().split_call_arguments(*args, **kwargs)

    def _one_step_shapes(self, shape: Any) -> tuple[Any, list[Any]]:
        if not isinstance(shape, list) or len(shape) != 1 + len(self.state_size):
            raise ValueError(
                f"{self.owner}: a cell takes [inputs, *states] ({1 + len(self.state_size)} "
                f"arrays: (batch, features) and states of sizes {self.state_size})."
            )
        return shape[0], shape[1:]

    def check_input_shape(self, shape):
        x, states = self._one_step_shapes(shape)
        if len(x) != 2:
            raise ValueError(
                f"{self.owner}: expected one step's input with 2 dims (batch, features), "
                f"got shape {shape_str(x)}."
            )
        for s, size in zip(states, self.state_size, strict=True):
            if len(s) != 2 or s[-1] != size:
                raise ValueError(
                    f"{self.owner}: expected a state of shape (batch, {size}), got shape "
                    f"{shape_str(s)}."
                )

    def compute_output_shape(self, input_shape):
        x, _ = self._one_step_shapes(input_shape)
        return [(x[0], self.output_size)] + [(x[0], s) for s in self.state_size]

    def build_for_features(self, features: int, rng: Any) -> None:
        """Build the weights for inputs of ``features`` features (a recurrent layer's cell)."""
        shapes = [(None, features)] + [(None, s) for s in self.state_size]
        self.build(cast(Any, shapes), rng=rng)  # a list of shapes: [x, *states]

    def compute_forward(self, x, training):
        xs, states = x[0], list(x[1:])
        xw = _ops.product(xs, self.params["kernel"])
        b = self.input_bias()
        if b is not None:
            xw = xw + b
        h, new, cache = self.step(xw, states)
        return [h, *new], CellSaved(xs, states, cache)

    def _one_step_back(self, dy, saved):
        dh = dy[0] + dy[1]
        back = self.step_back(dh, list(dy[2:]), saved.cache, saved.states)
        return back

    def compute_backward_input(self, dy, saved):
        back = self._one_step_back(dy, saved)
        dx = _ops.product(back[0], self.params["kernel"].T)
        dh = _ops.product(back[1], self.params["recurrent_kernel"].T)
        if len(back) > 3:
            dh = dh + back[3]
        return [dx, dh, *back[2]]

    def compute_backward_params(self, dy, saved):
        back = self._one_step_back(dy, saved)
        out = {
            "kernel": _ops.product(saved.x.T, back[0]),
            "recurrent_kernel": _ops.product(saved.states[0].T, back[1]),
        }
        if self.use_bias:
            rb = self.recurrent_bias_grad(back[1])
            out["bias"] = back[0].sum(axis=0) if rb is None else np.stack([back[0].sum(axis=0), rb])
        return out


class CellSaved(NamedTuple):
    """What one step of a cell called on its own keeps: input, states, the step's cache."""

    x: np.ndarray
    states: list[np.ndarray]
    cache: Any


class SimpleRNNCell(_Cell):
    r"""The cell of :class:`SimpleRNN`: :math:`h_s = \phi(x_s W + h_{s-1} U + b)`.

    .. rubric:: Input and output shape

    A cell called on its own runs one step: input ``[x, h]`` with ``x`` of
    shape ``(batch, features)`` and the state ``(batch, units)``; output
    ``[output, h]``, each ``(batch, units)``. Inside :class:`RNN`
    it runs over ``(batch, timesteps, features)``.

    Parameters
    ----------
    units : int
    activation : str, default "tanh"
    use_bias : bool, default True
    kernel_initializer, recurrent_initializer, bias_initializer : str
    dropout, recurrent_dropout : float, default 0.0
        Fractions of the input and of the previous state dropped in training
        (one mask per sequence, as Keras).

    Raises
    ------
    ValueError
        An invalid ``units``, activation, initializer or dropout rate.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> rnn = ln.RNN(ln.SimpleRNNCell(4, seed=0))
    >>> rnn(np.zeros((2, 5, 3))).shape
    (2, 4)
    """

    _default_name = "simple_rnn_cell"

    def __init__(self, units: int, activation: str = "tanh", **kwargs: Any) -> None:
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("recurrent_activation")
        return config

    def step(self, xw, states):
        a = xw + threads.matmul(states[0], self.params["recurrent_kernel"])
        h = ACTIVATIONS[self.activation][0](a)
        return h, [h], (h,)

    def step_back(self, dh, dstates, cache, states, out=None):
        (h,) = cache
        delta = dh * ACTIVATIONS[self.activation][1](h)
        return delta, delta, []


class LSTMCell(_Cell):
    r"""The cell of :class:`LSTM`: gates :math:`i, f, \tilde c, o` in Keras's order.

    .. rubric:: Input and output shape

    A cell called on its own runs one step: input ``[x, h, c]`` with ``x`` of
    shape ``(batch, features)`` and each state ``(batch, units)``; output
    ``[output, h, c]``, each ``(batch, units)``. Inside :class:`RNN`
    it runs over ``(batch, timesteps, features)``.

    Parameters
    ----------
    units : int
    activation : str, default "tanh"
        :math:`\phi`, for the candidate and the output.
    recurrent_activation : str, default "sigmoid"
        :math:`\sigma`, for the gates.
    use_bias : bool, default True
    kernel_initializer, recurrent_initializer, bias_initializer : str
    unit_forget_bias : bool, default True
        Start the forget gate's bias at 1 (Keras's default).
    dropout, recurrent_dropout : float, default 0.0

    Raises
    ------
    ValueError
        An invalid ``units``, activation, initializer or dropout rate.

    Notes
    -----
    See the module's derivation: the state is ``[h, c]``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.RNN(ln.LSTMCell(3, seed=0), return_sequences=True)(np.zeros((2, 4, 5))).shape
    (2, 4, 3)
    """

    _default_name = "lstm_cell"
    blocks = 4

    def __init__(self, units: int, *, unit_forget_bias: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.unit_forget_bias = check_bool(unit_forget_bias, "unit_forget_bias", self.owner)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    def build_params(self, input_shape, rng):
        super().build_params(input_shape, rng)
        if self.use_bias and self.unit_forget_bias:
            u = self.units
            self.params["bias"][u : 2 * u] = 1.0

    def step(self, xw, states):
        h_prev, c_prev = states
        u = self.units
        # The pre-activations and then the gates are written over ``xw``: inside RNN the
        # gates of every step live in the one (T, N, 4U) array of the input products.
        a = xw
        a += threads.matmul(h_prev, self.params["recurrent_kernel"])
        gate = ACTIVATIONS[self.recurrent_activation][0]
        act = ACTIVATIONS[self.activation][0]
        gate(a[:, : 2 * u])  # the input and forget gates: adjacent blocks, one call
        i, f = a[:, :u], a[:, u : 2 * u]
        g = act(a[:, 2 * u : 3 * u])
        o = gate(a[:, 3 * u :])
        c = f * c_prev + i * g
        tc = act(c.copy())
        h = o * tc
        return h, [h, c], (i, f, g, o, c_prev, tc)

    def step_back(self, dh, dstates, cache, states, out=None):
        i, f, g, o, c_prev, tc = cache
        d_gate = ACTIVATIONS[self.recurrent_activation][1]
        d_act = ACTIVATIONS[self.activation][1]
        dc = dstates[0] + dh * o * d_act(tc)
        u = self.units
        delta = np.empty((dh.shape[0], 4 * u), np.result_type(dc, i)) if out is None else out
        # Each gate's block written in place: (dc * g) * σ'(i) as the formula reads.
        for k, (left, right, derivative) in enumerate(
            ((dc, g, d_gate(i)), (dc, c_prev, d_gate(f)), (dc, i, d_act(g)), (dh, tc, d_gate(o)))
        ):
            block = delta[:, k * u : (k + 1) * u]
            np.multiply(left, right, out=block)
            block *= derivative
        return delta, delta, [dc * f]


class GRUCell(_Cell):
    r"""The cell of a GRU, ``reset_after=True`` (Keras 3's default, PyTorch's equations).

    Weights as Keras: ``kernel`` ``(features, 3 units)``, ``recurrent_kernel``
    ``(units, 3 units)`` with blocks :math:`z, r, h`, and ``bias`` ``(2, 3 units)``
    (input and recurrent biases).

    .. rubric:: Input and output shape

    A cell called on its own runs one step: input ``[x, h]`` with ``x`` of
    shape ``(batch, features)`` and the state ``(batch, units)``; output
    ``[output, h]``, each ``(batch, units)``. Inside :class:`RNN`
    it runs over ``(batch, timesteps, features)``.

    Parameters
    ----------
    units : int
    activation : str, default "tanh"
    recurrent_activation : str, default "sigmoid"
    use_bias : bool, default True
    kernel_initializer, recurrent_initializer, bias_initializer : str
    dropout, recurrent_dropout : float, default 0.0
    reset_after : bool, default True
        Only ``True`` is supported.

    Raises
    ------
    ValueError
        An invalid argument, or ``reset_after=False``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.RNN(ln.GRUCell(3, seed=0))(np.zeros((2, 4, 5))).shape
    (2, 3)
    """

    _default_name = "gru_cell"
    blocks = 3

    def __init__(self, units: int, *, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        if reset_after is not True:
            raise ValueError(
                f"{self.owner}: invalid value for `reset_after`: only True is supported, "
                f"received {reset_after!r}."
            )
        self.reset_after = True

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "reset_after": True}

    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units)

    def input_bias(self) -> np.ndarray | None:
        return self.params["bias"][0] if self.use_bias else None

    def step(self, xw, states):
        (h_prev,) = states
        u = self.units
        hu = threads.matmul(h_prev, self.params["recurrent_kernel"])
        if self.use_bias:
            hu = hu + self.params["bias"][1]
        gate = ACTIVATIONS[self.recurrent_activation][0]
        act = ACTIVATIONS[self.activation][0]
        z = gate(xw[:, :u] + hu[:, :u])
        r = gate(xw[:, u : 2 * u] + hu[:, u : 2 * u])
        rec_h = hu[:, 2 * u :]
        c = act(xw[:, 2 * u :] + r * rec_h)
        h = z * h_prev + (1 - z) * c
        return h, [h], (z, r, c, rec_h, h_prev)

    def step_back(self, dh, dstates, cache, states, out=None):
        z, r, c, rec_h, h_prev = cache
        d_gate = ACTIVATIONS[self.recurrent_activation][1]
        d_act = ACTIVATIONS[self.activation][1]
        da_z = dh * (h_prev - c) * d_gate(z)
        da_h = dh * (1 - z) * d_act(c)
        da_r = da_h * rec_h * d_gate(r)
        rec = np.concatenate([da_z, da_r, da_h * r], axis=1)
        inp = np.concatenate([da_z, da_r, da_h], axis=1)
        # h_prev also reaches h_s directly through z * h_prev
        return inp, rec, [], dh * z

    def recurrent_bias_grad(self, rec_side: np.ndarray) -> np.ndarray | None:
        return rec_side.sum(axis=0)


class RNNSaved(NamedTuple):
    """What a recurrent layer keeps for backpropagation through time (processing order)."""

    #: Inputs after dropout, ``(T, N, F)``.
    x: np.ndarray
    #: States before each step, per state: a list over steps of lists of arrays.
    states: list[list[np.ndarray]]
    #: The cell's cache of every step.
    caches: list[Any]
    #: Mask per step ``(T, N, 1)`` (1 = real step), or None.
    mask: np.ndarray | None
    #: Input and recurrent dropout masks, or None.
    dropout: np.ndarray | None
    recurrent_dropout: np.ndarray | None
    #: How many initial states came as inputs (0 when they start at zero).
    initial: int


def rnn_config(layer: Any) -> dict[str, Any]:
    """The options a recurrent layer over ``layer.cell`` adds to its base config."""
    from ..registry import get_registered_name

    return {
        "cell": {
            "class_name": get_registered_name(type(layer.cell)),
            "config": layer.cell.get_config(),
        },
        "return_sequences": layer.return_sequences,
        "return_state": layer.return_state,
        "go_backwards": layer.go_backwards,
        "zero_output_for_mask": layer.zero_output_for_mask,
    }


def _flat_states(part: Any) -> list[Any]:
    """One initial state, or a cell's list of them (Keras nests a stack's states per cell)."""
    return list(part) if isinstance(part, list | tuple) else [part]


class StackSaved(NamedTuple):
    """What a recurrent layer over a stack of cells keeps (processing order, per cell)."""

    #: Each cell's inputs at every step after its dropout, ``(T, N, F_k)``.
    inputs: list[np.ndarray]
    #: Each cell's states before each step: per cell, a list over steps of lists of arrays.
    states: list[list[list[np.ndarray]]]
    #: Each cell's cache of every step.
    caches: list[list[Any]]
    #: Mask per step ``(T, N, 1)`` (1 = real step), or None.
    mask: np.ndarray | None
    #: Each cell's input and recurrent dropout masks (None where it has none).
    dropout: list[np.ndarray | None]
    recurrent_dropout: list[np.ndarray | None]
    #: How many initial states came as inputs (0 when they start at zero).
    initial: int


class _StackGrads(NamedTuple):
    """One sweep of backpropagation through time and down a stack."""

    #: Per cell, the deltas of the input side :math:`x_s W_k + b_k`, ``(T, N, K_k)``.
    input_side: list[np.ndarray]
    #: Per cell, the deltas of the recurrent side :math:`h_{s-1} U_k (+ b'_k)`.
    recurrent_side: list[np.ndarray]
    #: Gradients of the initial states, flat in the stack's order.
    states: list[np.ndarray]


class StackedCellsSaved(NamedTuple):
    """What one step of a stack called on its own keeps: each cell's step."""

    cells: list[Any]


class StackedRNNCells(_Container):
    r"""A stack of recurrent cells that behaves as one cell (Keras's ``StackedRNNCells``).

    At every time step the cells run in order: the first cell reads the step's
    input, each next cell reads the output of the cell below at the same step,
    and the stack's output is the last cell's output. ``RNN([cell_1, cell_2])``
    wraps the list in this class.

    .. rubric:: Input and output shape

    Inside :class:`RNN` it runs over ``(batch, timesteps, features)``; the
    output has the last cell's units. Called on its own it runs one step: input
    ``[x, *states]`` with ``x`` of shape ``(batch, features)`` and the states of
    every cell in order (an :class:`LSTMCell`'s ``h, c``, a :class:`GRUCell`'s
    ``h``, ...), output ``[output, *new_states]`` in the same order.

    Parameters
    ----------
    cells : list of SimpleRNNCell, LSTMCell or GRUCell
        The cells, bottom to top (at least one; unique names, one dtype).
    name : str, optional
        Layer name (``"stacked_rnn_cells_<n>"`` by default).
    dtype : str, optional
        The cells' dtype; ``None`` takes theirs.
    seed : int, optional
        Seeds the cells that have no seed of their own.
    trainable : bool, default True

    Attributes
    ----------
    cells : list of Layer
    state_size : list of int
        Every cell's state sizes, flat, in order (Keras nests them per cell).
    output_size : int
        The last cell's ``units``.
    params, grads, state : dict
        The cells' arrays (the same objects) under ``"<cell name>/<key>"``, in
        the cells' order: :meth:`get_weights` lists each cell's ``kernel``,
        ``recurrent_kernel`` and ``bias`` in turn, as Keras does.

    Raises
    ------
    ValueError
        ``StackedRNNCells: invalid value for `cells`: expected a non-empty list of
        SimpleRNNCell, LSTMCell or GRUCell, received ...``; cells of mixed dtypes
        or with the same name; a one-step input that is not ``[x, *states]``
        with the states' sizes.

    Notes
    -----
    With :math:`K` cells, cell :math:`k` has kernel :math:`W_k`, recurrent kernel
    :math:`U_k`, bias :math:`b_k` and states :math:`S^k_s` (its :math:`h^k_s`
    first). Writing :math:`f_k` for the cell's step (:class:`SimpleRNNCell`,
    :class:`LSTMCell`, :class:`GRUCell`), a step of the stack is

    .. math::

        x^1_s = x_s, \qquad
        (h^k_s, S^k_s) = f_k\bigl(x^k_s W_k + b_k,\; S^k_{s-1}\bigr), \qquad
        x^{k+1}_s = h^k_s, \qquad y_s = h^K_s .

    **Backpropagation through time and down the stack.** In ``vec`` notation the
    step's Jacobian is block lower-triangular in the cells: output :math:`k`
    depends on :math:`x^k_s` and :math:`S^k_{s-1}` only, and
    :math:`\partial \operatorname{vec}(x^{k+1}_s)/\partial
    \operatorname{vec}(x^k_s)^T = \partial \operatorname{vec}(h^k_s)/\partial
    \operatorname{vec}(x^k_s)^T`, so the chain rule runs from the top cell down
    inside each step and from the last step back in time. With
    :math:`g^k_s = \partial z/\partial h^k_s` and :math:`\partial S^k_s` the
    gradients arriving from step :math:`s+1`, for :math:`s = T, \dots, 1` and
    :math:`k = K, \dots, 1`:

    .. math::

        g^K_s &= \frac{\partial z}{\partial y_s} + \partial h^K_s, \qquad
        g^k_s = \delta^{k+1}_s W_{k+1}^T + \partial h^k_s \quad (k < K), \\
        (\delta^k_s, \rho^k_s, \partial S^k_{s-1}) &= f_k'\bigl(g^k_s,
            \partial S^k_s\bigr) \quad\text{(the cell's own rule)}, \qquad
        \partial h^k_{s-1} \mathrel{+}= \rho^k_s U_k^T,

    where :math:`\delta^k_s` is the gradient of the cell's input side
    :math:`x^k_s W_k + b_k` and :math:`\rho^k_s` of its recurrent side
    :math:`h^k_{s-1} U_k`. The weights then take

    .. math::

        \frac{\partial z}{\partial W_k} = \sum_s (x^k_s)^T \delta^k_s, \quad
        \frac{\partial z}{\partial U_k} = \sum_s (h^k_{s-1})^T \rho^k_s, \quad
        \frac{\partial z}{\partial b_k} = \sum_s \mathbf 1^T \delta^k_s, \quad
        \frac{\partial z}{\partial x_s} = \delta^1_s W_1^T .

    In :math:`\operatorname{vec}` form each is a vector-Jacobian product
    :math:`\partial z/\partial \operatorname{vec}(\theta)^T = \sum_s
    \partial z/\partial \operatorname{vec}(y_s)^T\,
    \partial \operatorname{vec}(y_s)/\partial \operatorname{vec}(\theta)^T`; the
    explicit Jacobians (:meth:`~layernet.Layer.jacobian_input`,
    :meth:`~layernet.Layer.jacobian_params` of the :class:`RNN`) are built from
    these rules with unit vectors. With a mask, a masked step keeps every cell's
    states (their gradients pass the step unchanged) and outputs the last cell's
    previous output; dropout multiplies each cell's input (:math:`x^k_s`) and
    recurrent input (:math:`h^k_{s-1}`) by its own masks, drawn once per
    sequence, and the gradients by the same masks.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> rnn = ln.RNN([ln.LSTMCell(4, seed=0), ln.GRUCell(3, seed=1)], return_state=True)
    >>> out, h1, c1, h2 = rnn(np.zeros((2, 5, 6)))
    >>> out.shape, h1.shape, c1.shape, h2.shape
    ((2, 3), (2, 4), (2, 4), (2, 3))
    >>> [w.shape for w in rnn.get_weights()]
    [(6, 16), (4, 16), (16,), (4, 9), (3, 9), (2, 9)]
    """

    _default_name = "stacked_rnn_cells"
    fresh_output = False

    def __init__(
        self,
        cells: list[Any],
        *,
        name: str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        where = f"StackedRNNCells '{name}'" if name else "StackedRNNCells"
        if isinstance(cells, list | tuple):
            cells = [deserialize_layer(c) if isinstance(c, dict) else c for c in cells]
        if (
            not isinstance(cells, list | tuple)
            or not cells
            or not all(isinstance(c, _Cell) for c in cells)
        ):
            got = (
                [type(c).__name__ for c in cells]
                if isinstance(cells, list | tuple)
                else type(cells).__name__
            )
            raise ValueError(
                f"{where}: invalid value for `cells`: expected a non-empty list of "
                f"SimpleRNNCell, LSTMCell or GRUCell, received {got}."
            )
        super().__init__(list(cells), name=name, dtype=dtype, seed=seed, trainable=trainable)

    @property
    def cells(self) -> list[SimpleRNNCell | LSTMCell | GRUCell]:
        """The cells, bottom to top."""
        return cast(list[SimpleRNNCell | LSTMCell | GRUCell], self.layers)

    @property
    def state_size(self) -> list[int]:
        return [size for c in self.cells for size in c.state_size]

    @property
    def output_size(self) -> int:
        return self.cells[-1].output_size

    @property
    def units(self) -> int:
        return self.cells[-1].units

    def split_states(self, flat: list[Any]) -> list[list[Any]]:
        """A flat list of states (the stack's order) as one list per cell."""
        out, i = [], 0
        for c in self.cells:
            j = i + len(c.state_size)
            out.append(list(flat[i:j]))
            i = j
        return out

    def get_config(self) -> dict[str, Any]:
        return {"cells": [serialize_layer(c) for c in self.cells], **super().get_config()}

    @classmethod
    def _inner_from_config(cls, config, custom_objects):
        config["cells"] = [deserialize_layer(c, custom_objects) for c in config["cells"]]
        return config

    # ---------------------------------------------------------------- build
    def build_for_features(self, features: int, rng: Any) -> None:
        """Build every cell in turn: the first for ``features`` inputs, each next one for
        the units of the cell below."""
        rng = rng if rng is not None else _random.generator(self.seed)
        for c in self.cells:
            child = rng.spawn(1)[0]
            c.build_for_features(features, None if c.seed is not None else child)
            features = c.output_size
        first = self.cells[0].params["kernel"].shape[0]
        self.input_shape = [(None, first), *[(None, s) for s in self.state_size]]
        self.built = True
        self.saved = None
        self._y_shape = None
        self._checked_shape = None

    def build(self, input_shape: Any, *, rng: np.random.Generator | None = None) -> None:
        shape = self._normalize_shape(input_shape)
        self.built = False
        self.check_input_shape(shape)
        self.build_for_features(shape[0][-1], rng)

    # -------------------------------------------------- one step on its own
    def split_call_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if len(args) == 2:  # Keras's cell(x, states), states flat or nested per cell
            states = [a for part in _flat_states(args[1]) for a in _flat_states(part)]
            return [args[0], *states], kwargs
        return super().split_call_arguments(*args, **kwargs)

    def check_input_shape(self, shape):
        sizes = self.state_size
        if not isinstance(shape, list) or len(shape) != 1 + len(sizes):
            raise ValueError(
                f"{self.owner}: a stack of cells takes [inputs, *states] ({1 + len(sizes)} "
                f"arrays: (batch, features) and states of sizes {sizes})."
            )
        if len(shape[0]) != 2:
            raise ValueError(
                f"{self.owner}: expected one step's input with 2 dims (batch, features), "
                f"got shape {shape_str(shape[0])}."
            )
        if self.built:
            self._check_last_axis(shape[0], self.cells[0].params["kernel"].shape[0], "features")
        for s, size in zip(shape[1:], sizes, strict=True):
            if len(s) != 2 or s[-1] != size:
                raise ValueError(
                    f"{self.owner}: expected a state of shape (batch, {size}), got shape "
                    f"{shape_str(s)}."
                )

    def compute_output_shape(self, input_shape):
        n = input_shape[0][0]
        return [(n, self.output_size)] + [(n, s) for s in self.state_size]

    def compute_forward(self, x, training):
        inp, states = x[0], self.split_states(list(x[1:]))
        outs: list[np.ndarray] = []
        saved = []
        for c, st in zip(self.cells, states, strict=True):
            y, sv = c.compute_forward([inp, *st], training)
            saved.append(sv)
            inp = y[0]
            outs += y[1:]
        return [inp, *outs], StackedCellsSaved(saved)

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        dy = self._cast_dy(dy)
        n = saved.cells[0].x.shape[0]
        d_out = dy[0] if dy[0] is not None else np.zeros((n, self.output_size), self.dtype)
        d_states = self.split_states(
            [
                np.zeros((n, size), self.dtype) if d is None else d
                for d, size in zip(dy[1:], self.state_size, strict=True)
            ]
        )
        grads: dict[str, np.ndarray] = {}
        d_prev: list[list[np.ndarray]] = [[] for _ in self.cells]
        for k in range(len(self.cells) - 1, -1, -1):  # from the top cell down
            c = self.cells[k]
            # The output and the first state are the same array h: both gradients add.
            dyk = [d_out, *d_states[k]]
            if need_params and c.trainable and c.params:
                for key, g in c.compute_backward_params(dyk, saved.cells[k]).items():
                    grads[f"{c.name}/{key}"] = g
            back = c.compute_backward_input(dyk, saved.cells[k])
            d_out, d_prev[k] = back[0], back[1:]
        dx = [d_out, *[d for ds in d_prev for d in ds]] if need_input else None
        return dx, grads

    def compute_backward_input(self, dy, saved):
        return self.call_backward(dy, saved, need_params=False)[0]

    def compute_backward_params(self, dy, saved):
        return self.call_backward(dy, saved, need_input=False)[1]


class RNN(Layer):
    r"""Run a recurrent cell over the time axis (Keras's ``RNN``), with BPTT written out.

    .. rubric:: Input and output shape

    Input ``(batch, timesteps, features)``; output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``; with
    ``return_state``, a list ``[output, *final_states]``.

    Parameters
    ----------
    cell : SimpleRNNCell, LSTMCell, GRUCell, StackedRNNCells or list of cells
        A list of cells is wrapped in :class:`StackedRNNCells` (as Keras does):
        the cells run on top of each other at every step, the output is the last
        cell's and the states are every cell's, flat in order.
    return_sequences : bool, default False
    return_state : bool, default False
    go_backwards : bool, default False
        Process the sequence from its end; outputs come in processing order.
    stateful : bool, default False
        Only ``False`` is supported.
    unroll : bool, default False
        Accepted for Keras compatibility (the loop is always explicit).
    zero_output_for_mask : bool, default False
        At masked steps, output zeros instead of the previous output.

    Raises
    ------
    ValueError
        ``stateful=True``; a cell that is not a layernet cell (or a list of them); an
        input that is not
        ``(batch, timesteps, features)``; initial states of the wrong shapes.

    Notes
    -----
    A call takes ``initial_state=[...]`` (gradients flow into them: the
    layer's inputs are then ``[x, *initial_state]``) and ``mask=`` of shape
    ``(batch, timesteps)``: at a masked step the states are carried over
    unchanged and the output is the previous one (zeros with
    ``zero_output_for_mask``), as in Keras. In training, ``dropout`` multiplies the
    inputs and ``recurrent_dropout`` the previous state by masks drawn once per
    sequence. See the module's derivation for the backward rules.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> lstm = ln.LSTM(4, return_state=True, seed=0)
    >>> out, h, c = lstm(np.zeros((2, 5, 3)))
    >>> out.shape, h.shape, c.shape
    ((2, 4), (2, 4), (2, 4))
    """

    _default_name = "rnn"

    def __new__(cls, cell: Any = None, *args: Any, **kwargs: Any) -> Any:
        if cls is RNN and isinstance(cell, dict):
            from ..saving import layer_from_spec

            cell = layer_from_spec(cell)
        if cls is RNN and not isinstance(cell, _Cell | StackedRNNCells | list | tuple | dict):
            from .rnn_custom import CellRNN, is_keras_cell

            if is_keras_cell(cell):  # a cell written the Keras way: call(inputs, states)
                return CellRNN(cell, *args, **kwargs)
        return super().__new__(cls)

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
        if isinstance(cell, dict):
            from ..saving import layer_from_spec

            cell = layer_from_spec(cell)
        if isinstance(cell, list | tuple):  # Keras: a list of cells is a stack of them
            cell = StackedRNNCells(list(cell))
        if not isinstance(cell, _Cell | StackedRNNCells):
            raise ValueError(
                f"{o}: invalid value for `cell`: expected a SimpleRNNCell, LSTMCell, GRUCell, "
                f"StackedRNNCells or a list of cells, received {type(cell).__name__}."
            )
        self.cell = cell
        self.return_sequences = check_bool(return_sequences, "return_sequences", o)
        self.return_state = check_bool(return_state, "return_state", o)
        self.go_backwards = check_bool(go_backwards, "go_backwards", o)
        if stateful:
            raise ValueError(
                f"{o}: `stateful=True` is not supported: layernet's recurrent layers start "
                f"every batch from the initial state; pass initial_state= to carry one over."
            )
        self.stateful = False
        self.unroll = check_bool(unroll, "unroll", o)
        self.zero_output_for_mask = check_bool(zero_output_for_mask, "zero_output_for_mask", o)
        self.supports_masking = True
        self._generator = _random.generator(self.seed if self.seed is None else self.seed + 1)

    @property
    def units(self) -> int:
        return self.cell.units

    def get_config(self) -> dict[str, Any]:
        return {**rnn_config(self), **super().get_config()}

    # ----------------------------------------------------------- calls
    def split_call_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The sequence, then ``initial_state`` (positional or keyword) as further inputs."""
        if not args:
            raise TypeError(f"{self.owner}: expected the input sequence.")
        inputs = args[0]
        initial = kwargs.pop("initial_state", None)
        if len(args) > 1:
            initial = args[1] if initial is None else initial
        if initial is not None:
            initial = list(initial) if isinstance(initial, list | tuple) else [initial]
            # A stack's states may come per cell ([[h, c], [h], ...], Keras's nesting).
            initial = [a for part in initial for a in _flat_states(part)]
            inputs = [inputs, *initial]
        return inputs, kwargs

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, list):
            mask = mask[0]
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * len(self.cell.state_size)
        return out_mask

    def _expected_layout(self) -> str:
        return "(batch, timesteps, features)"

    def check_input_shape(self, shape):
        shapes = shape if isinstance(shape, list) else [shape]
        x = shapes[0]
        if len(x) != 3:
            raise ValueError(
                f"{self.owner}: expected input with 3 dims (batch, timesteps, features), "
                f"got shape {shape_str(x)}."
            )
        if self.built:
            first = self.cell.cells[0] if isinstance(self.cell, StackedRNNCells) else self.cell
            self._check_last_axis(x, first.params["kernel"].shape[0], "features")
        if len(shapes) > 1:
            sizes = self.cell.state_size
            if len(shapes) - 1 != len(sizes):
                raise ValueError(
                    f"{self.owner}: expected {len(sizes)} initial state(s), received "
                    f"{len(shapes) - 1}."
                )
            for s, size in zip(shapes[1:], sizes, strict=True):
                if len(s) != 2 or s[-1] != size:
                    raise ValueError(
                        f"{self.owner}: expected initial states of shape (batch, {size}), got "
                        f"shape {shape_str(s)}."
                    )

    def compute_output_shape(self, input_shape):
        x = input_shape[0] if isinstance(input_shape, list) else input_shape
        u = self.cell.output_size
        out = (x[0], x[1], u) if self.return_sequences else (x[0], u)
        if self.return_state:
            return [out] + [(x[0], s) for s in self.cell.state_size]
        return out

    def build_params(self, input_shape, rng):
        x = input_shape[0] if isinstance(input_shape, list) else input_shape
        # A cell with a seed of its own inside an RNN without one: the cell's seed decides.
        own = self.seed is None and self.cell.seed is not None
        self.cell.build_for_features(x[-1], None if own else rng)
        self.params = self.cell.params  # the cell's weights are the layer's
        if isinstance(self.cell, StackedRNNCells):
            self.state = self.cell.state  # frozen cells of a stack: non-trainable weights

    # ---------------------------------------------------------- forward
    def forward(self, x: Any, training: bool = False, **options: Any) -> Any:
        # The previous pass's arrays (gates, states, deltas) are released before this
        # pass allocates its own: a training step holds one pass's worth, not two.
        self.saved = None
        self._bptt_memo = None
        return super().forward(x, training=training, **options)

    def compute_forward(self, x, training, mask=None):
        self._bptt_memo = None  # a kept reverse pass belongs to an earlier call
        cell = self.cell
        initial = []
        if isinstance(x, list):
            x, initial = x[0], list(x[1:])
        if isinstance(cell, StackedRNNCells):
            return self._stack_forward(x, initial, training, mask)
        n, t, f = x.shape
        xs = x[:, ::-1] if self.go_backwards else x
        xs = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, F)
        m = None
        if mask is not None:
            if isinstance(mask, list):
                mask = mask[0]
            mask = np.asarray(mask).reshape(n, t).astype(bool)
            mk = mask[:, ::-1] if self.go_backwards else mask
            m = mk.T[:, :, None].astype(self.dtype)  # (T, N, 1)
        dp = rdp = None
        if training and cell.dropout > 0:
            keep = 1 - cell.dropout
            dp = (self._generator.random((n, f)) < keep).astype(self.dtype) / keep
            xs = xs * dp
        if training and cell.recurrent_dropout > 0:
            keep = 1 - cell.recurrent_dropout
            rdp = (self._generator.random((n, cell.units)) < keep).astype(self.dtype) / keep
        kernel = self.params["kernel"]
        xw = threads.matmul(xs.reshape(t * n, f), kernel).reshape(t, n, kernel.shape[1])
        b = cell.input_bias()
        if b is not None:
            xw += b
        states = (
            [np.asarray(s, dtype=self.dtype) for s in initial]
            if initial
            else [np.zeros((n, s), self.dtype) for s in cell.state_size]
        )
        before: list[list[np.ndarray]] = []
        caches = []
        outputs = np.empty((t, n, cell.output_size), self.dtype) if self.return_sequences else None
        prev_out = states[0]
        for s in range(t):
            before.append(states)
            run = states if rdp is None else [states[0] * rdp, *states[1:]]
            h, new, cache = cell.step(xw[s], run)
            caches.append(cache)
            if m is not None:
                keep_s = m[s]
                new = [keep_s * a + (1 - keep_s) * b for a, b in zip(new, states, strict=True)]
                out = keep_s * h + (0 if self.zero_output_for_mask else (1 - keep_s) * prev_out)
            else:
                out = h
            if outputs is not None:
                outputs[s] = out
            prev_out = out
            states = new
        y = outputs.transpose(1, 0, 2).copy() if outputs is not None else np.array(prev_out)
        saved = RNNSaved(xs, before, caches, m, dp, rdp, len(initial))
        if self.return_state:
            return [y, *[np.array(a) for a in states]], saved
        return y, saved

    # --------------------------------------------------------- backward
    def _bptt(self, dy: Any, saved: Any) -> Any:
        if isinstance(saved, StackSaved):
            return self._stack_bptt(dy, saved)
        cell = cast(_Cell, self.cell)  # one cell (a stack returned above)
        xs, m = saved.x, saved.mask
        t, n, _ = xs.shape
        if self.return_state:
            dy_out, dstate_final = dy[0], list(dy[1:])
        else:
            dy_out, dstate_final = dy, None
        k = self.params["recurrent_kernel"].shape[1]
        inp = np.empty((t, n, k), self.dtype)
        # The recurrent side's deltas; the input side's array itself while the cell returns
        # one delta for both (SimpleRNN, LSTM): never two copies of the same numbers.
        rec: np.ndarray | None = None
        # An output no loss depends on arrives as None (the graph sends no gradient).
        dstates = [
            np.zeros((n, size), self.dtype) if d is None else np.array(d, dtype=self.dtype)
            for d, size in zip(
                dstate_final or [None] * len(cell.state_size), cell.state_size, strict=True
            )
        ]
        d_out_prev = np.zeros((n, cell.output_size), self.dtype)  # masked steps pass outputs on
        if dy_out is None:
            dy_out = np.zeros(
                (n, t, cell.output_size) if self.return_sequences else (n, cell.output_size),
                self.dtype,
            )
        if t == 0 and not self.return_sequences:  # no steps: the output is h_0
            d_out_prev += dy_out
        if self.return_sequences:
            dys = dy_out.transpose(1, 0, 2)
        # Copied once: the product with a transposed view took 1.2x as long in BLAS.
        rec_t = np.ascontiguousarray(self.params["recurrent_kernel"].T)
        for s in range(t - 1, -1, -1):
            g_out = d_out_prev.copy()
            if self.return_sequences:
                g_out += dys[s]
            elif s == t - 1:
                g_out += dy_out
            if m is not None:
                keep_s = m[s]
                dh_cell = keep_s * (g_out + dstates[0])
                d_rest = [keep_s * d for d in dstates[1:]]
                carry = [(1 - keep_s) * d for d in dstates]
                d_out_prev = (
                    (1 - keep_s) * g_out
                    if not self.zero_output_for_mask
                    else (np.zeros_like(g_out))
                )
            else:
                dh_cell = g_out + dstates[0]
                d_rest = dstates[1:]
                carry = None
                d_out_prev = np.zeros_like(g_out)
            states = saved.states[s]
            out = inp[s]
            back = cell.step_back(dh_cell, d_rest, saved.caches[s], states, out=out)
            if back[0] is not out:
                out[...] = back[0]
            if rec is None:
                rec = inp if back[1] is back[0] else np.empty((t, n, k), self.dtype)
            elif rec is inp and back[1] is not back[0]:
                rec = inp.copy()  # steps done so far had equal sides
            if rec is not inp:
                rec[s] = back[1]
            d_prev_rest = back[2]
            dh_prev = threads.matmul(rec[s], rec_t)
            if len(back) > 3:  # a direct path from h_{s-1} (GRU's z * h_{s-1})
                dh_prev = dh_prev + back[3]
            if saved.recurrent_dropout is not None:  # the step saw h_{s-1} * mask
                dh_prev = dh_prev * saved.recurrent_dropout
            dstates = [dh_prev, *d_prev_rest]
            if carry is not None:
                dstates = [a + c for a, c in zip(dstates, carry, strict=True)]
        dstates[0] = dstates[0] + d_out_prev  # the first step's "previous output" is h_0
        return inp, inp if rec is None else rec, dstates, np.zeros(0)

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        # One reverse pass through time gives both the input and the parameter gradients.
        dy = self._cast_dy(dy)
        bptt = self._bptt(dy, saved)
        grads = self._params_from_bptt(bptt, saved) if need_params and self.params else {}
        dx = self._input_from_bptt(bptt, saved) if need_input else None
        return dx, grads

    # ``backward_params(dy)`` then ``backward_input(dy)`` (a Sequential's backward) share
    # one reverse pass: the second call, for the same forward (``saved`` object) and an
    # equal ``dy``, takes the first one's result and drops it.
    _bptt_memo: tuple[list[Any], Any, Any] | None = None

    def _shared_bptt(self, dy: Any, saved: RNNSaved) -> Any:
        parts = list(dy) if isinstance(dy, list | tuple) else [dy]
        memo = self._bptt_memo
        self._bptt_memo = None
        if (
            memo is not None
            and memo[1] is saved
            and len(memo[0]) == len(parts)
            and all(
                (a is None and b is None)
                or (a is not None and b is not None and np.array_equal(a, b))
                for a, b in zip(memo[0], parts, strict=True)
            )
        ):
            return memo[2]
        result = self._bptt(dy, saved)
        self._bptt_memo = ([None if p is None else np.array(p) for p in parts], saved, result)
        return result

    def compute_backward_input(self, dy, saved):
        return self._input_from_bptt(self._shared_bptt(dy, saved), saved)

    def compute_backward_params(self, dy, saved):
        return self._params_from_bptt(self._shared_bptt(dy, saved), saved)

    def _input_from_bptt(self, bptt: Any, saved: Any) -> Any:
        if isinstance(saved, StackSaved):
            return self._stack_input_grad(bptt, saved)
        inp, _, dstates, _ = bptt
        t, n, f = saved.x.shape
        dx = threads.matmul(inp.reshape(t * n, inp.shape[-1]), self.params["kernel"].T)
        dx = dx.reshape(t, n, f)
        if saved.dropout is not None:
            dx *= saved.dropout
        dx = dx.transpose(1, 0, 2)
        dx = np.ascontiguousarray(dx[:, ::-1] if self.go_backwards else dx)
        if saved.initial:
            return [dx, *dstates]
        return dx

    def _params_from_bptt(self, bptt: Any, saved: Any) -> dict[str, np.ndarray]:
        if isinstance(saved, StackSaved):
            return self._stack_params_grad(bptt, saved)
        inp, rec, _, _ = bptt
        t, n, f = saved.x.shape
        k = inp.shape[-1]
        a = inp.reshape(t * n, k)
        r = rec.reshape(t * n, k)
        units = self.params["recurrent_kernel"].shape[0]
        h_prev = (
            np.stack([st[0] for st in saved.states]) if t else np.zeros((0, n, units), self.dtype)
        )
        if saved.recurrent_dropout is not None:
            h_prev = h_prev * saved.recurrent_dropout
        out = {
            "kernel": threads.matmul(saved.x.reshape(t * n, f).T, a),
            "recurrent_kernel": threads.matmul(h_prev.reshape(t * n, units).T, r),
        }
        cell = cast(_Cell, self.cell)  # one cell (a stack returned above)
        if cell.use_bias:
            rb = cell.recurrent_bias_grad(r)
            out["bias"] = a.sum(axis=0) if rb is None else np.stack([a.sum(axis=0), rb])
        return out

    # ------------------------------------------------- a stack of cells
    def _stack_forward(
        self, x: np.ndarray, initial: list[Any], training: bool, mask: Any
    ) -> tuple[Any, StackSaved]:
        """Forward through time of a :class:`StackedRNNCells`: every cell at every step."""
        stack = cast(StackedRNNCells, self.cell)
        cells = stack.cells
        n, t, f = x.shape
        xs = x[:, ::-1] if self.go_backwards else x
        xs = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, F), processing order
        m = None
        if mask is not None:
            if isinstance(mask, list):
                mask = mask[0]
            mask = np.asarray(mask).reshape(n, t).astype(bool)
            mk = mask[:, ::-1] if self.go_backwards else mask
            m = mk.T[:, :, None].astype(self.dtype)  # (T, N, 1)
        # One input mask and one recurrent mask per cell, drawn once per sequence.
        dps: list[np.ndarray | None] = []
        rdps: list[np.ndarray | None] = []
        features = f
        for c in cells:
            dp = rdp = None
            if training and c.dropout > 0:
                keep = 1 - c.dropout
                dp = (self._generator.random((n, features)) < keep).astype(self.dtype) / keep
            if training and c.recurrent_dropout > 0:
                keep = 1 - c.recurrent_dropout
                rdp = (self._generator.random((n, c.units)) < keep).astype(self.dtype) / keep
            dps.append(dp)
            rdps.append(rdp)
            features = c.output_size
        flat = (
            [np.asarray(a, dtype=self.dtype) for a in initial]
            if initial
            else [np.zeros((n, size), self.dtype) for size in stack.state_size]
        )
        states = stack.split_states(flat)
        # Inputs of every cell at every step (after dropout); the first cell's projection
        # x_s W + b is one product over all steps.
        ins = [xs if dps[0] is None else xs * dps[0]]
        ins += [np.empty((t, n, c.params["kernel"].shape[0]), self.dtype) for c in cells[1:]]
        k0 = cells[0].params["kernel"]
        xw0 = threads.matmul(ins[0].reshape(t * n, f), k0).reshape(t, n, k0.shape[1])
        b0 = cells[0].input_bias()
        if b0 is not None:
            xw0 += b0
        before: list[list[list[np.ndarray]]] = [[] for _ in cells]
        caches: list[list[Any]] = [[] for _ in cells]
        outputs = np.empty((t, n, stack.output_size), self.dtype) if self.return_sequences else None
        prev_out = states[-1][0]  # the last cell's h_0
        for s in range(t):
            new_states = []
            h = prev_out
            for k, c in enumerate(cells):
                if k == 0:
                    xw = xw0[s]
                else:
                    inp = h if dps[k] is None else h * dps[k]
                    ins[k][s] = inp
                    xw = threads.matmul(inp, c.params["kernel"])
                    b = c.input_bias()
                    if b is not None:
                        xw = xw + b
                st = states[k]
                before[k].append(st)
                run = st if rdps[k] is None else [st[0] * rdps[k], *st[1:]]
                h, new, cache = c.step(xw, run)
                caches[k].append(cache)
                new_states.append(new)
            if m is not None:
                keep_s = m[s]
                new_states = [
                    [keep_s * a + (1 - keep_s) * b for a, b in zip(new, old, strict=True)]
                    for new, old in zip(new_states, states, strict=True)
                ]
                out = keep_s * h + (0 if self.zero_output_for_mask else (1 - keep_s) * prev_out)
            else:
                out = h
            if outputs is not None:
                outputs[s] = out
            prev_out = out
            states = new_states
        y = outputs.transpose(1, 0, 2).copy() if outputs is not None else np.array(prev_out)
        saved = StackSaved(ins, before, caches, m, dps, rdps, len(initial))
        if self.return_state:
            return [y, *[np.array(a) for st in states for a in st]], saved
        return y, saved

    def _stack_bptt(self, dy: Any, saved: StackSaved) -> _StackGrads:
        """Backpropagation through time and down the stack (see :class:`StackedRNNCells`)."""
        stack = cast(StackedRNNCells, self.cell)
        cells = stack.cells
        m = saved.mask
        t, n, _ = saved.inputs[0].shape
        if self.return_state:
            dy_out, d_final = dy[0], list(dy[1:])
        else:
            dy_out, d_final = dy, [None] * len(stack.state_size)
        dstates = stack.split_states(
            [
                np.zeros((n, size), self.dtype) if d is None else np.array(d, dtype=self.dtype)
                for d, size in zip(d_final, stack.state_size, strict=True)
            ]
        )
        out_size = stack.output_size
        if dy_out is None:
            shape = (n, t, out_size) if self.return_sequences else (n, out_size)
            dy_out = np.zeros(shape, self.dtype)
        d_out_prev = np.zeros((n, out_size), self.dtype)
        if t == 0 and not self.return_sequences:  # no steps: the output is the last h_0
            d_out_prev += dy_out
        dys = dy_out.transpose(1, 0, 2) if self.return_sequences else None
        inp = [np.empty((t, n, c.params["kernel"].shape[1]), self.dtype) for c in cells]
        rec = [np.empty_like(a) for a in inp]
        rec_t = [c.params["recurrent_kernel"].T for c in cells]
        kernel_t = [c.params["kernel"].T for c in cells]
        for s in range(t - 1, -1, -1):
            g_out = d_out_prev.copy()
            if dys is not None:
                g_out += dys[s]
            elif s == t - 1:
                g_out += dy_out
            carry = None
            if m is not None:
                keep_s = m[s]
                g = keep_s * g_out
                d_in = [[keep_s * d for d in ds] for ds in dstates]
                carry = [[(1 - keep_s) * d for d in ds] for ds in dstates]
                d_out_prev = (
                    np.zeros_like(g_out) if self.zero_output_for_mask else (1 - keep_s) * g_out
                )
            else:
                g = g_out
                d_in = dstates
                d_out_prev = np.zeros_like(g_out)
            new_d: list[list[np.ndarray]] = [[] for _ in cells]
            for k in range(len(cells) - 1, -1, -1):  # from the top cell down
                c = cells[k]
                back = c.step_back(g + d_in[k][0], d_in[k][1:], saved.caches[k][s],
                                   saved.states[k][s])  # fmt: skip
                inp[k][s], rec[k][s] = back[0], back[1]
                dh_prev = threads.matmul(back[1], rec_t[k])
                if len(back) > 3:  # a direct path from h_{s-1} (GRU's z * h_{s-1})
                    dh_prev = dh_prev + back[3]
                if saved.recurrent_dropout[k] is not None:
                    dh_prev = dh_prev * saved.recurrent_dropout[k]
                new_d[k] = [dh_prev, *back[2]]
                if k > 0:  # the gradient of the cell below's output at this step
                    g = threads.matmul(back[0], kernel_t[k])
                    if saved.dropout[k] is not None:
                        g = g * saved.dropout[k]
            if carry is not None:
                new_d = [
                    [a + b for a, b in zip(nd, cd, strict=True)]
                    for nd, cd in zip(new_d, carry, strict=True)
                ]
            dstates = new_d
        dstates[-1][0] = dstates[-1][0] + d_out_prev  # the first "previous output" is h_0
        return _StackGrads(inp, rec, [d for ds in dstates for d in ds])

    def _stack_input_grad(self, bptt: _StackGrads, saved: StackSaved) -> Any:
        first = cast(StackedRNNCells, self.cell).cells[0]
        t, n, f = saved.inputs[0].shape
        a = bptt.input_side[0]
        dx = threads.matmul(a.reshape(t * n, a.shape[-1]), first.params["kernel"].T)
        dx = dx.reshape(t, n, f)
        if saved.dropout[0] is not None:
            dx *= saved.dropout[0]
        dx = dx.transpose(1, 0, 2)
        dx = np.ascontiguousarray(dx[:, ::-1] if self.go_backwards else dx)
        if saved.initial:
            return [dx, *bptt.states]
        return dx

    def _stack_params_grad(self, bptt: _StackGrads, saved: StackSaved) -> dict[str, np.ndarray]:
        stack = cast(StackedRNNCells, self.cell)
        out: dict[str, np.ndarray] = {}
        for k, c in enumerate(stack.cells):
            x = saved.inputs[k]
            t, n, f = x.shape
            kk = bptt.input_side[k].shape[-1]
            a = bptt.input_side[k].reshape(t * n, kk)
            r = bptt.recurrent_side[k].reshape(t * n, kk)
            u = c.units
            h_prev = (
                np.stack([st[0] for st in saved.states[k]])
                if t
                else np.zeros((0, n, u), self.dtype)
            )
            if saved.recurrent_dropout[k] is not None:
                h_prev = h_prev * saved.recurrent_dropout[k]
            grads = {
                "kernel": threads.matmul(x.reshape(t * n, f).T, a),
                "recurrent_kernel": threads.matmul(h_prev.reshape(t * n, u).T, r),
            }
            if c.use_bias:
                rb = c.recurrent_bias_grad(r)
                grads["bias"] = a.sum(axis=0) if rb is None else np.stack([a.sum(axis=0), rb])
            for key, g in grads.items():
                out[f"{c.name}/{key}"] = g
        return {k: out[k] for k in self.params}


def _cell_kwargs(kwargs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: kwargs.pop(k) for k in names if k in kwargs}


_CELL_ARGS = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "dropout",
    "recurrent_dropout",
)


class SimpleRNN(RNN):
    r"""A fully connected recurrent layer, :math:`h_s = \phi(x_s W + h_{s-1} U + b)` (Keras's).

    .. rubric:: Input and output shape

    As :class:`RNN`: ``(batch, timesteps, features)`` to ``(batch, units)`` or
    ``(batch, timesteps, units)``.

    Parameters
    ----------
    units : int
    activation : str, default "tanh"
    use_bias : bool, default True
    kernel_initializer, recurrent_initializer, bias_initializer : str
    dropout, recurrent_dropout : float, default 0.0
    return_sequences, return_state, go_backwards, stateful, unroll
        As :class:`RNN`.

    Raises
    ------
    ValueError
        As :class:`RNN` and :class:`SimpleRNNCell`.

    Notes
    -----
    :math:`\partial z/\partial a_s = g_s \odot \phi'(a_s)` with
    :math:`g_s = \partial z/\partial h_s`, and :math:`g_{s-1}` receives
    :math:`\delta_s U^T`; see :doc:`/sequences`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.SimpleRNN(4, seed=0)(np.zeros((2, 6, 3))).shape
    (2, 4)
    """

    _default_name = "simple_rnn"

    def __init__(self, units: int, **kwargs: Any) -> None:
        cell_args = _cell_kwargs(kwargs, _CELL_ARGS)
        kwargs.pop("cell", None)
        common = {k: kwargs[k] for k in ("dtype", "seed") if k in kwargs}
        super().__init__(SimpleRNNCell(units, **cell_args, **common), **kwargs)

    def get_config(self) -> dict[str, Any]:
        return _flat_config(self, RNN.get_config(self))


class LSTM(RNN):
    r"""Long short-term memory (Keras's ``LSTM``), gates :math:`i, f, \tilde c, o`.

    .. rubric:: Input and output shape

    As :class:`RNN`; with ``return_state`` the outputs are ``[output, h, c]``.
    Weights as Keras: ``kernel`` ``(features, 4 units)``, ``recurrent_kernel``
    ``(units, 4 units)``, ``bias`` ``(4 units,)``.

    Parameters
    ----------
    units : int
    activation : str, default "tanh"
    recurrent_activation : str, default "sigmoid"
    use_bias : bool, default True
    kernel_initializer, recurrent_initializer, bias_initializer : str
    unit_forget_bias : bool, default True
    dropout, recurrent_dropout : float, default 0.0
    return_sequences, return_state, go_backwards, stateful, unroll
        As :class:`RNN`.

    Raises
    ------
    ValueError
        As :class:`RNN` and :class:`LSTMCell`.

    Notes
    -----
    Forward: :math:`c_s = f\odot c_{s-1} + i\odot\tilde c`,
    :math:`h_s = o\odot\phi(c_s)`. Backward through time:
    :math:`\partial c_s = g_s\odot o\odot\phi'(c_s) + \partial c_{s+1}\odot f_{s+1}`
    and the gate deltas of the cell (see :doc:`/sequences`); the weight gradients
    sum :math:`x_s^T\delta_s` and :math:`h_{s-1}^T\delta_s` over the steps.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.LSTM(4, return_sequences=True, seed=0)(np.zeros((2, 6, 3))).shape
    (2, 6, 4)
    """

    _default_name = "lstm"

    def __init__(self, units: int, **kwargs: Any) -> None:
        cell_args = _cell_kwargs(kwargs, (*_CELL_ARGS, "unit_forget_bias"))
        kwargs.pop("cell", None)
        common = {k: kwargs[k] for k in ("dtype", "seed") if k in kwargs}
        super().__init__(LSTMCell(units, **cell_args, **common), **kwargs)

    def get_config(self) -> dict[str, Any]:
        return _flat_config(self, RNN.get_config(self))


def _flat_config(layer: RNN, config: dict[str, Any]) -> dict[str, Any]:
    """A layer's config with its cell's arguments at the top level (Keras's form)."""
    cell = config.pop("cell")["config"]
    for k in ("name", "dtype", "seed", "trainable"):
        cell.pop(k, None)
    return {**cell, **config}
