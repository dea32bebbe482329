r"""Layers that only rearrange entries."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .base import MAX_JACOBIAN_ENTRIES, Layer


class FlattenSaved(NamedTuple):
    """What :class:`Flatten` keeps for backward."""

    input_shape: tuple[int, ...]  #: the shape to restore


class Flatten(Layer):
    r"""Flatten every sample to a vector: ``(N, d_1, ..., d_k) -> (N, d_1 ⋯ d_k)``.

    Notes
    -----
    In C order flattening does not move any entry of :math:`\operatorname{vec}(X)`, so

    .. math::

        \operatorname{vec}(Y) = \operatorname{vec}(X), \qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T} = I, \qquad
        \frac{\partial z}{\partial X} = \operatorname{reshape}\Big(\frac{\partial z}{\partial Y},
        \text{shape of } X\Big).

    There are no parameters.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> ln.Flatten().forward(np.zeros((2, 5, 3))).shape
    (2, 15)
    """

    _default_name = "flatten"
    passes_views = True

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(s is None for s in rest) else int(np.prod(rest, dtype=np.int64))
        return (input_shape[0], size)

    def compute_forward(self, x, training):
        y = x.reshape(x.shape[0], int(np.prod(x.shape[1:], dtype=np.int64)))
        return y, FlattenSaved(x.shape)

    def compute_backward_input(self, dy, saved):
        return dy.reshape(saved.input_shape)

    def jacobian_input(self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES) -> np.ndarray:
        x, y, _ = self._jacobian_setup(x)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        return np.eye(x.size, dtype=self.dtype)
