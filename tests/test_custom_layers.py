"""User-style subclasses: fit must do exactly what the public methods do by hand.

Each model is trained with ``fit`` and, from the same initial weights, by a loop
that calls only the public methods (``forward``, ``backward_params``,
``backward_input``, the loss's ``forward`` and ``backward_input``) and plain SGD;
the weights must agree to 1e-12 in float64.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import numpy as np
import pytest

import layernet as ln

F64 = {"dtype": "float64"}


def train_by_hand(model, loss, x, y, *, epochs, batch_size, lr):
    """The same steps as ``fit(shuffle=False)`` with SGD, through the public methods only."""
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            h = xb
            for layer in model.layers:
                h = layer.forward(h, training=True)
            loss.forward(h, yb)
            dy = loss.backward_input()
            for i in range(len(model.layers) - 1, -1, -1):
                layer = model.layers[i]
                if layer.trainable and layer.params:
                    layer.zero_grad()
                    layer.backward_params(dy)
                if i > 0:
                    dy = layer.backward_input(dy)
            for layer in model.layers:
                if layer.trainable:
                    for k, p in layer.params.items():
                        p -= lr * layer.grads[k]


def assert_fit_equals_hand(make_layers, make_loss, x, y, *, epochs=2, batch_size=4, lr=0.1):
    """Train two identical models, one by ``fit`` and one by hand; compare the weights."""
    by_fit = ln.Sequential(make_layers())
    by_hand = ln.Sequential(make_layers())
    by_fit.build((None, *x.shape[1:]), seed=0)
    by_hand.build((None, *x.shape[1:]), seed=0)
    for a, b in zip(by_fit.get_weights(), by_hand.get_weights()):
        np.testing.assert_array_equal(a, b)
    by_fit.compile(ln.SGD(lr), make_loss())
    by_fit.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0)
    train_by_hand(by_hand, make_loss(), x, y, epochs=epochs, batch_size=batch_size, lr=lr)
    moved = False
    for a, b, w0 in zip(by_fit.get_weights(), by_hand.get_weights(), _initial(make_layers, x)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        moved |= not np.allclose(a, w0)
    assert moved, "training changed no weight: the comparison proves nothing"
    return by_fit, by_hand


def _initial(make_layers, x):
    model = ln.Sequential(make_layers())
    model.build((None, *x.shape[1:]), seed=0)
    return model.get_weights()


# ------------------------------------------------------------------ subclasses
class SquashSaved(NamedTuple):
    y: np.ndarray


class SquashedDense(ln.Dense):
    """Dense followed by tanh, keeping its own output for backward (overrides public methods)."""

    def forward(self, x, training=False):
        self.y = np.tanh(super().forward(x, training))
        return self.y

    def backward_input(self, dy):
        return super().backward_input(dy * (1 - self.y**2))

    def backward_params(self, dy):
        return super().backward_params(dy * (1 - self.y**2))


class ShiftedReLU(ln.ReLU):
    """``max(x, 0) - 0.5``, keeping its output for backward (through the hooks)."""

    def compute_forward(self, x, training):
        y = np.maximum(x, 0) - 0.5
        return y, SquashSaved(y)

    def compute_backward_input(self, dy, saved):
        return dy * (saved.y > -0.5)


class LeakySaved(NamedTuple):
    x: np.ndarray


class LeakyFromReLU(ln.ReLU):
    """A leaky ReLU built on ReLU's forward, keeping its input for its own backward."""

    def compute_forward(self, x, training):
        y, _ = super().compute_forward(x, training)
        return y + 0.1 * np.minimum(x, 0), LeakySaved(x)

    def compute_backward_input(self, dy, saved):
        return dy * np.where(saved.x > 0, 1.0, 0.1)


def regression_data(n=12, features=5, outputs=3):
    rng = np.random.default_rng(4)
    return rng.standard_normal((n, features)), rng.standard_normal((n, outputs))


def test_declarations_are_not_inherited():
    assert ln.ReLU.declares("in_place") and ln.ReLU.declares("fresh_output")
    assert ln.Dense.declares("fresh_output")
    assert not ShiftedReLU.declares("in_place") and not ShiftedReLU.declares("fresh_output")
    assert not SquashedDense.declares("fresh_output")
    # The inherited class attributes are still there; only the declaration is not.
    assert ShiftedReLU.in_place and SquashedDense.fresh_output


