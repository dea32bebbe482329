"""Keras 3 (JAX backend) as the oracle for the merging, normalization and attention layers.

Each Keras layer is built, its weights copied into the layernet layer with
``set_weights(keras_layer.get_weights())``, and the outputs, the input gradients
and the weight gradients (``jax.vjp`` through ``stateless_call``) compared for a
random upstream gradient, at float32 accuracy.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import numpy as np
import pytest

import layernet as ln

keras = pytest.importorskip("keras", reason="Keras 3 is the oracle; install the 'oracle' extra")
jax = pytest.importorskip("jax", reason="Keras's JAX backend runs the oracle")
if keras.backend.backend() != "jax":  # pragma: no cover - another backend was loaded first
    pytest.skip("Keras was imported with another backend", allow_module_level=True)

TOL = {"rtol": 2e-4, "atol": 2e-5}
F64 = {"dtype": "float64"}


def f32(a):
    return np.asarray(a, dtype=np.float32)


def as_list(a):
    return list(a) if isinstance(a, list | tuple) else [a]


def compare(ours, klayer, xs, call, options=None, training=False):
    """Outputs, input gradients and weight gradients of ``ours`` against ``klayer``.

    ``call(layer_or_fn, tv, xs)`` runs the Keras layer on inputs ``xs`` with the
    trainable variables ``tv`` (through ``stateless_call``).
    """
    options = options or {}
    tv0 = [f32(v) for v in klayer.get_weights()]
    if tv0:
        ours.set_weights([np.asarray(w, dtype=np.float64) for w in tv0])

    def fn(tv, *inputs):
        out = call(tv, list(inputs))
        return tuple(out) if isinstance(out, list | tuple) else out

    ky, vjp = jax.vjp(fn, tv0, *[f32(x) for x in xs])
    y = ours.forward(xs, training=training, **options)
    for a, b in zip(as_list(y), as_list(ky), strict=True):
        np.testing.assert_allclose(a, np.asarray(b), **TOL)
    rng = np.random.default_rng(0)
    g = [rng.standard_normal(a.shape) for a in as_list(y)]
    g_ours = g if isinstance(y, list) else g[0]
    kg = tuple(f32(a) for a in g) if isinstance(ky, tuple) else f32(g[0])
    k_grads = vjp(kg)
    k_tv, k_dx = k_grads[0], k_grads[1:]
    dxs = ours.backward_input(g_ours)
    for a, b in zip(dxs, k_dx, strict=True):
        np.testing.assert_allclose(a, np.asarray(b), **TOL)
    grads = ours.backward_params(g_ours)
    for name, b in zip(ours.params, k_tv, strict=True):
        np.testing.assert_allclose(grads[name], np.asarray(b), **TOL, err_msg=name)
    return y


# ------------------------------------------------------------------ merging
@pytest.mark.parametrize(
    ("ours", "theirs", "shapes"),
    [
        (ln.Add, keras.layers.Add, [(2, 3, 4), (2, 3, 4), (2, 1, 4)]),
        (ln.Add, keras.layers.Add, [(2, 3, 4), (2, 4)]),
        (ln.Subtract, keras.layers.Subtract, [(2, 3, 4), (2, 1, 4)]),
        (ln.Multiply, keras.layers.Multiply, [(2, 3, 4), (2, 3, 4), (2, 3, 1)]),
        (ln.Average, keras.layers.Average, [(2, 3, 4), (2, 3, 4)]),
        (ln.Maximum, keras.layers.Maximum, [(2, 3, 4), (2, 3, 4), (2, 3, 4)]),
        (ln.Minimum, keras.layers.Minimum, [(2, 3, 4), (2, 3, 4)]),
    ],
)
def test_elementwise_merging_matches_keras(ours, theirs, shapes):
    rng = np.random.default_rng(1)
    sizes = [int(np.prod(s)) for s in shapes]
    flat = rng.permutation(np.arange(sum(sizes)) * 0.05 - 1.0)  # distinct values (max, min)
    xs = [p.reshape(s) for p, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes,
                                        strict=True)]  # fmt: skip
    klayer = theirs()
    compare(ours(**F64), klayer, xs, lambda tv, inputs: klayer(inputs))


@pytest.mark.parametrize(
    ("kwargs", "shapes"),
    [
        ({"axis": -1}, [(2, 3, 4), (2, 3, 2)]),
        ({"axis": 1}, [(2, 3, 4), (2, 1, 4), (2, 2, 4)]),
    ],
)
def test_concatenate_matches_keras(kwargs, shapes):
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(s) for s in shapes]
    klayer = keras.layers.Concatenate(**kwargs)
    compare(ln.Concatenate(**kwargs, **F64), klayer, xs, lambda tv, inputs: klayer(inputs))


@pytest.mark.parametrize(
    ("axes", "normalize", "shapes"),
    [
        (1, False, [(2, 3), (2, 3)]),
        (-1, True, [(2, 3, 4), (2, 5, 4)]),
        ((1, 2), True, [(2, 3, 4), (2, 5, 3)]),
        ((2, 1), False, [(2, 3, 4), (2, 4)]),
        ((1, 1), False, [(2, 3, 2, 2), (2, 3, 4)]),
    ],
)
def test_dot_matches_keras(axes, normalize, shapes):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(s) for s in shapes]
    klayer = keras.layers.Dot(axes=axes, normalize=normalize)
    ours = ln.Dot(axes, normalize=normalize, **F64)
    assert ours.output_shape(shapes) == klayer.compute_output_shape(shapes)
    compare(ours, klayer, xs, lambda tv, inputs: klayer(inputs))


def test_merging_masks_match_keras():
    m1 = np.array([[True, False, True]])
    m2 = np.array([[False, False, True]])
    xs = [np.ones((1, 3, 2), "float32"), np.ones((1, 3, 2), "float32")]
    for ours, theirs in ((ln.Add(), keras.layers.Add()), (ln.Maximum(), keras.layers.Maximum())):
        np.testing.assert_array_equal(
            ours.compute_mask(xs, [m1, m2]), np.asarray(theirs.compute_mask(xs, [m1, m2]))
        )
    for axis in (1, -1):
        np.testing.assert_array_equal(
            ln.Concatenate(axis=axis).compute_mask(xs, [m1, None]),
            np.asarray(keras.layers.Concatenate(axis=axis).compute_mask(xs, [m1, None])),
        )


# ------------------------------------------------------------ normalization
@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({}, (3, 5)),
        ({"axis": [1, 2]}, (2, 3, 4)),
        ({"axis": 1, "center": False}, (2, 3, 4)),
        ({"axis": -1, "scale": False, "epsilon": 1e-5}, (2, 3, 4)),
        ({"rms_scaling": True}, (3, 5)),
    ],
)
def test_layer_normalization_matches_keras(kwargs, shape):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 2 + 1
    klayer = keras.layers.LayerNormalization(
        beta_initializer="random_normal", gamma_initializer="random_normal", **kwargs
    )
    klayer.build(shape)
    ours = ln.LayerNormalization(**kwargs, **F64)
    ours.build(shape)
    tv0 = [f32(v) for v in klayer.get_weights()]
    ours.set_weights([np.asarray(w, np.float64) for w in tv0])
    ky, vjp = jax.vjp(lambda tv, a: klayer.stateless_call(tv, [], a)[0], tv0, f32(x))
    y = ours.forward(x)
    np.testing.assert_allclose(y, np.asarray(ky), **TOL)
    g = rng.standard_normal(y.shape)
    k_tv, k_dx = vjp(f32(g))
    np.testing.assert_allclose(ours.backward_input(g), np.asarray(k_dx), **TOL)
    grads = ours.backward_params(g)
    for name, b in zip(ours.params, k_tv, strict=True):
        np.testing.assert_allclose(grads[name], np.asarray(b), **TOL, err_msg=name)


# ---------------------------------------------------------------- attention
@pytest.mark.parametrize(
    ("kwargs", "with_key", "options"),
    [
        ({}, False, {}),
        ({"value_dim": 2, "output_shape": 7}, True, {"return_attention_scores": True}),
        ({"value_dim": 4}, False, {"return_attention_scores": True, "use_causal_mask": True}),
        ({"use_bias": False}, False, {"use_causal_mask": True}),
        ({}, True, {"attention_mask": "random", "return_attention_scores": True}),
        ({}, False, {"value_mask": "random", "key_mask": "ones"}),
        ({"output_shape": (2, 3)}, False, {"use_causal_mask": True, "attention_mask": "random"}),
    ],
)
def test_multi_head_attention_matches_keras(kwargs, with_key, options):
    rng = np.random.default_rng(5)
    tq = tv = 4
    q, v = rng.standard_normal((2, tq, 5)), rng.standard_normal((2, tv, 6))
    k = rng.standard_normal((2, tv, 3))
    opts = dict(options)
    for name, shape in (("attention_mask", (2, tq, tv)), ("value_mask", (2, tv)),
                        ("key_mask", (2, tv))):  # fmt: skip
        if opts.get(name) == "random":
            m = rng.random(shape) > 0.4
            m[..., 0] = True  # no fully masked row (Keras's fused path averages those)
            opts[name] = m
        elif opts.get(name) == "ones":
            opts[name] = np.ones(shape, dtype=bool)
    klayer = keras.layers.MultiHeadAttention(
        num_heads=2, key_dim=3, bias_initializer="random_normal", **kwargs
    )
    # (the scores path: Keras's fused path refuses value_dim != key_dim)
    klayer(f32(q), f32(v), key=f32(k) if with_key else None, return_attention_scores=True)
    ours = ln.MultiHeadAttention(2, 3, **kwargs, **F64)
    xs = [q, v, k] if with_key else [q, v]
    ours.build([x.shape for x in xs])
    kopts = {n: (o if isinstance(o, bool) else np.asarray(o)) for n, o in opts.items()}

    def call(tv, inputs):
        key = inputs[2] if len(inputs) == 3 else None
        return klayer.stateless_call(tv, [], inputs[0], inputs[1], key=key, **kopts)[0]

    compare(ours, klayer, xs, call, opts)


@pytest.mark.parametrize(
    ("cls", "kwargs", "options"),
    [
        ("Attention", {}, {}),
        ("Attention", {"use_scale": True}, {"return_attention_scores": True}),
        ("Attention", {"use_scale": True, "score_mode": "concat"}, {"use_causal_mask": True}),
        ("Attention", {"score_mode": "concat"}, {"mask": "both", "return_attention_scores": True}),
        ("AdditiveAttention", {}, {"mask": "both"}),
        (
            "AdditiveAttention",
            {"use_scale": False},
            {"use_causal_mask": True, "return_attention_scores": True},
        ),
    ],
)
@pytest.mark.parametrize("with_key", [False, True])
def test_attention_layers_match_keras(cls, kwargs, options, with_key):
    rng = np.random.default_rng(6)
    t = 4
    q, v, k = (rng.standard_normal((2, t, 3)), rng.standard_normal((2, t, 2)),
               rng.standard_normal((2, t, 3)))  # fmt: skip
    xs = [q, v, k] if with_key else [q, rng.standard_normal((2, t, 3))]
    opts = dict(options)
    if opts.get("mask") == "both":
        vm = rng.random((2, t)) > 0.4
        vm[:, 0] = True
        opts["mask"] = [rng.random((2, t)) > 0.3, vm]
    klayer = getattr(keras.layers, cls)(**kwargs)
    klayer([f32(x) for x in xs])
    if klayer.get_weights():  # move the weights off their initial ones
        klayer.set_weights([w + 0.3 * rng.standard_normal(np.shape(w)) for w in
                            klayer.get_weights()])  # fmt: skip
    ours = getattr(ln, cls)(**kwargs, **F64)
    ours.build([x.shape for x in xs])

    def call(tv, inputs):
        return klayer.stateless_call(tv, [], inputs, **opts)[0]

    compare(ours, klayer, xs, call, opts)
