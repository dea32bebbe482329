"""What the keras.io vision examples needed from the library: losses from functions,
Keras's input-rank adjustment, validation of multi-input models, tf.data-style datasets."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import losses as L
from layernet import ops
from layernet.gradcheck import numerical_gradient

F64 = {"dtype": "float64"}


def contrastive(y_true, y_pred, margin=1.0):
    square_pred = ops.square(y_pred)
    margin_square = ops.square(ops.maximum(margin - (y_pred), 0))
    return ops.mean((1 - y_true) * square_pred + (y_true) * margin_square)


def per_sample_log_cosh(y_true, y_pred):
    d = y_pred - y_true
    return ops.mean(ops.log((ops.exp(d) + ops.exp(-d)) / 2), axis=-1)


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


# ------------------------------------------------------------- LossFunctionWrapper


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
@pytest.mark.parametrize("weighted", [False, True])
def test_wrapped_function_gradient_is_the_finite_difference(reduction, weighted):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 3))
    w = rng.uniform(0.1, 2.0, 5) if weighted else None
    loss = L.LossFunctionWrapper(per_sample_log_cosh, reduction=reduction, **F64)
    loss.forward(x, t, sample_weight=w)
    analytic = loss.backward_input(0.7)
    numeric = numerical_gradient(lambda: 0.7 * loss(t, x, sample_weight=w), x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    margin=st.floats(0.5, 2.0),
)
def test_contrastive_loss_gradient_over_shapes(n, seed, margin):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 2.5, (n, 1))
    x[np.abs(margin - x) < 1e-3] += 0.01  # away from the kink of max(margin - x, 0)
    t = rng.integers(0, 2, n).astype(float)  # (n,): given the prediction's rank, as Keras
    loss = L.LossFunctionWrapper(contrastive, margin=margin, **F64)
    z = loss.forward(x, t)
    assert np.isfinite(z)
    numeric = numerical_gradient(lambda: loss(t, x), x)
    np.testing.assert_allclose(loss.backward_input(), numeric, rtol=1e-6, atol=1e-9)


def test_wrapped_function_equals_keras(keras):
    from keras import ops as kops

    wrapper = getattr(keras.losses, "LossFunctionWrapper", None)
    if wrapper is None:  # not exported by every Keras 3 release
        from keras.src.losses.losses import LossFunctionWrapper as wrapper

    def keras_contrastive(y_true, y_pred):
        square_pred = kops.square(y_pred)
        margin_square = kops.square(kops.maximum(1 - (y_pred), 0))
        return kops.mean((1 - y_true) * square_pred + (y_true) * margin_square)

    def keras_log_cosh(y_true, y_pred):
        d = y_pred - y_true
        return kops.mean(kops.log((kops.exp(d) + kops.exp(-d)) / 2), axis=-1)

    rng = np.random.default_rng(1)
    y_pred = rng.uniform(0, 2, (6, 1)).astype("float32")
    y_true = rng.integers(0, 2, 6).astype("float32")
    ours = L.LossFunctionWrapper(contrastive)(y_true, y_pred)
    theirs = wrapper(keras_contrastive)(y_true, y_pred)
    np.testing.assert_allclose(ours, float(theirs), rtol=1e-6)
    x, t, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.uniform(0, 1, 4)
    for reduction in ("sum_over_batch_size", "sum", "none"):
        ours = L.LossFunctionWrapper(per_sample_log_cosh, reduction=reduction, **F64)
        theirs = wrapper(keras_log_cosh, reduction=reduction)
        np.testing.assert_allclose(
            ours(t, x, sample_weight=w), np.asarray(theirs(t, x, sample_weight=w)), rtol=1e-5
        )


def test_compile_with_a_function_trains_like_the_built_in_loss():
    def mse(y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32")
    results = []
    for loss in (mse, "mse"):
        ln.utils.set_random_seed(0)
        model = ln.Sequential([ln.Input((3,)), ln.Dense(1)])
        model.compile(ln.SGD(0.1), loss=loss)
        history = model.fit(x, y, batch_size=16, epochs=3, verbose=0, shuffle=False)
        results.append(history.history["loss"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)
    assert results[0][-1] < results[0][0]


def test_wrapper_errors():
    with pytest.raises(ValueError, match="invalid value for `fn`"):
        L.LossFunctionWrapper(3)
    loss = L.LossFunctionWrapper(lambda t, p: np.mean((t - np.asarray(p)) ** 2))
    with pytest.raises(ValueError, match="does not depend on `y_pred`"):
        loss.forward(np.ones((2, 1)), np.ones((2, 1)))
    with pytest.raises(ValueError, match="one value for the whole batch"):
        L.LossFunctionWrapper(contrastive).forward(
            np.ones((2, 1)), np.ones(2), sample_weight=np.ones(2)
        )
    config = L.LossFunctionWrapper(contrastive, margin=2.0).get_config()
    assert config["margin"] == 2.0 and config["fn"].endswith("contrastive")
    with pytest.raises(ValueError, match="cannot rebuild the loss function"):
        L.LossFunctionWrapper.from_config({**config, "fn": "nowhere.no_such_function"})


# ------------------------------------------------------- functional models, Keras's ways


def test_functional_input_gets_keras_rank_adjustment():
    inp = ln.Input((4, 4, 1))
    model = ln.Model(inp, ln.Flatten()(inp))
    x = np.arange(32, dtype="float32").reshape(2, 4, 4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x.reshape(2, 16))
    np.testing.assert_array_equal(model.predict(x[..., None, None], verbose=0), x.reshape(2, 16))
    with pytest.raises(ValueError, match="expected input of shape"):
        model.predict(np.zeros((2, 4, 4, 2), "float32"), verbose=0)


def test_validation_of_a_two_input_model_equals_evaluate():
    a, b = ln.Input((3,)), ln.Input((3,))
    out = ln.Dense(1, activation="sigmoid")(ln.Subtract()([a, b]))
    model = ln.Model([a, b], out)
    model.compile("rmsprop", loss=contrastive, metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 40, 3)).astype("float32")
    y = rng.integers(0, 2, 40).astype("float32")
    history = model.fit([x1, x2], y, validation_data=([x1, x2], y), batch_size=16, verbose=0)
    loss, accuracy = model.evaluate([x1, x2], y, verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], loss, rtol=1e-6)
    np.testing.assert_allclose(history.history["val_accuracy"][-1], accuracy)


# ------------------------------------------------------------------ layernet.data


def test_dataset_pipeline_as_tf_data_builds_it():
    from layernet import data

    x = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    ds = data.Dataset.from_tensor_slices((x, y))
    assert len(ds) == 10 and [int(b) for _, b in ds] == list(range(10))
    batches = ds.batch(4).map(lambda a, b: (a + 1, b), num_parallel_calls=data.AUTOTUNE)
    assert [len(b) for _, b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(batches[0][0], x[:4] + 1)
    assert len(ds.batch(4, drop_remainder=True)) == 2
    assert len(batches.take(2)) == 2 and batches.prefetch(data.AUTOTUNE) is batches
    as_dict = data.Dataset.from_tensor_slices({"a": x, "b": y}).batch(3)
    assert as_dict[3]["a"].shape == (1, 2)
    with pytest.raises(ValueError, match="same first dimension"):
        data.Dataset.from_tensor_slices((x, y[:3]))
    with pytest.raises(ValueError, match="invalid value for `batch_size`"):
        ds.batch(0)
    with pytest.raises(IndexError, match="out of range"):
        ds[10]


@given(n=st.integers(1, 40), buffer_size=st.integers(1, 50), seed=st.integers(0, 100))
def test_shuffle_is_a_permutation_within_the_buffer(n, buffer_size, seed):
    from layernet import data

    ds = data.Dataset.from_tensor_slices(np.arange(n)).shuffle(buffer_size, seed=seed)
    order = [int(v) for v in ds]
    assert sorted(order) == list(range(n))
    # tf.data's buffer: the k-th element comes from the first k + buffer_size elements.
    assert all(v < k + buffer_size for k, v in enumerate(order))
    ds.on_epoch_end()
    assert sorted(int(v) for v in ds) == list(range(n))


def test_fit_takes_a_batched_dataset_and_reshuffles_it():
    from layernet import data

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    train = data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=0).batch(16)
    first = [int(v) for v in train[0][1]]
    model = ln.Sequential([ln.Input((3,)), ln.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, validation_data=train.take(1), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and "val_accuracy" in history.history
    assert np.isfinite(model.evaluate(train, verbose=0)).all()
    assert [int(v) for v in train[0][1]] != first or len(set(first)) == 1


def test_image_dataset_takes_map_take_prefetch(tmp_path):
    pytest.importorskip("PIL")
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for i in range(3):
            ln.utils.save_img(tmp_path / name / f"{i}.png", np.full((4, 4, 3), 50.0 * i))
    ds = ln.utils.image_dataset_from_directory(tmp_path, image_size=(4, 4), batch_size=4, seed=0)
    assert ds.prefetch(2) is ds
    ((images, _labels),) = list(ds.take(1))
    mapped = ds.map(lambda img, lab: (img / 255.0, lab), num_parallel_calls=-1)
    np.testing.assert_allclose(mapped[0][0], images / 255.0)
    assert len(mapped) == len(ds) == 2


# ------------------------------------------------------------ Keras's layer behaviours


def test_random_layers_called_on_arrays_transform_as_in_keras():
    x = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    flip = ln.layers.RandomFlip("horizontal", seed=0)
    outs = {flip(x).tobytes() for _ in range(8)}
    assert len(outs) > 1  # layer(x): training=True, as Keras's default for random layers
    assert flip(x, training=False).tobytes() == x.tobytes()
    inp = ln.Input((4, 4, 1))
    model = ln.Model(inp, ln.layers.RandomFlip("horizontal", seed=0)(inp))
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)  # inference: identity
    assert ln.Dense(2).call_training_default is False


def test_conv_configs_give_tuples_as_keras(keras):
    for ours, theirs in [
        (ln.layers.Conv2D(3, 5), keras.layers.Conv2D(3, 5)),
        (ln.layers.DepthwiseConv2D(5), keras.layers.DepthwiseConv2D(5)),
        (ln.layers.SeparableConv2D(3, 3), keras.layers.SeparableConv2D(3, 3)),
        (ln.layers.Conv2DTranspose(3, 3, strides=2), keras.layers.Conv2DTranspose(3, 3, 2)),
        (ln.layers.Conv1D(2, 3), keras.layers.Conv1D(2, 3)),
    ]:
        mine, keras_config = ours.get_config(), theirs.get_config()
        for key in ("kernel_size", "strides", "dilation_rate"):
            assert mine[key] == tuple(keras_config[key]), (type(ours).__name__, key)
        type(ours).from_config(mine)


@pytest.mark.parametrize("cls", ["DepthwiseConv2D", "SeparableConv2D"])
def test_depthwise_layers_keep_the_padded_input_not_patch_copies(cls):
    layer = getattr(ln.layers, cls)(*((4,) if cls == "SeparableConv2D" else ()), 5, padding="same")
    x = np.random.default_rng(0).standard_normal((2, 9, 9, 3)).astype("float32")
    layer.forward(x, training=True)
    assert layer.saved.padded.shape == (2, 13, 13, 3)  # not (2 * 81, 25, 3) patches


def test_image_dataset_from_directory_reports_as_keras(tmp_path, capsys):
    pytest.importorskip("PIL")
    for name in ("cat", "dog"):
        (tmp_path / name).mkdir()
        for i in range(5):
            ln.utils.save_img(tmp_path / name / f"{i}.png", np.zeros((3, 3, 3)))
    ln.utils.image_dataset_from_directory(
        tmp_path, validation_split=0.2, subset="both", seed=1, image_size=(3, 3)
    )
    assert capsys.readouterr().out.splitlines() == [
        "Found 10 files belonging to 2 classes.",
        "Using 8 files for training.",
        "Using 2 files for validation.",
    ]


def test_activation_functions_stand_for_their_names():
    dense = ln.layers.Dense(3, activation=ln.activations.gelu, seed=3)
    assert dense.get_config()["activation"] == "gelu"
    x = np.random.default_rng(0).standard_normal((2, 4))
    same = ln.layers.Dense(3, activation="gelu", seed=3)
    np.testing.assert_allclose(dense(x), same(x))
    with pytest.raises(TypeError, match=r"one of layernet\.activations' functions"):
        ln.layers.Dense(3, activation=lambda v: v)


class _PositionEncoder(ln.layers.Layer):
    """The Vision Transformer's PatchEncoder: a Dense on the input plus an Embedding of
    constant positions, inside call()."""

    def __init__(self, num_patches, dim, **kwargs):
        super().__init__(**kwargs)
        self.num_patches = num_patches
        self.projection = ln.layers.Dense(dim, dtype=kwargs.get("dtype", "float32"), seed=1)
        self.position_embedding = ln.layers.Embedding(
            num_patches, dim, dtype=kwargs.get("dtype", "float32"), seed=2
        )

    def call(self, patch):
        positions = ops.expand_dims(ops.arange(start=0, stop=self.num_patches, step=1), axis=0)
        return self.projection(patch) + self.position_embedding(positions)


def test_a_layer_called_on_constants_inside_call_gets_its_gradients():
    layer = _PositionEncoder(4, 3, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    y = layer(x)
    assert y.shape == (2, 4, 3)
    names = {w.path if hasattr(w, "path") else w.name for w in layer.weights}
    assert any("embedding" in n for n in names), names
    result = ln.gradcheck(layer, x)  # the Dense's and the Embedding's weights included
    assert result.passed, result
    name = layer.position_embedding.name
    assert f"{name}/embeddings" in str(result), result
