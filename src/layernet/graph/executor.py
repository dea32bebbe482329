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

from .. import _ops
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
        self._plan_runs()

    # ------------------------------------------------------------------ plans
    def _plan_runs(self) -> None:
        """Read once what every run needs of the graph's structure (not of the layers' state).

        Per call: whether it has options, whether its layer is called elsewhere
        too, whether its layer can make a mask; per tensor: how many times it is
        read (by calls, as an option, as an output), how many gradients flow
        back into it (it needs a sum where more than one does), and the call
        that made it.
        """
        from ..layers.base import Layer  # (the layers import the graph's nodes)

        order = self.nodes
        self._has_options = [bool(n.options) for n in order]
        self._is_shared = [id(n.layer) in self.shared for n in order]
        #: Calls whose layer may give an output a mask even when its input has none.
        self._may_mask = [
            getattr(n.layer, "compute_mask", None) is not None
            or type(n.layer).output_mask is not Layer.output_mask
            for n in order
        ]
        reads: dict[int, int] = {}
        grad_uses: dict[int, int] = {}
        consumer: dict[int, int] = {}
        for i, n in enumerate(order):
            for t in n.input_tensors:
                reads[id(t)] = reads.get(id(t), 0) + 1
                grad_uses[id(t)] = grad_uses.get(id(t), 0) + 1
                consumer[id(t)] = i
            for t in n.option_tensors:
                reads[id(t)] = reads.get(id(t), 0) + 1
        self._output_pos: dict[int, int] = {}
        for k, t in enumerate(self.outputs):
            reads[id(t)] = reads.get(id(t), 0) + 1
            grad_uses[id(t)] = grad_uses.get(id(t), 0) + 1
            self._output_pos.setdefault(id(t), k)
        #: Times each tensor is read: by a call (as an input or an option) or as an output.
        self._reads = reads
        #: Gradients that flow back into each tensor; more than one are summed.
        self._grad_uses = grad_uses
        #: Tensors whose gradient is a sum (they feed several calls, or are outputs too).
        self.summed = frozenset(k for k, c in grad_uses.items() if c > 1)
        self._consumer = consumer  # (the last call reading it; meaningful where read once)
        self._producer = {k: i for i, keys in enumerate(self._out_keys) for k in keys}
        self._fresh_gradient = [type(n.layer).declares("fresh_gradient") for n in order]
        self._passes_views = [
            type(n.layer).declares("passes_views")
            and self._single_in[i]
            and not n.multi_output
            and not n.option_tensors
            for i, n in enumerate(order)
        ]

    def _exclusive(self, key: int) -> bool:
        """Whether the array of tensor ``key`` may be overwritten by the one call reading it.

        It must be read once in the whole graph (no other call, no option, not an
        output), and be private to the run: the new output of a call whose layer
        declares ``fresh_output`` (one output, no activity regularizer reading it),
        or a view passed on by a ``passes_views`` layer of an exclusive array. A
        model input is the caller's array and never is.
        """
        if self._reads.get(key, 0) != 1:
            return False
        i = self._producer.get(key)
        if i is None:
            return False
        node = self.nodes[i]
        if node.multi_output or node.layer.activity_regularizer is not None:
            return False
        if type(node.layer).declares("fresh_output"):
            return True
        return self._passes_views[i] and self._exclusive(self._in_keys[i][0])

    def _private_gradient(self, key: int, private_outputs: Sequence[bool]) -> bool:
        """Whether the gradient of tensor ``key`` is an array that nothing else holds.

        A sum of several gradients is a new array; a single one is private when
        it comes from a loss declared fresh (``private_outputs``), from a layer
        declaring ``fresh_gradient``, or through a ``passes_views`` layer from a
        private one. (Checked again as the backward pass runs.)
        """
        uses = self._grad_uses.get(key, 0)
        if uses != 1:
            return uses > 1
        if key in self._output_pos:
            return bool(private_outputs[self._output_pos[key]])
        c = self._consumer[key]
        if self._fresh_gradient[c]:
            return True
        return self._passes_views[c] and self._private_gradient(
            self._out_keys[c][0], private_outputs
        )

    def in_place_calls(self, private_outputs: Sequence[bool]) -> list[int]:
        """Indices of the calls that may overwrite their input and upstream gradient.

        A call qualifies when its layer's own class declares ``in_place``, the
        layer is called only there (and has no activity regularizer), it takes one
        tensor with no options, that tensor is exclusive to it (read by no other
        call, not an output, and made fresh in the run: a tensor read by two calls,
        a skip connection, never is) and its output's gradient is private (from a
        loss or a layer declaring ``fresh_gradient``, or a sum of several).

        Parameters
        ----------
        private_outputs : sequence of bool
            Per model output, whether the gradient the caller passes for it is an
            array nothing else holds (a loss declaring ``fresh_gradient``).

        Returns
        -------
        list of int
            Indices into the graph's ``nodes``, in order.

        Examples
        --------
        >>> import layernet as ln
        >>> x = ln.Input((4,))
        >>> h = ln.Dense(4)(x)
        >>> chain = ln.Model(x, ln.Dense(2)(ln.ReLU()(h)))
        >>> [chain.graph.nodes[i].layer.name[:4] for i in chain.graph.in_place_calls([True])]
        ['relu']
        >>> skip = ln.Model(x, ln.Add()([ln.ReLU()(h), h]))  # h is read twice
        >>> skip.graph.in_place_calls([True])
        []
        """
        out = []
        for i, node in enumerate(self.nodes):
            layer = node.layer
            if (
                type(layer).declares("in_place")
                and self._single_in[i]
                and not node.multi_output
                and not self._has_options[i]
                and not self._is_shared[i]
                and layer.activity_regularizer is None
                and self._exclusive(self._in_keys[i][0])
                and self._private_gradient(self._out_keys[i][0], private_outputs)
            ):
                out.append(i)
        return out

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
        saved_list = tape.saved
        in_keys, out_keys_all, single_in = self._in_keys, self._out_keys, self._single_in
        has_options, is_shared, may_mask = self._has_options, self._is_shared, self._may_mask
        for i, node in enumerate(self.nodes):
            layer = node.layer
            keys = in_keys[i]
            if single_in[i]:
                args = env[keys[0]]
            else:
                args = pack_like(node.inputs, [env[k] for k in keys])
            options = (
                {
                    k: (env[id(v)] if isinstance(v, KerasTensor) else v)
                    for k, v in node.options.items()
                }
                if has_options[i]
                else None
            )
            in_mask = None
            if masks:
                m = [masks.get(k) for k in keys]
                if any(a is not None for a in m):
                    in_mask = m if isinstance(node.inputs, list | tuple) else m[0]
                    if self._takes_mask[i] and (options is None or "mask" not in options):
                        options = {**(options or {}), "mask": in_mask}
            mode = training if node.training is None else bool(node.training)
            if is_shared[i]:
                with layer.workspace.disabled():
                    y, saved = layer.call_forward(args, mode, **(options or {}))
            elif options:
                y, saved = layer.call_forward(args, mode, **options)
            else:
                y, saved = layer.call_forward(args, mode)
            saved_list[i] = saved
            tape.penalty += getattr(saved, "activity_penalty", 0.0)  # of models inside
            if layer.activity_regularizer is not None and not node.multi_output:
                pen, grad = layer.activity_regularization(y)
                tape.penalty += pen
                tape.activity[i] = grad
            out_keys = out_keys_all[i]
            if node.multi_output:
                for k, v in zip(out_keys, y, strict=True):
                    env[k] = v
            else:
                env[out_keys[0]] = y
            if in_mask is None and not may_mask[i]:
                continue  # no mask in, none made: the output has none
            out_mask = layer.output_mask(args, in_mask)
            if out_mask is not None:
                for k, om in zip(
                    out_keys, out_mask if node.multi_output else [out_mask], strict=True
                ):
                    if om is not None:
                        masks[k] = om
        return [env[id(t)] for t in self.outputs], tape

    # -------------------------------------------------------------- backward
    def _wanted(self, input_grads: bool) -> tuple[list[list[bool]], list[bool]]:
        """Per call, which of its inputs get a gradient, and whether any does (kept for the
        ``_from_call`` list they were read from, which a traced loss replaces)."""
        kept = self.__dict__.get("_wanted_plan")
        if kept is None or kept[0] is not self._from_call:
            plans: dict[bool, tuple[list[list[bool]], list[bool]]] = {}
            kept = (self._from_call, plans)
            self.__dict__["_wanted_plan"] = kept
        plan = kept[1].get(input_grads)
        if plan is None:
            wants = [[input_grads or f for f in flags] for flags in self._from_call]
            plan = (wants, [any(w) for w in wants])
            kept[1][input_grads] = plan
        return plan

    def backward(
        self,
        tape: Tape,
        output_grads: list[np.ndarray | None],
        *,
        input_grads: bool = True,
        param_grads: bool = True,
        private_outputs: Sequence[bool] | None = None,
    ) -> list[np.ndarray | None]:
        """Backpropagate through the recorded calls; return one gradient per model input.

        Each trainable layer's parameter gradients are added into its ``grads``
        (when ``param_grads``); an input no output depends on gets ``None``.

        Where several gradients flow into one tensor they are summed, in the
        same order whatever the switches: into a new array, or (with the fast
        paths on, ``layernet._ops.fast_paths``) into the first one when nothing
        else holds it. A layer working in place (its ``overwrite_inputs`` set by
        the model) gets its upstream gradient to overwrite only when that array
        is private at that point of the pass; otherwise the call runs with
        ``overwrite_inputs`` off.

        Parameters
        ----------
        private_outputs : sequence of bool, optional
            Per output, whether ``output_grads`` holds an array nothing else holds
            (default: none is).
        """
        grads: dict[int, Any] = {}
        private: set[int] = set()  # tensors whose gradient array nothing else holds
        fast = _ops.FAST_PATHS

        def add(key: int, g: Any, fresh: bool) -> None:
            if g is None:
                return
            acc = grads.get(key)
            if acc is None:
                grads[key] = g
                if fresh:
                    private.add(key)
                return
            if (
                fast
                and key in private
                and type(acc) is np.ndarray
                and type(g) is np.ndarray
                and acc.shape == g.shape
                and acc.dtype == g.dtype
                and acc.flags.writeable
            ):
                np.add(acc, g, out=acc)  # the same sum, into the array already owned
            else:
                grads[key] = acc + g
                private.add(key)

        for k, (t, g) in enumerate(zip(self.outputs, output_grads, strict=True)):
            add(id(t), g, private_outputs is not None and bool(private_outputs[k]))
        in_keys, out_keys_all = self._in_keys, self._out_keys
        wants, needs = self._wanted(input_grads)
        for i in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[i]
            out_keys = out_keys_all[i]
            if node.multi_output:
                dys = [grads.get(k) for k in out_keys]
                if all(d is None for d in dys):
                    continue
            else:
                dy0 = grads.get(out_keys[0])
                if i in tape.activity:  # the activity penalty's gradient joins the upstream
                    dy0 = tape.activity[i] if dy0 is None else dy0 + tape.activity[i]
                if dy0 is None:
                    continue
            saved = tape.saved[i]
            layer = node.layer
            want_dx, need_dx = wants[i], needs[i]
            need_params = param_grads and layer.trainable
            dy = dys if node.multi_output else dy0
            dy_private = not node.multi_output and out_keys[0] in private
            if layer.overwrite_inputs and not dy_private:
                # Set by the model's plan, but this upstream gradient is held elsewhere
                # in this pass (or the call has several outputs): nothing is overwritten.
                layer.overwrite_inputs = False
                try:
                    dx, pgrads = layer.call_backward(
                        dy, saved, need_input=need_dx, need_params=need_params
                    )
                finally:
                    layer.overwrite_inputs = True
                in_place = False
            else:
                dx, pgrads = layer.call_backward(
                    dy, saved, need_input=need_dx, need_params=need_params
                )
                in_place = layer.overwrite_inputs and dx is dy  # dy itself, overwritten
            if pgrads:
                acc = layer.grads  # read once: a layer written as call() gathers it anew
                for name, g in pgrads.items():
                    acc[name] += g
            if need_dx and dx is not None:
                fresh = (
                    self._fresh_gradient[i] or in_place or (self._passes_views[i] and dy_private)
                )
                if self._single_in[i]:
                    if want_dx[0]:
                        add(in_keys[i][0], dx, fresh)
                else:
                    dxs = flatten(dx) if isinstance(node.inputs, list | tuple | dict) else [dx]
                    for key, g, want in zip(in_keys[i], dxs, want_dx, strict=True):
                        if want:
                            add(key, g, fresh)
        return [grads.get(id(t)) for t in self.inputs]
