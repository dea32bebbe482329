"""Layer classes; every one follows the contract of :class:`Layer`.

Keras's class names (``MaxPooling2D``, ``AveragePooling2D``, ...) sit beside
layernet's short ones, so ``from layernet import layers`` serves Keras code.
"""

from .activations import (
    ELU,
    GELU,
    Activation,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from .base import Layer
from .calling import added_losses_in_backward
from .conv import Conv, Conv1D, Conv2D, Conv3D
from .conv_transpose import Conv1DTranspose, Conv2DTranspose, Conv3DTranspose, ConvTranspose
from .core import Lambda
from .dense import Dense
from .dropout import Dropout
from .input import Input
from .normalization import BatchNorm, BatchNormalization
from .pooling import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
    MaxPool,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
)
from .recurrent import GRU, Bidirectional
from .reshape import (
    Flatten,
    Reshape,
    UpSampling1D,
    UpSampling2D,
    UpSampling3D,
    ZeroPadding1D,
    ZeroPadding2D,
    ZeroPadding3D,
)
from .residual import Residual

__all__ = [
    "ELU",
    "GELU",
    "GRU",
    "Activation",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BatchNorm",
    "BatchNormalization",
    "Bidirectional",
    "Conv",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvTranspose",
    "Dense",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "Input",
    "Lambda",
    "Layer",
    "LeakyReLU",
    "MaxPool",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "ReLU",
    "Reshape",
    "Residual",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    "added_losses_in_backward",
]
