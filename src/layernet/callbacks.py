"""Callbacks: hooks that ``fit`` calls around epochs and batches.

Every callback may implement ``on_train_begin``, ``on_epoch_begin``,
``on_train_batch_begin``, ``on_train_batch_end``, ``on_epoch_end`` and
``on_train_end``. Before training,
:meth:`~layernet.training.trainer.Trainer.fit` hands each callback the model
(:meth:`Callback.set_model`, then ``self.model``) and the run's settings
(:meth:`Callback.set_params`, then ``self.params`` with ``"epochs"``, ``"steps"``
per epoch and ``"verbose"``); callbacks use only the model's public API. A
callback stops training by setting ``model.stop_training = True``.

In data-parallel training (:mod:`layernet.distributed`) every rank runs its
callbacks with the same global logs; only rank 0 prints and writes files.
"""

from __future__ import annotations

import math
import os
import re
import string
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ._validation import (
    check_bool,
    check_int,
    check_number,
    checked_init,
    is_real,
    missing_attribute,
)
from .distributed import is_root

if TYPE_CHECKING:
    pass


class Callback:
    """Base class of callbacks: hooks that ``fit`` calls, each a no-op here.

    Subclass it and override the hooks you need; ``fit`` calls
    :meth:`set_model` and :meth:`set_params` first, then ``on_train_begin``,
    per epoch ``on_epoch_begin`` / ``on_epoch_end`` (with the epoch's logs:
    ``"loss"`` and the metrics sorted by name, then the ``"val_*"`` ones), per batch
    ``on_train_batch_begin`` / ``on_train_batch_end``, and ``on_train_end``.
    Setting ``self.model.stop_training = True`` ends training after the
    current epoch. Importable as ``ln.callbacks.Callback``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> class StopBelow(ln.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         if logs["loss"] < 0.05:
    ...             self.model.stop_training = True
    >>> history = model.fit(x, y, epochs=100, verbose=0, callbacks=[StopBelow()])
    >>> len(history.epoch) < 100, history.history["loss"][-1] < 0.05
    (True, True)

    Attributes
    ----------
    model : Sequential
        The model being trained (set by :meth:`set_model`).
    params : dict
        The run's settings (set by :meth:`set_params`): ``"epochs"``, ``"steps"``
        (batches per epoch) and ``"verbose"``.
    """

    model: Any
    params: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # An argument the callback lacks (a Keras one, or a typo) gets an error that names
        # it and points to the compatibility page, instead of Python's bare TypeError.
        if "__init__" in cls.__dict__:
            cls.__init__ = checked_init(cls.__dict__["__init__"])  # type: ignore[method-assign]

    def set_model(self, model: Any) -> None:
        """Called by ``fit`` before training with the model being trained."""
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Called by ``fit`` before training with ``{"epochs", "steps", "verbose"}``."""
        self.params = params

    def check_logs(self, keys: set[str]) -> None:
        """Called by ``fit`` before the first step with the names every epoch's logs will
        hold; raise ``ValueError`` for settings that need others (default: accept all)."""

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None: ...

    def on_train_end(self, logs: dict[str, float] | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: dict[str, float] | None = None) -> None: ...

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None: ...


def _hooked(callbacks: list[Callback], hook: str) -> list[Callback]:
    """The callbacks, in order, whose ``hook`` is not :class:`Callback`'s no-op (a hook
    defined by the class or set on the instance, as :class:`LambdaCallback` does)."""
    base = getattr(Callback, hook)
    return [c for c in callbacks if getattr(getattr(c, hook), "__func__", None) is not base]


class History(Callback):
    """Records the logs of every epoch; :meth:`~layernet.training.trainer.Trainer.fit` returns it.

    ``fit`` creates it (you do not pass one); it takes no arguments.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> history = model.fit(x, y, epochs=3, verbose=0)
    >>> history.epoch, list(history.history)
    ([0, 1, 2], ['loss'])

    Attributes
    ----------
    history : dict of str to list of float
        Per-epoch values, in the order of the logs: ``"loss"`` and each metric
        sorted by name, then the ``"val_*"`` ones, then what callbacks add
        (``"learning_rate"`` from :class:`LearningRateScheduler` or
        :class:`ReduceLROnPlateau`).
    epoch : list of int
        The epochs recorded (0-based).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"

    def plot(self, metrics: list[str] | None = None) -> Any:
        """The loss and metrics per epoch, training and validation: a matplotlib ``Figure``.

        See :func:`layernet.visualization.plot_history` (needs the ``plot`` extra).
        """
        from .visualization import plot_history

        return plot_history(self, metrics)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = getattr(shell, "get_ipython", lambda: None)()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


#: How jupyter_client (the Python client library) numbers its messages: ``<session>_<pid>_<n>``.
#: Browser frontends (JupyterLab, Notebook 7, VS Code) number theirs with bare UUIDs.
_PYTHON_CLIENT_MSG_ID = re.compile(r"_\d+_\d+$")


def live_frontend() -> bool:
    """Whether this code runs in a notebook whose frontend shows live widgets.

    True in JupyterLab, Jupyter Notebook or VS Code; False outside a Jupyter
    kernel and in a kernel that a Python client drives without a live view:
    ``jupyter nbconvert --execute``, nbclient, papermill, myst-nb (the
    documentation's build), ``jupyter console``. There a progress widget would be
    saved as its first frame (``0%| 0/7``) with the metrics lost, so
    :class:`ProgressBar` prints one text line per epoch instead.

    The signal is the request being executed: jupyter_client, the Python library
    those tools use, names its messages ``<session>_<pid>_<n>``, while the
    browser frontends use bare UUIDs.

    Returns
    -------
    bool

    Examples
    --------
    >>> import layernet as ln
    >>> ln.callbacks.live_frontend()        # a doctest runs in no notebook
    False
    """
    if not _in_notebook():
        return False
    ip = sys.modules["IPython"].get_ipython()
    parent = getattr(ip, "parent_header", None) or {}
    header = parent.get("header", parent) if isinstance(parent, dict) else {}
    msg_id = str(header.get("msg_id", "")) if isinstance(header, dict) else ""
    return not _PYTHON_CLIENT_MSG_ID.search(msg_id)


