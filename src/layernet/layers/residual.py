r"""Residual block: :math:`Y = X + f(X)` for a chain :math:`f` of layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import shape_str
from .base import Layer
from .container import _Container, deserialize_layer, serialize_layer


class ResidualSaved(NamedTuple):
    """What a residual block keeps for its backward rules: each inner layer's saved state."""

    inner: tuple[Any, ...]


class Residual(_Container):
    r"""Residual (skip) connection around a chain of layers: :math:`Y = X + f(X)`.

    .. rubric:: Input and output shape

    Any input the chain accepts; the output has the same shape (the chain must
    keep it, for instance ``Conv(C, k, padding="same")`` on ``C`` channels).

    Parameters
    ----------
    layers : sequence of Layer
        The chain :math:`f = f_k \circ \dots \circ f_1`, applied in order; it must
        map its input to an output of the same shape. Layer names must be unique.
    name : str, optional
        Layer name (``"residual_<n>"`` by default); see :class:`Layer`.
    dtype : str, optional
        The inner layers' dtype (they must agree); ``None`` takes theirs.
    seed : int, optional
        Seeds the inner layers that have none of their own.
    trainable : bool, default True
        Whether optimisers update the inner layers' parameters.

    Raises
    ------
    TypeError
        ``Residual: invalid value for `layers`: expected a non-empty list of
        Layer instances, ...`` (or ``layers[i]`` naming the entry that is not
        a Layer).
    ValueError
        Duplicate inner layer names; inner layers of mixed dtypes or a
        ``dtype`` other than theirs. On an input: ``the inner layers map
        inputs of shape ... to ...; a residual block needs the same shape (Y =
        X + f(X)).``, or ``inner layer refused the input: ...`` with the inner
        layer's message.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.

    Attributes
    ----------
    layers : list of Layer
        The inner chain.
    params, grads, state : dict
        The inner layers' arrays (the same objects) under ``"<inner name>/<key>"``;
        a frozen inner layer's parameters are listed under ``state``.

    Notes
    -----
    With :math:`X^{(0)} = X` and :math:`X^{(j)} = f_j(X^{(j-1)})`, the block computes
    :math:`Y = X + X^{(k)}`. The skip path adds the identity to the chain's
    derivatives:

    .. math::

        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y}
          + \frac{\partial z}{\partial X^{(k)}}\Big|_{\text{back through } f_k, \dots, f_1},

    .. math::

        \frac{\partial z}{\partial \theta_j} = \frac{\partial z}{\partial \theta_j}\Big|_{
          \partial z/\partial X^{(k)} = \partial z/\partial Y} ,

    that is, the upstream gradient enters the chain unchanged
    (:math:`\partial z/\partial X^{(k)} = \partial z/\partial Y`) and each inner
    layer's own backward rules apply. In Jacobian form (C-order vec),

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T}
          = I + J_f, \quad
        J_f = J_{f_k} \cdots J_{f_1},

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(\theta_j)^T}
          = J_{f_k} \cdots J_{f_{j+1}}\,
            \frac{\partial\operatorname{vec}(X^{(j)})}{\partial\operatorname{vec}(\theta_j)^T},

    the parameter blocks being those of :math:`f` alone (the skip path has no
    parameters).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> block = ln.Residual([ln.Dense(2, use_bias=False, dtype="float64")])
    >>> block.build((None, 2))
    >>> block.layers[0].params["kernel"][:] = [[1.0, 0.0], [0.0, 2.0]]
    >>> block(np.array([[1.0, 1.0]]))
    array([[2., 3.]])
    >>> block.jacobian_input(np.array([[1.0, 1.0]]))
    array([[2., 0.],
           [0., 3.]])
    >>> sorted(block.params) == [f"{block.layers[0].name}/kernel"]
    True
    """

    _default_name = "residual"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        layers: Sequence[Layer],
        *,
        name: str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        where = f"Residual '{name}'" if name else "Residual"
        if isinstance(layers, Layer) or not isinstance(layers, Sequence) or not layers:
            raise TypeError(
                f"{where}: invalid value for `layers`: expected a non-empty list of "
                f"Layer instances, received {layers!r:.200}."
            )
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"{where}: invalid value for `layers[{i}]`: expected a Layer, "
                    f"received {layer!r:.200}."
                )
        super().__init__(layers, name=name, dtype=dtype, seed=seed, trainable=trainable)

    def get_config(self) -> dict[str, Any]:
        return {"layers": [serialize_layer(layer) for layer in self.layers], **super().get_config()}

    @classmethod
    def _inner_from_config(cls, config, custom_objects):
        config["layers"] = [deserialize_layer(s, custom_objects) for s in config["layers"]]
        return config

    @property
    def input_ndim(self) -> int | None:  # type: ignore[override]
        return self.layers[0].input_ndim

    def _expected_layout(self) -> str:
        return self.layers[0]._expected_layout()

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        self._chain_shape(shape)

    def _chain_shape(self, shape):
        out = shape
        try:
            for layer in self.layers:
                out = layer.output_shape(out)
        except ValueError as exc:
            raise ValueError(f"{self.owner}: inner layer refused the input: {exc}") from None
        if tuple(out[1:]) != tuple(shape[1:]):
            raise ValueError(
                f"{self.owner}: the inner layers map inputs of shape {shape_str(shape)} to "
                f"{shape_str(out)}; a residual block needs the same shape (Y = X + f(X))."
            )
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_inner(self, input_shape, rng):
        shape = input_shape
        for layer in self.layers:
            self._build_child(layer, shape, rng)
            shape = layer.output_shape(shape)
        self._chain_shape(input_shape)

    def compute_forward(self, x, training):
        h = x
        saved = []
        for layer in self.layers:
            h, s = self._inner_forward(layer, h, training)
            saved.append(s)
        return h + x, ResidualSaved(tuple(saved))

    def _chain_backward_input(self, dy: np.ndarray, saved: ResidualSaved) -> np.ndarray:
        for layer, s in zip(reversed(self.layers), reversed(saved.inner), strict=True):
            dy = layer.compute_backward_input(dy, s)
        return dy

    def compute_backward_input(self, dy, saved):
        return dy + self._chain_backward_input(dy, saved)

    def compute_backward_params(self, dy, saved):
        grads: dict[str, np.ndarray] = {}
        learn = [i for i, lay in enumerate(self.layers) if lay.trainable and lay.params]
        if not learn:
            return grads
        last = learn[0]  # the chain is not followed further back than needed
        for i in range(len(self.layers) - 1, last - 1, -1):
            layer, s = self.layers[i], saved.inner[i]
            if layer.trainable and layer.params:
                for k, g in layer.compute_backward_params(dy, s).items():
                    grads[f"{layer.name}/{k}"] = g
            if i > last:
                dy = layer.compute_backward_input(dy, s)
        return grads
