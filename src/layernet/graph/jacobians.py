r"""A whole model's vec-Jacobians, composed from its layers' own Jacobians.

The lecture notes' chain rule for a chain of layers,
:math:`\partial\operatorname{vec}(X^{L})/\partial\operatorname{vec}(X^1)^T
= \prod_i \partial\operatorname{vec}(X^{i+1})/\partial\operatorname{vec}(X^i)^T`,
becomes for a graph a sum over the paths: visiting the calls in topological
order, each tensor :math:`T` computed by a call :math:`T = f(U_1, \dots, U_m; \theta)`
gets

.. math::

    \frac{\partial\operatorname{vec}(T)}{\partial\operatorname{vec}(X)^T}
      = \sum_{i=1}^{m}
        \frac{\partial\operatorname{vec}(T)}{\partial\operatorname{vec}(U_i)^T}
        \frac{\partial\operatorname{vec}(U_i)}{\partial\operatorname{vec}(X)^T},
    \qquad
    \frac{\partial\operatorname{vec}(T)}{\partial\operatorname{vec}(w)^T}
      = [w \in \theta]\,
        \frac{\partial\operatorname{vec}(T)}{\partial\operatorname{vec}(w)^T}\Big|_{\text{local}}
      + \sum_{i=1}^{m}
        \frac{\partial\operatorname{vec}(T)}{\partial\operatorname{vec}(U_i)^T}
        \frac{\partial\operatorname{vec}(U_i)}{\partial\operatorname{vec}(w)^T},

where the local factors are the layer's :meth:`~layernet.Layer.jacobian_input`
and :meth:`~layernet.Layer.jacobian_params`. A skip connection adds an identity
term; a layer called twice contributes its local parameter Jacobian once per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .node import pack_like
from .tensor import KerasTensor

if TYPE_CHECKING:
    from ..models.model import Model


@dataclass
class ModelJacobians:
    """The Jacobians of a model's outputs (concatenated in order, C-order vec).

    Attributes
    ----------
    inputs : list of ndarray
        :math:`\\partial\\operatorname{vec}(Y)/\\partial\\operatorname{vec}(X_k)^T`, one
        matrix per model input.
    params : dict of str to ndarray
        :math:`\\partial\\operatorname{vec}(Y)/\\partial\\operatorname{vec}(w)^T` for every
        weight, keyed as :attr:`layernet.Model.params` (``"<layer>/<name>"``).
    tensors : dict of str to ndarray
        For every tensor of the graph, its Jacobian with respect to the (first) input,
        by tensor name: the partial products of the chain rule, to look at.
    """

    inputs: list[np.ndarray]
    params: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def compose_jacobians(model: Model, x: Any) -> ModelJacobians:
    """Compose a functional model's Jacobians at ``x`` from its layers' Jacobians.

    Parameters
    ----------
    model : Model
        A functional model (small shapes: the matrices are dense).
    x : ndarray, list or dict of ndarray
        The input(s) at which to differentiate.

    Returns
    -------
    ModelJacobians

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> inp = ln.Input(shape=(3,))
    >>> h = ln.Dense(3, name="hidden", dtype="float64", seed=0)(inp)
    >>> model = ln.Model(inp, ln.Add(dtype="float64")([inp, ln.Tanh(dtype="float64")(h)]))
    >>> J = ln.graph.compose_jacobians(model, np.ones((1, 3)))
    >>> J.inputs[0].shape, sorted(J.params)
    ((3, 3), ['hidden/bias', 'hidden/kernel'])
    """
    graph = model.graph
    xs = model.prepare_input(x)
    xs = xs if isinstance(xs, list) else [xs]
    env: dict[int, np.ndarray] = {}
    jx: dict[int, dict[int, np.ndarray]] = {}
    jw: dict[int, dict[str, np.ndarray]] = {}
    names: dict[int, str] = {}
    for k, (t, v) in enumerate(zip(graph.inputs, xs, strict=True)):
        env[id(t)] = v
        jx[id(t)] = {k: np.eye(v.size, dtype=v.dtype)}
        jw[id(t)] = {}
        names[id(t)] = t.name
    for node in graph.nodes:
        layer = node.layer
        args = pack_like(node.inputs, [env[id(t)] for t in node.input_tensors])
        options = {
            k: (env[id(v)] if isinstance(v, KerasTensor) else v) for k, v in node.options.items()
        }
        y, _ = layer.call_forward(args, False, **options)
        local_in = layer.jacobian_input(args, **options) if options else layer.jacobian_input(args)  # type: ignore[arg-type]
        local_in = local_in if isinstance(local_in, list) else [local_in]  # type: ignore[assignment]
        local_w = (
            (layer.jacobian_params(args, **options) if options else layer.jacobian_params(args))  # type: ignore[arg-type]
            if layer.params
            else {}
        )
        outs = y if node.multi_output else [y]
        offset = 0
        for t, value in zip(node.outputs, outs, strict=True):
            rows = slice(offset, offset + value.size)
            offset += value.size
            acc_x: dict[int, np.ndarray] = {}
            acc_w: dict[str, np.ndarray] = {}
            for u, j_local in zip(node.input_tensors, local_in, strict=True):
                block = j_local[rows]
                for k, j in jx[id(u)].items():
                    acc_x[k] = acc_x.get(k, 0) + block @ j
                for key, j in jw[id(u)].items():
                    acc_w[key] = acc_w.get(key, 0) + block @ j
            for name, j in local_w.items():
                key = f"{layer.name}/{name}"
                acc_w[key] = acc_w.get(key, 0) + j[rows]
            env[id(t)] = value
            jx[id(t)] = acc_x
            jw[id(t)] = acc_w
            names[id(t)] = t.name
    rows_total = sum(env[id(t)].size for t in graph.outputs)
    inputs = []
    for k, v in enumerate(xs):
        blocks = [jx[id(t)].get(k, np.zeros((env[id(t)].size, v.size))) for t in graph.outputs]
        inputs.append(np.concatenate(blocks, axis=0) if blocks else np.zeros((0, v.size)))
    params = {}
    for key, p in model.params.items():
        blocks = [jw[id(t)].get(key, np.zeros((env[id(t)].size, p.size))) for t in graph.outputs]
        params[key] = np.concatenate(blocks, axis=0) if blocks else np.zeros((rows_total, p.size))
    tensors = {names[key]: j[0] for key, j in jx.items() if 0 in j}
    return ModelJacobians(inputs=inputs, params=params, tensors=tensors)
