"""Random augmentation layers against Keras 3 (JAX) with the draw pinned by ``(a, a)`` factors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")

FILL = ["reflect", "wrap", "constant", "nearest"]
INTERPOLATION = ["bilinear", "nearest"]
PINNED = [
    ("RandomTranslation", {"height_factor": (0.3, 0.3), "width_factor": (-0.2, -0.2)}),
    ("RandomTranslation", {"height_factor": (-0.77, -0.77), "width_factor": (0.61, 0.61)}),
    ("RandomRotation", {"factor": (0.1, 0.1)}),
    ("RandomRotation", {"factor": (-0.3, -0.3)}),
    ("RandomRotation", {"factor": (0.25, 0.25)}),
    ("RandomZoom", {"height_factor": (0.3, 0.3)}),
    ("RandomZoom", {"height_factor": (-0.3, -0.3), "width_factor": (0.5, 0.5)}),
    ("RandomZoom", {"height_factor": (0.9, 0.9), "width_factor": (-0.6, -0.6)}),
]


def keras_layer(name, **kwargs):
    keras = pytest.importorskip("keras")
    return getattr(keras.layers, name)(**kwargs)


def _untied(name, factors, fill_mode, interpolation, shape):
    """A quarter turn of a non-square image samples at exact half pixels, where
    nearest-neighbour rounding ties; those combinations are left out."""
    return not (
        interpolation == "nearest"
        and factors.get("factor") == (0.25, 0.25)
        and shape[1] != shape[2]
    )


GEOMETRIC_CASES = [
    (name, factors, fill_mode, interpolation, shape)
    for name, factors in PINNED
    for fill_mode in FILL
    for interpolation in INTERPOLATION
    for shape in [(2, 6, 7, 2), (1, 5, 5, 1)]
    if _untied(name, factors, fill_mode, interpolation, shape)
]


@pytest.mark.parametrize("name, factors, fill_mode, interpolation, shape", GEOMETRIC_CASES)
def test_geometric_layers_match_keras(name, factors, fill_mode, interpolation, shape, rng):
    kwargs = {**factors, "fill_mode": fill_mode, "interpolation": interpolation, "seed": 1}
    if fill_mode == "constant":
        kwargs["fill_value"] = 0.5
    theirs = keras_layer(name, **kwargs)
    x = rng.uniform(0, 1, shape).astype(np.float32)
    ours = getattr(ln, name)(**kwargs).forward(x, training=True)
    np.testing.assert_allclose(ours, np.asarray(theirs(x, training=True)), atol=2e-6)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("RandomContrast", {"factor": (-0.4, 0.4), "value_range": (0, 1)}),  # factor 1.4, clipped
        ("RandomContrast", {"factor": (0.0, 0.0)}),
        ("RandomBrightness", {"factor": (0.1, 0.1), "value_range": (0, 1)}),
        ("RandomBrightness", {"factor": (-0.3, -0.3), "value_range": (0, 255)}),
    ],
)
def test_colour_layers_match_keras(name, kwargs, rng):
    theirs = keras_layer(name, seed=1, **kwargs)
    hi = kwargs.get("value_range", (0, 255))[1]
    x = rng.uniform(0, hi, (3, 4, 5, 2)).astype(np.float32)
    ours = getattr(ln, name)(seed=1, **kwargs).forward(x, training=True)
    np.testing.assert_allclose(ours, np.asarray(theirs(x, training=True)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name, kwargs, lower, upper",
    [
        ("RandomContrast", {"factor": 0.3}, 0.0, 0.3),  # Keras 3: [1, 1 + f]
        ("RandomContrast", {"factor": (0.5, 0.2)}, 0.2, 0.5),  # sorted
        ("RandomRotation", {"factor": (0.2, -0.1)}, -0.1, 0.2),
        ("RandomBrightness", {"factor": 0.25}, -0.25, 0.25),
    ],
)
def test_factor_meanings_are_keras_meanings(name, kwargs, lower, upper):
    theirs = keras_layer(name, **kwargs)
    ours = getattr(ln, name)(**kwargs)
    assert tuple(ours.factor) == pytest.approx((lower, upper))
    assert tuple(theirs.factor) == pytest.approx((lower, upper))


def test_translation_and_zoom_pairs_are_sorted_as_in_keras():
    keras_t = keras_layer("RandomTranslation", height_factor=(0.2, -0.1), width_factor=0.3)
    ours_t = ln.RandomTranslation((0.2, -0.1), 0.3)
    assert ours_t.height_factor == pytest.approx((keras_t.height_lower, keras_t.height_upper))
    keras_z = keras_layer("RandomZoom", height_factor=(0.4, -0.2))
    ours_z = ln.RandomZoom((0.4, -0.2))
    assert ours_z.height_factor == pytest.approx((keras_z.height_lower, keras_z.height_upper))


def test_rotation_turns_counter_clockwise():
    x = np.zeros((1, 5, 5, 1))
    x[0, 0, 2, 0] = 1.0  # a dot at the top centre
    y = ln.RandomRotation((0.25, 0.25), seed=0, dtype="float64").forward(x, training=True)
    assert np.unravel_index(np.argmax(y[0, :, :, 0]), (5, 5)) == (2, 0)  # now at the left


def test_contrast_factor_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"RandomContrast '.*': invalid value for `factor`"):
        ln.RandomContrast(-0.2)
    with pytest.raises(ValueError, match=r"`factor`: .* upper >= 0"):
        ln.RandomContrast((-0.5, -0.1))
