r"""Fully connected layer."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .. import _ops, initializers
from .._validation import check_bool, check_positive_int, shape_str
from .base import MAX_JACOBIAN_ENTRIES, Layer


class DenseSaved(NamedTuple):
    """What :class:`Dense` keeps for backward."""

    x: np.ndarray  #: the input (for the kernel gradient)


class Dense(Layer):
    r"""Fully connected (affine) layer on the last axis: :math:`Y = XW + b`.

    Parameters
    ----------
    units : int
        Number of outputs :math:`U`.
    use_bias : bool, default True
    kernel_initializer : str, default "glorot_uniform"
        See :mod:`layernet.initializers`.
    bias_initializer : str, default "zeros"
    name, dtype, seed, trainable
        See :class:`~layernet.layers.Layer`.

    Attributes
    ----------
    params : dict
        ``"W"`` of shape ``(in_features, units)`` and, with a bias, ``"b"`` of
        shape ``(units,)``.

    Notes
    -----
    For :math:`X` of shape :math:`(N, I)` (more leading axes are treated as batch),

    .. math::

        Y = X W + \mathbf 1 b^T,\qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} W^T,\qquad
        \frac{\partial z}{\partial W} = X^T \frac{\partial z}{\partial Y},\qquad
        \frac{\partial z}{\partial b} = \mathbf 1^T \frac{\partial z}{\partial Y}.

    **Jacobian structure** (C-order vec, so :math:`\operatorname{vec}(Y)_{nU+u} = Y_{n,u}`):

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T} = I_N \otimes W^T,
        \qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(W)^T} = X \otimes I_U,
        \qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial b^T} = \mathbf 1_N \otimes I_U.

    :meth:`jacobian_input` and :meth:`jacobian_params` build these Kronecker
    products directly.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> dense = ln.Dense(2, dtype="float64")
    >>> dense.build((None, 3))
    >>> dense.params["W"][:] = [[1, 0], [0, 1], [1, 1]]
    >>> dense.forward(np.array([[1.0, 2.0, 3.0]]))
    array([[4., 5.]])
    >>> dense.jacobian_input(np.array([[1.0, 2.0, 3.0]]))
    array([[1., 0., 1.],
           [0., 1., 1.]])
    """

    _default_name = "dense"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        units: int,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        initializers.get(kernel_initializer, o, "kernel_initializer")
        initializers.get(bias_initializer, o, "bias_initializer")
        self.units = check_positive_int(units, "units", o)
        self.use_bias = check_bool(use_bias, "use_bias", o)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if shape[-1] is not None and shape[-1] < 1:
            raise ValueError(
                f"{self.owner}: expected at least 1 input feature, got shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.params["W"].shape[0], "features")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def build_params(self, input_shape, rng):
        fan_in = input_shape[-1]
        init = initializers.get(self.kernel_initializer, self.owner, "kernel_initializer")
        self.params["W"] = init((fan_in, self.units), fan_in, self.units, rng, self.dtype)
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            self.params["b"] = init_b((self.units,), fan_in, self.units, rng, self.dtype)

    def compute_forward(self, x, training):
        y = x @ self.params["W"]
        if self.use_bias:
            y += self.params["b"]
        return y, DenseSaved(x)

    def compute_backward_input(self, dy, saved):
        return dy @ self.params["W"].T

    def compute_backward_params(self, dy, saved):
        x2 = saved.x.reshape(-1, saved.x.shape[-1])
        dy2 = dy.reshape(-1, self.units)
        grads = {"W": x2.T @ dy2}
        if self.use_bias:
            grads["b"] = _ops.column_sums(dy2, self.workspace)
        return grads

    def jacobian_input(self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray:
        x, y, _ = self._jacobian_setup(x)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        rows = x.size // x.shape[-1]
        return np.kron(np.eye(rows, dtype=self.dtype), self.params["W"].T)

    def jacobian_params(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES
    ) -> dict[str, np.ndarray]:
        x, y, _ = self._jacobian_setup(x)
        for k, p in self.params.items():
            self._check_jacobian_size(y.size, p.size, max_entries, f"jacobian_params['{k}']")
        x2 = x.reshape(-1, x.shape[-1])
        eye = np.eye(self.units, dtype=self.dtype)
        out = {"W": np.kron(x2, eye)}
        if self.use_bias:
            out["b"] = np.kron(np.ones((x2.shape[0], 1), dtype=self.dtype), eye)
        return out
