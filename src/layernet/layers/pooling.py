r"""Max and average pooling over windows (disjoint by default), 1-D, 2-D, 3-D and N-D,
and global pooling over all positions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np

from .. import _ops, threads
from .._validation import (
    check_bool,
    check_data_format,
    check_padding,
    int_tuple,
    is_int,
    resolve_padding,
    shape_str,
)
from .base import Layer


class PoolSaved(NamedTuple):
    """What :class:`MaxPool` and :class:`AvgPool` keep for backward."""

    #: MaxPool: ``(taps, N, *out, C)`` booleans, which tap won each window;
    #: AvgPool: ``1 / |R_o|`` per window (an array, or a scalar without padding).
    weights: Any
    padded_shape: tuple[int, ...]  #: shape of the padded input
    window: tuple[int, ...]
    strides: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]  #: ``(before, after)`` per spatial axis
    out: tuple[int, ...]  #: output positions per spatial axis


class _Pool(Layer):
    """Shared geometry of the pooling layers (not public)."""

    _rank: int | None = None

    def __init__(
        self,
        pool_size: int | tuple[int, ...] = 2,
        strides: int | tuple[int, ...] | None = None,
        padding: str | int | tuple = "valid",
        data_format: str | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        self.data_format = check_data_format(data_format, o)
        self.padding = check_padding(padding, o)
        rank = self._rank
        for arg, val in (("pool_size", pool_size), ("strides", strides)):
            if val is None:
                continue
            checked = int_tuple(val, rank, arg, o)
            if rank is None and not is_int(val):
                rank = len(checked)
        if rank is None and isinstance(self.padding, tuple):
            rank = len(self.padding)
        if isinstance(self.padding, tuple) and rank is not None and len(self.padding) != rank:
            raise ValueError(
                f"{o}: invalid value for `padding`: expected {rank} entries (one per spatial "
                f"axis), received {self.padding!r}."
            )
        self.rank = rank
        self._raw = {"pool_size": pool_size, "strides": strides}
        self.pool_size = int_tuple(pool_size, rank or 1, "pool_size", o)
        self.strides = (
            self.pool_size if strides is None else int_tuple(strides, rank or 1, "strides", o)
        )
        self._check_padding_fits_window()

    def _check_padding_fits_window(self) -> None:
        """Refuse explicit padding of a window's size or more (known before any input)."""
        pad = self.padding
        if isinstance(pad, str):
            return
        k = self.pool_size
        if is_int(pad):
            sides = [(int(cast(int, pad)), min(k))]
        else:
            per_axis = cast(tuple, pad)
            k = k if len(k) == len(per_axis) else k * len(per_axis)
            sides = [
                (max(p) if isinstance(p, tuple) else p, ki)
                for p, ki in zip(per_axis, k, strict=True)
            ]
        if any(p >= ki for p, ki in sides):
            raise ValueError(
                f"{self.owner}: invalid value for `padding`: expected less than pool_size "
                f"{self.pool_size} on each side (a window must hold at least one input "
                f"entry), received {self.padding!r}."
            )

    def get_config(self) -> dict[str, Any]:
        return {
            **self._raw,
            "padding": self.padding,
            "data_format": self.data_format,
            **super().get_config(),
        }

    @property
    def input_ndim(self) -> int | None:  # type: ignore[override]
        return None if self.rank is None else self.rank + 2

    def _expected_layout(self) -> str:
        if self.rank is None:
            return "(batch, *spatial, channels)"
        return super()._expected_layout()

    def check_input_shape(self, shape):
        if self.rank is None and len(shape) < 3:
            raise ValueError(
                f"{self.owner}: expected input with at least 3 dims (batch, *spatial, "
                f"channels), got shape {shape_str(shape)}."
            )
        super().check_input_shape(shape)
        self._geometry(shape)

    def _geometry(self, shape):
        rank = len(shape) - 2
        k = self.pool_size if len(self.pool_size) == rank else self.pool_size * rank
        s = self.strides if len(self.strides) == rank else self.strides * rank
        if isinstance(self.padding, tuple) and len(self.padding) != rank:
            raise ValueError(
                f"{self.owner}: invalid value for `padding`: expected {rank} entries (one per "
                f"spatial axis) for input of shape {shape_str(shape)}, received "
                f"{self.padding!r}."
            )
        spatial = shape[1:-1]
        if any(n is None for n in spatial):
            return k, s, None, (None,) * rank
        pads = resolve_padding(self.padding, spatial, k, s, self.owner)
        if any(b >= ki or a >= ki for (b, a), ki in zip(pads, k, strict=True)):
            raise ValueError(
                f"{self.owner}: invalid value for `padding`: expected less than pool_size "
                f"{k} on each side (a window must hold at least one input entry), received "
                f"{self.padding!r}."
            )
        out, padded = _ops.output_sizes(spatial, k, s, pads)
        if any(o < 1 for o in out):
            raise ValueError(
                f"{self.owner}: pool window {k} is larger than the padded input {padded} "
                f"(input shape {shape_str(shape)})."
            )
        return k, s, pads, out

    def compute_output_shape(self, input_shape):
        _, _, _, out = self._geometry(input_shape)
        return (input_shape[0], *out, input_shape[-1])

    def build_params(self, input_shape, rng):
        if self.rank is None:
            self.rank = len(input_shape) - 2
            self.pool_size = int_tuple(self._raw["pool_size"], self.rank, "pool_size", self.owner)
            self.strides = (
                self.pool_size
                if self._raw["strides"] is None
                else int_tuple(self._raw["strides"], self.rank, "strides", self.owner)
            )

    def _tap_views(
        self, xp: np.ndarray, k: tuple[int, ...], s: tuple[int, ...], out: tuple[int, ...]
    ) -> Callable[[slice], list[np.ndarray]]:
        """``views(b)``: every window tap's slice of the samples ``b`` of ``xp``, in C order.

        With few channels (:func:`layernet._ops.use_phases`) the samples' taps of the
        last spatial axis are first copied apart (:func:`layernet._ops.split_phases`,
        into the workspace's ``"phases"``) and the slices are row slices of those
        copies; otherwise strided slices of ``xp``. The values are the same.
        """
        if _ops.use_phases(xp, k[-1]):
            shape = (k[-1], *xp.shape[:-2], out[-1], xp.shape[-1])
            phases = self.workspace.get("phases", shape, xp.dtype)[0]
            phase_taps = _ops.phase_taps(k, out, s)

            def split(b: slice) -> list[np.ndarray]:
                pb = phases[:, b]
                _ops.split_phases(xp[b], k[-1], s[-1], out[-1], pb)
                return [pb[p][sl] for p, sl in phase_taps]

            return split
        slices = [sl for _, sl in _ops.taps(k, out, s, (1,) * len(k))]

        def strided(b: slice) -> list[np.ndarray]:
            xb = xp[b]
            return [xb[sl] for sl in slices]

        return strided


