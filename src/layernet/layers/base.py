r"""The Layer contract: forward, both backward rules, and explicit vec-Jacobians.

A network is a chain :math:`X^1 \to X^2 \to \dots \to X^L \to z` in which layer
:math:`i` maps its input :math:`X^i` and parameters :math:`w^i` to
:math:`X^{i+1}`. With :math:`\operatorname{vec}` the C-order flattening
(``ravel()``), the chain rule reads

.. math::

    \frac{\partial z}{\partial \operatorname{vec}(w^i)^T}
      = \frac{\partial z}{\partial \operatorname{vec}(X^{i+1})^T}
        \frac{\partial \operatorname{vec}(X^{i+1})}{\partial \operatorname{vec}(w^i)^T},
    \qquad
    \frac{\partial z}{\partial \operatorname{vec}(X^i)^T}
      = \frac{\partial z}{\partial \operatorname{vec}(X^{i+1})^T}
        \frac{\partial \operatorname{vec}(X^{i+1})}{\partial \operatorname{vec}(X^i)^T}.

A layer's :meth:`Layer.backward_params` and :meth:`Layer.backward_input` compute
exactly these vector-matrix products without forming the matrices;
:meth:`Layer.jacobian_params` and :meth:`Layer.jacobian_input` form them.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from .. import _ops, _random, constraints, registry, regularizers
from .._sizes import ArrayTooLargeError, check_array_bytes, get_max_array_bytes
from .._validation import (
    as_array,
    check_bool,
    check_positive_int,
    checked_init,
    is_int,
    normalize_shape,
    resolve_dtype,
    shape_str,
    snake_case,
)
from ..graph.node import call_symbolic
from ..graph.tensor import is_symbolic
from ..ops.tensor import active_tape
from .calling import SEED_STATE, _KerasLayerAPI, call_layer, is_tensor, note_losses_override

#: Largest explicit Jacobian (rows x columns) built unless ``max_entries`` is raised.
MAX_JACOBIAN_ENTRIES = 4_000_000


def is_array_list(x: Any) -> bool:
    """Whether ``x`` is a list or tuple of arrays: the inputs of a layer that takes several.

    A nested list of numbers is one array, not several inputs.
    """
    return (
        isinstance(x, list | tuple)
        and len(x) > 0
        and all(isinstance(a, np.ndarray) or hasattr(a, "__array__") for a in x)
    )


def is_shape_list(shape: Any) -> bool:
    """Whether ``shape`` is a list of shapes (a layer with several inputs)."""
    return (
        isinstance(shape, list | tuple)
        and len(shape) > 0
        and all(isinstance(s, list | tuple) for s in shape)
    )


#: layernet's own public Layer and Loss classes by class name (user classes are never
#: added; model files use :mod:`layernet.registry`).
_REGISTRY: dict[str, type] = {}


class Layer(_KerasLayerAPI):
    r"""Base class of every layer: the contract that models, tests and users rely on.

    Data is channels-last, ``(batch, *spatial, channels)``. A subclass
    implements ``compute_output_shape``, ``compute_forward``,
    ``compute_backward_input`` and (if it has parameters) ``build_params`` and
    ``compute_backward_params``; this class supplies validation, lazy building,
    the state kept for backward (:attr:`saved`), gradient accumulation and the
    explicit Jacobians.

    A layer with several inputs (a merging layer) receives a list of arrays in
    ``compute_forward`` (and a list of shapes in ``compute_output_shape``) and
    returns one input gradient per input, as a list, from
    ``compute_backward_input``; its :meth:`jacobian_input` is a list with one
    matrix per input. A layer with several outputs returns a list of arrays
    from ``compute_forward`` and receives a list of upstream gradients (zeros
    for an output nobody used); its Jacobians' rows run over the outputs
    concatenated in order.

    Parameters
    ----------
    name : str, optional
        Name used in summaries and error messages; ``"<kind>_<n>"`` by default.
    dtype : {"float32", "float64"}, default "float32"
        Dtype of parameters, computation and outputs. Inputs are cast to it.
    seed : int, optional
        Seed of the generator that initialises the parameters. ``None`` draws
        one from the global seed (see :func:`layernet.set_seed`).
    trainable : bool, default True
        A frozen layer (``False``) is not updated by optimisers but still
        passes gradients back through :meth:`backward_input`.
    input_shape : tuple of int, optional
        Keras's habit: the shape of one sample (no batch axis), accepted by every
        layer's constructor and kept as :attr:`declared_input_shape`; a model
        whose first layer declares it can build before seeing data. ``input_dim=n``
        is the same as ``input_shape=(n,)``. Prefer ``Input(shape)`` as a model's
        first layer.

    Attributes
    ----------
    params : dict of str to ndarray
        The parameters by name (empty for parameter-free layers).
    state : dict of str to ndarray
        Non-trainable arrays the layer updates itself (running statistics);
        saved with the parameters, never touched by optimisers.
    grads : dict of str to ndarray
        Gradients accumulated by :meth:`backward_params`, same names and shapes
        as ``params``; reset with :meth:`zero_grad`.
    built : bool
        Whether the parameters exist.
    input_shape : tuple or None
        ``(None, *sample_shape)`` once built.
    declared_input_shape : tuple or None
        ``(None, *input_shape)`` when the constructor was given ``input_shape``
        (or ``input_dim``), else ``None``; :meth:`get_config` includes it only
        when given.
    saved : NamedTuple or None
        What the last :meth:`forward` kept for the backward rules, by name (each
        layer defines a small ``NamedTuple``, e.g. ``DenseSaved(x=...)``); passed
        to ``compute_backward_input`` and ``compute_backward_params``.
    workspace : Workspace
        Scratch arrays reused between calls (never an output).
    overwrite_inputs : bool
        Set by a model around its training steps for layers whose class declares
        ``in_place``; see :meth:`declares`.

    Raises
    ------
    ValueError
        At construction: ``<Kind>: invalid value for `name`: expected a non-empty
        str, ...``, the same form for ``dtype`` (``'float32'`` or ``'float64'``),
        ``seed`` (a non-negative int or None) and ``trainable`` (a bool); for
        an ``input_shape`` the layer cannot take, ``<Kind> '<name>': invalid
        value for `input_shape`: ...``. The methods list what they raise.
    TypeError
        At construction, for an argument the layer does not have (a Keras one
        layernet lacks, or a typo): ``Dense: layernet does not support the
        argument `kernel_regularizer` (layernet's Dense takes units, ...); the
        page 'Coming from Keras or PyTorch' (docs/keras_compat.md) lists ...``.

    Notes
    -----
    ``vec`` is C-order flattening throughout: for ``Y`` of shape ``(N, L, C)``,
    entry ``Y[n, l, c]`` is ``vec(Y)[(n*L + l)*C + c]``. The Jacobians cover the
    whole batch, so their shapes are ``(Y.size, X.size)`` and ``(Y.size, θ.size)``.

    Examples
    --------
    Every layer has this interface; here a :class:`Dense` layer:

    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.Dense(2, dtype="float64", seed=0)
    >>> layer.built
    False
    >>> y = layer.forward(np.ones((4, 3)))      # builds itself on the first call
    >>> layer.input_shape, sorted(layer.params), y.shape
    ((None, 3), ['bias', 'kernel'], (4, 2))
    >>> dx = layer.backward_input(np.ones_like(y))        # ∂z/∂X for z = ΣY
    >>> layer.backward_params(np.ones_like(y))["bias"]    # ∂z/∂b, added to grads
    array([4., 4.])
    >>> layer.jacobian_input(np.ones((1, 3))).shape       # ∂vec(Y)/∂vec(X)ᵀ
    (2, 3)
    """

    _default_name: ClassVar[str] = "layer"
    # Speed declarations. Each is honoured only when set in the class's own body (see
    # :meth:`declares`): a subclass that keeps an array for its backward pass never
    # inherits a promise its parent made.
    #: ``forward`` returns a new array that this layer does not keep (not in :attr:`saved`)
    #: and that aliases nothing, so the next layer may overwrite it.
    fresh_output: ClassVar[bool] = False
    #: ``backward_input`` returns a new array that this layer does not keep and that
    #: aliases nothing, so the layer before may overwrite it.
    fresh_gradient: ClassVar[bool] = False
    #: ``forward`` returns a view of its input and ``backward_input`` a view of ``dy``,
    #: and the layer keeps neither: the arrays are as private as the ones it was given.
    passes_views: ClassVar[bool] = False
    #: ``training`` of a direct call on arrays, ``layer(x)``, when not given (Keras's
    #: ``call(..., training=...)`` default; ``True`` for the random preprocessing layers).
    call_training_default: ClassVar[bool] = False
    #: ``compute_forward`` and ``compute_backward_input`` may overwrite ``x`` and ``dy``
    #: when :attr:`overwrite_inputs` is true (a model sets it only when both are private).
    in_place: ClassVar[bool] = False
    _counters: ClassVar[dict[str, itertools.count]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_default_name" not in cls.__dict__:  # a user class: "LeakyReLU" -> "leaky_relu_1"
            cls._default_name = snake_case(cls.__name__.lstrip("_")) or "layer"
        if cls.__module__.startswith("layernet.") and not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls
            registry.register_builtin(cls)
        # Keras habits in every constructor: `input_shape=`/`input_dim=`, and a helpful
        # error (not Python's bare TypeError) for an argument the class does not have.
        if "__init__" in cls.__dict__:
            init = checked_init(cls.__dict__["__init__"], _declared_input_shape, _SHAPE_ARGS)
            cls.__init__ = init  # type: ignore[method-assign]
        if "get_config" in cls.__dict__:
            cls.get_config = _with_declared_shape(cls.__dict__["get_config"])  # type: ignore[method-assign]
        if "losses" in cls.__dict__ and not cls.__module__.startswith("layernet."):
            note_losses_override()  # its own `losses`: models must ask every layer
        cls._setup_subclass()

    def __init__(
        self,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        kind = type(self).__name__
        if name is None:
            counter = Layer._counters.setdefault(self._default_name, itertools.count(1))
            name = f"{self._default_name}_{next(counter)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(
                f"{kind}: invalid value for `name`: expected a non-empty str, received {name!r}."
            )
        self.name = name
        self.dtype = resolve_dtype(dtype, f"{kind} '{name}'")
        if seed is not None and not (is_int(seed) and seed >= 0):
            raise ValueError(
                f"{kind} '{name}': invalid value for `seed`: expected a "
                f"non-negative int or None, received {seed!r}."
            )
        self.seed = seed
        self.trainable = check_bool(trainable, "trainable", f"{kind} '{name}'")
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.built = False
        #: ``(None, *sample_shape)`` once built (a list of such shapes for several inputs).
        self.input_shape: Any = None
        #: ``(None, *input_shape)`` when the constructor was given ``input_shape``.
        self.declared_input_shape: tuple[int | None, ...] | None = None
        self.saved: Any = None
        #: Shape of the last output (a list of shapes for a layer with several outputs).
        self._y_shape: Any = None
        #: The input shape and size limit the output's size was last checked for.
        self._size_checked: tuple[tuple[int, ...], int] | None = None
        #: Scratch arrays reused from one call to the next; a model hands each layer
        #: the workspace of the run it is in (training, validation) and drops it after.
        self.workspace = _ops.Workspace()
        #: Set by a model around its own training steps, only for classes that declare
        #: :attr:`in_place` and only when ``x`` and ``dy`` are arrays nobody else holds.
        self.overwrite_inputs = False
        #: Penalties and projections of parameters by parameter name (set by subclasses
        #: through :meth:`set_weight_penalties`); see :meth:`regularization_penalty`.
        self.param_regularizers: dict[str, regularizers.Regularizer] = {}
        self.param_constraints: dict[str, constraints.Constraint] = {}
        #: Penalty on the layer's output, applied by the trainer (see
        #: :meth:`activity_regularization`).
        self.activity_regularizer: regularizers.Regularizer | None = None
        self._penalty_args: list[str] = []

    @classmethod
    def declares(cls, flag: str) -> bool:
        """Whether a speed declaration (``"fresh_output"``, ``"fresh_gradient"``,
        ``"passes_views"``, ``"in_place"``) is set in this class's own body.

        Speed declarations are never inherited: a subclass that keeps its output
        or its input for its own backward pass cannot be hurt by its parent's.

        Examples
        --------
        >>> import layernet as ln
        >>> class Keeps(ln.ReLU):
        ...     pass
        >>> ln.ReLU.declares("in_place"), Keeps.declares("in_place")
        (True, False)
        """
        return bool(cls.__dict__.get(flag, False))

    # ------------------------------------------------------------------ naming
    @property
    def owner(self) -> str:
        """How error messages refer to this layer, e.g. ``Conv 'conv_1'``."""
        return f"{type(self).__name__} '{self.name}'"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------- calls on symbolic tensors
    def _first_call(self, attribute: str) -> Any:
        nodes = self.__dict__.get("_inbound_nodes")
        if not nodes:
            raise AttributeError(
                f"{self.owner}: has never been called on symbolic tensors, so it has no "
                f"`{attribute}`; call it on a tensor from layernet.Input first."
            )
        return nodes[0]

    @property
    def input(self) -> Any:
        """What the layer's first call on symbolic tensors took (Keras's ``layer.input``).

        A tensor, or the list of tensors of a layer called on several.

        Raises
        ------
        AttributeError
            When the layer was never called on symbolic tensors.

        Examples
        --------
        >>> import layernet as ln
        >>> x = ln.Input(shape=(3,))
        >>> dense = ln.Dense(2)
        >>> y = dense(x)
        >>> dense.input is x, dense.output is y
        (True, True)
        """
        return self._first_call("input").inputs

    @property
    def output(self) -> Any:
        """What the layer's first call on symbolic tensors returned (Keras's ``layer.output``).

        A tensor, or the list of tensors of a layer with several outputs (an
        ``LSTM`` with ``return_state=True``: the output and the states).

        Raises
        ------
        AttributeError
            When the layer was never called on symbolic tensors.
        """
        node = self._first_call("output")
        return list(node.outputs) if node.multi_output else node.outputs[0]

    # ------------------------------------------ regularizers and constraints
    def set_weight_penalties(
        self,
        regularizers_by_param: dict[str, Any] | None = None,
        constraints_by_param: dict[str, Any] | None = None,
        activity_regularizer: Any = None,
    ) -> None:
        """Resolve and keep a subclass's ``<param>_regularizer``/``<param>_constraint`` arguments.

        Called from a subclass's ``__init__``, e.g. ``self.set_weight_penalties({"kernel":
        kernel_regularizer, "bias": bias_regularizer}, {"kernel": kernel_constraint,
        "bias": bias_constraint}, activity_regularizer)``. Each entry is checked
        with :func:`layernet.regularizers.get` or :func:`layernet.constraints.get`
        (an object, a Keras name, a serialised dict or ``None``); the arguments
        appear in :meth:`penalty_config`, which the subclass adds to its config.

        Raises
        ------
        ValueError
            ``<Kind> '<name>': invalid value for `kernel_regularizer`: expected
            one of [...], a Regularizer or None, received ...`` (likewise for the
            other arguments).
        """
        self._penalty_args = []
        self.param_regularizers, self.param_constraints = {}, {}
        for k, spec in (regularizers_by_param or {}).items():
            arg = f"{k}_regularizer"
            self._penalty_args.append(arg)
            reg = regularizers.get(spec, self.owner, arg)
            if reg is not None:
                self.param_regularizers[k] = reg
        for k, spec in (constraints_by_param or {}).items():
            arg = f"{k}_constraint"
            self._penalty_args.append(arg)
            con = constraints.get(spec, self.owner, arg)
            if con is not None:
                self.param_constraints[k] = con
        self._penalty_args.append("activity_regularizer")
        self.activity_regularizer = regularizers.get(
            activity_regularizer, self.owner, "activity_regularizer"
        )

    def penalty_config(self) -> dict[str, Any]:
        """The regularizer and constraint arguments as :meth:`get_config` stores them."""
        out: dict[str, Any] = {}
        for arg in self._penalty_args:
            if arg == "activity_regularizer":
                out[arg] = regularizers.serialize(self.activity_regularizer)
            elif arg.endswith("_regularizer"):
                reg = self.param_regularizers.get(arg[: -len("_regularizer")])
                out[arg] = regularizers.serialize(reg)
            else:
                con = self.param_constraints.get(arg[: -len("_constraint")])
                out[arg] = constraints.serialize(con)
        return out

    def regularization_penalty(self) -> float:
        r"""The sum of the weight penalties :math:`\sum_k R_k(\theta_k)` of this layer's params.

        Only the layer's own parameters with a regularizer count, and nothing
        while the layer is frozen (``trainable=False``) or not built, as in
        Keras. A trainer adds it to the loss it reports.

        Returns
        -------
        float

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> d = ln.Dense(1, kernel_regularizer=ln.regularizers.L2(0.5), dtype="float64")
        >>> d.build((None, 2))
        >>> d.params["kernel"][:] = [[1.0], [2.0]]
        >>> d.regularization_penalty()
        2.5
        >>> d.zero_grad(); d.add_regularization_grads(); d.grads["kernel"]
        array([[1.],
               [2.]])
        """
        if not (self.trainable and self.built):
            return 0.0
        regs = self.param_regularizers.items()
        return float(sum(reg(self.params[k]) for k, reg in regs if k in self.params))

    def add_regularization_grads(self) -> None:
        r"""Add :math:`\partial R_k/\partial\theta_k` into :attr:`grads` for each regularized param.

        A trainer calls it after the backward pass, before the optimizer step
        (nothing happens while the layer is frozen or not built).
        """
        if not (self.trainable and self.built):
            return
        for k, reg in self.param_regularizers.items():
            if k in self.params:
                self.grads[k] += reg.gradient(self.params[k]).astype(self.grads[k].dtype)

    def apply_constraints(self) -> None:
        """Project every constrained parameter in place (``p[...] = constraint(p)``).

        A trainer calls it after each optimizer step, as Keras does (nothing
        happens while the layer is frozen or not built).
        """
        if not (self.trainable and self.built):
            return
        for k, con in self.param_constraints.items():
            if k in self.params:
                p = self.params[k]
                p[...] = con(p)

    def activity_regularization(self, y: np.ndarray) -> tuple[float, np.ndarray | None]:
        r"""The activity penalty of output ``y`` and its gradient, as Keras 3 applies it.

        Keras divides the penalty by the batch size :math:`B` (the first axis):

        .. math:: z_a = R(Y)/B,\qquad \frac{\partial z_a}{\partial Y} = R'(Y)/B.

        A trainer adds ``penalty`` to the loss and ``grad`` to the upstream gradient
        :math:`\partial z/\partial Y` of this layer before its backward pass.

        Parameters
        ----------
        y : ndarray
            The layer's output.

        Returns
        -------
        penalty : float
            0.0 without an activity regularizer.
        grad : ndarray or None
            ``None`` without an activity regularizer.
        """
        reg = self.activity_regularizer
        if reg is None:
            return 0.0, None
        batch = max(int(y.shape[0]), 1) if y.ndim else 1
        return reg(y) / batch, (reg.gradient(y) / batch).astype(y.dtype, copy=False)

    # ------------------------------------------------------------ configuration
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this layer (JSON-serialisable)."""
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`'s output."""
        return cls(**config)

    # -------------------------------------------------------------- shape logic
    #: Number of input dims including batch, or ``None`` when any rank >= 2 is accepted.
    input_ndim: int | None = None

    def _expected_layout(self) -> str:
        """Human description of the expected input layout, for messages."""
        nd = self.input_ndim
        if nd is None:
            return "(batch, ...)"
        spatial = {3: "length, ", 4: "height, width, ", 5: "depth, height, width, "}
        return f"(batch, {spatial.get(nd, '')}channels)" if nd >= 3 else "(batch, features)"

    def check_input_shape(self, shape: tuple[int | None, ...]) -> None:
        """Raise a clear error if this layer cannot take inputs of ``shape``.

        Subclasses extend it (channels against the built kernel, window sizes).
        """
        if self._call_layer and not is_shape_list(shape):  # call() decides what it accepts
            if len(shape) < 1:
                raise ValueError(
                    f"{self.owner}: expected input with a batch axis, got shape {shape_str(shape)}."
                )
            return
        if is_shape_list(shape):
            for s in shape:
                if len(s) < 1:  # type: ignore[arg-type]
                    raise ValueError(
                        f"{self.owner}: expected every input to have a batch axis, got shapes "
                        f"{', '.join(shape_str(t) for t in shape)}."  # type: ignore[arg-type]
                    )
            return
        nd = self.input_ndim
        if nd is not None and len(shape) != nd:
            raise ValueError(
                f"{self.owner}: expected input with {nd} dims {self._expected_layout()}, "
                f"got shape {shape_str(shape)}."
            )
        if nd is None and len(shape) < 2:
            raise ValueError(
                f"{self.owner}: expected input with at least 2 dims (batch, ...), "
                f"got shape {shape_str(shape)}."
            )
        if (
            self.built
            and self.input_shape is not None
            and not is_shape_list(self.input_shape)
            and len(shape) != len(self.input_shape)
        ):
            raise ValueError(
                f"{self.owner}: built for inputs of shape {shape_str(self.input_shape)}, "
                f"got shape {shape_str(shape)}."
            )

    def _check_last_axis(self, shape: tuple[int | None, ...], expected: int, what: str) -> None:
        """Refuse inputs whose last axis differs from the size the layer was built for."""
        if self.built and shape[-1] != expected:
            raise ValueError(
                f"{self.owner}: expected input with {expected} {what} (last axis, as built), "
                f"got shape {shape_str(shape)}."
            )

    def _normalize_shape(self, input_shape: Any) -> Any:
        """A shape as a tuple, or a list of tuples for a layer given several inputs."""
        if is_shape_list(input_shape):
            return [normalize_shape(s, self.owner) for s in input_shape]
        return normalize_shape(input_shape, self.owner)

    def output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """Shape of the output for inputs of ``input_shape`` (pure; validates).

        Parameters
        ----------
        input_shape : tuple of int or None
            Full input shape including the batch axis (``None`` allowed there).

        Returns
        -------
        tuple of int or None
            The output shape, batch entry passed through.

        Raises
        ------
        ValueError
            If ``input_shape`` is not a tuple of non-negative ints (``None``
            allowed), or the layer cannot take it (wrong number of dims, a
            last axis other than the built one, a window larger than the input);
            the message names the layer and shows the shape.
        """
        shape = self._normalize_shape(input_shape)
        self.check_input_shape(shape)
        return self.compute_output_shape(shape)

    def build(
        self, input_shape: Sequence[int | None], *, rng: np.random.Generator | None = None
    ) -> None:
        """Create the parameters for inputs of ``input_shape`` (batch axis included).

        Called by the first :meth:`forward`; calling it again rebuilds the
        parameters with fresh values.

        Parameters
        ----------
        input_shape : tuple of int or None
            Full input shape; the batch entry may be ``None``.
        rng : numpy.random.Generator, optional
            Generator for the initial values. By default one seeded with the
            layer's ``seed``, or drawn from the global seed when that is ``None``.

        Raises
        ------
        ValueError
            As :meth:`output_shape`, for a shape the layer cannot take.
        """
        if self._call_layer:  # weights come from the user's build (add_weight) or the call
            self._finish_build(input_shape, rng)
            return
        shape = self._normalize_shape(input_shape)
        self.built = False
        self.check_input_shape(shape)
        self.compute_output_shape(shape)  # validates window sizes against the input
        self.params = {}
        try:
            self.build_params(shape, rng if rng is not None else _random.generator(self.seed))
            self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        except MemoryError as exc:
            raise self._too_large(exc, f"building for inputs of shape {_shapes(shape)}") from None
        self.input_shape = (
            [(None, *s[1:]) for s in shape] if is_shape_list(shape) else (None, *shape[1:])
        )
        self.built = True
        self.saved = None
        self._y_shape = None
        self._checked_shape = None

    # hooks for subclasses ----------------------------------------------------
    def build_params(self, input_shape: tuple[int | None, ...], rng: np.random.Generator) -> None:
        """Create ``self.params`` (nothing for parameter-free layers)."""

    # A layer written as ``call()`` gets all four from its traced call (see
    # :mod:`layernet.layers.calling`): the output shape from a call on zeros, the
    # backward rules from the recorded ops.
    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        if self._call_layer:
            return self._traced_output_shape(input_shape)
        raise NotImplementedError

    def compute_forward(
        self, x: np.ndarray, training: bool, **options: Any
    ) -> tuple[np.ndarray, Any]:
        if self._call_layer:
            return self._traced_forward(x, training, **options)
        raise NotImplementedError

    def compute_backward_input(self, dy: np.ndarray, saved: Any) -> np.ndarray:
        if self._call_layer:
            return self._traced_backward_input(dy, saved)
        raise NotImplementedError

    def compute_backward_params(self, dy: np.ndarray, saved: Any) -> dict[str, np.ndarray]:
        if self._call_layer:
            return self._traced_backward_params(dy, saved)
        return {}

    # ------------------------------------------------------------ computation
    def convert_input(self, x: np.ndarray) -> np.ndarray:
        """Cast one input array to what ``compute_forward`` takes (the layer's dtype).

        A layer that takes integer inputs (token ids) overrides this.
        """
        return x.astype(self.dtype, copy=False)

    #: Shape of the last input that passed :meth:`check_input_shape` since the layer was
    #: built: an array of that shape and of the layer's dtype is not checked again.
    _checked_shape: tuple[int, ...] | None = None

    def _prepare_input(self, x: Any) -> Any:
        if (
            type(x) is np.ndarray
            and x.shape == self._checked_shape
            and x.dtype == self.dtype
            and self._size_checked == (x.shape, get_max_array_bytes())
        ):
            return x  # validated on an earlier call: same shape, same dtype, same limit
        return self.prepare_input(x)

    def prepare_input(self, x: Any) -> Any:
        """Check ``x`` (an array or a list of arrays), build the layer if needed, cast it.

        What :meth:`forward` and :meth:`call_forward` do before ``compute_forward``.

        Raises
        ------
        TypeError
            An input that is not a real numeric array.
        ValueError
            A shape the layer cannot take (see :meth:`output_shape`).
        """
        if is_array_list(x):
            xs = [as_array(a, self.owner, f"inputs[{i}]") for i, a in enumerate(x)]
            shapes: Any = [a.shape for a in xs]
            self.check_input_shape(shapes)
            if not self.built:
                self.build(shapes)
            self._check_output_bytes(shapes, max(a.size for a in xs))
            return [self.convert_input(a) for a in xs]
        x = as_array(x, self.owner, "input")
        self.check_input_shape(x.shape)
        if not self.built:
            self.build(x.shape)
        self._check_output_bytes(x.shape, x.size)
        self._checked_shape = x.shape
        return self.convert_input(x)

    def _check_output_bytes(self, shape: Any, largest_input: int) -> None:
        """Refuse, before it is allocated, an output above :func:`get_max_array_bytes`.

        ``shape`` is the input shape (a list of shapes for several inputs); every output
        (of a layer with several) larger than the largest input is checked. An output no
        larger than an input (which exists) is never refused: views (Flatten, Reshape)
        cost nothing, and such a copy is not what a limit is for. Checked once per input
        shape and limit.
        """
        checked = (shape, get_max_array_bytes())
        if getattr(self, "_size_checked", None) == checked:
            return
        for out_shape in _shape_list(self.compute_output_shape(shape)):
            out = [d for d in out_shape if d is not None]
            if math.prod(out) > largest_input:
                check_array_bytes(
                    out,
                    self.dtype,
                    self.owner,
                    "the output",
                    f", for inputs of shape {_shapes(shape)},",
                )
        self._size_checked = checked

    def _too_large(self, exc: MemoryError, doing: str) -> ArrayTooLargeError:
        """A clear error for a MemoryError met while ``doing`` (naming this layer), unless it
        is a refusal of a loading budget, which the loader reports itself."""
        from ..initializers import AllocationRefused

        if isinstance(exc, AllocationRefused):
            return exc  # type: ignore[return-value]
        if isinstance(exc, ArrayTooLargeError) and str(exc).startswith(f"{self.owner}:"):
            return exc
        detail = str(exc) or "out of memory"
        return ArrayTooLargeError(f"{self.owner}: {doing}: {detail}")

    def forward(self, x: Any, training: bool = False, **options: Any) -> Any:
        """Compute the output ``Y`` and keep what the backward rules need.

        Parameters
        ----------
        x : ndarray of shape (batch, \\*spatial, channels), or list of ndarray
            The input; cast to the layer's dtype (see :meth:`convert_input`). A
            layer that takes several inputs (a merging layer) takes a list and its
            ``compute_forward`` receives a list. The layer builds itself on the
            first call.
        training : bool, default False
            Whether this is a training pass (for layers that behave differently).
        **options
            Per-call options of layers that have them (a mask, ``use_causal_mask``),
            passed to ``compute_forward`` as keyword arguments.

        Returns
        -------
        ndarray
            The output; its shape is ``output_shape(x.shape)``.

        Raises
        ------
        TypeError
            If ``x`` is not a real numeric array (``<Kind> '<name>': expected
            `input` to be a real numeric array, ...``).
        ValueError
            If the layer cannot take inputs of ``x.shape`` (see :meth:`output_shape`).
        """
        x = self._prepare_input(x)
        try:
            if options:
                y, saved = self.compute_forward(x, bool(training), **options)
            else:
                y, saved = self.compute_forward(x, bool(training))
        except MemoryError as exc:
            raise self._too_large(exc, f"forward on inputs of shape {_shapes(x)}") from None
        d = self.__dict__  # plain per-call attributes: no tracking to do (see calling.py)
        d["saved"] = saved
        d["_y_shape"] = y.shape if type(y) is np.ndarray else output_shapes(y)
        return y

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the layer: on arrays, ``layer.forward(x)``; on symbolic tensors, a graph node.

        ``layer(x, training=True)`` runs :meth:`forward` (a subclass's own
        ``forward`` included). Called on tensors from :func:`layernet.Input` (or
        from other layers' calls), it computes nothing: it records the call and
        returns symbolic output tensors, to build a :class:`~layernet.Model`.
        """
        training = kwargs.pop("training", None)
        if len(args) == 2 and isinstance(args[1], bool | np.bool_) and training is None:
            # layer(x, True): the old positional form
            args, training = args[:1], bool(args[1])  # type: ignore[misc]
        inputs, options = self.split_call_arguments(*args, **kwargs)
        if is_tensor(inputs) or (
            isinstance(inputs, list | tuple) and any(is_tensor(a) for a in inputs)
        ):
            # inside another layer's traced call(): recorded on that layer's tape
            return call_layer(self, inputs, training, options)
        if is_symbolic(inputs) or is_symbolic(list(options.values())):
            return call_symbolic(self, inputs, options, training)
        if active_tape() is not None:
            # called on arrays inside another layer's traced call() (an Embedding on
            # constant positions): recorded too, so that its weights get gradients
            return call_layer(self, inputs, training, options)
        if training is None:
            training = self.call_training_default
        return self.forward(inputs, training=bool(training), **options)

    def split_call_arguments(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Split a call's arguments into the inputs (differentiated) and per-call options.

        By default a call takes one positional argument, the input (an array or a
        list of arrays), and keyword options passed on to ``compute_forward``. A
        layer with a richer call (``mha(query, value, key=None, ...)``) overrides it.

        A ``call(self, a, b, ...)`` of one's own that takes several tensors as
        positional arguments (as Keras allows) takes them as a list of inputs, which
        its ``call`` receives spread out again.

        Raises
        ------
        TypeError
            For a call with no input or more than one positional argument.
        """
        if 2 <= len(args) <= self._spread_inputs():
            return list(args), kwargs
        if len(args) != 1:
            raise TypeError(
                f"{self.owner}: expected one positional argument (the input, or a list of "
                f"inputs), received {len(args)}."
            )
        return args[0], kwargs

    def call_forward(self, x: Any, training: bool = False, **options: Any) -> tuple[Any, Any]:
        """One call's forward pass: ``(y, saved)``, keeping nothing on the layer.

        What :meth:`forward` does, except that what the backward rules need is
        returned (``saved``) instead of stored in :attr:`saved`: a model keeps it
        per call, so one layer can be called several times in one pass.

        Parameters
        ----------
        x : ndarray or list of ndarray
        training : bool, default False
        **options
            Per-call options, as in :meth:`forward`.

        Returns
        -------
        y : ndarray or list of ndarray
        saved : object
            To hand back to :meth:`call_backward`.
        """
        x = self._prepare_input(x)
        if options:
            return self.compute_forward(x, bool(training), **options)
        return self.compute_forward(x, bool(training))

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        """One call's backward pass: ``(∂z/∂x or None, {name: ∂z/∂θ})``.

        The gradients are returned, not added into :attr:`grads`; a model adds
        them (summing over the calls of a shared layer). A layer made of other
        layers may add its inner layers' gradients itself and return ``{}``.

        Parameters
        ----------
        dy : ndarray or list of ndarray
            Gradient with respect to the call's output(s).
        saved : object
            What :meth:`call_forward` returned for this call.
        need_input, need_params : bool
            Which gradients to compute.
        """
        dy = self._cast_dy(dy)
        grads = self.compute_backward_params(dy, saved) if need_params and self.params else {}
        dx = self.compute_backward_input(dy, saved) if need_input else None
        return dx, grads

    def _cast_dy(self, dy: Any) -> Any:
        if isinstance(dy, list | tuple):
            return [None if d is None else np.asarray(d, dtype=self.dtype) for d in dy]
        return np.asarray(dy, dtype=self.dtype)

    def output_mask(self, x: Any, mask: Any) -> Any:
        """The mask of this call's output, given its input ``x`` and input ``mask``.

        Keras's masking protocol: a layer with ``compute_mask(inputs, mask)`` says
        it; otherwise a layer whose ``supports_masking`` is true passes the mask on
        unchanged, and any other layer ends it (``None``).
        """
        compute_mask = getattr(self, "compute_mask", None)
        if compute_mask is not None:
            return compute_mask(x, mask)
        if mask is not None and getattr(self, "supports_masking", False):
            return mask
        return None

    def symbolic_output(self, input_shape: Any, options: dict[str, Any]) -> tuple[Any, Any]:
        """Output shape(s) and dtype(s) of a call on inputs of ``input_shape`` (builds the layer).

        Uses :meth:`output_shape`; a layer without ``compute_output_shape`` is
        called once on zeros with a batch of one.
        """
        shape = self._normalize_shape(input_shape)
        self.check_input_shape(shape)
        if not self.built:
            self.build(shape)
        try:
            out = self.output_shape(shape)
        except NotImplementedError:
            dummy = (
                [np.zeros([1 if d is None else d for d in s], self.dtype) for s in shape]
                if isinstance(shape, list)
                else np.zeros([1 if d is None else d for d in shape], self.dtype)
            )
            plain = {k: v for k, v in options.items() if not is_symbolic(v)}
            y, _ = self.call_forward(dummy, False, **plain)
            ys = y if isinstance(y, list | tuple) else [y]
            shapes = [(None, *a.shape[1:]) for a in ys]
            dtypes = [a.dtype.name for a in ys]
            if isinstance(y, list | tuple):
                return shapes, dtypes
            return shapes[0], dtypes[0]
        if isinstance(out, list):
            return out, [self.dtype.name] * len(out)
        return out, self.dtype.name

    def _check_dy(self, dy: Any) -> Any:
        if type(dy) is np.ndarray and dy.shape == self._y_shape and dy.dtype == self.dtype:
            return dy  # the shape of the last output, in the layer's dtype
        if self._y_shape is None:  # no forward since the layer was (re)built
            raise RuntimeError(
                f"{self.owner}: backward called before forward; call forward(x) first so the "
                f"layer knows the input it differentiates at."
            )
        if isinstance(self._y_shape, list):  # several outputs: one gradient each
            if not isinstance(dy, list | tuple) or len(dy) != len(self._y_shape):
                raise ValueError(
                    f"{self.owner}: expected `dy` to be a list of {len(self._y_shape)} arrays "
                    f"(one per output), received {type(dy).__name__}."
                )
            return [
                np.zeros(shape, self.dtype)
                if d is None
                else self._check_one_dy(d, shape, f"dy[{i}]")
                for i, (d, shape) in enumerate(zip(dy, self._y_shape, strict=True))
            ]
        return self._check_one_dy(dy, self._y_shape, "dy")

    def _check_one_dy(self, dy: Any, shape: tuple[int, ...], arg: str) -> np.ndarray:
        dy = as_array(dy, self.owner, arg)
        if dy.shape != shape:
            raise ValueError(
                f"{self.owner}: expected `{arg}` of shape {shape_str(shape)} (the shape of "
                f"the last output), got shape {shape_str(dy.shape)}."
            )
        return dy.astype(self.dtype, copy=False)

    def backward_input(self, dy: np.ndarray) -> np.ndarray:
        r"""Return :math:`\partial z/\partial X` given :math:`\partial z/\partial Y`.

        Parameters
        ----------
        dy : ndarray
            Gradient of the scalar objective with respect to the last output,
            same shape as that output.

        Returns
        -------
        ndarray
            Gradient with respect to the last forward's input, same shape.

        Raises
        ------
        RuntimeError
            ``<Kind> '<name>': backward called before forward; ...`` when no
            :meth:`forward` ran since the layer was built (or since
            :meth:`clear_saved`).
        ValueError
            ``expected `dy` of shape ... (the shape of the last output), got
            shape ...``.
        TypeError
            If ``dy`` is not a real numeric array.
        """
        dy = self._check_dy(dy)
        try:
            return self.compute_backward_input(dy, self.saved)
        except MemoryError as exc:
            raise self._too_large(exc, f"backward_input for `dy` of shape {_shapes(dy)}") from None

    def backward_params(self, dy: np.ndarray) -> dict[str, np.ndarray]:
        r"""Return :math:`\partial z/\partial\theta` for every parameter, and accumulate it.

        The returned arrays have the names and shapes of :attr:`params`; they
        are also added into :attr:`grads` (use :meth:`zero_grad` to reset).

        Parameters
        ----------
        dy : ndarray
            Gradient of the scalar objective with respect to the last output,
            same shape as that output.

        Returns
        -------
        dict of str to ndarray
            :math:`\partial z/\partial\theta` by parameter name (empty for a
            layer without parameters).

        Raises
        ------
        RuntimeError
            When no :meth:`forward` ran since the layer was built (or since
            :meth:`clear_saved`).
        ValueError
            If ``dy`` does not have the shape of the last output.
        TypeError
            If ``dy`` is not a real numeric array.
        """
        dy = self._check_dy(dy)
        try:
            grads = self.compute_backward_params(dy, self.saved)
        except MemoryError as exc:
            raise self._too_large(exc, f"backward_params for `dy` of shape {_shapes(dy)}") from None
        if grads:
            acc = self.grads  # read once: a layer written as call() gathers it anew each time
            for k, g in grads.items():
                acc[k] += g
        return grads

    def clear_saved(self) -> None:
        """Drop what the last forward kept for backward (a model does so when ``fit`` ends).

        Frees the arrays :attr:`saved` refers to; the backward methods then raise
        until the next :meth:`forward`.
        """
        self.saved = None
        self._y_shape = None

    def zero_grad(self) -> None:
        """Set every accumulated gradient to zero."""
        for g in self.grads.values():
            g.fill(0)

    def count_params(self) -> int:
        """Number of scalars in the layer's weights (0 before build), as Keras counts them:
        ``params`` and ``state``, without a random layer's generator state."""
        return int(sum(p.size for p in self.weight_arrays().values()))

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """The arrays Keras calls the layer's weights, by name (not copies): :meth:`variables`
        without a random layer's ``seed_generator_state``, which Keras keeps out of
        ``weights`` (a model file still stores it, so draws resume where they were)."""
        if type(self).variables is Layer.variables:  # params and state, each read once
            state = self.state
            if not state:  # (a generator's state is a state entry)
                return dict(self.params)
            found = {**self.params, **state}
        else:
            found = self.variables()
        if any(k.endswith(SEED_STATE) for k in found):  # random layers only
            found = {k: v for k, v in found.items() if k.rsplit("/", 1)[-1] != SEED_STATE}
        return found

    def variables(self) -> dict[str, np.ndarray]:
        """``params`` and ``state`` together: everything a model file stores for this layer."""
        return {**self.params, **self.state}

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the layer's arrays as a list, in Keras's order.

        The parameters in the order the layer created them, then its state
        (running statistics) in the same way: the order of :meth:`variables`,
        and of :meth:`layernet.Sequential.get_weights` for this layer's part.
        Empty before the layer is built.

        Returns
        -------
        list of ndarray
            Copies: changing them does not change the layer.

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> dense = ln.Dense(2, seed=0)
        >>> dense.build((None, 3))
        >>> [w.shape for w in dense.get_weights()]    # kernel, then bias
        [(3, 2), (2,)]
        >>> bn = ln.BatchNormalization()
        >>> bn.build((None, 4))
        >>> len(bn.get_weights())                      # gamma, beta, moving mean and variance
        4
        """
        return [v.copy() for v in self.weight_arrays().values()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the layer's arrays from a list like :meth:`get_weights` returns.

        Values are copied into the layer's own arrays (cast to its dtype), so an
        optimizer and a model that hold those arrays see the new values.

        Parameters
        ----------
        weights : sequence of array_like
            One array per entry of :meth:`get_weights`, same order and shapes.

        Raises
        ------
        ValueError
            ``<Kind> '<name>': set_weights expected N arrays (kernel, bias), received
            M.`` (a layer not built yet expects none: build it first), or
            ``set_weights: weights[i] ('kernel') should have shape (3, 2), received
            shape (2, 3).``; nothing changes unless every array fits.
        TypeError
            If ``weights`` is not a list or tuple, or an entry is not a real numeric array.

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> dense = ln.Dense(2, dtype="float64", seed=0)
        >>> dense.build((None, 3))
        >>> dense.set_weights([np.ones((3, 2)), np.zeros(2)])
        >>> dense.forward(np.ones((1, 3)))
        array([[3., 3.]])
        """
        if not isinstance(weights, list | tuple):
            raise TypeError(
                f"{self.owner}: set_weights expected a list of arrays (as get_weights "
                f"returns), received {type(weights).__name__}."
            )
        variables = self.weight_arrays()
        names = ", ".join(variables) or "none"
        if len(weights) != len(variables):
            hint = "" if self.built else "; the layer is not built yet: call build(input_shape)"
            raise ValueError(
                f"{self.owner}: set_weights expected {len(variables)} arrays ({names}), "
                f"received {len(weights)}{hint}."
            )
        values = []
        for i, ((name, current), w) in enumerate(zip(variables.items(), weights, strict=True)):
            w = as_array(w, self.owner, f"weights[{i}]")
            if w.shape != current.shape:
                raise ValueError(
                    f"{self.owner}: set_weights: weights[{i}] ({name!r}) should have shape "
                    f"{shape_str(current.shape)}, received shape {shape_str(w.shape)}."
                )
            values.append(w)
        for current, w in zip(variables.values(), values, strict=True):
            np.copyto(current, w, casting="unsafe")

    # --------------------------------------------------------------- Jacobians
    def _jacobian_setup(
        self, x: Any, options: dict[str, Any] | None = None
    ) -> tuple[Any, Any, Any]:
        x = self._prepare_input(x)
        with self.workspace.disabled():  # keep the buffers that `saved` points into
            y, saved = self.compute_forward(x, False, **(options or {}))
        return x, y, saved

    def _check_jacobian_size(self, rows: int, cols: int, max_entries: int, what: str) -> None:
        max_entries = check_positive_int(max_entries, "max_entries", f"{self.owner}: {what}")
        if rows * cols > max_entries:
            raise ValueError(
                f"{self.owner}: {what} would have {rows} x {cols} = {rows * cols:,} entries, "
                f"above max_entries={max_entries:,}; use a smaller input or raise max_entries."
            )

    def _unit_rows(self, y_shape: Any, fn: Callable[[Any], Any]) -> list[Any]:
        """``fn(e_k)`` for every unit vector ``e_k`` of the output space.

        With several outputs the space is their concatenation in order, and ``fn``
        receives a list with one array per output.
        """
        shapes = y_shape if isinstance(y_shape, list) else [y_shape]
        sizes = [int(np.prod(s)) for s in shapes]
        e = np.zeros(sum(sizes), dtype=self.dtype)
        offsets = np.cumsum([0, *sizes])
        parts = [
            e[a:b].reshape(shape)
            for a, b, shape in zip(offsets[:-1], offsets[1:], shapes, strict=True)
        ]
        rows = []
        for k in range(e.size):
            e[k] = 1
            rows.append(fn(parts if isinstance(y_shape, list) else parts[0]))
            e[k] = 0
        return rows

    def jacobian_input(
        self, x: np.ndarray, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        r"""The explicit input Jacobian :math:`\partial\mathrm{vec}(Y)/\partial\mathrm{vec}(X)^T`.

        Row ``k`` is ``backward_input`` applied to the ``k``-th unit vector of the
        output space (exact, not finite differences); layers with a closed form
        override this. The layer's :attr:`saved` state is left untouched.

        Parameters
        ----------
        x : ndarray
            The input at which to differentiate (small shapes only).
        max_entries : int, default 4_000_000
            Refuse to build a matrix with more entries than this.
        **options
            Per-call options, as for :meth:`forward` (the Jacobian is that of
            the map with these options).

        Returns
        -------
        ndarray of shape (Y.size, X.size)
            Row ``k`` holds the derivatives of ``vec(Y)[k]``.

        Raises
        ------
        ValueError
            ``<Kind> '<name>': jacobian_input would have R x C = ... entries,
            above max_entries=...`` for large inputs, or an input the layer
            cannot take (see :meth:`output_shape`).
        TypeError
            If ``x`` is not a real numeric array.
        """
        x, y, saved = self._jacobian_setup(x, options)
        y_size = _total_size(y)
        if isinstance(x, list):  # several inputs: one matrix per input
            for i, xi in enumerate(x):
                self._check_jacobian_size(y_size, xi.size, max_entries, f"jacobian_input[{i}]")
            rows = self._unit_rows(
                output_shapes(y),
                lambda e: [g.ravel().copy() for g in self.compute_backward_input(e, saved)],
            )
            return [
                np.stack([r[i] for r in rows]) if rows else np.zeros((0, xi.size), dtype=self.dtype)
                for i, xi in enumerate(x)
            ]
        self._check_jacobian_size(y_size, x.size, max_entries, "jacobian_input")
        rows = self._unit_rows(
            output_shapes(y), lambda e: self.compute_backward_input(e, saved).ravel().copy()
        )
        return np.stack(rows) if rows else np.zeros((0, x.size), dtype=self.dtype)

    def jacobian_params(
        self, x: np.ndarray, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> dict[str, np.ndarray]:
        r"""Parameter Jacobians :math:`\partial\mathrm{vec}(Y)/\partial\mathrm{vec}(\theta)^T`.

        One matrix of shape ``(Y.size, θ.size)`` per parameter, built exactly
        from ``backward_params`` with unit vectors; :attr:`grads` is not touched.

        Parameters
        ----------
        x : ndarray
            The input at which to differentiate (small shapes only).
        max_entries : int, default 4_000_000
            Refuse to build a matrix with more entries than this.
        **options
            Per-call options, as for :meth:`forward`.

        Returns
        -------
        dict of str to ndarray
            One ``(Y.size, θ.size)`` matrix per parameter name; empty for a
            layer without parameters.

        Raises
        ------
        ValueError
            ``<Kind> '<name>': jacobian_params['kernel'] would have R x C = ... entries,
            above max_entries=...``, or an input the layer cannot take.
        TypeError
            If ``x`` is not a real numeric array.
        """
        x, y, saved = self._jacobian_setup(x, options)
        y_size = _total_size(y)
        for k, p in self.params.items():
            self._check_jacobian_size(y_size, p.size, max_entries, f"jacobian_params['{k}']")
        if not self.params:
            return {}
        rows = self._unit_rows(output_shapes(y), lambda e: self.compute_backward_params(e, saved))
        return {
            k: (
                np.stack([r[k].ravel() for r in rows])
                if rows
                else np.zeros((0, p.size), dtype=self.dtype)
            )
            for k, p in self.params.items()
        }


def _shapes(x: Any) -> str:
    """Shape(s) of an array, a list of arrays, or a shape, for messages."""
    if isinstance(x, list | tuple) and x and not isinstance(x[0], int | type(None)):
        return ", ".join(_shapes(a) for a in x)
    return shape_str(getattr(x, "shape", x))


def _shape_list(shape: Any) -> list[tuple[int | None, ...]]:
    """The shapes in an output shape: one shape, or (nested) lists of shapes of several
    outputs (a recurrent cell's ``[h, [h, c]]``)."""
    if isinstance(shape, list | tuple) and shape and not isinstance(shape[0], int | type(None)):
        return [t for s in shape for t in _shape_list(s)]
    return [tuple(shape)] if isinstance(shape, list | tuple) else []


def output_shapes(y: Any) -> Any:
    """The shape of an output, or the list of shapes of several outputs."""
    if isinstance(y, list | tuple):
        return [a.shape for a in y]
    return y.shape


def _total_size(y: Any) -> int:
    return int(sum(a.size for a in y)) if isinstance(y, list | tuple) else int(y.size)


_SHAPE_ARGS = ("input_shape", "input_dim")


def _declared_input_shape(layer: Layer, kwargs: dict[str, Any]) -> Callable[[], None] | None:
    """Take Keras's ``input_shape``/``input_dim`` out of a constructor call (see Layer)."""
    shape = kwargs.pop("input_shape", None)
    dim = kwargs.pop("input_dim", None)
    if shape is None and dim is None:
        return None

    def finish() -> None:
        owner = layer.owner
        if dim is not None and shape is not None:
            raise ValueError(
                f"{owner}: give `input_shape` or `input_dim`, not both; received "
                f"input_shape={shape!r}, input_dim={dim!r}."
            )
        if dim is not None and not (is_int(dim) and dim > 0):
            raise ValueError(
                f"{owner}: invalid value for `input_dim`: expected a positive int, "
                f"received {dim!r}."
            )
        sample = (dim,) if dim is not None else shape
        if is_int(sample):
            sample = (sample,)
        if (
            not isinstance(sample, Sequence)
            or isinstance(sample, str)
            or not all(s is None or (is_int(s) and s > 0) for s in sample)
        ):
            raise ValueError(
                f"{owner}: invalid value for `input_shape`: expected the shape of one sample "
                f"(a tuple of positive ints, no batch axis), received {shape!r}."
            )
        declared = (None, *(None if s is None else int(s) for s in sample))
        try:
            layer.output_shape(declared)
        except ValueError as exc:
            raise ValueError(
                f"{owner}: invalid value for `input_shape`: {shape if dim is None else (dim,)!r} "
                f"does not fit this layer ({exc})"
            ) from None
        layer.declared_input_shape = declared

    return finish


def _with_declared_shape(get_config: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    """Add ``input_shape`` to a layer's config when its constructor was given one."""
    if getattr(get_config, "_adds_input_shape", False):
        return get_config

    @functools.wraps(get_config)
    def wrapper(self: Layer) -> dict[str, Any]:
        config = get_config(self)
        declared = getattr(self, "declared_input_shape", None)
        if declared is not None and "input_shape" not in config:
            config["input_shape"] = list(declared[1:])
        return config

    wrapper._adds_input_shape = True  # type: ignore[attr-defined]
    return wrapper


Layer.__init__ = checked_init(Layer.__init__, _declared_input_shape, _SHAPE_ARGS)  # type: ignore[method-assign]
Layer.get_config = _with_declared_shape(Layer.get_config)  # type: ignore[method-assign]


def flatten_layers(layers: Sequence[Layer]) -> list[Layer]:
    """``layers`` and, depth first, the inner layers of layers made of layers.

    A layer made of layers (:class:`~layernet.Residual`, :class:`~layernet.Bidirectional`)
    lists them in its public ``layers`` attribute.
    """
    out: list[Layer] = []
    for layer in layers:
        out.append(layer)
        if "layers" not in layer.__dict__ and not _class_has_layers(type(layer)):
            continue  # a plain layer (asking getattr would cost a raised AttributeError)
        inner = getattr(layer, "layers", None)
        if isinstance(inner, list) and all(isinstance(a, Layer) for a in inner):
            out += flatten_layers(inner)
    return out


_HAS_LAYERS: dict[type, bool] = {}


def _class_has_layers(cls: type) -> bool:
    """Whether ``cls`` defines a ``layers`` attribute or property (a layer made of layers)."""
    found = _HAS_LAYERS.get(cls)
    if found is None:
        found = _HAS_LAYERS[cls] = hasattr(cls, "layers")
    return found
