"""A newcomer's first hour: Keras habits that work, and errors that say what to do.

Every layer takes ``input_shape=`` and has ``get_weights``/``set_weights``; the
callbacks take Keras's arguments and behave as Keras's do (Keras itself is the
oracle where it is installed); an argument or a name layernet lacks gets an error
that points to the compatibility page; a notebook executed with no live view keeps
one line per epoch.
"""

from __future__ import annotations

import inspect
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_every_layer import CASES, REGISTERED, make, sample

import layernet as ln

COMPAT = re.escape("docs/keras_compat.md")


def keras_or_skip():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


def built(name: str, rng: np.random.Generator) -> ln.Layer:
    layer = make(name)
    layer.forward(sample(name, rng))
    return layer


# ---------------------------------------------------------------- input_shape
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_layer_takes_keras_input_shape(name):
    layer = make(name)
    assert layer.declared_input_shape is None
    assert "input_shape" not in layer.get_config()
    _, shape, _ = CASES[name]
    if isinstance(shape, list) or name in ("Model", "Sequential", "InputLayer", "OpLayer"):
        return  # several inputs, or a model or input whose inputs say their own shapes
    config = {**layer.get_config(), "input_shape": shape[1:]}
    declared = type(layer).from_config(config)
    assert declared.declared_input_shape == (None, *shape[1:])
    assert declared.get_config()["input_shape"] == list(shape[1:])
    again = type(layer).from_config(declared.get_config())
    assert again.declared_input_shape == (None, *shape[1:])
    params = inspect.signature(type(layer)).parameters
    assert "input_shape" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def test_input_shape_and_input_dim_as_keras_writes_them():
    assert ln.Dense(3, input_shape=(4,)).declared_input_shape == (None, 4)
    assert ln.Dense(3, input_dim=4).declared_input_shape == (None, 4)
    assert ln.Conv2D(8, 3, input_shape=(28, 28, 1)).declared_input_shape == (None, 28, 28, 1)
    assert ln.layers.Dense(3, input_shape=(None, 4)).declared_input_shape == (None, None, 4)


def test_declared_input_shape_survives_a_model_file(tmp_path):
    model = ln.Sequential([ln.Dense(3, input_shape=(4,), seed=0), ln.ReLU()])
    model.compile(ln.SGD(0.1), "mse")
    model.fit(np.ones((4, 4)), np.ones((4, 3)), verbose=0)
    model.save(tmp_path / "m.npz")
    assert ln.load_model(tmp_path / "m.npz").layers[0].declared_input_shape == (None, 4)


@pytest.mark.parametrize(
    ("make_layer", "match"),
    [
        (lambda: ln.Conv2D(4, 3, input_shape=(28, 28)), r"Conv2D '.*': invalid value for "),
        (lambda: ln.Dense(4, input_shape=(0,)), r"expected the shape of one sample"),
        (lambda: ln.Dense(4, input_shape="28"), r"expected the shape of one sample"),
        (lambda: ln.Dense(4, input_dim=-1), r"`input_dim`: expected a positive int"),
        (lambda: ln.Dense(4, input_dim=3, input_shape=(3,)), r"not both"),
    ],
)
def test_an_input_shape_the_layer_cannot_take_is_refused(make_layer, match):
    with pytest.raises(ValueError, match=match):
        make_layer()


# ------------------------------------------------------- get_weights / set_weights
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_layer_gets_and_sets_its_weights_in_keras_order(name, rng):
    layer = built(name, rng)
    weights = layer.get_weights()
    # parameters then state, without a random layer's generator state (not a weight in Keras)
    expected = [*layer.params.values(), *layer.state.values()]
    expected = [v for v in expected if not any(v is g for g in _generator_states(layer))]
    assert len(weights) == len(expected)
    for w, v in zip(weights, expected):
        np.testing.assert_array_equal(w, v)
        assert w is not v  # copies
    if not weights:
        layer.set_weights([])
        return
    new = [rng.standard_normal(w.shape) for w in weights]
    layer.set_weights(new)
    for w, v in zip(new, layer.get_weights()):
        np.testing.assert_array_equal(w.astype(layer.dtype), v)
    # an optimizer holding the arrays sees the new values: they are written in place
    kept = [v for v in [*layer.params.values(), *layer.state.values()]]
    kept = [v for v in kept if not any(v is g for g in _generator_states(layer))]
    assert all(a is b for a, b in zip(expected, kept, strict=True))


