"""Keras's arguments on the existing layers: activation=, groups, causal padding,
dilation_rate, data_format, kernel/bias names, frozen BatchNorm, Dropout noise_shape,
and files and configurations written with the earlier names."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import layers

F64 = {"dtype": "float64"}
ACTS = [None, "relu", "tanh", "sigmoid", "softmax", "gelu", "linear", "swish"]


def keep_off_kinks(layer, x):
    """Nudge an input until no pre-activation sits within 1e-4 of ReLU's kink."""
    pre = type(layer).from_config({**layer.get_config(), "activation": None})
    pre.build(x.shape)
    for k in layer.params:
        pre.params[k][...] = layer.params[k]
    return np.abs(pre.forward(x)).min() > 1e-4


# ------------------------------------------------------------------------------ activation=
@given(
    act=st.sampled_from(ACTS),
    shape=st.sampled_from([(3, 4), (2, 3, 5)]),
    units=st.integers(1, 4),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_activation_gradients(act, shape, units, bias, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    make = lambda: ln.Dense(units, activation=act, use_bias=bias, seed=seed, **F64)  # noqa: E731
    if act == "relu" and not keep_off_kinks(make(), x):
        return
    assert_layer_gradients(make, x)


@given(
    act=st.sampled_from(ACTS),
    rank=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    padding=st.sampled_from(["valid", "same", "causal"]),
    seed=st.integers(0, 2**16),
)
def test_conv_activation_groups_causal_gradients(act, rank, groups, padding, seed):
    if padding == "causal" and rank != 1:
        return
    rng = np.random.default_rng(seed)
    spatial = (5,) if rank == 1 else (4, 3)
    x = rng.standard_normal((2, *spatial, 2 * groups))
    kwargs = {
        "filters": 2 * groups,
        "kernel_size": 2,
        "strides": 1 if padding == "causal" else (1,) * (rank - 1) + (2,),
        "dilation_rate": 2 if padding == "causal" else 1,
        "padding": padding,
        "groups": groups,
        "activation": act,
    }
    make = lambda: ln.Conv(**kwargs, seed=seed, **F64)  # noqa: E731
    if act == "relu" and not keep_off_kinks(make(), x):
        return
    assert_layer_gradients(make, x)


def test_dense_activation_values_and_explicit_jacobians(rng):
    x = rng.standard_normal((3, 4))
    plain = ln.Dense(5, seed=1, **F64)
    soft = ln.Dense(5, activation="softmax", seed=1, **F64)
    z = plain.forward(x)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(soft.forward(x), e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    # closed-form Jacobians = activation Jacobian times the affine ones
    for act in ("tanh", "softmax"):
        layer = ln.Dense(5, activation=act, seed=1, **F64)
        result = ln.gradcheck(layer, x)
        assert result.passed, str(result)
    assert ln.Dense(2, activation="relu").get_config()["activation"] == "relu"
    assert ln.Dense(2, activation="linear").activation is None


@pytest.mark.parametrize("act", ["tanh", "softmax", "sigmoid"])
def test_activation_argument_output_is_fresh_in_a_model(act, rng):
    """Dense(activation) -> in-place ReLU -> Dense: fit's step equals the public layer API.

    The activation keeps its output for backward; the in-place ReLU behind it must
    not overwrite that copy.
    """
    x = rng.standard_normal((8, 4))
    y = rng.integers(0, 3, 8)

    def make():
        return [
            ln.Dense(6, activation=act, seed=1, **F64),
            ln.ReLU(**F64),
            ln.Dense(3, seed=2, **F64),
        ]

    model = ln.Sequential(make())
    model.compile(ln.SGD(0.1), ln.SoftmaxCrossEntropy(**F64))
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)

    chain, loss = make(), ln.SoftmaxCrossEntropy(**F64)
    h = x
    for layer in chain:
        h = layer.forward(h, training=True)
    loss.forward(h, y)
    g = loss.backward_input()
    for layer in reversed(chain):
        grads = layer.backward_params(g)
        g = layer.backward_input(g)
        for k, v in grads.items():
            layer.params[k] -= 0.1 * v
    for trained, manual in zip(model.layers, chain, strict=True):
        for k in manual.params:
            np.testing.assert_allclose(trained.params[k], manual.params[k], rtol=1e-12)


# ------------------------------------------------------------------------- conv arguments
def test_causal_padding_depends_only_on_the_past(rng):
    conv = ln.Conv1D(2, 3, padding="causal", dilation_rate=2, seed=0, **F64)
    x = rng.standard_normal((1, 10, 1))
    y = conv.forward(x)
    assert y.shape == (1, 10, 2)
    x2 = x.copy()
    x2[0, 6:] += 1.0  # change the future from t = 6 on
    np.testing.assert_array_equal(conv.forward(x2)[0, :6], y[0, :6])
    assert not np.allclose(conv.forward(x2)[0, 6:], y[0, 6:])
    assert ln.Conv(2, 3, padding="causal").rank == 1


def test_groups_is_a_block_diagonal_convolution(rng):
    x = rng.standard_normal((2, 6, 6, 4))
    grouped = ln.Conv2D(6, 3, groups=2, seed=0, **F64)
    y = grouped.forward(x)
    assert grouped.params["kernel"].shape == (3, 3, 2, 6)
    for g in range(2):
        part = ln.Conv2D(3, 3, **F64)
        part.build((None, 6, 6, 2))
        part.params["kernel"][...] = grouped.params["kernel"][..., 3 * g : 3 * g + 3]
        part.params["bias"][...] = grouped.params["bias"][3 * g : 3 * g + 3]
        np.testing.assert_allclose(
            y[..., 3 * g : 3 * g + 3], part.forward(x[..., 2 * g : 2 * g + 2]), rtol=1e-13
        )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ln.Conv2D(5, 3, groups=2), r"`groups`: `filters`=5 must be a multiple"),
        (lambda: ln.Conv2D(4, 3, groups=0), r"`groups`: expected a positive int"),
        (lambda: ln.Conv2D(4, 3, padding="causal"), r"'causal' is for 1-D convolutions"),
        (lambda: ln.Conv(4, (3, 3), padding="causal"), r"'causal' is for 1-D convolutions"),
        (
            lambda: ln.Conv2D(4, 3, data_format="channels_first"),
            r"Conv2D '.*': invalid value for `data_format`: 'channels_first' is not supported",
        ),
        (lambda: ln.Conv2D(4, 3, data_format="NHWC"), r"expected 'channels_last' or None"),
        (lambda: ln.Dense(4, activation="nope"), r"Dense '.*': invalid value for `activation`"),
        (lambda: ln.Conv1D(4, 3, activation=len), r"`activation`: expected an activation name"),
    ],
)
def test_conv_argument_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_groups_input_channels_error():
    with pytest.raises(ValueError, match=r"expected input channels divisible by `groups`=2"):
        ln.Conv2D(4, 3, groups=2).forward(np.zeros((1, 5, 5, 3)))


