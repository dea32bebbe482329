"""Keras's small `keras.utils` helpers under layernet.utils, checked against Keras where Keras
runs them without TensorFlow, and against direct loops elsewhere."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":  # pragma: no cover
        pytest.skip("the Keras oracle needs the JAX backend")
    return keras


# ------------------------------------------------------------------ packing
@pytest.mark.parametrize(
    "args",
    [
        (np.ones(3),),
        ((np.ones(3), np.zeros(3)),),
        ([np.ones(3)],),
        (np.ones(3), np.zeros(3)),
        (np.ones(3), np.zeros(3), np.full(3, 2.0)),
        ({"a": np.ones(3)}, None, np.ones(3)),
    ],
)
def test_pack_and_unpack_as_keras(keras, args):
    ours = ln.utils.pack_x_y_sample_weight(*args)
    theirs = keras.utils.pack_x_y_sample_weight(*args)
    assert type(ours) is type(theirs)
    assert (len(ours) if isinstance(ours, tuple) else None) == (
        len(theirs) if isinstance(theirs, tuple) else None
    )
    unpacked = ln.utils.unpack_x_y_sample_weight(ours)
    expected = keras.utils.unpack_x_y_sample_weight(theirs)
    assert len(unpacked) == 3
    for a, b in zip(unpacked, expected, strict=True):
        assert (a is None) == (b is None)


def test_unpack_refuses_four_parts():
    with pytest.raises(ValueError, match=r"unpack_x_y_sample_weight: .*a tuple of 4"):
        ln.utils.unpack_x_y_sample_weight((1, 2, 3, 4))


def test_a_train_step_written_with_unpack_trains():
    class Model(ln.Model):
        def train_step(self, data):
            x, y, sample_weight = ln.utils.unpack_x_y_sample_weight(data)
            return super().train_step(ln.utils.pack_x_y_sample_weight(x, y, sample_weight))

    inp = ln.Input((3,))
    model = Model(inp, ln.Dense(1, seed=0)(inp))
    model.compile(ln.SGD(0.1), "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 2


# ------------------------------------------------------------------ normalize
@pytest.mark.parametrize(("axis", "order"), [(-1, 2), (1, 1), (-1, np.inf)])
def test_normalize_as_keras(keras, rng, axis, order):
    x = rng.standard_normal((4, 5)).astype("float32")
    x[2] = 0.0
    np.testing.assert_allclose(
        ln.utils.normalize(x, axis, order), keras.utils.normalize(x, axis, order), rtol=1e-6
    )


def test_normalize_along_the_first_axis(rng):
    """(Keras's own turns axis 0 into -1 and fails to broadcast; the definition is plain.)"""
    x = rng.standard_normal((4, 5))
    x[:, 1] = 0.0
    norms = np.linalg.norm(x, axis=0)
    norms[1] = 1.0
    np.testing.assert_allclose(ln.utils.normalize(x, axis=0), x / norms[None, :], rtol=1e-12)


def test_normalize_refuses_an_axis_outside():
    with pytest.raises(ValueError, match=r"normalize: invalid value for `axis`.*\(2, 3\)"):
        ln.utils.normalize(np.ones((2, 3)), axis=2)


# ------------------------------------------------------------------ time series
def _windows(data, targets, length, stride, rate, start, end):
    """The windows and targets by the documented rule, one at a time."""
    end = len(data) if end is None else end
    start = start or 0
    xs, ys = [], []
    p = 0
    while start + p + (length - 1) * rate < end and (targets is None or p < len(targets)):
        xs.append([data[start + p + k * rate] for k in range(length)])
        if targets is not None:
            ys.append(targets[start + p])
        p += stride
    return np.array(xs), np.array(ys)


@pytest.mark.parametrize(
    ("length", "stride", "rate", "start", "end", "batch"),
    [
        (3, 1, 1, None, None, 4),
        (4, 2, 2, None, None, 3),
        (2, 3, 1, 5, 40, None),
        (5, 1, 3, 2, None, 7),
    ],
)
def test_timeseries_windows(length, stride, rate, start, end, batch):
    data = np.arange(50) * 1.5
    targets = np.arange(50) * 10
    ds = ln.utils.timeseries_dataset_from_array(
        data, targets, length, stride, rate, batch_size=batch, start_index=start, end_index=end
    )
    got = list(ds)
    if batch is None:
        xs = np.array([g[0] for g in got])
        ys = np.array([g[1] for g in got])
    else:
        assert all(len(g[0]) <= batch for g in got)
        xs = np.concatenate([g[0] for g in got])
        ys = np.concatenate([g[1] for g in got])
    ex, ey = _windows(data, targets, length, stride, rate, start, end)
    np.testing.assert_array_equal(xs, ex)
    np.testing.assert_array_equal(ys, ey)


def test_timeseries_keras_docstring_example():
    """Keras's own example: rows 0..9 sampled every 2nd step give targets 10 steps later."""
    data = np.arange(100)
    ds = ln.utils.timeseries_dataset_from_array(
        data[:-10], data[10:], sequence_length=10, sampling_rate=2, batch_size=16
    )
    x, y = next(iter(ds))
    np.testing.assert_array_equal(x[0], np.arange(0, 20, 2))
    assert y[0] == 10
    np.testing.assert_array_equal(x[1], np.arange(1, 21, 2))
    assert y[1] == 11


def test_timeseries_windows_without_targets_and_shuffled():
    data = np.arange(30).reshape(15, 2)
    plain = np.concatenate(list(ln.utils.timeseries_dataset_from_array(data, None, 4)))
    assert plain.shape == (12, 4, 2)
    shuffled = np.concatenate(
        list(ln.utils.timeseries_dataset_from_array(data, None, 4, shuffle=True, seed=3))
    )
    assert not np.array_equal(shuffled, plain)
    np.testing.assert_array_equal(np.sort(shuffled[:, 0, 0]), plain[:, 0, 0])


def test_timeseries_trains_a_model():
    t = np.linspace(0, 20, 300).astype("float32")
    series = np.sin(t)[:, None]
    ds = ln.utils.timeseries_dataset_from_array(
        series[:-5], series[5:, 0], sequence_length=5, batch_size=32
    )
    model = ln.Sequential([ln.Input((5, 1)), ln.layers.Flatten(), ln.Dense(1, seed=0)])
    model.compile(ln.SGD(0.05), "mse")
    history = model.fit(ds, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sequence_length": 0}, r"`sequence_length`: expected a positive int"),
        ({"sequence_length": 3, "sampling_rate": 20}, r"`sampling_rate`: expected less than"),
        ({"sequence_length": 3, "start_index": 25}, r"`start_index`"),
        ({"sequence_length": 3, "start_index": 5, "end_index": 5}, r"`end_index`"),
        ({"sequence_length": 3, "batch_size": 0}, r"`batch_size`"),
    ],
)
def test_timeseries_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ln.utils.timeseries_dataset_from_array(np.arange(20), None, **kwargs)


