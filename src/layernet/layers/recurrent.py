r"""Recurrent layers: a gated recurrent unit (GRU) with backpropagation through time."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .. import _ops, initializers, threads
from .._validation import check_bool, check_positive_int, shape_str
from .base import Layer
from .container import _Container, deserialize_layer, serialize_layer


def _tanh(a: np.ndarray) -> np.ndarray:
    return np.tanh(a, out=a)


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # 1 / (1 + e^{-a}) in four in-place passes of NumPy's vectorised ufuncs: about half
    # the time of SciPy's ``expit`` (one scalar exponential per entry) on a gate's block.
    # Where e^{-a} overflows (a below -88 in float32) the result is 0, as 1 / inf.
    np.negative(a, out=a)
    with np.errstate(over="ignore"):
        np.exp(a, out=a)
    a += 1
    return np.reciprocal(a, out=a)


def _relu(a: np.ndarray) -> np.ndarray:
    return _ops.relu(a, a)


def _linear(a: np.ndarray) -> np.ndarray:
    return a


#: Activation name -> (in-place function, derivative written in terms of the output).
ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], Any]]] = {
    "tanh": (_tanh, lambda y: 1 - y * y),
    "sigmoid": (_sigmoid, lambda y: y * (1 - y)),
    "relu": (_relu, lambda y: (y > 0).astype(y.dtype)),
    "linear": (_linear, lambda y: np.ones_like(y)),
}


def _check_activation(value: Any, arg: str, owner: str) -> str:
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected one of {sorted(ACTIVATIONS)}, "
            f"received {value!r}."
        )
    return value


class GRUSaved(NamedTuple):
    """What a GRU's forward pass keeps for backpropagation through time.

    Every array is time-major, in processing order (reversed input when
    ``go_backwards``): step ``s`` of the loop is index ``s``.
    """

    #: Input, shape ``(T, N, F)``.
    x: np.ndarray
    #: States ``h_0 .. h_T``, shape ``(T + 1, N, U)`` (``h_0 = 0``).
    h: np.ndarray
    #: Update and reset gates ``[z, r]``, shape ``(T, N, 2U)``.
    zr: np.ndarray
    #: Candidate states :math:`\tilde h`, shape ``(T, N, U)``.
    candidate: np.ndarray
    #: Recurrent part of the candidate's pre-activation, :math:`h_{s-1}U_h + b_{rh}`, ``(T, N, U)``.
    recurrent_h: np.ndarray


class _Grads(NamedTuple):
    """Gradients of the pre-activations at every step, from one BPTT sweep."""

    #: :math:`\partial z/\partial (x_s W + b_i)`, shape ``(T, N, 3U)``.
    input_side: np.ndarray
    #: :math:`\partial z/\partial (h_{s-1} U + b_r)`, shape ``(T, N, 3U)``.
    recurrent_side: np.ndarray


class GRU(Layer):
    r"""Gated recurrent unit over ``(batch, timesteps, features)``, PyTorch's / Keras 3's form.

    The reset gate multiplies the recurrent matrix product (``reset_after=True``):
    these are the equations of :class:`torch.nn.GRU` and of Keras 3's default GRU.

    .. rubric:: Input and output shape

    Input ``(batch, timesteps, features)``; output ``(batch, units)`` (the last
    state), or ``(batch, timesteps, units)`` with ``return_sequences=True``.
    Parameters: ``3 * units * (features + units)``, plus ``6 * units`` with a bias.

    Parameters
    ----------
    units : int
        Size :math:`U` of the state :math:`h`.
    activation : {"tanh", "sigmoid", "relu", "linear"}, default "tanh"
        Activation :math:`\phi` of the candidate state.
    recurrent_activation : {"sigmoid", "tanh", "relu", "linear"}, default "sigmoid"
        Activation :math:`\sigma` of the update and reset gates.
    use_bias : bool, default True
        Whether to add the input and recurrent biases.
    kernel_initializer : str, default "glorot_uniform"
        Initialiser of the input kernel ``W`` (fans ``features`` and ``3 * units``).
    recurrent_initializer : str, default "orthogonal"
        Initialiser of the recurrent kernel ``U``.
    bias_initializer : str, default "zeros"
        Initialiser of both biases.
    return_sequences : bool, default False
        Return the state after every step, ``(batch, timesteps, units)``, instead
        of only the last one, ``(batch, units)``.
    go_backwards : bool, default False
        Process the sequence from its last step to its first; with
        ``return_sequences`` the states come out in processing order (reversed),
        as in Keras.
    reset_after : bool, default True
        Only ``True`` is supported (the reset gate applied after the recurrent
        product); ``False`` raises a ``ValueError``.
    name : str, optional
        Layer name (``"gru_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and the computation.
    seed : int, optional
        Seed of the initial values (global seed when ``None``).
    trainable : bool, default True
        Whether optimisers update the parameters.

    Attributes
    ----------
    params : dict
        ``"kernel"`` of shape ``(features, 3 * units)``, ``"recurrent_kernel"`` of shape
        ``(units, 3 * units)`` and, with a bias, ``"bias"`` of shape ``(2, 3 * units)``
        (row 0 the input bias :math:`b_i`, row 1 the recurrent bias :math:`b_r`).
        The three column blocks are the update gate :math:`z`, the reset gate
        :math:`r` and the candidate :math:`\tilde h`, in Keras's order and layout
        (Keras's ``kernel``, ``recurrent_kernel``, ``bias``). PyTorch stores
        ``weight_ih_l0`` as ``W.T`` with the blocks in the order ``r, z, n``.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``GRU 'gru_1':
        invalid value for `units`: expected a positive int, received 0.``; the
        same form for ``activation`` and ``recurrent_activation`` (one of
        ``'linear'``, ``'relu'``, ``'sigmoid'``, ``'tanh'``), the bools, the
        initialisers, ``dtype``, ``name`` and ``seed``; ``reset_after=False``
        (only ``True`` is supported). On an input: ``expected input with 3
        dims (batch, timesteps, features)``, ``expected at least 1 timestep
        (axis 1)``, ``expected at least 1 input feature``, or a feature count
        other than the built one. In backward: a ``dy`` whose shape is not the
        last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    For the input step :math:`x_s` (a row per sample) and the previous state
    :math:`h_{s-1}` (:math:`h_0 = 0`), with :math:`W = [W_z\,W_r\,W_h]`,
    :math:`U = [U_z\,U_r\,U_h]` and the biases split likewise,

    .. math::

        z_s &= \sigma(x_s W_z + b_{iz} + h_{s-1} U_z + b_{rz}), \\
        r_s &= \sigma(x_s W_r + b_{ir} + h_{s-1} U_r + b_{rr}), \\
        \tilde h_s &= \phi\bigl(x_s W_h + b_{ih} + r_s \odot (h_{s-1} U_h + b_{rh})\bigr), \\
        h_s &= z_s \odot h_{s-1} + (1 - z_s) \odot \tilde h_s .

    **Backpropagation through time.** Let :math:`g_s = \partial z/\partial h_s`
    collect the upstream gradient of step :math:`s` (every step with
    ``return_sequences``, else only the last) plus what flows back from step
    :math:`s+1`. Going from :math:`s = T` down to 1, with :math:`a` denoting
    pre-activations and :math:`\sigma'`, :math:`\phi'` written through the outputs
    (:math:`\sigma' = z(1-z)`, :math:`\phi' = 1 - \tilde h^2` for the defaults),

    .. math::

        \frac{\partial z}{\partial a^z_s} &= g_s \odot (h_{s-1} - \tilde h_s) \odot \sigma'(z_s),
        \\
        \frac{\partial z}{\partial a^h_s} &= g_s \odot (1 - z_s) \odot \phi'(\tilde h_s), \\
        \frac{\partial z}{\partial a^r_s} &= \frac{\partial z}{\partial a^h_s} \odot
            (h_{s-1} U_h + b_{rh}) \odot \sigma'(r_s), \\
        \frac{\partial z}{\partial (h_{s-1}U_h + b_{rh})} &=
            \frac{\partial z}{\partial a^h_s} \odot r_s, \\
        g_{s-1} &\mathrel{+}= g_s \odot z_s + \Bigl[\frac{\partial z}{\partial a^z_s}\;
            \frac{\partial z}{\partial a^r_s}\;
            \frac{\partial z}{\partial (h_{s-1}U_h + b_{rh})}\Bigr] U^T .

    With :math:`A_s = [\partial z/\partial a^z_s\; \partial z/\partial a^r_s\;
    \partial z/\partial a^h_s]` (input side) and :math:`R_s` the bracket above
    (recurrent side), the rest is three products over all steps at once:

    .. math::

        \frac{\partial z}{\partial x_s} &= A_s W^T, \quad
        \frac{\partial z}{\partial W} = \sum_s x_s^T A_s, \quad
        \frac{\partial z}{\partial U} = \sum_s h_{s-1}^T R_s, \\
        \frac{\partial z}{\partial b_i} &= \sum_s \mathbf 1^T A_s, \quad
        \frac{\partial z}{\partial b_r} = \sum_s \mathbf 1^T R_s .

    The input projections of all steps are one matrix product before the loop
    and the gradients above one after it; only the recurrence loops over time.
    The sweep runs once per upstream gradient: ``backward_params`` and
    ``backward_input`` with the same ``dy`` share it. The explicit Jacobians
    (small sizes) are built from these rules with unit vectors.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> gru = ln.GRU(4, return_sequences=True, seed=0, dtype="float64")
    >>> x = np.ones((2, 5, 3))
    >>> gru(x).shape
    (2, 5, 4)
    >>> gru.backward_input(np.ones((2, 5, 4))).shape
    (2, 5, 3)
    >>> sorted((k, v.shape) for k, v in gru.params.items())
    [('bias', (2, 12)), ('kernel', (3, 12)), ('recurrent_kernel', (4, 12))]
    """

    _default_name = "gru"
    fresh_output = True
    fresh_gradient = True
    input_ndim = 3

    def __init__(
        self,
        units: int,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        recurrent_initializer: str = "orthogonal",
        bias_initializer: str = "zeros",
        return_sequences: bool = False,
        go_backwards: bool = False,
        reset_after: bool = True,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
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
        self.return_sequences = check_bool(return_sequences, "return_sequences", o)
        self.go_backwards = check_bool(go_backwards, "go_backwards", o)
        if reset_after is not True:
            raise ValueError(
                f"{o}: invalid value for `reset_after`: only True is supported (the reset "
                f"gate applied after the recurrent product, as in PyTorch and Keras 3), "
                f"received {reset_after!r}."
            )
        self.reset_after = True
        self._memo: tuple[Any, np.ndarray, _Grads] | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "return_sequences": self.return_sequences,
            "go_backwards": self.go_backwards,
            "reset_after": self.reset_after,
            **super().get_config(),
        }

    def _expected_layout(self) -> str:
        return "(batch, timesteps, features)"

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if shape[1] is not None and shape[1] < 1:
            raise ValueError(
                f"{self.owner}: expected at least 1 timestep (axis 1), got shape "
                f"{shape_str(shape)}."
            )
        if shape[-1] is not None and shape[-1] < 1:
            raise ValueError(
                f"{self.owner}: expected at least 1 input feature, got shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.params["kernel"].shape[0], "features")

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def build_params(self, input_shape, rng):
        f, u = input_shape[-1], self.units
        o = self.owner
        init = initializers.get(self.kernel_initializer, o, "kernel_initializer")
        self.params["kernel"] = init((f, 3 * u), f, 3 * u, rng, self.dtype)
        init = initializers.get(self.recurrent_initializer, o, "recurrent_initializer")
        self.params["recurrent_kernel"] = init((u, 3 * u), u, 3 * u, rng, self.dtype)
        if self.use_bias:
            init = initializers.get(self.bias_initializer, o, "bias_initializer")
            self.params["bias"] = init((2, 3 * u), f, 3 * u, rng, self.dtype)
        self._memo = None

    # ------------------------------------------------------------- forward
    def compute_forward(self, x, training):
        n, t, f = x.shape
        u = self.units
        w, rec = self.params["kernel"], self.params["recurrent_kernel"]
        xs = x[:, ::-1] if self.go_backwards else x
        xs = np.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, F), processing order
        # All input projections in one product: (T*N, F) @ (F, 3U).
        xw = threads.matmul(xs.reshape(t * n, f), w).reshape(t, n, 3 * u)
        if self.use_bias:
            xw += self.params["bias"][0]
            b_rec = self.params["bias"][1]
        gate = ACTIVATIONS[self.recurrent_activation][0]
        act = ACTIVATIONS[self.activation][0]
        h = np.zeros((t + 1, n, u), dtype=self.dtype)
        zr = np.empty((t, n, 2 * u), dtype=self.dtype)
        cand = np.empty((t, n, u), dtype=self.dtype)
        rec_h = np.empty((t, n, u), dtype=self.dtype)
        for s in range(t):
            hu = threads.matmul(h[s], rec)  # (N, 3U)
            if self.use_bias:
                hu += b_rec
            gate(np.add(xw[s, :, : 2 * u], hu[:, : 2 * u], out=zr[s]))
            z, r = zr[s, :, :u], zr[s, :, u:]
            rec_h[s] = hu[:, 2 * u :]
            c = cand[s]
            act(np.add(np.multiply(r, hu[:, 2 * u :], out=c), xw[s, :, 2 * u :], out=c))
            # h_s = z h_{s-1} + (1 - z) c = c + z (h_{s-1} - c)
            hs = np.subtract(h[s], c, out=h[s + 1])
            hs *= z
            hs += c
        if self.return_sequences:
            y = h[1:].transpose(1, 0, 2).copy()
        else:
            y = h[t].copy()
        return y, GRUSaved(xs, h, zr, cand, rec_h)

    # ------------------------------------------------------------ backward
    def _bptt(self, dy: np.ndarray, saved: GRUSaved) -> _Grads:
        """One backward sweep through time; reused for the same ``dy`` and forward pass."""
        memo = self._memo
        if memo is not None and memo[0] is saved and np.array_equal(memo[1], dy):
            return memo[2]
        h, zr, cand, rec_h = saved.h, saved.zr, saved.candidate, saved.recurrent_h
        t, n, u = cand.shape
        rec_t = np.ascontiguousarray(self.params["recurrent_kernel"].T)  # see RNN._bptt
        d_gate = ACTIVATIONS[self.recurrent_activation][1]
        d_act = ACTIVATIONS[self.activation][1]
        z, r = zr[..., :u], zr[..., u:]
        dzr = d_gate(zr)
        # Step-independent factors, computed for all steps at once.
        fz = (h[:-1] - cand) * dzr[..., :u]  # da_z = g * fz
        fh = (1 - z) * d_act(cand)  # da_h = g * fh
        fr = rec_h * dzr[..., u:]  # da_r = da_h * fr
        rec_side = np.empty((t, n, 3 * u), dtype=self.dtype)
        da_h = np.empty((t, n, u), dtype=self.dtype)
        if self.return_sequences:
            dys = dy.transpose(1, 0, 2)
        g = np.zeros((n, u), dtype=self.dtype)
        for s in range(t - 1, -1, -1):
            if self.return_sequences:
                g += dys[s]
            elif s == t - 1:
                g += dy
            rs = rec_side[s]
            np.multiply(g, fz[s], out=rs[:, :u])
            np.multiply(g, fh[s], out=da_h[s])
            np.multiply(da_h[s], fr[s], out=rs[:, u : 2 * u])
            np.multiply(da_h[s], r[s], out=rs[:, 2 * u :])
            g = g * z[s]
            g += threads.matmul(rs, rec_t)
        input_side = rec_side.copy()
        input_side[..., 2 * u :] = da_h
        grads = _Grads(input_side, rec_side)
        self._memo = (saved, dy.copy(), grads)
        return grads

    def compute_backward_input(self, dy, saved):
        grads = self._bptt(dy, saved)
        t, n, f = saved.x.shape
        dx = threads.matmul(
            grads.input_side.reshape(t * n, 3 * self.units), self.params["kernel"].T
        ).reshape(t, n, f)
        dx = dx.transpose(1, 0, 2)
        return np.ascontiguousarray(dx[:, ::-1] if self.go_backwards else dx)

    def compute_backward_params(self, dy, saved):
        grads = self._bptt(dy, saved)
        t, n, f = saved.x.shape
        u = self.units
        a = grads.input_side.reshape(t * n, 3 * u)
        rr = grads.recurrent_side.reshape(t * n, 3 * u)
        out = {
            "kernel": threads.matmul(saved.x.reshape(t * n, f).T, a),
            "recurrent_kernel": threads.matmul(saved.h[:-1].reshape(t * n, u).T, rr),
        }
        if self.use_bias:
            out["bias"] = np.stack([a.sum(axis=0), rr.sum(axis=0)])
        return out


MERGE_MODES = ("concat", "sum", "mul", "ave")


class BidirectionalSaved(NamedTuple):
    """What a bidirectional wrapper keeps: both directions' saved states and outputs."""

    forward: Any
    backward: Any
    #: The two outputs, time-aligned (needed by ``merge_mode="mul"``).
    y_forward: np.ndarray
    y_backward: np.ndarray


class Bidirectional(_Container):
    r"""Run a recurrent layer over the sequence in both directions and merge the outputs.

    .. rubric:: Input and output shape

    Input ``(batch, timesteps, features)``. Output ``(batch, U)`` or, when the
    wrapped layers have ``return_sequences=True``, ``(batch, timesteps, U)``,
    where :math:`U = U_f + U_b` for ``"concat"`` and :math:`U = U_f = U_b` for
    the other merge modes (:math:`U_f`, :math:`U_b` the two directions' units).

    Parameters
    ----------
    layer : Layer
        A recurrent layer (:class:`GRU`, :class:`LSTM`, :class:`SimpleRNN` or
        :class:`RNN`); it becomes the forward direction. The
        backward direction is a copy of its configuration with ``go_backwards``
        flipped, named ``"backward_<name>"`` (seed ``seed + 1`` when the layer has
        a seed), unless ``backward_layer`` is given.
    merge_mode : {"concat", "sum", "mul", "ave", None}, default "concat"
        How the two outputs are combined; ``None`` returns both, ``[forward,
        backward]`` (the backward one in time order), as Keras does. When the
        wrapped layer has ``return_state=True`` the forward layer's final states
        and then the backward layer's follow the output(s) in the returned list.
    backward_layer : Layer, optional
        The backward direction, with the opposite ``go_backwards`` and the same
        ``return_sequences``.
    name : str, optional
        Layer name (``"bidirectional_<n>"`` by default); see :class:`Layer`.
    dtype : str, optional
        The wrapped layers' dtype; ``None`` takes theirs.
    seed : int, optional
        Seeds the wrapped layers that have no seed of their own.
    trainable : bool, default True
        Whether optimisers update both directions' parameters.

    Raises
    ------
    ValueError
        ``Bidirectional: invalid value for `merge_mode`: expected one of
        ['concat', 'sum', 'mul', 'ave', None], received ...``; a
        ``backward_layer`` whose ``return_state`` differs from ``layer``'s;
        a ``backward_layer`` whose ``go_backwards`` is not the opposite
        of ``layer``'s or whose ``return_sequences`` differs; a merge other than
        ``"concat"`` of directions with different units; inner layers of mixed
        dtypes or a ``dtype`` other than theirs; inputs the wrapped layer
        refuses (see :class:`GRU`).
    TypeError
        ``invalid value for `layer`: expected a recurrent layer such as GRU
        (with `go_backwards` and `return_sequences`), ...`` (likewise for
        ``backward_layer``).
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.

    Attributes
    ----------
    forward_layer, backward_layer : Layer
    params, grads, state : dict
        Both directions' arrays (the same objects) under ``"<inner name>/<key>"``.

    Notes
    -----
    With :math:`Y^f` the forward layer's output and :math:`Y^b` the backward
    layer's, its sequence put back in time order when ``return_sequences`` (so
    that step :math:`t` of both has seen input step :math:`t`), the merge and its
    derivatives are

    .. math::

        \text{concat: } Y &= [Y^f\; Y^b], &
            \frac{\partial z}{\partial Y^f} &= \frac{\partial z}{\partial Y}_{[:, :U_f]},\;
            \frac{\partial z}{\partial Y^b} = \frac{\partial z}{\partial Y}_{[:, U_f:]};\\
        \text{sum: } Y &= Y^f + Y^b, &
            \frac{\partial z}{\partial Y^f} &= \frac{\partial z}{\partial Y^b}
            = \frac{\partial z}{\partial Y};\\
        \text{ave: } Y &= \tfrac12 (Y^f + Y^b), &
            \frac{\partial z}{\partial Y^{f}} &= \frac{\partial z}{\partial Y^{b}}
            = \tfrac12 \frac{\partial z}{\partial Y};\\
        \text{mul: } Y &= Y^f \odot Y^b, &
            \frac{\partial z}{\partial Y^f} &= \frac{\partial z}{\partial Y} \odot Y^b,\;
            \frac{\partial z}{\partial Y^b} = \frac{\partial z}{\partial Y} \odot Y^f .

    Each direction then backpropagates through time with its own rules, and
    :math:`\partial z/\partial X` is the sum of the two directions' input
    gradients. The input Jacobian is :math:`J_f + J_b` after the merge's
    (block) factors; the parameter Jacobians are those of each direction.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> bi = ln.Bidirectional(ln.GRU(3, return_sequences=True, seed=0))
    >>> bi(np.zeros((2, 5, 1), dtype="float32")).shape
    (2, 5, 6)
    >>> [layer.name for layer in bi.layers] == [bi.layers[0].name, "backward_" + bi.layers[0].name]
    True
    """

    _default_name = "bidirectional"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        layer: Layer,
        merge_mode: str | None = "concat",
        backward_layer: Layer | None = None,
        *,
        name: str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        where = f"Bidirectional '{name}'" if name else "Bidirectional"
        self._check_recurrent(layer, "layer", where)
        rnn: Any = layer  # checked: a layer with go_backwards and return_sequences
        if merge_mode is not None and merge_mode not in MERGE_MODES:
            raise ValueError(
                f"{where}: invalid value for `merge_mode`: expected one of "
                f"{[*MERGE_MODES, None]}, received {merge_mode!r}."
            )
        if backward_layer is None:
            config = layer.get_config()
            config["go_backwards"] = not rnn.go_backwards
            config["name"] = f"backward_{layer.name}"
            if config.get("seed") is not None:
                config["seed"] += 1
            backward_layer = type(layer).from_config(config)
        else:
            self._check_recurrent(backward_layer, "backward_layer", where)
            back: Any = backward_layer
            if back.go_backwards == rnn.go_backwards:
                raise ValueError(
                    f"{where}: `backward_layer` must have go_backwards="
                    f"{not rnn.go_backwards} (the opposite of `layer`), received "
                    f"go_backwards={back.go_backwards!r}."
                )
            if getattr(back, "return_state", False) != getattr(rnn, "return_state", False):
                raise ValueError(
                    f"{where}: `layer` and `backward_layer` must agree on return_state, "
                    f"received {getattr(rnn, 'return_state', False)!r} and "
                    f"{getattr(back, 'return_state', False)!r}."
                )
            if back.return_sequences != rnn.return_sequences:
                raise ValueError(
                    f"{where}: `layer` and `backward_layer` must agree on "
                    f"return_sequences, received {rnn.return_sequences!r} and "
                    f"{back.return_sequences!r}."
                )
        self.merge_mode = merge_mode
        super().__init__(
            [layer, backward_layer], name=name, dtype=dtype, seed=seed, trainable=trainable
        )
        # Keras's rule: returning sequences, both directions output zeros at masked
        # steps, so the merged sequence is zero there (layers with the option only).
        for inner in self.layers:
            if hasattr(inner, "zero_output_for_mask"):
                inner.zero_output_for_mask = bool(rnn.return_sequences)
        self.supports_masking = True
        if merge_mode not in ("concat", None):
            units = [getattr(lay, "units", None) for lay in self.layers]
            if units[0] != units[1]:
                raise ValueError(
                    f"{self.owner}: merge_mode={merge_mode!r} needs both directions to have "
                    f"the same units, received {units[0]} and {units[1]}."
                )

    @staticmethod
    def _check_recurrent(layer: Any, arg: str, where: str) -> None:
        if not (
            isinstance(layer, Layer)
            and hasattr(layer, "go_backwards")
            and hasattr(layer, "return_sequences")
        ):
            raise TypeError(
                f"{where}: invalid value for `{arg}`: expected a recurrent layer such as "
                f"GRU (with `go_backwards` and `return_sequences`), received {layer!r:.200}."
            )

    @property
    def forward_layer(self) -> Layer:
        return self.layers[0]

    @property
    def backward_layer(self) -> Layer:
        return self.layers[1]

    @property
    def return_sequences(self) -> bool:
        rnn: Any = self.forward_layer  # a recurrent layer (checked when built)
        return bool(rnn.return_sequences)

    def get_config(self) -> dict[str, Any]:
        return {
            "layer": serialize_layer(self.forward_layer),
            "merge_mode": self.merge_mode,
            "backward_layer": serialize_layer(self.backward_layer),
            **super().get_config(),
        }

    @classmethod
    def _inner_from_config(cls, config, custom_objects):
        config["layer"] = deserialize_layer(config["layer"], custom_objects)
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"], custom_objects)
        return config

    input_ndim = 3

    def _expected_layout(self) -> str:
        return "(batch, timesteps, features)"

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        try:
            for layer in self.layers:
                layer.check_input_shape(shape)
        except ValueError as exc:
            raise ValueError(f"{self.owner}: inner layer refused the input: {exc}") from None

    @property
    def return_state(self) -> bool:
        return bool(getattr(self.forward_layer, "return_state", False))

    def _n_states(self, layer: Layer) -> int:
        """How many final states ``layer`` returns (0 without ``return_state``)."""
        if not getattr(layer, "return_state", False):
            return 0
        cell = getattr(layer, "cell", None)
        return len(cell.state_size) if cell is not None else 1

    def compute_output_shape(self, input_shape):
        yf = self.forward_layer.output_shape(input_shape)
        yb = self.backward_layer.output_shape(input_shape)
        states: list[Any] = []
        if self.return_state:  # [output, *states] from each direction
            states = [*yf[1:], *yb[1:]]
            yf, yb = yf[0], yb[0]
        if self.merge_mode is None:
            return [yf, yb, *states]
        y = (*yf[:-1], yf[-1] + yb[-1]) if self.merge_mode == "concat" else yf
        return [y, *states] if states else y

    def build_inner(self, input_shape, rng):
        for layer in self.layers:
            self._build_child(layer, input_shape, rng)

    def _align(self, y: np.ndarray) -> np.ndarray:
        """Put the backward direction's sequence in time order (its own inverse)."""
        return y[:, ::-1] if self.return_sequences else y

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, list):
            mask = mask[0]
        out = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        n_states = self._n_states(self.forward_layer) + self._n_states(self.backward_layer)
        if n_out + n_states == 1:
            return out
        return [out] * n_out + [None] * n_states

    def compute_forward(self, x, training, mask=None):
        if mask is None:
            outf, sf = self._inner_forward(self.forward_layer, x, training)
            outb, sb = self._inner_forward(self.backward_layer, x, training)
        else:
            for inner in self.layers:
                if "mask" not in inspect.signature(inner.compute_forward).parameters:
                    raise ValueError(
                        f"{self.owner}: the wrapped layer {inner.name!r} does not take a "
                        f"mask; wrap an RNN, SimpleRNN or LSTM to use masked inputs."
                    )
            fl, bl = self.forward_layer, self.backward_layer
            outf, sf = fl.compute_forward(fl._prepare_input(x), training, mask=mask)
            outb, sb = bl.compute_forward(bl._prepare_input(x), training, mask=mask)
        states: list[np.ndarray] = []
        if self.return_state:
            (yf, *states_f), (yb, *states_b) = outf, outb
            states = [*states_f, *states_b]
        else:
            yf, yb = outf, outb
        yb = self._align(yb)
        mode = self.merge_mode
        saved = BidirectionalSaved(sf, sb, yf, yb)
        if mode is None:
            return [yf, np.ascontiguousarray(yb), *states], saved
        if mode == "concat":
            y = np.concatenate([yf, yb], axis=-1)
        elif mode == "sum":
            y = yf + yb
        elif mode == "ave":
            y = (yf + yb) * 0.5
        else:
            y = yf * yb
        return ([y, *states] if states else y), saved

    def _split(self, dy: Any, saved: BidirectionalSaved) -> tuple[Any, Any]:
        """The gradients reaching each direction's outputs (``[output, *states]`` or output).

        An output no loss depends on arrives as ``None`` and counts as zeros.
        """
        n_f = self._n_states(self.forward_layer)
        several = self.merge_mode is None or self.return_state
        dys = list(dy) if several else [dy]
        if self.merge_mode is None:
            (d_f, d_b), states = dys[:2], dys[2:]
            dyf = np.zeros_like(saved.y_forward) if d_f is None else d_f
            dyb = np.zeros_like(saved.y_backward) if d_b is None else d_b
        else:
            d, states = dys[0], dys[1:]
            if d is None:
                d = np.zeros(self._merged_shape(saved), self.dtype)
            mode = self.merge_mode
            if mode == "concat":
                uf = saved.y_forward.shape[-1]
                dyf, dyb = d[..., :uf], d[..., uf:]
            elif mode == "sum":
                dyf = dyb = d
            elif mode == "ave":
                dyf = dyb = d * 0.5
            else:
                dyf, dyb = d * saved.y_backward, d * saved.y_forward
        dyf = np.ascontiguousarray(dyf)
        dyb = np.ascontiguousarray(self._align(dyb))
        if not self.return_state:
            return dyf, dyb
        return [dyf, *states[:n_f]], [dyb, *states[n_f:]]

    def _merged_shape(self, saved: BidirectionalSaved) -> tuple[int, ...]:
        yf = saved.y_forward
        if self.merge_mode == "concat":
            return (*yf.shape[:-1], yf.shape[-1] + saved.y_backward.shape[-1])
        return yf.shape

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        # Each direction runs its own one-pass backward (input and parameters together).
        dyf, dyb = self._split(self._cast_dy(dy), saved)
        dx: Any = None
        grads: dict[str, np.ndarray] = {}
        for layer, d, s in (
            (self.forward_layer, dyf, saved.forward),
            (self.backward_layer, dyb, saved.backward),
        ):
            want = need_params and layer.trainable and bool(layer.params)
            g_in, g_params = layer.call_backward(d, s, need_input=need_input, need_params=want)
            if need_input:
                dx = g_in if dx is None else dx + g_in
            for k, g in g_params.items():
                grads[f"{layer.name}/{k}"] = g
        return dx, grads

    def compute_backward_input(self, dy, saved):
        return self.call_backward(dy, saved, need_params=False)[0]

    def compute_backward_params(self, dy, saved):
        return self.call_backward(dy, saved, need_input=False)[1]
