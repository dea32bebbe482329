"""The library additions the keras.io guides needed (``tools/keras_guides.py`` runs the
guides from a keras-io checkout), each checked on its own, with Keras 3 (JAX backend) as
the oracle where numbers are involved."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln


def _keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


def _true_positives_class(k):
    """The guide's CategoricalTruePositives, written against framework ``k``."""
    ops = k.ops

    class CategoricalTruePositives(k.metrics.Metric):
        def __init__(self, name="categorical_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_variable(shape=(), name="ctp", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
            values = ops.cast(y_true, "int32") == ops.cast(y_pred, "int32")
            values = ops.cast(values, "float32")
            if sample_weight is not None:
                values = ops.multiply(values, ops.cast(sample_weight, "float32"))
            self.true_positives.assign_add(ops.sum(values))

        def result(self):
            return self.true_positives

        def reset_state(self):
            self.true_positives.assign(0.0)

    return CategoricalTruePositives


def test_metric_add_variable_matches_keras():
    keras = _keras()
    rng = np.random.default_rng(0)
    y_pred = rng.random((8, 4))
    y_true = rng.integers(0, 4, (8, 1))
    w = rng.random((8, 1))
    ours, theirs = _true_positives_class(ln)(), _true_positives_class(keras)()
    for m in (ours, theirs):
        m.update_state(y_true, y_pred)
        m.update_state(y_true, y_pred, sample_weight=w)
    np.testing.assert_allclose(float(ours.result()), float(theirs.result()), rtol=1e-6)
    assert f"{ours.result():.4f}" == f"{float(theirs.result()):.4f}"
    assert len(ours.variables) == len(theirs.variables) == 1
    ours.reset_state()
    assert float(ours.result()) == 0.0


def test_metric_add_variable_initializer_and_reset():
    m = ln.metrics.Metric(name="m")
    v = m.add_variable(shape=(2,), initializer="ones", name="v")
    np.testing.assert_array_equal(v.numpy(), [1.0, 1.0])
    assert m.variables[0] is v.numpy()
    m.reset_state()  # Keras's reset: zeros
    np.testing.assert_array_equal(v.numpy(), [0.0, 0.0])
    w = m.add_weight(shape=(), name="w")
    assert float(w) == 0.0
    with pytest.raises(ValueError, match="a variable named 'v' exists already"):
        m.add_variable(shape=(), name="v")
    with pytest.raises(ValueError, match="`aggregation`: expected 'sum' or 'mean'"):
        m.add_variable(shape=(), aggregation="max")


def test_metric_of_ones_own_in_fit_logs():
    """A metric whose result() is its state Variable: each epoch's log is a float of its own,
    and the state is reset at each epoch (here: the number of samples seen)."""

    class Seen(ln.metrics.Metric):
        def __init__(self):
            super().__init__(name="seen")
            self.n = self.add_variable(shape=(), initializer="zeros", name="n")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.n.assign_add(np.shape(y_pred)[0])

        def result(self):
            return self.n

    inputs = ln.Input(shape=(3,))
    model = ln.Model(inputs, ln.layers.Dense(4, activation="softmax")(inputs))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=[Seen()])
    rng = np.random.default_rng(1)
    x, y = rng.random((16, 3)), rng.integers(0, 4, 16)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert history.history["seen"] == [16.0, 16.0]
    assert all(type(v) is float for v in history.history["seen"])


def test_variable_format_and_float():
    v = ln.Variable(np.array(1.23456), name="s")
    assert f"{v:.2f}" == "1.23" and float(v) == pytest.approx(1.23456)


