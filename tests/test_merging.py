"""Merging layers: gradients over shapes and options, Keras's shape and mask rules, errors,
the functional forms, and PyTorch autograd as the oracle (float64)."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, distinct_values
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}
TOL = {"rtol": 1e-10, "atol": 1e-12}
ELEMENTWISE = [ln.Add, ln.Subtract, ln.Multiply, ln.Average, ln.Maximum, ln.Minimum]


@st.composite
def broadcast_shapes(draw, n_inputs: int):
    """Shapes with a common batch whose sample axes broadcast by Keras's rule."""
    batch = draw(st.integers(1, 3))
    full = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    shapes = []
    for _ in range(n_inputs):
        drop = draw(st.integers(0, len(full) - 1))  # lower rank: leading sample axes go
        dims = [d if draw(st.booleans()) else 1 for d in full[drop:]]
        shapes.append((batch, *dims))
    return shapes


def split_distinct(shapes, rng):
    sizes = [int(np.prod(s)) for s in shapes]
    flat = distinct_values((sum(sizes),), rng)
    return [p.reshape(s) for p, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes,
                                         strict=True)]  # fmt: skip


@pytest.mark.parametrize("cls", ELEMENTWISE)
@given(data=st.data())
def test_elementwise_gradients_over_broadcast_shapes(cls, data):
    n = 2 if cls is ln.Subtract else data.draw(st.integers(1, 3))
    shapes = data.draw(broadcast_shapes(n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    xs = split_distinct(shapes, rng)
    assert_layer_gradients(lambda: cls(**F64), xs, front=False)


@given(
    axis=st.integers(-3, 2),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_concatenate_gradients_over_axes(axis, sizes, seed):
    rng = np.random.default_rng(seed)
    base = [2, 3, 2]
    shapes = []
    for s in sizes:
        shape = list(base)
        shape[axis % 3] = s if axis % 3 else 2
        shapes.append(tuple(shape))
    xs = [rng.standard_normal(s) for s in shapes]
    assert_layer_gradients(lambda: ln.Concatenate(axis=axis, **F64), xs, front=False)


@given(
    rank1=st.integers(2, 4),
    rank2=st.integers(2, 4),
    normalize=st.booleans(),
    data=st.data(),
)
def test_dot_gradients_over_ranks_and_axes(rank1, rank2, normalize, data):
    # (with one entry, a normalised vector is the constant ±1: every derivative is 0)
    k = data.draw(st.integers(2 if normalize else 1, 3))
    a1 = data.draw(st.integers(1, rank1 - 1))
    a2 = data.draw(st.integers(1, rank2 - 1))
    s1 = [2, *data.draw(st.lists(st.integers(1, 3), min_size=rank1 - 1, max_size=rank1 - 1))]
    s2 = [2, *data.draw(st.lists(st.integers(1, 3), min_size=rank2 - 1, max_size=rank2 - 1))]
    s1[a1] = s2[a2] = k
    axes = (a1 - rank1 if data.draw(st.booleans()) else a1, a2)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    xs = [rng.standard_normal(s1), rng.standard_normal(s2)]
    layer = ln.Dot(axes, normalize=normalize, **F64)
    assert layer.forward(xs).shape == layer.output_shape([tuple(s1), tuple(s2)])
    assert_layer_gradients(lambda: ln.Dot(axes, normalize=normalize, **F64), xs, front=False)


def test_every_merging_layer_behind_front_layers(rng):
    xs = [rng.standard_normal((2, 3, 4)) for _ in range(2)]
    for make in [*ELEMENTWISE, lambda **k: ln.Concatenate(axis=1, **k),
                 lambda **k: ln.Dot(axes=2, normalize=True, **k)]:  # fmt: skip
        assert_layer_gradients(
            lambda make=make: make(**F64),
            split_distinct([(2, 3, 4), (2, 3, 4)], rng) if make in (ln.Maximum, ln.Minimum) else xs,
        )


def test_keras_broadcasting_inserts_axes_after_the_batch():
    a = np.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    b = np.array([[10.0, 20.0, 30.0, 40.0], [50.0, 60.0, 70.0, 80.0]])  # (2, 4): per sample
    y = ln.Add(**F64).forward([a, b])
    np.testing.assert_array_equal(y, a + b[:, None, :])
    assert ln.Add().output_shape([(None, 3, 4), (None, 4)]) == (None, 3, 4)
    assert ln.Multiply().output_shape([(5, 1, 4), (5, 3, 1)]) == (5, 3, 4)


def test_maximum_and_minimum_send_the_gradient_to_the_first_extreme_input():
    a = np.array([[1.0, 5.0, 2.0]])
    b = np.array([[3.0, 5.0, 2.0]])  # ties at positions 1 and 2
    c = np.array([[0.0, 1.0, 2.0]])
    g = np.array([[1.0, 2.0, 3.0]])
    mx = ln.Maximum(**F64)
    np.testing.assert_array_equal(mx.forward([a, b, c]), [[3.0, 5.0, 2.0]])
    da, db, dc = mx.backward_input(g)
    np.testing.assert_array_equal(da, [[0.0, 2.0, 3.0]])
    np.testing.assert_array_equal(db, [[1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(dc, [[0.0, 0.0, 0.0]])
    mn = ln.Minimum(**F64)
    np.testing.assert_array_equal(mn.forward([a, b, c]), [[0.0, 1.0, 2.0]])
    da, db, dc = mn.backward_input(g)
    np.testing.assert_array_equal(da, [[0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(dc, [[1.0, 2.0, 0.0]])


def test_masks_combine_as_keras_does():
    m1 = np.array([[True, False, False]])
    m2 = np.array([[True, True, False]])
    xs = [np.zeros((1, 3, 2)), np.zeros((1, 3, 2))]
    np.testing.assert_array_equal(ln.Add().compute_mask(xs, [m1, m2]), [[True, True, False]])
    assert ln.Add().compute_mask(xs, None) is None
    assert ln.Add().compute_mask(xs, [m1, None]) is None
    with pytest.raises(ValueError, match="one mask per input"):
        ln.Add().compute_mask(xs, [m1])
    cat = ln.Concatenate(axis=1).compute_mask(xs, [m1, None])
    np.testing.assert_array_equal(cat, [[True, False, False, True, True, True]])
    cat_last = ln.Concatenate().compute_mask(xs, [m1, m2])
    np.testing.assert_array_equal(cat_last, [[True, True, False]])


def test_functional_forms_are_one_layer_call(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for fn, cls in [(ln.layers.add, ln.Add), (ln.layers.subtract, ln.Subtract),
                    (ln.layers.multiply, ln.Multiply), (ln.layers.average, ln.Average),
                    (ln.layers.maximum, ln.Maximum), (ln.layers.minimum, ln.Minimum)]:  # fmt: skip
        np.testing.assert_array_equal(fn([a, b], **F64), cls(**F64)([a, b]))
    np.testing.assert_array_equal(
        ln.layers.concatenate([a, b], axis=0, **F64), np.concatenate([a, b], axis=0)
    )
    np.testing.assert_allclose(
        ln.layers.dot([a, b], axes=1, **F64), np.sum(a * b, 1, keepdims=True)
    )


@pytest.mark.parametrize(
    ("layer", "shapes", "match"),
    [
        (ln.Add(name="m"), [(2, 3), (2, 4)], r"Add 'm': .*broadcast.*\(2, 3\) and \(2, 4\)"),
        (ln.Add(name="m"), [(2, 3), (4, 3)], r"Add 'm': .*same batch size.*\(2, 3\), \(4, 3\)"),
        (ln.Subtract(name="s"), [(2, 3)] * 3, r"Subtract 's': expected exactly 2 inputs, got 3"),
        (ln.Concatenate(name="c"), [(2, 3), (2, 3, 1)], r"Concatenate 'c': .*except on axis"),
        (ln.Concatenate(axis=3), [(2, 3), (2, 3)], r"`axis` 3 is out of range"),
        (ln.Dot(1, name="d"), [(2, 3), (2, 4)], r"Dot 'd': .*equal size on the contracted"),
        (ln.Dot(0), [(2, 3), (2, 3)], r"batch axis"),
    ],
)
def test_shape_errors_name_the_layer_and_the_shapes(layer, shapes, match):
    with pytest.raises(ValueError, match=match):
        layer.forward([np.zeros(s) for s in shapes])
    with pytest.raises(ValueError, match=match):
        layer.output_shape(shapes)


def test_argument_and_input_errors():
    with pytest.raises(ValueError, match="expected a list of input arrays"):
        ln.Add(name="a").forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="invalid value for `axes`"):
        ln.Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="invalid value for `normalize`"):
        ln.Dot(axes=1, normalize="yes")
    with pytest.raises(ValueError, match="invalid value for `axis`"):
        ln.Concatenate(axis=1.5)
    add = ln.Add()
    add.forward([np.zeros((2, 3)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="built for 2 inputs, got 3"):
        add.forward([np.zeros((2, 3))] * 3)


# --------------------------------------------------------------- PyTorch oracle
def _torch_check(layer, xs, torch_fn, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    y = layer.forward(xs)
    g = rng.standard_normal(y.shape)
    dxs = layer.backward_input(g)
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    yt = torch_fn(ts)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    yt.backward(torch.tensor(g))
    for dx, t in zip(dxs, ts, strict=True):
        np.testing.assert_allclose(dx, t.grad.numpy(), **TOL)


def _aligned(ts):
    nd = max(t.ndim for t in ts)
    return [t.reshape(t.shape[0], *([1] * (nd - t.ndim)), *t.shape[1:]) for t in ts]


def test_elementwise_layers_match_torch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    shapes = [(2, 3, 4), (2, 4), (2, 3, 1)]
    xs = split_distinct(shapes, rng)
    stack = lambda ts: torch.stack(torch.broadcast_tensors(*_aligned(ts)))  # noqa: E731
    _torch_check(ln.Add(**F64), xs, lambda ts: sum(_aligned(ts)), rng)
    _torch_check(ln.Subtract(**F64), xs[:2], lambda ts: _aligned(ts)[0] - _aligned(ts)[1], rng)
    _torch_check(ln.Multiply(**F64), xs, lambda ts: torch.prod(stack(ts), 0), rng)
    _torch_check(ln.Average(**F64), xs, lambda ts: torch.mean(stack(ts), 0), rng)
    _torch_check(ln.Maximum(**F64), xs, lambda ts: torch.max(stack(ts), 0).values, rng)
    _torch_check(ln.Minimum(**F64), xs, lambda ts: torch.min(stack(ts), 0).values, rng)


def test_concatenate_and_dot_match_torch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 1, 4))]
    _torch_check(ln.Concatenate(axis=1, **F64), xs, lambda ts: torch.cat(ts, 1), rng)
    xs = [rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))]
    _torch_check(ln.Dot(axes=2, **F64), xs, lambda ts: torch.bmm(ts[0], ts[1].transpose(1, 2)), rng)
    F = torch.nn.functional
    _torch_check(
        ln.Dot(axes=(1, 1), normalize=True, **F64),
        [rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 2))],
        lambda ts: torch.bmm(F.normalize(ts[0], dim=1).transpose(1, 2), F.normalize(ts[1], dim=1)),
        rng,
    )


@pytest.mark.parametrize(
    ("make", "shapes"),
    [
        (ln.Add, [(2, 3, 2), (2, 2), (2, 1, 1)]),
        (ln.Subtract, [(2, 1, 2), (2, 3, 2)]),
        (ln.Multiply, [(2, 3), (2, 1), (2, 3)]),
        (ln.Average, [(2, 2, 3), (2, 3)]),
        (ln.Maximum, [(2, 3), (2, 2, 3)]),
        (ln.Minimum, [(2, 3), (2, 3), (2, 3)]),
        (lambda **k: ln.Concatenate(axis=1, **k), [(2, 1, 3), (2, 2, 3)]),
        (lambda **k: ln.Concatenate(axis=-1, **k), [(2, 2, 1), (2, 2, 3)]),
    ],
)
def test_closed_form_jacobians_equal_the_ones_built_from_backward(make, shapes, rng):
    layer = make(**F64)
    xs = split_distinct(shapes, rng)
    closed = layer.jacobian_input(xs)
    built = ln.Layer.jacobian_input(layer, xs)  # the base class's rows of backward_input
    assert len(closed) == len(built) == len(xs)
    for c, b in zip(closed, built, strict=True):
        np.testing.assert_array_equal(c, b)


def test_weights_lists_are_empty_as_in_keras():
    add = ln.Add()
    add.forward([np.ones((1, 2)), np.ones((1, 2))])
    assert add.get_weights() == []
    add.set_weights([])
    with pytest.raises(ValueError, match="expected 0 arrays"):
        add.set_weights([np.ones(2)])
