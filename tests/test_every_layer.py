"""Every registered layer class goes through the shared harness, automatically.

The list of classes comes from the registry (every public Layer subclass that
layernet defines), not from a hand-kept list. A class that needs constructor
arguments or a particular input gets an entry in ``CASES``; a newly registered
class without one fails ``test_every_registered_layer_has_a_case``, so that no
layer is left out of the checks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _harness import assert_layer_gradients, distinct_values

import layernet as ln
from layernet.registry import builtin_classes

#: class name -> (constructor arguments, or a function of (dtype, seed) giving them,
#: input shape -- or a list of input shapes for a layer that takes several inputs --,
#: distinct input values needed (distinct across all the inputs together))
CASES: dict[str, tuple[Any, tuple[int, ...] | list[tuple[int, ...]], bool]] = {
    "Conv": ({"filters": 2, "kernel_size": 3, "padding": "same"}, (2, 5, 2), False),
    "Conv1D": ({"filters": 2, "kernel_size": 2, "strides": 2}, (2, 6, 2), False),
    "Conv2D": ({"filters": 2, "kernel_size": (2, 3), "padding": 1}, (2, 4, 5, 2), False),
    "MaxPool": ({"pool_size": 2}, (2, 6, 2), True),
    "MaxPool1D": ({"pool_size": 3, "strides": 2, "padding": "same"}, (2, 7, 2), True),
    "MaxPool2D": ({"pool_size": 2}, (2, 4, 4, 2), True),
    "AvgPool": ({"pool_size": 3, "strides": 1, "padding": "same"}, (2, 5, 2), False),
    "AvgPool1D": ({"pool_size": 2}, (2, 6, 2), False),
    "AvgPool2D": ({"pool_size": 2, "strides": 1}, (2, 3, 4, 2), False),
    "Dense": ({"units": 3}, (3, 4), False),
    "Dropout": ({"rate": 0.5}, (3, 4), False),
    "BatchNorm": ({}, (4, 3), False),
    "Flatten": ({}, (2, 3, 2), False),
    "ReLU": ({}, (3, 4), True),
    "Sigmoid": ({}, (3, 4), False),
    "Tanh": ({}, (3, 4), False),
    "Activation": ({"activation": "tanh"}, (3, 4), False),
    "ELU": ({}, (3, 4), True),
    "GELU": ({}, (3, 4), False),
    "LeakyReLU": ({}, (3, 4), True),
    "Softmax": ({}, (3, 4), False),
    "Softplus": ({}, (3, 4), False),
    "AvgPool3D": ({"pool_size": 2}, (2, 4, 2, 4, 2), False),
    "AveragePooling1D": ({"pool_size": 2}, (2, 5, 2), False),
    "AveragePooling2D": ({"pool_size": 2, "padding": "same"}, (2, 3, 4, 2), False),
    "AveragePooling3D": ({"pool_size": 2}, (2, 2, 4, 2, 2), False),
    "MaxPool3D": ({"pool_size": 2}, (2, 4, 2, 2, 2), True),
    "MaxPooling1D": ({"pool_size": 2}, (2, 5, 2), True),
    "MaxPooling2D": ({"pool_size": 2, "strides": 1}, (2, 3, 4, 2), True),
    "MaxPooling3D": ({"pool_size": 2}, (2, 2, 2, 4, 2), True),
    "GlobalAvgPool1D": ({}, (2, 5, 3), False),
    "GlobalAvgPool2D": ({}, (2, 3, 4, 3), False),
    "GlobalAvgPool3D": ({}, (2, 2, 3, 2, 3), False),
    "GlobalAveragePooling1D": ({"keepdims": True}, (2, 5, 3), False),
    "GlobalAveragePooling2D": ({}, (2, 3, 4, 3), False),
    "GlobalAveragePooling3D": ({}, (2, 2, 3, 2, 3), False),
    "GlobalMaxPool1D": ({}, (2, 5, 3), True),
    "GlobalMaxPool2D": ({}, (2, 3, 4, 3), True),
    "GlobalMaxPool3D": ({}, (2, 2, 3, 2, 3), True),
    "GlobalMaxPooling1D": ({}, (2, 5, 3), True),
    "GlobalMaxPooling2D": ({"keepdims": True}, (2, 3, 4, 3), True),
    "GlobalMaxPooling3D": ({}, (2, 2, 3, 2, 3), True),
    "BatchNormalization": ({}, (4, 2, 3), False),
    "Conv3D": ({"filters": 2, "kernel_size": 2}, (2, 3, 3, 3, 2), False),
    "ConvTranspose": ({"filters": 2, "kernel_size": 3, "strides": 2}, (2, 4, 2), False),
    "Conv1DTranspose": ({"filters": 2, "kernel_size": 3, "padding": "same"}, (2, 4, 2), False),
    "Conv2DTranspose": ({"filters": 2, "kernel_size": 2, "strides": 2}, (2, 3, 2, 2), False),
    "Conv3DTranspose": ({"filters": 2, "kernel_size": 2}, (2, 2, 2, 2, 2), False),
    "DepthwiseConv": ({"kernel_size": 2, "depth_multiplier": 2}, (2, 3, 4, 2), False),
    "DepthwiseConv1D": ({"kernel_size": 3, "padding": "same"}, (2, 5, 2), False),
    "DepthwiseConv2D": ({"kernel_size": (2, 3), "strides": 2}, (2, 4, 5, 2), False),
    "SeparableConv": ({"filters": 2, "kernel_size": 2}, (2, 3, 3, 2), False),
    "SeparableConv1D": ({"filters": 3, "kernel_size": 2, "depth_multiplier": 2}, (2, 5, 2), False),
    "SeparableConv2D": ({"filters": 2, "kernel_size": 2, "padding": "same"}, (2, 3, 3, 2), False),
    "Rescaling": ({"scale": 0.5, "offset": 1.0}, (2, 3, 2), False),
    "Normalization": ({"mean": [0.5, -1.0], "variance": [2.0, 0.5]}, (3, 2), False),
    "CenterCrop": ({"height": 2, "width": 3}, (2, 4, 4, 2), False),
    "Resizing": ({"height": 3, "width": 2}, (2, 2, 4, 2), False),
    # The random layers are the identity at inference (the harness's map); their
    # training-time derivatives for a fixed draw are checked in test_preprocessing.py.
    "RandomFlip": ({}, (2, 3, 3, 2), False),
    "RandomTranslation": ({"height_factor": 0.2, "width_factor": 0.2}, (2, 3, 3, 2), False),
    "RandomRotation": ({"factor": 0.2}, (2, 3, 3, 2), False),
    "RandomZoom": ({"height_factor": 0.2}, (2, 3, 3, 2), False),
    "RandomContrast": ({"factor": 0.2}, (2, 3, 3, 2), False),
    "RandomBrightness": ({"factor": 0.2}, (2, 3, 3, 2), False),
    "RandomCrop": ({"height": 2, "width": 2}, (2, 3, 4, 2), False),
    "Reshape": ({"target_shape": (3, -1)}, (2, 6, 2), False),
    "UpSampling1D": ({"size": 2}, (2, 3, 2), False),
    "UpSampling2D": ({"size": (2, 1)}, (2, 2, 3, 2), False),
    "UpSampling3D": ({"size": 2}, (2, 2, 1, 2, 2), False),
    "ZeroPadding1D": ({"padding": 1}, (2, 3, 2), False),
    "ZeroPadding2D": ({"padding": (1, 2)}, (2, 3, 3, 2), False),
    "ZeroPadding3D": ({"padding": 1}, (2, 2, 1, 2, 2), False),
    "GRU": (
        {"units": 3, "return_sequences": True, "bias_initializer": "he_uniform"},
        (2, 4, 2),
        False,
    ),
    # Containers get fresh inner layers of the case's dtype (and fixed names, so that
    # two instances have the same parameter names) for every instance.
    "Bidirectional": (
        lambda dtype, seed: {
            "layer": ln.GRU(2, return_sequences=True, name="gru", dtype=dtype, seed=seed)
        },
        (2, 4, 3),
        False,
    ),
    "Residual": (
        lambda dtype, seed: {
            "layers": [
                ln.Dense(4, name="dense", dtype=dtype, seed=seed),
                ln.Tanh(name="tanh", dtype=dtype),
            ]
        },
        (3, 4),
        False,
    ),
    "InputLayer": ({"shape": (4,)}, (3, 4), False),
    # Models are layers: a functional graph with a shared layer and a skip, and a chain.
    "Model": (
        lambda dtype, seed: _functional_case(dtype, seed),
        (3, 4),
        False,
    ),
    "Sequential": (
        lambda dtype, seed: {
            "layers": [
                ln.Dense(5, name="dense_a", dtype=dtype, seed=seed),
                ln.Tanh(name="tanh_a", dtype=dtype),
                ln.Dense(3, name="dense_b", dtype=dtype, seed=seed + 1),
            ]
        },
        (3, 4),
        False,
    ),
    # Merging, normalization and attention layers; several inputs are a list of shapes.
    "Add": ({}, [(2, 3, 4), (2, 3, 4), (2, 1, 4)], False),
    "Subtract": ({}, [(2, 3, 4), (2, 4)], False),
    "Multiply": ({}, [(2, 3), (2, 3), (2, 1)], False),
    "Average": ({}, [(2, 3), (2, 1, 3)], False),
    "Maximum": ({}, [(2, 3, 2), (2, 3, 2), (2, 1, 2)], True),
    "Minimum": ({}, [(2, 3), (2, 2, 3)], True),
    "Concatenate": ({"axis": 1}, [(2, 2, 3), (2, 1, 3)], False),
    "Dot": ({"axes": (2, 2), "normalize": True}, [(2, 3, 4), (2, 2, 4)], False),
    "LayerNormalization": (
        {"axis": [1, 2], "gamma_initializer": "he_uniform", "beta_initializer": "he_uniform"},
        (2, 3, 4),
        False,
    ),
    "MultiHeadAttention": (
        {"num_heads": 2, "key_dim": 3, "bias_initializer": "he_uniform"},
        [(2, 4, 5), (2, 3, 6)],
        False,
    ),
    "Attention": ({"use_scale": True}, [(2, 3, 4), (2, 5, 3), (2, 5, 4)], False),
    "AdditiveAttention": ({}, [(2, 3, 4), (2, 5, 4)], False),
    # Sequence layers. "ids" marks integer inputs (token ids below 10).
    "Embedding": ({"input_dim": 10, "output_dim": 3}, (2, 4), "ids"),
    "Masking": ({"mask_value": 0.0}, (2, 3, 2), False),
    "RepeatVector": ({"n": 3}, (2, 4), False),
    "Permute": ({"dims": (2, 1)}, (2, 3, 4), False),
    "Cropping1D": ({"cropping": (1, 2)}, (2, 6, 2), False),
    "TimeDistributed": (
        lambda dtype, seed: {"layer": ln.Dense(2, name="inner", dtype=dtype, seed=seed)},
        (2, 3, 4),
        False,
    ),
    "SimpleRNN": ({"units": 3, "return_sequences": True}, (2, 4, 2), False),
    "LSTM": ({"units": 3, "return_state": True, "go_backwards": True}, (2, 4, 2), False),
    "RNN": (
        lambda dtype, seed: {
            "cell": ln.GRUCell(3, dtype=dtype, seed=seed, bias_initializer="he_uniform")
        },
        (2, 4, 2),
        False,
    ),
    "SimpleRNNCell": ({"units": 3}, [(2, 4), (2, 3)], False),
    "LSTMCell": ({"units": 2}, [(2, 4), (2, 2), (2, 2)], False),
    "GRUCell": ({"units": 2, "bias_initializer": "he_uniform"}, [(2, 3), (2, 2)], False),
    # One step of a stack: [x, h, c of the LSTM cell, h of the GRU cell].
    "StackedRNNCells": (
        lambda dtype, seed: {
            "cells": [
                ln.LSTMCell(2, name="lstm", dtype=dtype, seed=seed),
                ln.GRUCell(2, name="gru", dtype=dtype, seed=seed, bias_initializer="he_uniform"),
            ]
        },
        [(2, 3), (2, 2), (2, 2), (2, 2)],
        False,
    ),
}

# An op applied to symbolic tensors, recorded as a call (here x − x, one input).
CASES["OpLayer"] = (  # x − x·1
    {
        "function": "layernet>ops.subtract",
        "args": [{"__input__": 0}, {"__input__": 0}],
        "kwargs": {},
    },
    (3, 4),
    False,
)
# Layers written as call(): their derivative is traced from the ops.
CASES["Lambda"] = ({"function": ln.ops.tanh}, (3, 4), False)


def _functional_case(dtype: str, seed: int) -> dict:
    x = ln.Input(shape=(4,), name="x")
    shared = ln.Dense(4, name="shared", dtype=dtype, seed=seed)
    h = ln.Tanh(name="tanh", dtype=dtype)(shared(x))
    h = ln.Tanh(name="tanh_b", dtype=dtype)(shared(h))  # the same layer called twice
    outputs = ln.Dense(2, name="head", dtype=dtype, seed=seed + 1)(h)
    return {"inputs": x, "outputs": outputs}


REGISTERED = builtin_classes(ln.Layer)


def test_the_registry_lists_every_public_layer():
    public = {
        name
        for name in ln.__all__
        if isinstance(getattr(ln, name), type) and issubclass(getattr(ln, name), ln.Layer)
    } - {"Layer"}
    assert public <= set(REGISTERED)
    assert {"BatchNorm", "Dropout", "Conv1D", "Conv2D", "MaxPool1D", "AvgPool2D"} <= set(REGISTERED)


def test_every_registered_layer_has_a_case():
    missing = sorted(set(REGISTERED) - set(CASES))
    assert not missing, f"add an entry to CASES in {__file__} for: {missing}"


def make(name: str, dtype: str = "float64", seed: int = 0):
    kwargs, _, _ = CASES[name]
    if callable(kwargs):
        kwargs = kwargs(dtype, seed)
    return REGISTERED[name](**kwargs, dtype=dtype, seed=seed)


def sample(name: str, rng: np.random.Generator) -> np.ndarray | list[np.ndarray]:
    _, shape, distinct = CASES[name]
    if distinct == "ids":
        return rng.integers(0, 10, shape)
    if isinstance(shape, list):  # several inputs
        sizes = [int(np.prod(s)) for s in shape]
        flat = distinct_values((sum(sizes),), rng) if distinct else rng.standard_normal(sum(sizes))
        parts = np.split(flat, np.cumsum(sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, shape, strict=True)]
    return distinct_values(shape, rng) if distinct else rng.standard_normal(shape)


def as_list(a: Any) -> list[np.ndarray]:
    return list(a) if isinstance(a, list | tuple) else [a]


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_layer_passes_the_harness(name, rng):
    if name not in CASES:
        pytest.fail(f"no case for {name}: add one to CASES")
    assert_layer_gradients(lambda: make(name), sample(name, rng))


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_layer_float32_agrees_with_float64(name, rng):
    if name not in CASES:
        pytest.fail(f"no case for {name}: add one to CASES")
    x = sample(name, rng)
    a, b = make(name, "float64"), make(name, "float32")
    y64, y32 = a.forward(x), b.forward(x)
    for k in a.params:
        np.testing.assert_allclose(b.params[k], a.params[k].astype(np.float32))
    for p32, p64 in zip(as_list(y32), as_list(y64), strict=True):  # each output
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32, p64, rtol=1e-4, atol=1e-5)
    dy = (
        [rng.standard_normal(p.shape) for p in y64]
        if isinstance(y64, list)
        else rng.standard_normal(y64.shape)
    )
    for d32, d64 in zip(as_list(b.backward_input(dy)), as_list(a.backward_input(dy)), strict=True):
        assert d32.dtype == np.float32
        np.testing.assert_allclose(d32, d64, rtol=1e-4, atol=1e-5)
    g64, g32 = a.backward_params(dy), b.backward_params(dy)
    for k in g64:
        assert g32[k].dtype == np.float32
        np.testing.assert_allclose(g32[k], g64[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_registered_layer_round_trips_its_config_and_names_its_saved_state(name, rng):
    if name not in CASES:
        pytest.fail(f"no case for {name}: add one to CASES")
    layer = make(name)
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    layer.forward(sample(name, rng), training=True)
    saved = layer.saved
    assert saved is not None and hasattr(saved, "_fields"), "backward state is a NamedTuple"
    assert ln.get_registered_name(type(layer)) == f"layernet>{name}"