class MaxPool(_Pool):
    r"""Max pooling: the largest entry of each window, per channel.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)``; output ``(batch, o_1, ..., o_r,
    channels)``. Along each spatial axis, with window :math:`k`, stride :math:`s`
    and padding :math:`p_\text{before}`, :math:`p_\text{after}`,

    .. math::

        o = \left\lfloor \frac{n + p_\text{before} + p_\text{after} - k}{s}
            \right\rfloor + 1 .

    With ``"valid"`` padding (none) a remainder that does not fill a whole
    window is dropped: 7 inputs in windows of 2 give :math:`\lfloor 5/2\rfloor
    + 1 = 3` outputs, and the 7th input is read by no window (its gradient is
    0). ``"same"`` pads so that :math:`o = \lceil n/s \rceil` (7 → 4).

    Parameters
    ----------
    pool_size : int or tuple of int, default 2
        Window size :math:`k`. A tuple fixes the spatial rank; an int is used
        along every spatial axis of the first input.
    strides : int or tuple of int, optional
        Step between windows; defaults to ``pool_size``, i.e. disjoint regions as
        in the lecture notes. Smaller strides give overlapping windows.
    padding : {"valid", "same"} or int or tuple, default "valid"
        As for :class:`Conv`; padded entries count as :math:`-\infty`, so they
        are never selected. Each side must be smaller than the window.
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"max_pool_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``MaxPool 'max_pool_1':
        invalid value for `pool_size`: expected positive ints, received 0.``;
        the same form for ``strides``; ``padding`` (``'valid'``, ``'same'``, a
        non-negative int, a tuple of those or of ``(before, after)`` pairs,
        each side less than ``pool_size``); ``data_format`` other than
        ``"channels_last"``; ``dtype``, ``name``, ``seed`` and ``trainable``.
        On an input: ``expected input with at least 3 dims (batch, *spatial,
        channels)`` (or exactly the rank of a 1-D/2-D/3-D layer), a padding
        tuple whose length is not the spatial rank, ``pool window ... is larger
        than the padded input ...``. In backward: a ``dy`` whose shape is not
        the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With :math:`W_o` the set of input positions of window :math:`o`,

    .. math::

        Y_{n,o,c} = \max_{p \in W_o} X_{n,p,c},
        \qquad
        \frac{\partial z}{\partial X_{n,p,c}} =
            \sum_{o\,:\,p = p^*_{n,o,c}} \frac{\partial z}{\partial Y_{n,o,c}},

    where :math:`p^*_{n,o,c}` is the position of the maximum. At a tie the
    maximum is not differentiable; the gradient goes to one element, the first in
    C order. There are no parameters (:math:`\partial z/\partial\theta` is empty).

    **Jacobian structure.** Each row of
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T` holds a
    single 1, at the winner's column: a selection matrix. With disjoint windows
    each column has at most one 1.

    **Computation.** The maximum and the first winners are found tap by tap,
    on whole strided slices of the padded input. With few channels (at least
    2, at most 64 bytes a position) each tap of the last spatial axis is first
    copied to an array of its own, so that every slice is read row by row
    instead of a few channels at a time; with at most 16 bytes a position the
    backward pass likewise writes each tap's share into its own array and then
    puts them in place. The results are the same bit for bit.

    See Also
    --------
    AvgPool

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.MaxPool(2).output_shape((None, 7, 3))    # "valid": the 7th entry is dropped
    (None, 3, 3)
    >>> ln.MaxPool(2, padding="same").output_shape((None, 7, 3))
    (None, 4, 3)
    >>> x = np.array([1.0, 5.0, 2.0, 3.0, 9.0, 0.0]).reshape(1, 6, 1)
    >>> pool = ln.MaxPool(2, dtype="float64")
    >>> pool.forward(x)[0, :, 0]
    array([5., 3., 9.])
    >>> pool.backward_input(np.ones((1, 3, 1)))[0, :, 0]
    array([0., 1., 0., 1., 1., 0.])
    """

    _default_name = "max_pool"
    fresh_output = True
    fresh_gradient = True

    def compute_forward(self, x, training):
        k, s, pads, out = self._geometry(x.shape)
        xp = _ops.pad(x, pads, -np.inf, ws=self.workspace)
        best = np.empty((x.shape[0], *out, x.shape[-1]), x.dtype)
        # winners[t]: tap t holds its window's maximum and no earlier tap did (one per window)
        ws = self.workspace
        winners, _ = ws.get("winners", (math.prod(k), *best.shape), np.dtype(bool))
        taken, _ = ws.get("taken", best.shape, np.dtype(bool))
        tap_views = self._tap_views(xp, k, s, out)

        def part(b: slice) -> None:  # the samples b (parts run side by side)
            bb, tb = best[b], taken[b]
            views = tap_views(b)
            if len(views) == 1:
                np.copyto(bb, views[0])
            else:
                np.maximum(views[0], views[1], out=bb)
            for v in views[2:]:
                np.maximum(bb, v, out=bb)
            for t, v in enumerate(views):
                wt = winners[t, b]
                np.equal(v, bb, out=wt)
                if t == 0:
                    np.copyto(tb, wt)
                else:
                    np.greater(wt, tb, out=wt)
                    np.logical_or(tb, wt, out=tb)

        threads.over_batch(part, x.shape[0], 8 * xp.size)  # entries read and written
        return best, PoolSaved(winners, xp.shape, k, s, pads, out)

    def compute_backward_input(self, dy, saved):
        winners = saved.weights  # winners[t]: where tap t holds its window's maximum
        dxp, disjoint = _window_grad_buffer(saved, dy.dtype, self.workspace)
        k, s, out = saved.window, saved.strides, saved.out
        if disjoint and k[:-1] == s[:-1] and _ops.use_phases(dy, k[-1], gradient=True):
            # few channels: each tap's share into its phase, the phases then merged
            shape = (k[-1], *dxp.shape[:-2], out[-1], dy.shape[-1])
            phases = self.workspace.get("phase_grad", shape, dy.dtype)[0]
            phase_taps = _ops.phase_taps(k, out, s)
            # the rows the windows cover along the other axes (the rest stays zero)
            rows = tuple(slice(0, o * ki) for o, ki in zip(out[:-1], k[:-1], strict=True))

            def merged(b: slice) -> None:
                pb, dyb = phases[:, b], dy[b]
                for t, (p, sl) in enumerate(phase_taps):
                    np.multiply(dyb, winners[t, b], out=pb[p][sl])
                _ops.merge_phases(pb, s[-1], dxp[b], (slice(None), *rows))

            threads.over_batch(merged, dy.shape[0], 5 * dxp.size)
            return _ops.crop_copy(dxp, saved.pads)
        slices = [sl for _, sl in _window_taps(saved)]
        # overlapping windows add each tap's share through a temporary
        tmp = None if disjoint else self.workspace.get("tmp", dy.shape, dy.dtype)[0]

        def part(b: slice) -> None:
            db, dyb = dxp[b], dy[b]
            for t, sl in enumerate(slices):
                if tmp is None:  # disjoint windows: straight into the tap's slice
                    np.multiply(dyb, winners[t, b], out=db[sl])
                else:
                    np.multiply(dyb, winners[t, b], out=tmp[b])
                    db[sl] += tmp[b]

        threads.over_batch(part, dy.shape[0], 5 * dxp.size)
        return _ops.crop_copy(dxp, saved.pads)


