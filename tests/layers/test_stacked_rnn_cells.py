"""Stacked recurrent cells: ``StackedRNNCells`` and ``RNN([cell, cell, ...])``.

Gradients against central differences in float64 (the shared harness, hypothesis
over cell kinds, sizes and options), the stack against the same cells run one
layer after another, the fast path on and off, configs and model files.
"""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, upstream_like
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops
from layernet.gradcheck import numerical_gradient, relative_error

F64 = {"dtype": "float64"}
#: Cells by kind; a fixed name (two instances have the same parameter names).
KINDS = {
    "simple": lambda u, seed: ln.SimpleRNNCell(
        u, seed=seed, bias_initializer="he_uniform", name=f"cell{seed}", **F64
    ),
    "lstm": lambda u, seed: ln.LSTMCell(
        u, seed=seed, bias_initializer="he_uniform", name=f"cell{seed}", **F64
    ),
    "gru": lambda u, seed: ln.GRUCell(
        u, seed=seed, bias_initializer="he_uniform", name=f"cell{seed}", **F64
    ),
}


def make_cells(kinds, units):
    return [KINDS[k](u, seed=i) for i, (k, u) in enumerate(zip(kinds, units, strict=True))]


def padded_mask(rng, n, t):
    """A (batch, timesteps) mask with masked steps at the end and in the middle."""
    mask = rng.random((n, t)) > 0.3
    mask[:, 0] = True
    return mask


@settings(max_examples=12)
@given(
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=3),
    units=st.lists(st.integers(1, 3), min_size=3, max_size=3),
    n=st.integers(1, 2),
    t=st.integers(1, 4),
    f=st.integers(1, 3),
    return_sequences=st.booleans(),
    return_state=st.booleans(),
    go_backwards=st.booleans(),
    masked=st.booleans(),
    zero_output_for_mask=st.booleans(),
    initial_state=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_stack_gradients_match_finite_differences(
    kinds,
    units,
    n,
    t,
    f,
    return_sequences,
    return_state,
    go_backwards,
    masked,
    zero_output_for_mask,
    initial_state,
    seed,
):
    rng = np.random.default_rng(seed)
    units = units[: len(kinds)]

    def make():
        return ln.RNN(
            make_cells(kinds, units),
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            zero_output_for_mask=zero_output_for_mask,
            name="rnn",
            **F64,
        )

    x = rng.standard_normal((n, t, f))
    options = {"mask": padded_mask(rng, n, t)} if masked else None
    if initial_state:
        sizes = make().cell.state_size
        inputs = [x, *[rng.standard_normal((n, s)) for s in sizes]]
        assert_layer_gradients(make, inputs, options=options)
    else:
        assert_layer_gradients(make, x, options=options)  # a Conv in front too


def test_stack_equals_the_cells_as_separate_layers(rng):
    """``RNN([c1, c2], return_sequences=True)`` is ``RNN(c1, ...)`` then ``RNN(c2, ...)``."""
    x = rng.standard_normal((3, 5, 2))
    stack = ln.RNN(make_cells(["lstm", "gru"], [4, 3]), return_sequences=True, **F64)
    first = ln.RNN(KINDS["lstm"](4, 0), return_sequences=True, **F64)
    second = ln.RNN(KINDS["gru"](3, 1), return_sequences=True, **F64)
    y = stack.forward(x)
    y2 = second.forward(first.forward(x))
    np.testing.assert_allclose(y, y2, rtol=1e-13, atol=1e-14)
    g = upstream_like(y)
    np.testing.assert_allclose(
        stack.backward_input(g), first.backward_input(second.backward_input(g)), rtol=1e-12
    )
    grads = stack.backward_params(g)
    for layer, dy in ((second, g), (first, second.backward_input(g))):
        sep = layer.backward_params(dy)
        for k in ("kernel", "recurrent_kernel", "bias"):
            np.testing.assert_allclose(grads[f"{layer.cell.name}/{k}"], sep[k], rtol=1e-12)