def test_tensorboard_takes_keras_arguments_at_their_defaults(tmp_path):
    tb = ln.callbacks.TensorBoard(
        log_dir=str(tmp_path),
        histogram_freq=0,
        embeddings_freq=0,
        update_freq="epoch",
        write_graph=True,
        write_images=False,
        profile_batch=0,
        embeddings_metadata=None,
    )
    assert tb.histogram_freq == 0 and tb.update_freq == "epoch"
    with pytest.raises(ValueError, match="TensorBoard: invalid value for `embeddings_freq`"):
        ln.callbacks.TensorBoard(str(tmp_path), embeddings_freq=1)
    with pytest.raises(ValueError, match=r"`write_images`.*received True"):
        ln.callbacks.TensorBoard(str(tmp_path), write_images=True)
    with pytest.raises((TypeError, ValueError), match="write_graph"):
        ln.callbacks.TensorBoard(str(tmp_path), write_graph="yes")


def test_functional_from_config_with_a_layer_whose_config_has_no_name():
    """The Functional API guide's CustomDense: get_config() returns only `units`."""
    keras = _keras()

    def custom_dense(k):
        class CustomDense(k.layers.Layer):
            def __init__(self, units=32):
                super().__init__()
                self.units = units

            def build(self, input_shape):
                self.w = self.add_weight(shape=(input_shape[-1], self.units), trainable=True)

            def call(self, inputs):
                return k.ops.matmul(inputs, self.w)

            def get_config(self):
                return {"units": self.units}

        return CustomDense

    x = np.random.default_rng(0).random((2, 4))
    shapes = []
    for k in (ln, keras):
        CustomDense = custom_dense(k)
        inputs = k.Input((4,))
        model = k.Model(inputs, CustomDense(10)(inputs))
        new = k.Model.from_config(model.get_config(), custom_objects={"CustomDense": CustomDense})
        assert [type(layer).__name__ for layer in new.layers][-1] == "CustomDense"
        shapes.append(tuple(np.asarray(new(x)).shape))
    assert shapes[0] == shapes[1] == (2, 10)


def _losses_of(k):
    ops = k.ops

    def custom_mean_squared_error(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    class CustomMSE(k.losses.Loss):
        def __init__(self, regularization_factor=0.1, name="custom_mse"):
            super().__init__(name=name)
            self.regularization_factor = regularization_factor

        def call(self, y_true, y_pred):
            mse = ops.mean(ops.square(y_true - y_pred), axis=-1)
            reg = ops.mean(ops.square(0.5 - y_pred), axis=-1)
            return mse + reg * self.regularization_factor

    return custom_mean_squared_error, CustomMSE()


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("weighted", [False, True])
def test_custom_losses_match_keras_value_and_gradient(which, weighted):
    """A loss function and a Loss subclass with call(): value and ∂z/∂y_pred as in Keras."""
    keras = _keras()
    import jax

    rng = np.random.default_rng(2)
    y_true, y_pred = rng.random((5, 3)), rng.random((5, 3))
    w = rng.random(5) if weighted else None
    ours = ln.losses.get(_losses_of(ln)[which], dtype="float64")
    theirs = _losses_of(keras)[which]
    if which == 0:
        from keras.src.losses.losses import LossFunctionWrapper

        theirs = LossFunctionWrapper(theirs)
    z = ours.forward(y_pred, y_true, sample_weight=w)
    g = ours.backward_input()
    z_k, g_k = jax.value_and_grad(lambda p: theirs(y_true, p, sample_weight=w))(y_pred)
    np.testing.assert_allclose(z, float(z_k), rtol=1e-5)
    np.testing.assert_allclose(g, np.asarray(g_k), rtol=1e-4, atol=1e-6)
    assert ours(y_true, y_pred, sample_weight=w) == pytest.approx(z)


def test_custom_loss_gradient_by_finite_differences():
    loss = ln.losses.get(_losses_of(ln)[0], dtype="float64")
    rng = np.random.default_rng(3)
    y_true, y_pred = rng.random((4, 2)), rng.random((4, 2))
    loss.forward(y_pred, y_true)
    g = loss.backward_input()
    eps, fd = 1e-6, np.zeros_like(y_pred)
    for i in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[i] += eps
        down[i] -= eps
        fd[i] = (loss(y_true, up) - loss(y_true, down)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


def test_custom_loss_trains_in_fit_and_numpy_function_is_refused():
    fn, subclassed = _losses_of(ln)
    rng = np.random.default_rng(4)
    x, y = rng.random((32, 3)), rng.random((32, 2))
    for loss in (fn, subclassed):
        inputs = ln.Input(shape=(3,))
        model = ln.Model(inputs, ln.layers.Dense(2)(inputs))
        model.compile(optimizer=ln.optimizers.SGD(0.5), loss=loss)
        history = model.fit(x, y, batch_size=32, epochs=5, verbose=0)
        assert history.history["loss"][-1] < history.history["loss"][0]

    def numpy_mse(y_true, y_pred):
        return np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2, axis=-1)

    with pytest.raises(
        ValueError, match=r"loss function 'numpy_mse' returned a value that does not depend on"
    ):
        ln.losses.get(numpy_mse)(y, x[:, :2])


def test_fit_and_evaluate_take_a_torch_dataloader():
    """A re-iterable source such as a DataLoader: each epoch iterates it afresh; its
    [x, y] lists are (x, y) batches. Training matches the same batches given as arrays."""
    torch = pytest.importorskip("torch")

    class Pairs(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i], self.y[i]

    rng = np.random.default_rng(5)
    x, y = rng.random((24, 3)).astype("float32"), rng.integers(0, 4, 24)
    loader = torch.utils.data.DataLoader(Pairs(x, y), batch_size=8, shuffle=False)

    def model():
        inputs = ln.Input(shape=(3,))
        m = ln.Model(inputs, ln.layers.Dense(4, activation="softmax", seed=0)(inputs))
        m.compile(optimizer=ln.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return m

    a, b = model(), model()
    b.set_weights(a.get_weights())
    ha = a.fit(loader, epochs=2, verbose=0, validation_data=loader)
    hb = b.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, validation_data=(x, y))
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], rtol=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, rtol=1e-5)
    assert a.evaluate(loader, verbose=0) == pytest.approx(b.evaluate(x, y, verbose=0), rel=1e-5)
    assert a.predict(loader, verbose=0).shape == (24, 4)


