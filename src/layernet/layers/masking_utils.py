r"""Weighting a loss or a metric by an output's mask, as Keras 3 does.

A model whose output carries a mask (a recurrent layer with
``return_sequences=True`` after ``Embedding(mask_zero=True)``, for instance)
should not learn from, nor be scored on, its masked timesteps. Keras 3 folds the
mask into the sample weights before reducing the per-timestep loss; this module
holds that rule for layernet's trainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_array, shape_str

__all__ = ["mask_to_sample_weight"]


def mask_to_sample_weight(
    mask: Any, sample_weight: Any = None, reduction: str = "sum_over_batch_size"
) -> np.ndarray | None:
    r"""Fold an output mask into the sample weights of a per-timestep loss.

    Parameters
    ----------
    mask : array_like of bool or None
        The output's mask, shape ``(batch, *steps)`` (``(batch, timesteps)`` for a
        sequence), true where a value counts. ``None`` returns ``sample_weight``
        unchanged (as a float64 array, or ``None``).
    sample_weight : array_like, optional
        Weights of shape ``(batch,)`` or of a leading part of ``mask``'s shape
        (``(batch, timesteps)``); trailing axes of size 1 are added to broadcast.
    reduction : {"sum_over_batch_size", "mean", "sum", "none"}, default "sum_over_batch_size"
        The loss's reduction. For the averaging reductions each unmasked entry is
        scaled by :math:`T / V` so that the mean over all entries is the mean over
        the unmasked ones.

    Returns
    -------
    ndarray of float64 or None
        Weights of ``mask``'s shape: multiply the per-entry loss by them, then
        reduce as usual (sum and divide by the number of entries, for the
        averaging reductions).

    Raises
    ------
    ValueError
        ``mask_to_sample_weight: expected `sample_weight` of shape ...`` when the
        weights do not match the mask's leading axes, or an unknown ``reduction``.

    Notes
    -----
    With a mask :math:`m \in \{0,1\}^{T}` over the :math:`T` entries (batch times
    timesteps) and :math:`V = \sum_i m_i` of them unmasked, Keras 3 uses the weights

    .. math::

        w_i = s_i \, m_i \, \frac{T}{V} \quad\text{(averaging reductions)},\qquad
        w_i = s_i \, m_i \quad\text{(``"sum"``, ``"none"``)},

    with :math:`s_i` the given sample weight (1 if none) and :math:`T/V` taken as
    0 when :math:`V = 0`. The averaged loss is then

    .. math::

        L = \frac1T \sum_i w_i \ell_i = \frac1V \sum_i s_i\, m_i\, \ell_i ,
        \qquad \frac{\partial L}{\partial \ell_i} = \frac{w_i}{T},

    the mean over the unmasked entries: masked entries get no gradient.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> from layernet.layers.masking_utils import mask_to_sample_weight
    >>> mask = np.array([[True, True, False], [True, False, False]])
    >>> mask_to_sample_weight(mask)
    array([[2., 2., 0.],
           [2., 0., 0.]])
    >>> mask_to_sample_weight(mask, sample_weight=np.array([1.0, 3.0]), reduction="sum")
    array([[1., 1., 0.],
           [3., 0., 0.]])
    """
    owner = "mask_to_sample_weight"
    if reduction not in ("sum_over_batch_size", "mean", "sum", "none", None):
        raise ValueError(
            f"{owner}: invalid value for `reduction`: expected one of "
            f"['sum_over_batch_size', 'mean', 'sum', 'none'], received {reduction!r}."
        )
    weight = None if sample_weight is None else as_array(sample_weight, owner, "sample_weight")
    if mask is None:
        return None if weight is None else weight.astype(np.float64)
    m = np.asarray(mask).astype(bool)
    if reduction in ("sum_over_batch_size", "mean"):
        valid = int(m.sum())
        scale = m.size / valid if valid else 0.0
        w = np.where(m, scale, 0.0)
    else:
        w = m.astype(np.float64)
    if weight is not None:
        if weight.ndim > m.ndim or weight.shape != m.shape[: weight.ndim]:
            raise ValueError(
                f"{owner}: expected `sample_weight` of shape {shape_str(m.shape[:1])} or a "
                f"leading part of the mask's shape {shape_str(m.shape)}, received shape "
                f"{shape_str(weight.shape)}."
            )
        w = w * weight.astype(np.float64).reshape(weight.shape + (1,) * (m.ndim - weight.ndim))
    return w