def test_subclass_keeping_its_output_is_not_overwritten_by_an_in_place_relu():
    x, y = regression_data()
    assert_fit_equals_hand(
        lambda: [
            ln.Dense(6, **F64),
            ShiftedReLU(**F64),
            ln.ReLU(**F64),
            ln.Dense(3, **F64),
        ],
        lambda: ln.MSELoss(**F64),
        x,
        y,
    )
    model = ln.Sequential([ln.Dense(6, **F64), ShiftedReLU(**F64), ln.ReLU(**F64), ln.Dense(3)])
    model.compile("sgd", "mse")
    # ShiftedReLU inherits ReLU's class attributes but declares nothing itself: neither it
    # nor the ReLU reading its kept output may work in place.
    assert model._in_place_layers() == []


def test_subclass_keeping_its_input_is_never_handed_an_overwritable_input():
    x, y = regression_data()
    assert_fit_equals_hand(
        lambda: [ln.Dense(6, **F64), LeakyFromReLU(**F64), ln.Dense(3, **F64)],
        lambda: ln.MSELoss(**F64),
        x,
        y,
    )


def test_dense_subclass_overriding_public_methods_trains_the_same_by_fit_and_by_hand():
    x, y = regression_data()
    assert_fit_equals_hand(
        lambda: [SquashedDense(6, **F64), ln.ReLU(**F64), SquashedDense(3, **F64)],
        lambda: ln.MSELoss(**F64),
        x,
        y,
        epochs=1,
    )


def test_builtin_in_place_relu_is_still_used_and_equals_the_hand_loop():
    x, y = regression_data()
    model = ln.Sequential([ln.Dense(6, **F64), ln.ReLU(**F64), ln.Dense(3, **F64)])
    model.compile(ln.SGD(0.1), ln.MSELoss(**F64))
    model.build((None, 5), seed=0)
    assert model._in_place_layers() == [model.layers[1]]
    assert_fit_equals_hand(
        lambda: [ln.Dense(6, **F64), ln.ReLU(**F64), ln.Dense(3, **F64)],
        lambda: ln.MSELoss(**F64),
        x,
        y,
    )


# ------------------------------------------------------------------------ losses
class HuberSaved(NamedTuple):
    grad: np.ndarray


class Huber(ln.Loss):
    """A user loss through the three hooks: Huber with delta 1, averaged over the batch."""

    fresh_gradient = True

    def check_target(self, x, t):
        t = np.asarray(t, dtype=self.dtype)
        if t.shape != x.shape:
            raise ValueError(f"{self.owner}: expected target of shape {x.shape}, got {t.shape}.")
        return t

    def compute_loss(self, x, t):
        d = x - t
        a = np.abs(d)
        z = np.where(a <= 1, 0.5 * d * d, a - 0.5).sum() / len(x)
        return float(z), HuberSaved(np.clip(d, -1, 1) / len(x))

    def compute_backward_input(self, dz, saved):
        return dz * saved.grad


def test_loss_is_its_own_base_class_with_the_public_contract():
    assert not issubclass(ln.Loss, ln.Layer)
    loss = Huber(dtype="float64")
    x, t = np.array([[0.5, 3.0]]), np.zeros((1, 2))
    assert loss.forward(x, t) == pytest.approx(0.125 + 2.5)
    np.testing.assert_allclose(loss.backward_input(), [[0.5, 1.0]])
    np.testing.assert_allclose(loss.backward_input(2.0), [[1.0, 2.0]])
    np.testing.assert_allclose(loss.jacobian_input(x, t), [[0.5, 1.0]])
    assert ln.gradcheck([ln.Dense(2, dtype="float64", seed=0), loss], x, t).passed
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
    with pytest.raises(TypeError, match=r"add\(\) expected a Layer, received a loss"):
        ln.Sequential().add(loss)
    with pytest.raises(RuntimeError, match="Huber 'h': backward called before forward"):
        Huber(name="h").backward_input()


def test_custom_loss_trains_the_same_by_fit_and_by_hand():
    x, y = regression_data()
    assert_fit_equals_hand(
        lambda: [ln.Dense(6, **F64), ln.ReLU(**F64), ln.Dense(3, **F64)],
        lambda: Huber(**F64),
        x,
        3 * y,
    )


# ------------------------------------------------------- in place, and with state
class ScaleSaved(NamedTuple):
    factor: float


