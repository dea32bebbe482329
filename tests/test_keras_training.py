"""Keras's training API: Input, trainable, evaluate/predict, sample and class weights, callbacks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

import layernet as ln

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is the oracle")
F64 = {"dtype": "float64"}


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    return x, y


def classifier(**kw):
    model = ln.Sequential([ln.Dense(8, seed=0, **F64), ln.ReLU(**F64), ln.Dense(3, seed=1, **F64)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy", **kw)
    return model


# --------------------------------------------------------------------------- Input
def test_input_first_builds_at_once_and_summary_shows_shapes():
    model = ln.Sequential(
        [ln.Input(shape=(8, 8, 1)), ln.Conv2D(4, 3), ln.MaxPool2D(2), ln.Flatten(), ln.Dense(10)]
    )
    assert model.built and model.input_shape == (None, 8, 8, 1)
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "?" not in text and "(None, 6, 6, 4)" in text and "(None, 10)" in text
    assert f"Total params: {(9 * 4 + 4) + (36 * 10 + 10):,}" in text


def test_input_then_add_and_input_errors():
    model = ln.Sequential()
    model.add(ln.Input((3,)))
    model.add(ln.Dense(2))
    assert model.layers[0].built and model.count_params() == 8
    with pytest.raises(ValueError, match=r"an Input can only be the first entry"):
        model.add(ln.Input((3,)))
    assert ln.layers.Input is ln.Input  # keras.Input and keras.layers.Input
    assert ln.Input(batch_shape=(16, 3)).shape == (16, 3)
    assert ln.Input((3,), batch_size=4).shape == (4, 3)
    with pytest.raises(ValueError, match=r"Input: expected exactly one of `shape`"):
        ln.Input()
    with pytest.raises(ValueError, match=r"Input: invalid value for `shape`"):
        ln.Input(("a",))


def test_input_model_trains_and_refuses_other_shapes():
    x, y = blobs()
    model = ln.Sequential([ln.Input((4,)), ln.Dense(3)])
    model.compile("adam", "softmax_cross_entropy")
    model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError):
        model.fit(np.zeros((5, 6)), np.zeros(5, int), verbose=0)


# --------------------------------------------------------------------------- trainable
def test_model_trainable_freezes_and_unfreezes_every_layer():
    x, y = blobs()
    model = classifier()
    model.build((None, 4))
    model.trainable = False
    assert not model.trainable and not any(layer.trainable for layer in model.layers)
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    summary = []
    model.summary(print_fn=summary.append)
    assert "Trainable params: 0" in summary[0]
    model.trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(before[0], model.get_weights()[0])
    with pytest.raises(ValueError, match=r"`trainable`: expected a bool"):
        model.trainable = "no"


# --------------------------------------------------------------------------- evaluate, predict
def test_evaluate_returns_like_keras(capsys):
    x, y = blobs()
    model = classifier(metrics=["accuracy", "sparse_top_k_categorical_accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    scores = model.evaluate(x, y, verbose=0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert isinstance(scores, list) and len(scores) == 3
    assert list(logs) == ["loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    assert scores == [logs["loss"], logs["accuracy"], logs["sparse_top_k_categorical_accuracy"]]
    assert logs["sparse_top_k_categorical_accuracy"] == 1.0  # 3 classes, k = 5
    assert capsys.readouterr().out == ""
    model.evaluate(x, y, verbose=1)
    out = capsys.readouterr().out
    assert "loss:" in out and "accuracy:" in out
    plain = classifier()
    plain.build((None, 4))
    loss = plain.evaluate(x, y, verbose=0)
    assert isinstance(loss, float)  # no metrics: just the loss, as in Keras
    with pytest.raises(ValueError, match=r"evaluate: invalid value for `verbose`"):
        plain.evaluate(x, y, verbose=5)
    with pytest.raises(ValueError, match=r"evaluate: invalid value for `return_dict`"):
        plain.evaluate(x, y, return_dict="yes")


def test_predict_verbose_and_default_batch(capsys):
    x, _ = blobs()
    model = classifier()
    a = model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""
    b = model.predict(x, batch_size=None, verbose=1)
    assert "2/2" in capsys.readouterr().out
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"predict: invalid value for `verbose`"):
        model.predict(x, verbose="loud")


def test_metric_instances_keep_their_arguments_in_evaluate():
    x, y = blobs()
    model = classifier(metrics=[ln.metrics.SparseTopKCategoricalAccuracy(k=1, name="top1")])
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    acc = model.evaluate(x, y, verbose=0, return_dict=True)["top1"]
    assert logs["top1"] == acc
    model.compile(ln.SGD(0.1), "softmax_cross_entropy", ["accuracy"])
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == pytest.approx(acc)


# --------------------------------------------------------------------------- weights
def one_step(loss, x, y, sample_weight=None, class_weight=None, lr=0.5):
    model = ln.Sequential([ln.Dense(3, seed=0, **F64)])
    model.compile(ln.SGD(lr), loss)
    model.fit(
        x,
        y,
        epochs=1,
        batch_size=len(x),
        shuffle=False,
        verbose=0,
        sample_weight=sample_weight,
        class_weight=class_weight,
    )
    return model


def test_sample_weight_step_matches_a_hand_computation(rng):
    x, t = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    w = np.array([1.0, 0.0, 2.0, 0.5, 3.0])
    model = one_step("mse", x, t, sample_weight=w)
    start = ln.Dense(3, seed=0, **F64)
    start.build((None, 4))
    W0, b0 = start.params.values()  # kernel, bias
    # z = (1/N) sum_n w_n mean_k (x W + b - t)^2  (Keras's "sum_over_batch_size")
    r = x @ W0 + b0 - t
    g = 2 * w[:, None] * r / (5 * 3)
    W1, b1 = model.layers[0].params.values()
    np.testing.assert_allclose(W1, W0 - 0.5 * x.T @ g, rtol=1e-12)
    np.testing.assert_allclose(b1, b0 - 0.5 * g.sum(0), rtol=1e-12)


@needs_torch
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_weighted_training_step_matches_torch(loss, rng):
    x = rng.standard_normal((6, 4))
    labels = rng.integers(0, 3, 6)
    w = rng.uniform(0, 2, 6)
    model = ln.Sequential([ln.Dense(3, seed=0, **F64)])
    model.build((None, 4))
    W0, b0 = (p.copy() for p in model.layers[0].params.values())
    y = ln.utils.to_categorical(labels, 3) if loss.startswith("categorical") else labels
    # the probabilities come from a softmax the loss sees as input: train logits through it
    x_t = torch.tensor(x)
    Wt = torch.tensor(W0, requires_grad=True)
    bt = torch.tensor(b0, requires_grad=True)
    p = torch.softmax(x_t @ Wt + bt, dim=1)
    log_p = torch.log(p.clamp(1e-7, 1 - 1e-7))
    per = torch.nn.functional.nll_loss(log_p, torch.tensor(labels), reduction="none")
    z = (per * torch.tensor(w)).sum() / 6
    z.backward()
    # layernet: softmax as the last step of the model
    model_sm = ln.Sequential([ln.Dense(3, seed=0, **F64), _Softmax(**F64)])
    model_sm.compile(ln.SGD(0.3), loss)
    h = model_sm.fit(x, y, epochs=1, batch_size=6, shuffle=False, verbose=0, sample_weight=w)
    assert h.history["loss"][0] == pytest.approx(z.item(), rel=1e-12)
    W1, b1 = model_sm.layers[0].params.values()
    np.testing.assert_allclose(W1, W0 - 0.3 * Wt.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(b1, b0 - 0.3 * bt.grad.numpy(), rtol=1e-10, atol=1e-14)


class _Softmax(ln.Layer):
    """A minimal softmax for these tests (the library's own may differ in features)."""

    _default_name = "test_softmax"

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
        return y, y

    def compute_backward_input(self, dy, saved):
        return saved * (dy - np.sum(dy * saved, axis=-1, keepdims=True))


def test_class_weight_equals_the_sample_weights_it_makes(rng):
    x = rng.standard_normal((8, 4))
    labels = np.array([0, 1, 2, 1, 0, 2, 2, 1])
    cw = {0: 2.0, 2: 0.5}
    w = np.array([cw.get(int(c), 1.0) for c in labels])
    a = one_step("softmax_cross_entropy", x, labels, class_weight=cw)
    b = one_step("softmax_cross_entropy", x, labels, sample_weight=w)
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    onehot = ln.utils.to_categorical(labels, 3)
    c = one_step("softmax_cross_entropy", x, onehot, class_weight=cw)
    np.testing.assert_allclose(a.get_weights()[0], c.get_weights()[0], rtol=1e-12)


def test_weight_argument_errors():
    x, y = blobs(10)
    model = classifier()
    with pytest.raises(ValueError, match=r"`sample_weight` and `class_weight` cannot be given"):
        model.fit(x, y, verbose=0, sample_weight=np.ones(10), class_weight={0: 1.0})
    with pytest.raises(ValueError, match=r"fit: expected `sample_weight` of shape \(10,\)"):
        model.fit(x, y, verbose=0, sample_weight=np.ones(9))
    with pytest.raises(ValueError, match=r"fit: invalid value for `class_weight`"):
        model.fit(x, y, verbose=0, class_weight=[1.0, 2.0])


def test_evaluate_with_sample_weight():
    """The loss and `weighted_metrics` are weighted; `metrics` are not (Keras)."""
    x, y = blobs(40)
    model = classifier(metrics=["accuracy"])
    model.compile(model.optimizer, model.loss, metrics=["accuracy"], weighted_metrics=["accuracy"])
    w = np.linspace(0, 2, 40)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    per = [ln.SoftmaxCrossEntropy(**F64).forward(pred[i : i + 1], y[i : i + 1]) for i in range(40)]
    assert logs["loss"] == pytest.approx(np.dot(w, per) / 40)
    hits = pred.argmax(1) == y
    assert logs["accuracy"] == pytest.approx(hits.mean())
    assert logs["weighted_accuracy"] == pytest.approx(np.dot(w, hits) / w.sum())
    assert abs(hits.mean() - np.dot(w, hits) / w.sum()) > 1e-3  # the two differ here


def test_validation_split_carries_sample_weights():
    x, y = blobs(20)
    w = np.r_[np.ones(15), np.zeros(5)]
    model = classifier()
    h = model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, sample_weight=w)
    assert h.history["val_loss"] == [0.0]  # every validation sample weighs 0
    h = model.fit(x, y, epochs=1, verbose=0, validation_data=(x[:5], y[:5], np.zeros(5)))
    assert h.history["val_loss"] == [0.0]


