"""LSTM, SimpleRNN and the GRU cell against PyTorch autograd, in float64.

Keras's gate order is LSTM (i, f, c, o) = PyTorch's (i, f, g, o), so the LSTM
kernels map by a transpose; Keras's GRU orders its gates (z, r, h) where PyTorch
has (r, z, n). The forward outputs and every gradient (input, initial states,
kernel, recurrent kernel, bias) are compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln

torch = pytest.importorskip("torch")

RTOL = 1e-10
ATOL = 1e-12


def _t(a):
    return torch.tensor(np.array(a, order="C"), dtype=torch.float64, requires_grad=True)


def _gru_order(a, units):
    """Keras's (z, r, h) blocks of the last axis in PyTorch's (r, z, n) order."""
    z, r, h = a[..., :units], a[..., units : 2 * units], a[..., 2 * units :]
    return np.concatenate([r, z, h], axis=-1)


def _from_gru_order(a, units):
    r, z, h = a[..., :units], a[..., units : 2 * units], a[..., 2 * units :]
    return np.concatenate([z, r, h], axis=-1)


def _torch_module(kind, features, units, params):
    """A PyTorch module with the layer's weights (Keras layout mapped to PyTorch's)."""
    k, rk, b = params["kernel"], params["recurrent_kernel"], params["bias"]
    if kind == "lstm":
        mod = torch.nn.LSTM(features, units, batch_first=True)
        w_ih, w_hh, b_ih, b_hh = k.T, rk.T, b, np.zeros_like(b)
    elif kind == "simple":
        mod = torch.nn.RNN(features, units, batch_first=True, nonlinearity="tanh")
        w_ih, w_hh, b_ih, b_hh = k.T, rk.T, b, np.zeros_like(b)
    else:  # a GRU with reset_after=True: biases (input, recurrent)
        mod = torch.nn.GRU(features, units, batch_first=True)
        w_ih, w_hh = _gru_order(k, units).T, _gru_order(rk, units).T
        b_ih, b_hh = _gru_order(b[0], units), _gru_order(b[1], units)
    mod = mod.double()
    with torch.no_grad():
        for name, value in zip(
            ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"),
            (w_ih, w_hh, b_ih, b_hh),
            strict=True,
        ):
            getattr(mod, name).copy_(torch.tensor(np.ascontiguousarray(value)))
    return mod


def _torch_param_grads(kind, mod, units):
    g = {n: p.grad.numpy() for n, p in mod.named_parameters()}
    if kind == "gru":
        return {
            "kernel": _from_gru_order(g["weight_ih_l0"].T, units),
            "recurrent_kernel": _from_gru_order(g["weight_hh_l0"].T, units),
            "bias": np.stack(
                [_from_gru_order(g["bias_ih_l0"], units), _from_gru_order(g["bias_hh_l0"], units)]
            ),
        }
    return {
        "kernel": g["weight_ih_l0"].T,
        "recurrent_kernel": g["weight_hh_l0"].T,
        # Keras has one bias: both PyTorch biases receive its gradient.
        "bias": g["bias_ih_l0"],
    }


def _layer(kind, units, **kw):
    if kind == "lstm":
        return ln.LSTM(units, dtype="float64", seed=0, **kw)
    if kind == "simple":
        return ln.SimpleRNN(units, dtype="float64", seed=0, **kw)
    return ln.RNN(ln.GRUCell(units, dtype="float64", seed=0), dtype="float64", **kw)


@pytest.mark.parametrize("kind", ["lstm", "simple", "gru"])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_recurrent_layer_matches_torch(kind, return_sequences, go_backwards, with_initial_state):
    _check_against_torch(kind, return_sequences, go_backwards, with_initial_state, 3, 5, 4, 6, 1)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["lstm", "simple", "gru"]),
    return_sequences=st.booleans(),
    go_backwards=st.booleans(),
    with_initial_state=st.booleans(),
    n=st.integers(1, 4),
    t=st.integers(1, 6),
    f=st.integers(1, 4),
    u=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_recurrent_layer_matches_torch_over_shapes(
    kind, return_sequences, go_backwards, with_initial_state, n, t, f, u, seed
):
    _check_against_torch(kind, return_sequences, go_backwards, with_initial_state, n, t, f, u, seed)


def _check_against_torch(
    kind, return_sequences, go_backwards, with_initial_state, n, t, f, u, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, f))
    n_states = 2 if kind == "lstm" else 1
    initial = [0.5 * rng.standard_normal((n, u)) for _ in range(n_states)]
    layer = _layer(kind, u, return_sequences=return_sequences, go_backwards=go_backwards)
    inputs = [x, *initial] if with_initial_state else x
    layer.build(x.shape)
    # Nonzero biases, so that every bias term shows in the outputs.
    layer.params["bias"][...] = 0.3 * rng.standard_normal(layer.params["bias"].shape)
    y = layer.forward(inputs)
    params = {k: v.copy() for k, v in layer.params.items()}
    mod = _torch_module(kind, f, u, params)

    xt = _t(x[:, ::-1] if go_backwards else x)
    ht = [_t(s[None]) for s in initial]
    if with_initial_state:
        hx = (ht[0], ht[1]) if kind == "lstm" else ht[0]
        seq, _ = mod(xt, hx)
    else:
        seq, _ = mod(xt)
    yt = seq if return_sequences else seq[:, -1]
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL)

    g = rng.standard_normal(y.shape)
    (yt * torch.tensor(g)).sum().backward()
    dx = layer.backward_input(g)
    grads = layer.backward_params(g)
    if with_initial_state:
        dx, *dstates = dx
        for d, h in zip(dstates, ht, strict=True):
            np.testing.assert_allclose(d, h.grad.numpy()[0], rtol=1e-8, atol=1e-10)
    dxt = xt.grad.numpy()
    np.testing.assert_allclose(dx, dxt[:, ::-1] if go_backwards else dxt, rtol=1e-8, atol=1e-10)
    expected = _torch_param_grads(kind, mod, u)
    for name, value in expected.items():
        np.testing.assert_allclose(grads[name], value, rtol=1e-8, atol=1e-10, err_msg=name)


def test_gru_cell_one_step_matches_torch_gru_cell():
    n, f, u = 4, 3, 5
    rng = np.random.default_rng(2)
    x, h = rng.standard_normal((n, f)), rng.standard_normal((n, u))
    cell = ln.GRUCell(u, dtype="float64", seed=3)
    out, new_h = cell.forward([x, h])
    np.testing.assert_array_equal(out, new_h)
    p = cell.params
    p["bias"][...] = rng.standard_normal(p["bias"].shape)  # nonzero biases
    out, new_h = cell.forward([x, h])
    mod = torch.nn.GRUCell(f, u).double()
    with torch.no_grad():
        mod.weight_ih.copy_(torch.tensor(_gru_order(p["kernel"], u).T.copy()))
        mod.weight_hh.copy_(torch.tensor(_gru_order(p["recurrent_kernel"], u).T.copy()))
        mod.bias_ih.copy_(torch.tensor(_gru_order(p["bias"][0], u)))
        mod.bias_hh.copy_(torch.tensor(_gru_order(p["bias"][1], u)))
    xt, ht = _t(x), _t(h)
    yt = mod(xt, ht)
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g_out, g_state = rng.standard_normal((n, u)), rng.standard_normal((n, u))
    # The cell's output and its new state are the same tensor: their gradients add.
    (yt * torch.tensor(g_out + g_state)).sum().backward()
    dx, dh = cell.backward_input([g_out, g_state])
    grads = cell.backward_params([g_out, g_state])
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dh, ht.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        grads["kernel"], _from_gru_order(mod.weight_ih.grad.numpy().T, u), rtol=1e-8
    )
    np.testing.assert_allclose(
        grads["recurrent_kernel"], _from_gru_order(mod.weight_hh.grad.numpy().T, u), rtol=1e-8
    )
    np.testing.assert_allclose(
        grads["bias"],
        np.stack(
            [
                _from_gru_order(mod.bias_ih.grad.numpy(), u),
                _from_gru_order(mod.bias_hh.grad.numpy(), u),
            ]
        ),
        rtol=1e-8,
    )