def _window_taps(saved: PoolSaved):
    """``(tap, slices)`` of the padded input for every position inside a window."""
    return _ops.taps(saved.window, saved.out, saved.strides, (1,) * len(saved.window))


def _window_grad_buffer(saved: PoolSaved, dtype: np.dtype, ws: _ops.Workspace):
    """The array to gather a pooling gradient in, and whether windows are disjoint.

    Disjoint windows (stride >= window) let each tap assign its slice; when
    they also tile the padded input exactly, no entry is left unwritten and the
    buffer needs no zeroing.
    """
    xp_shape, k, s, pads, out = (
        saved.padded_shape,
        saved.window,
        saved.strides,
        saved.pads,
        saved.out,
    )
    disjoint = all(si >= ki for si, ki in zip(s, k, strict=True))
    tiled = disjoint and all(o * ki == n for o, ki, n in zip(out, k, xp_shape[1:-1], strict=True))
    if not tiled:
        return _ops.zeros_padded(xp_shape, pads, dtype, ws), disjoint
    if any(b or a for b, a in pads):
        return ws.get("dxp", tuple(xp_shape), dtype)[0], disjoint
    return np.empty(xp_shape, dtype), disjoint


class AvgPool(_Pool):
    r"""Average pooling: the mean of each window, per channel.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)``; output ``(batch, o_1, ..., o_r,
    channels)``. Along each spatial axis, with window :math:`k`, stride :math:`s`
    and padding :math:`p_\text{before}`, :math:`p_\text{after}`,

    .. math::

        o = \left\lfloor \frac{n + p_\text{before} + p_\text{after} - k}{s}
            \right\rfloor + 1 .

    With ``"valid"`` padding (none) a remainder that does not fill a whole
    window is dropped: 7 inputs in windows of 2 give :math:`\lfloor 5/2\rfloor
    + 1 = 3` outputs, and the 7th input is read by no window (its gradient is
    0). ``"same"`` pads so that :math:`o = \lceil n/s \rceil` (7 → 4).

    Parameters
    ----------
    pool_size : int or tuple of int, default 2
        Window size :math:`k`; a tuple fixes the spatial rank.
    strides : int or tuple of int, optional
        Step between windows; defaults to ``pool_size`` (disjoint regions).
    padding : {"valid", "same"} or int or tuple, default "valid"
        As for :class:`Conv`. Padded entries are left out of the mean (the
        divisor counts only real entries, like Keras' ``"same"`` and PyTorch's
        ``count_include_pad=False``).
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    name : str, optional
        Layer name (``"avg_pool_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``AvgPool 'avg_pool_1':
        invalid value for `pool_size`: expected positive ints, received 0.``;
        the same form for ``strides``; ``padding`` (``'valid'``, ``'same'``, a
        non-negative int, a tuple of those or of ``(before, after)`` pairs,
        each side less than ``pool_size``); ``data_format`` other than
        ``"channels_last"``; ``dtype``, ``name``, ``seed`` and ``trainable``.
        On an input: ``expected input with at least 3 dims (batch, *spatial,
        channels)`` (or exactly the rank of a 1-D/2-D/3-D layer), a padding
        tuple whose length is not the spatial rank, ``pool window ... is larger
        than the padded input ...``. In backward: a ``dy`` whose shape is not
        the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With :math:`R_o` the real (unpadded) input positions of window :math:`o`,

    .. math::

        Y_{n,o,c} = \frac{1}{|R_o|}\sum_{p \in R_o} X_{n,p,c},
        \qquad
        \frac{\partial z}{\partial X_{n,p,c}} =
            \sum_{o\,:\,p \in R_o} \frac{1}{|R_o|}\frac{\partial z}{\partial Y_{n,o,c}}.

    There are no parameters. **Jacobian structure.** Row :math:`(n, o, c)` of
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T` holds
    :math:`1/|R_o|` at the columns of window :math:`o`, channel :math:`c`; the
    matrix does not depend on :math:`X` (pooling by averaging is linear).

    **Computation.** The window sums are added tap by tap from whole strided
    slices, in the window's C order; with few channels the forward pass first
    copies each tap of the last spatial axis to an array of its own, as
    :class:`MaxPool` does. The results are the same bit for bit.

    See Also
    --------
    MaxPool

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.AvgPool((2, 2)).output_shape((None, 28, 28, 6))
    (None, 14, 14, 6)
    >>> x = np.array([1.0, 5.0, 2.0, 3.0]).reshape(1, 4, 1)
    >>> ln.AvgPool(2, dtype="float64").forward(x)[0, :, 0]
    array([3. , 2.5])
    """

    _default_name = "avg_pool"
    fresh_output = True
    fresh_gradient = True

    def compute_forward(self, x, training):
        k, s, pads, out = self._geometry(x.shape)
        xp = _ops.pad(x, pads, ws=self.workspace)
        if any(b or a for b, a in pads):
            scale = 1 / _ops.window_counts(x.shape[1:-1], k, out, s, pads).astype(x.dtype)
        else:
            scale = x.dtype.type(1 / math.prod(k))
        acc = np.empty((x.shape[0], *out, x.shape[-1]), x.dtype)
        tap_views = self._tap_views(xp, k, s, out)

        def part(b: slice) -> None:  # the samples b (parts run side by side)
            ab, views = acc[b], tap_views(b)
            np.copyto(ab, views[0])
            for v in views[1:]:
                np.add(ab, v, out=ab)
            ab *= scale

        threads.over_batch(part, x.shape[0], 3 * xp.size)
        return acc, PoolSaved(scale, xp.shape, k, s, pads, out)

    def compute_backward_input(self, dy, saved):
        dxp, disjoint = _window_grad_buffer(saved, dy.dtype, self.workspace)
        slices = [sl for _, sl in _window_taps(saved)]

        def part(b: slice) -> None:
            g = dy[b] * saved.weights  # 1 / |R_o| per window
            db = dxp[b]
            for sl in slices:
                if disjoint:
                    db[sl] = g
                else:
                    db[sl] += g

        threads.over_batch(part, dy.shape[0], 2 * dxp.size)
        return _ops.crop_copy(dxp, saved.pads)


