"""Sample weights as Keras 3 applies them: to the loss and `weighted_metrics`, not to `metrics`;
one weight per sample or per time step. Checked against Keras (JAX backend)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - another backend was imported first
    pytest.skip("the Keras oracle needs the JAX backend", allow_module_level=True)

RTOL = 1e-4


def _pair(build, compile_kwargs):
    """The same model under Keras and layernet, with Keras's initial weights copied."""
    k = build(keras)
    m = build(ln)
    m.set_weights(k.get_weights())
    k.compile(optimizer=keras.optimizers.SGD(0.1), **compile_kwargs(keras))
    m.compile(optimizer=ln.optimizers.SGD(0.1), **compile_kwargs(ln))
    return k, m


def _close(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(np.asarray(a[key], float), np.asarray(b[key], float), rtol=RTOL)


def _dense_classifier(K):
    inp = K.Input((5,))
    return K.Model(inp, K.layers.Dense(3)(K.layers.Dense(8, activation="relu")(inp)))


def _sparse_cce(K):
    return K.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture
def blobs(rng):
    x = rng.standard_normal((24, 5)).astype("float32")
    y = rng.integers(0, 3, 24)
    w = rng.random(24).astype("float32") * 2
    return x, y, w


def test_metrics_are_unweighted_and_weighted_metrics_weighted(blobs):
    x, y, w = blobs
    k, m = _pair(
        _dense_classifier,
        lambda K: {
            "loss": _sparse_cce(K),
            "metrics": ["accuracy"],
            "weighted_metrics": [
                "accuracy",
                K.metrics.SparseTopKCategoricalAccuracy(k=2),
            ],
        },
    )
    fit = dict(sample_weight=w, batch_size=8, epochs=2, shuffle=False, verbose=0)
    hk, hm = k.fit(x, y, **fit), m.fit(x, y, **fit)
    _close(hk.history, hm.history)
    assert {"weighted_accuracy", "sparse_top_k_categorical_accuracy"} <= set(hm.history)
    ek = k.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    em = m.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    _close(ek, em)
    assert em["accuracy"] != pytest.approx(em["weighted_accuracy"])


def test_class_weight_weighs_the_loss_not_the_metrics(blobs):
    x, y, _ = blobs
    k, m = _pair(_dense_classifier, lambda K: {"loss": _sparse_cce(K), "metrics": ["accuracy"]})
    fit = dict(class_weight={0: 0.2, 1: 1.0, 2: 3.0}, batch_size=8, epochs=2, shuffle=False)
    _close(k.fit(x, y, verbose=0, **fit).history, m.fit(x, y, verbose=0, **fit).history)
    np.testing.assert_allclose(m.get_weights()[0], k.get_weights()[0], rtol=RTOL, atol=1e-6)


def _sequence_tagger(K):
    inp = K.Input((6, 4))
    return K.Model(inp, K.layers.Dense(3)(K.layers.SimpleRNN(5, return_sequences=True)(inp)))


@pytest.mark.parametrize("shape", ["(N, T)", "(N, T, 1)"])
def test_one_weight_per_time_step(rng, shape):
    x = rng.standard_normal((10, 6, 4)).astype("float32")
    y = rng.integers(0, 3, (10, 6))
    w = rng.random((10, 6)).astype("float32")
    if shape == "(N, T, 1)":
        w = w[..., None]
    k, m = _pair(
        _sequence_tagger,
        lambda K: {
            "loss": _sparse_cce(K),
            "metrics": ["accuracy"],
            "weighted_metrics": ["accuracy"],
        },
    )
    fit = dict(sample_weight=w, batch_size=4, epochs=2, shuffle=False, verbose=0)
    _close(k.fit(x, y, **fit).history, m.fit(x, y, **fit).history)
    for a, b in zip(k.get_weights(), m.get_weights(), strict=True):
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-6)
    ek = k.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    _close(ek, m.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True))
    # train_on_batch takes them too
    tk = k.train_on_batch(x, y, sample_weight=w, return_dict=True)
    _close(tk, m.train_on_batch(x, y, sample_weight=w, return_dict=True))


def test_per_step_weights_equal_a_mask_when_zero_or_one(rng):
    """Zero-one weights per step give the loss of the weighted entries alone, as a sum."""
    x = rng.standard_normal((4, 6, 4))
    y = rng.integers(0, 3, (4, 6))
    w = (rng.random((4, 6)) > 0.3).astype(float)
    model = _sequence_tagger(ln)
    model.compile("sgd", ln.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64"))
    z = model.evaluate(x, y, sample_weight=w, verbose=0)
    logits = model.predict(x, verbose=0).astype(float)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    assert z == pytest.approx((per * w).sum() / w.size, rel=1e-5)


def test_weights_of_another_length_of_steps_are_refused(rng):
    model = _sequence_tagger(ln)
    model.compile("sgd", ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.standard_normal((4, 6, 4))
    y = rng.integers(0, 3, (4, 6))
    with pytest.raises(ValueError, match=r"expected `sample_weight` of shape \(4,\).*\(4, 6\)"):
        model.fit(x, y, sample_weight=np.ones((4, 5)), verbose=0)
    with pytest.raises(ValueError, match=r"fit: expected `sample_weight` of shape \(4,\)"):
        model.fit(x, y, sample_weight=np.ones((3, 6)), verbose=0)


def _two_outputs(K):
    inp = K.Input((5,), name="x")
    h = K.layers.Dense(6, activation="relu")(inp)
    return K.Model(inp, {"a": K.layers.Dense(1, name="a")(h), "b": K.layers.Dense(1, name="b")(h)})


def test_names_of_weighted_metrics_with_several_outputs(blobs):
    """Keras's names: a weighted metric whose name is taken becomes `weighted_<name>`."""
    x, _, w = blobs
    ya = x[:, :1] * 2.0
    yb = x[:, 1:2] - 1.0
    k, m = _pair(
        _two_outputs,
        lambda K: {
            "loss": {"a": "mse", "b": "mse"},
            "metrics": {"a": ["mae"]},
            "weighted_metrics": {"a": ["mae"], "b": ["mae"]},
        },
    )
    fit = dict(sample_weight=w, batch_size=8, epochs=1, shuffle=False, verbose=0)
    hk = k.fit(x, {"a": ya, "b": yb}, **fit)
    hm = m.fit(x, {"a": ya, "b": yb}, **fit)
    assert {"a_mae", "a_weighted_mae", "b_mae"} <= set(hm.history)
    _close(hk.history, hm.history)


def test_weighted_metrics_survive_saving(tmp_path, blobs):
    x, y, w = blobs
    model = _dense_classifier(ln)
    model.compile(
        "sgd",
        ln.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    back = ln.load_model(path)
    assert back.output_metric_weighting == [[False, True]]
    a = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    b = back.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert a == pytest.approx(b)
    assert set(b) == {"loss", "accuracy", "weighted_accuracy"}


def test_weighted_metrics_must_be_a_list():
    model = _dense_classifier(ln)
    with pytest.raises(ValueError, match=r"compile: invalid value for `weighted_metrics`"):
        model.compile("sgd", "mse", weighted_metrics="accuracy")
