r"""Linear resampling of images: resize and crop matrices, per-sample affine sampling.

Every map here is linear in the image for fixed geometry, so its derivative is its
transpose: resizing is :math:`Y = R_h X R_w^T` per channel and sample, with
:math:`\partial z/\partial X = R_h^T G R_w`; affine sampling is a sparse matrix
with at most four nonzeros (bilinear weights) per output pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def resize_matrix(n_in: int, n_out: int, method: str, dtype: Any) -> np.ndarray:
    """``(n_out, n_in)`` interpolation matrix along one axis, half-pixel centres.

    ``"bilinear"``: output ``i`` samples the input at ``(i + 0.5) n_in / n_out - 0.5``,
    clamped to ``[0, n_in - 1]``, between its two neighbours (no antialiasing, as
    ``jax.image.resize`` and Keras's ``Resizing``). ``"nearest"``: input
    ``floor((i + 0.5) n_in / n_out)``.
    """
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    if method == "nearest":
        src = np.floor(((rows + 0.5) * n_in / n_out).astype(np.float32)).astype(np.int64)
        m[rows, np.minimum(src, n_in - 1)] = 1
        return m.astype(dtype)
    pos = np.clip((rows + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, hi), frac)
    return m.astype(dtype)


def crop_matrix(n_in: int, start: int, n_out: int, dtype: Any) -> np.ndarray:
    """``(n_out, n_in)`` selection of the entries ``start, ..., start + n_out - 1``."""
    m = np.zeros((n_out, n_in), dtype=dtype)
    m[np.arange(n_out), start + np.arange(n_out)] = 1
    return m


def aspect_crop(height: int, width: int, target_h: int, target_w: int) -> tuple[int, ...]:
    """Keras's centred crop with the target's aspect ratio: ``(top, crop_h, left, crop_w)``."""
    crop_h = max(min(height, int(float(width * target_h) / target_w)), 1)
    crop_w = max(min(width, int(float(height * target_w) / target_h)), 1)
    return int(float(height - crop_h) / 2), crop_h, int(float(width - crop_w) / 2), crop_w


def apply(x: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``Y[n, i, j, c] = Σ_hw rows[i, h] cols[j, w] X[n, h, w, c]``."""
    t = np.einsum("ih,nhwc->niwc", rows, x, optimize=True)
    return np.ascontiguousarray(np.einsum("jw,niwc->nijc", cols, t, optimize=True))


def apply_transpose(g: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The adjoint of :func:`apply`: ``Σ_ij rows[i, h] cols[j, w] G[n, i, j, c]``."""
    t = np.einsum("jw,nijc->niwc", cols, g, optimize=True)
    return np.ascontiguousarray(np.einsum("ih,niwc->nhwc", rows, t, optimize=True))


def _fill(index: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Map integer positions into ``[0, n)`` by the fill mode; ``valid`` false where the
    position falls outside with ``"constant"``."""
    if mode == "reflect":  # d c b a | a b c d | d c b a
        m = np.mod(index, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m), np.ones(index.shape, bool)
    if mode == "mirror":  # d c b | a b c d | c b a
        if n == 1:
            return np.zeros_like(index), np.ones(index.shape, bool)
        m = np.mod(index, 2 * n - 2)
        return np.where(m >= n, 2 * n - 2 - m, m), np.ones(index.shape, bool)
    if mode == "wrap":
        return np.mod(index, n), np.ones(index.shape, bool)
    if mode == "nearest":
        return np.clip(index, 0, n - 1), np.ones(index.shape, bool)
    valid = (index >= 0) & (index < n)
    return np.clip(index, 0, n - 1), valid


def _round_half_away(a: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (``jax.scipy.ndimage``'s rule)."""
    return (np.sign(a) * np.floor(np.abs(a) + 0.5)).astype(np.int64)


def affine_weights(
    coords: np.ndarray, height: int, width: int, interpolation: str, fill_mode: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse sampling weights for source coordinates ``coords`` of shape ``(N, P, 2)``
    (row, column per output pixel).

    Returns ``index`` ``(N, P, K)`` into the flattened ``height * width`` pixels,
    ``weight`` ``(N, P, K)`` and ``outside`` ``(N, P)``: the total weight that fell
    outside the image with ``fill_mode="constant"`` (it multiplies ``fill_value``).
    """
    y, x = coords[..., 0], coords[..., 1]
    if interpolation == "nearest":
        corners = [(_round_half_away(y), _round_half_away(x), np.ones_like(y))]
    else:
        y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
        fy, fx = y - y0, x - x0
        corners = [
            (y0, x0, (1 - fy) * (1 - fx)),
            (y0, x0 + 1, (1 - fy) * fx),
            (y0 + 1, x0, fy * (1 - fx)),
            (y0 + 1, x0 + 1, fy * fx),
        ]
    index, weight = [], []
    outside = np.zeros(y.shape)
    for r, c, w in corners:
        r, vr = _fill(r, height, fill_mode)
        c, vc = _fill(c, width, fill_mode)
        valid = vr & vc
        index.append(r * width + c)
        weight.append(np.where(valid, w, 0.0))
        outside += np.where(valid, 0.0, w)
    return np.stack(index, -1), np.stack(weight, -1), outside


def sample(x: np.ndarray, index: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``Y[n, p, c] = Σ_k weight[n, p, k] X[n, index[n, p, k], c]`` on ``(N, H*W, C)``."""
    n = np.arange(x.shape[0])[:, None, None]
    return np.einsum("npk,npkc->npc", weight.astype(x.dtype), x[n, index], optimize=True)


def sample_transpose(
    g: np.ndarray, index: np.ndarray, weight: np.ndarray, pixels: int
) -> np.ndarray:
    """The adjoint of :func:`sample`: scatter ``weight * G`` back onto ``(N, pixels, C)``."""
    n_samples, _, channels = g.shape
    flat = (np.arange(n_samples)[:, None, None] * pixels + index).ravel()
    out = np.empty((n_samples * pixels, channels), dtype=g.dtype)
    for c in range(channels):
        contrib = (weight * g[:, :, None, c]).ravel()
        out[:, c] = np.bincount(flat, weights=contrib, minlength=n_samples * pixels)
    return out.reshape(n_samples, pixels, channels)
