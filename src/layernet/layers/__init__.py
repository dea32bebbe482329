"""Layer classes; every one follows the contract of :class:`Layer`."""

from .activations import ReLU, Sigmoid, Tanh
from .base import Layer
from .conv import Conv, Conv1D, Conv2D
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm
from .pooling import AvgPool, AvgPool1D, AvgPool2D, MaxPool, MaxPool1D, MaxPool2D
from .recurrent import GRU, Bidirectional
from .reshape import Flatten
from .residual import Residual

__all__ = [
    "GRU",
    "AvgPool",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Bidirectional",
    "Conv",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPool",
    "MaxPool1D",
    "MaxPool2D",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Tanh",
]
