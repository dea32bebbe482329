"""A functional model's in-place plan: which calls may overwrite their input and upstream
gradient, and proof that the plan (and the fast paths) change no result, bit for bit."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops

F64 = {"dtype": "float64"}


# --------------------------------------------------------------------------- helpers
def lenet_layers(**kw):
    return [
        ln.Conv2D(6, 5, **kw),
        ln.ReLU(**kw),
        ln.MaxPool(2, **kw),
        ln.Conv2D(16, 5, **kw),
        ln.ReLU(**kw),
        ln.MaxPool(2, **kw),
        ln.Flatten(**kw),
        ln.Dense(120, **kw),
        ln.ReLU(**kw),
        ln.Dense(84, **kw),
        ln.ReLU(**kw),
        ln.Dense(10, **kw),
    ]


def functional(layers, shape, **kw):
    inputs = ln.Input(shape, **kw)
    h = inputs
    for layer in layers:
        h = layer(h)
    return ln.Model(inputs, h)


def resnet_block(hw=8, channels=4, classes=3, dtype="float64"):
    """Conv-BN-ReLU, then [Conv-BN-ReLU-Conv-BN] added to it (the skip), ReLU, pool, Dense."""
    kw = {"dtype": dtype}
    inputs = ln.Input((hw, hw, 3), dtype=dtype)
    h = ln.Conv2D(channels, 3, padding="same", seed=1, **kw)(inputs)
    skip = ln.ReLU(**kw)(ln.BatchNormalization(**kw)(h))
    h = ln.Conv2D(channels, 3, padding="same", seed=2, **kw)(skip)
    h = ln.ReLU(**kw)(ln.BatchNormalization(**kw)(h))
    h = ln.Conv2D(channels, 3, padding="same", seed=3, **kw)(h)
    h = ln.BatchNormalization(**kw)(h)
    h = ln.ReLU(**kw)(ln.Add(**kw)([h, skip]))
    outputs = ln.Dense(classes, seed=4, **kw)(ln.GlobalAveragePooling2D(**kw)(h))
    model = ln.Model(inputs, outputs)
    model.compile(
        ln.SGD(0.05, momentum=0.9), ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    return model


class Run(NamedTuple):
    losses: list[float]
    preds: list[np.ndarray]
    grads: list[list[np.ndarray]]
    weights: list[np.ndarray]


def train(model, x, y, steps=3, plan=True):
    """``steps`` training steps: each step's loss, predictions and gradients, then the weights."""
    if not plan:
        model._in_place_layers = lambda: []  # this instance only: no layer works in place
    out = Run([], [], [], [])
    for _ in range(steps):
        z, pred = model.train_step(x, y)
        out.losses.append(z)
        out.preds.append(np.array(pred))
        out.grads.append([g.copy() for _, g in model._step_params().values()])
    out.weights.extend(model.get_weights())
    return out


def assert_same(a: Run, b: Run) -> None:
    """Bit for bit: the same losses, predictions, gradients of every step and final weights."""
    assert a.losses == b.losses
    for p, q in zip(a.preds, b.preds, strict=True):
        np.testing.assert_array_equal(p, q)
    for gs, hs in zip(a.grads, b.grads, strict=True):
        assert len(gs) == len(hs)
        for g, h in zip(gs, hs, strict=True):
            np.testing.assert_array_equal(g, h)
    assert len(a.weights) == len(b.weights)
    for w, v in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(w, v)


def relus(model):
    return [layer for layer in model._in_place_layers() if isinstance(layer, ln.ReLU)]


def lenet_data(n, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 28, 28, 1)).astype(dtype)
    return x, np.eye(10, dtype=dtype)[rng.integers(0, 10, n)]


# ------------------------------------------------- functional == Sequential, bit for bit
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_functional_lenet_trains_exactly_as_the_same_sequential(dtype):
    x, t = lenet_data(8, dtype)
    seq = ln.Sequential(lenet_layers(dtype=dtype))
    seq.build(x.shape, seed=0)
    fun = functional(lenet_layers(dtype=dtype), (28, 28, 1), dtype=dtype)
    fun.set_weights(seq.get_weights())
    for model in (seq, fun):
        model.compile(ln.SGD(0.01, momentum=0.9), "mse")
    # the same plan: every ReLU works in place in both
    assert len(relus(fun)) == len(relus(seq)) == 4
    assert_same(train(seq, x, t), train(fun, x, t))


def test_functional_lenet_with_and_without_the_plan_and_the_fast_paths():
    x, t = lenet_data(8, np.float64)

    def make():
        model = functional(lenet_layers(**F64), (28, 28, 1), **F64)
        model.set_weights(reference)
        model.compile(ln.SGD(0.01, momentum=0.9), ln.MSELoss(**F64))
        return model

    seq = ln.Sequential(lenet_layers(**F64))
    seq.build(x.shape, seed=1)
    reference = seq.get_weights()
    planned = train(make(), x, t)
    assert_same(planned, train(make(), x, t, plan=False))
    with _ops.fast_paths(False):
        plain = make()
        assert plain._in_place_layers() == []  # the plan follows the switch
        # LeNet's second convolution takes the banded input gradient (6 channels), which
        # adds its taps in another order than the per-tap products: equal to rounding.
        assert_close(planned, train(plain, x, t))


