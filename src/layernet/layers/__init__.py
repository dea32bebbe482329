"""Layer classes; every one follows the contract of :class:`Layer`.

Keras's class names (``MaxPooling2D``, ``AveragePooling2D``, ...) sit beside
layernet's short ones, so ``from layernet import layers`` serves Keras code.
"""

from typing import TYPE_CHECKING

from .._validation import missing_attribute
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
from .depthwise import (
    DepthwiseConv,
    DepthwiseConv1D,
    DepthwiseConv2D,
    SeparableConv,
    SeparableConv1D,
    SeparableConv2D,
)
from .dropout import Dropout
from .input import Input, InputLayer
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
from .preprocessing import (
    CenterCrop,
    Normalization,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
    Rescaling,
    Resizing,
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
    "CenterCrop",
    "Conv",
    "Conv1D",
    "Conv1DTranspose",
    "Conv2D",
    "Conv2DTranspose",
    "Conv3D",
    "Conv3DTranspose",
    "ConvTranspose",
    "Dense",
    "DepthwiseConv",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
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
    "InputLayer",
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
    "Normalization",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "ReLU",
    "Rescaling",
    "Reshape",
    "Residual",
    "Resizing",
    "SeparableConv",
    "SeparableConv1D",
    "SeparableConv2D",
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

# Merging, normalization and attention layers
from . import merging as _merging
from .attention import AdditiveAttention, Attention, MultiHeadAttention
from .layer_normalization import LayerNormalization
from .merging import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract

# The functional forms (``ln.layers.add([a, b])``, as ``keras.layers.add``) live in this
# namespace only: they are kept out of ``__all__``, hence out of the top-level ``layernet``.
add, subtract, multiply, average = (
    _merging.add,
    _merging.subtract,
    _merging.multiply,
    _merging.average,
)
maximum, minimum, concatenate, dot = (
    _merging.maximum,
    _merging.minimum,
    _merging.concatenate,
    _merging.dot,
)

__all__ += [
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "Concatenate",
    "Dot",
    "LayerNormalization",
    "Maximum",
    "Minimum",
    "MultiHeadAttention",
    "Multiply",
    "Subtract",
]

# Sequence layers: embeddings, recurrent layers on cells, masking and time-step layers
from .rnn import LSTM, RNN, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell
from .sequence import (
    Cropping1D,
    Embedding,
    Masking,
    Permute,
    RepeatVector,
    TimeDistributed,
)

__all__ += [
    "LSTM",
    "RNN",
    "Cropping1D",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "Masking",
    "Permute",
    "RepeatVector",
    "SimpleRNN",
    "SimpleRNNCell",
    "TimeDistributed",
]

if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)


# Stacked recurrent cells
from .rnn import StackedRNNCells

__all__ += ["StackedRNNCells"]
