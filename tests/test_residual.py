"""Residual: the shared harness, Y = X + f(X) and its Jacobians, containers, files, errors."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}


@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 5),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_dense_block_gradients(n, features, hidden, two, seed):
    x = np.random.default_rng(seed).standard_normal((n, features))

    def make():
        he = {"bias_initializer": "he_uniform", **F64}
        if two:
            inner = [ln.Dense(hidden, seed=seed, name="d1", **he), ln.Tanh(**F64)]
            inner += [ln.Dense(features, seed=seed + 1, name="d2", **F64)]
        else:
            inner = [ln.Dense(features, seed=seed, name="d1", **he), ln.Sigmoid(**F64)]
        return ln.Residual(inner, **F64)

    assert_layer_gradients(make, x)


@given(st.integers(1, 2), st.integers(3, 7), st.integers(1, 3), st.integers(0, 2**16))
def test_conv_block_gradients(n, length, channels, seed):
    x = np.random.default_rng(seed).standard_normal((n, length, channels))
    assert_layer_gradients(
        lambda: ln.Residual(
            [
                ln.Conv(channels, 3, padding="same", seed=seed, name="c1", **F64),
                ln.Tanh(**F64),
                ln.Conv(channels, 1, seed=seed + 1, name="c2", **F64),
            ]
        ),
        x,
    )


def test_nested_and_recurrent_blocks(rng):
    x = rng.standard_normal((2, 4, 3))
    assert_layer_gradients(
        lambda: ln.Residual(
            [
                ln.Residual([ln.Dense(3, seed=1, name="d", **F64), ln.Tanh(**F64)], name="in"),
                ln.GRU(3, return_sequences=True, seed=2, name="g", **F64),
            ]
        ),
        x,
    )


def test_jacobians_are_identity_plus_the_chains(rng):
    d1 = ln.Dense(4, seed=1, bias_initializer="he_uniform", **F64)
    act = ln.Tanh(**F64)
    d2 = ln.Dense(3, seed=2, **F64)
    block = ln.Residual([d1, act, d2])
    x = rng.standard_normal((2, 3))
    block.build(x.shape)
    h1 = d1(x)
    h2 = act(h1)
    j1, ja, j2 = d1.jacobian_input(x), act.jacobian_input(h1), d2.jacobian_input(h2)
    np.testing.assert_allclose(block.jacobian_input(x), np.eye(6) + j2 @ ja @ j1, atol=1e-14)
    jp = block.jacobian_params(x)
    np.testing.assert_allclose(
        jp[f"{d2.name}/kernel"], d2.jacobian_params(h2)["kernel"], atol=1e-14
    )
    np.testing.assert_allclose(
        jp[f"{d1.name}/bias"], j2 @ ja @ d1.jacobian_params(x)["bias"], atol=1e-14
    )
    assert set(jp) == set(block.params)


def test_forward_and_backward_by_hand():
    block = ln.Residual([ln.Dense(2, use_bias=False, **F64), ln.ReLU(**F64)])
    block.build((None, 2))
    block.layers[0].params["kernel"][:] = [[1.0, -1.0], [2.0, 0.5]]
    x = np.array([[1.0, 1.0]])  # f(x) = relu([3, -0.5]) = [3, 0]
    np.testing.assert_array_equal(block(x), [[4.0, 1.0]])
    dy = np.array([[1.0, 10.0]])
    np.testing.assert_array_equal(block.backward_input(dy), [[2.0, 12.0]])
    np.testing.assert_array_equal(
        block.backward_params(dy)[f"{block.layers[0].name}/kernel"], [[1, 0], [1, 0]]
    )


def test_params_are_the_inner_arrays_and_optimisers_reach_them(rng):
    dense = ln.Dense(5, seed=0)
    block = ln.Residual([dense, ln.ReLU()], name="res")
    model = ln.Sequential([ln.Dense(5, seed=1), block, ln.Dense(2, seed=2)])
    model.compile(ln.Adam(1e-2), "softmax_cross_entropy")
    model.build((None, 3))
    assert block.params[f"{dense.name}/kernel"] is dense.params["kernel"]
    before = dense.params["kernel"].copy()
    model.train_step(rng.standard_normal((4, 3)), np.array([0, 1, 0, 1]))
    assert not np.array_equal(before, dense.params["kernel"])
    assert (
        block.grads[f"{dense.name}/kernel"] is dense.grads["kernel"] and dense.grads["kernel"].any()
    )
    block.zero_grad()
    assert not dense.grads["kernel"].any()
    assert block.count_params() == 30 and model.count_params() == 20 + 30 + 12


def test_frozen_inner_layer_and_frozen_block(rng):
    a, b = ln.Dense(3, seed=0, name="a"), ln.Dense(3, seed=1, name="b")
    block = ln.Residual([a, ln.ReLU(), b], name="res")
    model = ln.Sequential([block, ln.Dense(2, seed=2)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy")
    model.build((None, 3))
    a.trainable = False
    assert set(block.params) == {"b/kernel", "b/bias"} and set(block.state) == {
        "a/kernel",
        "a/bias",
    }
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 32" in text and "Trainable params: 20" in text
    w = a.params["kernel"].copy()
    x, y = rng.standard_normal((4, 3)), np.array([0, 1, 1, 0])
    model.train_step(x, y)
    np.testing.assert_array_equal(a.params["kernel"], w)
    block.trainable = False
    wb = b.params["kernel"].copy()
    model.train_step(x, y)
    np.testing.assert_array_equal(b.params["kernel"], wb)


def test_batchnorm_state_inside_a_block_is_saved(tmp_path, rng):
    bn = ln.BatchNorm(name="bn")
    block = ln.Residual([ln.Dense(4, seed=0, name="d"), bn], name="res")
    model = ln.Sequential([ln.Dense(4, seed=1), block, ln.Dense(2, seed=2)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy")
    x, y = rng.standard_normal((16, 3)).astype("float32"), rng.integers(0, 2, 16)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=0)
    assert (
        block.state["bn/moving_mean"] is bn.state["moving_mean"] and bn.state["moving_mean"].any()
    )
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(
        loaded.layers[1].state["bn/moving_variance"], bn.state["moving_variance"]
    )


def test_paper_mlp_round_trip_and_config(tmp_path, rng):
    model = ln.Sequential(
        [
            ln.Dense(16),
            ln.ReLU(),
            ln.Residual([ln.Dense(16), ln.ReLU()]),
            ln.Dense(4),
        ]
    )
    model.compile(ln.Adam(1e-2), "softmax_cross_entropy", ["accuracy"])
    x, y = rng.standard_normal((30, 8)).astype("float32"), rng.integers(0, 4, 30)
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, seed=0)
    model.save(tmp_path / "mlp.npz")
    loaded = ln.load_model(tmp_path / "mlp.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    config = model.layers[2].get_config()
    assert config["layers"][0]["class_name"] == "layernet>Dense"
    assert ln.Residual.from_config(config).get_config() == config


def test_load_refuses_unknown_inner_classes(tmp_path):
    from layernet.saving import ModelFileError, layer_from_spec

    spec = {
        "class_name": "Residual",
        "config": {"layers": [{"class_name": "os.system", "config": {}}]},
    }
    with pytest.raises(ModelFileError, match=r"'os\.system', which is not one of layernet"):
        layer_from_spec(spec)


# --------------------------------------------------------------------- errors
def test_residual_errors(rng):
    with pytest.raises(
        TypeError, match=r"Residual: invalid value for `layers`: expected a non-empty"
    ):
        ln.Residual([])
    with pytest.raises(TypeError, match=r"`layers`: expected a non-empty list"):
        ln.Residual(ln.Dense(3))
    with pytest.raises(TypeError, match=r"`layers\[1\]`: expected a Layer, received 'relu'"):
        ln.Residual([ln.Dense(3), "relu"])
    with pytest.raises(ValueError, match=r"inner layer names must be unique.*\['d'\]"):
        ln.Residual([ln.Dense(3, name="d"), ln.Dense(3, name="d")])
    with pytest.raises(ValueError, match=r"`dtype`: the inner layers compute in float32"):
        ln.Residual([ln.Dense(3)], dtype="float64")
    block = ln.Residual([ln.Dense(4)], name="res")
    with pytest.raises(ValueError, match=r"Residual 'res': the inner layers map inputs of shape "):
        block(rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match=r"needs the same shape"):
        ln.Sequential([block]).build((None, 3))
    conv = ln.Residual([ln.Conv(2, 3, padding="same")], name="rc")
    with pytest.raises(ValueError, match=r"Residual 'rc': inner layer refused the input: Conv"):
        conv.output_shape((None, 5))
