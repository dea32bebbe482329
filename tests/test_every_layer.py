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
#: input shape, distinct input values needed)
CASES: dict[str, tuple[Any, tuple[int, ...], bool]] = {
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
}

# Layers written as call(): their derivative is traced from the ops.
CASES["Lambda"] = ({"function": ln.ops.tanh}, (3, 4), False)

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


def sample(name: str, rng: np.random.Generator) -> np.ndarray:
    _, shape, distinct = CASES[name]
    return distinct_values(shape, rng) if distinct else rng.standard_normal(shape)


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
    assert y32.dtype == np.float32
    for k in a.params:
        np.testing.assert_allclose(b.params[k], a.params[k].astype(np.float32))
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y64.shape)
    np.testing.assert_allclose(b.backward_input(dy), a.backward_input(dy), rtol=1e-4, atol=1e-5)
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
