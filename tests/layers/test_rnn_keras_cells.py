"""`RNN(cell)` over cells written the Keras way (`call(inputs, states)`), against Keras 3 (JAX)
and against finite differences."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln
from layernet import ops

os.environ.setdefault("KERAS_BACKEND", "jax")


def _cells(K):
    """Keras's own test cells, written once for either library (K = keras or layernet)."""

    class OneStateRNNCell(K.layers.Layer):
        def __init__(self, units, state_size=None, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = state_size if state_size else units

        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
            )
            self.recurrent_kernel = self.add_weight(
                shape=(self.units, self.units), initializer="orthogonal", name="recurrent_kernel"
            )

        def call(self, inputs, states):
            h = K.ops.matmul(inputs, self.kernel)
            output = K.ops.tanh(h + K.ops.matmul(states[0], self.recurrent_kernel))
            return output, [output]

    class TwoStatesRNNCell(K.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = [units, units]
            self.output_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(
                shape=(input_shape[-1], self.units), initializer="glorot_uniform", name="kernel"
            )
            self.recurrent_kernel_1 = self.add_weight(
                shape=(self.units, self.units), initializer="orthogonal", name="rk1"
            )
            self.recurrent_kernel_2 = self.add_weight(
                shape=(self.units, self.units), initializer="orthogonal", name="rk2"
            )

        def call(self, inputs, states):
            h = K.ops.matmul(inputs, self.kernel)
            output_1 = K.ops.tanh(h + K.ops.matmul(states[0], self.recurrent_kernel_1))
            output_2 = K.ops.sigmoid(h + K.ops.matmul(states[1], self.recurrent_kernel_2))
            return output_1 * output_2, [output_1, output_2]

    return OneStateRNNCell, TwoStatesRNNCell


LnOne, LnTwo = _cells(ln)


def test_a_keras_cell_makes_a_cell_rnn():
    layer = ln.layers.RNN(LnOne(5, state_size=5))
    assert isinstance(layer, ln.layers.CellRNN)
    y = layer(np.ones((3, 2, 4), "float32"))
    assert y.shape == (3, 5)
    assert len(layer.trainable_weights) == 2
    assert len(ln.layers.RNN(LnTwo(3), return_state=True)(np.ones((2, 4, 3)))) == 3


def test_refusals():
    with pytest.raises(ValueError, match=r"`stateful=True` is not supported"):
        ln.layers.RNN(LnOne(2), stateful=True)
    with pytest.raises(ValueError, match=r"invalid value for `cell`"):
        ln.layers.CellRNN(ln.layers.Dense(3))


@pytest.mark.parametrize("two", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradients_match_finite_differences(two, go_backwards, return_sequences, rng):
    from tests._harness import assert_layer_gradients

    def make():
        cell = (LnTwo if two else LnOne)(3, dtype="float64", seed=1, name="cell")
        return ln.layers.RNN(
            cell, return_sequences=return_sequences, go_backwards=go_backwards, dtype="float64"
        )

    assert_layer_gradients(make, rng.standard_normal((2, 4, 3)))


def _pair(keras, build):
    kmodel = build(keras, *_cells(keras))
    lmodel = build(ln, LnOne, LnTwo)
    lmodel.set_weights(kmodel.get_weights())
    return kmodel, lmodel


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"return_sequences": True},
        {"go_backwards": True, "return_sequences": True},
        {"return_state": True},
    ],
)
@pytest.mark.parametrize("two", [False, True])
def test_outputs_and_training_match_keras(options, two, rng):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":  # pragma: no cover
        pytest.skip("the Keras oracle needs the JAX backend")

    def build(K, One, Two):
        inp = K.Input((6, 4))
        out = K.layers.RNN((Two if two else One)(5), **options)(inp)
        if options.get("return_state"):
            out = K.layers.Concatenate()(list(out))
        if options.get("return_sequences"):
            out = K.layers.Flatten()(out)
        return K.Model(inp, K.layers.Dense(2)(out))

    kmodel, lmodel = _pair(keras, build)
    x = rng.standard_normal((10, 6, 4)).astype("float32")
    y = rng.standard_normal((10, 2)).astype("float32")
    np.testing.assert_allclose(
        lmodel.predict(x, verbose=0), kmodel.predict(x, verbose=0), rtol=1e-4, atol=1e-5
    )
    kmodel.compile(keras.optimizers.SGD(0.05), "mse")
    lmodel.compile(ln.optimizers.SGD(0.05), "mse")
    fit = dict(batch_size=5, epochs=2, shuffle=False, verbose=0)
    hk, hl = kmodel.fit(x, y, **fit), lmodel.fit(x, y, **fit)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=1e-4)
    for a, b in zip(kmodel.get_weights(), lmodel.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_initial_state_matches_keras(rng):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":  # pragma: no cover
        pytest.skip("the Keras oracle needs the JAX backend")

    def build(K, One, Two):
        inp = K.Input((5, 3))
        h0 = K.Input((4,))
        h1 = K.Input((4,))
        out = K.layers.RNN(Two(4), return_sequences=True)(inp, initial_state=[h0, h1])
        return K.Model([inp, h0, h1], out)

    kmodel, lmodel = _pair(keras, build)
    data = [rng.standard_normal(s).astype("float32") for s in ((3, 5, 3), (3, 4), (3, 4))]
    np.testing.assert_allclose(
        lmodel.predict(data, verbose=0), kmodel.predict(data, verbose=0), rtol=1e-4, atol=1e-5
    )


def test_a_cell_with_its_own_initial_state_and_training_flag():
    class Counting(ln.layers.Layer):
        state_size = 2

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2), initializer="ones", name="w")

        def get_initial_state(self, batch_size=None):
            return [ops.ones((batch_size, 2))]

        def call(self, inputs, states, training=None):
            step = ops.matmul(inputs, self.w) * (2.0 if training else 1.0)
            h = states[0] + step
            return h, [h]

    layer = ln.layers.RNN(Counting())
    x = np.ones((1, 3, 1), "float32")
    np.testing.assert_allclose(layer(x), [[4.0, 4.0]])
    np.testing.assert_allclose(layer(x, training=True), [[7.0, 7.0]])


@ln.register_serializable(package="cell_tests")
class SavedCell(ln.layers.Layer):
    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def get_config(self):
        return {**super().get_config(), "units": self.units}

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")
        self.u = self.add_weight(shape=(self.units, self.units), name="u")

    def call(self, inputs, states):
        h = ops.tanh(ops.matmul(inputs, self.w) + ops.matmul(states[0], self.u))
        return h, [h]


def test_a_model_with_a_keras_cell_saves_and_loads(tmp_path, rng):
    inp = ln.Input((5, 3))
    model = ln.Model(inp, ln.Dense(1)(ln.layers.RNN(SavedCell(4))(inp)))
    model.compile(ln.SGD(0.05), "mse")
    x = rng.standard_normal((8, 5, 3)).astype("float32")
    model.fit(x, rng.standard_normal((8, 1)).astype("float32"), epochs=1, verbose=0)
    model.save(tmp_path / "cell.npz")
    back = ln.load_model(tmp_path / "cell.npz")
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