def test_a_stack_of_one_cell_is_the_cell(rng):
    x = rng.standard_normal((2, 4, 3))
    mask = padded_mask(rng, 2, 4)
    for kind in KINDS:
        opts = {"return_sequences": True, "return_state": True, "go_backwards": True, **F64}
        a = ln.RNN([KINDS[kind](3, 0)], **opts)
        b = ln.RNN(KINDS[kind](3, 0), **opts)
        ya, yb = a.forward(x, mask=mask), b.forward(x, mask=mask)
        for p, q in zip(ya, yb, strict=True):
            np.testing.assert_array_equal(p, q)
        g = upstream_like(ya)
        np.testing.assert_array_equal(a.backward_input(g), b.backward_input(g))
        ga, gb = a.backward_params(g), b.backward_params(g)
        for k, v in gb.items():
            np.testing.assert_array_equal(ga[f"{a.cell.cells[0].name}/{k}"], v)


def _fixed_draws(layer):
    """Make every forward of ``layer`` draw the same dropout masks."""
    state = layer._generator.bit_generator.state
    forward = layer.forward

    def again(*args, **kwargs):
        layer._generator.bit_generator.state = state
        return forward(*args, **kwargs)

    layer.forward = again


@pytest.mark.parametrize("kinds", [["lstm", "gru", "simple"], ["gru"], ["gru", "lstm"]])
def test_dropout_gradients_with_fixed_masks(kinds, rng):
    """Per-cell input and recurrent dropout in training: the gradients for the drawn masks."""
    cells = make_cells(kinds, [3, 2, 2][: len(kinds)])
    for c in cells:
        c.dropout, c.recurrent_dropout = 0.3, 0.4
    cell = cells if len(cells) > 1 else cells[0]  # one GRU cell: the single-cell path
    layer = ln.RNN(cell, return_sequences=True, seed=5, **F64)
    _fixed_draws(layer)
    x = rng.standard_normal((3, 4, 2))
    y = layer.forward(x, training=True)
    g = upstream_like(y)
    assert not np.array_equal(y, layer.forward(x, training=False))  # the masks act

    def z():
        return float(np.vdot(g, layer.forward(x, training=True)))

    layer.forward(x, training=True)
    dx = layer.backward_input(g)
    dparams = layer.backward_params(g)
    assert relative_error(dx, numerical_gradient(z, x)) < 1e-6
    for k, p in layer.params.items():
        assert relative_error(dparams[k], numerical_gradient(z, p)) < 1e-6, k


@pytest.mark.parametrize("masked", [False, True])
def test_fast_paths_on_and_off_give_identical_results(masked, rng):
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    mask = padded_mask(rng, 4, 6) if masked else None
    results = []
    for enabled in (True, False):
        with _ops.fast_paths(enabled):
            cells = [
                ln.LSTMCell(5, seed=0, name="a"),
                ln.GRUCell(4, seed=1, name="b"),
                ln.SimpleRNNCell(3, seed=2, name="c"),
            ]
            layer = ln.RNN(cells, return_sequences=True, return_state=True, seed=0)
            y = layer.forward(x, mask=mask)
            g = upstream_like(y)
            results.append((y, layer.backward_input(g), layer.backward_params(g)))
    (y1, dx1, p1), (y2, dx2, p2) = results
    for a, b in zip(y1, y2, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx1, dx2)
    for k in p1:
        np.testing.assert_array_equal(p1[k], p2[k])


def test_stacked_cells_one_step_on_their_own(rng):
    stack = ln.StackedRNNCells(make_cells(["lstm", "simple"], [3, 2]))
    x, h, c, h2 = (rng.standard_normal(s) for s in [(2, 4), (2, 3), (2, 3), (2, 2)])
    out, *states = stack([x, h, c, h2])
    lstm, simple = stack.cells
    o1, h1n, c1n = lstm([x, h, c])
    o2, h2n = simple([o1, h2])
    np.testing.assert_array_equal(out, o2)
    for a, b in zip(states, [h1n, c1n, h2n], strict=True):
        np.testing.assert_array_equal(a, b)
    nested = stack(x, [[h, c], h2])  # Keras's cell(x, states), states per cell
    np.testing.assert_array_equal(nested[0], out)


