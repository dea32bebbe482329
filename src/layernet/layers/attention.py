r"""Attention layers: multi-head scaled dot-product, dot-product and additive attention.

All three compute attention weights :math:`P = \operatorname{softmax}(S)` over
the key positions from scores :math:`S` and return :math:`P V`. They share the
softmax's backward rule: for each row :math:`p` of :math:`P` and its upstream
gradient :math:`d p`,

.. math::

    \frac{\partial p_j}{\partial s_k} = p_j(\delta_{jk} - p_k)
    \;\Longrightarrow\;
    dS = P \odot \big(dP - \operatorname{rowsum}(dP \odot P)\big).

Masked positions (``False`` in a mask) take no part: their weight is 0 and they
receive no gradient.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import numpy as np

from .. import initializers, threads
from .._validation import check_bool, check_number, check_positive_int, is_int, shape_str
from .base import Layer, is_shape_list

__all__ = ["AdditiveAttention", "Attention", "MultiHeadAttention"]

#: What Keras adds to (or puts in place of) a masked score.
_LARGE_NEGATIVE = 1e9


def _heads_first(a: np.ndarray) -> np.ndarray:
    """``(batch, T, heads, size)`` to ``(batch, heads, T, size)`` (its own inverse)."""
    return a.transpose(0, 2, 1, 3)


def _bmm(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` over the leading (batch, heads) axes, each product on the threads it earns.

    NumPy runs a stacked product as one BLAS product per slice, every one on all of
    BLAS's threads; attention's slices are small, and small products on two threads
    stall whenever another process holds a core (see :mod:`layernet.threads`). So
    the thread count is chosen by the size of one slice's product. ``out`` may be a
    strided view (a heads-first view of a ``(batch, T, heads, size)`` array): BLAS
    writes into it directly.
    """
    flops = 2 * a.shape[-2] * a.shape[-1] * b.shape[-1]
    return threads.matmul(a, b, out=out, flops=flops)