def assert_close(a: Run, b: Run, rtol: float = 1e-12) -> None:
    """:func:`assert_same` to float rounding (float64)."""
    np.testing.assert_allclose(a.losses, b.losses, rtol=rtol)
    for p, q in zip(a.preds, b.preds, strict=True):
        np.testing.assert_allclose(p, q, rtol=rtol, atol=rtol)
    for gs, hs in zip(a.grads, b.grads, strict=True):
        assert len(gs) == len(hs)
        for g, h in zip(gs, hs, strict=True):
            np.testing.assert_allclose(g, h, rtol=rtol, atol=rtol * np.abs(h).max())
    for w, v in zip(a.weights, b.weights, strict=True):
        np.testing.assert_allclose(w, v, rtol=rtol, atol=rtol)


def test_resnet_block_with_and_without_the_plan_and_the_fast_paths():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8, 8, 3))
    y = rng.integers(0, 3, 6)
    model = resnet_block()
    # the three ReLUs: the skip tensor is read by a Conv2D and the Add, but it is the
    # ReLU's output, never its input; the ReLU's gradient there is a sum of two
    assert len(relus(model)) == 3
    graph = model.graph
    skip = next(n for n in graph.nodes if isinstance(n.layer, ln.ReLU)).outputs[0]
    assert graph.summed == {id(skip)}  # the one tensor read by two calls
    planned = train(model, x, y)
    assert_same(planned, train(resnet_block(), x, y, plan=False))
    with _ops.fast_paths(False):
        plain = resnet_block()
        assert plain._in_place_layers() == []
        assert_same(planned, train(plain, x, y))


@settings(max_examples=12)
@given(
    n=st.integers(1, 4),
    hw=st.integers(2, 6),
    channels=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_resnet_block_is_the_same_with_the_plan_on_and_off_over_shapes(
    n, hw, channels, seed, dtype
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, hw, hw, 3)).astype(dtype)
    y = rng.integers(0, 3, n)
    planned = train(resnet_block(hw, channels, dtype=dtype), x, y, steps=2)
    assert_same(planned, train(resnet_block(hw, channels, dtype=dtype), x, y, steps=2, plan=False))
    with _ops.fast_paths(False):
        assert_same(planned, train(resnet_block(hw, channels, dtype=dtype), x, y, steps=2))


# ------------------------------------------------------------ what is never overwritten
def skip_model(also_output=False):
    """h = Dense(x); out = Dense(ReLU(h) + h): ``h`` feeds the ReLU and the Add."""
    inputs = ln.Input((5,), **F64)
    h = ln.Dense(4, seed=0, **F64)(inputs)
    relu = ln.ReLU(**F64)
    out = ln.Dense(3, seed=1, **F64)(ln.Add(**F64)([relu(h), h]))
    model = ln.Model(inputs, [out, h] if also_output else out)
    loss = [ln.MSELoss(**F64), None] if also_output else ln.MSELoss(**F64)
    model.compile(ln.SGD(0.1), loss)
    return model, relu


@pytest.mark.parametrize("also_output", [False, True])
def test_a_skip_connection_tensor_is_never_overwritten(also_output):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 5))
    y = rng.standard_normal((7, 3))
    target = [y, np.zeros((7, 4))] if also_output else y
    model, relu = skip_model(also_output)
    assert relu not in model._in_place_layers()
    expected = model.forward(x)  # the same weights, before the step; no layer differs
    _, pred = model.train_step(x, target)
    for p, e in zip(pred if also_output else [pred], expected if also_output else [expected]):
        np.testing.assert_array_equal(p, e)
    # The check above would catch an overwrite: forcing the ReLU in place changes `pred`
    # (h becomes max(h, 0) before the Add reads it).
    model, relu = skip_model(also_output)
    model._in_place_layers = lambda: [relu]
    expected = model.forward(x)
    _, pred = model.train_step(x, target)
    first = pred[0] if also_output else pred
    assert not np.array_equal(first, expected[0] if also_output else expected)


