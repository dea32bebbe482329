"""``Input``: the shape of a model's inputs, Keras's way of starting a ``Sequential``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._validation import check_positive_int, is_int, resolve_input_dtype


class Input:
    r"""The shape of a model's inputs, as a :class:`Sequential`'s first entry (Keras's ``Input``).

    ``Sequential([Input(shape), ...])`` builds every layer as it is added, so
    :meth:`Sequential.summary` shows output shapes and parameter counts before
    any training.

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
        Recorded for Keras compatibility.

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
        self.shape = full
        resolved = resolve_input_dtype(dtype, "Input")
        self.dtype = None if resolved is None else resolved.name
        self.name = name or "input"

    def __repr__(self) -> str:
        return f"Input(shape={self.shape[1:]!r})"
