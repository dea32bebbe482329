"""The functional Model: construction errors, structure, config, freezing and Keras's fit order."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet.gradcheck import numerical_jacobian


def small():
    x = ln.Input(shape=(4,), name="x")
    h = ln.Dense(5, activation="tanh", name="hidden", seed=0)(x)
    y = ln.Dense(2, name="head", seed=1)(
        ln.Add(name="skip")([h, ln.Dense(5, name="side", seed=2)(x)])
    )
    return ln.Model(x, y, name="small")


def test_structure_and_keras_accessors():
    model = small()
    assert [layer.name for layer in model.layers] == ["x", "hidden", "side", "skip", "head"]
    assert isinstance(model.layers[0], ln.InputLayer)
    assert model.get_layer("side") is model.layers[2]
    assert model.get_layer(index=-1).name == "head"
    assert model.input is model.inputs[0] and model.output.shape == (None, 2)
    assert model.count_params() == 4 * 5 + 5 + 4 * 5 + 5 + 5 * 2 + 2
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="exactly one of"):
        model.get_layer()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "hidden[0][0], side[0][0]" in text


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x, other: ln.Model(x, ln.Dense(2)(other)), "not among the model's inputs"),
        (lambda x, other: ln.Model([x, other], ln.Dense(2)(x)), "feeds none of the outputs"),
        (
            lambda x, other: ln.Model(x, ln.Dense(2, name="twin")(ln.Dense(3, name="twin")(x))),
            "two layers are named 'twin'",
        ),
        (lambda x, other: ln.Model(x, ln.Conv1D(2, 3)(x)), "Conv.*expected input with 3 dims"),
        (lambda x, other: ln.Model(x, np.zeros(3)), "expected the outputs to be symbolic"),
    ],
)
def test_graphs_that_cannot_be_built_fail_at_construction(make, match):
    x = ln.Input(shape=(4,), name="x")
    other = ln.Input(shape=(4,), name="other")
    with pytest.raises((ValueError, TypeError), match=match):
        make(x, other)


def test_a_layer_refuses_a_tensor_it_cannot_take_naming_the_tensor():
    x = ln.Input(shape=(4,), name="feat")
    dense = ln.Dense(3)
    dense(x)
    with pytest.raises(ValueError, match=r"expected input with 4 .*feat_b \(None, 5\)"):
        dense(ln.Input(shape=(5,), name="feat_b"))


def test_config_round_trip_keeps_shared_layers_shared():
    x = ln.Input(shape=(3,), name="x")
    shared = ln.Dense(3, name="shared", seed=0)
    y = shared(ln.Tanh(name="t")(shared(x)))
    model = ln.Model(x, y, name="m")
    clone = ln.Model.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert len(clone.weights) == 2  # one shared kernel and bias
    clone.set_weights(model.get_weights())
    data = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    np.testing.assert_array_equal(clone.predict(data, verbose=0), model.predict(data, verbose=0))


def test_shared_layer_gradient_is_the_sum_over_its_calls():
    x = ln.Input(shape=(3,))
    shared = ln.Dense(3, dtype="float64", seed=0)
    model = ln.Model(x, shared(ln.Tanh(dtype="float64")(shared(x))))
    data = np.random.default_rng(1).standard_normal((4, 3))
    result = ln.gradcheck(model, data)
    assert result.passed, str(result)


def test_frozen_nested_model_keeps_its_weights_but_passes_gradients():
    inner_x = ln.Input(shape=(3,))
    inner = ln.Model(inner_x, ln.BatchNorm()(ln.Dense(3, seed=0)(inner_x)), name="inner")
    x = ln.Input(shape=(3,))
    model = ln.Model(x, ln.Dense(1, seed=1)(inner(x)))
    inner.trainable = False
    before = inner.get_weights()
    head_before = (
        model.layers[-1].get_weights()
        if hasattr(model.layers[-1], "get_weights")
        else [w.copy() for w in model.layers[-1].params.values()]
    )
    model.compile(ln.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    model.fit(rng.standard_normal((16, 3)), rng.standard_normal((16, 1)), epochs=2, verbose=0)
    for a, b in zip(inner.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)  # moving statistics too: frozen BatchNorm infers
    head_after = [w for w in model.layers[-1].params.values()]
    assert any(not np.array_equal(a, b) for a, b in zip(head_after, head_before, strict=True))


def test_fit_takes_keras_positional_order():
    model = small()
    model.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    history = model.fit(
        rng.standard_normal((64, 4)), rng.standard_normal((64, 2)), 32, 3, verbose=0
    )
    assert len(history.history["loss"]) == 3  # 3 epochs at batch size 32, not the reverse


def test_callbacks_always_get_a_logs_dict_and_evaluate_predict_take_callbacks():
    seen = []

    class Spy(ln.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("train_begin", logs))

        def on_train_batch_begin(self, batch, logs=None):
            seen.append(("batch_begin", logs))

        def on_test_end(self, logs=None):
            seen.append(("test_end", logs))

        def on_predict_end(self, logs=None):
            seen.append(("predict_end", logs))

    model = small()
    model.compile("sgd", "mse")
    x, y = np.zeros((4, 4)), np.zeros((4, 2))
    model.fit(x, y, epochs=1, callbacks=[Spy()], verbose=0)
    model.evaluate(x, y, callbacks=[Spy()], verbose=0)
    model.predict(x, callbacks=[Spy()], verbose=0)
    assert all(isinstance(logs, dict) for _, logs in seen)
    assert {k for k, _ in seen} == {"train_begin", "batch_begin", "test_end", "predict_end"}


def test_train_on_batch_test_on_batch_and_predict_on_batch():
    model = small()
    model.compile(ln.SGD(0.1), "mse", metrics=["mae"])
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    before = model.test_on_batch(x, y)
    loss, _mae = model.train_on_batch(x, y)
    assert before[0] == pytest.approx(loss)
    assert model.test_on_batch(x, y, return_dict=True)["loss"] < loss
    assert model.predict_on_batch(x).shape == (8, 2)


def test_overridden_train_step_is_what_fit_runs():
    class Counting(ln.Model):
        calls = 0

        def train_step(self, data):
            Counting.calls += 1
            return super().train_step(data)

    x = ln.Input(shape=(2,))
    model = Counting(x, ln.Dense(1)(x))
    model.compile("sgd", "mse")
    model.fit(np.zeros((10, 2)), np.zeros((10, 1)), batch_size=4, epochs=2, verbose=0)
    assert Counting.calls == 6


def test_infinite_generator_needs_steps_per_epoch():
    model = small()
    model.compile("sgd", "mse")

    def forever():
        while True:
            yield np.zeros((2, 4)), np.zeros((2, 2))

    history = model.fit(forever(), steps_per_epoch=3, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2


def residual_net(dtype="float64"):
    x = ln.Input(shape=(3,), name="x")
    h = ln.Dense(3, activation="tanh", name="d1", dtype=dtype, seed=0)(x)
    h = ln.Add(name="skip", dtype=dtype)([x, ln.Dense(3, name="d2", dtype=dtype, seed=1)(h)])
    shared = ln.Dense(2, name="shared", dtype=dtype, seed=2)
    out = ln.Concatenate(name="cat", dtype=dtype)([shared(h), shared(ln.Tanh(dtype=dtype)(h))])
    return ln.Model(x, out)


def test_model_jacobians_composed_through_the_graph_match_backward_and_differences():
    model = residual_net()
    x = np.random.default_rng(0).standard_normal((2, 3))
    composed = model.jacobian_input(x)
    by_backward = ln.Layer.jacobian_input(model, x)
    np.testing.assert_allclose(composed, by_backward, atol=1e-12)
    numeric = numerical_jacobian(lambda: model.forward(x), x)
    np.testing.assert_allclose(composed, numeric, atol=1e-7)
    params = model.jacobian_params(x)
    base = ln.Layer.jacobian_params(model, x)
    assert sorted(params) == sorted(base)
    for key in params:
        np.testing.assert_allclose(params[key], base[key], atol=1e-12, err_msg=key)
        p = model.params[key]
        np.testing.assert_allclose(
            params[key], numerical_jacobian(lambda: model.forward(x), p), atol=1e-7, err_msg=key
        )


def test_clone_model_rebuilds_a_functional_graph_with_new_weights():
    model = small()
    clone = ln.models.clone_model(model)
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert all(a is not b for a, b in zip(clone.layers, model.layers, strict=True))
    clone.set_weights(model.get_weights())
    data = np.random.default_rng(0).standard_normal((3, 4)).astype("float32")
    np.testing.assert_array_equal(clone.predict(data, verbose=0), model.predict(data, verbose=0))
