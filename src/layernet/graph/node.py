"""A node: one recorded call of a layer on symbolic tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import shape_str
from .tensor import KerasTensor, is_symbolic

if TYPE_CHECKING:
    from ..layers.base import Layer


def flatten(structure: Any) -> list[Any]:
    """The leaves of a tensor, a list/tuple of tensors or a dict of tensors, in order."""
    if isinstance(structure, list | tuple):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for key in structure for leaf in flatten(structure[key])]
    return [structure]


def pack_like(structure: Any, leaves: list[Any]) -> Any:
    """Put ``leaves`` (in :func:`flatten` order) back into the shape of ``structure``."""
    it = iter(leaves)

    def build(s: Any) -> Any:
        if isinstance(s, list | tuple):
            return [build(item) for item in s]
        if isinstance(s, dict):
            return {key: build(s[key]) for key in s}
        return next(it)

    return build(structure)


class Node:
    """One call of a layer on symbolic tensors.

    Parameters
    ----------
    layer : Layer
        The layer called.
    inputs : KerasTensor or list of KerasTensor
        What it was called on (a list for a layer with several inputs).
    options : dict
        Per-call keyword arguments other than ``training`` (a mask, a flag); a
        symbolic tensor among them is an input that gets no gradient.
    outputs : list of KerasTensor
        What the call returned, one per output.
    training : bool or None
        ``training`` given explicitly in the call (``None``: the model's mode).

    Attributes
    ----------
    input_tensors : list of KerasTensor
        The tensors the call differentiates through, in order.
    option_tensors : list of KerasTensor
        Symbolic tensors among the options (no gradient flows to them).
    multi_output : bool
        Whether the layer returned a list.
    """

    def __init__(
        self,
        layer: Layer,
        inputs: Any,
        options: dict[str, Any],
        outputs: list[KerasTensor],
        training: bool | None = None,
        multi_output: bool = False,
    ) -> None:
        self.layer = layer
        self.inputs = inputs
        self.options = options
        self.outputs = outputs
        self.training = training
        self.multi_output = multi_output
        self.input_tensors: list[KerasTensor] = [
            t for t in flatten(inputs) if isinstance(t, KerasTensor)
        ]
        self.option_tensors: list[KerasTensor] = [
            t for t in flatten(list(options.values())) if isinstance(t, KerasTensor)
        ]
        for i, t in enumerate(outputs):
            t.node = self
            t.index = i

    @property
    def parents(self) -> list[KerasTensor]:
        """Every symbolic tensor the call reads: inputs, then tensors among the options."""
        return [*self.input_tensors, *self.option_tensors]

    def __repr__(self) -> str:
        ins = ", ".join(t.name for t in self.input_tensors)
        return f"<Node {self.layer.name}({ins})>"


def _shape_of(x: Any) -> Any:
    if isinstance(x, list | tuple):
        return [_shape_of(a) for a in x]
    return tuple(x.shape)


def _dummy(shape: tuple[int | None, ...], dtype: str) -> np.ndarray:
    return np.zeros(tuple(1 if s is None else s for s in shape), dtype=dtype)


def call_symbolic(layer: Layer, inputs: Any, options: dict[str, Any], training: Any) -> Any:
    """Record ``layer(inputs, **options)`` on symbolic tensors; return the output tensor(s).

    The layer is built for the input shape if it is not yet; the output shape
    comes from ``compute_output_shape`` (or, for a layer without one, from a
    call on zeros with a batch of one). An input the layer cannot take is
    refused here, with the layer's own message naming the tensor.
    """
    if isinstance(inputs, dict):
        inputs = dict(inputs)
    leaves = flatten(inputs)
    for t in leaves:
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"{layer.owner}: called on a mix of symbolic tensors and "
                f"{type(t).__name__}; in a functional model every input of a call must be a "
                f"tensor from layernet.Input or from another layer."
            )
    shape = _shape_of(inputs) if not isinstance(inputs, dict) else None
    try:
        out_shape, out_dtype = layer.symbolic_output(inputs if shape is None else shape, options)
    except (ValueError, TypeError) as exc:
        names = ", ".join(f"{t.name} {shape_str(t.shape)}" for t in leaves)
        raise type(exc)(f"{exc} (called on {names})") from None
    multi = isinstance(out_shape, list)
    shapes = out_shape if multi else [out_shape]
    dtypes = out_dtype if isinstance(out_dtype, list) else [out_dtype] * len(shapes)
    outputs = [
        KerasTensor(tuple(s), dtype=d, name=f"{layer.name}_output_{i}" if multi else None)
        for i, (s, d) in enumerate(zip(shapes, dtypes, strict=True))
    ]
    if not multi:
        outputs[0].name = f"{layer.name}/output"
    if training is not None and is_symbolic(training):
        raise TypeError(f"{layer.owner}: `training` must be a bool or None, not a tensor.")
    node = Node(layer, inputs, options, outputs, training=training, multi_output=multi)
    # the layer's calls, first to last: Keras's `layer.input` / `layer.output` read the first
    layer.__dict__.setdefault("_inbound_nodes", []).append(node)
    return outputs if multi else outputs[0]
