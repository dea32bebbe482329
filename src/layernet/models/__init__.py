"""Models: the functional :class:`Model` and :class:`Sequential` (Keras's ``keras.models``)."""

from ..cloning import clone_model
from ..saving import load_model
from ..training.trainer import class_weight_to_sample_weight
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential", "class_weight_to_sample_weight", "clone_model", "load_model"]
