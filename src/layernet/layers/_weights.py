"""``get_weights`` / ``set_weights`` for layers whose parameters follow Keras's order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import shape_str
from .base import Layer


class _KerasWeights:
    """``get_weights``/``set_weights``: the parameters in Keras's order, then the state.

    The layer creates ``params`` in Keras's weight order, so a list taken from
    the matching Keras layer (``keras_layer.get_weights()``) loads as it is.
    """

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    owner: str
    built: bool
    dtype: np.dtype

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters (Keras's order), then of the state arrays.

        Returns
        -------
        list of ndarray
        """
        return [np.array(v) for v in (*self.params.values(), *self.state.values())]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Set the parameters (Keras's order), then the state, from a list of arrays.

        Parameters
        ----------
        weights : list of array_like
            As :meth:`get_weights` returns, e.g. a Keras layer's ``get_weights()``.

        Raises
        ------
        RuntimeError
            Before the layer is built (call it on an input, or ``build``, first).
        ValueError
            A list of the wrong length, or an array of the wrong shape (named).
        """
        if not self.built:
            raise RuntimeError(
                f"{self.owner}: set_weights before the layer is built; call it on an input "
                f"or call build(input_shape) first."
            )
        slots = {**self.params, **self.state}
        if not isinstance(weights, list | tuple) or len(weights) != len(slots):
            n = len(weights) if isinstance(weights, list | tuple) else type(weights).__name__
            raise ValueError(
                f"{self.owner}: expected a list of {len(slots)} arrays ({', '.join(slots)}), "
                f"received {n}."
            )
        arrays = [np.asarray(w) for w in weights]
        for (k, v), w in zip(slots.items(), arrays, strict=True):
            if w.shape != v.shape:
                raise ValueError(
                    f"{self.owner}: expected weight {k!r} of shape {shape_str(v.shape)}, "
                    f"received shape {shape_str(w.shape)}."
                )
        for v, w in zip(slots.values(), arrays, strict=True):
            v[...] = w


class _KerasWeightsLayer(_KerasWeights, Layer):
    """A layer with ``get_weights``/``set_weights`` in Keras's order (:class:`_KerasWeights`)."""
