r"""Lambda: a layer whose ``call`` applies a function built from :mod:`layernet.ops`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import registry
from .base import Layer


def _function_name(fn: Callable[..., Any], owner: str) -> str:
    name = registry._BY_CLASS.get(fn)  # type: ignore[call-overload]
    if name is None:
        raise ValueError(
            f"{owner}: cannot serialise the function {getattr(fn, '__qualname__', fn)!r}: "
            f"expected a layernet op or a function registered with "
            f"ln.register_serializable(package=...) (model files store its name, never code)."
        )
    return name


class Lambda(Layer):
    r"""Wrap a function of ops as a layer: ``Lambda(ops.tanh)``, ``Lambda(lambda x: x * 2)``.

    Its derivative is that of the function, traced from its ops like any layer
    written as ``call()``.

    .. rubric:: Input and output shape

    Input ``(batch, ...)`` or a list of such arrays; output ``(batch, *output_shape)``
    when ``output_shape`` is given, else whatever ``function`` returns (found by a
    call on zeros with batch size 1).

    Parameters
    ----------
    function : callable
        ``function(inputs, **arguments)``; ``inputs`` is an array (a list for
        several inputs). Built from :mod:`layernet.ops` and Python operators.
    output_shape : tuple or callable, optional
        The output shape without the batch axis, or ``fn(input_shape)``; found
        by a call on zeros when omitted.
    arguments : dict, optional
        Keyword arguments passed to ``function``.
    name, dtype, seed, trainable
        See :class:`Layer`.

    Raises
    ------
    TypeError
        ``function`` not callable.
    ValueError
        From :meth:`get_config` when ``function`` is neither a layernet op nor
        registered with :func:`~layernet.register_serializable` (model files
        refer to it by name, never by its code).

    Notes
    -----
    For :math:`Y = f(X)` the derivatives are those of :math:`f`, by the chain
    rule over its recorded ops: :math:`\partial z/\partial X = J_f^T\,\partial z/\partial Y`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.layers.Lambda(ln.ops.square, dtype="float64")
    >>> layer(np.array([[1.0, 3.0]]))
    array([[1., 9.]])
    >>> layer.backward_input(np.ones((1, 2)))
    array([[2., 6.]])
    >>> layer.get_config()["function"]
    'layernet>ops.square'
    """

    _default_name = "lambda"

    def __init__(
        self,
        function: Callable[..., Any],
        output_shape: Any = None,
        arguments: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        if isinstance(function, str):
            resolved = registry.resolve_function(function)
            if resolved is None:
                raise ValueError(
                    f"{self.owner}: invalid value for `function`: no registered function "
                    f"named {function!r}."
                )
            function = resolved
        if not callable(function):
            raise TypeError(
                f"{self.owner}: invalid value for `function`: expected a callable, "
                f"received {function!r}."
            )
        self.function = function
        self._output_shape = output_shape
        self.arguments = dict(arguments or {})

    def call(self, inputs: Any) -> Any:
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape: Any) -> Any:
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        first = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
        return (first, *self._output_shape)

    def get_config(self) -> dict[str, Any]:
        shape = self._output_shape
        if callable(shape):
            shape = _function_name(shape, self.owner)
        return {
            "function": _function_name(self.function, self.owner),
            "output_shape": None
            if shape is None
            else shape
            if isinstance(shape, str)
            else list(shape),
            "arguments": dict(self.arguments),
            **super().get_config(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Lambda:
        config = dict(config)
        shape = config.get("output_shape")
        if isinstance(shape, str):
            config["output_shape"] = registry.resolve_function(shape)
        elif shape is not None:
            config["output_shape"] = tuple(shape)
        return cls(**config)
