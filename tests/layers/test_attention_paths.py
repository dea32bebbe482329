"""MultiHeadAttention's batched-matrix-product path against its general einsum path."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients

import layernet as ln

F64 = {"dtype": "float64"}


def _pair(**kw):
    """The same layer twice (same weights); the second always takes the einsum path."""
    a = ln.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, seed=0, **kw, **F64)
    b = ln.MultiHeadAttention(num_heads=3, key_dim=4, value_dim=5, seed=0, **kw, **F64)
    b._heads_matmul = lambda rank: False  # type: ignore[method-assign]
    return a, b


@pytest.mark.parametrize("three_inputs", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("scores", [False, True])
def test_matmul_path_equals_einsum_path(three_inputs, causal, scores):
    rng = np.random.default_rng(0)
    q, v = rng.standard_normal((2, 6, 7)), rng.standard_normal((2, 6, 8))
    inputs = [q, v, rng.standard_normal((2, 6, 9))] if three_inputs else [q, v]
    a, b = _pair()
    options = {"use_causal_mask": causal, "return_attention_scores": scores}
    options["query_mask"] = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    ya, yb = a.forward(inputs, **options), b.forward(inputs, **options)
    assert a._heads_matmul(4) and not b._heads_matmul(4)
    for s, t in zip(ya if scores else [ya], yb if scores else [yb], strict=True):
        np.testing.assert_allclose(s, t, rtol=1e-12, atol=1e-14)
    g = [rng.standard_normal(s.shape) for s in ya] if scores else rng.standard_normal(ya.shape)
    for s, t in zip(a.backward_input(g), b.backward_input(g), strict=True):
        np.testing.assert_allclose(s, t, rtol=1e-11, atol=1e-13)
    pa, pb = a.backward_params(g), b.backward_params(g)
    for k in pa:
        np.testing.assert_allclose(pa[k], pb[k], rtol=1e-11, atol=1e-13, err_msg=k)


def test_matmul_path_gradients_and_other_layouts_keep_einsum():
    rng = np.random.default_rng(1)
    x = [rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 3, 6))]
    assert_layer_gradients(
        lambda: ln.MultiHeadAttention(2, 3, seed=0, **F64), x, options={"use_causal_mask": False}
    )
    layer = ln.MultiHeadAttention(2, 3, attention_axes=(1, 2), seed=0, **F64)
    assert not layer._heads_matmul(5)
    y = layer.forward([rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))])
    assert y.shape == (2, 3, 4, 5)