def _endpoint_model(k):
    """The training guide's LogisticEndpoint: call(self, targets, logits, sample_weights=None)."""

    class LogisticEndpoint(k.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = k.losses.BinaryCrossentropy(from_logits=True)

        def call(self, targets, logits, sample_weights=None):
            self.add_loss(self.loss_fn(targets, logits, sample_weights))
            return k.ops.softmax(logits)

    inputs = k.Input(shape=(3,), name="inputs")
    targets = k.Input(shape=(10,), name="targets")
    logits = k.layers.Dense(10)(inputs)
    predictions = LogisticEndpoint(name="predictions")(targets, logits)
    model = k.Model(inputs=[inputs, targets], outputs=predictions)
    model.compile(optimizer=k.optimizers.SGD(0.5))
    return model


def test_layer_called_on_several_positional_tensors_matches_keras():
    keras = _keras()
    rng = np.random.default_rng(6)
    data = {"inputs": rng.random((6, 3)), "targets": rng.random((6, 10))}
    ours, theirs = _endpoint_model(ln), _endpoint_model(keras)
    ours.set_weights([np.asarray(w) for w in theirs.get_weights()])
    np.testing.assert_allclose(
        ours.predict(data, verbose=0), np.asarray(theirs.predict(data, verbose=0)), rtol=1e-5
    )
    h_ours = ours.fit(data, batch_size=6, epochs=2, shuffle=False, verbose=0)
    h_theirs = theirs.fit(data, batch_size=6, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_ours.history["loss"], h_theirs.history["loss"], rtol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-6)


def test_several_positional_tensors_only_for_a_call_that_takes_them():
    class Two(ln.layers.Layer):
        def call(self, a, b):
            return a - b

    x, y = np.ones((2, 3)), np.full((2, 3), 3.0)
    np.testing.assert_array_equal(Two()(x, y), x - y)
    with pytest.raises(TypeError, match="expected one positional argument"):
        ln.layers.Dense(2)(x, y)
    with pytest.raises(TypeError, match="expected one positional argument"):
        Two()(x, y, x)
