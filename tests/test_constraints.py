"""Constraints against Keras 3 (JAX): projections, axes, names, configs and errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from layernet import constraints as C

CASES = [
    ("MaxNorm", {}),
    ("MaxNorm", {"max_value": 0.7, "axis": 1}),
    ("MaxNorm", {"max_value": 1.5, "axis": [0, 1, 2]}),
    ("MinMaxNorm", {}),
    ("MinMaxNorm", {"min_value": 0.5, "max_value": 1.5, "rate": 0.6, "axis": -1}),
    ("MinMaxNorm", {"min_value": 2.0, "max_value": 3.0, "axis": [0, 1]}),
    ("NonNeg", {}),
    ("UnitNorm", {}),
    ("UnitNorm", {"axis": [1, 2]}),
]


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_matches_keras(keras, name, kwargs):
    w = np.random.default_rng(0).standard_normal((3, 4, 2, 5)).astype(np.float32)
    w[0, 0, 0, 0] = 0.0
    ours = getattr(C, name)(**kwargs)
    theirs = getattr(keras.constraints, name)(**kwargs)
    got = ours(w)
    assert got.dtype == w.dtype and got.shape == w.shape
    np.testing.assert_allclose(got, np.asarray(theirs(w)), rtol=1e-5, atol=1e-6)
    assert ours.get_config().keys() == theirs.get_config().keys()


def test_keras_defaults_and_aliases(keras):
    for name in ["max_norm", "min_max_norm", "non_neg", "unit_norm"]:
        ours, theirs = C.get(name), keras.constraints.get(name)
        assert type(ours).__name__ == type(theirs).__name__
        assert ours.get_config() == pytest.approx(theirs.get_config())
    assert C.max_norm is C.MaxNorm and C.non_neg is C.NonNeg


def test_projection_properties_in_float64():
    w = np.random.default_rng(1).standard_normal((6, 3)) * 3
    norms = lambda a: np.linalg.norm(a, axis=0)  # noqa: E731
    assert np.all(norms(C.MaxNorm(1.0)(w)) <= 1.0 + 1e-12)
    np.testing.assert_allclose(norms(C.UnitNorm()(w)), 1.0, rtol=1e-6)
    mm = norms(C.MinMaxNorm(2.0, 2.5)(w))
    assert np.all((mm >= 2.0 - 1e-6) & (mm <= 2.5 + 1e-6))
    small = w * 1e-3
    np.testing.assert_allclose(C.MaxNorm(1.0)(small), small, rtol=1e-3)  # inside: kept
    assert C.NonNeg()(w).min() == 0.0


def test_names_configs_and_errors():
    for con in [
        C.MaxNorm(3, axis=[0, 1]),
        C.MinMaxNorm(0.1, 0.2, 0.5, 1),
        C.NonNeg(),
        C.UnitNorm(1),
    ]:
        assert C.get(C.serialize(con)) == con
        assert type(con).from_config(con.get_config()) == con
    assert C.get(None) is None
    with pytest.raises(
        ValueError, match=r"expected one of \['MaxNorm', .*\], a Constraint or None"
    ):
        C.get("maxnorm")
    with pytest.raises(ValueError, match=r"MaxNorm: invalid value for `max_value`: expected a"):
        C.MaxNorm(-1)
    with pytest.raises(ValueError, match=r"MinMaxNorm: invalid value for `max_value`"):
        C.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match=r"MinMaxNorm: invalid value for `rate`"):
        C.MinMaxNorm(rate=2.0)
    with pytest.raises(ValueError, match=r"UnitNorm: invalid value for `axis`: expected an int"):
        C.UnitNorm(axis="rows")
    with pytest.raises(
        ValueError, match=r"`axis`=3 is out of range for an array of shape \(2, 2\)"
    ):
        C.UnitNorm(axis=3)(np.ones((2, 2)))