def _bmm_heads_last(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_bmm` of heads-first operands, returned as a contiguous ``(batch, T, heads,
    size)`` array (the layout the projections read: no copy before their products)."""
    n, h = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    out = np.empty((n, a.shape[-2], h, b.shape[-1]), np.result_type(a, b))
    _bmm(a, b, out=_heads_first(out))
    return out


def _dot(a: np.ndarray, n: int, b: np.ndarray, tail: tuple[int, ...]) -> np.ndarray:
    """The last ``n`` axes of ``a`` contracted with the rows of the 2-D ``b``, as one
    product through :func:`layernet.threads.matmul` (the threads its size earns);
    the result has ``a``'s other axes then ``tail``."""
    lead = a.shape[: a.ndim - n]
    out = threads.matmul(a.reshape(math.prod(lead), b.shape[0]), b)
    return out.reshape(*lead, *tail)


def _kernel_t(kernel: np.ndarray) -> np.ndarray:
    """A ``(dim, heads, size)`` projection kernel as the ``(heads * size, dim)`` matrix."""
    return kernel.reshape(kernel.shape[0], math.prod(kernel.shape[1:])).T


def _lead_dot(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` axes of ``a`` and ``b`` contracted (a kernel's gradient), as one
    product; the result has ``a``'s other axes then ``b``'s."""
    rows = math.prod(a.shape[:n])
    a2 = a.reshape(rows, math.prod(a.shape[n:]))
    out = threads.matmul(a2.T, b.reshape(rows, math.prod(b.shape[n:])))
    return out.reshape(*a.shape[n:], *b.shape[n:])


def _softmax(s: np.ndarray, n_axes: int) -> np.ndarray:
    """Softmax over the last ``n_axes`` axes jointly."""
    shape = s.shape
    flat = s.reshape(*shape[: s.ndim - n_axes], math.prod(shape[s.ndim - n_axes :]))
    if flat.shape[-1] == 0:  # no keys: no weights (and an output of zeros, a sum of nothing)
        return s.copy()
    # One new array, updated in place (each in-place ufunc rounds as its out-of-place form).
    e = flat - flat.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e.reshape(shape)


def _softmax_backward(p: np.ndarray, dp: np.ndarray, n_axes: int) -> np.ndarray:
    r""":math:`dS = P \odot (dP - \sum dP \odot P)`, the sum over the last ``n_axes`` axes."""
    axes = tuple(range(p.ndim - n_axes, p.ndim))
    ds = dp * p
    total = np.sum(ds, axis=axes, keepdims=True)
    np.subtract(dp, total, out=ds)
    ds *= p
    return ds


def _as_mask(m: Any, owner: str, arg: str) -> np.ndarray | None:
    if m is None:
        return None
    m = np.asarray(m)
    if not (m.dtype == bool or np.issubdtype(m.dtype, np.number)):
        raise TypeError(
            f"{owner}: expected `{arg}` to be a boolean (or 0/1) array, received dtype {m.dtype}."
        )
    return m.astype(bool) if m.dtype != bool else m


def _causal(tq: int, tv: int) -> np.ndarray:
    """``(1, tq, tv)``: query position i may attend to key positions j <= i."""
    return (np.arange(tq)[:, None] >= np.arange(tv)[None, :])[None]


def _dropout_mask(
    rng: np.random.Generator | None, rate: float, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    if rng is None:
        rng = np.random.default_rng()
    keep = rng.random(shape, dtype=dtype) >= rate
    return np.multiply(keep, dtype.type(1 / (1 - rate)), dtype=dtype)


# =====================================================================================
class MultiHeadAttentionSaved(NamedTuple):
    """What :class:`MultiHeadAttention` keeps for backward."""

    query: np.ndarray  #: the query input
    key: np.ndarray  #: the key input (the value when no key was given)
    value: np.ndarray  #: the value input
    n_inputs: int  #: 2 (key is value: their gradients are summed) or 3
    qs: np.ndarray  #: the projected query times :math:`1/\sqrt{d_k}`
    kp: np.ndarray  #: the projected key
    vp: np.ndarray  #: the projected value
    probs: np.ndarray  #: the attention weights :math:`P` (after the mask, before dropout)
    drop: np.ndarray | None  #: the dropout scale of each weight (``None`` without dropout)
    heads: np.ndarray  #: the heads' outputs :math:`P_d V` before the output projection
    scores_output: bool  #: whether :math:`P` was returned as a second output


class MultiHeadAttention(Layer):
    r"""Multi-head attention (Vaswani et al., 2017) with Keras's weights and call.

    .. rubric:: Input and output shape

    ``query`` ``(batch, Tq, dim_q)``, ``value`` ``(batch, Tv, dim_v)`` and
    optionally ``key`` ``(batch, Tv, dim_k)`` (more axes between the batch and
    the features are allowed: all of them are attended over, or those in
    ``attention_axes``). Output ``(batch, Tq, dim_q)``, or
    ``(batch, Tq, *output_shape)``; with ``return_attention_scores`` also the
    weights ``(batch, num_heads, Tq, Tv)``.

    The layer takes the list ``[query, value]`` or ``[query, value, key]`` in
    :meth:`forward`; ``layer(query, value, key=None, ...)`` takes Keras's call
    signature. Without ``key`` the value is used as key and ``backward_input``
    returns two gradients, the value's being the sum of its two uses.

    Per-call options (keywords of :meth:`forward`, as in Keras's call):
    ``attention_mask`` ``(batch, Tq, Tv)``, ``query_mask`` ``(batch, Tq)``,
    ``value_mask`` and ``key_mask`` ``(batch, Tv)`` (``True`` or nonzero where
    attention is allowed; they are combined with AND, and a smaller
    ``attention_mask`` gets axes inserted before its last ``2 * len(attention_axes)``
    as Keras does), ``use_causal_mask`` (query position :math:`i` sees key
    positions :math:`j \le i`) and ``return_attention_scores`` (then two outputs,
    and ``backward_input`` takes ``[dy, d_scores]``, either may be ``None``).
    Keras 3 takes the query mask from the query tensor's own mask and
    ignores the ``query_mask`` argument; here the argument is used.

    Parameters
    ----------
    num_heads : int
        Number of attention heads :math:`H`.
    key_dim : int
        Size :math:`d_k` of each head's query and key.
    value_dim : int, optional
        Size :math:`d_v` of each head's value; ``key_dim`` by default.
    dropout : float, default 0.0
        Dropout rate on the attention weights in training (a seeded generator).
    use_bias : bool, default True
        Whether the four projections have biases.
    output_shape : int or tuple of int, optional
        The output's feature shape; the query's last size by default.
    attention_axes : int or tuple of int, optional
        Input axes attended over (``None``: every axis between the batch and
        the features, the sequence case).
    kernel_initializer : str or Initializer, default "glorot_uniform"
        Initialiser of the four kernels (fans as Keras computes them).
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of the biases.
    name, dtype, seed, trainable
        As for every :class:`Layer`; ``seed`` also seeds the dropout.

    Attributes
    ----------
    params : dict
        In Keras's ``get_weights()`` order: ``query_kernel`` ``(dim_q, H, d_k)``,
        ``query_bias`` ``(H, d_k)``, ``key_kernel`` ``(dim_k, H, d_k)``,
        ``key_bias``, ``value_kernel`` ``(dim_v, H, d_v)``, ``value_bias``
        ``(H, d_v)``, ``output_kernel`` ``(H, d_v, *output_shape)``,
        ``output_bias`` ``output_shape`` (no biases with ``use_bias=False``).

    Raises
    ------
    ValueError
        At construction, naming the argument (``num_heads``, ``key_dim``,
        ``value_dim``: positive ints; ``dropout`` in [0, 1); ``output_shape``,
        ``attention_axes``). On inputs: not a list of 2 or 3 arrays, ranks
        below 3 or unequal, ``key`` and ``value`` differing other than in the
        last axis, different batch sizes, a mask that does not broadcast to the
        scores (shapes shown).
    TypeError
        A mask that is not boolean or numeric.

    Notes
    -----
    For one head :math:`h` (sequence case; :math:`\odot` element-wise),

    .. math::

        Q_h = X_q W^q_h + b^q_h,\quad K_h = X_k W^k_h + b^k_h,\quad
        V_h = X_v W^v_h + b^v_h,

    .. math::

        S_h = \frac{Q_h K_h^T}{\sqrt{d_k}},\quad
        P_h = \operatorname{softmax}_\text{rows}(S_h \text{ masked}),\quad
        O_h = (D_h \odot P_h) V_h,\quad
        Y = \sum_h O_h W^o_h + b^o,

    where masked scores are replaced by :math:`-10^9` and their weights set to
    0 (a row with every key masked has :math:`P = 0`), and :math:`D_h` holds the
    dropout scales (0 or :math:`1/(1-\text{rate})`; all ones in inference).
    Backward, with :math:`G = \partial z/\partial Y`:

    .. math::

        dO_h = G\,{W^o_h}^T,\quad dP_h = D_h \odot (dO_h V_h^T) + G_P,\quad
        dV_h = (D_h \odot P_h)^T dO_h,

    .. math::

        dS_h = P_h \odot \big(dP_h - \operatorname{rowsum}(dP_h \odot P_h)\big),\quad
        dQ_h = \frac{dS_h K_h}{\sqrt{d_k}},\quad dK_h = \frac{dS_h^T Q_h}{\sqrt{d_k}},

    .. math::

        \frac{\partial z}{\partial X_q} = \sum_h dQ_h {W^q_h}^T,\quad
        \frac{\partial z}{\partial W^q_h} = X_q^T dQ_h,\quad
        \frac{\partial z}{\partial b^q_h} = \mathbf 1^T dQ_h,

    and likewise for the key and value projections; :math:`G_P` is the upstream
    gradient of the returned weights (0 when they are not returned). The
    softmax rule follows from :math:`\partial p_j/\partial s_k = p_j(\delta_{jk}
    - p_k)`: :math:`ds_k = \sum_j dp_j\,p_j(\delta_{jk} - p_k) = p_k(dp_k -
    \sum_j dp_j p_j)`. A masked score has :math:`p_k = 0`, hence no gradient.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> mha = ln.MultiHeadAttention(num_heads=2, key_dim=4, seed=0)
    >>> q, v = np.ones((3, 5, 8)), np.ones((3, 7, 6))
    >>> y, scores = mha(q, v, return_attention_scores=True)
    >>> y.shape, scores.shape
    ((3, 5, 8), (3, 2, 5, 7))
    >>> [w.shape for w in mha.get_weights()][:2]
    [(8, 2, 4), (2, 4)]
    >>> dq, dv = mha.backward_input([np.ones_like(y), None])  # key = value: two gradients
    >>> dq.shape, dv.shape
    ((3, 5, 8), (3, 7, 6))
    """

    _default_name = "multi_head_attention"

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        self.num_heads = check_positive_int(num_heads, "num_heads", o)
        self.key_dim = check_positive_int(key_dim, "key_dim", o)
        self.value_dim = (
            self.key_dim if value_dim is None else check_positive_int(value_dim, "value_dim", o)
        )
        self.dropout = check_number(dropout, "dropout", o, low=0, high=1, high_open=True)
        self.use_bias = check_bool(use_bias, "use_bias", o)
        if output_shape is None:
            self.output_shape_: tuple[int, ...] | None = None
        elif is_int(output_shape) and output_shape > 0:  # type: ignore[operator]
            self.output_shape_ = (int(output_shape),)  # type: ignore[arg-type]
        elif (
            isinstance(output_shape, list | tuple)
            and output_shape
            and all(is_int(d) and d > 0 for d in output_shape)
        ):
            self.output_shape_ = tuple(int(d) for d in output_shape)
        else:
            raise ValueError(
                f"{o}: invalid value for `output_shape`: expected None, a positive int or a "
                f"tuple of positive ints, received {output_shape!r}."
            )
        if attention_axes is None:
            self.attention_axes: tuple[int, ...] | None = None
        elif is_int(attention_axes):
            self.attention_axes = (int(attention_axes),)  # type: ignore[arg-type]
        elif (
            isinstance(attention_axes, list | tuple)
            and attention_axes
            and all(is_int(a) for a in attention_axes)
        ):
            self.attention_axes = tuple(int(a) for a in attention_axes)
        else:
            raise ValueError(
                f"{o}: invalid value for `attention_axes`: expected None, an int or a tuple "
                f"of ints, received {attention_axes!r}."
            )
        initializers.get(kernel_initializer, o, "kernel_initializer")
        initializers.get(bias_initializer, o, "bias_initializer")
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self._rng: np.random.Generator | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": None if self.output_shape_ is None else list(self.output_shape_),
            "attention_axes": None if self.attention_axes is None else list(self.attention_axes),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            **super().get_config(),
        }

    # ------------------------------------------------------------ Keras's call
    def split_call_arguments(
        self,
        query: Any,
        value: Any = None,
        key: Any = None,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        """``layer(query, value, key=None, ..., training=None)``: Keras's call.

        On arrays it is ``forward([query, value] or [query, value, key],
        training=bool(training), **options)`` with the masks and flags as
        options; on symbolic tensors it records a graph node. ``layer([query,
        value])`` (a list first) is accepted too.
        """
        if value is None and isinstance(query, list | tuple):
            inputs = list(query)
        else:
            inputs = [query, value] if key is None else [query, value, key]
        options: dict[str, Any] = {
            k: v
            for k, v in (
                ("query_mask", query_mask),
                ("value_mask", value_mask),
                ("key_mask", key_mask),
                ("attention_mask", attention_mask),
            )
            if v is not None
        }
        if use_causal_mask:
            options["use_causal_mask"] = True
        if return_attention_scores:
            options["return_attention_scores"] = True
        return inputs, options

    def symbolic_output(self, input_shape: Any, options: dict[str, Any]) -> tuple[Any, Any]:
        out, dtype = super().symbolic_output(input_shape, options)
        if options.get("return_attention_scores"):
            shapes = self._normalize_shape(input_shape)
            return [out, self.attention_scores_shape(shapes)], [dtype, dtype]
        return out, dtype

    # ------------------------------------------------------------------ shapes
    def _attention_axes(self, rank: int) -> tuple[int, ...]:
        """The attended axes of an input of ``rank`` dims, non-negative and sorted."""
        if self.attention_axes is None:
            return tuple(range(1, rank - 1))
        return tuple(sorted({a % rank for a in self.attention_axes}))

    def check_input_shape(self, shape):
        if not is_shape_list(shape) or len(shape) not in (2, 3):
            got = f"{len(shape)} inputs" if is_shape_list(shape) else "one input"
            raise ValueError(
                f"{self.owner}: expected the inputs [query, value] or [query, value, key], "
                f"got {got}."
            )
        Layer.check_input_shape(self, shape)
        q, v = shape[0], shape[1]
        k = shape[2] if len(shape) == 3 else v
        text = ", ".join(shape_str(s) for s in shape)
        if len(q) < 3 or len(v) < 3 or len(k) < 3 or not len(q) == len(v) == len(k):
            raise ValueError(
                f"{self.owner}: expected query, value and key of equal rank, at least 3 "
                f"(batch, ..., features), got shapes {text}."
            )
        if tuple(v[:-1]) != tuple(k[:-1]):
            raise ValueError(
                f"{self.owner}: expected value and key to match except in the last axis, "
                f"got shapes {shape_str(v)} and {shape_str(k)}."
            )
        if q[0] is not None and v[0] is not None and q[0] != v[0]:
            raise ValueError(
                f"{self.owner}: expected query and value with the same batch size, got "
                f"shapes {shape_str(q)} and {shape_str(v)}."
            )
        rank = len(q)
        if self.attention_axes is not None:
            for a in self.attention_axes:
                if not (1 <= a % rank <= rank - 2 and -rank <= a < rank):
                    raise ValueError(
                        f"{self.owner}: `attention_axes` {self.attention_axes!r} must name "
                        f"axes between the batch and the features of inputs of shape "
                        f"{shape_str(q)}."
                    )
        attended = self._attention_axes(rank)
        for a in range(1, rank - 1):
            if a not in attended and q[a] != v[a]:
                raise ValueError(
                    f"{self.owner}: expected query and value to match on the axes not "
                    f"attended over ({a}), got shapes {shape_str(q)} and {shape_str(v)}."
                )
        if self.built:
            built = self.input_shape
            bk = built[2] if len(built) == 3 else built[1]
            if (q[-1], v[-1], k[-1]) != (built[0][-1], built[1][-1], bk[-1]) or len(q) != len(
                built[0]
            ):
                raise ValueError(
                    f"{self.owner}: built for inputs of shapes "
                    f"{', '.join(shape_str(s) for s in built)}, got shapes {text}."
                )

    def compute_output_shape(self, input_shape):
        q = tuple(input_shape[0])
        return q[:-1] + (self.output_shape_ or (q[-1],))

    def attention_scores_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        """Shape of the weights returned with ``return_attention_scores=True``.

        ``(batch, num_heads, Tq, Tv)`` in the sequence case.
        """
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        attended = self._attention_axes(len(q))
        batch = [q[i] for i in range(len(q) - 1) if i not in attended]
        return (
            batch[0],
            *batch[1:],
            self.num_heads,
            *(q[i] for i in attended),
            *(v[i] for i in attended),
        )

    def build_params(self, input_shape, rng):
        q, v = input_shape[0], input_shape[1]
        k = input_shape[2] if len(input_shape) == 3 else v
        h, dk, dv = self.num_heads, self.key_dim, self.value_dim
        out = self.output_shape_ or (q[-1],)
        kinit = initializers.get(self.kernel_initializer, self.owner, "kernel_initializer")
        binit = initializers.get(self.bias_initializer, self.owner, "bias_initializer")

        def kernel(shape: tuple[int, ...]) -> np.ndarray:
            # Keras's fans for a kernel of rank > 2: the leading axes are a receptive field.
            field = math.prod(shape[:-2])
            return kinit(shape, shape[-2] * field, shape[-1] * field, rng, self.dtype)

        def bias(shape: tuple[int, ...]) -> np.ndarray:
            n = math.prod(shape)
            return binit(shape, n, n, rng, self.dtype)

        for part, dim, size in (("query", q[-1], dk), ("key", k[-1], dk), ("value", v[-1], dv)):
            self.params[f"{part}_kernel"] = kernel((dim, h, size))
            if self.use_bias:
                self.params[f"{part}_bias"] = bias((h, size))
        self.params["output_kernel"] = kernel((h, dv, *out))
        if self.use_bias:
            self.params["output_bias"] = bias(tuple(out))
        self._rng = rng

    # ------------------------------------------------------------ computation
    def _equations(self, rank: int) -> tuple[str, str, str, int]:
        """Einsum strings for the projected tensors ``(batch, ..., heads, size)``.

        Returns the query's, the key's and the scores' index strings and the
        number of attended axes.
        """
        letters = string.ascii_lowercase
        attended = self._attention_axes(rank - 1)  # input axes = projected axes
        target = letters[:rank]
        source = list(target)
        extra = iter(letters[rank:])
        for a in attended:
            source[a] = next(extra)
        batch = [i for i in range(rank - 1) if i not in attended]
        product = (
            "".join(target[i] for i in batch)
            + "".join(target[i] for i in attended)
            + "".join(source[i] for i in attended)
        )
        return target, "".join(source), product, len(attended)

    def _mask(
        self,
        scores_shape: tuple[int, ...],
        n_att: int,
        q: np.ndarray,
        v: np.ndarray,
        query_mask: Any,
        value_mask: Any,
        key_mask: Any,
        attention_mask: Any,
        use_causal_mask: bool,
    ) -> np.ndarray | None:
        """The combined boolean mask, broadcast to the scores' shape (Keras's rules)."""
        o = self.owner
        mask = None

        def both(a: np.ndarray | None, b: np.ndarray) -> np.ndarray:
            return b if a is None else np.logical_and(a, b)

        qm = _as_mask(query_mask, o, "query_mask")
        if qm is not None:
            mask = qm[..., None]
        for arg, m in (("value_mask", value_mask), ("key_mask", key_mask)):
            mm = _as_mask(m, o, arg)
            if mm is not None:
                mask = both(mask, mm[..., None, :])
        if use_causal_mask:
            mask = both(mask, _causal(q.shape[1], v.shape[1]))
        am = _as_mask(attention_mask, o, "attention_mask")
        if am is not None:
            mask = both(am, mask) if mask is not None else am
        if mask is None:
            return None
        try:
            if mask.ndim > len(scores_shape):
                raise ValueError
            while mask.ndim < len(scores_shape):
                mask = np.expand_dims(mask, axis=-2 * n_att - 1)
            return np.broadcast_to(mask, scores_shape)
        except ValueError:
            raise ValueError(
                f"{o}: the masks (combined shape {shape_str(mask.shape)}) do not broadcast to "
                f"the attention scores of shape {shape_str(scores_shape)}; expected e.g. "
                f"attention_mask (batch, Tq, Tv), query_mask (batch, Tq), value_mask and "
                f"key_mask (batch, Tv)."
            ) from None

    def compute_forward(  # type: ignore[override]
        self,
        x,
        training,
        *,
        query_mask: Any = None,
        value_mask: Any = None,
        key_mask: Any = None,
        attention_mask: Any = None,
        use_causal_mask: bool = False,
        return_attention_scores: bool = False,
    ):
        q, v = x[0], x[1]
        k = x[2] if len(x) == 3 else v
        p = self.params
        qp = self._project(q, "query")
        kp = self._project(k, "key")
        vp = self._project(v, "value")
        qs = qp
        qs *= self.dtype.type(1.0 / math.sqrt(self.key_dim))  # the projection is not kept
        tgt, src, prod, n_att = self._equations(qp.ndim)
        fast = self._heads_matmul(qp.ndim)
        if fast:  # (batch, heads, Tq, Tv) = Q K^T as batched matrix products (BLAS)
            scores = _bmm(_heads_first(qs), _heads_first(kp).swapaxes(-1, -2))
        else:
            scores = np.einsum(f"{src},{tgt}->{prod}", kp, qs)
        mask = self._mask(
            scores.shape, n_att, q, v, query_mask, value_mask, key_mask, attention_mask,
            use_causal_mask,
        )  # fmt: skip
        if mask is not None:
            scores = np.where(mask, scores, -_LARGE_NEGATIVE)
        probs = _softmax(scores, n_att)
        if mask is not None:
            probs = np.where(mask, probs, 0).astype(self.dtype, copy=False)
        drop = None
        if training and self.dropout > 0:
            drop = _dropout_mask(self._rng, self.dropout, probs.shape, self.dtype)
        weights = probs if drop is None else probs * drop
        if fast:
            heads = _bmm_heads_last(weights, _heads_first(vp))
        else:
            heads = np.einsum(f"{prod},{src}->{tgt}", weights, vp)
        kernel = p["output_kernel"]
        flat = kernel.reshape(math.prod(kernel.shape[:2]), math.prod(kernel.shape[2:]))
        y = _dot(heads, 2, flat, kernel.shape[2:])
        if self.use_bias:
            y += p["output_bias"]
        y = np.asarray(y, dtype=self.dtype)
        saved = MultiHeadAttentionSaved(
            q, k, v, len(x), qs, kp, vp, probs, drop, heads, bool(return_attention_scores)
        )
        if return_attention_scores:
            return [y, np.array(probs)], saved
        return y, saved

    def _project(self, x: np.ndarray, part: str) -> np.ndarray:
        kernel = self.params[f"{part}_kernel"]
        flat = kernel.reshape(kernel.shape[0], math.prod(kernel.shape[1:]))  # (a 0 dim too)
        out = _dot(x, 1, flat, kernel.shape[1:])
        if self.use_bias:
            out += self.params[f"{part}_bias"]
        return np.asarray(out, dtype=self.dtype)

    def _backward(self, dy: Any, saved: MultiHeadAttentionSaved) -> dict[str, np.ndarray]:
        """Every gradient of one call: ``dq``, ``dk``, ``dv`` (projected) and the output's."""
        g, g_probs = (dy[0], dy[1]) if saved.scores_output else (dy, None)
        kernel = self.params["output_kernel"]
        n_out = kernel.ndim - 2
        tgt, src, prod, n_att = self._equations(saved.qs.ndim)
        d_heads = _dot(
            g,
            n_out,
            kernel.reshape(math.prod(kernel.shape[:2]), math.prod(kernel.shape[2:])).T,
            kernel.shape[:2],
        )
        weights = saved.probs if saved.drop is None else saved.probs * saved.drop
        fast = self._heads_matmul(saved.qs.ndim)
        if fast:
            dh = _heads_first(d_heads)
            d_weights = _bmm(dh, _heads_first(saved.vp).swapaxes(-1, -2))
            d_vp = _bmm_heads_last(weights.swapaxes(-1, -2), dh)
        else:
            d_weights = np.einsum(f"{tgt},{src}->{prod}", d_heads, saved.vp)
            d_vp = np.einsum(f"{prod},{tgt}->{src}", weights, d_heads)
        d_probs = d_weights if saved.drop is None else d_weights * saved.drop
        if g_probs is not None:
            d_probs = d_probs + g_probs
        d_scores = _softmax_backward(saved.probs, d_probs, n_att)
        scale = self.dtype.type(1.0 / math.sqrt(self.key_dim))
        if fast:
            d_qp = _bmm_heads_last(d_scores, _heads_first(saved.kp))
            d_qp *= scale
            d_kp = _bmm_heads_last(d_scores.swapaxes(-1, -2), _heads_first(saved.qs))
        else:
            d_qp = np.einsum(f"{prod},{src}->{tgt}", d_scores, saved.kp) * scale
            d_kp = np.einsum(f"{prod},{tgt}->{src}", d_scores, saved.qs)
        return {"query": d_qp, "key": d_kp, "value": d_vp, "g": g}

    def _heads_matmul(self, rank: int) -> bool:
        """Whether the projected tensors are ``(batch, T, heads, size)`` attended over T.

        Then the contractions are batched matrix products over (batch, heads),
        which NumPy hands to BLAS; other layouts go through ``einsum``.
        """
        return rank == 4 and self._attention_axes(3) == (1,)

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        # One pass through the attention gives the input and the parameter gradients.
        d = self._backward(self._cast_dy(dy), saved)
        grads = self._params_from(d, saved) if need_params and self.params else {}
        return (self._inputs_from(d, saved) if need_input else None), grads

    def compute_backward_input(self, dy, saved):
        return self._inputs_from(self._backward(dy, saved), saved)

    def compute_backward_params(self, dy, saved):
        return self._params_from(self._backward(dy, saved), saved)

    def _inputs_from(self, d: dict[str, np.ndarray], saved: MultiHeadAttentionSaved) -> Any:
        dx = {}
        for part in ("query", "value", "key"):
            kernel = self.params[f"{part}_kernel"]
            dx[part] = _dot(d[part], 2, _kernel_t(kernel), kernel.shape[:1])
        if saved.n_inputs == 2:
            return [dx["query"], dx["value"] + dx["key"]]
        return [dx["query"], dx["value"], dx["key"]]

    def _params_from(
        self, d: dict[str, np.ndarray], saved: MultiHeadAttentionSaved
    ) -> dict[str, np.ndarray]:
        grads: dict[str, np.ndarray] = {}
        inputs = {"query": saved.query, "key": saved.key, "value": saved.value}
        for part in ("query", "key", "value"):
            x, dp = inputs[part], d[part]
            lead = list(range(x.ndim - 1))
            grads[f"{part}_kernel"] = _lead_dot(x, dp, len(lead))
            if self.use_bias:
                grads[f"{part}_bias"] = dp.sum(axis=tuple(lead))
        g = d["g"]
        kernel = self.params["output_kernel"]
        lead = list(range(saved.heads.ndim - 2))
        grads["output_kernel"] = _lead_dot(saved.heads, g, len(lead)).reshape(kernel.shape)
        if self.use_bias:
            grads["output_bias"] = g.sum(axis=tuple(lead))
        return {k: grads[k] for k in self.params}


# =====================================================================================
class AttentionSaved(NamedTuple):
    """What :class:`Attention` and :class:`AdditiveAttention` keep for backward."""

    query: np.ndarray  #: the query
    key: np.ndarray  #: the key (the value when none was given)
    value: np.ndarray  #: the value
    n_inputs: int  #: 2 (key is value) or 3
    tanh: np.ndarray | None  #: :math:`\tanh(a(q_i + k_j))` (``"concat"`` and additive scores)
    probs: np.ndarray  #: the attention weights after the softmax
    drop: np.ndarray | None  #: the dropout scales, ``None`` without dropout
    query_mask: np.ndarray | None  #: ``(batch, Tq, 1)`` where outputs are kept
    scores_output: bool  #: whether the weights were returned as a second output


class Attention(Layer):
    r"""Dot-product attention (Luong-style), Keras's ``Attention`` layer.

    .. rubric:: Input and output shape

    ``[query, value]`` or ``[query, value, key]`` with query ``(batch, Tq, dim)``,
    value ``(batch, Tv, dim_v)`` and key ``(batch, Tv, dim)``; output
    ``(batch, Tq, dim_v)``, and with ``return_attention_scores=True`` also the
    weights ``(batch, Tq, Tv)``. Options of :meth:`forward` (as in Keras's
    call): ``mask=[query_mask, value_mask]`` (each ``(batch, T)`` or ``None``),
    ``return_attention_scores`` and ``use_causal_mask``.

    Parameters
    ----------
    use_scale : bool, default False
        Learn a scalar ``scale`` multiplying the scores (initialised to 1).
    score_mode : {"dot", "concat"}, default "dot"
        ``"dot"``: :math:`s_{ij} = q_i\cdot k_j`; ``"concat"``:
        :math:`s_{ij} = c\sum_d \tanh(a(q_i + k_j))_d` with a learned scalar
        ``concat_score_weight`` :math:`c` (and ``scale`` :math:`a`, else 1).
    dropout : float, default 0.0
        Dropout rate on the attention weights in training.
    name, dtype, seed, trainable
        As for every :class:`Layer`; ``seed`` also seeds the dropout.

    Attributes
    ----------
    params : dict
        ``"scale"`` (shape ``()``, with ``use_scale``) then
        ``"concat_score_weight"`` (shape ``()``, with ``"concat"``), Keras's order.

    Raises
    ------
    ValueError
        ``invalid value for `score_mode`: expected 'dot' or 'concat'``; the
        bools and ``dropout``; inputs that are not a list of 2 or 3 arrays of
        rank 3 with matching batch, key/value lengths and (dot scores) query and
        key features; a ``mask`` that is not a list of 2 or 3 entries.

    Notes
    -----
    With scores :math:`S` (above), the combined mask :math:`M` (value mask
    and, with ``use_causal_mask``, :math:`j \le i`), :math:`\tilde S = S -
    10^9\,[\lnot M]` (Keras's rule: masked scores are lowered, not replaced),
    :math:`P = \operatorname{softmax}_\text{rows}(\tilde S)`, dropout scales
    :math:`D` and the query mask :math:`m_q`,

    .. math::

        Y = m_q \odot \big((D\odot P) V\big),\qquad
        \text{weights returned} = D\odot P.

    Backward, with :math:`G = m_q \odot \partial z/\partial Y` and
    :math:`G_W` the gradient of the returned weights,

    .. math::

        dV = (D\odot P)^T G,\quad dP = D \odot (G V^T + G_W),\quad
        dS = P\odot\big(dP - \operatorname{rowsum}(dP\odot P)\big),

    .. math::

        \text{dot: } dQ = a\,dS\,K,\quad dK = a\,dS^T Q,\quad
        \frac{\partial z}{\partial a} = \textstyle\sum dS\odot QK^T;

    .. math::

        \text{concat: } T = \tanh(a(q_i + k_j)),\
        dU_{ijd} = c\,dS_{ij}(1 - T_{ijd}^2),\
        dq_i = a\textstyle\sum_j dU_{ij},\ dk_j = a\sum_i dU_{ij},

    :math:`\partial z/\partial a = \sum dU \odot (q_i + k_j)` and
    :math:`\partial z/\partial c = \sum_{ij} dS_{ij}\sum_d T_{ijd}`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> att = ln.Attention(dtype="float64")
    >>> q = np.array([[[1.0, 0.0]]]); v = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    >>> y, w = att.forward([q, v], return_attention_scores=True)
    >>> w.round(3)
    array([[[0.731, 0.269]]])
    """

    _default_name = "attention"

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        self.use_scale = check_bool(use_scale, "use_scale", o)
        if score_mode not in ("dot", "concat"):
            raise ValueError(
                f"{o}: invalid value for `score_mode`: expected 'dot' or 'concat', "
                f"received {score_mode!r}."
            )
        self.score_mode = score_mode
        self.dropout = check_number(dropout, "dropout", o, low=0, high=1, high_open=True)
        self._rng: np.random.Generator | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            **super().get_config(),
        }

    def split_call_arguments(
        self,
        inputs: Any,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        """``layer([query, value(, key)], mask=None, ..., training=None)``: Keras's call.

        On arrays it is ``forward(inputs, training=bool(training), **options)``;
        on symbolic tensors it records a graph node.
        """
        options: dict[str, Any] = {}
        if mask is not None:
            options["mask"] = mask
        if return_attention_scores:
            options["return_attention_scores"] = True
        if use_causal_mask:
            options["use_causal_mask"] = True
        return inputs, options

    def symbolic_output(self, input_shape: Any, options: dict[str, Any]) -> tuple[Any, Any]:
        out, dtype = super().symbolic_output(input_shape, options)
        if options.get("return_attention_scores"):
            shapes = self._normalize_shape(input_shape)
            return [out, self.attention_scores_shape(shapes)], [dtype, dtype]
        return out, dtype

    def check_input_shape(self, shape):
        if not is_shape_list(shape) or len(shape) not in (2, 3):
            got = f"{len(shape)} inputs" if is_shape_list(shape) else "one input"
            raise ValueError(
                f"{self.owner}: expected the inputs [query, value] or [query, value, key], "
                f"got {got}."
            )
        Layer.check_input_shape(self, shape)
        q, v = shape[0], shape[1]
        k = shape[2] if len(shape) == 3 else v
        text = ", ".join(shape_str(s) for s in shape)
        if not len(q) == len(v) == len(k) == 3:
            raise ValueError(
                f"{self.owner}: expected query, value and key of shape (batch, steps, "
                f"features), got shapes {text}."
            )
        if len({s[0] for s in (q, v, k)} - {None}) > 1 or (
            k[1] is not None and v[1] is not None and k[1] != v[1]
        ):
            raise ValueError(
                f"{self.owner}: expected inputs with the same batch size and key and value "
                f"with the same number of steps, got shapes {text}."
            )
        if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
            raise ValueError(
                f"{self.owner}: expected query and key with the same number of features, got "
                f"shapes {shape_str(q)} and {shape_str(k)}."
            )
        if self.built and self._scale_size() not in (None, q[-1]):
            raise ValueError(
                f"{self.owner}: built for queries with {self._scale_size()} features, got "
                f"shape {shape_str(q)}."
            )

    def _scale_size(self) -> int | None:
        return None

    def compute_output_shape(self, input_shape):
        q, v = input_shape[0], input_shape[1]
        return (*q[:-1], v[-1])

    def attention_scores_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        """Shape ``(batch, Tq, Tv)`` of the weights returned with ``return_attention_scores``."""
        q, v = input_shape[0], input_shape[1]
        return (*q[:-1], v[1])

    def build_params(self, input_shape, rng):
        if self.use_scale:
            self.params["scale"] = np.ones((), dtype=self.dtype)
        if self.score_mode == "concat":
            self.params["concat_score_weight"] = np.ones((), dtype=self.dtype)
        self._rng = rng

    # scores ------------------------------------------------------------------
    def _scores(self, q: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        p = self.params
        if self.score_mode == "dot":
            s = threads.matmul(q, k.transpose(0, 2, 1))
            return (s * p["scale"] if self.use_scale else s), None
        a = p["scale"] if self.use_scale else 1.0
        t = np.tanh(a * (q[:, :, None, :] + k[:, None, :, :]))
        return p["concat_score_weight"] * t.sum(axis=-1), t

    def _scores_backward(
        self, ds: np.ndarray, saved: AttentionSaved
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Gradients of the query, the key and the parameters from :math:`dS`."""
        p, q, k = self.params, saved.query, saved.key
        if self.score_mode == "dot":
            a = p["scale"] if self.use_scale else 1.0
            grads = {}
            if self.use_scale:
                grads["scale"] = np.sum(ds * threads.matmul(q, k.transpose(0, 2, 1))).astype(
                    self.dtype
                )
            return (
                a * threads.matmul(ds, k),
                a * threads.matmul(ds.transpose(0, 2, 1), q),
                grads,
            )
        a = p["scale"] if self.use_scale else 1.0
        c = p["concat_score_weight"]
        t = cast(np.ndarray, saved.tanh)  # kept by the concat and additive scores
        du = c * ds[..., None] * (1 - t * t)
        grads = {}
        if self.use_scale:
            grads["scale"] = np.sum(du * (q[:, :, None, :] + k[:, None, :, :])).astype(self.dtype)
        grads["concat_score_weight"] = np.sum(ds * t.sum(axis=-1)).astype(self.dtype)
        return a * du.sum(axis=2), a * du.sum(axis=1), grads

    # ---------------------------------------------------------------------------
    def compute_forward(  # type: ignore[override]
        self,
        x,
        training,
        *,
        mask: Any = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ):
        q, v = x[0], x[1]
        k = x[2] if len(x) == 3 else v
        if mask is not None and (not isinstance(mask, list | tuple) or len(mask) not in (2, 3)):
            raise ValueError(
                f"{self.owner}: expected `mask` to be a list [query_mask, value_mask], "
                f"received {mask!r}."
            )
        q_mask = _as_mask(mask[0], self.owner, "mask[0]") if mask else None
        v_mask = _as_mask(mask[1], self.owner, "mask[1]") if mask else None
        scores, t = self._scores(q, k)
        keep = None
        if v_mask is not None:
            keep = v_mask[:, None, :]
        if use_causal_mask:
            causal = _causal(scores.shape[-2], scores.shape[-1])
            keep = causal if keep is None else np.logical_and(keep, causal)
        if keep is not None:
            scores = np.where(keep, scores, scores - _LARGE_NEGATIVE)
        probs = _softmax(scores, 1).astype(self.dtype, copy=False)
        drop = None
        if training and self.dropout > 0:
            drop = _dropout_mask(self._rng, self.dropout, probs.shape, self.dtype)
        weights = probs if drop is None else probs * drop
        y = threads.matmul(weights, v)
        qm = None
        if q_mask is not None:
            qm = np.broadcast_to(q_mask[..., None], y.shape)
            y = np.where(qm, y, 0).astype(self.dtype, copy=False)
        saved = AttentionSaved(q, k, v, len(x), t, probs, drop, qm, bool(return_attention_scores))
        y = np.asarray(y, dtype=self.dtype)
        if return_attention_scores:
            return [y, np.array(weights)], saved
        return y, saved

    def _backward(self, dy: Any, saved: AttentionSaved) -> tuple[Any, ...]:
        g, g_w = (dy[0], dy[1]) if saved.scores_output else (dy, None)
        if saved.query_mask is not None:
            g = np.where(saved.query_mask, g, 0)
        weights = saved.probs if saved.drop is None else saved.probs * saved.drop
        dv = threads.matmul(weights.transpose(0, 2, 1), g)
        dw = threads.matmul(g, saved.value.transpose(0, 2, 1))
        if g_w is not None:
            dw = dw + g_w
        dp = dw if saved.drop is None else dw * saved.drop
        ds = _softmax_backward(saved.probs, dp, 1)
        dq, dk, grads = self._scores_backward(ds, saved)
        return dq, dk, dv, grads

    def compute_backward_input(self, dy, saved):
        dq, dk, dv, _ = self._backward(dy, saved)
        if saved.n_inputs == 2:
            return [dq, dv + dk]
        return [dq, dv, dk]

    def compute_backward_params(self, dy, saved):
        return self._backward(dy, saved)[3]

    def compute_mask(self, inputs: Any, mask: Any = None) -> np.ndarray | None:
        """The output mask (Keras's rule): the query mask, or ``None``.

        Parameters
        ----------
        inputs : list of ndarray
            ``[query, value]`` or ``[query, value, key]``.
        mask : list, optional
            ``[query_mask, value_mask]``.

        Returns
        -------
        ndarray of bool or None
        """
        if mask is None or mask[0] is None:
            return None
        return np.asarray(mask[0], dtype=bool)


class AdditiveAttention(Attention):
    r"""Additive attention (Bahdanau-style), Keras's ``AdditiveAttention`` layer.

    .. rubric:: Input and output shape

    As :class:`Attention` (query and key with the same number of features).

    Parameters
    ----------
    use_scale : bool, default True
        Learn a vector ``scale`` :math:`w` of the query's feature size
        (Glorot-uniform initialised) weighting the features of the scores;
        without it :math:`w = \mathbf 1`.
    dropout : float, default 0.0
        Dropout rate on the attention weights in training.
    name, dtype, seed, trainable
        As for every :class:`Layer`; ``seed`` seeds ``scale`` and the dropout.

    Attributes
    ----------
    params : dict
        ``"scale"`` of shape ``(dim,)`` with ``use_scale``.

    Raises
    ------
    ValueError
        As :class:`Attention`.

    Notes
    -----
    .. math::

        S_{ij} = \sum_d w_d \tanh(q_{id} + k_{jd}),

    then as :class:`Attention`. With :math:`T = \tanh(q_i + k_j)` and
    :math:`dU_{ijd} = dS_{ij}\,w_d\,(1 - T_{ijd}^2)`,

    .. math::

        \frac{\partial z}{\partial q_i} = \sum_j dU_{ij},\quad
        \frac{\partial z}{\partial k_j} = \sum_i dU_{ij},\quad
        \frac{\partial z}{\partial w_d} = \sum_{b,i,j} dS_{ij} T_{ijd}.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> att = ln.AdditiveAttention(seed=0)
    >>> y = att([np.ones((2, 3, 4)), np.ones((2, 5, 4))])
    >>> y.shape, att.params["scale"].shape
    ((2, 3, 4), (4,))
    """

    _default_name = "additive_attention"

    def __init__(
        self,
        use_scale: bool = True,
        dropout: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(
            use_scale=use_scale, dropout=dropout, name=name, dtype=dtype, seed=seed,
            trainable=trainable,
        )  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("score_mode")
        return cfg

    def _scale_size(self) -> int | None:
        return int(self.params["scale"].shape[0]) if "scale" in self.params else None

    def build_params(self, input_shape, rng):
        dim = input_shape[0][-1]
        if self.use_scale:
            init = initializers.get("glorot_uniform", self.owner, "scale")
            self.params["scale"] = init((dim,), dim, dim, rng, self.dtype)
        self._rng = rng

    def _scores(self, q, k):
        t = np.tanh(q[:, :, None, :] + k[:, None, :, :])
        w = self.params["scale"] if self.use_scale else 1.0
        return np.sum(w * t, axis=-1), t

    def _scores_backward(self, ds, saved):
        t = cast(np.ndarray, saved.tanh)
        w = self.params["scale"] if self.use_scale else 1.0
        du = ds[..., None] * w * (1 - t * t)
        grads = {}
        if self.use_scale:
            grads["scale"] = np.einsum("bij,bijd->d", ds, t).astype(self.dtype)
        return du.sum(axis=2), du.sum(axis=1), grads
