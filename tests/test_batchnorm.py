"""BatchNorm: training-mode gradients (finite differences, PyTorch), running statistics, files."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients, front_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _ops

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


# ------------------------------------------------------- blocked, tiled passes
# Above ``PLAIN_MAX_ENTRIES`` entries BatchNorm's passes run over row blocks with
# per-channel vectors tiled along rows (``normalization._Blocks``), the blocks split
# between threads. With that threshold at 0 and small tile and block sizes, small shapes
# take every kind of block: tiled ones, several of them, and a last plain one of fewer
# rows than a tiled line.


def reference(x, gamma, beta, eps, dy):
    """Training-mode output and gradients by the textbook formulas, in float64."""
    c = x.shape[-1]
    x2, g2 = x.reshape(-1, c), dy.reshape(-1, c)
    m = x2.shape[0]
    mean = x2.mean(axis=0)
    var = ((x2 - mean) ** 2).mean(axis=0)
    xhat = (x2 - mean) / np.sqrt(var + eps)
    y = gamma * xhat + beta
    g = g2 * gamma
    dx = (m * g - g.sum(axis=0) - xhat * (g * xhat).sum(axis=0)) / (m * np.sqrt(var + eps))
    grads = {"gamma": (g2 * xhat).sum(axis=0), "beta": g2.sum(axis=0)}
    return y.reshape(x.shape), dx.reshape(x.shape), grads, mean, var


def bn_pass(x, dy, seed, training=True, together=False):
    bn = randomised(ln.BatchNorm(momentum=0.5, **F64), x.shape, seed)
    y = bn.forward(x, training=training)
    if together:  # the graph's entry point: both gradients from one call
        dx, grads = bn.call_backward(dy, bn.saved)
    else:
        grads = bn.backward_params(dy)
        dx = bn.backward_input(dy)
    return bn, y, dx, grads


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(1, 9),
    spatial=st.sampled_from([(), (3,), (2, 5), (4, 3)]),
    c=st.integers(1, 5),
    tile=st.sampled_from([2, 4, 8, 12]),
    block=st.sampled_from([4, 16, 40]),
    parts=st.sampled_from([1, 2, 3]),
    together=st.booleans(),
    seed=st.integers(0, 999),
)
def test_blocked_passes_match_the_formulas(
    monkeypatch, n, spatial, c, tile, block, parts, together, seed
):
    from layernet import threads
    from layernet.layers import normalization

    shape = (n, *spatial, c)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2 + 1
    dy = rng.standard_normal(shape)
    monkeypatch.setattr(normalization, "TILE_ENTRIES", tile)
    monkeypatch.setattr(normalization, "BLOCK_ENTRIES", block)
    monkeypatch.setattr(normalization, "PLAIN_MAX_ENTRIES", 0)
    monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", 0 if parts > 1 else 10**15)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    m = x.size // c
    blocks = normalization._Blocks(m, c)
    assert not blocks.plain
    spans = blocks.spans
    assert [s[0] for s in spans] == sorted({0, *(s[0] for s in spans)})  # consecutive
    assert sum(stop - start for start, stop, _ in spans) == m
    assert all((stop - start) % r == 0 for start, stop, r in spans)
    if m >= blocks.r > 1:
        assert spans[0][2] == blocks.r  # a tiled block is taken
    before = ln.get_num_threads()
    ln.set_num_threads(parts)
    try:
        if parts > 1 and len(spans) > 1:
            assert threads.split_count(len(spans), 4 * x.size) == min(parts, len(spans))
        bn, y, dx, grads = bn_pass(x, dy, seed, together=together)
        train_stats = {k: v.copy() for k, v in bn.state.items()}
        _, y_inf, dx_inf, grads_inf = bn_pass(x, dy, seed, training=False, together=together)
    finally:
        ln.set_num_threads(before)
    fresh = randomised(ln.BatchNorm(**F64), shape, seed)
    gamma, beta = fresh.params["gamma"], fresh.params["beta"]
    y_ref, dx_ref, g_ref, mean, var = reference(x, gamma, beta, fresh.epsilon, dy)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-9, atol=1e-11)
    for k in g_ref:
        np.testing.assert_allclose(grads[k], g_ref[k], rtol=1e-10, atol=1e-11)
    run_mean, run_var = fresh.state["moving_mean"], fresh.state["moving_variance"]
    np.testing.assert_allclose(train_stats["moving_mean"], 0.5 * run_mean + 0.5 * mean)
    np.testing.assert_allclose(train_stats["moving_variance"], 0.5 * run_var + 0.5 * var)
    # inference: y = γ (x - μ_run) / σ_run + β, a diagonal Jacobian
    inv = 1 / np.sqrt(run_var + fresh.epsilon)
    xhat = (x - run_mean) * inv
    np.testing.assert_allclose(y_inf, gamma * xhat + beta, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx_inf, dy * gamma * inv, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        grads_inf["gamma"], (dy * xhat).reshape(-1, c).sum(axis=0), rtol=1e-10, atol=1e-11
    )
    # the same numbers with the fast paths off (one plain block, no threads)
    with _ops.fast_paths(False):
        assert normalization._Blocks(m, c).plain
        _, y_off, dx_off, grads_off = bn_pass(x, dy, seed, together=together)
    np.testing.assert_allclose(y, y_off, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, dx_off, rtol=1e-10, atol=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_off[k], rtol=1e-11, atol=1e-12)


def same_with_any_thread_count(monkeypatch, x, dy, seed, configs):
    """A training forward and ``call_backward`` for each ``(threads, MIN_SPLIT_SIZE)``:
    bit-identical outputs, gradients and running variance; the runs' results."""
    from layernet import threads

    results = []
    before = ln.get_num_threads()
    try:
        for parts, min_split in configs:
            monkeypatch.setattr(threads, "MIN_SPLIT_SIZE", min_split)
            ln.set_num_threads(parts)
            bn = randomised(ln.BatchNorm(), x.shape, seed)
            y = bn.forward(x, training=True)
            dx, grads = bn.call_backward(dy, bn.saved)
            results.append((y, dx, grads["gamma"], grads["beta"], bn.state["moving_variance"]))
    finally:
        ln.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    return results


