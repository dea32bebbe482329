"""The gallery's review classifier with a Transformer block, under layernet.

The script (``examples/keras_io/text_classification_with_transformer.py``, written
after the keras.io example) runs in-process with ``fit`` cut to one epoch on a few
hundred reviews. A model of the same kind (an encoder block and a word-plus-position
embedding, both written with ``call()``) is then built at small sizes under Keras 3
(JAX) and under layernet from the same weights and trained with SGD, ``shuffle=False``
and dropout rate 0: the losses of every epoch and the final weights agree (float32).
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "keras_io"
SCRIPT = GALLERY / "text_classification_with_transformer.py"


@pytest.fixture
def offline(monkeypatch):
    """The gallery's helper importable, and IMDB's file neither cached nor downloadable."""
    monkeypatch.syspath_prepend(str(GALLERY))
    sys.modules.pop("_offline_imdb", None)

    def no_file(*args, **kwargs):
        raise ln.utils.DownloadError("imdb.npz: not cached, no network (test)")

    monkeypatch.setattr(ln.datasets.imdb, "fetch", no_file)
    yield
    sys.modules.pop("_offline_imdb", None)


def _one_epoch_fit(real_fit, n_train, n_val, seen=None):
    """``Model.fit`` cut to one epoch on the first samples; records what it was asked."""

    def short_fit(self, x, y, batch_size=None, epochs=1, validation_data=None, **kwargs):
        if seen is not None:
            seen.update(epochs=epochs, batch_size=batch_size, n=len(x))
        x_val, y_val = validation_data
        return real_fit(
            self, x[:n_train], y[:n_train], batch_size=batch_size, epochs=1,
            validation_data=(x_val[:n_val], y_val[:n_val]), verbose=0, **kwargs,
        )  # fmt: skip

    return short_fit


def test_script_runs_unchanged_in_a_short_mode(offline, monkeypatch, capsys):
    seen = {}
    short_fit = _one_epoch_fit(ln.Model.fit, 256, 128, seen)
    monkeypatch.setattr(ln.Model, "fit", short_fit)
    ns = runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    assert "Note: IMDB is not in Keras's cache" in out
    assert "Reviews: 5000 for training, 5000 for validation" in out
    assert seen == {"epochs": 2, "batch_size": 32, "n": 5000}  # the script's settings
    assert ns["x_train"].shape == (5000, 200) and ns["x_val"].shape == (5000, 200)
    history = ns["history"].history
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(np.isfinite(v[0]) for v in history.values())
    model = ns["model"]
    probs = model.predict(ns["x_val"][:3], verbose=0)
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Word and position tables, attention (4 kernels, 4 biases), feed-forward, 2 norms,
    # the head: the parameter count Keras gives this model.
    vocab, maxlen, d, ff = 20000, 200, 32, 32
    attention = 3 * (d * 2 * d + 2 * d) + (2 * d * d + d)
    block = attention + (d * ff + ff) + (ff * d + d) + 4 * d
    assert model.count_params() == vocab * d + maxlen * d + block + (d * 20 + 20) + (20 * 2 + 2)


def test_script_runs_in_the_gallerys_short_mode(offline, monkeypatch, capsys):
    """``LAYERNET_GALLERY_SHORT=1`` (the gallery's short mode) makes a 500-review stand-in."""
    monkeypatch.setenv("LAYERNET_GALLERY_SHORT", "1")
    monkeypatch.setattr(ln.Model, "fit", _one_epoch_fit(ln.Model.fit, 500, 500))
    ns = runpy.run_path(str(SCRIPT), run_name="__main__")
    assert "Reviews: 500 for training" in capsys.readouterr().out
    assert len(ns["history"].history["val_accuracy"]) == 1


def test_only_imports_are_layernets(monkeypatch):
    """Swap the imports back and the script is Keras 3 code: every ``keras.<attr>``,
    ``layers.<attr>`` and ``ops.<attr>`` it uses exists in Keras 3; the IMDB stand-in
    comes only through the ``keras`` import from ``_offline_imdb``."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from _gallery_check import check_script

    used = check_script(SCRIPT, keras)
    assert {"keras.layers.MultiHeadAttention", "keras.ops.arange"} <= used
    text = " ".join(SCRIPT.read_text().split())
    assert "written anew for layernet; it runs under Keras 3 with the imports swapped" in text


def test_stand_in_has_imdbs_format_and_a_learnable_signal(offline):
    import _offline_imdb as _offline

    (x, y), (x_test, y_test) = _offline.imdb_stand_in(num_words=1000, num_samples=2000)
    assert x.dtype == object and len(x) == len(y) == len(x_test) == len(y_test) == 2000
    assert all(isinstance(r, list) and r[0] == 1 for r in x)
    assert all(isinstance(w, int) for w in x[0])
    words = np.concatenate([np.asarray(r[1:]) for r in x])
    assert words.min() >= 2 and words.max() < 1000  # 2 marks the words beyond num_words
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1} and abs(y.mean() - 0.5) < 0.05
    again = _offline.imdb_stand_in(num_words=1000, num_samples=2000)
    np.testing.assert_array_equal(again[0][1], y)
    assert again[1][0][7] == x_test[7]

    # Word counts alone separate the labels: naive Bayes fitted on the training half
    # classifies the other half far better than chance.
    def counts(xs):
        out = np.zeros((len(xs), 1000))
        for i, r in enumerate(xs):
            np.add.at(out[i], r, 1.0)
        return out

    c = counts(x)
    pos, neg = c[y == 1].sum(axis=0) + 1, c[y == 0].sum(axis=0) + 1
    w = np.log(pos / pos.sum()) - np.log(neg / neg.sum())
    assert np.mean((counts(x_test) @ w > 0) == (y_test == 1)) > 0.8


def test_offline_keras_is_layernet_with_only_imdb_replaced(offline):
    import _offline_imdb as _offline

    keras = _offline.keras
    assert keras.Sequential is ln.Sequential and keras.utils is ln.utils
    assert keras.datasets.mnist is ln.datasets.mnist
    assert keras.datasets.imdb.get_word_index is ln.datasets.imdb.get_word_index
    assert keras.datasets.imdb.load_data is not ln.datasets.imdb.load_data


class _PositionAdd(ln.layers.Layer):
    """``x + E[arange(T)]``: a layer called on constants inside ``call()``."""

    def __init__(self, maxlen, dim, **kwargs):
        super().__init__(**kwargs)
        dtype = kwargs.get("dtype")
        init = "random_normal"
        self.pos_emb = ln.layers.Embedding(maxlen, dim, init, name="pos", dtype=dtype, seed=1)

    def call(self, x):
        positions = ln.ops.arange(start=0, stop=ln.ops.shape(x)[-2], step=1)
        return ln.ops.tanh(x + self.pos_emb(positions))


def test_layer_called_on_constants_inside_call_gets_its_gradients():
    """The position table is reached through a call on ``arange``: its gradient must
    flow (against central differences, float64), as through the token table."""
    from _harness import assert_layer_gradients

    x = np.random.default_rng(0).standard_normal((2, 4, 3))
    assert_layer_gradients(lambda: _PositionAdd(5, 3, dtype="float64", seed=0), x)
    layer = _PositionAdd(5, 3, dtype="float64", seed=0)
    y = layer(x)
    g = layer.backward_params(np.ones_like(y))
    grad = g["pos/embeddings"]
    assert np.abs(grad[:4]).min() > 0 and not grad[4:].any()  # rows 0..3 used, row 4 not


# --------------------------------------------------------------------------- Keras oracle
os.environ.setdefault("KERAS_BACKEND", "jax")


def _classifier(keras, layers, ops, causal, maxlen=8, vocab_size=30, embed_dim=8):
    """A model of the script's kind at small sizes, dropout 0: word + position embedding
    (looked up on ``ops.arange`` inside ``call()``), one encoder block whose attention is
    causal or not, average pooling and a dense head."""

    class Embed(layers.Layer):
        def __init__(self):
            super().__init__()
            self.table = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.where = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, ids):
            return self.table(ids) + self.where(ops.arange(0, ops.shape(ids)[-1], 1))

    class Block(layers.Layer):
        def __init__(self, heads, hidden):
            super().__init__()
            self.mha = layers.MultiHeadAttention(num_heads=heads, key_dim=embed_dim)
            self.mlp = keras.Sequential(
                [layers.Dense(hidden, activation="relu"), layers.Dense(embed_dim)]
            )
            self.norms = [layers.LayerNormalization(epsilon=1e-6) for _ in range(2)]
            self.drops = [layers.Dropout(0.0) for _ in range(2)]

        def call(self, h):
            h = self.norms[0](h + self.drops[0](self.mha(h, h, use_causal_mask=causal)))
            return self.norms[1](h + self.drops[1](self.mlp(h)))

    ids = layers.Input(shape=(maxlen,))
    h = layers.GlobalAveragePooling1D()(Block(2, 12)(Embed()(ids)))
    h = layers.Dense(6, activation="relu")(layers.Dropout(0.0)(h))
    probabilities = layers.Dense(2, activation="softmax")(layers.Dropout(0.0)(h))
    return keras.Model(inputs=ids, outputs=probabilities)


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
def test_model_trains_like_keras(causal):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    km = _classifier(keras, keras.layers, keras.ops, causal)
    lm = _classifier(ln, ln.layers, ln.ops, causal)
    kw = km.get_weights()
    assert [w.shape for w in lm.get_weights()] == [tuple(w.shape) for w in kw]
    lm.set_weights(kw)
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(1, 30, rng.integers(3, 12))) for _ in range(48)]
    x = keras.utils.pad_sequences(seqs, maxlen=8)
    np.testing.assert_array_equal(ln.utils.pad_sequences(seqs, maxlen=8), x)
    y = rng.integers(0, 2, 48)
    np.testing.assert_allclose(lm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-4)
    for model, opt in ((km, keras.optimizers.SGD(0.2)), (lm, ln.SGD(0.2))):
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    hk = km.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                validation_data=(x[:16], y[:16]))  # fmt: skip
    hl = lm.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0,
                validation_data=(x[:16], y[:16]))  # fmt: skip
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(hl.history[key], hk.history[key], rtol=1e-4)
    for w0, wl, wk in zip(kw, lm.get_weights(), km.get_weights(), strict=True):
        assert not np.array_equal(wl, w0)  # every weight trained, the position table included
        np.testing.assert_allclose(wl, wk, rtol=1e-4, atol=1e-5)
