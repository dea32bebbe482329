"""layernet: a pure-NumPy, Keras-style neural-network framework built from layer objects.

Every layer implements ``forward``, ``backward_input`` (∂z/∂x), ``backward_params``
(∂z/∂θ) and can show its explicit vec-Jacobians; :func:`gradcheck` proves them.
"""

__version__ = "0.1.0"

from . import callbacks, datasets, distributed, initializers, metrics, optimizers
from ._ops import Workspace
from ._random import set_seed
from .callbacks import (
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
)
from .distributed import DataParallel, DataParallelError
from .gradcheck import GradCheckResult, gradcheck
from .layers import (
    GRU,
    AvgPool,
    AvgPool1D,
    AvgPool2D,
    BatchNorm,
    Bidirectional,
    Conv,
    Conv1D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    Layer,
    MaxPool,
    MaxPool1D,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)
from .losses import Loss, MSELoss, SoftmaxCrossEntropy
from .models import Sequential
from .optimizers import SGD, Adam, CosineDecay, StepDecay
from .registry import get_registered_name, register_serializable
from .saving import ModelFileError, load_model

__all__ = [
    "GRU",
    "SGD",
    "Adam",
    "AvgPool",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Bidirectional",
    "Conv",
    "Conv1D",
    "Conv2D",
    "CosineDecay",
    "DataParallel",
    "DataParallelError",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GradCheckResult",
    "History",
    "Layer",
    "LearningRateScheduler",
    "Loss",
    "MSELoss",
    "MaxPool",
    "MaxPool1D",
    "MaxPool2D",
    "ModelCheckpoint",
    "ModelFileError",
    "ProgressBar",
    "ReLU",
    "Residual",
    "Sequential",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "Tanh",
    "TerminateOnNaN",
    "Workspace",
    "__version__",
    "callbacks",
    "datasets",
    "distributed",
    "get_registered_name",
    "gradcheck",
    "initializers",
    "load_model",
    "metrics",
    "optimizers",
    "register_serializable",
    "set_seed",
]