def test_timeseries_targets_of_another_length():
    with pytest.raises(ValueError, match=r"`targets` with one entry per time step"):
        ln.utils.timeseries_dataset_from_array(np.arange(20), np.arange(19), 3)


# ------------------------------------------------------------------ split_dataset
def test_split_dataset_sizes_and_contents():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    left, right = ln.utils.split_dataset((x, y), left_size=0.7)
    assert (len(left), len(right)) == (7, 3)
    xs = np.stack([e[0] for e in left] + [e[0] for e in right])
    np.testing.assert_array_equal(xs, x)
    left, right = ln.utils.split_dataset(x, right_size=4, shuffle=True, seed=0)
    assert (len(left), len(right)) == (6, 4)
    both = np.concatenate([np.stack(list(left)), np.stack(list(right))])
    np.testing.assert_array_equal(np.sort(both[:, 0]), x[:, 0])
    left, right = ln.utils.split_dataset({"a": y}, left_size=2, right_size=3)
    assert (len(left), len(right)) == (2, 3)


def test_split_dataset_errors():
    with pytest.raises(ValueError, match=r"`left_size`: expected a fraction"):
        ln.utils.split_dataset(np.arange(5), left_size=1.5)
    with pytest.raises(ValueError, match=r"add up to more than the 5 samples"):
        ln.utils.split_dataset(np.arange(5), left_size=3, right_size=3)


