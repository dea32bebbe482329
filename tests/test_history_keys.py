"""What ``fit`` logs, against Keras 3 (JAX backend) as the oracle: History keys in Keras's order,
``"learning_rate"`` only from a learning-rate callback (with Keras's values), CSVLogger's header,
and the progress bar and ``History.plot`` that leave the rate out."""

from __future__ import annotations

import csv
import os
from types import SimpleNamespace

import numpy as np
import pytest

import layernet as ln

os.environ["KERAS_BACKEND"] = "jax"
keras = pytest.importorskip("keras")

RNG = np.random.default_rng(0)
X = RNG.standard_normal((32, 4)).astype("float32")
Y = (X.sum(axis=1) > 0).astype("float32")[:, None]


def api(lib):
    """The names the tests use, from layernet or from Keras."""
    if lib == "keras":
        return SimpleNamespace(
            Sequential=keras.Sequential,
            Model=keras.Model,
            Input=keras.Input,
            Dense=keras.layers.Dense,
            SGD=keras.optimizers.SGD,
            ReduceLROnPlateau=keras.callbacks.ReduceLROnPlateau,
            LearningRateScheduler=keras.callbacks.LearningRateScheduler,
            CSVLogger=keras.callbacks.CSVLogger,
        )
    return ln


def sequential(lib, with_metrics=True):
    m = api(lib)
    model = m.Sequential(
        [m.Input((4,)), m.Dense(3, activation="relu"), m.Dense(1, activation="sigmoid")]
    )
    model.compile(m.SGD(0.1), "binary_crossentropy", metrics=["accuracy"] if with_metrics else None)
    return model


def two_outputs(lib, with_metrics=True):
    m = api(lib)
    inputs = m.Input((4,))
    hidden = m.Dense(3, activation="relu")(inputs)
    a = m.Dense(1, name="a")(hidden)
    b = m.Dense(1, activation="sigmoid", name="b")(hidden)
    model = m.Model(inputs, [a, b])
    model.compile(m.SGD(0.1), loss=["mse", "binary_crossentropy"], metrics=[["mae"], ["accuracy"]])
    return model


def one_loss_of_two(lib, with_metrics=True):
    m = api(lib)
    inputs = m.Input((4,))
    a = m.Dense(1, name="a")(inputs)
    b = m.Dense(1, activation="sigmoid", name="b")(inputs)
    model = m.Model(inputs, [a, b])
    model.compile(
        m.SGD(0.1), loss=["mse", None], metrics=[None, ["accuracy"]] if with_metrics else None
    )
    return model


def dict_outputs(lib, with_metrics=True):
    m = api(lib)
    inputs = m.Input((4,))
    a = m.Dense(1, name="a")(inputs)
    b = m.Dense(1, activation="sigmoid", name="b")(inputs)
    model = m.Model(inputs, {"a": a, "b": b})
    metrics = {"b": ["accuracy"]} if with_metrics else None
    model.compile(m.SGD(0.1), loss={"a": "mse", "b": "binary_crossentropy"}, metrics=metrics)
    return model


def targets(build):
    if build is dict_outputs:
        return {"a": Y, "b": Y}
    return [Y, Y] if build in (two_outputs, one_loss_of_two) else Y


def plateau(lib):
    return api(lib).ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)


def halving(lib):
    return api(lib).LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)


def plain(lib):
    return api(lib).LearningRateScheduler(lambda epoch: 0.02 * (epoch + 1))


CASES = {
    "sequential": (sequential, False, None),
    "sequential_validation": (sequential, True, None),
    "sequential_plateau": (sequential, True, plateau),
    "sequential_scheduler": (sequential, False, halving),
    "sequential_scheduler_epoch_only": (sequential, True, plain),
    "two_outputs": (two_outputs, False, None),
    "two_outputs_validation": (two_outputs, True, None),
    "two_outputs_plateau": (two_outputs, True, plateau),
    "two_outputs_scheduler": (two_outputs, True, halving),
    "one_loss_of_two": (one_loss_of_two, True, None),
    "dict_outputs_plateau": (dict_outputs, True, plateau),
}


