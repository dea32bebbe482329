r"""Optimizers and learning-rate schedules, with Keras's names, defaults and update rules.

An optimizer owns its state (momentum buffers, moment estimates), keyed by
parameter name; layers only hold parameters and gradients. A model calls
:meth:`Optimizer.step` once per batch with ``{name: (param, grad)}`` and the
optimizer updates the parameters in place; a custom loop calls Keras's
:meth:`Optimizer.apply_gradients` with ``(grad, variable)`` pairs instead.

The learning rate may be a float, a schedule from :mod:`layernet.optimizers.schedules`,
or any callable mapping the step count (0, 1, 2, ...) to a float.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._validation import missing_attribute
from . import schedules
from .adam import Adam, Adamax, AdamW, Nadam
from .adaptive import Adadelta, Adagrad, Ftrl, RMSprop
from .base import LearningRate, Optimizer
from .lion import Lion
from .schedules import SCHEDULES, CosineDecay, LearningRateSchedule, StepDecay
from .sgd import SGD

#: Optimizer classes by lower-case name (each constructible with its defaults).
OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "ftrl": Ftrl,
    "lion": Lion,
}


def from_config(class_name: str, config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from ``type(opt).__name__`` and ``opt.get_config()``.

    Only this module's optimizers and schedules, and only numbers, bools and
    ``None`` as settings, are accepted (model files are read through this).

    Raises
    ------
    ValueError
        ``unknown optimizer ...``, ``unknown learning-rate schedule ...``, or
        settings that are not numbers.
    """
    cls = OPTIMIZERS.get(str(class_name).lower())
    if cls is None or not isinstance(config, dict):
        raise ValueError(f"unknown optimizer {class_name!r:.100}")
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        config["learning_rate"] = schedules.deserialize(lr)
    if not all(
        v is None or isinstance(v, bool | int | float) or k == "learning_rate"
        for k, v in config.items()
    ):
        raise ValueError("optimizer settings must be numbers")
    return cls(**config)


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for an optimizer (Keras's ``serialize``).

    Examples
    --------
    >>> import layernet as ln
    >>> ln.optimizers.serialize(ln.optimizers.Lion())["class_name"]
    'Lion'
    """
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict[str, Any]) -> Optimizer:
    """Rebuild an optimizer from :func:`~layernet.optimizers.serialize`'s output.

    Only this module's optimizers and schedules, with numbers, bools and ``None``
    as settings, are accepted.

    Raises
    ------
    ValueError
        ``unknown optimizer ...``, ``unknown learning-rate schedule ...``, or
        settings that are not numbers.
    """
    if not isinstance(config, dict) or set(config) != {"class_name", "config"}:
        raise ValueError(f"unknown optimizer {config!r:.100}")
    return from_config(config["class_name"], config["config"])


def get(identifier: str | dict[str, Any] | Optimizer) -> Optimizer:
    """An optimizer from a name, a serialised dict or an instance (Keras's ``get``).

    Parameters
    ----------
    identifier : str, dict or Optimizer
        A name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"adamax"``, ``"nadam"``,
        ``"rmsprop"``, ``"adagrad"``, ``"adadelta"``, ``"ftrl"``, ``"lion"``,
        any case), which gives the optimizer with its defaults;
        ``{"class_name": ..., "config": ...}`` as :func:`~layernet.optimizers.serialize`
        writes it;
        or an instance, returned as it is.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        ``compile: invalid value for `optimizer`: expected one of [...] or an
        Optimizer instance, received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.optimizers.get("rmsprop")
    RMSprop(learning_rate=0.001, weight_decay=0.0, ...)
    >>> ln.optimizers.get({"class_name": "Lion", "config": {"learning_rate": 0.01}}).learning_rate
    0.01
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()]()
    if isinstance(identifier, dict) and set(identifier) == {"class_name", "config"}:
        return deserialize(identifier)
    raise ValueError(
        f"compile: invalid value for `optimizer`: expected one of "
        f"{sorted(OPTIMIZERS)} or an Optimizer instance, received {identifier!r}."
    )


__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "CosineDecay",
    "Ftrl",
    "LearningRate",
    "LearningRateSchedule",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "StepDecay",
    "deserialize",
    "from_config",
    "get",
    "schedules",
    "serialize",
]

if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
