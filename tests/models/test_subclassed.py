"""Models written as subclasses with call(), trained with fit, against Keras 3 (JAX)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")


def make_classes(K):
    ops = K.ops

    class ActivityRegularization(K.layers.Layer):
        def __init__(self, rate=1e-2, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * ops.sum(ops.square(inputs)))
            return inputs

    class MLP(K.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = K.layers.Dense(8, activation="tanh")
            self.reg = ActivityRegularization(1e-2)
            self.dense_2 = K.layers.Dense(2)

        def call(self, inputs, training=None):
            h = self.reg(self.dense_1(inputs))
            if training:
                h = h * 1.0  # Python control flow on `training`
            return self.dense_2(h)

    class Sampling(K.layers.Layer):
        def call(self, inputs):
            z_mean, z_log_var = inputs
            return z_mean + ops.exp(0.5 * z_log_var) * 0.0  # a fixed draw: comparable

    class VAE(K.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.enc = K.layers.Dense(6, activation="relu")
            self.mean = K.layers.Dense(2)
            self.log_var = K.layers.Dense(2)
            self.sampling = Sampling()
            self.dec = K.layers.Dense(4)

        def call(self, inputs):
            h = self.enc(inputs)
            z_mean, z_log_var = self.mean(h), self.log_var(h)
            z = self.sampling([z_mean, z_log_var])
            kl = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
            self.add_loss(kl)
            return self.dec(z)

    return MLP, VAE


def test_subclassed_model_trains_with_fit_and_predicts():
    MLP, _ = make_classes(ln)
    model = MLP()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = x[:, :2] * 2
    model.compile(optimizer=ln.SGD(0.05), loss="mse")
    history = model.fit(x, y, batch_size=8, epochs=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x[:3], verbose=0).shape == (3, 2)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "ActivityRegularization",
        "Dense",
    ]
    assert model.losses and model.losses[0] > 0


@pytest.mark.parametrize("which", ["MLP", "VAE"])
def test_subclassed_model_trains_like_keras(which):
    keras = pytest.importorskip("keras")
    K_MLP, K_VAE = make_classes(keras)
    L_MLP, L_VAE = make_classes(ln)
    km, lm = (K_MLP(), L_MLP()) if which == "MLP" else (K_VAE(), L_VAE())
    rng = np.random.default_rng(1)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = x[:, :2] if which == "MLP" else x
    km(x[:1])
    lm(x[:1])
    lm.set_weights(km.get_weights())
    np.testing.assert_allclose(
        lm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    km.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    lm.compile(optimizer=ln.SGD(0.05), loss="mse")
    hk = km.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=2e-4)
    for a, b in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)


def test_fit_without_targets_when_the_loss_is_added():
    class Reconstruct(ln.Model):
        def __init__(self):
            super().__init__()
            self.dense = ln.layers.Dense(3)

        def call(self, inputs):
            out = self.dense(inputs)
            self.add_loss(ln.ops.mean(ln.ops.square(out - inputs)))
            return out

    model = Reconstruct()
    model.compile(optimizer=ln.SGD(0.1))
    x = np.random.default_rng(0).standard_normal((20, 3)).astype("float32")
    history = model.fit(x, epochs=4, batch_size=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