def _generator_states(layer):
    return [v for k, v in layer.state.items() if k == "seed_generator_state"]


@pytest.mark.parametrize("name", sorted(n for n in REGISTERED if n in ("Dense", "BatchNorm")))
def test_set_weights_refuses_a_bad_list_and_changes_nothing(name, rng):
    layer = built(name, rng)
    before = layer.get_weights()
    with pytest.raises(ValueError, match=rf"'{layer.name}': set_weights expected {len(before)} "):
        layer.set_weights(before[:-1])
    bad = [w + 1 for w in before]
    bad[-1] = np.zeros((*before[-1].shape, 2))
    with pytest.raises(ValueError, match=rf"weights\[{len(before) - 1}\] .* should have shape"):
        layer.set_weights(bad)
    with pytest.raises(TypeError, match=r"expected a list of arrays"):
        layer.set_weights(np.zeros(3))
    for w, v in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(w, v)


def test_set_weights_on_an_unbuilt_layer_says_to_build_it():
    with pytest.raises(ValueError, match=r"expected 0 arrays .*not built yet: call build"):
        ln.Dense(2).set_weights([np.zeros((3, 2)), np.zeros(2)])


def test_layer_weights_match_keras_order(rng):
    keras = keras_or_skip()
    ours = ln.BatchNormalization(dtype="float64")
    ours.build((None, 3))
    theirs = keras.layers.BatchNormalization()
    theirs.build((None, 3))
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.set_weights([w.astype("float64") for w in theirs.get_weights()])
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(
        ours.forward(x), np.asarray(theirs(x.astype("float32"), training=False)), atol=1e-5
    )


# ---------------------------------------------------------------- helpful errors
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_every_layer_names_an_argument_it_lacks_and_points_to_the_guide(name):
    if name in ("Model", "Sequential"):
        return  # a model's config describes its layers, not constructor arguments
    layer = make(name)
    config = {**layer.get_config(), "lora_alpha": 2.0}
    with pytest.raises(TypeError, match=rf"^{name}: layernet does not support the argument "):
        type(layer).from_config(config)
    with pytest.raises(TypeError, match=rf"`lora_alpha`.*{COMPAT}"):
        type(layer).from_config(config)


def test_a_missing_argument_names_the_class_and_its_arguments():
    with pytest.raises(
        TypeError, match=rf"^Dense: missing a required argument: 'units' .*{COMPAT}"
    ):
        ln.Dense()


