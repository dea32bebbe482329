"""Every op of layernet.ops: values, derivatives against central differences (float64),
broadcasting (hypothesis), PyTorch as oracle where it has the op, and the errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _harness import distinct_values
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import ops
from layernet.ops.tensor import Tape, Tensor, recording

EPS = 1e-6
TOL = 1e-6


# ------------------------------------------------------------------ the checker
def vjp(fn: Callable[..., Any], xs: list[Any], diff: list[bool], g: Any = None):
    """Value of ``fn(*xs)`` and ∂(Σ g·y)/∂x_i by the recorded ops (None where not diff)."""
    tape = Tape()
    with recording(tape):
        ts = [Tensor(x, tape) if d else x for x, d in zip(xs, diff, strict=True)]
        out = fn(*ts)
    y = out.value if isinstance(out, Tensor) else np.asarray(out)
    if g is None:
        g = np.random.default_rng(5).standard_normal(y.shape)
    grads = tape.backward([(out, g)]) if isinstance(out, Tensor) else {}
    return (
        y,
        g,
        [
            grads.get(id(t), np.zeros(np.shape(x))) if d else None
            for t, x, d in zip(ts, xs, diff, strict=True)
        ],
    )


def numeric(fn: Callable[..., Any], xs: list[Any], i: int, g: np.ndarray) -> np.ndarray:
    x = np.array(xs[i], dtype=float)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        vals = []
        for s in (1, -1):
            x[idx] = old + s * EPS
            args = [*xs[:i], x.copy(), *xs[i + 1 :]]
            vals.append(float(np.sum(g * np.asarray(fn(*args)))))
        x[idx] = old
        out[idx] = (vals[0] - vals[1]) / (2 * EPS)
    return out


def check(fn: Callable[..., Any], xs: list[Any], diff: list[bool] | None = None) -> None:
    diff = diff or [isinstance(x, np.ndarray) and x.dtype.kind == "f" for x in xs]
    y, g, grads = vjp(fn, xs, diff)
    np.testing.assert_allclose(y, np.asarray(fn(*xs)), rtol=1e-12, atol=1e-12)
    for i, (gr, d) in enumerate(zip(grads, diff, strict=True)):
        if d:
            num = numeric(fn, xs, i, g)
            assert gr.shape == np.shape(xs[i])
            err = np.max(np.abs(gr - num) / (1 + np.abs(num))) if num.size else 0.0
            assert err < TOL, f"input {i}: analytic {gr} vs numeric {num}"


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def N(*shape: int) -> np.ndarray:
    return _rng().standard_normal(shape)


def P(*shape: int) -> np.ndarray:
    return _rng().uniform(0.5, 2.0, shape)


def D(*shape: int) -> np.ndarray:
    return distinct_values(shape, _rng()) + 0.003


def U(*shape: int) -> np.ndarray:
    return _rng().uniform(0.1, 0.9, shape)


IDX = np.array([[2, 0, 1], [1, 1, 0]])

#: op name -> list of (function, inputs). Every differentiable op needs one.
CASES: dict[str, list[tuple[Callable[..., Any], list[Any]]]] = {
    "add": [(ops.add, [N(2, 3), N(3)]), (ops.add, [N(2, 1, 3), N(4, 1)])],
    "subtract": [(ops.subtract, [N(2, 3), N(2, 1)])],
    "multiply": [(ops.multiply, [N(2, 3), N(1, 3)]), (lambda a: ops.multiply(a, 3.0), [N(2)])],
    "divide": [(ops.divide, [N(2, 3), P(3)])],
    "power": [(ops.power, [P(2, 3), N(3)]), (lambda a: a**3, [N(4)])],
    "maximum": [(ops.maximum, [D(2, 3), D(3) * 0.5])],
    "minimum": [(ops.minimum, [D(2, 3), D(2, 1) * 0.7])],
    "matmul": [
        (ops.matmul, [N(2, 3), N(3, 4)]),
        (ops.matmul, [N(2, 2, 3), N(3)]),
        (ops.matmul, [N(3), N(2, 3, 4)]),
        (ops.matmul, [N(2, 1, 2, 3), N(3, 3, 2)]),
    ],
    "dot": [
        (ops.dot, [N(2, 3), N(3, 2)]),
        (ops.dot, [N(3), N(3)]),
        (ops.dot, [N(2, 3), N(2, 3, 2)]),
    ],
    "tensordot": [
        (lambda a, b: ops.tensordot(a, b, axes=1), [N(2, 3), N(3, 4)]),
        (lambda a, b: ops.tensordot(a, b, axes=([0, 2], [2, 0])), [N(2, 3, 4), N(4, 5, 2)]),
    ],
    "einsum": [
        (lambda a, b: ops.einsum("bij,bjk->bik", a, b), [N(2, 2, 3), N(2, 3, 2)]),
        (lambda a, b: ops.einsum("ij,kj", a, b), [N(2, 3), N(4, 3)]),
        (lambda a: ops.einsum("ij->", a), [N(2, 3)]),
        (lambda a, b: ops.einsum("...i,i->...", a, b), [N(2, 3, 4), N(4)]),
        (lambda a, b: ops.einsum("ij,k->ik", a, b), [N(2, 3), N(4)]),
    ],
    "negative": [(ops.negative, [N(2, 3)]), (lambda a: -a, [N(3)])],
    "square": [(ops.square, [N(2, 3)])],
    "sqrt": [(ops.sqrt, [P(2, 3)])],
    "rsqrt": [(ops.rsqrt, [P(2, 3)])],
    "exp": [(ops.exp, [N(2, 3)])],
    "expm1": [(ops.expm1, [N(2, 3)])],
    "log": [(ops.log, [P(2, 3)])],
    "log1p": [(ops.log1p, [P(2, 3)])],
    "absolute": [(ops.absolute, [D(2, 3)])],
    "abs": [(ops.abs, [D(2, 3)]), (lambda a: abs(a), [D(3)])],
    "erf": [(ops.erf, [N(2, 3)])],
    "clip": [(lambda a: ops.clip(a, -0.5, 0.5), [D(3, 4) * 10])],
    "where": [(lambda a, b: ops.where(N(2, 3) > 0, a, b), [N(2, 3), N(3)])],
    "sum": [
        (ops.sum, [N(2, 3)]),
        (lambda a: ops.sum(a, axis=1), [N(2, 3, 2)]),
        (lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [N(2, 3, 2)]),
    ],
    "mean": [(lambda a: ops.mean(a, axis=-1), [N(2, 3)]), (ops.mean, [N(3, 2)])],
    "max": [(lambda a: ops.max(a, axis=0), [D(3, 4)]), (ops.max, [D(2, 3)])],
    "min": [(lambda a: ops.min(a, axis=1, keepdims=True), [D(3, 4)])],
    "prod": [
        (lambda a: ops.prod(a, axis=1), [N(2, 3)]),
        (ops.prod, [np.array([[1.0, 0.0], [2.0, 3.0]])]),
        (lambda a: ops.prod(a, axis=0), [np.array([[0.0, 0.0], [2.0, 3.0]])]),
    ],
    "var": [(lambda a: ops.var(a, axis=0), [N(4, 3)]), (ops.var, [N(5)])],
    "std": [(lambda a: ops.std(a, axis=-1), [N(3, 4)])],
    "cumsum": [(lambda a: ops.cumsum(a, axis=1), [N(2, 4)]), (ops.cumsum, [N(2, 3)])],
    "norm": [
        (ops.norm, [N(2, 3)]),
        (lambda a: ops.norm(a, axis=-1), [N(2, 3)]),
        (lambda a: ops.norm(a, ord=1, axis=0), [D(3, 2)]),
    ],
    "logsumexp": [(lambda a: ops.logsumexp(a, axis=-1), [N(2, 3)])],
    "reshape": [
        (lambda a: ops.reshape(a, (3, -1)), [N(2, 3)]),
        (lambda a: a.reshape(6), [N(2, 3)]),
    ],
    "transpose": [
        (ops.transpose, [N(2, 3, 4)]),
        (lambda a: ops.transpose(a, (1, 2, 0)), [N(2, 3, 4)]),
        (lambda a: a.T, [N(2, 3)]),
    ],
    "expand_dims": [(lambda a: ops.expand_dims(a, 1), [N(2, 3)])],
    "squeeze": [(lambda a: ops.squeeze(a, 1), [N(2, 1, 3)]), (ops.squeeze, [N(1, 3, 1)])],
    "broadcast_to": [(lambda a: ops.broadcast_to(a, (4, 2, 3)), [N(2, 1)])],
    "getitem": [
        (lambda a: a[..., 0], [N(2, 3)]),
        (lambda a: a[:, 1:3], [N(2, 4)]),
        (lambda a: a[np.array([0, 0, 1])], [N(2, 3)]),
        (lambda a: a[a.value > 0] if isinstance(a, Tensor) else a[a > 0], [N(3, 3)]),
    ],
    "slice": [(lambda a: ops.slice(a, (0, 1), (2, 2)), [N(3, 4)])],
    "concatenate": [(lambda a, b: ops.concatenate([a, b], axis=1), [N(2, 3), N(2, 1)])],
    "stack": [(lambda a, b: ops.stack([a, b], axis=-1), [N(2, 3), N(2, 3)])],
    "split": [
        (lambda a: ops.split(a, 2, axis=1)[1] * 2 + ops.split(a, 2, axis=1)[0], [N(2, 4)]),
        (lambda a: ops.split(a, [1], axis=0)[1], [N(3, 2)]),
    ],
    "unstack": [(lambda a: ops.unstack(a, axis=1)[2] - ops.unstack(a, axis=1)[0], [N(2, 3)])],
    "tile": [(lambda a: ops.tile(a, (2, 3)), [N(2, 2)]), (lambda a: ops.tile(a, 2), [N(3)])],
    "repeat": [
        (lambda a: ops.repeat(a, 2, axis=1), [N(2, 3)]),
        (lambda a: ops.repeat(a, 3), [N(2, 2)]),
    ],
    "pad": [(lambda a: ops.pad(a, ((1, 0), (2, 1))), [N(2, 3)])],
    "flip": [(lambda a: ops.flip(a, 1), [N(2, 3)]), (ops.flip, [N(2, 3)])],
    "take": [
        (lambda a: ops.take(a, IDX, axis=1), [N(2, 3)]),
        (lambda a: ops.take(a, [0, 5, 5]), [N(2, 3)]),
    ],
    "take_along_axis": [(lambda a: ops.take_along_axis(a, IDX, axis=1), [N(2, 3)])],
    "sort": [(lambda a: ops.sort(a, axis=-1), [D(3, 4)])],
    "top_k": [(lambda a: ops.top_k(a, 2)[0], [D(3, 4)])],
    "cast": [
        (lambda a: ops.cast(a, "float64"), [N(2, 3)]),
        (lambda a: ops.cast(ops.cast(a, "float32"), "float64") * 0 + a, [N(2, 3)]),
    ],
    "tanh": [(ops.tanh, [N(2, 3)])],
    "relu": [(ops.relu, [D(2, 3)])],
    "relu6": [(ops.relu6, [D(3, 4) * 40])],
    "sigmoid": [(ops.sigmoid, [N(2, 3) * 5])],
    "softplus": [(ops.softplus, [N(2, 3) * 5])],
    "log_sigmoid": [(ops.log_sigmoid, [N(2, 3) * 5])],
    "silu": [(ops.silu, [N(2, 3)])],
    "gelu": [(ops.gelu, [N(2, 3)]), (lambda a: ops.gelu(a, approximate=False), [N(2, 3)])],
    "elu": [(ops.elu, [D(2, 3)]), (lambda a: ops.elu(a, alpha=0.5), [D(2, 3)])],
    "leaky_relu": [(ops.leaky_relu, [D(2, 3)])],
    "softmax": [(ops.softmax, [N(2, 3)]), (lambda a: ops.softmax(a, axis=0), [N(2, 3)])],
    "log_softmax": [
        (ops.log_softmax, [N(2, 3)]),
        (lambda a: ops.log_softmax(a, axis=0), [N(2, 3)]),
    ],
    "moments": [
        (lambda a: ops.nn.moments(a, axes=[0])[1] + ops.nn.moments(a, axes=[0])[0], [N(4, 3)])
    ],
    "conv": [
        (lambda x, k: ops.conv(x, k), [N(2, 5, 2), N(3, 2, 3)]),
        (lambda x, k: ops.conv(x, k, strides=2, padding="same"), [N(1, 5, 4, 2), N(2, 3, 2, 2)]),
        (lambda x, k: ops.conv(x, k, dilation_rate=2), [N(1, 5, 5, 1), N(2, 2, 1, 2)]),
        (lambda x, k: ops.conv(x, k, padding="same"), [N(1, 3, 2, 3, 1), N(2, 2, 2, 1, 1)]),
    ],
    "binary_crossentropy": [
        (lambda t, p: ops.binary_crossentropy(t, p), [U(2, 3), U(2, 3)]),
        (lambda t, p: ops.binary_crossentropy(t, p, from_logits=True), [U(2, 3), N(2, 3)]),
    ],
    "categorical_crossentropy": [
        (lambda t, p: ops.categorical_crossentropy(t, p), [U(2, 3), U(2, 3)]),
        (lambda t, p: ops.categorical_crossentropy(t, p, from_logits=True), [U(2, 3), N(2, 3)]),
    ],
    "sparse_categorical_crossentropy": [
        (lambda p: ops.sparse_categorical_crossentropy(np.array([2, 0]), p), [U(2, 3)]),
        (
            lambda p: ops.sparse_categorical_crossentropy(np.array([1, 0]), p, from_logits=True),
            [N(2, 3)],
        ),
    ],
    "image.resize": [
        (lambda a: ops.image.resize(a, (5, 3)), [N(1, 3, 2, 2)]),
        (lambda a: ops.image.resize(a, (2, 2), interpolation="nearest"), [N(2, 4, 3, 1)]),
    ],
    "image.extract_patches": [
        (lambda a: ops.image.extract_patches(a, 2), [N(1, 4, 4, 2)]),
        (
            lambda a: ops.image.extract_patches(a, (2, 3), strides=1, padding="same"),
            [N(1, 3, 4, 1)],
        ),
    ],
}


def test_every_differentiable_op_has_a_case():
    missing = sorted(set(ops.DIFFERENTIABLE) - set(CASES))
    assert not missing, f"add a case to CASES in {__file__} for: {missing}"


@pytest.mark.parametrize(
    ("name", "k"), [(name, k) for name, cases in CASES.items() for k in range(len(cases))]
)
def test_op_derivative_matches_central_differences(name, k):
    fn, xs = CASES[name][k]
    check(fn, xs)


def test_every_primitive_jacobian_is_its_backward():
    """J^T g = backward(g) for every primitive of the cases (closed forms included)."""
    for name, cases in CASES.items():
        fn, xs = cases[0]
        tape = Tape()
        with recording(tape):
            fn(*[Tensor(x, tape) for x in xs])
        for node in tape.nodes:
            if not isinstance(node.op, ln.ops.Primitive):
                continue
            shapes = [None if t is None else t.shape for t in node.inputs]
            y = node.outputs[0]
            jacs = node.op.jacobians(y.shape, node.saved, shapes)
            g = np.random.default_rng(1).standard_normal(y.shape)
            back = node.op.backward(g, node.saved)
            for j, b, s in zip(jacs, back, shapes, strict=False):
                if j is not None and s is not None:
                    np.testing.assert_allclose(
                        g.ravel() @ j, np.ravel(b), atol=1e-12, err_msg=f"{name}: {node.op.name}"
                    )


# -------------------------------------------------------------- broadcasting
@st.composite
def broadcast_pair(draw):
    shape = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    other = list(shape)
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    drop = draw(st.integers(0, len(other) - 1))
    other = other[drop:]
    if draw(st.booleans()):
        return tuple(shape), tuple(other)
    return tuple(other), tuple(shape)


@settings(max_examples=25, deadline=None)
@given(
    pair=broadcast_pair(),
    name=st.sampled_from(["add", "subtract", "multiply", "divide", "maximum", "minimum", "power"]),
)
def test_binary_ops_reduce_broadcast_gradients(pair, name):
    rng = np.random.default_rng(abs(hash((pair, name))) % 2**32)
    a = rng.uniform(0.5, 2.0, pair[0]) + rng.permutation(np.arange(np.prod(pair[0]))).reshape(
        pair[0]
    )
    b = rng.uniform(0.5, 2.0, pair[1]) * 0.3
    check(getattr(ops, name), [a, b])


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    data=st.data(),
    name=st.sampled_from(
        [
            "sum",
            "mean",
            "max",
            "min",
            "prod",
            "var",
            "softmax",
            "log_softmax",
            "logsumexp",
            "cumsum",
        ]
    ),
)
def test_reductions_over_any_axis(shape, data, name):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = distinct_values(tuple(shape), np.random.default_rng(len(shape))) + 1.0
    kw = {"axis": axis}
    if name in ("sum", "mean", "max", "min", "prod", "var", "logsumexp"):
        kw["keepdims"] = data.draw(st.booleans())
    check(lambda a: getattr(ops, name)(a, **kw), [x])


# ------------------------------------------------------------------ values
def test_ops_on_arrays_compute_at_once_and_return_numpy():
    x = np.arange(6.0).reshape(2, 3)
    y = ops.add(x, 1)
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, x + 1)
    assert ops.add(np.float32(1), np.ones(2, np.float32)).dtype == np.float32
    assert ops.multiply(np.ones(2, np.float32), 2.0).dtype == np.float32
    assert ops.shape(x) == (2, 3)
    np.testing.assert_array_equal(ops.argmax(x, axis=1), [2, 2])
    np.testing.assert_array_equal(ops.one_hot(np.array([1, 0]), 3), [[0, 1, 0], [1, 0, 0]])
    assert ops.zeros((2,)).dtype == np.float32 and ops.ones((2,), "float64").dtype == np.float64
    np.testing.assert_array_equal(ops.arange(3), [0, 1, 2])
    np.testing.assert_array_equal(ops.full((2,), 3.0), [3.0, 3.0])
    v, i = ops.top_k(np.array([[1.0, 5.0, 3.0]]), 2)
    np.testing.assert_array_equal(v, [[5.0, 3.0]])
    np.testing.assert_array_equal(i, [[1, 2]])
    assert ops.convert_to_numpy(ln.Variable(np.ones(2))).shape == (2,)
    np.testing.assert_array_equal(ops.isnan(np.array([np.nan, 1.0])), [True, False])
    np.testing.assert_array_equal(
        ops.logical_and(np.array([1, 0]), np.array([1, 1])), [True, False]
    )


def test_non_differentiable_ops_give_no_gradient():
    x = N(2, 3)
    for fn in (
        ops.floor,
        ops.ceil,
        ops.round,
        ops.sign,
        lambda a: ops.cast(ops.argmax(a), "float64"),
        lambda a: ops.cast(ops.greater(a, 0), "float64"),
    ):
        _, _, grads = vjp(lambda a, fn=fn: ops.add(fn(a), 0.0), [x], [True])
        np.testing.assert_array_equal(grads[0], 0)


def test_stop_gradient_cuts_the_backward_pass():
    x = N(2, 3)
    _, g, grads = vjp(lambda a: a * ops.stop_gradient(a), [x], [True])
    np.testing.assert_allclose(grads[0], g * x)


def test_a_tensor_used_twice_sums_its_gradients():
    x = N(3)
    _, g, grads = vjp(lambda a: a * a + a, [x], [True])
    np.testing.assert_allclose(grads[0], g * (2 * x + 1))


# ------------------------------------------------------------------- errors
def test_shapes_that_do_not_broadcast_name_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"ops\.add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        ops.add(np.ones((2, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"ops\.matmul: shapes \(2, 3\) and \(4, 2\)"):
        ops.matmul(np.ones((2, 3)), np.ones((4, 2)))


def test_axis_out_of_range_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"ops\.sum: invalid value for `axis`: expected an int in \[-2, 2\)"
    ):
        ops.sum(np.ones((2, 3)), axis=2)
    with pytest.raises(ValueError, match=r"ops\.softmax: invalid value for `axis`"):
        ops.softmax(np.ones(3), axis=1)


def test_non_numeric_input_is_a_type_error_naming_the_op():
    with pytest.raises(TypeError, match=r"ops\.exp: expected `x` to be a real numeric array"):
        ops.exp(np.array(["a"]))
    with pytest.raises(
        ValueError, match=r"ops\.reshape: cannot reshape an array of shape \(2, 3\)"
    ):
        ops.reshape(np.ones((2, 3)), (4, 2))


# ------------------------------------------------------------ symbolic hook
def test_symbolic_arguments_go_to_the_handler():
    class Sym:
        _layernet_symbolic = True

    calls = []

    def handler(name, fn, args, kwargs):
        calls.append((name, kwargs))
        if name == "concatenate":
            return "recorded"
        return fn(*[np.ones(2) if isinstance(a, Sym) else a for a in args], **kwargs)

    old = ops.set_symbolic_handler(handler)
    try:
        assert ops.is_symbolic(Sym()) and not ops.is_symbolic(np.ones(1))
        out = ops.sum(Sym(), axis=0)
        assert out == 2.0 and calls == [("sum", {"axis": 0})]
        # the handler receives the public op: a Lambda stores it by name
        seen = []
        ops.set_symbolic_handler(lambda name, fn, args, kwargs: seen.append(fn))
        ops.tanh(Sym())
        assert seen == [ops.tanh]
        assert ln.layers.Lambda(seen[0]).get_config()["function"] == "layernet>ops.tanh"
        ops.set_symbolic_handler(handler)
        assert ops.concatenate([np.ones(1), Sym()]) == "recorded"  # nested in a list
        assert calls[-1][0] == "concatenate"
        assert ops.add(np.ones(2), 1.0).shape == (2,)  # no symbolic argument: computes
        assert len(calls) == 2
    finally:
        ops.set_symbolic_handler(old)


# ------------------------------------------------------------ PyTorch oracle
torch_cases = {
    "matmul": (lambda m, a, b: m.matmul(a, b), [N(2, 2, 3), N(3, 4)]),
    "softmax": (lambda m, a: m.softmax(a, -1) if m is ops else m.softmax(a, dim=-1), [N(2, 3)]),
    "log_softmax": (
        lambda m, a: m.log_softmax(a, -1) if m is ops else m.log_softmax(a, dim=-1),
        [N(2, 3)],
    ),
    "gelu_exact": (
        lambda m, a: (
            m.gelu(a, approximate=False) if m is ops else __import__("torch").nn.functional.gelu(a)
        ),
        [N(2, 3)],
    ),
    "gelu_tanh": (
        lambda m, a: (
            m.gelu(a) if m is ops else __import__("torch").nn.functional.gelu(a, approximate="tanh")
        ),
        [N(2, 3)],
    ),
    "silu": (
        lambda m, a: m.silu(a) if m is ops else __import__("torch").nn.functional.silu(a),
        [N(2, 3)],
    ),
    "softplus": (
        lambda m, a: m.softplus(a) if m is ops else __import__("torch").nn.functional.softplus(a),
        [N(2, 3)],
    ),
    "elu": (
        lambda m, a: m.elu(a) if m is ops else __import__("torch").nn.functional.elu(a),
        [D(2, 3)],
    ),
    "erf": (lambda m, a: m.erf(a), [N(2, 3)]),
    "cumsum": (lambda m, a: m.cumsum(a, 1) if m is ops else m.cumsum(a, dim=1), [N(2, 3)]),
    "prod": (lambda m, a: m.prod(a, axis=1) if m is ops else m.prod(a, dim=1), [N(2, 3)]),
    "var": (
        lambda m, a: m.var(a, axis=0) if m is ops else m.var(a, dim=0, unbiased=False),
        [N(4, 3)],
    ),
    "logsumexp": (
        lambda m, a: m.logsumexp(a, axis=1) if m is ops else m.logsumexp(a, dim=1),
        [N(2, 3)],
    ),
    "einsum": (lambda m, a, b: m.einsum("bij,bkj->bik", a, b), [N(2, 2, 3), N(2, 4, 3)]),
    "tensordot": (
        lambda m, a, b: (
            m.tensordot(a, b, ([1], [0])) if m is ops else m.tensordot(a, b, dims=([1], [0]))
        ),
        [N(2, 3), N(3, 2)],
    ),
    "take_along_axis": (
        lambda m, a: (
            m.take_along_axis(a, IDX, axis=1) if m is ops else m.gather(a, 1, m.tensor(IDX))
        ),
        [N(2, 3)],
    ),
    "norm": (lambda m, a: m.norm(a, axis=-1) if m is ops else m.linalg.norm(a, dim=-1), [N(2, 3)]),
}


@pytest.mark.parametrize("name", sorted(torch_cases))
def test_ops_agree_with_pytorch(name):
    torch = pytest.importorskip("torch")
    fn, xs = torch_cases[name]
    y, g, grads = vjp(lambda *a: fn(ops, *a), xs, [True] * len(xs))
    tx = [torch.tensor(x, requires_grad=True) for x in xs]
    ty = fn(torch, *tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for a, b in zip(grads, tx, strict=True):
        np.testing.assert_allclose(a, b.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_conv_agrees_with_pytorch():
    torch = pytest.importorskip("torch")
    x, k = N(2, 6, 5, 3), N(3, 2, 3, 4)
    y, g, (gx, gk) = vjp(
        lambda a, b: ops.conv(a, b, strides=(2, 1), dilation_rate=1), [x, k], [True, True]
    )
    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tk = torch.tensor(k.transpose(3, 2, 0, 1), requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tk, stride=(2, 1))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), atol=1e-12)
    ty.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(gx, tx.grad.numpy().transpose(0, 2, 3, 1), atol=1e-12)
    np.testing.assert_allclose(gk, tk.grad.numpy().transpose(2, 3, 1, 0), atol=1e-12)


def test_resize_agrees_with_pytorch_bilinear():
    torch = pytest.importorskip("torch")
    x = N(1, 3, 4, 2)
    for size in [(6, 7), (2, 3)]:
        y = ops.image.resize(x, size)
        t = torch.nn.functional.interpolate(
            torch.tensor(x.transpose(0, 3, 1, 2)), size=size, mode="bilinear", align_corners=False
        )
        np.testing.assert_allclose(y, t.numpy().transpose(0, 2, 3, 1), atol=1e-12)
