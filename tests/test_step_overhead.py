"""What a training step keeps between steps (to cost less) is refreshed when what it depends
on changes, and leaves every result as it was."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln

F64 = {"dtype": "float64"}


# ------------------------------------------------------ Sequential's in-place plan
def test_in_place_plan_follows_the_layers_and_the_loss_class():
    model = ln.Sequential([ln.Dense(4, **F64), ln.Dense(4, **F64)])
    model.build((None, 3))
    model.compile(ln.SGD(0.1), ln.MSELoss())  # a loss whose gradient is a fresh array
    assert model._in_place_layers() == []
    relu = ln.ReLU(**F64)
    model.add(relu)  # last: its upstream gradient is the loss's own
    assert model._in_place_layers() == [relu] == model._find_in_place_layers()
    plan = model._in_place_layers()
    plan.clear()  # the caller's copy: the kept plan is not changed
    assert model._in_place_layers() == [relu]

    model.compile(ln.SGD(0.1), ln.losses.Huber())  # a loss class without the declaration
    assert model._in_place_layers() == [] == model._find_in_place_layers()
    model.add(ln.Dense(2, **F64))  # now the ReLU's gradient comes from a Dense
    assert model._in_place_layers() == [relu]
    model.pop()
    assert model._in_place_layers() == []
    model.layers.append(ln.Dense(2, **F64))  # the list itself changed, behind add()'s back
    assert model._in_place_layers() == [relu]
    model.compile(ln.SGD(0.1), ln.MSELoss())
    model.train_step(np.ones((2, 3)), np.zeros((2, 2)))
    assert model._in_place_layers() == [relu] == model._find_in_place_layers()


def test_in_place_plan_never_takes_a_subclass():
    class KeepsInput(ln.ReLU):  # may keep x for its own backward: never overwritten
        pass

    model = ln.Sequential([ln.Dense(4, **F64), KeepsInput(**F64), ln.Dense(2, **F64)])
    model.build((None, 3))
    model.compile(ln.SGD(0.1), "mse")
    assert model._in_place_layers() == []
    model.train_step(np.ones((2, 3)), np.zeros((2, 2)))
    assert model._in_place_layers() == []


# ------------------------------------------------------ layers written as call()
class Scale(ln.layers.Layer):
    """Multiplies by a weight; remembers the `training` each call received."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(), initializer="ones", name="w")
        self.seen = []

    def call(self, x, training=None):
        self.seen.append(training)
        return x * self.w


class Plain(ln.layers.Layer):
    def call(self, x):
        return ln.ops.tanh(x)


def test_call_gets_training_only_where_it_takes_it():
    a, b = Scale(**F64), Scale(**F64)
    x = np.ones((2, 3))
    for layer in (a, b):
        layer.forward(x)
        layer.seen.clear()  # (the first call of a shape makes a dry call for its output shape)
    a.forward(x, training=True)
    b.forward(x, training=False)  # a second instance: the class's answer is reused
    a.forward(x, training=False)
    assert a.seen == [True, False] and b.seen == [False]
    np.testing.assert_array_equal(Plain(**F64).forward(x), np.tanh(x))

    p = Plain(**F64)
    seen = []

    def call(x, **kwargs):  # a call set on one instance, taking **kwargs
        seen.append(kwargs.get("training"))
        return x

    p.call = call
    p.forward(x, training=True)
    assert seen[-1] is True  # (after the first call's dry call for the output shape)
    np.testing.assert_array_equal(Plain(**F64).forward(x), np.tanh(x))  # the class is as it was


def test_per_call_state_is_never_tracked_and_layers_still_are():
    outer = ln.layers.Layer()
    inner = ln.Dense(2)
    outer.saved = (inner,)  # backward state that holds a layer: not a sublayer
    outer._y_shape = (2, 3)
    assert outer._sublayers == []
    outer.block = inner
    outer.size = 3  # a plain value
    assert outer._sublayers == [inner]