class MaxPool1D(MaxPool):
    """:class:`MaxPool` for inputs ``(batch, length, channels)``."""

    _default_name = "max_pool1d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 1


class MaxPool2D(MaxPool):
    """:class:`MaxPool` for inputs ``(batch, height, width, channels)``."""

    _default_name = "max_pool2d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 2


class AvgPool1D(AvgPool):
    """:class:`AvgPool` for inputs ``(batch, length, channels)``."""

    _default_name = "avg_pool1d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 1


class AvgPool2D(AvgPool):
    """:class:`AvgPool` for inputs ``(batch, height, width, channels)``."""

    _default_name = "avg_pool2d"
    fresh_output = True  # declarations are never inherited: restated for the alias
    fresh_gradient = True
    _rank = 2


class MaxPool3D(MaxPool):
    """:class:`MaxPool` for inputs ``(batch, depth, height, width, channels)``."""

    _default_name = "max_pool3d"
    fresh_output = True  # the same computation as its parent's
    _rank = 3


class AvgPool3D(AvgPool):
    """:class:`AvgPool` for inputs ``(batch, depth, height, width, channels)``."""

    _default_name = "avg_pool3d"
    fresh_output = True  # the same computation as its parent's
    _rank = 3


class MaxPooling1D(MaxPool1D):
    """Keras's name for :class:`MaxPool1D` (same arguments and defaults)."""

    _default_name = "max_pooling1d"
    fresh_output = True  # the same computation as its parent's


