"""Keras losses and metrics: definitions, derivatives, sample weights, Keras and PyTorch numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import losses as L
from layernet import metrics as M

try:  # PyTorch is the oracle ('oracle' extra); its tests are skipped without it
    import torch

    F = torch.nn.functional
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is the oracle")

F64 = {"dtype": "float64"}

# Inputs and Keras 3.15.1's results on them (PyTorch backend, float32), computed once with
# keras.losses.X()(y_true, y_pred[, sample_weight=W]) and keras.metrics.X().update_state(...).
YT = np.array([[0.0, 0.3, -0.27], [-0.89, -0.45, -0.99], [0.06, 1.34, -0.49], [-0.62, 0.49, 0.36]])
YP = np.array(
    [[0.11, -0.93, -0.03], [0.7, -1.34, -0.46], [-1.9, -1.29, -1.84], [-0.24, -1.27, 0.27]]
)
W = np.array([0.5, 2.0, 0.0, 1.0])
PROBS = np.array(
    [[0.029, 0.595, 0.376], [0.688, 0.149, 0.163], [0.0, 0.2, 0.8], [0.151, 0.522, 0.327]]
)
LABELS = np.array([0, 2, 0, 1])
ONEHOT = np.eye(3)[LABELS]
LOGITS = np.array(
    [[-2.42, -0.1, 2.65], [-1.75, -0.34, 0.33], [0.19, -3.68, 0.23], [4.08, -4.64, 2.58]]
)
BPROB = np.array([[0.9], [0.2], [0.0], [0.6]])
BT = np.array([[1.0], [0.0], [1.0], [1.0]])
KERAS = {
    "mse": (1.751233458518982, 0.9369666576385498),
    "mae": (1.06333327293396, 0.753333330154419),
    "cce": (5.5306620597839355, 1.5120819807052612),
    "cce_ls": (5.233750820159912, 1.480547308921814),
    "cce_logits": (3.5397238731384277, 2.883357524871826),
    "scce": (5.5306620597839355, 1.5120819807052612),
    "scce_logits": (3.8188905715942383, 3.118940830230713),
    "bce": (4.239356517791748, 0.25244826078414917),
    "bce_ls": (3.936128616333008, 0.3593648672103882),
    "bce_logits": (0.8212077617645264, 0.39745211601257324),
}
LOSS_CASES = {
    "mse": (lambda: L.MeanSquaredError(**F64), YP, YT),
    "mae": (lambda: L.MeanAbsoluteError(**F64), YP, YT),
    "cce": (lambda: L.CategoricalCrossentropy(**F64), PROBS, ONEHOT),
    "cce_ls": (lambda: L.CategoricalCrossentropy(label_smoothing=0.1, **F64), PROBS, ONEHOT),
    "cce_logits": (
        lambda: L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2, **F64),
        LOGITS,
        ONEHOT,
    ),
    "scce": (lambda: L.SparseCategoricalCrossentropy(**F64), PROBS, LABELS),
    "scce_logits": (
        lambda: L.SparseCategoricalCrossentropy(from_logits=True, **F64),
        LOGITS,
        LABELS,
    ),
    "bce": (lambda: L.BinaryCrossentropy(**F64), BPROB, BT),
    "bce_ls": (lambda: L.BinaryCrossentropy(label_smoothing=0.2, **F64), BPROB, BT),
    "bce_logits": (lambda: L.BinaryCrossentropy(from_logits=True, **F64), LOGITS[:, :1], BT),
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_losses_give_keras_numbers(case):
    make, x, t = LOSS_CASES[case]
    plain, weighted = KERAS[case]
    assert make().forward(x, t) == pytest.approx(plain, rel=2e-6)
    assert make().forward(x, t, sample_weight=W) == pytest.approx(weighted, rel=2e-6)


def central_differences(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def random_case(kind, shape, rng):
    """A prediction away from clipping and kinks, and a matching target."""
    k = shape[-1]
    if kind in ("mse", "mae"):
        return rng.standard_normal(shape), rng.standard_normal(shape)
    if kind in ("cce", "cce_logits"):
        x = rng.uniform(0.05, 1.0, shape) if kind == "cce" else rng.standard_normal(shape) * 3
        t = rng.dirichlet(np.ones(k), shape[:-1])
        return x, t
    if kind in ("scce", "scce_logits"):
        x = rng.uniform(0.05, 1.0, shape) if kind == "scce" else rng.standard_normal(shape) * 3
        return x, rng.integers(0, k, shape[:-1])
    x = rng.uniform(0.05, 0.95, shape) if kind == "bce" else rng.standard_normal(shape) * 3
    return x, rng.uniform(0, 1, shape)


def make_loss(kind, smoothing):
    return {
        "mse": lambda: L.MeanSquaredError(**F64),
        "mae": lambda: L.MeanAbsoluteError(**F64),
        "cce": lambda: L.CategoricalCrossentropy(label_smoothing=smoothing, **F64),
        "cce_logits": lambda: L.CategoricalCrossentropy(True, smoothing, **F64),
        "scce": lambda: L.SparseCategoricalCrossentropy(**F64),
        "scce_logits": lambda: L.SparseCategoricalCrossentropy(from_logits=True, **F64),
        "bce": lambda: L.BinaryCrossentropy(label_smoothing=smoothing, **F64),
        "bce_logits": lambda: L.BinaryCrossentropy(True, smoothing, **F64),
        "half": lambda: ln.MSELoss(**F64),
        "softmax_ce": lambda: ln.SoftmaxCrossEntropy(**F64),
    }[kind]()


@given(
    kind=st.sampled_from(
        ["mse", "mae", "cce", "cce_logits", "scce", "scce_logits", "bce", "bce_logits"]
    ),
    shape=st.sampled_from([(1, 2), (3, 4), (2, 3, 3), (4, 1)]),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 999),
)
def test_loss_gradients_and_jacobians_match_finite_differences(
    kind, shape, weighted, smoothing, seed
):
    rng = np.random.default_rng(seed)
    x, t = random_case(kind, shape, rng)
    if kind == "mae":  # keep |x - t| away from its kink
        x = t + np.where(rng.random(shape) < 0.5, -1, 1) * rng.uniform(0.1, 1, shape)
    w = rng.uniform(0, 2, shape[0]) if weighted else None
    loss = make_loss(kind, smoothing)
    z = loss.forward(x, t, sample_weight=w)
    dz = 0.7  # a non-unit upstream gradient
    g = loss.backward_input(dz)
    numeric = central_differences(lambda v: loss.forward(v, t, sample_weight=w), x.copy())
    np.testing.assert_allclose(g, dz * numeric, rtol=1e-6, atol=1e-8)
    jac = loss.jacobian_input(x, t, sample_weight=w)
    np.testing.assert_allclose(jac, numeric.reshape(1, -1), rtol=1e-6, atol=1e-8)
    assert loss.backward_params() == {}
    assert np.isfinite(z)


@pytest.mark.parametrize("kind", ["half", "softmax_ce"])
def test_notes_losses_take_sample_weights(kind, rng):
    x = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 3)) if kind == "half" else rng.integers(0, 3, 5)
    w = rng.uniform(0, 2, 5)
    loss = make_loss(kind, 0.0)
    per_sample = [make_loss(kind, 0.0).forward(x[i : i + 1], t[i : i + 1]) for i in range(5)]
    assert loss.forward(x, t, sample_weight=w) == pytest.approx(np.dot(w, per_sample) / 5)
    numeric = central_differences(lambda v: loss.forward(v, t, sample_weight=w), x.copy())
    loss.forward(x, t, sample_weight=w)
    np.testing.assert_allclose(loss.backward_input(), numeric, rtol=1e-6, atol=1e-9)


def test_half_squared_error_is_k_over_two_times_keras_mse(rng):
    x, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    half, mse = ln.MSELoss(**F64), L.MeanSquaredError(**F64)
    assert half.forward(x, t) == pytest.approx(5 / 2 * mse.forward(x, t))
    np.testing.assert_allclose(half.backward_input(), 5 / 2 * mse.backward_input())


def test_softmax_cross_entropy_equals_categorical_crossentropy_from_logits(rng):
    x, t = rng.standard_normal((5, 4)) * 4, rng.dirichlet(np.ones(4), 5)
    a, b = ln.SoftmaxCrossEntropy(**F64), L.CategoricalCrossentropy(from_logits=True, **F64)
    assert a.forward(x, t) == pytest.approx(b.forward(x, t), rel=1e-12)
    np.testing.assert_allclose(a.backward_input(), b.backward_input(), rtol=1e-12, atol=1e-15)


def softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_probabilities_after_a_softmax_give_the_fused_gradient(rng):
    """Behind a softmax, categorical cross-entropy's chain gives (p - t)/N, as the fused form."""
    a = rng.standard_normal((6, 5)) * 2
    labels = rng.integers(0, 5, 6)
    p = softmax(a)
    loss = L.SparseCategoricalCrossentropy(**F64)
    z = loss.forward(p, labels)
    g = loss.backward_input()
    da = p * (g - np.sum(g * p, axis=1, keepdims=True))  # softmax's backward rule
    fused = ln.SoftmaxCrossEntropy(**F64)
    assert z == pytest.approx(fused.forward(a, labels), rel=1e-12)
    np.testing.assert_allclose(da, fused.backward_input(), rtol=1e-10, atol=1e-14)


