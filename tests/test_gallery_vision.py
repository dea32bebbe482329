"""The keras.io vision examples under examples/keras_io/, each run in its short mode.

Every script is run in-process, unchanged (``examples/keras_io/_short.py``: ``fit`` limited
to one epoch and a few hundred samples, ``evaluate`` to a few, a model's sizes shrunk
where the script's own sizes would take minutes), offline: Keras's cache is an empty
folder and downloads fail, so the scripts' marked offline stand-ins supply the data.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the keras.io scripts draw with Matplotlib")

import layernet as ln
from layernet import _files

GALLERY = Path(__file__).resolve().parents[1] / "examples" / "keras_io"
SCRIPTS = [
    "autoencoder",
    "siamese_contrastive",
    "convmixer",
    "image_classification_with_vision_transformer",
    "image_classification_from_scratch",
]


def _load_short():
    spec = importlib.util.spec_from_file_location("_gallery_short", GALLERY / "_short.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache and no network."""

    def no_network(url, timeout):
        raise OSError("no network in the tests")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the stand-in image folders
    monkeypatch.setattr(_files, "opener", no_network)
    monkeypatch.chdir(tmp_path)
    ln.utils.set_random_seed(0)


def run_short(name, **kwargs):
    return _load_short().run(name, **kwargs)


def finite(*values):
    return all(math.isfinite(float(v)) for v in np.ravel(np.asarray(values, dtype=float)))


@pytest.mark.parametrize("name", SCRIPTS)
def test_only_imports_and_the_marked_stand_in_are_layernet_s(name):
    source = (GALLERY / f"{name}.py").read_text()
    tree = ast.parse(source)
    assert "Apache License 2.0; only the import lines changed" in ast.get_docstring(tree)
    assert "https://keras.io/examples/vision/" in ast.get_docstring(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            text = ast.unparse(node)
            assert "tensorflow" not in text and "import keras" not in text, text
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "layernet" not in names and "ln" not in names
    # The stand-in is used only between the markers.
    lines = source.splitlines()
    inside = False
    for line in lines:
        if "layernet gallery: offline stand-in" in line and line.lstrip().startswith("# ---"):
            inside = True
        elif "end of the offline stand-in" in line:
            inside = False
        elif "_offline." in line:
            assert inside, line


def test_autoencoder(offline, capsys):
    ns = run_short("autoencoder")
    out = capsys.readouterr().out
    assert "offline stand-in" not in out or "[layernet gallery]" in out
    assert "Total params: 28,353" in out  # the summary Keras's page shows
    predictions = ns["predictions"]
    assert predictions.shape == ns["noisy_test_data"].shape
    assert finite(predictions) and predictions.min() >= 0.0 and predictions.max() <= 1.0
    history = ns["autoencoder"].history.history
    assert finite(history["loss"], history["val_loss"])


def test_siamese_contrastive(offline, capsys):
    ns = run_short("siamese_contrastive")
    out = capsys.readouterr().out
    assert "Total params: 5,324" in out  # the summary Keras's page shows
    loss, accuracy = ns["results"]
    assert f"test loss, test acc: {ns['results']}" in out
    assert finite(loss, accuracy) and 0.0 <= accuracy <= 1.0
    history = ns["history"].history
    assert finite(history["loss"], history["accuracy"], history["val_loss"])
    assert finite(ns["predictions"]) and ns["predictions"].shape == (len(ns["x_test_1"]), 1)


def test_convmixer(offline, capsys):
    ns = run_short("convmixer")
    out = capsys.readouterr().out
    history = ns["history"].history
    assert finite(history["loss"], history["accuracy"], history["val_loss"])
    accuracy = float(out.split("Test accuracy: ")[1].split("%")[0])
    assert 0.0 <= accuracy <= 100.0
    # The kernels the script visualizes: layers[2] the stem, layers[26] a depthwise one.
    model = ns["conv_mixer_model"]
    assert type(model.layers[26]).__name__ == "DepthwiseConv2D"
    assert "26 DepthwiseConv2D" in out  # found by its config's kernel_size == (5, 5)
    assert finite(ns["kernel"]) and ns["kernel"].shape == (5, 5, 1, 32)


def test_vision_transformer(offline, capsys):
    ns = run_short("image_classification_with_vision_transformer")
    out = capsys.readouterr().out
    assert "Patches per image: 36" in out and "Elements per patch: 108" in out
    history = ns["history"].history
    assert finite(history["loss"], history["val_loss"], history["val_top-5-accuracy"])
    accuracy = float(out.split("Test accuracy: ")[1].split("%")[0])
    top5 = float(out.split("Test top 5 accuracy: ")[1].split("%")[0])
    assert 0.0 <= accuracy <= top5 <= 100.0


def test_image_classification_from_scratch(offline, capsys):
    ns = run_short("image_classification_from_scratch")
    out = capsys.readouterr().out
    assert "Deleted 0 images." in out  # the stand-in's JPEG files are JFIF
    assert ns["model"].history.history["acc"]
    assert finite(ns["model"].history.history["loss"], ns["model"].history.history["val_loss"])
    assert 0.0 <= ns["score"] <= 1.0
    assert f"This image is {100 * (1 - ns['score']):.2f}% cat" in out
