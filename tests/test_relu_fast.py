"""ReLU against a block of zeros (``_ops.relu``): bit for bit ``np.maximum(x, 0)``.

NumPy's ``maximum`` with a scalar operand runs a scalar loop; ``_ops.relu``
compares with a shared read-only block of zeros instead, block by block and split
over threads when large. Every result must equal ``np.maximum(x, 0)`` bit for
bit: NaN (either sign) kept, ``-0.0`` made ``+0.0``, infinities, subnormals;
in place and into a separate array; across block boundaries and thread splits;
and the layers that use it (``ReLU``, ``activation="relu"``, a ReLU ``SimpleRNN``)
give the same outputs with the fast paths on and off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import layernet as ln
from layernet import _ops, threads

SPECIAL = [-0.0, 0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, -1.5, 2.5]


def bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values_bit_for_bit(dtype):
    x = np.array(SPECIAL * 7, dtype=dtype).reshape(7, 10)
    expected = np.maximum(x, 0)
    out = _ops.relu(x, np.empty_like(x))
    np.testing.assert_array_equal(bits(out), bits(expected))
    assert not np.signbit(out[x == 0]).any()  # -0.0 became +0.0, as NumPy's maximum gives


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=9),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
    ),
    block=st.sampled_from([1, 3, 16, 1 << 16]),
    parts=st.sampled_from([1, 2, 3]),
    in_place=st.booleans(),
)
def test_equals_numpy_maximum_over_blocks_and_splits(x, block, parts, in_place):
    expected = np.maximum(x, 0)
    before = ln.get_num_threads()
    old = (_ops.RELU_BLOCK, threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD)
    _ops.RELU_BLOCK, threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD = block, 0, False
    _ops._ZEROS.clear()
    ln.set_num_threads(parts)
    try:
        src = x.copy()
        out = _ops.relu(src, src if in_place else np.empty_like(src))
    finally:
        _ops.RELU_BLOCK, threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD = old
        _ops._ZEROS.clear()
        ln.set_num_threads(before)
    np.testing.assert_array_equal(bits(out), bits(expected))
    if in_place:
        assert out is src


def test_the_shared_zeros_are_read_only_and_never_written(rng):
    x = rng.standard_normal((3, 70_000)).astype(np.float32)  # several blocks
    _ops.relu(x, x)
    zeros = _ops._ZEROS[np.dtype(np.float32)]
    assert not zeros.flags.writeable
    assert not zeros.any()


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x[:, ::2],  # strided input
        lambda x: np.asfortranarray(x),  # another layout
        lambda x: x.astype(np.int32),  # not floating point
    ],
)
def test_other_inputs_take_numpy_maximum(make, rng):
    x = make(rng.standard_normal((6, 8)).astype(np.float32) * 5)
    out = np.empty(x.shape, x.dtype)
    np.testing.assert_array_equal(_ops.relu(x, out), np.maximum(x, 0))


def test_a_strided_output_is_written_in_place(rng):
    x = rng.standard_normal((6, 8)).astype(np.float32)
    big = np.full((6, 16), 7.0, np.float32)
    _ops.relu(x, big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], np.maximum(x, 0))
    np.testing.assert_array_equal(big[:, 1::2], 7.0)


def layer_outputs(rng):
    x = rng.standard_normal((4, 12, 3)).astype(np.float32)
    x[0, 0, 0] = -0.0
    out = []
    relu = ln.ReLU()
    out.append(relu.forward(x.copy(), training=True))
    out.append(relu.backward_input(np.ones_like(x)))
    conv = ln.Conv1D(5, 3, activation="relu", seed=1)
    out.append(conv.forward(x, training=True))
    out.append(
        conv.backward_input(np.linspace(-1, 1, 4 * 10 * 5, dtype="float32").reshape(4, 10, 5))
    )
    rnn = ln.SimpleRNN(4, activation="relu", seed=2)
    out.append(rnn.forward(x, training=True))
    model = ln.Sequential([ln.Conv1D(4, 3, seed=3), ln.ReLU(), ln.Flatten(), ln.Dense(2, seed=4)])
    model.compile(ln.SGD(0.1), "mse")
    model.train_on_batch(x, np.ones((4, 2), "float32"))
    out.extend(model.get_weights())
    return out


def test_layers_same_with_fast_paths_on_and_off():
    on = layer_outputs(np.random.default_rng(0))
    with _ops.fast_paths(False):
        off = layer_outputs(np.random.default_rng(0))
    for a, b in zip(on, off, strict=True):
        np.testing.assert_array_equal(bits(a), bits(b))