def test_mse_loss_and_metric_are_the_same_number_in_fit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3))
    y = x @ rng.standard_normal((3, 2))
    model = ln.Sequential([ln.Dense(2, seed=0, **F64)])
    model.compile(ln.SGD(0.05), "mse", ["mse"])
    h = model.fit(x, y, epochs=3, batch_size=8, verbose=0, validation_data=(x, y))
    assert h.history["loss"] == pytest.approx(h.history["mse"], rel=1e-12)
    assert h.history["val_loss"] == pytest.approx(h.history["val_mse"], rel=1e-12)


def test_keras_defaults():
    assert ln.Adam().learning_rate == 0.001
    x, y = blobs(64)
    model = classifier()
    seen = []
    cb = ln.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    model.fit(x, y, verbose=0, callbacks=[cb])
    assert seen == [0, 1]  # batch_size defaults to 32


# --------------------------------------------------------------------------- callbacks
class _FakeOpt:
    def __init__(self, lr):
        self.learning_rate = lr


class _FakeModel:
    def __init__(self, lr=1.0):
        self.optimizer = _FakeOpt(lr)
        self.stop_training = False


def run_plateau(cb, values, lr=1.0, monitor="val_loss"):
    model = _FakeModel(lr)
    cb.set_model(model)
    cb.on_train_begin()
    lrs = []
    for epoch, v in enumerate(values):
        cb.on_epoch_end(epoch, {monitor: v})
        lrs.append(model.optimizer.learning_rate)
    return lrs


