r"""Layers written as ``call()``: weights the Keras way, tracking, and the traced derivative.

:class:`~layernet.layers.Layer` mixes in :class:`_KerasLayerAPI`. A subclass that
defines ``call(self, inputs, training=None)`` (and optionally Keras's
``build(self, input_shape)``, creating weights with :meth:`~_KerasLayerAPI.add_weight`)
needs no backward rule: its ``compute_forward`` runs ``call`` on
:class:`~layernet.ops.Tensor` inputs with a fresh :class:`~layernet.ops.Tape`
and returns ``(y, saved)`` with ``saved`` holding the tape; its
``compute_backward_input`` and ``compute_backward_params`` walk the tape in
reverse. So it works unchanged wherever a hand-written layer does.

**Added losses.** ``add_loss(value)`` inside ``call`` records ``value`` (a
Tensor) on the call's tape and in :attr:`~_KerasLayerAPI.losses` (as a number).
The derivative of their sum joins the backward pass only inside
:func:`added_losses_in_backward`: a trainer that minimises
``loss + sum(model.losses)`` runs its backward pass inside that block, and then
every call-layer's ``compute_backward_input``/``compute_backward_params``
returns :math:`\partial(z + \sum_k L_k)/\partial(\cdot)`.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .. import initializers
from ..ops.tensor import Tape, Tensor, active_tape, is_tensor, recording, unwrap
from ..variables import Variable

_flags = threading.local()

#: The classes :meth:`_KerasLayerAPI.__setattr__` tracks (Layer, Variable, SeedGenerator and
#: containers), looked up once on first use (their modules import this one).
_TRACKED: tuple[type, ...] | None = None
#: Values of these exact types are never tracked: assigning one is a plain assignment.
_PLAIN = frozenset({np.ndarray, bool, int, float, str, type(None)})
#: Attributes the framework sets on every call (backward state, checked shapes): never
#: tracked, whatever they hold.
_PER_CALL = frozenset({"saved", "_y_shape", "_checked_shape", "_size_checked"})

#: Whether any layer in this process ever called ``add_loss`` (until then every layer's
#: ``losses`` is empty, and a model's training step need not ask each layer).
_ADDED_LOSSES = [False]


def any_added_losses() -> bool:
    """Whether any layer has called :meth:`add_loss` in this process (or a class of one's
    own defines its own ``losses``)."""
    return _ADDED_LOSSES[0]


def note_losses_override() -> None:
    """A layer class defines its own ``losses``: models ask every layer from now on."""
    _ADDED_LOSSES[0] = True


def _tracked_types() -> tuple[type, ...]:
    global _TRACKED
    if _TRACKED is None:
        from ..random import SeedGenerator
        from .base import Layer

        _TRACKED = (Layer, Variable, SeedGenerator, list, tuple, dict)
    return _TRACKED


@contextlib.contextmanager
def added_losses_in_backward() -> Iterator[None]:
    r"""Inside this block, backward passes include the gradient of the added losses.

    Every layer written as ``call()`` then seeds each loss it (or a layer it
    called) added with ``add_loss`` in its last forward with gradient 1, so its
    backward rules return :math:`\partial(z + \sum_k L_k)/\partial(\cdot)`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> class L1(ln.layers.Layer):
    ...     def call(self, x):
    ...         self.add_loss(ln.ops.sum(ln.ops.abs(x)))
    ...         return x
    >>> layer = L1(dtype="float64")
    >>> _ = layer(np.array([[-2.0, 3.0]]))
    >>> layer.losses
    [5.0]
    >>> with ln.layers.added_losses_in_backward():
    ...     layer.backward_input(np.zeros((1, 2)))
    array([[-1.,  1.]])
    """
    old = getattr(_flags, "losses", False)
    _flags.losses = True
    try:
        yield
    finally:
        _flags.losses = old


def _losses_enabled() -> bool:
    return getattr(_flags, "losses", False)


#: A random layer's generator counter: kept in ``state`` (model files store it) but not
#: one of its weights, as in Keras.
SEED_STATE = "seed_generator_state"


class CallSaved(NamedTuple):
    """What a layer written as ``call()`` keeps for backward: its tape and the call's ends."""

    tape: Tape  #: the recorded ops
    inputs: list  #: the input Tensors
    outputs: list  #: the output Tensors
    several_in: bool  #: whether the layer took a list of inputs
    several: bool  #: whether the layer returned several outputs
    cache: list  #: one walk kept for reuse: [dy, input grads] (see compute_backward_params)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fans: (rows, cols) for a matrix, receptive field times channels for kernels."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


