"""Initializers: Keras's names give Keras's distributions; objects round-trip; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet import initializers

RNG = np.random.default_rng(2024)
SHAPE, FAN_IN, FAN_OUT = (200, 300), 200, 300


def draw(spec):
    init = initializers.get(spec, "test", "kernel_initializer")
    return init(SHAPE, FAN_IN, FAN_OUT, np.random.default_rng(0), np.dtype("float64"))


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("glorot_uniform", np.sqrt(6 / (FAN_IN + FAN_OUT))),
        ("he_uniform", np.sqrt(6 / FAN_IN)),
        ("lecun_uniform", np.sqrt(3 / FAN_IN)),  # Keras's, not PyTorch's
        ("torch_uniform", np.sqrt(1 / FAN_IN)),  # PyTorch's default for Conv/Linear
        ("random_uniform", 0.05),
    ],
)
def test_uniform_initializers(name, limit):
    w = draw(name)
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.99 * limit  # the whole interval is used
    assert w.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)


@pytest.mark.parametrize(
    ("name", "std"),
    [
        ("glorot_normal", np.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("he_normal", np.sqrt(2 / FAN_IN)),
        ("lecun_normal", np.sqrt(1 / FAN_IN)),
        ("truncated_normal", 0.05 * 0.87962566103423978),  # stddev 0.05 before the cut
        ("random_normal", 0.05),
    ],
)
def test_normal_initializers(name, std):
    w = draw(name)
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std * 10
    if name != "random_normal":  # Keras's truncated normal: cut at two std of the untruncated
        cut = 2 * std / 0.87962566103423978
        assert np.abs(w).max() <= cut
        assert np.abs(w).max() > 0.95 * cut


def test_constant_ones_zeros_orthogonal():
    assert (draw("zeros") == 0).all() and (draw("ones") == 1).all()
    assert (draw(initializers.Constant(0.25)) == 0.25).all()
    assert (draw("constant") == 0).all()
    q = draw(initializers.Orthogonal(gain=2.0))
    np.testing.assert_allclose(q @ q.T, 4 * np.eye(SHAPE[0]), atol=1e-10)
    w = initializers.Orthogonal()((3, 3, 2, 4), 18, 36, RNG, np.float64).reshape(-1, 4)
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-10)


def test_keras_class_names_and_objects_are_accepted():
    assert isinstance(initializers.get("GlorotUniform", "t", "a"), initializers.GlorotUniform)
    assert isinstance(initializers.get("he_normal", "t", "a"), initializers.HeNormal)
    u = initializers.RandomUniform(-1.0, 2.0)
    w = u((1000,), 1, 1, RNG, np.float64)
    assert w.min() >= -1 and w.max() <= 2 and w.min() < -0.9 and w.max() > 1.9
    assert initializers.get(initializers.serialize(u), "t", "a") == u


def test_layers_use_and_serialize_initializers():
    dense = ln.Dense(
        4,
        kernel_initializer=initializers.Constant(0.5),
        bias_initializer="ones",
        dtype="float64",
    )
    dense.build((None, 3))
    assert (dense.params[dense_kernel_name(dense)] == 0.5).all()
    cfg = dense.get_config()
    assert cfg["kernel_initializer"] == {"class_name": "Constant", "config": {"value": 0.5}}
    again = ln.Dense.from_config(cfg)
    again.build((None, 3))
    np.testing.assert_array_equal(
        again.params[dense_kernel_name(again)], dense.params[dense_kernel_name(dense)]
    )


def dense_kernel_name(layer) -> str:
    return "kernel" if "kernel" in layer.params else "W"


def test_same_seed_same_values_and_mnist1d_init_unchanged():
    """torch_uniform is what the MNIST-1D recipe used as 'lecun_uniform': same draws."""
    a = initializers.get("torch_uniform", "t", "a")((5, 4), 20, 8, np.random.default_rng(1), "f8")
    b = np.random.default_rng(1).uniform(-np.sqrt(1 / 20), np.sqrt(1 / 20), (5, 4))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("nope", r"Dense '.*': invalid value for `kernel_initializer`: expected one of \[.*"
         r"'glorot_uniform'.*\] or a layernet.initializers.Initializer, received 'nope'"),
        (3, r"`kernel_initializer`: expected one of"),
        ({"class_name": "Constant", "config": {"value": "x"}},
         r"`kernel_initializer`: Constant: invalid value for `value`: expected a number"),
    ],
)  # fmt: skip
def test_initializer_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        ln.Dense(2, kernel_initializer=spec)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: initializers.RandomUniform(1.0, 0.0), r"expected minval <= maxval"),
        (lambda: initializers.RandomNormal(stddev=0), r"`stddev`: expected a positive"),
        (lambda: initializers.Orthogonal(gain=float("nan")), r"`gain`: expected a finite"),
    ],
)
def test_initializer_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
