"""The vision examples under examples/keras_io/ (layernet's own scripts, written anew after
keras.io's examples), each run in its short mode, and checked to swap to Keras 3.

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


#: What each layernet import line stands for under Keras 3 (``None``: not Keras's).
KERAS_MODULES = {"keras": "keras", "layers": "keras.layers", "ops": "keras.ops", "tf_data": None}


def _layernet_aliases(tree):
    """``{alias: "layernet" or "layernet.<name>"}`` for the script's layernet imports."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "layernet":
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("layernet"):
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _keras_chains(tree):
    """Every attribute chain ``alias.a.b...`` rooted at a layernet import, longest only."""
    aliases = _layernet_aliases(tree)
    chains, inner = set(), set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        parts, base = [], node
        while isinstance(base, ast.Attribute):
            parts.append(base.attr)
            if base is not node:
                inner.add(id(base))
            base = base.value
        if isinstance(base, ast.Name) and base.id in aliases and id(node) not in inner:
            chains.add((base.id, tuple(reversed(parts))))
    return chains


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_is_layernet_s_own_and_swaps_to_keras(name):
    source = (GALLERY / f"{name}.py").read_text()
    tree = ast.parse(source)
    doc = " ".join(ast.get_docstring(tree).split())
    assert "After the keras.io example" in doc and "https://keras.io/examples/vision/" in doc
    assert "written anew for layernet" in doc and "Keras 3 with the imports swapped" in doc
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            text = ast.unparse(node)
            assert "tensorflow" not in text and "import keras" not in text, text
    # The layernet imports are the ones that have a Keras 3 (or tf.data) counterpart.
    aliases = _layernet_aliases(tree)
    assert set(aliases) <= set(KERAS_MODULES), aliases
    assert aliases.get("keras", "layernet") == "layernet"
    for module in aliases.values():
        assert module in ("layernet", "layernet.layers", "layernet.ops", "layernet.data"), module
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "layernet" not in names and "ln" not in names
    # The stand-in is used only between the markers.
    lines = source.splitlines()
    start = [i for i, t in enumerate(lines, 1) if t.startswith("# --- layernet gallery: offline")]
    end = [i for i, t in enumerate(lines, 1) if t.startswith("# --- end of the offline stand-in")]
    assert len(start) == len(end) == 1 and start[0] < end[0]
    uses = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "_offline" and isinstance(node.ctx, ast.Load)
    ]
    assert uses and all(start[0] < line < end[0] for line in uses), uses


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_keras_attribute_a_script_uses_exists_in_keras_3(name, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    modules = {alias: keras for alias in ("keras",)}
    modules["layers"], modules["ops"] = keras.layers, keras.ops
    tree = ast.parse((GALLERY / f"{name}.py").read_text())
    chains = _keras_chains(tree)
    assert chains
    for alias, parts in sorted(chains):
        if KERAS_MODULES[alias] is None:  # tf.data's calls: layernet.data's own tests
            continue
        obj = modules[alias]
        for i, attr in enumerate(parts):
            path = ".".join((KERAS_MODULES[alias], *parts[: i + 1]))
            assert hasattr(obj, attr), f"{name}: Keras 3 has no {path}"
            obj = getattr(obj, attr)


def test_autoencoder(offline, capsys):
    ns = run_short("autoencoder")
    out = capsys.readouterr().out
    # conv 3x3 1->32, conv 32->32, two transposed convs 32->32, conv 32->1 (with biases)
    params = (9 * 32 + 32) + 3 * (9 * 32 * 32 + 32) + (9 * 32 + 1)
    assert f"Total params: {params:,}" in out
    for key in ("copies", "denoised"):
        images = ns[key]
        assert images.shape == ns["clean_test"].shape == (len(ns["test_digits"]), 28, 28, 1)
        assert finite(images) and images.min() >= 0.0 and images.max() <= 1.0
    noisy = ns["noisy_test"]
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0 and not np.array_equal(noisy, ns["clean_test"])
    history = ns["autoencoder"].history.history
    assert finite(history["loss"], history["val_loss"])


def test_siamese_contrastive(offline, capsys):
    ns = run_short("siamese_contrastive")
    out = capsys.readouterr().out
    # tower: BN(1), conv 5x5 1->4, conv 5x5 4->16, BN(256), Dense 256->10; head: BN(1), Dense 1->1
    params = 4 + (25 * 4 + 4) + (25 * 4 * 16 + 16) + 4 * 256 + (256 * 10 + 10) + 4 + 2
    assert f"Total params: {params:,}" in out
    loss, accuracy = ns["test_loss"], ns["test_accuracy"]
    assert f"Test loss {loss:.4f}, test accuracy {accuracy:.4f}" in out
    assert finite(loss, accuracy) and 0.0 <= accuracy <= 1.0
    history = ns["history"].history
    assert finite(history["loss"], history["accuracy"], history["val_loss"])
    outputs = ns["test_outputs"]
    assert outputs.shape == (len(ns["test_y"]), 1) and finite(outputs)
    # The pairs: label 1.0 exactly when the two images show different numbers.
    labels = np.arange(200) % 10
    first, second, mismatch = ns["make_pairs"](labels, labels, np.random.default_rng(0))
    assert mismatch.shape == (400, 1) and mismatch.sum() == 200
    np.testing.assert_array_equal(mismatch[:, 0], (first != second).astype("float32"))
    # The loss written with ops, against its formula in NumPy.
    y = np.array([[0.0], [1.0], [1.0], [0.0]], "float32")
    d = np.array([[0.3], [0.2], [1.4], [0.9]], "float32")
    expected = np.mean((1 - y) * d**2 + y * np.maximum(1.0 - d, 0.0) ** 2)
    got = ln.ops.convert_to_numpy(ns["contrastive"](1.0)(y, d))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_convmixer(offline, capsys):
    ns = run_short("convmixer")
    out = capsys.readouterr().out
    history = ns["history"].history
    assert finite(history["loss"], history["accuracy"], history["val_loss"])
    accuracy = float(out.split("Test accuracy: ")[1].split("%")[0])
    assert 0.0 <= accuracy <= 100.0
    model, width = ns["model"], ns["WIDTH"]
    assert model.name == f"convmixer_{width}_{ns['DEPTH']}"
    assert type(model.get_layer(f"spatial_{ns['DEPTH'] - 1}")).__name__ == "DepthwiseConv2D"
    assert ns["depthwise"].shape == (5, 5, width, 1) and finite(ns["depthwise"])  # Keras's layout
    assert ns["stem"].shape == (2, 2, 3, width)
    assert (Path.cwd() / ns["CHECKPOINT"]).is_file()
    # The training pipeline's map pads, crops back and flips: full-size float batches.
    for images, labels in ns["train_ds"].take(1):
        images = np.asarray(images)
        assert images.shape == (ns["BATCH_SIZE"], 32, 32, 3) and images.dtype == np.float32
        assert len(labels) == len(images)


def test_vision_transformer(offline, capsys):
    ns = run_short("image_classification_with_vision_transformer")
    out = capsys.readouterr().out
    assert "Patches per image: 36" in out and "Elements per patch: 108" in out
    assert ns["example_patches"].shape == (1, 36, 6 * 6 * 3)
    # The first patch is the resized image's top-left corner.
    corner = ln.ops.convert_to_numpy(ns["example"])[0, :6, :6, :]
    np.testing.assert_allclose(ns["example_patches"][0, 0], corner.reshape(-1), rtol=1e-6)
    history = ns["history"].history
    assert finite(history["loss"], history["val_loss"], history["val_top-5-accuracy"])
    accuracy = float(out.split("Test accuracy: ")[1].split("%")[0])
    top5 = float(out.split("Test top 5 accuracy: ")[1].split("%")[0])
    assert 0.0 <= accuracy <= top5 <= 100.0


def test_image_classification_from_scratch(offline, capsys):
    ns = run_short("image_classification_from_scratch")
    out = capsys.readouterr().out
    assert "Removed 0 files that are not JFIF images." in out  # the stand-in's JPEGs are JFIF
    assert "Found 80 files belonging to 2 classes." in out
    history = ns["model"].history.history
    assert history["acc"] and finite(history["loss"], history["val_loss"], history["acc"])
    assert 0.0 <= ns["dog"] <= 1.0
    assert f"{100 * (1 - ns['dog']):.2f}% cat, {100 * ns['dog']:.2f}% dog" in out
    assert list(Path.cwd().glob("pets_epoch_1.keras"))
