"""Initialisers as Keras 3 has them: called as `init(shape, dtype)`, seeded, configured and
named as Keras's, user-written ones accepted. Keras (JAX backend) is the oracle."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover
    pytest.skip("the Keras oracle needs the JAX backend", allow_module_level=True)

from keras.src.initializers.random_initializers import compute_fans  # noqa: E402

INIT = ln.initializers

CASES = [
    ("GlorotUniform", {}),
    ("GlorotNormal", {}),
    ("HeUniform", {}),
    ("HeNormal", {}),
    ("LecunUniform", {}),
    ("LecunNormal", {}),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.1}),
    ("RandomNormal", {"mean": 0.2, "stddev": 0.3}),
    ("TruncatedNormal", {"mean": -0.1, "stddev": 0.2}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}),
    ("VarianceScaling", {"scale": 1.5, "mode": "fan_in", "distribution": "truncated_normal"}),
    ("Orthogonal", {"gain": 1.5}),
]


@pytest.mark.parametrize("shape", [(7,), (5, 9), (3, 3, 4, 8), (2, 5, 6), ()])
def test_fans_are_keras(shape):
    assert INIT.compute_fans(shape) == tuple(int(v) for v in compute_fans(shape))


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_config_is_keras(name, kwargs):
    ours = getattr(INIT, name)(**kwargs, seed=3).get_config()
    theirs = getattr(keras.initializers, name)(**kwargs, seed=3).get_config()
    # (Keras's newest VarianceScaling also has fan axes for einsum kernels, which layernet
    # does not take)
    assert set(theirs) - set(ours) <= {"input_axes", "output_axes"}
    assert {k: theirs[k] for k in ours} == ours
    back = getattr(INIT, name).from_config(ours)
    assert back.get_config() == ours


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_distribution_is_keras(name, kwargs):
    """Same law as Keras's (another generator): mean, spread and range agree."""
    shape = (400, 300) if name != "Orthogonal" else (300, 300)
    ours = getattr(INIT, name)(**kwargs, seed=1)(shape, "float64")
    theirs = np.asarray(getattr(keras.initializers, name)(**kwargs, seed=1)(shape, "float64"))
    assert ours.shape == theirs.shape and ours.dtype == np.float64
    scale = theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.02 * scale + 1e-3 * abs(theirs.mean())
    assert ours.std() == pytest.approx(scale, rel=0.02)
    assert ours.min() >= theirs.min() - 0.1 * scale and ours.max() <= theirs.max() + 0.1 * scale
    if name == "Orthogonal":
        np.testing.assert_allclose(ours @ ours.T, kwargs["gain"] ** 2 * np.eye(300), atol=1e-10)


def test_identity_is_keras():
    np.testing.assert_array_equal(
        INIT.Identity(gain=3.0)((3, 5)), np.asarray(keras.initializers.Identity(gain=3.0)((3, 5)))
    )
    with pytest.raises(ValueError, match=r"Identity: expected a 2-D weight shape"):
        INIT.Identity()((2, 2, 2))


def test_keras_call_forms():
    init = INIT.GlorotUniform(seed=4)
    a = init((6, 2))
    b = init(shape=(6, 2), dtype="float32")
    c = init((6, 2), "float32")
    assert a.dtype == np.float32 and np.array_equal(a, b) and np.array_equal(a, c)
    assert init((6, 2), dtype="float64").dtype == np.float64
    limit = np.sqrt(6 / 8)
    assert np.abs(a).max() <= limit
    assert not np.array_equal(INIT.GlorotUniform(seed=5)((6, 2)), a)
    unseeded = INIT.GlorotUniform()
    assert not np.array_equal(unseeded((6, 2)), unseeded((6, 2)))  # a fresh draw each call


def test_a_seeded_initializer_gives_a_layer_the_same_weights():
    def kernel():
        layer = ln.Dense(4, kernel_initializer=INIT.HeNormal(seed=11))
        layer.build((None, 3))
        return layer.get_weights()[0]

    np.testing.assert_array_equal(kernel(), kernel())
    np.testing.assert_array_equal(kernel(), INIT.HeNormal(seed=11)((3, 4)))


def test_lowercase_names_are_the_classes():
    for lower, cls in [
        ("glorot_uniform", "GlorotUniform"),
        ("he_normal", "HeNormal"),
        ("variance_scaling", "VarianceScaling"),
        ("identity", "Identity"),
        ("orthogonal", "Orthogonal"),
        ("random_normal", "RandomNormal"),
        ("zeros", "Zeros"),
        ("constant", "Constant"),
    ]:
        assert getattr(INIT, lower) is getattr(INIT, cls)
        assert hasattr(keras.initializers, lower)
    assert INIT.glorot_uniform(seed=2).get_config() == {"seed": 2}
    assert isinstance(INIT.get("variance_scaling"), INIT.VarianceScaling)
    assert isinstance(INIT.get("identity"), INIT.Identity)


def test_user_initializers_written_the_keras_way():
    class Halves(INIT.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 0.5, dtype=dtype)

    def twos(shape, dtype=None):
        return np.full(shape, 2.0, dtype=dtype)

    layer = ln.Dense(3, kernel_initializer=Halves(), bias_initializer=twos)
    layer.build((None, 4))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (4, 3) and np.all(kernel == 0.5)
    assert np.all(bias == 2.0)
    conv = ln.layers.Conv2D(2, 3, kernel_initializer=twos)
    conv.build((None, 5, 5, 1))
    assert np.all(conv.get_weights()[0] == 2.0)
    bad = ln.Dense(3, kernel_initializer=lambda shape, dtype=None: np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"expected an array of shape \(4, 3\)"):
        bad.build((None, 4))


def test_deserialize():
    init = INIT.deserialize({"class_name": "VarianceScaling", "config": {"scale": 3.0}})
    assert isinstance(init, INIT.VarianceScaling) and init.scale == 3.0
    keras_config = keras.initializers.serialize(keras.initializers.Orthogonal(gain=2.0, seed=1))
    back = INIT.deserialize({"class_name": "Orthogonal", "config": keras_config["config"]})
    assert back.get_config() == {"gain": 2.0, "seed": 1}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: INIT.VarianceScaling(scale=0), r"VarianceScaling: invalid value for `scale`"),
        (lambda: INIT.VarianceScaling(mode="fan"), r"VarianceScaling: invalid value for `mode`"),
        (
            lambda: INIT.VarianceScaling(distribution="cauchy"),
            r"VarianceScaling: invalid value for `distribution`",
        ),
        (lambda: INIT.GlorotUniform(seed=-1), r"GlorotUniform: invalid value for `seed`"),
        (lambda: INIT.RandomNormal(seed=1.5), r"RandomNormal: invalid value for `seed`"),
        (lambda: INIT.Zeros()((2, -1)), r"Zeros: invalid value for `shape`"),
    ],
)
def test_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()