def test_conv3d_and_dilation_rate(rng):
    conv = ln.Conv3D(2, 2, dilation_rate=(1, 2, 1), seed=0, **F64)
    assert conv.output_shape((None, 4, 5, 4, 1)) == (None, 3, 3, 3, 2)
    assert_layer_gradients(
        lambda: ln.Conv3D(2, 2, padding="same", seed=0, **F64), rng.standard_normal((1, 3, 3, 2, 2))
    )
    assert conv.get_config()["dilation_rate"] == (1, 2, 1)
    assert "dilation" not in conv.get_config()


def test_old_dilation_config_loads():
    cfg = ln.Conv1D(2, 3, dilation_rate=2).get_config()
    cfg["dilation"] = cfg.pop("dilation_rate")
    assert ln.Conv1D.from_config(cfg).dilation_rate == (2,)


def test_configs_round_trip_with_the_new_arguments():
    for layer in [
        ln.Conv1D(4, 3, padding="causal", groups=2, activation="relu", dilation_rate=2),
        ln.Conv2D(4, 3, activation="softmax", kernel_initializer=ln.initializers.HeNormal()),
        ln.Dense(3, activation="gelu", bias_initializer=ln.initializers.Constant(0.1)),
        ln.BatchNormalization(momentum=1.0, gamma_initializer="random_normal"),
        ln.Dropout(0.2, noise_shape=(None, 1, 4)),
    ]:
        cfg = layer.get_config()
        json.dumps(cfg)
        assert type(layer).from_config(cfg).get_config() == cfg


def test_keras_conv_torch_groups_and_causal_oracle(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 9, 4))
    conv = ln.Conv1D(
        6, 3, padding="causal", dilation_rate=2, groups=2, activation="tanh", seed=0, **F64
    )
    y = conv.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward_input(dy)
    grads = conv.backward_params(dy)
    xt = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
    wt = torch.tensor(conv.params["kernel"].transpose(2, 1, 0).copy(), requires_grad=True)
    bt = torch.tensor(conv.params["bias"], requires_grad=True)
    yt = torch.tanh(F.conv1d(F.pad(xt, (4, 0)), wt, bt, dilation=2, groups=2))
    yt.backward(torch.tensor(dy.transpose(0, 2, 1).copy()))
    tol = {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), **tol)
    np.testing.assert_allclose(grads["kernel"], wt.grad.numpy().transpose(2, 1, 0), **tol)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **tol)


