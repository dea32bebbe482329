"""The lecture notes' own examples, as tests."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln


def test_valid_convolution_of_10_by_3_gives_8():
    conv = ln.Conv(1, 3, use_bias=False, dtype="float64")
    x = np.arange(1.0, 11.0).reshape(1, 10, 1)
    conv.build(x.shape)
    w = np.array([0.5, -1.0, 2.0])
    conv.params["kernel"][:, 0, 0] = w
    y = conv.forward(x)
    assert y.shape == (1, 8, 1)
    # (X * W)_i = sum_j w_j X_{i+j-1}, written out with 1-based indices
    expected = [sum(w[j - 1] * x[0, i + j - 2, 0] for j in range(1, 4)) for i in range(1, 9)]
    np.testing.assert_allclose(y[0, :, 0], expected)


def laplacian_error(h: float, x0: float = 0.7) -> float:
    """|(1,-2,1) * f(ih) at x0  -  h^2 f''(x0)| for f = sin."""
    conv = ln.Conv(1, 3, use_bias=False, dtype="float64")
    conv.build((1, 10, 1))
    conv.params["kernel"][:, 0, 0] = [1.0, -2.0, 1.0]
    i0 = 4  # sample i0 + 1 sits at x0, so output i0 is centred there
    samples = np.sin(x0 + (np.arange(10) - (i0 + 1)) * h).reshape(1, 10, 1)
    y = conv.forward(samples)[0, i0, 0]
    return abs(y - h**2 * (-np.sin(x0)))


def test_second_difference_kernel_recovers_h2_fpp_with_h4_error():
    hs = 0.2 / 2.0 ** np.arange(5)
    errors = np.array([laplacian_error(h) for h in hs])
    ratios = errors[:-1] / errors[1:]
    # error = h^4 f''''(x0)/12 + O(h^6): halving h divides it by 16
    np.testing.assert_allclose(ratios, 16.0, rtol=0.01)
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert slope == pytest.approx(4.0, abs=0.02)
    np.testing.assert_allclose(errors / hs**4, np.sin(0.7) / 12, rtol=0.01)


def test_relu_derivative_is_one_above_zero_and_zero_at_and_below():
    relu = ln.ReLU(dtype="float64")
    x = np.array([[-2.0, -1e-12, 0.0, 1e-12, 3.0]])
    relu.forward(x)
    np.testing.assert_array_equal(relu.backward_input(np.ones_like(x)), [[0, 0, 0, 1, 1]])


def test_pooling_defaults_to_disjoint_regions():
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y = ln.MaxPool(2, dtype="float64").forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[5, 7], [13, 15]])
    y = ln.AvgPool(2, dtype="float64").forward(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_mse_loss_gradient_is_x_minus_t_for_one_sample():
    x, t = np.array([[1.0, 4.0, -2.0]]), np.array([[0.5, 1.0, 1.0]])
    loss = ln.MSELoss(dtype="float64")
    assert loss.forward(x, t) == pytest.approx(0.5 * np.sum((t - x) ** 2))
    np.testing.assert_allclose(loss.backward_input(), x - t)
    assert loss.backward_params() == {}


def test_backprop_is_the_product_of_explicit_jacobians(rng):
    """dz/dvec(X^1)^T = dz/dvec(X^L)^T * J_{L-1} * ... * J_1, and the same for weights."""
    f64 = {"dtype": "float64"}
    conv, relu, pool, flat = (
        ln.Conv(2, 3, seed=0, **f64),
        ln.ReLU(**f64),
        ln.AvgPool(2, **f64),
        ln.Flatten(**f64),
    )
    loss = ln.MSELoss(**f64)
    x = rng.standard_normal((1, 10, 1))
    t = rng.standard_normal((1, 8))
    layers = [conv, relu, pool, flat]
    inputs = [x]
    for layer in layers:
        inputs.append(layer.forward(inputs[-1]))
    loss.forward(inputs[-1], t)
    row = loss.jacobian_input(inputs[-1], t)  # dz/dvec(X^L)^T
    for layer, xi in zip(reversed(layers[1:]), reversed(inputs[1:-1])):
        row = row @ layer.jacobian_input(xi)
    dz_dconv_out = row
    # weights of the first layer: dz/dvec(w)^T = dz/dvec(X^2)^T * dvec(X^2)/dvec(w)^T
    dz_dw = dz_dconv_out @ conv.jacobian_params(x)["kernel"]
    dz_dx = dz_dconv_out @ conv.jacobian_input(x)
    # the same through backward
    g = loss.backward_input()
    for layer in reversed(layers[1:]):
        g = layer.backward_input(g)
    conv.forward(x)
    np.testing.assert_allclose(dz_dw.ravel(), conv.backward_params(g)["kernel"].ravel(), atol=1e-14)
    np.testing.assert_allclose(dz_dx.ravel(), conv.backward_input(g).ravel(), atol=1e-14)