def test_states_and_initial_state_flat_or_per_cell(rng):
    layer = ln.RNN(make_cells(["lstm", "gru"], [3, 2]), return_state=True, **F64)
    x = rng.standard_normal((2, 4, 3))
    out, h1, c1, h2 = layer(x)
    assert (out.shape, h1.shape, c1.shape, h2.shape) == ((2, 2), (2, 3), (2, 3), (2, 2))
    np.testing.assert_array_equal(out, h2)
    init = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((2, 2))]
    flat = layer(x, initial_state=init)
    nested = layer(x, initial_state=[init[:2], [init[2]]])
    for a, b in zip(flat, nested, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(flat[0], out)
    assert layer.output_shape((None, 4, 3)) == [(None, 2), (None, 3), (None, 3), (None, 2)]


def test_symbolic_calls_in_a_model(rng):
    inputs = ln.Input(shape=(5, 3))
    out, h1, c1, h2 = ln.RNN(
        [ln.LSTMCell(4), ln.GRUCell(2)], return_sequences=True, return_state=True
    )(inputs)
    model = ln.Model(inputs, [ln.Dense(1)(out), h1, c1, h2])
    ys = model.predict(rng.standard_normal((3, 5, 3)).astype("float32"), verbose=0)
    assert [y.shape for y in ys] == [(3, 5, 1), (3, 4), (3, 4), (3, 2)]


def test_config_round_trip_and_bidirectional(rng):
    layer = ln.RNN(
        [ln.LSTMCell(3, unit_forget_bias=False, dropout=0.1), ln.GRUCell(2, recurrent_dropout=0.2)],
        return_sequences=True,
        go_backwards=True,
        name="stack",
    )
    config = layer.get_config()
    assert config["cell"]["class_name"] == "layernet>StackedRNNCells"
    clone = ln.RNN.from_config(config)
    assert clone.get_config() == config
    assert [c.dropout for c in clone.cell.cells] == [0.1, 0.0]
    assert clone.cell.cells[0].unit_forget_bias is False
    bi = ln.Bidirectional(ln.RNN([ln.LSTMCell(3), ln.GRUCell(2)], return_sequences=True))
    y = bi(rng.standard_normal((2, 5, 4)).astype("float32"))
    assert y.shape == (2, 5, 4)
    assert len(bi.get_weights()) == 12
    bi = ln.Bidirectional(ln.RNN([ln.LSTMCell(3), ln.GRUCell(2)], return_state=True))
    y, hf, cf, gf, hb, cb, gb = bi(rng.standard_normal((2, 5, 4)).astype("float32"))
    assert [a.shape for a in (y, hf, cf, gf, hb, cb, gb)] == [(2, 4), *[(2, 3), (2, 3), (2, 2)] * 2]


def test_save_and_load_round_trip(tmp_path, rng):
    inputs = ln.Input(shape=(5, 3))
    h = ln.RNN(
        [ln.LSTMCell(4, seed=0), ln.GRUCell(3, seed=1), ln.SimpleRNNCell(2, seed=2)],
        return_sequences=True,
    )(inputs)
    h = ln.Bidirectional(ln.RNN([ln.GRUCell(2, seed=3), ln.LSTMCell(2, seed=4)]))(h)
    model = ln.Model(inputs, ln.Dense(1, seed=5)(h))
    model.compile(ln.SGD(0.1), "mse")
    x = rng.standard_normal((6, 5, 3)).astype("float32")
    model.fit(x, rng.standard_normal((6, 1)), epochs=1, batch_size=3, verbose=0)
    path = tmp_path / "stack.npz"
    model.save(path)
    loaded = ln.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    stack = next(layer for layer in loaded.layers if isinstance(layer, ln.RNN)).cell
    assert isinstance(stack, ln.StackedRNNCells)
    assert [type(c).__name__ for c in stack.cells] == ["LSTMCell", "GRUCell", "SimpleRNNCell"]
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ln.RNN([]), "expected a non-empty list of SimpleRNNCell"),
        (lambda: ln.RNN([ln.LSTMCell(2), ln.Dense(2)]), r"received \['LSTMCell', 'Dense'\]"),
        (lambda: ln.StackedRNNCells(ln.LSTMCell(2)), "received LSTMCell"),
        (
            lambda: ln.RNN([ln.LSTMCell(2, name="a"), ln.GRUCell(2, name="a")]),
            "names must be unique",
        ),
        (
            lambda: ln.RNN([ln.LSTMCell(2), ln.GRUCell(2, dtype="float64")]),
            "mix dtypes",
        ),
    ],
)
def test_bad_stacks_are_refused_with_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_initial_states_are_refused(rng):
    layer = ln.RNN([ln.LSTMCell(3), ln.GRUCell(2)])
    x = rng.standard_normal((2, 4, 3))
    with pytest.raises(ValueError, match=r"expected 3 initial state\(s\), received 2"):
        layer(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match=r"expected initial states of shape \(batch, 2\)"):
        layer(x, initial_state=[np.zeros((2, 3)), np.zeros((2, 3)), np.zeros((2, 3))])