class MaxPooling2D(MaxPool2D):
    """Keras's name for :class:`MaxPool2D` (same arguments and defaults).

    Examples
    --------
    >>> import layernet as ln
    >>> ln.MaxPooling2D((2, 2)).output_shape((None, 26, 26, 32))
    (None, 13, 13, 32)
    """

    _default_name = "max_pooling2d"
    fresh_output = True  # the same computation as its parent's


class MaxPooling3D(MaxPool3D):
    """Keras's name for :class:`MaxPool3D` (same arguments and defaults)."""

    _default_name = "max_pooling3d"
    fresh_output = True  # the same computation as its parent's


class AveragePooling1D(AvgPool1D):
    """Keras's name for :class:`AvgPool1D` (same arguments and defaults)."""

    _default_name = "average_pooling1d"
    fresh_output = True  # the same computation as its parent's


class AveragePooling2D(AvgPool2D):
    """Keras's name for :class:`AvgPool2D` (same arguments and defaults)."""

    _default_name = "average_pooling2d"
    fresh_output = True  # the same computation as its parent's


class AveragePooling3D(AvgPool3D):
    """Keras's name for :class:`AvgPool3D` (same arguments and defaults)."""

    _default_name = "average_pooling3d"
    fresh_output = True  # the same computation as its parent's


