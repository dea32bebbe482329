r"""Layers for sequences: ``Embedding``, ``Masking``, ``RepeatVector``, ``Permute``,
``Cropping1D`` and ``TimeDistributed``."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import initializers
from .._validation import check_bool, check_positive_int, int_tuple, is_int, shape_str
from .base import Layer


class EmbeddingSaved(NamedTuple):
    """An embedding keeps the ids it looked up."""

    ids: np.ndarray


class Embedding(Layer):
    r"""A table lookup: token ids to rows of a trainable matrix (Keras's ``Embedding``).

    .. rubric:: Input and output shape

    Integer ids of any shape ``(batch, ...)``; output ``(batch, ..., output_dim)``.

    Parameters
    ----------
    input_dim : int
        Size :math:`V` of the vocabulary: ids lie in ``[0, V)``.
    output_dim : int
        Size :math:`D` of each embedding.
    embeddings_initializer : str, default "uniform"
        Initialiser of the table (Keras's ``"uniform"``: :math:`U(-0.05, 0.05)`).
    mask_zero : bool, default False
        Id 0 is padding: the output carries the mask ``ids != 0`` to the layers
        that use one (recurrent layers, attention, pooling, losses).
    embeddings_regularizer, embeddings_constraint, input_length, lora_rank
        Accepted for Keras compatibility (``None`` only).

    Raises
    ------
    ValueError
        Invalid sizes; at call time ids below 0 or not below ``input_dim``.
        Float ids that are not whole numbers.
    TypeError
        Ids that are neither integers nor floats (floats holding whole numbers are
        cast to integers, as Keras casts them, so a float ``Input`` may feed it).

    Notes
    -----
    Forward: :math:`Y_{n,t,:} = E_{x_{n,t},:}`. There is no derivative with respect
    to the ids; with respect to the table, every occurrence of an id adds its
    upstream gradient to that id's row:

    .. math::

        \frac{\partial z}{\partial E_{v,:}}
          = \sum_{(n,t):\,x_{n,t} = v} \frac{\partial z}{\partial Y_{n,t,:}},

    so :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(E)^T` is a
    0/1 selection matrix with one 1 per row.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> emb = ln.Embedding(10, 3, seed=0)
    >>> emb(np.array([[1, 2, 2]])).shape
    (1, 3, 3)
    """

    _default_name = "embedding"
    #: Inputs are integer ids: models pass integer data to it uncast.
    takes_integer_ids = True

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        weights: Any = None,
        lora_rank: Any = None,
        input_length: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        o = self.owner
        self.input_dim = check_positive_int(input_dim, "input_dim", o)
        self.output_dim = check_positive_int(output_dim, "output_dim", o)
        if embeddings_initializer == "uniform":
            embeddings_initializer = "random_uniform"
        initializers.get(embeddings_initializer, o, "embeddings_initializer")
        self.embeddings_initializer = embeddings_initializer
        self.mask_zero = check_bool(mask_zero, "mask_zero", o)
        for arg, value in (
            ("embeddings_regularizer", embeddings_regularizer),
            ("embeddings_constraint", embeddings_constraint),
            ("lora_rank", lora_rank),
        ):
            if value is not None:
                raise ValueError(
                    f"{o}: `{arg}` is not supported by layernet's Embedding (pass None); see "
                    f"the Keras compatibility page."
                )
        self.supports_masking = True
        self._initial_weights = weights

    def get_config(self) -> dict[str, Any]:
        init = self.embeddings_initializer
        return {
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": init,
            "mask_zero": self.mask_zero,
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        if len(shape) < 1:
            raise ValueError(
                f"{self.owner}: expected ids with a batch axis, got shape {shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def build_params(self, input_shape, rng):
        init = initializers.get(self.embeddings_initializer, self.owner, "embeddings_initializer")
        shape = (self.input_dim, self.output_dim)
        self.params["embeddings"] = init(shape, self.input_dim, self.output_dim, rng, self.dtype)
        if self._initial_weights is not None:
            self.params["embeddings"][...] = np.asarray(self._initial_weights[0])

    def _prepare_input(self, x: Any) -> Any:
        return self.prepare_input(x)  # ids are always checked (and float ids cast)

    def convert_input(self, x: np.ndarray) -> np.ndarray:
        if x.dtype.kind == "f":  # Keras casts float ids (a float32 `Input`) to ints
            if not np.all(np.isfinite(x)) or not np.array_equal(x, np.trunc(x)):
                raise ValueError(
                    f"{self.owner}: expected integer token ids, received floats that are "
                    f"not whole numbers (dtype {x.dtype})."
                )
            x = x.astype(np.int64)
        elif x.dtype.kind not in "iub":
            raise TypeError(
                f"{self.owner}: expected integer token ids, received an array of dtype "
                f"{x.dtype}; cast it with x.astype('int64') if it holds whole numbers."
            )
        if x.size:
            low, high = int(x.min()), int(x.max())
            if low < 0 or high >= self.input_dim:
                bad = low if low < 0 else high
                raise ValueError(
                    f"{self.owner}: expected ids in [0, {self.input_dim}) (input_dim="
                    f"{self.input_dim}), received id {bad}."
                )
        return x

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def compute_forward(self, x, training):
        return self.params["embeddings"][x], EmbeddingSaved(x)

    def compute_backward_input(self, dy, saved):
        return np.zeros(saved.ids.shape, dtype=self.dtype)  # ids are not differentiable

    def compute_backward_params(self, dy, saved):
        grad = np.zeros_like(self.params["embeddings"])
        np.add.at(grad, saved.ids.reshape(-1), dy.reshape(-1, self.output_dim))
        return {"embeddings": grad}


class MaskingSaved(NamedTuple):
    """Masking keeps which steps it kept."""

    keep: np.ndarray


class Masking(Layer):
    r"""Mark the time steps whose features all equal ``mask_value`` as padding (Keras's).

    .. rubric:: Input and output shape

    ``(batch, timesteps, features)`` in and out.

    Parameters
    ----------
    mask_value : float, default 0.0

    Raises
    ------
    ValueError
        An input with fewer than 3 dims.

    Notes
    -----
    :math:`Y = X \odot m` with :math:`m_{n,t} = [\exists f: X_{n,t,f} \ne v]`
    (masked steps become zeros, as in Keras); :math:`\partial z/\partial X =
    m \odot \partial z/\partial Y`. The mask goes on to the layers that take one.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.array([[[1.0], [0.0], [2.0]]])
    >>> ln.Masking().compute_mask(x)
    array([[ True, False,  True]])
    """

    _default_name = "masking"

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)
        self.supports_masking = True

    def get_config(self) -> dict[str, Any]:
        return {"mask_value": self.mask_value, **super().get_config()}

    def check_input_shape(self, shape):
        if len(shape) < 3:
            raise ValueError(
                f"{self.owner}: expected input with at least 3 dims (batch, timesteps, "
                f"features), got shape {shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return np.any(np.asarray(inputs) != self.mask_value, axis=-1)

    def compute_forward(self, x, training):
        keep = np.any(x != self.mask_value, axis=-1, keepdims=True)
        return x * keep, MaskingSaved(keep)

    def compute_backward_input(self, dy, saved):
        return dy * saved.keep


class _NoSaved(NamedTuple):
    """Nothing to keep."""


class RepeatVector(Layer):
    r"""Repeat a vector ``n`` times: ``(batch, features)`` to ``(batch, n, features)``.

    .. rubric:: Input and output shape

    Input ``(batch, features)``; output ``(batch, n, features)``.

    Parameters
    ----------
    n : int

    Raises
    ------
    ValueError
        An invalid ``n``, or an input that is not 2-D.

    Notes
    -----
    :math:`Y_{b,t,:} = X_{b,:}`; :math:`\partial z/\partial X_{b,:} = \sum_t
    \partial z/\partial Y_{b,t,:}`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.RepeatVector(3)(np.ones((2, 4))).shape
    (2, 3, 4)
    """

    _default_name = "repeat_vector"
    input_ndim = 2

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = check_positive_int(n, "n", self.owner)

    def get_config(self) -> dict[str, Any]:
        return {"n": self.n, **super().get_config()}

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def compute_forward(self, x, training):
        return np.repeat(x[:, None, :], self.n, axis=1), _NoSaved()

    def compute_backward_input(self, dy, saved):
        return dy.sum(axis=1)


class PermuteSaved(NamedTuple):
    """Nothing but the permutation (kept on the layer)."""


class Permute(Layer):
    r"""Permute the axes after the batch (Keras's ``Permute``; ``dims`` count from 1).

    .. rubric:: Input and output shape

    Input ``(batch, d_1, ..., d_k)``; output ``(batch, d_{dims[0]}, ..., d_{dims[k-1]})``.

    Parameters
    ----------
    dims : tuple of int
        A permutation of ``1 .. ndim-1``.

    Raises
    ------
    ValueError
        ``dims`` that are not a permutation of the non-batch axes.

    Notes
    -----
    A permutation of the entries: :math:`\partial z/\partial X` is
    :math:`\partial z/\partial Y` permuted back, and the Jacobian is a permutation
    matrix.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Permute((2, 1))(np.zeros((4, 3, 5))).shape
    (4, 5, 3)
    """

    _default_name = "permute"

    def __init__(self, dims: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        dims = tuple(dims) if isinstance(dims, list | tuple) else dims
        if not (
            isinstance(dims, tuple)
            and all(is_int(d) for d in dims)
            and sorted(dims) == list(range(1, len(dims) + 1))
        ):
            raise ValueError(
                f"{self.owner}: invalid value for `dims`: expected a permutation of 1..k, "
                f"received {dims!r}."
            )
        self.dims = tuple(int(d) for d in dims)

    def get_config(self) -> dict[str, Any]:
        return {"dims": list(self.dims), **super().get_config()}

    def check_input_shape(self, shape):
        if len(shape) != len(self.dims) + 1:
            raise ValueError(
                f"{self.owner}: expected input with {len(self.dims) + 1} dims (dims="
                f"{self.dims}), got shape {shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def compute_forward(self, x, training):
        return np.ascontiguousarray(x.transpose(0, *self.dims)), PermuteSaved()

    def compute_backward_input(self, dy, saved):
        inverse = np.argsort((0, *self.dims))
        return np.ascontiguousarray(dy.transpose(*inverse))


class Cropping1D(Layer):
    r"""Crop steps from the start and the end of the time axis (Keras's ``Cropping1D``).

    .. rubric:: Input and output shape

    Input ``(batch, steps, features)``; output ``(batch, steps - start - end, features)``.

    Parameters
    ----------
    cropping : int or tuple of 2 ints, default (1, 1)

    Raises
    ------
    ValueError
        Negative cropping, a non-3-D input, or cropping that leaves no step.

    Notes
    -----
    :math:`Y_{:,t,:} = X_{:,t+a,:}`; :math:`\partial z/\partial X` is
    :math:`\partial z/\partial Y` padded back with zeros.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Cropping1D((1, 2))(np.zeros((2, 6, 3))).shape
    (2, 3, 3)
    """

    _default_name = "cropping1d"
    input_ndim = 3

    def __init__(self, cropping: Any = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pair = (cropping, cropping) if is_int(cropping) else cropping
        self.cropping = int_tuple(pair, 2, "cropping", self.owner, minimum=0)

    def get_config(self) -> dict[str, Any]:
        return {"cropping": list(self.cropping), **super().get_config()}

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        if t is not None:
            t = t - sum(self.cropping)
            if t < 1:
                raise ValueError(
                    f"{self.owner}: cropping {self.cropping} leaves no step of an input of "
                    f"shape {shape_str(input_shape)}."
                )
        return (input_shape[0], t, input_shape[2])

    def compute_forward(self, x, training):
        a, b = self.cropping
        return x[:, a : x.shape[1] - b].copy(), _NoSaved()

    def compute_backward_input(self, dy, saved):
        a, b = self.cropping
        dx = np.zeros((dy.shape[0], dy.shape[1] + a + b, dy.shape[2]), dtype=dy.dtype)
        dx[:, a : a + dy.shape[1]] = dy
        return dx


class TimeDistributedSaved(NamedTuple):
    """The inner layer's saved state for the folded batch, and the folded shape."""

    inner: Any
    shape: tuple[int, ...]


class TimeDistributed(Layer):
    r"""Apply a layer to every time step (Keras's ``TimeDistributed``).

    Folds time into the batch, ``(batch, T, ...)`` to ``(batch * T, ...)``, calls
    the inner layer and unfolds the result; the weights are the inner layer's.

    .. rubric:: Input and output shape

    Input ``(batch, T, ...)``; output ``(batch, T, ...)`` with the inner layer's
    output shape for one step after ``T``.

    Parameters
    ----------
    layer : Layer

    Raises
    ------
    ValueError
        An input with fewer than 3 dims, or whose steps the wrapped layer cannot take
        (its message, after the input's shape); a ``layer`` that is not a Layer.

    Notes
    -----
    Every step uses the same weights, so :math:`\partial z/\partial\theta =
    \sum_t \partial z/\partial\theta\,|_t`, which the folded batch computes at once.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.TimeDistributed(ln.Dense(2, seed=0))(np.zeros((4, 5, 3))).shape
    (4, 5, 2)
    """

    #: Passes an input mask on unchanged (Keras's ``supports_masking``).
    supports_masking = True

    _default_name = "time_distributed"

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            from ..saving import layer_from_spec

            layer = layer_from_spec(layer)
        if not isinstance(layer, Layer):
            raise ValueError(
                f"{self.owner}: invalid value for `layer`: expected a Layer, received "
                f"{type(layer).__name__}."
            )
        self.layer = layer
        self.layers = [layer]

    def get_config(self) -> dict[str, Any]:
        from ..registry import get_registered_name

        return {
            "layer": {
                "class_name": get_registered_name(type(self.layer)),
                "config": self.layer.get_config(),
            },
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        if len(shape) < 3:
            raise ValueError(
                f"{self.owner}: expected input with at least 3 dims (batch, timesteps, ...), "
                f"got shape {shape_str(shape)}."
            )
        inner = self._inner_shape(shape)
        try:
            self.layer.output_shape(inner)
        except ValueError as exc:  # said for the input given, not only for the folded one
            raise ValueError(
                f"{self.owner}: the wrapped layer refused the steps of the input of shape "
                f"{shape_str(shape)} (folded to {shape_str(inner)}): {exc}"
            ) from None

    def _inner_shape(self, shape):
        n = None if shape[0] is None or shape[1] is None else shape[0] * shape[1]
        return (n, *shape[2:])

    def compute_output_shape(self, input_shape):
        out = self.layer.output_shape(self._inner_shape(input_shape))
        return (input_shape[0], input_shape[1], *out[1:])

    def build_params(self, input_shape, rng):
        inner = (None, *input_shape[2:])
        if not self.layer.built:
            self.layer.build(inner, rng=rng)
        self.params = self.layer.params

    def compute_forward(self, x, training):
        n, t = x.shape[:2]
        y, inner = self.layer.call_forward(x.reshape(n * t, *x.shape[2:]), training)
        return y.reshape(n, t, *y.shape[1:]), TimeDistributedSaved(inner, x.shape)

    def compute_backward_input(self, dy, saved):
        n, t = dy.shape[:2]
        dx, _ = self.layer.call_backward(
            dy.reshape(n * t, *dy.shape[2:]), saved.inner, need_input=True, need_params=False
        )
        return dx.reshape(saved.shape)

    def compute_backward_params(self, dy, saved):
        n, t = dy.shape[:2]
        _, grads = self.layer.call_backward(
            dy.reshape(n * t, *dy.shape[2:]), saved.inner, need_input=False, need_params=True
        )
        return grads


def pad_sequences(
    sequences: Any,
    maxlen: int | None = None,
    dtype: str = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: float = 0.0,
) -> np.ndarray:
    """Pad (or truncate) sequences to one length (Keras's ``pad_sequences``).

    Parameters
    ----------
    sequences : list of sequences
        Each a list or array of ids (or of feature vectors).
    maxlen : int, optional
        The length to pad or cut to; the longest sequence's by default.
    dtype : str, default "int32"
    padding : {"pre", "post"}, default "pre"
        Where to pad.
    truncating : {"pre", "post"}, default "pre"
        Where to cut sequences longer than ``maxlen``.
    value : float, default 0.0
        The padding value.

    Returns
    -------
    ndarray of shape (len(sequences), maxlen, ...)

    Raises
    ------
    ValueError
        An invalid ``padding``, ``truncating`` or ``maxlen``, or sequences whose
        items have different shapes.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
    """
    for arg, v in (("padding", padding), ("truncating", truncating)):
        if v not in ("pre", "post"):
            raise ValueError(
                f"pad_sequences: invalid value for `{arg}`: expected 'pre' or 'post', "
                f"received {v!r}."
            )
    seqs = [np.asarray(s) for s in sequences]
    if maxlen is None:
        maxlen = max((len(s) for s in seqs), default=0)
    elif not is_int(maxlen) or maxlen < 0:
        raise ValueError(
            f"pad_sequences: invalid value for `maxlen`: expected an int >= 0 or None, "
            f"received {maxlen!r}."
        )
    tails = {s.shape[1:] for s in seqs if len(s)}
    if len(tails) > 1:
        raise ValueError(
            f"pad_sequences: the sequences' items have different shapes: {sorted(tails)}."
        )
    tail = tails.pop() if tails else ()
    out = np.full((len(seqs), maxlen, *tail), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or maxlen == 0:
            continue
        s = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if padding == "post":
            out[i, : len(s)] = s
        else:
            out[i, maxlen - len(s) :] = s
    return out
