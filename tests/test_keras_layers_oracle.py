"""PyTorch autograd as the oracle for the Keras-style layers, forward and backward, float64."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the 'oracle' extra")
F = torch.nn.functional
torch.set_num_threads(1)
F64 = {"dtype": "float64"}
TOL = {"rtol": 1e-10, "atol": 1e-10}


def to_torch_layout(x: np.ndarray):
    perm = (0, x.ndim - 1, *range(1, x.ndim - 1))
    return torch.tensor(np.ascontiguousarray(x.transpose(perm)), requires_grad=True)


def from_torch_layout(t) -> np.ndarray:
    a = t.detach().numpy()
    return a.transpose((0, *range(2, a.ndim), 1))


def check_against(layer, x, torch_fn, *, channels_first=False, rng=None):
    """Forward and input gradient of ``layer`` equal ``torch_fn``'s, for a random upstream G."""
    rng = rng or np.random.default_rng(0)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    if channels_first:
        xt = to_torch_layout(x)
        yt = torch_fn(xt)
        np.testing.assert_allclose(y, from_torch_layout(yt), **TOL)
        yt.backward(to_torch_layout(dy).detach())
        np.testing.assert_allclose(dx, from_torch_layout(xt.grad), **TOL)
    else:
        xt = torch.tensor(x, requires_grad=True)
        yt = torch_fn(xt)
        np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
        yt.backward(torch.tensor(dy))
        np.testing.assert_allclose(dx, xt.grad.numpy(), **TOL)
    return y, dy


ELEMENTWISE = [
    ("relu", torch.relu),
    ("relu6", F.relu6),
    ("sigmoid", torch.sigmoid),
    # torch's hardsigmoid backward multiplies by 1/6 rounded to float32; the same function
    # written with clamp keeps float64 throughout
    ("hard_sigmoid", lambda t: torch.clamp(t / 6 + 0.5, 0, 1)),
    ("tanh", torch.tanh),
    ("elu", F.elu),
    ("selu", F.selu),
    ("gelu", F.gelu),
    ("softplus", F.softplus),
    ("softsign", F.softsign),
    ("swish", F.silu),
    ("silu", F.silu),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.2)),
    ("exponential", torch.exp),
    ("softmax", lambda t: torch.softmax(t, -1)),
    ("log_softmax", lambda t: torch.log_softmax(t, -1)),
]


@pytest.mark.parametrize(("name", "fn"), ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_activation_names_match_torch(name, fn, rng):
    x = rng.standard_normal((4, 3, 6)) * 4
    for kink in (0.0, 6.0, -3.0, 3.0):
        x = np.where(np.abs(x - kink) < 1e-3, kink + 0.25, x)
    check_against(ln.Activation(name, **F64), x, fn, rng=rng)


@given(slope=st.floats(0, 3), alpha=st.floats(0.1, 3), seed=st.integers(0, 999))
def test_activation_layers_match_torch(slope, alpha, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 5, 2)) * 3
    check_against(ln.LeakyReLU(slope, **F64), x, lambda t: F.leaky_relu(t, slope), rng=rng)
    check_against(ln.ELU(alpha, **F64), x, lambda t: F.elu(t, alpha), rng=rng)
    check_against(ln.GELU(**F64), x, F.gelu, rng=rng)
    check_against(ln.GELU(True, **F64), x, lambda t: F.gelu(t, approximate="tanh"), rng=rng)
    check_against(ln.Softplus(**F64), x, F.softplus, rng=rng)


@given(axis=st.sampled_from([-1, 1, 2, -2]), seed=st.integers(0, 999))
def test_softmax_axis_matches_torch(axis, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 4)) * 20
    check_against(ln.Softmax(axis, **F64), x, lambda t: torch.softmax(t, axis), rng=rng)


