r"""The Trainer: ``compile``, ``fit``, ``evaluate`` and ``predict`` for every model.

Training runs the lecture notes' backpropagation: a forward pass through the
chain, the loss :math:`z` and :math:`\partial z/\partial X^L`, then for each
layer from the last to the first ``backward_params`` (giving
:math:`\partial z/\partial w^i`) and ``backward_input`` (giving
:math:`\partial z/\partial X^i`, the next layer's upstream gradient). The first
layer's :math:`\partial z/\partial X^1` is never needed and never computed.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import _random, optimizers, threads
from .. import distributed as _distributed
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .._agreement import (
    describe_compile,
    describe_model,
    evaluate_entries,
    fit_entries,
    predict_entries,
)
from .._ops import Workspace
from .._validation import (
    as_array,
    cast_checked,
    check_bool,
    check_class_weight,
    check_finite,
    check_initial_epoch,
    check_number,
    check_positive_int,
    classes_of_output,
    is_int,
    is_real,
    shape_str,
)
from ..callbacks import (
    Callback,
    History,
    LearningRateScheduler,
    ProgressBar,
    ReduceLROnPlateau,
    TerminateOnNaN,
    _hooked,
    _in_notebook,
    resume_epoch,
)
from ..graph.tensor import is_symbolic as _symbolic_any
from ..layers.calling import added_losses_in_backward
from ..layers.masking_utils import mask_to_sample_weight, masked_compute
from ..losses import Loss, record_loss_call
from .data_adapters import ArrayEpochs, SourceEpochs, array_batches, batch_source
from .loss_trace import LossTrace
from .loss_trace import signature as loss_trace_signature

#: ``_loss_and_dys``'s default: the masks of the last forward pass.
_LAST_FORWARD: Any = object()


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


class Trainer:
    """Training for a model: ``compile``, ``fit``, ``evaluate``, ``predict`` and their steps.

    :class:`~layernet.Model` and :class:`~layernet.Sequential` inherit it. It reaches
    the model only through its public methods (``forward``, ``backward``, ``build``,
    ``compute_output_shape``) and a few hooks the model provides (its parameters for
    the optimizer, its layers' workspaces). ``fit`` calls :meth:`train_step` for
    every batch, so a subclass that overrides it changes ``fit``.

    ``fit``, ``evaluate`` and ``predict`` over arrays each have one loop, which runs
    with a strategy (:class:`layernet.distributed.Strategy`): the one-process
    strategy, or the :class:`~layernet.DataParallel` given as ``distribute=``. The
    loop takes each step's samples through the strategy's ``shard``, the steps
    compute inside its ``gradient_step`` and ``metrics_step`` (which reduce over
    the ranks), ``should_stop`` ends an epoch after ``on_train_batch_end`` and
    ``end_epoch`` follows ``on_epoch_end``; the strategy reaches the model only
    through ``trainable_gradients``, ``state_variables``, ``metrics_variables``,
    ``metrics``, ``get_weights``/``set_weights``, ``optimizer`` and
    ``stop_training``.

    Attributes
    ----------
    optimizer, loss, metrics
        Set by :meth:`compile`.
    history : History or None
        What the last :meth:`fit` recorded.
    epochs_completed : int
        Epochs trained so far (saved in model files): pass it as ``initial_epoch``
        to continue a run.
    distribute_strategy : DataParallel or None
        The strategy of the last ``fit``, ``evaluate`` or ``predict`` given one.
    stop_training : bool
        Set by a callback to end :meth:`fit` after the current batch or epoch.
    """

    def __init__(self) -> None:
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: Loss | None = None
        self._compiled_metrics: list[metrics_mod.Metric] = []
        self._output_losses: list[Any] = []
        self._loss_weights: list[float] = []
        self._output_metrics: list[list[Any]] = []
        self._metric_weighted: list[list[bool]] = []
        self._metric_keys: list[list[str]] = []
        self._last_output_losses: list[float] = []
        self.compiled = False
        self.history: History | None = None
        self.stop_training = False
        self.epochs_completed: int = 0
        self.distribute_strategy: _distributed.DataParallel | None = None

    def compile(
        self,
        optimizer: str | optimizers.Optimizer = "sgd",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: Any = None,
        steps_per_execution: Any = None,
        jit_compile: Any = None,
        auto_scale_loss: Any = None,
    ) -> None:
        """Choose the optimizer, the loss(es) and the metrics (Keras's ``compile``).

        Parameters
        ----------
        optimizer : str or Optimizer, default "sgd"
            ``"sgd"``, ``"adam"`` or an instance such as ``SGD(0.05, momentum=0.9)``.
        loss : str, Loss, callable, list or dict
            One loss for every output, a list with one per output (``None`` for an
            output without a loss) or a dict keyed by output name. Keras's names
            with Keras's definitions: ``"mse"`` (``"mean_squared_error"``),
            ``"mae"``, ``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"``,
            ``"binary_crossentropy"`` (probabilities in, e.g. after a softmax or sigmoid);
            the notes' ``"half_squared_error"`` (:class:`~layernet.MSELoss`) and
            ``"softmax_cross_entropy"`` (logits in); or an instance such as
            ``CategoricalCrossentropy(from_logits=True)``. See :func:`layernet.losses.get`.
            ``None`` when the model's loss comes from ``add_loss`` alone.
        loss_weights : list or dict of float, optional
            Weights :math:`w_k` of the outputs' losses: the loss trained is
            :math:`\\sum_k w_k z_k`. (A list of metric names or objects in this
            place is taken as ``metrics``, layernet's earlier positional order.)
        metrics : list, list of lists, or dict, optional
            Keras's names: ``"accuracy"`` (binary, categorical or sparse chosen from
            the shapes), ``"categorical_accuracy"``, ``"sparse_categorical_accuracy"``,
            ``"binary_accuracy"``, ``"top_k_categorical_accuracy"``,
            ``"sparse_top_k_categorical_accuracy"``, ``"mse"``, ``"mae"``; see
            :mod:`layernet.metrics`. For several outputs, a dict keyed by output name
            or a list with one list per output (a flat list applies to every output).
        weighted_metrics : list, list of lists, or dict, optional
            Metrics weighted by ``fit``'s and ``evaluate``'s ``sample_weight`` (and
            ``class_weight``), as in Keras: ``metrics`` are not weighted. A weighted
            metric whose name a plain one already has logs as ``"weighted_<name>"``.
        run_eagerly, steps_per_execution, jit_compile, auto_scale_loss
            Accepted for Keras compatibility; layernet always runs eagerly.

        Raises
        ------
        ValueError
            An unknown loss, optimizer or metric name; a list of losses or weights of
            another length than the outputs; a dict key that names no output.
        """
        if metrics is None and (
            isinstance(loss_weights, str)
            or (
                isinstance(loss_weights, list | tuple)
                and any(w is not None and not is_real(w) for w in loss_weights)
            )
        ):
            # layernet's earlier order compile(optimizer, loss, metrics): metrics third
            metrics, loss_weights = loss_weights, None
        self.optimizer = optimizers.get(optimizer)
        names = self._output_names_for_compile()
        dtype = self._dtype().name
        per_loss = _per_output(loss, names, "loss")
        self._output_losses = [
            None if entry is None else losses_mod.get(entry, dtype=dtype) for entry in per_loss
        ]
        weights = (
            _per_output(loss_weights, names, "loss_weights")
            if loss_weights is not None
            else [None] * len(names)
        )
        for w in weights:
            if w is not None and not (is_real(w) and math.isfinite(w) and w >= 0):
                raise ValueError(
                    f"compile: invalid value in `loss_weights`: expected non-negative numbers, "
                    f"received {w!r}."
                )
        self._loss_weights = [1.0 if w is None else float(w) for w in weights]
        if metrics is not None and (
            isinstance(metrics, str) or not isinstance(metrics, Sequence | dict)
        ):
            raise ValueError(
                f"compile: invalid value for `metrics`: expected a list, received {metrics!r}."
            )
        if weighted_metrics is not None and (
            isinstance(weighted_metrics, str) or not isinstance(weighted_metrics, Sequence | dict)
        ):
            raise ValueError(
                f"compile: invalid value for `weighted_metrics`: expected a list, received "
                f"{weighted_metrics!r}."
            )
        plain = _metrics_per_output(metrics, names, "metrics")
        weighted = _metrics_per_output(weighted_metrics, names, "weighted_metrics")
        self._output_metrics = [p + w for p, w in zip(plain, weighted, strict=True)]
        self._metric_weighted = [
            [False] * len(p) + [True] * len(w) for p, w in zip(plain, weighted, strict=True)
        ]
        self._metric_keys = _metric_keys(plain, weighted, names)
        self.loss = self._output_losses[0] if len(names) == 1 else None
        self._compiled_metrics = [m for ms in self._output_metrics for m in ms]
        self._compile_metrics_given = metrics is not None or weighted_metrics is not None
        if hasattr(self, "_tracker"):  # the loss trackers of this compile: made when first used
            del self._tracker
        self.compiled = True

    @property
    def output_losses(self) -> list[Any]:
        """The compiled loss of each output (``None`` for an output without one)."""
        return list(self._output_losses)

    @property
    def loss_weights(self) -> list[float]:
        """The compiled weight of each output's loss."""
        return list(self._loss_weights)

    @property
    def output_metrics(self) -> list[list[Any]]:
        """The compiled metrics of each output."""
        return [list(ms) for ms in self._output_metrics]

    @property
    def output_metric_weighting(self) -> list[list[bool]]:
        """For each compiled metric of each output (as :attr:`output_metrics` lists
        them), whether it came from ``weighted_metrics`` (weighted by the sample
        weights) rather than ``metrics``."""
        return [list(ws) for ws in self._metric_weighted]

    def _output_names_for_compile(self) -> list[str]:
        names = getattr(self, "output_names", None)
        return list(names) if names else ["output"]

    def _multi_output(self) -> bool:
        return len(self._output_names_for_compile()) > 1

    def _multi_input(self) -> bool:
        names = getattr(self, "input_names", None)
        return bool(names) and len(names) > 1  # type: ignore[arg-type]

    def _require_compiled(self, fn: str) -> tuple[optimizers.Optimizer, Loss]:
        if self.optimizer is None or not getattr(self, "compiled", False):
            raise RuntimeError(
                f"{type(self).__name__} {self.name!r}: call compile(optimizer, loss) before {fn}()."
            )
        if self.loss is None and not self._multi_output() and self._output_losses != [None]:
            raise RuntimeError(
                f"{type(self).__name__} {self.name!r}: call compile(optimizer, loss) before {fn}()."
            )
        return self.optimizer, self.loss  # type: ignore[return-value]

    def train_step(self, *args: Any) -> Any:
        """One optimisation step on a batch.

        Two forms. Keras's ``train_step(data)`` with ``data = (x, y)`` or
        ``(x, y, sample_weight)``: forward in training mode, the loss, backward,
        one optimizer step, the compiled metrics updated; returns the logs
        (``{"loss": ..., <metric>: ...}``, running means over the epoch). ``fit``
        calls this form for every batch, so a subclass may override it (Keras's
        "customizing what happens in fit"). And layernet's ``train_step(x, y,
        sample_weight=None)``: the same step, returning ``(loss, predictions)``
        of the batch before the step, without touching the metrics.

        Raises
        ------
        RuntimeError
            ``<Model> '...': call compile(optimizer, loss) before train_step().``
        ValueError
            Inputs or targets the model or the loss refuses.
        """
        self._require_compiled("train_step")
        if len(args) == 1:
            x, y, sw = _unpack_data(args[0])
            z, pred = self._train_step(x, y, sw)
            return self._step_logs(z, pred, x, y, sw)
        if len(args) not in (2, 3):
            raise TypeError(
                f"train_step: expected (data) or (x, y[, sample_weight]), received "
                f"{len(args)} arguments."
            )
        return self._train_step(*args)

    def test_step(self, data: Any) -> dict[str, float]:
        """Loss and metrics on one batch without training (Keras's ``test_step``).

        ``data`` is ``(x, y)`` or ``(x, y, sample_weight)``; updates the metrics and
        returns the running logs.
        """
        self._require_compiled("test_step")
        x, y, sw = _unpack_data(data)
        n = _batch_len(x)
        z = 0.0
        logs = None
        strategy = self._running_strategy()
        with strategy.metrics_step(self, n):
            if n or strategy.size == 1:  # (a rank's share may be empty)
                with threads.held():
                    pred = self.forward(_unwrap(x))
                self._last_pred = pred
                z = self._step_loss(x, y, pred, sw, training=False)
                logs = self._update_trackers(z, pred, y, sw, n, x=x)
        if logs is None or strategy.size > 1:
            logs = self._tracker_logs(z, y)
        return logs

    def predict_step(self, data: Any) -> Any:
        """The model's outputs for one batch (Keras's ``predict_step``)."""
        x = data[0] if isinstance(data, tuple) else data
        with threads.held():
            return self.forward(_unwrap(x))

    def reset_metrics(self) -> None:
        """Reset the loss tracker(s) and every compiled metric (done at each epoch's start)."""
        names = self._output_names_for_compile()
        self._tracker = {"loss": np.zeros(2)}  # sum of loss * samples, samples
        losses = getattr(self, "_output_losses", [])
        # as Keras: one tracker per output's loss when more than one output has a loss
        if len(names) > 1 and sum(loss is not None for loss in losses) > 1:
            for name, loss in zip(names, losses, strict=False):
                if loss is not None:
                    self._tracker[f"{name}_loss"] = np.zeros(2)
        for ms in getattr(self, "_output_metrics", []):
            for m in ms:
                m.reset()
        for m in self._own_metrics():
            m.reset_state()

    @property
    def metrics(self) -> list[metrics_mod.Metric]:
        """The compiled metrics (every output's, in order).

        A subclass may override this property to list metric objects of its own
        (Keras's pattern for a ``train_step`` that updates its own trackers): ``fit``,
        ``evaluate`` and :meth:`reset_metrics` reset them at the start of every epoch
        and evaluation, and :meth:`get_metrics_result` reports them.
        """
        return list(getattr(self, "_compiled_metrics", []))

    def _own_metrics(self) -> list[Any]:
        """Metric objects a subclass lists in its own ``metrics`` property (not compiled ones)."""
        if type(self).metrics is Trainer.metrics:
            return []
        compiled = {id(m) for m in getattr(self, "_compiled_metrics", [])}
        return [m for m in self.metrics if id(m) not in compiled and hasattr(m, "reset_state")]

    def get_metrics_result(self) -> dict[str, Any]:
        """The running loss and every metric's result (Keras's ``get_metrics_result``).

        Returns
        -------
        dict of str to float
            ``"loss"`` (and each output's loss, with several), the compiled metrics
            under the names ``fit`` logs, and any metric a subclass lists in its
            ``metrics`` property under its own name.

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> model = ln.Sequential([ln.Input((2,)), ln.Dense(1, seed=0)])
        >>> model.compile("sgd", "mse", metrics=["mae"])
        >>> _ = model.evaluate(np.zeros((4, 2)), np.ones((4, 1)), verbose=0)
        >>> sorted(model.get_metrics_result())
        ['loss', 'mae']
        """
        logs: dict[str, Any] = {}
        for name, t in (getattr(self, "_tracker", None) or {}).items():
            if t[1]:
                logs[name] = float(t[0] / t[1])
        for ms, keys in zip(self._output_metrics, self._metric_keys, strict=True):
            for m, key in zip(ms, keys, strict=True):
                logs[key] = _result(m)
        for m in self._own_metrics():
            logs[m.name] = _result(m)
        return logs

    @property
    def metrics_names(self) -> list[str]:
        """The names of Keras's metric trackers, as Keras 3 lists them.

        ``"loss"`` once compiled, then ``"compile_metrics"`` (Keras's one container
        of the compiled metrics) when ``compile`` was given ``metrics`` or
        ``weighted_metrics``, then, once the model has trained or been evaluated and
        more than one output has a loss, ``"<output>_loss"`` per such output. The
        metrics themselves are ``model.metrics``; the names each epoch logs are the
        keys of ``fit``'s :class:`~layernet.History`.

        Returns
        -------
        list of str

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> model = ln.Sequential([ln.Input((2,)), ln.Dense(1, seed=0)])
        >>> model.metrics_names
        []
        >>> model.compile("sgd", "mse", metrics=["mae"])
        >>> model.metrics_names
        ['loss', 'compile_metrics']
        """
        if not self.compiled:
            return []
        names = ["loss"]
        if getattr(self, "_compile_metrics_given", False):
            names.append("compile_metrics")
        tracker = getattr(self, "_tracker", None)
        return names + [k for k in tracker or {} if k != "loss"]

    @property
    def metrics_variables(self) -> list[np.ndarray]:
        """Every metric state array, as Keras's ``metrics_variables``: the loss trackers'
        (``[sum of loss * samples, samples]``, one for the loss and one per output's loss),
        then each compiled metric's :attr:`~layernet.metrics.Metric.variables`.

        All are sums over the batches since :meth:`reset_metrics` (the arrays
        themselves, assignable in place): a data-parallel strategy sums the ranks'
        changes to them in each step.
        """
        if getattr(self, "_tracker", None) is None:
            self.reset_metrics()
        return [
            *self._tracker.values(),
            *(v for ms in self._output_metrics for m in ms for v in m.variables),
        ]

    @property
    def trainable_gradients(self) -> list[np.ndarray]:
        """The gradient arrays of the weights an optimizer step updates, in its order.

        Set by the last training step's backward pass (the arrays themselves,
        assignable in place): a data-parallel strategy replaces them by the
        global batch's before the update.
        """
        return [g for _, g in self._step_params().values()]

    @property
    def state_variables(self) -> list[np.ndarray]:
        """Every layer's ``state`` arrays, each once: the values a
        training-mode forward pass may change besides the weights (``BatchNorm``'s
        moving mean and variance, say). The arrays themselves, assignable in place:
        a data-parallel strategy averages the ranks' changes to them in each step."""
        seen: set[int] = set()
        out: list[np.ndarray] = []
        for layer in self._every_layer():
            for v in layer.state.values():
                if id(v) not in seen:
                    seen.add(id(v))
                    out.append(v)
        return out

    def _step_logs(self, z: float, pred: Any, x: Any, y: Any, sw: Any) -> dict[str, float]:
        """Add a training batch to the trackers and metrics (summed over the ranks under
        a data-parallel strategy) and return the running logs."""
        n = _batch_len(x)
        logs = None
        strategy = self._running_strategy()
        with strategy.metrics_step(self, n):
            if n or strategy.size == 1:  # (a rank's share may be empty)
                logs = self._update_trackers(z, pred, y, sw, n, x=x)
        if logs is None or strategy.size > 1:
            logs = self._tracker_logs(z, y)
        return logs

    def _update_trackers(
        self, z: float, pred: Any, y: Any, sw: Any, n: int, x: Any = None
    ) -> dict[str, float]:
        """Add a batch's loss to the loss tracker(s), update the compiled metrics
        (through :meth:`compute_metrics`) and return the running logs."""
        tracker = getattr(self, "_tracker", None)
        if tracker is None:
            self.reset_metrics()
            tracker = self._tracker
        t = tracker["loss"]
        t[0] += z * n
        t[1] += n
        names = self._output_names_for_compile()
        multi = len(names) > 1
        if multi and not self._overrides_compute_loss():
            for k, name in enumerate(names):
                tk = tracker.get(f"{name}_loss")
                if tk is None:  # no loss, or the only output with one
                    continue
                tk[0] += self._last_output_losses[k] * n
                tk[1] += n
        logs = {"loss": float(t[0] / t[1]) if t[1] else float("nan")}
        if multi:
            for name in names:
                tk = tracker.get(f"{name}_loss")
                if tk is not None and tk[1]:
                    logs[f"{name}_loss"] = float(tk[0] / tk[1])
        if self._output_metrics_present() or self._overrides_compute_metrics():
            metric_logs = self.compute_metrics(x, y, pred, sw)
            logs.update({k: v for k, v in metric_logs.items() if k != "loss"})
        if not math.isfinite(z):
            logs["loss"] = z
        return logs

    def _output_metrics_present(self) -> bool:
        """Whether any output has a compiled metric."""
        return any(self._output_metrics)

    def _overrides_compute_metrics(self) -> bool:
        """Whether a subclass (or the instance) overrides :meth:`compute_metrics` (then it
        is always called; the default one, with no compiled metric, adds nothing to the
        logs)."""
        return (
            type(self).compute_metrics is not Trainer.compute_metrics
            or "compute_metrics" in self.__dict__
        )

    def _tracker_logs(self, z: float, y: Any) -> dict[str, float]:
        """The running logs: the loss tracker(s) and the compiled metrics' results."""
        if getattr(self, "_tracker", None) is None:
            self.reset_metrics()
        tracker = self._tracker
        t = tracker["loss"]
        logs = {"loss": float(t[0] / t[1]) if t[1] else float("nan")}
        names = self._output_names_for_compile()
        multi = len(names) > 1
        ys = _as_list(y, names) if multi or isinstance(y, _Multi) else [y]
        if multi:
            for name in names:
                tk = tracker.get(f"{name}_loss")
                if tk is not None and tk[1]:
                    logs[f"{name}_loss"] = float(tk[0] / tk[1])
        for k, ms in enumerate(self._output_metrics):
            if ys[k] is None:
                continue
            for m, key in zip(ms, self._metric_keys[k], strict=True):
                logs[key] = _result(m)
        if not math.isfinite(z):
            logs["loss"] = z
        return logs

    def compute_metrics(
        self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None
    ) -> dict[str, float]:
        """Update the compiled metrics with a batch and return their results (Keras's).

        The default train and test steps call it after the loss, so a subclass may
        override it. Where the model's output carries a mask (see
        :meth:`compute_loss`), each metric that averages per-entry values
        (:class:`~layernet.metrics.MeanMetricWrapper` and its subclasses, the
        accuracies for instance) counts only the unmasked entries, as Keras's
        ``apply_mask`` with the ``"sum"`` reduction: the mask joins the sample
        weights.

        Parameters
        ----------
        x : array or list of arrays
            The batch's inputs (unused by the default).
        y : array, list or dict of arrays
            The targets.
        y_pred : array or list of arrays
            The model's outputs for the batch.
        sample_weight : array, optional

        Returns
        -------
        dict of str to float
            The running loss (``"loss"``, when a step has run) and every metric's
            result, keyed as in the logs of ``fit``.

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> model = ln.Sequential([ln.Input((2,)), ln.Dense(1, seed=0)])
        >>> model.compile("sgd", "mse", metrics=["mae"])
        >>> model.reset_metrics()
        >>> logs = model.compute_metrics(None, np.zeros((4, 1)), np.full((4, 1), 0.5))
        >>> logs["mae"]
        0.5
        """
        names = self._output_names_for_compile()
        multi = len(names) > 1
        preds = y_pred if multi else [y_pred]
        ys = _as_list(y, names) if multi or isinstance(y, _Multi) else [y]
        masks = self._masks_for(y_pred)
        tracker = getattr(self, "_tracker", None)
        logs: dict[str, float] = {}
        if tracker is not None and tracker["loss"][1]:
            logs["loss"] = float(tracker["loss"][0] / tracker["loss"][1])
        for k, ms in enumerate(self._output_metrics):
            mask = None if masks is None else masks[k]
            if ys[k] is None:
                continue
            keys, weighted = self._metric_keys[k], self._metric_weighted[k]
            for m, key, weigh in zip(ms, keys, weighted, strict=True):
                w = sample_weight if weigh else None  # Keras weighs only `weighted_metrics`
                if mask is not None and isinstance(m, metrics_mod.MeanMetricWrapper):
                    w = mask_to_sample_weight(mask, w, reduction="sum")
                m.update(preds[k], ys[k], w)
                logs[key] = _result(m)
        return logs

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
    ) -> Any:
        """One training step on one batch; the batch's loss (and metrics), as Keras.

        Returns
        -------
        float, list of float or dict
            The loss (and metrics) of this batch: a float without metrics,
            ``[loss, *metrics]`` with them, a dict with ``return_dict=True``.
        """
        self._require_compiled("train_on_batch")
        x, y = self._batch_arrays(x, y, "train_on_batch")
        if sample_weight is not None:
            sample_weight = metrics_mod.check_sample_weight(
                sample_weight, _batch_len(x), "train_on_batch", per_step=True
            )
        if class_weight is not None:
            sample_weight = class_weight_to_sample_weight(np.asarray(y), class_weight)
        self.reset_metrics()
        with self._strategy_scope(_distributed.resolve(None, "train_on_batch")):  # one process
            logs = self.train_step(_packed(x, y, sample_weight))
        return _logs_result(logs, return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Loss (and metrics) of one batch without training, as Keras."""
        self._require_compiled("test_on_batch")
        x, y = self._batch_arrays(x, y, "test_on_batch")
        if sample_weight is not None:
            sample_weight = metrics_mod.check_sample_weight(
                sample_weight, _batch_len(x), "test_on_batch", per_step=True
            )
        self.reset_metrics()
        with self._strategy_scope(_distributed.resolve(None, "test_on_batch")):  # one process
            logs = self.test_step(_packed(x, y, sample_weight))
        return _logs_result(logs, return_dict)

    def predict_on_batch(self, x: Any) -> Any:
        """The model's outputs for one batch (inference mode)."""
        return self.predict_step(self._batch_arrays(x, None, "predict_on_batch")[0])

    def _batch_arrays(self, x: Any, y: Any, fn: str) -> tuple[Any, Any]:
        if self._multi_input() or isinstance(x, dict):
            x = _Multi(self._input_list(x, fn))
        else:
            x = as_array(x, fn, "x")
        if y is not None:
            if self._multi_output() or isinstance(y, dict):
                y = _Multi(_as_list(y, self._output_names_for_compile()))
            else:
                y = as_array(y, fn, "y")
        if not self.built and not isinstance(x, _Multi):
            self.build((None, *x.shape[1:]))
        return x, y

    def _input_list(self, x: Any, fn: str) -> list[np.ndarray]:
        names = list(getattr(self, "input_names", None) or ["input"])
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            if missing:
                raise ValueError(
                    f"{fn}: `x` has no entry for input(s) {missing}; its keys are {sorted(x)}."
                )
            arrays = [x[n] for n in names]
        elif isinstance(x, list | tuple):
            if len(x) != len(names):
                raise ValueError(
                    f"{fn}: expected {len(names)} input arrays {names}, received {len(x)}."
                )
            arrays = list(x)
        else:
            raise ValueError(
                f"{fn}: the model takes {len(names)} inputs {names}; pass a list or a dict by "
                f"input name, received {type(x).__name__}."
            )
        out = []
        for name, a in zip(names, arrays, strict=True):
            a = as_array(a, fn, f"x[{name!r}]")
            out.append(a)
        n = {len(a) for a in out}
        if len(n) > 1:
            raise ValueError(
                f"{fn}: the input arrays have different numbers of samples: "
                f"{[len(a) for a in out]}."
            )
        return out

    def _train_step(
        self, x: Any, y: Any, sample_weight: np.ndarray | None = None
    ) -> tuple[float, Any]:
        optimizer, _ = self._require_compiled("train_step")
        pred = None
        # the strategy reduces the gradients (and the loss) over its processes when the
        # block ends, before the update; in one process it changes nothing
        strategy = self._running_strategy()
        with threads.held():  # BLAS set back to the budget once, after the step
            with strategy.gradient_step(self, _batch_len(x)) as step:
                if step.size or strategy.size == 1:  # (a rank's share may be empty)
                    step.loss, pred = self._compute_gradients(x, y, sample_weight)
            z = step.loss
            if math.isfinite(z):  # never apply a non-finite step
                optimizer.step(self._step_params())
                self.apply_constraints()
        return z, pred

    def _loss_dtype(self, fn: str) -> np.dtype:
        loss = self._require_compiled(fn)[1]
        return loss.dtype if loss is not None else self._dtype()

    def _penalized_layers(self) -> list[Any]:
        """Layers with weight regularizers (their penalties enter the loss, as in Keras)."""
        return [layer for layer in self._every_layer() if layer.param_regularizers]

    def activity_penalty(self) -> float:
        """The activity regularizers' penalty of the last forward pass (0 without any)."""
        return 0.0

    def apply_constraints(self) -> None:
        """Project every constrained weight after an update (Keras's constraints)."""
        for layer in self._every_layer():
            if layer.param_constraints:
                layer.apply_constraints()

    def _loss_and_dys(
        self,
        pred: Any,
        y: Any,
        sample_weight: Any,
        need_dys: bool = True,
        masks: Any = _LAST_FORWARD,
    ) -> tuple[float, Any]:
        """The compiled loss and its gradient with respect to the output(s).

        ``masks``: the outputs' masks (a list, ``None`` entries for none); by default
        those of the last forward pass when ``pred`` is its output (see
        :meth:`compute_loss`).
        """
        if masks is _LAST_FORWARD:
            masks = self._masks_for(pred)
        if not self._multi_output():
            if isinstance(y, _Multi):
                y = y.arrays[0]
            loss = self._output_losses[0]
            if loss is None:  # the loss comes from add_loss alone
                return 0.0, (np.zeros_like(pred) if need_dys else None)
            z = self._output_loss(loss, pred, y, sample_weight, None if masks is None else masks[0])
            g = self._output_grad(loss, pred) if need_dys and math.isfinite(z) else None
            w = self._loss_weights[0] if self._loss_weights else 1.0
            if w != 1.0:  # Keras weighs a single output's loss too
                z = z * w
                g = None if g is None else g * np.asarray(w, dtype=g.dtype)
            return z, g
        names = self._output_names_for_compile()
        ys = _as_list(y, names)
        total = 0.0
        dys: list[Any] = []
        per: list[float] = []
        for k, loss in enumerate(self._output_losses):
            if loss is None or ys[k] is None:
                per.append(0.0)
                dys.append(None)
                continue
            mk = None if masks is None else masks[k]
            zk = self._output_loss(loss, pred[k], ys[k], sample_weight, mk)
            w = self._loss_weights[k]
            per.append(float(zk))
            total += w * zk
            if need_dys and math.isfinite(zk):
                g = self._output_grad(loss, pred[k])
                dys.append(g if w == 1.0 else g * np.asarray(w, dtype=g.dtype))
            else:
                dys.append(None)
        self._last_output_losses = per
        return float(total), dys

    def _output_loss(self, loss: Any, pred: Any, y: Any, sample_weight: Any, mask: Any) -> float:
        """One output's compiled loss (its mask applied as Keras's ``apply_mask``)."""
        if mask is None and np.ndim(sample_weight) >= 2:
            # one weight per time step: weights as an all-true mask's (Keras's temporal weights)
            w = np.asarray(sample_weight)
            lead = w.shape[:-1] if w.shape[-1] == 1 else w.shape
            if len(lead) >= np.ndim(pred) or np.shape(pred)[: len(lead)] != lead:
                raise ValueError(
                    f"{loss.owner}: expected `sample_weight` of shape {shape_str(lead[:1])} (one "
                    f"weight per sample) or a leading part of the prediction's shape "
                    f"{shape_str(np.shape(pred)[:-1])} (one per time step), received shape "
                    f"{shape_str(w.shape)}."
                )
            mask = np.ones(lead, bool)
            sample_weight = w.reshape(lead)
        if mask is None:
            # (weights passed only when given: a loss's own forward(x, t) keeps working)
            return (
                loss.forward(pred, y)
                if sample_weight is None
                else loss.forward(pred, y, sample_weight=sample_weight)
            )
        z, saved = masked_compute(loss, pred, y, mask, sample_weight)
        loss.saved = saved
        return float(z)

    @staticmethod
    def _output_grad(loss: Any, pred: Any) -> np.ndarray:
        g = loss.backward_input()
        return g if np.shape(g) == np.shape(pred) else np.reshape(g, np.shape(pred))

    def _output_masks(self) -> list[Any] | None:
        """The masks of the outputs of the last forward pass (``None`` when none has one)."""
        saved = getattr(self, "saved", None)
        tape = getattr(saved, "tape", None)
        graph = getattr(self, "_graph", None)
        if graph is not None and tape is not None and hasattr(tape, "masks"):
            masks = [tape.masks.get(id(t)) for t in graph.outputs]
        else:
            masks = [getattr(self, "_output_mask", None)]
        return masks if any(m is not None for m in masks) else None

    def _masks_for(self, pred: Any) -> list[Any] | None:
        """The outputs' masks when ``pred`` is the output of the last forward pass (Keras
        reads a mask from the prediction tensor itself)."""
        masks = self._output_masks()
        if masks is None:
            return None
        last = getattr(self, "_last_pred", None)
        if last is None:
            return None
        if isinstance(pred, list | tuple):
            same = isinstance(last, list | tuple) and all(
                a is b for a, b in zip(pred, last, strict=False)
            )
        else:
            same = pred is last
        if not same:
            return None
        for m, p in zip(masks, pred if isinstance(pred, list | tuple) else [pred], strict=False):
            if m is not None and np.shape(m) != np.shape(p)[: np.ndim(m)]:
                return None
        return masks

    def _extra_loss(self) -> tuple[float, list[Any], list[float]]:
        """What the model adds to its compiled loss: (total, penalized layers, added losses)."""
        penalized = self._penalized_layers()
        added = self.losses  # losses the layers added with add_loss in this forward
        extra = self.activity_penalty() + sum(layer.regularization_penalty() for layer in penalized)
        if added:
            extra = extra + float(sum(added))
        return float(extra), penalized, added

    def _overrides_compute_loss(self) -> bool:
        """Whether a subclass overrides :meth:`compute_loss` (it is then traced)."""
        return type(self).compute_loss is not Trainer.compute_loss

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        r"""The total loss of a batch: the compiled losses plus the added ones (Keras 3's).

        The default train and test steps (so ``fit``, ``evaluate``,
        ``train_on_batch`` and ``test_on_batch``) get the loss from this method,
        so a subclass that overrides it changes what the model trains on and
        what ``evaluate`` reports. An override is traced: layernet calls it once
        per input signature with symbolic tensors (:class:`~layernet.graph.KerasTensor`)
        for ``x``, ``y``, ``y_pred`` and ``sample_weight``, and records the
        :mod:`layernet.ops` ops, loss objects and layer or model calls it makes,
        to run them and their derivatives every step (see
        :class:`~layernet.training.loss_trace.LossTrace`). While tracing, ``model.losses`` holds
        one symbolic scalar standing for the sum of the added losses and weight
        penalties, so ``ops.sum(self.losses)`` adds them.

        Parameters
        ----------
        x : array or list of arrays, optional
            The batch's inputs.
        y : array, list or dict of arrays, optional
            The targets.
        y_pred : array or list of arrays
            The model's outputs for the batch.
        sample_weight : array, optional
            Per-sample weights.
        training : bool, default True
            Whether the loss is computed for a training step (an override may
            leave this argument out, as Keras allows).

        Returns
        -------
        float or KerasTensor
            :math:`\sum_k w_k z_k + \sum_j L_j`: each output's compiled loss
            :math:`z_k` times its ``loss_weights`` entry, plus the losses added
            with ``add_loss`` and the weight and activity penalties (on symbolic
            inputs, the symbolic loss).

        Notes
        -----
        When the model's output carries a mask (``Embedding(mask_zero=True)`` or
        ``Masking`` followed by layers that pass it on), each compiled loss counts
        only the unmasked entries, as Keras's ``apply_mask``: with :math:`T`
        entries of which :math:`V` are unmasked, entry :math:`i` gets the weight
        :math:`s_i m_i T/V` (``"sum_over_batch_size"`` and ``"mean"``) or
        :math:`s_i m_i` (``"sum"``), so the mean loss is the mean over the unmasked
        entries and masked ones get no gradient.

        Examples
        --------
        >>> import layernet as ln
        >>> import numpy as np
        >>> class MyModel(ln.Model):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.dense = ln.Dense(1, seed=0)
        ...     def call(self, x):
        ...         return self.dense(x)
        ...     def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
        ...                      training=True):
        ...         return ln.ops.mean((y_pred - y) ** 2) + ln.ops.sum(self.losses)
        >>> model = MyModel()
        >>> model.compile(optimizer="sgd")
        >>> x = np.ones((4, 3), "float32")
        >>> history = model.fit(x, np.zeros((4, 1), "float32"), epochs=2, verbose=0)
        >>> len(history.history["loss"])
        2
        """
        if _symbolic_any(y_pred):
            return self._symbolic_compiled_loss(y, y_pred, sample_weight)
        z, _ = self._loss_and_dys(y_pred, y, sample_weight, need_dys=False)
        return z + self._extra_loss()[0]

    def _symbolic_compiled_loss(self, y: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The default :meth:`compute_loss` recorded on symbolic tensors (inside a trace)."""
        names = self._output_names_for_compile()
        multi = len(names) > 1
        preds = list(y_pred) if multi else [y_pred]
        ys = _as_list(y, names) if multi else [y]
        masks = self.__dict__.get("_traced_masks")
        total: Any = None
        for k, loss in enumerate(self._output_losses):
            if loss is None or ys[k] is None:
                continue
            mk = None if masks is None else masks[k]
            term = record_loss_call(loss, ys[k], preds[k], sample_weight, mk)
            w = self._loss_weights[k]
            term = term if w == 1.0 else term * w
            total = term if total is None else total + term
        for extra in self.losses:
            total = extra if total is None else total + extra
        return 0.0 if total is None else total

    def _loss_trace(
        self, x: Any, y: Any, pred: Any, sw: Any, masks: Any, has_extra: bool, training: bool
    ) -> LossTrace:
        x, y = _unwrap(x), (y.arrays if isinstance(y, _Multi) else y)
        if isinstance(y, list) and len(y) == 1 and not self._multi_output():
            y = y[0]
        key = loss_trace_signature(x, y, pred, sw, masks, has_extra, training)
        cache = self.__dict__.setdefault("_loss_traces", {})
        trace = cache.get(key)
        if trace is None:
            trace = LossTrace(self, x, y, pred, sw, masks, has_extra, training)
            cache[key] = trace
        return trace

    def _traced_loss(
        self, x: Any, y: Any, pred: Any, sw: Any, training: bool, need_grads: bool
    ) -> tuple[float, Any, float, float]:
        """Run the traced override of :meth:`compute_loss`: ``(z, dys, c, extra)``."""
        masks = self._masks_for(pred)
        extra, penalized, added = self._extra_loss()
        has_extra = bool(added) or bool(penalized) or extra != 0.0
        trace = self._loss_trace(x, y, pred, sw, masks, has_extra, training)
        if need_grads:
            for layer in trace.layers:
                layer.zero_grad()
        yv = y.arrays if isinstance(y, _Multi) else y
        if isinstance(yv, list) and len(yv) == 1 and not self._multi_output():
            yv = yv[0]
        z, grads, c = trace.run(_unwrap(x), yv, pred, sw, masks, extra, training, need_grads)
        dys: Any = grads
        if grads is not None and not isinstance(pred, list):
            dys = grads[0]
        return z, dys, c, extra

    def _step_loss(self, x: Any, y: Any, pred: Any, sw: Any, training: bool) -> float:
        """The loss of a batch without gradients (the test step's)."""
        if self._overrides_compute_loss():
            return self._traced_loss(x, y, pred, sw, training, need_grads=False)[0]
        z, _ = self._loss_and_dys(pred, y, sw, need_dys=False)
        return z + self._extra_loss()[0]  # Keras's test step counts added losses too

    def _compute_gradients(
        self, x: Any, y: Any, sample_weight: np.ndarray | None = None
    ) -> tuple[float, Any]:
        """Forward, loss and backward on a batch: the loss and the predictions, with each
        trainable layer's ``grads`` set to this batch's (left alone if the loss is not finite)."""
        self._require_compiled("train_step")
        scratch = self._in_place_layers()
        for layer in scratch:  # a plain flag: set without the attribute tracking's call
            layer.__dict__["overwrite_inputs"] = True
        try:
            pred = self.forward(_unwrap(x), training=True)
            self.__dict__["_last_pred"] = pred  # a plain attribute: no tracking to do
            if self._overrides_compute_loss():
                return self._custom_gradients(x, y, pred, sample_weight), pred
            z, dys = self._loss_and_dys(pred, y, sample_weight)
            penalized = self._penalized_layers()
            added = self.losses  # losses the layers added with add_loss in this forward
            z = (
                z
                + self.activity_penalty()
                + sum(layer.regularization_penalty() for layer in penalized)
            )
            if added:
                z = z + float(sum(added))
            if math.isfinite(z):
                if added:
                    with added_losses_in_backward():  # their gradients join the loss's
                        self.backward(dys, accumulate=False)
                else:
                    self.backward(dys, accumulate=False)
                for layer in penalized:  # ∂(weight penalties)/∂θ, added to the loss's
                    layer.add_regularization_grads()
        finally:
            for layer in scratch:
                layer.__dict__["overwrite_inputs"] = False
        return z, pred

    def _custom_gradients(self, x: Any, y: Any, pred: Any, sw: Any) -> float:
        r"""Gradients of an overridden :meth:`compute_loss`: its traced graph backward, then the
        model's backward from :math:`\partial L/\partial \hat y`, the added losses' gradients
        scaled by :math:`c = \partial L/\partial(\sum \text{losses})`."""
        self.zero_grad()
        z, dys, c, _ = self._traced_loss(x, y, pred, sw, training=True, need_grads=True)
        if dys is None:
            return z
        penalized = self._penalized_layers()
        added = self.losses
        if c == 0.0:
            self.backward(dys, accumulate=True)
            if self.activity_penalty():  # the loss leaves the penalties out: so do their grads
                self._remove_activity_grads(dys)
            return z
        # The model's own pass runs with dys / c and the added losses at weight 1, then is
        # scaled by c (linear), leaving the traced loss's parameter gradients as they were.
        params = self._step_params()
        kept = {k: g.copy() for k, (_, g) in params.items()}
        for _, g in params.values():
            g[...] = 0
        scaled = dys if c == 1.0 else _scale(dys, 1.0 / c)
        if added:
            with added_losses_in_backward():
                self.backward(scaled, accumulate=True)
        else:
            self.backward(scaled, accumulate=True)
        for layer in penalized:
            layer.add_regularization_grads()
        for k, (_, g) in params.items():
            if c != 1.0:
                g *= np.asarray(c, dtype=g.dtype)
            g += kept[k]
        return z

    def _remove_activity_grads(self, dys: Any) -> None:
        """Subtract the activity penalties' share of the gradients (a backward pass from a
        zero upstream gradient gives exactly that share, the passes being linear)."""
        params = self._step_params()
        total = {k: g.copy() for k, (_, g) in params.items()}
        for _, g in params.values():
            g[...] = 0
        if isinstance(dys, list):
            zeros: Any = [None if d is None else np.zeros_like(d) for d in dys]
        else:
            zeros = np.zeros_like(dys)
        self.backward(zeros, accumulate=True)
        for k, (_, g) in params.items():
            g[...] = total[k] - g

    def _takes_integers(self) -> bool:
        """Whether the model's (first) input takes integer ids (an Embedding, an int Input)."""
        return False

    def _in_place_layers(self) -> list[Any]:
        """Layers that may overwrite their inputs in a training step (none by default)."""
        return []

    def _check_x(self, x: Any, fn: str, arg: str = "x") -> np.ndarray:
        x = as_array(x, fn, arg)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"{fn}: `{arg}` is empty (shape {shape_str(x.shape)}); expected at "
                f"least one sample."
            )
        if not (x.dtype.kind in "iu" and self._takes_integers()):
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
        # the output shape of these layers for this input shape, kept for a model made of
        # layers (fit asks on every call); a subclassed model's call may branch: asked anew
        if getattr(self, "is_subclassed", False):
            out = self.compute_output_shape((len(y), *shape))
        else:
            key = (tuple(self._every_layer()), len(y), *shape)
            kept = self.__dict__.setdefault("_target_shapes", {})
            out = kept.get(key)
            if out is None:
                if len(kept) >= 4:  # (training and validation shapes, of a few models' layers)
                    kept.clear()
                out = kept[key] = self.compute_output_shape((len(y), *shape))
        _, loss = self._require_compiled(fn)
        if loss is None:  # the loss is computed by compute_loss or add_loss: any targets
            return np.asarray(y)
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
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: np.ndarray | None = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int = 1,
        *,
        seed: int | None = None,
        distribute: _distributed.DataParallel | None = None,
    ) -> History:
        r"""Train for ``epochs`` passes over the data with mini-batch steps (Keras's ``fit``).

        The arguments are Keras's, in Keras's order; layernet's own (``seed``,
        ``distribute``) are keyword-only.

        Parameters
        ----------
        x : ndarray, list or dict of ndarray, or a source of batches
            Inputs: an array (one input), a list or a dict by input name (several),
            or a source of batches: a Python generator or iterator yielding
            ``(x, y)`` or ``(x, y, sample_weight)`` (finite, or infinite with
            ``steps_per_epoch``), or a :class:`~layernet.utils.PyDataset`.
        y : ndarray, list or dict of ndarray
            Targets: integer labels ``(n_samples,)`` or rows matching the
            model's output, as the loss expects; a list or dict by output name
            for several outputs. Never broadcast. Not given with a source of
            batches, nor when the loss comes from ``add_loss`` alone.
        batch_size : int, optional
            Default 32 (as in Keras). With ``distribute``, the global batch, split
            between the ranks.
        epochs : int, default 1
            The index of the last epoch: training runs epochs ``initial_epoch``
            to ``epochs - 1`` (Keras' convention).
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
        steps_per_epoch : int, optional
            Batches per epoch from a source of batches (needed for an infinite one);
            with arrays, the epoch ends after this many batches.
        validation_steps : int, optional
            Batches of a validation source used per evaluation.
        validation_freq : int, default 1
            Evaluate the validation data after every ``validation_freq``-th epoch.
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
            arguments. It takes every ``x`` that ``fit`` takes. Arrays, and lists
            or dicts of arrays for several inputs and outputs: each rank trains on
            its contiguous share of every global batch (the same rows of every
            array). Generators, iterators and PyDatasets (as ``validation_data``
            too): every rank reads its own copy of the source, which must yield
            the same batches in the same order, and trains on its share of each
            batch; ranks whose batches differ in shape, or whose sources end at
            different batches, all raise :class:`~layernet.DataParallelError`
            naming the batch. With one rank, or None, this is the one-process ``fit``.

        Returns
        -------
        History
            ``history.history`` maps ``"loss"``, each metric (and, for several
            outputs, each output's loss and metrics), sorted by name, then their
            ``"val_*"`` values, to per-epoch lists, as Keras does. A
            :class:`~layernet.LearningRateScheduler` or
            :class:`~layernet.ReduceLROnPlateau` adds ``"learning_rate"``.

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
        DataParallelError
            With ``distribute``, on every rank: ranks given different arguments,
            models or data, or sources that yield different batches (the message
            names the batch and each rank's shapes).
        """
        self._require_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        self._check_fit_arguments(epochs, batch_size, verbose, shuffle, seed, validation_split)
        _check_callbacks_argument(callbacks)
        initial_epoch = check_initial_epoch(initial_epoch, epochs, "fit")
        check_positive_int(validation_freq, "validation_freq", "fit")
        if steps_per_epoch is not None:
            check_positive_int(steps_per_epoch, "steps_per_epoch", "fit")
        if validation_steps is not None:
            check_positive_int(validation_steps, "validation_steps", "fit")
        strategy = _distributed.resolve(distribute, "fit")
        source = batch_source(x)
        if source is not None:
            if y is not None:
                raise ValueError(
                    "fit: `y` must not be given when `x` is a generator or PyDataset (it "
                    "yields the targets)."
                )
            with self._strategy_scope(strategy):
                return self._fit_source(
                    source,
                    epochs,
                    verbose,
                    callbacks,
                    validation_data,
                    initial_epoch,
                    steps_per_epoch,
                    validation_steps,
                    validation_freq,
                    class_weight,
                    x=x,
                    seed=seed,
                )
        if x is None:
            raise ValueError("fit: `x` is required: the training inputs.")
        if self._structured(x, y) or y is None:
            x, y, sw, val = self._fit_multi(
                x, y, validation_data, validation_split, sample_weight, class_weight, seed
            )
            first = _unwrap(x)
            if not self.built and not isinstance(first, list):  # a subclassed model
                self.build((None, *first.shape[1:]))
        else:
            x, y, val_xy = self._fit_data(x, y, validation_data, validation_split, seed)
            if class_weight is not None:
                out_shape = self.compute_output_shape((None, *x.shape[1:]))
                check_class_weight(class_weight, classes_of_output(out_shape), "fit")
            x, y, sw, val = self._fit_weights(
                x, y, val_xy, sample_weight, class_weight, validation_data
            )
        base = seed if seed is not None else int(_random.generator().integers(2**63))
        # the strategy's first step: one small collective in which every rank checks it
        # was given the same model, compile settings and arguments (or every rank raises
        # the same error naming what differs); then every rank starts from rank 0's state
        strategy.agree(
            "fit",
            lambda: {
                **fit_entries(
                    self._named_arrays(x, "x"),
                    self._named_arrays(y, "y"),
                    epochs=epochs,
                    batch_size=batch_size,
                    shuffle=shuffle,
                    seed=seed,
                    initial_epoch=initial_epoch,
                    validation_split=validation_split,
                    validation_data=validation_data,
                    sample_weight=sample_weight,
                    class_weight=class_weight,
                ),
                **describe_model(self),
                **describe_compile(self),
                "metrics state": [v.shape for v in self.metrics_variables],
            },
        )
        base = strategy.begin_fit(self, base)
        if isinstance(strategy, _distributed.DataParallel):
            self.distribute_strategy = strategy
            verbose = verbose if strategy.is_root else 0
        # the data path: each step, this process's share of the next global batch
        data = ArrayEpochs(
            x,
            y,
            sw,
            batch_size,
            seed=base,
            shuffle=shuffle,
            steps_per_epoch=steps_per_epoch,
            shard=strategy.shard,
        )
        history = History()
        cbs = self._callback_list(history, callbacks, verbose, epochs, data.steps)
        self._check_callback_logs(cbs, validation=val is not None)
        self.stop_training = False
        self.history = history
        validate = None
        if val is not None:
            vx, vy, vw = val
            validate = functools.partial(self._validate, vx, vy, vw, max(batch_size, 256))
        with self._strategy_scope(strategy):
            self._fit_epochs(data, validate, cbs, epochs, initial_epoch, validation_freq)
        return history

    def _fit_epochs(
        self,
        data: ArrayEpochs | SourceEpochs,
        validate: Any,
        cbs: list[Callback],
        epochs: int,
        initial_epoch: int,
        validation_freq: int,
    ) -> None:
        """The epoch loop of ``fit``: the same over arrays and sources of batches, in one
        process and on every rank of a data-parallel run (the running strategy's calls)."""
        strategy = self._running_strategy()
        # Scratch buffers belong to this run: one workspace per layer for training and one
        # for validation (batches of another size), dropped when the run ends.
        train_ws = self._new_workspaces()
        val_ws = self._new_workspaces()
        try:
            for c in cbs:
                c.on_train_begin({})
            # a BackupAndRestore that found an interrupted run's backup resumes it
            initial_epoch = resume_epoch(cbs, initial_epoch)
            for epoch in range(initial_epoch, epochs):
                for c in cbs:
                    c.on_epoch_begin(epoch, {})
                with self._workspaces(train_ws):
                    logs, steps = self._train_epoch(data.batches(epoch), cbs)
                if data.steps is None:  # a generator's length is known once it is read
                    for c in cbs:
                        if isinstance(c, ProgressBar):
                            c.params["steps"] = steps
                data.end_epoch()
                # as Keras: the training values by name, then the validation ones by name;
                # a learning-rate callback adds "learning_rate" in its on_epoch_end
                logs = dict(sorted(logs.items()))
                if validate is not None and (epoch + 1) % validation_freq == 0:
                    # (also after a stop mid-epoch: callbacks expect val_* logs)
                    with self._workspaces(val_ws):
                        logs.update(sorted(validate().items()))
                self.epochs_completed = epoch + 1
                for c in cbs:
                    c.on_epoch_end(epoch, logs)
                strategy.end_epoch(self)
                if self.stop_training:
                    break
            self._finalize_optimizer()
            for c in cbs:
                c.on_train_end({})
        finally:
            self.clear_saved()  # what backward kept points into the run's buffers

    def _finalize_optimizer(self) -> None:
        """With ``use_ema``, the parameters take their moving averages when ``fit`` ends."""
        optimizer = self.optimizer
        if optimizer is not None and getattr(optimizer, "use_ema", False):
            optimizer.finalize_variable_values({k: p for k, (p, _) in self._step_params().items()})

    def _structured(self, x: Any, y: Any) -> bool:
        """Whether data go the way of several inputs or outputs (lists or dicts of arrays)."""
        return (
            self._multi_input()
            or self._multi_output()
            or isinstance(x, dict)
            or isinstance(y, dict)
        )

    def _fit_multi(
        self,
        x: Any,
        y: Any,
        validation_data: Any,
        validation_split: float,
        sample_weight: Any,
        class_weight: Any,
        seed: int | None,
    ) -> tuple[Any, Any, Any, Any]:
        """Training and validation data of a model with several inputs or outputs."""
        xs = _Multi(self._data_inputs(x, "fit", "x"))
        ys = self._data_targets(y, len(xs), "fit", "y")
        val = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple | list) and len(validation_data) in (2, 3)):
                raise ValueError(
                    "fit: invalid value for `validation_data`: expected a tuple (x_val, y_val) "
                    "or (x_val, y_val, sample_weight_val)."
                )
            vx = _Multi(self._data_inputs(validation_data[0], "fit", "x_val"))
            vy = self._data_targets(validation_data[1], len(vx), "fit", "y_val")
            vw = None
            if len(validation_data) == 3 and validation_data[2] is not None:
                vw = metrics_mod.check_sample_weight(
                    validation_data[2], len(vx), "fit", per_step=True
                )
            val = (vx, vy, vw)
        sw = None
        if sample_weight is not None:
            sw = metrics_mod.check_sample_weight(sample_weight, len(xs), "fit", per_step=True)
        if class_weight is not None:
            if self._multi_output():
                raise ValueError(
                    "fit: `class_weight` is for models with one output; use `sample_weight`."
                )
            sw = class_weight_to_sample_weight(ys[0], class_weight)
        if val is None and validation_split:
            n_val = int(len(xs) * validation_split)
            if n_val == 0 or n_val >= len(xs):
                raise ValueError(
                    f"fit: `validation_split`={validation_split} of {len(xs)} samples "
                    f"leaves {len(xs) - n_val} for training and {n_val} for "
                    f"validation; both need at least one."
                )
            cut = len(xs) - n_val
            val = (xs[cut:], ys[cut:], None if sw is None else sw[cut:])
            xs, ys = xs[:cut], ys[:cut]
            sw = None if sw is None else sw[:cut]
        if sw is not None:
            sw = sw.astype(self._dtype())
        if val is not None and val[2] is not None:
            val = (val[0], val[1], val[2].astype(self._dtype()))
        return xs, ys, sw, val

    def _data_inputs(self, x: Any, fn: str, arg: str) -> list[np.ndarray]:
        if not self._multi_input() and not isinstance(x, dict | list | tuple):
            x = [x]
        arrays = self._input_list(x, fn)
        for a in arrays:
            if a.ndim == 0 or a.shape[0] == 0:
                raise ValueError(
                    f"{fn}: `{arg}` is empty (shape {shape_str(a.shape)}); expected at least "
                    f"one sample."
                )
        return arrays

    def _data_targets(self, y: Any, n: int, fn: str, arg: str) -> _Multi:
        names = self._output_names_for_compile()
        if y is None:
            if any(loss is not None for loss in self._output_losses):
                raise ValueError(f"{fn}: `{arg}` is required: the model's losses need targets.")
            return _Multi([None] * len(names), n=n)
        ys = _as_list(y, names, fn, arg)
        out = []  # type: ignore[var-annotated]
        for name, a in zip(names, ys, strict=True):
            if a is None:
                out.append(None)  # type: ignore[arg-type]
                continue
            a = as_array(a, fn, f"{arg}[{name!r}]")
            if a.ndim == 0 or len(a) != n:
                raise ValueError(
                    f"{fn}: `x` and `{arg}[{name!r}]` have different numbers of samples: "
                    f"{n} and {len(a) if a.ndim else 'a scalar'}."
                )
            check_finite(a, fn, f"{arg}[{name!r}]")
            out.append(a)
        return _Multi(out, n=n)

    def _fit_source(
        self,
        source: Any,
        epochs: int,
        verbose: Any,
        callbacks: Any,
        validation_data: Any,
        initial_epoch: int,
        steps_per_epoch: int | None,
        validation_steps: int | None,
        validation_freq: int,
        class_weight: Any,
        *,
        x: Any = None,
        seed: int | None = None,
    ) -> History:
        """``fit`` over a generator, an iterator or a PyDataset (batches made by the user).

        Under a data-parallel strategy every rank reads its own copy of the source
        (the same batches in the same order) and trains on its share of each batch.
        """
        steps = steps_per_epoch if steps_per_epoch is not None else source.length()
        if steps is None and not source.finite_hint:
            raise ValueError(
                "fit: `x` is a generator of unknown length; pass `steps_per_epoch` (batches "
                "per epoch) as Keras requires for an infinite generator."
            )
        strategy = self._running_strategy()
        prepare = functools.partial(self._prepare_batch, class_weight=class_weight)
        data = SourceEpochs(source, steps, prepare, **_source_sharing(strategy, "fit"))
        if isinstance(strategy, _distributed.DataParallel):
            if not self.built:  # built from the first batch, before rank 0's weights are sent
                data.peek()
            strategy.agree(
                "fit",
                lambda: {
                    **fit_entries(
                        x,
                        None,
                        epochs=epochs,
                        batch_size=None,
                        shuffle=None,
                        seed=seed,
                        initial_epoch=initial_epoch,
                        validation_data=validation_data,
                        class_weight=class_weight,
                        steps=steps,
                    ),
                    "validation_steps": validation_steps,
                    "validation_freq": validation_freq,
                    **describe_model(self),
                    **describe_compile(self),
                    "metrics state": [v.shape for v in self.metrics_variables],
                },
            )
            strategy.begin_fit(self, 0 if seed is None else seed)
            self.distribute_strategy = strategy
            verbose = verbose if strategy.is_root else 0
        history = History()
        cbs = self._callback_list(history, callbacks, verbose, epochs, steps or 0)
        val_source = batch_source(validation_data) if validation_data is not None else None
        self.stop_training = False
        self.history = history

        def validate() -> dict[str, float]:
            if val_source is not None:
                res = self._evaluate_source(val_source, validation_steps, "fit (validation_data)")
            else:
                vx, vy = validation_data[0], validation_data[1]
                vw = validation_data[2] if len(validation_data) == 3 else None
                res = self.evaluate(vx, vy, sample_weight=vw, verbose=0, return_dict=True)
            return {f"val_{k}": v for k, v in res.items()}

        self._fit_epochs(
            data,
            validate if validation_data is not None else None,
            cbs,
            epochs,
            initial_epoch,
            validation_freq,
        )
        return history

    def _prepare_batch(
        self, batch: Any, fn: str = "fit", class_weight: Any = None
    ) -> tuple[Any, Any, Any]:
        """A batch a source yielded as ``(x, y, sample_weight)`` for the steps."""
        x, y, sw = _unpack_data(batch)
        x, y = self._batch_arrays(x, y, fn)
        if class_weight is not None:
            sw = class_weight_to_sample_weight(np.asarray(y), class_weight)
        return x, y, sw

    def _evaluate_source(
        self, source: Any, steps: int | None, owner: str = "evaluate"
    ) -> dict[str, float]:
        """The loop of ``evaluate`` over a source: :meth:`test_step` on each batch (this
        process's share of it under a data-parallel strategy); the logs of the last step."""
        prepare = functools.partial(self._prepare_batch, fn="evaluate")
        sharing = _source_sharing(self._running_strategy(), owner)
        data = SourceEpochs(source, steps, prepare, **sharing)
        self.reset_metrics()
        logs: dict[str, float] = {}
        for _, batch in data.batches(None):
            logs = dict(self.test_step(batch))
        data.end_epoch()
        return logs

    def _predict_source(self, source: Any, steps: int | None) -> tuple[Any, int]:
        """The loop of a data-parallel ``predict`` over a source: every rank's shares of
        each batch, gathered in order; the outputs and the number of batches."""
        strategy = self._running_strategy()

        def prepare(batch: Any) -> tuple[Any, Any, Any]:
            x = batch[0] if isinstance(batch, tuple) else batch
            return self._batch_arrays(x, None, "predict")[0], None, None

        data = SourceEpochs(source, steps, prepare, **_source_sharing(strategy, "predict"))
        n_steps = 0
        with strategy.gather(None) as gathered:
            parts, rows = [], []
            for step, where, (x, _, _) in data.shares():
                n_steps = step + 1
                if where.stop > where.start:
                    parts.append(self.predict_step(x))
                    rows.append(np.arange(where.start, where.stop))
            if parts:
                gathered.outputs = _concat_outputs(parts)
                gathered.rows = np.concatenate(rows)
        data.end_epoch()
        return gathered.outputs, n_steps

    def _named_arrays(self, data: Any, kind: str) -> Any:
        """Several inputs (``kind`` "x") or targets ("y") as a dict by name, as the ranks'
        handshake compares them; one array as it is."""
        if not isinstance(data, _Multi):
            return data
        if kind == "x":
            names = list(getattr(self, "input_names", None) or ["input"])
        else:
            names = self._output_names_for_compile()
        arrays = data.arrays
        return arrays[0] if len(arrays) == 1 else dict(zip(names, arrays, strict=True))

    def _begin_distributed(
        self, strategy: _distributed.Strategy, fn: str, entries: Any, verbose: int
    ) -> int:
        """The handshake of a data-parallel ``evaluate`` or ``predict``; its ``verbose``."""
        strategy.agree(fn, entries)
        if isinstance(strategy, _distributed.DataParallel):
            self.distribute_strategy = strategy
            return verbose if strategy.is_root else 0
        return verbose

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
        if getattr(self, "_tracker", None) is None:
            self.reset_metrics()
        names = [*self._tracker, *(key for keys in self._metric_keys for key in keys)]
        keys = set(names) | ({f"val_{k}" for k in names} if validation else set())
        if any(isinstance(c, LearningRateScheduler | ReduceLROnPlateau) for c in cbs):
            keys.add("learning_rate")
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
            sw = metrics_mod.check_sample_weight(sample_weight, n_total, "fit", per_step=True)
            sw, val_sw = sw[: len(x)], (sw[len(x) :] if n_total > len(x) else None)
        if class_weight is not None:
            sw = class_weight_to_sample_weight(y, class_weight)
        if validation_data is not None and len(validation_data) == 3:
            if validation_data[2] is not None and val is not None:
                val_sw = metrics_mod.check_sample_weight(
                    validation_data[2], len(val[0]), "fit (validation_data)", per_step=True
                )
        loss_dtype = self._loss_dtype("fit")
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
        """TerminateOnNaN (unless given), the user's, History, a progress bar; all handed
        the model (``set_model``) and the run's settings (``set_params``)."""
        user = list(callbacks or [])
        for c in user:
            if not isinstance(c, Callback):
                raise TypeError(
                    f"fit: invalid value for `callbacks`: expected Callback instances, "
                    f"received {c!r}."
                )
        # as Keras: History after the user's callbacks, so that it records what they add to
        # the logs (a learning-rate callback's "learning_rate")
        cbs: list[Callback] = []
        if not any(isinstance(c, TerminateOnNaN) for c in user):
            cbs.append(TerminateOnNaN())
        cbs += user
        cbs.append(history)
        if verbose != 0 and not any(isinstance(c, ProgressBar) for c in user):
            cbs.append(ProgressBar(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        for c in cbs:
            c.set_model(self)
            c.set_params(dict(params))
        return cbs

    def _train_epoch(
        self, batches: Iterator[tuple[int, Any]], cbs: list[Callback]
    ) -> tuple[dict[str, float], int]:
        """One epoch of :meth:`train_step` on ``batches`` (``(step, data)``, where ``data``
        is this process's share of the step's global batch); the epoch's logs and steps.

        The running strategy decides after each ``on_train_batch_end`` whether the
        epoch ends there (in one process: ``stop_training``).
        """
        strategy = self._running_strategy()
        self.reset_metrics()
        logs: dict[str, float] = {}
        steps = 0
        # Only the callbacks whose batch hooks do something are called (the others' are
        # Callback's no-ops): the order of the calls that happen is unchanged.
        begin = _hooked(cbs, "on_train_batch_begin")
        end = _hooked(cbs, "on_train_batch_end")
        should_stop = strategy.should_stop
        for step, data in batches:
            for c in begin:
                c.on_train_batch_begin(step, {})
            logs = dict(self.train_step(_repacked(data)))
            for c in end:
                c.on_train_batch_end(step, logs)
            steps = step + 1
            if should_stop(self):
                break
        return logs, steps

    def _validate(self, x: Any, y: Any, sw: np.ndarray | None, batch_size: int) -> dict[str, float]:
        """``val_*`` logs: loss and metrics on the validation data (weighted if given)."""
        results = self._test_loop(x, y, sw, batch_size)
        return {f"val_{k}": v for k, v in results.items()}

    def _test_loop(
        self, x: Any, y: Any, sw: np.ndarray | None, batch_size: int
    ) -> dict[str, float]:
        """The loop of ``evaluate`` over arrays: :meth:`test_step` on each batch, in order
        (on this process's share of each batch); the logs of the last step."""
        strategy = self._running_strategy()
        self.reset_metrics()
        logs: dict[str, float] = {}
        for _, idx in array_batches(len(x), batch_size, strategy.shard):
            wb = None if sw is None else sw[idx]
            logs = dict(self.test_step(_packed(x[idx], y[idx], wb)))
        return logs

    def _predict_loop(self, x: Any, batch_size: int) -> Any:
        """The loop of ``predict`` over arrays: :meth:`predict_step` on each batch, in order
        (on this process's share of each batch); every sample's outputs."""
        strategy = self._running_strategy()
        with strategy.gather(len(x)) as gathered:
            parts, rows = [], []
            for _, idx in array_batches(len(x), batch_size, strategy.shard):
                if idx.stop > idx.start:
                    parts.append(self.predict_step(x[idx]))
                    rows.append(np.arange(idx.start, idx.stop))
            if parts:
                gathered.outputs = _concat_outputs(parts)
                gathered.rows = np.concatenate(rows)
        return gathered.outputs

    @contextlib.contextmanager
    def distribution_scope(self, distribute: _distributed.DataParallel | None) -> Iterator[None]:
        """Run the steps called in the block with ``distribute``'s reductions, as ``fit`` does.

        For a loop of one's own: inside the block, :meth:`train_step` and
        :meth:`test_step` on each rank's share of a global batch reduce the
        gradients, the loss and the metrics over the ranks, as in ``fit``. Every
        rank must make the same calls, after the model was made alike on every
        rank (``distribute.broadcast_model(model)``). ``train_on_batch``,
        ``test_on_batch``, and ``evaluate`` and ``predict`` without ``distribute``
        always run in one process, inside the block or a distributed ``fit`` too
        (a callback on rank 0 alone may call them).

        Raises
        ------
        TypeError
            ``distribute`` is neither None nor a :class:`~layernet.DataParallel`.

        Examples
        --------
        >>> import numpy as np
        >>> import layernet as ln
        >>> model = ln.Sequential([ln.Dense(1, seed=0)])
        >>> model.compile("sgd", "mse")
        >>> x = np.ones((4, 2), "float32")
        >>> with model.distribution_scope(None):  # one process: the plain step
        ...     loss, _ = model.train_step(x, x[:, :1])
        """
        with self._strategy_scope(_distributed.resolve(distribute, "distribution_scope")):
            yield

    @contextlib.contextmanager
    def _strategy_scope(self, strategy: _distributed.Strategy) -> Iterator[None]:
        """Make ``strategy`` the one the steps use while a loop runs."""
        previous: _distributed.Strategy | None = getattr(self, "_run_strategy", None)
        self._run_strategy: _distributed.Strategy | None = strategy
        try:
            yield
        finally:
            self._run_strategy = previous

    def _running_strategy(self) -> _distributed.Strategy:
        """The strategy of the loop running now (the one-process strategy outside loops)."""
        strategy = getattr(self, "_run_strategy", None)
        return strategy if strategy is not None else _distributed.resolve(None, "fit")

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

    def _new_workspaces(self) -> list[Workspace]:
        return [Workspace() for _ in self._every_layer()]

    # ------------------------------------------------------------ evaluate

    @_distributed.entry
    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        sample_weight: np.ndarray | None = None,
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        return_dict: bool = False,
        *,
        distribute: _distributed.DataParallel | None = None,
    ) -> float | list[float] | dict[str, float]:
        r"""Loss and metrics on ``(x, y)``, in batches, without training (Keras's ``evaluate``).

        Parameters
        ----------
        x, y : ndarray, list or dict of ndarray
            As in :meth:`fit`; ``x`` may also be a generator or PyDataset of batches.
        batch_size : int, optional
            Default 32.
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent; 1 or 2 print one line with the results; ``"auto"`` is 1 in a
            terminal or notebook and 0 otherwise.
        sample_weight : ndarray of shape (n_samples,), optional
            Per-sample weights, as in :meth:`fit`: the loss is
            :math:`\\frac1N\\sum_n w_n z_n`, the metrics are weighted means.
        steps : int, optional
            Batches to evaluate from a generator or PyDataset.
        callbacks : list of Callback, optional
            Their ``on_test_begin``/``on_test_end`` hooks (when defined) are called.
        return_dict : bool, default False
        distribute : DataParallel, optional
            Split the samples between the ranks of a
            :class:`~layernet.DataParallel` strategy; every rank gets the values
            over all samples (only rank 0 prints). Arrays, lists or dicts of
            arrays and sources of batches, as in :meth:`fit`.

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
        _check_callbacks_argument(callbacks)
        cbs = list(callbacks or [])
        for c in cbs:
            c.set_model(self)
            hook = getattr(c, "on_test_begin", None)
            if hook is not None:
                hook({})
        start_time = time.perf_counter()
        source = batch_source(x)
        n_steps = None
        if source is not None:
            strategy = _distributed.resolve(distribute, "evaluate")
            if isinstance(strategy, _distributed.DataParallel):
                verbose = self._begin_distributed(
                    strategy,
                    "evaluate",
                    lambda: {
                        **evaluate_entries(x, None, batch_size=None, steps=steps),
                        **describe_model(self),
                        **describe_compile(self),
                        "metrics state": [v.shape for v in self.metrics_variables],
                    },
                    verbose,
                )
            with self._strategy_scope(strategy):
                logs = self._evaluate_source(source, steps)
        elif self._structured(x, y):
            xs = _Multi(self._data_inputs(x, "evaluate", "x"))
            ys = self._data_targets(y, len(xs), "evaluate", "y")
            sw = None
            if sample_weight is not None:
                sw = metrics_mod.check_sample_weight(
                    sample_weight, len(xs), "evaluate", per_step=True
                )
                sw = sw.astype(self._dtype())
            strategy = _distributed.resolve(distribute, "evaluate")
            if isinstance(strategy, _distributed.DataParallel):
                verbose = self._begin_distributed(
                    strategy,
                    "evaluate",
                    lambda: {
                        **evaluate_entries(
                            self._named_arrays(xs, "x"),
                            self._named_arrays(ys, "y"),
                            batch_size=batch_size,
                            sample_weight=sample_weight,
                        ),
                        **describe_model(self),
                        **describe_compile(self),
                        "metrics state": [v.shape for v in self.metrics_variables],
                    },
                    verbose,
                )
            with self._strategy_scope(strategy):
                logs = self._test_loop(xs, ys, sw, batch_size)
            n_steps = math.ceil(len(xs) / batch_size)
        else:
            x, y = self._check_xy(x, y, "evaluate")
            sw = None
            if sample_weight is not None:
                sw = metrics_mod.check_sample_weight(
                    sample_weight, len(x), "evaluate", per_step=True
                )
                sw = sw.astype(self._loss_dtype("evaluate"))
            if not self.built:
                self.build((None, *x.shape[1:]))
            y = self._check_targets(y, "evaluate", "y")
            strategy = _distributed.resolve(distribute, "evaluate")
            strategy.agree(
                "evaluate",
                lambda: {
                    **evaluate_entries(x, y, batch_size=batch_size, sample_weight=sample_weight),
                    **describe_model(self),
                    **describe_compile(self),
                    "metrics state": [v.shape for v in self.metrics_variables],
                },
            )
            if isinstance(strategy, _distributed.DataParallel):
                self.distribute_strategy = strategy
                verbose = verbose if strategy.is_root else 0
            with self._workspaces(self._new_workspaces()), self._strategy_scope(strategy):
                logs = self._test_loop(x, y, sw, batch_size)
            n_steps = math.ceil(len(x) / batch_size)
        if verbose:
            text = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            s = n_steps if n_steps is not None else "?"
            print(f"{s}/{s} - {time.perf_counter() - start_time:.2f}s - {text}")
        for c in cbs:
            hook = getattr(c, "on_test_end", None)
            if hook is not None:
                hook(dict(logs))
        return _logs_result(logs, return_dict)

    @_distributed.entry
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: int | str = "auto",
        steps: int | None = None,
        callbacks: Sequence[Callback] | None = None,
        *,
        distribute: _distributed.DataParallel | None = None,
    ) -> Any:
        """The model's outputs for ``x``, computed in batches (inference mode).

        Parameters
        ----------
        x : ndarray, list or dict of ndarray, or a source of batches
            As in :meth:`fit` (targets a source yields are ignored).
        batch_size : int, optional
            Default 32.
        verbose : {"auto", 0, 1, 2}, default "auto"
            0 silent; 1 or 2 print one line (steps and time); ``"auto"`` is 1 in a
            terminal or notebook and 0 otherwise.
        steps : int, optional
            Batches to predict from a generator or PyDataset.
        callbacks : list of Callback, optional
            Their ``on_predict_begin``/``on_predict_end`` hooks (when defined) are called.
        distribute : DataParallel, optional
            Split the samples between the ranks of a
            :class:`~layernet.DataParallel` strategy; every rank returns all the
            outputs, as one process returns them (only rank 0 prints). Arrays,
            lists or dicts of arrays and sources of batches, as in :meth:`fit`.

        Returns
        -------
        ndarray, or list of ndarray (several outputs)

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
        _check_callbacks_argument(callbacks)
        cbs = list(callbacks or [])
        for c in cbs:
            c.set_model(self)
            hook = getattr(c, "on_predict_begin", None)
            if hook is not None:
                hook({})
        start_time = time.perf_counter()
        source = batch_source(x)
        strategy = _distributed.resolve(distribute, "predict")
        n_steps: Any
        if source is not None and isinstance(strategy, _distributed.DataParallel):
            verbose = self._begin_distributed(
                strategy,
                "predict",
                lambda: {
                    **predict_entries(x, batch_size=None, steps=steps),
                    **describe_model(self),
                },
                verbose,
            )
            with self._strategy_scope(strategy):
                out, n_steps = self._predict_source(source, steps)
        elif source is not None:
            parts = [
                self.predict_step(batch[0] if isinstance(batch, tuple) else batch)
                for batch in source.batches(steps)
            ]
            source.epoch_end()
            out = _concat_outputs(parts)
            n_steps = len(parts)
        elif self._multi_input() or isinstance(x, dict):
            xs = _Multi(self._data_inputs(x, "predict", "x"))
            if isinstance(strategy, _distributed.DataParallel):
                verbose = self._begin_distributed(
                    strategy,
                    "predict",
                    lambda: {
                        **predict_entries(self._named_arrays(xs, "x"), batch_size=batch_size),
                        **describe_model(self),
                    },
                    verbose,
                )
            with self._strategy_scope(strategy):
                out = self._predict_loop(xs, batch_size)
            n_steps = math.ceil(len(xs) / batch_size)
        else:
            x = self._check_x(x, "predict")
            if not self.built:
                self.build((None, *x.shape[1:]))
            strategy.agree(
                "predict",
                lambda: {**predict_entries(x, batch_size=batch_size), **describe_model(self)},
            )
            if isinstance(strategy, _distributed.DataParallel):
                self.distribute_strategy = strategy
                verbose = verbose if strategy.is_root else 0
            with self._workspaces(self._new_workspaces()), self._strategy_scope(strategy):
                out = self._predict_loop(x, batch_size)
            n_steps = math.ceil(len(x) / batch_size)
        if verbose:
            print(f"{n_steps}/{n_steps} - {time.perf_counter() - start_time:.2f}s")
        for c in cbs:
            hook = getattr(c, "on_predict_end", None)
            if hook is not None:
                hook({})
        return out


def _scale(dys: Any, factor: float) -> Any:
    if isinstance(dys, list):
        return [None if d is None else d * np.asarray(factor, dtype=d.dtype) for d in dys]
    return dys * np.asarray(factor, dtype=dys.dtype)


class _Multi(list):
    """Several arrays with the same number of samples, indexed together: ``m[idx]``."""

    def __init__(self, arrays: Any, n: int | None = None) -> None:
        super().__init__(arrays)
        present = [a for a in self if a is not None]
        self._n = n if n is not None else (len(present[0]) if present else 0)

    def __len__(self) -> int:  # the number of samples, not of arrays
        return self._n

    def __getitem__(self, idx: Any) -> Any:
        items = [list.__getitem__(self, i) for i in range(list.__len__(self))]
        sub = [None if a is None else a[idx] for a in items]
        present = [a for a in sub if a is not None]
        n = len(present[0]) if present else len(np.arange(self._n)[idx])
        return _Multi(sub, n=n)

    def __iter__(self) -> Iterator[Any]:
        return (list.__getitem__(self, i) for i in range(list.__len__(self)))

    @property
    def arrays(self) -> list[Any]:
        return list(iter(self))


def _source_sharing(strategy: _distributed.Strategy, owner: str) -> dict[str, Any]:
    """How a pass over a source shares its batches: each rank checks every batch with
    the others and takes its share under a data-parallel strategy; nothing in one process."""
    if strategy.size == 1:
        return {"owner": owner}
    return {"agree": strategy.agree_batch, "shard": strategy.shard, "owner": owner}


def _unwrap(x: Any) -> Any:
    """Inputs as a model takes them: one array, or a list of arrays for several."""
    if isinstance(x, _Multi):
        arrays = x.arrays
        return arrays[0] if len(arrays) == 1 else arrays
    return x


def _packed(x: Any, y: Any, sample_weight: Any) -> Any:
    """A batch as Keras hands it to ``train_step``: ``(x, y)`` without sample weights,
    ``(x, y, sample_weight)`` with them, ``x`` alone without targets."""
    if y is None and sample_weight is None:
        return (x,) if isinstance(x, tuple | list) else x
    return (x, y) if sample_weight is None else (x, y, sample_weight)


def _repacked(data: Any) -> Any:
    """``data`` from the array adapters, ``(x, y, sample_weight)``, packed as Keras's."""
    if isinstance(data, tuple) and len(data) == 3 and not isinstance(data[0], tuple):
        return _packed(*data)
    return data


def _result(metric: Any) -> Any:
    """``metric.result()`` as a value of its own: a metric of one's own may return its state
    Variable, which the next batch changes in place (the logs and History keep a float)."""
    value = metric.result()
    if getattr(value, "_layernet_variable", False):
        array = value.numpy()
        return float(array) if array.ndim == 0 else array.copy()
    return value


def _as_list(y: Any, names: list[str], fn: str = "fit", arg: str = "y") -> list[Any]:
    """Targets (or anything per output) as a list in output order."""
    if isinstance(y, _Multi):
        return y.arrays
    if isinstance(y, dict):
        unknown = [k for k in y if k not in names]
        if unknown:
            raise ValueError(
                f"{fn}: `{arg}` has key(s) {unknown} that name no output; the outputs are {names}."
            )
        return [y.get(n) for n in names]
    if isinstance(y, list | tuple) and len(names) > 1:
        if len(y) != len(names):
            raise ValueError(
                f"{fn}: expected {len(names)} entries in `{arg}` (one per output {names}), "
                f"received {len(y)}."
            )
        return list(y)
    if len(names) > 1:
        raise ValueError(
            f"{fn}: the model has {len(names)} outputs {names}; give `{arg}` as a list or a "
            f"dict by output name."
        )
    return [y]


def _per_output(value: Any, names: list[str], arg: str) -> list[Any]:
    """``compile``'s per-output argument (one value, a list or a dict) as a list."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(
                f"compile: `{arg}` has key(s) {unknown} that name no output; the outputs are "
                f"{names}."
            )
        return [value.get(n) for n in names]
    if isinstance(value, list | tuple):
        if len(value) != len(names):
            raise ValueError(
                f"compile: expected {len(names)} entries in `{arg}` (one per output {names}), "
                f"received {len(value)}."
            )
        return list(value)
    return [value] * len(names)


def _metrics_per_output(metrics: Any, names: list[str], arg: str) -> list[list[Any]]:
    if isinstance(metrics, dict):
        per = _per_output(metrics, names, arg)
        lists = [
            [] if m is None else (list(m) if isinstance(m, list | tuple) else [m]) for m in per
        ]
    elif (
        isinstance(metrics, list | tuple)
        and len(names) > 1
        and len(metrics) == len(names)
        and all(isinstance(m, list | tuple) or m is None for m in metrics)
    ):
        lists = [[] if m is None else list(m) for m in metrics]
    else:
        lists = [list(metrics or []) for _ in names]
    return [[metrics_mod.get(m) for m in ms] for ms in lists]


def _metric_keys(
    plain: list[list[Any]], weighted: list[list[Any]], names: list[str]
) -> list[list[str]]:
    """The log key of every compiled metric, per output: plain metrics, then weighted ones.

    Keras's rule: ``"<output>_<name>"`` with several outputs, else the metric's name;
    a plain metric whose key is taken gets ``"_1"``, ``"_2"``, ...; a weighted one
    ``"weighted_<name>"`` (then ``"_1"``, ... if that is taken too).
    """
    multi = len(names) > 1
    seen: dict[str, int] = {}

    def prefixed(k: int, name: str) -> str:
        return f"{names[k]}_{name}" if multi else name

    def unique(key: str) -> str:
        if key not in seen:
            seen[key] = 1
            return key
        index = seen[key]
        seen[key] += 1
        return f"{key}_{index}"

    keys: list[list[str]] = [[] for _ in names]
    for k, ms in enumerate(plain):
        keys[k] += [unique(prefixed(k, m.name)) for m in ms]
    for k, ms in enumerate(weighted):
        for m in ms:
            key = prefixed(k, m.name)
            keys[k].append(unique(key if key not in seen else prefixed(k, f"weighted_{m.name}")))
    return keys


def _unpack_data(data: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` from a batch ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, w)``."""
    if isinstance(data, tuple):
        if len(data) == 1:
            return data[0], None, None
        if len(data) == 2:
            return data[0], data[1], None
        if len(data) == 3:
            return data
        raise ValueError(
            f"expected a batch (x, y) or (x, y, sample_weight), received a tuple of {len(data)}."
        )
    return data, None, None


def _batch_len(x: Any) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    return len(x)


def _logs_result(logs: dict[str, float], return_dict: bool) -> Any:
    if return_dict:
        return dict(logs)
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _concat_outputs(parts: list[Any]) -> Any:
    if parts and isinstance(parts[0], list):
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
    return np.concatenate(parts)


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
