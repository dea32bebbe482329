"""layernet: a pure-NumPy, Keras-style neural-network framework built from layer objects.

Every layer implements ``forward``, ``backward_input`` (∂z/∂x), ``backward_params``
(∂z/∂θ) and can show its explicit vec-Jacobians; :func:`gradcheck` proves them.
"""

__version__ = "0.1.0"

from . import (
    callbacks,
    datasets,
    distributed,
    initializers,
    layers,
    losses,
    metrics,
    optimizers,
    utils,
)
from ._ops import Workspace
from ._random import set_seed
from .callbacks import (
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    ReduceLROnPlateau,
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
    "CSVLogger",
    "CosineDecay",
    "DataParallel",
    "DataParallelError",
    "EarlyStopping",
    "GradCheckResult",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "Loss",
    "MSELoss",
    "ModelCheckpoint",
    "ModelFileError",
    "ProgressBar",
    "ReduceLROnPlateau",
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
    "losses",
    "metrics",
    "optimizers",
    "register_serializable",
    "set_seed",
    "utils",
]

# Layers written as call(): layernet.ops, add_weight, layernet.random
from . import activations, backend, cloning, ops, random
from .variables import Variable

__all__ += ["Variable", "activations", "backend", "cloning", "ops", "random"]
