"""Masks in global pooling, in Bidirectional and in losses (``mask_to_sample_weight``)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _harness import assert_layer_gradients, distinct_values

import layernet as ln
from layernet.layers.masking_utils import mask_to_sample_weight

F64 = {"dtype": "float64"}
MASK = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)


# --------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("cls", [ln.GlobalAveragePooling1D, ln.GlobalMaxPooling1D])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_gradients_with_a_mask(cls, keepdims):
    x = distinct_values((3, 5, 4), np.random.default_rng(0))
    assert_layer_gradients(
        lambda: cls(keepdims=keepdims, **F64), x, options={"mask": MASK}, front=False
    )


def test_masked_pooling_values_against_numpy():
    x = distinct_values((3, 5, 4), np.random.default_rng(1))
    avg = ln.GlobalAveragePooling1D(**F64).forward(x, mask=MASK)
    mx = ln.GlobalMaxPooling1D(**F64).forward(x, mask=MASK)
    for i in range(3):
        np.testing.assert_allclose(avg[i], x[i, MASK[i]].mean(axis=0), rtol=1e-12)
        np.testing.assert_array_equal(mx[i], x[i, MASK[i]].max(axis=0))
    # Without a mask, the same as before.
    np.testing.assert_allclose(ln.GlobalAveragePooling1D(**F64).forward(x), x.mean(axis=1))
    np.testing.assert_array_equal(ln.GlobalMaxPooling1D(**F64).forward(x), x.max(axis=1))


def test_masked_max_never_picks_a_masked_larger_value():
    x = np.zeros((1, 3, 1))
    x[0, :, 0] = [1.0, 9.0, 2.0]
    pool = ln.GlobalMaxPooling1D(**F64)
    assert pool.forward(x, mask=np.array([[1, 0, 1]]))[0, 0] == 2.0
    np.testing.assert_array_equal(pool.backward_input(np.ones((1, 1)))[0, :, 0], [0, 0, 1])


@pytest.mark.parametrize("cls", [ln.GlobalAveragePooling1D, ln.GlobalMaxPooling1D])
def test_fully_masked_sample_gives_zeros_and_no_gradient(cls):
    x = distinct_values((2, 4, 3), np.random.default_rng(2))
    mask = np.array([[0, 0, 0, 0], [1, 1, 0, 1]], dtype=bool)
    pool = cls(**F64)
    y = pool.forward(x, mask=mask)
    np.testing.assert_array_equal(y[0], 0)
    assert np.all(np.isfinite(y))
    dx = pool.backward_input(np.ones_like(y))
    np.testing.assert_array_equal(dx[0], 0)
    assert np.all(dx[1, 2] == 0) and dx[1].sum() == pytest.approx(3.0)


def test_masked_values_never_leak_into_the_mean():
    x = np.ones((1, 3, 2))
    x[0, 1] = np.inf
    y = ln.GlobalAveragePooling1D(**F64).forward(x, mask=np.array([[1, 0, 1]]))
    np.testing.assert_array_equal(y, [[1.0, 1.0]])


@pytest.mark.parametrize("cls", [ln.GlobalAveragePooling1D, ln.GlobalMaxPooling1D])
def test_mask_of_the_wrong_shape_is_refused(cls):
    with pytest.raises(ValueError, match=r"expected a mask of shape \(3, 5\).*got shape \(3, 4\)"):
        cls().forward(np.zeros((3, 5, 2), "float32"), mask=np.ones((3, 4), bool))


def test_global_average_pooling_mask_from_embedding_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    ids = np.array([[3, 4, 1, 0, 0], [2, 0, 0, 0, 0], [5, 6, 7, 8, 9]], dtype="int32")

    def build(K):
        x = K.Input(shape=(5,), dtype="int32")
        h = K.layers.Embedding(10, 4, mask_zero=True)(x)
        return K.Model(x, K.layers.GlobalAveragePooling1D()(h))

    keras.utils.set_random_seed(0)
    km, lm = build(keras), build(ln)
    lm.set_weights(km.get_weights())
    np.testing.assert_allclose(
        lm.predict(ids, verbose=0), km.predict(ids, verbose=0), rtol=1e-6, atol=1e-7
    )


# --------------------------------------------------------------------------- Bidirectional
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: ln.LSTM(3, return_sequences=True, seed=0, name="rnn", **F64),
        lambda: ln.SimpleRNN(3, seed=0, name="rnn", **F64),
        lambda: ln.RNN(ln.GRUCell(3, seed=0, **F64), return_sequences=True, name="rnn", **F64),
    ],
    ids=["lstm_sequences", "simple_rnn", "gru_cell_sequences"],
)
def test_bidirectional_gradients_with_a_mask(make, merge_mode):
    x = distinct_values((3, 5, 2), np.random.default_rng(3))
    assert_layer_gradients(
        lambda: ln.Bidirectional(make(), merge_mode=merge_mode),
        x,
        options={"mask": MASK},
        front=False,
    )


def test_bidirectional_zero_outputs_at_masked_steps_and_weight_order():
    bi = ln.Bidirectional(ln.LSTM(3, return_sequences=True, seed=0, **F64))
    x = distinct_values((3, 5, 2), np.random.default_rng(4))
    y = bi.forward(x, mask=MASK)
    np.testing.assert_array_equal(y[~MASK], 0)
    assert bi.forward_layer.zero_output_for_mask and bi.backward_layer.zero_output_for_mask
    assert [w.shape for w in bi.get_weights()] == [(2, 12), (3, 12), (12,)] * 2
    last = ln.Bidirectional(ln.LSTM(3, seed=0, **F64))
    assert not last.forward_layer.zero_output_for_mask


def test_bidirectional_refuses_a_mask_for_a_layer_without_masks():
    bi = ln.Bidirectional(ln.GRU(3, seed=0))
    with pytest.raises(ValueError, match=r"does not take a mask"):
        bi.forward(np.zeros((3, 5, 2), "float32"), mask=MASK)


# --------------------------------------------------------------------------- losses
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "none"])
@pytest.mark.parametrize("with_weights", [False, True])
def test_mask_to_sample_weight_matches_keras_apply_mask(reduction, with_weights):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    pytest.importorskip("keras")
    from keras.src.losses.loss import apply_mask

    weights = np.array([0.5, 2.0, 1.0]) if with_weights else None
    ours = mask_to_sample_weight(MASK, weights, reduction)
    # (Keras's loss hands apply_mask weights already expanded to the loss's rank.)
    theirs = apply_mask(None if weights is None else weights[:, None], MASK, "float32", reduction)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-6)


def test_mask_to_sample_weight_gives_keras_masked_sequence_loss():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    ids = np.array([[3, 4, 1, 0, 0], [2, 0, 0, 0, 0], [5, 6, 7, 8, 9]], dtype="int32")
    y = np.random.default_rng(5).standard_normal((3, 5, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    x = keras.Input(shape=(5,), dtype="int32")
    h = keras.layers.Embedding(10, 4, mask_zero=True)(x)
    out = keras.layers.LSTM(2, return_sequences=True)(h)
    km = keras.Model(x, out)
    km.compile(loss="mse")
    pred = np.asarray(km.predict(ids, verbose=0))
    per_step = ((pred - y) ** 2).mean(axis=-1)  # Keras's MSE per timestep
    w = mask_to_sample_weight(ids != 0)
    expected = (per_step * w).sum() / per_step.size
    assert km.evaluate(ids, y, verbose=0) == pytest.approx(expected, rel=1e-5)


def test_mask_to_sample_weight_edge_cases_and_errors():
    assert mask_to_sample_weight(None) is None
    np.testing.assert_array_equal(mask_to_sample_weight(None, [1, 2]), [1.0, 2.0])
    np.testing.assert_array_equal(mask_to_sample_weight(np.zeros((2, 3), bool)), 0)
    full = mask_to_sample_weight(np.ones((2, 3), bool), np.array([[1, 2, 3], [4, 5, 6]]))
    np.testing.assert_array_equal(full, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"expected `sample_weight` of shape \(2,\)"):
        mask_to_sample_weight(np.ones((2, 3), bool), np.ones(3))
    with pytest.raises(ValueError, match=r"invalid value for `reduction`"):
        mask_to_sample_weight(np.ones((2, 3), bool), reduction="max")


# --------------------------------------------------------------------------- Bidirectional outputs
@pytest.mark.parametrize("merge_mode", [None, "concat", "mul"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_return_state_and_merge_none_gradients(merge_mode, return_sequences):
    x = distinct_values((3, 5, 2), np.random.default_rng(6))

    def make():
        inner = ln.LSTM(
            3, return_sequences=return_sequences, return_state=True, name="rnn", seed=0, **F64
        )
        return ln.Bidirectional(inner, merge_mode=merge_mode)

    layer = make()
    out = layer.forward(x, mask=MASK)
    n_out = 2 if merge_mode is None else 1
    assert isinstance(out, list) and len(out) == n_out + 4
    assert [o.shape for o in out] == layer.output_shape(x.shape)
    assert_layer_gradients(make, x, options={"mask": MASK}, front=False)


def test_bidirectional_merge_none_returns_both_directions_in_time_order():
    x = distinct_values((2, 4, 2), np.random.default_rng(7))
    both = ln.Bidirectional(ln.SimpleRNN(3, return_sequences=True, seed=1, **F64), merge_mode=None)
    yf, yb = both.forward(x)
    concat = ln.Bidirectional(ln.SimpleRNN(3, return_sequences=True, seed=1, **F64))
    np.testing.assert_array_equal(concat.forward(x), np.concatenate([yf, yb], axis=-1))
    masks = both.compute_mask(x, MASK[:2, :4])
    assert len(masks) == 2 and all(
        m is MASK[:2, :4] or np.array_equal(m, MASK[:2, :4]) for m in masks
    )
    with pytest.raises(ValueError, match=r"must agree on return_state"):
        ln.Bidirectional(
            ln.LSTM(3, return_state=True), backward_layer=ln.LSTM(3, go_backwards=True)
        )
    with pytest.raises(ValueError, match=r"`merge_mode`: expected one of"):
        ln.Bidirectional(ln.LSTM(3), merge_mode="max")


@pytest.mark.parametrize("loss", ["mse", "sparse_categorical_crossentropy"])
@pytest.mark.parametrize("with_weights", [False, True])
def test_masked_loss_matches_keras_training_on_a_masked_sequence_output(loss, with_weights):
    """The value Keras 3 reports for a masked sequence output, and the gradient it trains with."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from layernet.layers.masking_utils import masked_loss

    ids = np.array([[3, 4, 1, 0, 0], [2, 0, 0, 0, 0], [5, 6, 7, 8, 9]], dtype="int32")
    rng = np.random.default_rng(8)
    sparse = loss.startswith("sparse")
    y = rng.integers(0, 3, (3, 5)) if sparse else rng.standard_normal((3, 5, 3)).astype("float32")
    weights = np.array([0.5, 2.0, 1.0], "float32") if with_weights else None

    def build(K):
        x = K.Input(shape=(5,), dtype="int32")
        h = K.layers.Embedding(10, 4, mask_zero=True)(x)
        h = K.layers.LSTM(3, return_sequences=True)(h)
        return K.Model(x, K.layers.Activation("softmax")(h) if sparse else h)

    keras.utils.set_random_seed(0)
    km, lm = build(keras), build(ln)
    lm.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    # (Keras broadcasts per-sample weights against a (batch, steps) mask only as (batch, 1).)
    k_weights = None if weights is None else weights[:, None]
    expected = km.evaluate(ids, y, sample_weight=k_weights, verbose=0)
    pred = lm.predict(ids, verbose=0)
    z, grad = masked_loss(loss, pred, y, ids != 0, weights)
    assert z == pytest.approx(expected, rel=1e-5)
    assert np.all(grad[ids == 0] == 0)
    # One SGD step of each, layernet's driven by masked_loss's gradient: same weights.
    km.fit(ids, y, sample_weight=k_weights, batch_size=3, epochs=1, shuffle=False, verbose=0)
    lm.compile(optimizer=ln.SGD(0.5), loss="mse")  # the optimizer; the loss is masked_loss
    lm.forward(ids, training=True)
    lm.backward(grad, accumulate=False)
    lm.optimizer.step(
        {f"{la.name}.{k}": (la.params[k], la.grads[k]) for la in lm.layers for k in la.params}
    )
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=1e-4, atol=1e-6)


def test_masked_loss_refuses_a_mask_that_does_not_fit():
    from layernet.layers.masking_utils import masked_loss

    with pytest.raises(ValueError, match=r"masked_loss: expected a mask of a leading part"):
        masked_loss("mse", np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.ones((2, 4), bool))


def test_bidirectional_states_and_causal_attention_round_trip_through_a_model_file(tmp_path):
    x = ln.Input((6, 3))
    yf, yb, hf, _, _, _ = ln.Bidirectional(
        ln.LSTM(4, return_sequences=True, return_state=True), merge_mode=None
    )(x)
    a = ln.MultiHeadAttention(2, 3)(yf, yb, use_causal_mask=True)
    model = ln.Model(x, [ln.Dense(2)(ln.GlobalAveragePooling1D()(a)), hf])
    model.save(tmp_path / "model.keras")
    loaded = ln.load_model(tmp_path / "model.keras")
    data = np.random.default_rng(9).random((3, 6, 3)).astype("float32")
    for p, q in zip(model.predict(data, verbose=0), loaded.predict(data, verbose=0), strict=True):
        np.testing.assert_array_equal(p, q)
