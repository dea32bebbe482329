"""Keras's losses: call order, reductions, values against Keras (JAX), derivatives."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import losses as L
from layernet.gradcheck import numerical_gradient

F64 = {"dtype": "float64"}


def _probs(rng, shape):
    p = rng.uniform(0.05, 1.0, shape)
    return p / p.sum(axis=-1, keepdims=True)


def _onehot(rng, shape):
    return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]


# name -> (layernet class and kwargs, Keras class name and kwargs, y_true maker, y_pred maker)
CASES = {
    "mse": ("MeanSquaredError", {}, "normal", "normal"),
    "mae": ("MeanAbsoluteError", {}, "normal", "normal"),
    "mape": ("MeanAbsolutePercentageError", {}, "normal", "normal"),
    "msle": ("MeanSquaredLogarithmicError", {}, "positive", "positive"),
    "huber": ("Huber", {"delta": 0.7}, "normal", "normal"),
    "log_cosh": ("LogCosh", {}, "normal", "normal"),
    "poisson": ("Poisson", {}, "positive", "positive"),
    "kld": ("KLDivergence", {}, "probs", "probs"),
    "hinge": ("Hinge", {}, "binary", "normal"),
    "hinge_pm1": ("Hinge", {}, "pm1", "normal"),
    "squared_hinge": ("SquaredHinge", {}, "binary", "normal"),
    "categorical_hinge": ("CategoricalHinge", {}, "onehot", "normal"),
    "cosine": ("CosineSimilarity", {}, "normal", "normal"),
    "cce": ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "onehot", "probs"),
    "cce_logits": ("CategoricalCrossentropy", {"from_logits": True}, "onehot", "normal"),
    "scce": ("SparseCategoricalCrossentropy", {}, "labels", "probs"),
    "bce": ("BinaryCrossentropy", {}, "binary", "unit"),
    "bce_logits": ("BinaryCrossentropy", {"from_logits": True}, "binary", "normal"),
    "cfocal": ("CategoricalFocalCrossentropy", {"gamma": 1.5, "alpha": 0.4}, "onehot", "probs"),
    "cfocal_logits": (
        "CategoricalFocalCrossentropy",
        {"from_logits": True, "label_smoothing": 0.1},
        "onehot",
        "normal",
    ),
    "bfocal": ("BinaryFocalCrossentropy", {"apply_class_balancing": True}, "binary", "unit"),
    "bfocal_logits": (
        "BinaryFocalCrossentropy",
        {"from_logits": True, "gamma": 1.5, "label_smoothing": 0.2},
        "binary",
        "normal",
    ),
    "dice": ("Dice", {}, "binary", "unit"),
    # symmetric: Keras 3.15 weighs the false negatives by `alpha`, its later releases (and
    # layernet) the false positives, as the paper does; see test_tversky_weights_errors_as_named
    "tversky": ("Tversky", {}, "binary", "unit"),
}


def make_data(case, shape, seed=0):
    _, _, kind_t, kind_p = CASES[case]
    rng = np.random.default_rng(seed)

    def draw(kind):
        return {
            "normal": lambda: rng.normal(size=shape),
            "positive": lambda: rng.uniform(0.1, 3.0, shape),
            "probs": lambda: _probs(rng, shape),
            "unit": lambda: rng.uniform(0.02, 0.98, shape),
            "binary": lambda: rng.integers(0, 2, shape).astype(float),
            "pm1": lambda: rng.choice([-1.0, 1.0], shape),
            "onehot": lambda: _onehot(rng, shape),
            "labels": lambda: rng.integers(0, shape[-1], shape[:-1]),
        }[kind]()

    return draw(kind_t), draw(kind_p)


def assert_gradient(loss, x, t, w=None, dz=0.7):
    """``backward_input`` against central differences (float64, eps 1e-6) of ``forward``."""
    loss.forward(x, t, sample_weight=w)
    analytic = loss.backward_input(dz)
    x = x.copy()
    numeric = numerical_gradient(lambda: dz * loss(t, x, sample_weight=w), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def make_loss(case, **extra):
    cls, kwargs, _, _ = CASES[case]
    return getattr(L, cls)(**kwargs, **extra)


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


# ---------------------------------------------------------------------------- call order


def test_call_takes_keras_order_and_forward_keeps_the_notes_order():
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]])
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]])
    loss = L.BinaryCrossentropy(**F64)
    z = loss(y_true, y_pred)
    bce = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)).mean()
    assert z == pytest.approx(bce, rel=1e-12)
    assert loss.forward(y_pred, y_true) == pytest.approx(z, rel=1e-12)
    # a call leaves what forward saved for backward alone
    loss.forward(y_pred, y_true)
    g = loss.backward_input()
    loss(np.ones_like(y_true), y_pred)
    np.testing.assert_array_equal(loss.backward_input(), g)


@pytest.mark.parametrize("loss", [ln.MSELoss(**F64), ln.SoftmaxCrossEntropy(**F64)])
def test_the_notes_losses_are_called_in_keras_order_too(loss):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3))
    t = np.eye(3)[[0, 2, 1, 1]]
    assert loss(t, x) == loss.forward(x, t)


def test_keras_order_against_keras(keras):
    y_true = np.array([[0.0, 1.0], [0.0, 0.0]], dtype="float32")
    y_pred = np.array([[0.6, 0.4], [0.4, 0.6]], dtype="float32")
    expected = float(keras.losses.BinaryCrossentropy()(y_true, y_pred))
    assert L.BinaryCrossentropy()(y_true, y_pred) == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------------------- Keras's values


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 3)])
def test_values_and_reductions_equal_keras(keras, case, shape):
    y_true, y_pred = make_data(case, shape)
    cls, kwargs, _, _ = CASES[case]
    overlap = cls in ("Dice", "Tversky")
    weights = [None] if overlap else [None, np.random.default_rng(2).uniform(0, 2, shape[0])]
    if len(shape) == 3 and not overlap:
        weights.append(np.random.default_rng(3).uniform(0, 2, shape[:2]))
    reductions = ["sum_over_batch_size", "sum", "mean", None, "none"]
    for reduction in reductions:
        for w in weights:
            ours = make_loss(case, reduction=reduction)(y_true, y_pred, sample_weight=w)
            kw = {}
            if w is not None:  # Keras broadcasts (N,) weights only over (N,) values: expand
                full = w.reshape(w.shape + (1,) * (len(shape) - 1 - w.ndim))
                kw["sample_weight"] = np.broadcast_to(full, shape[:-1]).astype("float32")
            theirs = getattr(keras.losses, cls)(**kwargs, reduction=reduction)(
                y_true.astype("float32"), y_pred.astype("float32"), **kw
            )
            np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_lowercase_functions_equal_keras(keras, case):
    y_true, y_pred = make_data(case, (3, 4, 3), seed=5)
    cls, kwargs, _, _ = CASES[case]
    name = next(n for n, c in L._NAMES.items() if c.__name__ == cls and hasattr(L, n))
    ours = getattr(L, name)(y_true, y_pred, **kwargs)
    theirs = getattr(keras.losses, name)(
        y_true.astype("float32"), y_pred.astype("float32"), **kwargs
    )
    assert ours.shape == tuple(np.shape(theirs))
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=2e-4, atol=2e-5)


def test_dice_over_given_axes_equals_keras(keras):
    y_true, y_pred = make_data("dice", (3, 4, 5))
    w = np.array([1.0, 0.5, 2.0])
    for cls in ("Dice", "Tversky"):
        ours = getattr(L, cls)(axis=(1, 2))(y_true, y_pred, sample_weight=w)
        theirs = getattr(keras.losses, cls)(axis=(1, 2))(
            y_true.astype("float32"), y_pred.astype("float32"), sample_weight=w.astype("float32")
        )
        assert ours == pytest.approx(float(theirs), rel=1e-5)


# ---------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4)])
def test_gradients_match_central_differences(case, shape):
    y_true, y_pred = make_data(case, shape, seed=7)
    loss = make_loss(case, **F64)
    if case == "categorical_hinge":  # keep the margin away from its kink
        y_pred = y_pred + 3 * y_true
    assert_gradient(loss, y_pred, y_true)
    assert loss.jacobian_input(y_pred, y_true).shape == (1, y_pred.size)


@pytest.mark.parametrize("case", sorted(c for c in CASES if CASES[c][0] not in ("Dice", "Tversky")))
@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
def test_weighted_gradients_match_central_differences(case, reduction):
    y_true, y_pred = make_data(case, (3, 2, 4), seed=11)
    w = np.random.default_rng(4).uniform(0.1, 2.0, (3, 2))
    assert_gradient(make_loss(case, reduction=reduction, **F64), y_pred, y_true, w)


@settings(max_examples=20, deadline=None)
@given(
    case=st.sampled_from(["huber", "log_cosh", "cosine", "kld", "bfocal", "cfocal", "tversky"]),
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=4).map(tuple),
    seed=st.integers(0, 1000),
)
def test_gradients_over_shapes(case, shape, seed):
    y_true, y_pred = make_data(case, shape, seed=seed)
    assert_gradient(make_loss(case, **F64), y_pred, y_true)


# ---------------------------------------------------------------------------- get and errors


def test_get_knows_keras_names_functions_and_wraps_other_functions():
    assert isinstance(L.get("huber"), L.Huber)
    assert isinstance(L.get("kl_divergence"), L.KLDivergence)
    assert isinstance(L.get("mape"), L.MeanAbsolutePercentageError)
    assert isinstance(L.get("Tversky"), L.Tversky)
    assert isinstance(L.get(L.log_cosh), L.LogCosh)
    assert isinstance(L.get(L.Poisson), L.Poisson)
    assert L.get(functools.partial(L.huber, delta=3.0)).delta == 3.0
    wrapped = L.get(_my_loss)  # Keras's LossFunctionWrapper
    assert isinstance(wrapped, L.LossFunctionWrapper) and wrapped.fn is _my_loss
    with pytest.raises(ValueError, match="invalid value for `reduction`"):
        L.Huber(reduction="average")
    with pytest.raises(ValueError, match="invalid value for `delta`"):
        L.Huber(delta=0)


def _my_loss(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2, axis=-1)


def test_compile_takes_a_lowercase_function_and_wraps_a_plain_one():
    model = ln.Sequential([ln.Dense(2)])
    model.compile("sgd", L.huber)
    assert isinstance(model.loss, L.Huber)
    model.compile("sgd", _my_loss)  # Keras wraps it; its derivative is traced when it runs
    assert isinstance(model.loss, L.LossFunctionWrapper)
    with pytest.raises(ValueError, match=r"does not depend on `y_pred` through layernet\.ops"):
        model.loss.forward(np.ones((2, 2)), np.zeros((2, 2)))  # np.mean: not traceable


def test_reduction_none_cannot_train_and_weights_need_values():
    loss = L.MeanSquaredError(reduction="none", **F64)
    with pytest.raises(ValueError, match="needs a scalar loss"):
        loss.forward(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="expected `sample_weight` of shape"):
        L.MeanSquaredError()(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="reduces the whole batch"):
        L.Dice()(np.zeros((2, 2)), np.zeros((2, 2)), sample_weight=np.ones(2))


def test_configs_round_trip():
    for case in CASES:
        loss = make_loss(case, reduction="sum")
        again = type(loss).from_config(loss.get_config())
        assert again.get_config() == loss.get_config()


def test_tversky_weights_errors_as_named():
    t = np.array([[1.0, 1.0, 0.0, 0.0]])
    x = np.array(
        [[1.0, 0.0, 1.0, 1.0]]
    )  # one true positive, two false positives, one false negative
    for alpha, beta in [(0.3, 0.7), (1.0, 0.0), (0.0, 1.0)]:
        expected = 1 - 1 / (1 + 2 * alpha + beta + L.EPSILON)
        assert L.Tversky(alpha, beta, **F64)(t, x) == pytest.approx(expected, rel=1e-12)
    assert_gradient(L.Tversky(0.3, 0.7, **F64), x * 0.8 + 0.1, t)
