"""Attention layers: gradients over shapes, masks and options; the key-is-value rule; dropout;
errors; PyTorch (nn.MultiheadAttention, scaled_dot_product_attention) as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from _harness import assert_layer_gradients
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet.gradcheck import numerical_gradient, relative_error

F64 = {"dtype": "float64"}


def random_mask(rng, shape, keep_first=True):
    """A boolean mask whose rows keep at least their first key (no row fully masked)."""
    m = rng.random(shape) > 0.4
    if keep_first:
        m[..., 0] = True
    return m


@settings(max_examples=12)
@given(
    heads=st.integers(1, 2),
    key_dim=st.integers(1, 3),
    value_dim=st.sampled_from([None, 2]),
    tq=st.integers(1, 3),
    tv=st.integers(1, 3),
    separate_key=st.booleans(),
    use_bias=st.booleans(),
    output_shape=st.sampled_from([None, 2, (2, 2)]),
    masks=st.sampled_from(["none", "attention", "value_key", "query", "causal"]),
    scores=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_multi_head_attention_gradients(
    heads, key_dim, value_dim, tq, tv, separate_key, use_bias, output_shape, masks, scores, seed
):
    rng = np.random.default_rng(seed)
    if masks == "causal":
        tv = tq
    xs = [rng.standard_normal((2, tq, 3)), rng.standard_normal((2, tv, 4))]
    if separate_key:
        xs.append(rng.standard_normal((2, tv, 2)))
    options: dict = {"return_attention_scores": scores}
    if masks == "attention":
        options["attention_mask"] = random_mask(rng, (2, tq, tv))
    elif masks == "value_key":
        options["value_mask"] = random_mask(rng, (2, tv))
        options["key_mask"] = np.ones((2, tv), dtype=int)
    elif masks == "query":  # a masked query row has weights 0: the output is the bias there
        options["query_mask"] = random_mask(rng, (2, tq), keep_first=False)
    elif masks == "causal":
        options["use_causal_mask"] = True

    def make():
        return ln.MultiHeadAttention(
            heads, key_dim, value_dim=value_dim, use_bias=use_bias, output_shape=output_shape,
            bias_initializer="he_uniform", seed=1, **F64,
        )  # fmt: skip

    assert_layer_gradients(make, xs, options=options)


@settings(max_examples=6)
@given(axes=st.sampled_from([None, (1,), (2,), (1, 2), -2]), seed=st.integers(0, 2**16))
def test_multi_head_attention_over_several_axes(axes, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 2, 4))]
    if axes == (1,):  # -2 is axis 2 of these rank-4 inputs
        xs = [rng.standard_normal((2, 2, 2, 3)), rng.standard_normal((2, 3, 2, 4))]
    make = lambda: ln.MultiHeadAttention(2, 2, attention_axes=axes, seed=0, **F64)  # noqa: E731
    layer = make()
    y, s = layer.forward(xs, return_attention_scores=True)
    assert y.shape == layer.output_shape([x.shape for x in xs])
    assert s.shape == layer.attention_scores_shape([x.shape for x in xs])
    assert_layer_gradients(make, xs, options={"return_attention_scores": True}, front=False)


@settings(max_examples=12)
@given(
    cls=st.sampled_from(["dot", "concat", "additive"]),
    use_scale=st.booleans(),
    separate_key=st.booleans(),
    q_mask=st.booleans(),
    v_mask=st.booleans(),
    causal=st.booleans(),
    scores=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_attention_and_additive_attention_gradients(
    cls, use_scale, separate_key, q_mask, v_mask, causal, scores, seed
):
    rng = np.random.default_rng(seed)
    tq, tv = 3, 3 if causal else 4
    xs = [rng.standard_normal((2, tq, 3)), rng.standard_normal((2, tv, 2))]
    xs.append(rng.standard_normal((2, tv, 3)) if separate_key else xs[1])
    if not separate_key:
        xs = [xs[0], rng.standard_normal((2, tv, 3))]
    options: dict = {"return_attention_scores": scores, "use_causal_mask": causal}
    if q_mask or v_mask:
        options["mask"] = [
            random_mask(rng, (2, tq), keep_first=False) if q_mask else None,
            random_mask(rng, (2, tv)) if v_mask else None,
        ]

    def make():
        if cls == "additive":
            return ln.AdditiveAttention(use_scale=use_scale, seed=3, **F64)
        return ln.Attention(use_scale=use_scale, score_mode=cls, seed=3, **F64)

    assert_layer_gradients(make, xs, options=options)


def test_key_defaults_to_value_and_its_gradients_are_summed(rng):
    mha = ln.MultiHeadAttention(2, 3, seed=0, **F64)
    q, v = rng.standard_normal((2, 4, 5)), rng.standard_normal((2, 3, 6))
    y2 = mha(q, v)
    g = rng.standard_normal(y2.shape)
    dq2, dv2 = mha.backward_input(g)
    y3 = mha(q, v, key=v)
    np.testing.assert_array_equal(y2, y3)
    dq3, dv3, dk3 = mha.backward_input(g)
    np.testing.assert_allclose(dq2, dq3, rtol=1e-12)
    np.testing.assert_allclose(dv2, dv3 + dk3, rtol=1e-12, atol=1e-14)


def test_keras_call_signature_on_arrays(rng):
    mha = ln.MultiHeadAttention(2, 3, seed=0, **F64)
    q = rng.standard_normal((2, 4, 5))
    mask = random_mask(rng, (2, 4, 4))
    y, s = mha(q, q, attention_mask=mask, return_attention_scores=True, use_causal_mask=True)
    np.testing.assert_array_equal(s[:, :, np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]], 0)
    np.testing.assert_array_equal(s * ~mask[:, None], 0)
    np.testing.assert_allclose(s.sum(-1), 1)
    y2, s2 = mha.forward([q, q], attention_mask=mask, use_causal_mask=True,
                         return_attention_scores=True)  # fmt: skip
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(s, s2)
    att = ln.Attention(**F64)
    out, w = att([q, q], mask=[None, mask[:, 0]], return_attention_scores=True)
    np.testing.assert_allclose(w * ~mask[:, :1], 0, atol=1e-300)
    np.testing.assert_allclose(out, w @ q, rtol=1e-12)


def test_causal_output_does_not_see_the_future(rng):
    mha = ln.MultiHeadAttention(2, 3, seed=0, **F64)
    x = rng.standard_normal((1, 5, 4))
    y = mha(x, x, use_causal_mask=True)
    x2 = x.copy()
    x2[:, 3:] += 1.0
    y2 = mha(x2, x2, use_causal_mask=True)
    np.testing.assert_allclose(y[:, :3], y2[:, :3], rtol=1e-12)
    assert not np.allclose(y[:, 3:], y2[:, 3:])


def test_fully_masked_rows_have_zero_weights(rng):
    mha = ln.MultiHeadAttention(1, 2, seed=0, **F64)
    q, v = rng.standard_normal((1, 2, 3)), rng.standard_normal((1, 3, 3))
    _, s = mha(q, v, query_mask=np.array([[True, False]]), return_attention_scores=True)
    np.testing.assert_array_equal(s[0, 0, 1], 0)
    np.testing.assert_allclose(s[0, 0, 0].sum(), 1)


@pytest.mark.parametrize("cls", ["mha", "dot"])
def test_dropout_on_the_weights_is_seeded_and_differentiated(cls, rng):
    def make():
        if cls == "mha":
            return ln.MultiHeadAttention(2, 2, dropout=0.5, seed=4, **F64)
        return ln.Attention(dropout=0.5, seed=4, **F64)

    xs = [rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 4, 2))]
    a, b = make(), make()
    ya, yb = a.forward(xs, training=True), b.forward(xs, training=True)
    np.testing.assert_array_equal(ya, yb)  # the same seed draws the same masks
    assert not np.allclose(ya, a.forward(xs, training=False))
    g = rng.standard_normal(ya.shape)
    layer = make()
    layer.build([x.shape for x in xs])
    state = layer._rng.bit_generator.state

    def z():
        layer._rng.bit_generator.state = state  # the same dropout mask on every evaluation
        return float(np.vdot(g, layer.forward(xs, training=True)))

    z()
    dxs = layer.backward_input(g)
    dps = layer.backward_params(g)
    for dx, x in zip(dxs, xs, strict=True):
        assert relative_error(dx, numerical_gradient(z, x)) < 1e-6
    floor = 1e-3 * max(
        (np.abs(v).max() for v in dps.values()), default=0
    )  # key bias's gradient is 0
    for k, p in layer.params.items():
        assert relative_error(dps[k], numerical_gradient(z, p), floor) < 1e-6


def test_weights_in_keras_order_and_set_weights(rng):
    mha = ln.MultiHeadAttention(2, 3, value_dim=4, output_shape=7, **F64)
    mha.build([(None, 4, 5), (None, 3, 6), (None, 3, 2)])
    assert list(mha.params) == [
        "query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
        "output_kernel", "output_bias",
    ]  # fmt: skip
    assert [w.shape for w in mha.get_weights()] == [
        (5, 2, 3), (2, 3), (2, 2, 3), (2, 3), (6, 2, 4), (2, 4), (2, 4, 7), (7,),
    ]  # fmt: skip
    new = [rng.standard_normal(w.shape) for w in mha.get_weights()]
    mha.set_weights(new)
    for w, n in zip(mha.get_weights(), new, strict=True):
        np.testing.assert_array_equal(w, n)
    with pytest.raises(ValueError, match="not built yet"):
        ln.MultiHeadAttention(2, 3).set_weights(new)
    nb = ln.MultiHeadAttention(1, 2, use_bias=False)
    nb.build([(None, 2, 3), (None, 2, 3)])
    assert list(nb.params) == ["query_kernel", "key_kernel", "value_kernel", "output_kernel"]
    add = ln.AdditiveAttention()
    add.build([(None, 2, 3), (None, 4, 3)])
    assert [w.shape for w in add.get_weights()] == [(3,)]
    att = ln.Attention(use_scale=True, score_mode="concat")
    att.build([(None, 2, 3), (None, 4, 3)])
    assert list(att.params) == ["scale", "concat_score_weight"]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ln.MultiHeadAttention(0, 2), r"invalid value for `num_heads`"),
        (lambda: ln.MultiHeadAttention(2, -1), r"invalid value for `key_dim`"),
        (lambda: ln.MultiHeadAttention(2, 2, value_dim=0), r"invalid value for `value_dim`"),
        (lambda: ln.MultiHeadAttention(2, 2, dropout=1.0), r"invalid value for `dropout`"),
        (lambda: ln.MultiHeadAttention(2, 2, output_shape="a"), r"`output_shape`"),
        (lambda: ln.MultiHeadAttention(2, 2, attention_axes="a"), r"`attention_axes`"),
        (lambda: ln.Attention(score_mode="add"), r"`score_mode`: expected 'dot' or 'concat'"),
        (lambda: ln.AdditiveAttention(use_scale=None), r"`use_scale`"),
    ],
)
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_input_and_mask_errors_show_the_shapes():
    mha = ln.MultiHeadAttention(2, 2, name="mha")
    q, v = np.zeros((2, 3, 4)), np.zeros((2, 5, 4))
    with pytest.raises(ValueError, match=r"MultiHeadAttention 'mha': expected the inputs"):
        mha.forward(q)
    with pytest.raises(ValueError, match=r"value and key to match except in the last axis"):
        mha.forward([q, v, np.zeros((2, 4, 4))])
    with pytest.raises(ValueError, match=r"same batch size, got shapes \(2, 3, 4\) and \(3, 5"):
        mha.forward([q, np.zeros((3, 5, 4))])
    with pytest.raises(ValueError, match=r"do not broadcast to the attention scores of shape"):
        mha(q, v, attention_mask=np.ones((2, 3, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"equal rank"):
        mha.forward([q, np.zeros((2, 4))])
    att = ln.Attention(name="att")
    with pytest.raises(ValueError, match=r"Attention 'att': expected query and key with the same"):
        att([q, np.zeros((2, 5, 3))])
    with pytest.raises(ValueError, match=r"expected `mask` to be a list"):
        att([q, v], mask=np.ones((2, 5)))
    with pytest.raises(TypeError, match=r"`mask\[1\]` to be a boolean"):
        att([q, v], mask=[None, np.array([["a"] * 5] * 2)])


# ----------------------------------------------------------------- PyTorch oracle
def test_multi_head_attention_matches_torch(rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    b, tq, tv, e, h, kd, vd = 2, 4, 3, 6, 2, 5, 3
    q = rng.standard_normal((b, tq, e))
    k = rng.standard_normal((b, tv, kd))
    v = rng.standard_normal((b, tv, vd))
    mask = random_mask(rng, (b, tq, tv))
    t = torch.nn.MultiheadAttention(e, h, kdim=kd, vdim=vd, batch_first=True,
                                    dtype=torch.float64)  # fmt: skip
    with torch.no_grad():
        for p in (t.in_proj_bias, t.out_proj.bias):
            p.copy_(torch.tensor(rng.standard_normal(p.shape)))
    mha = ln.MultiHeadAttention(h, e // h, **F64)
    mha.build([q.shape, v.shape, k.shape])
    d = e // h
    bq, bk, bv = t.in_proj_bias.detach().numpy().reshape(3, h, d)
    mha.set_weights([
        t.q_proj_weight.detach().numpy().T.reshape(e, h, d), bq,
        t.k_proj_weight.detach().numpy().T.reshape(kd, h, d), bk,
        t.v_proj_weight.detach().numpy().T.reshape(vd, h, d), bv,
        t.out_proj.weight.detach().numpy().T.reshape(h, d, e), t.out_proj.bias.detach().numpy(),
    ])  # fmt: skip
    y, s = mha(q, v, key=k, attention_mask=mask, return_attention_scores=True)
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    tmask = torch.tensor(~mask).repeat_interleave(h, 0)  # torch: True = not allowed
    yt, st_ = t(qt, kt, vt, attn_mask=tmask, average_attn_weights=False)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s, st_.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    gs = rng.standard_normal(s.shape)
    (yt * torch.tensor(g)).sum().add((st_ * torch.tensor(gs)).sum()).backward()
    dq, dv, dk = mha.backward_input([g, gs])
    for ours, theirs in ((dq, qt), (dk, kt), (dv, vt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-9, atol=1e-11)
    grads = mha.backward_params([g, gs])
    np.testing.assert_allclose(
        grads["query_kernel"], t.q_proj_weight.grad.numpy().T.reshape(e, h, d), rtol=1e-9,
        atol=1e-11,
    )  # fmt: skip
    np.testing.assert_allclose(
        grads["output_kernel"], t.out_proj.weight.grad.numpy().T.reshape(h, d, e), rtol=1e-9,
        atol=1e-11,
    )  # fmt: skip
    dbq, dbk, dbv = t.in_proj_bias.grad.numpy().reshape(3, h, d)
    np.testing.assert_allclose(grads["query_bias"], dbq, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["value_bias"], dbv, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads["key_bias"], dbk, atol=1e-11)
    np.testing.assert_allclose(grads["output_bias"], t.out_proj.bias.grad.numpy(), rtol=1e-9)


@pytest.mark.parametrize("causal", [False, True])
def test_dot_attention_matches_torch_sdpa(causal, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle")
    F = torch.nn.functional
    q, k, v = (rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3)),
               rng.standard_normal((2, 4, 5)))  # fmt: skip
    att = ln.Attention(use_scale=True, **F64)
    att.build([q.shape, v.shape, k.shape])
    att.set_weights([np.array(0.7)])
    y = att([q, v, k], use_causal_mask=causal)
    g = rng.standard_normal(y.shape)
    dq, dv, dk = att.backward_input(g)
    dscale = att.backward_params(g)["scale"]
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    scale = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    yt = F.scaled_dot_product_attention(qt * scale, kt, vt, is_causal=causal, scale=1.0)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    yt.backward(torch.tensor(g))
    for ours, theirs in ((dq, qt), (dk, kt), (dv, vt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dscale, scale.grad.numpy(), rtol=1e-9)
