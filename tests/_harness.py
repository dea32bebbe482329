"""The one harness every layer goes through.

``assert_layer_gradients`` checks, in float64 against central differences:
the layer alone (input, every parameter, explicit Jacobians, J^T g = backward),
the layer placed behind another layer with parameters, a non-uniform upstream
gradient (gradcheck's default), and that a non-contiguous input gives the same
results as its contiguous copy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import layernet as ln
from layernet.layers import Layer

TOL = 1e-6


def distinct_values(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values with no ties: a permutation of a grid with spacing 0.01 (>> eps)."""
    n = int(np.prod(shape))
    grid = (np.arange(n) - n / 2) * 0.01 + rng.uniform(0, 0.001)
    return rng.permutation(grid).reshape(shape)


def front_layer(shape: tuple[int, ...]) -> Layer:
    """A shape-preserving layer with parameters to put in front of the layer under test."""
    if len(shape) >= 3:
        return ln.Conv(shape[-1], (1,) * (len(shape) - 2), dtype="float64", seed=7)
    return ln.Dense(shape[-1], dtype="float64", seed=7)


def non_contiguous(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` in a strided, non-contiguous view."""
    big = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
    big[..., ::2] = x
    view = big[..., ::2]
    assert not view.flags.c_contiguous or x.size <= 1
    return view


def assert_layer_gradients(
    make_layer: Callable[[], Layer],
    x: np.ndarray,
    *,
    front: bool = True,
) -> None:
    """Run every gradient check on a fresh float64 layer from ``make_layer``."""
    layer = make_layer()
    result = ln.gradcheck(layer, x)
    assert result.passed, f"{layer!r} on input {x.shape}\n{result}"
    assert any(k.startswith("jacobian_input") for k in result.errors)
    assert len([k for k in result.errors if k.startswith("dz/d ")]) == len(layer.params)

    if front:
        chain = [front_layer(x.shape), make_layer()]
        result = ln.gradcheck(chain, x, jacobians=False)
        assert result.passed, f"behind {chain[0]!r}: {chain[1]!r} on {x.shape}\n{result}"

    # Non-contiguous input: identical forward and backward.
    a, b = make_layer(), make_layer()
    y1 = a.forward(x)
    y2 = b.forward(non_contiguous(x))
    # BLAS may take another code path for strided data: equal up to rounding.
    close = {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(y1, y2, **close)
    g = np.random.default_rng(3).standard_normal(y1.shape)
    np.testing.assert_allclose(a.backward_input(g), b.backward_input(g), **close)
    for k, v in a.backward_params(g).items():
        np.testing.assert_allclose(v, b.backward_params(g)[k], **close)