def test_zero_probability_is_clipped_like_keras():
    loss = L.CategoricalCrossentropy(**F64)
    z = loss.forward(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    assert z == pytest.approx(-np.log(1e-7))
    assert np.all(np.isfinite(loss.backward_input()))
    bce = L.BinaryCrossentropy(**F64)
    assert bce.forward(np.array([[0.0]]), np.array([[1.0]])) == pytest.approx(-np.log(1e-7))
    assert bce.backward_input()[0, 0] == 0  # clipped: no gradient, as in Keras


def test_large_logits_stay_finite():
    x = np.array([[1000.0, -1000.0, 0.0]])
    for loss in (
        L.CategoricalCrossentropy(from_logits=True, **F64),
        L.BinaryCrossentropy(from_logits=True, **F64),
    ):
        t = np.array([[0.0, 1.0, 0.0]])
        assert np.isfinite(loss.forward(x, t))
        assert np.all(np.isfinite(loss.backward_input()))


def test_float32_losses_return_float32_gradients(rng):
    x = rng.uniform(0.1, 1, (4, 3)).astype(np.float32)
    loss = L.CategoricalCrossentropy()
    loss.forward(x, ONEHOT.astype(np.float32))
    assert loss.backward_input().dtype == np.float32


# --------------------------------------------------------------------------- PyTorch
EPS = 1e-7


def torch_reference(kind, x, t, w, smoothing):
    """The same losses written with PyTorch's functions, reduced as Keras does."""
    xt = torch.tensor(x, requires_grad=True)
    tt = torch.tensor(t)
    wt = torch.tensor(w)
    n = x.shape[0]
    if kind == "mse":
        per = F.mse_loss(xt, tt, reduction="none").reshape(n, -1).mean(dim=1)
    elif kind == "mae":
        per = F.l1_loss(xt, tt, reduction="none").reshape(n, -1).mean(dim=1)
    elif kind == "cce_logits":
        per = F.cross_entropy(xt, tt, reduction="none", label_smoothing=smoothing)
    elif kind == "scce_logits":
        per = F.cross_entropy(xt, tt, reduction="none")
    elif kind in ("cce", "scce"):
        q = (xt / xt.sum(dim=1, keepdim=True)).clamp(EPS, 1 - EPS)
        if kind == "scce":
            per = F.nll_loss(torch.log(q), tt, reduction="none")
        else:
            tt = tt * (1 - smoothing) + smoothing / x.shape[1]
            per = -(tt * torch.log(q)).sum(dim=1)
    elif kind == "bce":
        tt = tt * (1 - smoothing) + 0.5 * smoothing
        per = F.binary_cross_entropy(xt.clamp(EPS, 1 - EPS), tt, reduction="none").mean(dim=1)
    else:  # bce_logits
        tt = tt * (1 - smoothing) + 0.5 * smoothing
        per = F.binary_cross_entropy_with_logits(xt, tt, reduction="none").mean(dim=1)
    z = (per * wt).sum() / n
    z.backward()
    return z.item(), xt.grad.numpy()


@needs_torch
@given(
    kind=st.sampled_from(
        ["mse", "mae", "cce", "cce_logits", "scce", "scce_logits", "bce", "bce_logits"]
    ),
    n=st.integers(1, 5),
    k=st.integers(1, 5),
    smoothing=st.sampled_from([0.0, 0.15]),
    seed=st.integers(0, 999),
)
def test_losses_match_torch(kind, n, k, smoothing, seed):
    rng = np.random.default_rng(seed)
    x, t = random_case(kind, (n, k), rng)
    if kind in ("scce", "scce_logits") or kind == "mae":
        smoothing = 0.0
    w = rng.uniform(0, 2, n)
    z_ref, g_ref = torch_reference(kind, x, t, w, smoothing)
    loss = make_loss(kind, smoothing)
    assert loss.forward(x, t, sample_weight=w) == pytest.approx(z_ref, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(loss.backward_input(), g_ref, rtol=1e-10, atol=1e-12)


@needs_torch
def test_clipped_probabilities_match_torch_clamp():
    x = np.array([[0.0, 0.3, 0.7], [1e-9, 0.5, 0.5], [0.2, 0.3, 0.5]])
    t = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    z_ref, g_ref = torch_reference("cce", x, t, np.ones(3), 0.0)
    loss = L.CategoricalCrossentropy(**F64)
    assert loss.forward(x, t) == pytest.approx(z_ref, rel=1e-12)
    np.testing.assert_allclose(loss.backward_input(), g_ref, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- names, errors
def test_loss_names():
    assert isinstance(L.get("mse"), L.MeanSquaredError)
    assert isinstance(L.get("mean_squared_error"), L.MeanSquaredError)
    assert isinstance(L.get("mae"), L.MeanAbsoluteError)
    assert isinstance(L.get("categorical_crossentropy"), L.CategoricalCrossentropy)
    assert not L.get("categorical_crossentropy").from_logits
    assert isinstance(L.get("sparse_categorical_crossentropy"), L.SparseCategoricalCrossentropy)
    assert isinstance(L.get("binary_crossentropy"), L.BinaryCrossentropy)
    assert isinstance(L.get("half_squared_error"), ln.MSELoss)
    assert isinstance(L.get("mse_loss"), ln.MSELoss)
    assert isinstance(L.get("softmax_cross_entropy"), ln.SoftmaxCrossEntropy)
    assert isinstance(L.get("CategoricalCrossentropy"), L.CategoricalCrossentropy)
    assert L.get("mse", dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"compile: invalid value for `loss`: expected one of"):
        L.get("no_such_loss")


def test_loss_argument_and_data_errors():
    with pytest.raises(ValueError, match=r"CategoricalCrossentropy: .*`label_smoothing`.*1.5"):
        L.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"BinaryCrossentropy: .*`from_logits`: expected a bool"):
        L.BinaryCrossentropy(from_logits="yes")
    cce = L.CategoricalCrossentropy(name="cce")
    with pytest.raises(ValueError, match=r"'cce': expected probabilities .*from_logits=True"):
        cce.forward(np.array([[-1.0, 2.0]]), np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy.*to_categorical"):
        cce.forward(np.array([[0.5, 0.5]]), np.array([1]))
    scce = L.SparseCategoricalCrossentropy(name="s")
    with pytest.raises(ValueError, match=r"'s': expected class labels in \[0, 1\]"):
        scce.forward(np.array([[0.5, 0.5]]), np.array([2]))
    bce = L.BinaryCrossentropy(name="b")
    with pytest.raises(ValueError, match=r"'b': expected probabilities in \[0, 1\]"):
        bce.forward(np.array([[1.5]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match=r"'b': expected targets in \[0, 1\]"):
        bce.forward(np.array([[0.5]]), np.array([[2.0]]))
    mse = L.MeanSquaredError(name="m")
    with pytest.raises(ValueError, match=r"'m': expected target of shape \(2, 3\)"):
        mse.forward(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"expected `sample_weight` of shape \(2,\)"):
        mse.forward(np.zeros((2, 3)), np.zeros((2, 3)), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match=r"expected non-negative `sample_weight`"):
        mse.forward(np.zeros((2, 3)), np.zeros((2, 3)), sample_weight=[1.0, -1.0])


def test_keras_target_rank_rule_for_single_outputs():
    mse = L.MeanSquaredError(**F64)
    assert mse.forward(np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(2.5)


def test_loss_config_round_trips():
    loss = L.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, name="ce")
    again = L.CategoricalCrossentropy(**loss.get_config())
    assert again.get_config() == loss.get_config()
    assert L.SparseCategoricalCrossentropy(from_logits=True).get_config()["from_logits"]


# --------------------------------------------------------------------------- metrics
METRIC_CASES = {
    "acc_sparse": (M.SparseCategoricalAccuracy, PROBS, LABELS, 0.25, 0.2857142984867096),
    "acc_cat": (M.CategoricalAccuracy, PROBS, ONEHOT, 0.25, 0.2857142984867096),
    "acc_bin": (M.BinaryAccuracy, BPROB, BT, 0.75, 1.0),
    "top2": (lambda: M.TopKCategoricalAccuracy(k=2), LOGITS, ONEHOT, 0.5, 0.5714285969734192),
    "stop2": (
        lambda: M.SparseTopKCategoricalAccuracy(k=2),
        LOGITS,
        LABELS,
        0.5,
        0.5714285969734192,
    ),
    "mse": (M.MeanSquaredError, YP, YT, 1.751233458518982, 1.0708190202713013),
    "mae": (M.MeanAbsoluteError, YP, YT, 1.06333327293396, 0.8609523773193359),
}


@pytest.mark.parametrize("case", sorted(METRIC_CASES))
def test_metrics_give_keras_numbers(case):
    make, y_pred, y_true, plain, weighted = METRIC_CASES[case]
    m = make()
    m.update_state(y_true, y_pred)  # Keras's argument order
    assert m.result() == pytest.approx(plain, rel=1e-6)
    m.reset_state()
    m.update(y_pred[:2], y_true[:2], W[:2])  # layernet's order, in two batches
    m.update(y_pred[2:], y_true[2:], W[2:])
    assert m.result() == pytest.approx(weighted, rel=1e-6)


def test_accuracy_picks_like_keras():
    acc = M.get("accuracy")
    acc.update(PROBS, LABELS)
    assert acc.result() == 0.25
    for y_true, expected in ((ONEHOT, 0.25), (LABELS[:, None], 0.25)):
        acc.reset()
        acc.update(PROBS, y_true)
        assert acc.result() == expected
    acc.reset()
    acc.update(BPROB, BT)
    assert acc.result() == 0.75


def test_top_k_default_and_ties():
    assert M.get("top_k_categorical_accuracy").k == 5
    assert M.get("sparse_top_k_categorical_accuracy").k == 5
    m = M.SparseTopKCategoricalAccuracy(k=1)
    m.update(np.array([[0.5, 0.5, 0.0]]), np.array([1]))  # a tie with the largest counts
    assert m.result() == 1.0


def test_metric_names_follow_the_string_given():
    assert M.get("acc").name == "acc"
    assert M.get("mse").name == "mse"
    assert M.MeanSquaredError().name == "mean_squared_error"
    with pytest.raises(ValueError, match=r"`k`: expected a positive int, received 0"):
        M.TopKCategoricalAccuracy(k=0)


def test_mse_metric_and_mse_loss_are_the_same_number(rng):
    x, t = rng.standard_normal((7, 2, 3)), rng.standard_normal((7, 2, 3))
    m = M.get("mse")
    m.update(x, t)
    assert m.result() == pytest.approx(L.MeanSquaredError(**F64).forward(x, t), rel=1e-12)


@needs_torch
def test_metrics_against_torch(rng):
    x = torch.tensor(rng.standard_normal((20, 6)))
    labels = rng.integers(0, 6, 20)
    top3 = torch.topk(x, 3, dim=1).indices.numpy()
    m = M.SparseTopKCategoricalAccuracy(k=3)
    m.update(x.numpy(), labels)
    assert m.result() == pytest.approx(np.mean([lab in row for lab, row in zip(labels, top3)]))