def test_blocked_results_do_not_depend_on_the_thread_split(monkeypatch):
    """Each block's sums are kept apart and added in block order: bit-identical."""
    from layernet import threads
    from layernet.layers import normalization

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 6, 6, 8)) * 3 + 2).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    monkeypatch.setattr(normalization, "TILE_ENTRIES", 32)
    monkeypatch.setattr(normalization, "BLOCK_ENTRIES", 128)
    monkeypatch.setattr(normalization, "PLAIN_MAX_ENTRIES", 0)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    assert len(normalization._Blocks(16 * 36, 8).spans) == 36
    same_with_any_thread_count(monkeypatch, x, dy, 1, ((1, 10**15), (2, 0), (3, 0)))


def test_float32_offset_data_stays_accurate():
    """x = 1000 + noise in float32: y as x a + b loses about eps32 * 1000 at most."""
    rng = np.random.default_rng(0)
    x = 1000 + rng.standard_normal((64, 10, 10, 4))
    dy = rng.standard_normal(x.shape)
    results = []
    for dtype in ("float64", "float32"):
        bn = randomised(ln.BatchNorm(dtype=dtype), x.shape, 2)
        y = bn.forward(x.astype(dtype), training=True)
        dx, grads = bn.call_backward(dy.astype(dtype), bn.saved)
        results.append((y, dx, grads["gamma"]))
    (y64, dx64, g64), (y32, dx32, g32) = results
    np.testing.assert_allclose(y32, y64, atol=2e-3)
    np.testing.assert_allclose(dx32, dx64, atol=2e-3 * np.abs(dx64).max())
    np.testing.assert_allclose(g32, g64, rtol=1e-3)


