r"""Sequential: a chain of layers, trained with ``compile`` and ``fit``.

Training runs the lecture notes' backpropagation: a forward pass through the
chain, the loss :math:`z` and :math:`\partial z/\partial X^L`, then for each
layer from the last to the first ``backward_params`` (giving
:math:`\partial z/\partial w^i`) and ``backward_input`` (giving
:math:`\partial z/\partial X^i`, the next layer's upstream gradient). The first
layer's :math:`\partial z/\partial X^1` is never needed and never computed.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import _random, optimizers, saving
from . import distributed as _distributed
from . import losses as losses_mod
from . import metrics as metrics_mod
from ._ops import Workspace
from ._validation import (
    as_array,
    cast_checked,
    check_bool,
    check_finite,
    check_number,
    check_positive_int,
    is_int,
    normalize_shape,
    shape_str,
)
from .callbacks import Callback, History, ProgressBar, TerminateOnNaN, _in_notebook
from .layers.base import Layer, flatten_layers
from .layers.input import Input
from .losses import Loss

_counter = itertools.count(1)


def _check_callbacks_argument(callbacks: Any) -> None:
    """``callbacks`` must be None or a list (or tuple) of Callback instances."""
    if callbacks is None:
        return
    if isinstance(callbacks, Callback) or not isinstance(callbacks, list | tuple):
        hint = (
            " (wrap a single callback in a list: callbacks=[cb])"
            if callable(getattr(callbacks, "set_model", None))
            else ""
        )
        raise TypeError(
            f"fit: invalid value for `callbacks`: expected a list of Callback instances, "
            f"received {type(callbacks).__name__} {callbacks!r:.80}{hint}."
        )
    for i, c in enumerate(callbacks):
        if not isinstance(c, Callback):
            raise TypeError(
                f"fit: invalid value for `callbacks`: expected Callback instances (of "
                f"layernet.Callback subclasses), received {type(c).__name__} {c!r:.80} at "
                f"index {i}."
            )


class Sequential:
    r"""A linear stack of layers with a Keras-style training workflow.

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
    >>> sorted(history.history)
    ['accuracy', 'loss', 'lr']
    >>> model.predict(x[:2]).shape
    (2, 3)
    """

    def __init__(
        self, layers: Sequence[Layer | Input] | None = None, name: str | None = None
    ) -> None:
        self.name = name or f"sequential_{next(_counter)}"
        self.layers: list[Layer] = []
        self.input_shape: tuple[int | None, ...] | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: Loss | None = None
        self.metrics: list[metrics_mod.Metric] = []
        self.history: History | None = None
        self.stop_training = False
        self.epochs_completed: int = 0
        self.distribute_strategy: _distributed.DataParallel | None = None
        for layer in layers or []:
            self.add(layer)

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
        if isinstance(layer, Input):
            if self.layers or self.input_shape is not None:
                raise ValueError(
                    f"Sequential {self.name!r}: an Input can only be the first entry; "
                    f"the model already has {'layers' if self.layers else 'an input shape'}."
                )
            self.input_shape = (None, *layer.shape[1:])
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
        self.layers.append(layer)

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

    def build(self, input_shape: Sequence[int | None], seed: int | None = None) -> None:
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
    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "sgd",
        loss: str | Loss | None = None,
        metrics: Sequence[str | metrics_mod.Metric] | None = None,
    ) -> None:
        """Choose the optimizer, the loss and the metrics.

        Parameters
        ----------
        optimizer : str or Optimizer, default "sgd"
            ``"sgd"``, ``"adam"`` or an instance such as ``SGD(0.05, momentum=0.9)``.
        loss : str or Loss
            Keras's names with Keras's definitions: ``"mse"`` (``"mean_squared_error"``),
            ``"mae"``, ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``,
            ``"binary_crossentropy"`` (probabilities in, e.g. after a softmax or sigmoid);
            the notes' ``"half_squared_error"`` (:class:`MSELoss`) and
            ``"softmax_cross_entropy"`` (logits in); or an instance such as
            ``CategoricalCrossentropy(from_logits=True)``. See :func:`layernet.losses.get`.
        metrics : list of str or Metric, optional
            Keras's names: ``"accuracy"`` (binary, categorical or sparse chosen from
            the shapes), ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
            ``"binary_accuracy"``, ``"top_k_categorical_accuracy"``,
            ``"sparse_top_k_categorical_accuracy"``, ``"mse"``, ``"mae"``; see
            :mod:`layernet.metrics`.
        """
        self.optimizer = optimizers.get(optimizer)
        dtype = self.layers[0].dtype.name if self.layers else "float32"
        self.loss = losses_mod.get(loss, dtype=dtype)
        if metrics is not None and (isinstance(metrics, str) or not isinstance(metrics, Sequence)):
            raise ValueError(
                f"compile: invalid value for `metrics`: expected a list, received {metrics!r}."
            )
        self.metrics = [metrics_mod.get(m) for m in metrics or []]

    def _require_compiled(self, fn: str) -> tuple[optimizers.Optimizer, Loss]:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                f"Sequential {self.name!r}: call compile(optimizer, loss) before {fn}()."
            )
        return self.optimizer, self.loss

    def _built_input_shape(self) -> tuple[int | None, ...]:
        if self.input_shape is None:
            raise RuntimeError(f"Sequential {self.name!r}: the model is not built yet.")
        return self.input_shape

    # ---------------------------------------------------------- computation
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
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
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """``model(x)`` is ``model.forward(x)``."""
        return self.forward(x, training=training)

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
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            if layer.trainable and layer.params:
                if not accumulate:
                    layer.zero_grad()
                layer.backward_params(dy)
            if i > 0:
                dy = layer.backward_input(dy)

    @property
    def weights(self) -> list[np.ndarray]:
        """The model's own parameter and state arrays, layer by layer (not copies).

        Writing into them changes the model; :meth:`get_weights` gives copies.
        """
        return [p for layer in self.layers for p in layer.variables().values()]

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

    def train_step(
        self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """One optimisation step on a batch; returns the loss and the predictions.

        Forward in training mode, the loss, backward through every layer, and one
        optimizer step: what :meth:`fit` does per batch, without callbacks.

        Parameters
        ----------
        x : ndarray
            A batch of inputs.
        y : ndarray
            Its targets.
        sample_weight : ndarray of shape (batch,), optional
            Per-sample weights, as in :meth:`fit`.

        Returns
        -------
        loss : float
            The batch's loss before the step.
        predictions : ndarray
            The model's outputs for ``x`` before the step.

        Raises
        ------
        RuntimeError
            ``Sequential '...': call compile(optimizer, loss) before train_step().``
        ValueError
            Inputs or targets the model or the loss refuses.
        """
        self._require_compiled("train_step")
        return self._train_step(x, y, sample_weight)

    def _in_place_layers(self) -> list[Layer]:
        """Layers that may overwrite their input and upstream gradient in a training step.

        Only a layer whose own class declares ``in_place``, whose input is private to the
        step (the new output of a layer declaring ``fresh_output``, or a view of a private
        array passed on by a layer declaring ``passes_views``; never the caller's ``x`` or
        an array some layer keeps for its backward pass) and whose upstream gradient is
        private in the same sense (``fresh_gradient``). Declarations are never inherited,
        so a user subclass is never overwritten behind its back.
        """
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

    def _train_step(
        self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        optimizer, _ = self._require_compiled("train_step")
        z, pred = self._compute_gradients(x, y, sample_weight)
        if math.isfinite(z):  # never apply a non-finite step
            optimizer.step(
                {
                    f"{i}.{layer.name}.{k}": (p, layer.grads[k])
                    for i, layer in enumerate(self.layers)
                    if layer.trainable
                    for k, p in layer.params.items()
                }
            )
        return z, pred

    def _compute_gradients(
        self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Forward, loss and backward on a batch: the loss and the predictions, with each
        trainable layer's ``grads`` set to this batch's (left alone if the loss is not finite)."""
        _, loss = self._require_compiled("train_step")
        scratch = self._in_place_layers()
        for layer in scratch:
            layer.overwrite_inputs = True
        try:
            pred = self.forward(x, training=True)
            # (weights passed only when given: a loss's own forward(x, t) keeps working)
            z = (
                loss.forward(pred, y)
                if sample_weight is None
                else loss.forward(pred, y, sample_weight=sample_weight)
            )
            if math.isfinite(z):
                self.backward(loss.backward_input(), accumulate=False)
        finally:
            for layer in scratch:
                layer.overwrite_inputs = False
        return z, pred

    # ---------------------------------------------------------------- data
    def _dtype(self) -> np.dtype:
        return self.layers[0].dtype if self.layers else np.dtype("float32")

    def _check_x(self, x: Any, fn: str, arg: str = "x") -> np.ndarray:
        x = as_array(x, fn, arg)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"{fn}: `{arg}` is empty (shape {shape_str(x.shape)}); expected at "
                f"least one sample."
            )
        x = cast_checked(x, self._dtype(), fn, arg)
        if not self.layers:
            raise ValueError(f"{fn}: model {self.name!r} has no layers.")
        if self.built:
            if tuple(x.shape[1:]) != tuple(self._built_input_shape()[1:]):
                # let the layers say whether they can take it (e.g. other spatial sizes)
                self.compute_output_shape((None, *x.shape[1:]))
        return x

    def _check_xy(self, x: Any, y: Any, fn: str, names=("x", "y")) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_x(x, fn, names[0])
        y = as_array(y, fn, names[1])
        if y.ndim == 0 or len(y) != len(x):
            raise ValueError(
                f"{fn}: `{names[0]}` and `{names[1]}` have different numbers of "
                f"samples: {len(x)} and {len(y) if y.ndim else 'a scalar'}."
            )
        check_finite(y, fn, names[1])
        return x, y

    def _check_targets(
        self, y: np.ndarray, fn: str, arg: str, x_val: np.ndarray | None = None
    ) -> np.ndarray:
        shape = self._built_input_shape()[1:] if x_val is None else x_val.shape[1:]
        out = self.compute_output_shape((len(y), *shape))
        _, loss = self._require_compiled(fn)
        dummy = np.broadcast_to(np.zeros((), dtype=self._dtype()), tuple(int(s or 0) for s in out))
        what = f"`{arg}`" if x_val is None else f"`{arg}` (validation data)"
        try:
            t = loss.check_target(dummy, y)
        except ValueError as exc:
            raise ValueError(
                f"{fn}: {what} does not fit the model's output of shape {shape_str(out)}: {exc}"
            ) from None
        return np.asarray(t)

    # ----------------------------------------------------------------- fit
    @_distributed.entry
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int | None = None,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        callbacks: Sequence[Callback] | None = None,
        verbose: int | str = "auto",
        seed: int | None = None,
        sample_weight: np.ndarray | None = None,
        class_weight: dict[int, float] | None = None,
        initial_epoch: int = 0,
        distribute: _distributed.DataParallel | None = None,
    ) -> History:
        r"""Train for ``epochs`` passes over ``(x, y)`` with mini-batch steps.

        Parameters
        ----------
        x : ndarray of shape (n_samples, \*input_shape)
        y : ndarray
            Targets: integer labels ``(n_samples,)`` or rows matching the
            model's output, as the loss expects. Never broadcast.
        epochs : int, default 1
            The index of the last epoch: training runs epochs ``initial_epoch``
            to ``epochs - 1`` (Keras' convention).
        batch_size : int, optional
            Default 32 (as in Keras). With ``distribute``, the global batch, split
            between the ranks.
        validation_data : tuple (x_val, y_val) or (x_val, y_val, sample_weight_val), optional
            Evaluated after every epoch (``val_*`` entries in the history).
        validation_split : float, default 0.0
            Fraction in [0, 1) of the *last* samples (and sample weights) held
            out for validation (ignored when ``validation_data`` is given).
        shuffle : bool, default True
            Reshuffle the training samples every epoch.
        callbacks : list of Callback, optional
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent, 1 progress bar, 2 one line per epoch; ``"auto"`` picks 1
            in terminals and notebooks and 2 for logs.
        seed : int, optional
            Seeds the shuffling and, if the model is not built yet, the initial
            weights of layers without a seed of their own: the same seed gives
            bit-identical weights and history on the same machine. Each epoch's
            order depends only on the seed and the epoch's index.
        sample_weight : ndarray of shape (n_samples,), optional
            Non-negative per-sample weights :math:`w_n`. Each batch's loss is
            :math:`\frac1B\sum_{n\in\text{batch}} w_n z_n` (Keras 3's
            ``"sum_over_batch_size"``: divided by the batch size :math:`B`, not by
            the weights' sum), so its gradient scales each sample's by
            :math:`w_n`; metrics become weighted means
            :math:`\sum w_n m_n / \sum w_n`, as in Keras.
        class_weight : dict of int to float, optional
            Weights by class, turned into sample weights: sample :math:`n` gets
            ``class_weight[c_n]`` (1 for classes not in the dict), where
            :math:`c_n` is its label, or the arg-max of a one-hot target row.
            Training data only (not validation), and not together with
            ``sample_weight``.
        initial_epoch : int, default 0
            The epoch to start at, to continue a run: ``fit(x, y, epochs=4,
            initial_epoch=2)`` on a model saved after 2 epochs and loaded again
            (model files keep the optimizer's state) trains epochs 2 and 3, and
            ends with the weights of a 4-epoch run, bit for bit.
        distribute : DataParallel, optional
            Train data-parallel over the ranks of an MPI communicator (see
            :class:`~layernet.DataParallel`); every rank passes the same
            arguments. With one rank, or None, this is the one-process ``fit``.

        Returns
        -------
        History
            ``history.history`` maps ``"loss"``, each metric, ``"val_*"`` and
            ``"lr"`` to per-epoch lists.

        Raises
        ------
        RuntimeError
            ``Sequential '...': call compile(optimizer, loss) before fit().``
        ValueError
            Every argument is checked before the first step, naming it:
            ``fit: invalid value for `epochs`: expected an int >= 0, ...``; the
            same form for ``batch_size``, ``verbose``, ``shuffle``, ``seed``,
            ``validation_split``, ``validation_data`` (``expected a tuple (x_val,
            y_val) or (x_val, y_val, sample_weight_val)``), ``callbacks``,
            ``sample_weight`` and ``class_weight`` (not both together); a
            ``validation_split`` that leaves no sample on one side; validation
            data that do not fit the model; an empty ``x``, ``x`` and ``y`` with
            different numbers of samples, inputs the first layer refuses, or
            targets that do not fit the model's output (``... does not fit the
            model's output of shape ...``).
        TypeError
            An ``x`` or ``y`` that is not a real numeric array.
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        self._check_fit_arguments(epochs, batch_size, verbose, shuffle, seed, validation_split)
        _check_callbacks_argument(callbacks)
        if not is_int(initial_epoch) or initial_epoch < 0:
            raise ValueError(
                f"fit: invalid value for `initial_epoch`: expected an int >= 0, "
                f"received {initial_epoch!r}."
            )
        dp = _distributed.resolve(distribute, "fit")
        x, y, val_xy = self._fit_data(x, y, validation_data, validation_split, seed)
        x, y, sw, val = self._fit_weights(
            x, y, val_xy, sample_weight, class_weight, validation_data
        )
        base = seed if seed is not None else int(_random.generator().integers(2**63))
        if dp is not None:
            self.distribute_strategy = dp
            base = dp.begin_fit(self, x, y, base, val, sw)
            verbose = verbose if dp.is_root else 0
        steps = math.ceil(len(x) / batch_size)
        history = History()
        cbs = self._callback_list(history, callbacks, verbose, epochs, steps)
        self._check_callback_logs(cbs, validation=val is not None)
        self.stop_training = False
        self.history = history
        # Scratch buffers belong to this run: one workspace per layer for training and one
        # for validation (batches of another size), dropped when the run ends.
        train_ws = self._new_workspaces()
        val_ws = self._new_workspaces()
        try:
            for c in cbs:
                c.on_train_begin()
            for epoch in range(initial_epoch, epochs):
                for c in cbs:
                    c.on_epoch_begin(epoch)
                lr = self._require_compiled("fit")[0].current_learning_rate
                order = _epoch_order(base, epoch, len(x), shuffle)
                with self._workspaces(train_ws):
                    if dp is None:
                        logs = self._train_epoch(x, y, order, batch_size, cbs, sw)
                    else:
                        logs = dp.train_epoch(self, x, y, order, batch_size, cbs, sw)
                if val is not None:  # also after a stop mid-epoch: callbacks expect val_* logs
                    with self._workspaces(val_ws):
                        logs.update(
                            self._validate(
                                val[0], val[1], val[2], batch_size=max(batch_size, 256), dp=dp
                            )
                        )
                logs["lr"] = lr
                self.epochs_completed = epoch + 1
                for c in cbs:
                    c.on_epoch_end(epoch, logs)
                if dp is not None:
                    dp.end_epoch(self)
                if self.stop_training:
                    break
            for c in cbs:
                c.on_train_end()
        finally:
            for layer in self.layers:  # what backward kept points into the run's buffers
                layer.clear_saved()
        return history

    def _check_fit_arguments(
        self,
        epochs: Any,
        batch_size: Any,
        verbose: Any,
        shuffle: Any,
        seed: Any,
        validation_split: Any,
    ) -> None:
        """Refuse bad scalar arguments of :meth:`fit` with a message naming each."""
        if not is_int(epochs) or epochs < 0:
            raise ValueError(
                f"fit: invalid value for `epochs`: expected an int >= 0, received {epochs!r}."
            )
        check_positive_int(batch_size, "batch_size", "fit")
        if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
            raise ValueError(
                f"fit: invalid value for `verbose`: expected 'auto', 0, 1 or 2, "
                f"received {verbose!r}."
            )
        check_bool(shuffle, "shuffle", "fit")
        if seed is not None and not (is_int(seed) and seed >= 0):
            raise ValueError(
                f"fit: invalid value for `seed`: expected a non-negative int or "
                f"None, received {seed!r}."
            )
        check_number(validation_split, "validation_split", "fit", low=0, high=1, high_open=True)

    def _check_callback_logs(self, cbs: list[Callback], validation: bool) -> None:
        """Let every callback refuse, before the first step, log names the run will not have."""
        names = ["loss", *(m.name for m in self.metrics)]
        keys = {*names, "lr"} | ({f"val_{k}" for k in names} if validation else set())
        for c in cbs:
            c.check_logs(keys)

    def _check_validation_fits(self, val: tuple[np.ndarray, np.ndarray]) -> None:
        """Refuse validation inputs the built model cannot take, naming the validation data."""
        try:
            self.compute_output_shape((None, *val[0].shape[1:]))
        except ValueError as exc:
            raise ValueError(
                f"fit: the validation data do not fit the model: `x_val` has shape "
                f"{shape_str(val[0].shape)} and the model takes inputs of shape "
                f"{shape_str(self._built_input_shape())}: {exc}"
            ) from None

    def _fit_data(
        self,
        x: Any,
        y: Any,
        validation_data: Any,
        validation_split: float,
        seed: int | None,
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """Checked training arrays and validation pair; builds the model if needed."""
        x, y = self._check_xy(x, y, "fit")
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple | list) and len(validation_data) in (2, 3)):
                raise ValueError(
                    "fit: invalid value for `validation_data`: expected a tuple (x_val, y_val) "
                    "or (x_val, y_val, sample_weight_val)."
                )
            try:
                val = self._check_xy(
                    validation_data[0], validation_data[1], "fit", names=("x_val", "y_val")
                )
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"fit: invalid `validation_data`: {str(exc).removeprefix('fit: ')}"
                ) from None
        elif validation_split:
            n_val = int(len(x) * validation_split)
            if n_val == 0 or n_val >= len(x):
                raise ValueError(
                    f"fit: `validation_split`={validation_split} of {len(x)} samples "
                    f"leaves {len(x) - n_val} for training and {n_val} for "
                    f"validation; both need at least one."
                )
            x, y, val = x[:-n_val], y[:-n_val], (x[-n_val:], y[-n_val:])
        if not self.built:
            self.build((None, *x.shape[1:]), seed=seed)
        y = self._check_targets(y, "fit", "y")
        if val is not None:
            self._check_validation_fits(val)
            val = (val[0], self._check_targets(val[1], "fit", "y_val", x_val=val[0]))
        return x, y, val

    def _fit_weights(
        self,
        x: np.ndarray,
        y: np.ndarray,
        val: tuple[np.ndarray, np.ndarray] | None,
        sample_weight: Any,
        class_weight: Any,
        validation_data: Any,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, tuple | None]:
        """Per-sample training weights (from ``sample_weight`` or ``class_weight``) and the
        validation triple ``(x_val, y_val, weights or None)``, split as :meth:`_fit_data` split."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError(
                "fit: `sample_weight` and `class_weight` cannot be given together; fold the "
                "class weights into `sample_weight`."
            )
        sw = val_sw = None
        if sample_weight is not None:
            n_total = len(x) + (len(val[0]) if val is not None and validation_data is None else 0)
            sw = metrics_mod.check_sample_weight(sample_weight, n_total, "fit")
            sw, val_sw = sw[: len(x)], (sw[len(x) :] if n_total > len(x) else None)
        if class_weight is not None:
            sw = class_weight_to_sample_weight(y, class_weight)
        if validation_data is not None and len(validation_data) == 3:
            if validation_data[2] is not None and val is not None:
                val_sw = metrics_mod.check_sample_weight(
                    validation_data[2], len(val[0]), "fit (validation_data)"
                )
        loss_dtype = self._require_compiled("fit")[1].dtype
        if sw is not None:
            sw = sw.astype(loss_dtype)
        weighted_val = None
        if val is not None:
            weighted_val = (*val, None if val_sw is None else val_sw.astype(loss_dtype))
        return x, y, sw, weighted_val

    def _callback_list(
        self,
        history: History,
        callbacks: Sequence[Callback] | None,
        verbose: int | str,
        epochs: int,
        steps: int,
    ) -> list[Callback]:
        """History, TerminateOnNaN (unless given), the user's, a progress bar; all handed
        the model (``set_model``) and the run's settings (``set_params``)."""
        user = list(callbacks or [])
        for c in user:
            if not isinstance(c, Callback):
                raise TypeError(
                    f"fit: invalid value for `callbacks`: expected Callback instances, "
                    f"received {c!r}."
                )
        cbs: list[Callback] = [history]
        if not any(isinstance(c, TerminateOnNaN) for c in user):
            cbs.append(TerminateOnNaN())
        cbs += user
        if verbose != 0 and not any(isinstance(c, ProgressBar) for c in user):
            cbs.append(ProgressBar(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        for c in cbs:
            c.set_model(self)
            c.set_params(dict(params))
        return cbs

    def _train_epoch(
        self,
        x: np.ndarray,
        y: np.ndarray,
        order: np.ndarray,
        batch_size: int,
        cbs: list[Callback],
        sample_weight: np.ndarray | None = None,
    ) -> dict[str, float]:
        """One pass over the samples in ``order``; returns the epoch's logs."""
        for m in self.metrics:
            m.reset()
        total, seen = 0.0, 0
        logs: dict[str, float] = {}
        for step in range(math.ceil(len(order) / batch_size)):
            idx = order[step * batch_size : (step + 1) * batch_size]
            for c in cbs:
                c.on_train_batch_begin(step)
            xb, yb = x[idx], y[idx]
            wb = None if sample_weight is None else sample_weight[idx]
            z, pred = self._train_step(xb, yb, wb)
            total += z * len(idx)
            seen += len(idx)
            for m in self.metrics:
                m.update(pred, yb, wb)
            logs = {"loss": total / seen, **{m.name: m.result() for m in self.metrics}}
            for c in cbs:
                c.on_train_batch_end(step, {**logs, "loss": z} if not math.isfinite(z) else logs)
            if self.stop_training:
                break
        return logs

    def _validate(
        self,
        x: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        batch_size: int,
        dp: _distributed.DataParallel | None = None,
    ) -> dict[str, float]:
        """``val_*`` logs: loss and metrics on the validation data (weighted if given)."""
        if dp is None:
            results = self._evaluate_batches(x, y, batch_size, sw)
        else:
            results = dp.evaluate(self, x, y, batch_size, sw)
        return {f"val_{k}": v for k, v in results.items()}

    @contextlib.contextmanager
    def _workspaces(self, spaces: list[Workspace]) -> Iterator[None]:
        """Give every layer the workspace of the current run, then put its own back."""
        layers = self._every_layer()
        own = [layer.workspace for layer in layers]
        for layer, ws in zip(layers, spaces, strict=True):
            layer.workspace = ws
        try:
            yield
        finally:
            for layer, ws in zip(layers, own, strict=True):
                layer.workspace = ws

    def _every_layer(self) -> list[Layer]:
        """The layers, and the inner layers of layers made of layers."""
        return flatten_layers(self.layers)

    def _new_workspaces(self) -> list[Workspace]:
        return [Workspace() for _ in self._every_layer()]

    # ------------------------------------------------------------ evaluate
    @_distributed.entry
    def evaluate(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: np.ndarray | None = None,
        return_dict: bool = False,
        distribute: _distributed.DataParallel | None = None,
    ) -> float | list[float] | dict[str, float]:
        r"""Loss and metrics on ``(x, y)``, in batches, without training (Keras's ``evaluate``).

        Parameters
        ----------
        x, y : ndarray
        batch_size : int, optional
            Default 32.
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent; 1 or 2 print one line with the results; ``"auto"`` is 1 in a
            terminal or notebook and 0 otherwise.
        sample_weight : ndarray of shape (n_samples,), optional
            Per-sample weights, as in :meth:`fit`: the loss is
            :math:`\frac1N\sum_n w_n z_n`, the metrics are weighted means.
        return_dict : bool, default False
        distribute : DataParallel, optional
            Split the samples between the ranks of a
            :class:`~layernet.DataParallel` strategy; every rank gets the values
            over all samples (only rank 0 prints).

        Returns
        -------
        float, list of float or dict
            As Keras: ``[loss, *metrics]`` in the order given to :meth:`compile`,
            just the loss (a float) when there are no metrics, or
            ``{"loss": ..., <metric name>: ...}`` with ``return_dict=True``.

        Raises
        ------
        RuntimeError
            ``Sequential '...': call compile(optimizer, loss) before evaluate().``
        ValueError
            ``evaluate: invalid value for `batch_size`: expected a positive int,
            ...``; the same form for ``verbose`` and ``sample_weight``; an empty
            ``x``, ``x`` and ``y`` with different numbers of samples, inputs the
            first layer refuses, or targets that do not fit the model's output.
        TypeError
            An ``x`` or ``y`` that is not a real numeric array.
        """
        self._require_compiled("evaluate")
        batch_size = check_positive_int(
            32 if batch_size is None else batch_size, "batch_size", "evaluate"
        )
        verbose = _check_verbose(verbose, "evaluate")
        check_bool(return_dict, "return_dict", "evaluate")
        x, y = self._check_xy(x, y, "evaluate")
        sw = None
        if sample_weight is not None:
            sw = metrics_mod.check_sample_weight(sample_weight, len(x), "evaluate")
            sw = sw.astype(self._require_compiled("evaluate")[1].dtype)
        if not self.built:
            self.build((None, *x.shape[1:]))
        y = self._check_targets(y, "evaluate", "y")
        dp = _distributed.resolve(distribute, "evaluate")
        if dp is not None:
            self.distribute_strategy = dp
            verbose = verbose if dp.is_root else 0
        start_time = time.perf_counter()
        with self._workspaces(self._new_workspaces()):
            if dp is None:
                logs = self._evaluate_batches(x, y, batch_size, sw)
            else:
                logs = dp.evaluate(self, x, y, batch_size, sw)
        if verbose:
            steps = math.ceil(len(x) / batch_size)
            text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"{steps}/{steps} - {time.perf_counter() - start_time:.2f}s - {text}")
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _evaluate_batches(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, sw: np.ndarray | None = None
    ) -> dict[str, float]:
        _, loss = self._require_compiled("evaluate")
        metrics = [copy.deepcopy(m) for m in self.metrics]  # keeps each metric's arguments
        for m in metrics:
            m.reset()
        total = 0.0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            wb = None if sw is None else sw[start : start + batch_size]
            pred = self.forward(xb)
            z = loss.forward(pred, yb) if wb is None else loss.forward(pred, yb, sample_weight=wb)
            total += z * len(xb)
            for m in metrics:
                m.update(pred, yb, wb)
        return {"loss": total / len(x), **{m.name: m.result() for m in metrics}}

    @_distributed.entry
    def predict(
        self,
        x: np.ndarray,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        distribute: _distributed.DataParallel | None = None,
    ) -> np.ndarray:
        """The model's outputs for ``x``, computed in batches (inference mode).

        Parameters
        ----------
        x : ndarray of shape (n_samples, \\*input_shape)
        batch_size : int, optional
            Default 32.
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent; 1 or 2 print one line (steps and time); ``"auto"`` is 1 in a
            terminal or notebook and 0 otherwise.
        distribute : DataParallel, optional
            Split the samples between the ranks of a
            :class:`~layernet.DataParallel` strategy; every rank returns all the
            outputs (only rank 0 prints).

        Returns
        -------
        ndarray of shape (n_samples, \\*output_shape)

        Raises
        ------
        ValueError
            ``predict: invalid value for `batch_size`: expected a positive int,
            ...`` (likewise ``verbose``), an empty ``x``, a model with no layers,
            or inputs the first layer refuses.
        TypeError
            An ``x`` that is not a real numeric array.
        """
        batch_size = check_positive_int(
            32 if batch_size is None else batch_size, "batch_size", "predict"
        )
        verbose = _check_verbose(verbose, "predict")
        x = self._check_x(x, "predict")
        if not self.built:
            self.build((None, *x.shape[1:]))
        dp = _distributed.resolve(distribute, "predict")
        if dp is not None:
            self.distribute_strategy = dp
            verbose = verbose if dp.is_root else 0
        start_time = time.perf_counter()
        with self._workspaces(self._new_workspaces()):
            if dp is not None:
                out = dp.predict(self, x, batch_size)
            else:
                out = np.concatenate(
                    [self.forward(x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
                )
        if verbose:
            steps = math.ceil(len(x) / batch_size)
            print(f"{steps}/{steps} - {time.perf_counter() - start_time:.2f}s")
        return out

    # --------------------------------------------------------------- files
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


def _check_verbose(verbose: Any, fn: str) -> int:
    """``verbose`` of evaluate/predict as 0 or 1; ``"auto"`` prints only when interactive."""
    if verbose not in ("auto", 0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(
            f"{fn}: invalid value for `verbose`: expected 'auto', 0, 1 or 2, received {verbose!r}."
        )
    if verbose == "auto":
        return int(_in_notebook() or getattr(sys.stdout, "isatty", lambda: False)())
    return int(verbose != 0)


def class_weight_to_sample_weight(y: np.ndarray, class_weight: Any) -> np.ndarray:
    """Per-sample weights from a ``{class: weight}`` dict, as Keras's ``fit`` makes them.

    A sample's class is its label (targets of shape ``(N,)`` or ``(N, 1)``, rounded)
    or the arg-max of its one-hot row; classes missing from the dict weigh 1.

    Examples
    --------
    >>> import numpy as np
    >>> from layernet.models import class_weight_to_sample_weight
    >>> class_weight_to_sample_weight(np.array([0, 1, 2, 1]), {1: 3.0})
    array([1., 3., 1., 3.])
    """
    if not isinstance(class_weight, dict) or not all(
        is_int(k)
        and isinstance(v, int | float | np.integer | np.floating)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and v >= 0
        for k, v in class_weight.items()
    ):
        raise ValueError(
            f"fit: invalid value for `class_weight`: expected a dict of class index to a "
            f"non-negative weight, received {class_weight!r:.200}."
        )
    y = np.asarray(y)
    if y.ndim > 1:
        y = y.argmax(axis=-1) if y.shape[-1] != 1 else y[..., 0]
    classes = np.round(y.reshape(len(y), -1)[:, 0]).astype(np.int64)
    weights = np.ones(len(classes))
    for k, v in class_weight.items():
        weights[classes == k] = float(v)
    return weights


def _epoch_order(seed: int, epoch: int, n: int, shuffle: bool) -> np.ndarray:
    """The order of the samples in ``epoch``: a function of the seed and the epoch only,
    so that a run resumed at any epoch sees the orders of an uninterrupted one."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)
