"""BatchNorm: training-mode gradients (finite differences, PyTorch), running statistics, files."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, front_layer
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

F64 = {"dtype": "float64"}


def randomised(layer: ln.BatchNorm, x_shape, seed: int = 0) -> ln.BatchNorm:
    """Build with non-trivial gamma, beta and running statistics."""
    layer.build(x_shape)
    rng = np.random.default_rng(seed)
    c = x_shape[-1]
    for k in layer.params:
        layer.params[k][...] = rng.uniform(0.5, 1.5, c) * rng.choice([-1, 1], c)
    layer.state["moving_mean"][...] = rng.standard_normal(c)
    layer.state["moving_variance"][...] = rng.uniform(0.5, 2.0, c)
    return layer


@given(
    shape=st.sampled_from([(4, 3), (2, 5, 3), (3, 4, 4, 2), (1, 6, 2)]),
    center=st.booleans(),
    scale=st.booleans(),
    seed=st.integers(0, 999),
)
def test_training_mode_gradients(shape, center, scale, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * 2 + 1
    bn = randomised(ln.BatchNorm(center=center, scale=scale, **F64), shape, seed)
    result = ln.gradcheck(bn, x, training=True)
    assert result.passed, str(result)
    chain = [front_layer(shape), randomised(ln.BatchNorm(**F64), shape, seed)]
    result = ln.gradcheck(chain, x, training=True, jacobians=False)
    assert result.passed, str(result)


def test_inference_mode_goes_through_the_harness(rng):
    x = rng.standard_normal((3, 5, 2))
    assert_layer_gradients(lambda: randomised(ln.BatchNorm(**F64), x.shape), x)


def test_gradcheck_leaves_running_statistics_alone(rng):
    x = rng.standard_normal((6, 3))
    bn = randomised(ln.BatchNorm(**F64), x.shape)
    before = {k: v.copy() for k, v in bn.state.items()}
    ln.gradcheck(bn, x, training=True)
    for k, v in bn.state.items():
        np.testing.assert_array_equal(v, before[k])


def test_matches_torch_in_training_mode(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle ('oracle' extra)")
    x = rng.standard_normal((4, 5, 6, 3)) * 3 + 2
    bn = randomised(ln.BatchNorm(momentum=0.9, epsilon=1e-5, **F64), x.shape)
    mean0 = bn.state["moving_mean"].copy()
    y = bn.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = bn.backward_input(dy)
    grads = bn.backward_params(dy)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    w = torch.tensor(bn.params["gamma"], requires_grad=True)
    b = torch.tensor(bn.params["beta"], requires_grad=True)
    run_mean = torch.tensor(mean0)
    run_var = torch.ones(3, dtype=torch.float64)
    yt = torch.nn.functional.batch_norm(
        xt, run_mean, run_var, w, b, training=True, momentum=0.1, eps=1e-5
    )
    yt.backward(torch.tensor(dy.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), atol=1e-10)
    np.testing.assert_allclose(grads["gamma"], w.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(grads["beta"], b.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(bn.state["moving_mean"], run_mean.numpy(), atol=1e-12)


def test_running_statistics_converge_and_drive_inference(rng):
    x = rng.standard_normal((500, 2)) * np.array([3.0, 0.5]) + np.array([4.0, -1.0])
    bn = ln.BatchNorm(momentum=0.9, epsilon=0.0, **F64)
    for _ in range(200):
        bn.forward(x, training=True)
    np.testing.assert_allclose(bn.state["moving_mean"], x.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(bn.state["moving_variance"], x.var(axis=0), rtol=1e-6)
    y = bn.forward(x)  # inference: the same normalisation, from the running statistics
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(y.std(axis=0), 1, rtol=1e-6)


def test_in_a_model_trains_saves_state_and_counts_it(tmp_path):
    (x, y), (xt, yt) = ln.datasets.load_digits() if _has_sklearn() else _fake_digits()
    model = ln.Sequential(
        [
            ln.Conv2D(8, 3, padding="same"),
            ln.BatchNorm(),
            ln.ReLU(),
            ln.MaxPool(2),
            ln.Flatten(),
            ln.Dense(10),
        ]
    )
    model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=0)
    assert model.evaluate(xt, yt, return_dict=True)["accuracy"] > 0.8
    bn = model.layers[1]
    assert not np.array_equal(bn.state["moving_mean"], np.zeros(8, np.float32))
    lines = []
    model.summary(print_fn=lines.append)
    assert "Non-trainable params: 16" in lines[0]
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(
        loaded.layers[1].state["moving_variance"], bn.state["moving_variance"]
    )
    np.testing.assert_array_equal(loaded.predict(xt), model.predict(xt))


def _has_sklearn() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _fake_digits():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 400)
    x = rng.standard_normal((400, 8, 8, 1)).astype(np.float32) * 0.1
    x[np.arange(400), y % 8, y // 8 + 1, 0] += 3
    return (x[:300], y[:300]), (x[300:], y[300:])


def test_errors():
    with pytest.raises(
        ValueError,
        match=r"BatchNorm '.*': invalid value for `momentum`: expected "
        r"a number in \[0, 1\], received 1.5",
    ):
        ln.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"`epsilon`: expected a finite number >= 0"):
        ln.BatchNorm(epsilon=-1)
    with pytest.raises(ValueError, match=r"invalid value for `center`: expected a bool"):
        ln.BatchNorm(center=1)
    bn = ln.BatchNorm(name="bn")
    bn.forward(np.zeros((2, 3)))
    with pytest.raises(
        ValueError,
        match=r"BatchNorm 'bn': expected input with 3 channels \(last "
        r"axis, as built\), got shape \(2, 4\)",
    ):
        bn.forward(np.zeros((2, 4)))
