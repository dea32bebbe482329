"""Array kernels shared by the convolution and pooling layers.

All arrays are channels-last, ``(batch, *spatial, channels)``. A *tap* is one
position inside a window; for each tap the input entries it sees across all
output positions form one strided slice, so every loop here runs over the few
taps of a window, never over output positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

Pads = tuple[tuple[int, int], ...]


def output_size(n: int, window: int, stride: int, before: int, after: int) -> int:
    """Number of window positions along one axis (``0`` or less: window does not fit)."""
    return (n + before + after - window) // stride + 1


def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the spatial axes of a channels-last array (no copy when nothing to pad)."""
    if not any(b or a for b, a in pads):
        return x
    out = np.full(
        (
            x.shape[0],
            *(n + b + a for n, (b, a) in zip(x.shape[1:-1], pads, strict=True)),
            x.shape[-1],
        ),
        value,
        dtype=x.dtype,
    )
    out[
        (slice(None), *(slice(b, b + n) for n, (b, _) in zip(x.shape[1:-1], pads, strict=True)))
    ] = x
    return out


def crop(xp: np.ndarray, pads: Pads) -> np.ndarray:
    """Undo :func:`pad`: the view of ``xp`` without its padding."""
    if not any(b or a for b, a in pads):
        return xp
    return xp[
        (slice(None), *(slice(b, n - a) for n, (b, a) in zip(xp.shape[1:-1], pads, strict=True)))
    ]


def taps(
    kernel: Sequence[int], out: Sequence[int], strides: Sequence[int], dilation: Sequence[int]
) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Yield ``(tap, slices)``: the slices of the padded input that ``tap`` sees.

    For tap ``(t_1, ..., t_r)`` and output position ``(o_1, ..., o_r)`` the
    input position is ``o_i * s_i + t_i * d_i`` along axis ``i``.
    """
    for tap in np.ndindex(*kernel):
        yield (
            tap,
            (
                slice(None),
                *(
                    slice(t * d, t * d + s * (o - 1) + 1, s)
                    for t, o, s, d in zip(tap, out, strides, dilation, strict=True)
                ),
            ),
        )


def im2col(
    xp: np.ndarray,
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Patches of ``xp`` as one contiguous array of shape ``(N, *out, *kernel, C)``.

    ``col[n, o, t, c] = xp[n, o*s + t*d, c]``, so that ``col`` reshaped to
    ``(N*prod(out), prod(kernel)*C)`` times the kernel reshaped to
    ``(prod(kernel)*C, filters)`` is the convolution.
    """
    n, c = xp.shape[0], xp.shape[-1]
    col = np.empty((n, *out, *kernel, c), dtype=xp.dtype)
    lead = (slice(None),) * (1 + len(out))
    for tap, sl in taps(kernel, out, strides, dilation):
        col[(*lead, *tap)] = xp[sl]
    return col


def col2im(
    dcol: np.ndarray,
    padded_shape: Sequence[int],
    kernel: Sequence[int],
    out: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum every patch entry back to its input position."""
    dxp = np.zeros(padded_shape, dtype=dcol.dtype)
    lead = (slice(None),) * (1 + len(out))
    for tap, sl in taps(kernel, out, strides, dilation):
        dxp[sl] += dcol[(*lead, *tap)]
    return dxp


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