def test_default_thresholds_plain_small_blocked_large(monkeypatch):
    """The real thresholds: a (32, 64) batch runs plain, (64, 16, 16, 16) blocked; the
    blocked result equals the plain one to rounding and does not change with the number
    of threads (no BLAS in the sums)."""
    from layernet import threads
    from layernet.layers import normalization

    assert normalization._Blocks(32, 64).plain
    assert not normalization._Blocks(64 * 16 * 16, 16).plain
    with _ops.fast_paths(False):
        assert normalization._Blocks(64 * 16 * 16, 16).plain
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((64, 16, 16, 16)) * 2 + 3).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    monkeypatch.setattr(threads, "ADAPT_TO_LOAD", False)
    configs = ((1, 10**15), (2, 0), (2, 10**15))
    results = same_with_any_thread_count(monkeypatch, x, dy, 4, configs)
    with _ops.fast_paths(False):
        bn = randomised(ln.BatchNorm(), x.shape, 4)
        y = bn.forward(x, training=True)
        dx, grads = bn.call_backward(dy, bn.saved)
    for a, b in zip(results[0], (y, dx, grads["gamma"], grads["beta"]), strict=False):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5 * np.abs(b).max())


@pytest.mark.parametrize("plain_max", [0, 1 << 16])
def test_any_memory_layout_of_input_and_gradient(monkeypatch, plain_max):
    """Fortran-ordered, transposed and strided inputs and gradients give the same results
    as C-ordered ones (the passes view rows of C arrays)."""
    from layernet.layers import normalization

    monkeypatch.setattr(normalization, "PLAIN_MAX_ENTRIES", plain_max)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4096, 8)) * 2 + 1
    dy = np.cos(x)
    layouts = [
        lambda a: a,
        np.asfortranarray,
        lambda a: np.ascontiguousarray(a.T).T,
        lambda a: np.repeat(a, 2, axis=1)[:, ::2],
    ]
    reference = None
    for layout in layouts:
        bn = randomised(ln.BatchNorm(**F64), x.shape, 7)
        y = bn.forward(layout(x), training=True)
        dx = bn.backward_input(layout(dy))
        grads = bn.backward_params(layout(dy))
        y_inf = bn.forward(layout(x))
        dx_inf = bn.backward_input(layout(dy))
        got = (y, dx, grads["gamma"], grads["beta"], y_inf, dx_inf)
        assert all(np.isfinite(a).all() for a in got)
        if reference is None:
            reference = got
        for a, b in zip(got, reference, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_shared_layer_called_in_both_modes_keeps_each_calls_statistics():
    """One BatchNorm called with training=False and then in training mode: the first
    call's backward uses the running mean it normalised with, not the updated one."""
    rng = np.random.default_rng(8)
    x1, x2 = rng.standard_normal((6, 4)) + 2, rng.standard_normal((6, 4)) - 1
    bn = randomised(ln.BatchNorm(momentum=0.5, **F64), (6, 4), 9)
    mean0 = bn.state["moving_mean"].copy()
    var0 = bn.state["moving_variance"].copy()
    _, saved_inf = bn.call_forward(x1, training=False)
    bn.call_forward(x2, training=True)  # moves the running statistics
    assert not np.allclose(bn.state["moving_mean"], mean0)
    dy = rng.standard_normal(x1.shape)
    dx, grads = bn.call_backward(dy, saved_inf)
    xhat = (x1 - mean0) / np.sqrt(var0 + bn.epsilon)
    np.testing.assert_allclose(grads["gamma"], (dy * xhat).sum(axis=0), rtol=1e-12)
    gamma = bn.params["gamma"]
    np.testing.assert_allclose(dx, dy * gamma / np.sqrt(var0 + bn.epsilon), rtol=1e-12)
