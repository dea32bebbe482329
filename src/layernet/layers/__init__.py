"""Layer classes; every one follows the contract of :class:`Layer`."""

from .activations import ReLU, Sigmoid, Tanh
from .base import Layer
from .conv import Conv, Conv1D, Conv2D
from .dense import Dense
from .dropout import Dropout
from .input import Input
from .normalization import BatchNorm
from .pooling import AvgPool, AvgPool1D, AvgPool2D, MaxPool, MaxPool1D, MaxPool2D
from .reshape import Flatten

__all__ = [
    "AvgPool",
    "AvgPool1D",
    "AvgPool2D",
    "BatchNorm",
    "Conv",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "Layer",
    "MaxPool",
    "MaxPool1D",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Tanh",
]
