"""The graph of calls: symbolic tensors, the calls (nodes) that made them, and running them.

Calling a layer on a symbolic tensor (:class:`KerasTensor`, made by
:func:`layernet.Input`) records a :class:`Node`: the layer, the tensors it was
called on and the tensors it returned. :class:`Graph` orders the nodes of a set
of outputs once and runs them; what each call keeps for its backward pass
belongs to that run (a :class:`Tape`), never to the layer, so one layer can be
called several times in a model and its parameter gradients add up over its
calls.
"""

from .executor import Graph, Tape
from .jacobians import ModelJacobians, compose_jacobians
from .node import Node
from .tensor import KerasTensor, is_symbolic

__all__ = [
    "Graph",
    "KerasTensor",
    "ModelJacobians",
    "Node",
    "Tape",
    "compose_jacobians",
    "is_symbolic",
]
