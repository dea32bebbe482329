"""Class names in model files: built-ins, registered user classes, custom_objects, old files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import layernet as ln

DATA = Path(__file__).parent / "data"


def test_file_written_by_the_first_format_still_loads():
    # Written with bare class names ("Dense", "Conv1D", ...) by layernet 0.1.0.
    model = ln.load_model(DATA / "legacy_v1_model.npz")
    with np.load(DATA / "legacy_v1_expected.npz") as ref:
        np.testing.assert_allclose(model.predict(ref["x"]), ref["pred"], rtol=1e-12, atol=1e-12)
    assert [type(layer) for layer in model.layers][:3] == [ln.Conv1D, ln.ReLU, ln.BatchNorm]
    assert isinstance(model.loss, ln.SoftmaxCrossEntropy)
