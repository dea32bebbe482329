"""A transformer encoder block and a causal (decoder-style) block built by hand from
Dense, LayerNormalization, MultiHeadAttention and Add, run forward and backward call by call
(as a graph of calls runs them) and checked against central differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet.gradcheck import numerical_gradient, relative_error

F64 = {"dtype": "float64"}


class Block:
    r"""Post-norm transformer block: ``n1 = LN(x + MHA(x, x))``, ``y = LN(n1 + FF(n1))``."""

    def __init__(self, dim: int, heads: int, ff: int, causal: bool) -> None:
        self.causal = causal
        self.mha = ln.MultiHeadAttention(heads, dim // heads, bias_initializer="he_uniform",
                                         seed=1, **F64)  # fmt: skip
        self.add1, self.add2 = ln.Add(**F64), ln.Add(**F64)
        self.norm1 = ln.LayerNormalization(gamma_initializer="he_uniform", seed=2, **F64)
        self.norm2 = ln.LayerNormalization(beta_initializer="he_uniform", seed=3, **F64)
        self.ff1 = ln.Dense(ff, activation="gelu", bias_initializer="he_uniform", seed=4, **F64)
        self.ff2 = ln.Dense(dim, seed=5, **F64)
        self.layers = [self.mha, self.norm1, self.norm2, self.ff1, self.ff2]

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = self.mha(x, x, use_causal_mask=self.causal)
        n1 = self.norm1.forward(self.add1.forward([x, h]))
        f = self.ff2.forward(self.ff1.forward(n1))
        return self.norm2.forward(self.add2.forward([n1, f]))

    def backward(self, g: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        grads: dict[tuple[str, str], np.ndarray] = {}

        def params(layer, dy):
            for k, v in layer.backward_params(dy).items():
                grads[(layer.name, k)] = v

        params(self.norm2, g)
        d_r2 = self.norm2.backward_input(g)
        d_n1_skip, d_f = self.add2.backward_input(d_r2)
        params(self.ff2, d_f)
        d_u = self.ff2.backward_input(d_f)
        params(self.ff1, d_u)
        d_n1 = d_n1_skip + self.ff1.backward_input(d_u)  # n1 feeds two calls: gradients add
        params(self.norm1, d_n1)
        d_r1 = self.norm1.backward_input(d_n1)
        d_x_skip, d_h = self.add1.backward_input(d_r1)
        params(self.mha, d_h)
        d_q, d_v = self.mha.backward_input(d_h)  # key = value: already summed by the layer
        return d_x_skip + d_q + d_v, grads  # x is query, value (and key) and the skip


@pytest.mark.parametrize("causal", [False, True], ids=["encoder", "causal"])
def test_block_forward_and_backward_against_finite_differences(causal, rng):
    block = Block(dim=4, heads=2, ff=6, causal=causal)
    x = rng.standard_normal((2, 3, 4))
    y = block.forward(x)
    assert y.shape == x.shape
    g = rng.uniform(0.5, 1.5, y.shape) * rng.choice([-1.0, 1.0], y.shape)

    def z() -> float:
        return float(np.vdot(g, block.forward(x)))

    z()
    dx, grads = block.backward(g)
    floor = 1e-3 * max(np.abs(v).max() for v in [dx, *grads.values()])
    assert relative_error(dx, numerical_gradient(z, x), floor) < 1e-6
    checked = 0
    for layer in block.layers:
        for k, p in layer.params.items():
            err = relative_error(grads[(layer.name, k)], numerical_gradient(z, p), floor)
            assert err < 1e-6, f"{layer.name}.{k}: {err:.2e}"
            checked += 1
    assert checked == 8 + 2 + 2 + 2 + 2


def test_causal_block_does_not_look_ahead(rng):
    block = Block(dim=4, heads=2, ff=6, causal=True)
    x = rng.standard_normal((1, 5, 4))
    y = block.forward(x)
    x2 = x.copy()
    x2[:, 2:] = rng.standard_normal((1, 3, 4))
    y2 = block.forward(x2)
    np.testing.assert_allclose(y[:, :2], y2[:, :2], rtol=1e-12, atol=1e-14)
    g = np.zeros_like(y)
    g[:, 1] = 1.0  # the output at position 1 depends on positions 0 and 1 only
    block.forward(x)
    dx, _ = block.backward(g)
    np.testing.assert_array_equal(dx[:, 2:], 0)
    assert np.abs(dx[:, :2]).min() > 0
