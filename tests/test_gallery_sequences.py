"""The gallery's sequence and time-series scripts (examples/keras_io/), run in a short mode.

Each script runs in-process (examples/keras_io/_short_sequences.py: its text as it is,
through ``runpy``) in a temporary working folder, with an empty Keras cache (so the
offline stand-ins are used, small ones, and nothing is downloaded), and with ``fit`` cut
to one epoch on a few dozen samples and ``evaluate`` to a few samples. The tests assert
that the script finishes, that its only layernet-specific lines are its imports (plus
the marked offline stand-in: written after keras.io's examples, the scripts stay Keras 3
code) and that
the figures it prints are finite; and they check the library additions the scripts
needed.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "keras_io"


@pytest.fixture
def short(monkeypatch, tmp_path):
    """``run(name, n, overrides) -> namespace``: the script in the short mode of
    examples/keras_io/_short_sequences.py (fit: 1 epoch on ``n`` samples; evaluate:
    ``n // 2``), small stand-ins, an empty Keras cache and a temporary working folder."""
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("LAYERNET_GALLERY_SHORT", "1")  # smaller stand-ins
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(FOLDER))
    import _short_sequences

    def run(name: str, n: int = 64, overrides: dict | None = None) -> dict:
        namespace = _short_sequences.run(name, samples=n, epochs=1, overrides=overrides)
        namespace["evaluated"] = namespace["record"]["evaluate"]
        return namespace

    yield run
    for module in ("_offline_sequences", "_short_sequences"):
        sys.modules.pop(module, None)


