"""Functional models in model files: graph, shared layers, nested models, compile, resume."""

from __future__ import annotations

import numpy as np

import layernet as ln


def two_headed():
    a = ln.Input(shape=(5,), name="a")
    b = ln.Input(shape=(5,), name="b")
    inner_in = ln.Input(shape=(4,))
    inner = ln.Model(inner_in, ln.Dense(4, activation="tanh", seed=3)(inner_in), name="inner")
    shared = ln.Dense(4, name="shared", seed=0)
    h = ln.Add()([shared(a), shared(b)])
    h = inner(h)
    block = ln.Sequential([ln.Dense(4, seed=4), ln.ReLU()], name="block")
    h = block(h)
    return ln.Model(
        {"a": a, "b": b},
        {"cls": ln.Dense(3, name="cls", seed=1)(h), "reg": ln.Dense(1, name="reg", seed=2)(h)},
    )


def data(n=20):
    rng = np.random.default_rng(0)
    x = {"a": rng.standard_normal((n, 5)), "b": rng.standard_normal((n, 5))}
    y = {"cls": rng.integers(0, 3, n), "reg": rng.standard_normal((n, 1))}
    return x, y


def test_saved_and_reloaded_functional_model_predicts_and_trains_the_same(tmp_path):
    model = two_headed()
    model.compile(
        ln.Adam(0.01),
        {"cls": "softmax_cross_entropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.3},
        metrics={"reg": ["mae"]},
    )
    x, y = data()
    model.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = ln.load_model(path)
    assert isinstance(loaded, ln.Model)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert len(loaded.weights) == len(model.weights)  # the shared layer's weights once
    for p, q in zip(loaded.predict(x, verbose=0), model.predict(x, verbose=0), strict=True):
        np.testing.assert_array_equal(p, q)
    # resuming from the file continues the run bit for bit (optimizer state included)
    h1 = model.fit(x, y, batch_size=5, epochs=4, initial_epoch=2, shuffle=False, verbose=0)
    h2 = loaded.fit(x, y, batch_size=5, epochs=4, initial_epoch=2, shuffle=False, verbose=0)
    assert h1.history == h2.history
    for p, q in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_functional_weights_file_round_trip(tmp_path):
    model, other = two_headed(), two_headed()
    model.save_weights(tmp_path / "w.npz")
    other.load_weights(tmp_path / "w.npz")
    for p, q in zip(other.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(p, q)
