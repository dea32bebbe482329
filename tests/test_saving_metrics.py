"""Model files keep compiled metrics that a name alone cannot rebuild (their configs)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import layernet as ln


def _classifier():
    inp = ln.Input((4,))
    return ln.Model(inp, ln.Dense(3, activation="softmax", seed=0)(inp))


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 4)).astype("float32"), rng.integers(0, 3, 30)


def test_metrics_with_arguments_survive_saving(tmp_path):
    model = _classifier()
    model.compile(
        "sgd",
        "sparse_categorical_crossentropy",
        metrics=[
            "accuracy",
            ln.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2"),
            ln.metrics.MeanIoU(num_classes=3, sparse_y_pred=False),
        ],
        weighted_metrics=[ln.metrics.SparseCategoricalCrossentropy(name="xent")],
    )
    x, y = _data()
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    model.save(path)
    back = ln.load_model(path)
    assert [m.name for m in back.metrics] == [m.name for m in model.metrics]
    assert back.output_metric_weighting == model.output_metric_weighting
    for a, b in zip(model.metrics, back.metrics, strict=True):
        assert type(a) is type(b) and a.get_config() == b.get_config()
    w = np.linspace(0.1, 1, 30)
    got = back.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    want = model.evaluate(x, y, sample_weight=w, verbose=0, return_dict=True)
    assert got == pytest.approx(want)


def test_plain_names_stay_names_in_the_file(tmp_path):
    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy", "mae"])
    model.save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as zf, zf.open("header.npy") as f:
        header = json.loads(np.lib.format.read_array(f).tobytes())
    assert header["compile"]["metrics"] == ["accuracy", "mae"]


def test_a_malformed_metrics_entry_is_refused(tmp_path, monkeypatch):
    from layernet import saving

    model = _classifier()
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    monkeypatch.setattr(saving, "_metric_entry", lambda m: {"class_name": 3, "config": []})
    model.save(tmp_path / "bad.npz")
    with pytest.raises(ln.saving.ModelFileError, match=r"malformed metrics entry"):
        ln.load_model(tmp_path / "bad.npz")
    monkeypatch.setattr(saving, "_metric_entry", lambda m: {"class_name": "Nope", "config": {}})
    model.save(tmp_path / "unknown.npz")
    with pytest.raises(ln.saving.ModelFileError, match=r"unknown metric class 'Nope'"):
        ln.load_model(tmp_path / "unknown.npz")


def test_several_outputs_keep_their_metrics(tmp_path):
    inp = ln.Input((4,), name="x")
    h = ln.Dense(5, seed=0)(inp)
    model = ln.Model(inp, {"a": ln.Dense(1, name="a")(h), "b": ln.Dense(1, name="b")(h)})
    model.compile(
        "sgd",
        {"a": "mse", "b": "mse"},
        metrics={"a": [ln.metrics.R2Score()], "b": ["mae"]},
        weighted_metrics={"b": [ln.metrics.LogCoshError(name="lc")]},
    )
    x, _ = _data()
    model.fit(x, {"a": x[:, :1], "b": x[:, 1:2]}, epochs=1, verbose=0)
    model.save(tmp_path / "two.npz")
    back = ln.load_model(tmp_path / "two.npz")
    assert [[type(m).__name__ for m in ms] for ms in back.output_metrics] == [
        ["R2Score"],
        ["MeanAbsoluteError", "LogCoshError"],
    ]
    assert back.output_metric_weighting == [[False], [False, True]]
