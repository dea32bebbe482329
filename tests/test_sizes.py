"""Sizes: arrays too large for the limit, and empty batches, channels and axes.

Every registered layer class (the CASES of test_every_layer.py) is swept with a
batch of 0 samples, 0 channels and 0 positions along a spatial axis: each gives
empty outputs and gradients of the right shapes or a clear ``ValueError`` that
names the layer, never a bare NumPy error. Arrays larger than
``ln.get_max_array_bytes()`` are refused before they are allocated, naming the
layer, the shape and the bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_every_layer import CASES, REGISTERED, make, sample

import layernet as ln
from layernet._ops import Workspace
from layernet.layers.base import flatten_layers


@pytest.fixture(autouse=True)
def default_limit():
    yield
    ln.set_max_array_bytes(None)


def _empty(shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    out = {"batch 0": (0, *shape[1:]), "channels 0": (*shape[:-1], 0)}
    if len(shape) >= 3:
        out["length 0"] = (shape[0], 0, *shape[2:])
    out["batch 0 and channels 0"] = (0, *shape[1:-1], 0)
    return out


def empty_shapes(name: str) -> dict[str, object]:
    """Empty variants of a case's input shape.

    For several inputs: a batch of 0 in all of them at once (the batch is shared),
    and 0 channels, or 0 positions along the first spatial axis, in each input in
    turn (the others keep their sizes).
    """
    _, shape, _ = CASES[name]
    if not isinstance(shape, list):
        return _empty(shape)
    out: dict[str, object] = {"batch 0": [(0, *s[1:]) for s in shape]}
    for i, s in enumerate(shape):
        out[f"channels 0 in inputs[{i}]"] = [
            (*t[:-1], 0) if j == i else t for j, t in enumerate(shape)
        ]
        if len(s) >= 3:
            out[f"length 0 in inputs[{i}]"] = [
                (t[0], 0, *t[2:]) if j == i else t for j, t in enumerate(shape)
            ]
    return out


def empty_input(name: str, shape: object) -> np.ndarray | list[np.ndarray]:
    """Zeros of ``shape`` (a list of shapes for several inputs); integer ids for "ids" cases."""
    if isinstance(shape, list):
        return [np.zeros(s) for s in shape]
    return np.zeros(shape, dtype=int if CASES[name][2] == "ids" else float)


def names_of(layer: ln.Layer) -> tuple[str, ...]:
    """``"<Class> '<name>'"`` of the layer and, for a model, of the layers inside it: a model
    passes on the message of the layer inside it that refuses an input."""
    inner = getattr(layer, "layers", None) if isinstance(layer, ln.Model) else None
    layers = [layer, *flatten_layers(inner)] if inner else [layer]
    return tuple(f"{type(a).__name__} '{a.name}'" for a in layers)


def _list(a):
    return a if isinstance(a, list) else [a]


def run_layer(layer: ln.Layer, x, training: bool) -> None:
    y = layer.forward(x, training=training)
    in_shape = [a.shape for a in x] if isinstance(x, list) else x.shape
    for a, s in zip(_list(y), _list(layer.output_shape(in_shape)), strict=True):
        assert a.shape == s
    dy = [np.ones(a.shape) for a in y] if isinstance(y, list) else np.ones(y.shape)
    dx = layer.backward_input(dy)
    for d, a in zip(_list(dx), _list(x), strict=True):
        assert d.shape == a.shape
        assert np.isfinite(d).all()
    grads = layer.backward_params(dy)
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in layer.params.items()}
    for g in grads.values():
        assert np.isfinite(g).all()
        if all(a.size == 0 for a in _list(y)):  # nothing to learn from no outputs
            assert not g.any()


@pytest.mark.parametrize("name", sorted(REGISTERED))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_layer_takes_empty_inputs_or_says_why(name, dtype):
    for what, shape in empty_shapes(name).items():
        for training in (False, True):
            layer = make(name, dtype=dtype)
            try:
                run_layer(layer, empty_input(name, shape), training)
            except ValueError as exc:
                assert str(exc).startswith(names_of(layer)), (what, exc)
                assert "got shape" in str(exc) or "input" in str(exc), (what, exc)


def test_what_empty_axes_mean():
    rng = np.random.default_rng(0)
    # attention over no keys: no weights, and an output of zeros (a sum of nothing)
    att = ln.Attention(dtype="float64")
    y = att.forward([rng.standard_normal((2, 3, 4)), np.zeros((2, 0, 4))])
    assert y.shape == (2, 3, 4) and not y.any()
    # a recurrent layer over no steps: the initial states, unchanged, with their gradients
    lstm = ln.LSTM(3, return_state=True, dtype="float64", seed=0)
    h0, c0 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    y, h, c = lstm.forward([np.zeros((2, 0, 5)), h0, c0])
    np.testing.assert_array_equal(y, h0)
    np.testing.assert_array_equal(h, h0)
    np.testing.assert_array_equal(c, c0)
    dy, dh, dc = rng.standard_normal((3, 2, 3))
    dx, dh0, dc0 = lstm.backward_input([dy, dh, dc])
    assert dx.shape == (2, 0, 5)
    np.testing.assert_allclose(dh0, dy + dh)
    np.testing.assert_allclose(dc0, dc)
    # layer normalization over no channels: nothing to normalize
    assert ln.LayerNormalization(dtype="float64").forward(np.zeros((2, 3, 0))).shape == (2, 3, 0)


@pytest.mark.parametrize(
    "activation",
    ["softmax", "log_softmax", "relu", "tanh", "sigmoid", "gelu", "elu", "softplus", "linear"],
)
def test_activations_of_empty_axes_are_empty(activation):
    for shape in [(0, 4), (3, 0), (2, 0, 3), (2, 3, 0)]:
        layer = ln.Activation(activation, dtype="float64")
        run_layer(layer, np.zeros(shape), training=True)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("kind", ["max", "average"])
def test_global_pooling_of_empty_batches_and_channels(rank, keepdims, kind):
    cls = getattr(ln, f"Global{'Max' if kind == 'max' else 'Average'}Pooling{rank}D")
    spatial = (3, 2, 2)[:rank]
    for n, c in [(0, 3), (2, 0), (0, 0)]:
        layer = cls(keepdims=keepdims, dtype="float64")
        x = np.zeros((n, *spatial, c))
        y = layer.forward(x, training=True)
        expected = (n, *(1,) * rank, c) if keepdims else (n, c)
        assert y.shape == expected
        assert layer.backward_input(np.ones(expected)).shape == x.shape


# ------------------------------------------------------------------ the limit
@pytest.mark.parametrize("name", sorted(REGISTERED))
def test_an_output_above_the_limit_is_refused_before_it_is_allocated(name):
    layer = make(name)
    x = sample(name, np.random.default_rng(0))  # each input of a case, integer ids included
    shapes = [a.shape for a in x] if isinstance(x, list) else x.shape
    outs = [int(np.prod(s)) for s in _list(layer.output_shape(shapes))]  # each output
    layer.build(shapes)  # parameters first, under no limit
    # an output larger than every input is checked before it is allocated (one no larger
    # than an input may be a view of it)
    grows = max(outs) > max(a.size for a in _list(x))
    ln.set_max_array_bytes(max(max(outs) * 8 - 1, 1))
    try:
        layer.forward(x)
        refused = None
    except ln.ArrayTooLargeError as exc:
        refused = str(exc)
    if grows:
        assert refused is not None and "the output of shape" in refused
    if refused is not None:  # (a scratch array may be refused too)
        assert refused.startswith(names_of(layer)), refused
        assert "shape" in refused and "bytes" in refused and "set_max_array_bytes" in refused
    ln.set_max_array_bytes(None)
    layer.forward(x)  # the same call works again under the default limit


def test_outputs_no_larger_than_the_input_are_never_refused_for_their_size():
    x = np.ones((4, 6), "float64")
    dense = ln.Dense(7, dtype="float64", name="grows")
    dense.build(x.shape)
    ln.set_max_array_bytes(8)  # far below the input's 192 bytes
    assert ln.Flatten(dtype="float64").forward(x.reshape(4, 3, 2)).shape == (4, 6)
    assert ln.Reshape((3, 2), dtype="float64").forward(x).shape == (4, 3, 2)
    assert ln.ReLU(dtype="float64").forward(x).shape == (4, 6)
    with pytest.raises(ln.ArrayTooLargeError, match=r"Dense 'grows': the output of shape \(4, 7\)"):
        dense.forward(x)


def test_several_inputs_and_every_output_are_checked():
    # several inputs: an output larger than each of them, though not than their sum
    concat = ln.Concatenate(axis=1, dtype="float64", name="cat")
    xs = [np.ones((2, 30)), np.ones((2, 30))]
    ln.set_max_array_bytes(2 * 60 * 8 - 1)
    with pytest.raises(
        ln.ArrayTooLargeError,
        match=r"^Concatenate 'cat': the output of shape \(2, 60\) and dtype float64, for "
        r"inputs of shape \(2, 30\), \(2, 30\), would take 960 bytes",
    ):
        concat.forward(xs)
    # several outputs: the states of a recurrent layer and of a cell, each checked
    lstm = ln.LSTM(100, return_state=True, dtype="float64", name="lstm")
    cell = ln.LSTMCell(100, dtype="float64", name="cell")
    x, h = np.ones((2, 3, 2)), np.zeros((2, 100))
    ln.set_max_array_bytes(None)  # parameters first, under no limit
    lstm.build(x.shape)
    cell.build([(2, 2), h.shape, h.shape])
    ln.set_max_array_bytes(2 * 100 * 8 - 1)
    with pytest.raises(
        ln.ArrayTooLargeError, match=r"^LSTM 'lstm': the output of shape \(2, 100\)"
    ):
        lstm.forward(x)
    cell.forward([np.ones((2, 2)), h, h])  # no output larger than the states given
    ln.set_max_array_bytes(None)
    assert [a.shape for a in lstm.forward(x)] == [(2, 100)] * 3
    assert concat.forward(xs).shape == (2, 60)


def test_integer_ids_are_checked_against_the_output_they_index():
    layer = ln.Embedding(10, 50, dtype="float64", name="emb")
    ids = np.zeros((4, 6), dtype=np.int64)
    layer.build(ids.shape)
    ln.set_max_array_bytes(4 * 6 * 50 * 8 - 1)
    with pytest.raises(
        ln.ArrayTooLargeError, match=r"^Embedding 'emb': the output of shape \(4, 6, 50\)"
    ):
        layer.forward(ids)


@pytest.mark.parametrize(
    ("make_layer", "shape"),
    [
        (lambda: ln.Dense(10**7, name="wide"), (2, 1000)),
        (lambda: ln.Conv2D(10**5, 3, name="wide"), (1, 8, 8, 1000)),
        (lambda: ln.GRU(10**5, name="wide"), (1, 3, 2)),
        (lambda: ln.Conv1DTranspose(10**6, 3, name="wide"), (1, 4, 1000)),
    ],
)
def test_parameters_above_the_limit_are_refused_when_building(make_layer, shape):
    ln.set_max_array_bytes(10**9)
    layer = make_layer()
    with pytest.raises(
        ln.ArrayTooLargeError,
        match=r"'wide': building for inputs of shape .*: "
        r"a parameter of shape \(.*\) and dtype float32 would take [\d,]+ bytes",
    ):
        layer.build(shape)
    assert not layer.built


@pytest.mark.parametrize(
    ("make_layer", "shape", "what"),
    [
        (lambda: ln.Dense(10**12), (2, 10**4), "a parameter"),
        (lambda: ln.UpSampling2D((10**6, 10**6)), (1, 2, 2, 1), "the output"),
        (lambda: ln.ZeroPadding1D(10**13), (1, 2, 1), "the output"),
        (lambda: ln.Reshape((10**10, -1)), (1, 10**10, 1), None),
    ],
)
def test_absurd_sizes_fail_clearly_under_the_default_limit(make_layer, shape, what):
    layer = make_layer()
    x = np.broadcast_to(np.float32(0), shape)  # no memory for the input itself
    if what is None:
        layer.forward(x)  # a view of the input: nothing to allocate
        return
    with pytest.raises(
        ln.ArrayTooLargeError, match=rf"{what} of shape .* bytes \(\d+\.\d [PT]iB\)"
    ):
        layer.forward(x)


def test_scratch_arrays_count_too():
    # output (2, 46, 1) and kernel are small, the im2col matrix is not
    layer = ln.Conv1D(1, 5, dtype="float64", name="conv")
    x = np.ones((2, 50, 8))
    layer.build(x.shape)
    ln.set_max_array_bytes(8_000)
    with pytest.raises(
        ln.ArrayTooLargeError,
        match=r"^Conv1D 'conv': forward on inputs of shape "
        r"\(2, 50, 8\): scratch array '\w+' of shape",
    ):
        layer.forward(x)
    with pytest.raises(ln.ArrayTooLargeError, match=r"scratch array 'big' of shape \(10, 1000\)"):
        Workspace().get("big", (10, 1000), np.dtype("float64"))


def test_a_bare_memory_error_inside_a_layer_names_the_layer():
    class Greedy(ln.ReLU):
        def compute_forward(self, x, training):
            raise MemoryError("Unable to allocate 5.00 TiB for an array with shape (10, 10)")

        def compute_backward_input(self, dy, saved):
            raise MemoryError()

    layer = Greedy(name="greedy")
    with pytest.raises(
        ln.ArrayTooLargeError,
        match=r"^Greedy 'greedy': forward on inputs of "
        r"shape \(2, 3\): Unable to allocate 5\.00 TiB",
    ):
        layer.forward(np.ones((2, 3)))


def test_fit_reports_the_layer_that_is_too_large():
    model = ln.Sequential([ln.Dense(4, seed=0), ln.UpSampling1D(50), ln.Flatten(), ln.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 3, 2), "float32")
    model.build((None, 3, 2))
    ln.set_max_array_bytes(4 * 8 * 3 * 4 * 49)
    with pytest.raises(
        ln.ArrayTooLargeError,
        match=r"UpSampling1D '\w+': the output of shape "
        r"\(8, 150, 4\)",
    ):
        model.fit(x, np.ones((8, 1)), epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "1GB", [1]])
def test_set_max_array_bytes_refuses_what_is_not_a_positive_int(bad):
    with pytest.raises(
        ValueError,
        match=r"set_max_array_bytes: invalid value for `nbytes`: "
        r"expected a positive int or None",
    ):
        ln.set_max_array_bytes(bad)


def test_the_default_limit_is_the_machines_memory():
    assert ln.get_max_array_bytes() > 2**20
    ln.set_max_array_bytes(12345)
    assert ln.get_max_array_bytes() == 12345
    ln.set_max_array_bytes(None)
    assert ln.get_max_array_bytes() > 12345
