"""PyTorch autograd as an independent oracle, forward and backward, in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the 'oracle' extra")
F = torch.nn.functional
torch.set_num_threads(1)
F64 = {"dtype": "float64"}
TOL = {"rtol": 1e-10, "atol": 1e-10}


def to_torch_layout(x: np.ndarray):
    """channels-last numpy -> channels-first torch tensor that requires grad."""
    perm = (0, x.ndim - 1, *range(1, x.ndim - 1))
    return torch.tensor(np.ascontiguousarray(x.transpose(perm)), requires_grad=True)


def from_torch_layout(t) -> np.ndarray:
    a = t.detach().numpy()
    return a.transpose((0, *range(2, a.ndim), 1))


def tf_same_pads(n, k, s, d=1):
    """TensorFlow's 'same' padding, written independently of layernet."""
    eff = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + eff - n, 0)
    return total // 2, total - total // 2


def explicit_pads(padding, spatial, k, s, d):
    if padding == "valid":
        return [(0, 0)] * len(spatial)
    if padding == "same":
        return [tf_same_pads(n, ki, si, di) for n, ki, si, di in zip(spatial, k, s, d)]
    if isinstance(padding, int):
        return [(padding, padding)] * len(spatial)
    return [tuple(p) for p in padding]


def torch_pad(xt, pads, value=0.0):
    flat = [p for pair in reversed(pads) for p in pair]
    return F.pad(xt, flat, value=value) if any(flat) else xt


@st.composite
def conv_cases(draw):
    rank = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = draw(
        st.one_of(
            st.just("valid"),
            st.just("same"),
            st.integers(0, 3),
            st.tuples(*[st.tuples(st.integers(0, 2), st.integers(0, 2)) for _ in range(rank)]),
        )
    )
    spatial = tuple(di * (ki - 1) + 1 + draw(st.integers(0, 6)) for ki, di in zip(k, d))
    return (
        rank,
        k,
        s,
        d,
        padding,
        (draw(st.integers(1, 3)), *spatial, draw(st.integers(1, 4))),
        draw(st.integers(1, 4)),
    )


@given(conv_cases(), st.integers(0, 999))
def test_conv_matches_torch(case, seed):
    rank, k, s, d, padding, shape, filters = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    layer = ln.Conv(filters, k, strides=s, padding=padding, dilation_rate=d, seed=seed, **F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    grads = layer.backward_params(dy)

    xt = to_torch_layout(x)
    w = layer.params["kernel"]
    wt = torch.tensor(
        np.ascontiguousarray(w.transpose(rank + 1, rank, *range(rank))), requires_grad=True
    )
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    conv = F.conv1d if rank == 1 else F.conv2d
    pads = explicit_pads(padding, shape[1:-1], k, s, d)
    yt = conv(torch_pad(xt, pads), wt, bt, stride=s, dilation=d)
    np.testing.assert_allclose(y, from_torch_layout(yt), **TOL)
    yt.backward(to_torch_layout(dy).detach())
    np.testing.assert_allclose(dx, from_torch_layout(xt.grad), **TOL)
    np.testing.assert_allclose(
        grads["kernel"], wt.grad.numpy().transpose(*range(2, rank + 2), 1, 0), **TOL
    )
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


@st.composite
def pool_cases(draw):
    rank = draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    # torch pools take symmetric padding of at most half the window
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    spatial = tuple(ki + draw(st.integers(0, 6)) for ki in k)
    return rank, k, s, p, (draw(st.integers(1, 3)), *spatial, draw(st.integers(1, 3)))


@given(pool_cases(), st.booleans(), st.integers(0, 999))
def test_pooling_matches_torch(case, use_max, seed):
    rank, k, s, p, shape = case
    rng = np.random.default_rng(seed)
    x = rng.permutation(np.arange(np.prod(shape)) * 0.1).reshape(shape)  # distinct: no ties
    cls = ln.MaxPool if use_max else ln.AvgPool
    layer = cls(k, strides=s, padding=p, **F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    xt = to_torch_layout(x)
    if use_max:
        fn = F.max_pool1d if rank == 1 else F.max_pool2d
        yt = fn(xt, k, stride=s, padding=p)
    else:
        fn = F.avg_pool1d if rank == 1 else F.avg_pool2d
        yt = fn(xt, k, stride=s, padding=p, count_include_pad=False)
    np.testing.assert_allclose(y, from_torch_layout(yt), **TOL)
    yt.backward(to_torch_layout(dy).detach())
    np.testing.assert_allclose(dx, from_torch_layout(xt.grad), **TOL)


@pytest.mark.parametrize("padding", ["same", ((1, 2), (0, 1))])
def test_maxpool_asymmetric_padding_matches_torch(padding, rng):
    x = rng.permutation(np.arange(2 * 7 * 6 * 3) * 0.1).reshape(2, 7, 6, 3)
    layer = ln.MaxPool((3, 2), strides=(2, 2), padding=padding, **F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    pads = explicit_pads(padding, (7, 6), (3, 2), (2, 2), (1, 1))
    xt = to_torch_layout(x)
    yt = F.max_pool2d(torch_pad(xt, pads, -np.inf), (3, 2), stride=(2, 2))
    np.testing.assert_allclose(y, from_torch_layout(yt), **TOL)
    yt.backward(to_torch_layout(dy).detach())
    np.testing.assert_allclose(layer.backward_input(dy), from_torch_layout(xt.grad), **TOL)


def test_relu_matches_torch(rng):
    x = rng.standard_normal((4, 5, 3))
    layer = ln.ReLU(**F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.relu(xt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(layer.backward_input(dy), xt.grad.numpy(), **TOL)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 7)])
def test_dense_matches_torch(shape, rng):
    x = rng.standard_normal(shape)
    layer = ln.Dense(4, seed=0, **F64)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(layer.params["kernel"].T.copy(), requires_grad=True)
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    yt = F.linear(xt, wt, bt)
    yt.backward(torch.tensor(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(layer.backward_input(dy), xt.grad.numpy(), **TOL)
    grads = layer.backward_params(dy)
    np.testing.assert_allclose(grads["kernel"], wt.grad.numpy().T, **TOL)
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


def test_mse_matches_torch(rng):
    x, t = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    loss = ln.MSELoss(**F64)
    z = loss.forward(x, t)
    xt = torch.tensor(x, requires_grad=True)
    zt = 0.5 * F.mse_loss(xt, torch.tensor(t), reduction="sum") / x.shape[0]
    zt.backward()
    assert z == pytest.approx(zt.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward_input(), xt.grad.numpy(), **TOL)


@pytest.mark.parametrize("target_kind", ["labels", "onehot", "soft"])
def test_cross_entropy_matches_torch(target_kind, rng):
    x = rng.standard_normal((8, 5)) * 10  # large logits: stability matters
    labels = rng.integers(0, 5, 8)
    if target_kind == "labels":
        t, tt = labels, torch.tensor(labels)
    elif target_kind == "onehot":
        t = np.eye(5)[labels]
        tt = torch.tensor(t)
    else:
        t = rng.dirichlet(np.ones(5), 8)
        tt = torch.tensor(t)
    loss = ln.SoftmaxCrossEntropy(**F64)
    z = loss.forward(x, t)
    xt = torch.tensor(x, requires_grad=True)
    zt = F.cross_entropy(xt, tt)
    zt.backward()
    assert z == pytest.approx(zt.item(), rel=1e-12)
    np.testing.assert_allclose(loss.backward_input(), xt.grad.numpy(), **TOL)
