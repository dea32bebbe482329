"""Dropout: inverted scaling in training, identity in inference, masks from the layer's seed."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients

import layernet as ln


def test_inference_is_the_identity_and_passes_the_harness(rng):
    x = rng.standard_normal((3, 5, 2))
    layer = ln.Dropout(0.3, dtype="float64")
    y = layer.forward(x)
    np.testing.assert_array_equal(y, x)
    assert not np.shares_memory(y, x)
    assert_layer_gradients(lambda: ln.Dropout(0.3, dtype="float64"), x)


def test_training_drops_the_rate_and_keeps_the_mean():
    x = np.ones((200, 500))
    layer = ln.Dropout(0.25, seed=0, dtype="float64")
    y = layer.forward(x, training=True)
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert (y == 0).mean() == pytest.approx(0.25, abs=0.005)
    assert y.mean() == pytest.approx(1.0, abs=0.01)


def test_backward_uses_the_same_mask(rng):
    x = rng.standard_normal((4, 30)) + 5  # no zeros in x, so y == 0 marks dropped entries
    layer = ln.Dropout(0.5, seed=1, dtype="float64")
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    np.testing.assert_allclose(layer.backward_input(dy), dy * (y != 0) * 2.0)
    # and the gradient of the training-mode map at its fixed mask, by finite differences
    mask = (y != 0) * 2.0
    eps = 1e-6
    j = 7
    xp, xm = x.copy(), x.copy()
    xp.flat[j] += eps
    xm.flat[j] -= eps
    num = (np.sum(dy * xp * mask) - np.sum(dy * xm * mask)) / (2 * eps)
    assert layer.backward_input(dy).flat[j] == pytest.approx(num, rel=1e-7)


def test_seeded_masks_are_reproducible_and_fresh_each_call():
    a, b = ln.Dropout(0.5, seed=3), ln.Dropout(0.5, seed=3)
    x = np.ones((10, 10), dtype=np.float32)
    ya1, yb1 = a.forward(x, training=True), b.forward(x, training=True)
    np.testing.assert_array_equal(ya1, yb1)
    assert not np.array_equal(a.forward(x, training=True), ya1)


def test_rate_validation_and_zero_rate():
    for bad in (-0.1, 1.0, 1.5, "0.5", True):
        with pytest.raises(
            ValueError,
            match=r"Dropout '.*': invalid value for `rate`: expected a "
            r"number in \[0, 1\)",
        ):
            ln.Dropout(bad)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(ln.Dropout(0.0, dtype="float64").forward(x, training=True), x)


def test_dropout_in_a_model_trains_saves_and_predicts_deterministically(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    model = ln.Sequential([ln.Dense(16), ln.ReLU(), ln.Dropout(0.3), ln.Dense(2)])
    model.compile(ln.Adam(0.01), "softmax_cross_entropy", ["accuracy"])
    h = model.fit(x, y, epochs=30, batch_size=20, verbose=0, seed=0)
    assert h.history["accuracy"][-1] > 0.85
    np.testing.assert_array_equal(model.predict(x), model.predict(x))  # no dropout at inference
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    assert loaded.layers[2].rate == 0.3
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
