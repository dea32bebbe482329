"""layernet: a pure-NumPy, Keras-style neural-network framework built from layer objects.

Every layer implements ``forward``, ``backward_input`` (∂z/∂x), ``backward_params``
(∂z/∂θ) and can show its explicit vec-Jacobians; :func:`gradcheck` proves them.
"""

__version__ = "0.1.0"

from ._malloc import pin_thresholds as _pin_malloc_thresholds

_pin_malloc_thresholds()  # glibc's thresholds for large arrays (see layernet._malloc)

from . import (
    callbacks,
    datasets,
    distributed,
    graph,
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
from .models import Model, Sequential
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
    "Model",
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
    "graph",
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

# Reliability: array size limits
from ._sizes import ArrayTooLargeError, get_max_array_bytes, set_max_array_bytes

__all__ += ["ArrayTooLargeError", "get_max_array_bytes", "set_max_array_bytes"]
# --- A newcomer's first hour: a Keras name layernet lacks points to the compatibility page.
from typing import TYPE_CHECKING as _TYPE_CHECKING

# Speed: layernet's BLAS thread budget
from . import threads
from ._validation import missing_attribute as _missing_attribute

# Keras's top-level base classes (keras.Optimizer, keras.Metric, keras.Initializer)
from .initializers import Initializer as Initializer
from .metrics import Metric as Metric
from .optimizers import Optimizer as Optimizer
from .threads import get_num_threads, set_num_threads

__all__ += ["get_num_threads", "set_num_threads", "threads"]

# Losses and metrics the Keras way, callbacks, pictures
from . import visualization
from .callbacks import BackupAndRestore, ProgbarLogger, TensorBoard

__all__ += ["BackupAndRestore", "ProgbarLogger", "TensorBoard", "visualization"]

# Optimizers, schedules, regularizers and constraints
from . import constraints, regularizers
from .optimizers import (
    Adadelta,
    Adagrad,
    Adamax,
    AdamW,
    Ftrl,
    Lion,
    Nadam,
    RMSprop,
)

__all__ += [
    "Adadelta",
    "Adagrad",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lion",
    "Nadam",
    "RMSprop",
    "constraints",
    "regularizers",
]

# Layers written as call(): layernet.ops, add_weight, layernet.random
from . import activations, backend, cloning, ops, random
from .variables import Variable

__all__ += ["Variable", "activations", "backend", "cloning", "ops", "random"]


# Ops applied to symbolic tensors (ln.Input) are recorded as calls in the graph.
from .graph.op_layer import record_op as _record_op

ops.set_symbolic_handler(_record_op)

if not _TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        raise _missing_attribute(__name__, name)


# Examples gallery: vision (tf.data's vocabulary over NumPy arrays)
from . import data

__all__ += ["data"]
