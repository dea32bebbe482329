"""``Model.compute_loss``: the default, traced overrides (checked by finite differences), masks."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln
from layernet import ops
from layernet.layers.masking_utils import mask_to_sample_weight, masked_compute, masked_loss


class _Student(ln.Model):
    """Float64 model: a regularized Dense, an added loss in call(), and a teacher in the loss."""

    def __init__(self, coefficient: float):
        super().__init__(dtype="float64")
        self.hidden = ln.Dense(
            5,
            activation="tanh",
            dtype="float64",
            seed=0,
            kernel_regularizer=ln.regularizers.L2(0.1),
        )
        self.out = ln.Dense(3, dtype="float64", seed=1)
        self.teacher = ln.Sequential(
            [ln.Input((4,), dtype="float64"), ln.Dense(3, dtype="float64", seed=2)]
        )
        self.coefficient = coefficient

    def call(self, x):
        h = self.hidden(x)
        self.add_loss(0.05 * ops.sum(h * h))
        return self.out(h)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        soft = ln.losses.KLDivergence(dtype="float64")(
            ops.softmax(self.teacher(x, training=False) / 2.0, axis=1),
            ops.softmax(y_pred / 2.0, axis=1),
        )
        hard = ln.losses.MeanSquaredError(dtype="float64")(y, y_pred, sample_weight)
        return 0.4 * soft + 0.6 * hard + self.coefficient * ops.sum(self.losses)


@pytest.mark.parametrize("coefficient", [1.0, 0.7, 0.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_traced_compute_loss_gradient_matches_finite_differences(coefficient, weighted):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    y = rng.standard_normal((6, 3))
    sw = rng.uniform(0.5, 2.0, 6) if weighted else None
    model = _Student(coefficient)
    model.compile(optimizer="sgd")
    model.build((None, 4))
    z, _ = model._compute_gradients(x, y, sw)
    params = model._step_params()
    assert any("sequential" in k for k in params)  # the teacher, reached through the loss
    analytic = {k: g.copy() for k, (_, g) in params.items()}
    eps = 1e-6
    for key, (p, _) in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = model._compute_gradients(x, y, sw)[0]
            p[i] = old - eps
            down = model._compute_gradients(x, y, sw)[0]
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[key], numeric, rtol=1e-5, atol=1e-8, err_msg=key)
    assert np.isfinite(z)


def test_traced_loss_is_cached_per_signature_and_evaluate_uses_it():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 4))
    y = rng.standard_normal((10, 3))
    model = _Student(1.0)
    model.compile(optimizer=ln.SGD(0.01))
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    # batches of 4 and of 2, training and testing: one trace per (feature shapes, mode)
    assert len(model.__dict__["_loss_traces"]) == 1
    loss = model.evaluate(x, y, batch_size=5, verbose=0)
    assert len(model.__dict__["_loss_traces"]) == 2
    pred = model.predict(x, verbose=0)
    teacher = model.teacher.predict(x, verbose=0)

    def softmax(a):
        e = np.exp(a - a.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    t, s = softmax(teacher / 2), softmax(pred / 2)
    kld = np.mean(np.sum(t * np.log(t / s), axis=1))
    mse = np.mean((pred - y) ** 2)
    h = np.tanh(x @ model.hidden.params["kernel"] + model.hidden.params["bias"])
    extra = 0.05 * np.sum(h * h) / 2 + 0.1 * np.sum(model.hidden.params["kernel"] ** 2)
    # evaluate averages the batches' losses; the added loss is per batch (two of 5)
    assert loss == pytest.approx(0.4 * kld + 0.6 * mse + extra, rel=1e-6)


def test_compute_loss_default_is_the_compiled_loss_plus_added_losses():
    model = ln.Sequential(
        [ln.Input((3,)), ln.Dense(2, seed=0, kernel_regularizer=ln.regularizers.L2(0.5))]
    )
    model.compile("sgd", loss="mse", loss_weights=[2.0])
    x = np.ones((4, 3), "float32")
    y = np.zeros((4, 2), "float32")
    pred = model.forward(x)
    kernel = model.layers[-1].params["kernel"]
    expected = 2.0 * np.mean(pred**2) + 0.5 * np.sum(kernel**2)
    assert model.compute_loss(x, y, pred) == pytest.approx(expected, rel=1e-5)
    assert model.test_on_batch(x, y) == pytest.approx(expected, rel=1e-5)


def test_an_untraceable_override_gets_an_error_naming_compute_loss():
    class Bad(ln.Model):
        def __init__(self):
            super().__init__()
            self.dense = ln.Dense(1, seed=0)

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return np.mean((y_pred - y) ** 2)  # NumPy cannot run on symbolic tensors

    model = Bad()
    model.compile("sgd")
    with pytest.raises(TypeError, match="compute_loss could not be traced"):
        model.fit(np.ones((4, 2), "float32"), np.zeros((4, 1), "float32"), verbose=0)


def test_an_override_returning_a_non_scalar_is_refused():
    class NotScalar(ln.Model):
        def __init__(self):
            super().__init__()
            self.dense = ln.Dense(2, seed=0)

        def call(self, x):
            return self.dense(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            return (y_pred - y) ** 2

    model = NotScalar()
    model.compile("sgd")
    with pytest.raises(ValueError, match="compute_loss must return a scalar loss"):
        model.train_on_batch(np.ones((4, 2), "float32"), np.zeros((4, 2), "float32"))


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum"])
def test_masked_compute_weights_the_valid_steps_as_keras(reduction):
    rng = np.random.default_rng(2)
    pred = rng.standard_normal((3, 4, 2))
    target = rng.standard_normal((3, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], bool)
    loss = ln.losses.MeanSquaredError(reduction=reduction, dtype="float64")
    z, saved = masked_compute(loss, pred, target, mask)
    per_step = np.mean((pred - target) ** 2, axis=-1)
    expected = per_step[mask].sum() / (mask.sum() if reduction != "sum" else 1)
    assert z == pytest.approx(expected, rel=1e-12)
    grad = loss.compute_backward_input(np.float64(1.0), saved)
    assert np.all(grad[~mask] == 0)
    # a layernet loss without Keras's reductions folds the steps into samples
    half = ln.MSELoss(dtype="float64")
    z2, saved2 = masked_compute(half, pred, target, mask)
    z3, g3 = masked_loss(ln.MSELoss(dtype="float64"), pred, target, mask)
    assert z2 == pytest.approx(z3, rel=1e-12)
    g2 = half.compute_backward_input(np.float64(1.0), saved2).reshape(pred.shape)
    np.testing.assert_allclose(g2, g3, rtol=1e-12)


def test_mask_to_sample_weight_divides_by_the_valid_count_and_handles_none_valid():
    w = mask_to_sample_weight(np.zeros((2, 3), bool))
    np.testing.assert_array_equal(w, np.zeros((2, 3)))
    w = mask_to_sample_weight(np.array([[1, 0, 0]], bool), np.array([2.0]))
    np.testing.assert_array_equal(w, [[6.0, 0.0, 0.0]])


def _graph_and_fd(build, values):
    from layernet.graph.executor import Graph
    from layernet.graph.tensor import KerasTensor

    tensors = [KerasTensor((None, *v.shape[1:]), v.dtype) for v in values]
    graph = Graph(tensors, [build(*tensors)], "test")
    outs, tape = graph.forward(values, True)
    analytic = graph.backward(tape, [np.ones(())])
    eps = 1e-6
    for k, v in enumerate(values):
        if v.dtype.kind != "f":
            continue
        numeric = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            old = v[i]
            v[i] = old + eps
            up = graph.forward(values, True)[0][0]
            v[i] = old - eps
            down = graph.forward(values, True)[0][0]
            v[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[k], numeric, rtol=1e-6, atol=1e-9)
    return float(outs[0])


@pytest.mark.parametrize(
    "build",
    [
        lambda t, p: ln.losses.KLDivergence(dtype="float64")(ops.softmax(t), ops.softmax(p)),
        lambda t, p: ops.mean(ln.losses.kl_divergence(ops.softmax(t), ops.softmax(p))),
        lambda t, p: ln.losses.MeanSquaredError(dtype="float64")(ops.tanh(t), p),
        lambda t, p: ops.sum(ln.losses.mean_absolute_error(t, p) * 0.5),
        lambda t, p: ln.losses.CategoricalCrossentropy(from_logits=True, dtype="float64")(
            ops.softmax(t), p
        ),
    ],
    ids=["KLDivergence", "kl_divergence", "MeanSquaredError", "mae", "CategoricalCrossentropy"],
)
def test_losses_called_on_symbolic_tensors_record_their_derivatives(build):
    rng = np.random.default_rng(4)
    t = rng.standard_normal((4, 3))
    p = rng.standard_normal((4, 3))
    z = _graph_and_fd(build, [t, p])
    assert np.isfinite(z)


def test_a_sparse_loss_on_symbolic_integer_labels():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 4)
    logits = rng.standard_normal((4, 3))
    loss = ln.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    z = _graph_and_fd(lambda t, p: loss(t, p), [labels, logits])
    assert z == pytest.approx(loss(labels, logits), rel=1e-12)


class _Twice(ln.Model):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return 2.0 * super().compute_loss(x, y, y_pred, sample_weight, training)


def _masked_tagger(cls):
    tokens = ln.Input((6,), dtype="int32")
    h = ln.Embedding(10, 4, mask_zero=True, seed=0)(tokens)
    h = ln.SimpleRNN(3, return_sequences=True, seed=1)(h)
    return cls(tokens, ln.Dense(2, seed=2, kernel_regularizer=ln.regularizers.L2(0.1))(h))


def test_an_override_calling_super_keeps_masks_and_penalties():
    rng = np.random.default_rng(7)
    x = rng.integers(1, 10, (8, 6))
    x[:, 4:] = 0
    y = rng.integers(0, 2, (8, 6))
    plain, twice = _masked_tagger(ln.Model), _masked_tagger(_Twice)
    twice.set_weights(plain.get_weights())
    loss = ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    plain.compile(ln.SGD(0.1), loss)
    twice.compile(ln.SGD(0.05), loss)  # twice the loss at half the rate: the same steps
    assert twice.test_on_batch(x, y) == pytest.approx(2 * plain.test_on_batch(x, y), rel=1e-6)
    plain.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    twice.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(plain.get_weights(), twice.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


class _IgnoresPenalties(ln.Model):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean((y_pred - y) ** 2)  # self.losses left out: no penalty is trained


def test_an_override_without_self_losses_trains_no_penalty():
    inputs = ln.Input((3,), dtype="float64")
    h = ln.Dense(
        4,
        activation="tanh",
        dtype="float64",
        seed=0,
        activity_regularizer=ln.regularizers.L2(0.3),
        kernel_regularizer=ln.regularizers.L1(0.2),
    )(inputs)
    model = _IgnoresPenalties(inputs, ln.Dense(2, dtype="float64", seed=1)(h))
    model.compile("sgd")
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    z, _ = model._compute_gradients(x, y)
    assert model.activity_penalty() > 0
    params = model._step_params()
    analytic = {k: g.copy() for k, (_, g) in params.items()}
    eps = 1e-6
    for key, (p, _) in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = np.mean((model.forward(x) - y) ** 2)
            p[i] = old - eps
            down = np.mean((model.forward(x) - y) ** 2)
            p[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic[key], numeric, rtol=1e-5, atol=1e-9, err_msg=key)
    assert z == pytest.approx(np.mean((model.forward(x) - y) ** 2), rel=1e-12)
