r"""Batch normalisation over every axis but the channels."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _ops, initializers, threads
from .._validation import check_bool, check_number, is_int, shape_str
from .base import Layer


class BatchNormSaved(NamedTuple):
    """What :class:`BatchNorm` keeps for backward."""

    training: bool  #: whether batch statistics were used (else the running ones)
    x: np.ndarray  #: the input, ``(entries, channels)``
    mean: np.ndarray  #: the mean it was centred by, per channel (batch or running)
    inv: np.ndarray  #: :math:`1/\sqrt{\sigma^2 + \epsilon}` per channel


#: Entries of an ``(entries, channels)`` array one step of a blocked pass handles: the
#: block and its temporary stay in the core's cache between the step's operations.
BLOCK_ENTRIES = 1 << 18

#: Length a per-channel vector is tiled to, so that NumPy's loops over a block run along
#: rows of this many entries rather than along one position's ``channels`` entries.
TILE_ENTRIES = 1 << 14

#: Up to this many entries BatchNorm's passes are whole-array NumPy operations: the
#: blocked passes' Python calls cost more than they save there (measured on a 2-core AMD
#: EPYC, forward and backward: ``(32, 64)`` 80 µs blocked, 43 µs whole-array;
#: ``(64, 8, 8, 64)`` 0.61 ms blocked against 0.79 ms for the earlier whole-array code).
PLAIN_MAX_ENTRIES = 1 << 16


class _Blocks:
    """How BatchNorm's passes over C-contiguous ``(m, c)`` arrays run.

    Blocked (the fast path, above ``PLAIN_MAX_ENTRIES`` entries): consecutive row
    blocks, each of rows a multiple of ``r`` viewed as ``(rows / r, r c)`` with the
    per-channel vectors tiled ``r`` times (NumPy's inner loops run ``r c`` long instead
    of ``c``), except a last one of fewer than ``r`` rows (``r = 1``); the blocks are
    split between threads (:func:`layernet.threads.over_batch`), each block's
    arithmetic the same however they are split. Plain (small arrays, or the fast paths
    off): whole-array operations.
    """

    def __init__(self, m: int, c: int) -> None:
        self.plain = not _ops.FAST_PATHS or m * c <= PLAIN_MAX_ENTRIES
        r = max(1, TILE_ENTRIES // c)
        rows = max(r, BLOCK_ENTRIES // (r * c) * r)
        main = 0 if self.plain else m - m % r
        self.spans = [(s, min(s + rows, main), r) for s in range(0, main, rows)]
        if main < m and not self.plain:
            self.spans.append((main, m, 1))
        self.r, self.c = r, c
        self.tiled = main > 0 and r > 1

    def vector(self, v: np.ndarray) -> dict[int, np.ndarray]:
        """``v`` for a plain ``(n, c)`` view (key 1) and for a tiled one (key ``r``)."""
        return {1: v, self.r: np.tile(v, self.r)} if self.tiled else {1: v}

    @staticmethod
    def view(a: np.ndarray, start: int, stop: int, r: int) -> np.ndarray:
        """Rows ``start:stop`` of ``a`` as ``(rows / r, r c)``."""
        return a[start:stop].reshape(-1, r * a.shape[1])

    def run(self, fn, dtype: np.dtype, size: int) -> None:
        """``fn(i, start, stop, r, tmp)`` for every block ``i``; ``tmp`` a scratch array
        of the block's size, one per thread. ``size``: entries the pass reads and writes."""
        spans, c = self.spans, self.c
        if not spans:
            return

        def part(b: slice) -> None:
            tmp = np.empty(max(stop - start for start, stop, _ in spans[b]) * c, dtype)
            for i in range(b.start, b.stop):
                start, stop, r = spans[i]
                fn(i, start, stop, r, tmp[: (stop - start) * c])

        threads.over_batch(part, len(spans), size)

    def sums(
        self,
        a: np.ndarray,
        shift: np.ndarray | None = None,
        times: np.ndarray | None = None,
        square: bool = False,
    ) -> np.ndarray:
        r"""Per channel :math:`\sum_j (a_j - s)\, t_j`: ``s`` is ``shift`` (0 when None),
        ``t`` is ``times``, or :math:`a_j - s` with ``square``, or 1.

        Summed by NumPy's reductions, never BLAS (whose result depends on its thread
        count): blocked, each block's rows (at most ``BLOCK_ENTRIES / TILE_ENTRIES`` of
        them in the array's dtype, the rest in float64) and the blocks' sums in block
        order, the same numbers however the blocks are split between threads; plain,
        down the whole array.
        """
        if self.plain:
            t = a if shift is None else a - shift
            if square or times is not None:
                t = t * (t if square else times)
            return np.add.reduce(t, axis=0)
        c = self.c
        partial = np.zeros((len(self.spans), c))
        shifts = None if shift is None else self.vector(shift)

        def block(i, start, stop, r, tmp):
            t = self.view(a, start, stop, r)
            if shifts is not None:
                t = np.subtract(t, shifts[r], out=tmp.reshape(t.shape))
            if square or times is not None:
                other = t if square else self.view(times, start, stop, r)
                t = np.multiply(t, other, out=tmp.reshape(t.shape))
            rows = np.add.reduce(t, axis=0) if r > 1 else t  # a tiled block's few rows
            partial[i] = rows.reshape(-1, c).sum(axis=0, dtype=np.float64)

        self.run(block, a.dtype, (1 if shift is None and times is None else 4) * a.size)
        return partial.sum(axis=0).astype(a.dtype)

    def affine(
        self,
        out: np.ndarray,
        a: np.ndarray,
        scale: np.ndarray,
        shift: np.ndarray | None,
        b: np.ndarray | None = None,
        scale_b: np.ndarray | None = None,
    ) -> None:
        """``out = a * scale + shift`` (plus ``b * scale_b``), per channel."""
        if self.plain:
            np.multiply(a, scale, out=out)
            if b is not None:
                out += b * scale_b
            if shift is not None:
                out += shift
            return
        scales, shifts = self.vector(scale), None if shift is None else self.vector(shift)
        scales_b = None if scale_b is None else self.vector(scale_b)

        def block(i, start, stop, r, tmp):
            o = self.view(out, start, stop, r)
            np.multiply(self.view(a, start, stop, r), scales[r], out=o)
            if scales_b is not None:
                t = tmp.reshape(o.shape)
                np.multiply(self.view(b, start, stop, r), scales_b[r], out=t)
                o += t
            if shifts is not None:
                o += shifts[r]

        self.run(block, out.dtype, (3 if b is None else 6) * out.size)