class GlobalPoolSaved(NamedTuple):
    """What the global pooling layers keep for backward."""

    x_shape: tuple[int, ...]  #: the input's shape
    winners: np.ndarray | None  #: flat position of each maximum, ``(batch, channels)``
    #: With a mask: the mask as weights ``(batch, positions, 1)`` (average pooling),
    #: or which samples have no unmasked position ``(batch,)`` (max pooling).
    mask: np.ndarray | None = None
    #: With a mask, average pooling: the unmasked positions per sample ``(batch, 1, 1)``.
    valid: np.ndarray | None = None


class _GlobalPool(Layer):
    """Pooling over every spatial position at once (the public classes fix the rank)."""

    _rank = 1

    def __init__(
        self,
        data_format: str | None = None,
        keepdims: bool = False,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.data_format = check_data_format(data_format, self.owner)
        self.keepdims = check_bool(keepdims, "keepdims", self.owner)

    @property
    def input_ndim(self) -> int:  # type: ignore[override]
        return self._rank + 2

    def get_config(self) -> dict[str, Any]:
        return {"data_format": self.data_format, "keepdims": self.keepdims, **super().get_config()}

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if any(n is not None and n < 1 for n in shape[1:-1]):
            raise ValueError(
                f"{self.owner}: expected at least one position along every spatial axis, "
                f"got shape {shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        if self.keepdims:
            return (input_shape[0], *(1,) * self._rank, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def _out_shape(self, x_shape):
        return self.compute_output_shape(x_shape)

    def _flat_mask(self, mask: Any, x_shape: tuple[int, ...]) -> np.ndarray:
        """The mask as booleans ``(batch, positions)``, checked against the input."""
        if isinstance(mask, list | tuple):
            mask = mask[0]
        m = np.asarray(mask)
        if m.shape != tuple(x_shape[:-1]):
            raise ValueError(
                f"{self.owner}: expected a mask of shape {shape_str(x_shape[:-1])} "
                f"(batch and positions), got shape {shape_str(m.shape)}."
            )
        return m.reshape(x_shape[0], math.prod(x_shape[1:-1])).astype(bool)


class GlobalAveragePooling1D(_GlobalPool):
    r"""The mean over all positions of ``(batch, length, channels)``, per channel.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)`` with :math:`r` = 1 here (2 and 3
    for the 2-D and 3-D classes); output ``(batch, channels)``, or ``(batch, 1,
    ..., 1, channels)`` with ``keepdims=True``.

    Parameters
    ----------
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    keepdims : bool, default False
        Keep the spatial axes with size 1: output ``(batch, 1, channels)``
        instead of ``(batch, channels)``.
    name : str, optional
        Layer name (``"global_average_pooling1d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction: ``data_format`` other than ``"channels_last"``,
        ``keepdims`` not a bool, or an invalid ``dtype``, ``name``, ``seed`` or
        ``trainable``, each naming the layer and the argument. On an input: a
        number of dims other than :math:`r + 2`, or ``expected at least one
        position along every spatial axis, got shape ...``. In backward: a
        ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    Over the :math:`M = \prod_i n_i` positions :math:`p` of a sample,

    .. math::

        Y_{n,c} = \frac1M\sum_p X_{n,p,c},\qquad
        \frac{\partial z}{\partial X_{n,p,c}} = \frac{G_{n,c}}{M}.

    The map is linear: row :math:`(n, c)` of the Jacobian holds :math:`1/M` at
    every position of sample :math:`n`, channel :math:`c`. No parameters. The
    2-D and 3-D classes are the same over more spatial axes.

    With a mask :math:`m_{n,p} \in \{0, 1\}` (``mask=`` of shape ``(batch,
    positions)``, or the mask a functional model hands on, e.g. from
    ``Embedding(mask_zero=True)``), the mean runs over the unmasked positions
    only, as in Keras:

    .. math::

        Y_{n,c} = \frac{\sum_p m_{n,p} X_{n,p,c}}{M_n},\quad M_n = \sum_p m_{n,p},\qquad
        \frac{\partial z}{\partial X_{n,p,c}} = \frac{m_{n,p}\, G_{n,c}}{M_n}.

    A sample with every position masked outputs zeros (Keras gives NaN there).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.GlobalAveragePooling2D().output_shape((None, 7, 7, 64))
    (None, 64)
    >>> x = np.array([1.0, 2.0, 6.0]).reshape(1, 3, 1)
    >>> ln.GlobalAveragePooling1D(dtype="float64").forward(x)
    array([[3.]])
    >>> ln.GlobalAveragePooling1D(dtype="float64").forward(x, mask=np.array([[1, 1, 0]]))
    array([[1.5]])
    """

    _default_name = "global_average_pooling1d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True
    _rank = 1

    def compute_forward(self, x, training, mask=None):
        if mask is None:
            axes = tuple(range(1, x.ndim - 1))
            y = x.mean(axis=axes, keepdims=self.keepdims, dtype=x.dtype)
            return y, GlobalPoolSaved(x.shape, None)
        n, c = x.shape[0], x.shape[-1]
        w = self._flat_mask(mask, x.shape)[:, :, None].astype(x.dtype)  # (N, M, 1)
        count = np.maximum(w.sum(axis=1, keepdims=True), 1)  # no position: a zero output
        flat = np.where(w > 0, x.reshape(n, w.shape[1], c), 0)  # masked values never leak
        y = flat.sum(axis=1, keepdims=True) / count
        return y.reshape(self._out_shape(x.shape)), GlobalPoolSaved(x.shape, None, w, count)

    def compute_backward_input(self, dy, saved):
        x_shape = saved.x_shape
        if saved.mask is not None:
            n, c = x_shape[0], x_shape[-1]
            g = dy.reshape(n, 1, c) / saved.valid * saved.mask
            return np.ascontiguousarray(g.reshape(x_shape))
        m = math.prod(x_shape[1:-1])
        g = dy.reshape(x_shape[0], *(1,) * (len(x_shape) - 2), x_shape[-1]) / dy.dtype.type(m)
        return np.broadcast_to(g, x_shape).copy()


class GlobalMaxPooling1D(_GlobalPool):
    r"""The maximum over all positions of ``(batch, length, channels)``, per channel.

    .. rubric:: Input and output shape

    Input ``(batch, n_1, ..., n_r, channels)`` with :math:`r` = 1 here (2 and 3
    for the 2-D and 3-D classes); output ``(batch, channels)``, or ``(batch, 1,
    ..., 1, channels)`` with ``keepdims=True``.

    Parameters
    ----------
    data_format : {"channels_last", None}, optional
        Keras's argument; only channels-last is supported.
    keepdims : bool, default False
        Keep the spatial axes with size 1.
    name : str, optional
        Layer name (``"global_max_pooling1d_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Unused (no parameters); accepted like every layer's.
    trainable : bool, default True
        No effect (no parameters); accepted like every layer's.

    Raises
    ------
    ValueError
        At construction: ``data_format`` other than ``"channels_last"``,
        ``keepdims`` not a bool, or an invalid ``dtype``, ``name``, ``seed`` or
        ``trainable``, each naming the layer and the argument. On an input: a
        number of dims other than :math:`r + 2`, or ``expected at least one
        position along every spatial axis, got shape ...``. In backward: a
        ``dy`` whose shape is not the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With :math:`p^*_{n,c}` the position of the maximum of sample :math:`n`,
    channel :math:`c`,

    .. math::

        Y_{n,c} = \max_p X_{n,p,c},\qquad
        \frac{\partial z}{\partial X_{n,p,c}} = G_{n,c}\,\mathbb 1[p = p^*_{n,c}].

    At a tie the maximum has no derivative; the gradient goes to the first
    maximal position in C order (like :class:`MaxPool`). The Jacobian is a
    selection matrix, one 1 per row. No parameters.

    With a mask :math:`m_{n,p}` (``mask=`` of shape ``(batch, positions)``, or a
    functional model's mask), the maximum runs over the unmasked positions only,
    :math:`Y_{n,c} = \max_{p:\, m_{n,p} = 1} X_{n,p,c}`, with the same
    derivative; a sample with every position masked outputs zeros and receives no
    gradient. Keras 3's ``GlobalMaxPooling1D`` ignores masks: a model that feeds
    it a mask (``Embedding(mask_zero=True)`` straight into the pooling) differs
    from Keras there.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.GlobalMaxPooling1D(keepdims=True).output_shape((None, 40, 8))
    (None, 1, 8)
    >>> x = np.array([1.0, 7.0, 6.0]).reshape(1, 3, 1)
    >>> pool = ln.GlobalMaxPooling1D(dtype="float64")
    >>> pool.forward(x)
    array([[7.]])
    >>> pool.backward_input(np.array([[2.0]]))[0, :, 0]
    array([0., 2., 0.])
    >>> pool.forward(x, mask=np.array([[1, 0, 1]]))
    array([[6.]])
    """

    _default_name = "global_max_pooling1d"
    _rank = 1

    def compute_forward(self, x, training, mask=None):
        n, c = x.shape[0], x.shape[-1]
        flat = x.reshape(n, math.prod(x.shape[1:-1]), c)  # explicit: -1 is ambiguous when empty
        empty = None
        if mask is not None:
            keep = self._flat_mask(mask, x.shape)
            flat = np.where(keep[:, :, None], flat, -np.inf)
            empty = ~keep.any(axis=1)  # samples with every position masked: output 0
        where = np.argmax(flat, axis=1) if n * c else np.zeros((n, c), np.intp)
        y = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0, :]
        if empty is not None and empty.any():
            y[empty] = 0
        return y.reshape(self._out_shape(x.shape)), GlobalPoolSaved(x.shape, where, empty)

    def compute_backward_input(self, dy, saved):
        x_shape, where = saved.x_shape, saved.winners
        n, c = x_shape[0], x_shape[-1]
        dx = np.zeros((n, math.prod(x_shape[1:-1]), c), dtype=dy.dtype)
        g = dy.reshape(n, 1, c)
        if saved.mask is not None:
            g = np.where(saved.mask[:, None, None], 0, g)
        np.put_along_axis(dx, where[:, None, :], g, axis=1)
        return dx.reshape(x_shape)


class GlobalAveragePooling2D(GlobalAveragePooling1D):
    """:class:`GlobalAveragePooling1D` over height and width of 4-D channels-last inputs.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.GlobalAveragePooling2D().output_shape((None, 7, 7, 64))
    (None, 64)
    >>> ln.GlobalAveragePooling2D(keepdims=True).output_shape((None, 7, 7, 64))
    (None, 1, 1, 64)
    """

    _default_name = "global_average_pooling2d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True
    _rank = 2


class GlobalAveragePooling3D(GlobalAveragePooling1D):
    """:class:`GlobalAveragePooling1D` over depth, height and width of 5-D inputs."""

    _default_name = "global_average_pooling3d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True
    _rank = 3


class GlobalMaxPooling2D(GlobalMaxPooling1D):
    """:class:`GlobalMaxPooling1D` over height and width of 4-D channels-last inputs."""

    _default_name = "global_max_pooling2d"
    _rank = 2


class GlobalMaxPooling3D(GlobalMaxPooling1D):
    """:class:`GlobalMaxPooling1D` over depth, height and width of 5-D inputs."""

    _default_name = "global_max_pooling3d"
    _rank = 3


class GlobalAvgPool1D(GlobalAveragePooling1D):
    """Keras's short name for :class:`GlobalAveragePooling1D`."""

    _default_name = "global_avg_pool1d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True


class GlobalAvgPool2D(GlobalAveragePooling2D):
    """Keras's short name for :class:`GlobalAveragePooling2D`."""

    _default_name = "global_avg_pool2d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True


class GlobalAvgPool3D(GlobalAveragePooling3D):
    """Keras's short name for :class:`GlobalAveragePooling3D`."""

    _default_name = "global_avg_pool3d"
    fresh_output = True  # a new mean; backward: a new array
    fresh_gradient = True


class GlobalMaxPool1D(GlobalMaxPooling1D):
    """Keras's short name for :class:`GlobalMaxPooling1D`."""

    _default_name = "global_max_pool1d"


class GlobalMaxPool2D(GlobalMaxPooling2D):
    """Keras's short name for :class:`GlobalMaxPooling2D`."""

    _default_name = "global_max_pool2d"


class GlobalMaxPool3D(GlobalMaxPooling3D):
    """Keras's short name for :class:`GlobalMaxPooling3D`."""

    _default_name = "global_max_pool3d"
