"""GRU and Bidirectional: the shared harness over many shapes, Keras semantics, errors, files."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}
#: Non-zero biases so that every bias term is exercised by the checks.
BIASED = {"bias_initializer": "glorot_uniform", **F64}


@st.composite
def gru_cases(draw):
    n = draw(st.integers(1, 3))
    t = draw(st.integers(1, 5))
    f = draw(st.integers(1, 3))
    kwargs = {
        "units": draw(st.integers(1, 4)),
        "return_sequences": draw(st.booleans()),
        "go_backwards": draw(st.booleans()),
        "use_bias": draw(st.booleans()),
        "activation": draw(st.sampled_from(["tanh", "sigmoid", "linear"])),
        "recurrent_activation": draw(st.sampled_from(["sigmoid", "tanh"])),
    }
    return (n, t, f), kwargs


@given(gru_cases(), st.integers(0, 2**16))
def test_gru_gradients(case, seed):
    shape, kwargs = case
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.GRU(**kwargs, seed=seed, **BIASED), x)


@given(
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["concat", "sum", "mul", "ave"]),
    st.integers(0, 2**16),
)
def test_bidirectional_gradients(n, t, f, units, seq, mode, seed):
    x = np.random.default_rng(seed).standard_normal((n, t, f))

    def make():
        return ln.Bidirectional(
            ln.GRU(units, return_sequences=seq, seed=seed, name="g", **BIASED), merge_mode=mode
        )

    assert_layer_gradients(make, x)


def test_relu_candidate_gradients(rng):
    x = rng.standard_normal((2, 4, 3))
    assert_layer_gradients(
        lambda: ln.GRU(3, activation="relu", return_sequences=True, seed=1, **BIASED), x
    )


# ------------------------------------------------------------------ semantics
def test_last_state_is_the_last_step_of_the_sequence(rng):
    x = rng.standard_normal((3, 6, 2))
    seq = ln.GRU(4, return_sequences=True, seed=3, **BIASED)
    last = ln.GRU(4, seed=3, **BIASED)
    np.testing.assert_array_equal(last(x), seq(x)[:, -1])


def test_go_backwards_reads_the_reversed_sequence_and_returns_it_in_processing_order(rng):
    x = rng.standard_normal((2, 5, 3))
    back = ln.GRU(4, return_sequences=True, go_backwards=True, seed=3, **BIASED)
    fwd = ln.GRU(4, return_sequences=True, seed=3, **BIASED)
    np.testing.assert_allclose(back(x), fwd(x[:, ::-1]), rtol=1e-14, atol=1e-15)


def test_gates_by_hand_for_one_step():
    gru = ln.GRU(1, **BIASED)
    gru.build((None, 1, 1))
    gru.params["kernel"][:] = [[0.5, -1.0, 2.0]]
    gru.params["recurrent_kernel"][:] = [
        [9.0, 9.0, 9.0]
    ]  # h_0 = 0: only the recurrent bias matters
    gru.params["bias"][:] = [[0.1, 0.2, 0.3], [-0.2, 0.4, 0.5]]
    x = 0.7
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    z = sig(0.5 * x + 0.1 - 0.2)
    r = sig(-1.0 * x + 0.2 + 0.4)
    h = np.tanh(2.0 * x + 0.3 + r * 0.5)
    np.testing.assert_allclose(gru(np.array([[[x]]])), [[(1 - z) * h]], rtol=1e-15)


def test_bidirectional_backward_direction_is_time_aligned(rng):
    x = rng.standard_normal((2, 5, 1))
    bi = ln.Bidirectional(ln.GRU(3, return_sequences=True, seed=1, **BIASED))
    y = bi(x)
    fwd = bi.forward_layer.forward(x)
    back = bi.backward_layer.forward(x)  # processing order: reversed time
    np.testing.assert_array_equal(y[..., :3], fwd)
    np.testing.assert_array_equal(y[..., 3:], back[:, ::-1])
    assert bi.backward_layer.go_backwards and not bi.forward_layer.go_backwards
    assert bi.backward_layer.name == "backward_" + bi.forward_layer.name
    assert bi.backward_layer.seed == 2


def test_one_sweep_serves_both_backward_rules_and_is_never_stale(rng):
    x = rng.standard_normal((2, 4, 2))
    gru = ln.GRU(3, return_sequences=True, seed=0, **BIASED)
    ref = ln.GRU(3, return_sequences=True, seed=0, **BIASED)
    gru(x)
    ref(x)
    g = rng.standard_normal((2, 4, 3))
    gru.backward_params(g)
    dx = gru.backward_input(g)
    np.testing.assert_array_equal(dx, ref.backward_input(g))
    g2 = g.copy()
    g2[0, 0, 0] += 1.0  # same array object reused with new values must not hit the memo
    np.testing.assert_array_equal(gru.backward_input(g2), ref.backward_input(g2))
    gru(x + 1.0)
    ref(x + 1.0)
    np.testing.assert_array_equal(gru.backward_input(g), ref.backward_input(g))


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: ln.GRU(3, **kw),
        lambda **kw: ln.GRU(2, return_sequences=True, go_backwards=True, **kw),
        lambda **kw: ln.Bidirectional(ln.GRU(2, return_sequences=True, name="g", **kw), "ave"),
    ],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_contract_dtype_batches_and_empty_batch(make, dtype):
    layer = make(dtype=dtype, seed=0)
    x = np.random.default_rng(1).standard_normal((4, 6, 2))
    assert layer.output_shape((None, 6, 2)) == (None, *layer.output_shape((4, 6, 2))[1:])
    y = layer(x)
    assert y.dtype == dtype and y.shape == layer.output_shape(x.shape)
    g = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward_input(g)
    grads = layer.backward_params(g)
    assert dx.dtype == dtype and all(v.dtype == dtype for v in grads.values())
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-13}
    sums = {k: np.zeros_like(v) for k, v in grads.items()}
    for i in range(4):
        np.testing.assert_allclose(layer(x[i : i + 1]), y[i : i + 1], **tol)
        np.testing.assert_allclose(layer.backward_input(g[i : i + 1]), dx[i : i + 1], **tol)
        for k, v in layer.backward_params(g[i : i + 1]).items():
            sums[k] += v
    for k in grads:
        np.testing.assert_allclose(sums[k], grads[k], **tol)
    y0 = layer(np.zeros((0, 6, 2)))
    assert y0.shape[0] == 0 and layer.backward_input(np.zeros(y0.shape)).shape == (0, 6, 2)
    assert all(not v.any() for v in layer.backward_params(np.zeros(y0.shape)).values())


def test_other_sequence_lengths_after_build(rng):
    gru = ln.GRU(2, return_sequences=True, seed=0)
    gru(rng.standard_normal((1, 5, 3)))
    assert gru(rng.standard_normal((2, 9, 3))).shape == (2, 9, 2)


def test_keras_default_initialisers():
    gru = ln.GRU(5, seed=0, **F64)
    gru.build((None, 3, 4))
    u = gru.params["recurrent_kernel"]
    np.testing.assert_allclose(u @ u.T, np.eye(5), atol=1e-12)  # orthogonal rows
    assert not gru.params["bias"].any()
    assert np.abs(gru.params["kernel"]).max() <= np.sqrt(6 / (4 + 15))


# ----------------------------------------------------------------- containers
def test_bidirectional_exposes_the_inner_arrays():
    bi = ln.Bidirectional(ln.GRU(2, seed=0, name="g"))
    bi.build((None, 4, 3))
    assert set(bi.params) == {
        f"{d}/{k}" for d in ("g", "backward_g") for k in ("kernel", "recurrent_kernel", "bias")
    }
    assert bi.params["g/kernel"] is bi.forward_layer.params["kernel"]
    assert bi.grads["backward_g/recurrent_kernel"] is bi.backward_layer.grads["recurrent_kernel"]
    assert bi.count_params() == 2 * (3 * 6 + 2 * 6 + 2 * 6)
    with pytest.raises(AttributeError, match="cannot be replaced"):
        bi.params = {"x": np.zeros(1)}


def test_frozen_direction_is_state_and_not_trained(rng):
    bi = ln.Bidirectional(ln.GRU(2, seed=0, name="g"))
    model = ln.Sequential([bi, ln.Dense(3, seed=1)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy")
    model.build((None, 4, 1))
    bi.backward_layer.trainable = False
    assert set(bi.state) == {"backward_g/kernel", "backward_g/recurrent_kernel", "backward_g/bias"}
    assert set(bi.params) == {"g/kernel", "g/recurrent_kernel", "g/bias"}
    before = {k: v.copy() for k, v in bi.variables().items()}
    model.train_step(rng.standard_normal((5, 4, 1)), np.arange(5) % 3)
    after = bi.variables()
    assert all(np.array_equal(before[k], after[k]) for k in bi.state)
    assert not any(np.array_equal(before[k], after[k]) for k in bi.params)


def test_paper_gru_model_trains_saves_and_reloads_bit_identically(tmp_path, rng):
    x = rng.standard_normal((20, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 20)
    model = ln.Sequential(
        [ln.Bidirectional(ln.GRU(4, return_sequences=True)), ln.Flatten(), ln.Dense(3)]
    )
    model.compile(ln.Adam(1e-2), "softmax_cross_entropy", ["accuracy"])
    history = model.fit(x, y, epochs=3, batch_size=10, verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    lines = []
    model.summary(print_fn=lines.append)
    assert "Bidirectional" in lines[0] + "\n".join(lines) and "(None, 8, 8)" in "\n".join(lines)
    model.save(tmp_path / "gru.npz")
    loaded = ln.load_model(tmp_path / "gru.npz")
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert isinstance(loaded.layers[0].backward_layer, ln.GRU)


def test_config_round_trip():
    bi = ln.Bidirectional(
        ln.GRU(3, activation="relu", use_bias=False, return_sequences=True, name="g", seed=4),
        merge_mode="mul",
        name="bi",
    )
    clone = ln.Bidirectional.from_config(bi.get_config())
    assert clone.get_config() == bi.get_config()
    gru = ln.GRU(2, go_backwards=True, recurrent_initializer="glorot_normal", name="r")
    assert ln.GRU.from_config(gru.get_config()).get_config() == gru.get_config()


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"units": 0}, "GRU 'g': invalid value for `units`"),
        ({"units": 2, "reset_after": False}, r"`reset_after`: only True is supported"),
        ({"units": 2, "activation": "softmax"}, r"`activation`: expected one of"),
        ({"units": 2, "recurrent_activation": None}, r"`recurrent_activation`"),
        ({"units": 2, "recurrent_initializer": "nope"}, r"`recurrent_initializer`"),
        ({"units": 2, "return_sequences": 1}, r"`return_sequences`"),
    ],
)
def test_gru_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ln.GRU(**kwargs, name="g")


def test_gru_shape_errors(rng):
    gru = ln.GRU(2, name="g")
    with pytest.raises(ValueError, match=r"GRU 'g': expected input with 3 dims \(batch, timesteps"):
        gru(rng.standard_normal((4, 5)))
    with pytest.raises(ValueError, match=r"GRU 'g': expected at least 1 timestep"):
        gru(np.zeros((2, 0, 3)))
    gru(rng.standard_normal((2, 5, 3)))
    with pytest.raises(ValueError, match=r"expected input with 3 features .*got shape \(2, 5, 4\)"):
        gru(rng.standard_normal((2, 5, 4)))
    with pytest.raises(ValueError, match=r"expected `dy` of shape \(2, 2\)"):
        gru.backward_input(np.zeros((2, 5, 2)))


def test_bidirectional_errors(rng):
    with pytest.raises(TypeError, match="Bidirectional: invalid value for `layer`: expected a rec"):
        ln.Bidirectional(ln.Dense(3))
    with pytest.raises(ValueError, match=r"`merge_mode`: expected one of"):
        ln.Bidirectional(ln.GRU(3), merge_mode="max")
    with pytest.raises(ValueError, match=r"`backward_layer` must have go_backwards=True"):
        ln.Bidirectional(ln.GRU(3), backward_layer=ln.GRU(3))
    with pytest.raises(ValueError, match=r"same units, received 3 and 2"):
        ln.Bidirectional(ln.GRU(3), "sum", ln.GRU(2, go_backwards=True))
    with pytest.raises(ValueError, match=r"mix dtypes"):
        ln.Bidirectional(ln.GRU(3), backward_layer=ln.GRU(3, go_backwards=True, **F64))
    bi = ln.Bidirectional(ln.GRU(3), name="bi")
    with pytest.raises(ValueError, match=r"Bidirectional 'bi': expected input with 3 dims"):
        bi(rng.standard_normal((2, 5)))
    bi(rng.standard_normal((2, 5, 1)))
    with pytest.raises(ValueError, match=r"'bi': inner layer refused the input: GRU .*1 features"):
        bi(rng.standard_normal((2, 5, 3)))
