"""Embedding's ids: integers, or floats that hold whole numbers (cast, as Keras casts them)."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln


def test_float_ids_that_are_whole_numbers_are_cast():
    layer = ln.Embedding(6, 3, seed=0)
    ids = np.array([[1, 5, 0], [2, 2, 4]])
    expected = layer(ids)
    for dtype in ("float32", "float64"):
        np.testing.assert_array_equal(layer(ids.astype(dtype)), expected)
    np.testing.assert_array_equal(layer(ids.astype("float32")), expected)  # checked every call


def test_float_ids_with_a_fraction_or_out_of_range_are_refused():
    layer = ln.Embedding(6, 3, name="emb")
    with pytest.raises(ValueError, match=r"Embedding 'emb': expected integer token ids, "
                       r"received floats that are not whole numbers"):  # fmt: skip
        layer(np.array([[1.0, 2.5]], "float32"))
    with pytest.raises(ValueError, match=r"not whole numbers"):
        layer(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match=r"expected ids in \[0, 6\)"):
        layer(np.array([[1.0, 6.0]], "float32"))
    with pytest.raises(TypeError, match=r"Embedding .emb.: expected `input` to be a real numeric"):
        layer(np.array([[1 + 0j]]))


def test_float_input_model_feeds_an_embedding():
    """A float32 ``Input`` (Keras's default dtype) of ids, as keras.io's examples write it."""
    inputs = ln.Input(shape=(4,))
    outputs = ln.GlobalAveragePooling1D()(ln.Embedding(9, 2, seed=0)(inputs))
    model = ln.Model(inputs, outputs)
    ids = np.array([[1, 2, 3, 8], [0, 0, 4, 4]])
    np.testing.assert_allclose(
        model.predict(ids, verbose=0), model.predict(ids.astype("float32"), verbose=0)
    )
    model.compile("sgd", "mse")
    model.fit(ids, np.zeros((2, 2)), epochs=1, verbose=0)
