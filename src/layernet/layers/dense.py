r"""Fully connected layer."""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from .. import _ops, initializers, threads
from .._validation import check_bool, check_positive_int, shape_str
from . import activations
from .base import MAX_JACOBIAN_ENTRIES, Layer


def _folded_product(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``x @ kernel`` for ``x`` with more than 2 dims, as one 2-D product.

    NumPy runs ``(batch, steps, features) @ kernel`` as one small product per
    sample; folding the leading axes gives BLAS one large product (a fast path,
    off with :func:`layernet._ops.fast_paths`).
    """
    if not _ops.FAST_PATHS:
        return threads.matmul(x, kernel)
    lead = x.shape[:-1]
    return threads.matmul(x.reshape(-1, x.shape[-1]), kernel).reshape(*lead, kernel.shape[1])


class DenseSaved(NamedTuple):
    """What :class:`Dense` keeps for backward."""

    x: np.ndarray  #: the input (for the kernel gradient)
    activation: Any = None  #: what the activation kept (``None`` without one)


class Dense(Layer):
    r"""Fully connected (affine) layer on the last axis: :math:`Y = a(XW + b)`.

    .. rubric:: Input and output shape

    Input ``(batch, ..., in_features)``, output ``(batch, ..., units)``: only the
    last axis changes, and any axes between the batch and the last are treated
    as more batch (put :class:`Flatten` first to connect every entry of an
    image). The number of parameters is
    ``in_features * units + units`` (without the bias term when ``use_bias=False``).

    Parameters
    ----------
    units : int
        Number of outputs :math:`U`; a positive int.
    activation : str or None, optional
        Applied after the affine map, by Keras name (``"relu"``, ``"softmax"``,
        ...; see :class:`~layernet.Activation`); ``None`` (default) or ``"linear"``
        for none, i.e. :math:`a` the identity.
    use_bias : bool, default True
        Whether to add the bias :math:`b`.
    kernel_initializer : str or Initializer, default "glorot_uniform"
        Initialiser of ``W`` by name or object, see :mod:`layernet.initializers`
        (``"he_normal"``, ``"he_uniform"``, ``"glorot_normal"``,
        ``"lecun_uniform"``, ``"zeros"``, ...).
    bias_initializer : str or Initializer, default "zeros"
        Initialiser of ``b``, by name or object.
    kernel_regularizer : str, Regularizer or None, default None
        Penalty on the kernel (``"l1"``, ``"l2"``, ``"l1_l2"``, an object from
        :mod:`layernet.regularizers`); a trainer adds it to the loss and its
        gradient to the kernel's (:meth:`~Layer.regularization_penalty`).
    bias_regularizer : str, Regularizer or None, default None
        Penalty on the bias, likewise.
    activity_regularizer : str, Regularizer or None, default None
        Penalty on the output, divided by the batch size as in Keras
        (:meth:`~Layer.activity_regularization`).
    kernel_constraint : str, Constraint or None, default None
        Projection of the kernel after every optimizer step (``"max_norm"``,
        ``"non_neg"``, ``"unit_norm"``, ``"min_max_norm"``, an object from
        :mod:`layernet.constraints`; :meth:`~Layer.apply_constraints`).
    bias_constraint : str, Constraint or None, default None
        Projection of the bias, likewise.
    name : str, optional
        Layer name (``"dense_<n>"`` by default); see :class:`Layer`.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of the parameters and the computation.
    seed : int, optional
        Seed of the initial values (global seed when ``None``).
    trainable : bool, default True
        Whether optimisers update the parameters.

    Attributes
    ----------
    params : dict
        ``"kernel"`` of shape ``(in_features, units)`` and, with a bias, ``"bias"``
        of shape ``(units,)`` (Keras's names; files written with the earlier names
        ``"W"`` and ``"b"`` still load).

    Raises
    ------
    ValueError
        At construction, naming the layer and the argument: ``Dense 'dense_1':
        invalid value for `units`: expected a positive int, received 0.``; the
        same form for ``use_bias`` and ``trainable`` (bools), the initialisers
        (a known name), ``dtype``, ``name`` and ``seed``. On an input:
        ``expected input with at least 2 dims (batch, ...)``, ``expected at
        least 1 input feature``, or ``expected input with 3 features (last axis,
        as built), got shape ...``. In backward: a ``dy`` whose shape is not the
        last output's.
    RuntimeError
        ``backward_input`` or ``backward_params`` before any ``forward``.
    TypeError
        An input that is not a real numeric array.

    Notes
    -----
    For :math:`X` of shape :math:`(N, I)` (more leading axes are treated as batch),

    .. math::

        Y = X W + \mathbf 1 b^T,\qquad
        \frac{\partial z}{\partial X} = \frac{\partial z}{\partial Y} W^T,

    .. math::

        \frac{\partial z}{\partial W} = X^T \frac{\partial z}{\partial Y},\qquad
        \frac{\partial z}{\partial b} = \mathbf 1^T \frac{\partial z}{\partial Y}.

    **Jacobian structure** (C-order vec, so :math:`\operatorname{vec}(Y)_{nU+u} = Y_{n,u}`):

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(X)^T}
            = I_N \otimes W^T,
        \qquad
        \frac{\partial\operatorname{vec}(Y)}{\partial\operatorname{vec}(W)^T}
            = X \otimes I_U,

    .. math::

        \frac{\partial\operatorname{vec}(Y)}{\partial b^T} = \mathbf 1_N \otimes I_U.

    :meth:`jacobian_input` and :meth:`jacobian_params` build these Kronecker
    products directly.

    **With an activation** :math:`a`, the output is :math:`A = a(Y)` and every
    rule above starts from :math:`H = \partial z/\partial Y` instead of
    :math:`G = \partial z/\partial A`: :math:`H = G \odot a'(Y)` for element-wise
    :math:`a`, :math:`H = A \odot (G - (G \odot A)\mathbf 1\mathbf 1^T)` for
    ``"softmax"`` (rows). The Jacobians are the products :math:`J_a\,J_Y`, with
    :math:`J_a` diagonal (element-wise) or block diagonal (softmax).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Dense(10).output_shape((None, 125))
    (None, 10)
    >>> dense = ln.Dense(2, dtype="float64")
    >>> dense.build((None, 3))
    >>> dense.params["kernel"][:] = [[1, 0], [0, 1], [1, 1]]
    >>> dense.forward(np.array([[1.0, 2.0, 3.0]]))
    array([[4., 5.]])
    >>> dense.jacobian_input(np.array([[1.0, 2.0, 3.0]]))
    array([[1., 0., 1.],
           [0., 1., 1.]])
    """

    #: Passes an input mask on unchanged (Keras's ``supports_masking``).
    supports_masking = True

    _default_name = "dense"
    fresh_output = True
    fresh_gradient = True

    #: Parameters renamed since earlier versions (old name -> new), for old model files.
    renamed_weights: ClassVar[dict[str, str]] = {"W": "kernel", "b": "bias"}

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.set_weight_penalties(
            {"kernel": kernel_regularizer, "bias": bias_regularizer},
            {"kernel": kernel_constraint, "bias": bias_constraint},
            activity_regularizer,
        )
        o = self.owner
        initializers.get(kernel_initializer, o, "kernel_initializer")
        initializers.get(bias_initializer, o, "bias_initializer")
        self.units = check_positive_int(units, "units", o)
        self._activation = activations.get(activation, o)
        self.activation = None if self._activation is None else self._activation.name
        self.use_bias = check_bool(use_bias, "use_bias", o)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def get_config(self) -> dict[str, Any]:
        return {
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            **self.penalty_config(),
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        if shape[-1] is not None and shape[-1] < 1:
            raise ValueError(
                f"{self.owner}: expected at least 1 input feature, got shape {shape_str(shape)}."
            )
        if self.built:
            self._check_last_axis(shape, self.params["kernel"].shape[0], "features")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def build_params(self, input_shape, rng):
        fan_in = input_shape[-1]
        init = initializers.get(self.kernel_initializer, self.owner, "kernel_initializer")
        self.params["kernel"] = init((fan_in, self.units), fan_in, self.units, rng, self.dtype)
        if self.use_bias:
            init_b = initializers.get(self.bias_initializer, self.owner, "bias_initializer")
            self.params["bias"] = init_b((self.units,), fan_in, self.units, rng, self.dtype)

    def compute_forward(self, x, training):
        kernel = self.params["kernel"]
        y = threads.matmul(x, kernel) if x.ndim == 2 else _folded_product(x, kernel)
        if self.use_bias:
            y += self.params["bias"]
        y, act = activations.apply(self._activation, y)
        return y, DenseSaved(x, act)

    def _affine_grad(self, dy: np.ndarray, saved: DenseSaved) -> np.ndarray:
        """The gradient with respect to the affine output (before the activation)."""
        if self._activation is None:
            return dy
        return self._activation.backward(dy, saved.activation).astype(dy.dtype, copy=False)

    def compute_backward_input(self, dy, saved):
        return self._input_grad(self._affine_grad(dy, saved))

    def compute_backward_params(self, dy, saved):
        return self._param_grads(self._affine_grad(dy, saved), saved)

    def _input_grad(self, g: np.ndarray) -> np.ndarray:
        kernel_t = self.params["kernel"].T
        return threads.matmul(g, kernel_t) if g.ndim == 2 else _folded_product(g, kernel_t)

    def _param_grads(self, g: np.ndarray, saved: DenseSaved) -> dict[str, np.ndarray]:
        x2 = saved.x.reshape(-1, saved.x.shape[-1])
        dy2 = g.reshape(-1, self.units)
        grads = {"kernel": threads.matmul(x2.T, dy2)}
        if self.use_bias:
            grads["bias"] = _ops.column_sums(dy2, self.workspace)
        return grads

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        cls = type(self)
        if (
            self._activation is None
            or cls.compute_backward_input is not Dense.compute_backward_input
            or cls.compute_backward_params is not Dense.compute_backward_params
        ):
            return super().call_backward(dy, saved, need_input=need_input, need_params=need_params)
        # A model asks for both gradients at once: one activation backward serves both.
        g = self._affine_grad(self._cast_dy(dy), saved)
        grads = self._param_grads(g, saved) if need_params and self.params else {}
        return (self._input_grad(g) if need_input else None), grads

    def _activation_jacobian(self, saved: DenseSaved, y_shape) -> np.ndarray | None:
        if self._activation is None:
            return None
        return activations.jacobian_of(self._activation, saved.activation, y_shape).astype(
            self.dtype, copy=False
        )

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        x, y, saved = self._jacobian_setup(x, options)
        self._check_jacobian_size(y.size, x.size, max_entries, "jacobian_input")
        rows = x.size // x.shape[-1]
        jac = np.kron(np.eye(rows, dtype=self.dtype), self.params["kernel"].T)
        act = self._activation_jacobian(saved, y.shape)
        return jac if act is None else act @ jac

    def jacobian_params(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> dict[str, np.ndarray]:
        x, y, saved = self._jacobian_setup(x, options)
        for k, p in self.params.items():
            self._check_jacobian_size(y.size, p.size, max_entries, f"jacobian_params['{k}']")
        x2 = x.reshape(-1, x.shape[-1])
        eye = np.eye(self.units, dtype=self.dtype)
        out = {"kernel": np.kron(x2, eye)}
        if self.use_bias:
            out["bias"] = np.kron(np.ones((x2.shape[0], 1), dtype=self.dtype), eye)
        act = self._activation_jacobian(saved, y.shape)
        return out if act is None else {k: act @ v for k, v in out.items()}