def test_a_user_layer_gets_the_same_help():
    class Scale(ln.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def compute_output_shape(self, input_shape):
            return input_shape

    assert Scale(input_shape=(3,)).declared_input_shape == (None, 3)
    with pytest.raises(TypeError, match=r"Scale: layernet does not support .*`activity_reg"):
        Scale(activity_regularizer="l2")


CALLBACKS = {
    "EarlyStopping": lambda **kw: ln.EarlyStopping(**kw),
    "ModelCheckpoint": lambda **kw: ln.ModelCheckpoint("m.npz", **kw),
    "ReduceLROnPlateau": lambda **kw: ln.ReduceLROnPlateau(**kw),
    "CSVLogger": lambda **kw: ln.CSVLogger("log.csv", **kw),
    "TerminateOnNaN": lambda **kw: ln.TerminateOnNaN(**kw),
    "LearningRateScheduler": lambda **kw: ln.LearningRateScheduler(lambda e, lr: lr, **kw),
    "LambdaCallback": lambda **kw: ln.LambdaCallback(**kw),
    "History": lambda **kw: ln.History(**kw),
    "ProgressBar": lambda **kw: ln.ProgressBar(**kw),
}


@pytest.mark.parametrize("name", sorted(CALLBACKS))
def test_every_callback_names_an_argument_it_lacks(name):
    with pytest.raises(TypeError, match=rf"^{name}: layernet does not support the argument `nope`"):
        CALLBACKS[name](nope=1)


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("", "ConvLSTM2D"),
        ("layers", "ConvLSTM2D"),
        ("callbacks", "SwapEMAWeights"),
        ("optimizers", "Muon"),
        ("losses", "CTC"),
        ("initializers", "STFT"),
        ("utils", "FeatureSpace"),
        ("datasets", "svhn"),
    ],
)
def test_a_keras_name_layernet_lacks_points_to_the_guide(namespace, name):
    module = getattr(ln, namespace) if namespace else ln
    with pytest.raises(AttributeError, match=rf"has no attribute '{name}': layernet .*{COMPAT}"):
        getattr(module, name)
    assert not hasattr(module, name)


def test_keras_namespaces_resolve_the_names_layernet_has():
    keras = keras_or_skip()
    have = {
        n: obj
        for module in (ln, ln.layers, ln.callbacks, ln.optimizers, ln.losses, ln.metrics)
        for n, obj in vars(module).items()
        if not n.startswith("_") and isinstance(obj, type)
    }
    checked = 0
    for namespace in ("layers", "callbacks", "optimizers", "losses", "metrics", "initializers"):
        for name in dir(getattr(keras, namespace)):
            if name not in have:
                continue
            ours = have[name]
            family = {
                "layers": ln.Layer,
                "callbacks": ln.callbacks.Callback,
                "optimizers": ln.optimizers.Optimizer,
                "losses": ln.Loss,
                "metrics": ln.metrics.Metric,
                "initializers": ln.initializers.Initializer,
            }[namespace]
            if not issubclass(ours, family):
                continue  # the same name for another thing (metrics.BinaryCrossentropy)
            assert hasattr(getattr(ln, namespace), name), f"layernet.{namespace}.{name}"
            checked += 1
    assert checked > 40
    for name in ("to_categorical", "set_random_seed"):
        assert callable(getattr(ln.utils, name))


# ---------------------------------------------------------------- callbacks
KERAS_CALLBACKS = [
    "EarlyStopping",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
    "CSVLogger",
    "TerminateOnNaN",
    "LearningRateScheduler",
    "LambdaCallback",
    "History",
]


@pytest.mark.parametrize("name", KERAS_CALLBACKS)
def test_callbacks_take_keras_arguments_in_keras_order_with_keras_defaults(name):
    keras = keras_or_skip()
    theirs = inspect.signature(getattr(keras.callbacks, name)).parameters
    ours = inspect.signature(getattr(ln, name)).parameters
    theirs_named = [p for p in theirs.values() if p.kind is not p.VAR_KEYWORD]
    ours_named = [p for p in ours.values() if p.kind is not p.VAR_KEYWORD]
    assert [p.name for p in ours_named[: len(theirs_named)]] == [p.name for p in theirs_named]
    for p in theirs_named:
        assert ours[p.name].default == p.default, p.name


class FakeModel:
    """What the callbacks touch: weights, stop_training, an optimizer, save()."""

    def __init__(self):
        self.stop_training = False
        self.epoch = 0
        self.saved = []
        self.optimizer = type("Opt", (), {"learning_rate": 0.1})()

    def get_weights(self):
        return [np.array(float(self.epoch))]

    def set_weights(self, weights):
        self.restored = float(weights[0])

    def save(self, path, overwrite=True):
        self.saved.append(path)

    save_weights = save


