"""Stacked recurrent cells against Keras 3 (JAX backend): the same models, the same weights.

Each case builds one model in both libraries with the same code (``K = keras`` or
``K = layernet``), copies Keras's initial weights with ``set_weights``, compares the
predictions (every output and state), trains both with SGD and ``shuffle=False``,
and compares the loss per epoch and the final weights (float32).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import layernet as ln  # noqa: E402

RTOL = 1e-4
ATOL = 1e-5


def _flat(K, outputs):
    """Keras nests a stack's states per cell; layernet's list is flat already."""
    return keras.tree.flatten(outputs) if K is keras else list(outputs)


def three_cells(K):
    return [K.layers.LSTMCell(4), K.layers.GRUCell(3), K.layers.SimpleRNNCell(2)]


# --------------------------------------------------------------------------- models
def stack_sequences_and_states(K):
    x = K.Input(shape=(5, 3))
    outs = K.layers.RNN(three_cells(K), return_sequences=True, return_state=True)(x)
    return K.Model(x, _flat(K, outs))


def stack_states_head(K):
    x = K.Input(shape=(5, 3))
    y, h1, c1, h2, h3 = _flat(
        K, K.layers.RNN(three_cells(K), return_sequences=True, return_state=True)(x)
    )
    h = K.layers.Concatenate()([K.layers.Flatten()(y), h1, c1, h2, h3])
    return K.Model(x, K.layers.Dense(2)(h))


def stack_masked(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(x)
    h = K.layers.RNN([K.layers.LSTMCell(4), K.layers.GRUCell(3)])(h)
    return K.Model(x, K.layers.Dense(2)(h))


def stack_masked_sequences(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(x)
    h = K.layers.RNN(
        [K.layers.GRUCell(3), K.layers.SimpleRNNCell(4)],
        return_sequences=True,
        zero_output_for_mask=True,
    )(h)
    return K.Model(x, K.layers.Dense(2)(K.layers.Flatten()(h)))


def stack_masked_sequences_carry(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(x)
    h = K.layers.RNN([K.layers.LSTMCell(3), K.layers.GRUCell(4)], return_sequences=True)(h)
    return K.Model(x, K.layers.Dense(2)(K.layers.Flatten()(h)))  # sees the carried outputs


def stack_go_backwards(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.RNN(
        [K.layers.GRUCell(3), K.layers.LSTMCell(4)], go_backwards=True, return_sequences=True
    )(x)
    return K.Model(x, K.layers.Dense(2)(K.layers.Flatten()(h)))


def stack_bidirectional(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.Bidirectional(K.layers.RNN([K.layers.LSTMCell(3), K.layers.GRUCell(2)]))(x)
    return K.Model(x, K.layers.Dense(2)(h))


def stack_initial_state(K):
    enc = K.Input(shape=(6, 3))
    dec = K.Input(shape=(4, 2))
    _, h, c, g = _flat(
        K, K.layers.RNN([K.layers.LSTMCell(4), K.layers.GRUCell(3)], return_state=True)(enc)
    )
    y = K.layers.RNN([K.layers.LSTMCell(4), K.layers.GRUCell(3)], return_sequences=True)(
        dec, initial_state=[[h, c], g]
    )
    return K.Model([enc, dec], K.layers.Dense(3)(y))


# --------------------------------------------------------------------------- data
def _ids(n, t, vocab, rng):
    ids = rng.integers(1, vocab, (n, t)).astype("int32")
    lengths = rng.integers(2, t + 1, n)  # padded batches: each keeps its first ids
    ids[np.arange(t)[None, :] >= lengths[:, None]] = 0
    return ids


def _data(case, rng, n=24):
    normal = lambda *s: rng.standard_normal((n, *s)).astype("float32")  # noqa: E731
    if case.startswith("stack_masked"):
        return _ids(n, 7, 12, rng), normal(2)
    if case == "stack_initial_state":
        return [normal(6, 3), normal(4, 2)], normal(4, 3)
    if case in ("stack_go_backwards", "stack_bidirectional"):
        return normal(6, 3), normal(2)
    return normal(5, 3), normal(2)


TRAINED = {
    f.__name__: f
    for f in (
        stack_states_head,
        stack_masked,
        stack_masked_sequences,
        stack_masked_sequences_carry,
        stack_go_backwards,
        stack_bidirectional,
        stack_initial_state,
    )
}


def _twins(build):
    keras.utils.set_random_seed(0)
    km = build(keras)
    lm = build(ln)
    assert [w.shape for w in lm.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    lm.set_weights(km.get_weights())
    return km, lm


def test_outputs_and_states_equal_keras():
    km, lm = _twins(stack_sequences_and_states)
    x = np.random.default_rng(0).standard_normal((6, 5, 3)).astype("float32")
    ys_k, ys_l = km.predict(x, verbose=0), lm.predict(x, verbose=0)
    assert [y.shape for y in ys_l] == [(6, 5, 2), (6, 4), (6, 4), (6, 3), (6, 2)]
    for yl, yk in zip(ys_l, ys_k, strict=True):
        np.testing.assert_allclose(yl, yk, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", sorted(TRAINED))
def test_stacked_model_trains_like_keras(case):
    km, lm = _twins(TRAINED[case])
    x, y = _data(case, np.random.default_rng(0))
    np.testing.assert_allclose(
        lm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=RTOL, atol=ATOL
    )
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    lm.compile(optimizer=ln.SGD(learning_rate=0.1), loss="mse")
    hk = km.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=ATOL)


def test_saved_and_loaded_model_keeps_keras_outputs(tmp_path):
    km, lm = _twins(stack_states_head)
    x = np.random.default_rng(1).standard_normal((5, 5, 3)).astype("float32")
    path = tmp_path / "stack.npz"
    lm.save(path)
    loaded = ln.load_model(path)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), km.predict(x, verbose=0), rtol=RTOL, atol=ATOL
    )