def run(lib, build, validation, callback, **fit_kw):
    model = build(lib)
    y = targets(build)
    cbs = [callback(lib)] if callback is not None else []
    kw = {"epochs": 3, "batch_size": 8, "verbose": 0, **fit_kw}
    kw["callbacks"] = cbs + fit_kw.get("callbacks", [])
    return model.fit(X, y, validation_data=(X, y) if validation else None, **kw)


@pytest.mark.parametrize("case", CASES)
def test_history_keys_and_learning_rates_as_keras(case):
    build, validation, callback = CASES[case]
    ours = run("layernet", build, validation, callback).history
    theirs = run("keras", build, validation, callback).history
    assert list(ours) == list(theirs)
    assert ("learning_rate" in ours) == (callback is not None)
    if callback is not None:
        # Keras keeps the rate as a float32 variable
        assert ours["learning_rate"] == pytest.approx(theirs["learning_rate"], rel=1e-6)
        assert all(type(v) is float for v in ours["learning_rate"])
    assert "lr" not in ours


@pytest.mark.parametrize("logger_first", [True, False])
@pytest.mark.parametrize("validation_freq", [1, 2])
@pytest.mark.parametrize("build", [sequential, two_outputs])
def test_csv_logger_header_as_keras(tmp_path, build, validation_freq, logger_first):
    headers = []
    for lib in ("layernet", "keras"):
        path = tmp_path / f"{lib}.csv"
        m = api(lib)
        cbs = [plateau(lib), m.CSVLogger(str(path))]
        if logger_first:  # the logger does not see what a later callback adds
            cbs.reverse()
        run(lib, build, True, None, callbacks=cbs, validation_freq=validation_freq)
        with path.open() as f:
            rows = list(csv.reader(f))
        headers.append(rows[0])
        assert len(rows) == 4
    assert headers[0] == headers[1]
    assert ("learning_rate" in headers[0]) == (not logger_first)


def test_progress_bar_and_plot_leave_the_rate_out(capsys):
    history = run("layernet", sequential, True, halving, verbose=2)
    out = capsys.readouterr().out
    assert "loss" in out and "val_accuracy" in out
    assert "learning_rate" not in out
    assert "learning_rate" in history.history
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = history.plot()
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]  # the loss first
    assert [[line.get_label() for line in ax.lines] for ax in fig.axes] == [
        ["train", "validation"],
        ["train", "validation"],
    ]


def test_per_output_log_names_are_known_before_training(tmp_path):
    model = two_outputs("layernet")
    stop = ln.EarlyStopping(monitor="val_b_accuracy", patience=5)
    keep = ln.ModelCheckpoint(str(tmp_path / "m-{epoch}-{val_a_mae:.3f}.npz"))
    history = run("layernet", two_outputs, True, None, callbacks=[stop, keep])
    assert len(list(tmp_path.iterdir())) == len(history.epoch) == 3
    with pytest.raises(ValueError, match=r"monitored value 'val_b_accuracy' is not in the logs"):
        model.fit(X, [Y, Y], epochs=1, verbose=0, callbacks=[stop])


@pytest.mark.parametrize("with_metrics", [False, True])
@pytest.mark.parametrize("build", [sequential, two_outputs, one_loss_of_two, dict_outputs])
def test_metrics_names_as_keras(build, with_metrics):
    names = {}
    for lib in ("layernet", "keras"):
        model = build(lib, with_metrics)
        compiled = list(model.metrics_names)  # Keras names per-output losses once they ran
        model.fit(X, targets(build), epochs=1, verbose=0)
        names[lib] = [compiled, list(model.metrics_names)]
    assert names["layernet"] == names["keras"]
    assert ln.Sequential([ln.Dense(1)]).metrics_names == []


def test_compiling_again_starts_new_loss_trackers():
    model = two_outputs("layernet")
    model.fit(X, [Y, Y], epochs=1, verbose=0)
    assert model.metrics_names == ["loss", "compile_metrics", "a_loss", "b_loss"]
    model.compile(ln.SGD(0.1), loss=["mse", None])
    assert model.metrics_names == ["loss"]
    history = model.fit(X, [Y, Y], epochs=1, verbose=0, validation_data=(X, [Y, Y]))
    assert list(history.history) == ["loss", "val_loss"] and model.metrics_names == ["loss"]
