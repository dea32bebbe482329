"""torch.nn.GRU (and bidirectional=True) as the oracle for GRU and Bidirectional, in float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the 'oracle' extra")
torch.set_num_threads(1)
TOL = {"rtol": 1e-10, "atol": 1e-10}


def torch_blocks(a: np.ndarray, u: int) -> np.ndarray:
    """Columns in Keras's gate order (z, r, h) -> PyTorch's (r, z, n), along the last axis."""
    return np.concatenate([a[..., u : 2 * u], a[..., :u], a[..., 2 * u :]], axis=-1)


def load_into(tg, gru: ln.GRU, suffix: str) -> None:
    u = gru.units
    with torch.no_grad():
        getattr(tg, f"weight_ih_l0{suffix}").copy_(
            torch.tensor(torch_blocks(gru.params["kernel"], u).T)
        )
        getattr(tg, f"weight_hh_l0{suffix}").copy_(
            torch.tensor(torch_blocks(gru.params["recurrent_kernel"], u).T)
        )
        b = torch_blocks(gru.params["bias"], u)
        getattr(tg, f"bias_ih_l0{suffix}").copy_(torch.tensor(b[0]))
        getattr(tg, f"bias_hh_l0{suffix}").copy_(torch.tensor(b[1]))


def torch_grads(tg, gru: ln.GRU, suffix: str) -> dict[str, np.ndarray]:
    """PyTorch's parameter gradients mapped back to layernet's layout."""
    u = gru.units

    def g(name):
        return getattr(tg, f"{name}_l0{suffix}").grad.numpy()

    back = lambda a: np.concatenate([a[..., u : 2 * u], a[..., :u], a[..., 2 * u :]], -1)  # noqa: E731
    return {
        "kernel": back(g("weight_ih").T),
        "recurrent_kernel": back(g("weight_hh").T),
        "bias": np.stack([back(g("bias_ih")), back(g("bias_hh"))]),
    }


@given(
    st.integers(1, 4),
    st.integers(1, 7),
    st.integers(1, 3),
    st.integers(1, 5),
    st.booleans(),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_gru_matches_torch(n, t, f, u, seq, backwards, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, f))
    gru = ln.GRU(
        u,
        return_sequences=seq,
        go_backwards=backwards,
        seed=seed,
        bias_initializer="glorot_uniform",
        dtype="float64",
    )
    y = gru(x)
    tg = torch.nn.GRU(f, u, batch_first=True, dtype=torch.float64)
    load_into(tg, gru, "")
    xt = torch.tensor(np.ascontiguousarray(x[:, ::-1] if backwards else x), requires_grad=True)
    out, hn = tg(xt)
    ref = out if seq else hn[0]
    np.testing.assert_allclose(y, ref.detach().numpy(), **TOL)
    g = rng.standard_normal(y.shape)
    ref.backward(torch.tensor(g))
    dx = xt.grad.numpy()
    np.testing.assert_allclose(gru.backward_input(g), dx[:, ::-1] if backwards else dx, **TOL)
    grads = gru.backward_params(g)
    for k, v in torch_grads(tg, gru, "").items():
        np.testing.assert_allclose(grads[k], v, **TOL)


@pytest.mark.parametrize("seq", [True, False])
@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave"])
def test_bidirectional_matches_torch(seq, mode, rng):
    n, t, f, u = 3, 6, 2, 4
    x = rng.standard_normal((n, t, f))
    bi = ln.Bidirectional(
        ln.GRU(u, return_sequences=seq, seed=5, bias_initializer="glorot_uniform", dtype="float64"),
        merge_mode=mode,
    )
    y = bi(x)
    tg = torch.nn.GRU(f, u, batch_first=True, bidirectional=True, dtype=torch.float64)
    load_into(tg, bi.forward_layer, "")
    load_into(tg, bi.backward_layer, "_reverse")
    xt = torch.tensor(x, requires_grad=True)
    out, hn = tg(xt)
    yf, yb = (out[..., :u], out[..., u:]) if seq else (hn[0], hn[1])
    ref = {
        "concat": lambda: torch.cat([yf, yb], -1),
        "sum": lambda: yf + yb,
        "ave": lambda: (yf + yb) / 2,
        "mul": lambda: yf * yb,
    }[mode]()
    np.testing.assert_allclose(y, ref.detach().numpy(), **TOL)
    g = rng.standard_normal(y.shape)
    ref.backward(torch.tensor(g))
    grads = bi.backward_params(g)
    np.testing.assert_allclose(bi.backward_input(g), xt.grad.numpy(), **TOL)
    for layer, suffix in ((bi.forward_layer, ""), (bi.backward_layer, "_reverse")):
        for k, v in torch_grads(tg, layer, suffix).items():
            np.testing.assert_allclose(grads[f"{layer.name}/{k}"], v, **TOL)


def test_residual_mlp_block_matches_torch(rng):
    """The MNIST-1D paper's residual layer, h + relu(h W + b)."""
    block = ln.Residual(
        [
            ln.Dense(5, seed=0, bias_initializer="he_uniform", dtype="float64"),
            ln.ReLU(dtype="float64"),
        ]
    )
    x = rng.standard_normal((4, 5))
    y = block(x)
    d = block.layers[0]
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(d.params["kernel"], requires_grad=True)
    b = torch.tensor(d.params["bias"], requires_grad=True)
    ref = xt + torch.relu(xt @ w + b)
    np.testing.assert_allclose(y, ref.detach().numpy(), **TOL)
    g = rng.standard_normal(y.shape)
    ref.backward(torch.tensor(g))
    np.testing.assert_allclose(block.backward_input(g), xt.grad.numpy(), **TOL)
    grads = block.backward_params(g)
    np.testing.assert_allclose(grads[f"{d.name}/kernel"], w.grad.numpy(), **TOL)
    np.testing.assert_allclose(grads[f"{d.name}/bias"], b.grad.numpy(), **TOL)