# ----------------------------------------------------------------------- transposed conv
def torch_conv_transpose(rank):
    return {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[rank]


def crop_or_extend(full: np.ndarray, crop, out) -> np.ndarray:
    """Take ``out`` entries from ``crop`` on along each spatial axis, zeros past the end."""
    y = np.zeros((full.shape[0], *out, full.shape[-1]))
    src = tuple(slice(c, min(c + o, n)) for c, o, n in zip(crop, out, full.shape[1:-1]))
    dst = tuple(slice(0, s.stop - s.start) for s in src)
    y[(slice(None), *dst)] = full[(slice(None), *src)]
    return y


def keras_crop(k, s, d, padding, op):
    """Keras's (TensorFlow/JAX) placement of the output within the full transposed output."""
    ext = d * (k - 1) + 1
    if padding == "valid":
        return 0
    pad_len = s + ext - 2 if op is None else ext + ext % 2 - 2 + op
    return ext - 1 - min(pad_len // 2 + pad_len % 2, ext - 1)


@st.composite
def transpose_cases(draw):
    rank = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4 if rank < 3 else 2)) for _ in range(rank))
    s = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    padding = draw(st.sampled_from(["valid", "same"]))
    op = draw(st.one_of(st.none(), st.tuples(*[st.integers(0, si - 1) for si in s])))
    spatial = tuple(draw(st.integers(1, 5 if rank < 3 else 2)) for _ in range(rank))
    shape = (draw(st.integers(1, 3)), *spatial, draw(st.integers(1, 3)))
    return rank, k, s, d, padding, op, shape, draw(st.integers(1, 3))


@given(transpose_cases(), st.integers(0, 999))
def test_conv_transpose_matches_torch(case, seed):
    """Torch computes the full transposed output; Keras's crop/extension is applied to it."""
    rank, k, s, d, padding, op, shape, filters = case
    layer = ln.ConvTranspose(
        filters, k, strides=s, padding=padding, output_padding=op, dilation_rate=d, seed=seed, **F64
    )
    try:
        out_shape = layer.output_shape(shape)
    except ValueError:
        return  # an empty output; covered by the error tests
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = layer.forward(x)
    assert y.shape == (shape[0], *out_shape[1:])
    dy = rng.standard_normal(y.shape)
    dx = layer.backward_input(dy)
    grads = layer.backward_params(dy)

    w = layer.params["kernel"]  # (*k, filters, in)
    wt = torch.tensor(
        np.ascontiguousarray(w.transpose(rank + 1, rank, *range(rank))), requires_grad=True
    )
    bt = torch.tensor(layer.params["bias"], requires_grad=True)
    xt = to_torch_layout(x)
    full_t = torch_conv_transpose(rank)(xt, wt, None, stride=s, dilation=d)
    crop = [
        keras_crop(ki, si, di, padding, None if op is None else op[i])
        for i, (ki, si, di) in enumerate(zip(k, s, d))
    ]
    # the crop and zero-extension as a differentiable torch op: pad, then slice
    full_np_shape = full_t.shape[2:]
    pads = []
    for c, o, n in zip(crop, y.shape[1:-1], full_np_shape):
        pads.append((0, max(c + o - n, 0)))
    flat = [p for pair in reversed(pads) for p in pair]
    padded = F.pad(full_t, flat) if any(flat) else full_t
    index = (slice(None), slice(None), *(slice(c, c + o) for c, o in zip(crop, y.shape[1:-1])))
    yt = padded[index] + bt.reshape(1, -1, *(1,) * rank)
    np.testing.assert_allclose(y, from_torch_layout(yt), **TOL)
    yt.backward(to_torch_layout(dy).detach())
    np.testing.assert_allclose(dx, from_torch_layout(xt.grad), **TOL)
    np.testing.assert_allclose(
        grads["kernel"], wt.grad.numpy().transpose(*range(2, rank + 2), 1, 0), **TOL
    )
    np.testing.assert_allclose(grads["bias"], bt.grad.numpy(), **TOL)


@pytest.mark.parametrize(("k", "s", "op"), [(3, 2, 1), (2, 3, 2), (4, 2, None), (1, 3, None)])
def test_conv_transpose_valid_is_torch_output_padding(k, s, op, rng):
    """'valid' is torch's conv_transpose with padding 0 and output_padding p (max(k,s)-k)."""
    x = rng.standard_normal((2, 5, 3))
    layer = ln.Conv1DTranspose(2, k, strides=s, output_padding=op, seed=1, **F64)
    p = max(k, s) - k if op is None else op
    layer.build(x.shape)
    wt = torch.tensor(layer.params["kernel"].transpose(2, 1, 0).copy())
    bt = torch.tensor(layer.params["bias"])
    check_against(
        layer,
        x,
        lambda t: F.conv_transpose1d(t, wt, bt, stride=s, output_padding=p),
        channels_first=True,
        rng=rng,
    )


