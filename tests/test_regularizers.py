"""Regularizers: values and gradients against Keras 3 (JAX) and finite differences; layer wiring.

The end-to-end tests train through a small loop written here over a Sequential's
layers, with the calls a trainer makes: ``add_regularization_grads`` and
``regularization_penalty`` after the backward pass, ``activity_regularization``
on each output, ``apply_constraints`` after the optimizer step.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import regularizers as R

CASES = [
    (R.L1, {"l1": 0.3}),
    (R.L2, {"l2": 0.2}),
    (R.L1L2, {"l1": 0.1, "l2": 0.05}),
    (R.OrthogonalRegularizer, {"factor": 0.5, "mode": "rows"}),
    (R.OrthogonalRegularizer, {"factor": 0.7, "mode": "columns"}),
]


def finite_difference(fn, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (fn(x + e) - fn(x - e)) / (2 * eps)
    return g


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_gradient_matches_finite_differences(cls, kwargs):
    reg = cls(**kwargs)
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(reg.gradient(x), finite_difference(reg, x), rtol=1e-6, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    mode=st.sampled_from(["rows", "columns"]),
    seed=st.integers(0, 2**16),
)
def test_orthogonal_gradient_over_shapes(rows, cols, mode, seed):
    reg = R.OrthogonalRegularizer(0.3, mode)
    x = np.random.default_rng(seed).standard_normal((rows, cols))
    np.testing.assert_allclose(reg.gradient(x), finite_difference(reg, x), rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


@pytest.mark.parametrize(("cls", "kwargs"), CASES)
def test_value_and_gradient_match_keras(keras, cls, kwargs):
    import jax

    ours = cls(**kwargs)
    theirs = getattr(keras.regularizers, cls.__name__)(**kwargs)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    # (a JAX array: Keras's NumPy path normalises the wrong axis in "columns" mode)
    assert ours(x) == pytest.approx(float(theirs(jax.numpy.asarray(x))), rel=1e-5)
    want = np.asarray(jax.grad(lambda a: theirs(a))(x))
    np.testing.assert_allclose(ours.gradient(x), want, rtol=1e-4, atol=1e-6)
    # Keras's names and defaults
    assert theirs.get_config().keys() == ours.get_config().keys()
    for name, alias in [("l1", R.l1), ("l2", R.l2), ("l1_l2", R.l1_l2)]:
        k = getattr(keras.regularizers, name)()
        assert k.get_config() == pytest.approx(alias().get_config(), rel=1e-6)


def test_names_configs_and_errors():
    assert R.get("l2") == R.L2(0.01) and R.get("L1") == R.L1(0.01) and R.get(None) is None
    for reg in [R.L1(0.2), R.L2(0.1), R.L1L2(0.1, 0.2), R.OrthogonalRegularizer(0.1, "columns")]:
        assert R.get(R.serialize(reg)) == reg
        assert type(reg).from_config(reg.get_config()) == reg
    with pytest.raises(ValueError, match=r"expected one of \['L1', .*'l2', .*\], a Regularizer"):
        R.get("l3")
    with pytest.raises(ValueError, match=r"L2: invalid value for `l2`: expected a finite number "):
        R.L2(-1.0)
    with pytest.raises(ValueError, match=r"invalid value for `mode`: expected 'rows' or"):
        R.OrthogonalRegularizer(mode="diag")
    with pytest.raises(ValueError, match=r"expected a 2-D array, received shape \(3,\)"):
        R.OrthogonalRegularizer()(np.ones(3))
    with pytest.raises(ValueError, match=r"Dense 'd': invalid value for `kernel_regularizer`"):
        ln.Dense(2, kernel_regularizer="l3", name="d")
    with pytest.raises(ValueError, match=r"Dense 'd': invalid value for `kernel_constraint`"):
        ln.Dense(2, kernel_constraint="l2", name="d")


# ------------------------------------------------------------- layer wiring
LAYERS = [
    (lambda **kw: ln.Dense(3, **kw), (None, 4), ("kernel", "bias")),
    (lambda **kw: ln.Conv1D(2, 3, **kw), (None, 6, 2), ("kernel", "bias")),
    (lambda **kw: ln.Conv2D(2, 2, **kw), (None, 4, 4, 2), ("kernel", "bias")),
    (lambda **kw: ln.Conv3D(2, 2, **kw), (None, 3, 3, 3, 1), ("kernel", "bias")),
    (lambda **kw: ln.Conv2DTranspose(2, 2, strides=2, **kw), (None, 3, 3, 2), ("kernel", "bias")),
    (lambda **kw: ln.Conv1DTranspose(2, 3, **kw), (None, 4, 2), ("kernel", "bias")),
    (lambda **kw: ln.BatchNorm(**kw), (None, 5, 3), ("gamma", "beta")),
]


@pytest.mark.parametrize(("make", "shape", "names"), LAYERS)
def test_layer_penalty_grads_and_constraints(tmp_path, make, shape, names):
    a, b = names
    layer = make(
        **{
            f"{a}_regularizer": R.L1L2(0.01, 0.02),
            f"{b}_regularizer": "l2",
            f"{a}_constraint": ln.constraints.MaxNorm(0.5, axis=0),
            f"{b}_constraint": "non_neg",
        },
        dtype="float64",
        seed=3,
    )
    layer.build(shape)
    rng = np.random.default_rng(0)
    for p in layer.params.values():
        p[...] = rng.standard_normal(p.shape)
    want = R.L1L2(0.01, 0.02)(layer.params[a]) + R.L2()(layer.params[b])
    assert layer.regularization_penalty() == pytest.approx(want, rel=1e-12)
    # the gradient of the penalty, by finite differences in each parameter
    layer.zero_grad()
    layer.add_regularization_grads()
    for k, p in layer.params.items():

        def penalty(v, k=k, p=p):
            old = p.copy()
            p[...] = v
            out = layer.regularization_penalty()
            p[...] = old
            return out

        fd = finite_difference(penalty, p.copy())
        np.testing.assert_allclose(layer.grads[k], fd, rtol=1e-6, atol=1e-8)
    # constraints project in place
    layer.apply_constraints()
    assert np.all(layer.params[b] >= 0)
    norms = np.sqrt(np.sum(layer.params[a] ** 2, axis=0))
    assert np.all(norms <= 0.5 + 1e-6)
    # configs round-trip, also through a model file
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.param_regularizers == layer.param_regularizers
    assert clone.param_constraints == layer.param_constraints
    model = ln.Sequential([layer])
    model.build(shape)
    model.compile("sgd", "mse")
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz").layers[0]
    assert loaded.get_config() == layer.get_config()
    assert loaded.param_regularizers == layer.param_regularizers


def test_frozen_or_unregularized_layer_adds_nothing():
    layer = ln.Dense(2, kernel_regularizer="l2", kernel_constraint="unit_norm", trainable=False)
    layer.build((None, 3))
    before = layer.params["kernel"].copy()
    assert layer.regularization_penalty() == 0.0
    layer.add_regularization_grads()
    layer.apply_constraints()
    np.testing.assert_array_equal(layer.params["kernel"], before)
    assert not layer.grads["kernel"].any()
    plain = ln.ReLU()
    assert plain.regularization_penalty() == 0.0 and plain.activity_regularization(
        np.ones((2, 2))
    ) == (0.0, None)


# ------------------------------------- end to end with a trainer's calls
def train_step(model, loss, optimizer, x, y):
    """One step with the calls a trainer makes; returns the loss it reports."""
    layers = model.layers
    for layer in layers:
        layer.zero_grad()
    outputs, h = [], x
    for layer in layers:
        h = layer.forward(h, training=True)
        outputs.append(h)
    total = loss.forward(h, y)
    dy = loss.backward_input()
    for layer, out in zip(reversed(layers), reversed(outputs), strict=True):
        penalty, grad = layer.activity_regularization(out)
        total += penalty
        if grad is not None:
            dy = dy + grad
        layer.backward_params(dy)
        dy = layer.backward_input(dy)
    for layer in layers:
        layer.add_regularization_grads()
        total += layer.regularization_penalty()
    optimizer.step(
        {
            f"{i}.{layer.name}.{k}": (p, layer.grads[k])
            for i, layer in enumerate(layers)
            if layer.trainable
            for k, p in layer.params.items()
        }
    )
    for layer in layers:
        layer.apply_constraints()
    return total


def test_training_with_regularizers_and_constraints_matches_keras(keras):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)

    def layers(lib, C):
        def seed(n):
            return {"seed": n} if lib is ln else {}

        return [
            lib.layers.Dense(
                6,
                activation="tanh",
                kernel_regularizer=lib.regularizers.L1L2(0.01, 0.02),
                bias_regularizer=lib.regularizers.L2(0.05),
                activity_regularizer=lib.regularizers.L2(0.03),
                kernel_constraint=C.MaxNorm(0.9),
                bias_constraint=C.NonNeg(),
                **seed(1),
            ),
            lib.layers.Dense(
                2,
                kernel_regularizer=lib.regularizers.OrthogonalRegularizer(0.1, "columns"),
                # (no NonNeg here: columns with disjoint support give |P_ij| at 0, where
                # JAX's derivative of |x| is 1 and layernet's, TensorFlow's and PyTorch's 0)
                kernel_constraint=C.MinMaxNorm(0.5, 1.0, rate=0.7),
                bias_constraint=C.UnitNorm(),
                **seed(2),
            ),
        ]

    ours = ln.Sequential(layers(ln, ln.constraints))
    ours.build((None, 5))
    theirs = keras.Sequential([keras.Input((5,)), *layers(keras, keras.constraints)])
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        # copies: JAX may keep a view of the arrays it is given, which our steps change
        b.set_weights([a.params["kernel"].copy(), a.params["bias"].copy()])
    theirs.compile(keras.optimizers.SGD(0.1, momentum=0.5), "mse")
    # the same model trained by fit (one functional twin, too): the penalties enter the
    # loss that fit reports and their gradients the step, constraints follow each update
    by_fit = ln.Sequential(layers(ln, ln.constraints))
    by_fit.build((None, 5))
    by_fit.set_weights(ours.get_weights())
    by_fit.compile(ln.SGD(0.1, momentum=0.5), "mse")
    inp = ln.Input((5,))
    functional = ln.Model(inp, ln.Sequential(layers(ln, ln.constraints))(inp))
    functional.set_weights(ours.get_weights())
    functional.compile(ln.SGD(0.1, momentum=0.5), "mse")
    opt = ln.SGD(0.1, momentum=0.5)
    loss = ln.losses.MeanSquaredError()
    for _ in range(4):
        ours_loss = train_step(ours, loss, opt, x, y)
        theirs_loss = float(theirs.train_on_batch(x, y))
        assert ours_loss == pytest.approx(theirs_loss, rel=1e-4)
        assert by_fit.train_on_batch(x, y) == pytest.approx(theirs_loss, rel=1e-4)
        assert functional.train_on_batch(x, y) == pytest.approx(theirs_loss, rel=1e-4)
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        for mine, keras_w in zip([a.params["kernel"], a.params["bias"]], b.get_weights()):
            np.testing.assert_allclose(mine, keras_w, rtol=1e-4, atol=1e-5)
    for model in (by_fit, functional):
        for mine, keras_w in zip(model.get_weights(), theirs.get_weights(), strict=True):
            np.testing.assert_allclose(mine, keras_w, rtol=1e-4, atol=1e-5)


def test_weight_penalty_shrinks_weights_in_training():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4))
    y = x @ rng.standard_normal((4, 1)) * 3

    def fit(**kw):
        model = ln.Sequential([ln.Dense(1, dtype="float64", seed=0, **kw)])
        model.build((None, 4))
        opt, loss = ln.SGD(0.05), ln.losses.MeanSquaredError()
        for _ in range(200):
            train_step(model, loss, opt, x, y)
        return np.abs(model.layers[0].params["kernel"]).sum()

    assert fit(kernel_regularizer=R.L1(1.0)) < 0.8 * fit()
