"""``Input``: the shape of a model's inputs, Keras's way of starting a ``Sequential``."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validation import check_positive_int, is_int, resolve_input_dtype
from ..graph.tensor import KerasTensor
from .base import Layer

_input_names = itertools.count(0)


class Input(KerasTensor):
    r"""A model's input: a symbolic tensor to call layers on (Keras's ``Input``).

    ``x = Input(shape)`` starts a functional model: calling layers on ``x``
    records the calls, and ``Model(inputs=x, outputs=y)`` makes them a model.
    As a :class:`Sequential`'s first entry, ``Sequential([Input(shape), ...])``
    builds every layer as it is added, so :meth:`Sequential.summary` shows
    output shapes and parameter counts before any training.

    Parameters
    ----------
    shape : tuple of int or None
        One sample's shape, without the batch axis (e.g. ``(28, 28, 1)``).
    batch_size : int, optional
        A fixed batch size (only recorded; layernet models take any batch size).
    dtype : {"float32", "float64", "int32", "int64"}, optional
        The dtype of the model's inputs. Layers compute in float32 or float64
        (their own ``dtype``) and cast float inputs to it; the integer dtypes
        declare inputs of integer ids (token ids for an embedding layer).
        ``None`` (default) leaves it to the first layer.
    batch_shape : tuple, optional
        The full shape, batch axis first; instead of ``shape``.
    name : str, optional
        The input's name (keys of dict inputs to ``fit`` and ``predict``);
        ``"input_layer"``, ``"input_layer_1"``, ... by default.

    Raises
    ------
    ValueError
        ``Input: invalid value for `shape`: expected a tuple of non-negative
        ints (or None), ...`` (likewise ``batch_shape``); ``Input: expected
        exactly one of `shape` (one sample's shape) and `batch_shape`, ...``;
        ``Input: `batch_shape` needs at least the batch axis.``; ``Input: invalid
        value for `dtype`: expected one of ['float32', 'float64', 'int32',
        'int64'] ...``.

    Attributes
    ----------
    shape : tuple
        The shape with the batch axis first: ``(batch_size, *shape)``.

    Examples
    --------
    >>> import layernet as ln
    >>> model = ln.Sequential([ln.Input((4,)), ln.Dense(3, seed=0)])
    >>> model.built, model.count_params()
    (True, 15)
    """

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        dtype: str | None = None,
        batch_shape: Sequence[int | None] | None = None,
        name: str | None = None,
    ) -> None:
        def dims(value: Any, arg: str) -> tuple[int | None, ...]:
            if is_int(value):
                value = (value,)
            if (
                not isinstance(value, Sequence)
                or isinstance(value, str)
                or not all(v is None or (is_int(v) and v >= 0) for v in value)
            ):
                raise ValueError(
                    f"Input: invalid value for `{arg}`: expected a tuple of non-negative ints "
                    f"(or None), received {value!r}."
                )
            return tuple(None if v is None else int(v) for v in value)

        if (shape is None) == (batch_shape is None):
            raise ValueError(
                "Input: expected exactly one of `shape` (one sample's shape) and `batch_shape`, "
                f"received shape={shape!r}, batch_shape={batch_shape!r}."
            )
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size", "Input")
        if batch_shape is not None:
            full = dims(batch_shape, "batch_shape")
            if not full:
                raise ValueError("Input: `batch_shape` needs at least the batch axis.")
        else:
            full = (batch_size, *dims(shape, "shape"))
        resolved = resolve_input_dtype(dtype, "Input")
        dt = "float32" if resolved is None else resolved.name
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(
                f"Input: invalid value for `name`: expected a non-empty str, received {name!r}."
            )
        if name is None:
            n = next(_input_names)
            name = "input_layer" if n == 0 else f"input_layer_{n}"
        super().__init__(full, dtype=dt, name=name)
        self._declared_dtype = dtype

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape!r}, dtype={self.dtype}, name={self.name}>"


class InputLayerSaved(NamedTuple):
    """An input layer keeps nothing for backward."""


class InputLayer(Layer):
    r"""The layer behind an :func:`Input` tensor: it passes its input on unchanged.

    A functional model lists one per input in :attr:`Model.layers` (as Keras
    does); in a :class:`~layernet.Sequential` it may stand first instead of an
    :class:`Input`.

    .. rubric:: Input and output shape

    Its input and output are the same array, of shape ``batch_shape`` (any
    batch size where it is ``None``).

    Parameters
    ----------
    shape : tuple of int or None, optional
        One sample's shape (without the batch axis).
    batch_size : int, optional
    dtype : str, optional
    batch_shape : tuple, optional
        The full shape, instead of ``shape``.
    name : str, optional

    Raises
    ------
    ValueError
        As :class:`Input`, for the shape, dtype or name.

    Notes
    -----
    The identity :math:`Y = X`: :math:`\partial z/\partial X = \partial z/\partial Y`,
    and its Jacobian is the identity matrix.

    Examples
    --------
    >>> import layernet as ln
    >>> model = ln.Sequential([ln.InputLayer(shape=(4,)), ln.Dense(2, seed=0)])
    >>> model.built
    True
    """

    _default_name = "input_layer"

    def __init__(
        self,
        shape: Sequence[int | None] | None = None,
        batch_size: int | None = None,
        dtype: str | None = None,
        batch_shape: Sequence[int | None] | None = None,
        name: str | None = None,
        *,
        input_tensor: Input | None = None,
        **kwargs: Any,
    ) -> None:
        if input_tensor is None:
            if shape is None and batch_shape is None:
                shape = ()
            input_tensor = Input(
                shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name
            )
        kind = np.dtype(input_tensor.dtype).kind
        super().__init__(
            name=input_tensor.name,
            dtype=input_tensor.dtype if kind == "f" else "float32",
            **kwargs,
        )
        self._input_tensor = input_tensor
        self.batch_shape = input_tensor.shape
        self.input_dtype = input_tensor.dtype
        input_tensor._input_layer = self  # type: ignore[attr-defined]

    @property
    def input(self) -> Input:
        """The :func:`layernet.Input` tensor this layer stands for (as Keras's)."""
        return self._input_tensor

    @property
    def output(self) -> Input:
        """The same tensor: an input layer passes its input on unchanged."""
        return self._input_tensor

    @classmethod
    def for_tensor(cls, tensor: KerasTensor) -> InputLayer:
        """The input layer of an :func:`Input` tensor (made once)."""
        layer = getattr(tensor, "_input_layer", None)
        if layer is None:
            layer = cls(input_tensor=tensor)  # type: ignore[arg-type]
        return layer

    def get_config(self) -> dict[str, Any]:
        return {
            "batch_shape": list(self.batch_shape),
            "dtype": self.input_dtype,
            "name": self.name,
        }

    def compute_output_shape(self, input_shape):
        return input_shape

    def convert_input(self, x: np.ndarray) -> np.ndarray:
        return x.astype(self.dtype, copy=False) if x.dtype.kind == "f" else x

    def compute_forward(self, x, training):
        return x, InputLayerSaved()

    def compute_backward_input(self, dy, saved):
        return dy
