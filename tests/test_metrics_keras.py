"""Keras's stateful metrics: values against keras.metrics (JAX), summable states, names."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import layernet as ln
from layernet import metrics as M


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


def _data(kind, shape, rng):
    k = shape[-1]
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(float), rng.uniform(0, 1, shape)
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, shape[:-1])], rng.uniform(0, 1, shape)
    if kind == "labels":
        return rng.integers(0, k, shape[:-1]), rng.uniform(0, 1, shape)
    if kind == "exact":
        return rng.integers(0, 3, shape).astype(float), rng.integers(0, 3, shape).astype(float)
    return rng.normal(size=shape), rng.normal(size=shape)


# name -> (layernet factory, Keras factory name and kwargs, data kind, ranks allowed)
CASES = {
    "accuracy": ("Accuracy", {}, "exact"),
    "binary_accuracy": ("BinaryAccuracy", {"threshold": 0.3}, "binary"),
    "categorical_accuracy": ("CategoricalAccuracy", {}, "onehot"),
    "sparse_categorical_accuracy": ("SparseCategoricalAccuracy", {}, "labels"),
    "top_k": ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    "sparse_top_k": ("SparseTopKCategoricalAccuracy", {"k": 2}, "labels"),
    "mse": ("MeanSquaredError", {}, "normal"),
    "mae": ("MeanAbsoluteError", {}, "normal"),
    "mape": ("MeanAbsolutePercentageError", {}, "normal"),
    "rmse": ("RootMeanSquaredError", {}, "normal"),
    "precision": ("Precision", {}, "binary"),
    "precision_list": ("Precision", {"thresholds": [0.2, 0.5, 0.7]}, "binary"),
    "precision_top_k": ("Precision", {"top_k": 2}, "binary"),
    "recall_class": ("Recall", {"class_id": 1, "thresholds": 0.4}, "binary"),
    "recall": ("Recall", {}, "binary"),
    "tp": ("TruePositives", {}, "binary"),
    "tn": ("TrueNegatives", {"thresholds": [0.3, 0.6]}, "binary"),
    "fp": ("FalsePositives", {}, "binary"),
    "fn": ("FalseNegatives", {}, "binary"),
    "auc": ("AUC", {}, "binary"),
    "auc_pr": ("AUC", {"curve": "PR"}, "binary"),
    "auc_pr_minoring": ("AUC", {"curve": "PR", "summation_method": "minoring"}, "binary"),
    "auc_roc_majoring": ("AUC", {"summation_method": "majoring", "num_thresholds": 50}, "binary"),
    "auc_multi": ("AUC", {"multi_label": True}, "binary"),
    "auc_thresholds": ("AUC", {"thresholds": [0.1, 0.4, 0.45, 0.8]}, "binary"),
    "auc_logits": ("AUC", {"from_logits": True}, "binary"),
    "f1": ("F1Score", {}, "onehot"),
    "f1_macro": ("F1Score", {"average": "macro", "threshold": 0.5}, "binary"),
    "f1_micro": ("F1Score", {"average": "micro", "threshold": 0.4}, "binary"),
    "f1_weighted": ("F1Score", {"average": "weighted"}, "onehot"),
}


def _batches(case, shape, seed, weighted):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        t, p = _data(CASES[case][2], shape, rng)
        if case == "auc_logits":
            p = rng.normal(size=shape) * 3
        w = rng.uniform(0, 2, shape[0]) if weighted else None
        out.append((t, p, w))
    return out


def _keras_value(keras, case, batches):
    cls, kwargs, _ = CASES[case]
    m = getattr(keras.metrics, cls)(**kwargs)
    for t, p, w in batches:
        kw = {} if w is None else {"sample_weight": w.astype("float32")}
        m.update_state(t.astype("float32"), p.astype("float32"), **kw)
    return np.asarray(m.result())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_metrics_equal_keras(keras, case, weighted):
    cls, kwargs, _ = CASES[case]
    batches = _batches(case, (16, 4), 0, weighted)
    m = getattr(M, cls)(**kwargs)
    for t, p, w in batches:
        m.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(m.result(), _keras_value(keras, case, batches), rtol=2e-5, atol=2e-6)
    # the trainer's aliases: prediction first, reset
    again = getattr(M, cls)(**kwargs)
    for t, p, w in batches:
        again.update(p, t, w)
    np.testing.assert_allclose(again.result(), m.result(), rtol=1e-12)
    again.reset()
    assert all(not v.any() for v in again.variables)


@pytest.mark.parametrize(
    "case",
    [
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "binary_accuracy",
        "top_k",
        "sparse_top_k",
        "mse",
        "mae",
        "rmse",
        "precision",
        "auc",
    ],
)
def test_metrics_over_sequences_equal_keras(keras, case):
    """(batch, time, classes) outputs; weights one per (sample, step), as Keras needs."""
    cls, kwargs, _ = CASES[case]
    rng = np.random.default_rng(3)
    batches = [(*_data(CASES[case][2], (6, 5, 4), rng), None) for _ in range(2)]
    batches.append((*_data(CASES[case][2], (6, 5, 4), rng), rng.uniform(0, 2, (6, 5))))
    m = getattr(M, cls)(**kwargs)
    for t, p, w in batches:
        m.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(m.result(), _keras_value(keras, case, batches), rtol=2e-5)


def test_per_sample_weights_weigh_every_step():
    rng = np.random.default_rng(4)
    t, p = _data("labels", (6, 5, 4), rng)
    w = rng.uniform(0, 2, 6)
    a, b = M.SparseCategoricalAccuracy(), M.SparseCategoricalAccuracy()
    a.update_state(t, p, sample_weight=w)
    b.update_state(t, p, sample_weight=np.repeat(w[:, None], 5, axis=1))
    assert a.result() == pytest.approx(b.result(), rel=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_summed_states_give_the_global_value(case):
    """Data-parallel ranks: each sees a shard; summing the states gives the whole batch's value."""
    cls, kwargs, _ = CASES[case]
    (t, p, w), *_ = _batches(case, (24, 4), 1, weighted=True)
    whole = getattr(M, cls)(**kwargs)
    whole.update_state(t, p, sample_weight=w)
    ranks = [getattr(M, cls)(**kwargs) for _ in range(3)]
    for r, part in zip(ranks, np.array_split(np.arange(24), 3), strict=True):
        r.update_state(t[part], p[part], sample_weight=w[part])
    total = sum(M.pack_variables([r]) for r in ranks)
    M.unpack_variables([ranks[0]], total)
    np.testing.assert_allclose(ranks[0].result(), whole.result(), rtol=1e-12, atol=1e-12)


