"""``Model.compute_loss`` overrides and masked losses against Keras 3 (JAX backend).

Each case builds the same model in both libraries with the same code (only the
module differs), copies Keras's initial weights, trains both with SGD and
``shuffle=False`` and compares the loss (and metrics) per epoch, the final weights
and ``evaluate`` (float32).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import layernet as ln  # noqa: E402

RTOL = 2e-4


def _regularized_mse(K):
    """A subclassed model whose compute_loss is an MSE of its own plus its added losses."""
    ops = K.ops

    class Regularized(K.Model):
        def __init__(self):
            super().__init__()
            self.hidden = K.layers.Dense(
                5, activation="tanh", kernel_regularizer=K.regularizers.L2(0.01)
            )
            self.out = K.layers.Dense(2)

        def call(self, x):
            return self.out(self.hidden(x))

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return ops.mean((y_pred - y) ** 2) + 0.5 * sum(self.losses)

    return Regularized()


def _distiller(K):
    """The knowledge-distillation pattern: a teacher called inside compute_loss."""
    ops = K.ops

    class Distiller(K.Model):
        def __init__(self, student, teacher):
            super().__init__()
            self.teacher = teacher
            self.student = student

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, allow_empty=False):
            teacher_pred = self.teacher(x, training=False)
            student_loss = K.losses.SparseCategoricalCrossentropy(from_logits=True)(y, y_pred)
            distillation_loss = K.losses.KLDivergence()(
                ops.softmax(teacher_pred / 3.0, axis=1), ops.softmax(y_pred / 3.0, axis=1)
            ) * (3.0**2)
            return 0.3 * student_loss + (1 - 0.3) * distillation_loss

        def call(self, x):
            return self.student(x)

    teacher = K.Sequential([K.Input((6,)), K.layers.Dense(8, activation="relu"), K.layers.Dense(4)])
    student = K.Sequential([K.Input((6,)), K.layers.Dense(4)])
    return Distiller(student, teacher)


def _fit_both(build, x, y, lr, metrics=None, batch_size=8, epochs=3):
    keras.utils.set_random_seed(0)
    km = build(keras)
    lm = build(ln)
    km(x[:2])
    lm(x[:2])
    lm.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(lr), metrics=metrics)
    lm.compile(optimizer=ln.SGD(lr), metrics=metrics)
    hk = km.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return km, lm, hk, hl


def test_overridden_compute_loss_with_added_losses_trains_like_keras():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((24, 4)).astype("float32")
    y = rng.standard_normal((24, 2)).astype("float32")
    km, lm, hk, hl = _fit_both(_regularized_mse, x, y, lr=0.1)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(
        lm.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=RTOL
    )


def test_distiller_compute_loss_calling_a_teacher_trains_like_keras():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 6)).astype("float32")
    y = rng.integers(0, 4, 32)
    metrics = ["sparse_categorical_accuracy"]
    km, lm, hk, hl = _fit_both(_distiller, x, y, lr=0.2, metrics=metrics)
    for key in ("loss", "sparse_categorical_accuracy"):
        np.testing.assert_allclose(hl.history[key], hk.history[key], rtol=RTOL, err_msg=key)
    # Keras differentiates with respect to every trainable weight the loss reaches: the
    # teacher's too (it is tracked by the Distiller)
    for part in ("student", "teacher"):
        for wl, wk in zip(
            getattr(lm, part).get_weights(), getattr(km, part).get_weights(), strict=True
        ):
            np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-6, err_msg=part)
    ek = km.evaluate(x, y, verbose=0, return_dict=True)
    el = lm.evaluate(x, y, verbose=0, return_dict=True)
    for key in ("loss", "sparse_categorical_accuracy"):
        np.testing.assert_allclose(el[key], ek[key], rtol=RTOL, err_msg=key)
    zk = km.test_on_batch(x[:8], y[:8])
    zl = lm.test_on_batch(x[:8], y[:8])
    np.testing.assert_allclose(zl, zk, rtol=RTOL)


def _masked_sequential(K, rnn):
    cell = K.layers.LSTM if rnn == "lstm" else K.layers.SimpleRNN
    return K.Sequential(
        [
            K.Input((7,), dtype="int32"),
            K.layers.Embedding(12, 5, mask_zero=True),
            cell(6, return_sequences=True),
            K.layers.Dense(4),
        ]
    )


def _masked_functional(K, rnn):
    cell = K.layers.LSTM if rnn == "lstm" else K.layers.SimpleRNN
    tokens = K.Input((7,), dtype="int32")
    h = K.layers.Embedding(12, 5, mask_zero=True)(tokens)
    h = cell(6, return_sequences=True)(h)
    return K.Model(tokens, K.layers.Dense(4)(h))


def _padded(n=20, steps=7, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 12, (n, steps))
    lengths = rng.integers(2, steps + 1, n)
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0  # right padding
    y = rng.integers(0, 4, (n, steps))
    return x.astype("int32"), y


@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("rnn", ["lstm", "simple_rnn"])
def test_masked_sequence_loss_and_metrics_like_keras(kind, rnn):
    build = _masked_sequential if kind == "sequential" else _masked_functional
    x, y = _padded()
    keras.utils.set_random_seed(0)
    km, lm = build(keras, rnn), build(ln, rnn)
    lm.set_weights(km.get_weights())
    kwargs = dict(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["sparse_categorical_accuracy"],
    )
    km.compile(optimizer=keras.optimizers.SGD(0.5), **kwargs)
    kwargs["loss"] = ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    lm.compile(optimizer=ln.SGD(0.5), **kwargs)
    hk = km.fit(x, y, batch_size=6, epochs=3, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=6, epochs=3, shuffle=False, verbose=0)
    # (Keras's JAX training step loses the output's mask between the gradient and the
    # metrics, so its training accuracy counts padded steps; evaluate's is masked, below)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-6)
    ek = km.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    el = lm.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)
    for key in ("loss", "sparse_categorical_accuracy"):
        np.testing.assert_allclose(el[key], ek[key], rtol=RTOL, err_msg=key)
    before = lm.predict(x[:5], verbose=0)
    tk = km.train_on_batch(x[:5], y[:5], return_dict=True)
    tl = lm.train_on_batch(x[:5], y[:5], return_dict=True)
    np.testing.assert_allclose(tl["loss"], tk["loss"], rtol=RTOL)
    valid = x[:5] != 0
    hits = (before.argmax(-1) == y[:5]) & valid
    np.testing.assert_allclose(tl["sparse_categorical_accuracy"], hits.sum() / valid.sum())
    sk = km.test_on_batch(x[5:9], y[5:9], return_dict=True)
    sl = lm.test_on_batch(x[5:9], y[5:9], return_dict=True)
    for key in ("loss", "sparse_categorical_accuracy"):
        np.testing.assert_allclose(sl[key], sk[key], rtol=RTOL, err_msg=key)


def _masking_time_distributed(K):
    x = K.Input((5, 3))
    h = K.layers.Masking(mask_value=0.0)(x)
    h = K.layers.SimpleRNN(4, return_sequences=True)(h)
    return K.Model(x, K.layers.TimeDistributed(K.layers.Dense(2))(h))


def test_masking_and_time_distributed_mse_like_keras():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((12, 5, 3)).astype("float32")
    lengths = rng.integers(1, 6, 12)
    x[np.arange(5)[None, :] >= lengths[:, None]] = 0.0
    y = rng.standard_normal((12, 5, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    km, lm = _masking_time_distributed(keras), _masking_time_distributed(ln)
    lm.set_weights(km.get_weights())
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    lm.compile(optimizer=ln.SGD(0.1), loss="mse", metrics=["mae"])
    hk = km.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-6)
    ek = km.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    el = lm.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    for key in ("loss", "mae"):
        np.testing.assert_allclose(el[key], ek[key], rtol=RTOL, err_msg=key)
