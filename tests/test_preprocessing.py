"""Preprocessing layers: derivatives (shared harness), Keras as oracle, random draws."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")

F64 = {"dtype": "float64"}


# ------------------------------------------------------------ deterministic
@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: ln.Rescaling(0.5, offset=-1.0, **F64), (2, 3, 2)),
        (lambda: ln.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.25], **F64), (3, 2)),
        (lambda: ln.Normalization(axis=None, mean=1.0, variance=2.0, invert=True, **F64), (3, 2)),
        (lambda: ln.CenterCrop(2, 3, **F64), (2, 5, 4, 2)),
        (lambda: ln.CenterCrop(4, 3, **F64), (2, 3, 5, 1)),  # smaller: resized
        (lambda: ln.Resizing(3, 5, **F64), (2, 4, 3, 2)),
        (lambda: ln.Resizing(2, 2, interpolation="nearest", **F64), (1, 5, 3, 2)),
        (lambda: ln.Resizing(3, 3, crop_to_aspect_ratio=True, **F64), (2, 4, 6, 1)),
        (lambda: ln.UpSampling2D((2, 3), interpolation="bilinear", **F64), (2, 2, 3, 2)),
    ],
)
def test_deterministic_layers_pass_the_harness(make, shape, rng):
    assert_layer_gradients(make, rng.standard_normal(shape))


def keras_layer(name, **kwargs):
    keras = pytest.importorskip("keras")
    return getattr(keras.layers, name)(**kwargs)


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        ({"height": 3, "width": 5}, (2, 7, 4, 2)),
        ({"height": 9, "width": 2}, (1, 4, 5, 3)),
        ({"height": 4, "width": 4, "interpolation": "nearest"}, (2, 7, 5, 1)),
        ({"height": 8, "width": 3, "interpolation": "nearest"}, (1, 3, 7, 2)),
        ({"height": 3, "width": 3, "crop_to_aspect_ratio": True}, (2, 5, 8, 2)),
        ({"height": 5, "width": 2, "crop_to_aspect_ratio": True}, (1, 6, 6, 1)),
    ],
)
def test_resizing_against_keras(kwargs, shape, rng):
    jax = pytest.importorskip("jax")
    theirs = keras_layer("Resizing", **kwargs)
    ours = ln.Resizing(**kwargs)
    x = rng.uniform(0, 255, shape).astype(np.float32)
    y = ours.forward(x)
    np.testing.assert_allclose(y, np.asarray(theirs(x)), rtol=1e-5, atol=1e-3)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = jax.grad(lambda xx: (theirs(xx) * g).sum())(x)
    np.testing.assert_allclose(ours.backward_input(g), np.asarray(dx), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("size, shape", [((2, 2), (4, 4)), ((4, 3), (6, 4)), ((1, 1), (3, 2))])
@pytest.mark.parametrize("shape_in", [(2, 5, 6, 2), (1, 3, 3, 1)])
def test_center_crop_against_keras(size, shape, shape_in, rng):
    del shape
    x = rng.uniform(0, 1, shape_in).astype(np.float32)
    theirs = keras_layer("CenterCrop", height=size[0], width=size[1])
    np.testing.assert_allclose(
        ln.CenterCrop(*size).forward(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6
    )


def test_center_crop_smaller_input_against_keras(rng):
    x = rng.uniform(0, 1, (2, 3, 5, 2)).astype(np.float32)
    theirs = keras_layer("CenterCrop", height=4, width=6)
    np.testing.assert_allclose(
        ln.CenterCrop(4, 6).forward(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6
    )


def test_upsampling_bilinear_against_keras(rng):
    jax = pytest.importorskip("jax")
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    theirs = keras_layer("UpSampling2D", size=(2, 3), interpolation="bilinear")
    ours = ln.UpSampling2D((2, 3), interpolation="bilinear")
    y = ours.forward(x)
    np.testing.assert_allclose(y, np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = jax.grad(lambda xx: (theirs(xx) * g).sum())(x)
    np.testing.assert_allclose(ours.backward_input(g), np.asarray(dx), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"`interpolation`: expected one of 'nearest'"):
        ln.UpSampling1D(2).__class__.__mro__[1](2, interpolation="bilinear")


def test_rescaling_against_keras(rng):
    x = rng.uniform(0, 255, (2, 3, 3, 1)).astype(np.float32)
    theirs = keras_layer("Rescaling", scale=1 / 127.5, offset=-1)
    np.testing.assert_allclose(
        ln.Rescaling(1 / 127.5, -1).forward(x), np.asarray(theirs(x)), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "axis, shape", [(-1, (20, 3)), (None, (10, 4)), ((1, 2), (6, 3, 2)), (1, (5, 4, 2))]
)
@pytest.mark.parametrize("invert", [False, True])
def test_normalization_adapt_against_keras(axis, shape, invert, rng):
    data = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    theirs = keras_layer("Normalization", axis=axis, invert=invert)
    theirs.adapt(data)
    ours = ln.Normalization(axis=axis, invert=invert)
    ours.adapt(data)
    np.testing.assert_allclose(
        ours.state["mean"],
        np.asarray(theirs.mean).reshape(ours.state["mean"].shape),
        rtol=1e-5,
        atol=1e-6,
    )
    x = rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x)), rtol=1e-4, atol=1e-5)


def test_normalization_given_statistics_against_keras(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    theirs = keras_layer("Normalization", mean=[1.0, 0.0, -1.0], variance=[4.0, 0.0, 1.0])
    ours = ln.Normalization(mean=[1.0, 0.0, -1.0], variance=[4.0, 0.0, 1.0])
    np.testing.assert_allclose(ours.forward(x), np.asarray(theirs(x)), rtol=1e-6)


def test_normalization_errors():
    with pytest.raises(ValueError, match=r"both `mean` and `variance` or neither"):
        ln.Normalization(mean=1.0)
    with pytest.raises(ValueError, match=r"`variance`: expected non-negative"):
        ln.Normalization(mean=1.0, variance=-1.0)
    with pytest.raises(ValueError, match=r"cannot adapt"):
        ln.Normalization(mean=1.0, variance=1.0).adapt(np.ones((2, 2)))
    norm = ln.Normalization()
    norm.adapt(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"built for statistics of shape \(2,\)"):
        norm.forward(np.ones((3, 4)))


# ------------------------------------------------------------------ random
def fixed(cls):
    """The layer with one draw, repeated: training mode with the counter reset each call."""

    class Fixed(cls):
        def compute_forward(self, x, training):
            self.state["seed_generator_state"][2:] = 0
            return super().compute_forward(x, True)

    Fixed.__name__ = f"Fixed{cls.__name__}"
    return Fixed


RANDOM = [
    (lambda: fixed(ln.RandomFlip)(seed=3, **F64), (4, 3, 2, 2)),
    (lambda: fixed(ln.RandomFlip)("vertical", seed=1, **F64), (3, 3, 2, 1)),
    (lambda: fixed(ln.RandomTranslation)(0.3, (-0.4, 0.2), seed=0, **F64), (2, 4, 5, 2)),
    (
        lambda: fixed(ln.RandomTranslation)(
            0.5, 0.5, fill_mode="constant", fill_value=2.0, seed=1, **F64
        ),
        (2, 4, 4, 1),
    ),
    (lambda: fixed(ln.RandomRotation)(0.2, fill_mode="wrap", seed=0, **F64), (2, 4, 4, 2)),
    (
        lambda: fixed(ln.RandomRotation)(0.3, interpolation="nearest", seed=2, **F64),
        (2, 3, 4, 1),
    ),
    (lambda: fixed(ln.RandomZoom)(0.4, seed=0, fill_mode="nearest", **F64), (2, 5, 4, 2)),
    (
        lambda: fixed(ln.RandomZoom)((-0.5, 0.5), (0.1, 0.3), seed=4, fill_mode="mirror", **F64),
        (2, 4, 4, 1),
    ),
    (lambda: fixed(ln.RandomContrast)(0.5, value_range=(-50, 50), seed=0, **F64), (3, 3, 4, 2)),
    (lambda: fixed(ln.RandomBrightness)(0.2, value_range=(-5, 5), seed=0, **F64), (3, 2, 3, 2)),
    (lambda: fixed(ln.RandomCrop)(2, 3, seed=0, **F64), (2, 4, 5, 2)),
]


@pytest.mark.parametrize("make, shape", RANDOM)
def test_random_layers_pass_the_harness_for_a_fixed_draw(make, shape, rng):
    x = rng.standard_normal(shape)
    layer = make()
    y = layer.forward(x)
    assert y.shape != x.shape or not np.allclose(y, x), "the draw should change the input"
    assert_layer_gradients(make, x)


def test_clipping_layers_have_the_masked_derivative(rng):
    # Values well inside and well outside the range (never within eps of its ends).
    x = rng.choice([-3.0, -0.5, 0.0, 0.4, 2.5], size=(2, 3, 3, 1)) + rng.uniform(
        0, 0.01, (2, 3, 3, 1)
    )
    for make in (
        lambda: fixed(ln.RandomBrightness)((0.1, 0.1), value_range=(-1, 1), seed=0, **F64),
        lambda: fixed(ln.RandomContrast)((0.0, 0.0), value_range=(-1, 1), seed=0, **F64),
    ):
        y = make().forward(x)
        assert y.max() == 1 and y.min() == -1  # some entries clipped
        assert_layer_gradients(make, x, front=False)


RANDOM_LAYERS = [
    lambda seed: ln.RandomFlip(seed=seed),
    lambda seed: ln.RandomTranslation(0.3, 0.3, seed=seed),
    lambda seed: ln.RandomRotation(0.2, seed=seed),
    lambda seed: ln.RandomZoom(0.3, seed=seed),
    lambda seed: ln.RandomContrast(0.5, seed=seed),
    lambda seed: ln.RandomBrightness(0.2, seed=seed),
    lambda seed: ln.RandomCrop(3, 3, seed=seed),
]


@pytest.mark.parametrize("make", RANDOM_LAYERS)
def test_random_layers_are_reproducible_and_inactive_at_inference(make, rng):
    x = rng.uniform(0, 255, (4, 5, 5, 2)).astype(np.float32)
    a, b = make(7), make(7)
    first = [a.forward(x, training=True) for _ in range(3)]
    second = [b.forward(x, training=True) for _ in range(3)]
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(first[0], f) for f in first[1:]), "every call draws anew"
    if isinstance(a, ln.RandomCrop):
        expected = ln.Resizing(3, 3, crop_to_aspect_ratio=True).forward(x)
        np.testing.assert_array_equal(a.forward(x), expected)
    else:
        np.testing.assert_array_equal(a.forward(x), x)
    # Another seed, other draws.
    assert not np.array_equal(make(8).forward(x, training=True), first[0])


@pytest.mark.parametrize("make", RANDOM_LAYERS)
def test_generator_state_is_saved_with_the_model(make, tmp_path, rng):
    x = rng.uniform(0, 255, (2, 5, 5, 2)).astype(np.float32)
    model = ln.Sequential([make(11)])
    model.predict(x)  # builds
    layer = model.layers[0]
    layer.forward(x, training=True)  # one draw made
    model.save(tmp_path / "m.npz")
    expected = layer.forward(x, training=True)
    again = ln.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.layers[0].forward(x, training=True), expected)


def test_random_geometry():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    quarter = ln.RandomRotation((0.25, 0.25), seed=0, dtype="float64")
    turned = quarter.forward(x, training=True)[0, :, :, 0]
    assert any(np.allclose(turned, np.rot90(x[0, :, :, 0], k)) for k in (1, 3))
    shift = ln.RandomTranslation((0.5, 0.5), (0, 0), fill_mode="constant", seed=0, **F64)
    moved = shift.forward(x, training=True)[0, :, :, 0]
    np.testing.assert_array_equal(moved, np.vstack([np.zeros((2, 4)), x[0, :2, :, 0]]))
    same = ln.RandomZoom((0, 0), seed=0, **F64).forward(x, training=True)
    np.testing.assert_allclose(same, x)
    flips = ln.RandomFlip("horizontal", seed=0, **F64).forward(np.repeat(x, 8, 0), training=True)
    for f in flips:
        assert np.array_equal(f, x[0]) or np.array_equal(f, x[0, :, ::-1])
    contrast = ln.RandomContrast(0.5, seed=0, **F64).forward(x * 10 + 50, training=True)
    np.testing.assert_allclose(contrast.mean(), (x * 10 + 50).mean())


@given(h=st.integers(1, 6), w=st.integers(1, 6), th=st.integers(1, 7), tw=st.integers(1, 7))
def test_resize_and_crop_matrices_keep_constants(h, w, th, tw):
    x = np.full((1, h, w, 1), 3.0)
    for layer in (
        ln.Resizing(th, tw, **F64),
        ln.Resizing(th, tw, crop_to_aspect_ratio=True, **F64),
        ln.CenterCrop(th, tw, **F64),
    ):
        np.testing.assert_allclose(layer.forward(x), 3.0)


def test_errors():
    with pytest.raises(ValueError, match=r"RandomFlip '.*': invalid value for `mode`"):
        ln.RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"`height_factor`: expected a number or a pair"):
        ln.RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match=r"`fill_mode`: expected one of"):
        ln.RandomRotation(0.1, fill_mode="smear")
    with pytest.raises(ValueError, match=r"`factor`: expected a number in \[0, 1\]"):
        ln.RandomContrast(1.5)
    with pytest.raises(ValueError, match=r"`value_range`"):
        ln.RandomBrightness(0.1, value_range=(1, 0))
    with pytest.raises(ValueError, match=r"`interpolation`: expected one of 'bilinear'"):
        ln.Resizing(2, 2, interpolation="cubic")
    with pytest.raises(ValueError, match=r"`scale`: expected a finite number"):
        ln.Rescaling("big")
    with pytest.raises(ValueError, match=r"expected input with 4 dims"):
        ln.RandomFlip().forward(np.zeros((2, 3)))


@pytest.mark.parametrize(
    "name",
    [
        "Rescaling", "Normalization", "CenterCrop", "Resizing", "RandomFlip",
        "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomCrop",
        "RandomBrightness", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D",
        "SeparableConv2D", "UpSampling2D",
    ],
)  # fmt: skip
def test_arguments_are_keras_arguments(name):
    import inspect

    keras = pytest.importorskip("keras")
    ours = inspect.signature(getattr(ln, name)).parameters
    theirs = inspect.signature(getattr(keras.layers, name)).parameters
    positional = [p for p in ours.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    keras_positional = [
        p for p in theirs if theirs[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert [p.name for p in positional] == keras_positional[: len(positional)]
    for p in positional:  # the keyword-only ones (name, dtype, seed, trainable) are layernet's
        default = theirs[p.name].default
        if isinstance(default, tuple) and p.name in ("strides", "dilation_rate", "size"):
            assert p.default in (1, default) or list(p.default) == list(default), p.name
        elif isinstance(default, tuple):
            assert list(p.default) == list(default), p.name
        else:
            assert p.default == default, p.name


def test_adapted_normalization_is_saved_with_the_model(tmp_path, rng):
    data = rng.standard_normal((50, 3)).astype(np.float32) * 4 + 1
    norm = ln.Normalization()
    norm.adapt(data)
    model = ln.Sequential([norm, ln.Dense(2, seed=0)])
    y = model.predict(data)
    model.save(tmp_path / "m.npz")
    again = ln.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.layers[0].state["mean"], norm.state["mean"])
    np.testing.assert_array_equal(again.predict(data), y)