def test_reduce_lr_on_plateau_patience_cooldown_and_floor():
    cb = ln.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    lrs = run_plateau(cb, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # Keras's rule: best at epoch 0; wait 1, 2 -> halve; the cooldown epoch resets the wait
    # and ends the cooldown, so it counts 1 again; 2 -> halve; ...; never below min_lr
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]
    cb = ln.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1)
    assert cb.mode == "max"
    assert run_plateau(cb, [0.5, 0.6, 0.6], monitor="val_accuracy") == [1.0, 1.0, 0.1]
    cb = ln.ReduceLROnPlateau(patience=0, min_delta=0.1)
    assert run_plateau(cb, [1.0, 0.95]) == [1.0, 0.1]  # 0.05 better is not better enough


def test_reduce_lr_on_plateau_in_fit_and_errors():
    x, y = blobs()
    model = classifier()
    cb = ln.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=100.0)
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    assert h.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.05])
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: invalid value for `factor`"):
        ln.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match=r"`patience`: expected an int >= 0"):
        ln.ReduceLROnPlateau(patience=-1)
    with pytest.raises(ValueError, match=r"monitored value 'val_loss' is not in the logs"):
        classifier().fit(x, y, epochs=1, verbose=0, callbacks=[ln.ReduceLROnPlateau()])
    scheduled = classifier()
    scheduled.compile(ln.SGD(ln.StepDecay(0.1, 2)), "softmax_cross_entropy")
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau: .* schedule"):
        scheduled.fit(x, y, verbose=0, callbacks=[ln.ReduceLROnPlateau(monitor="loss")])