# ------------------------------------------------------------------------------ pooling
@given(rank=st.integers(1, 3), keepdims=st.booleans(), seed=st.integers(0, 999))
def test_global_pooling_matches_torch(rank, keepdims, seed):
    rng = np.random.default_rng(seed)
    shape = (2, *rng.integers(1, 4, rank), 3)
    x = rng.permutation(np.arange(np.prod(shape)) * 0.1).reshape(shape)  # distinct: no ties
    dims = tuple(range(2, rank + 2))

    def ref(reduce):
        def fn(t):
            r = reduce(t, dims)
            return r if keepdims else r.reshape(r.shape[0], r.shape[1])

        return fn

    avg = {1: ln.GlobalAveragePooling1D, 2: ln.GlobalAveragePooling2D, 3: ln.GlobalAveragePooling3D}
    mx = {1: ln.GlobalMaxPooling1D, 2: ln.GlobalMaxPooling2D, 3: ln.GlobalMaxPooling3D}
    mean = ref(lambda t, a: t.mean(dim=a, keepdim=True))
    amax = ref(lambda t, a: t.amax(dim=a, keepdim=True))
    if keepdims:
        check_against(avg[rank](keepdims=True, **F64), x, mean, channels_first=True, rng=rng)
        check_against(mx[rank](keepdims=True, **F64), x, amax, channels_first=True, rng=rng)
    else:
        for cls, fn in ((avg[rank], mean), (mx[rank], amax)):
            layer = cls(**F64)
            y = layer.forward(x)
            xt = to_torch_layout(x)
            yt = fn(xt)
            np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
            dy = rng.standard_normal(y.shape)
            yt.backward(torch.tensor(dy))
            np.testing.assert_allclose(layer.backward_input(dy), from_torch_layout(xt.grad), **TOL)


@given(
    k=st.tuples(*[st.integers(1, 3)] * 3),
    s=st.tuples(*[st.integers(1, 2)] * 3),
    use_max=st.booleans(),
    seed=st.integers(0, 999),
)
def test_pool3d_matches_torch(k, s, use_max, seed):
    rng = np.random.default_rng(seed)
    shape = (2, *(ki + int(rng.integers(0, 3)) for ki in k), 2)
    x = rng.permutation(np.arange(np.prod(shape)) * 0.1).reshape(shape)
    cls = ln.MaxPooling3D if use_max else ln.AveragePooling3D
    fn = F.max_pool3d if use_max else F.avg_pool3d
    check_against(
        cls(k, strides=s, **F64), x, lambda t: fn(t, k, stride=s), channels_first=True, rng=rng
    )


# ------------------------------------------------------------------------ rearrangements
@given(rank=st.integers(1, 3), seed=st.integers(0, 999))
def test_upsampling_matches_torch(rank, seed):
    rng = np.random.default_rng(seed)
    size = tuple(int(v) for v in rng.integers(1, 4, rank))
    x = rng.standard_normal((2, *rng.integers(1, 4, rank), 3))
    cls = {1: ln.UpSampling1D, 2: ln.UpSampling2D, 3: ln.UpSampling3D}[rank]
    layer = cls(size[0] if rank == 1 else size, **F64)
    check_against(
        layer,
        x,
        lambda t: F.interpolate(t, scale_factor=size, mode="nearest"),
        channels_first=True,
        rng=rng,
    )


@given(rank=st.integers(1, 3), seed=st.integers(0, 999))
def test_zero_padding_matches_torch(rank, seed):
    rng = np.random.default_rng(seed)
    pads = tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2)))
    x = rng.standard_normal((2, *rng.integers(1, 4, rank), 3))
    cls = {1: ln.ZeroPadding1D, 2: ln.ZeroPadding2D, 3: ln.ZeroPadding3D}[rank]
    layer = cls(pads[0] if rank == 1 else pads, **F64)
    flat = [p for pair in reversed(pads) for p in pair]
    check_against(layer, x, lambda t: F.pad(t, flat), channels_first=True, rng=rng)


def test_reshape_matches_torch(rng):
    x = rng.standard_normal((3, 4, 6))
    check_against(ln.Reshape((2, -1, 3), **F64), x, lambda t: t.reshape(3, 2, -1, 3), rng=rng)