class _KerasLayerAPI:
    """Keras's layer interface over layernet's contract (mixed into :class:`Layer`)."""

    if TYPE_CHECKING:  # supplied by Layer
        dtype: np.dtype
        seed: int | None
        trainable: bool
        built: bool
        input_shape: Any
        saved: Any
        _y_shape: Any
        _building: bool

        @property
        def owner(self) -> str: ...

        def _normalize_shape(self, input_shape: Any) -> Any: ...

        def compute_forward(self, x: Any, training: bool, **options: Any) -> tuple[Any, Any]: ...

    #: Set on classes whose ``call`` is written by the user (derivative by tracing).
    _call_layer: bool = False

    @classmethod
    def _setup_subclass(cls) -> None:
        cls._call_layer = callable(getattr(cls, "call", None))
        if cls._call_layer and "build" in cls.__dict__:
            user_build = cls.__dict__["build"]
            if not getattr(user_build, "_layernet_wrapped", False):

                def build(self: Any, input_shape: Any = None, *args: Any, **kwargs: Any) -> None:
                    rng = kwargs.pop("rng", None)
                    if self._building:  # super().build inside a user build
                        return user_build(self, input_shape, *args, **kwargs)
                    if self.built:  # weights are made once (Keras builds a layer once)
                        return None
                    if rng is not None:
                        self._tracking()["_rng"] = rng
                    self._building = True
                    try:
                        user_build(self, _as_shape(input_shape), *args, **kwargs)
                    finally:
                        self._building = False
                    self._finish_build(input_shape)

                build._layernet_wrapped = True  # type: ignore[attr-defined]
                build.__doc__ = user_build.__doc__
                build.__name__ = "build"
                cls.build = build  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ storage
    def _tracking(self) -> dict[str, Any]:
        d = self.__dict__
        if "_variables" not in d:
            d["_variables"] = []  # own Variables in creation order
            d["_children"] = {}  # attribute -> Layer or list/dict of Layers
            d["_seed_generators"] = {}  # attribute -> SeedGenerator
            d["_losses"] = []
            d["_loss_values"] = []
            d["_views"] = {}
            d["_building"] = False
            d["_collecting"] = self._call_layer  # params/grads/state gathered from variables
        return d

    def __setattr__(self, name: str, value: Any) -> None:
        if type(value) in _PLAIN or name in _PER_CALL:  # nothing to track: the common case
            object.__setattr__(self, name, value)
            return
        tracked = _tracked_types()
        if isinstance(value, tracked):
            Layer, SeedGenerator = tracked[0], tracked[2]
            d = self._tracking()
            d["_children"].pop(name, None)
            d["_seed_generators"].pop(name, None)
            if isinstance(value, Layer):
                d["_children"][name] = value
            elif isinstance(value, Variable):
                if value.owner is None:
                    value.owner = self
                if value.owner is self and not any(v is value for v in d["_variables"]):
                    d["_variables"].append(value)
                    d["_collecting"] = True
                if value.owner is self and value._auto_name:  # `self.w = add_weight(...)`
                    taken = {v.name for v in d["_variables"] if v is not value}
                    if name not in taken and not name.startswith("_"):
                        value.name, value._auto_name = name, False
            elif isinstance(value, SeedGenerator):
                d["_seed_generators"][name] = value
                d["_collecting"] = True
            elif isinstance(value, list | tuple) and any(isinstance(v, Layer) for v in value):
                d["_children"][name] = list(value)
            elif isinstance(value, dict) and any(isinstance(v, Layer) for v in value.values()):
                d["_children"][name] = dict(value)
        object.__setattr__(self, name, value)

    @property
    def _sublayers(self) -> list[Any]:
        """Layers tracked through attributes, lists and dicts, in assignment order."""
        children = self.__dict__.get("_children")
        if not children:
            return []
        Layer = _tracked_types()[0]
        out: list[Any] = []
        for v in children.values():
            items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else [v]
            for layer in items:
                if isinstance(layer, Layer) and not any(layer is o for o in out):
                    out.append(layer)
        return out

    def _collects(self) -> bool:
        return bool(self._tracking()["_collecting"])

    # --------------------------------------------------- params, grads and state
    def _gather(self, what: str) -> dict[str, np.ndarray]:
        d = self._tracking()
        out: dict[str, np.ndarray] = dict(d.get("_stored_" + what, {}))
        for v in d["_variables"]:
            if what == "params" and v.trainable:
                out[v.name] = v._value
            elif what == "grads" and v.trainable:
                out[v.name] = v._grad
            elif what == "state" and not v.trainable:
                out[v.name] = v._value
        if what == "state":
            for attr, gen in d["_seed_generators"].items():
                out[f"{attr}/{gen.state.name}"] = gen.state._value
        for layer in self._sublayers:
            if what == "state" and not layer.trainable:
                items = {**layer.params, **layer.state}
            elif what != "state" and not layer.trainable:
                items = {}
            else:
                items = getattr(layer, what)
            for k, a in items.items():
                out[f"{layer.name}/{k}"] = a
        return out

    def _stored(self, what: str) -> dict[str, np.ndarray]:
        return self._tracking().setdefault("_stored_" + what, {})

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Parameters by name (the trainable variables' arrays; nested layers' prefixed)."""
        d = self.__dict__
        if d.get("_collecting"):
            return self._gather("params")
        stored = d.get("_stored_params")
        return stored if stored is not None else self._stored("params")

    @params.setter
    def params(self, value: dict[str, np.ndarray]) -> None:
        self._tracking()["_stored_params"] = value

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """Accumulated gradients, same names and arrays-per-name as :attr:`params`."""
        d = self.__dict__
        if d.get("_collecting"):
            return self._gather("grads")
        stored = d.get("_stored_grads")
        return stored if stored is not None else self._stored("grads")

    @grads.setter
    def grads(self, value: dict[str, np.ndarray]) -> None:
        self._tracking()["_stored_grads"] = value

    @property
    def state(self) -> dict[str, np.ndarray]:
        """Non-trainable arrays (non-trainable variables, random-seed states), by name."""
        d = self.__dict__
        if d.get("_collecting"):
            return self._gather("state")
        stored = d.get("_stored_state")
        return stored if stored is not None else self._stored("state")

    @state.setter
    def state(self, value: dict[str, np.ndarray]) -> None:
        self._tracking()["_stored_state"] = value

    # ----------------------------------------------------------------- weights
    def add_weight(
        self,
        shape: Any = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        aggregation: str = "none",
        overwrite_with_gradient: bool = False,
        name: str | None = None,
    ) -> Variable:
        """Create a weight of this layer and return it as a :class:`~layernet.Variable`.

        Parameters
        ----------
        shape : tuple of int, default ()
            The weight's shape.
        initializer : str, Initializer or callable, default "glorot_uniform"
            A name from :mod:`layernet.initializers` (``"zeros"``, ``"random_normal"``,
            ...), an initialiser object, or ``fn(shape, dtype)``.
        dtype : str, optional
            The layer's dtype by default.
        trainable : bool, default True
            Trainable weights are in :attr:`params` (updated by optimisers),
            others in :attr:`state` (saved, never touched by optimisers).
        autocast, aggregation, overwrite_with_gradient
            Accepted for Keras compatibility; no effect.
        regularizer : callable, optional
            ``regularizer(weight)`` is added to :attr:`losses` at every call
            (with its derivative when training, see ``added_losses_in_backward``).
        constraint : callable, optional
            Kept as ``variable.constraint``; :meth:`Variable.apply_constraint`
            applies it.
        name : str, optional
            The name in :attr:`params`; when omitted, the attribute the weight is
            assigned to (``self.w = self.add_weight(...)`` gives ``"w"``), else
            ``"variable"``, ``"variable_1"``, ...

        Returns
        -------
        Variable

        Raises
        ------
        ValueError
            A shape with ``None`` or negative entries, or a name already used in
            this layer.

        Examples
        --------
        >>> import layernet as ln
        >>> layer = ln.layers.Layer(dtype="float64")
        >>> w = layer.add_weight((2, 3), initializer="ones", name="w")
        >>> layer.params["w"] is w.numpy(), w.path == f"{layer.name}/w"
        (True, True)
        """
        d = self._tracking()
        shape = () if shape is None else (shape,) if isinstance(shape, int) else tuple(shape)
        if any(n is None or not isinstance(n, int | np.integer) or n < 0 for n in shape):
            raise ValueError(
                f"{self.owner}: add_weight: invalid value for `shape`: expected non-negative "
                f"ints (fully defined), received {shape!r}."
            )
        shape = tuple(int(n) for n in shape)
        dt = np.dtype(self.dtype if dtype is None else dtype)
        taken = {v.name for v in d["_variables"]}
        if name is not None and name in taken:
            raise ValueError(
                f"{self.owner}: add_weight: a weight named {name!r} exists already; "
                f"expected a new name."
            )
        init = "glorot_uniform" if initializer is None and dt.kind == "f" else initializer
        init = "zeros" if init is None else init
        if callable(init) and not isinstance(init, initializers.Initializer):
            value = np.asarray(unwrap(init(shape, dt)), dtype=dt)
        else:
            obj = initializers.get(init, self.owner, "initializer")
            if "_rng" not in d:
                from .. import _random

                d["_rng"] = _random.generator(self.seed)
            fan_in, fan_out = _fans(shape)
            value = np.asarray(obj(shape, fan_in, fan_out, d["_rng"], np.float64)).astype(dt)
            value = value.reshape(shape)  # (a 0-d draw comes back 1-d)
        auto = name is None
        if auto:
            name, k = "variable", 1
            while name in taken:
                name, k = f"variable_{k}", k + 1
        v = Variable(value, dtype=dt, trainable=trainable, name=name)
        v._auto_name = auto
        v.owner = self
        v.regularizer, v.constraint = regularizer, constraint
        d["_variables"].append(v)
        d["_collecting"] = True
        return v

    add_variable = add_weight

    def _all_variables(self) -> list[Variable]:
        d = self._tracking()
        if d["_variables"] or self._call_layer:
            return list(d["_variables"])
        views = d["_views"]
        out = []
        for group, trainable in (("params", True), ("state", False)):
            for k, a in getattr(self, group).items():
                if k == SEED_STATE:  # not a weight in Keras's sense
                    continue
                key = (group, k, id(a))
                if key not in views:
                    views[key] = Variable._view(a, k, trainable, self)
                out.append(views[key])
        return out

    @property
    def weights(self) -> list[Variable]:
        """Every weight: own trainable then non-trainable ones (creation order), then nested
        layers' (Keras's order)."""
        own = self._all_variables()
        out = [v for v in own if v.trainable] + [v for v in own if not v.trainable]
        if self._tracking()["_variables"] or self._call_layer:
            for layer in self._sublayers:
                out += [w for w in layer.weights if not any(w is o for o in out)]
        return out

    @property
    def trainable_weights(self) -> list[Variable]:
        """The weights optimisers update (none when the layer is frozen)."""
        return [w for w in self.weights if w.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """The other weights (all of them when the layer is frozen)."""
        return self.weights if not self.trainable else [w for w in self.weights if not w.trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of :attr:`weights`' values."""
        return [w.numpy().copy() for w in self.weights]

    def set_weights(self, weights: list[Any]) -> None:
        """Assign values to :attr:`weights`, in that order.

        Raises
        ------
        ValueError
            A count or a shape that does not match.
        """
        ws = self.weights
        if len(weights) != len(ws):
            raise ValueError(
                f"{self.owner}: set_weights: expected {len(ws)} arrays, received {len(weights)}."
            )
        for w, a in zip(ws, weights, strict=True):
            if np.shape(a) != w.shape:
                raise ValueError(
                    f"{self.owner}: set_weights: {w.name} should have shape {w.shape}, "
                    f"received {np.shape(a)}."
                )
        for w, a in zip(ws, weights, strict=True):
            w.assign(a)

    # ------------------------------------------------------------------ losses
    def add_loss(self, loss: Any) -> None:
        """Add a scalar to :attr:`losses` (Keras's ``add_loss``); inside ``call`` its derivative
        is recorded too (see :func:`added_losses_in_backward`)."""
        d = self._tracking()
        _ADDED_LOSSES[0] = True
        tape = active_tape()
        if isinstance(loss, Tensor) or (tape is not None and isinstance(loss, Variable)):
            t = loss if isinstance(loss, Tensor) else tape.leaf(loss)  # type: ignore[union-attr]
            t = _sum_tensor(t)
            t.tape.losses.append(t)
            d["_losses"].append(t)
        else:
            d["_losses"].append(float(np.sum(unwrap(loss))))

    @property
    def losses(self) -> list[float]:
        """Losses added during the last top-level call (nested layers' included), as numbers."""
        d = self.__dict__
        if not d.get("_losses") and not d.get("_children"):
            return []  # nothing added and no tracked layers (most layers): nothing to walk
        out = [
            float(np.sum(loss.value)) if isinstance(loss, Tensor) else loss
            for loss in self._tracking()["_losses"]
        ]
        for layer in self._sublayers:
            out += layer.losses
        return out

    def _clear_losses(self) -> None:
        self._tracking()["_losses"] = []
        for layer in self._sublayers:
            layer._clear_losses()

    # -------------------------------------------------------- call-layer build
    def _finish_build(self, input_shape: Any, rng: Any = None) -> None:
        """Mark a call-layer built; a dry call on zeros builds the layers it calls."""
        from .base import is_shape_list

        if rng is not None and "_rng" not in self._tracking():
            self._tracking()["_rng"] = rng
        self.built = True
        self.saved = None
        self._y_shape = None
        if input_shape is not None:
            shape = self._normalize_shape(input_shape)
            self.input_shape = (
                [(None, *s[1:]) for s in shape] if is_shape_list(shape) else (None, *shape[1:])
            )
            if not self._building and any(not layer.built for layer in self._sublayers):
                self._traced_output_shape(shape)

    # ------------------------------------------------------------ call tracing
    def _spread_inputs(self) -> int:
        """How many tensors a ``call(self, a, b, ...)`` takes as separate positional
        arguments (its positional parameters without a default); 0 or 1: one input."""
        call = getattr(self, "call", None)
        if call is None:
            return 0
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return sum(
            1
            for p in inspect.signature(call).parameters.values()
            if p.kind in kinds and p.default is inspect.Parameter.empty
        )

    def _call_kwargs(self, training: bool, options: dict[str, Any]) -> dict[str, Any]:
        kw = dict(options)
        if _takes_training(self.call):  # type: ignore[attr-defined]
            kw["training"] = training
        return kw

    def _traced_forward(self, x: Any, training: bool, **options: Any) -> tuple[Any, CallSaved]:
        if active_tape() is None:
            self._clear_losses()
        tape = Tape(training)
        with recording(tape):
            several_in = isinstance(x, list)
            inputs = [Tensor(a, tape) for a in x] if several_in else [Tensor(x, tape)]
            kw = self._call_kwargs(training, options)
            if several_in and 2 <= len(inputs) <= self._spread_inputs():
                out = self.call(*inputs, **kw)  # type: ignore[attr-defined]
            else:
                out = self.call(inputs if several_in else inputs[0], **kw)  # type: ignore[attr-defined]
            for v in self._tracking()["_variables"]:
                if v.regularizer is not None:
                    self.add_loss(v.regularizer(v))
        several = isinstance(out, list | tuple)
        outs = list(out) if several else [out]
        tensors = []
        for o in outs:
            if isinstance(o, Tensor) and o.tape is tape:
                tensors.append(o)
            elif isinstance(o, Variable):
                tensors.append(tape.leaf(o))
            else:
                tensors.append(Tensor(np.array(unwrap(o)), tape))
        leaves = {id(leaf.value) for _, leaf in tape.leaves.values()}
        ys = [  # never a variable's own array: a later assign must not change this output
            t.value.astype(self.dtype, copy=id(t.value) in leaves)
            if t.value.dtype.kind == "f"
            else t.value.copy()
            for t in tensors
        ]
        return (ys if several else ys[0]), CallSaved(tape, inputs, tensors, several_in, several, [])

    def _paths(self) -> tuple[dict[int, str], dict[int, str]]:
        """``id(layer) -> prefix`` and ``id(variable) -> key in params`` over the tracked tree."""
        layers: dict[int, str] = {}
        variables = {id(v): v.name for v in self._tracking()["_variables"] if v.trainable}

        def walk(layer: Any, prefix: str) -> None:
            layers[id(layer)] = prefix
            if layer._collects():
                for v in layer._tracking()["_variables"]:
                    if v.trainable:
                        variables.setdefault(id(v), f"{prefix}/{v.name}")
                for child in layer._sublayers:
                    if child.trainable:
                        walk(child, f"{prefix}/{child.name}")

        for child in self._sublayers:
            if child.trainable:
                walk(child, child.name)
        return layers, variables

    def _walk(self, dy: Any, saved: CallSaved, want_params: bool) -> tuple[Any, dict]:
        dys = dy if saved.several else [dy]
        seeds = list(zip(saved.outputs, dys, strict=True))
        if _losses_enabled():
            seeds += [(t, np.ones(t.shape, t.dtype)) for t in saved.tape.losses]
        layer_paths, var_paths = self._paths() if want_params else ({}, {})
        pgrads: dict[str, np.ndarray] = {}

        def add(key: str, g: np.ndarray) -> None:
            pgrads[key] = g if key not in pgrads else pgrads[key] + g

        def on_layer(layer: Any, d: Any, s: Any) -> Any:
            gx = layer.compute_backward_input(d, s)
            if want_params and layer.trainable and layer.params:
                prefix = layer_paths.get(id(layer))
                for k, g in layer.compute_backward_params(d, s).items():
                    if prefix is not None:
                        add(f"{prefix}/{k}", g)
                    else:  # a layer this one does not track: accumulate into its own grads
                        layer.grads[k] += g
            return gx

        grads = saved.tape.backward(seeds, on_layer, with_losses=_losses_enabled())
        gx = [grads[id(t)] if id(t) in grads else np.zeros(t.shape, t.dtype) for t in saved.inputs]
        if want_params:
            for var, leaf in saved.tape.leaves.values():
                g = grads.get(id(leaf))
                if g is None or not var.trainable:
                    continue
                key = var_paths.get(id(var))
                if key is not None:
                    add(key, g)
                elif var.owner is not None:  # a variable of an untracked layer
                    var._grad += g
        return (gx if saved.several_in else gx[0]), pgrads

    def _traced_backward_input(self, dy: Any, saved: CallSaved) -> Any:
        if saved.cache and _same(saved.cache[0], dy):
            gx = saved.cache[1]
            saved.cache.clear()
            return gx
        return self._walk(dy, saved, want_params=False)[0]

    def _traced_backward_params(self, dy: Any, saved: CallSaved) -> dict[str, np.ndarray]:
        gx, pgrads = self._walk(dy, saved, want_params=True)
        saved.cache[:] = [_copy(dy), gx]  # backward_input with the same dy reuses this walk
        out = {}
        for k, p in self.params.items():
            g = pgrads.get(k)
            out[k] = np.zeros_like(p) if g is None else g.astype(p.dtype, copy=False)
        return out

    def _traced_output_shape(self, input_shape: Any) -> Any:
        from .base import is_shape_list

        shapes = input_shape if is_shape_list(input_shape) else [input_shape]
        batch_none = [s[0] is None for s in shapes if len(s)]  # (scalars have no batch axis)
        xs = [np.zeros(tuple(1 if d is None else d for d in s), self.dtype) for s in shapes]
        d = self._tracking()
        kept = d["_losses"]
        state = {k: a.copy() for k, a in self.state.items()}  # a dry call changes nothing
        try:
            y, _ = self.compute_forward(xs if is_shape_list(input_shape) else xs[0], False)
        finally:
            d["_losses"] = kept
            now = self.state
            for k, a in state.items():
                if k in now:
                    now[k][...] = a
        ys = y if isinstance(y, list) else [y]
        none = bool(batch_none) and all(batch_none)
        out = [(None, *a.shape[1:]) if none and a.ndim else tuple(a.shape) for a in ys]
        return out if isinstance(y, list) else out[0]


