"""Depthwise and separable convolutions: the shared harness, PyTorch and Keras as oracles."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: ln.DepthwiseConv2D(2, depth_multiplier=2, dtype="float64", seed=0), (2, 4, 3, 2)),
        (
            lambda: ln.DepthwiseConv2D(
                (2, 3), strides=2, padding="same", use_bias=False, dtype="float64", seed=1
            ),
            (1, 5, 5, 3),
        ),
        (
            lambda: ln.DepthwiseConv1D(
                3, dilation_rate=2, activation="tanh", padding="causal", dtype="float64", seed=2
            ),
            (2, 7, 2),
        ),
        (
            lambda: ln.SeparableConv2D(3, 2, depth_multiplier=2, dtype="float64", seed=3),
            (2, 3, 4, 2),
        ),
        (
            lambda: ln.SeparableConv1D(
                2, 3, strides=2, padding="same", activation="sigmoid", dtype="float64", seed=4
            ),
            (2, 7, 3),
        ),
        (lambda: ln.DepthwiseConv(2, dtype="float64", seed=5), (1, 3, 3, 3, 2)),
        (lambda: ln.SeparableConv(2, 2, use_bias=False, dtype="float64", seed=6), (1, 3, 3, 3, 2)),
    ],
)
def test_harness(make, shape, rng):
    assert_layer_gradients(make, rng.standard_normal(shape))


@given(
    rank=st.sampled_from([1, 2]),
    channels=st.integers(1, 3),
    multiplier=st.integers(1, 3),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same", 1]),
    use_bias=st.booleans(),
    separable=st.booleans(),
)
def test_against_torch(
    rank, channels, multiplier, kernel, stride, dilation, padding, use_bias, separable
):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shape = (2, *(7,) * rank, channels)
    x = rng.standard_normal(shape)
    common = {
        "kernel_size": kernel, "strides": stride, "padding": padding, "dilation_rate": dilation,
        "depth_multiplier": multiplier, "use_bias": use_bias, "dtype": "float64", "seed": 0,
        "bias_initializer": "he_uniform",
    }  # fmt: skip
    if separable:
        layer = (ln.SeparableConv1D if rank == 1 else ln.SeparableConv2D)(3, **common)
    else:
        layer = (ln.DepthwiseConv1D if rank == 1 else ln.DepthwiseConv2D)(**common)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    _, s, d, pads, _ = layer._geometry(x.shape)

    xt = torch.tensor(np.moveaxis(x, -1, 1), requires_grad=True)
    kname = "depthwise_kernel" if separable else "kernel"
    w = torch.tensor(layer.params[kname], requires_grad=True)
    wt = torch.movedim(w.reshape(*w.shape[:-2], -1), -1, 0)[:, None]
    conv = torch.nn.functional.conv1d if rank == 1 else torch.nn.functional.conv2d
    xp = torch.nn.functional.pad(xt, [p for pair in reversed(pads) for p in pair])
    yt = conv(xp, wt, stride=s, dilation=d, groups=channels)
    leaves = {kname: w}
    if separable:
        p = torch.tensor(layer.params["pointwise_kernel"], requires_grad=True)
        leaves["pointwise_kernel"] = p
        pw = torch.movedim(p.reshape(-1, 3), -1, 0).reshape(3, -1, *(1,) * rank)
        yt = conv(yt, pw)
    if use_bias:
        b = torch.tensor(layer.params["bias"], requires_grad=True)
        leaves["bias"] = b
        yt = yt + b.reshape(-1, *(1,) * rank)
    yt = torch.movedim(yt, 1, -1)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (yt * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(
        layer.backward_input(g), np.moveaxis(xt.grad.numpy(), 1, -1), rtol=1e-10, atol=1e-12
    )
    grads = layer.backward_params(g)
    assert list(grads) == list(leaves)
    for key, leaf in leaves.items():
        np.testing.assert_allclose(grads[key], leaf.grad.numpy(), rtol=1e-10, atol=1e-12)


KERAS_CASES = [
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2, "padding": "same"}, (2, 5, 6, 3)),
    ("DepthwiseConv2D", {"kernel_size": (2, 3), "strides": 2, "use_bias": False}, (2, 6, 7, 2)),
    ("DepthwiseConv1D", {"kernel_size": 3, "dilation_rate": 2, "activation": "relu"}, (2, 9, 3)),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3, "depth_multiplier": 2}, (2, 5, 5, 3)),
    (
        "SeparableConv1D",
        {"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same", "activation": "tanh"},
        (2, 7, 3),
    ),
]


@pytest.mark.parametrize("name, kwargs, shape", KERAS_CASES)
def test_against_keras(name, kwargs, shape, rng):
    keras = pytest.importorskip("keras")
    jax = pytest.importorskip("jax")
    theirs = getattr(keras.layers, name)(**kwargs, bias_initializer="he_uniform")
    x = rng.standard_normal(shape).astype(np.float32)
    theirs.build(x.shape)
    ours = getattr(ln, name)(**kwargs)
    ours.build(x.shape)
    weights = theirs.get_weights()
    assert [w.name for w in theirs.weights] == list(ours.params)
    for key, w in zip(ours.params, weights, strict=True):  # set_weights, by name in Keras order
        assert ours.params[key].shape == w.shape
        ours.params[key][...] = w
    y = ours.forward(x)
    np.testing.assert_allclose(y, np.asarray(theirs(x)), rtol=1e-4, atol=1e-5)

    g = rng.standard_normal(y.shape).astype(np.float32)

    def objective(ws, xx):
        out, _ = theirs.stateless_call(ws, [], xx)
        return (out * g).sum()

    dws, dx = jax.grad(objective, argnums=(0, 1))([w.value for w in theirs.weights], x)
    np.testing.assert_allclose(ours.backward_input(g), np.asarray(dx), rtol=1e-4, atol=1e-4)
    for got, want in zip(ours.backward_params(g).values(), dws, strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-4, atol=1e-4)


def test_depthwise_is_the_grouped_conv():
    x = np.random.default_rng(1).standard_normal((2, 6, 5, 3))
    dw = ln.DepthwiseConv2D(3, depth_multiplier=2, strides=2, dtype="float64", seed=0)
    y = dw.forward(x)
    conv = ln.Conv2D(6, 3, strides=2, groups=3, dtype="float64")
    conv.build(x.shape)
    conv.params["kernel"][...] = dw.params["kernel"].reshape(3, 3, 1, 6)
    conv.params["bias"][...] = dw.params["bias"]
    np.testing.assert_allclose(y, conv.forward(x), rtol=1e-12)
    g = np.random.default_rng(2).standard_normal(y.shape)
    np.testing.assert_allclose(dw.backward_input(g), conv.backward_input(g), rtol=1e-12)


def test_errors_and_config():
    with pytest.raises(
        ValueError, match=r"DepthwiseConv2D '.*': invalid value for `depth_multiplier`"
    ):
        ln.DepthwiseConv2D(3, depth_multiplier=0)
    with pytest.raises(ValueError, match=r"`pointwise_initializer`"):
        ln.SeparableConv2D(2, 3, pointwise_initializer="nope")
    layer = ln.SeparableConv2D(2, 3)
    layer.build((None, 5, 5, 3))
    with pytest.raises(ValueError, match=r"expected input with 3 channels"):
        layer.forward(np.zeros((1, 5, 5, 2)))
    with pytest.raises(ValueError, match=r"expected input with 4 dims"):
        layer.forward(np.zeros((1, 5, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        ln.DepthwiseConv1D(2).backward_input(np.zeros((1, 3, 1)))
    cfg = ln.DepthwiseConv2D(3, depth_multiplier=2).get_config()
    assert cfg["depth_multiplier"] == 2 and "filters" not in cfg and "depthwise_initializer" in cfg
    assert ln.DepthwiseConv2D.from_config(cfg).get_config() == cfg


def test_save_and_load(tmp_path, rng):
    model = ln.Sequential(
        [ln.SeparableConv2D(2, 3, seed=0), ln.DepthwiseConv2D(2, seed=1), ln.Flatten()]
    )
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    y = model.predict(x)
    model.save(tmp_path / "m.npz")
    again = ln.load_model(tmp_path / "m.npz")
    assert [list(a.params) for a in again.layers] == [list(a.params) for a in model.layers]
    np.testing.assert_array_equal(y, again.predict(x))
