r"""``Model``: a graph of layer calls from inputs to outputs (Keras's functional API).

``Model(inputs, outputs)`` takes the calls recorded by calling layers on
:func:`~layernet.Input` tensors and runs them as one model: forward in
topological order, backward in reverse by the chain rule, summing gradients
where a tensor feeds several calls and over the calls of a shared layer. A
model is itself a layer: it can be called on tensors inside another model,
sharing its weights.
"""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import _ops, registry, saving
from .._validation import as_array, check_bool, shape_str
from ..graph.executor import Graph, Tape
from ..graph.jacobians import compose_jacobians
from ..graph.node import flatten
from ..graph.tensor import KerasTensor
from ..layers.base import Layer, flatten_layers
from ..layers.calling import _KerasLayerAPI, any_added_losses
from ..layers.input import Input, InputLayer
from ..training.trainer import Trainer, _Multi

_counter = itertools.count(1)


def _adjust_rank(x: np.ndarray, shape: tuple[Any, ...]) -> np.ndarray:
    """Keras's rank adjustment of a functional model's input: a trailing axis of length 1.

    An array one axis short of an input whose last axis is 1 gets that axis
    (``(N, 28, 28)`` for ``Input((28, 28, 1))``); one with an extra trailing axis of
    length 1 loses it.
    """
    adjusted = _adjusted_shape(x.shape, shape)
    return x if adjusted == x.shape else x.reshape(adjusted)


def _adjusted_shape(shape: tuple[Any, ...], ref: tuple[Any, ...]) -> tuple[Any, ...]:
    """:func:`_adjust_rank` on shapes."""
    if len(shape) == len(ref) - 1 and ref[-1] == 1:
        return (*shape, 1)
    if len(shape) == len(ref) + 1 and shape[-1] == 1:
        return tuple(shape[:-1])
    return tuple(shape)


class ModelSaved(NamedTuple):
    """What one call of a model keeps for backward: the tape of its run."""

    tape: Tape

    @property
    def activity_penalty(self) -> float:
        """The activity penalties of the run (of models inside it too)."""
        return self.tape.penalty


def _unique(layers: Sequence[Layer]) -> list[Layer]:
    seen: set[int] = set()
    out = []
    for layer in layers:
        if id(layer) not in seen:
            seen.add(id(layer))
            out.append(layer)
    return out


_PLAIN = (str, int, float, bool, type(None))
_BASE_KEYS = ("name", "dtype", "seed", "trainable")


def _plain(value: Any) -> bool:
    """Whether ``value`` is a plain value: str, int, float, bool, None, or lists/tuples/dicts
    (with str keys) of them (what an automatic config may hold)."""
    if isinstance(value, _PLAIN):
        return not isinstance(value, float) or np.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _init_signature(cls: type) -> inspect.Signature:
    """The signature of the class's own ``__init__`` (not of layernet's checking wrapper)."""
    init = cls.__init__  # type: ignore[misc]
    return inspect.signature(getattr(init, "__wrapped__", init))


