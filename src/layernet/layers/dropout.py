r"""Dropout: random zeroing of activations during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_number, is_int, shape_str
from .base import Layer


class DropoutSaved(NamedTuple):
    """What :class:`Dropout` keeps for backward."""

    scale: np.ndarray | None  #: ``M / (1 - p)`` (mask shape), or ``None`` when nothing was dropped


class Dropout(Layer):
    r"""Zero each entry with probability ``rate`` during training; identity otherwise.

    .. rubric:: Input and output shape

    Any input with at least two dims ``(batch, ...)``; the output has the same
    shape.

    Parameters
    ----------
    rate : float
        Probability :math:`p \in [0, 1)` of dropping an entry.
    noise_shape : tuple of int or None, optional
        Shape of the mask, broadcast against the input (Keras's meaning): one
        entry per input axis, each the input's size there, 1 (one draw shared
        along that axis) or ``None`` (the input's size). ``(None, 1, None)`` on
        ``(batch, length, channels)`` drops whole channels of a sample at every
        step at once. ``None`` (default): the input's shape, independent entries.
    name : str, optional
        Layer name (``"dropout_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the computation.
    seed : int, optional
        Seeds the masks, so a seeded model draws the same masks on every run
        (global seed when ``None``).

    Raises
    ------
    ValueError
        ``Dropout 'dropout_1': invalid value for `rate`: expected a number in
        [0, 1), received 1.``; the same form for ``noise_shape``, ``dtype``,
        ``name`` and ``seed``. On an input with fewer than 2 dims or one that
        ``noise_shape`` does not fit; in backward, a ``dy`` whose shape is not
        the last output's.
    RuntimeError
        ``backward_input`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    With ``training=True`` a fresh mask :math:`M` with independent entries
    :math:`M_j \sim \mathrm{Bernoulli}(1-p)` is drawn at every forward pass and the
    kept entries are scaled by :math:`1/(1-p)` ("inverted" dropout), so that
    :math:`\mathbb E[Y] = X` and nothing changes at inference:

    .. math::

        Y = \frac{M \odot X}{1-p},\qquad
        \frac{\partial z}{\partial X} = \frac{M \odot G}{1-p},

    .. math::

        \frac{\partial\,\mathrm{vec}(Y)}{\partial\,\mathrm{vec}(X)^T} =
        \mathrm{diag}\Big(\frac{\mathrm{vec}(M)}{1-p}\Big).

    With a ``noise_shape``, :math:`M` has that shape and is broadcast: every entry
    that shares a mask value is kept or dropped together, and the same
    :math:`M` (broadcast) multiplies :math:`G` in the backward rule; the Jacobian
    is still diagonal.

    With ``training=False`` (``predict``, ``evaluate``, and the explicit Jacobians)
    :math:`Y = X` and the Jacobian is the identity. There are no parameters.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> drop = ln.Dropout(0.5, seed=0, dtype="float64")
    >>> x = np.ones((1, 8))
    >>> drop.forward(x)                      # inference: unchanged
    array([[1., 1., 1., 1., 1., 1., 1., 1.]])
    >>> y = drop.forward(x, training=True)   # about half zeroed, the rest doubled
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    """

    #: Passes an input mask on unchanged (Keras's ``supports_masking``).
    supports_masking = True

    _default_name = "dropout"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        rate: float,
        noise_shape: Sequence[int | None] | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed)
        self.rate = check_number(rate, "rate", self.owner, low=0, high=1, high_open=True)
        if noise_shape is not None and (
            not isinstance(noise_shape, Sequence)
            or isinstance(noise_shape, str)
            or not all(d is None or (is_int(d) and d >= 1) for d in noise_shape)
        ):
            raise ValueError(
                f"{self.owner}: invalid value for `noise_shape`: expected None or a tuple of "
                f"positive ints or None (one per input axis), received {noise_shape!r}."
            )
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self._rng: np.random.Generator | None = None

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.pop("trainable")
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {"rate": self.rate, "noise_shape": noise, **cfg}

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if self.noise_shape is None:
            return
        ok = len(self.noise_shape) == len(shape) and all(
            d is None or d == 1 or n is None or d == n
            for d, n in zip(self.noise_shape, shape, strict=False)
        )
        if not ok:
            raise ValueError(
                f"{self.owner}: `noise_shape` {self.noise_shape} does not broadcast to the "
                f"input of shape {shape_str(shape)}: expected one entry per axis, each the "
                f"input's size, 1 or None."
            )

    def _mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.noise_shape is None:
            return shape
        return tuple(n if d is None else d for d, n in zip(self.noise_shape, shape, strict=True))

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        self._rng = rng

    def compute_forward(self, x, training):
        if not training or self.rate == 0:
            return x.copy(), DropoutSaved(None)
        keep = self._rng.random(self._mask_shape(x.shape), dtype=x.dtype) >= self.rate
        scale = np.multiply(keep, x.dtype.type(1 / (1 - self.rate)), dtype=x.dtype)
        return x * scale, DropoutSaved(scale)

    def compute_backward_input(self, dy, saved):
        return dy.copy() if saved.scale is None else dy * saved.scale
