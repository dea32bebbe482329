r"""Sequential: a chain of layers, a :class:`Model` whose calls follow one another.

Training runs the lecture notes' backpropagation: a forward pass through the
chain, the loss :math:`z` and :math:`\partial z/\partial X^L`, then for each
layer from the last to the first ``backward_params`` (giving
:math:`\partial z/\partial w^i`) and ``backward_input`` (giving
:math:`\partial z/\partial X^i`, the next layer's upstream gradient). The first
layer's :math:`\partial z/\partial X^1` is never needed and never computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import _ops, registry, saving
from .._validation import as_array, check_bool, normalize_shape, shape_str
from ..layers.base import Layer, flatten_layers
from ..layers.input import Input, InputLayer
from ..losses import Loss
from .model import Model


def _takes_mask(layer: Layer) -> bool:
    from ..graph.executor import _accepts

    return _accepts(layer.compute_forward, "mask")


class SequentialSaved(NamedTuple):
    """What one call of a Sequential keeps for backward: each layer's ``saved``."""

    calls: list[Any]
    #: Gradients of the layers' activity penalties, by layer index.
    activity: dict[int, Any] | None = None
    #: The activity penalties of this call, summed.
    activity_penalty: float = 0.0


class Sequential(Model):
    r"""A linear stack of layers with a Keras-style training workflow.

    .. rubric:: Input and output shape

    The first layer's input and the last layer's output.

    Parameters
    ----------
    layers : sequence of Layer, optional
        The layers, first to last (losses are given to :meth:`compile`).
    name : str, optional

    Attributes
    ----------
    layers : list of Layer
    optimizer, loss, metrics
        Set by :meth:`compile`.
    history : History or None
        What the last :meth:`fit` recorded.
    epochs_completed : int
        Epochs trained so far (saved in model files): pass it as ``initial_epoch``
        to continue a run.
    distribute_strategy : DataParallel or None
        The strategy of the last ``fit``, ``evaluate`` or ``predict`` given one;
        while it spans several ranks only rank 0 writes files.
    stop_training : bool
        Set by a callback to end :meth:`fit` after the current batch or epoch.

    Raises
    ------
    TypeError
        ``Sequential '...': add() expected a Layer, received ...`` for an entry
        that is not a layer (a loss goes to ``compile``).
    ValueError
        Two layers with the same name, an :class:`Input` that is not first, or a
        layer that cannot take the shape the layers before it give.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> model = ln.Sequential([ln.Dense(8, seed=0), ln.ReLU(), ln.Dense(3, seed=1)])
    >>> model.compile(ln.SGD(learning_rate=0.1), "softmax_cross_entropy", ["accuracy"])
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((60, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    >>> history = model.fit(x, y, epochs=5, batch_size=10, verbose=0, seed=0)
    >>> list(history.history)
    ['accuracy', 'loss']
    >>> model.predict(x[:2]).shape
    (2, 3)
    """

    _default_name = "sequential"

    def __init__(
        self,
        layers: Sequence[Layer | Input] | None = None,
        name: str | None = None,
        *,
        trainable: bool = True,
        **kwargs: Any,
    ) -> None:
        self._layers: list[Layer] = []
        self._symbolic: tuple[Any, Any] | None = None
        #: The activity penalty of the last forward and its gradient per layer index.
        self._activity: tuple[float, dict[int, Any]] | None = None
        super().__init__(name=name, trainable=True, **kwargs)
        self.input_shape: Any = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    # ------------------------------------------------------- Keras structure
    @property
    def layers(self) -> list[Layer]:
        """The layers, first to last (no input layer, as in Keras's Sequential)."""
        return self._layers

    @layers.setter
    def layers(self, value: Any) -> None:
        raise AttributeError("Sequential.layers is read-only; use add() and pop().")

    def pop(self) -> Layer:
        """Remove and return the last layer (Keras's ``pop``).

        Raises
        ------
        ValueError
            When the model has no layers.
        """
        if not self._layers:
            raise ValueError(f"Sequential {self.name!r}: pop() on a model with no layers.")
        self._symbolic = None
        return self._layers.pop()

    def _model_layers(self) -> list[Layer]:
        return list(getattr(self, "_layers", []))

    def _takes_integers(self) -> bool:
        declared = getattr(self, "_input_dtype", None)
        if declared is not None:
            return np.dtype(declared).kind in "iu"
        return bool(self._layers) and getattr(self._layers[0], "takes_integer_ids", False)

    def _called_layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def is_functional(self) -> bool:
        return False

    def _symbolic_graph(self) -> tuple[Any, Any]:
        if self._symbolic is None:
            if not self.built:
                raise AttributeError(
                    f"Sequential {self.name!r}: it has no inputs yet; give it an Input first "
                    f"layer or build it (call build(), fit() or the model on data)."
                )
            x = Input(batch_shape=self._built_input_shape())
            y = x
            for layer in self._layers:
                y = layer(y)
            self._symbolic = (x, y)
        return self._symbolic

    @property
    def inputs(self) -> list[Any]:
        """The input tensor, in a list (once the model is built)."""
        return [self._symbolic_graph()[0]]

    @inputs.setter
    def inputs(self, value: Any) -> None:
        pass

    @property
    def outputs(self) -> list[Any]:
        """The output tensor, in a list (once the model is built)."""
        return [self._symbolic_graph()[1]]

    @outputs.setter
    def outputs(self, value: Any) -> None:
        pass

    @property
    def input_names(self) -> list[str]:  # type: ignore[override]
        return ["input"]

    @property
    def output_names(self) -> list[str]:  # type: ignore[override]
        return [self._layers[-1].name] if self._layers else ["output"]

    # ---------------------------------------------- as a layer in a model
    def check_input_shape(self, shape: Any) -> None:
        Layer.check_input_shape(self, shape)

    def call_forward(self, x: Any, training: bool = False, **options: Any) -> tuple[Any, Any]:
        saved = []
        activity: dict[int, Any] = {}
        penalty = 0.0
        for i, layer in enumerate(self._layers):
            x, s = layer.call_forward(x, training)
            saved.append(s)
            penalty += getattr(s, "activity_penalty", 0.0)  # of models inside
            if layer.activity_regularizer is not None:
                pen, grad = layer.activity_regularization(x)
                penalty += pen
                activity[i] = grad
        return x, SequentialSaved(saved, activity, penalty)

    def call_backward(
        self, dy: Any, saved: Any, *, need_input: bool = True, need_params: bool = True
    ) -> tuple[Any, dict[str, np.ndarray]]:
        for i in range(len(self._layers) - 1, -1, -1):
            layer = self._layers[i]
            if saved.activity and i in saved.activity:
                dy = dy + saved.activity[i]
            want_dx = i > 0 or need_input
            dx, grads = layer.call_backward(
                dy, saved.calls[i], need_input=want_dx, need_params=need_params and layer.trainable
            )
            for k, g in grads.items():
                layer.grads[k] += g
            dy = dx
        return (dy if need_input else None), {}

    def compute_forward(self, x: Any, training: bool, **options: Any) -> tuple[Any, Any]:
        return self.call_forward(x, training)

    def compute_backward_input(self, dy: Any, saved: Any) -> Any:
        kept = [(layer, layer.grads) for layer in self._layers]
        try:
            return self.call_backward(dy, saved, need_input=True, need_params=False)[0]
        finally:
            for layer, g in kept:
                layer.grads = g

    def compute_backward_params(self, dy: Any, saved: Any) -> dict[str, np.ndarray]:
        kept = [(layer, layer.grads) for layer in self._layers]
        for layer in self._layers:
            layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
        try:
            self.call_backward(dy, saved, need_input=False, need_params=True)
            return self._leaf_items("grads")
        finally:
            for layer, g in kept:
                layer.grads = g

    def _prepare_input(self, x: Any) -> Any:
        return Layer.prepare_input(self, x)

    def convert_input(self, x: np.ndarray) -> np.ndarray:
        return x

    def _step_params(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for i, layer in enumerate(self._layers):
            if layer.trainable:
                params = layer.params
                if params:
                    grads = layer.grads  # once per layer (a call() layer gathers it each time)
                    for k, p in params.items():
                        out[f"{i}.{layer.name}.{k}"] = (p, grads[k])
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": [
                {
                    "class_name": registry.get_registered_name(type(layer)),
                    "config": layer.get_config(),
                }
                for layer in self._layers
            ],
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, type] | None = None
    ) -> Sequential:
        layers = [
            spec if isinstance(spec, Layer) else saving.layer_from_spec(spec, custom_objects)
            for spec in config["layers"]
        ]
        return cls(layers, name=config.get("name"))

    def __repr__(self) -> str:
        return f"Sequential(name={self.name!r}, layers={[layer.name for layer in self.layers]})"

    # ----------------------------------------------------------- structure
    def add(self, layer: Layer | Input) -> None:
        """Append a layer (built at once if the model already is, or has an :class:`Input`).

        An :class:`Input` may only come first: it fixes the input shape, and
        every layer added after it is built at once.

        Parameters
        ----------
        layer : Layer or Input
            The layer to append (or the model's :class:`Input`, first).

        Raises
        ------
        TypeError
            ``Sequential '...': add() expected a Layer, received ...`` (a loss
            goes to :meth:`compile` instead).
        ValueError
            A layer whose name is already in the model, an :class:`Input` that
            is not first, or (for a built model) a layer that cannot take the
            current output shape.
        """
        if isinstance(layer, InputLayer):
            layer = layer.output
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError(
                    f"Sequential {self.name!r}: an Input can only be the first entry; "
                    f"the model already has {'layers' if self.layers else 'an input shape'}."
                )
            self.input_shape = (None, *layer.shape[1:])
            self._input_dtype = layer.dtype
            return
        if not isinstance(layer, Layer):
            what = "a loss (pass it to compile)" if isinstance(layer, Loss) else repr(layer)
            raise TypeError(f"Sequential {self.name!r}: add() expected a Layer, received {what}.")
        if any(existing.name == layer.name for existing in self.layers):
            raise ValueError(
                f"Sequential {self.name!r}: a layer named {layer.name!r} is already "
                f"in the model; layer names must be unique."
            )
        if self.built:
            shape = self.compute_output_shape(self._built_input_shape())
            if not layer.built:
                layer.build(shape)
            else:
                layer.output_shape(shape)
        declared = getattr(layer, "declared_input_shape", None)
        if not self.layers and self.input_shape is None and declared is not None:
            self.input_shape = (None, *declared[1:])
            if not layer.built:
                layer.build(self.input_shape)
        self._layers.append(layer)
        self._symbolic = None

    @property
    def trainable(self) -> bool:
        """Whether any layer is trainable; setting it freezes or unfreezes every layer (Keras).

        A frozen layer keeps its weights in :meth:`fit` but still passes gradients back.
        """
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        value = check_bool(value, "trainable", f"Sequential {self.name!r}")
        for layer in self.layers:
            layer.trainable = value

    @property
    def built(self) -> bool:
        """Whether the model knows its input shape and every layer has its parameters."""
        return self.input_shape is not None and all(layer.built for layer in self.layers)

    @built.setter
    def built(self, value: bool) -> None:  # set by Layer.__init__; derived here
        pass

    def build(self, input_shape: Sequence[int | None], seed: int | None = None) -> None:  # type: ignore[override]
        """Build every layer for inputs of ``input_shape`` (batch axis included, may be None).

        Parameters
        ----------
        input_shape : tuple
        seed : int, optional
            Seeds the initial weights of layers that have no ``seed`` of their
            own (one child generator per layer, in order).
        """
        if not self.layers:
            raise ValueError(f"Sequential {self.name!r}: cannot build a model with no layers.")
        shape = normalize_shape(input_shape, f"Sequential {self.name!r}")
        shape = (None, *shape[1:])
        children = (
            np.random.SeedSequence(seed).spawn(len(self.layers))
            if seed is not None
            else [None] * len(self.layers)
        )
        current = shape
        for layer, child in zip(self.layers, children, strict=True):
            rng = np.random.default_rng(child) if child is not None and layer.seed is None else None
            layer.build(current, rng=rng)
            current = layer.output_shape(current)
        self.input_shape = shape

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        """The output shape for inputs of ``input_shape`` (pure; each layer validates).

        Parameters
        ----------
        input_shape : tuple of int or None
            Full input shape, batch axis included (``None`` allowed there).

        Returns
        -------
        tuple of int or None

        Raises
        ------
        ValueError
            When a layer cannot take the shape it would receive, with that
            layer's message.
        """
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.output_shape(shape)
        return shape

    def count_params(self) -> int:
        """Total number of scalar parameters."""
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn: Callable[[str], Any] = print) -> None:
        """Print a table of layers: name, type, output shape and parameter count.

        Output shapes are known once the model is built (or has an
        :class:`Input`); before that they show as ``?``.

        Parameters
        ----------
        print_fn : callable, default print
            Called with each line of the table.
        """
        rows = [("Layer (type)", "Output shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            if shape is not None:
                shape = layer.output_shape(shape)
            count = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
            rows.append(
                (
                    f"{layer.name} ({type(layer).__name__})",
                    shape_str(shape) if shape is not None else "?",
                    count,
                )
            )
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "=" * sum(widths)
        total = self.count_params()
        trainable = sum(
            p.size for layer in self.layers if layer.trainable for p in layer.params.values()
        )
        out_lines = [
            f'Model: "{self.name}"',
            line,
            "".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)),
            line,
        ]
        out_lines += ["".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows[1:]]
        out_lines += [
            line,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        print_fn("\n".join(out_lines))

    # ------------------------------------------------------------- compile
    def _built_input_shape(self) -> tuple[int | None, ...]:
        if self.input_shape is None:
            raise RuntimeError(f"Sequential {self.name!r}: the model is not built yet.")
        return self.input_shape

    # ---------------------------------------------------------- computation
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:  # type: ignore[override]
        """Run the chain forward and return the last layer's output.

        Parameters
        ----------
        x : ndarray
            A batch of inputs.
        training : bool, default False
            Training mode for layers that differ (:class:`Dropout`,
            :class:`BatchNorm`).

        Returns
        -------
        ndarray
            The last layer's output.

        Raises
        ------
        ValueError
            When a layer refuses its input, with that layer's message.
        TypeError
            An ``x`` that is not a real numeric array.
        """
        # the last call's saved states go as each layer replaces its own (held here until
        # the end, they would all stay alive while the new ones are made)
        self.__dict__["saved"] = None
        activity: dict[int, Any] = {}
        penalty = 0.0
        mask = None  # Keras's masks, passed along the stack (the loss reads the last one)
        makes_masks = self._mask_makers()
        for i, layer in enumerate(self._layers):
            x_in = x
            if mask is not None and _takes_mask(layer):
                x = layer.forward(x, training=training, mask=mask)
            else:
                x = layer.forward(x, training=training)
            if mask is not None or makes_masks[i]:  # (otherwise its answer is None)
                mask = layer.output_mask(x_in, mask)
            if layer.activity_regularizer is not None:
                pen, grad = layer.activity_regularization(x)
                penalty += pen
                activity[i] = grad
        d = self.__dict__  # plain per-call attributes: no tracking to do (see calling.py)
        d["_activity"] = (penalty, activity)
        d["_output_mask"] = mask
        # the calls' saved states, so that backward_input/backward_params work on the model too
        d["saved"] = SequentialSaved([layer.saved for layer in self._layers])
        d["_y_shape"] = getattr(x, "shape", None)
        return x

    def backward(self, dy: np.ndarray, accumulate: bool = True) -> None:
        r"""Backpropagate :math:`\partial z/\partial X^L` through every layer.

        Each layer gets ``backward_params`` (if trainable) then ``backward_input``;
        the first layer's input gradient is skipped.

        Parameters
        ----------
        dy : ndarray
            Gradient of the loss with respect to the model's last output.
        accumulate : bool, default True
            Add into each layer's ``grads`` (as ``backward_params`` does); with
            ``False`` the ``grads`` are replaced by this batch's gradients.
        """
        activity = self._activity[1] if self._activity is not None else {}
        layers = self._layers
        for i in range(len(layers) - 1, -1, -1):
            layer = layers[i]
            if i in activity:  # the activity penalty's gradient joins the upstream one
                dy = dy + activity[i]
            if layer.trainable and layer.params:
                if not accumulate:
                    layer.zero_grad()
                layer.backward_params(dy)
            if i > 0:
                dy = layer.backward_input(dy)

    def activity_penalty(self) -> float:
        return self._activity[0] if self._activity is not None else 0.0

    @property
    def weights(self) -> list[np.ndarray]:  # type: ignore[override]
        """The model's own parameter and state arrays, layer by layer (not copies).

        Writing into them changes the model; :meth:`get_weights` gives copies.
        """
        out: list[np.ndarray] = []
        for layer in self._layers:
            out += layer.weight_arrays().values()
        return out

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter and state array, layer by layer."""
        return [p.copy() for p in self.weights]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Set every parameter from a list like :meth:`get_weights` returns.

        Parameters
        ----------
        weights : sequence of ndarray
            One array per parameter and state array, in the order of
            :meth:`get_weights`; values are copied into the model's arrays.

        Raises
        ------
        ValueError
            ``set_weights: expected N arrays, received M.`` or ``set_weights:
            weights[i] should have shape ..., received ...``; nothing is
            assigned unless every array fits.
        TypeError
            An entry that is not a real numeric array.
        """
        params = self.weights
        if len(weights) != len(params):
            raise ValueError(
                f"set_weights: expected {len(params)} arrays, received {len(weights)}."
            )
        for i, (p, w) in enumerate(zip(params, weights, strict=True)):
            w = as_array(w, "set_weights", f"weights[{i}]")
            if w.shape != p.shape:
                raise ValueError(
                    f"set_weights: weights[{i}] should have shape "
                    f"{shape_str(p.shape)}, received {shape_str(w.shape)}."
                )
        for p, w in zip(params, weights, strict=True):
            p[...] = w

    def _mask_makers(self) -> list[bool]:
        """For each layer, whether it may give its output a mask when its input has none:
        it has ``compute_mask`` or its class overrides ``output_mask`` (any other layer's
        answer is ``None`` then). Kept for the layers it was found for, as the in-place plan.
        """
        key = tuple(self._layers)
        kept = self.__dict__.get("_mask_plan")
        if kept is not None and kept[0] == key:
            return kept[1]
        found = [
            type(layer).output_mask is not Layer.output_mask
            or getattr(layer, "compute_mask", None) is not None
            for layer in self._layers
        ]
        self.__dict__["_mask_plan"] = (key, found)  # not a tracked attribute
        return found

    def _in_place_layers(self) -> list[Layer]:
        """Layers that may overwrite their input and upstream gradient in a training step.

        Only a layer whose own class declares ``in_place``, whose input is private to the
        step (the new output of a layer declaring ``fresh_output``, or a view of a private
        array passed on by a layer declaring ``passes_views``; never the caller's ``x`` or
        an array some layer keeps for its backward pass) and whose upstream gradient is
        private in the same sense (``fresh_gradient``). Declarations are never inherited,
        so a user subclass is never overwritten behind its back.

        The answer depends only on the layers' classes and the loss's, so it is kept
        for the layers and loss class it was found for (a training step asks every time).
        With the fast paths off (``layernet._ops.fast_paths(False)``) no layer works in place.
        """
        if not _ops.FAST_PATHS:
            return []
        key = (tuple(self._layers), type(self.loss))
        kept = self.__dict__.get("_in_place_plan")
        if kept is not None and kept[0] == key:
            return list(kept[1])
        found = self._find_in_place_layers()
        self.__dict__["_in_place_plan"] = (key, found)  # not a tracked attribute
        return list(found)

    def _find_in_place_layers(self) -> list[Layer]:
        n = len(self.layers)
        kinds = [type(layer) for layer in self.layers]
        private_x = [False] * n  # the caller's x is never overwritten
        for i in range(1, n):
            prev = kinds[i - 1]
            private_x[i] = prev.declares("fresh_output") or (
                prev.declares("passes_views") and private_x[i - 1]
            )
        private_dy = [False] * n
        if n:
            private_dy[-1] = self.loss is not None and type(self.loss).declares("fresh_gradient")
        for i in range(n - 2, -1, -1):
            nxt = kinds[i + 1]
            private_dy[i] = nxt.declares("fresh_gradient") or (
                nxt.declares("passes_views") and private_dy[i + 1]
            )
        return [
            layer
            for i, layer in enumerate(self.layers)
            if kinds[i].declares("in_place") and private_x[i] and private_dy[i]
        ]

    def _dtype(self) -> np.dtype:
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    def _every_layer(self) -> list[Layer]:
        """The layers, and the inner layers of layers made of layers."""
        return flatten_layers(self.layers)

    def save(self, path: str | os.PathLike) -> None:
        """Save architecture, weights and compile settings to one ``.npz`` file, atomically.

        See :doc:`/file_format` for the format; :func:`layernet.load_model` reads it.

        Parameters
        ----------
        path : str or os.PathLike
            The file to create or replace.

        Raises
        ------
        RuntimeError
            ``save: model '...' is not built yet; call build() or fit() first.``
        ValueError
            When the model is beyond the bounds loading enforces.
        FileNotFoundError
            When the folder of ``path`` does not exist.
        """
        saving.save_model(self, path)

    def save_weights(self, path: str | os.PathLike) -> None:
        """Save only the weights, atomically (see :func:`layernet.saving.save_weights`).

        Parameters
        ----------
        path : str or os.PathLike
            The file to create or replace.

        Raises
        ------
        RuntimeError
            When the model is not built.
        FileNotFoundError
            When the folder of ``path`` does not exist.
        """
        saving.save_weights(self, path)

    def load_weights(self, path: str | os.PathLike) -> None:
        """Load weights saved from a model with the same layers (strict: names and shapes).

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save_weights` or :meth:`save`.

        Raises
        ------
        ModelFileError
            For a malformed file or weights that do not match the model.
        FileNotFoundError
            When there is no file at ``path``.
        """
        saving.load_weights(self, path)