def test_paper_gru_model_trains_as_pytorch_does(rng):
    """Same start, same batches: Adam steps of the whole model agree with PyTorch's."""
    n, t, u = 20, 12, 3
    x = rng.standard_normal((n, t, 1))
    y = rng.integers(0, 4, n)
    f64 = {"bias_initializer": "he_uniform", "dtype": "float64"}
    model = ln.Sequential(
        [
            ln.Bidirectional(ln.GRU(u, return_sequences=True, **f64)),
            ln.Flatten(dtype="float64"),
            ln.Dense(4, **f64),
        ]
    )
    model.compile(ln.Adam(1e-2), "softmax_cross_entropy")
    model.build((None, t, 1), seed=0)
    bi, dense = model.layers[0], model.layers[2]
    tg = torch.nn.GRU(1, u, batch_first=True, bidirectional=True, dtype=torch.float64)
    load_into(tg, bi.forward_layer, "")
    load_into(tg, bi.backward_layer, "_reverse")
    lin = torch.nn.Linear(2 * u * t, 4, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(dense.params["kernel"].T))
        lin.bias.copy_(torch.tensor(dense.params["bias"]))
    opt = torch.optim.Adam([*tg.parameters(), *lin.parameters()], lr=1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for step in range(5):
        batch = slice(10 * (step % 2), 10 * (step % 2) + 10)
        loss, _ = model.train_step(x[batch], y[batch])
        out, _ = tg(xt[batch])
        ref = torch.nn.functional.cross_entropy(lin(out.reshape(10, -1)), yt[batch])
        opt.zero_grad()
        ref.backward()
        opt.step()
        assert abs(loss - ref.item()) < 1e-10
    np.testing.assert_allclose(dense.params["kernel"], lin.weight.detach().numpy().T, **TOL)