class InPlaceScale(ln.Layer):
    """``y = 3 x``, overwriting its input and upstream gradient when the model allows it,
    and using a scratch buffer of its own workspace."""

    in_place = True  # (no fresh_output: y may be x itself)
    granted: ClassVar[list[bool]] = []

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        InPlaceScale.granted.append(self.overwrite_inputs)
        if self.overwrite_inputs:
            return np.multiply(x, 3.0, out=x), ScaleSaved(3.0)
        tmp, _ = self.workspace.get("tmp", x.shape, x.dtype)
        np.multiply(x, 3.0, out=tmp)
        return tmp.copy(), ScaleSaved(3.0)

    def compute_backward_input(self, dy, saved):
        if self.overwrite_inputs:
            return np.multiply(dy, saved.factor, out=dy)
        return dy * saved.factor


class CenterSaved(NamedTuple):
    centered: np.ndarray


class RunningCenter(ln.Layer):
    """``y = gamma * (x - m)`` with ``m`` a running mean (non-trainable state) updated after
    use in every training forward."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        self.params["gamma"] = np.ones(input_shape[-1], self.dtype)
        self.state["moving_mean"] = np.zeros(input_shape[-1], self.dtype)

    def compute_forward(self, x, training):
        centered = x - self.state["moving_mean"]
        if training:
            self.state["moving_mean"] *= 0.5
            self.state["moving_mean"] += 0.5 * x.mean(axis=0)
        return self.params["gamma"] * centered, CenterSaved(centered)

    def compute_backward_input(self, dy, saved):
        return dy * self.params["gamma"]

    def compute_backward_params(self, dy, saved):
        return {"gamma": (dy * saved.centered).sum(axis=0)}


def test_user_layer_working_in_place_on_its_own_buffers():
    x, y = regression_data()
    InPlaceScale.granted.clear()
    assert_fit_equals_hand(
        lambda: [ln.Dense(6, **F64), InPlaceScale(**F64), ln.Tanh(**F64), ln.Dense(3, **F64)],
        lambda: ln.MSELoss(**F64),
        x,
        y,
    )
    assert True in InPlaceScale.granted  # fit let it work in place (a Dense is in front)
    assert False in InPlaceScale.granted  # the hand-written loop did not
    assert ln.gradcheck([ln.Dense(2, **F64, seed=0), InPlaceScale(**F64)], x[:3]).passed


def test_user_layer_with_non_trainable_state():
    x, y = regression_data()
    by_fit, by_hand = assert_fit_equals_hand(
        lambda: [ln.Dense(6, **F64), RunningCenter(**F64), ln.Dense(3, **F64)],
        lambda: ln.MSELoss(**F64),
        x,
        y,
    )
    assert by_fit.layers[1].state["moving_mean"].any()
    np.testing.assert_allclose(
        by_fit.layers[1].state["moving_mean"], by_hand.layers[1].state["moving_mean"], atol=1e-12
    )
    assert ln.gradcheck(RunningCenter(**F64), x[:3]).passed


def test_every_user_layer_passes_the_shared_harness(rng):
    from _harness import assert_layer_gradients

    for make in (
        lambda: SquashedDense(3, seed=0, **F64),
        lambda: LeakyFromReLU(**F64),
        lambda: InPlaceScale(**F64),
        lambda: RunningCenter(**F64),
    ):
        x = rng.standard_normal((3, 4))
        if isinstance(make(), SquashedDense):  # overrides the public methods: no Jacobians
            layer = make()
            assert ln.gradcheck(layer, x, jacobians=False).passed
            continue
        assert_layer_gradients(make, x)


def test_calling_a_layer_or_loss_uses_its_own_forward():
    x = np.random.default_rng(0).standard_normal((2, 3))
    layer = SquashedDense(2, seed=0, **F64)
    np.testing.assert_array_equal(layer(x), np.tanh(ln.Dense(2, seed=0, **F64).forward(x)))

    class Doubled(ln.MSELoss):
        def forward(self, x, t):
            return 2 * super().forward(x, t)

    assert Doubled(**F64)(np.ones((1, 2)), np.zeros((1, 2))) == 2.0


def test_a_loss_overriding_forward_without_sample_weight_still_trains():
    class Doubled(ln.MSELoss):
        def forward(self, x, t):
            return 2 * super().forward(x, t)

        def backward_input(self, dz=1.0):
            return super().backward_input(2 * dz)

    x, y = regression_data()
    assert_fit_equals_hand(
        lambda: [ln.Dense(4, **F64), ln.Tanh(**F64), ln.Dense(3, **F64)],
        lambda: Doubled(**F64),
        x,
        y,
    )
    model = ln.Sequential([ln.Dense(3, **F64)])
    model.compile("sgd", Doubled(**F64))
    assert model.evaluate(x, y, verbose=0) > 0
