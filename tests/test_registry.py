"""Class names in model files: built-ins, registered user classes, custom_objects, old files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import layernet as ln
from layernet import ModelFileError

DATA = Path(__file__).parent / "data"


def test_file_written_by_the_first_format_still_loads():
    # Written with bare class names ("Dense", "Conv1D", ...) by layernet 0.1.0.
    model = ln.load_model(DATA / "legacy_v1_model.npz")
    with np.load(DATA / "legacy_v1_expected.npz") as ref:
        np.testing.assert_allclose(model.predict(ref["x"]), ref["pred"], rtol=1e-12, atol=1e-12)
    assert [type(layer) for layer in model.layers][:3] == [ln.Conv1D, ln.ReLU, ln.BatchNorm]
    assert isinstance(model.loss, ln.SoftmaxCrossEntropy)


def small_model(*layers, loss="mse"):
    model = ln.Sequential(list(layers))
    model.compile(ln.SGD(0.1), loss)
    model.build((None, 4), seed=0)
    return model


def header(path):
    with np.load(path) as npz:
        return json.loads(npz["header"].tobytes().decode())


def test_builtins_are_written_under_names_no_user_class_can_take(tmp_path):
    model = small_model(ln.Dense(3), ln.ReLU(), ln.Dense(2))
    model.save(tmp_path / "m.npz")
    head = header(tmp_path / "m.npz")
    assert [spec["class_name"] for spec in head["layers"]] == [
        "layernet>Dense",
        "layernet>ReLU",
        "layernet>Dense",
    ]
    assert head["compile"]["loss"]["class_name"] == "layernet>MeanSquaredError"


def test_a_user_class_named_like_a_builtin_changes_nothing(tmp_path):
    class Dense(ln.Dense):  # the user's own, named like the built-in
        def compute_forward(self, x, training):
            y, saved = super().compute_forward(x, training)
            return 2 * y, saved

    builtin = small_model(ln.Dense(3, seed=0), ln.Dense(2, seed=1))
    builtin.save(tmp_path / "builtin.npz")
    loaded = ln.load_model(tmp_path / "builtin.npz")
    assert [type(layer) for layer in loaded.layers] == [ln.Dense, ln.Dense]
    # custom_objects cannot replace layernet's Dense, by either of its names
    for key in ("Dense", "layernet>Dense"):
        with pytest.raises(ValueError, match=rf"'{key}' names layernet's own class Dense"):
            ln.load_model(tmp_path / "builtin.npz", custom_objects={key: Dense})
    loaded = ln.load_model(tmp_path / "builtin.npz", custom_objects={"Dense": ln.Dense})
    assert [type(layer) for layer in loaded.layers] == [ln.Dense, ln.Dense]
    # The user's class is saved under its module path and needs custom_objects.
    mine = small_model(Dense(3, seed=0), ln.Dense(2, seed=1))
    mine.save(tmp_path / "mine.npz")
    stored = header(tmp_path / "mine.npz")["layers"][0]["class_name"]
    assert (
        stored
        == f"{__name__}.test_a_user_class_named_like_a_builtin_changes_nothing.<locals>.Dense"
    )
    with pytest.raises(ModelFileError, match=r"not one of layernet's layers nor a registered"):
        ln.load_model(tmp_path / "mine.npz")
    back = ln.load_model(tmp_path / "mine.npz", custom_objects={stored: Dense})
    assert [type(layer) for layer in back.layers] == [Dense, ln.Dense]
    x = np.ones((2, 4), dtype="float32")
    np.testing.assert_array_equal(back.predict(x), mine.predict(x))


@ln.register_serializable(package="test_pkg")
class Scaled(ln.Layer):
    """A registered user layer with an argument: y = factor * x."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def get_config(self):
        return {"factor": self.factor, **super().get_config()}

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        return self.factor * x, None

    def compute_backward_input(self, dy, saved):
        return self.factor * dy


class UserMSE(ln.MSELoss):
    pass


def test_registered_classes_load_without_custom_objects(tmp_path):
    assert ln.get_registered_name(Scaled) == "test_pkg>Scaled"
    model = small_model(ln.Dense(3), Scaled(3.0))
    model.save(tmp_path / "m.npz")
    assert header(tmp_path / "m.npz")["layers"][1]["class_name"] == "test_pkg>Scaled"
    back = ln.load_model(tmp_path / "m.npz")
    assert isinstance(back.layers[1], Scaled) and back.layers[1].factor == 3.0


def test_custom_losses_load_through_custom_objects(tmp_path):
    model = small_model(ln.Dense(3), loss=UserMSE())
    model.save(tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="UserMSE"):
        ln.load_model(tmp_path / "m.npz")
    back = ln.load_model(tmp_path / "m.npz", custom_objects={"UserMSE": UserMSE})
    assert type(back.loss) is UserMSE


def test_register_serializable_refuses_bad_names_and_collisions():
    with pytest.raises(ValueError, match="reserved for layernet's own classes"):
        ln.register_serializable(package="layernet")
    with pytest.raises(ValueError, match="invalid value for `package`"):
        ln.register_serializable(package="a>b")
    with pytest.raises(TypeError, match="expected a Layer or Loss subclass"):
        ln.register_serializable(package="p")(int)

    class Other(ln.ReLU):
        pass

    with pytest.raises(ValueError, match="'test_pkg>Scaled' is already registered"):
        ln.register_serializable(package="test_pkg", name="Scaled")(Other)


def test_first_format_bare_names_still_mean_builtins(tmp_path):
    # A bare "Dense" (first format) is layernet's Dense, whatever user classes exist.
    class Dense(ln.Dense):
        pass

    model = ln.load_model(DATA / "legacy_v1_model.npz")
    assert type(model.layers[6]) is ln.Dense
