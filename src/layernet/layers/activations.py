r"""Element-wise activation layers: ReLU, Sigmoid, Tanh."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import MAX_JACOBIAN_ENTRIES, Layer


class ReLUSaved(NamedTuple):
    """What :class:`ReLU` keeps for backward."""

    mask: np.ndarray  #: ``X > 0``, the derivative


class OutputSaved(NamedTuple):
    """What :class:`Sigmoid` and :class:`Tanh` keep for backward."""

    y: np.ndarray  #: the output, from which the derivative follows


class _Elementwise(Layer):
    r"""A layer :math:`Y = r(X)` applied entry by entry; no parameters.

    Its input Jacobian is diagonal, :math:`\operatorname{diag}(r'(\operatorname{vec} X))`,
    built here in closed form.
    """

    def compute_output_shape(self, input_shape):
        return input_shape

    def derivative(self, saved) -> np.ndarray:
        """:math:`r'(X)`, from what forward saved."""
        raise NotImplementedError

    def compute_backward_input(self, dy, saved):
        return dy * self.derivative(saved)

    def jacobian_input(self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray:
        x, y, saved = self._jacobian_setup(x)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        # The diagonal is the backward rule applied to ones (so that a subclass that
        # overrides compute_backward_input gets its own Jacobian).
        ones = np.ones(y.shape, dtype=self.dtype)
        return np.diag(self.compute_backward_input(ones, saved).ravel()).astype(
            self.dtype, copy=False
        )


class ReLU(_Elementwise):
    r"""Rectified linear unit (the notes' *ramp* layer), :math:`r(x) = \max(0, x)`.

    Notes
    -----
    .. math::

        Y = \max(0, X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot \mathbb 1[X > 0].

    The derivative :math:`r'(x)` is 1 for :math:`x > 0` and 0 for :math:`x < 0`;
    at :math:`x = 0` the function has a kink and no derivative (the lecture notes
    leave it undefined). layernet uses 0 there, as PyTorch and TensorFlow do; it is
    one valid subgradient. The Jacobian
    :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T =
    \operatorname{diag}(\mathbb 1[\operatorname{vec}(X) > 0])` is diagonal.
    There are no parameters.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> relu = ln.ReLU(dtype="float64")
    >>> relu.forward(np.array([[-1.0, 0.0, 2.0]]))
    array([[0., 0., 2.]])
    >>> relu.backward_input(np.array([[5.0, 5.0, 5.0]]))
    array([[0., 0., 5.]])
    """

    _default_name = "relu"
    fresh_output = True
    fresh_gradient = True
    in_place = True

    def compute_forward(self, x, training):
        if self.overwrite_inputs:  # inside a model's training step: x is a private activation
            mask = self.workspace.get("mask", x.shape, np.dtype(bool))[0]
            np.greater(x, 0, out=mask)
            return np.maximum(x, 0, out=x), ReLUSaved(mask)
        return np.maximum(x, 0), ReLUSaved(x > 0)

    def derivative(self, saved):
        return saved.mask

    def compute_backward_input(self, dy, saved):
        if self.overwrite_inputs and dy.flags.writeable:
            return np.multiply(dy, saved.mask, out=dy)
        return dy * saved.mask


class Sigmoid(_Elementwise):
    r"""Logistic sigmoid, :math:`\sigma(x) = 1/(1 + e^{-x})`.

    Notes
    -----
    .. math::

        Y = \sigma(X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot Y \odot (1 - Y),

    with a diagonal Jacobian :math:`\operatorname{diag}(\operatorname{vec}(Y(1-Y)))`.
    Computed without overflow for large :math:`|x|`.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> ln.Sigmoid(dtype="float64").forward(np.array([[0.0]]))
    array([[0.5]])
    """

    _default_name = "sigmoid"
    fresh_gradient = True

    def compute_forward(self, x, training):
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        return y, OutputSaved(y)

    def derivative(self, saved):
        return saved.y * (1 - saved.y)


class Tanh(_Elementwise):
    r"""Hyperbolic tangent.

    Notes
    -----
    .. math::

        Y = \tanh(X), \qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} \odot (1 - Y^2),

    with a diagonal Jacobian.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> ln.Tanh(dtype="float64").forward(np.array([[0.0]]))
    array([[0.]])
    """

    _default_name = "tanh"
    fresh_gradient = True

    def compute_forward(self, x, training):
        y = np.tanh(x)
        return y, OutputSaved(y)

    def derivative(self, saved):
        return 1 - saved.y * saved.y
