"""The gradient checker must catch wrong derivatives, not only pass right ones."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet.gradcheck import numerical_gradient, numerical_jacobian, relative_error


class _WrongReLU(ln.ReLU):
    """A deliberately wrong backward: derivative 1 everywhere."""

    def compute_backward_input(self, dy, cache):
        return dy


class _WrongDense(ln.Dense):
    """A deliberately wrong weight gradient (transposed product order dropped a factor)."""

    def compute_backward_params(self, dy, x):
        grads = super().compute_backward_params(dy, x)
        grads["kernel"] = grads["kernel"] * 1.01
        return grads


def test_gradcheck_passes_correct_layers(rng):
    result = ln.gradcheck(ln.Dense(3, dtype="float64", seed=0), rng.standard_normal((2, 4)))
    assert result.passed
    assert result.max_error < 1e-8
    assert set(result.errors) >= {"dz/dx", "dz/d " + result.worst.split()[-1]} or result.worst
    assert "passed" in str(result)


def test_gradcheck_catches_wrong_input_gradient(rng):
    x = rng.standard_normal((3, 5))
    result = ln.gradcheck(_WrongReLU(dtype="float64"), x)
    assert not result.passed
    assert result.errors["dz/dx"] > 0.1
    assert "FAILED" in str(result)


def test_gradcheck_catches_wrong_parameter_gradient(rng):
    layer = _WrongDense(2, dtype="float64", seed=0)
    result = ln.gradcheck(layer, rng.standard_normal((3, 4)))
    assert not result.passed
    assert result.errors[f"dz/d {layer.name}.kernel"] > 1e-3
    assert result.errors[f"dz/d {layer.name}.bias"] < 1e-8


def test_gradcheck_catches_wrong_closed_form_jacobian(rng):
    class WrongJacobian(ln.Tanh):
        def jacobian_input(self, x, *, max_entries=10**6):
            return 2 * super().jacobian_input(x, max_entries=max_entries)

    result = ln.gradcheck(WrongJacobian(dtype="float64"), rng.standard_normal((2, 3)))
    assert not result.passed
    assert result.errors[next(k for k in result.errors if k.startswith("jacobian_input"))] > 0.1


def test_gradcheck_restores_accumulated_grads(rng):
    dense = ln.Dense(2, dtype="float64", seed=0)
    ln.gradcheck(dense, rng.standard_normal((2, 3)))
    assert not dense.grads["kernel"].any()


def test_gradcheck_argument_errors(rng):
    with pytest.raises(ValueError, match="needs `target`"):
        ln.gradcheck([ln.Dense(2, dtype="float64"), ln.MSELoss(dtype="float64")], np.ones((1, 2)))
    with pytest.raises(ValueError, match="does not end in a Loss"):
        ln.gradcheck(ln.ReLU(dtype="float64"), np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(TypeError, match="expected a Layer"):
        ln.gradcheck("relu", np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"expected `dy` of shape \(1, 2\)"):
        ln.gradcheck(ln.ReLU(dtype="float64"), np.ones((1, 2)), dy=np.ones(2))


def test_numerical_helpers():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        numerical_gradient(lambda: float(np.sum(x**3)), x), 3 * x**2, rtol=1e-8
    )
    np.testing.assert_allclose(numerical_jacobian(lambda: x**2, x), np.diag(2 * x), atol=1e-8)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])) == pytest.approx(0.2 / 2.2)
    with pytest.raises(ValueError, match="C-contiguous"):
        numerical_gradient(lambda: 0.0, np.ones((3, 3))[:, ::2])


class _NaNWeightGrad(ln.Dense):
    def compute_backward_params(self, dy, saved):
        grads = super().compute_backward_params(dy, saved)
        grads["kernel"][0, 0] = np.nan
        return grads


class _InfOutput(ln.Tanh):
    def compute_forward(self, x, training):
        y, saved = super().compute_forward(x, training)
        y[0, 0] = np.inf
        return y, saved


def test_gradcheck_fails_on_nan_in_an_analytic_gradient_and_says_which(rng):
    layer = _NaNWeightGrad(2, dtype="float64", seed=0)
    result = ln.gradcheck(layer, rng.standard_normal((3, 4)), jacobians=False)
    assert not result.passed
    assert result.max_error == np.inf
    assert any(p.startswith("NaN in analytic gradient of 'kernel'") for p in result.problems)
    assert "non-finite: NaN in analytic gradient of 'kernel'" in str(result)


def test_gradcheck_fails_on_non_finite_values(rng):
    result = ln.gradcheck(_InfOutput(dtype="float64", name="bad"), rng.standard_normal((2, 3)))
    assert not result.passed
    assert "inf in the output of _InfOutput 'bad'" in result.problems


def test_relative_error_is_infinite_for_non_finite_values():
    assert relative_error(np.array([1.0, np.nan]), np.array([1.0, 2.0])) == np.inf
    assert relative_error(np.array([1.0]), np.array([np.inf])) == np.inf


def test_gradcheck_restores_every_layer_even_when_a_check_raises(rng):
    conv = ln.Conv1D(2, 3, dtype="float64", seed=0)
    bn = ln.BatchNorm(dtype="float64")
    drop = ln.Dropout(0.3, seed=1, dtype="float64")
    x = rng.standard_normal((2, 6, 1))
    h = drop.forward(bn.forward(conv.forward(x), training=True), training=True)
    for layer, g in ((drop, np.ones(h.shape)),):
        g = layer.backward_input(g)
    conv.backward_params(np.ones((2, 4, 2)))
    before = {
        id(layer): (
            {k: v.copy() for k, v in layer.params.items()},
            {k: v.copy() for k, v in layer.state.items()},
            {k: v.copy() for k, v in layer.grads.items()},
            layer.saved,
            [np.array(a) for a in layer.saved if isinstance(a, np.ndarray)],
        )
        for layer in (conv, bn, drop)
    }
    rng_state = drop._rng.bit_generator.state
    with pytest.raises(ValueError, match="above max_entries"):
        ln.gradcheck([conv, bn, drop], x, training=True, max_entries=10)
    for layer in (conv, bn, drop):
        params, state, grads, saved, saved_arrays = before[id(layer)]
        for mine, theirs in ((layer.params, params), (layer.state, state), (layer.grads, grads)):
            assert mine.keys() == theirs.keys()
            for k in mine:
                np.testing.assert_array_equal(mine[k], theirs[k])
        assert layer.saved is saved
        now = [a for a in layer.saved if isinstance(a, np.ndarray)]
        for a, b in zip(now, saved_arrays):
            np.testing.assert_array_equal(a, b)  # scratch buffers behind `saved` untouched
    assert drop._rng.bit_generator.state == rng_state
    # backward still works on the restored state
    assert conv.backward_input(np.ones((2, 4, 2))).shape == (2, 6, 1)
