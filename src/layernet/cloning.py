"""``clone_model``: a new model of the same architecture, with fresh weights (Keras's semantics)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .layers.base import Layer


def _clone_layer(layer: Layer) -> Layer:
    return type(layer).from_config(layer.get_config())


def _fresh(value: Any) -> Any:
    """A config value with every layer in it replaced by a new one of the same config."""
    if isinstance(value, Layer):
        return _clone_layer(value)
    if isinstance(value, list | tuple):
        return type(value)(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def clone_model(
    model: Any,
    input_tensors: Any = None,
    clone_function: Callable[[Layer], Layer] | None = None,
    **kwargs: Any,
) -> Any:
    """A new model with the same layers' configurations and newly initialised weights.

    As ``keras.models.clone_model``: nothing is shared with ``model``; copy the
    weights with ``clone.set_weights(model.get_weights())`` when wanted.

    Parameters
    ----------
    model : Model, Sequential or Layer
        A functional model (its graph is rebuilt from its config), a subclassed
        model (its class called with its ``get_config()``, layers in it cloned,
        then built on the same input shape: Keras's way), a model whose layers
        list is ``model.layers``, or one layer.
    input_tensors : None
        Accepted for Keras compatibility; must be ``None``.
    clone_function : callable, optional
        ``fn(layer) -> new layer`` for each layer; by default
        ``type(layer).from_config(layer.get_config())``. Not for subclassed models.
    **kwargs
        Keras's further options are not supported (an error names them).

    Returns
    -------
    Model, Sequential or Layer
        Of the same class, built with the same input shape when ``model`` was built.

    Raises
    ------
    ValueError
        For ``input_tensors`` or unsupported options, or a ``clone_function``
        with a subclassed model.
    NotImplementedError
        A subclassed model without ``get_config()`` whose constructor arguments
        are not plain values (it has no config).
    TypeError
        For an object that is neither a model with ``layers`` nor a Layer.

    Examples
    --------
    >>> import layernet as ln
    >>> from layernet.cloning import clone_model
    >>> model = ln.Sequential([ln.Dense(3, seed=0), ln.ReLU()])
    >>> model.build((None, 2))
    >>> clone = clone_model(model)
    >>> [type(layer).__name__ for layer in clone.layers], clone.layers[0] is model.layers[0]
    (['Dense', 'ReLU'], False)
    """
    if input_tensors is not None or kwargs:
        raise ValueError(
            f"clone_model: unsupported options {sorted(kwargs) or ['input_tensors']}; expected "
            f"only `model` and `clone_function`."
        )
    if getattr(model, "is_subclassed", False):
        # Keras: a subclassed model is rebuilt from its config (its class called with it)
        if clone_function is not None:
            raise ValueError(
                f"clone_model: `clone_function` is only supported for Sequential and "
                f"functional models; {type(model).__name__} is a subclassed model (it is "
                f"rebuilt from its get_config()), received clone_function={clone_function!r}."
            )
        clone = type(model).from_config({k: _fresh(v) for k, v in model.get_config().items()})
        shape = getattr(model, "input_shape", None)
        if model.built and shape is not None:
            clone.build(shape)
        return clone
    fn = clone_function or _clone_layer
    if getattr(model, "is_functional", False) and clone_function is None:
        # a functional model: its graph rebuilt from its config (shared layers stay shared)
        return type(model).from_config(model.get_config())
    if isinstance(model, Layer) and not hasattr(model, "layers"):
        return fn(model)
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(
            f"clone_model: expected a Sequential model or a Layer, received {type(model).__name__}."
        )
    new = type(model)([fn(layer) for layer in layers], name=getattr(model, "name", None))
    shape = getattr(model, "input_shape", None)
    if shape is not None and hasattr(new, "build"):
        new.build(shape)
    return new
