"""Subclassed models (``__init__`` + ``call()``) saved to a file and loaded back, Keras's rules."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import layernet as ln

os.environ.setdefault("KERAS_BACKEND", "jax")


class Scale(ln.layers.Layer):
    """A custom layer with a weight and a constructor argument."""

    def __init__(self, init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.alpha = self.add_weight(
            (input_shape[-1],), initializer=ln.initializers.Constant(self.init)
        )

    def call(self, x):
        return x * self.alpha

    def get_config(self):
        return {"init": self.init, **super().get_config()}


class MLP(ln.Model):
    """A subclassed model with get_config."""

    def __init__(self, hidden=8, outputs=2, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.outputs = hidden, outputs
        self.dense_1 = ln.layers.Dense(hidden, activation="tanh")
        self.scale = Scale(0.5)
        self.dense_2 = ln.layers.Dense(outputs)

    def call(self, inputs, training=None):
        return self.dense_2(self.scale(self.dense_1(inputs)))

    def get_config(self):
        return {"hidden": self.hidden, "outputs": self.outputs, **super().get_config()}


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 4)).astype("float32")
    return x, np.stack([x[:, 0] - x[:, 1], x[:, 2] * x[:, 3]], 1).astype("float32")


def trained(model, data, epochs=3):
    x, y = data
    model.compile(optimizer=ln.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
    return model


def assert_same_model(a, b, x):
    assert type(a) is type(b)
    assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()]
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


def test_saved_and_loaded_with_custom_objects(tmp_path, data):
    x, y = data
    model = trained(MLP(hidden=5), data)
    model.save(tmp_path / "m.keras")
    loaded = ln.models.load_model(tmp_path / "m.keras", custom_objects={"MLP": MLP, "Scale": Scale})
    assert isinstance(loaded, MLP) and loaded.hidden == 5 and loaded.name == model.name
    assert_same_model(model, loaded, x)
    # compiled again, optimizer state included: training goes on exactly as it would have
    assert type(loaded.optimizer) is ln.optimizers.Adam
    assert loaded.optimizer.iterations == model.optimizer.iterations == 9
    h1 = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    h2 = loaded.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-6)
    assert_same_model(model, loaded, x)


def test_registered_classes_load_without_custom_objects(tmp_path, data):
    @ln.saving.register_keras_serializable(package="tests_subclassed")
    class Head(ln.layers.Layer):
        def __init__(self, units=2, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.dense = ln.layers.Dense(units)

        def call(self, x):
            return self.dense(x) * 2.0

        def get_config(self):
            return {"units": self.units, **super().get_config()}

    @ln.saving.register_keras_serializable(package="tests_subclassed")
    class Net(ln.Model):
        def __init__(self, units=3, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.body = ln.layers.Dense(units, activation="relu")
            self.head = Head(2)

        def call(self, x):
            return self.head(self.body(x))

        def get_config(self):
            return {"units": self.units, **super().get_config()}

    x, _ = data
    model = trained(Net(units=6), data)
    model.save(tmp_path / "net.keras")
    header = json.loads(np.load(tmp_path / "net.keras", allow_pickle=False)["header"].tobytes())
    assert header["model"]["class_name"] == "tests_subclassed>Net"
    assert header["model"]["config"]["units"] == 6
    loaded = ln.models.load_model(tmp_path / "net.keras")
    assert isinstance(loaded, Net) and loaded.units == 6
    assert_same_model(model, loaded, x)


def test_without_get_config_the_constructor_arguments_are_the_config(tmp_path, data):
    class Plain(ln.Model):  # Keras's automatic config: plain constructor arguments
        def __init__(self, hidden=4, activation="relu", sizes=(3, 2), **kwargs):
            super().__init__(**kwargs)
            self.dense = ln.layers.Dense(hidden, activation=activation)
            self.out = ln.layers.Dense(sizes[-1])

        def call(self, x):
            return self.out(self.dense(x))

    x, _ = data
    model = Plain(7, activation="tanh", name="plain_net")
    model(x[:1])
    config = model.get_config()
    assert config["hidden"] == 7 and config["activation"] == "tanh"
    assert config["sizes"] == [3, 2] and config["name"] == "plain_net"
    model.save(tmp_path / "p.keras")
    loaded = ln.models.load_model(tmp_path / "p.keras", custom_objects={"Plain": Plain})
    assert loaded.dense.units == 7 and loaded.name == "plain_net"
    assert_same_model(model, loaded, x)

    class NoKwargs(ln.Model):  # no **kwargs: only the arguments it takes are stored
        def __init__(self, hidden=4):
            super().__init__()
            self.dense = ln.layers.Dense(hidden)

        def call(self, x):
            return self.dense(x)

    model = NoKwargs(hidden=3)
    model(x[:1])
    assert model.get_config() == {"hidden": 3}
    model.save(tmp_path / "n.keras")
    loaded = ln.models.load_model(tmp_path / "n.keras", custom_objects={"NoKwargs": NoKwargs})
    assert_same_model(model, loaded, x)


def test_without_get_config_and_with_object_arguments_there_is_no_config(tmp_path, data):
    class Wraps(ln.Model):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, x):
            return self.inner(x)

    model = Wraps(ln.layers.Dense(2))
    model(data[0][:1])
    message = r"Wraps has no config: .*\['inner'\] are not plain values.*Define get_config\(\)"
    with pytest.raises(NotImplementedError, match=message):
        model.get_config()
    with pytest.raises(NotImplementedError, match=message):
        model.save(tmp_path / "w.keras")
    assert not (tmp_path / "w.keras").exists()
    with pytest.raises(NotImplementedError, match=message):
        ln.models.clone_model(model)


def test_layers_in_the_config_are_stored_as_specs_and_rebuilt(tmp_path, data):
    class Wraps(ln.Model):
        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, x):
            return self.inner(x)

        def get_config(self):
            return {"inner": self.inner, **super().get_config()}

    x, _ = data
    model = Wraps(Scale(3.0))
    model(x[:1])
    model.save(tmp_path / "w.keras")
    header = json.loads(np.load(tmp_path / "w.keras", allow_pickle=False)["header"].tobytes())
    assert header["model"]["config"]["inner"]["config"]["init"] == 3.0
    loaded = ln.models.load_model(
        tmp_path / "w.keras", custom_objects={"Wraps": Wraps, "Scale": Scale}
    )
    assert isinstance(loaded.inner, Scale) and loaded.inner is not model.inner
    assert_same_model(model, loaded, x)


def test_a_config_missing_a_constructor_argument_is_a_clear_error(tmp_path, data):
    class Forgetful(ln.Model):
        def __init__(self, hidden, **kwargs):
            super().__init__(**kwargs)
            self.dense = ln.layers.Dense(hidden)

        def call(self, x):
            return self.dense(x)

        def get_config(self):  # forgets `hidden`
            return super().get_config()

    model = Forgetful(3)
    model(data[0][:1])
    model.save(tmp_path / "f.keras")
    with pytest.raises(
        ln.ModelFileError,
        match=r"cannot rebuild Forgetful.*Unable to revive model .*Forgetful.*"
        r"get_config\(\), it must return every argument",
    ):
        ln.models.load_model(tmp_path / "f.keras", custom_objects={"Forgetful": Forgetful})


def test_an_unknown_class_is_named_with_how_to_register_it(tmp_path, data):
    model = MLP()
    model(data[0][:1])
    model.save(tmp_path / "m.keras")
    with pytest.raises(
        ln.ModelFileError,
        match=r"holds a model of class '.*\.MLP', which is not known here.*"
        r"@layernet\.saving\.register_keras_serializable\(\).*custom_objects=\{'MLP': MLP\}",
    ):
        ln.models.load_model(tmp_path / "m.keras")


def test_a_file_names_only_model_classes_that_the_user_made_known(tmp_path, data):
    model = MLP()
    model(data[0][:1])
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as z:  # no pickled object anywhere in the file
        assert all(name.endswith(".npy") for name in z.namelist())
    arrays = dict(np.load(path, allow_pickle=False))
    header = json.loads(arrays["header"].tobytes())
    for name in ("builtins.eval", "os.system", "layernet>Dense", "Custom>Nothing"):
        header["model"]["class_name"] = name
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        np.savez(tmp_path / "t.npz", **arrays)
        with pytest.raises(ln.ModelFileError, match=r"not known here|not a subclass of Model"):
            ln.models.load_model(tmp_path / "t.npz", custom_objects={"MLP": MLP, "Scale": Scale})


def test_weights_files_and_load_weights(tmp_path, data):
    x, _ = data
    model = trained(MLP(), data, epochs=1)
    model.save_weights(tmp_path / "w.npz")
    other = MLP()
    other.load_weights(tmp_path / "w.npz")  # built from the file's input shape
    assert_same_model(model, other, x)
    wrong = MLP(hidden=3)
    with pytest.raises(ln.ModelFileError, match=r"does not match the model's parameters"):
        wrong.load_weights(tmp_path / "w.npz")


def test_random_layers_inside_continue_their_draws(tmp_path, data):
    class Noisy(ln.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.drop = ln.layers.Dropout(0.5)
            self.dense = ln.layers.Dense(2)

        def call(self, x, training=None):
            return self.dense(self.drop(x, training=training))

    x, y = data
    model = Noisy()
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "n.keras")
    loaded = ln.models.load_model(tmp_path / "n.keras", custom_objects={"Noisy": Noisy})
    np.testing.assert_array_equal(loaded(x, training=True), model(x, training=True))


def test_clone_model_of_a_subclassed_model(data):
    x, _ = data
    model = trained(MLP(hidden=6), data, epochs=1)
    clone = ln.models.clone_model(model)
    assert type(clone) is MLP and clone.hidden == 6 and clone.built
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    assert clone.dense_1 is not model.dense_1
    assert not np.array_equal(clone.get_weights()[0], model.get_weights()[0])  # fresh weights
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"clone_function.*MLP is a subclassed model"):
        ln.models.clone_model(model, clone_function=lambda layer: layer)


def test_the_same_class_round_trips_in_keras(tmp_path, data):
    keras = pytest.importorskip("keras")

    def make(K):
        class Net(K.Model):
            def __init__(self, hidden=4, **kwargs):
                super().__init__(**kwargs)
                self.hidden = hidden
                self.dense_1 = K.layers.Dense(hidden, activation="tanh")
                self.dense_2 = K.layers.Dense(2)

            def call(self, x):
                return self.dense_2(self.dense_1(x))

            def get_config(self):
                return {"hidden": self.hidden, **super().get_config()}

        return Net

    x, _ = data
    results = {}
    for K, suffix in ((keras, "keras"), (ln, "npz")):
        Net = make(K)
        model = Net(hidden=5)
        model(x[:1])
        path = tmp_path / f"net.{suffix}"
        model.save(path)
        loaded = K.models.load_model(path, custom_objects={"Net": Net})
        results[suffix] = (model, loaded)
        assert type(loaded) is Net and loaded.hidden == 5
        np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-6)
    keras_config, ours = results["keras"][0].get_config(), results["npz"][0].get_config()
    assert set(keras_config) - {"dtype"} <= set(ours)


def test_a_subclassed_model_inside_a_sequential_model(tmp_path, data):
    x, y = data
    model = ln.Sequential([ln.Input((4,)), MLP(hidden=5), ln.layers.Dense(2)])
    trained(model, data, epochs=2)
    model.save(tmp_path / "s.keras")
    custom = {"MLP": MLP, "Scale": Scale}
    loaded = ln.models.load_model(tmp_path / "s.keras", custom_objects=custom)
    assert isinstance(loaded.layers[0], MLP) and loaded.layers[0].hidden == 5
    assert_same_model(model, loaded, x)
    h1 = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    h2 = loaded.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-6)


def test_a_subclassed_model_inside_a_functional_model(tmp_path, data):
    x, _ = data
    inputs = ln.Input((4,))
    model = ln.Model(inputs, ln.layers.Dense(1)(MLP(hidden=3)(inputs)))
    model.save(tmp_path / "f.keras")
    loaded = ln.models.load_model(tmp_path / "f.keras", custom_objects={"MLP": MLP})
    assert isinstance(loaded.layers[1], MLP)
    assert_same_model(model, loaded, x)