@given(groups=st.sampled_from([1, 2, 3, "depthwise"]), seed=st.integers(0, 999))
def test_grouped_conv2d_matches_torch(groups, seed):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(seed)
    channels = 3 * groups if groups != "depthwise" else 4
    groups = 4 if groups == "depthwise" else groups  # one channel per group
    x = rng.standard_normal((2, 6, 5, channels))
    conv = ln.Conv2D(
        2 * groups, (3, 2), strides=(2, 1), groups=groups, activation="softmax", seed=seed, **F64
    )
    y = conv.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = conv.backward_input(dy)
    grads = conv.backward_params(dy)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    wt = torch.tensor(conv.params["kernel"].transpose(3, 2, 0, 1).copy(), requires_grad=True)
    bt = torch.tensor(conv.params["bias"], requires_grad=True)
    yt = torch.softmax(F.conv2d(xt, wt, bt, stride=(2, 1), groups=groups), dim=1)
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2).copy()))
    tol = {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), **tol)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), **tol)
    np.testing.assert_allclose(grads["kernel"], wt.grad.numpy().transpose(2, 3, 1, 0), **tol)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **tol)


# ---------------------------------------------------------------------- weights by name
def test_weights_are_named_kernel_and_bias():
    for layer, shape in [
        (ln.Dense(3), (None, 4)),
        (ln.Conv2D(3, 2), (None, 5, 5, 2)),
        (ln.Conv2DTranspose(3, 2), (None, 5, 5, 2)),
    ]:
        layer.build(shape)
        assert list(layer.params) == ["kernel", "bias"]
    bn = ln.BatchNormalization()
    bn.build((None, 3))
    assert list(bn.params) == ["gamma", "beta"]
    assert list(bn.state) == ["moving_mean", "moving_variance"]


def test_files_with_the_earlier_weight_and_argument_names_load(tmp_path, rng):
    """A file whose members are W, b, moving_var and whose Conv config says dilation."""
    model = ln.Sequential(
        [ln.Conv1D(3, 3, dilation_rate=2), ln.BatchNorm(), ln.Flatten(), ln.Dense(2)]
    )
    model.build((None, 9, 1))
    for layer in model.layers:
        for v in layer.variables().values():
            v[...] = rng.uniform(0.5, 1.5, v.shape)  # variances must stay positive
    x = rng.standard_normal((2, 9, 1)).astype("float32")
    expected = model.predict(x)
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    old = {"kernel": "W", "bias": "b", "moving_variance": "moving_var"}
    arrays = {
        ".".join([*k.split(".")[:2], old.get(k.split(".")[2], k.split(".")[2])])
        if k.startswith("layers.")
        else k: v
        for k, v in arrays.items()
    }
    conv_cfg = header["layers"][0]["config"]
    conv_cfg["dilation"] = conv_cfg.pop("dilation_rate")
    for key in ("data_format", "groups", "activation"):
        conv_cfg.pop(key)
    header["weights"] = {
        ".".join([*k.split(".")[:2], old.get(k.split(".")[2], k.split(".")[2])]): v
        for k, v in header["weights"].items()
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    assert "layers.0.W" in arrays and "layers.1.moving_var" in arrays
    np.savez(path, **arrays)
    loaded = ln.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), expected)
    assert loaded.layers[0].dilation_rate == (2,)
    fresh = ln.Sequential(
        [ln.Conv1D(3, 3, dilation_rate=2), ln.BatchNorm(), ln.Flatten(), ln.Dense(2)]
    )
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x), expected)


# ------------------------------------------------------------------------------ BatchNorm
def test_frozen_batchnorm_runs_in_inference_mode(rng):
    x = rng.standard_normal((16, 3)) * 2 + 1
    bn = ln.BatchNormalization(**F64)
    bn.forward(x, training=True)
    mean, var = bn.state["moving_mean"].copy(), bn.state["moving_variance"].copy()
    bn.trainable = False
    y = bn.forward(x, training=True)
    np.testing.assert_array_equal(bn.state["moving_mean"], mean)
    np.testing.assert_array_equal(bn.state["moving_variance"], var)
    np.testing.assert_allclose(y, bn.forward(x, training=False))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3))
    # the backward rule is the inference one (diagonal), proven against finite differences
    result = ln.gradcheck(bn, x, training=True)
    assert result.passed, str(result)
    bn.trainable = True
    bn.forward(x, training=True)
    assert not np.array_equal(bn.state["moving_mean"], mean)


