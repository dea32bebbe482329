"""Models' weight lists as Keras has them: trainable/non-trainable, frozen layers and models,
random layers' generator states, and a call()-written model inside a functional one."""

import os

import numpy as np
import pytest

import layernet as ln


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def _pair(lib):
    """The same Sequential model built with ``lib`` (layernet or Keras)."""
    return lib.Sequential(
        [
            lib.Input((6, 6, 1)),
            lib.layers.RandomRotation(0.1),
            lib.layers.Dropout(0.5),
            lib.layers.Conv2D(2, 3),
            lib.layers.BatchNormalization(),
            lib.layers.Flatten(),
            lib.layers.Dense(3),
        ]
    )


def test_weight_lists_match_keras():
    keras = _keras()
    ours, theirs = _pair(ln), _pair(keras)
    assert ours.count_params() == theirs.count_params()
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    assert len(ours.trainable_weights) == len(theirs.trainable_weights)
    assert len(ours.non_trainable_weights) == len(theirs.non_trainable_weights)
    assert [tuple(w.shape) for w in ours.trainable_weights] == [
        tuple(w.shape) for w in theirs.trainable_weights
    ]
    ours.set_weights(theirs.get_weights())  # the generator state is not in the list
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-5)


def test_frozen_layers_and_models_move_their_weights():
    keras = _keras()
    for lib in (ln, keras):
        model = _pair(lib)
        model.layers[-1].trainable = False
        assert len(model.trainable_weights) == 4  # conv kernel and bias, gamma, beta
        assert len(model.non_trainable_weights) == 4  # moving stats, dense kernel and bias
        model.trainable = False
        assert model.trainable_weights == []
        assert len(model.non_trainable_weights) == 8


def test_nested_model_weights_are_listed_once():
    inner = ln.Sequential([ln.Input((4,)), ln.Dense(3)])
    x = ln.Input((4,))
    shared = ln.Dense(3)
    y = ln.layers.Add()([shared(inner(x)), shared(inner(x))])
    outer = ln.Model(x, ln.Dense(1)(y))
    assert len(outer.trainable_weights) == 6
    assert all(isinstance(w, ln.Variable) for w in outer.trainable_weights)
    inner.trainable = False
    assert len(outer.trainable_weights) == 4
    assert len(outer.non_trainable_weights) == 2


def test_generator_state_is_saved_with_the_model(tmp_path):
    model = ln.Sequential([ln.Input((5, 5, 1)), ln.layers.RandomRotation(0.2, seed=3)])
    x = np.random.default_rng(1).uniform(size=(2, 5, 5, 1)).astype("float32")
    model(x, training=True)  # advances the draw counter
    model.save(tmp_path / "m.keras")
    again = ln.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(again(x, training=True), model(x, training=True))


class _Block(ln.Model):
    def __init__(self):
        super().__init__()
        self.dense = ln.layers.Dense(3, activation="tanh")

    def call(self, x):
        return self.dense(x)


def test_call_model_inside_a_functional_model_trains_as_keras():
    keras = _keras()

    class KBlock(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3, activation="tanh")

        def call(self, x):
            return self.dense(x)

    def build(lib, block):
        x = lib.Input((4,))
        return lib.Model(x, lib.layers.Dense(1)(block()(x)))

    ours, theirs = build(ln, _Block), build(keras, KBlock)
    ours.set_weights(theirs.get_weights())
    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = rng.normal(size=(16, 1)).astype("float32")
    for m, opt in ((ours, ln.optimizers.SGD(0.1)), (theirs, keras.optimizers.SGD(0.1))):
        m.compile(optimizer=opt, loss="mse")
    h1 = ours.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    h2 = theirs.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
