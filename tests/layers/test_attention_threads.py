"""MultiHeadAttention's batched products: the same numbers whatever the thread budget."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet.layers.attention import _bmm


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((2, 3, 4, 5), (2, 3, 5, 6)), ((2, 1, 4, 5), (1, 3, 5, 2)), ((3, 2, 200, 8), (3, 2, 8, 200))],
)
def test_batched_product_is_matmul(budget, a_shape, b_shape, rng):
    n, h, t, d = a_shape
    a = rng.standard_normal((n, t, h, d)).astype("float32").swapaxes(1, 2)  # a strided view
    b = rng.standard_normal(b_shape).astype("float32")
    expected = np.matmul(a.astype("float64"), b.astype("float64"))
    got = _bmm(a, b)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_attention_is_the_same_on_one_and_two_threads(rng):
    x = rng.standard_normal((4, 6, 8))
    out = []
    for n in (1, 2):
        before = ln.get_num_threads()
        ln.set_num_threads(n)
        try:
            layer = ln.MultiHeadAttention(2, 4, dtype="float64", seed=0)
            y = layer(x, x)
            out.append((y, layer.backward_input(np.ones_like(y))))
        finally:
            ln.set_num_threads(before)
    np.testing.assert_allclose(out[0][0], out[1][0], rtol=1e-12)
    for g1, g2 in zip(out[0][1], out[1][1]):
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-14)