class BatchNorm(Layer):
    r"""Batch normalisation (Ioffe & Szegedy, 2015) of each channel (the last axis).

    .. rubric:: Input and output shape

    Input ``(batch, ..., channels)`` with at least two dims; the output has the
    same shape. Statistics are taken per channel over every other axis (the
    batch and all positions).

    Parameters
    ----------
    axis : int, default -1
        The channel axis (Keras's argument); layernet is channels-last, so only
        the last axis (``-1`` or ``ndim - 1``) is accepted.
    momentum : float, default 0.99
        Weight of the old value in the running statistics,
        :math:`\mu_\text{run} \leftarrow m\,\mu_\text{run} + (1-m)\,\mu_B`
        (Keras' convention; PyTorch's ``momentum=0.1`` is ``0.9`` here). Any value
        in :math:`[0, 1]`; with 1 the running statistics never change.
    epsilon : float, default 1e-3
        Added to the variance before the square root.
    center : bool, default True
        Learn an offset ``beta``.
    scale : bool, default True
        Learn a factor ``gamma``.
    beta_initializer : str or Initializer, default "zeros"
        Initial value of ``beta`` (see :mod:`layernet.initializers`).
    gamma_initializer : str or Initializer, default "ones"
        Initial value of ``gamma``.
    moving_mean_initializer : str or Initializer, default "zeros"
        Initial running mean.
    moving_variance_initializer : str or Initializer, default "ones"
        Initial running variance.
    beta_regularizer : str, Regularizer or None, default None
        Penalty on :math:`\beta` (``"l1"``, ``"l2"``, ``"l1_l2"``, an object from
        :mod:`layernet.regularizers`); see :meth:`~Layer.regularization_penalty`.
    gamma_regularizer : str, Regularizer or None, default None
        Penalty on :math:`\gamma`, likewise.
    beta_constraint : str, Constraint or None, default None
        Projection of :math:`\beta` after every optimizer step (a name or an
        object from :mod:`layernet.constraints`; :meth:`~Layer.apply_constraints`).
    gamma_constraint : str, Constraint or None, default None
        Projection of :math:`\gamma`, likewise.
    activity_regularizer : str, Regularizer or None, default None
        Penalty on the output, divided by the batch size as in Keras
        (:meth:`~Layer.activity_regularization`).
    name : str, optional
        Layer name (``"batch_norm_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters, the statistics and the computation.
    seed : int, optional
        Seed for initialisers that draw random values (the defaults are constants).
    trainable : bool, default True
        A frozen BatchNorm (``trainable=False``, also set later) runs in
        inference mode even in a training pass: it normalises with the moving
        statistics and leaves them unchanged, as Keras does (the usual way to
        fine-tune a pretrained network).

    Attributes
    ----------
    params : dict
        ``"gamma"`` and ``"beta"``, each of shape ``(channels,)``.
    state : dict
        ``"moving_mean"`` and ``"moving_variance"`` (Keras's names), updated by every
        training forward pass and used at inference; saved in model files, never
        touched by optimisers. Files that call the variance ``"moving_var"`` (the
        earlier name) still load.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument:
        ``BatchNorm 'batch_norm_1': invalid value for `momentum`: expected a
        number in [0, 1), received 1.5.``; the same form for ``epsilon``
        (>= 0), ``center``, ``scale`` and ``trainable`` (bools), ``dtype``,
        ``name`` and ``seed``. On an input: fewer than 2 dims, or ``expected
        input with 3 channels (last axis, as built), got shape ...``. In
        backward: a ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Over the :math:`m` entries of a channel in the batch (all samples and positions),
    with :math:`\mu = \frac1m\sum x_j` and :math:`\sigma^2 = \frac1m\sum (x_j-\mu)^2`:

    .. math::

        \hat x_j = \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}},\qquad
        y_j = \gamma\,\hat x_j + \beta .

    **Derivatives** (training mode, where :math:`\mu` and :math:`\sigma^2` depend on
    every :math:`x_j` of the channel), with :math:`g_j = \gamma\,\partial z/\partial y_j`:

    .. math::

        \frac{\partial z}{\partial x_j} = \frac{1}{m\sqrt{\sigma^2+\epsilon}}
            \Big(m\,g_j - \sum_k g_k - \hat x_j \sum_k g_k \hat x_k\Big),

    .. math::

        \frac{\partial z}{\partial \gamma} = \sum_j \frac{\partial z}{\partial y_j}\hat x_j,
        \qquad
        \frac{\partial z}{\partial \beta} = \sum_j \frac{\partial z}{\partial y_j}.

    **How it is computed.** The output as :math:`y = a x + b` per channel, with
    :math:`a = \gamma/\sqrt{\sigma^2+\epsilon}` and :math:`b = \beta - \mu a` (the
    form PyTorch's and TensorFlow's CPU kernels use; in float32, data whose mean is
    large against its spread loses about :math:`2^{-24}|\mu| a` this way), and the
    input gradient as :math:`a\,\partial z/\partial y + b' x + c'` likewise. The
    sums that involve the centred input (:math:`\sigma^2` and :math:`\sum g \hat x`)
    take :math:`x - \mu` explicitly. Each pass works over blocks of rows that stay
    in cache, with the per-channel vectors tiled along the rows, the blocks split
    between threads; every sum is NumPy's reduction of each block added in block
    order, so the results do not depend on the number of threads.

    The input Jacobian of a channel is dense in training mode,
    :math:`\frac{\gamma}{\sqrt{\sigma^2+\epsilon}}\big(I - \frac1m\mathbf 1\mathbf 1^T
    - \frac1m\hat x\hat x^T\big)`, and diagonal at inference, where the running
    statistics are constants: :math:`y = \gamma (x - \mu_\text{run})/
    \sqrt{\sigma^2_\text{run}+\epsilon} + \beta`. :meth:`jacobian_input` and
    :meth:`jacobian_params` give the inference ones. A frozen layer
    (``trainable=False``) uses the inference map, and so these diagonal rules,
    in training passes too:
    :math:`\partial z/\partial x_j = \gamma\,(\partial z/\partial y_j)/
    \sqrt{\sigma^2_\text{run}+\epsilon}`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> bn = ln.BatchNorm(epsilon=0.0, dtype="float64")
    >>> x = np.array([[1.0], [3.0]])
    >>> bn.forward(x, training=True)[:, 0]
    array([-1.,  1.])
    >>> bn.state["moving_mean"]
    array([0.02])
    """

    _default_name = "batch_norm"
    fresh_output = True
    fresh_gradient = True

    #: State renamed since earlier versions (old name -> new), for old model files.
    renamed_weights: ClassVar[dict[str, str]] = {"moving_var": "moving_variance"}

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        *,
        name: str | None = None,
        activity_regularizer: Any = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.set_weight_penalties(
            {"beta": beta_regularizer, "gamma": gamma_regularizer},
            {"beta": beta_constraint, "gamma": gamma_constraint},
            activity_regularizer,
        )
        o = self.owner
        self.momentum = check_number(momentum, "momentum", o, low=0, high=1)
        self.epsilon = check_number(epsilon, "epsilon", o, low=0)
        self.center = check_bool(center, "center", o)
        self.scale = check_bool(scale, "scale", o)
        if not is_int(axis):
            raise ValueError(
                f"{o}: invalid value for `axis`: expected an int (the channel axis, -1), "
                f"received {axis!r}."
            )
        self.axis = int(axis)
        self.initializers = {
            "beta": beta_initializer,
            "gamma": gamma_initializer,
            "moving_mean": moving_mean_initializer,
            "moving_variance": moving_variance_initializer,
        }
        for key, spec in self.initializers.items():
            initializers.get(spec, o, f"{key}_initializer")

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            **{f"{k}_initializer": initializers.serialize(v) for k, v in self.initializers.items()},
            **self.penalty_config(),
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if shape[-1] == 0:
            raise ValueError(
                f"{self.owner}: expected at least one channel (last axis), got shape "
                f"{shape_str(shape)}."
            )
        if self.axis not in (-1, len(shape) - 1):
            raise ValueError(
                f"{self.owner}: invalid value for `axis`: layernet is channels-last and "
                f"normalises the last axis (-1 or {len(shape) - 1} here), received "
                f"axis={self.axis} for input of shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.state["moving_mean"].shape[0], "channels")

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        c = input_shape[-1]

        def init(key):
            fn = initializers.get(self.initializers[key], self.owner, f"{key}_initializer")
            return fn((c,), c, c, rng, self.dtype)

        if self.scale:
            self.params["gamma"] = init("gamma")
        if self.center:
            self.params["beta"] = init("beta")
        self.state["moving_mean"] = init("moving_mean")
        self.state["moving_variance"] = init("moving_variance")

    def compute_forward(self, x, training):
        c = x.shape[-1]
        x2 = np.ascontiguousarray(x.reshape(-1, c))  # the blocks view rows of a C array
        m = x2.shape[0]
        blocks = _Blocks(m, c)
        if training and m > 0 and self.trainable:  # frozen: inference mode, as in Keras
            first = x2[0].copy()  # summed about the first row: a large mean swamps no sum
            mean = first + blocks.sums(x2, first) / m
            var = blocks.sums(x2, mean, square=True) / m
            for key, value in (("moving_mean", mean), ("moving_variance", var)):
                run = self.state[key]
                run *= self.momentum
                run += (1 - self.momentum) * value
        else:  # a copy: a later training call updates the running mean in place
            mean, var = np.array(self.state["moving_mean"]), self.state["moving_variance"]
            training = False
        inv = (1 / np.sqrt(var + self.epsilon)).astype(x.dtype, copy=False)
        mean = mean.astype(x.dtype, copy=False)
        # y = γ (x - μ) / σ + β as x a + b, per channel a = γ / σ and b = β - μ a
        # (PyTorch's and TensorFlow's form): one product and one sum per entry.
        scale = inv * self.params["gamma"] if self.scale else inv
        shift = -mean * scale
        if self.center:
            shift += self.params["beta"]
        y = np.empty(x2.shape, x2.dtype)
        blocks.affine(y, x2, scale, shift)
        return y.reshape(x.shape), BatchNormSaved(training, x2, mean, inv)

    def _sums(self, dy2: np.ndarray, saved: BatchNormSaved) -> tuple[np.ndarray, np.ndarray]:
        r""":math:`\sum_j \partial z/\partial y_j` and :math:`\sum_j (\partial z/\partial
        y_j)\, \hat x_j` per channel."""
        blocks = _Blocks(*dy2.shape)
        return blocks.sums(dy2), blocks.sums(saved.x, saved.mean, dy2) * saved.inv

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        # Both gradients from one computation of the per-channel sums they share.
        if not (need_input and need_params and self.params and self.scale):
            return super().call_backward(dy, saved, need_input=need_input, need_params=need_params)
        dy2 = np.ascontiguousarray(self._cast_dy(dy).reshape(saved.x.shape))
        sums = self._sums(dy2, saved)
        grads = {"gamma": sums[1]}
        if self.center:
            grads["beta"] = sums[0]
        return self._input_grad(dy2, saved, sums).reshape(np.shape(dy)), grads

    def compute_backward_params(self, dy, saved):
        dy2 = np.ascontiguousarray(dy.reshape(saved.x.shape))
        grads = {}
        if self.scale:
            sum_dy, grads["gamma"] = self._sums(dy2, saved)
        else:
            sum_dy = _Blocks(*dy2.shape).sums(dy2)
        if self.center:
            grads["beta"] = sum_dy
        return grads

    def compute_backward_input(self, dy, saved):
        dy2 = np.ascontiguousarray(dy.reshape(saved.x.shape))
        return self._input_grad(dy2, saved).reshape(dy.shape)

    def _input_grad(
        self, dy2: np.ndarray, saved: BatchNormSaved, sums: tuple | None = None
    ) -> np.ndarray:
        """``∂z/∂x`` as ``(entries, channels)``; ``sums``: :meth:`_sums`, when known."""
        x2, inv = saved.x, saved.inv
        g = inv * self.params["gamma"] if self.scale else inv  # ∂x̂/∂x's diagonal, times γ
        dx = np.empty(dy2.shape, dy2.dtype)
        blocks = _Blocks(*dy2.shape)
        if not saved.training:
            blocks.affine(dx, dy2, g, None)
            return dx
        # ∂z/∂x = γ/σ (dy - Σdy/m - x̂ Σ(dy x̂)/m) = dy a + x b + c per channel, with
        # a = γ/σ, b = -a Σ(dy x̂) / (m σ) and c = -a Σdy/m - μ b.
        m = dy2.shape[0]
        sum_dy, sum_dyx = self._sums(dy2, saved) if sums is None else sums
        b = -g * inv * sum_dyx / m
        c = -g * sum_dy / m - saved.mean * b
        blocks.affine(dx, dy2, g, c, x2, b)
        return dx


class BatchNormalization(BatchNorm):
    """Keras's name for :class:`BatchNorm` (same arguments and defaults).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> bn = ln.BatchNormalization(dtype="float64")
    >>> bn.trainable = False          # frozen: inference mode even when training
    >>> bn.forward(np.array([[1.0], [3.0]]), training=True)[:, 0].round(4)
    array([0.9995, 2.9985])
    >>> bn.state["moving_mean"]       # unchanged
    array([0.])
    """

    _default_name = "batch_normalization"
    fresh_output = True  # the same computation as its parent's
