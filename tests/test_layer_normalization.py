"""LayerNormalization: gradients over axes and options, errors, weights, and torch's LayerNorm."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}


@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    data=st.data(),
    center=st.booleans(),
    scale=st.booleans(),
    rms=st.booleans(),
)
def test_gradients_over_axes_and_options(shape, data, center, scale, rms):
    shape = (2, *shape)
    ndim = len(shape)
    axes = data.draw(st.lists(st.integers(1, ndim - 1), min_size=1, max_size=ndim - 1, unique=True))
    axes = [a - ndim if data.draw(st.booleans()) else a for a in axes]
    if int(np.prod([shape[a] for a in axes])) < 2:
        shape = (*shape[:-1], 3)  # one entry normalises to 0: every derivative is 0
        axes = [-1]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))

    def make():
        return ln.LayerNormalization(
            axis=axes if len(axes) > 1 else axes[0], center=center, scale=scale,
            rms_scaling=rms, gamma_initializer="he_uniform", beta_initializer="he_uniform",
            epsilon=1e-3, seed=0, **F64,
        )  # fmt: skip

    assert_layer_gradients(make, rng.standard_normal(shape), front=data.draw(st.booleans()))


def test_weights_follow_keras(rng):
    norm = ln.LayerNormalization(axis=[-1, 1], **F64)
    norm.build((None, 3, 2, 4))
    assert norm.axis == [-1, 1]
    assert list(norm.params) == ["gamma", "beta"]
    assert [w.shape for w in norm.get_weights()] == [(3, 4), (3, 4)]
    assert list(ln.LayerNormalization(center=False).get_config())[:3] == [
        "axis",
        "epsilon",
        "center",
    ]
    rms = ln.LayerNormalization(rms_scaling=True, scale=False)
    rms.build((None, 5))
    assert list(rms.params) == ["gamma"]
    with pytest.raises(ValueError, match=r"expected 2 arrays \(gamma, beta\)"):
        norm.set_weights([np.ones((3, 4))])
    with pytest.raises(ValueError, match=r"\('gamma'\) should have shape \(3, 4\), received shape"):
        norm.set_weights([np.ones(3), np.ones(3)])


def test_each_sample_is_normalised_over_its_axes(rng):
    x = rng.standard_normal((4, 3, 5)) * 3 + 2
    y = ln.LayerNormalization(axis=(1, 2), epsilon=0.0, **F64).forward(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "shape", "match"),
    [
        ({"axis": 0}, (2, 3), r"`axis` 0: axis 0 is the batch axis"),
        ({"axis": 3}, (2, 3), r"`axis` 3 is out of range for input of shape \(2, 3\)"),
        ({"axis": "x"}, None, r"invalid value for `axis`"),
        ({"epsilon": -1.0}, None, r"invalid value for `epsilon`"),
        ({"rms_scaling": 1}, None, r"invalid value for `rms_scaling`"),
    ],
)
def test_errors_name_the_layer(kwargs, shape, match):
    if shape is None:
        with pytest.raises(ValueError, match=match):
            ln.LayerNormalization(**kwargs)
        return
    with pytest.raises(ValueError, match="LayerNormalization 'ln': " + match):
        ln.LayerNormalization(name="ln", **kwargs).forward(np.zeros(shape))


def test_matches_torch_layer_norm(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    x = rng.standard_normal((3, 2, 4, 5))
    norm = ln.LayerNormalization(axis=[-2, -1], epsilon=1e-5, **F64)
    norm.build(x.shape)
    norm.set_weights([rng.standard_normal((4, 5)), rng.standard_normal((4, 5))])
    tn = torch.nn.LayerNorm((4, 5), eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        tn.weight.copy_(torch.tensor(norm.params["gamma"]))
        tn.bias.copy_(torch.tensor(norm.params["beta"]))
    xt = torch.tensor(x, requires_grad=True)
    yt = tn(xt)
    y = norm.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(norm.backward_input(g), xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = norm.backward_params(g)
    np.testing.assert_allclose(grads["gamma"], tn.weight.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["beta"], tn.bias.grad.numpy(), rtol=1e-9, atol=1e-11)
