r"""Layers made of layers: the shared machinery of :class:`Residual` and :class:`Bidirectional`.

A container owns its inner layers. Its :attr:`params`, :attr:`grads` and
:attr:`state` are views assembled on every access from the inner layers' own
dictionaries, under the keys ``"<inner name>/<key>"``: the arrays are the inner
layers' arrays (the same objects), so an optimiser that updates the container's
parameters updates the inner layers, and a model file stores them once. An
inner layer that is frozen (``trainable=False``) lists its parameters under
:attr:`state` instead (non-trainable, never touched by optimisers); freezing the
container freezes everything inside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .. import _random
from .._validation import resolve_dtype
from ..registry import get_registered_name
from .base import MAX_JACOBIAN_ENTRIES, Layer


def serialize_layer(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}``: how model files and nested configs name a layer.

    The class name is the registered one (``"layernet>Dense"``; see :mod:`layernet.registry`).
    """
    return {"class_name": get_registered_name(type(layer)), "config": layer.get_config()}


def deserialize_layer(spec: Any, custom_objects: dict[str, type] | None = None) -> Layer:
    """Rebuild a layer from :func:`serialize_layer`'s output (a Layer passes through)."""
    if isinstance(spec, Layer):
        return spec
    from ..saving import layer_from_spec  # saving imports the layers: import late

    return layer_from_spec(spec, custom_objects)


class _Container(Layer):
    """Base of layers that wrap other layers (see the module docstring)."""

    def __init__(
        self,
        layers: Sequence[Layer],
        *,
        name: str | None = None,
        dtype: str | None = None,
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        kind = type(self).__name__
        where = f"{kind} '{name}'" if name else kind
        inner = list(layers)
        dtypes = {layer.dtype for layer in inner}
        if len(dtypes) > 1:
            raise ValueError(
                f"{where}: the inner layers mix dtypes {sorted(d.name for d in dtypes)}; "
                f"give them all the same dtype."
            )
        inner_dtype = dtypes.pop().name if dtypes else "float32"
        if dtype is not None and resolve_dtype(dtype, where) != np.dtype(inner_dtype):
            raise ValueError(
                f"{where}: invalid value for `dtype`: the inner layers compute in "
                f"{inner_dtype}, received dtype={dtype!r}; leave it None or match them."
            )
        names = [layer.name for layer in inner]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"{where}: inner layer names must be unique (they key the parameters), "
                f"received duplicates {dup}."
            )
        self.layers: list[Layer] = inner
        super().__init__(name=name, dtype=inner_dtype, seed=seed, trainable=trainable)

    # ----------------------------------------------------- the inner arrays
    def _collect(self, what: str) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            if what == "params":
                items = layer.params if layer.trainable else {}
            elif what == "grads":
                items = layer.grads if layer.trainable else {}
            else:
                items = {**({} if layer.trainable else layer.params), **layer.state}
            for k, v in items.items():
                out[f"{layer.name}/{k}"] = v
        return out

    def _refuse(self, what: str, value: Any) -> None:
        if value:  # the base class initialises them as empty dicts
            raise AttributeError(
                f"{self.owner}: `{what}` lists the inner layers' arrays and cannot be "
                f"replaced; assign into its arrays or into the inner layers instead."
            )

    @property
    def params(self) -> dict[str, np.ndarray]:
        """Trainable inner layers' parameters under ``"<inner name>/<param>"`` (same arrays)."""
        return self._collect("params")

    @params.setter
    def params(self, value: dict[str, np.ndarray]) -> None:
        self._refuse("params", value)

    @property
    def grads(self) -> dict[str, np.ndarray]:
        """The inner layers' accumulated gradients, keyed like :attr:`params` (same arrays)."""
        return self._collect("grads")

    @grads.setter
    def grads(self, value: dict[str, np.ndarray]) -> None:
        self._refuse("grads", value)

    @property
    def state(self) -> dict[str, np.ndarray]:
        """Inner state arrays and frozen inner layers' parameters (same arrays)."""
        return self._collect("state")

    @state.setter
    def state(self, value: dict[str, np.ndarray]) -> None:
        self._refuse("state", value)

    # -------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = self.dtype.name
        return config

    @classmethod
    def from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, type] | None = None
    ) -> Layer:
        """Rebuild from :meth:`get_config`, inner layers included (nested specs)."""
        return cls(**cls._inner_from_config(dict(config), custom_objects))

    @classmethod
    def _inner_from_config(
        cls, config: dict[str, Any], custom_objects: dict[str, type] | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    # --------------------------------------------------------------- build
    def build(
        self, input_shape: Sequence[int | None], *, rng: np.random.Generator | None = None
    ) -> None:
        """Build every inner layer in turn (fresh values), then this layer.

        Inner layers with a ``seed`` of their own use it; the others draw from
        ``rng`` (or from this layer's seed / the global seed), one child each.
        """
        shape = self._normalize_shape(input_shape)
        self.built = False
        self.check_input_shape(shape)
        rng = rng if rng is not None else _random.generator(self.seed)
        self.build_inner(shape, rng)
        self.compute_output_shape(shape)
        self.input_shape = (None, *shape[1:])
        self.built = True
        self.saved = None
        self._y_shape = None

    def build_inner(self, input_shape: tuple[int | None, ...], rng: np.random.Generator) -> None:
        raise NotImplementedError

    @staticmethod
    def _build_child(layer: Layer, shape: tuple, rng: np.random.Generator) -> None:
        child = rng.spawn(1)[0]
        layer.build(shape, rng=child if layer.seed is None else None)

    # ----------------------------------------------------------- Jacobians
    def _workspaces(self) -> Iterator[Any]:
        yield self.workspace
        for layer in self.layers:
            if isinstance(layer, _Container):
                yield from layer._workspaces()
            else:
                yield layer.workspace

    @contextlib.contextmanager
    def _fresh_buffers(self) -> Iterator[None]:
        # Rows of an explicit Jacobian must not share an inner layer's scratch buffer.
        with contextlib.ExitStack() as stack:
            for ws in self._workspaces():
                stack.enter_context(ws.disabled())
            yield

    def jacobian_input(
        self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any
    ) -> np.ndarray:
        with self._fresh_buffers():
            return super().jacobian_input(x, max_entries=max_entries, **options)

    def jacobian_params(self, x, *, max_entries: int = MAX_JACOBIAN_ENTRIES, **options: Any):
        with self._fresh_buffers():
            return super().jacobian_params(x, max_entries=max_entries, **options)

    # ---------------------------------------------------------- inner calls
    @staticmethod
    def _inner_forward(layer: Layer, x: np.ndarray, training: bool) -> tuple[np.ndarray, Any]:
        """Forward through an inner layer, keeping its saved state here, not in the layer."""
        return layer.compute_forward(layer._prepare_input(x), training)
