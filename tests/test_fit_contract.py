"""fit, evaluate and predict use only the public contract of layers, losses and callbacks."""

from __future__ import annotations

import ast
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

SRC = Path(ln.__file__).parent


@pytest.mark.parametrize(
    "module",
    [
        "models/model.py",
        "models/sequential.py",
        "training/trainer.py",
        "training/data_adapters.py",
        "graph/executor.py",
        "graph/node.py",
        "callbacks.py",
    ],
)
def test_models_and_callbacks_touch_no_private_member_of_other_objects(module):
    tree = ast.parse((SRC / module).read_text())
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (  # (cls: the class itself, in __new__)
            isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", "_random")
        )
    ]
    assert private == []


class Recorder(ln.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seen = (dict(self.params), self.model)


def test_callbacks_get_params_and_model():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 3)), rng.integers(0, 2, 50)
    model = ln.Sequential([ln.Dense(2, seed=0)])
    model.compile("sgd", "softmax_cross_entropy")
    rec = Recorder()
    model.fit(x, y, epochs=3, batch_size=16, callbacks=[rec], verbose=0)
    assert rec.seen == ({"epochs": 3, "steps": 4, "verbose": 0}, model)
    with pytest.raises(TypeError, match="expected Callback instances"):
        model.fit(x, y, callbacks=[print], verbose=0)


def test_weights_are_the_live_arrays():
    model = ln.Sequential([ln.Dense(2, seed=0), ln.BatchNorm()])
    model.build((None, 3))
    assert len(model.weights) == 6
    assert all(w is p for w, p in zip(model.weights, model.layers[0].params.values()))
    model.weights[0][...] = 1
    np.testing.assert_array_equal(model.get_weights()[0], 1)


def conv_model():
    model = ln.Sequential(
        [
            ln.Conv1D(4, 3, padding="same", seed=0),
            ln.ReLU(),
            ln.MaxPool1D(2),
            ln.Flatten(),
            ln.Dense(3, seed=1),
        ]
    )
    model.compile(ln.SGD(0.01), "softmax_cross_entropy")
    return model


def counting(monkeypatch):
    """Patch Workspace.get to record every array it creates (and a weakref to it)."""
    made: list[tuple[str, weakref.ref]] = []
    original = ln.Workspace.get

    def get(self, name, shape, dtype, fill=None):
        a, fresh = original(self, name, shape, dtype, fill)
        if fresh and self.enabled:
            made.append((name, weakref.ref(a)))
        return a, fresh

    monkeypatch.setattr(ln.Workspace, "get", get)
    return made


class PerEpoch(ln.callbacks.Callback):
    def __init__(self, made):
        self.made, self.counts = made, []

    def on_epoch_end(self, epoch, logs=None):
        self.counts.append(len(self.made))


def test_validation_of_another_batch_size_reallocates_nothing_after_the_first_epoch(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((70, 12, 2)), rng.integers(0, 3, 70)  # 2 batches of 32 + 6
    xv, yv = rng.standard_normal((45, 12, 2)), rng.integers(0, 3, 45)
    model = conv_model()
    made = counting(monkeypatch)
    per_epoch = PerEpoch(made)
    model.fit(x, y, epochs=10, batch_size=32, validation_data=(xv, yv), callbacks=[per_epoch],
              verbose=0, seed=0)  # fmt: skip
    assert per_epoch.counts[0] > 0
    assert per_epoch.counts == [per_epoch.counts[0]] * 10, per_epoch.counts


def test_fit_releases_its_buffers_when_it_ends(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 12, 2)), rng.integers(0, 3, 40)
    model = conv_model()
    made = counting(monkeypatch)
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, seed=0)
    assert any(name == "col" for name, _ in made)  # the conv patch matrix was a scratch buffer
    gc.collect()
    alive = [name for name, ref in made if ref() is not None]
    assert alive == []
    assert all(layer.workspace.nbytes == 0 for layer in model.layers)  # own ones untouched
    # The model still predicts and trains after the run.
    assert model.predict(x[:3]).shape == (3, 3)
    model.fit(x, y, epochs=1, verbose=0)


def test_backward_after_fit_asks_for_a_forward():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 12, 2)), rng.integers(0, 3, 8)
    model = conv_model()
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.layers[0].backward_input(np.zeros((8, 12, 4)))


def test_inner_layers_of_containers_use_the_run_buffers_too(monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 12, 2)), rng.integers(0, 3, 40)
    block = ln.Residual([ln.Conv1D(2, 3, padding="same", seed=3, name="inner")])
    model = ln.Sequential([block, ln.Flatten(), ln.Dense(3, seed=1)])
    model.compile(ln.SGD(0.01), "softmax_cross_entropy")
    made = counting(monkeypatch)
    model.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, seed=0)
    assert any(name == "col" for name, _ in made)
    gc.collect()
    assert [name for name, ref in made if ref() is not None] == []
    assert block.layers[0].workspace.nbytes == 0
