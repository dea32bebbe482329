"""Sequence and attention models against the same models under Keras 3 (JAX backend).

Each case builds one model in both libraries with the same code (``K = keras`` or
``K = layernet``), copies Keras's initial weights with ``set_weights``, trains both
with SGD and ``shuffle=False``, and compares the initial predictions, the loss per
epoch and the final weights (float32).
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


# --------------------------------------------------------------------------- models
def embedding_lstm_classifier(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5)(x)
    h = K.layers.LSTM(6)(h)
    return K.Model(x, K.layers.Dense(3, activation="softmax")(h))


def masked_embedding_lstm(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(x)
    h = K.layers.LSTM(6)(h)
    return K.Model(x, K.layers.Dense(2)(h))


def masking_simple_rnn(K):
    x = K.Input(shape=(7, 3))
    h = K.layers.Masking(mask_value=0.0)(x)
    h = K.layers.SimpleRNN(5)(h)
    return K.Model(x, K.layers.Dense(2)(h))


def simple_rnn_time_distributed(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.SimpleRNN(5, return_sequences=True)(x)
    return K.Model(x, K.layers.TimeDistributed(K.layers.Dense(2))(h))


def lstm_go_backwards(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.LSTM(6, go_backwards=True)(x)
    return K.Model(x, K.layers.Dense(2)(h))


def encoder_decoder_repeat(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.LSTM(8)(x)
    h = K.layers.RepeatVector(4)(h)
    h = K.layers.LSTM(8, return_sequences=True)(h)
    return K.Model(x, K.layers.TimeDistributed(K.layers.Dense(3))(h))


def encoder_decoder_states(K):
    enc = K.Input(shape=(6, 3))
    dec = K.Input(shape=(4, 2))
    _, h, c = K.layers.LSTM(8, return_state=True)(enc)
    y = K.layers.LSTM(8, return_sequences=True)(dec, initial_state=[h, c])
    return K.Model([enc, dec], K.layers.Dense(3)(y))


def dense_layer_normalization(K):
    x = K.Input(shape=(6,))
    h = K.layers.Dense(8, activation="tanh")(x)
    h = K.layers.LayerNormalization()(h)
    return K.Model(x, K.layers.Dense(2)(h))


def _transformer_block(K, causal):
    x = K.Input(shape=(6, 8))
    a = K.layers.MultiHeadAttention(num_heads=2, key_dim=4)(x, x, use_causal_mask=causal)
    h = K.layers.LayerNormalization()(K.layers.Add()([x, a]))
    f = K.layers.Dense(16, activation="relu")(h)
    f = K.layers.Dense(8)(f)
    y = K.layers.LayerNormalization()(K.layers.Add()([h, f]))
    return K.Model(x, K.layers.Dense(2)(y))


def transformer_block(K):
    return _transformer_block(K, False)


def transformer_block_causal(K):
    return _transformer_block(K, True)


def text_cnn(K):
    x = K.Input(shape=(10,), dtype="int32")
    h = K.layers.Embedding(20, 6)(x)
    h = K.layers.Conv1D(4, 3, activation="relu")(h)
    h = K.layers.GlobalMaxPooling1D()(h)
    return K.Model(x, K.layers.Dense(2)(h))


def bidirectional_lstm(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.Bidirectional(K.layers.LSTM(4))(x)
    return K.Model(x, K.layers.Dense(2)(h))


def bidirectional_masked_sequences(K):
    x = K.Input(shape=(7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(x)
    h = K.layers.Bidirectional(K.layers.SimpleRNN(4, return_sequences=True), merge_mode="ave")(h)
    h = K.layers.Flatten()(h)  # sees the zeros the masked steps output
    return K.Model(x, K.layers.Dense(2)(h))


def bidirectional_rnn_cell(K):
    x = K.Input(shape=(6, 3))
    h = K.layers.Bidirectional(K.layers.RNN(K.layers.LSTMCell(3)), merge_mode="mul")(x)
    return K.Model(x, K.layers.Dense(2)(h))


def bidirectional_states_unmerged(K):
    x = K.Input(shape=(6, 3))
    yf, yb, hf, _cf, hb, cb = K.layers.Bidirectional(
        K.layers.LSTM(4, return_sequences=True, return_state=True), merge_mode=None
    )(x)
    h = K.layers.Concatenate()([K.layers.Add()([yf, yb]), K.layers.RepeatVector(6)(cb)])
    h = K.layers.Flatten()(h)
    return K.Model(x, K.layers.Dense(2)(K.layers.Concatenate()([h, hf, hb])))


# --------------------------------------------------------------------------- data
def _ids(n, t, vocab, rng, pad=False):
    ids = rng.integers(1, vocab, (n, t)).astype("int32")
    if pad:  # padded batches: each sequence keeps its first `length` ids
        lengths = rng.integers(2, t + 1, n)
        ids[np.arange(t)[None, :] >= lengths[:, None]] = 0
    return ids


def _padded_floats(n, t, f, rng):
    x = rng.standard_normal((n, t, f)).astype("float32")
    lengths = rng.integers(2, t + 1, n)
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    return x


def _data(case, rng, n=24):
    """Inputs, targets and the loss of each case."""
    normal = lambda *s: rng.standard_normal((n, *s)).astype("float32")  # noqa: E731
    if case == "embedding_lstm_classifier":
        return _ids(n, 7, 12, rng), rng.integers(0, 3, n), "sparse_categorical_crossentropy"
    if case == "masked_embedding_lstm":
        return _ids(n, 7, 12, rng, pad=True), normal(2), "mse"
    if case == "masking_simple_rnn":
        return _padded_floats(n, 7, 3, rng), normal(2), "mse"
    if case == "simple_rnn_time_distributed":
        return normal(6, 3), normal(6, 2), "mse"
    if case == "bidirectional_masked_sequences":
        return _ids(n, 7, 12, rng, pad=True), normal(2), "mse"
    if case in (
        "lstm_go_backwards",
        "bidirectional_lstm",
        "bidirectional_rnn_cell",
        "bidirectional_states_unmerged",
    ):
        return normal(6, 3), normal(2), "mse"
    if case == "encoder_decoder_repeat":
        return normal(6, 3), normal(4, 3), "mse"
    if case == "encoder_decoder_states":
        return [normal(6, 3), normal(4, 2)], normal(4, 3), "mse"
    if case == "dense_layer_normalization":
        return normal(6), normal(2), "mse"
    if case.startswith("transformer_block"):
        return normal(6, 8), normal(6, 2), "mse"
    if case == "text_cnn":
        return _ids(n, 10, 20, rng), normal(2), "mse"
    raise KeyError(case)


CASES = {
    f.__name__: f
    for f in (
        embedding_lstm_classifier,
        masked_embedding_lstm,
        masking_simple_rnn,
        simple_rnn_time_distributed,
        lstm_go_backwards,
        encoder_decoder_repeat,
        encoder_decoder_states,
        dense_layer_normalization,
        transformer_block,
        transformer_block_causal,
        text_cnn,
        bidirectional_lstm,
        bidirectional_masked_sequences,
        bidirectional_rnn_cell,
        bidirectional_states_unmerged,
    )
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sequence_model_trains_like_keras(case):
    build = CASES[case]
    keras.utils.set_random_seed(0)
    km = build(keras)
    lm = build(ln)
    assert [w.shape for w in lm.get_weights()] == [tuple(w.shape) for w in km.get_weights()]
    lm.set_weights(km.get_weights())
    x, y, loss = _data(case, np.random.default_rng(0))
    np.testing.assert_allclose(
        lm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=RTOL, atol=ATOL
    )
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss)
    lm.compile(optimizer=ln.SGD(learning_rate=0.1), loss=loss)
    hk = km.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=ATOL)
