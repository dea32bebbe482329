"""notebooks/09_sequences_attention.ipynb runs, and what it relies on."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_sequences_attention.ipynb"


def test_model_outputting_attention_scores_trains_and_reports_shapes():
    """A functional model whose attention call returns its weights: both outputs have
    shapes, ``fit`` checks targets against them, and a second model shares the layers."""
    inputs = ln.Input(shape=(5,), dtype="int32")
    h = ln.Embedding(7, 4, seed=0)(inputs)
    attended, scores = ln.MultiHeadAttention(2, 3, seed=1)(h, h, return_attention_scores=True)
    model = ln.Model(inputs, ln.Dense(7, seed=2)(attended))
    probe = ln.Model(inputs, scores)
    assert model.compute_output_shape((None, 5)) == (None, 5, 7)
    assert probe.compute_output_shape((3, 5)) == (3, 2, 5, 5)
    model.compile(ln.Adam(0.01), ln.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, 7, (32, 5))
    history = model.fit(x, x, batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    weights = probe.predict(x[:4], verbose=0)
    assert weights.shape == (4, 2, 5, 5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)


def test_notebook_executes():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(c.outputs for c in nb.cells if c.cell_type == "code")  # stored executed
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits it
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3")
        client.execute(cwd=str(NOTEBOOK.parent))
    finally:
        os.environ.clear()
        os.environ.update(old)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "reproduce the layer's output" in text and "passed" in text
    assert text.count("held-out tokens") == 2
