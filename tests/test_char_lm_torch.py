"""benchmarks/char_lm_torch.py is the twin of examples/char_lstm.py: same data, same model."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import char_lm_torch

torch = pytest.importorskip("torch", reason="PyTorch is the benchmark's twin ('oracle' extra)")


def test_same_windows_as_the_example():
    example = char_lm_torch.char_lstm_example()
    (x, y), (x_val, y_val), vocabulary = char_lm_torch.data(example)
    assert x.shape[1] == x_val.shape[1] == example.WINDOW and len(x) == len(y) > 1000
    assert 0 <= y.min() and y.max() < vocabulary and x_val.max() < vocabulary
    assert len(x_val) == len(y_val) > 100


def test_twin_computes_the_examples_model():
    """The PyTorch model, its weights copied into the example's layernet model (gates in
    the same order i, f, c, o; PyTorch's two LSTM biases summed), gives the same logits."""
    example = char_lm_torch.char_lstm_example()
    torch.manual_seed(0)
    twin = char_lm_torch.torch_model(torch, 20, units=8)
    ours = example.build_model(20, units=8)
    n_twin = sum(p.numel() for p in twin.parameters()) - 4 * 8  # one LSTM bias in layernet
    assert ours.count_params() == n_twin
    t = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
    ours.set_weights(
        [
            t["embedding.weight"],
            t["lstm.weight_ih_l0"].T,
            t["lstm.weight_hh_l0"].T,
            t["lstm.bias_ih_l0"] + t["lstm.bias_hh_l0"],
            t["dense.weight"].T,
            t["dense.bias"],
        ]
    )
    x = np.random.default_rng(0).integers(0, 20, (5, example.WINDOW))
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)


def test_twin_initialises_as_keras_does():
    torch.manual_seed(0)
    twin = char_lm_torch.torch_model(torch, 50)
    units = 128
    recurrent = twin.lstm.weight_hh_l0.detach().numpy().T  # Keras's (units, 4 units)
    np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(units), atol=1e-5)  # orthogonal
    bias = (twin.lstm.bias_ih_l0 + twin.lstm.bias_hh_l0).detach().numpy()
    np.testing.assert_array_equal(bias, np.r_[np.zeros(units), np.ones(units), np.zeros(2 * units)])
    emb = twin.embedding.weight.detach().numpy()
    assert np.abs(emb).max() <= 0.05
    layer = ln.LSTM(units)
    layer.build((None, 40, 32))
    bound = np.sqrt(6 / (32 + 4 * units))  # Glorot uniform, as layernet's (Keras's) kernel
    assert np.abs(layer.params["kernel"]).max() <= bound
    assert np.abs(twin.lstm.weight_ih_l0.detach().numpy()).max() <= bound


def test_cpu_name_names_the_cores():
    assert "cores" in char_lm_torch.cpu_name()
