"""Functional models against the same models under Keras 3 (JAX backend), from the same weights.

Each case builds one model in both libraries with the same code (only the module
differs), copies Keras's initial weights with ``set_weights``, trains both with SGD
and ``shuffle=False``, and compares predictions, the loss per epoch and the final
weights (float32).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import layernet as ln  # noqa: E402

RTOL = 2e-4


def residual_add(K):
    x = K.Input(shape=(6,))
    h = K.layers.Dense(8, activation="tanh")(x)
    h2 = K.layers.Dense(8)(h)
    s = K.layers.Add()([h, h2])
    return K.Model(x, K.layers.Dense(3)(s))


def concat_branches(K):
    x = K.Input(shape=(6,))
    a = K.layers.Dense(4, activation="relu")(x)
    b = K.layers.Dense(5, activation="tanh")(x)
    return K.Model(x, K.layers.Dense(2)(K.layers.Concatenate()([a, b])))


def shared_layer(K):
    a = K.Input(shape=(5,))
    b = K.Input(shape=(5,))
    shared = K.layers.Dense(4, activation="tanh")
    s = K.layers.Add()([shared(a), shared(b)])
    return K.Model([a, b], K.layers.Dense(1)(s))


def nested(K):
    inner_in = K.Input(shape=(4,))
    inner = K.Model(inner_in, K.layers.Dense(4, activation="tanh")(inner_in))
    x = K.Input(shape=(4,))
    h = inner(inner(x))  # a nested model called twice: its weights are shared
    return K.Model(x, K.layers.Dense(2)(h))


def conv_branches(K):
    x = K.Input(shape=(8, 8, 2))
    a = K.layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    b = K.layers.Conv2D(3, 1)(x)
    h = K.layers.Add()([a, b])
    h = K.layers.MaxPooling2D(2)(h)
    return K.Model(x, K.layers.Dense(2)(K.layers.Flatten()(h)))


def sequential_in_functional(K):
    block = K.Sequential([K.layers.Dense(5, activation="relu"), K.layers.Dense(5)])
    x = K.Input(shape=(5,))
    y = K.layers.Add()([x, block(x)])
    return K.Model(x, K.layers.Dense(1)(y))


CASES = {
    "residual_add": (residual_add, (6,), "mse", 3),
    "concat_branches": (concat_branches, (6,), "mse", 2),
    "shared_layer": (shared_layer, [(5,), (5,)], "mse", 1),
    "nested": (nested, (4,), "mse", 2),
    "conv_branches": (conv_branches, (8, 8, 2), "mse", 2),
    "sequential_in_functional": (sequential_in_functional, (5,), "mse", 1),
}


def _data(shapes, out_dim, n=24, seed=0):
    rng = np.random.default_rng(seed)
    if isinstance(shapes, list):
        x = [rng.standard_normal((n, *s)).astype("float32") for s in shapes]
    else:
        x = rng.standard_normal((n, *shapes)).astype("float32")
    y = rng.standard_normal((n, out_dim)).astype("float32")
    return x, y


@pytest.mark.parametrize("case", sorted(CASES))
def test_functional_model_trains_like_keras(case):
    build, shapes, loss, out_dim = CASES[case]
    keras.utils.set_random_seed(0)
    km = build(keras)
    lm = build(ln)
    lm.set_weights(km.get_weights())
    x, y = _data(shapes, out_dim)
    np.testing.assert_allclose(
        lm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=RTOL, atol=1e-5
    )
    lr = 0.01 if case == "conv_branches" else 0.05
    km.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss=loss)
    lm.compile(optimizer=ln.SGD(learning_rate=lr), loss=loss)
    hk = km.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(hl.history["loss"], hk.history["loss"], rtol=RTOL)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-5)


def _two_headed(K):
    a = K.Input(shape=(6,), name="a")
    b = K.Input(shape=(6,), name="b")
    shared = K.layers.Dense(4, activation="tanh", name="shared")
    s = K.layers.Add(name="add")([shared(a), shared(b)])
    cls = K.layers.Dense(3, activation="softmax", name="cls")(s)
    reg = K.layers.Dense(1, name="reg")(s)
    return K.Model({"a": a, "b": b}, {"cls": cls, "reg": reg})


def test_multi_input_multi_output_dicts_with_loss_weights_and_metrics():
    keras.utils.set_random_seed(1)
    km, lm = _two_headed(keras), _two_headed(ln)
    assert [layer.name for layer in lm.layers] == [layer.name for layer in km.layers]
    lm.set_weights(km.get_weights())
    rng = np.random.default_rng(0)
    x = {
        "a": rng.standard_normal((20, 6)).astype("float32"),
        "b": rng.standard_normal((20, 6)).astype("float32"),
    }
    y = {"cls": rng.integers(0, 3, 20), "reg": rng.standard_normal((20, 1)).astype("float32")}
    kwargs = dict(
        loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"reg": ["mae"], "cls": ["accuracy"]},
    )
    km.compile(optimizer=keras.optimizers.SGD(0.1), **kwargs)
    lm.compile(optimizer=ln.SGD(0.1), **kwargs)
    hk = km.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    hl = lm.fit(x, y, batch_size=5, epochs=2, shuffle=False, verbose=0)
    for key in ("loss", "cls_loss", "reg_loss", "reg_mae", "cls_accuracy"):
        np.testing.assert_allclose(hl.history[key], hk.history[key], rtol=RTOL, err_msg=key)
    for wl, wk in zip(lm.get_weights(), km.get_weights(), strict=True):
        np.testing.assert_allclose(wl, wk, rtol=RTOL, atol=1e-5)
    ek = km.evaluate(x, y, verbose=0, return_dict=True)
    el = lm.evaluate(x, y, verbose=0, return_dict=True)
    for key in ("loss", "cls_loss", "reg_loss"):
        np.testing.assert_allclose(el[key], ek[key], rtol=RTOL, err_msg=key)
    pk, pl = km.predict(x, verbose=0), lm.predict(x, verbose=0)
    np.testing.assert_allclose(pl[1], pk["reg"], rtol=RTOL, atol=1e-6)


def test_generator_and_pydataset_train_like_arrays():
    keras.utils.set_random_seed(2)
    km = residual_add(keras)
    x, y = _data((6,), 3, n=32)

    class Batches(ln.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    def gen():
        while True:
            for i in range(4):
                yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    results = []
    for data in ("arrays", "pydataset", "generator"):
        lm = residual_add(ln)
        lm.set_weights(km.get_weights())
        lm.compile(optimizer=ln.SGD(0.05), loss="mse")
        if data == "arrays":
            h = lm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        elif data == "pydataset":
            h = lm.fit(Batches(), epochs=2, verbose=0)
        else:
            h = lm.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0)
        results.append((h.history["loss"], lm.get_weights()))
    for losses, weights in results[1:]:
        np.testing.assert_allclose(losses, results[0][0], rtol=1e-6)
        for a, b in zip(weights, results[0][1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)