def _auto_config(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The constructor arguments of a subclassed model, for its automatic config.

    ``{"config": {...}}`` when every argument (defaults included) is a plain value,
    else ``{"problem": "..."}`` saying why there is none (Keras's rule).
    """
    signature = _init_signature(cls)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        return {"problem": f"its arguments do not fit its __init__ ({exc})"}
    bound.apply_defaults()
    out: dict[str, Any] = {}
    params = list(signature.parameters.values())
    for p in params[1:]:
        value = bound.arguments.get(p.name)
        if p.kind is p.POSITIONAL_ONLY:
            return {"problem": f"its __init__ takes the positional-only argument {p.name!r}"}
        if p.kind is p.VAR_POSITIONAL:
            if value:
                return {"problem": f"it was given variadic positional arguments (*{p.name})"}
            continue
        if p.kind is p.VAR_KEYWORD:
            out.update(value or {})
            continue
        out[p.name] = value
    bad = sorted(k for k, v in out.items() if not _plain(v))
    if bad:
        return {"problem": f"its argument(s) {bad} are not plain values"}
    return {"config": {k: _jsonable(v) for k, v in out.items()}}


def _revivable_as_functional(cls: type) -> bool:
    """Whether ``cls(inputs, outputs, name=...)`` rebuilds a functional config (Keras's rule:
    the class is Model, or its __init__ is Model's)."""
    return cls is Model or cls.__init__ is Model.__init__  # type: ignore[misc]


class Model(Trainer, Layer):
    r"""A model: layers called from inputs to outputs, trained with ``compile`` and ``fit``.

    ``Model(inputs, outputs)`` is Keras's functional API: ``inputs`` are tensors
    from :func:`~layernet.Input` (one, a list, or a dict by name), ``outputs``
    the tensors computed from them by calling layers (one, a list, or a dict).

    .. rubric:: Input and output shape

    Those of its ``inputs`` and ``outputs`` tensors (a list of arrays for
    several); the batch axis may be any size.

    Parameters
    ----------
    inputs : KerasTensor, list or dict of KerasTensor
    outputs : KerasTensor, list or dict of KerasTensor
    name : str, optional
    trainable : bool, default True

    Attributes
    ----------
    inputs, outputs : list of KerasTensor
    input_names, output_names : list of str
        Names of the inputs and outputs: keys of dict data given to ``fit``
        and of per-output losses and metrics.
    layers : list of Layer
        Every layer of the model in the order of its calls (input layers first
        where Keras lists them).

    Raises
    ------
    ValueError
        At construction, with the model's name and the tensor: an output not
        computed from the inputs, an input that feeds no output, two layers with
        the same name, an input that is not from ``Input``.
    TypeError
        Outputs that are not symbolic tensors.

    Notes
    -----
    Running the model visits the calls in topological order. Backward visits
    them in reverse, and for a tensor :math:`X` read by calls with outputs
    :math:`Y_1,\dots,Y_k`

    .. math::

        \frac{\partial z}{\partial\operatorname{vec}(X)^T}
          = \sum_j \frac{\partial z}{\partial\operatorname{vec}(Y_j)^T}
            \frac{\partial\operatorname{vec}(Y_j)}{\partial\operatorname{vec}(X)^T},

    while a layer called several times gets the sum of its calls' parameter
    gradients. What each call keeps for backward belongs to that run, not to
    the layer.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> inputs = ln.Input(shape=(4,))
    >>> h = ln.Dense(8, activation="relu", seed=0)(inputs)
    >>> outputs = ln.Add()([ln.Dense(8, seed=1)(h), h])        # a skip connection
    >>> model = ln.Model(inputs, ln.Dense(1, seed=2)(outputs))
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x = np.random.default_rng(0).standard_normal((32, 4)).astype("float32")
    >>> history = model.fit(x, x[:, :1], epochs=2, verbose=0)
    >>> model.predict(x[:3], verbose=0).shape
    (3, 1)
    """

    _default_name = "functional"

    def __new__(cls, *args: Any, **kwargs: Any) -> Model:
        """Keep a subclass's constructor arguments: its config when it has no ``get_config``."""
        instance = super().__new__(cls)
        if cls._call_layer:  # a subclass written with call()
            object.__setattr__(instance, "_auto_config", _auto_config(cls, args, kwargs))
        return instance

    def __init__(
        self,
        inputs: Any = None,
        outputs: Any = None,
        name: str | None = None,
        *,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        if "dtype" not in kwargs:
            kwargs["dtype"] = "float32"
        self._graph: Graph | None = None
        self._trainable_flag = True
        Layer.__init__(self, name=name, **kwargs)
        Trainer.__init__(self)
        self.trainable = trainable
        if inputs is None and outputs is None:
            return
        if inputs is None or outputs is None:
            raise ValueError(
                f"Model '{self.name}': expected both `inputs` and `outputs`, received "
                f"{'only outputs' if inputs is None else 'only inputs'}."
            )
        self._init_graph(inputs, outputs)

    # ------------------------------------------------------------ structure
    def _init_graph(self, inputs: Any, outputs: Any) -> None:
        owner = f"Model '{self.name}'"
        self._input_struct = inputs
        self._output_struct = outputs
        ins = flatten(inputs)
        for t in ins:
            if not isinstance(t, KerasTensor) or t.node is not None:
                raise ValueError(
                    f"{owner}: expected `inputs` to be tensors from layernet.Input, received "
                    f"{t!r:.120}."
                )
        outs = flatten(outputs)
        graph = Graph(ins, outs, owner)
        names: dict[str, Layer] = {}
        for layer in [*self._input_layers_for(ins), *(n.layer for n in graph.nodes)]:
            other = names.get(layer.name)
            if other is not None and other is not layer:
                raise ValueError(
                    f"{owner}: two layers are named {layer.name!r}; layer names must be unique "
                    f"in a model (rename one with name=...)."
                )
            names[layer.name] = layer
        self._graph = graph
        self.inputs = ins
        self.outputs = outs
        self.input_names = [t.name for t in ins]
        if isinstance(outputs, dict):
            self.output_names = list(outputs)
        else:
            self.output_names = [t.node.layer.name if t.node is not None else t.name for t in outs]
            if len(set(self.output_names)) != len(self.output_names):
                self.output_names = [
                    n if self.output_names.count(n) == 1 else f"{n}_{i}"
                    for i, n in enumerate(self.output_names)
                ]
        self.input_shape = [t.shape for t in ins] if len(ins) > 1 else ins[0].shape

    def _input_layers_for(self, tensors: Sequence[KerasTensor]) -> list[InputLayer]:
        return [InputLayer.for_tensor(t) for t in tensors]

    @property
    def is_functional(self) -> bool:
        """Whether the model was made from ``inputs`` and ``outputs``."""
        return self._graph is not None

    @property
    def is_subclassed(self) -> bool:
        """Whether the model is a subclass written with ``call()`` (no graph of its own)."""
        return self._graph is None and bool(self._call_layer)

    @property
    def graph(self) -> Graph:
        """The ordered calls of a functional model."""
        if self._graph is None:
            raise RuntimeError(
                f"Model '{self.name}': it has no graph; make it with Model(inputs, outputs)."
            )
        return self._graph

    @property
    def layers(self) -> list[Layer]:
        """The model's layers: input layers and each called layer once, in call order.

        For a subclassed model, the layers it holds as attributes (Keras's tracking).
        """
        if self._graph is None:
            return list(self._sublayers) if self.is_subclassed else []
        out: list[Layer] = [InputLayer.for_tensor(t) for t in self._graph.inputs]
        seen: set[int] = {id(layer) for layer in out}
        out += [layer for layer in self._graph.layers if id(layer) not in seen]
        return out

    @layers.setter
    def layers(self, value: Any) -> None:  # Sequential keeps its own list
        raise AttributeError("Model.layers is read-only; build a new Model instead.")

    def _called_layers(self) -> list[Layer]:
        """Every layer the model calls (each once), without input layers."""
        graph = getattr(self, "_graph", None)
        if graph is not None:  # listed once, when the graph was made
            kept = self.__dict__.get("_called")  # (not a tracked attribute)
            if kept is None or kept[0] is not graph:
                kept = (graph, [a for a in graph.layers if not isinstance(a, InputLayer)])
                self.__dict__["_called"] = kept
            return list(kept[1])
        return [layer for layer in self.layers if not isinstance(layer, InputLayer)]

    @property
    def input(self) -> Any:
        """The input tensor (a list of them for several inputs), as in Keras."""
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)

    @property
    def output(self) -> Any:
        """The output tensor (a list of them for several outputs), as in Keras."""
        return self.outputs[0] if len(self.outputs) == 1 else list(self.outputs)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by index in :attr:`layers` (Keras's ``get_layer``).

        Raises
        ------
        ValueError
            Neither or both of ``name`` and ``index``, an index out of range, or no
            layer of that name (the message lists the names).
        """
        if (name is None) == (index is None):
            raise ValueError(
                f"Model '{self.name}': get_layer() expects exactly one of `name` and `index`, "
                f"received name={name!r}, index={index!r}."
            )
        layers = self.layers
        if index is not None:
            if not isinstance(index, int) or not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Model '{self.name}': get_layer() index {index!r} is out of range for "
                    f"{len(layers)} layers."
                )
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(
            f"Model '{self.name}': no layer named {name!r}; its layers are "
            f"{[layer.name for layer in layers]}."
        )

    # --------------------------------------------------- Layer interface
    @property
    def trainable(self) -> bool:
        """Whether the model trains; setting it freezes or unfreezes every layer (Keras).

        A frozen layer keeps its weights in ``fit`` but still passes gradients
        back; a frozen :class:`~layernet.BatchNorm` runs in inference mode.
        """
        return self._trainable_flag

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = check_bool(value, "trainable", f"Model '{self.name}'")
        self._trainable_flag = value
        for layer in self._model_layers():
            layer.trainable = value

    def _model_layers(self) -> list[Layer]:
        if getattr(self, "_graph", None) is None:
            return list(self._sublayers) if self._call_layer else []
        return self._called_layers()

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the model's first layer with weights (of its first layer otherwise)."""
        if self.is_subclassed:
            return self._dtype_arg
        layers = [layer for layer in self._model_layers() if not isinstance(layer, InputLayer)]
        weighted = [layer for layer in layers if layer.params] or layers
        return weighted[0].dtype if weighted else self._dtype_arg

    @dtype.setter
    def dtype(self, value: np.dtype) -> None:
        self._dtype_arg = value

    @property
    def built(self) -> bool:
        if self._graph is None:
            return bool(self.__dict__.get("_built_flag", False))
        return all(layer.built for layer in self._model_layers())

    @built.setter
    def built(self, value: bool) -> None:  # a functional model's is derived
        self.__dict__["_built_flag"] = bool(value)

    def _leaf_items(self, attr: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        seen: set[int] = set()
        for layer in self._model_layers():
            for k, v in getattr(layer, attr).items():
                if id(v) not in seen:
                    seen.add(id(v))
                    out[f"{layer.name}/{k}"] = v
        return out

    @property
    def params(self) -> dict[str, np.ndarray]:
        if self.is_subclassed:
            return _KerasLayerAPI.params.fget(self)  # type: ignore[attr-defined]
        """Every layer's parameters, as ``"<layer>/<name>"`` (the layers' own arrays)."""
        return self._leaf_items("params")

    @params.setter
    def params(self, value: Any) -> None:
        if self._call_layer and self.__dict__.get("_graph") is None:
            _KerasLayerAPI.params.fset(self, value)  # type: ignore[attr-defined]

    @property
    def grads(self) -> dict[str, np.ndarray]:
        if self.is_subclassed:
            return _KerasLayerAPI.grads.fget(self)  # type: ignore[attr-defined]
        """Every layer's accumulated gradients, keyed as :attr:`params`."""
        return self._leaf_items("grads")

    @grads.setter
    def grads(self, value: Any) -> None:
        if self._call_layer and self.__dict__.get("_graph") is None:
            _KerasLayerAPI.grads.fset(self, value)  # type: ignore[attr-defined]

    @property
    def state(self) -> dict[str, np.ndarray]:
        if self.is_subclassed:
            return _KerasLayerAPI.state.fget(self)  # type: ignore[attr-defined]
        """Every layer's non-trainable arrays, keyed as :attr:`params`."""
        return self._leaf_items("state")

    @state.setter
    def state(self, value: Any) -> None:
        if self._call_layer and self.__dict__.get("_graph") is None:
            _KerasLayerAPI.state.fset(self, value)  # type: ignore[attr-defined]

    def check_input_shape(self, shape: Any) -> None:
        if self.is_subclassed:
            return Layer.check_input_shape(self, shape)
        expected = [t.shape for t in self.graph.inputs]
        got = shape if isinstance(shape, list) else [shape]
        if len(got) != len(expected):
            raise ValueError(
                f"Model '{self.name}': expected {len(expected)} input(s) of shapes "
                f"{', '.join(shape_str(s) for s in expected)}, received {len(got)}."
            )
        for e, g in zip(expected, got, strict=True):
            if len(e) != len(g) or any(
                a is not None and b is not None and a != b
                for a, b in zip(e[1:], g[1:], strict=True)
            ):
                raise ValueError(
                    f"Model '{self.name}': expected input of shape {shape_str(e)}, "
                    f"got shape {shape_str(g)}."
                )

    def build(self, input_shape: Any = None, *, rng: Any = None, seed: int | None = None) -> None:
        """A functional model is built when it is made; this only checks ``input_shape``.

        A subclassed model builds its layers by a call on zeros of ``input_shape``.
        """
        if self.is_subclassed:
            if input_shape is None:
                raise ValueError(f"Model '{self.name}': build() needs the input shape.")
            Layer.build(self, input_shape, rng=rng)
            self.input_shape = (None, *tuple(input_shape)[1:])
            return
        if input_shape is not None:
            self.check_input_shape(self._normalize_shape(input_shape))

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self.is_subclassed:
            return Layer.compute_output_shape(self, input_shape)
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        shapes = [tuple(s) for s in shapes]
        if len(shapes) == len(self.graph.inputs):  # Keras's rank adjustment (_adjust_rank)
            shapes = [
                _adjusted_shape(s, t.shape) for s, t in zip(shapes, self.graph.inputs, strict=True)
            ]
        out = self.graph.output_shapes([tuple(s) for s in shapes])
        return out if len(out) > 1 else out[0]

    def convert_input(self, x: np.ndarray) -> np.ndarray:
        if self.is_subclassed:
            return Layer.convert_input(self, x)
        return x  # every layer casts what it takes

    def _as_input_list(self, x: Any) -> list[np.ndarray]:
        names = self.input_names
        if isinstance(x, _Multi):
            x = x.arrays
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(
                    f"Model '{self.name}': the input dict has no entry for input(s) {missing}; "
                    f"it has keys {sorted(x)}."
                )
            return [x[n] for n in names]
        if isinstance(x, list | tuple) and len(names) > 1:
            if len(x) != len(names):
                raise ValueError(
                    f"Model '{self.name}': expected {len(names)} inputs {names}, received {len(x)}."
                )
            return list(x)
        if len(names) > 1:
            raise ValueError(
                f"Model '{self.name}': expected {len(names)} inputs {names} (a list or a dict "
                f"by name), received one array."
            )
        if isinstance(x, list | tuple) and len(x) == 1 and hasattr(x[0], "shape"):
            return [x[0]]
        return [x]

    def _prepare_input(self, x: Any) -> Any:
        if self.is_subclassed:
            return Layer.prepare_input(self, x)
        xs = [
            as_array(a, f"Model '{self.name}'", f"inputs[{i}]")
            for i, a in enumerate(self._as_input_list(x))
        ]
        if len(xs) == len(self.graph.inputs):
            xs = [_adjust_rank(a, t.shape) for a, t in zip(xs, self.graph.inputs, strict=True)]
        self.check_input_shape([a.shape for a in xs])
        for a, t in zip(xs, self.graph.inputs, strict=True):
            if a.dtype.kind == "f" and np.dtype(t.dtype).kind in "iu":
                raise TypeError(
                    f"Model '{self.name}': input '{t.name}' takes {t.dtype} values, "
                    f"received an array of dtype {a.dtype}."
                )
        return xs if len(xs) > 1 else xs[0]

    def call_forward(self, x: Any, training: bool = False, **options: Any) -> tuple[Any, Any]:
        if self.is_subclassed:
            return Layer.call_forward(self, x, training, **options)
        xs = self._prepare_input(x)
        outs, tape = self.graph.forward(xs if isinstance(xs, list) else [xs], bool(training))
        return self._pack_outputs(outs), ModelSaved(tape)

    def _pack_outputs(self, outs: list[np.ndarray]) -> Any:
        return outs[0] if len(outs) == 1 else list(outs)

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        if self.is_subclassed:  # a call()-written model inside another model
            return Layer.call_backward(
                self, dy, saved, need_input=need_input, need_params=need_params
            )
        dys = list(dy) if len(self.graph.outputs) > 1 else [dy]
        dxs = self.graph.backward(saved.tape, dys, input_grads=need_input, param_grads=need_params)
        if not need_input:
            return None, {}
        dxs = [
            np.zeros(tuple(1 if d is None else d for d in t.shape)) if g is None else g
            for g, t in zip(dxs, self.graph.inputs, strict=True)
        ]
        return (dxs[0] if len(dxs) == 1 else dxs), {}

    def compute_forward(self, x: Any, training: bool, **options: Any) -> tuple[Any, Any]:
        if self.is_subclassed:
            return Layer.compute_forward(self, x, training, **options)
        outs, tape = self.graph.forward(x if isinstance(x, list) else [x], bool(training))
        return self._pack_outputs(outs), ModelSaved(tape)

    def compute_backward_input(self, dy: Any, saved: Any) -> Any:
        if self.is_subclassed:
            return Layer.compute_backward_input(self, dy, saved)
        dys = list(dy) if len(self.graph.outputs) > 1 else [dy]
        dxs = self.graph.backward(saved.tape, dys, input_grads=True, param_grads=False)
        return dxs[0] if len(dxs) == 1 else dxs

    def compute_backward_params(self, dy: Any, saved: Any) -> dict[str, np.ndarray]:
        if self.is_subclassed:
            return Layer.compute_backward_params(self, dy, saved)
        layers = self._model_layers()
        kept = [(layer, layer.grads) for layer in layers]
        for layer in layers:
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
        try:
            dys = list(dy) if len(self.graph.outputs) > 1 else [dy]
            self.graph.backward(saved.tape, dys, input_grads=False, param_grads=True)
            return self._leaf_items("grads")
        finally:
            for layer, g in kept:
                layer.grads = g

    # ------------------------------------------------- forward / backward
    def forward(self, x: Any, training: bool = False, **options: Any) -> Any:
        """Run the model on ``x`` (an array, a list, or a dict by input name).

        Keeps what backward needs until the next forward (see :meth:`backward`).

        Returns
        -------
        ndarray or list of ndarray
            One array per output (a list for several outputs).
        """
        if self.is_subclassed:
            return Layer.forward(self, x, training, **options)
        y, saved = self.call_forward(x, training, **options)
        self.saved = saved
        self._y_shape = [a.shape for a in y] if isinstance(y, list) else y.shape
        return y

    def backward(self, dy: Any, accumulate: bool = True) -> None:
        r"""Backpropagate :math:`\partial z/\partial Y` from the last :meth:`forward`.

        Each trainable layer's parameter gradients are added into its ``grads``
        (replaced instead with ``accumulate=False``); the model's input gradient
        is not computed.

        Parameters
        ----------
        dy : ndarray or list of ndarray
            One gradient per output (``None`` for an output without one).
        accumulate : bool, default True
        """
        if self.is_subclassed:
            if not accumulate:
                self.zero_grad()
            Layer.backward_params(self, dy)
            return
        if not isinstance(self.saved, ModelSaved):
            raise RuntimeError(
                f"Model '{self.name}': backward called before forward; call forward(x) first."
            )
        if not accumulate:
            self.zero_grad()
        dys = list(dy) if len(self.graph.outputs) > 1 else [dy]
        self.graph.backward(
            self.saved.tape,
            dys,
            input_grads=False,
            param_grads=True,
            private_outputs=self._private_outputs(),
        )

    @property
    def losses(self) -> list[float]:
        """Losses the layers added with ``add_loss`` in the last forward pass (Keras's)."""
        traced = self.__dict__.get("_traced_losses")
        if traced is not None:  # compute_loss being traced: their symbolic stand-in
            return list(traced)
        if not any_added_losses():  # no layer ever added one: nothing to gather
            return []
        if self.is_subclassed:
            return _KerasLayerAPI.losses.fget(self)  # type: ignore[attr-defined]
        out: list[float] = []
        for layer in self._model_layers():
            out += getattr(layer, "losses", [])
        return out

    def activity_penalty(self) -> float:
        saved = self.saved
        return saved.tape.penalty if isinstance(saved, ModelSaved) else 0.0

    def zero_grad(self) -> None:
        if self.is_subclassed:
            return Layer.zero_grad(self)
        for layer in self._model_layers():
            layer.zero_grad()

    def clear_saved(self) -> None:
        if self.is_subclassed:
            return Layer.clear_saved(self)
        self.saved = None
        self._y_shape = None
        for layer in self._model_layers():
            layer.clear_saved()

    def _every_layer(self) -> list[Layer]:
        if self.is_subclassed:
            out: list[Layer] = [self]
            stack = list(self._model_layers())
            while stack:
                layer = stack.pop(0)
                if all(layer is not seen for seen in out):
                    out.append(layer)
                    stack += list(getattr(layer, "_sublayers", []))
            return out
        return _unique(flatten_layers(self._called_layers()))

    def _step_params(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        seen: set[int] = set()
        if self.is_subclassed:
            grads = self.grads
            for k, p in self.params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[f"0.{self.name}.{k}"] = (p, grads[k])
            return out
        indexed = self.__dict__.get("_indexed_layers")  # the graph's layers never change
        if indexed is None or indexed[0] is not self._graph:
            indexed = (self._graph, list(enumerate(self.layers)))  # indices as in model files
            self.__dict__["_indexed_layers"] = indexed
        for i, layer in indexed[1]:
            if not layer.trainable:
                continue
            params = layer.params
            if params:
                grads = layer.grads  # once per layer (a call() layer gathers it each time)
                for k, p in params.items():
                    if id(p) not in seen:
                        seen.add(id(p))
                        out[f"{i}.{layer.name}.{k}"] = (p, grads[k])
        return out

    def _in_place_layers(self) -> list[Layer]:
        """Layers that may overwrite their input and upstream gradient in a training step.

        Sequential's in-place plan for a graph (``Graph.in_place_calls``): a layer
        whose own class declares ``in_place``, called once, whose input tensor is
        private to the step and read by no other call (never a skip connection, an
        output or the caller's array) and whose upstream gradient is private (from a
        loss or layer declaring ``fresh_gradient``, or a sum the step made); never a
        layer inside one of the model's composite layers. None with the fast paths
        off (``layernet._ops.fast_paths``) or while ``compute_loss`` is overridden.

        The answer depends on the graph, the losses' classes and which layers have
        an activity regularizer, so it is kept for those (a training step asks every
        time).
        """
        graph = self._graph
        if graph is None or not _ops.FAST_PATHS or self._overrides_compute_loss():
            return []
        losses = getattr(self, "_output_losses", [])
        key = (
            tuple(type(loss) for loss in losses),
            tuple(n.layer.activity_regularizer is None for n in graph.nodes),
        )
        kept = self.__dict__.get("_in_place_plan")
        if kept is None or kept[0] != key:
            kept = (key, *self._find_graph_plan())
            self.__dict__["_in_place_plan"] = kept  # not a tracked attribute
        return list(kept[1])

    def _find_graph_plan(self) -> tuple[list[Layer], list[bool]]:
        """The in-place layers and, per output, whether the loss's gradient is private."""
        graph = self.graph
        losses = list(getattr(self, "_output_losses", []))
        losses += [None] * (len(graph.outputs) - len(losses))
        private = [loss is not None and type(loss).declares("fresh_gradient") for loss in losses]
        inner: set[int] = set()  # layers inside the model's composite layers: never flagged
        for node in graph.nodes:
            stack = flatten_layers([node.layer])[1:]
            stack += list(getattr(node.layer, "_sublayers", None) or [])
            while stack:
                layer = stack.pop()
                if id(layer) not in inner:
                    inner.add(id(layer))
                    stack += flatten_layers([layer])[1:]
                    stack += list(getattr(layer, "_sublayers", None) or [])
        layers = [
            graph.nodes[i].layer
            for i in graph.in_place_calls(private)
            if id(graph.nodes[i].layer) not in inner
        ]
        return layers, private

    def _private_outputs(self) -> list[bool] | None:
        """Per output, whether the gradient the trainer passes is private: known only
        inside a training step whose in-place plan is in force."""
        kept = self.__dict__.get("_in_place_plan")
        if kept is None or not kept[1] or not kept[1][0].overwrite_inputs:
            return None
        return kept[2]

    def _takes_integers(self) -> bool:
        if self.is_functional:
            return np.dtype(self.graph.inputs[0].dtype).kind in "iu"
        return False

    def _built_input_shape(self) -> Any:
        return self.input_shape

    def _dtype(self) -> np.dtype:
        if self.is_subclassed:
            return np.dtype(self.dtype)
        layers = self._called_layers()
        return layers[0].dtype if layers else np.dtype("float32")

    # --------------------------------------------------------- Jacobians
    def jacobian_input(self, x: Any, *, max_entries: int = 4_000_000, **options: Any) -> Any:
        r"""The model's input Jacobian, composed through the graph from its layers' Jacobians.

        :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(X)^T` by the chain
        rule summed over paths (see :func:`layernet.graph.compose_jacobians`); one matrix per
        input for several inputs, rows over the outputs concatenated.
        """
        if not self.is_functional:
            return Layer.jacobian_input(self, x, max_entries=max_entries)
        inputs = compose_jacobians(self, x).inputs
        return inputs[0] if len(inputs) == 1 else inputs

    def jacobian_params(
        self, x: Any, *, max_entries: int = 4_000_000, **options: Any
    ) -> dict[str, np.ndarray]:
        r"""Every weight's Jacobian, composed through the graph; keyed as :attr:`params`.

        :math:`\partial\operatorname{vec}(Y)/\partial\operatorname{vec}(w)^T` for each weight
        :math:`w` (see :func:`layernet.graph.compose_jacobians`).
        """
        if not self.is_functional:
            return Layer.jacobian_params(self, x, max_entries=max_entries)
        return compose_jacobians(self, x).params

    def variables(self) -> dict[str, np.ndarray]:
        """Every weight by position, ``"<layer index>/<name>"`` (what a model file stores).

        Positions, not layer names, so that a model file fits any model of the same
        architecture, whatever its layers were auto-named.
        """
        if self.is_subclassed:
            return Layer.variables(self)
        out: dict[str, np.ndarray] = {}
        seen: set[int] = set()
        for i, layer in enumerate(self.layers):
            for k, v in layer.variables().items():
                if id(v) not in seen:
                    seen.add(id(v))
                    out[f"{i}/{k}"] = v
        return out

    # ----------------------------------------------------------- weights
    @property
    def weights(self) -> list[np.ndarray]:  # type: ignore[override]
        """Every layer's parameter and state arrays, layer by layer (not copies)."""
        if self.is_subclassed:  # the variables' own arrays, in Keras's order
            return [  # (a nested functional or Sequential model lists arrays already)
                v.numpy() if hasattr(v, "numpy") else v
                for v in _KerasLayerAPI.weights.fget(self)  # type: ignore[attr-defined]
            ]
        out: list[np.ndarray] = []
        seen: set[int] = set()
        for layer in self.layers:
            for v in layer.weight_arrays().values():
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    @property
    def trainable_weights(self) -> list[Any]:
        """The weights an optimizer updates, as :class:`~layernet.Variable` views, in
        Keras's order: none when the model is frozen, else each layer's
        ``trainable_weights`` (each shared weight once)."""
        return self._collect_weights(True) if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Any]:
        """The other weights (every weight when the model is frozen), as Variables."""
        if not self.trainable:
            return self._collect_weights(True) + self._collect_weights(False)
        return self._collect_weights(False)

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def _collect_weights(self, trainable: bool) -> list[Any]:
        out: list[Any] = []
        if self.is_subclassed:  # its own add_weight variables first
            out = [v for v in self._all_variables() if v.trainable == trainable]
        layers = self._sublayers if self.is_subclassed else self.layers
        for layer in layers:
            ws = layer.trainable_weights if trainable else layer.non_trainable_weights
            out += [w for w in ws if not any(w is o for o in out)]
        return out

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every weight, layer by layer in Keras's order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set every weight from a list like :meth:`get_weights` returns (Keras's order).

        Raises
        ------
        ValueError
            A different number of arrays, or an array of another shape; nothing
            is assigned unless every array fits.
        """
        params = self.weights
        if len(weights) != len(params):
            raise ValueError(
                f"set_weights: expected {len(params)} arrays, received {len(weights)}."
            )
        arrays = []
        for i, (p, w) in enumerate(zip(params, weights, strict=True)):
            w = as_array(w, "set_weights", f"weights[{i}]")
            if w.shape != p.shape:
                raise ValueError(
                    f"set_weights: weights[{i}] should have shape "
                    f"{shape_str(p.shape)}, received {shape_str(w.shape)}."
                )
            arrays.append(w)
        for p, w in zip(params, arrays, strict=True):
            p[...] = w

    def count_params(self) -> int:
        """Number of scalars in every weight (each shared array once)."""
        if self.is_subclassed:
            return Layer.count_params(self)
        return int(sum(w.size for w in self.weights))

    # ----------------------------------------------------------- summary
    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print the layers with output shapes, parameter counts and what each is connected to."""
        if self.is_subclassed:
            lines = [f'Model: "{self.name}"']
            lines += [
                f"{layer.name} ({type(layer).__name__}): {layer.count_params():,} params"
                for layer in self.layers
            ]
            lines.append(f"Total params: {self.count_params():,}")
            print_fn("\n".join(lines))
            return
        rows = [("Layer (type)", "Output Shape", "Param #", "Connected to")]
        graph = self.graph
        input_ids = {id(t) for t in graph.inputs}
        for t in graph.inputs:
            rows.append((f"{t.name} (InputLayer)", shape_str(t.shape), "0", "-"))
        counted: set[int] = set()
        for node in graph.nodes:
            layer = node.layer
            shape = ", ".join(shape_str(t.shape) for t in node.outputs)
            params = layer.count_params() if id(layer) not in counted else 0
            counted.add(id(layer))
            conn = ", ".join(
                (t.name if id(t) in input_ids else f"{t.node.layer.name}[0][{t.index}]")  # type: ignore[union-attr]
                for t in node.input_tensors
                if t.node is not None or id(t) in input_ids
            )
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{params:,}", conn))
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(4)]
        line = "=" * sum(widths)
        total = self.count_params()
        trainable = sum(
            p.size
            for layer in self._called_layers()
            if layer.trainable
            for p in layer.params.values()
        )
        out = [f'Model: "{self.name}"', line]
        out.append("".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)))
        out.append(line)
        out += ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows[1:]]
        out += [
            line,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        print_fn("\n".join(out))

    # ------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The graph as JSON: each layer's class and config, and what each call took.

        ``Model.from_config(model.get_config())`` rebuilds the same graph with
        new weights; shared layers stay shared and nested models nest.
        """
        if self.is_subclassed:
            return self._subclass_config()
        graph = self.graph
        tensor_ref: dict[int, list[Any]] = {}
        layers_cfg: list[dict[str, Any]] = []
        index: dict[int, int] = {}
        calls: dict[int, int] = {}
        for t in graph.inputs:
            il = InputLayer.for_tensor(t)
            index[id(il)] = len(layers_cfg)
            layers_cfg.append(
                {
                    "class_name": "InputLayer",
                    "config": {"batch_shape": list(t.shape), "dtype": t.dtype, "name": t.name},
                    "name": t.name,
                    "inbound_nodes": [],
                }
            )
            tensor_ref[id(t)] = [t.name, 0, 0]

        def ref(v: Any) -> Any:
            if isinstance(v, KerasTensor):
                return {"__tensor__": tensor_ref[id(v)]}
            if isinstance(v, list | tuple):
                return [ref(a) for a in v]
            if isinstance(v, dict):
                return {k: ref(a) for k, a in v.items()}
            return v

        for node in graph.nodes:
            layer = node.layer
            if id(layer) not in index:
                index[id(layer)] = len(layers_cfg)
                layers_cfg.append(
                    {
                        "class_name": registry.get_registered_name(type(layer)),
                        "config": layer.get_config(),
                        "name": layer.name,
                        "inbound_nodes": [],
                    }
                )
            entry = layers_cfg[index[id(layer)]]
            k = calls.get(id(layer), 0)
            calls[id(layer)] = k + 1
            entry["inbound_nodes"].append(
                {
                    "args": ref(node.inputs),
                    "kwargs": ref(node.options),
                    "training": node.training,
                }
            )
            for j, t in enumerate(node.outputs):
                tensor_ref[id(t)] = [layer.name, k, j]

        def struct(s: Any) -> Any:
            if isinstance(s, KerasTensor):
                return tensor_ref[id(s)]
            if isinstance(s, dict):
                return {k: struct(v) for k, v in s.items()}
            return [struct(v) for v in s]

        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers_cfg,
            "input_layers": struct(self._input_struct),
            "output_layers": struct(self._output_struct),
        }

    def _subclass_config(self) -> dict[str, Any]:
        """A subclassed model's config (Keras's rules).

        A class that defines ``get_config`` gets the base entries here (``name``,
        ``dtype``, ``seed``, ``trainable``) and adds its own. A class without one gets
        its constructor arguments, captured when it was made, when they are all plain
        values (the base entries its ``__init__`` accepts added); otherwise there is
        no config.
        """
        cls = type(self)
        base = Layer.get_config(self)
        if cls.get_config is not Model.get_config:  # the subclass calls super().get_config()
            return base
        auto = self.__dict__.get("_auto_config") or {}
        if "config" not in auto:
            why = auto.get("problem", "it was not made by calling its class")
            raise NotImplementedError(
                f"Model '{self.name}' of class {cls.__name__} has no config: it does not "
                f"define get_config() and {why}. Define get_config() returning the arguments "
                f"that rebuild it, e.g.\n\n"
                f"    def get_config(self):\n"
                f'        return {{"units": self.units, **super().get_config()}}\n\n'
                f"(and from_config() for arguments that are layers or other objects)."
            )
        config = dict(auto["config"])
        params = _init_signature(cls).parameters
        var_keyword = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for key in _BASE_KEYS:  # an argument of the class's own keeps its given value
            if (key == "name" and key in params) or (key not in params and var_keyword):
                config[key] = base[key]
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, type] | None = None
    ) -> Model:
        """Rebuild a model from :meth:`get_config` (new weights; no code from the config runs).

        A functional config (``layers``, ``input_layers``, ``output_layers``) rebuilds
        the graph when the class is :class:`Model` or keeps Model's ``__init__``;
        otherwise, as in Keras, the class is called with the config as keyword
        arguments, ``cls(**config)`` (a subclassed model's constructor arguments).

        Raises
        ------
        ValueError
            A functional config that does not describe a graph (an unknown tensor,
            class or key).
        TypeError
            ``Unable to revive model ... from its config`` when ``cls(**config)``
            fails: the message names the class and the config, and says that
            ``get_config()`` must return every constructor argument (or that the
            class needs a ``from_config``).
        """
        functional = isinstance(config, dict) and all(
            k in config for k in ("layers", "input_layers", "output_layers")
        )
        if functional and _revivable_as_functional(cls):
            return functional_from_config(config, custom_objects, cls)
        if not isinstance(config, dict):
            raise TypeError(
                f"{cls.__name__}.from_config: expected a dict of constructor arguments, "
                f"received {type(config).__name__}."
            )
        try:
            return cls(**config)
        except TypeError as exc:
            raise TypeError(
                f"Unable to revive model {cls.__name__} from its config: {exc}. "
                f"When {cls.__name__} defines get_config(), it must return every argument "
                f"its constructor needs (as keyword arguments), or the class must define "
                f"from_config(cls, config) to build itself from that config. Received "
                f"config={config!r:.300}."
            ) from None

    # ------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> None:
        """Save architecture, weights and compile settings to one ``.npz`` file, atomically.

        See :doc:`/file_format`; :func:`layernet.load_model` reads it.
        """
        saving.save_model(self, path)

    def save_weights(self, path: str | os.PathLike) -> None:
        """Save only the weights, atomically."""
        saving.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load weights saved from a model with the same layers (strict: names and shapes)."""
        saving.load_weights(self, path)

    def __repr__(self) -> str:
        return f"<Model name={self.name!r}, inputs={self.input_names}, outputs={self.output_names}>"


def functional_from_config(
    config: dict[str, Any], custom_objects: dict[str, type] | None, cls: type = Model
) -> Model:
    """Rebuild a functional model from ``Model.get_config()`` output."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("Model.from_config: expected a dict with a list of `layers`.")
    tensors: dict[tuple[str, int, int], Any] = {}
    # Tensors are keyed by the names the config records: a layer of one's own whose
    # get_config() leaves out `name` comes back under a new name (as in Keras).
    pending: list[tuple[Layer, str, list[dict[str, Any]]]] = []
    for entry in config["layers"]:
        if not isinstance(entry, dict) or "class_name" not in entry or "config" not in entry:
            raise ValueError(f"Model.from_config: malformed layer entry {entry!r:.200}.")
        if entry["class_name"] == "InputLayer":
            c = entry["config"]
            t = Input(batch_shape=tuple(c["batch_shape"]), dtype=c.get("dtype"), name=c["name"])
            tensors[(entry["name"], 0, 0)] = t
            continue
        layer = saving.layer_from_spec(
            {"class_name": entry["class_name"], "config": entry["config"]}, custom_objects
        )
        recorded = entry.get("name", layer.name)
        pending.append((layer, recorded, list(entry.get("inbound_nodes", []))))

    def resolve(v: Any) -> Any:
        if isinstance(v, dict) and set(v) == {"__tensor__"}:
            key = tuple(v["__tensor__"])
            if key not in tensors:
                raise KeyError(key)
            return tensors[key]
        if isinstance(v, list):
            return [resolve(a) for a in v]
        if isinstance(v, dict):
            return {k: resolve(a) for k, a in v.items()}
        return v

    # Calls are made in an order where every tensor they take exists (several passes).
    done = {id(layer): 0 for layer, _, _ in pending}
    progress = True
    while progress:
        progress = False
        for layer, recorded, nodes in pending:
            while done[id(layer)] < len(nodes):
                k = done[id(layer)]
                node = nodes[k]
                try:
                    args = resolve(node["args"])
                    kwargs = resolve(node.get("kwargs", {}))
                except KeyError:
                    break
                kw = dict(kwargs)
                if node.get("training") is not None:
                    kw["training"] = node["training"]
                out = layer(args, **kw)
                outs = out if isinstance(out, list) else [out]
                for j, t in enumerate(outs):
                    tensors[(recorded, k, j)] = t
                done[id(layer)] = k + 1
                progress = True
    if any(done[id(layer)] < len(nodes) for layer, _, nodes in pending):
        raise ValueError("Model.from_config: a call takes a tensor that no call makes.")

    def struct(s: Any) -> Any:
        if isinstance(s, list) and len(s) == 3 and isinstance(s[0], str):
            return tensors[tuple(s)]
        if isinstance(s, dict):
            return {k: struct(v) for k, v in s.items()}
        return [struct(v) for v in s]

    inputs = struct(config["input_layers"])
    outputs = struct(config["output_layers"])
    model = cls(inputs, outputs, name=config.get("name"))
    if config.get("trainable") is False:
        model.trainable = False
    return model
