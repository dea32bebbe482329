"""The sequence layers' fast paths and in-place rewrites give the plain paths' numbers.

Dense folds the leading axes of a (batch, steps, features) input into one 2-D
product (switchable: ``layernet._ops.fast_paths(False)`` turns it off);
LayerNormalization and the attention softmax update their temporaries in place
(the same operations in the same order, so the same bits as the formulas);
MultiHeadAttention's batched products write into (batch, T, heads, size) arrays
directly; an LSTM keeps its gates in the one array of its input products and its
backward pass one array of deltas.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops
from layernet.layers.attention import (
    _bmm,
    _bmm_heads_last,
    _heads_first,
    _softmax,
    _softmax_backward,
)


def _run(layer, x, dy):
    y = layer.forward(x)
    return [y, layer.backward_input(dy), *layer.backward_params(dy).values()]


# ----------------------------------------------------------------------- Dense
@given(
    lead=st.lists(st.integers(0, 4), min_size=1, max_size=3),
    features=st.integers(1, 9),
    units=st.integers(1, 9),
    activation=st.sampled_from([None, "relu", "tanh"]),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_dense_on_several_leading_axes_equals_the_per_sample_products(
    lead, features, units, activation, dtype, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, features)).astype(dtype)
    if x.ndim < 2:
        x = x[None]
    dy = rng.standard_normal((*x.shape[:-1], units)).astype(dtype)

    def make():
        return ln.Dense(units, activation=activation, bias_initializer="he_uniform", seed=0,
                        dtype=dtype)  # fmt: skip

    fast = _run(make(), x, dy)
    with _ops.fast_paths(False):
        plain = _run(make(), x, dy)
    tol = 1e-12 if dtype == "float64" else 2e-6
    for a, b in zip(fast, plain, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype == np.dtype(dtype)
        scale = float(np.max(np.abs(b), initial=0.0)) or 1.0
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * scale)


def test_dense_takes_one_product_for_a_3d_input(monkeypatch, rng):
    from layernet import threads

    shapes = []
    real = threads.matmul

    def spy(a, b, *args, **kwargs):
        shapes.append(a.shape)
        return real(a, b, *args, **kwargs)

    monkeypatch.setattr(threads, "matmul", spy)
    dense = ln.Dense(5, seed=0)
    y = dense.forward(rng.standard_normal((4, 3, 2)))
    dense.backward_input(np.ones_like(y))
    assert shapes == [(12, 2), (12, 5)]  # forward, input gradient: 2-D products
    shapes.clear()
    with _ops.fast_paths(False):
        dense.forward(rng.standard_normal((4, 3, 2)))
    assert shapes == [(4, 3, 2)]
    shapes.clear()
    ln.Dense(5, seed=0).forward(rng.standard_normal((4, 2)))  # 2-D: the plain product
    assert shapes == [(4, 2)]


# ---------------------------------------------------------- LayerNormalization
def _layer_norm_formulas(x, dy, gamma, beta, axes, eps):
    """The Notes' formulas, each step a new array (the layer's earlier code)."""
    n = max(int(np.prod([x.shape[a] for a in axes])), 1)
    mean = np.sum(x, axis=axes, keepdims=True) / n
    centered = x - mean
    var = np.sum(centered * centered, axis=axes, keepdims=True) / n
    inv = 1.0 / np.sqrt(var + eps)
    xhat = centered * inv
    y = xhat * gamma if gamma is not None else xhat
    if beta is not None:
        y = y + beta
    h = dy * gamma if gamma is not None else dy
    mean_h = np.sum(h, axis=axes, keepdims=True) / n
    mean_hx = np.sum(h * xhat, axis=axes, keepdims=True) / n
    return y, inv * (h - mean_h - xhat * mean_hx)


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    data=st.data(),
    center=st.booleans(),
    scale=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_layer_normalization_in_place_gives_the_formulas_bits(shape, data, center, scale, dtype):
    shape = (3, *shape)
    axes = data.draw(st.lists(st.integers(1, len(shape) - 1), min_size=1, unique=True))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    norm = ln.LayerNormalization(axis=axes, center=center, scale=scale, dtype=dtype,
                                 gamma_initializer="he_uniform", beta_initializer="he_uniform",
                                 seed=0)  # fmt: skip
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    dy_before = dy.copy()
    y = norm.forward(x)
    dx = norm.backward_input(dy)
    axes_sorted = norm._axes(x.ndim)
    gamma = norm._broadcast(norm.params["gamma"], x.ndim) if scale else None
    beta = norm._broadcast(norm.params["beta"], x.ndim) if center else None
    y_ref, dx_ref = _layer_norm_formulas(x, dy, gamma, beta, axes_sorted, norm.epsilon)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, y_ref.astype(dtype))
    np.testing.assert_array_equal(dx, dx_ref.astype(dtype))
    np.testing.assert_array_equal(dy, dy_before)  # the upstream gradient is left alone
    assert not np.shares_memory(y, norm.saved.xhat)


# ------------------------------------------------------------------- attention
@pytest.mark.parametrize("n_axes", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_its_backward_give_the_formulas_bits(n_axes, dtype, rng):
    s = (rng.standard_normal((3, 2, 5, 4, 6)) * 4).astype(dtype)
    dp = rng.standard_normal(s.shape).astype(dtype)
    flat = s.reshape(3, 2, 5, 24) if n_axes == 2 else s
    e = np.exp(flat - flat.max(axis=-1, keepdims=True))
    expected = (e / e.sum(axis=-1, keepdims=True)).reshape(s.shape)
    p = _softmax(s, n_axes)
    np.testing.assert_array_equal(p, expected)
    axes = tuple(range(s.ndim - n_axes, s.ndim))
    expected_ds = p * (dp - np.sum(dp * p, axis=axes, keepdims=True))
    np.testing.assert_array_equal(_softmax_backward(p, dp, n_axes), expected_ds)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("length", [3, 64])
def test_heads_last_products_equal_the_stacked_products_transposed(budget, dtype, length, rng):
    n, h, d = 2, 3, 8
    q = rng.standard_normal((n, length, h, d)).astype(dtype)
    k = rng.standard_normal((n, length, h, d)).astype(dtype)
    scores = _bmm(_heads_first(q), _heads_first(k).swapaxes(-1, -2))
    np.testing.assert_array_equal(
        scores, np.matmul(_heads_first(q), _heads_first(k).swapaxes(-1, -2))
    )
    out = _bmm_heads_last(scores, _heads_first(k))
    assert out.shape == (n, length, h, d) and out.flags.c_contiguous and out.dtype == dtype
    expected = np.matmul(scores, _heads_first(k)).transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------- LSTM
def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def test_lstm_keeps_its_gates_in_one_array_and_one_array_of_deltas(rng):
    lstm = ln.LSTM(4, seed=0, return_sequences=True)
    x = rng.standard_normal((3, 5, 2)).astype("float32")
    y = lstm.forward(x)
    gates = [g for c in lstm.saved.caches for g in c[:4]]  # i, f, candidate, o of each step
    roots = {id(_root(g)) for g in gates}
    assert len(roots) == 1 and _root(gates[0]).size == 5 * 3 * 16  # (T, N, 4U)
    inp, rec, _, _ = lstm._bptt(np.ones_like(y), lstm.saved)
    assert rec is inp
    gru = ln.GRU(4, seed=0, return_sequences=True, dtype="float32")
    gru_rnn = ln.RNN(ln.GRUCell(4, seed=0), return_sequences=True)
    y = gru_rnn.forward(x)
    inp, rec, _, _ = gru_rnn._bptt(np.ones_like(y), gru_rnn.saved)
    assert rec is not inp and not np.shares_memory(rec, inp)
    assert gru.forward(x).shape == (3, 5, 4)


def test_lstm_one_step_cell_leaves_its_inputs_alone(rng):
    cell = ln.LSTMCell(3, seed=0, dtype="float64")
    x, h, c = rng.standard_normal((2, 4)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    copies = [a.copy() for a in (x, h, c)]
    out = cell([x, h, c])
    again = cell([x, h, c])
    for a, b in zip(out, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip((x, h, c), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_lstm_training_step_peak_memory_stays_near_its_gates(rng):
    n, t, f, u = 16, 60, 8, 32
    lstm = ln.LSTM(u, seed=0)
    x = rng.standard_normal((n, t, f)).astype("float32")
    dy = rng.standard_normal((n, u)).astype("float32")
    lstm.forward(x)
    lstm.backward_params(dy)
    lstm.backward_input(dy)
    lstm.saved = None
    gates = t * n * 4 * u * 4  # bytes of the (T, N, 4U) float32 gates
    tracemalloc.start()
    try:
        lstm.forward(x)
        lstm.backward_params(dy)
        lstm.backward_input(dy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # gates 1, deltas 1, the states c, tanh(c), h (3/4) and h_{s-1} stacked (1/4): 3 gates
    # arrays, plus the input side and per-step temporaries. Two more (T, N, 4U) arrays
    # (per-step pre-activations, a second array of deltas) would pass 4.5.
    assert peak < 3.5 * gates, peak / gates


def test_lstm_forward_releases_the_previous_pass(rng):
    lstm = ln.LSTM(3, seed=0)
    x = rng.standard_normal((2, 4, 5)).astype("float32")
    dy = np.ones((2, 3), "float32")
    lstm.forward(x)
    lstm.backward_params(dy)  # a Sequential skips the first layer's input gradient
    assert lstm._bptt_memo is not None
    lstm.forward(x)
    assert lstm._bptt_memo is None  # the kept reverse pass went with the pass it served
    g = lstm.backward_params(dy)
    np.testing.assert_array_equal(g["kernel"], lstm.backward_params(dy)["kernel"])


def test_dense_with_an_activation_runs_its_backward_once_per_call(monkeypatch, rng):
    x = rng.standard_normal((3, 4, 5)).astype("float32")
    dense = ln.Dense(6, activation="relu", seed=0)
    y, saved = dense.call_forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype("float32")
    dense.forward(x)
    separate = [dense.backward_input(dy), *dense.backward_params(dy).values()]
    calls = []
    real = ln.Dense._affine_grad
    monkeypatch.setattr(ln.Dense, "_affine_grad", lambda s, d, v: calls.append(1) or real(s, d, v))
    dx, grads = dense.call_backward(dy, saved)
    assert len(calls) == 1
    for a, b in zip([dx, *grads.values()], separate, strict=True):
        np.testing.assert_array_equal(a, b)

    class Scaled(ln.Dense):  # a subclass's own rule is still the one used
        def compute_backward_input(self, dy, saved):
            return 2 * super().compute_backward_input(dy, saved)

    scaled = Scaled(6, activation="relu", seed=0)
    y, saved = scaled.call_forward(x, training=True)
    np.testing.assert_array_equal(scaled.call_backward(dy, saved)[0], 2 * separate[0])
