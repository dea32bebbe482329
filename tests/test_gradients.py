"""Every layer through the shared harness, over many shapes (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, distinct_values
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}


@st.composite
def conv_cases(draw, max_rank: int = 2):
    rank = draw(st.integers(1, max_rank))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(
        st.one_of(
            st.just("valid"),
            st.just("same"),
            st.integers(0, 2),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    window = [di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True)]
    extra = 4 if rank == 1 else 2
    spatial = tuple(w + draw(st.integers(0, extra)) for w in window)
    n = draw(st.sampled_from([1, 3]))
    c = draw(st.integers(1, 3))
    f = draw(st.integers(1, 3 if rank == 1 else 2))
    bias = draw(st.booleans())
    return (n, *spatial, c), {
        "filters": f,
        "kernel_size": k,
        "strides": s,
        "dilation_rate": d,
        "padding": padding,
        "use_bias": bias,
    }


@given(conv_cases(), st.integers(0, 2**16))
def test_conv_gradients(case, seed):
    shape, kwargs = case
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.Conv(**kwargs, seed=seed, **F64), x)


def test_conv_3d_gradients(rng):
    x = rng.standard_normal((2, 4, 3, 4, 2))
    assert_layer_gradients(
        lambda: ln.Conv(2, (2, 2, 3), strides=(1, 2, 1), padding="same", seed=1, **F64), x
    )


@st.composite
def pool_cases(draw):
    rank = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 3) for _ in range(rank)])))
    padding = draw(
        st.one_of(
            st.just("valid"),
            st.just("same"),
            st.tuples(*[st.tuples(st.integers(0, ki - 1), st.integers(0, ki - 1)) for ki in k]),
        )
    )
    spatial = tuple(ki + draw(st.integers(0, 4 if rank == 1 else 3)) for ki in k)
    n = draw(st.sampled_from([1, 2]))
    c = draw(st.integers(1, 3))
    return (n, *spatial, c), {"pool_size": k, "strides": strides, "padding": padding}


@given(pool_cases(), st.integers(0, 2**16))
def test_maxpool_gradients(case, seed):
    shape, kwargs = case
    x = distinct_values(shape, np.random.default_rng(seed))
    assert_layer_gradients(lambda: ln.MaxPool(**kwargs, **F64), x)


@given(pool_cases(), st.integers(0, 2**16))
def test_avgpool_gradients(case, seed):
    shape, kwargs = case
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.AvgPool(**kwargs, **F64), x)


shapes = st.sampled_from([(1, 5), (3, 4), (2, 6, 3), (2, 3, 3, 2), (1, 7, 1)])


@pytest.mark.parametrize("cls", [ln.ReLU, ln.Sigmoid, ln.Tanh, ln.Flatten])
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_parameter_free_gradients(cls, shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    if cls is ln.ReLU:  # keep clear of the kink at 0, where no derivative exists
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
    assert_layer_gradients(lambda: cls(**F64), x)


@given(
    shape=st.sampled_from([(1, 3), (4, 5), (2, 3, 4)]),
    units=st.integers(1, 4),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_dense_gradients(shape, units, bias, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_layer_gradients(lambda: ln.Dense(units, use_bias=bias, seed=seed, **F64), x)


@given(n=st.integers(1, 4), k=st.integers(2, 5), onehot=st.booleans(), seed=st.integers(0, 999))
def test_losses_in_a_chain(n, k, onehot, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    labels = rng.integers(0, k, n)
    t = np.eye(k)[labels] if onehot else labels
    chain = [ln.Dense(k, seed=seed, **F64), ln.Tanh(**F64), ln.SoftmaxCrossEntropy(**F64)]
    result = ln.gradcheck(chain, x, t)
    assert result.passed, str(result)
    chain = [ln.Dense(k, seed=seed, **F64), ln.MSELoss(**F64)]
    result = ln.gradcheck(chain, x, rng.standard_normal((n, k)))
    assert result.passed, str(result)


def test_full_cnn_chain(rng):
    """The notes' network: convolution, pooling, ramp, ..., loss, checked end to end.

    Max pooling comes before the ramp so that its windows hold no ties (ReLU's zeros).
    """
    chain = [
        ln.Conv(3, 3, padding=1, seed=1, **F64),
        ln.MaxPool(2, **F64),
        ln.ReLU(**F64),
        ln.Conv(2, (2, 2), strides=1, seed=2, **F64),
        ln.ReLU(**F64),
        ln.AvgPool(2, **F64),
        ln.Flatten(**F64),
        ln.Dense(3, seed=3, **F64),
        ln.SoftmaxCrossEntropy(**F64),
    ]
    x = rng.standard_normal((2, 8, 8, 2))
    result = ln.gradcheck(chain, x, np.array([0, 2]))
    assert result.passed, str(result)
    assert result.max_error < 1e-7
