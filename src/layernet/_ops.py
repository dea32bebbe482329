"""Array kernels shared by the convolution and pooling layers.

All arrays are channels-last, ``(batch, *spatial, channels)``. A *tap* is one
position inside a window; for each tap the input entries it sees across all
output positions form one strided slice, so every loop here runs over the few
taps of a window, never over output positions.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import threads
from ._sizes import check_array_bytes

Pads = tuple[tuple[int, int], ...]

#: Whether the shape-keyed fast paths are taken (the convolution input gradient as
#: products of patch matrices, pooling over reshaped views of tiled windows, the blocked
#: kernel gradient). Off (``LAYERNET_FAST_PATHS=0`` in the environment, or inside
#: :func:`fast_paths`) every layer takes its plain path: the results are the same to
#: float rounding, which the tests check.
FAST_PATHS = os.environ.get("LAYERNET_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no")


@contextlib.contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Turn the fast paths on or off inside the block (tests compare the two)."""
    global FAST_PATHS
    old, FAST_PATHS = FAST_PATHS, bool(enabled)
    try:
        yield
    finally:
        FAST_PATHS = old


class Workspace:
    """Scratch arrays reused from one call to the next, by name and shape.

    Fresh large arrays cost page faults on every step; reusing them does not.
    Only temporaries that never leave the layer live here (never an output).
    Each name keeps the arrays of its ``slots`` most recently used shapes, so a
    training run alternating full batches with a smaller last batch allocates
    nothing after its first epoch. A model gives each layer one workspace per
    run (training, validation) and drops them when the run ends, which frees
    the buffers.

    Every layer has one as :attr:`Layer.workspace <layernet.Layer>`; a layer of
    your own may use it for its temporaries through :meth:`get`.

    Parameters
    ----------
    slots : int, default 2
        How many shapes each name keeps arrays for (the most recently used).

    Attributes
    ----------
    allocations : int
        Number of arrays created for the workspace so far (not counting those
        made while :meth:`disabled`).
    enabled : bool
        False inside :meth:`disabled`: :meth:`get` then returns fresh arrays
        and keeps nothing.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ws = ln.Workspace()
    >>> a, fresh = ws.get("tmp", (2, 3), np.dtype("float32"))
    >>> b, again = ws.get("tmp", (2, 3), np.dtype("float32"))
    >>> fresh, again, a is b, ws.allocations
    (True, False, True, 1)
    """

    def __init__(self, slots: int = 2) -> None:
        self._arrays: dict[str, list[np.ndarray]] = {}
        self.slots = slots
        self.enabled = True
        self.allocations = 0

    def get(
        self, name: str, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None
    ) -> tuple[np.ndarray, bool]:
        """An array of ``shape``; ``fresh`` tells whether it was just created (and filled).

        Parameters
        ----------
        name : str
            The temporary's name; each name keeps its own arrays.
        shape : tuple of int
            Shape of the array.
        dtype : numpy.dtype
            Its dtype.
        fill : float, optional
            Value a *fresh* array is filled with; a reused one keeps its
            contents (uninitialised when ``None``).

        Returns
        -------
        array : ndarray
            The kept array for ``(name, shape, dtype)``, or a new one.
        fresh : bool
            Whether ``array`` was just created.
        """
        if self.enabled:
            kept = self._arrays.setdefault(name, [])
            for i, a in enumerate(kept):
                if a.shape == shape and a.dtype == dtype:
                    if i:  # most recently used first
                        kept.insert(0, kept.pop(i))
                    return a, False
        check_array_bytes(shape, dtype, "", f"scratch array {name!r}")
        a = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        if self.enabled:
            kept.insert(0, a)
            del kept[self.slots :]
            self.allocations += 1
        return a, True

    def clear(self) -> None:
        """Drop every array (they are freed once nothing else refers to them)."""
        self._arrays.clear()

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays kept."""
        return sum(a.nbytes for kept in self._arrays.values() for a in kept)

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Allocate fresh arrays inside the block (the kept ones stay untouched)."""
        old, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = old


def output_size(n: int, window: int, stride: int, before: int, after: int) -> int:
    """Number of window positions along one axis (``0`` or less: window does not fit)."""
    return (n + before + after - window) // stride + 1