def test_csv_logger(tmp_path):
    x, y = blobs()
    path = tmp_path / "log.csv"
    model = classifier(metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ln.CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1"] and rows[1][-1] == "NA"
    assert float(rows[2][2]) == pytest.approx(model.history.history["loss"][1])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ln.CSVLogger(path, append=True)])
    rows = list(csv.reader(path.open()))
    assert len(rows) == 4 and rows[3][0] == "0"  # no second header
    model.fit(
        x,
        y,
        epochs=1,
        verbose=0,
        validation_data=(x, y),
        callbacks=[ln.CSVLogger(path, separator=";")],
    )
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch;accuracy;loss;val_accuracy;val_loss" and len(lines) == 2
    with pytest.raises(ValueError, match=r"CSVLogger: invalid value for `separator`"):
        ln.CSVLogger(path, separator=";;")


def test_lambda_callback_calls_in_order():
    x, y = blobs(40)
    calls = []
    cb = ln.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: calls.append(f"epoch_begin {epoch}"),
        on_batch_begin=lambda batch, logs: calls.append(f"batch_begin {batch}"),
        on_batch_end=lambda batch, logs: calls.append(f"batch_end {batch} {'loss' in logs}"),
        on_epoch_end=lambda epoch, logs: calls.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: calls.append("train_end"),
    )
    classifier().fit(x, y, epochs=1, batch_size=40, verbose=0, callbacks=[cb])
    assert calls == [
        "train_begin",
        "epoch_begin 0",
        "batch_begin 0",
        "batch_end 0 True",
        "epoch_end 0 ['loss']",
        "train_end",
    ]
    with pytest.raises(TypeError, match=r"LambdaCallback: expected `on_epoch_end` to be callable"):
        ln.LambdaCallback(on_epoch_end=3)


# --------------------------------------------------------------------------- utils
def test_to_categorical():
    out = ln.utils.to_categorical([[1], [0], [2]])
    np.testing.assert_array_equal(out, np.eye(3)[[1, 0, 2]])
    assert out.dtype == np.float32
    assert ln.utils.to_categorical(np.array([[0, 1], [2, 0]]), 4).shape == (2, 2, 4)
    assert ln.utils.to_categorical(np.array([1.0, 0.0]), dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"to_categorical: expected labels in \[0, 1\]"):
        ln.utils.to_categorical([2], num_classes=2)
    with pytest.raises(ValueError, match=r"non-negative class labels"):
        ln.utils.to_categorical([-1])
    with pytest.raises(ValueError, match=r"non-integer values"):
        ln.utils.to_categorical([0.5])
    with pytest.raises(ValueError, match=r"`num_classes`: expected a positive int"):
        ln.utils.to_categorical([0], num_classes=0)


def test_set_random_seed_reproduces_weights():
    ln.utils.set_random_seed(3)
    a = ln.Sequential([ln.Input((4,)), ln.Dense(3)]).get_weights()
    ln.utils.set_random_seed(3)
    b = ln.Sequential([ln.Input((4,)), ln.Dense(3)]).get_weights()
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match=r"set_random_seed: expected a non-negative int"):
        ln.utils.set_random_seed(-1)


def test_keras_losses_and_metrics_survive_save_and_load(tmp_path):
    x, y = blobs()
    model = ln.Sequential([ln.Input((4,)), ln.Dense(3, seed=0)])
    model.compile(
        "adam",
        ln.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        ["acc", "top_k_categorical_accuracy"],
    )
    y1 = ln.utils.to_categorical(y, 3)
    model.fit(x, y1, epochs=1, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    assert isinstance(loaded.loss, ln.losses.CategoricalCrossentropy)
    assert loaded.loss.from_logits and loaded.loss.label_smoothing == 0.1
    assert [m.name for m in loaded.metrics] == ["acc", "top_k_categorical_accuracy"]
    assert loaded.evaluate(x, y1, verbose=0) == pytest.approx(model.evaluate(x, y1, verbose=0))