def test_frozen_batchnorm_in_a_model_keeps_its_statistics(rng):
    x = rng.standard_normal((32, 4)).astype("float32")
    y = rng.integers(0, 2, 32)
    bn = ln.BatchNorm(trainable=False)
    model = ln.Sequential([ln.Dense(4, seed=0), bn, ln.Dense(2, seed=1)])
    model.compile(ln.SGD(0.1), ln.SoftmaxCrossEntropy())
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(bn.state["moving_mean"], 0)
    np.testing.assert_array_equal(bn.state["moving_variance"], 1)


def test_batchnorm_momentum_one_and_axis():
    bn = ln.BatchNorm(momentum=1.0, **F64)
    bn.forward(np.array([[1.0], [5.0]]), training=True)
    np.testing.assert_array_equal(bn.state["moving_mean"], [0.0])
    assert ln.BatchNorm(axis=2).output_shape((None, 3, 4)) == (None, 3, 4)
    with pytest.raises(ValueError, match=r"`axis`: layernet is channels-last and normalises"):
        ln.BatchNorm(axis=1).output_shape((None, 3, 4))
    with pytest.raises(ValueError, match=r"`momentum`: expected a number in \[0, 1\]"):
        ln.BatchNorm(momentum=-0.1)


# -------------------------------------------------------------------------------- Dropout
def test_dropout_noise_shape_broadcasts_the_mask(rng):
    drop = ln.Dropout(0.5, noise_shape=(None, 1, 6), seed=0, **F64)
    x = np.ones((4, 5, 6))
    y = drop.forward(x, training=True)
    # one decision per (sample, channel), shared along the length axis
    assert (y == y[:, :1, :]).all()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0 < (y == 0).mean() < 1
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(drop.backward_input(g), g * y)  # y is the scale here
    assert drop.forward(x).tolist() == x.tolist()  # identity at inference


def test_dropout_noise_shape_errors():
    with pytest.raises(ValueError, match=r"`noise_shape`: expected None or a tuple"):
        ln.Dropout(0.5, noise_shape=(0, 1))
    with pytest.raises(ValueError, match=r"`noise_shape` \(2, 3\) does not broadcast"):
        ln.Dropout(0.5, noise_shape=(2, 3)).forward(np.ones((4, 5)), training=True)


def test_keras_script_layers_with_only_the_import_changed(rng):
    """The keras.io MNIST convnet's layer stack, written the Keras way."""
    keras = ln
    model = keras.Sequential(
        [
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    model.build((None, 28, 28, 1))
    probs = model.predict(rng.standard_normal((2, 28, 28, 1)).astype("float32"))
    assert probs.shape == (2, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert model.count_params() == 34826  # Keras's summary for this model


# --------------------------------------------------------------------------------- ReLU
@given(
    max_value=st.one_of(st.none(), st.floats(0.5, 3)),
    # a slope of 1e-7 makes its derivatives as small as finite differences' rounding noise
    slope=st.one_of(st.just(0.0), st.floats(0.01, 1)),
    threshold=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
@settings(derandomize=True)  # the layer in front may map a sample onto a kink
def test_relu_keras_arguments_gradients(max_value, slope, threshold, seed):
    # two kinks closer than the distance samples are moved off them would meet
    assume(max_value is None or abs(max_value - threshold) > 0.05)
    x = np.random.default_rng(seed).standard_normal((3, 5)) * 2
    kinks = [threshold] + ([] if max_value is None else [max_value])
    for k in kinks:  # no derivative at the kinks: keep finite differences off them
        x = np.where(np.abs(x - k) < 1e-3, k + 0.01, x)
    assert_layer_gradients(lambda: ln.ReLU(max_value, slope, threshold, **F64), x)


def test_relu_keras_arguments_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 6)) * 3
    layer = ln.ReLU(max_value=2.0, negative_slope=0.2, threshold=0.5, **F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.where(xt > 0.5, torch.clamp(xt, max=2.0), 0.2 * (xt - 0.5))
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward_input(dy), xt.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"ReLU '.*': invalid value for `max_value`"):
        ln.ReLU(max_value=-1)
    with pytest.raises(ValueError, match=r"invalid value for `threshold`"):
        ln.ReLU(threshold=-0.5)
    cfg = layer.get_config()
    assert ln.ReLU.from_config(cfg).get_config() == cfg