#: Whether a ``call`` function takes ``training``, by function (read once per class).
_TAKES_TRAINING: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _takes_training(call: Any) -> bool:
    """Whether ``call`` (a bound method) has a ``training`` parameter or ``**kwargs``."""
    func = getattr(call, "__func__", None)  # the class's function, shared by its instances
    if func is not None:
        known = _TAKES_TRAINING.get(func)
        if known is not None:
            return known
    params = inspect.signature(call).parameters
    takes = "training" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    if func is not None:
        _TAKES_TRAINING[func] = takes
    return takes


def _has_losses(saved: Any) -> bool:
    """Whether a call-layer's call (or a layer it called) added losses."""
    if not isinstance(saved, CallSaved):
        return False
    return bool(saved.tape.losses) or any(n.attrs.get("losses") for n in saved.tape.nodes)


def _as_shape(shape: Any) -> Any:
    if shape is None:
        return None
    if (
        isinstance(shape, list | tuple)
        and shape
        and all(isinstance(s, list | tuple) for s in shape)
    ):
        return [tuple(s) for s in shape]
    return tuple(shape)


def _sum_tensor(t: Tensor) -> Tensor:
    from ..ops import numpy as onp

    return t if t.ndim == 0 else onp.sum(t)


def _copy(dy: Any) -> Any:
    return [np.array(d) for d in dy] if isinstance(dy, list | tuple) else np.array(dy)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    b = np.asarray(b)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def call_layer(layer: Any, x: Any, training: Any, options: dict[str, Any]) -> Any:
    """Call ``layer`` on Tensors inside a trace: compute, and record the call on the tape."""
    tape = next(
        (t.tape for t in (x if isinstance(x, list | tuple) else [x]) if isinstance(t, Tensor)),
        None,
    )
    if tape is None:  # called on constants only: recorded on the call() now running
        tape = active_tape()
        assert tape is not None  # internal: only called inside a traced call()
    several_in = isinstance(x, list | tuple)
    values = [unwrap(a) for a in x] if several_in else unwrap(x)
    xs = layer._prepare_input(values)
    train = tape.training if training is None else bool(training)
    y, saved = (
        layer.compute_forward(xs, train, **options) if options else layer.compute_forward(xs, train)
    )
    several = isinstance(y, list | tuple)
    outs = [Tensor(a, tape) for a in (y if several else [y])]
    inputs = [a if isinstance(a, Tensor) else None for a in (x if several_in else [x])]
    tape.record(layer, inputs, outs, saved, {"__multi__": several, "losses": _has_losses(saved)})
    return outs if several else outs[0]


__all__ = ["CallSaved", "active_tape", "added_losses_in_backward", "call_layer", "is_tensor"]
