"""layernet: a pure-NumPy, Keras-style neural-network framework built from layer objects.

Every layer implements ``forward``, ``backward_input`` (∂z/∂x), ``backward_params``
(∂z/∂θ) and can show its explicit vec-Jacobians; :func:`gradcheck` proves them.
"""

__version__ = "0.1.0"

from . import callbacks, datasets, distributed, initializers, layers, metrics, optimizers
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
from .layers import *  # noqa: F403  (every layer class, layernet's and Keras's names)
from .layers import __all__ as _layer_names
from .losses import Loss, MSELoss, SoftmaxCrossEntropy
from .models import Sequential
from .optimizers import SGD, Adam, CosineDecay, StepDecay
from .registry import get_registered_name, register_serializable
from .saving import ModelFileError, load_model

__all__ = [
    *_layer_names,
    "Adam",
    "CosineDecay",
    "DataParallel",
    "DataParallelError",
    "EarlyStopping",
    "GradCheckResult",
    "History",
    "LearningRateScheduler",
    "Loss",
    "MSELoss",
    "ModelCheckpoint",
    "ModelFileError",
    "ProgressBar",
    "SGD",
    "Sequential",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "TerminateOnNaN",
    "Workspace",
    "__version__",
    "callbacks",
    "datasets",
    "distributed",
    "get_registered_name",
    "gradcheck",
    "initializers",
    "layers",
    "load_model",
    "metrics",
    "optimizers",
    "register_serializable",
    "set_seed",
]
