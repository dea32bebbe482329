"""layernet: a pure-NumPy, Keras-style neural-network framework built from layer objects.

Every layer implements ``forward``, ``backward_input`` (∂z/∂x), ``backward_params``
(∂z/∂θ) and can show its explicit vec-Jacobians; :func:`gradcheck` proves them.
"""

from . import initializers
from ._random import set_seed
from .gradcheck import GradCheckResult, gradcheck
from .layers import (
    AvgPool,
    AvgPool1D,
    AvgPool2D,
    Conv,
    Conv1D,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from .losses import Loss, MSELoss, SoftmaxCrossEntropy

__version__ = "0.1.0"

__all__ = [
    "AvgPool",
    "AvgPool1D",
    "AvgPool2D",
    "Conv",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Flatten",
    "GradCheckResult",
    "Layer",
    "Loss",
    "MSELoss",
    "MaxPool",
    "MaxPool1D",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "__version__",
    "gradcheck",
    "initializers",
    "set_seed",
]
