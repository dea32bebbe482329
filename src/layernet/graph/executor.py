r"""Running a graph of calls forward, and backward by the chain rule.

For a graph, the notes' chain rule sums over paths: if a tensor :math:`X` feeds
calls with outputs :math:`Y_1, \dots, Y_k`, then

.. math::

    \frac{\partial z}{\partial \operatorname{vec}(X)^T}
      = \sum_{j=1}^{k} \frac{\partial z}{\partial \operatorname{vec}(Y_j)^T}
        \frac{\partial \operatorname{vec}(Y_j)}{\partial \operatorname{vec}(X)^T},

and a layer called several times gets the sum of its calls' parameter
gradients. :meth:`Graph.backward` visits the calls in reverse topological
order, so every tensor's gradient is complete before it is passed on.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import shape_str
from .node import Node, flatten, pack_like
from .tensor import KerasTensor


class Tape:
    """What one run of a graph keeps for its backward pass: per call, its ``saved``.

    Attributes
    ----------
    saved : list
        ``saved`` of each call, in the graph's order (``None`` for a call not run).
    masks : dict
        Masks of tensors by id, as computed during the run.
    training : bool
    """

    def __init__(self, n: int, training: bool) -> None:
        self.saved: list[Any] = [None] * n
        self.masks: dict[int, Any] = {}
        self.training = training
        #: Activity regularizers' total penalty, and their gradients by call index.
        self.penalty = 0.0
        self.activity: dict[int, Any] = {}


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Graph:
    """The calls that lead from ``inputs`` to ``outputs``, ordered once.

    Parameters
    ----------
    inputs : list of KerasTensor
    outputs : list of KerasTensor
    owner : str
        How error messages refer to the model.

    Raises
    ------
    ValueError
        An output not reachable from the inputs (it depends on a tensor that is
        not one of them), or an input that is not a tensor from ``ln.Input``.
    """

    def __init__(self, inputs: Sequence[KerasTensor], outputs: Sequence[KerasTensor], owner: str):
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.owner = owner
        input_ids = {id(t) for t in self.inputs}
        order: list[Node] = []
        seen: set[int] = set()
        visiting: set[int] = set()

        def visit_tensor(t: KerasTensor, path: str) -> None:
            if id(t) in input_ids:
                return
            if t.node is None:
                raise ValueError(
                    f"{owner}: output {path} depends on tensor '{t.name}' "
                    f"{shape_str(t.shape)}, which is not among the model's inputs "
                    f"({', '.join(repr(i.name) for i in self.inputs)}); pass every Input the "
                    f"outputs are computed from to Model(inputs=...)."
                )
            node = t.node
            if id(node) in seen:
                return
            if id(node) in visiting:  # pragma: no cover - tensors are immutable, no cycles
                raise ValueError(f"{owner}: the graph has a cycle through {node!r}.")
            visiting.add(id(node))
            for parent in node.parents:
                visit_tensor(parent, path)
            visiting.discard(id(node))
            seen.add(id(node))
            order.append(node)

        for t in self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"{owner}: expected the outputs to be symbolic tensors (results of calling "
                    f"layers on ln.Input tensors), received {type(t).__name__}."
                )
            visit_tensor(t, f"'{t.name}'")
        self.nodes = order
        used = {id(p) for n in order for p in n.parents} | {id(t) for t in self.outputs}
        for t in self.inputs:
            if id(t) not in used:
                raise ValueError(
                    f"{owner}: input '{t.name}' {shape_str(t.shape)} feeds none of the outputs; "
                    f"remove it from Model(inputs=...) or use it."
                )
        # Which inputs of each call need a gradient (a tensor computed from a call, or any
        # tensor when the model's input gradient is asked for).
        produced = {id(t) for n in order for t in n.outputs}
        self._from_call = [[id(t) in produced for t in n.input_tensors] for n in order]
        counts: dict[int, int] = {}
        for n in order:
            counts[id(n.layer)] = counts.get(id(n.layer), 0) + 1
        #: Layers called more than once: their scratch buffers are not reused between calls.
        self.shared = {key for key, c in counts.items() if c > 1}
        self._takes_mask = [_accepts(n.layer.compute_forward, "mask") for n in order]
        # Per call, read once here rather than at every run: the keys of its tensors in a
        # run's environment, and whether it takes one plain tensor (no packing needed).
        self._in_keys = [[id(t) for t in n.input_tensors] for n in order]
        self._out_keys = [[id(t) for t in n.outputs] for n in order]
        self._single_in = [isinstance(n.inputs, KerasTensor) for n in order]
        called: list[Any] = []
        seen_layers: set[int] = set()
        for n in order:
            if id(n.layer) not in seen_layers and not getattr(n.layer, "is_op", False):
                seen_layers.add(id(n.layer))
                called.append(n.layer)
        #: Each layer called (ops left out) once, in call order.
        self.layers: list[Any] = called

    # ---------------------------------------------------------------- shapes
    def output_shapes(self, input_shapes: list[tuple[int | None, ...]]) -> list[Any]:
        """Output shapes for inputs of ``input_shapes`` (each layer validates)."""
        shapes: dict[int, Any] = {
            id(t): tuple(s) for t, s in zip(self.inputs, input_shapes, strict=True)
        }
        for node in self.nodes:
            ins = pack_like(node.inputs, [shapes[id(t)] for t in node.input_tensors])
            if node.options:  # options may add outputs (return_attention_scores=True)
                out = node.layer.symbolic_output(ins, node.options)[0]
            else:
                out = node.layer.output_shape(ins)
            outs = out if node.multi_output else [out]
            for t, s in zip(node.outputs, outs, strict=True):
                shapes[id(t)] = s
        return [shapes[id(t)] for t in self.outputs]

    # --------------------------------------------------------------- forward
    def forward(self, values: list[np.ndarray], training: bool) -> tuple[list[np.ndarray], Tape]:
        """Run every call on ``values`` (one array per input); the outputs and the tape."""
        env: dict[int, Any] = {id(t): v for t, v in zip(self.inputs, values, strict=True)}
        tape = Tape(len(self.nodes), training)
        masks = tape.masks
        shared = self.shared
        for i, node in enumerate(self.nodes):
            layer = node.layer
            keys = self._in_keys[i]
            if self._single_in[i]:
                args = env[keys[0]]
            else:
                args = pack_like(node.inputs, [env[k] for k in keys])
            options = (
                {
                    k: (env[id(v)] if isinstance(v, KerasTensor) else v)
                    for k, v in node.options.items()
                }
                if node.options
                else {}
            )
            in_mask = None
            if masks:
                m = [masks.get(k) for k in keys]
                if any(a is not None for a in m):
                    in_mask = m if isinstance(node.inputs, list | tuple) else m[0]
                    if self._takes_mask[i] and "mask" not in options:
                        options["mask"] = in_mask
            mode = training if node.training is None else bool(node.training)
            if id(layer) in shared:
                with layer.workspace.disabled():
                    y, saved = layer.call_forward(args, mode, **options)
            else:
                y, saved = layer.call_forward(args, mode, **options)
            tape.saved[i] = saved
            tape.penalty += getattr(saved, "activity_penalty", 0.0)  # of models inside
            if layer.activity_regularizer is not None and not node.multi_output:
                pen, grad = layer.activity_regularization(y)
                tape.penalty += pen
                tape.activity[i] = grad
            out_keys = self._out_keys[i]
            if node.multi_output:
                for k, v in zip(out_keys, y, strict=True):
                    env[k] = v
            else:
                env[out_keys[0]] = y
            out_mask = layer.output_mask(args, in_mask)
            if out_mask is not None:
                for k, om in zip(
                    out_keys, out_mask if node.multi_output else [out_mask], strict=True
                ):
                    if om is not None:
                        masks[k] = om
        return [env[id(t)] for t in self.outputs], tape

    # -------------------------------------------------------------- backward
    def backward(
        self,
        tape: Tape,
        output_grads: list[np.ndarray | None],
        *,
        input_grads: bool = True,
        param_grads: bool = True,
    ) -> list[np.ndarray | None]:
        """Backpropagate through the recorded calls; return one gradient per model input.

        Each trainable layer's parameter gradients are added into its ``grads``
        (when ``param_grads``); an input no output depends on gets ``None``.
        """
        grads: dict[int, Any] = {}

        def add(t: KerasTensor, g: Any) -> None:
            key = id(t)
            if g is None:
                return
            if key in grads:
                grads[key] = grads[key] + g
            else:
                grads[key] = g

        for t, g in zip(self.outputs, output_grads, strict=True):
            add(t, g)
        for i in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[i]
            dys = [grads.get(k) for k in self._out_keys[i]]
            if i in tape.activity:  # the activity penalty's gradient joins the upstream one
                dys[0] = tape.activity[i] if dys[0] is None else dys[0] + tape.activity[i]
            if all(d is None for d in dys):
                continue
            saved = tape.saved[i]
            if saved is None and tape.saved is None:  # pragma: no cover
                continue
            layer = node.layer
            want_dx = [input_grads or f for f in self._from_call[i]]
            if node.multi_output:
                dy = dys
            else:
                dy = dys[0]  # type: ignore[assignment]
            dx, pgrads = layer.call_backward(
                dy,
                saved,
                need_input=any(want_dx),
                need_params=param_grads and layer.trainable,
            )
            if pgrads:
                acc = layer.grads  # read once: a layer written as call() gathers it anew
                for k, g in pgrads.items():
                    acc[k] += g
            if any(want_dx) and dx is not None:
                dxs = flatten(dx) if isinstance(node.inputs, list | tuple | dict) else [dx]
                for t, g, want in zip(node.input_tensors, dxs, want_dx, strict=True):
                    if want:
                        add(t, g)
        return [grads.get(id(t)) for t in self.inputs]