def test_plan_of_small_graphs():
    def plan(build, loss=None):
        inputs = ln.Input((4,), **F64)
        out, relu = build(inputs)
        model = ln.Model(inputs, out)
        model.compile("sgd", loss or ln.MSELoss(**F64))
        return relu in model._in_place_layers()

    dense = lambda: ln.Dense(4, seed=0, **F64)  # noqa: E731

    def chain(x):
        relu = ln.ReLU(**F64)
        return dense()(relu(dense()(x))), relu

    def on_the_input(x):  # the caller's array
        relu = ln.ReLU(**F64)
        return dense()(relu(x)), relu

    def read_twice(x):  # h feeds the ReLU and a Dense
        h, relu = dense()(x), ln.ReLU(**F64)
        return ln.Add(**F64)([dense()(relu(h)), dense()(h)]), relu

    def output_feeds_two(x):  # the ReLU's gradient is a sum: its own array
        relu = ln.ReLU(**F64)
        r = relu(dense()(x))
        return ln.Add(**F64)([dense()(r), dense()(r)]), relu

    def through_flatten(x):  # a view of a fresh array, read once; a view of its gradient
        relu = ln.ReLU(**F64)
        h = ln.Flatten(**F64)(dense()(x))
        return dense()(ln.Flatten(**F64)(relu(h))), relu

    def view_read_twice(x):  # Flatten's view of h, and h itself read again
        relu, h = ln.ReLU(**F64), dense()(x)
        return ln.Add(**F64)([dense()(relu(ln.Flatten(**F64)(h))), dense()(h)]), relu

    def last(x):
        relu = ln.ReLU(**F64)
        return relu(dense()(x)), relu

    def called_twice(x):
        relu = ln.ReLU(**F64)
        return dense()(relu(dense()(relu(dense()(x))))), relu

    def kept_by_producer(x):  # Tanh keeps its output for its backward pass
        relu = ln.ReLU(**F64)
        return dense()(relu(ln.Tanh(**F64)(dense()(x)))), relu

    assert plan(chain)
    assert not plan(on_the_input)
    assert not plan(read_twice)
    assert plan(output_feeds_two)
    assert plan(through_flatten)
    assert not plan(view_read_twice)
    assert plan(last)  # MSELoss gives a fresh gradient
    assert not plan(last, ln.losses.Huber(**F64))  # a loss class without the declaration
    assert not plan(called_twice)
    assert not plan(kept_by_producer)


def test_plan_follows_the_loss_activity_regularizers_and_the_switch():
    inputs = ln.Input((4,), **F64)
    first, relu = ln.Dense(4, seed=0, **F64), ln.ReLU(**F64)
    model = ln.Model(inputs, relu(first(inputs)))
    model.compile("sgd", ln.MSELoss(**F64))
    assert model._in_place_layers() == [relu]
    kept = model._in_place_layers()
    kept.clear()  # the caller's copy
    assert model._in_place_layers() == [relu]
    model.compile("sgd", ln.losses.Huber(**F64))
    assert model._in_place_layers() == []
    model.compile("sgd", ln.MSELoss(**F64))
    assert model._in_place_layers() == [relu]
    first.activity_regularizer = ln.regularizers.L2(0.1)  # reads the ReLU's input
    assert model._in_place_layers() == []
    first.activity_regularizer = None
    with _ops.fast_paths(False):
        assert model._in_place_layers() == []
    assert model._in_place_layers() == [relu]


def test_layers_inside_a_nested_model_are_never_flagged():
    inputs = ln.Input((4,), **F64)
    relu = ln.ReLU(**F64)
    inner_in = ln.Input((4,), **F64)
    inner = ln.Model(inner_in, ln.Dense(4, seed=0, **F64)(relu(inner_in)))
    h = relu(ln.Dense(4, seed=1, **F64)(inputs))  # the same ReLU, called at the top too
    model = ln.Model(inputs, ln.Dense(2, seed=2, **F64)(inner(h)))
    model.compile("sgd", ln.MSELoss(**F64))
    assert model._in_place_layers() == []


class Double(ln.Layer):
    """y = 2 x, declaring nothing (its arrays are new, but it does not say so)."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        return 2 * x, None

    def compute_backward_input(self, dy, saved):
        return 2 * dy


def test_upstream_gradient_held_elsewhere_is_not_overwritten_at_run_time():
    """A layer flagged in place whose upstream gradient the caller still holds: the backward
    pass runs it with the flag off, and restores the flag."""
    inputs = ln.Input((4,), **F64)
    relu = ln.ReLU(**F64)
    model = ln.Model(inputs, relu(ln.Dense(4, seed=0, **F64)(inputs)))
    x = np.random.default_rng(3).standard_normal((5, 4))
    model.forward(x, training=True)
    dy = np.random.default_rng(4).standard_normal((5, 4))
    kept = dy.copy()
    relu.overwrite_inputs = True  # (as if a plan had set it: the caller's dy is not private)
    try:
        model.backward(dy)
    finally:
        assert relu.overwrite_inputs
        relu.overwrite_inputs = False
    np.testing.assert_array_equal(dy, kept)


def test_user_layer_without_declarations_keeps_the_plan_away():
    inputs = ln.Input((4,), **F64)
    relu = ln.ReLU(**F64)
    h = Double(**F64)(relu(ln.Dense(4, seed=0, **F64)(inputs)))
    model = ln.Model(inputs, ln.Dense(2, seed=1, **F64)(h))
    model.compile("sgd", ln.MSELoss(**F64))
    assert model._in_place_layers() == []  # its gradient is not declared fresh
