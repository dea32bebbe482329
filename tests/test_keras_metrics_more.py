"""Keras's probabilistic, hinge, regression, correlation, IoU and "at" metrics against Keras (JAX).

Every class is updated with the same batches as its ``keras.metrics`` twin (several
``update_state`` calls, with and without sample weights, zero weights, ties at the
thresholds) and ``result()`` is compared in float32 precision.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import metrics as M


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


def _f32(*arrays):
    """Arrays that float32 holds exactly, so both sides see the same numbers."""
    return tuple(
        None if a is None else np.asarray(a, np.float32).astype(np.float64) for a in arrays
    )


def _probs(rng, shape):
    p = rng.uniform(0.05, 1, shape)
    return p / p.sum(axis=-1, keepdims=True)


def _data(kind, shape, rng):
    k = shape[-1]
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(float), rng.uniform(0, 1, shape)
    if kind == "binary_logits":
        return rng.integers(0, 2, shape).astype(float), rng.normal(0, 2, shape)
    if kind == "ties":  # predictions exactly at the thresholds 0, 1/4, ..., 1
        return rng.integers(0, 2, shape).astype(float), rng.integers(0, 5, shape) / 4
    if kind == "onehot":
        return np.eye(k)[rng.integers(0, k, shape[:-1])], _probs(rng, shape)
    if kind == "onehot_logits":
        return np.eye(k)[rng.integers(0, k, shape[:-1])], rng.normal(0, 2, shape)
    if kind == "soft":
        return _probs(rng, shape), _probs(rng, shape)
    if kind == "labels":
        return rng.integers(0, k, shape[:-1]), _probs(rng, shape)
    if kind == "labels_logits":
        return rng.integers(0, k, shape[:-1]), rng.normal(0, 2, shape)
    if kind == "class_axis_1":  # (N, classes, T): one-hot along axis 1
        onehot = np.eye(shape[1])[rng.integers(0, shape[1], (shape[0], shape[2]))]
        return np.moveaxis(onehot, -1, 1), np.moveaxis(_probs(rng, onehot.shape), -1, 1)
    if kind == "labels_axis_1":
        return rng.integers(0, shape[1], (shape[0], shape[2])), rng.normal(size=shape)
    if kind == "counts":
        return rng.poisson(2.0, shape).astype(float), rng.uniform(0.1, 4, shape)
    if kind == "positive":
        return rng.uniform(0, 3, shape), rng.uniform(0, 3, shape)
    if kind == "ids":  # class ids, some outside [0, 4) (left out)
        return rng.integers(0, 4, shape), rng.integers(-1, 5, shape)
    if kind == "scores":  # one-hot targets and score predictions for the one-hot IoUs
        return np.eye(k)[rng.integers(0, k, shape[:-1])], rng.uniform(0, 1, shape)
    return rng.normal(size=shape), rng.normal(size=shape)


# case -> (class name, kwargs, data kind, batch shape, extra kwargs for Keras only)
CASES = {
    "bce": ("BinaryCrossentropy", {}, "binary", (12, 3), {}),
    "bce_logits_smooth": (
        "BinaryCrossentropy",
        {"from_logits": True, "label_smoothing": 0.2},
        "binary_logits",
        (12, 3),
        {},
    ),
    "cce": ("CategoricalCrossentropy", {}, "onehot", (12, 4), {}),
    "cce_logits_smooth": (
        "CategoricalCrossentropy",
        {"from_logits": True, "label_smoothing": 0.1},
        "onehot_logits",
        (12, 4),
        {},
    ),
    "cce_axis_1": ("CategoricalCrossentropy", {"axis": 1}, "class_axis_1", (6, 4, 3), {}),
    "scce": ("SparseCategoricalCrossentropy", {}, "labels", (12, 4), {}),
    "scce_logits": (
        "SparseCategoricalCrossentropy",
        {"from_logits": True},
        "labels_logits",
        (12, 4),
        {},
    ),
    "scce_ignore": (
        "SparseCategoricalCrossentropy",
        {"from_logits": True, "ignore_class": 2},
        "labels_logits",
        (12, 4),
        {},
    ),
    "kld": ("KLDivergence", {}, "soft", (12, 4), {}),
    "poisson": ("Poisson", {}, "counts", (12, 3), {}),
    "cosine": ("CosineSimilarity", {}, "normal", (12, 3), {}),
    "cosine_axis_1": ("CosineSimilarity", {"axis": 1}, "normal", (6, 4, 2), {}),
    "hinge": ("Hinge", {}, "binary", (12, 3), {}),
    "squared_hinge": ("SquaredHinge", {}, "binary", (12, 3), {}),
    "categorical_hinge": ("CategoricalHinge", {}, "onehot", (12, 4), {}),
    "logcosh": ("LogCoshError", {}, "normal", (12, 3), {}),
    "msle": ("MeanSquaredLogarithmicError", {}, "positive", (12, 3), {}),
    "r2": ("R2Score", {}, "normal", (12, 3), {}),
    "r2_none": ("R2Score", {"class_aggregation": None}, "normal", (12, 3), {}),
    "r2_variance": (
        "R2Score",
        {"class_aggregation": "variance_weighted_average"},
        "normal",
        (12, 3),
        {},
    ),
    "r2_adjusted": ("R2Score", {"num_regressors": 4}, "normal", (12, 3), {}),
    "pearson": ("PearsonCorrelation", {}, "normal", (12, 5), {}),
    "pearson_axis_0": ("PearsonCorrelation", {"axis": 0}, "normal", (12, 5), {}),
    "concordance": ("ConcordanceCorrelation", {}, "normal", (12, 5), {}),
    "iou": (
        "IoU",
        {"num_classes": 4, "target_class_ids": [0, 2]},
        "ids",
        (12, 3),
        {"dtype": "float32"},
    ),
    "iou_ignore": (
        "IoU",
        {"num_classes": 4, "target_class_ids": [1, 2, 3], "ignore_class": 1},
        "ids",
        (12, 3),
        {"dtype": "float32"},
    ),
    "iou_scores": (
        "IoU",
        {
            "num_classes": 4,
            "target_class_ids": [0, 1],
            "sparse_y_true": False,
            "sparse_y_pred": False,
        },
        "scores",
        (12, 4),
        {"dtype": "float32"},
    ),
    "mean_iou": ("MeanIoU", {"num_classes": 4}, "ids", (12, 3), {"dtype": "float32"}),
    "mean_iou_ignore": (
        "MeanIoU",
        {"num_classes": 4, "ignore_class": 0},
        "ids",
        (12, 3),
        {"dtype": "float32"},
    ),
    "binary_iou": ("BinaryIoU", {}, "binary", (12, 3), {"dtype": "float32"}),
    "binary_iou_threshold": (
        "BinaryIoU",
        {"target_class_ids": [1], "threshold": 0.5},
        "ties",
        (12, 3),
        {"dtype": "float32"},
    ),
    "one_hot_iou": (
        "OneHotIoU",
        {"num_classes": 4, "target_class_ids": [0, 3]},
        "scores",
        (12, 4),
        {"dtype": "float32"},
    ),
    "one_hot_mean_iou": (
        "OneHotMeanIoU",
        {"num_classes": 4},
        "scores",
        (12, 4),
        {"dtype": "float32"},
    ),
    "one_hot_mean_iou_ignore": (
        "OneHotMeanIoU",
        {"num_classes": 4, "ignore_class": 3},
        "scores",
        (12, 4),
        {"dtype": "float32"},
    ),
    "precision_at_recall": ("PrecisionAtRecall", {"recall": 0.6}, "binary", (12, 3), {}),
    "precision_at_recall_ties": (
        "PrecisionAtRecall",
        {"recall": 0.5, "num_thresholds": 5},
        "ties",
        (12, 3),
        {},
    ),
    "precision_at_recall_class": (
        "PrecisionAtRecall",
        {"recall": 0.3, "class_id": 1, "num_thresholds": 20},
        "binary",
        (12, 3),
        {},
    ),
    "recall_at_precision": ("RecallAtPrecision", {"precision": 0.5}, "binary", (12, 3), {}),
    "recall_at_precision_ties": (
        "RecallAtPrecision",
        {"precision": 0.6, "num_thresholds": 5},
        "ties",
        (12, 3),
        {},
    ),
    "sensitivity_at_specificity": (
        "SensitivityAtSpecificity",
        {"specificity": 0.7},
        "binary",
        (12, 3),
        {},
    ),
    "sensitivity_at_specificity_ties": (
        "SensitivityAtSpecificity",
        {"specificity": 0.5, "num_thresholds": 5},
        "ties",
        (12, 3),
        {},
    ),
    "sensitivity_at_specificity_one": (
        "SensitivityAtSpecificity",
        {"specificity": 0.4, "num_thresholds": 1},
        "ties",
        (12, 3),
        {},
    ),
    "specificity_at_sensitivity": (
        "SpecificityAtSensitivity",
        {"sensitivity": 0.4},
        "binary",
        (12, 3),
        {},
    ),
    "specificity_at_sensitivity_ties": (
        "SpecificityAtSensitivity",
        {"sensitivity": 0.75, "num_thresholds": 5, "class_id": 2},
        "ties",
        (12, 3),
        {},
    ),
}

NEW_CLASSES = {
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "CosineSimilarity",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "LogCoshError",
    "MeanSquaredLogarithmicError",
    "R2Score",
    "IoU",
    "MeanIoU",
    "BinaryIoU",
    "OneHotIoU",
    "OneHotMeanIoU",
    "PearsonCorrelation",
    "ConcordanceCorrelation",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
}


NOT_PER_SAMPLE = {"pearson_axis_0"}


def _batches(case, weighting, seed=0):
    """Three batches; weights none, random, or with zeros (one batch weighs nothing at all)."""
    _, _, kind, shape, _ = CASES[case]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(3):
        t, p = _data(kind, shape, rng)
        w = None
        if weighting == "random":
            w = rng.uniform(0, 2, shape[0])
        elif weighting == "zeros":
            w = np.zeros(shape[0]) if i == 1 else rng.integers(0, 3, shape[0]).astype(float)
        t, p, w = _f32(t, p, w)
        if kind in ("labels", "labels_logits", "labels_axis_1", "ids"):
            t = t.astype(np.int64)
        if kind == "ids":
            p = p.astype(np.int64)
        out.append((t, p, w))
    return out


def _keras_result(keras, case, batches):
    cls, kwargs, _, _, extra = CASES[case]
    m = getattr(keras.metrics, cls)(**kwargs, **extra)
    for t, p, w in batches:
        if w is not None and cls in ("IoU", "MeanIoU", "BinaryIoU") and t.ndim > 1:
            if kwargs.get("sparse_y_true", True):  # Keras wants one weight per class id
                w = np.broadcast_to(w[:, None], t.shape)
        kw = {} if w is None else {"sample_weight": w.astype("float32")}
        tt = t.astype("int32") if t.dtype.kind == "i" else t.astype("float32")
        pp = p.astype("int32") if p.dtype.kind == "i" else p.astype("float32")
        m.update_state(tt, pp, **kw)
    return np.asarray(m.result(), dtype=np.float64)


def _ours(case, batches):
    cls, kwargs, _, _, _ = CASES[case]
    m = getattr(M, cls)(**kwargs)
    for t, p, w in batches:
        m.update_state(t, p, sample_weight=w)
    return m


def test_every_new_name_has_an_oracle_case():
    assert {c[0] for c in CASES.values()} == NEW_CLASSES
    for name in NEW_CLASSES:
        assert issubclass(getattr(M, name), M.Metric)


@pytest.mark.parametrize("weighting", [None, "random", "zeros"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_metric_equals_keras(keras, case, weighting):
    if case in NOT_PER_SAMPLE and weighting:
        pytest.skip("one value per feature, not per sample: Keras refuses sample weights too")
    batches = _batches(case, weighting)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's float-weights-on-int-dtype warning
        expected = _keras_result(keras, case, batches)
        ours = _ours(case, batches)
        got = np.asarray(ours.result(), dtype=np.float64)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6)
    # the trainer's aliases: prediction first, then reset empties the state
    cls, kwargs, _, _, _ = CASES[case]
    again = getattr(M, cls)(**kwargs)
    for t, p, w in batches:
        again.update(p, t, w)
    np.testing.assert_allclose(np.asarray(again.result()), got, rtol=1e-12, atol=0)
    again.reset_state()
    assert all(not np.any(v) for v in again.variables)


@pytest.mark.parametrize("case", sorted(set(CASES) - NOT_PER_SAMPLE))
def test_summed_states_give_the_whole_batch(case):
    """Data-parallel ranks: the states of shards, summed, give the metric of all the data."""
    (t, p, w), *_ = _batches(case, "random", seed=1)
    cls, kwargs, _, _, _ = CASES[case]
    whole = getattr(M, cls)(**kwargs)
    whole.update_state(t, p, sample_weight=w)
    ranks = [getattr(M, cls)(**kwargs) for _ in range(3)]
    for r, part in zip(ranks, np.array_split(np.arange(len(p)), 3), strict=True):
        r.update_state(t[part], p[part], sample_weight=w[part])
    M.unpack_variables([ranks[0]], sum(M.pack_variables([r]) for r in ranks))
    np.testing.assert_allclose(
        np.asarray(ranks[0].result()), np.asarray(whole.result()), rtol=1e-10, atol=1e-12
    )


FUNCTIONS = {
    "binary_crossentropy": ("binary", (6, 3), {"label_smoothing": 0.1}),
    "categorical_crossentropy": ("onehot_logits", (6, 4), {"from_logits": True}),
    "sparse_categorical_crossentropy": ("labels", (6, 4), {}),
    "binary_focal_crossentropy": (
        "binary",
        (6, 3),
        {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5},
    ),
    "categorical_focal_crossentropy": ("onehot", (6, 4), {"alpha": 0.4, "gamma": 2.5}),
    "kl_divergence": ("soft", (6, 4), {}),
    "poisson": ("counts", (6, 3), {}),
    "hinge": ("binary", (6, 3), {}),
    "squared_hinge": ("binary", (6, 3), {}),
    "categorical_hinge": ("onehot", (6, 4), {}),
    "log_cosh": ("normal", (6, 3), {}),
    "huber": ("normal", (6, 3), {"delta": 0.7}),
    "pearson_correlation": ("normal", (6, 5), {}),
    "concordance_correlation": ("normal", (6, 5), {"axis": 0}),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_metric_functions_equal_keras(keras, name):
    kind, shape, kwargs = FUNCTIONS[name]
    t, p = _f32(*_data(kind, shape, np.random.default_rng(7)))
    if kind == "labels":
        t = t.astype(np.int64)
    ours = getattr(M, name)(t, p, **kwargs)
    theirs = getattr(keras.metrics, name)(t.astype("float32"), p.astype("float32"), **kwargs)
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-5, atol=2e-6)
    if not kwargs:  # compile's strings give the weighted mean of the function
        m = M.get(name)
        w = np.linspace(0, 2, shape[0])
        m.update_state(t, p, sample_weight=w)
        values = np.asarray(ours).reshape(shape[0], -1).mean(axis=1)
        assert m.result() == pytest.approx(np.sum(values * w) / np.sum(w), rel=1e-6)


@pytest.mark.parametrize(
    "name",
    [
        "binary_crossentropy",
        "bce",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
        "kl_divergence",
        "log_cosh_error",
        "poisson",
        "hinge",
        "squared_hinge",
        "categorical_hinge",
        "msle",
        "cosine_similarity",
        "r2_score",
        "pearson_correlation",
        "concordance_correlation",
    ],
)
def test_strings_resolve_like_keras_get(keras, name):
    ours, theirs = M.get(name), keras.metrics.get(name)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == name


def test_short_names_keras_get_lacks():
    assert type(M.get("kld")) is M.KLDivergence and M.get("kld").name == "kld"
    assert type(M.get("logcosh")) is M.LogCoshError
    assert type(M.get("log_cosh_error")) is M.LogCoshError


def test_functions_given_as_strings_are_mean_wrappers():
    for name in (
        "huber",
        "log_cosh",
        "binary_focal_crossentropy",
        "categorical_focal_crossentropy",
    ):
        m = M.get(name)
        assert isinstance(m, M.MeanMetricWrapper) and m.name == name and m.direction == "down"


def test_directions_are_keras_ones():
    down = ["BinaryCrossentropy", "KLDivergence", "Poisson", "Hinge", "LogCoshError"]
    up = ["CosineSimilarity", "PearsonCorrelation", "R2Score", "MeanIoU", "PrecisionAtRecall"]
    assert all(getattr(M, n).direction == "down" for n in down)
    assert all(getattr(M, n).direction == "up" for n in up)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trips_and_serialize(case):
    cls, kwargs, _, _, _ = CASES[case]
    m = getattr(M, cls)(**kwargs, name="mine")
    config = m.get_config()
    again = type(m).from_config(config)
    assert again.get_config() == config and again.name == "mine"
    back = M.deserialize(M.serialize(m))
    assert type(back) is type(m) and back.get_config() == config
    batches = _batches(case, None if case in NOT_PER_SAMPLE else "random")
    for t, p, w in batches:
        m.update_state(t, p, w)
        back.update_state(t, p, w)
    np.testing.assert_array_equal(np.asarray(back.result()), np.asarray(m.result()))
    c = copy.deepcopy(m)
    c.reset_state()
    assert all(not np.any(v) for v in c.variables)


def test_config_keys_are_keras_ones(keras):
    pairs = [
        ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
        ("SparseCategoricalCrossentropy", {"ignore_class": 0}),
        ("R2Score", {"num_regressors": 2}),
        ("IoU", {"num_classes": 3, "target_class_ids": [1]}),
        ("MeanIoU", {"num_classes": 3}),
        ("BinaryIoU", {}),
        ("OneHotIoU", {"num_classes": 3, "target_class_ids": [1]}),
        ("OneHotMeanIoU", {"num_classes": 3}),
        ("PrecisionAtRecall", {"recall": 0.5}),
        ("SpecificityAtSensitivity", {"sensitivity": 0.5}),
        ("PearsonCorrelation", {"axis": 0}),
    ]
    for cls, kwargs in pairs:
        ours = getattr(M, cls)(**kwargs).get_config()
        theirs = getattr(keras.metrics, cls)(**kwargs).get_config()
        assert set(ours) == set(theirs), cls
        for key in set(ours) - {"dtype", "name"}:
            assert ours[key] == theirs[key], (cls, key)
        assert theirs["name"].startswith(ours["name"])  # Keras numbers unnamed IoUs


def test_deserialize_names_custom_objects_and_errors():
    assert isinstance(M.deserialize("kl_divergence"), M.KLDivergence)

    class Mine(M.Mean):
        pass

    m = M.deserialize(
        {"class_name": "Mine", "config": {"name": "x"}}, custom_objects={"Mine": Mine}
    )
    assert type(m) is Mine and m.name == "x"
    with pytest.raises(ValueError, match="deserialize: unknown metric class 'Nope'"):
        M.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="deserialize: invalid value for `config`"):
        M.deserialize(3)
    with pytest.raises(ValueError, match="serialize: invalid value for `metric`"):
        M.serialize("mse")


def test_r2_score_warns_and_falls_back_like_keras(keras):
    t, p = _f32(*_data("normal", (3, 1), np.random.default_rng(2)))
    ours = M.R2Score(num_regressors=5)
    ours.update_state(t, p)
    plain = M.R2Score()
    plain.update_state(t, p)
    with pytest.warns(UserWarning, match="more regressors"):
        assert ours.result() == plain.result()
    theirs = keras.metrics.R2Score()
    theirs.update_state(t.astype("float32"), p.astype("float32"))
    assert plain.result() == pytest.approx(float(theirs.result()), rel=1e-5)


def test_iou_with_no_data_is_zero_and_weights_are_not_truncated():
    m = M.MeanIoU(num_classes=3)
    assert m.result() == 0.0
    m.update_state([0, 1], [0, 1], sample_weight=[0.5, 0.25])
    assert m.variables[0][0, 0] == 0.5 and m.variables[0][1, 1] == 0.25
    assert m.result() == pytest.approx(1.0, rel=1e-6)


def test_errors_name_the_metric_and_argument():
    cases = [
        (
            lambda: M.BinaryCrossentropy(from_logits=1),
            r"BinaryCrossentropy: invalid value for `from_logits`",
        ),
        (lambda: M.CategoricalCrossentropy(label_smoothing=2), r"`label_smoothing`"),
        (
            lambda: M.SparseCategoricalCrossentropy(ignore_class=1.5),
            r"`ignore_class`: expected None or an int",
        ),
        (lambda: M.CosineSimilarity(axis="x"), r"CosineSimilarity: invalid value for `axis`"),
        (
            lambda: M.R2Score(class_aggregation="mean"),
            r"R2Score: invalid value for `class_aggregation`",
        ),
        (lambda: M.R2Score(num_regressors=-1), r"`num_regressors`: expected an int >= 0"),
        (
            lambda: M.IoU(num_classes=0, target_class_ids=[0]),
            r"IoU: invalid value for `num_classes`",
        ),
        (
            lambda: M.IoU(num_classes=2, target_class_ids=[2]),
            r"IoU: invalid value for `target_class_ids`",
        ),
        (
            lambda: M.MeanIoU(num_classes=2, sparse_y_true="yes"),
            r"MeanIoU: invalid value for `sparse_y_true`",
        ),
        (lambda: M.BinaryIoU(threshold="half"), r"BinaryIoU: invalid value for `threshold`"),
        (lambda: M.PrecisionAtRecall(1.5), r"PrecisionAtRecall: invalid value for `recall`"),
        (lambda: M.RecallAtPrecision(-0.1), r"RecallAtPrecision: invalid value for `precision`"),
        (
            lambda: M.SensitivityAtSpecificity(0.5, num_thresholds=0),
            r"`num_thresholds`: expected a positive int",
        ),
        (lambda: M.SpecificityAtSensitivity(0.5, class_id=-1), r"`class_id`: expected None"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_shape_errors_name_the_metric():
    with pytest.raises(ValueError, match=r"r2_score: expected 2-D targets and predictions"):
        M.R2Score().update_state(np.zeros((4, 2, 2)), np.zeros((4, 2, 2)))
    r2 = M.R2Score()
    r2.update_state(np.zeros((4, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"r2_score: expected 2 outputs \(as before\)"):
        r2.update_state(np.zeros((4, 3)), np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"mean_io_u: expected as many class ids"):
        M.MeanIoU(3).update_state([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match=r"mean_io_u: expected integer class ids in `y_true`"):
        M.MeanIoU(3).update_state([0.5, 1], [0, 1])
    with pytest.raises(
        ValueError, match=r"pearson_correlation: expected targets of the predictions"
    ):
        M.PearsonCorrelation().update_state(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"categorical_crossentropy: invalid value for `axis`"):
        M.CategoricalCrossentropy(axis=3).update_state(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match=r"precision_at_recall: invalid value for `class_id`"):
        M.PrecisionAtRecall(0.5, class_id=4).update_state(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected `sample_weight` of shape"):
        M.KLDivergence().update_state(np.eye(3), np.eye(3), sample_weight=np.ones(4))


# ------------------------------------------------------------------ compile, fit, evaluate
def test_fit_and_evaluate_logs_equal_keras_history(keras):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(48, 5)).astype("float32")
    y = rng.integers(0, 3, 48).astype("int32")
    kernel = (rng.normal(size=(5, 3)) * 0.3).astype("float32")
    bias = np.zeros(3, "float32")

    def metrics(lib):
        return [
            "sparse_categorical_crossentropy",
            lib.metrics.SparseCategoricalCrossentropy(ignore_class=0, name="xent"),
            lib.metrics.MeanIoU(num_classes=3, sparse_y_pred=False, name="miou", dtype="float32"),
            lib.metrics.OneHotMeanIoU(num_classes=3, name="onehot_miou", dtype="float32"),
        ]

    y_onehot = np.eye(3, dtype="float32")[y]
    ours = ln.Sequential([ln.Input((5,)), ln.Dense(3, activation="softmax")])
    ours.set_weights([kernel.astype(np.float64), bias.astype(np.float64)])
    theirs = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    theirs.set_weights([kernel, bias])
    results = []
    for model, lib, opt in ((ours, ln, ln.SGD), (theirs, keras, keras.optimizers.SGD)):
        model.compile(
            optimizer=opt(learning_rate=0.1),
            loss="sparse_categorical_crossentropy",
            metrics=metrics(lib)[:3],
        )
        h = model.fit(
            x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, validation_data=(x, y)
        )
        # evaluate with one-hot targets: metrics that take them
        model.compile(
            optimizer=opt(learning_rate=0.1),
            loss="categorical_crossentropy",
            metrics=[metrics(lib)[3], "kl_divergence", "categorical_hinge"],
        )
        e = model.evaluate(x, y_onehot, batch_size=16, verbose=0, return_dict=True)
        results.append((h.history, e))
    (h1, e1), (h2, e2) = results
    assert set(h1) == set(h2) and len(h2) == 8
    for key in h2:
        np.testing.assert_allclose(h1[key], h2[key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert set(e1) == set(e2)
    for key in e2:
        assert e1[key] == pytest.approx(e2[key], rel=1e-4, abs=1e-5), key


def test_regression_metrics_in_fit_equal_keras_history(keras):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(40, 2))).astype("float32")
    kernel = (rng.normal(size=(4, 2)) * 0.3).astype("float32")
    weights = [kernel, np.zeros(2, "float32")]
    names = [
        "log_cosh_error",
        "r2_score",
        "pearson_correlation",
        "concordance_correlation",
        "cosine_similarity",
    ]
    ours = ln.Sequential([ln.Input((4,)), ln.Dense(2)])
    ours.set_weights([w.astype(np.float64) for w in weights])
    ours.compile(optimizer=ln.SGD(learning_rate=0.05), loss="mse", metrics=names)
    theirs = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    theirs.set_weights(weights)
    theirs.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=names)
    h1 = ours.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    h2 = theirs.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0)
    assert set(h1.history) == set(h2.history)
    for key in h2.history:
        np.testing.assert_allclose(
            h1.history[key], h2.history[key], rtol=1e-4, atol=1e-5, err_msg=key
        )


def test_class_axis_argument_equals_moving_the_axis_last():
    rng = np.random.default_rng(13)
    labels, logits = rng.integers(0, 4, (5, 3)), rng.normal(size=(5, 4, 3))
    a = M.SparseCategoricalCrossentropy(from_logits=True, axis=1)
    b = M.SparseCategoricalCrossentropy(from_logits=True)
    a.update_state(labels, logits)
    b.update_state(labels, np.moveaxis(logits, 1, -1))
    assert a.result() == b.result()
    t, p = _data("class_axis_1", (5, 4, 3), rng)
    np.testing.assert_array_equal(
        M.binary_crossentropy(t, p, axis=1),
        M.binary_crossentropy(np.moveaxis(t, 1, -1), np.moveaxis(p, 1, -1)),
    )


def test_r2_score_makes_its_whole_state_at_the_first_update():
    """Data-parallel training sums the states a metric makes in its first step as a block."""
    m = M.R2Score()
    assert m.variables == [] and m.result() == 0.0
    m.update_state(np.zeros((2, 3)), np.ones((2, 3)))
    assert [v.shape for v in m.variables] == [(), (3,), (3,), (3,), (3,)]


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 20),
    k=st.integers(2, 5),
    cut=st.floats(0, 1),
    seed=st.integers(0, 2**16),
    which=st.sampled_from(
        ["r2", "mean_iou", "one_hot_iou", "precision_at_recall", "scce_ignore", "pearson"]
    ),
)
def test_any_split_of_any_batch_sums_to_the_whole(n, k, cut, seed, which):
    """Over batch sizes, class counts and split points: two shards' states add to the whole."""
    rng = np.random.default_rng(seed)
    make = {
        "r2": (lambda: M.R2Score(class_aggregation=None), "normal"),
        "mean_iou": (lambda: M.MeanIoU(num_classes=k, sparse_y_pred=False), "labels"),
        "one_hot_iou": (lambda: M.OneHotIoU(num_classes=k, target_class_ids=[0]), "scores"),
        "precision_at_recall": (lambda: M.PrecisionAtRecall(0.5, num_thresholds=7), "binary"),
        "scce_ignore": (lambda: M.SparseCategoricalCrossentropy(ignore_class=0), "labels"),
        "pearson": (lambda: M.PearsonCorrelation(), "normal"),
    }[which]
    t, p = _data(make[1], (n, k), rng)
    w = rng.uniform(0, 2, n)
    whole, a, b = make[0](), make[0](), make[0]()
    whole.update_state(t, p, sample_weight=w)
    i = 1 + round(cut * (n - 2))  # both shards have samples
    a.update_state(t[:i], p[:i], sample_weight=w[:i])
    b.update_state(t[i:], p[i:], sample_weight=w[i:])
    M.unpack_variables([a], M.pack_variables([a]) + M.pack_variables([b]))
    np.testing.assert_allclose(
        np.asarray(a.result()), np.asarray(whole.result()), rtol=1e-9, atol=1e-12
    )