def test_losses_of_layers_with_and_without_added_losses():
    class Penalized(ln.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = Scale(**F64)

        def call(self, x):
            self.add_loss(ln.ops.sum(x))
            return self.inner(x)

    x = np.full((2, 2), 0.5)
    assert ln.Dense(2).losses == []
    layer = Penalized(**F64)
    layer.forward(x)
    assert layer.losses == [2.0]
    model = ln.Sequential([ln.Dense(2, **F64), Penalized(**F64)])
    model.build((None, 2), seed=0)
    y = model.forward(x)
    assert model.losses == [pytest.approx(float(model.layers[0].forward(x).sum()))]
    assert y.shape == (2, 2)


def test_call_layer_gradients_add_up_over_backward_params():
    layer = Scale(**F64)
    x = np.arange(6.0).reshape(2, 3)
    layer.forward(x, training=True)
    dy = np.ones((2, 3))
    g = layer.backward_params(dy)["w"]
    layer.backward_params(dy)
    assert g == pytest.approx(x.sum())
    assert layer.grads["w"] == pytest.approx(2 * x.sum())
    (param, grad) = layer.params["w"], layer.grads["w"]
    assert param.shape == grad.shape == ()


def test_sequentials_next_forward_does_not_hold_the_last_calls_saved_states():
    """While a forward pass runs, a Sequential no longer refers to the previous pass's saved
    states (each layer's own is replaced as it runs), so they can be freed as it goes."""
    seen = []

    class Probe(ln.Layer):
        def compute_output_shape(self, input_shape):
            return input_shape

        def compute_forward(self, x, training):
            seen.append(model.__dict__.get("saved"))
            return x, None

        def compute_backward_input(self, dy, saved):
            return dy

    model = ln.Sequential([ln.Dense(3, seed=0), Probe(), ln.Dense(2, seed=1)])
    x = np.ones((5, 4), "float32")
    model.forward(x, training=True)
    first = model.saved
    model.forward(x, training=True)
    assert first is not None and model.saved is not None and model.saved is not first
    assert seen[-1] is None  # during the second pass
    model.compile(ln.SGD(0.1), "mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, np.zeros((5, 2), "float32"), epochs=2, batch_size=5, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_model_losses_skip_the_layers_only_until_a_layer_adds_or_defines_losses(monkeypatch):
    from layernet.layers import calling

    monkeypatch.setattr(calling, "_ADDED_LOSSES", [False])
    model = ln.Sequential([ln.Dense(2, seed=0)])
    x = np.ones((3, 4), "float32")
    model.forward(x)
    assert model.losses == [] and not calling.any_added_losses()

    class Penalised(ln.Layer):  # a class of one's own with its own `losses`
        def compute_output_shape(self, input_shape):
            return input_shape

        def compute_forward(self, x, training):
            return x, None

        def compute_backward_input(self, dy, saved):
            return dy

        @property
        def losses(self):
            return [0.5]

    assert calling.any_added_losses()
    model = ln.Sequential([ln.Dense(2, seed=0), Penalised()])
    model.forward(x)
    assert model.losses == [0.5]


def test_an_unknown_fit_argument_is_refused_before_anything_runs():
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile("sgd", "mse")
    x = np.ones((4, 2), "float32")
    with pytest.raises(TypeError, match="epoch"):
        model.fit(x, x[:, :1], epoch=2, verbose=0)
    with pytest.raises(TypeError):
        model.evaluate(x, x[:, :1], 2, 0, None, None, None, None, None, None, None, None, 1)


def test_the_target_check_follows_the_input_shape_and_the_layers(rng):
    model = ln.Sequential([ln.Dense(3, seed=0)])
    model.compile("sgd", "mse")
    x = rng.standard_normal((6, 4)).astype("float32")
    model.fit(x, np.zeros((6, 3), "float32"), verbose=0)
    with pytest.raises(ValueError, match="does not fit"):
        model.fit(x, np.zeros((6, 5), "float32"), verbose=0)
    model.add(ln.Dense(5, seed=1))
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((6, 5), "float32"), verbose=0)  # the new last layer's shape
    with pytest.raises(ValueError, match="does not fit"):
        model.fit(x, np.zeros((6, 3), "float32"), verbose=0)
