r"""See a ``call()`` layer's derivative: its recorded ops, their local Jacobians, and the chain.

For a layer written as ``call()``, :func:`explain` runs one call, lists every
recorded op with the shape of its local Jacobian
:math:`J_k = \partial\operatorname{vec}(y_k)/\partial\operatorname{vec}(x_k)^T`, and
composes them by the chain rule, in the order the ops ran,

.. math::

    \frac{\partial\operatorname{vec}(y_k)}{\partial\operatorname{vec}(X)^T}
      = \sum_{i} J_{k,i}\,
        \frac{\partial\operatorname{vec}(x_{k,i})}{\partial\operatorname{vec}(X)^T},

into the layer's input Jacobian (and likewise for each parameter). The result
equals :meth:`~layernet.layers.Layer.jacobian_input`, which walks the same ops
backwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ops.primitives import Primitive


@dataclass
class Step:
    """One recorded op: its name, shapes, and local Jacobians (one per input, ``None``
    for inputs without a derivative or that are constants)."""

    op: str
    input_shapes: list[tuple[int, ...] | None]
    output_shape: tuple[int, ...]
    local_jacobians: list[np.ndarray | None]
    inputs: list[str]
    output: str


@dataclass
class CallExplanation:
    """What :func:`explain` returns: the steps, and the Jacobians composed from them.

    Attributes
    ----------
    steps : list of Step
        (each with ``op``, ``input_shapes``, ``output_shape``, ``local_jacobians``)
        The recorded ops in the order they ran.
    jacobian_input : ndarray or list of ndarray
        :math:`\\partial\\operatorname{vec}(Y)/\\partial\\operatorname{vec}(X)^T` composed
        by the chain rule from the steps' local Jacobians.
    jacobian_params : dict of str to ndarray
        The same for each parameter of the layer.
    """

    layer: str
    steps: list[Any] = field(default_factory=list)
    jacobian_input: Any = None
    jacobian_params: dict[str, np.ndarray] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"call of {self.layer}: {len(self.steps)} recorded ops"]
        for k, s in enumerate(self.steps):
            jac = ", ".join(
                "—" if j is None else f"{j.shape[0]}x{j.shape[1]}" for j in s.local_jacobians
            )
            ins = ", ".join(s.inputs)
            lines.append(
                f"  {k + 1:>2}. {s.output} = {s.op}({ins})  shape {s.output_shape}  J: {jac}"
            )
        jin = self.jacobian_input
        shapes = [j.shape for j in jin] if isinstance(jin, list) else [jin.shape]
        lines.append(
            "chain: dvec(Y)/dvec(X)^T = sum over paths of products of the J's above, "
            f"shape {', '.join(f'{a}x{b}' for a, b in shapes)}"
        )
        for key, j in self.jacobian_params.items():
            lines.append(f"       dvec(Y)/dvec({key})^T shape {j.shape[0]}x{j.shape[1]}")
        return "\n".join(lines)


def _layer_local(layer: Any, saved: Any, node: Any) -> tuple[list[np.ndarray | None], dict]:
    shapes = [o.shape for o in node.outputs]
    sizes = [int(np.prod(s)) for s in shapes]
    e = np.zeros(sum(sizes))
    offsets = np.cumsum([0, *sizes])
    rows, prows = [], []
    for k in range(e.size):
        e[k] = 1
        parts = [
            e[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes, strict=True)
        ]
        dy = parts if len(parts) > 1 else parts[0]
        g = layer.compute_backward_input(dy, saved)
        rows.append([np.array(a) for a in g] if isinstance(g, list) else [np.array(g)])
        if layer.trainable and layer.params:
            prows.append(
                {k: np.array(v) for k, v in layer.compute_backward_params(dy, saved).items()}
            )
        e[k] = 0
    pjac = {key: np.stack([np.ravel(r[key]) for r in prows]) for key in (prows[0] if prows else {})}
    return [
        None if inp is None else np.stack([np.ravel(r[i]) for r in rows])
        for i, inp in enumerate(node.inputs)
    ], pjac


def explain(layer: Any, x: Any, training: bool = False) -> CallExplanation:
    r"""Run one call of a ``call()`` layer and show how its Jacobian is composed from its ops.

    Parameters
    ----------
    layer : Layer
        A layer written as ``call()`` (its derivative is traced).
    x : ndarray or list of ndarray
        A small input (the Jacobians are built explicitly).
    training : bool, default False

    Returns
    -------
    CallExplanation
        ``print`` it for a table; its ``steps``, ``jacobian_input`` and
        ``jacobian_params`` hold the data.

    Raises
    ------
    TypeError
        For a hand-written layer (it records no ops: see its own Notes).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.layers.Lambda(lambda x: ln.ops.sum(x * x, axis=-1, keepdims=True),
    ...                          dtype="float64")
    >>> ex = ln.utils.explain(layer, np.array([[1.0, 2.0]]))
    >>> [s.op for s in ex.steps]
    ['multiply', 'sum']
    >>> ex.jacobian_input
    array([[2., 4.]])
    """
    if not getattr(layer, "_call_layer", False):
        raise TypeError(
            f"explain: expected a layer written as call(), received {type(layer).__name__} "
            f"(hand-written layers state their Jacobians in their docstrings)."
        )
    xs = layer._prepare_input(x)
    _, saved = layer.compute_forward(xs, bool(training))
    tape = saved.tape
    names: dict[int, str] = {}
    jac_x: dict[int, list[np.ndarray]] = {}  # per tensor: one Jacobian per layer input
    n_in = [t.size for t in saved.inputs]
    for i, t in enumerate(saved.inputs):
        names[id(t)] = f"x{i}" if len(saved.inputs) > 1 else "x"
        jac_x[id(t)] = [
            np.eye(t.size) if j == i else np.zeros((t.size, n)) for j, n in enumerate(n_in)
        ]
    params = layer.params
    layer_paths, paths = layer._paths()
    by_var: dict[int, str] = {}
    for var, leaf in tape.leaves.values():
        key = paths.get(id(var))
        names[id(leaf)] = key or var.name
        if key is not None:
            by_var[id(leaf)] = key
    jac_p: dict[int, dict[str, np.ndarray]] = {
        tid: {key: np.eye(params[key].size)} for tid, key in by_var.items()
    }
    steps: list[Step] = []
    for k, node in enumerate(tape.nodes):
        direct: dict[str, np.ndarray] = {}  # a called layer's own parameters
        if isinstance(node.op, Primitive):
            shapes = [None if t is None else t.shape for t in node.inputs]
            local = node.op.jacobians(node.outputs[0].shape, node.saved, shapes)
            local = [None if t is None else j for t, j in zip(node.inputs, local, strict=True)]
        else:
            local, pj = _layer_local(node.op, node.saved, node)
            prefix = layer_paths.get(id(node.op))
            if prefix is not None:
                direct = {f"{prefix}/{k}": v for k, v in pj.items() if f"{prefix}/{k}" in params}
        for o_i, out in enumerate(node.outputs):
            names[id(out)] = f"t{k + 1}" if len(node.outputs) == 1 else f"t{k + 1}.{o_i}"
            size_before = sum(o.size for o in node.outputs[:o_i])
            rows = slice(size_before, size_before + out.size)
            jx = [np.zeros((out.size, n)) for n in n_in]
            jp: dict[str, np.ndarray] = {key: v[rows] for key, v in direct.items()}
            for inp, j in zip(node.inputs, local, strict=False):
                if inp is None or j is None:
                    continue
                jj = j[rows]
                for a, prev in enumerate(jac_x.get(id(inp), [])):
                    jx[a] = jx[a] + jj @ prev
                for key, prev in jac_p.get(id(inp), {}).items():
                    jp[key] = jp.get(key, 0) + jj @ prev
            jac_x[id(out)], jac_p[id(out)] = jx, jp
        steps.append(
            Step(
                op=node.name,
                input_shapes=[None if t is None else t.shape for t in node.inputs],
                output_shape=node.outputs[0].shape,
                local_jacobians=local,
                inputs=[
                    names.get(id(t), "const") if t is not None else "const" for t in node.inputs
                ],
                output=names[id(node.outputs[0])],
            )
        )
    outs = saved.outputs
    total = sum(o.size for o in outs)

    def stack(parts: list[np.ndarray | None], cols: int) -> np.ndarray:
        return (
            np.concatenate(
                [
                    np.zeros((o.size, cols)) if p is None else p
                    for o, p in zip(outs, parts, strict=True)
                ]
            )
            if total
            else np.zeros((0, cols))
        )

    jin = [
        stack([jac_x.get(id(o), [None] * len(n_in))[a] for o in outs], n)
        for a, n in enumerate(n_in)
    ]
    jpar = {
        key: stack([jac_p.get(id(o), {}).get(key) for o in outs], params[key].size)
        for key in params
    }
    return CallExplanation(
        layer=layer.owner,
        steps=steps,
        jacobian_input=jin if saved.several_in else jin[0],
        jacobian_params=jpar,
    )