def _format_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4g}" for k, v in logs.items() if k != "learning_rate")


class ProgressBar(Callback):
    """Live progress: a ``tqdm.auto`` bar per epoch, or one printed line per epoch.

    Parameters
    ----------
    verbose : {"auto", 0, 1, 2}, default "auto"
        0: silent. 1: a progress bar per epoch, showing the running loss and
        metrics (a widget in Jupyter, a text bar in a terminal). 2: one line
        per epoch with the metrics, for logs. ``"auto"``: 1 in a terminal or a
        live notebook, 2 when output goes to a file or pipe. In a notebook that
        is executed with no live view (``jupyter nbconvert --execute``,
        nbclient, papermill; see :func:`~layernet.callbacks.live_frontend`) 1 prints the lines of 2,
        so that the saved notebook keeps every epoch's metrics.
    file : file-like, optional
        Where to write (default: ``sys.stderr`` for bars, ``sys.stdout`` for lines).

    Notes
    -----
    ``fit(verbose=...)`` adds one; pass your own in ``callbacks`` to choose
    where it writes.

    Examples
    --------
    >>> import io
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> out = io.StringIO()
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[ln.ProgressBar(2, file=out)])
    >>> len(out.getvalue().splitlines())
    2
    """

    def __init__(self, verbose: int | str = "auto", file: Any = None) -> None:
        if verbose == "auto":
            interactive = live_frontend() or (
                not _in_notebook() and getattr(sys.stderr, "isatty", lambda: False)()
            )
            verbose = 1 if interactive else 2
        self.verbose = verbose
        self.file = file
        self._bar = None
        self._lines = verbose == 2

    def on_train_begin(self, logs=None):
        self.epochs = self.params["epochs"]
        self.steps = self.params["steps"]
        self._shows = is_root(self.model)  # data-parallel training: rank 0 prints
        # A widget in a notebook nobody watches is saved as its first frame: print lines.
        self._lines = self.verbose == 2 or (
            self.verbose == 1 and _in_notebook() and not live_frontend()
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        if self.verbose == 1 and self._shows and not self._lines:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self.steps,
                desc=f"Epoch {epoch + 1}/{self.epochs}",
                unit="batch",
                leave=True,
                file=self.file,
                dynamic_ncols=True,
            )

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str(_format_logs(logs or {}), refresh=False)

    def on_epoch_end(self, epoch, logs=None):
        text = _format_logs(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
        elif self._lines and self._shows:
            seconds = time.perf_counter() - self._start
            print(
                f"Epoch {epoch + 1}/{self.epochs} - {seconds:.2f}s - {text}",
                file=self.file or sys.stdout,
                flush=True,
            )

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _check_monitor(monitor: Any, owner: str) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(
            f"{owner}: invalid value for `monitor`: expected the name of a logged value "
            f"such as 'val_loss', received {monitor!r}."
        )
    return monitor


def _monitor_mode(monitor: str, mode: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(
            f"{owner}: invalid value for `mode`: expected 'auto', 'min' or 'max', "
            f"received {mode!r}."
        )
    if mode == "auto":
        return "max" if ("acc" in monitor) else "min"
    return mode


def _get_monitored(logs: dict[str, float] | None, monitor: str, owner: str) -> float:
    logs = logs or {}
    if monitor not in logs:
        raise ValueError(
            f"{owner}: monitored value {monitor!r} is not in the logs; available: "
            f"{sorted(logs)} (val_* values need validation data)."
        )
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving.

    Keras's callback with Keras's arguments, in Keras's order, and its rule: at
    the end of every epoch from ``start_from_epoch`` on, the wait grows by one;
    a value better than the best so far by more than ``min_delta`` becomes the
    best and resets the wait (only if it also beats ``baseline``, when given);
    otherwise, once the wait reaches ``patience`` (and after the first epoch),
    training stops.

    Parameters
    ----------
    monitor : str, default "val_loss"
        The logged value to watch (``"loss"``, a metric, or a ``"val_*"`` one,
        which needs validation data).
    min_delta : float, default 0.0
        Smallest change that counts as an improvement (its absolute value is used).
    patience : int, default 0
        Epochs without improvement before stopping.
    verbose : int, default 0
        1 prints a line when the callback stops training or restores weights.
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"`` maximises names containing ``"acc"`` and minimises the rest.
    baseline : float, optional
        A value the monitored one must beat: while no epoch beats it the wait
        is not reset, so training stops after ``patience`` epochs.
    restore_best_weights : bool, default False
        At the end of training, put back the weights of the best epoch (even if
        no epoch beat ``baseline``: the best of them).
    start_from_epoch : int, default 0
        Epochs of warm-up that are not monitored at all.

    Attributes
    ----------
    stopped_epoch : int or None
        The epoch at which training was stopped, if it was.
    best : float or None
        The best monitored value so far (None before the first monitored epoch).
    best_epoch : int or None
        The epoch of :attr:`best`.
    wait : int
        Epochs since the last improvement.

    Raises
    ------
    ValueError
        At construction: ``EarlyStopping: invalid value for `patience`: expected
        an int >= 0, ...``; the same form for ``min_delta`` (finite),
        ``verbose`` and ``start_from_epoch`` (ints >= 0), ``baseline`` (a finite
        number or None), ``monitor`` (a logged name), ``mode`` (``'auto'``, ``'min'`` or
        ``'max'``) and ``restore_best_weights`` (a bool). Before the first step
        of ``fit``: ``EarlyStopping: monitored value 'val_loss' is not in the
        logs; available: [...] (val_* values need validation data).``

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> stop = ln.EarlyStopping("val_loss", patience=2, restore_best_weights=True)
    >>> history = model.fit(x, y, epochs=200, validation_split=0.25, verbose=0,
    ...                     callbacks=[stop])
    >>> len(history.epoch) <= 200
    True
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        owner = "EarlyStopping"
        self.monitor = _check_monitor(monitor, owner)
        self.min_delta = abs(check_number(min_delta, "min_delta", owner))
        self.patience = check_int(patience, "patience", owner, minimum=0)
        self.verbose = check_int(verbose, "verbose", owner, minimum=0)
        self.mode = _monitor_mode(monitor, mode, owner)
        self.baseline = None if baseline is None else check_number(baseline, "baseline", owner)
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights", owner)
        self.start_from_epoch = check_int(start_from_epoch, "start_from_epoch", owner, minimum=0)
        self.wait = 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def check_logs(self, keys: set[str]) -> None:
        """Refuse, before training, a ``monitor`` the logs will not hold."""
        if self.monitor not in keys:
            raise ValueError(
                f"EarlyStopping: monitored value {self.monitor!r} is not in the logs; "
                f"available: {sorted(keys)} (val_* values need validation data)."
            )

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = None
        self.stopped_epoch = None

    def _improves_on(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_epoch_end(self, epoch, logs=None):
        value = _get_monitored(logs, self.monitor, "EarlyStopping")
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # the best so far: the first
            self.best_epoch = epoch
        self.wait += 1
        if self._improves_on(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improves_on(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        loud = self.verbose > 0 and is_root(self.model)
        if self.stopped_epoch is not None and loud:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if loud and self.best_epoch is not None:
                print(
                    f"Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}.",
                    flush=True,
                )
            self.model.set_weights(self.best_weights)


def _template_keys(template: str, owner: str) -> set[str]:
    """The field names of a ``str.format`` template, or a clear error if it is malformed."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"{owner}: invalid value for `filepath`: {template!r} is not a valid format "
            f"template ({exc})."
        ) from None
    keys = set()
    for f in fields:
        name = f.split(".")[0].split("[")[0]
        if not name or name.isdigit() or name != f:
            raise ValueError(
                f"{owner}: invalid value for `filepath`: {template!r} has the field {{{f}}}; "
                f"expected fields that name logged values, such as {{epoch:03d}} or "
                f"{{val_loss:.3f}}."
            )
        keys.add(name)
    try:
        template.format(**{k: 1 if k == "epoch" else 0.5 for k in keys})
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{owner}: invalid value for `filepath`: {template!r} cannot be formatted with "
            f"an epoch number and float log values ({exc})."
        ) from None
    return keys


class ModelCheckpoint(Callback):
    """Save the model (atomically) after epochs, optionally only when it improved.

    Keras's arguments, in Keras's order, with Keras's meanings; layernet's
    files end in ``.npz`` (Keras's in ``.keras``).

    In data-parallel training only rank 0 writes (every rank keeps track of the
    best value, so that all ranks agree on it).

    Parameters
    ----------
    filepath : str or os.PathLike
        Where to save; may hold ``{epoch}`` and log names, e.g.
        ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"`` (and ``{batch}`` with an
        integer ``save_freq``). Missing folders are created, as in Keras.
    monitor : str, default "val_loss"
        The logged value that decides "improved".
    verbose : int, default 0
        1 prints a line for every save (and every skipped one with
        ``save_best_only``).
    save_best_only : bool, default False
        Save only when ``monitor`` improved on the best so far.
    save_weights_only : bool, default False
        Save only the weights (:meth:`Sequential.save_weights`).
    mode : {"auto", "min", "max"}, default "auto"
        Whether a smaller or a larger ``monitor`` is better; ``"auto"``
        maximises names containing ``"acc"`` and minimises the rest.
    save_freq : "epoch" or int, default "epoch"
        Save at the end of every epoch, or after every ``save_freq`` batches
        (counted across epochs; the batch's logs then decide, and hold no
        ``val_*`` values).
    initial_value_threshold : float, optional
        With ``save_best_only``, the value the first save must beat (the best so
        far before training). The best is kept from one ``fit`` to the next, as
        in Keras.

    Attributes
    ----------
    best : float or None
        The best monitored value so far.

    Raises
    ------
    ValueError
        At construction: ``ModelCheckpoint: invalid value for `filepath`: ...``
        (not a path, an invalid format template, or fields that are not log
        names), and invalid ``monitor``, ``verbose``, ``mode``, ``save_best_only``,
        ``save_weights_only``, ``save_freq`` (``'epoch'`` or a positive int) or
        ``initial_value_threshold`` (a finite number or None). Before the first
        step of ``fit``: a ``filepath`` field or ``monitor`` that the logs will
        not hold.

    Examples
    --------
    >>> import os, tempfile
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> folder = tempfile.mkdtemp()
    >>> ckpt = ln.ModelCheckpoint(os.path.join(folder, "ckpt-{epoch:02d}.npz"))
    >>> _ = model.fit(x, y, epochs=2, verbose=0, callbacks=[ckpt])
    >>> sorted(os.listdir(folder))
    ['ckpt-01.npz', 'ckpt-02.npz']
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        owner = "ModelCheckpoint"
        if not isinstance(filepath, str | os.PathLike):
            raise TypeError(
                f"{owner}: invalid value for `filepath`: expected a str or path, received "
                f"{filepath!r}."
            )
        self.filepath = os.fspath(filepath)
        if not isinstance(self.filepath, str):
            raise TypeError(
                f"{owner}: invalid value for `filepath`: expected a str path, received "
                f"{filepath!r}."
            )
        self.template_keys = _template_keys(self.filepath, owner)
        self.monitor = _check_monitor(monitor, owner)
        self.verbose = check_int(verbose, "verbose", owner, minimum=0)
        self.save_best_only = check_bool(save_best_only, "save_best_only", owner)
        self.save_weights_only = check_bool(save_weights_only, "save_weights_only", owner)
        self.mode = _monitor_mode(monitor, mode, owner)
        if save_freq != "epoch" and not (
            isinstance(save_freq, int | np.integer)
            and not isinstance(save_freq, bool)
            and save_freq > 0
        ):
            raise ValueError(
                f"{owner}: invalid value for `save_freq`: expected 'epoch' or a positive int "
                f"(a number of batches), received {save_freq!r}."
            )
        self.save_freq: str | int = save_freq if save_freq == "epoch" else int(save_freq)
        self.best: float | None = (
            None
            if initial_value_threshold is None
            else check_number(initial_value_threshold, "initial_value_threshold", owner)
        )
        self._batches_since_save = 0
        self._epoch = 0

    def check_logs(self, keys: set[str]) -> None:
        """Refuse, before training, a ``filepath`` naming values the logs will not have.

        Parameters
        ----------
        keys : set of str
            The names every epoch's logs will hold (``epoch`` is always available).

        Raises
        ------
        ValueError
            Naming the unknown fields and the available ones.
        """
        fields = {"epoch"}
        if self.save_freq != "epoch":  # saved after batches: the batch's logs, no val_*
            keys = {k for k in keys if not k.startswith("val_")}
            fields.add("batch")
            why = "(saving every save_freq batches uses the batch's logs, which hold no val_*)"
        else:
            why = "(val_* values need validation data)"
        unknown = sorted(self.template_keys - keys - fields)
        if unknown:
            raise ValueError(
                f"ModelCheckpoint: `filepath` {self.filepath!r} names {unknown}, which the "
                f"logs will not hold; available: {sorted(keys | fields)} {why}."
            )
        if self.save_best_only and self.monitor not in keys:
            raise ValueError(
                f"ModelCheckpoint: monitored value {self.monitor!r} is not in the logs; "
                f"available: {sorted(keys)} {why}."
            )

    def on_train_begin(self, logs=None):
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= int(self.save_freq):
            self._batches_since_save = 0
            self._save(self._epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, None, logs or {})

    def _is_improvement(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def _save(self, epoch: int, batch: int | None, logs: dict[str, float]) -> None:
        fields = {"epoch": epoch + 1} if batch is None else {"epoch": epoch + 1, "batch": batch + 1}
        path = self.filepath.format(**{**logs, **fields})
        loud = self.verbose > 0 and is_root(self.model)
        if self.save_best_only:
            value = _get_monitored(logs, self.monitor, "ModelCheckpoint")
            best = "None" if self.best is None else f"{self.best:.5f}"
            if not self._is_improvement(value):
                if loud:
                    print(f"Epoch {epoch + 1}: {self.monitor} did not improve from {best}")
                return
            if loud:
                print(
                    f"Epoch {epoch + 1}: {self.monitor} improved from {best} to {value:.5f}, "
                    f"saving model to {path}"
                )
            self.best = value
        elif loud:
            print(f"Epoch {epoch + 1}: saving model to {path}")
        if not is_root(self.model):
            return  # data-parallel training: rank 0 writes, the other ranks hold the same model
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


def _all_finite(arrays: list[np.ndarray]) -> bool:
    # A sum is finite only when every entry is (NaN and inf propagate): one sum over all
    # the arrays laid end to end settles the common case. A non-finite total may come from
    # finite entries that overflow, which the exact check per array then settles. Summing
    # is much cheaper than isfinite per entry, and one sum than one per array.
    if not arrays:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(np.concatenate([a.ravel() for a in arrays]), axis=None)
        if math.isfinite(float(total)):
            return True
        return all(math.isfinite(float(a.sum())) or bool(np.isfinite(a).all()) for a in arrays)


class TerminateOnNaN(Callback):
    """Stop training at the first NaN or infinite batch loss or weight, keeping finite weights.

    :meth:`~layernet.training.trainer.Trainer.fit` always adds one. The batch whose loss
    is not finite is not applied. After every step, the last one of training included, the
    weights (and layer state such as running statistics) are checked too: if an
    update made any of them NaN or infinite although the loss was finite, the
    weights from before that update are put back and training stops.

    Parameters
    ----------
    raise_error : bool, default False
        Keras's switch: raise a ``RuntimeError`` (after putting back the last
        finite weights) instead of stopping training quietly.

    Attributes
    ----------
    terminated_at : tuple of (int, int) or None
        ``(epoch, batch)`` where the loss or the weights stopped being finite.

    Raises
    ------
    RuntimeError
        With ``raise_error=True``: ``TerminateOnNaN: loss became nan at epoch 2,
        batch 3; ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> model.compile(ln.SGD(1e30), "mse")        # a learning rate that diverges
    >>> nan_stop = ln.TerminateOnNaN()
    >>> _ = model.fit(x, y, epochs=5, verbose=0, callbacks=[nan_stop])
    >>> nan_stop.terminated_at is not None
    True
    >>> bool(np.isfinite(model.layers[0].params["kernel"]).all())   # last finite weights
    True
    """

    def __init__(self, raise_error: bool = False) -> None:
        self.raise_error = check_bool(raise_error, "raise_error", "TerminateOnNaN")
        self.terminated_at: tuple[int, int] | None = None

    def on_train_begin(self, logs=None):
        # The weights before each of the last two updates, alternately: copying is cheap,
        # and finiteness is checked only once a loss goes bad.
        weights = self.model.weights
        self._snapshots = [[w.copy() for w in weights], [w.copy() for w in weights]]
        self._turn = 0
        self.terminated_at = None
        self._epoch = 0
        self._weights = None  # the arrays read at the batch's start

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._turn ^= 1
        weights = self.model.weights
        if len(self._snapshots[self._turn]) != len(weights):  # a model built by its first call
            self._snapshots = [[w.copy() for w in weights], [w.copy() for w in weights]]
        for dst, src in zip(self._snapshots[self._turn], weights, strict=True):
            np.copyto(dst, src)
        # The step updates these arrays in place: the batch's end checks the same list
        # (read again only when there was none, a model that builds in its first step).
        self._weights = weights

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        weights = getattr(self, "_weights", None) or self.model.weights
        bad_loss = loss is not None and not math.isfinite(loss)
        bad_weights = not _all_finite(weights)
        if not (bad_loss or bad_weights):
            return
        self.terminated_at = (self._epoch, batch)
        self.model.stop_training = True
        if bad_weights:
            newest, older = self._snapshots[self._turn], self._snapshots[self._turn ^ 1]
            finite = newest if _all_finite(newest) else older
            for dst, src in zip(weights, finite, strict=True):
                np.copyto(dst, src)
        what = (
            f"loss became {loss}"
            if bad_loss
            else f"the update overflowed (weights became NaN or inf; the loss was {loss:.6g})"
        )
        message = (
            f"TerminateOnNaN: {what} at epoch {self._epoch + 1}, batch {batch + 1}; "
            f"training stopped with the last finite weights."
        )
        if self.raise_error:
            raise RuntimeError(message)
        if not is_root(self.model):
            return  # data-parallel training: rank 0 prints
        print(message, file=sys.stderr)


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate at the start of every epoch.

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new_lr`` (Keras' form) or ``schedule(epoch) -> lr``;
        ``epoch`` counts from 0.
    verbose : int, default 0
        1 prints the learning rate set at the start of every epoch.

    Raises
    ------
    ValueError
        ``LearningRateScheduler: expected a callable `schedule`, received ...``;
        during ``fit``, ``LearningRateScheduler: the schedule returned ... for
        epoch ...; expected a positive finite float.``

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    >>> y = x.sum(axis=1, keepdims=True)
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> halve = ln.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    >>> history = model.fit(x, y, epochs=3, verbose=0, callbacks=[halve])
    >>> history.history["learning_rate"]
    [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        if not callable(schedule):
            raise ValueError(
                f"LearningRateScheduler: expected a callable `schedule`, received {schedule!r}."
            )
        self.schedule = schedule
        self.verbose = check_int(verbose, "verbose", "LearningRateScheduler", minimum=0)

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, opt.current_learning_rate)
        except TypeError:
            lr = self.schedule(epoch)
        if not is_real(lr) or not lr > 0 or not math.isfinite(lr):
            raise ValueError(
                f"LearningRateScheduler: the schedule returned {lr!r} for epoch "
                f"{epoch}; expected a positive finite float."
            )
        opt.learning_rate = float(lr)
        if self.verbose > 0 and is_root(self.model):
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # as Keras: the epoch's rate joins the logs (and so the History)
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


def _check_number(value: Any, arg: str, owner: str, *, low: float, high: float | None = None):
    return check_number(value, arg, owner, low=low, high=high, high_open=high is not None)


class ReduceLROnPlateau(Callback):
    r"""Multiply the learning rate by ``factor`` when a monitored value stops improving.

    Keras's callback with Keras's arguments and rule: after every epoch the
    monitored value is compared with the best so far; an improvement (by more
    than ``min_delta``) resets the wait, otherwise the wait grows, and after
    ``patience`` epochs without improvement the learning rate becomes
    :math:`\max(\text{lr}\cdot\text{factor}, \text{min\_lr})` (if it is still
    above ``min_lr``), the wait restarts and ``cooldown`` epochs follow during
    which the wait does not grow. The new rate applies from the next epoch.

    Parameters
    ----------
    monitor : str, default "val_loss"
    factor : float, default 0.1
        In [0, 1).
    patience : int, default 10
    verbose : int, default 0
        1 prints a line when the rate is reduced.
    mode : {"auto", "min", "max"}, default "auto"
        ``"auto"`` maximises names containing ``"acc"`` and minimises the rest.
    min_delta : float, default 1e-4
    cooldown : int, default 0
    min_lr : float, default 0.0

    Raises
    ------
    ValueError
        For a ``factor`` outside [0, 1) or other invalid arguments; at the end of
        an epoch if ``monitor`` is not in the logs.
    TypeError
        When training starts with a learning rate given as a schedule (a callable),
        which this callback cannot lower.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> cb = ln.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    >>> x = np.ones((4, 2), dtype="float32")
    >>> h = model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[cb])
    >>> [round(v, 3) for v in h.history["learning_rate"]]  # epoch 1 sets the best; 2, 3 do not
    [0.1, 0.1, 0.05]
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        owner = "ReduceLROnPlateau"
        self.factor = _check_number(factor, "factor", owner, low=0.0, high=1.0)
        patience, cooldown, verbose = (
            check_int(v, arg, owner, minimum=0)
            for arg, v in (("patience", patience), ("cooldown", cooldown), ("verbose", verbose))
        )
        self.monitor = _check_monitor(monitor, owner)
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_delta = _check_number(min_delta, "min_delta", owner, low=0.0)
        self.min_lr = _check_number(min_lr, "min_lr", owner, low=0.0)
        self.mode = _monitor_mode(monitor, mode, owner)
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def in_cooldown(self) -> bool:
        """Whether the callback is in its cooldown after a reduction."""
        return self.cooldown_counter > 0

    def on_train_begin(self, logs=None):
        if callable(self.model.optimizer.learning_rate):
            raise TypeError(
                "ReduceLROnPlateau: the optimizer's learning rate is a schedule "
                f"({self.model.optimizer.learning_rate!r}); give a float learning rate "
                "to have it reduced on plateaus."
            )
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:  # as Keras: the epoch's rate (before any reduction) joins the logs
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = _get_monitored(logs, self.monitor, "ReduceLROnPlateau")
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.mode == "min":
            improved = current < self.best - self.min_delta
        else:
            improved = current > self.best + self.min_delta
        if improved:
            self.best = current
            self.wait = 0
            return
        if self.in_cooldown():
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        opt = self.model.optimizer
        old_lr = float(opt.learning_rate)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            opt.learning_rate = new_lr
            if self.verbose > 0 and is_root(self.model):  # data-parallel training: rank 0
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
            self.cooldown_counter = self.cooldown
            self.wait = 0


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file, as Keras's ``CSVLogger`` does.

    The first row is the header: ``epoch`` (counted from 0) then the log names
    sorted alphabetically; when the first epoch has no ``val_*`` values their
    columns are added anyway and hold ``NA``. The file is flushed after every
    row and closed when training ends. In data-parallel training only rank 0
    opens and writes the file (every rank has the same logs).

    Parameters
    ----------
    filename : str or os.PathLike
        The CSV file to write.
    separator : str, default ","
        A single character.
    append : bool, default False
        Append to an existing file (writing the header only if it is empty)
        instead of overwriting it.

    Raises
    ------
    TypeError
        ``CSVLogger: expected `filename` to be a path, received ...``
    ValueError
        ``CSVLogger: invalid value for `separator`: expected one character,
        ...`` or ``invalid value for `append`: expected a bool, ...``.
    OSError
        When ``fit`` starts and the file cannot be opened for writing.

    Examples
    --------
    >>> import os, tempfile
    >>> import layernet as ln
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> x = np.ones((4, 2), dtype="float32")
    >>> _ = model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[ln.CSVLogger(path)])
    >>> open(path).readline().strip()
    'epoch,loss,val_loss'
    """

    def __init__(
        self, filename: str | os.PathLike, separator: str = ",", append: bool = False
    ) -> None:
        if not isinstance(filename, str | os.PathLike):
            raise TypeError(f"CSVLogger: expected `filename` to be a path, received {filename!r}.")
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(
                f"CSVLogger: invalid value for `separator`: expected one character, "
                f"received {separator!r}."
            )
        if not isinstance(append, bool):
            raise ValueError(
                f"CSVLogger: invalid value for `append`: expected a bool, received {append!r}."
            )
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys: list[str] | None = None
        self.csv_file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        self._header = True
        # data-parallel training: every rank has the same logs, rank 0 alone writes them
        self._writes = is_root(self.model)
        if not self._writes:
            return
        if self.append and os.path.exists(self.filename):
            with open(self.filename) as f:
                self._header = not f.readline()
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        import csv

        if not getattr(self, "_writes", True):
            return
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys += [f"val_{k}" for k in self.keys]
        if self._writer is None:
            self._writer = csv.writer(self.csv_file, delimiter=self.sep)
            if self._header:
                self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(logs.get(k, "NA") for k in self.keys)])
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self._writer = None


class LambdaCallback(Callback):
    """A callback made of functions, as Keras's ``LambdaCallback``.

    Each argument, if given, replaces the hook of the same name and is called
    with the same arguments: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_batch_begin(batch, logs)``,
    ``on_train_batch_end(batch, logs)``, ``on_train_begin(logs)``,
    ``on_train_end(logs)``. ``on_batch_begin`` / ``on_batch_end`` are the older
    Keras names of the batch hooks.

    Raises
    ------
    TypeError
        For an argument that is neither None nor callable.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> seen = []
    >>> cb = ln.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> x = np.ones((4, 2), dtype="float32")
    >>> _ = model.fit(x, x[:, :1], epochs=3, verbose=0, callbacks=[cb])
    >>> seen
    [0, 1, 2]
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        on_batch_begin: Callable[..., Any] | None = None,
        on_batch_end: Callable[..., Any] | None = None,
    ) -> None:
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin or on_batch_begin,
            "on_train_batch_end": on_train_batch_end or on_batch_end,
        }
        given = {**hooks, "on_batch_begin": on_batch_begin, "on_batch_end": on_batch_end}
        for arg, fn in given.items():
            if fn is not None and not callable(fn):
                raise TypeError(
                    f"LambdaCallback: expected `{arg}` to be callable, received {fn!r}."
                )
        # Keras always passes `logs`; the functions get a dict even where fit passes none.
        for hook, fn in hooks.items():
            if fn is None:
                continue
            if hook in ("on_train_begin", "on_train_end"):
                setattr(self, hook, lambda logs=None, fn=fn: fn({} if logs is None else logs))
            else:
                setattr(self, hook, lambda i, logs=None, fn=fn: fn(i, {} if logs is None else logs))


# ---------------------------------------------------------------------------
# Losses and metrics the Keras way, callbacks, pictures: TensorBoard, BackupAndRestore,
# ProgbarLogger, and the helper the trainer calls to resume an interrupted run.


def resume_epoch(callbacks: list[Callback], initial_epoch: int) -> int:
    """The epoch ``fit`` starts from after the callbacks' ``on_train_begin``.

    A :class:`BackupAndRestore` that restored a run sets its ``initial_epoch``;
    the latest such epoch wins over the ``initial_epoch`` given to ``fit``.

    Parameters
    ----------
    callbacks : list of Callback
    initial_epoch : int
        The ``initial_epoch`` given to ``fit``.

    Returns
    -------
    int

    Examples
    --------
    >>> import layernet as ln
    >>> ln.callbacks.resume_epoch([ln.callbacks.History()], 2)
    2
    """
    restored = [
        c.initial_epoch
        for c in callbacks
        if isinstance(c, BackupAndRestore) and c.initial_epoch is not None
    ]
    return max([initial_epoch, *restored])


def _check_dir(value: Any, arg: str, owner: str) -> str:
    if not isinstance(value, str | os.PathLike):
        raise TypeError(
            f"{owner}: invalid value for `{arg}`: expected a str or path, received {value!r}."
        )
    path = os.fspath(value)
    if not isinstance(path, str) or not path:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a non-empty str path, "
            f"received {value!r}."
        )
    return path


class BackupAndRestore(Callback):
    """Back up the training state so that an interrupted ``fit`` resumes (Keras's semantics).

    At the end of every epoch (or every ``save_freq`` batches) the model is saved
    with :meth:`Sequential.save` (weights, optimizer state and step count, epochs
    completed) to ``backup_dir/latest.npz``, atomically and by rank 0 only. When
    ``fit`` starts and a backup exists, the model takes its weights and optimizer
    state, and training resumes at the first epoch the backup had not finished
    (an epoch interrupted mid-way starts again). When training ends normally the
    backup is deleted (``delete_checkpoint=True``); an exception leaves it.

    Parameters
    ----------
    backup_dir : str or os.PathLike
        A folder for the backup (created if missing); in data-parallel training
        every rank must see it, since every rank reads the backup.
    save_freq : "epoch" or int, default "epoch"
        Back up after every epoch, or after every ``save_freq`` batches.
    delete_checkpoint : bool, default True
        Delete the backup when training ends normally.

    Attributes
    ----------
    initial_epoch : int or None
        The epoch training resumes from, set by ``on_train_begin`` when a
        backup was restored (``fit`` reads it through :func:`~layernet.callbacks.resume_epoch`).

    Raises
    ------
    TypeError, ValueError
        An invalid ``backup_dir``, ``save_freq`` (``"epoch"`` or a positive int)
        or ``delete_checkpoint``.
    ModelFileError
        A backup that does not fit the model being trained.

    Examples
    --------
    >>> import os, tempfile
    >>> import layernet as ln
    >>> import numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> backup = ln.callbacks.BackupAndRestore(folder, delete_checkpoint=False)
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    >>> os.listdir(folder)
    ['latest.npz']
    """

    def __init__(
        self,
        backup_dir: str | os.PathLike,
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
    ) -> None:
        owner = "BackupAndRestore"
        self.backup_dir = _check_dir(backup_dir, "backup_dir", owner)
        if save_freq != "epoch" and not (
            isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0
        ):
            raise ValueError(
                f"{owner}: invalid value for `save_freq`: expected 'epoch' or a positive int, "
                f"received {save_freq!r}."
            )
        self.save_freq = save_freq
        self.delete_checkpoint = check_bool(delete_checkpoint, "delete_checkpoint", owner)
        self.initial_epoch: int | None = None
        self._batches = 0

    @property
    def backup_path(self) -> str:
        """The backup file, ``backup_dir/latest.npz``."""
        return os.path.join(self.backup_dir, "latest.npz")

    def on_train_begin(self, logs=None):
        self.initial_epoch = None
        self._batches = 0
        if is_root(self.model):
            os.makedirs(self.backup_dir, exist_ok=True)
        if os.path.exists(self.backup_path):
            self.initial_epoch = self.restore()

    def restore(self) -> int:
        """Load the backup into the model (weights, optimizer state); return its epochs done."""
        from .saving import ModelFileError, load_model

        saved = load_model(self.backup_path)
        model = self.model
        try:
            if not model.built and saved.input_shape is not None:
                model.build(saved.input_shape)
            model.set_weights(saved.get_weights())
        except ValueError as exc:
            raise ModelFileError(
                f"BackupAndRestore: the backup {self.backup_path!r} does not fit the model "
                f"being trained: {exc}"
            ) from None
        if model.optimizer is not None and saved.optimizer is not None:
            names = [layer.name for layer in model.layers]
            state = {}
            for key, slots in saved.optimizer.state.items():
                index, _, rest = key.partition(".")
                param = rest.rsplit(".", 1)[-1]
                state[f"{index}.{names[int(index)]}.{param}"] = {
                    k: v.copy() for k, v in slots.items()
                }
            model.optimizer.state = state
            model.optimizer.iterations = saved.optimizer.iterations
        model.epochs_completed = saved.epochs_completed
        return int(saved.epochs_completed)

    def _backup(self) -> None:
        if is_root(self.model):
            self.model.save(self.backup_path)

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self.save_freq != "epoch" and self._batches % int(self.save_freq) == 0:
            self._backup()

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._backup()

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and is_root(self.model) and os.path.exists(self.backup_path):
            os.remove(self.backup_path)


class ProgbarLogger(ProgressBar):
    """Keras's ``ProgbarLogger``: the progress bar, its verbosity taken from ``fit(verbose=...)``.

    ``fit`` adds a :class:`ProgressBar` by itself; pass this one to choose
    nothing more than Keras does. ``verbose=0`` keeps it silent.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=1, verbose=0,
    ...                     callbacks=[ln.callbacks.ProgbarLogger()])
    """

    def __init__(self) -> None:
        super().__init__(0)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        verbose = params.get("verbose", "auto")
        if verbose == "auto":
            interactive = _in_notebook() or getattr(sys.stderr, "isatty", lambda: False)()
            verbose = 1 if interactive else 2
        self.verbose = verbose


class TensorBoard(Callback):
    """Write the logs as TensorBoard event files (Keras's ``TensorBoard``, scalars and histograms).

    Training values go to ``log_dir/train`` and validation values to
    ``log_dir/validation``, under Keras's tags: ``epoch_loss``,
    ``epoch_<metric>`` (the ``val_`` prefix dropped in ``validation``),
    ``epoch_learning_rate``, and ``batch_<name>`` with ``update_freq``. Only
    rank 0 writes. Needs the ``tensorboard`` package: ``pip install -e
    '.[tensorboard]'`` from a clone of layernet.

    Parameters
    ----------
    log_dir : str or os.PathLike, default "logs"
    histogram_freq : int, default 0
        Every this many epochs, a histogram of every weight (tag
        ``<layer>/<weight>``) at the epoch's step; 0 writes none.
    write_steps_per_second : bool, default False
        Also write ``epoch_steps_per_second``.
    update_freq : "epoch", "batch" or int, default "epoch"
        Also write the running batch logs every batch (``"batch"``) or every
        that many batches, under ``batch_<name>`` at the global batch step.
    write_graph : bool, default True
        Accepted for Keras compatibility; no graph is written.
    write_images, profile_batch, embeddings_freq, embeddings_metadata
        Keras's arguments, accepted at their defaults only (False, 0, 0, None): layernet
        writes no images, profiles or embeddings.

    Raises
    ------
    ImportError
        ``TensorBoard needs the 'tensorboard' package: pip install -e
        '.[tensorboard]'.`` (when ``fit`` starts).
    TypeError, ValueError
        Invalid arguments, each named.

    Examples
    --------
    >>> import tempfile
    >>> import layernet as ln
    >>> import numpy as np
    >>> model = ln.Sequential([ln.Dense(1, seed=0)])
    >>> model.compile(ln.SGD(0.1), "mse")
    >>> tb = ln.callbacks.TensorBoard(tempfile.mkdtemp())
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0, callbacks=[tb])
    """

    def __init__(
        self,
        log_dir: str | os.PathLike = "logs",
        histogram_freq: int = 0,
        write_steps_per_second: bool = False,
        update_freq: str | int = "epoch",
        *,
        write_graph: bool = True,
        write_images: bool = False,
        profile_batch: int = 0,
        embeddings_freq: int = 0,
        embeddings_metadata: Any = None,
    ) -> None:
        owner = "TensorBoard"
        check_bool(write_graph, "write_graph", owner)
        unsupported = {
            "write_images": (write_images, False),
            "profile_batch": (profile_batch, 0),
            "embeddings_freq": (embeddings_freq, 0),
            "embeddings_metadata": (embeddings_metadata, None),
        }
        for arg, (value, default) in unsupported.items():
            if value is not default and value != default:
                raise ValueError(
                    f"{owner}: invalid value for `{arg}`: layernet writes scalars and "
                    f"histograms only, so it takes only {default!r}, received {value!r}."
                )
        self.log_dir = _check_dir(log_dir, "log_dir", owner)
        self.histogram_freq = check_int(histogram_freq, "histogram_freq", owner, minimum=0)
        self.write_steps_per_second = check_bool(
            write_steps_per_second, "write_steps_per_second", owner
        )
        if update_freq not in ("epoch", "batch") and not (
            isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0
        ):
            raise ValueError(
                f"{owner}: invalid value for `update_freq`: expected 'epoch', 'batch' or a "
                f"positive int, received {update_freq!r}."
            )
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self._writers: dict[str, Any] = {}

    @staticmethod
    def _modules() -> tuple[Any, Any, Any]:
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            raise ImportError(
                "TensorBoard needs the 'tensorboard' package: pip install -e '.[tensorboard]'."
            ) from None
        return EventFileWriter, event_pb2, summary_pb2

    def _write(self, run: str, step: int, values: dict[str, Any]) -> None:
        if not self._writers and not is_root(self.model):
            return
        writer_cls, event_pb2, summary_pb2 = self._modules()
        if run not in self._writers:
            self._writers[run] = writer_cls(os.path.join(self.log_dir, run))
        entries = []
        for tag, value in values.items():
            if isinstance(value, np.ndarray) and value.ndim:  # a weight: its histogram
                entries.append(summary_pb2.Summary.Value(tag=tag, histo=_histogram(value)))
            elif is_real(value):
                entries.append(summary_pb2.Summary.Value(tag=tag, simple_value=float(value)))
        if entries:
            event = event_pb2.Event(
                wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=entries)
            )
            self._writers[run].add_event(event)

    def on_train_begin(self, logs=None):
        self._modules()
        self._step = 0
        self._epoch_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._epoch_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        self._epoch_steps = getattr(self, "_epoch_steps", 0) + 1
        if self.update_freq != "epoch" and self._step % int(self.update_freq) == 0:
            self._write("train", self._step, {f"batch_{k}": v for k, v in (logs or {}).items()})

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        train: dict[str, Any] = {}
        val: dict[str, Any] = {}
        for k, v in logs.items():
            if k.startswith("val_"):
                val[f"epoch_{k[4:]}"] = v
            else:
                train[f"epoch_{k}"] = v
        # as Keras: the optimizer's current rate, whether or not a callback logged it
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            train["epoch_learning_rate"] = float(opt.current_learning_rate)
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start
            train["epoch_steps_per_second"] = getattr(self, "_epoch_steps", 0) / max(seconds, 1e-9)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            for layer in self.model.layers:
                for name, value in layer.params.items():
                    train[f"{layer.name}/{name}"] = np.asarray(value)
        self._write("train", epoch, train)
        if val:
            self._write("validation", epoch, val)
        for w in self._writers.values():
            w.flush()

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}


def _histogram(values: np.ndarray, bins: int = 30) -> Any:
    """A TensorBoard ``HistogramProto`` of ``values`` (``bins`` equal buckets)."""
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi if hi > lo else lo + 1e-12))
    return HistogramProto(
        min=lo,
        max=hi,
        num=float(v.size),
        sum=float(v.sum()),
        sum_squares=float(np.dot(v, v)),
        bucket_limit=edges[1:].tolist(),
        bucket=counts.astype(float).tolist(),
    )


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