def drive(callback, values, monitor="val_loss", batches=0):
    """Run ``callback`` through epochs whose monitored values are ``values``."""
    model = FakeModel()
    callback.set_model(model)
    if getattr(callback, "monitor_op", True) is None:
        callback._set_monitor_op()  # Keras sets it at the first epoch's end: batch saves need it
    callback.set_params({"epochs": len(values), "steps": batches, "verbose": 0})
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        model.epoch = epoch
        callback.on_epoch_begin(epoch)
        for batch in range(batches):
            callback.on_train_batch_end(batch, {"loss": value + batch})
        callback.on_epoch_end(epoch, {monitor: value, "loss": value})
        epochs += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return model, epochs


values = st.lists(st.integers(0, 6).map(lambda v: v / 4), min_size=1, max_size=12)


@given(
    values=values,
    patience=st.integers(0, 3),
    min_delta=st.sampled_from([0.0, 0.3]),
    mode=st.sampled_from(["min", "max"]),
    baseline=st.sampled_from([None, 0.6]),
    restore=st.booleans(),
    start=st.integers(0, 3),
)
def test_early_stopping_stops_and_restores_as_keras(
    values, patience, min_delta, mode, baseline, restore, start
):
    keras = keras_or_skip()
    kw = {
        "monitor": "val_loss",
        "min_delta": min_delta,
        "patience": patience,
        "mode": mode,
        "baseline": baseline,
        "restore_best_weights": restore,
        "start_from_epoch": start,
    }
    ours, ours_epochs = drive(ln.EarlyStopping(**kw), values)
    theirs, theirs_epochs = drive(keras.callbacks.EarlyStopping(**kw), values)
    assert ours_epochs == theirs_epochs
    assert getattr(ours, "restored", None) == getattr(theirs, "restored", None)


@given(
    values=values,
    mode=st.sampled_from(["min", "max"]),
    threshold=st.sampled_from([None, 0.7]),
    best_only=st.booleans(),
    save_freq=st.sampled_from(["epoch", 2, 3]),
)
def test_model_checkpoint_saves_when_keras_saves(values, mode, threshold, best_only, save_freq):
    keras = keras_or_skip()
    template = "m-{epoch}.npz" if save_freq == "epoch" else "m-{epoch}-{batch}.npz"
    kw = {
        "monitor": "loss",
        "save_best_only": best_only,
        "mode": mode,
        "save_freq": save_freq,
        "initial_value_threshold": threshold,
    }
    ours, _ = drive(ln.ModelCheckpoint(template, **kw), values, monitor="loss", batches=4)
    theirs_cb = keras.callbacks.ModelCheckpoint(template.replace(".npz", ".keras"), **kw)
    theirs, _ = drive(theirs_cb, values, monitor="loss", batches=4)
    assert ours.saved == [p.replace(".keras", ".npz") for p in theirs.saved]


@given(values=values, patience=st.integers(0, 2), cooldown=st.integers(0, 2))
def test_reduce_lr_on_plateau_reduces_when_keras_does(values, patience, cooldown):
    keras = keras_or_skip()
    kw = {"monitor": "val_loss", "factor": 0.5, "patience": patience, "cooldown": cooldown}
    kw |= {"min_delta": 0.1, "min_lr": 0.02}
    rates = []
    for cb in (ln.ReduceLROnPlateau(**kw), keras.callbacks.ReduceLROnPlateau(**kw)):
        model, _ = drive(cb, values)
        rates.append(float(model.optimizer.learning_rate))
    assert rates[0] == pytest.approx(rates[1])


def test_early_stopping_verbose_prints_what_keras_prints(capsys):
    stop = ln.EarlyStopping(monitor="val_loss", patience=1, verbose=1, restore_best_weights=True)
    model, epochs = drive(stop, [0.5, 0.4, 0.6, 0.7])
    assert epochs == 3 and model.restored == 1.0
    out = capsys.readouterr().out
    assert "Epoch 3: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out


