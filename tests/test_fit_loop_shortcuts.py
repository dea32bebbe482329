"""The training loop's shortcuts change nothing that can be observed.

``fit`` calls only the batch hooks that do something, ``TerminateOnNaN`` checks the
weights with one sum, the weight lists read each layer's dicts once and the train
step skips ``compute_metrics`` when it has nothing to add: each is checked here
against the plain way, on results and on the calls callbacks see.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops
from layernet.callbacks import _all_finite, _hooked


def small_cnn(seed: int = 0) -> ln.Sequential:
    model = ln.Sequential(
        [
            ln.Conv1D(4, 3, strides=2, padding=1, seed=seed),
            ln.ReLU(),
            ln.Flatten(),
            ln.Dense(3, seed=seed + 1),
        ]
    )
    model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
    return model


def data(n: int = 30, length: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, length, 1)).astype("float32"), rng.integers(0, 3, n)


class Recorder(ln.callbacks.Callback):
    """Records every hook call, in order, into a shared list."""

    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append((self.name, "begin", batch, dict(logs or {})))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append((self.name, "end", batch, dict(logs or {})))


class EndOnly(ln.callbacks.Callback):
    def __init__(self, calls):
        self.calls = calls

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("end_only", "end", batch, dict(logs or {})))


def test_only_hooks_that_do_something_are_called_and_in_order():
    calls: list = []
    lam = ln.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: calls.append(("lambda", "begin", batch, logs)),
    )
    cbs = [Recorder("a", calls), ln.callbacks.Callback(), EndOnly(calls), lam]
    assert _hooked(cbs, "on_train_batch_begin") == [cbs[0], lam]
    assert _hooked(cbs, "on_train_batch_end") == [cbs[0], cbs[2]]
    x, y = data()
    small_cnn().fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=cbs, shuffle=False)
    # every step: begin of a then lambda; end of a then end_only, with the same logs
    assert len(calls) == 2 * 3 * 4
    for i in range(0, len(calls), 4):
        step = calls[i : i + 4]
        assert [(c[0], c[1]) for c in step] == [
            ("a", "begin"),
            ("lambda", "begin"),
            ("a", "end"),
            ("end_only", "end"),
        ]
        assert step[0][3] == {} and step[1][3] == {}
        assert step[2][3] == step[3][3] and set(step[2][3]) == {"loss"}


def test_fit_is_bit_identical_with_and_without_a_callback_on_every_batch():
    x, y = data()
    plain, watched = small_cnn(), small_cnn()
    calls: list = []
    h1 = plain.fit(x, y, epochs=3, batch_size=8, verbose=0, seed=3)
    h2 = watched.fit(
        x, y, epochs=3, batch_size=8, verbose=0, seed=3, callbacks=[Recorder("r", calls)]
    )
    assert h1.history == h2.history
    for a, b in zip(plain.get_weights(), watched.get_weights(), strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("fast", [True, False])
def test_logs_without_metrics_match_a_compute_metrics_override(fast):
    """The default step skips compute_metrics without metrics; an override is still called
    and, returning what the default returns, gives the same History bit for bit."""

    class Overrides(ln.Sequential):
        called = 0

        def compute_metrics(self, x, y, y_pred, sample_weight=None):
            type(self).called += 1
            return super().compute_metrics(x, y, y_pred, sample_weight)

    x, y = data()
    layers = small_cnn().layers
    with _ops.fast_paths(fast):
        a = ln.Sequential([type(layer).from_config(layer.get_config()) for layer in layers])
        b = Overrides([type(layer).from_config(layer.get_config()) for layer in layers])
        for m in (a, b):
            m.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
        ha = a.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1)
        hb = b.fit(x, y, epochs=2, batch_size=8, verbose=0, seed=1)
    assert Overrides.called == 2 * 4
    assert ha.history == hb.history
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        assert wa.tobytes() == wb.tobytes()


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(
    shapes=st.lists(
        st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple), min_size=0, max_size=5
    ),
    values=st.lists(finite_or_not, min_size=1, max_size=8),
    big=st.booleans(),
)
def test_all_finite_agrees_with_isfinite_entry_by_entry(shapes, values, big):
    rng = np.random.default_rng(len(shapes))
    arrays = []
    for k, shape in enumerate(shapes):
        a = rng.choice(np.array(values, dtype=np.float32), size=shape)
        if big:  # finite entries whose sum overflows float32
            a = np.where(np.isfinite(a), np.float32(3e38), a).astype(np.float32)
        arrays.append(a if k % 2 == 0 else a.astype(np.float64))
    expected = all(bool(np.isfinite(a).all()) for a in arrays)
    assert _all_finite(arrays) == expected


def test_all_finite_overflowing_sum_of_finite_weights_is_finite():
    arrays = [np.full((4, 4), 3e38, np.float32), np.full(3, -3e38, np.float32)]
    with np.errstate(over="ignore"):
        assert not math.isfinite(float(np.float32(3e38) * np.float32(2)))
    assert _all_finite(arrays)
    assert not _all_finite([*arrays, np.array([np.nan], np.float32)])


def test_weight_lists_match_params_and_state_layer_by_layer():
    """Sequential.weights and Layer.weight_arrays keep every array (not copies) in order,
    a layer's state included and a random layer's generator state left out."""
    model = ln.Sequential(
        [
            ln.Input((6,)),
            ln.Dense(5, seed=0),
            ln.BatchNormalization(),
            ln.Dropout(0.5, seed=1),
            ln.Dense(2, seed=2),
        ]
    )
    expected = []
    for layer in model.layers:
        found = {**layer.params, **layer.state}
        found = {k: v for k, v in found.items() if not k.endswith("seed_generator_state")}
        assert list(layer.weight_arrays()) == list(found)
        assert all(a is b for a, b in zip(layer.weight_arrays().values(), found.values()))
        expected += found.values()
    got = model.weights
    assert len(got) == len(expected) and all(a is b for a, b in zip(got, expected))


def test_terminate_on_nan_puts_back_finite_weights_when_an_update_overflows(capsys):
    x = np.linspace(-1, 1, 40, dtype="float32").reshape(20, 2)
    y = x.sum(axis=1, keepdims=True)
    model = ln.Sequential([ln.Dense(1, seed=0)])
    model.compile(ln.SGD(1e30), "mse")  # the first update overflows the weights
    stop = ln.TerminateOnNaN()
    with np.errstate(all="ignore"):
        model.fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[stop])
    assert stop.terminated_at is not None
    assert _all_finite(model.weights)
    assert "TerminateOnNaN" in capsys.readouterr().err


class MarksEverything(ln.layers.Layer):
    """A layer of one's own that gives its output a mask through ``output_mask``."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        return x * 1, None

    def compute_backward_input(self, dy, saved):
        return dy

    def output_mask(self, x, mask):
        return np.ones(x.shape[:2], bool) if mask is None else mask


def masks_asked_one_by_one(model, x):
    """The output mask as every layer's output_mask gives it, each asked in turn."""
    mask = None
    for layer in model.layers:
        y = layer.forward(x)
        mask = layer.output_mask(x, mask)
        x = y
    return mask


@pytest.mark.parametrize("maker", ["masking", "own", "none"])
def test_sequential_asks_for_masks_only_where_one_can_start(maker):
    first = {
        "masking": [ln.layers.Masking(0.0)],
        "own": [MarksEverything()],
        "none": [],
    }[maker]
    model = ln.Sequential([ln.Input((5, 2)), ln.Dense(3, seed=0), *first, ln.Dense(2, seed=1)])
    x = np.random.default_rng(0).standard_normal((4, 5, 2)).astype("float32")
    x[:, -2:] = 0.0
    model.forward(x)
    expected = masks_asked_one_by_one(model, x)
    got = model._output_mask
    if maker == "none":
        assert got is None and expected is None
    else:
        assert got is not None and np.array_equal(got, expected)
