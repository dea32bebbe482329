r"""Weighting a loss or a metric by an output's mask, as Keras 3 does.

A model whose output carries a mask (a recurrent layer with
``return_sequences=True`` after ``Embedding(mask_zero=True)``, for instance)
should not learn from, nor be scored on, its masked timesteps. Keras 3 folds the
mask into the sample weights before reducing the per-timestep loss; this module
holds that rule for layernet's trainer.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from .._validation import as_array, shape_str

__all__ = ["mask_to_sample_weight", "masked_compute", "masked_loss"]


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


def masked_loss(
    loss: Any, y_pred: Any, y_true: Any, mask: Any, sample_weight: Any = None
) -> tuple[float, np.ndarray]:
    r"""A loss over the unmasked steps of a masked output, and its gradient (Keras 3's rule).

    Parameters
    ----------
    loss : Loss or str
        A layernet loss (or its name, as ``compile`` takes it) that averages over
        the batch (``"mse"``, ``"sparse_categorical_crossentropy"``, ...).
    y_pred : ndarray
        The output, of shape ``(batch, *steps, ...)``, e.g. ``(batch, timesteps,
        classes)``.
    y_true : ndarray
        The targets, of the shape the loss takes for ``y_pred`` (``(batch,
        timesteps)`` labels for a sparse cross-entropy).
    mask : array_like of bool
        The output's mask, of shape ``(batch, *steps)``.
    sample_weight : array_like, optional
        Weights per sample ``(batch,)`` or per step ``(batch, *steps)``.

    Returns
    -------
    z : float
        The loss averaged over the unmasked steps (weighted).
    dz_dpred : ndarray of y_pred's shape
        Its gradient; zero at masked steps.

    Raises
    ------
    ValueError
        A mask whose shape is not a leading part of ``y_pred``'s, or weights that do
        not fit it (see :func:`mask_to_sample_weight`).

    Notes
    -----
    Each step is one sample of the loss: ``y_pred`` is folded to ``(batch * steps,
    ...)`` and the loss called with the weights of :func:`mask_to_sample_weight`,
    so :math:`z = \frac1T \sum_i w_i \ell_i = \frac1V \sum_{i\,\text{unmasked}} s_i
    \ell_i` and :math:`\partial z/\partial \hat y_i = (w_i / T)\,\partial \ell_i /
    \partial \hat y_i`, the loss's own backward rule folded back.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> from layernet.layers.masking_utils import masked_loss
    >>> pred = np.array([[[1.0], [2.0], [9.0]]])
    >>> z, grad = masked_loss("mse", pred, np.zeros((1, 3, 1)), np.array([[1, 1, 0]]))
    >>> z  # (1 + 4) / 2: the masked step does not count
    2.5
    >>> grad[0, :, 0].tolist()
    [1.0, 2.0, 0.0]
    """
    from ..losses import get as get_loss  # the losses import the layers: import when called

    owner = "masked_loss"
    fn = get_loss(loss) if isinstance(loss, str) else loss
    pred = as_array(y_pred, owner, "y_pred")
    m = np.asarray(mask).astype(bool)
    if m.ndim > pred.ndim or pred.shape[: m.ndim] != m.shape:
        raise ValueError(
            f"{owner}: expected a mask of a leading part of the prediction's shape "
            f"{shape_str(pred.shape)}, received shape {shape_str(m.shape)}."
        )
    w = cast(np.ndarray, mask_to_sample_weight(m, sample_weight))  # an array: a mask was given
    n = m.size
    target = np.asarray(y_true)
    flat_pred = pred.reshape(n, *pred.shape[m.ndim :])
    flat_true = target.reshape(n, *target.shape[m.ndim :])
    z = fn.forward(flat_pred, flat_true, sample_weight=w.reshape(n))
    return float(z), np.asarray(fn.backward_input()).reshape(pred.shape)


def masked_compute(
    loss: Any, y_pred: Any, y_true: Any, mask: Any = None, sample_weight: Any = None
) -> tuple[Any, Any]:
    r"""A loss's value and what its backward rule keeps, with an output mask applied (Keras 3).

    Leaves ``loss.saved`` untouched; ``loss.compute_backward_input(dz, saved)``
    reshaped to ``y_pred``'s shape is then :math:`dz\,\partial z/\partial\hat y`.

    Parameters
    ----------
    loss : Loss
    y_pred : ndarray
        The prediction, shape ``(batch, *steps, ...)``.
    y_true : ndarray
        The target, as the loss takes it for ``y_pred``.
    mask : array_like of bool, optional
        The prediction's mask, shape ``(batch, *steps)``; ``None`` for none.
    sample_weight : array_like, optional
        Weights per sample (or per step).

    Returns
    -------
    z : float
        The loss (:func:`mask_to_sample_weight`'s weights folded in).
    saved : object
        What the loss's ``compute_loss`` kept (``None`` for ``reduction="none"``).

    Raises
    ------
    ValueError
        A mask that is not a leading part of the prediction's shape, or whatever
        the loss refuses.

    Notes
    -----
    A loss with Keras's reductions takes the folded weights
    :math:`w_i = s_i m_i T/V` (averaging reductions) of its per-step values
    directly; any other loss is called on the prediction folded to one sample
    per step, ``(batch * steps, ...)``, with those weights, as in
    :func:`masked_loss`. Either way :math:`z = \frac1V \sum_i s_i m_i \ell_i` for
    the averaging reductions.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> from layernet.layers.masking_utils import masked_compute
    >>> loss = ln.losses.MeanSquaredError(dtype="float64")
    >>> pred = np.array([[[1.0], [2.0], [9.0]]])
    >>> z, saved = masked_compute(loss, pred, np.zeros((1, 3, 1)), np.array([[1, 1, 0]]))
    >>> z
    2.5
    >>> loss.compute_backward_input(np.float64(1.0), saved)[0, :, 0].tolist()
    [1.0, 2.0, 0.0]
    """
    from ..losses import _KerasLoss  # the losses import the layers: import when called

    pred = as_array(y_pred, loss.owner, "y_pred")
    if mask is None:
        x = loss.check_input(pred)
        return loss._compute(x, loss.check_target(x, y_true), sample_weight)
    m = np.asarray(mask).astype(bool)
    if m.ndim > pred.ndim or pred.shape[: m.ndim] != m.shape:
        raise ValueError(
            f"{loss.owner}: expected a mask of a leading part of the prediction's shape "
            f"{shape_str(pred.shape)}, received shape {shape_str(m.shape)}."
        )
    reduction = getattr(loss, "reduction", "sum_over_batch_size")
    w = cast(np.ndarray, mask_to_sample_weight(m, sample_weight, reduction=reduction))
    if isinstance(loss, _KerasLoss) and m.ndim < pred.ndim:
        x = loss.check_input(pred)
        return loss._compute(x, loss.check_target(x, y_true), w)
    n = m.size
    target = np.asarray(y_true)
    flat_pred = pred.reshape(n, *pred.shape[m.ndim :])
    if flat_pred.ndim < 2:
        flat_pred = flat_pred.reshape(n, 1)
    flat_true = target.reshape(n, *target.shape[m.ndim :])
    x = loss.check_input(flat_pred)
    return loss._compute(x, loss.check_target(x, flat_true), w.reshape(n))