def test_mean_sum_and_wrapper_equal_keras(keras):
    rng = np.random.default_rng(5)
    values, w = rng.normal(size=(8, 3)), rng.uniform(0, 1, 8)
    for cls in ("Mean", "Sum"):
        ours, theirs = getattr(M, cls)(), getattr(keras.metrics, cls)()
        ours.update_state(values, sample_weight=w)
        ours.update_state(values[:, 0])
        theirs.update_state(values.astype("float32"), sample_weight=w.astype("float32"))
        theirs.update_state(values[:, 0].astype("float32"))
        assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-5)
    t, p = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    ours = M.MeanMetricWrapper(ln.losses.huber, delta=0.5)
    theirs = keras.metrics.MeanMetricWrapper(keras.losses.huber, delta=0.5)
    ours.update_state(t, p, sample_weight=w)
    theirs.update_state(t.astype("float32"), p.astype("float32"), sample_weight=w.astype("float32"))
    assert ours.name == "huber"
    assert ours.result() == pytest.approx(float(theirs.result()), rel=1e-5)


def test_get_names_objects_functions():
    assert isinstance(M.get("auc"), M.AUC)
    assert isinstance(M.get("precision"), M.Precision)
    assert isinstance(M.get("Recall"), M.Recall)
    assert isinstance(M.get("mape"), M.MeanAbsolutePercentageError)
    assert isinstance(M.get("f1_score"), M.F1Score)
    assert isinstance(M.get(M.AUC), M.AUC)
    assert M.get("acc").name == "acc"
    m = M.get("binary_crossentropy")
    m.update_state(np.array([[1.0], [0.0]]), np.array([[0.8], [0.4]]))
    assert m.result() == pytest.approx(
        ln.losses.BinaryCrossentropy(dtype="float64")(
            np.array([[1.0], [0.0]]), np.array([[0.8], [0.4]])
        ),
        rel=1e-12,
    )

    def worst(y_true, y_pred):
        return np.abs(y_true - y_pred).max(axis=-1)

    m = M.get(worst)
    assert isinstance(m, M.MeanMetricWrapper) and m.name == "worst"
    with pytest.raises(ValueError, match=r"compile: invalid value in `metrics`: expected one of"):
        M.get("no_such_metric")


def test_accuracy_string_picks_from_shapes_and_class_is_exact():
    auto = M.get("accuracy")
    auto.update_state(np.array([1, 0]), np.array([[0.2, 0.8], [0.3, 0.7]]))
    assert auto.result() == 0.5
    exact = M.Accuracy()
    exact.update_state(np.array([[1.0], [2.0]]), np.array([[1.0], [2.5]]))
    assert exact.result() == 0.5


def test_configs_round_trip_and_copies_are_independent():
    for cls, kwargs, _ in CASES.values():
        m = getattr(M, cls)(**kwargs)
        again = type(m).from_config(m.get_config())
        assert again.get_config() == m.get_config()
    m = M.Precision()
    m.update_state([1, 0], [0.9, 0.8])
    c = copy.deepcopy(m)
    c.reset_state()
    assert m.result() == 0.5 and c.result() == 0.0


def test_errors_name_the_metric():
    with pytest.raises(ValueError, match="precision: expected targets of the predictions' shape"):
        M.Precision().update_state(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="invalid value for `thresholds`"):
        M.Recall(thresholds=[0.5, 2.0])
    with pytest.raises(ValueError, match="invalid value for `curve`"):
        M.AUC(curve="XY")
    with pytest.raises(ValueError, match="invalid value for `average`"):
        M.F1Score(average="mean")
    with pytest.raises(ValueError, match="expected `sample_weight` of shape"):
        M.MeanSquaredError().update_state(np.zeros((3, 2)), np.zeros((3, 2)), np.ones(4))