def test_min_delta_sign_does_not_matter_as_in_keras():
    assert ln.EarlyStopping(min_delta=-0.5).min_delta == 0.5


def test_model_checkpoint_verbose_and_save_freq_in_a_real_fit(tmp_path, capsys):
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile(ln.SGD(0.1), "mse")
    x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    cb = ln.ModelCheckpoint(tmp_path / "new" / "m-{epoch}-{batch}.npz", save_freq=3, verbose=1)
    model.fit(x, x[:, :1], epochs=2, batch_size=5, verbose=0, callbacks=[cb])  # 4 batches/epoch
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["m-1-3.npz", "m-2-2.npz"]
    assert "Epoch 1: saving model to" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"`save_freq`: expected 'epoch' or a positive int"):
        ln.ModelCheckpoint("m.npz", save_freq="batch")


def test_checkpoint_naming_val_values_with_batch_saves_is_refused_before_training(tmp_path):
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile(ln.SGD(0.1), "mse")
    x = np.ones((8, 2), dtype="float32")
    cb = ln.ModelCheckpoint(tmp_path / "m-{val_loss}.npz", save_freq=2)
    with pytest.raises(ValueError, match=r"names \['val_loss'\], .*batch's logs"):
        model.fit(x, x[:, :1], validation_split=0.25, verbose=0, callbacks=[cb])


def test_terminate_on_nan_raise_error_and_scheduler_verbose(capsys):
    x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile(ln.SGD(1e30), "mse")
    with pytest.raises(RuntimeError, match=r"TerminateOnNaN: .* at epoch \d+, batch \d+"):
        model.fit(x, x[:, :1], epochs=5, verbose=0, callbacks=[ln.TerminateOnNaN(True)])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile(ln.SGD(0.1), "mse")
    halve = ln.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch, verbose=1)
    model.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[halve])
    assert (
        "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    )


# ---------------------------------------------------------------- notebooks
def test_progress_in_a_notebook_executed_with_no_live_view_is_one_line_per_epoch():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    code = (
        "import numpy as np\n"
        "import layernet as ln\n"
        "print('live:', ln.callbacks.live_frontend())\n"
        "model = ln.Sequential([ln.Dense(1, seed=0)])\n"
        "model.compile(ln.SGD(0.1), 'mse', ['mae'])\n"
        "x = np.ones((20, 2), dtype='float32')\n"
        "h = model.fit(x, x[:, :1], epochs=2, batch_size=3)\n"
        "h = model.fit(x, x[:, :1], epochs=1, batch_size=3, verbose=1)\n"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.km = client.create_kernel_manager()
    old = dict(os.environ)
    os.environ.update(env)  # the kernel inherits it
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = nb.cells[0].outputs
    assert all(o.output_type == "stream" for o in outputs), outputs  # no widget
    text = "".join(o.text for o in outputs)
    assert "live: False" in text
    lines = re.findall(r"^Epoch (\d)/(\d) - [\d.]+s - loss: \S+ - mae: \S+$", text, re.M)
    assert lines == [("1", "2"), ("2", "2"), ("1", "1")], text


def test_live_frontend_reads_who_sent_the_request(monkeypatch):
    """jupyter_client (nbclient, nbconvert, papermill) numbers messages ``<session>_<pid>_<n>``;
    browser frontends send bare UUIDs."""
    import sys
    import types

    from layernet import callbacks

    shell = type("ZMQInteractiveShell", (), {})()
    ipython = types.SimpleNamespace(get_ipython=lambda: shell)
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "ipykernel", types.SimpleNamespace())
    for msg_id, live in [
        ("cdc80007-cdacf96e2287c2951de6236d_16410_3", False),
        ("2f1c6f5e-55b8-4d62-9b8a-0a7c1c3c2d1e", True),
    ]:
        shell.parent_header = {"header": {"msg_id": msg_id}}
        assert callbacks.live_frontend() is live
        assert ln.ProgressBar().verbose == (1 if live else 2)
