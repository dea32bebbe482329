"""Sequential: building, summary, training, evaluation, reproducibility, and its errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

import layernet as ln


def small_cnn(dtype: str = "float32") -> ln.Sequential:
    return ln.Sequential(
        [
            ln.Conv1D(4, 3, padding="same", dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.MaxPool(2, dtype=dtype),
            ln.Flatten(dtype=dtype),
            ln.Dense(3, dtype=dtype),
        ]
    )


def blobs(n: int = 120, seed: int = 0):
    """A separable 3-class problem on length-8 sequences."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 8, 1)) * 0.3
    x[np.arange(n), 2 * y + 1, 0] += 2.0
    return x.astype(np.float32), y


def test_fit_learns_and_history_has_every_key():
    x, y = blobs()
    model = small_cnn()
    model.compile(ln.SGD(0.1, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
    history = model.fit(
        x[:90],
        y[:90],
        epochs=15,
        batch_size=16,
        validation_data=(x[90:], y[90:]),
        verbose=0,
        seed=1,
    )
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 15 for v in history.history.values())
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x[90:], y[90:], return_dict=True)["accuracy"] >= 0.9
    assert model.history is history


def test_same_seed_gives_bit_identical_weights_and_history():
    x, y = blobs()
    runs = []
    for _ in range(2):
        model = small_cnn()
        model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
        h = model.fit(x, y, epochs=3, batch_size=10, validation_split=0.25, verbose=0, seed=7)
        runs.append((model.get_weights(), h.history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]
    model = small_cnn()
    model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
    model.fit(x, y, epochs=3, batch_size=10, validation_split=0.25, verbose=0, seed=8)
    assert not np.array_equal(model.get_weights()[0], runs[0][0][0])


def test_fit_gradients_match_finite_differences():
    """The model's backward pass gives the gradient gradcheck proves for the same chain."""
    x, y = blobs(6)
    model = small_cnn("float64")
    model.compile(ln.SGD(0.1), ln.SoftmaxCrossEntropy(dtype="float64"))
    model.build((None, 8, 1), seed=0)
    result = ln.gradcheck([*model.layers, model.loss], x.astype(np.float64), y, jacobians=False)
    assert result.passed, str(result)


def make_relu_heavy(dtype="float64"):
    return ln.Sequential(
        [
            ln.ReLU(dtype=dtype),
            ln.Conv1D(4, 3, padding="same", dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.MaxPool(2, dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Flatten(dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Dense(5, dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Dense(3, dtype=dtype),
        ]
    )


def make_aliasing(dtype="float64"):
    """ReLUs behind layers whose output is a view of their input or is kept in their cache."""
    return ln.Sequential(
        [
            ln.Flatten(dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Dense(6, dtype=dtype),
            ln.Tanh(dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Dense(6, dtype=dtype),
            ln.Sigmoid(dtype=dtype),
            ln.Flatten(dtype=dtype),
            ln.ReLU(dtype=dtype),
            ln.Dense(3, dtype=dtype),
        ]
    )


@pytest.mark.parametrize("make", [make_relu_heavy, make_aliasing])
def test_training_steps_equal_the_public_layer_api(make):
    """fit's optimised steps (in-place activations, reused buffers) change nothing."""
    x, y = blobs(30)
    x = x.astype(np.float64) - 0.2  # negative entries reach the first ReLU
    model, ref = make(), make()
    for m in (model, ref):
        m.compile(ln.SGD(0.1), ln.SoftmaxCrossEntropy(dtype="float64"))
        m.build((None, 8, 1), seed=3)
    x_before = x.copy()
    model.fit(x, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    np.testing.assert_array_equal(x, x_before)  # the caller's data is never overwritten
    batch = x[:10].copy()
    make_copy = make()
    make_copy.compile(ln.SGD(0.1), ln.SoftmaxCrossEntropy(dtype="float64"))
    make_copy.build((None, 8, 1), seed=3)
    make_copy.train_step(batch, y[:10])
    np.testing.assert_array_equal(batch, x[:10])  # not even by a single public step
    for _ in range(2):
        for start in range(0, 30, 10):
            h = x[start : start + 10]
            for layer in ref.layers:
                h = layer.forward(h)
            ref.loss.forward(h, y[start : start + 10])
            g = ref.loss.backward_input()
            grads = {}
            for layer in reversed(ref.layers):
                grads[layer.name] = layer.compute_backward_params(g, layer.saved)
                g = layer.backward_input(g)
            for layer in ref.layers:
                for k, p in layer.params.items():
                    p -= 0.1 * grads[layer.name][k]
    for a, b in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_first_layer_input_gradient_is_never_computed():
    calls = []

    class Spy(ln.Conv1D):
        def compute_backward_input(self, dy, cache):
            calls.append(self.name)
            return super().compute_backward_input(dy, cache)

    x, y = blobs(40)
    first, second = Spy(4, 3, name="first"), Spy(4, 3, name="second")
    model = ln.Sequential([first, ln.ReLU(), second, ln.Flatten(), ln.Dense(3)])
    model.compile("sgd", "softmax_cross_entropy")
    model.fit(x, y, epochs=1, batch_size=20, verbose=0)
    assert calls == ["second", "second"]


def test_frozen_layer_is_not_updated_but_passes_gradients():
    x, y = blobs(40)
    frozen = ln.Conv1D(4, 3, trainable=False)
    model = ln.Sequential([frozen, ln.ReLU(), ln.Flatten(), ln.Dense(3)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy")
    model.build((None, 8, 1), seed=0)
    w0 = frozen.params["kernel"].copy()
    dense_w0 = model.layers[-1].params["kernel"].copy()
    model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(frozen.params["kernel"], w0)
    assert not np.array_equal(model.layers[-1].params["kernel"], dense_w0)


def test_predict_and_evaluate_batching_does_not_change_results():
    x, y = blobs(50)
    model = small_cnn("float64")
    model.compile("sgd", "softmax_cross_entropy", ["accuracy"])
    model.build((None, 8, 1), seed=3)
    np.testing.assert_allclose(
        model.predict(x, batch_size=7), model.predict(x, batch_size=50), rtol=1e-12
    )
    a = model.evaluate(x, y, batch_size=7, return_dict=True)
    b = model.evaluate(x, y, batch_size=50, return_dict=True)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-12)
    assert a["accuracy"] == b["accuracy"]


def test_mse_regression_with_metrics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    model = ln.Sequential([ln.Dense(1)])
    model.compile(ln.Adam(0.05), "mse", ["mae", "mse"])
    h = model.fit(x, y, epochs=40, batch_size=20, verbose=0, seed=0)
    assert h.history["mse"][-1] < 1e-3
    # Keras's "mse" loss and "mse" metric are the same number, batch by batch and in total
    assert h.history["loss"] == pytest.approx(h.history["mse"], rel=1e-5)


def test_summary_table():
    model = small_cnn()
    model.build((None, 8, 1))
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "conv1d" in text and "(None, 8, 4)" in text and "(None, 4, 4)" in text
    assert "(None, 16)" in text and "(None, 3)" in text
    total = 3 * 1 * 4 + 4 + 16 * 3 + 3
    assert f"Total params: {total:,}" in text
    assert model.count_params() == total


def test_unbuilt_summary_and_add_after_build():
    model = ln.Sequential([ln.Dense(4)])
    lines = []
    model.summary(print_fn=lines.append)
    assert "unbuilt" in lines[0]
    model.build((None, 3))
    model.add(ln.Dense(2))
    assert model.layers[-1].params["kernel"].shape == (4, 2)


def test_verbose_two_prints_one_line_per_epoch(capsys):
    x, y = blobs(40)
    model = small_cnn()
    model.compile("sgd", "softmax_cross_entropy", ["accuracy"])
    model.fit(x, y, epochs=3, batch_size=10, verbose=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3
    assert out[0].startswith("Epoch 1/3 - ") and "loss: " in out[0] and "accuracy: " in out[0]


def test_verbose_zero_is_silent(capsys):
    x, y = blobs(40)
    model = small_cnn()
    model.compile("sgd", "softmax_cross_entropy")
    model.fit(x, y, epochs=2, verbose=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_bar_shows_live_metrics():
    x, y = blobs(40)
    model = small_cnn()
    model.compile("sgd", "softmax_cross_entropy", ["accuracy"])
    buf = io.StringIO()
    model.fit(x, y, epochs=2, batch_size=10, callbacks=[ln.ProgressBar(1, file=buf)])
    text = buf.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    assert "4/4" in text and "loss:" in text and "accuracy:" in text


# ------------------------------------------------------------------ errors
@pytest.fixture
def compiled():
    model = small_cnn()
    model.compile("sgd", "softmax_cross_entropy")
    return model


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"batch_size": 0},
            r"fit: invalid value for `batch_size`: expected a positive int, "
            r"received 0",
        ),
        ({"batch_size": -5}, r"`batch_size`.*received -5"),
        ({"batch_size": 2.5}, r"`batch_size`.*received 2.5"),
        ({"batch_size": True}, r"`batch_size`.*received True"),
        ({"epochs": -1}, r"fit: invalid value for `epochs`: expected an int >= 0, received -1"),
        (
            {"validation_split": 1.0},
            r"`validation_split`: expected a number in \[0, 1\), "
            r"received 1.0",
        ),
        ({"validation_split": -0.1}, r"`validation_split`.*received -0.1"),
        ({"verbose": 3}, r"`verbose`: expected 'auto', 0, 1 or 2, received 3"),
        ({"shuffle": "yes"}, r"`shuffle`: expected a bool"),
        ({"seed": -1}, r"`seed`: expected a non-negative int"),
        ({"validation_data": (1, 2, 3, 4)}, r"`validation_data`: expected a tuple"),
    ],
)
def test_fit_argument_errors(compiled, kwargs, match):
    x, y = blobs(20)
    with pytest.raises(ValueError, match=match):
        compiled.fit(x, y, **{"verbose": 0, **kwargs})


def test_validation_split_leaving_no_samples(compiled):
    x, y = blobs(3)
    with pytest.raises(
        ValueError,
        match=r"`validation_split`=0.1 of 3 samples leaves 3 for "
        r"training and 0 for validation",
    ):
        compiled.fit(x, y, validation_split=0.1, verbose=0)


def test_data_errors(compiled):
    x, y = blobs(20)
    with pytest.raises(
        ValueError,
        match=r"fit: `x` and `y` have different numbers of samples: "
        r"20 and 19",
    ):
        compiled.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match=r"fit: `x` is empty \(shape \(0, 8, 1\)\)"):
        compiled.fit(x[:0], y[:0], verbose=0)
    bad = x.copy()
    bad[3, 2, 0] = np.nan
    with pytest.raises(
        ValueError,
        match=r"fit: `x` contains 1 non-finite value\(s\) \(NaN or "
        r"inf\); the first is at index \(3, 2, 0\)",
    ):
        compiled.fit(bad, y, verbose=0)
    with pytest.raises(ValueError, match=r"fit: `y` contains 1 non-finite"):
        compiled.fit(x, np.where(np.arange(20) == 5, np.inf, y), verbose=0)
    with pytest.raises(
        ValueError,
        match=r"fit: `y` does not fit the model's output of shape "
        r"\(20, 3\):.*expected class labels in \[0, 2\]",
    ):
        compiled.fit(x, y + 1, verbose=0)
    with pytest.raises(TypeError, match=r"fit: expected `x` to be a real numeric array"):
        compiled.fit(np.array([["a"]] * 20), y, verbose=0)


def test_labels_are_never_broadcast():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 3))
    model = ln.Sequential([ln.Dense(1)])
    model.compile("sgd", "half_squared_error")  # the notes' loss; Keras's "mse" takes (N,)
    with pytest.raises(
        ValueError,
        match=r"fit: `y` does not fit the model's output of shape "
        r"\(10, 1\):.*expected target of shape \(10, 1\).*got shape \(10,\)",
    ):
        model.fit(x, rng.standard_normal(10), verbose=0)


def test_fit_before_compile():
    x, y = blobs(10)
    with pytest.raises(RuntimeError, match=r"call compile\(optimizer, loss\) before fit\(\)"):
        small_cnn().fit(x, y)
    with pytest.raises(RuntimeError, match=r"before evaluate\(\)"):
        small_cnn().evaluate(x, y)


def test_input_the_first_layer_cannot_take(compiled):
    with pytest.raises(
        ValueError,
        match=r"Conv1D '.*': expected input with 3 dims \(batch, "
        r"length, channels\), got shape \(None, 8\)",
    ):
        compiled.fit(np.zeros((4, 8)), np.zeros(4, dtype=int), verbose=0)
    compiled.build((None, 8, 1))
    with pytest.raises(ValueError, match=r"Conv1D '.*': expected input with 1 channels"):
        compiled.predict(np.zeros((4, 8, 2)))
    with pytest.raises(ValueError, match=r"Dense '.*': expected input with 16 features"):
        compiled.predict(np.zeros((4, 10, 1)))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            ("sgdx", "mse"),
            r"compile: invalid value for `optimizer`: expected one of \['adadelta', "
            r".*'sgd'\].*received 'sgdx'",
        ),
        (
            ("sgd", "no_such_loss"),
            r"compile: invalid value for `loss`: expected one of .*received "
            r"'no_such_loss'",
        ),
        (
            ("sgd", "mse", ["f1"]),
            r"compile: invalid value in `metrics`: expected one of .*"
            r"received 'f1'",
        ),
        (("sgd", "mse", "accuracy"), r"`metrics`: expected a list"),
    ],
)
def test_compile_errors(args, match):
    with pytest.raises(ValueError, match=match):
        small_cnn().compile(*args)


def test_structure_errors():
    with pytest.raises(TypeError, match=r"add\(\) expected a Layer, received a loss"):
        ln.Sequential([ln.MSELoss()])
    with pytest.raises(TypeError, match=r"add\(\) expected a Layer, received 'relu'"):
        ln.Sequential(["relu"])
    with pytest.raises(ValueError, match=r"a layer named 'x' is already in the model"):
        ln.Sequential([ln.ReLU(name="x"), ln.ReLU(name="x")])
    with pytest.raises(ValueError, match=r"set_weights: expected 2 arrays, received 1"):
        m = ln.Sequential([ln.Dense(2)])
        m.build((None, 3))
        m.set_weights([np.zeros((3, 2))])
