"""The Layer contract itself: building, shapes, caching, accumulation, dtypes, batch sizes."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet.layers.base import _REGISTRY

ALL_LAYERS = [
    lambda **kw: ln.Conv(3, 3, padding="same", **kw),
    lambda **kw: ln.Conv1D(2, 2, strides=2, **kw),
    lambda **kw: ln.MaxPool(2, **kw),
    lambda **kw: ln.AvgPool(3, strides=1, padding="same", **kw),
    lambda **kw: ln.ReLU(**kw),
    lambda **kw: ln.Sigmoid(**kw),
    lambda **kw: ln.Tanh(**kw),
    lambda **kw: ln.Flatten(**kw),
    lambda **kw: ln.Dense(4, **kw),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_output_shape_is_pure_and_matches_forward(make):
    layer = make()
    assert layer.output_shape((None, 8, 2)) == (None, *layer.output_shape((5, 8, 2))[1:])
    assert not layer.built  # output_shape builds nothing
    y = layer.forward(np.random.default_rng(0).standard_normal((5, 8, 2)))
    assert y.shape == layer.output_shape((5, 8, 2))


@pytest.mark.parametrize("make", ALL_LAYERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_flows_through_forward_and_backward(make, dtype):
    layer = make(dtype=dtype)
    x = np.random.default_rng(0).standard_normal((3, 8, 2))  # float64 input
    y = layer.forward(x)
    assert y.dtype == dtype
    assert layer.backward_input(np.ones_like(y)).dtype == dtype
    for g in layer.backward_params(np.ones_like(y)).values():
        assert g.dtype == dtype
    for p in layer.params.values():
        assert p.dtype == dtype


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_batch_of_zero(make):
    layer = make(dtype="float64")
    y = layer.forward(np.zeros((0, 8, 2)))
    assert y.shape[0] == 0
    dx = layer.backward_input(np.zeros(y.shape))
    assert dx.shape == (0, 8, 2)
    for k, g in layer.backward_params(np.zeros(y.shape)).items():
        assert g.shape == layer.params[k].shape
        assert not g.any()


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_batched_equals_one_sample_at_a_time(make):
    layer = make(dtype="float64", **({"seed": 0} if make is not ALL_LAYERS[4] else {}))
    x = np.random.default_rng(1).standard_normal((4, 8, 2))
    dy_full = None
    y = layer.forward(x)
    dy_full = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward_input(dy_full)
    grads = layer.backward_params(dy_full)
    sums = {k: np.zeros_like(v) for k, v in grads.items()}
    for i in range(4):
        yi = layer.forward(x[i : i + 1])
        np.testing.assert_allclose(yi, y[i : i + 1], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            layer.backward_input(dy_full[i : i + 1]), dx[i : i + 1], rtol=1e-12, atol=1e-12
        )
        for k, g in layer.backward_params(dy_full[i : i + 1]).items():
            sums[k] += g
    for k in grads:
        np.testing.assert_allclose(sums[k], grads[k], rtol=1e-10, atol=1e-12)


def test_gradients_accumulate_and_reset():
    dense = ln.Dense(2, dtype="float64", seed=0)
    x = np.ones((3, 4))
    y = dense.forward(x)
    g1 = dense.backward_params(np.ones_like(y))
    dense.backward_params(np.ones_like(y))
    np.testing.assert_allclose(dense.grads["kernel"], 2 * g1["kernel"])
    dense.zero_grad()
    assert not dense.grads["kernel"].any() and not dense.grads["bias"].any()


def test_jacobians_leave_state_alone():
    conv = ln.Conv(2, 3, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((1, 6, 1))
    y = conv.forward(x)
    dy = np.ones_like(y)
    before = conv.backward_input(dy)
    conv.jacobian_input(np.zeros((2, 9, 1)))
    conv.jacobian_params(np.zeros((2, 9, 1)))
    np.testing.assert_array_equal(conv.backward_input(dy), before)  # cache of x kept
    assert not conv.grads["kernel"].any()  # Jacobians do not accumulate


def test_frozen_layer_still_passes_gradients_back():
    dense = ln.Dense(2, dtype="float64", seed=0, trainable=False)
    y = dense.forward(np.ones((1, 3)))
    assert dense.backward_input(np.ones_like(y)).shape == (1, 3)


def test_build_explicitly_and_seeded_init_is_reproducible():
    a, b = ln.Conv2D(4, 3, seed=42), ln.Conv2D(4, 3, seed=42)
    a.build((None, 8, 8, 3))
    b.build((None, 8, 8, 3))
    assert a.params["kernel"].shape == (3, 3, 3, 4) and a.params["bias"].shape == (4,)
    np.testing.assert_array_equal(a.params["kernel"], b.params["kernel"])
    assert a.count_params() == 3 * 3 * 3 * 4 + 4
    ln.set_seed(5)
    c = ln.Dense(3)
    c.build((None, 2))
    ln.set_seed(5)
    d = ln.Dense(3)
    d.build((None, 2))
    np.testing.assert_array_equal(c.params["kernel"], d.params["kernel"])


def test_he_initialisation_scale():
    conv = ln.Conv(256, 5, seed=0, kernel_initializer="he_normal", dtype="float64")
    conv.build((None, 20, 16))
    assert conv.params["kernel"].std() == pytest.approx(np.sqrt(2 / (5 * 16)), rel=0.03)


def test_config_round_trip_and_registry():
    conv = ln.Conv(3, (2, 3), strides=(1, 2), padding=((0, 1), 2), dilation_rate=1, name="c7")
    clone = ln.Conv.from_config(conv.get_config())
    assert clone.get_config() == conv.get_config()
    for name in [
        "Conv",
        "Conv1D",
        "Conv2D",
        "MaxPool",
        "AvgPool",
        "ReLU",
        "Dense",
        "Flatten",
        "MSELoss",
        "SoftmaxCrossEntropy",
    ]:
        assert name in _REGISTRY
    assert "Conv" in repr(conv) and "c7" in repr(conv)


def test_same_padding_gives_ceil_of_n_over_stride():
    for n in range(1, 12):
        for s in (1, 2, 3):
            for k in (1, 2, 3, 4):
                out = ln.Conv(1, k, strides=s, padding="same").output_shape((None, n, 1))
                assert out[1] == -(-n // s)


def test_conv_rank_from_input_and_aliases():
    conv = ln.Conv(2, 3)
    assert conv.forward(np.zeros((1, 5, 5, 1))).shape == (1, 3, 3, 2)
    assert conv.params["kernel"].shape == (3, 3, 1, 2)
    assert ln.Conv1D(2, 3).output_shape((None, 10, 1)) == (None, 8, 2)
    assert ln.Conv(2, (3, 1, 2)).output_shape((None, 5, 5, 5, 1)) == (None, 3, 5, 4, 2)


def test_maxpool_ties_send_gradient_to_one_element():
    pool = ln.MaxPool(2, dtype="float64")
    pool.forward(np.ones((1, 4, 1)))
    dx = pool.backward_input(np.ones((1, 2, 1)))
    np.testing.assert_array_equal(dx[0, :, 0], [1, 0, 1, 0])


def test_avgpool_excludes_padding_from_the_mean():
    pool = ln.AvgPool(3, strides=1, padding="same", dtype="float64")
    y = pool.forward(np.ones((1, 5, 1)))
    np.testing.assert_array_equal(y, np.ones((1, 5, 1)))


def test_cross_entropy_is_stable_for_huge_logits():
    ce = ln.SoftmaxCrossEntropy(dtype="float64")
    z = ce.forward(np.array([[1000.0, 0.0, -1000.0]]), np.array([0]))
    assert z == pytest.approx(0.0, abs=1e-12)
    z = ce.forward(np.array([[1000.0, 0.0, -1000.0]]), np.array([2]))
    assert z == pytest.approx(2000.0)
    assert np.isfinite(ce.backward_input()).all()
