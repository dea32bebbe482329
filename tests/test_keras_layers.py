"""The layers Keras users reach for: shared harness (hypothesis), adjointness, configs, errors."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, distinct_values
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import layers
from layernet.layers.activations import ACTIVATIONS
from layernet.layers.base import _REGISTRY

F64 = {"dtype": "float64"}
shapes = st.sampled_from([(1, 5), (3, 4), (2, 6, 3), (2, 3, 3, 2), (1, 7, 1)])


def away_from(x: np.ndarray, points: tuple[float, ...], gap: float = 1e-3) -> np.ndarray:
    """Move entries within ``gap`` of a kink (where no derivative exists) to 0.25 past it."""
    for p in points:
        x = np.where(np.abs(x - p) < gap, p + 0.25, x)
    return x


# ----------------------------------------------------------------------------- activations
KINKS = {
    "relu": (0.0,),
    "relu6": (0.0, 6.0),
    "leaky_relu": (0.0,),
    "hard_sigmoid": (-3.0, 3.0),
    "elu": (0.0,),
    "selu": (0.0,),
}


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_activation_by_name_gradients(act, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    x = away_from(x, KINKS.get(act, ()))
    assert_layer_gradients(lambda: ln.Activation(act, **F64), x)


@given(
    shape=shapes,
    seed=st.integers(0, 2**16),
    slope=st.floats(0, 2),
    alpha=st.floats(0.1, 3),
    approximate=st.booleans(),
)
def test_activation_layers_gradients(shape, seed, slope, alpha, approximate):
    x = away_from(np.random.default_rng(seed).standard_normal(shape) * 3, (0.0,))
    assert_layer_gradients(lambda: ln.LeakyReLU(slope, **F64), x)
    assert_layer_gradients(lambda: ln.ELU(alpha, **F64), x)
    assert_layer_gradients(lambda: ln.GELU(approximate, **F64), x)
    assert_layer_gradients(lambda: ln.Softplus(**F64), x)


@given(shape=shapes, data=st.data(), seed=st.integers(0, 2**16))
def test_softmax_gradients_any_axis(shape, data, seed):
    axis = data.draw(st.sampled_from([a for a in range(-len(shape) + 1, len(shape)) if a != 0]))
    x = np.random.default_rng(seed).standard_normal(shape) * 4
    assert_layer_gradients(lambda: ln.Softmax(axis, **F64), x)
    y = ln.Softmax(axis, **F64).forward(x)
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, atol=1e-14)


def test_softmax_is_stable_and_rows_sum_to_one():
    y = ln.Softmax(**F64).forward(np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(y, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)
    assert np.isfinite(ln.Activation("log_softmax", **F64).forward(np.array([[1e4, 0.0]]))).all()


def test_activation_defaults_and_values():
    x = np.array([[-2.0, 0.0, 3.0]])
    assert ln.LeakyReLU().negative_slope == 0.3  # Keras 3's default for the layer
    np.testing.assert_allclose(ln.LeakyReLU(**F64).forward(x), [[-0.6, 0.0, 3.0]])
    # the function name uses Keras's function default 0.2
    np.testing.assert_allclose(ln.Activation("leaky_relu", **F64).forward(x), [[-0.4, 0.0, 3.0]])
    np.testing.assert_allclose(ln.ELU(**F64).forward(x), [[np.expm1(-2.0), 0.0, 3.0]])
    np.testing.assert_allclose(ln.Activation("linear", **F64).forward(x), x)
    np.testing.assert_allclose(ln.Activation(None, **F64).forward(x), x)
    np.testing.assert_allclose(ln.Activation("swish", **F64).forward(x), x / (1 + np.exp(-x)))
    assert ln.Activation("SiLU").activation == "silu"


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ln.Activation("nope"),
            r"Activation '.*': invalid value for `activation`: "
            r"expected one of .*'relu'.*, received 'nope'",
        ),
        (
            lambda: ln.Activation(3),
            r"`activation`: expected an activation name \(str\), one of layernet\.activations' "
            r"functions, or None",
        ),
        (lambda: ln.LeakyReLU(-0.1), r"`negative_slope`: expected a finite number >= 0"),
        (lambda: ln.ELU("1"), r"`alpha`: expected a finite number, received '1'"),
        (lambda: ln.GELU(1), r"`approximate`: expected a bool, received 1"),
        (lambda: ln.Softmax(0), r"`axis`: expected a non-zero int \(axis 0 is the batch\)"),
    ],
)
def test_activation_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_softmax_axis_out_of_range():
    with pytest.raises(ValueError, match=r"Softmax '.*': `axis`=3 is out of range"):
        ln.Softmax(3).forward(np.zeros((2, 4)))


# ------------------------------------------------------------------------ rearrangements
@given(
    shape=st.sampled_from([(2, 12), (1, 3, 4), (3, 2, 2, 3)]),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_reshape_gradients(shape, seed, data):
    size = int(np.prod(shape[1:]))
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    a = data.draw(st.sampled_from(divisors))
    target = data.draw(st.sampled_from([(a, -1), (-1, a), (a, size // a), (size,)]))
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.Reshape(target, **F64), x)
    y = ln.Reshape(target, **F64).forward(x)
    np.testing.assert_array_equal(y.ravel(), x.ravel())


def test_reshape_output_shapes_and_errors():
    assert ln.Reshape((-1, 2)).output_shape((None, 3, 4)) == (None, 6, 2)
    assert ln.Reshape((-1, 2)).output_shape((None, None, 4)) == (None, None, 2)
    with pytest.raises(
        ValueError, match=r"cannot reshape samples of shape \(3, 4\) \(12 entries\) to \(5, 2\)"
    ):
        ln.Reshape((5, 2)).output_shape((None, 3, 4))
    with pytest.raises(ValueError, match=r"12 is not a multiple of 5"):
        ln.Reshape((5, -1)).output_shape((None, 12))
    with pytest.raises(ValueError, match=r"`target_shape`: expected a non-empty tuple of positive"):
        ln.Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"`target_shape`"):
        ln.Reshape(4)


@st.composite
def padding_cases(draw):
    rank = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["int", "per_axis", "pairs"]))
    if kind == "int":
        padding = draw(st.integers(0, 2))
    elif kind == "per_axis" and rank > 1:
        padding = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    else:
        pairs = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(rank))
        padding = pairs[0] if rank == 1 else pairs
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    return rank, padding, (draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 2)))


@given(padding_cases(), st.integers(0, 2**16))
def test_zero_padding_gradients(case, seed):
    rank, padding, shape = case
    cls = {1: ln.ZeroPadding1D, 2: ln.ZeroPadding2D, 3: ln.ZeroPadding3D}[rank]
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: cls(padding, **F64), x)


def test_zero_padding_values_and_defaults():
    x = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    y = ln.ZeroPadding2D(**F64).forward(x)[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]])
    y = ln.ZeroPadding2D(((0, 1), (2, 0)), **F64).forward(x)[0, :, :, 0]
    np.testing.assert_array_equal(y, [[0, 0, 1, 2], [0, 0, 3, 4], [0, 0, 0, 0]])
    assert ln.ZeroPadding1D().output_shape((None, 5, 2)) == (None, 7, 2)
    assert ln.ZeroPadding3D().output_shape((None, 1, 1, 1, 2)) == (None, 3, 3, 3, 2)
    with pytest.raises(ValueError, match=r"ZeroPadding2D '.*': invalid value for `padding`"):
        ln.ZeroPadding2D((1, 2, 3))
    with pytest.raises(ValueError, match=r"expected input with 4 dims"):
        ln.ZeroPadding2D().forward(np.zeros((1, 3, 2)))


@given(
    rank=st.integers(1, 3),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_upsampling_gradients(rank, data, seed):
    size = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    spatial = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    cls = {1: ln.UpSampling1D, 2: ln.UpSampling2D, 3: ln.UpSampling3D}[rank]
    arg = size[0] if rank == 1 else size
    x = np.random.default_rng(seed).standard_normal((2, *spatial, 2))
    assert_layer_gradients(lambda: cls(arg, **F64), x)


def test_upsampling_values_defaults_errors():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y = ln.UpSampling2D(**F64).forward(x)[0, :, :, 0]
    np.testing.assert_array_equal(y, np.kron([[1, 2], [3, 4]], np.ones((2, 2))))
    assert ln.UpSampling1D().output_shape((None, 3, 1)) == (None, 6, 1)
    assert ln.UpSampling3D().output_shape((None, 1, 2, 3, 1)) == (None, 2, 4, 6, 1)
    with pytest.raises(
        ValueError, match=r"`interpolation`: expected one of 'nearest', 'bilinear', received"
    ):
        ln.UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match=r"UpSampling1D '.*': invalid value for `size`"):
        ln.UpSampling1D(0)


# ------------------------------------------------------------------------------ pooling
@given(
    rank=st.integers(1, 3),
    keepdims=st.booleans(),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_global_pooling_gradients(rank, keepdims, data, seed):
    spatial = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    shape = (data.draw(st.integers(1, 3)), *spatial, data.draw(st.integers(1, 3)))
    x = distinct_values(shape, np.random.default_rng(seed))
    avg = {1: ln.GlobalAveragePooling1D, 2: ln.GlobalAveragePooling2D, 3: ln.GlobalAveragePooling3D}
    mx = {1: ln.GlobalMaxPooling1D, 2: ln.GlobalMaxPooling2D, 3: ln.GlobalMaxPooling3D}
    for cls in (avg[rank], mx[rank]):
        assert_layer_gradients(lambda cls=cls: cls(keepdims=keepdims, **F64), x)
        y = cls(keepdims=keepdims, **F64).forward(x)
        axes = tuple(range(1, rank + 1))
        ref = (
            x.mean(axis=axes, keepdims=keepdims)
            if cls is avg[rank]
            else x.max(axis=axes, keepdims=keepdims)
        )
        np.testing.assert_allclose(y, ref, rtol=1e-14)


def test_global_max_pooling_tie_goes_to_first():
    x = np.array([1.0, 3.0, 3.0]).reshape(1, 3, 1)
    pool = ln.GlobalMaxPooling1D(**F64)
    pool.forward(x)
    np.testing.assert_array_equal(pool.backward_input(np.ones((1, 1)))[0, :, 0], [0, 1, 0])


@st.composite
def pool3d_cases(draw):
    k = tuple(draw(st.integers(1, 2)) for _ in range(3))
    strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 2) for _ in range(3)])))
    padding = draw(st.sampled_from(["valid", "same"]))
    spatial = tuple(ki + draw(st.integers(0, 2)) for ki in k)
    return (draw(st.integers(1, 2)), *spatial, draw(st.integers(1, 2))), k, strides, padding


@given(pool3d_cases(), st.integers(0, 2**16))
def test_pool3d_gradients(case, seed):
    shape, k, strides, padding = case
    x = distinct_values(shape, np.random.default_rng(seed))
    for cls in (ln.MaxPool3D, ln.AvgPool3D, ln.MaxPooling3D, ln.AveragePooling3D):
        assert_layer_gradients(lambda cls=cls: cls(k, strides, padding, **F64), x)


def test_keras_pooling_names_are_the_same_layers():
    x = distinct_values((2, 6, 4, 3), np.random.default_rng(0))
    for keras_cls, ours in [
        (ln.MaxPooling2D, ln.MaxPool2D),
        (ln.AveragePooling2D, ln.AvgPool2D),
    ]:
        a, b = keras_cls((2, 2), **F64), ours((2, 2), **F64)
        np.testing.assert_array_equal(a.forward(x), b.forward(x))
        assert isinstance(a, ours)
    assert ln.MaxPooling1D().pool_size == (2,)
    assert ln.AveragePooling3D().pool_size == (2, 2, 2)


# ------------------------------------------------------------------- transposed convolution
@st.composite
def conv_transpose_cases(draw):
    rank = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same"]))
    op = draw(st.one_of(st.none(), st.tuples(*[st.integers(0, si - 1) for si in s])))
    spatial = tuple(draw(st.integers(1, 4 if rank == 1 else 3)) for _ in range(rank))
    n = draw(st.sampled_from([1, 2]))
    c = draw(st.integers(1, 3))
    return (n, *spatial, c), {
        "filters": draw(st.integers(1, 3)),
        "kernel_size": k,
        "strides": s,
        "dilation_rate": d,
        "padding": padding,
        "output_padding": op,
        "use_bias": draw(st.booleans()),
        "activation": draw(st.sampled_from([None, "tanh", "softmax"])),
    }


@given(conv_transpose_cases(), st.integers(0, 2**16))
def test_conv_transpose_gradients(case, seed):
    shape, kwargs = case
    layer = ln.ConvTranspose(**kwargs, **F64)
    try:
        layer.output_shape(shape)
    except ValueError as exc:  # an empty output ("same", even kernel, output_padding 0)
        assert "output would be empty" in str(exc)
        return
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.ConvTranspose(**kwargs, seed=seed, **F64), x)


def test_conv3d_transpose_gradients(rng):
    x = rng.standard_normal((2, 2, 3, 2, 2))
    assert_layer_gradients(
        lambda: ln.Conv3DTranspose(2, (2, 1, 3), strides=(2, 1, 2), padding="same", seed=1, **F64),
        x,
    )


@given(
    rank=st.integers(1, 2),
    data=st.data(),
    seed=st.integers(0, 999),
)
def test_conv_transpose_is_the_adjoint_of_conv(rank, data, seed):
    """Its input Jacobian is Conv's input Jacobian transposed (same kernel and geometry)."""
    k = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(data.draw(st.integers(1, 2)) for _ in range(rank))
    padding = data.draw(st.sampled_from(["valid", "same"]))
    n_in = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    c, f = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    up = ln.ConvTranspose(
        f, k, strides=s, padding=padding, dilation_rate=d, use_bias=False, seed=seed, **F64
    )
    x = np.random.default_rng(seed).standard_normal((1, *n_in, c))
    y = up.forward(x)
    conv = ln.Conv(c, k, strides=s, padding=padding, dilation_rate=d, use_bias=False, **F64)
    conv.build(y.shape)
    conv.params["kernel"][...] = up.params["kernel"]
    assert conv.output_shape(y.shape) == x.shape
    np.testing.assert_allclose(up.jacobian_input(x), conv.jacobian_input(y).T, atol=1e-14)
    # and the transposed convolution of X is Conv's backward rule applied to X
    conv.forward(y)
    np.testing.assert_allclose(conv.backward_input(x), y, atol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "n", "expected"),
    [
        ({"kernel_size": 3, "strides": 2}, 5, 11),  # (n-1)s + max(k, s)
        ({"kernel_size": 2, "strides": 3}, 4, 12),  # k < s: n*s
        ({"kernel_size": 3, "strides": 2, "padding": "same"}, 5, 10),  # n*s
        ({"kernel_size": 3, "strides": 2, "output_padding": 1}, 5, 12),  # (n-1)s + k + p
        ({"kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 0}, 5, 9),
        ({"kernel_size": 3, "strides": 1, "dilation_rate": 2}, 5, 9),
    ],
)
def test_conv_transpose_output_sizes_are_keras(kwargs, n, expected):
    assert ln.Conv1DTranspose(1, **kwargs).output_shape((None, n, 2)) == (None, expected, 1)


def test_conv_transpose_errors_and_config():
    with pytest.raises(
        ValueError, match=r"`output_padding`: expected each entry smaller than the stride"
    ):
        ln.Conv2DTranspose(2, 3, strides=2, output_padding=2)
    with pytest.raises(
        ValueError, match=r"`padding`: expected 'valid' or 'same', received 'causal'"
    ):
        ln.Conv1DTranspose(2, 3, padding="causal")
    with pytest.raises(ValueError, match=r"`data_format`: 'channels_first' is not supported"):
        ln.Conv2DTranspose(2, 3, data_format="channels_first")
    with pytest.raises(ValueError, match=r"output would be empty"):
        ln.Conv1DTranspose(2, 2, padding="same", output_padding=0).output_shape((None, 1, 1))
    layer = ln.Conv2DTranspose(4, (3, 2), strides=2, activation="relu", seed=3, **F64)
    layer.build((None, 5, 5, 3))
    assert layer.params["kernel"].shape == (3, 2, 4, 3)  # Keras's layout
    again = ln.Conv2DTranspose.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


# ------------------------------------------------------------------------ registry, names
KERAS_NAMES = [
    "Activation", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "Dense", "Dropout", "ELU",
    "Flatten", "GELU", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
    "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "LeakyReLU", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "ReLU", "Reshape", "Softmax",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "MaxPool3D", "AvgPool3D", "Softplus", "GlobalAvgPool1D",
    "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D",
    "GlobalMaxPool3D",
]  # fmt: skip


@pytest.mark.parametrize("name", KERAS_NAMES)
def test_keras_names_exported_and_registered(name):
    cls = getattr(layers, name)
    assert getattr(ln, name) is cls
    assert name in ln.__all__ and name in layers.__all__
    assert any(c is cls for c in _REGISTRY.values())


@pytest.mark.parametrize(
    "make",
    [
        lambda: ln.Softmax(axis=1),
        lambda: ln.LeakyReLU(0.1),
        lambda: ln.ELU(0.5),
        lambda: ln.GELU(approximate=True),
        lambda: ln.Softplus(),
        lambda: ln.Activation("gelu"),
        lambda: ln.Reshape((2, -1)),
        lambda: ln.ZeroPadding2D(((1, 0), (2, 3))),
        lambda: ln.ZeroPadding1D(2),
        lambda: ln.UpSampling1D(3),
        lambda: ln.UpSampling2D((1, 2)),
        lambda: ln.UpSampling3D(2),
        lambda: ln.GlobalMaxPooling2D(keepdims=True),
        lambda: ln.GlobalAveragePooling3D(),
        lambda: ln.MaxPooling2D(3, strides=1, padding="same"),
        lambda: ln.Conv1DTranspose(3, 2, strides=2, output_padding=1, activation="tanh"),
    ],
)
def test_configs_round_trip(make):
    layer = make()
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ln.MaxPooling2D(data_format="channels_first"),
        lambda: ln.GlobalAveragePooling2D(data_format="channels_first"),
        lambda: ln.ZeroPadding2D(data_format="channels_first"),
        lambda: ln.UpSampling2D(data_format="channels_first"),
    ],
)
def test_channels_first_is_a_clear_error(make):
    with pytest.raises(
        ValueError,
        match=r"`data_format`: 'channels_first' is not supported; layernet is channels-last",
    ):
        make()


def test_keras_style_model_with_new_layers_trains(rng):
    """A small Keras-style stack (import changed) builds, runs fit and round-trips a file."""
    x = rng.standard_normal((16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 16)
    model = ln.Sequential(
        [
            layers.ZeroPadding2D(1),
            layers.Conv2D(4, 3),
            layers.LeakyReLU(),
            layers.MaxPooling2D(2),
            layers.UpSampling2D(2),
            layers.Conv2DTranspose(2, 3, strides=2, padding="same"),
            layers.GlobalAveragePooling2D(),
            layers.Reshape((2, 1)),
            layers.Flatten(),
            layers.Dense(3),
            layers.Activation("linear"),
        ]
    )
    model.compile("adam", ln.SoftmaxCrossEntropy())
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert model.predict(x).shape == (16, 3)