def output_sizes(
    spatial: Sequence[int], window: Sequence[int], strides: Sequence[int], pads: Pads
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window positions per axis, and the padded extents (a size below 1: no fit)."""
    out = tuple(
        output_size(n, w, s, b, a)
        for n, w, s, (b, a) in zip(spatial, window, strides, pads, strict=True)
    )
    padded = tuple(n + b + a for n, (b, a) in zip(spatial, pads, strict=True))
    return out, padded


def pad(
    x: np.ndarray,
    pads: Pads,
    value: float = 0.0,
    ws: Workspace | None = None,
    name: str = "pad",
) -> np.ndarray:
    """Pad the spatial axes of a channels-last array (no copy when nothing to pad).

    With a workspace the padded array is reused: its border keeps ``value`` and
    only the interior is written.
    """
    sign = math.copysign(1.0, value)  # (0.0 and -0.0 are equal keys: told apart by sign)
    try:
        plan = _pad_plan(x.shape, pads, value, sign, name)
    except TypeError:  # pads given as lists
        plan = _pad_plan(x.shape, tuple(map(tuple, pads)), value, sign, name)
    if plan is None:
        return x
    key, shape, interior = plan
    if ws is None:
        out = np.full(shape, value, dtype=x.dtype)
    else:
        out, _ = ws.get(key, shape, x.dtype, fill=value)
    out[interior] = x
    return out


@functools.lru_cache(maxsize=512)
def _pad_plan(shape, pads, value, sign, name):
    """:func:`pad`'s workspace name, padded shape and interior index (``None``: no padding).

    Cached by geometry, fill value (and its sign) and name; a NaN fill, unequal to itself,
    is planned again at each call.
    """
    if not any(b or a for b, a in pads):
        return None
    spatial = shape[1:-1]
    padded = (shape[0], *(n + b + a for n, (b, a) in zip(spatial, pads, strict=True)), shape[-1])
    interior = (slice(None), *(slice(b, b + n) for n, (b, _) in zip(spatial, pads, strict=True)))
    return f"{name}{value}{pads}", padded, interior


def crop(xp: np.ndarray, pads: Pads) -> np.ndarray:
    """Undo :func:`pad`: the view of ``xp`` without its padding."""
    if not any(b or a for b, a in pads):
        return xp
    return xp[
        (slice(None), *(slice(b, n - a) for n, (b, a) in zip(xp.shape[1:-1], pads, strict=True)))
    ]


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b)`` without reading the floating-point flags BLAS leaves.

    OpenBLAS's kernels can raise flags on memory past the operands that they read
    and discard (NumPy then warns "invalid value encountered in matmul" about finite
    operands, depending on what lies next to them). A product that does overflow
    shows as inf or NaN in its result, which the training loop and the losses check.
    Every product of a training step goes through here (most through
    :func:`layernet.threads.matmul`, which also picks the thread count).
    """
    if _ERROR_STATE is None:
        with np.errstate(all="ignore"):
            return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    token = _ERROR_STATE.set(_ignoring(_ERROR_STATE.get()))
    try:
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    finally:
        _ERROR_STATE.reset(token)


# NumPy (2.0 and later) keeps its floating-point error handling in a context variable,
# which ``np.errstate`` sets on entry and resets on exit. Setting it directly with an
# "ignore all" state derived from the current one (bufsize and error callback kept)
# is what ``np.errstate(all="ignore")`` does, at a fifth of its cost per product; a
# NumPy without these names falls back to ``np.errstate``.
_ERROR_STATE: Any = None
try:
    _umath = importlib.import_module("numpy._core._multiarray_umath")
    _make_extobj = _umath._make_extobj
    _make_extobj(all="ignore")  # (what product calls: checked once here)
    _ERROR_STATE = _umath._extobj_contextvar
except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - NumPy version
    _ERROR_STATE = None

#: The last error state :func:`product` met and its "ignore all" variant, one tuple
#: (replaced whole, so that threads never see a state paired with another's variant).
_IGNORING: tuple[Any, Any] = (None, None)


def _ignoring(current: Any) -> Any:
    """The current error state with every floating-point error ignored."""
    global _IGNORING
    seen, ignoring = _IGNORING
    if seen is not current:
        ignoring = _make_extobj(all="ignore")  # (derived from the current state)
        _IGNORING = (current, ignoring)
    return ignoring


#: Rows at most this wide have their maxima taken down the columns of a transposed copy.
ROW_MAX_WIDTH = 32


def row_max(a: np.ndarray) -> np.ndarray:
    """``a.max(axis=1, keepdims=True)`` of a 2-D array, the same values.

    NumPy reduces each short row on its own (about 5 µs for 100 rows of 10 logits);
    for rows of at most :data:`ROW_MAX_WIDTH` entries, a transposed copy reduced
    down its columns runs the comparisons over whole rows of the copy instead (about
    2 µs). The maximum of a set of numbers does not depend on the order it is taken
    in (NaN propagates either way).
    """
    n, k = a.shape
    if FAST_PATHS and 0 < k <= ROW_MAX_WIDTH and n >= 16:
        return np.ascontiguousarray(a.T).max(axis=0)[:, None]
    return a.max(axis=1, keepdims=True)


#: Entries of the zeros :func:`relu` compares with, per dtype (read-only, shared).
RELU_BLOCK = 1 << 16
_ZEROS: dict[np.dtype, np.ndarray] = {}


def relu(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``np.maximum(x, 0, out=out)``, bit for bit (NaN kept, ``-0.0`` made ``+0.0``).

    NumPy's ``maximum`` against a scalar runs a scalar loop, about three times
    slower than against an array; this compares C-contiguous float arrays with a
    shared read-only block of zeros, block by block, split over the batch when
    large (:func:`layernet.threads.over_batch`). ``out`` may be ``x``.
    """
    flat = x.reshape(-1) if x.flags.c_contiguous else None
    dest = out.reshape(-1) if out.flags.c_contiguous else None
    if not FAST_PATHS or x.dtype.kind != "f" or flat is None or dest is None:
        return np.maximum(x, 0, out=out)
    zeros = _ZEROS.get(x.dtype)
    if zeros is None:
        zeros = _ZEROS[x.dtype] = np.zeros(RELU_BLOCK, x.dtype)
        zeros.flags.writeable = False
    size = flat.size
    if size <= RELU_BLOCK:  # one block: no split to consider
        np.maximum(flat, zeros[:size], out=dest)
        return out

    def part(b: slice) -> None:  # the blocks b
        for start in range(b.start * RELU_BLOCK, min(b.stop * RELU_BLOCK, size), RELU_BLOCK):
            stop = min(start + RELU_BLOCK, size)
            np.maximum(flat[start:stop], zeros[: stop - start], out=dest[start:stop])

    threads.over_batch(part, -(-size // RELU_BLOCK), 2 * size)
    return out


def column_sums(a: np.ndarray, ws: Workspace) -> np.ndarray:
    """``a.sum(axis=0)`` for a 2-D array, as one matrix-vector product (several times faster)."""
    ones = ws.get("ones", (a.shape[0],), a.dtype, fill=1.0)[0]
    return product(ones, a)


def weight_grad(col: np.ndarray, dy2: np.ndarray) -> np.ndarray:
    """``col.T @ dy2`` (patches by output gradients: the kernel gradient).

    When the product is tiny and the shared dimension huge (a first layer with
    one channel), BLAS streams the operands badly; summing products over blocks
    of 4096 rows is about twice as fast there. Elsewhere it is one product.
    """
    m = col.shape[0]
    if col.shape[1] * dy2.shape[1] > 1024 or m <= 8192 or not FAST_PATHS:
        return threads.matmul(col.T, dy2)
    block = 4096
    with threads.sized(2 * block * col.shape[1] * dy2.shape[1]):  # one switch for all blocks
        acc = threads.matmul(col[:block].T, dy2[:block])
        for start in range(block, m, block):
            acc += threads.matmul(col[start : start + block].T, dy2[start : start + block])
    return acc


def crop_copy(xp: np.ndarray, pads: Pads) -> np.ndarray:
    """A fresh contiguous copy of ``xp`` without its padding (``xp`` itself if unpadded)."""
    return np.array(crop(xp, pads)) if any(b or a for b, a in pads) else xp


def zeros_padded(shape: tuple[int, ...], pads: Pads, dtype: np.dtype, ws: Workspace) -> np.ndarray:
    """Zeros to accumulate a padded gradient in: reused when padded (it is cropped into a
    fresh array afterwards), fresh when not (it is returned as it is)."""
    if any(b or a for b, a in pads):
        buf, fresh = ws.get("dxp", shape, dtype, fill=0.0)
        if not fresh:
            buf.fill(0)
        return buf
    return np.zeros(shape, dtype)


def taps(
    kernel: Sequence[int], out: Sequence[int], strides: Sequence[int], dilation: Sequence[int]
) -> tuple[tuple[tuple[int, ...], tuple[slice, ...]], ...]:
    """``(tap, slices)`` pairs: the slices of the padded input that ``tap`` sees.

    For tap ``(t_1, ..., t_r)`` and output position ``(o_1, ..., o_r)`` the
    input position is ``o_i * s_i + t_i * d_i`` along axis ``i``. Cached: the
    same geometry recurs on every batch.
    """
    return _taps(tuple(kernel), tuple(out), tuple(strides), tuple(dilation))


@functools.lru_cache(maxsize=256)
def _taps(kernel, out, strides, dilation):
    return tuple(
        (
            tap,
            (
                slice(None),
                *(
                    slice(t * d, t * d + s * (o - 1) + 1, s)
                    for t, o, s, d in zip(tap, out, strides, dilation, strict=True)
                ),
            ),
        )
        for tap in np.ndindex(*kernel)
    )


#: Pooling copies the last spatial axis's taps apart first (:func:`split_phases`) when
#: one position's channels take at least 2 entries and at most this many bytes
#: (``PHASE_GRAD_MAX_BYTES`` for max pooling's backward pass). NumPy runs an element-wise
#: operation on a strided tap slice as one inner loop per position, ``C`` entries
#: long: with few channels the loop's fixed cost, not the memory, sets the time. A
#: copy that moves each position's channels as one element, then operations whose
#: inner loops run along whole rows, take less. Measured on a 2-core AMD EPYC, 2x2
#: windows, forward / backward in microseconds on 2 threads, per-tap slices against
#: phases: ``(256, 24, 24, 6)`` 1017 / 597 against 703 / 613, ``(256, 24, 24, 3)`` 1551
#: / 771 against 780 / 670, ``(256, 24, 24, 4)`` 952 / 844 against 485 / 482,
#: ``(256, 8, 8, 16)`` 294 / 178 against 206 / 166, ``(32, 16, 16, 16, 4)`` 991 / 765
#: against 621 / 473, ``(100, 40, 6)`` 57 / 31 against 37 / 34; with one channel (whose
#: strided slices already loop along the axis) 79 / 45 against 96 / 66 at ``(64, 28, 28,
#: 1)``, with 12 channels the backward pass 1061 against 1301 µs.
PHASE_MAX_BYTES = 64
PHASE_GRAD_MAX_BYTES = 16


def use_phases(x: np.ndarray, window_last: int, gradient: bool = False) -> bool:
    """Whether pooling splits ``x`` (the padded input, or with ``gradient`` max pooling's
    output gradient) into phases.

    Taken for windows of at least 2 along the last spatial axis, at least 2
    channels of at most ``PHASE_MAX_BYTES`` (``PHASE_GRAD_MAX_BYTES``) together, a
    contiguous channel axis and a non-empty array; never with the fast paths off.
    """
    limit = PHASE_GRAD_MAX_BYTES if gradient else PHASE_MAX_BYTES
    return (
        FAST_PATHS
        and window_last > 1
        and x.size > 0
        and x.shape[-1] > 1
        and x.strides[-1] == x.itemsize
        and x.shape[-1] * x.itemsize <= limit
    )


def _positions(a: np.ndarray) -> np.ndarray:
    """``a`` without its last axis, each position's channels one opaque element (a view)."""
    return a.view(np.dtype((np.void, a.shape[-1] * a.itemsize)))[..., 0]


def split_phases(xp: np.ndarray, window: int, stride: int, out: int, phases: np.ndarray) -> None:
    """Copy each tap of the last spatial axis into its own contiguous array.

    ``phases[b][..., o, :] = xp[..., o * stride + b, :]`` for ``b < window`` and
    ``o < out``: ``phases`` has the shape ``(window, *xp.shape[:-2], out, C)``.
    A tap's slice of ``xp`` along the other spatial axes is then a row slice of
    ``phases[b]``, whose inner loops run along ``out * C`` contiguous entries. Each
    position's channels are moved as one element, the bits unchanged.
    """
    src, dst = _positions(xp), _positions(phases)
    reach = stride * (out - 1) + 1
    for b in range(window):
        np.copyto(dst[b], src[..., b : b + reach : stride])


def merge_phases(
    phases: np.ndarray, stride: int, dxp: np.ndarray, rows: tuple[slice, ...] = ()
) -> None:
    """The inverse of :func:`split_phases` for disjoint taps: ``dxp[..., o * stride + b, :] =
    phases[b][..., o, :]``, on the leading slices ``rows`` of the axes before the last two."""
    src, dst = _positions(phases), _positions(dxp)
    out = phases.shape[-2]
    reach = stride * (out - 1) + 1
    for b in range(phases.shape[0]):
        index: tuple[Any, ...] = (*rows, Ellipsis, slice(b, b + reach, stride))
        np.copyto(dst[index], src[b][rows])


def phase_taps(
    window: Sequence[int], out: Sequence[int], strides: Sequence[int]
) -> tuple[tuple[int, tuple[slice, ...]], ...]:
    """``(b, slices)`` for every tap of a pooling window, in C order: the tap's slice of
    ``phases[b]`` (``b`` its place along the last spatial axis, see :func:`split_phases`)."""
    return tuple(
        (tap[-1], (slice(None), *sl[1:-1], slice(None)))
        for tap, sl in taps(window, out, strides, (1,) * len(window))
    )


def window_view(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Read-only strided view ``v[n, o, t, c] = xp[n, o*s + t*d, c]``, no copy.

    The view :func:`numpy.lib.stride_tricks.sliding_window_view` would give
    after striding and transposing, built directly from the strides.
    """
    sn, *sp, sc = xp.strides
    shape = (xp.shape[0], *out, *kernel, xp.shape[-1])
    st = (
        sn,
        *(a * s for a, s in zip(sp, strides, strict=True)),
        *(a * d for a, d in zip(sp, dilation, strict=True)),
        sc,
    )
    if xp.flags.c_contiguous and xp.size:
        view = np.ndarray(shape, xp.dtype, xp, 0, st)
        view.flags.writeable = False
        return view
    return as_strided(xp, shape, st, writeable=False)


def im2col(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    ws: Workspace | None = None,
    ones: bool = False,
    name: str = "col",
) -> np.ndarray:
    """Patches of ``xp`` as a matrix of shape ``(N*prod(out), prod(kernel)*C)``.

    Row ``(n, o)``, column ``(t, c)`` holds ``xp[n, o*s + t*d, c]``, so the
    matrix times the kernel reshaped to ``(prod(kernel)*C, filters)`` is the
    convolution. With ``ones`` a last column of ones is appended, so that a
    bias row appended to the kernel matrix is added by the same product (and
    its gradient comes out of the kernel-gradient product). With several
    channels the patches are one copy of a strided window view
    (:func:`window_view`) into a contiguous buffer; with one channel they are
    written tap by tap into a transposed buffer (contiguous writes) and returned
    as its transpose, which BLAS takes as it is.
    """
    n, c = xp.shape[0], xp.shape[-1]
    k_size, m = math.prod(kernel), n * math.prod(out)
    extra = int(ones)
    if c == 1:
        shape_t = (k_size + extra, m)
        col_t, fresh = (
            ws.get(name, shape_t, xp.dtype) if ws else (np.empty(shape_t, xp.dtype), True)
        )
        if ones and fresh:
            col_t[-1] = 1
        taps_t = col_t[:k_size].reshape((*kernel, n, *out), copy=False)  # a view
        tap_slices = taps(kernel, out, strides, dilation)

        def part_t(b: slice) -> None:  # the samples b (parts run side by side)
            xb = xp[b]
            for tap, sl in tap_slices:
                taps_t[tap][b] = xb[sl][..., 0]

        threads.over_batch(part_t, n, 2 * k_size * m)  # entries read and written
        return col_t.T
    col, patches, view = _patch_matrix(xp, kernel, out, strides, dilation, ws, ones, name)
    threads.over_batch(lambda b: np.copyto(patches[b], view[b]), n, 2 * patches.size)
    return col


def _patch_matrix(xp, kernel, out, strides, dilation, ws, ones, name):
    """:func:`im2col`'s matrix for several channels, unfilled: ``(col, patches, view)``.

    ``patches`` is ``col``'s patch columns seen as ``(N, *out, *kernel, C)``, ``view``
    the input's windows in the same shape (:func:`window_view`); copying ``view[b]``
    into ``patches[b]`` fills the rows of the samples ``b``.
    """
    n, c = xp.shape[0], xp.shape[-1]
    k_size, m = math.prod(kernel), n * math.prod(out)
    width = k_size * c + int(ones)
    # Rows padded to a multiple of 16 floats: BLAS runs markedly slower on odd row strides.
    shape = (m, -(-width // 16) * 16 if width > 64 else width)
    buf, fresh = ws.get(name, shape, xp.dtype) if ws else (np.empty(shape, xp.dtype), True)
    col = buf[:, :width]
    if ones and fresh:
        col[:, -1] = 1
    patches = col[:, : k_size * c].reshape((n, *out, *kernel, c), copy=False)  # a view
    return col, patches, window_view(xp, kernel, out, strides, dilation)


#: Bytes of patches :func:`patch_product` builds before multiplying them: a block that
#: stays in the core's cache between its copy and its product. Measured on 2 cores (AMD
#: EPYC, 1 MB of L2 cache a core), forward passes against the whole patch matrix then
#: one product (Conv2D B: 3.2-3.4 ms against 3.9-4.3; the ResNet block's 32 -> 32 channels:
#: 10.1-10.3 ms against 14.3): from 128 KB to 1 MB blocks all within a few per cent.
PATCH_BLOCK_BYTES = 512 * 2**10


def patch_product(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    w: np.ndarray,
    ws: Workspace,
    ones: bool = False,
    name: str = "col",
    y: np.ndarray | None = None,
    keep: bool = True,
) -> tuple[np.ndarray | None, np.ndarray]:
    """The convolution as ``im2col(xp) @ w``: ``(col, y)``, ``y`` of shape ``(N*prod(out), F)``.

    ``col`` is :func:`im2col`'s patch matrix (kept for the kernel gradient) and ``w``
    the kernel matrix ``(rows of col's columns, F)``. With several channels the
    patches are copied and multiplied block by block, a few samples at a time
    (about ``PATCH_BLOCK_BYTES`` of patches), so that each block is multiplied while
    it is still in cache; the blocks are fixed by the shapes alone and handed out
    to threads (:func:`layernet.threads.over_batch`, each block's product on one
    BLAS thread), so every row comes from the same product whatever the number of
    threads. With one channel, patches that :func:`layernet.threads.over_batch`
    would not split (under ``threads.MIN_SPLIT_SIZE`` entries copied: a thread's
    hand-over costs what the blocks save), or the fast paths off, it is
    :func:`im2col` and one product. ``name`` is the patch matrix's name in ``ws``;
    ``y``, when given, a C-contiguous array the result is written into.

    With ``keep=False`` the blocks are copied into a buffer of one block for each
    thread instead of into the whole patch matrix, which is then neither written out
    to memory nor kept: ``col`` is ``None`` when the blocks were taken (the kernel
    gradient then builds its blocks again, :func:`blocked_weight_grad`), and the
    whole matrix otherwise.
    """
    n, c = xp.shape[0], xp.shape[-1]
    entries = 2 * n * math.prod(out) * math.prod(kernel) * c  # the patches, read and written
    if c == 1 or not n or not FAST_PATHS or entries < threads.MIN_SPLIT_SIZE:
        col = im2col(xp, kernel, out, strides, dilation, ws, ones, name)
        return col, threads.matmul(col, w, out=y)
    if not keep:
        view = window_view(xp, kernel, out, strides, dilation)
        return None, _blocked_product(None, None, view, w, y, entries, ones, ws, f"{name}_block")
    col, patches, view = _patch_matrix(xp, kernel, out, strides, dilation, ws, ones, name)
    return col, _blocked_product(col, patches, view, w, y, entries)


def _block_plan(
    n: int, first: int, rows: int, row_bytes: int, block_bytes: int
) -> tuple[int, int, int, int]:
    """``(blocks, per_block, per_sample, most)``: how the patches of ``n`` samples go in
    blocks, and the most rows a block has.

    A sample has ``rows`` rows of ``row_bytes``, ``first`` positions along its first
    position axis. A block is a few whole samples (balanced; ``per_sample`` 0) when one
    sample's rows fit ``block_bytes``, otherwise ``per_block`` positions along the
    first axis of one sample (``per_sample`` blocks a sample).
    """
    if rows * row_bytes <= block_bytes:
        per_block = block_bytes // (rows * row_bytes)
        blocks = -(-n // per_block)
        return blocks, per_block, 0, -(-n // blocks) * rows
    per_block = max(1, block_bytes // ((rows // first) * row_bytes))
    per_sample = -(-first // per_block)
    return n * per_sample, per_block, per_sample, per_block * (rows // first)


def _block_span(
    i: int, n: int, blocks: int, per_block: int, per_sample: int, first: int
) -> tuple[slice, int, int]:
    """Block ``i`` of :func:`_block_plan`'s: ``(samples, a0, a1)``, positions ``a0:a1``
    of the first position axis of the samples ``samples``."""
    if per_sample:
        k, j = divmod(i, per_sample)
        return slice(k, k + 1), j * per_block, min((j + 1) * per_block, first)
    return slice(n * i // blocks, n * (i + 1) // blocks), 0, first


def _block_buffer(
    rows: int,
    k_size: int,
    dtype: np.dtype,
    ones: bool,
    ws: Workspace | None,
    name: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """A block's patch matrix, ``rows`` rows of ``k_size`` entries (and a column of ones):
    ``(matrix, patches)``, ``patches`` its first ``k_size`` columns, kept in ``ws`` as
    ``name`` (fresh without either). Rows wider than 64 entries are padded to a multiple
    of 16, as :func:`_patch_matrix`'s."""
    width = k_size + int(ones)
    shape = (rows, -(-width // 16) * 16 if width > 64 else width)
    if ws is None or name is None:
        buf, fresh = np.empty(shape, dtype), True
    else:
        buf, fresh = ws.get(name, shape, dtype)
    if ones and fresh:
        buf[:, k_size] = 1
    return buf[:, :width], buf[:, :k_size]


def _run_blocks(
    fn: Callable[[slice, Any], None],
    blocks: int,
    entries: int,
    buffer: Callable[[int | None], Any] | None,
) -> None:
    """``fn(blocks_b, buffer(part))`` through :func:`layernet.threads.over_batch`: each
    part gets a buffer of its own, made here in the calling thread (a workspace is not
    shared between threads) for the split ``over_batch`` makes; a part of another split
    (the cores free changed in between) gets a fresh one (``buffer(None)``). Without
    ``buffer``, ``fn(blocks_b, None)``."""
    if buffer is None:
        threads.over_batch(lambda b: fn(b, None), blocks, entries)
        return
    parts = threads.split_count(blocks, entries)
    buffers = {blocks * i // parts: buffer(i) for i in range(parts)}

    def run(b: slice) -> None:
        mats = buffers.get(b.start)
        fn(b, buffer(None) if mats is None else mats)

    threads.over_batch(run, blocks, entries)


def _blocked_product(
    col: np.ndarray | None,
    patches: np.ndarray | None,
    view: np.ndarray,
    w: np.ndarray,
    y: np.ndarray | None,
    entries: int,
    ones: bool = False,
    ws: Workspace | None = None,
    name: str = "col",
) -> np.ndarray:
    """``col @ w``, filling ``col`` (seen as ``patches``) from ``view`` block by block.

    ``patches`` and ``view`` have the shape ``(N, A, ...)``: a sample's rows of ``col``
    in C order over the position axes, the first of them ``A`` long, then the columns.
    A block is a few whole samples (balanced) or, when one sample's rows exceed
    ``PATCH_BLOCK_BYTES``, positions of one sample along ``A`` (:func:`_block_plan`).
    ``entries`` decides the split between threads (:func:`layernet.threads.over_batch`).
    Without ``col`` (and ``patches``) each thread copies its blocks into a buffer of
    one block (with a column of ones when ``ones``), kept in ``ws`` as ``name`` and the
    part's number.
    """
    n, first = view.shape[0], view.shape[1]
    if col is None:  # im2col's view (N, *out, *kernel, C): as many position axes as taps'
        rows = math.prod(view.shape[1 : view.ndim // 2])  # rows of col per sample
        k_size = math.prod(view.shape[view.ndim // 2 :])
        row_bytes = (k_size + int(ones)) * view.itemsize
    else:
        rows, row_bytes, k_size = col.shape[0] // n, col.strides[0], 0
    if y is None:
        y = np.empty((n * rows, w.shape[1]), np.result_type(view.dtype, w.dtype))
    inner = rows // first  # rows per position of the first axis
    plan = _block_plan(n, first, rows, row_bytes, PATCH_BLOCK_BYTES)
    blocks, per_block, per_sample, most = plan

    def buffer(index: int | None) -> Any:
        return _block_buffer(
            most, k_size, view.dtype, ones, ws, None if index is None else f"{name}{index}"
        )

    def part(b: slice, mats: Any) -> None:  # the blocks b (parts run side by side)
        for i in range(b.start, b.stop):
            samples, a0, a1 = _block_span(i, n, blocks, per_block, per_sample, first)
            r0 = samples.start * rows + a0 * inner
            r1 = (samples.stop - 1) * rows + a1 * inner
            if col is None:
                mat, pat = mats
                shape = (samples.stop - samples.start, a1 - a0, *view.shape[2:])
                np.copyto(pat[: r1 - r0].reshape(shape, copy=False), view[samples, a0:a1])
                threads.matmul(mat[: r1 - r0], w, out=y[r0:r1])
            else:
                assert patches is not None  # (given with col)
                np.copyto(patches[samples, a0:a1], view[samples, a0:a1])
                threads.matmul(col[r0:r1], w, out=y[r0:r1])

    _run_blocks(part, blocks, entries, buffer if col is None else None)
    return y


#: Bytes of patches a block of :func:`blocked_weight_grad` holds: larger than a forward
#: block, since each block's product (patches transposed times the block's output
#: gradients) sums over the block's rows, and few rows make a product as large as its
#: operands. Measured on 2 cores (AMD EPYC), the kernel gradient alone against the whole
#: patch matrix and one product: the ResNet block's 32 -> 32 channels (batch 64, 32x32)
#: 10.3 against 12.3 ms at 2 MB (11.2 at 512 KB), Conv2D C (64 -> 128 channels) 28.4
#: against 29.1 (33.5 at 512 KB), Conv2D B 3.1 against 3.2.
WEIGHT_GRAD_BLOCK_BYTES = 2 * 2**20


#: Patch matrices of at least this many bytes are not kept by a convolution's forward
#: pass (:func:`patch_product` with ``keep=False``): its kernel gradient builds the
#: blocks again (:func:`blocked_weight_grad`). Measured on 2 cores (AMD EPYC), processes
#: alternating with the matrices kept: the ResNet block step (two 75 MB matrices) 0.66-0.81
#: of its time, Conv2D C forward + backward (75 MB) 0.92-1.00, and their memory less by
#: those matrices.
REBUILD_PATCHES_BYTES = 32 * 2**20
#: From ``REBUILD_WIDE_CHANNELS`` input channels, matrices from ``REBUILD_WIDE_BYTES`` are
#: built again too: the copy reads runs of ``k C`` entries, and building the blocks twice
#: costs less than writing the whole matrix out to memory and reading it back. Measured on
#: 2 cores (AMD EPYC), forward + kernel and input gradients, the two ways alternating in
#: one process (built again / kept): Conv2D B (15 MB, 32 channels) 0.94, the keras.io
#: convnet's second layer (19 MB, 32 channels) 0.88, 16 -> 16 channels at 28x28 (28 MB)
#: 0.85, 16 -> 32 at 28x28 (16 MB) 0.83; 12 channels at 14x14 (11 MB) 0.66; ties from 3
#: to 7 MB; LeNet-5's second layer at batch 256 (10.5 MB, 6 channels, 5x5) 1.16 and at
#: 64 channels, 7 MB, 1.04. In whole runs that held only with glibc's thresholds pinned
#: (:mod:`layernet._malloc`): left to glibc, the keras.io convnet's epoch without its
#: 19 MB matrix kept met 84,000-112,000 page faults and took 1.2-1.3 s instead of 0.8-1.0.
REBUILD_WIDE_BYTES = 12 * 2**20
#: See ``REBUILD_WIDE_BYTES``.
REBUILD_WIDE_CHANNELS = 16


def rebuild_patches(
    n: int, out: Sequence[int], kernel: Sequence[int], channels: int, itemsize: int
) -> bool:
    """Whether a convolution's patch matrix is large enough not to be kept (see
    :data:`REBUILD_PATCHES_BYTES` and :data:`REBUILD_WIDE_BYTES`; never with the fast
    paths off)."""
    size = n * math.prod(out) * math.prod(kernel) * channels * itemsize
    wide = channels >= REBUILD_WIDE_CHANNELS and size >= REBUILD_WIDE_BYTES
    return FAST_PATHS and (size >= REBUILD_PATCHES_BYTES or wide)


def blocked_weight_grad(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    dy2: np.ndarray,
    ws: Workspace | None = None,
) -> np.ndarray:
    r"""The kernel gradient ``im2col(xp).T @ dy2`` without the whole patch matrix.

    The patches are copied block by block from the padded input ``xp`` (about
    ``WEIGHT_GRAD_BLOCK_BYTES`` a block, :func:`_block_plan`'s blocks) and each block's
    product :math:`P_b^T \, \partial z/\partial Y_b` taken while it is in cache; the
    blocks are handed out to threads, and their products, kept apart, are summed in
    block order at the end, so the result has the same bits whatever the number of
    threads. Returns ``(prod(kernel) * C, F)``, the kernel gradient's matrix (no bias
    row).
    """
    n, c, f = xp.shape[0], xp.shape[-1], dy2.shape[1]
    k_size, rows = math.prod(kernel) * c, math.prod(out)
    dtype = np.result_type(xp.dtype, dy2.dtype)
    if not n or not rows:
        return np.zeros((k_size, f), dtype)
    view = window_view(xp, kernel, out, strides, dilation)
    first, inner = out[0], rows // out[0]
    row_bytes = k_size * xp.itemsize
    plan = _block_plan(n, first, rows, row_bytes, WEIGHT_GRAD_BLOCK_BYTES)
    blocks, per_block, per_sample, most = plan
    sums = np.empty((blocks, k_size, f), dtype)

    def buffer(index: int | None) -> np.ndarray:
        name = None if index is None else f"grad_block{index}"
        return _block_buffer(most, k_size, xp.dtype, False, ws, name)[1]

    def part(b: slice, pat: np.ndarray) -> None:  # the blocks b (parts run side by side)
        for i in range(b.start, b.stop):
            samples, a0, a1 = _block_span(i, n, blocks, per_block, per_sample, first)
            r0 = samples.start * rows + a0 * inner
            r1 = (samples.stop - 1) * rows + a1 * inner
            shape = (samples.stop - samples.start, a1 - a0, *view.shape[2:])
            np.copyto(pat[: r1 - r0].reshape(shape, copy=False), view[samples, a0:a1])
            threads.matmul(pat[: r1 - r0].T, dy2[r0:r1], out=sums[i])

    _run_blocks(part, blocks, 2 * n * rows * k_size, buffer)
    return np.add.reduce(sums, axis=0)


#: Most columns (output positions along the last axis times filters) one row of
#: :func:`band_product` computes. Measured on 2 cores (AMD EPYC), one layer in one
#: process, band patches against im2col and one product: LeNet-5's first layer (1 -> 6
#: channels, 5x5, 24 output columns, 8 a row) at batch 256 forward 1.5 against 2.5 ms,
#: kernel gradient 0.86 against 1.45, at batch 64 0.39 against 0.7 and 0.26 against 0.22;
#: 1 -> 12 channels (5x5, 28 columns, 4 a row) forward 1.8 against 2.8 ms, kernel
#: gradient 1.7 against 2.4. Rows of 64 columns were slower than im2col (1-D, 16 filters,
#: kernel 9, 4 a row: kernel gradient 0.46 against 0.33 ms).
BAND_MAX_COLUMNS = 48

#: Largest share of im2col's entries the band patches may have for :func:`band_positions`
#: to choose them (a row of band patches holds ``U = (J - 1) s + (k - 1) d + 1`` input
#: positions for ``J`` outputs, against ``J k`` in im2col's rows). LeNet-5's first layer
#: has 0.3; 3-wide kernels (the keras.io convnet's first layer, 0.67 at 2 a row; 0.43 at
#: 7 a row) and the MNIST-1D CNN's first layer (0.7) were slower with band patches:
#: their im2col matrix is only 3 or 5 times the input.
BAND_MAX_SHARE = 0.4


def _band_inputs(band: int, k: int, stride: int, dilation: int) -> int:
    """``U``: the inputs along the last axis that ``band`` consecutive outputs read."""
    return (band - 1) * stride + (k - 1) * dilation + 1


def band_positions(
    padded_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    out: Sequence[int],
    filters: int,
) -> int:
    """How many output positions along the last axis a row of band patches covers (0: none).

    Band patches (:func:`band_product`) serve one-channel inputs, the first layer of
    an image or signal model, whose im2col matrix is ``prod(kernel)`` times the input
    and whose product has few columns. The count ``J`` divides the last axis's output
    positions, keeps ``J * filters <= BAND_MAX_COLUMNS`` and is the largest such;
    the band patches are used when they have at most ``BAND_MAX_SHARE`` of im2col's
    entries. Never with the fast paths off.
    """
    if not FAST_PATHS or padded_shape[-1] != 1 or not padded_shape[0] or not out[-1]:
        return 0
    k, s, d = kernel[-1], strides[-1], dilation[-1]
    best = 0
    for j in range(2, min(out[-1], BAND_MAX_COLUMNS // max(filters, 1)) + 1):
        if out[-1] % j == 0:
            best = j
    if not best:
        return 0
    u = _band_inputs(best, k, s, d)
    return best if u <= BAND_MAX_SHARE * best * k else 0


def _band_matrix(xp, kernel, out, strides, dilation, band, ws, ones, name):
    """:func:`band_product`'s patch matrix, unfilled: ``(col, patches, view)`` as in
    :func:`_patch_matrix`, with ``(N, *out[:-1], out[-1] // band, *kernel[:-1], U)``
    for ``patches`` and ``view``."""
    n, r = xp.shape[0], len(kernel)
    blocks = out[-1] // band
    u = _band_inputs(band, kernel[-1], strides[-1], dilation[-1])
    lead = math.prod(kernel[:-1])
    width = lead * u + int(ones)
    rows = n * math.prod(out[:-1]) * blocks
    col, fresh = ws.get(name, (rows, width), xp.dtype)
    if ones and fresh:
        col[:, -1] = 1
    shape = (n, *out[:-1], blocks, *kernel[:-1], u)
    patches = col[:, : lead * u].reshape(shape, copy=False)  # a view
    sp = xp.strides
    st = (
        sp[0],
        *(sp[1 + i] * strides[i] for i in range(r - 1)),
        sp[r] * strides[-1] * band,
        *(sp[1 + i] * dilation[i] for i in range(r - 1)),
        sp[r],
    )
    return col, patches, as_strided(xp, shape, st, writeable=False)


def band_kernel(
    w: np.ndarray,
    kernel: Sequence[int],
    stride: int,
    dilation: int,
    band: int,
    ones: bool = False,
) -> np.ndarray:
    r"""The kernel matrix of :func:`band_product`: ``(prod(kernel[:-1]) U [+ 1], band F)``.

    ``w`` is the one-channel kernel matrix ``(prod(kernel) [+ 1 bias row], F)``. Entry
    ``[(t, u), (j, f)]`` is :math:`W[t, i, f]` where :math:`u = j s + i d` for a tap
    :math:`i` of the last kernel axis (``t`` runs over the other axes' taps), zero
    elsewhere; with ``ones`` the last row is the bias repeated ``band`` times.
    """
    lead, k, f = math.prod(kernel[:-1]), kernel[-1], w.shape[1]
    u, reach = _band_inputs(band, k, stride, dilation), _band_inputs(1, k, stride, dilation)
    wk = w[: lead * k].reshape(lead, k, f)
    bk = np.zeros((lead * u + int(ones), band * f), w.dtype)
    placed = bk[: lead * u].reshape(lead, u, band, f)
    for j in range(band):
        placed[:, j * stride : j * stride + reach : dilation, j, :] = wk
    if ones:
        bk[-1] = np.tile(w[-1], band)
    return bk


def band_product(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    w: np.ndarray,
    band: int,
    ws: Workspace,
    ones: bool = False,
    name: str = "band",
) -> tuple[np.ndarray, np.ndarray]:
    r"""A one-channel convolution as band patches times a band kernel: ``(col, y)``.

    ``xp`` is the padded input ``(N, *P, 1)`` and ``w`` the kernel matrix
    ``(prod(kernel) [+ 1 bias row], F)``. A row of ``col`` holds, for ``band`` = ``J``
    consecutive output positions along the last axis, the ``U = (J - 1) s + (k - 1) d
    + 1`` input positions they read there, for every tap of the other axes (plus a 1
    with ``ones``); :func:`band_kernel` places each kernel entry where output ``j`` of
    the row reads it, so ``col @ band_kernel(w)`` has the ``J`` outputs' ``F`` filters
    side by side: ``y`` of shape ``(N*prod(out), F)``, in the output's order. Against
    im2col (``J k`` entries for ``J`` outputs along the axis) the patches are
    ``U / (J k)`` the size, and the product ``J`` times wider, at ``U / k`` times
    the arithmetic: on a one-channel input the patch copy and a product only ``F``
    columns wide, not the arithmetic, take the time. The blocks and threads are
    :func:`patch_product`'s, taken from ``threads.MIN_SPLIT_SIZE`` entries read and
    written (LeNet-5's first layer from a batch of 244; measured on 2 cores, AMD
    EPYC, training steps with and without the blocks alternating: 0.96 of the step's
    time at batch 256, 1.06 at batch 64, even at 128-192). ``col`` is kept for
    :func:`band_weight_grad`.
    """
    n = xp.shape[0]
    col, patches, view = _band_matrix(xp, kernel, out, strides, dilation, band, ws, ones, name)
    bk = band_kernel(w, kernel, strides[-1], dilation[-1], band, ones)
    # every pass counted: the patches written, read by the copy and by the product, and
    # the product's output (as wide as the patches here, unlike im2col's)
    entries = 3 * patches.size + n * math.prod(out) * w.shape[1]
    if not FAST_PATHS or entries < threads.MIN_SPLIT_SIZE:
        np.copyto(patches, view)
        y = threads.matmul(col, bk)
    else:
        y = _blocked_product(col, patches, view, bk, None, entries)
    return col, y.reshape(n * math.prod(out), w.shape[1])


def band_weight_grad(
    col: np.ndarray,
    dy2: np.ndarray,
    kernel: Sequence[int],
    stride: int,
    dilation: int,
    band: int,
    ones: bool = False,
) -> np.ndarray:
    r"""The kernel gradient after :func:`band_product`: ``(prod(kernel) [+ 1], F)``.

    With ``G = col^T dY`` (``dY`` the output gradient ``(N*prod(out), F)`` seen as
    ``J`` outputs a row), the gradient of kernel entry :math:`W[t, i, f]` sums the
    entries of ``G`` where :func:`band_kernel` placed it:
    :math:`\sum_j G[(t, j s + i d), (j, f)]`; the bias's (the last row with
    ``ones``) is :math:`\sum_j G[\text{ones}, (j, f)]`. Rows as :func:`weight_grad`'s.
    """
    lead, k, f = math.prod(kernel[:-1]), kernel[-1], dy2.shape[1]
    u, reach = _band_inputs(band, k, stride, dilation), _band_inputs(1, k, stride, dilation)
    g = threads.matmul(col.T, dy2.reshape(col.shape[0], band * f))
    placed = g[: lead * u].reshape(lead, u, band, f)
    out = np.zeros((lead * k + int(ones), f), g.dtype)
    dw = out[: lead * k].reshape(lead, k, f)
    for j in range(band):
        dw += placed[:, j * stride : j * stride + reach : dilation, j, :]
    if ones:
        out[-1] = g[-1].reshape(band, f).sum(axis=0)
    return out


def conv_transpose(
    dy2: np.ndarray,
    w: np.ndarray,
    dxp: np.ndarray,
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    ws: Workspace,
) -> np.ndarray:
    """Add ``im2col``'s adjoint applied to ``dy2 @ W_mat^T`` into ``dxp``, tap by tap.

    ``dy2`` is ``(N*prod(out), F)``, ``w`` the kernel ``(*kernel, C, F)`` and ``dxp``
    the zeroed gradient of the padded input. For each tap ``t`` one matrix
    product ``dy2 @ W[t]^T`` gives that tap's ``(N*prod(out), C)`` contribution,
    added into the strided slice of ``dxp`` the tap reads in the forward pass;
    the full ``(N*prod(out), prod(kernel)*C)`` patch gradient is never formed. The
    batch is taken in blocks of samples whose products fit ``TAP_BLOCK_BYTES``, every
    tap of a block before the next block, the blocks split evenly between threads.
    """
    kernel, c = w.shape[:-2], w.shape[-2]
    wt = np.ascontiguousarray(np.swapaxes(w, -1, -2))  # (*kernel, F, C)
    tmp, _ = ws.get("tap", (dy2.shape[0], c), dy2.dtype)
    n = dxp.shape[0]
    rows = dy2.shape[0] // max(n, 1)  # output positions per sample
    shaped = tmp.reshape(n, *out, c)
    tap_slices = taps(kernel, out, strides, dilation)

    size = 4 * tmp.size * len(tap_slices)  # entries: each tap's product, then its add
    # Blocks of samples whose tap products stay in cache between the product and the add
    # (at most TAP_BLOCK_BYTES), as many for each thread the split uses.
    parts = blocks = threads.split_count(n, size)
    if FAST_PATHS:
        per_part = -(-tmp.nbytes // (TAP_BLOCK_BYTES * parts))
        blocks = min(n, per_part * parts)

    def part(p: slice) -> None:  # the blocks p (parts run side by side)
        for i in range(p.start, p.stop):
            b = slice(n * i // blocks, n * (i + 1) // blocks)
            d2, t2 = dy2[b.start * rows : b.stop * rows], tmp[b.start * rows : b.stop * rows]
            sb, db = shaped[b], dxp[b]
            for tap, sl in tap_slices:
                threads.matmul(d2, wt[tap], out=t2)
                db[sl] += sb

    with threads.sized(2 * dy2.size * c):  # every tap's product has one size: one switch
        threads.over_batch(part, blocks, size)
    return dxp


#: Bytes of tap products :func:`conv_transpose` computes before adding them into the input
#: gradient: blocks of samples, so that each product is added while it is in cache.
#: Measured on 2 cores (AMD EPYC, 1 MB of L2 cache a core), the input gradient in one
#: process, the variants alternating (median ms; whole batch split in two / blocks of
#: 512 KB / 1 MB / 2 MB): the ResNet block's 32 -> 32 channels at 32x32, batch 64, 15.0 /
#: 15.1 / 12.7 / 12.4; (32, 32, 32, 32) -> 64 channels 9.9 / 10.1 / 9.8 / 9.7; Conv2D B
#: and the keras.io convnet's second layer, whose halves already fit, unchanged at 1 MB
#: (4.88 / 4.84 and 4.77 / 4.91) and slower in smaller blocks.
TAP_BLOCK_BYTES = 2**20


#: The banded input gradient (:func:`banded_transpose`) is taken below this many input
#: channels (where the per-tap products of :func:`conv_transpose` are ``C`` columns
#: wide and run at a fraction of BLAS's speed), when a row of the padded input holds at
#: least ``BANDED_MIN_WIDTH`` entries (the band product's width) and the band wastes at
#: most ``BANDED_MAX_WASTE`` times the arithmetic (the padded width over the kernel's).
#: Measured on a 2-core AMD EPYC: LeNet-5's second convolution (12 wide, 5x5, 6 -> 16
#: channels, waste 2.4) about half the per-tap time; at 16 or 32 channels the per-tap
#: products were faster.
BANDED_MAX_CHANNELS = 16
BANDED_MIN_WIDTH = 48
BANDED_MAX_WASTE = 4.0
#: Most entries the bands may have together (one per tap of the leading kernel axes,
#: each bounded as ``W_p F`` by ``W_p C``, ``W_p >= out_w``); they are built every call.
BANDED_MAX_ENTRIES = 1 << 18


def use_banded(padded_shape: Sequence[int], kernel_shape: Sequence[int]) -> bool:
    """Whether :func:`banded_transpose` is the faster input gradient for this convolution.

    ``padded_shape`` is the padded input's ``(N, *P, C)``, ``kernel_shape``
    ``(*kernel, C, F)`` (one group). Never with the fast paths off.
    """
    c, f = kernel_shape[-2], kernel_shape[-1]
    wp, kw = padded_shape[-2], kernel_shape[-3]
    if not FAST_PATHS or c >= BANDED_MAX_CHANNELS or wp * c < BANDED_MIN_WIDTH:
        return False
    bands = math.prod(kernel_shape[:-3])
    return wp <= BANDED_MAX_WASTE * kw and bands * wp * c * wp * f <= BANDED_MAX_ENTRIES


def banded_transpose(
    dy2: np.ndarray,
    w: np.ndarray,
    dxp: np.ndarray,
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    r""":func:`conv_transpose`'s sum, banded along the last spatial axis.

    Along the last axis the map from one row of the output gradient (``out_w``
    positions of ``F`` values) to one row of the padded input's gradient (``W_p``
    positions of ``C``) is a band matrix: for each tap ``t`` of the other kernel
    axes,

    .. math:: B_t[(o, f), (o s + j d, c)] = W[t, j, c, f],

    zero elsewhere. So each ``t`` is one product of every output row with
    :math:`B_t` (``out_w F`` by ``W_p C``: wide on both sides where the per-tap
    products are ``C`` columns wide), added into the rows of ``dxp`` the tap reads,
    whole rows at a time. The band holds ``W_p / k_w`` times the products'
    arithmetic (:func:`use_banded` bounds it).
    """
    n, c, f = dxp.shape[0], w.shape[-2], w.shape[-1]
    lead_k, kw = tuple(w.shape[:-3]), w.shape[-3]
    lead_out, ow = tuple(out[:-1]), out[-1]
    wp = dxp.shape[-2]
    sw, dw = strides[-1], dilation[-1]
    taps_lead = math.prod(lead_k)
    band = np.zeros((taps_lead, ow, f, wp, c), dy2.dtype)
    wl = w.reshape(taps_lead, kw, c, f)
    o = np.arange(ow)
    for j in range(kw):  # (ow, taps, f, c) on the band's diagonal for tap j
        band[:, o, :, o * sw + j * dw, :] = wl[:, j].transpose(0, 2, 1)
    band = band.reshape(taps_lead, ow * f, wp * c)
    rows = math.prod(lead_out)  # band rows (output rows) per sample
    dyr = dy2.reshape(n * rows, ow * f)
    rows_view = dxp.reshape(n, *dxp.shape[1:-2], wp * c)
    lead_taps = taps(lead_k, lead_out, strides[:-1], dilation[:-1])  # (tap, slices) pairs

    def part(b: slice) -> None:  # the samples b (parts run side by side)
        d = dyr[b.start * rows : b.stop * rows]
        tmp = np.empty((d.shape[0], wp * c), dy2.dtype)
        shaped, target = tmp.reshape(b.stop - b.start, *lead_out, wp * c), rows_view[b]
        for t, (_, sl) in enumerate(lead_taps):
            threads.matmul(d, band[t], out=tmp)
            target[sl] += shaped

    with threads.sized(2 * dyr.shape[0] * ow * f * wp * c):  # each product: one switch
        threads.over_batch(part, n, 4 * n * rows * wp * c * taps_lead)  # product, then add
    return dxp


#: The grouped input gradient (:func:`grouped_transpose`) is taken for convolutions strided
#: along the last spatial axis (undilated there) whose whole patch gradient, ``N*prod(out)``
#: rows of ``prod(kernel)*C`` entries, takes at most this many bytes: the whole batch in
#: one pass, each block's product added while it is in cache. Larger ones take
#: :func:`conv_transpose`, which works in blocks of samples and splits them between
#: threads. Measured on a 2-core AMD EPYC, one thread, against the per-tap products: the
#: MNIST-1D CNN's input gradients (batch 100, 25 channels, kernel 3, stride 2) 133 -> 106
#: µs at 19 positions, 83 -> 65 at 10; stride-2 layers of 4-48 channels in 1-D and 2-D
#: 0.61-0.81 of their time.
GROUPED_MAX_BYTES = 2**20


def use_grouped(
    padded_shape: Sequence[int],
    kernel_shape: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    itemsize: int,
) -> bool:
    """Whether :func:`grouped_transpose` gives this convolution's input gradient.

    ``padded_shape`` is the padded input's ``(N, *P, C)``, ``kernel_shape``
    ``(*kernel, C, F)`` (one group). Never with the fast paths off.
    """
    if not FAST_PATHS or strides[-1] < 2 or dilation[-1] != 1:
        return False
    rows = padded_shape[0] * math.prod(out)
    return rows * math.prod(kernel_shape[:-1]) * itemsize <= GROUPED_MAX_BYTES


@functools.lru_cache(maxsize=256)
def _tap_groups(kernel, out, strides, dilation):
    """:func:`grouped_transpose`'s groups: ``(lead, taps, target)`` for each.

    ``lead`` is a tap of the kernel's other axes, ``taps`` a slice of the last
    axis's taps (``q s`` to ``q s + s``, or the kernel's end) and ``target`` the
    index, into the gradient seen as rows of ``s`` positions, that the group's
    products are added into (its last entry selecting the first ``width * C``
    entries of a row is left to the caller).
    """
    k, s = kernel[-1], strides[-1]
    groups = []
    for lead, lead_slices in _taps(kernel[:-1], out[:-1], strides[:-1], dilation[:-1]):
        for q in range(-(-k // s)):  # (lead_slices start with the batch axis's)
            groups.append(
                (lead, slice(q * s, min(q * s + s, k)), (*lead_slices, slice(q, q + out[-1])))
            )
    return tuple(groups)


def grouped_transpose(
    dy2: np.ndarray,
    w: np.ndarray,
    padded_shape: Sequence[int],
    pads: Pads,
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    ws: Workspace,
    whole: bool = False,
) -> np.ndarray:
    r"""The input gradient of a convolution strided along its last spatial axis.

    :func:`im2col`'s adjoint applied to the patch gradient :math:`G = \partial
    z/\partial Y \, W_{mat}^T` (``N*prod(out)`` rows, one column per tap and input
    channel), computed in blocks of adjacent taps. Along the last axis (stride
    :math:`s`, no dilation) tap :math:`t = q s + r` of output position :math:`o` lands
    on input position :math:`(o + q) s + r`: seen as rows of :math:`s` positions
    (``(..., P/s, s*C)``, the padded axis rounded up to a multiple of :math:`s`), the
    taps :math:`q s, \ldots, q s + s - 1` of every position fill one row, row
    :math:`o + q`. So for each tap of the other kernel axes and each :math:`q` one
    product (``dY`` by those taps' kernel columns) gives a contiguous block that is
    added into whole rows, :math:`\lceil k/s \rceil` products and adds where
    :func:`conv_transpose` takes :math:`k` products and :math:`k` adds of
    :math:`C`-entry runs :math:`s C` apart (NumPy's fixed cost per run sets their
    time when :math:`C` is small). In one dimension the first block is copied in
    instead of added. Returns a fresh array: the gradient with respect to the
    unpadded input, or with ``whole`` the padded input's (its last axis rounded up
    to a multiple of :math:`s`; a transposed convolution's full output).
    """
    kernel, c, f = tuple(w.shape[:-2]), w.shape[-2], w.shape[-1]
    n, s, m = padded_shape[0], strides[-1], dy2.shape[0]
    rows = -(-padded_shape[-2] // s)  # rows of s positions along the last axis
    shape = (n, *padded_shape[1:-2], rows * s, c)
    extra = rows * s - padded_shape[-2]  # positions added at the end of the last axis
    region = (*pads[:-1], (pads[-1][0], pads[-1][1] + extra))
    cropped = any(b or a for b, a in region)
    groups = _tap_groups(kernel, tuple(out), tuple(strides), tuple(dilation))
    # one dimension, the first block a whole row: copied in, the rows after it zeroed
    copy_first = len(kernel) == 1 and kernel[0] >= s
    if whole or not cropped:  # the array itself is the result
        dxp = np.empty(shape, dy2.dtype) if copy_first else np.zeros(shape, dy2.dtype)
    else:
        dxp, _ = ws.get("dxp", shape, dy2.dtype)
        if not copy_first:
            dxp.fill(0)
    view = dxp.reshape(*shape[:-2], rows, s * c)
    if copy_first:
        view[:, out[-1] :] = 0
    widest = min(s, kernel[-1]) * c  # a block's columns
    flat, _ = ws.get("patch_grad", (m * widest,), dy2.dtype)
    flops = 2 * m * f * widest  # every block's product on the threads the widest earns
    with threads.sized(flops):  # (one switch for them all)
        for i, (lead, taps_q, target) in enumerate(groups):
            width = (taps_q.stop - taps_q.start) * c
            g = flat[: m * width].reshape(m, width)
            threads.matmul(dy2, w[(*lead, taps_q)].reshape(width, f).T, out=g, flops=flops)
            block = g.reshape(n, *out, width)
            if i == 0 and copy_first:
                np.copyto(view[target], block)
            else:
                part = view[(*target, slice(0, width))]
                np.add(part, block, out=part)
    return dxp if whole else crop_copy(dxp, region)


def window_counts(
    spatial: Sequence[int],
    window: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    pads: Pads,
) -> np.ndarray:
    """Number of real (unpadded) entries in every window, shape ``(*out, 1)``.

    Windows are boxes, so the count is the outer product of per-axis counts.
    """
    count = np.ones((), dtype=np.int64)
    for n, k, o, s, (b, _) in zip(spatial, window, out, strides, pads, strict=True):
        start = np.arange(o) * s - b
        per_axis = np.minimum(start + k, n) - np.maximum(start, 0)
        count = np.multiply.outer(count, per_axis)
    return count[..., None]


#: Input channels from which the convolution input gradient is computed as a correlation
#: (:func:`conv_input_grad`) rather than tap by tap (:func:`conv_transpose`); from half
#: as many when the layer (of stride 1) has at most as many filters as input channels
#: and the correlation's rows (input positions) are at most ``CORRELATION_MAX_WASTE``
#: times the output positions. The correlation copies the padded output gradient into patches
#: (``prod(kernel) F`` entries a row) for one product ``C`` columns wide; the per-tap
#: products are ``C`` columns wide too, but each adds its ``C`` entries a row into the
#: gradient: the copy costs ``F`` where the adds cost ``C``. Measured on 2 cores (AMD
#: EPYC), 3x3 kernels, padding "same", batch 64, the two paths alternating in one process
#: (correlation / per tap): C -> F = 16 -> 32 1.28, 32 -> 64 (Conv2D B) 1.09, 48 -> 96
#: 1.07, 64 -> 128 (Conv2D C) 0.98; 32 -> 32 0.92-0.93, 40 -> 40 0.82, 48 -> 48 0.82,
#: 64 -> 64 0.82, 128 -> 128 0.97; 48 -> 32 0.71, 64 -> 32 0.67; with padding "valid"
#: (14x14 in, 12x12 out: 1.36 times the rows) 48 -> 48 1.13, 64 -> 64 1.00, the
#: keras.io convnet's 32 -> 64 1.5. LeNet-5's second layer (6 channels): per tap about 3x
#: faster.
CORRELATION_MIN_CHANNELS = 64
#: See ``CORRELATION_MIN_CHANNELS``.
CORRELATION_MAX_WASTE = 1.1


#: Bytes of patches :func:`conv_input_grad` takes at a time (the batch is split so that
#: its patch matrices stay below this; a whole batch of Conv2D C's would take 151 MB).
#: Only patches too few to be split between threads are built whole, the others block
#: by block into a buffer of one block: this bounds those and the padded copies of ``dy``.
PATCH_BYTES = 32 * 2**20


def use_correlation(
    channels: int, filters: int | None = None, waste: float = 1.0, strides: Sequence[int] = ()
) -> bool:
    """Whether :func:`conv_input_grad` is the faster path for an input gradient.

    ``channels`` are the input's (one group's), ``filters`` the layer's (one group's;
    None: not known), ``waste`` the input positions over the output positions (the
    correlation's rows over the per-tap products') and ``strides`` the layer's (the rule
    from half the channels is for stride 1 only: strided phases were not measured). See
    ``CORRELATION_MIN_CHANNELS``.
    """
    if not FAST_PATHS:
        return False
    if channels >= CORRELATION_MIN_CHANNELS:
        return True
    return (
        filters is not None
        and 2 * channels >= CORRELATION_MIN_CHANNELS
        and filters <= channels
        and waste <= CORRELATION_MAX_WASTE
        and all(s == 1 for s in strides)
    )


def _axis_phases(
    k: int, s: int, d: int, n_out: int, lo: int, hi: int
) -> list[tuple[slice, slice, int, int, int, int, int]]:
    """One axis of :func:`conv_input_grad`: its phases (residues of the position mod ``s``).

    For positions ``p = r + s q`` of one residue ``r`` the taps that reach them are
    ``t = t_0, t_0 + s/g, ...`` (``g = gcd(s, d)``), read from ``dy`` at
    ``o = q - e_0 - j d/g``: a stride-1 correlation with ``J`` taps of dilation
    ``d/g``. Each entry: the slice of the region it fills (``dst``), the slice of
    the kernel axis it uses (reversed), the first and last ``dy`` index it reads
    (may lie outside ``[0, n_out)``: zeros there), ``J`` and ``d/g``; ``J = 0``
    when no tap reaches the residue (zero gradient).
    """
    k, s, d, lo, hi = int(k), int(s), int(d), int(lo), int(hi)
    g = math.gcd(s, d)
    step, dg = s // g, d // g
    phases = []
    for r in range(s):
        first = lo + (r - lo) % s  # first position >= lo with residue r
        if first >= hi:
            continue
        q0, count = (first - r) // s, (hi - 1 - first) // s + 1
        dst = slice(first - lo, first - lo + (count - 1) * s + 1, s)
        if r % g:
            phases.append((dst, slice(0), 0, 0, 0, 0, dg))
            continue
        # smallest t >= 0 with t d = r (mod s): t (d/g) = r/g (mod s/g)
        t0 = (r // g) * pow(dg, -1, step) % step if step > 1 else 0
        if t0 >= k:
            phases.append((dst, slice(0), 0, 0, 0, 0, dg))
            continue
        taps_ = range(t0, k, step)
        j_count = len(taps_)
        e0 = (t0 * d - r) // s
        start = q0 - e0 - (j_count - 1) * dg  # dy index read by the first (flipped) tap
        stop = q0 + count - 1 - e0 + 1  # one past the last dy index read
        kernel_sl = slice(taps_[-1], None if t0 == 0 else t0 - 1, -step)
        phases.append((dst, kernel_sl, start, stop, count, j_count, dg))
    return phases


def conv_input_grad(
    dy: np.ndarray,
    w: np.ndarray,
    region: Sequence[tuple[int, int]],
    strides: Sequence[int],
    dilation: Sequence[int],
    out: np.ndarray,
    ws: Workspace,
) -> np.ndarray:
    r"""The adjoint of a convolution as products of patch matrices, written into ``out``.

    ``dy`` is ``(N, *O, F)``, ``w`` the kernel ``(*kernel, C, F)``; ``out`` (shape
    ``(N, *region sizes, C)``) receives, for padded-input positions ``p`` in
    ``region`` (``[lo, hi)`` per axis),

    .. math:: \partial\tilde X_{n,p,c} = \sum_{(o,t):\,o s + t d = p}\sum_f dY_{n,o,f} W_{t,c,f}.

    With stride 1 this is one correlation of the zero-padded ``dy`` with the
    flipped kernel, so one im2col and one matrix product of the forward's size.
    With stride :math:`s` the positions split into :math:`\prod s_i` phases
    (residues mod :math:`s`); each phase is such a correlation with the taps
    that reach it, so no product multiplies zeros. Nothing reads the patches
    again: from ``threads.MIN_SPLIT_SIZE`` entries (and more than one filter)
    they are copied block by block into a buffer of one block for each thread and
    multiplied there (:func:`patch_product` with ``keep=False``), never written out
    whole.
    """
    kernel, c = w.shape[:-2], w.shape[-2]
    o_sizes = dy.shape[1:-1]
    per_axis = [
        _axis_phases(k, s, d, n, lo, hi)
        for k, s, d, n, (lo, hi) in zip(kernel, strides, dilation, o_sizes, region, strict=True)
    ]
    n_batch = dy.shape[0]
    for index, combo in enumerate(itertools.product(*per_axis)):
        dst = tuple(ph[0] for ph in combo)
        if any(ph[5] == 0 for ph in combo):
            out[(slice(None), *dst)] = 0
            continue
        starts = [ph[2] for ph in combo]
        stops = [ph[3] for ph in combo]
        if any(b >= n or e <= 0 for b, e, n in zip(starts, stops, o_sizes, strict=True)):
            out[(slice(None), *dst)] = 0  # every tap reads outside dy
            continue
        bounds = zip(starts, stops, o_sizes, strict=True)
        src_sl = tuple(slice(max(b, 0), min(e, n)) for b, e, n in bounds)
        pads = tuple(
            (max(0, -b), max(0, e - n)) for b, e, n in zip(starts, stops, o_sizes, strict=True)
        )
        counts = tuple(ph[4] for ph in combo)
        j_sizes = tuple(ph[5] for ph in combo)
        wsub = w[tuple(ph[1] for ph in combo)]  # (*J, C, F), taps reversed
        wmat = np.swapaxes(wsub, -1, -2).reshape(-1, c)  # rows (tap, f), as col's columns
        # Samples per patch matrix: at most PATCH_BYTES of patches at a time.
        sample_bytes = math.prod(counts) * wmat.shape[0] * dy.itemsize
        chunk = max(1, PATCH_BYTES // max(sample_bytes, 1))
        for n0 in range(0, n_batch, chunk):
            batch = slice(n0, min(n0 + chunk, n_batch))
            dyp = pad(dy[(batch, *src_sl)], pads, ws=ws, name=f"dy{index}")
            target = out[(batch, *dst)]
            _, y = patch_product(
                dyp,
                j_sizes,
                counts,
                (1,) * len(counts),
                [ph[6] for ph in combo],
                wmat,
                ws,
                name=f"dcol{index}",
                y=target.reshape(-1, c) if target.flags.c_contiguous else None,
                keep=False,  # (nothing reads these patches again)
            )
            if not target.flags.c_contiguous:
                target[...] = y.reshape(target.shape)
    return out


# ---------------------------------------------------------------- shifted products
# A stride-1 convolution without patch matrices. Pad the input once, contiguous, and
# read it as a 2-D array of rows ``R = Xp.reshape(N * prod(P), C)`` (``P`` the padded
# extents). Output position ``o`` of sample ``n`` is computed at the row ``q`` of its
# top-left corner, ``q = n prod(P) + sum_i o_i S_i`` (``S_i = prod(P[i+1:])``), and
# tap ``t`` reads the row ``q + off_t`` with ``off_t = sum_i t_i d_i S_i``: for every
# tap, the rows needed by all output positions are one contiguous slice of ``R``. So
# the forward pass is a sum of ``prod(kernel)`` plain products (``K = C`` each) over a
# grid of ``N prod(P)`` rows, of which the valid positions are cropped out; the grid's
# other rows are wasted work (``prod(P) / prod(O)``: 1.31 for 14x14 with padding 1).


#: Largest ratio of grid rows to output positions, ``prod(P) / prod(O)``, for which the
#: shifted products are taken (every direction), and the fewest channels in the products'
#: shared dimension (``C`` forward and for the kernel gradient, ``F`` for the input
#: gradient). Measured with one BLAS thread, CPU time, the paths alternating in one run
#: (docs/performance.md, "Shifted products"; shifted / patch path, forward, kernel
#: gradient, input gradient): a 1-D convolution of length 1024 (ratio 1.002) 0.82-0.83,
#: 1.03-1.04, 0.81-0.84; a 1x1 convolution (ratio 1) 1.00, 1.05, 0.85; 56x56 3x3 padding 1
#: (1.07) 0.99, 1.01-1.23, 0.97-0.98 (a tie: left out); Conv2D C (1.13) 1.08, 1.39, 1.05;
#: Conv2D B (1.31) 1.03-1.07, 1.29-1.58, 1.01-1.02. With 1 or 6 channels (LeNet-5, the
#: keras.io convnet's first layer) they lose 1.2-12x: products with K = 1 or 6. After a
#: shifted forward pass the shifted kernel gradient beats building the patches then
#: (1.03-1.05 against 1.09-1.14 of the patch path). A 1x1 kernel's forward pass is a tie
#: (1.00-1.05: the bias pass costs what the patch copy did), so only its input gradient
#: (one product, no copy) takes them. With a budget of 2 threads (load average 4.9) the
#: 1-D case took 3.4-7.3x the patch path's CPU time: each product on 2 threads, and
#: SciPy's OpenBLAS pool spinning beside NumPy's; so the accumulating products are taken
#: only where each runs on one thread (``threads.threads_for``).
SHIFT_MAX_WASTE = 1.02
SHIFT_MIN_CHANNELS = 16


def use_shifted(
    direction: str,
    padded_shape: Sequence[int],
    kernel_shape: Sequence[int],
    strides: Sequence[int],
    out: Sequence[int],
) -> bool:
    """Whether the shifted products are the faster path for this convolution and direction.

    ``direction`` is ``"forward"``, ``"params"`` (the kernel gradient after a shifted
    forward pass; otherwise the patches are built then) or ``"input"``;
    ``padded_shape`` is the padded input's ``(N, *P, C)``, ``kernel_shape``
    ``(*kernel, C, F)``. Stride 1 only, and never with the fast paths off.
    """
    if not FAST_PATHS or max(strides) != 1 or not padded_shape[0]:
        return False
    waste = math.prod(padded_shape[1:-1]) / math.prod(out)
    shared = kernel_shape[-1] if direction == "input" else kernel_shape[-2]
    if waste > SHIFT_MAX_WASTE or shared < SHIFT_MIN_CHANNELS:
        return False
    n_taps = math.prod(kernel_shape[:-2])
    if n_taps == 1:  # one product, no accumulation: faster for the input gradient only
        return direction == "input"
    # Accumulating products run in SciPy's BLAS, whose thread pool is not NumPy's: with
    # several threads each, the two pools' idle threads spin against each other.
    rows = math.prod(padded_shape[:-1])
    return threads.threads_for(2 * rows * kernel_shape[-2] * kernel_shape[-1]) == 1


def shift_offsets(
    padded: Sequence[int], kernel: Sequence[int], dilation: Sequence[int]
) -> tuple[int, ...]:
    """Row offset of every kernel tap (in :func:`taps` order) in the padded grid of rows."""
    return _shift_offsets(tuple(padded), tuple(kernel), tuple(dilation))


@functools.lru_cache(maxsize=256)
def _shift_offsets(padded, kernel, dilation):
    row = [math.prod(padded[i + 1 :]) for i in range(len(padded))]
    return tuple(
        sum(t * d * r for t, d, r in zip(tap, dilation, row, strict=True))
        for tap in np.ndindex(*kernel)
    )


def _gemm_functions(dtype: np.dtype):
    """SciPy's ``?gemm`` for ``dtype`` (float32, float64), or ``None``.

    Imported on first use; SciPy's BLAS is a library of its own, so the thread
    setters are looked up again once it is loaded.
    """
    if dtype not in (np.float32, np.float64):
        return None
    if _GEMM.get("loaded") is None:
        from scipy.linalg import blas

        _GEMM.update(loaded=True, float32=blas.sgemm, float64=blas.dgemm)
        threads.rescan()
    return _GEMM[np.dtype(dtype).name]


_GEMM: dict[str, Any] = {}


def gemm_accumulate(a: np.ndarray, b: np.ndarray, c: np.ndarray, transpose_b: bool = False) -> None:
    """``c += a @ b`` (``a @ b.T`` with ``transpose_b``) in place, without a temporary.

    ``a``, ``b`` and ``c`` are C-contiguous 2-D arrays of one dtype. Their
    transposes are Fortran-ordered, so SciPy's ``gemm`` with ``beta = 1`` and
    ``overwrite_c`` accumulates straight into ``c`` (``c^T += b^T a^T``). On the
    threads the product's size earns (:func:`layernet.threads.matmul`'s rule).
    """
    gemm = _gemm_functions(c.dtype)
    flops = 2 * a.shape[0] * a.shape[1] * c.shape[1]
    if gemm is None:
        c += threads.matmul(a, b.T if transpose_b else b)
        return
    with threads.sized(flops):
        result = gemm(1.0, b.T, a.T, 1.0, c.T, trans_a=int(transpose_b), overwrite_c=1)
    if result.ctypes.data != c.ctypes.data:  # pragma: no cover - gemm copied c
        c[...] = result.T


def shifted_forward(
    xp: np.ndarray,
    w: np.ndarray,
    out: Sequence[int],
    dilation: Sequence[int],
    ws: Workspace,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    r"""A stride-1 convolution of the padded input ``xp`` by shifted products (a fresh array).

    ``xp`` is ``(N, *P, C)`` and C-contiguous, ``w`` the kernel ``(*kernel, C, F)``.
    With ``R`` the rows of ``xp`` and ``G`` the output grid of ``N prod(P) - off_max``
    rows,

    .. math:: G = \sum_t R[\mathrm{off}_t : \mathrm{off}_t + M]\; W_t,

    accumulated in place (:func:`gemm_accumulate`); the output is the grid's valid
    positions, plus the bias.
    """
    n, padded, c = xp.shape[0], xp.shape[1:-1], xp.shape[-1]
    kernel, f = w.shape[:-2], w.shape[-1]
    offsets = shift_offsets(padded, kernel, dilation)
    rows = n * math.prod(padded)
    m = rows - offsets[-1]
    r = xp.reshape(rows, c)
    wt = np.ascontiguousarray(w).reshape(-1, c, f)
    if tuple(out) == tuple(padded):  # a 1x1 kernel: the grid is the output, one product
        y = threads.matmul(r, wt[0]).reshape(n, *out, f)
        if bias is not None:
            y += bias
        return y
    grid_buf, _ = ws.get("grid", (rows, f), xp.dtype)
    grid = grid_buf[:m]
    threads.matmul(r[offsets[0] : offsets[0] + m], wt[0], out=grid)
    for t in range(1, len(offsets)):
        gemm_accumulate(r[offsets[t] : offsets[t] + m], wt[t], grid)
    valid = grid_buf.reshape(n, *padded, f)[(slice(None), *(slice(0, o) for o in out))]
    y = np.empty((n, *out, f), xp.dtype)
    if bias is None:
        np.copyto(y, valid)
    else:
        np.add(valid, bias, out=y)
    return y


def shifted_dy_grid(
    dy: np.ndarray, padded: Sequence[int], offset_max: int, ws: Workspace
) -> np.ndarray:
    """``dy`` embedded in a zero grid: ``offset_max`` zero rows, then ``(N prod(P), F)`` rows.

    Row ``offset_max + q`` holds the gradient of the output whose window starts at
    grid row ``q``; the grid's other positions are zero (they are never written, so a
    reused buffer keeps its zeros).
    """
    n, out, f = dy.shape[0], dy.shape[1:-1], dy.shape[-1]
    rows = n * math.prod(padded)
    if tuple(out) == tuple(padded):  # the grid is the output: nothing to embed
        return np.ascontiguousarray(dy).reshape(rows, f)
    name = f"dygrid{tuple(padded)}{tuple(out)}"
    buf, _ = ws.get(name, (offset_max + rows, f), dy.dtype, fill=0.0)
    grid = buf[offset_max:].reshape(n, *padded, f)
    grid[(slice(None), *(slice(0, o) for o in out))] = dy
    return buf


def shifted_input_grad(
    dy_grid: np.ndarray,
    w: np.ndarray,
    padded_shape: Sequence[int],
    pads: Pads,
    dilation: Sequence[int],
    ws: Workspace,
) -> np.ndarray:
    r"""The input gradient of :func:`shifted_forward` (a fresh, unpadded array).

    ``dy_grid`` comes from :func:`shifted_dy_grid`. Row ``p`` of the padded input's
    gradient is :math:`\sum_t E[p - \mathrm{off}_t]\, W_t^T` (``E`` the grid, zero
    before its first row and where no output lies), so each tap is again one
    product over a contiguous slice, accumulated in place.
    """
    n, padded, c = padded_shape[0], tuple(padded_shape[1:-1]), padded_shape[-1]
    kernel, f = w.shape[:-2], w.shape[-1]
    offsets = shift_offsets(padded, kernel, dilation)
    rows, top = n * math.prod(padded), offsets[-1]
    wt = np.ascontiguousarray(w).reshape(-1, c, f)
    if len(offsets) == 1 and dy_grid.shape[0] == rows:  # a 1x1 kernel: one product
        dxp = threads.matmul(dy_grid, wt[0].T).reshape(n, *padded, c)
        return crop_copy(dxp, pads)
    dr, _ = ws.get("dxgrid", (rows, c), dy_grid.dtype)
    first = top - offsets[0]
    threads.matmul(dy_grid[first : first + rows], wt[0].T, out=dr)
    for t in range(1, len(offsets)):
        start = top - offsets[t]
        gemm_accumulate(dy_grid[start : start + rows], wt[t], dr, transpose_b=True)
    return np.array(crop(dr.reshape(n, *padded, c), pads))


def shifted_weight_grad(
    xp: np.ndarray, dy_grid: np.ndarray, kernel: Sequence[int], dilation: Sequence[int]
) -> np.ndarray:
    r"""The kernel gradient of :func:`shifted_forward`, shape ``(*kernel, C, F)``.

    Per tap, :math:`\partial z/\partial W_t = R[\mathrm{off}_t : \mathrm{off}_t + M]^T
    G_{dY}`, one product whose shared dimension is the grid's ``M`` rows (``G_{dY}``
    is ``dy_grid`` without its leading zero rows; zero at the grid's invalid rows).
    """
    n, padded, c = xp.shape[0], xp.shape[1:-1], xp.shape[-1]
    f = dy_grid.shape[-1]
    offsets = shift_offsets(padded, kernel, dilation)
    rows, top = n * math.prod(padded), offsets[-1]
    m = rows - top
    r = xp.reshape(rows, c)
    g = dy_grid[top : top + m]
    dw = np.empty((len(offsets), c, f), xp.dtype)
    for t, off in enumerate(offsets):
        threads.matmul(r[off : off + m].T, g, out=dw[t])
    return dw.reshape(*kernel, c, f)
