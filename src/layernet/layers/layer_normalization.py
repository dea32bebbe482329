r"""Layer normalisation over any set of sample axes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import initializers
from .._validation import check_bool, check_number, is_int, shape_str
from .base import Layer


class LayerNormalizationSaved(NamedTuple):
    """What :class:`LayerNormalization` keeps for backward."""

    xhat: np.ndarray  #: :math:`(x - \mu) r` (``rms_scaling``: :math:`x r`)
    centered: np.ndarray | None  #: :math:`x - \mu` (``rms_scaling`` only)
    inv: np.ndarray  #: :math:`r = 1/\sqrt{\sigma^2 + \epsilon}`, reduced axes kept as 1


class LayerNormalization(Layer):
    r"""Layer normalisation (Ba et al., 2016): each sample normalised over ``axis``.

    .. rubric:: Input and output shape

    Any input ``(batch, ...)`` with at least two dims; the output has the same
    shape. The statistics of each sample are taken over the axes in ``axis``
    (never the batch axis); ``gamma`` and ``beta`` have the sizes of those axes.

    Parameters
    ----------
    axis : int or sequence of int, default -1
        The axis or axes to normalise over (negative counts from the end).
        Kept sorted, as Keras does.
    epsilon : float, default 1e-3
        Added to the variance before the square root.
    center : bool, default True
        Learn an offset ``beta`` (ignored with ``rms_scaling``).
    scale : bool, default True
        Learn a factor ``gamma``.
    rms_scaling : bool, default False
        Keras's deprecated variant: :math:`y = \gamma\,x/\sqrt{\sigma^2 + \epsilon}`
        with no centring and no ``beta`` (it scales by the variance, not the root
        mean square, exactly as Keras computes it); ``gamma`` is created even when
        ``scale=False``.
    beta_initializer : str or Initializer, default "zeros"
        Initial ``beta`` (see :mod:`layernet.initializers`).
    gamma_initializer : str or Initializer, default "ones"
        Initial ``gamma``.
    name : str, optional
        Layer name (``"layer_normalization_<n>"`` by default).
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and the computation.
    seed : int, optional
        Seed for initialisers that draw random values.
    trainable : bool, default True
        Whether optimisers update ``gamma`` and ``beta``.

    Attributes
    ----------
    params : dict
        ``"gamma"`` then ``"beta"`` (Keras's order), each of shape
        ``tuple(input_shape[a] for a in axis)``; absent when switched off.

    Raises
    ------
    ValueError
        ``invalid value for `axis`: expected an int or a list of ints``;
        ``epsilon`` (a number >= 0) and the bools; on an input, an axis outside
        its rank or the batch axis (``axis 0 is the batch axis ...``), or a
        rank other than the built one.

    Notes
    -----
    Over the :math:`n` entries of one sample on the normalised axes,
    :math:`\mu = \frac1n\sum x`, :math:`\sigma^2 = \frac1n\sum (x-\mu)^2`,
    :math:`r = (\sigma^2 + \epsilon)^{-1/2}`, :math:`\hat x = (x-\mu) r` and

    .. math::

        y = \gamma \odot \hat x + \beta.

    With :math:`g = \partial z/\partial y` and :math:`h = \gamma \odot g`, the
    three terms of :math:`\partial\hat x/\partial x` (through :math:`x`, :math:`\mu`
    and :math:`\sigma^2`) give

    .. math::

        \frac{\partial z}{\partial x} = r\,\Big(h - \overline{h}
            - \hat x\,\overline{h \odot \hat x}\Big),

    .. math::

        \frac{\partial z}{\partial \gamma} = \sum_{\text{other axes}} g \odot \hat x,
        \qquad
        \frac{\partial z}{\partial \beta} = \sum_{\text{other axes}} g,

    where the bars are means over the normalised axes. The input Jacobian is
    block diagonal, one :math:`n\times n` block per sample:
    :math:`\operatorname{diag}(\gamma)\,r\,(I - \frac1n\mathbf 1\mathbf 1^T
    - \frac1n\hat x\hat x^T)` (for the block's vectors). With ``rms_scaling``,
    :math:`y = \gamma\odot x\,r` and

    .. math::

        \frac{\partial z}{\partial x} = r\,h - r^3\,\frac{x-\mu}{n}
            \sum h\odot x,\qquad
        \frac{\partial z}{\partial \gamma} = \sum_{\text{other axes}} g\odot x\,r.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> norm = ln.LayerNormalization(epsilon=0.0, dtype="float64")
    >>> norm.forward(np.array([[1.0, 2.0, 3.0]])).round(4)
    array([[-1.2247,  0.    ,  1.2247]])
    >>> [w.shape for w in norm.get_weights()]
    [(3,), (3,)]
    """

    #: Passes an input mask on unchanged (Keras's ``supports_masking``).
    supports_masking = True

    _default_name = "layer_normalization"

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        rms_scaling: bool = False,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        if is_int(axis):
            axes = [int(axis)]  # type: ignore[arg-type]
        elif isinstance(axis, list | tuple) and len(axis) > 0 and all(is_int(a) for a in axis):
            axes = [int(a) for a in axis]
        else:
            raise ValueError(
                f"{o}: invalid value for `axis`: expected an int or a non-empty list of ints, "
                f"received {axis!r}."
            )
        self.axis: int | list[int] = axes[0] if is_int(axis) else axes
        self.epsilon = check_number(epsilon, "epsilon", o, low=0)
        self.center = check_bool(center, "center", o)
        self.scale = check_bool(scale, "scale", o)
        self.rms_scaling = check_bool(rms_scaling, "rms_scaling", o)
        initializers.get(beta_initializer, o, "beta_initializer")
        initializers.get(gamma_initializer, o, "gamma_initializer")
        self.beta_initializer = beta_initializer
        self.gamma_initializer = gamma_initializer

    def get_config(self) -> dict[str, Any]:
        return {
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "rms_scaling": self.rms_scaling,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            **super().get_config(),
        }

    def _axes(self, ndim: int) -> tuple[int, ...]:
        """The normalised axes, non-negative and sorted."""
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        return tuple(sorted({a % ndim for a in axes}))

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        axes = [self.axis] if isinstance(self.axis, int) else self.axis
        for a in axes:
            if not -len(shape) <= a < len(shape):
                raise ValueError(
                    f"{self.owner}: `axis` {self.axis!r} is out of range for input of shape "
                    f"{shape_str(shape)} ({len(shape)} dims)."
                )
            if a % len(shape) == 0:
                raise ValueError(
                    f"{self.owner}: `axis` {self.axis!r}: axis 0 is the batch axis; expected "
                    f"sample axes 1..{len(shape) - 1} (or negative), for input of shape "
                    f"{shape_str(shape)}."
                )
        if self.built:
            expected = tuple(self.input_shape[a] for a in self._axes(len(self.input_shape)))
            got = tuple(shape[a] for a in self._axes(len(shape)))
            if expected != got:
                raise ValueError(
                    f"{self.owner}: built for inputs of shape {shape_str(self.input_shape)}, "
                    f"got shape {shape_str(shape)}."
                )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def build_params(self, input_shape, rng):
        shape = tuple(input_shape[a] for a in self._axes(len(input_shape)))
        n = math.prod(shape)
        if self.scale or self.rms_scaling:
            init = initializers.get(self.gamma_initializer, self.owner, "gamma_initializer")
            self.params["gamma"] = init(shape, n, n, rng, self.dtype)
        if self.center and not self.rms_scaling:
            init = initializers.get(self.beta_initializer, self.owner, "beta_initializer")
            self.params["beta"] = init(shape, n, n, rng, self.dtype)

    def _broadcast(self, p: np.ndarray, ndim: int) -> np.ndarray:
        """A parameter reshaped to broadcast against the input."""
        axes = self._axes(ndim)
        shape = [1] * ndim
        for a, size in zip(axes, p.shape, strict=True):
            shape[a] = size
        return p.reshape(shape)

    def compute_forward(self, x, training):
        # The same operations in the same order as the Notes' formulas; temporaries are
        # reused in place (an in-place ufunc rounds exactly as its out-of-place form).
        axes = self._axes(x.ndim)
        mean = _mean(x, axes)
        centered = x - mean
        square = centered * centered
        var = _mean(square, axes)
        del square
        inv = 1.0 / np.sqrt(var + self.epsilon)
        if self.rms_scaling:
            xhat = x * inv
            saved = LayerNormalizationSaved(xhat, centered, inv)
        else:
            xhat = centered
            xhat *= inv
            saved = LayerNormalizationSaved(xhat, None, inv)
        if "gamma" in self.params:
            y = xhat * self._broadcast(self.params["gamma"], x.ndim)
        else:
            y = np.array(xhat)  # the output never aliases what backward keeps
        if "beta" in self.params:
            y += self._broadcast(self.params["beta"], x.ndim)
        return np.asarray(y, dtype=self.dtype), saved

    def compute_backward_input(self, dy, saved):
        ndim = dy.ndim
        axes = self._axes(ndim)
        if "gamma" in self.params:
            h = dy * self._broadcast(self.params["gamma"], ndim)
        else:
            h = np.array(dy)  # a private copy: h is updated in place below
        if self.rms_scaling:
            n = math.prod([dy.shape[a] for a in axes])
            s = np.sum(h * saved.xhat, axis=axes, keepdims=True)  # Σ h x r
            return saved.inv * h - saved.inv**2 * saved.centered / n * s
        mean_h = _mean(h, axes)
        hx = h * saved.xhat
        mean_hx = _mean(hx, axes)
        np.multiply(saved.xhat, mean_hx, out=hx)  # x̂ · mean(h x̂)
        h -= mean_h
        h -= hx
        h *= saved.inv
        return h

    def compute_backward_params(self, dy, saved):
        axes = self._axes(dy.ndim)
        other = tuple(a for a in range(dy.ndim) if a not in axes)
        grads = {}
        if "gamma" in self.params:
            grads["gamma"] = np.sum(dy * saved.xhat, axis=other).reshape(self.params["gamma"].shape)
        if "beta" in self.params:
            grads["beta"] = np.sum(dy, axis=other).reshape(self.params["beta"].shape)
        return grads


def _mean(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The mean over ``axes`` (kept); over an empty group (0 channels), an empty result
    without NumPy's warning about the mean of an empty slice."""
    n = math.prod(x.shape[a] for a in axes)
    return np.sum(x, axis=axes, keepdims=True) / max(n, 1)