def _numbers(text: str) -> list[float]:
    return [float(m) for m in re.findall(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?|nan|inf", text)]


def _assert_finite(text: str) -> list[float]:
    numbers = _numbers(text)
    assert numbers, text
    assert all(math.isfinite(v) for v in numbers), text
    return numbers


#: This branch's scripts (the folder is shared with the other gallery pages).
SCRIPTS = [
    "bidirectional_lstm_imdb",
    "timeseries_classification_from_scratch",
    "timeseries_anomaly_detection",
    "timeseries_classification_transformer",
    "antirectifier",
    "lstm_seq2seq",
    "addition_rnn",
    "lstm_character_level_text_generation",
]


@pytest.mark.parametrize("name", SCRIPTS)
def test_only_imports_and_the_marked_stand_in_are_layernets(name, monkeypatch):
    """Swap the imports back and the script is Keras 3 code: every ``keras.<attr>`` it
    uses exists in Keras 3, and the offline helpers appear only in the marked block."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    from _gallery_check import check_script

    path = FOLDER / f"{name}.py"
    used = check_script(path, keras)
    assert used  # it does use Keras's API
    text = path.read_text()
    assert "written anew for layernet; it runs under Keras 3 with the imports swapped" in (
        " ".join(text.split())
    )
    assert "https://keras.io/examples/" in text


def test_bidirectional_lstm_imdb(short, capsys):
    ns = short("bidirectional_lstm_imdb", n=32)
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "Reviews: 2500 for training, 2500 for validation" in out
    assert "Total params: 2,757,761" in out  # the count Keras gives this model
    assert ns["x_train"].shape == ns["x_val"].shape == (2500, 200)
    assert set(np.unique(ns["y_train"])) == {0, 1} and ns["x_train"].max() < 20000
    history = ns["model"].history.history
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(math.isfinite(v[-1]) for v in history.values())
    _assert_finite(out.split("Epoch 1/1")[1])


def test_timeseries_classification_from_scratch(short, capsys, tmp_path):
    ns = short("timeseries_classification_from_scratch", n=128)
    out = capsys.readouterr().out
    assert "offline stand-in" in out
    assert ns["x_train"].shape == (360, 100, 1) and ns["x_test"].shape == (132, 100, 1)
    assert set(np.unique(ns["y_train"])) == {0, 1}
    assert (tmp_path / "best_model.keras").is_file()  # ModelCheckpoint, then load_model
    line = re.search(r"test series: accuracy (\S+),", out).group(1)
    assert 0.0 <= float(line) <= 1.0
    _assert_finite(out.split("Best model on the test series")[1])
    assert set(ns["history"].history) >= {"loss", "val_loss", "sparse_categorical_accuracy"}


def test_timeseries_anomaly_detection(short, capsys):
    pytest.importorskip("pandas", reason="the script reads its CSV files with pandas")
    ns = short("timeseries_anomaly_detection", n=128)
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "Total params: 9,505" in out  # as in Keras
    assert ns["x_train"].shape == ns["x_test"].shape == (3745, 288, 1)
    assert ns["x_test_pred"].shape == (3745, 288, 1)
    threshold = float(re.search(r"Threshold \(largest training error\): (\S+)", out).group(1))
    assert math.isfinite(threshold) and threshold > 0
    assert np.isfinite(ns["test_errors"]).all()
    flagged = int(re.search(r"Flagged values: (\d+)", out).group(1))
    assert flagged == len(ns["flagged"]) >= 0
    # A value is flagged exactly when every window holding it is anomalous.
    anomalous, width = ns["anomalous"], ns["WINDOW"]
    expected = [
        i for i in range(width - 1, len(anomalous)) if anomalous[i - width + 1 : i + 1].all()
    ]
    assert list(ns["flagged"]) == expected


def test_timeseries_classification_transformer(short, capsys):
    ns = short("timeseries_classification_transformer", n=12)
    out = capsys.readouterr().out
    assert "offline stand-in" in out
    assert ns["x_train"].shape == (360, 100, 1)
    # Keras's count for this model (post-norm blocks, channels_last pooling): 4 blocks of
    # MultiHeadAttention (7,169), two LayerNormalization (2 each), Conv1D 8 and 5; the head.
    assert "Total params: 29,258" in out
    history = ns["model"].history.history
    assert all(math.isfinite(v[-1]) for v in history.values())
    _assert_finite(out.split("Total params")[1])


def test_antirectifier(short, capsys):
    ns = short("antirectifier", n=256)
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "Images: 6000 to train on" in out
    assert ns["x_train"].shape == (6000, 784) and ns["x_train"].dtype == np.float32
    (loss, accuracy) = ns["evaluated"][-1]
    assert math.isfinite(loss) and 0.0 <= accuracy <= 1.0
    history = ns["model"].history.history
    assert all(math.isfinite(v[-1]) for v in history.values())

    # The custom layer, built from ops in call(): its forward is the antirectifier's formula and its
    # traced derivatives match central finite differences.
    from _harness import assert_layer_gradients

    antirectifier = ns["Antirectifier"]
    layer = antirectifier(dtype="float64")
    x = np.random.default_rng(0).standard_normal((3, 4))
    y = layer(x)
    centred = x - x.mean(axis=-1, keepdims=True)
    both = np.concatenate([np.maximum(centred, 0), np.maximum(-centred, 0)], axis=-1)
    np.testing.assert_allclose(np.asarray(y), both @ layer.get_weights()[0], rtol=1e-12)
    assert layer.get_config()["initializer"] == {"class_name": "HeNormal", "config": {"seed": None}}
    assert_layer_gradients(lambda: antirectifier(dtype="float64", seed=1), x)


def test_initializers_get_takes_keras_one_argument_form():
    import layernet as ln

    assert isinstance(ln.initializers.get("he_normal"), ln.initializers.HeNormal)
    constant = ln.initializers.get({"class_name": "Constant", "config": {"value": 2.0}})
    assert constant.get_config() == {"value": 2.0}
    with pytest.raises(ValueError, match=r"initializers\.get: invalid value for `identifier`"):
        ln.initializers.get("no_such_initializer")


def test_lstm_seq2seq(short, capsys, tmp_path):
    ns = short("lstm_seq2seq", n=64)
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "Sentence pairs: 1200" in out
    assert (tmp_path / "s2s_model.keras").is_file()  # saved, then loaded back
    # The inference models are cut from the loaded model through its layers' input/output.
    latent = ns["STATE_SIZE"]
    assert [tuple(t.shape) for t in ns["encoder"].outputs] == [(None, latent)] * 2
    assert len(ns["decoder"].outputs) == 3
    assert out.count("' -> ") == 20
    epoch = re.search(r"Epoch 1/1 .*", out).group(0)
    assert "val_loss" in epoch and "val_accuracy" in epoch  # validation_split, two inputs
    _assert_finite(epoch)


def test_layer_input_and_output_are_its_first_calls_tensors():
    import layernet as ln

    a, b = ln.Input(shape=(5, 3)), ln.Input(shape=(7, 3))
    lstm = ln.layers.LSTM(4, return_state=True)
    first = lstm(a)
    second = lstm(b)  # a second call: input/output stay the first call's, as in Keras
    assert lstm.input is a and lstm.output == first and lstm.output != second
    assert [tuple(t.shape) for t in lstm.output] == [(None, 4)] * 3
    add = ln.layers.Add()
    total = add([first[1], first[2]])
    assert add.input == [first[1], first[2]] and add.output is total
    assert ln.layers.InputLayer(shape=(2,)).output.shape == (None, 2)
    with pytest.raises(AttributeError, match="has never been called on symbolic tensors"):
        _ = ln.layers.Dense(2).output


def test_validation_split_with_several_inputs_matches_evaluate():
    import layernet as ln

    rng = np.random.default_rng(0)
    a, b = ln.Input(shape=(3,)), ln.Input(shape=(2,))
    out = ln.layers.Dense(2, activation="softmax", seed=0)(ln.layers.Concatenate()([a, b]))
    model = ln.Model([a, b], out)
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    xa, xb = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    y = np.eye(2)[rng.integers(0, 2, 20)]
    history = model.fit([xa, xb], y, epochs=1, batch_size=8, validation_split=0.25, verbose=0)
    loss, accuracy = model.evaluate([xa[15:], xb[15:]], y[15:], verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][-1], loss, rtol=1e-6)
    np.testing.assert_allclose(history.history["val_accuracy"][-1], accuracy, rtol=1e-6)


def test_addition_rnn(short, capsys):
    # the loop of one-epoch fits, cut to one, on 2,000 questions
    ns = short("addition_rnn", n=128, overrides={"QUESTIONS": 2000, "ROUNDS": 2})
    out = capsys.readouterr().out
    assert "Questions generated: 2000" in out and "Total params: 205,324" in out  # as in Keras
    assert out.count("; answer ") == 10 and "Round 1" in out and "Round 2" not in out
    history = ns["model"].history.history
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(math.isfinite(v[-1]) for v in history.values())


def test_lstm_character_level_text_generation(short, capsys):
    ns = short("lstm_character_level_text_generation", n=256, overrides={"epochs": 1})
    out = capsys.readouterr().out
    assert "offline stand-in" in out and "Samples after epoch 1," in out
    written = re.findall(r"temperature [\d.]+: (.*)", out)
    assert len(written) == 4 and all(len(ast.literal_eval(w)) == 400 for w in written)
    assert math.isfinite(ns["model"].history.history["loss"][-1])


def test_initializers_get_agrees_with_keras():
    keras = pytest.importorskip("keras")
    import layernet as ln

    for identifier in ("he_normal", "glorot_uniform", "orthogonal", "zeros", "Ones"):
        ours, theirs = ln.initializers.get(identifier), keras.initializers.get(identifier)
        assert type(ours).__name__ == type(theirs).__name__, identifier