# ------------------------------------------------------------------ symbolic tensors
def test_get_source_inputs_and_is_keras_tensor():
    a = ln.Input((3,), name="left")
    b = ln.Input((3,), name="right")
    h = ln.layers.Concatenate()([ln.Dense(2)(a), ln.Dense(2)(b), ln.Dense(2)(a)])
    sources = ln.utils.get_source_inputs(h)
    assert [t.name for t in sources] == ["left", "right"]
    assert ln.utils.get_source_inputs(a) == [a]
    assert ln.utils.is_keras_tensor(h) and not ln.utils.is_keras_tensor(np.ones(3))
    with pytest.raises(TypeError, match=r"get_source_inputs: expected a symbolic tensor"):
        ln.utils.get_source_inputs(np.ones(3))


# ------------------------------------------------------------------ custom objects
class ScopedOnlyDense(ln.Dense):
    """A user layer that is not registered: loading needs to be told about it."""


def _saved(tmp_path):
    model = ln.Sequential([ln.Input((3,)), ScopedOnlyDense(2, seed=0)])
    path = tmp_path / "scaled.npz"
    model.save(path)
    return model, path


def test_custom_object_scope_lets_loading_find_a_class(tmp_path):
    model, path = _saved(tmp_path)
    with pytest.raises(ValueError, match=r"ScopedOnlyDense"):
        ln.load_model(path)
    with ln.utils.custom_object_scope({"ScopedOnlyDense": ScopedOnlyDense}):
        back = ln.load_model(path)
        assert ln.utils.get_registered_object("ScopedOnlyDense") is ScopedOnlyDense
    assert type(back.layers[0]) is ScopedOnlyDense
    np.testing.assert_array_equal(back.get_weights()[0], model.get_weights()[0])
    assert ln.utils.get_registered_object("ScopedOnlyDense") is None  # the scope is closed
    with ln.utils.CustomObjectScope(
        {"ScopedOnlyDense": ScopedOnlyDense}, {"Other": ScopedOnlyDense}
    ) as scope:
        assert set(scope.custom_objects) == {"ScopedOnlyDense", "Other"}


def test_global_custom_objects(tmp_path):
    _, path = _saved(tmp_path)
    objects = ln.utils.get_custom_objects()
    objects["ScopedOnlyDense"] = ScopedOnlyDense
    try:
        assert type(ln.load_model(path).layers[0]) is ScopedOnlyDense
    finally:
        del objects["ScopedOnlyDense"]


def test_get_registered_object_finds_registered_classes():
    @ln.saving.register_keras_serializable(package="utils_test")
    class Registered(ln.Dense):
        pass

    assert ln.utils.get_registered_object("utils_test>Registered") is Registered
    assert ln.utils.get_registered_object("Registered") is Registered
    assert ln.utils.get_registered_object("Dense") is None  # layernet's own are not "custom"
    assert ln.utils.get_registered_object("x", module_objects={"x": 1}) == 1


# ------------------------------------------------------------------ session and dtypes
def test_clear_session_restarts_automatic_names():
    ln.Dense(2)
    ln.utils.clear_session()
    assert ln.Dense(2).name == "dense_1"
    assert ln.Dense(2).name == "dense_2"


@pytest.mark.parametrize(
    ("dtype", "name"), [(None, "float32"), ("float64", "float64"), (np.int32, "int32")]
)
def test_standardize_dtype(dtype, name):
    assert ln.utils.standardize_dtype(dtype) == name


def test_standardize_dtype_refuses_what_is_not_a_dtype():
    with pytest.raises(ValueError, match=r"standardize_dtype: invalid value for `dtype`"):
        ln.utils.standardize_dtype("not a dtype")
