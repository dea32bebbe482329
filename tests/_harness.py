"""The one harness every layer goes through.

``assert_layer_gradients`` checks, in float64 against central differences:
the layer alone (input, every parameter, explicit Jacobians, J^T g = backward),
the layer placed behind another layer with parameters, a non-uniform upstream
gradient (gradcheck's default), and that a non-contiguous input gives the same
results as its contiguous copy. A layer with several inputs takes a list and is
checked with respect to each input (each behind a layer of its own); a layer
with several outputs gets a non-uniform upstream gradient for each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import layernet as ln
from layernet.gradcheck import numerical_gradient, relative_error
from layernet.layers import Layer

TOL = 1e-6


def distinct_values(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values with no ties: a permutation of a grid with spacing 0.01 (>> eps)."""
    n = int(np.prod(shape))
    grid = (np.arange(n) - n / 2) * 0.01 + rng.uniform(0, 0.001)
    return rng.permutation(grid).reshape(shape)


def front_layer(shape: tuple[int, ...]) -> Layer:
    """A shape-preserving layer with parameters to put in front of the layer under test."""
    if len(shape) >= 3:
        return ln.Conv(shape[-1], (1,) * (len(shape) - 2), dtype="float64", seed=7)
    return ln.Dense(shape[-1], dtype="float64", seed=7)


def non_contiguous(x: np.ndarray) -> np.ndarray:
    """The same values as ``x`` in a strided, non-contiguous view."""
    big = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), dtype=x.dtype)
    big[..., ::2] = x
    view = big[..., ::2]
    assert not view.flags.c_contiguous or x.size <= 1
    return view


def record_kernel_shapes(mp: Any, module: Any, name: str) -> list[tuple[int, ...]]:
    """Wrap ``module.name(dy2, w, ...)`` (a convolution path) to record ``w.shape`` per call."""
    calls: list[tuple[int, ...]] = []
    original = getattr(module, name)

    def recording(dy2: Any, w: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        calls.append(w.shape)
        return original(dy2, w, *args, **kwargs)

    mp.setattr(module, name, recording)
    return calls


def fresh_gradients(layer: Layer, x: np.ndarray, dy: np.ndarray) -> tuple[Any, Any, Any]:
    """``(y, ∂z/∂x, {name: ∂z/∂θ})`` of one training forward pass, the grads zeroed first."""
    layer.zero_grad()
    y = layer.forward(x, training=True)
    return y, layer.backward_input(dy), layer.backward_params(dy)


def torch_conv_input_grad(
    torch: Any, kernel: np.ndarray, x: np.ndarray, dy: np.ndarray, strides: Any, dilation: Any
) -> np.ndarray:
    """PyTorch autograd's ``∂z/∂x`` of an unpadded convolution, channels last like layernet's
    (``kernel`` in layernet's ``(*k, C, F)`` layout, ``x`` and ``dy`` channels last)."""
    rank = x.ndim - 2
    conv = (torch.nn.functional.conv1d, torch.nn.functional.conv2d, torch.nn.functional.conv3d)
    perm = (0, rank + 1, *range(1, rank + 1))
    xt = torch.tensor(x.transpose(perm).copy(), requires_grad=True)
    wt = torch.tensor(kernel.transpose(rank + 1, rank, *range(rank)).copy())
    yt = conv[rank - 1](xt, wt, stride=strides, dilation=dilation)
    yt.backward(torch.tensor(dy.transpose(perm).copy()))
    return xt.grad.numpy().transpose(0, *range(2, rank + 2), 1)


def _as_list(y: Any) -> list[np.ndarray]:
    return list(y) if isinstance(y, list | tuple) else [y]


def upstream_like(y: Any, seed: int = 3) -> Any:
    """A non-uniform upstream gradient for an output (a list of them for several outputs)."""
    rng = np.random.default_rng(seed)
    gs = [rng.uniform(0.5, 1.5, a.shape) * rng.choice([-1.0, 1.0], a.shape) for a in _as_list(y)]
    return gs if isinstance(y, list | tuple) else gs[0]


def assert_behind_front_layers(
    make_layer: Callable[[], Layer], xs: list[np.ndarray], options: dict | None = None
) -> None:
    r"""A layer with several inputs, each input coming out of a layer with parameters.

    :math:`z = \langle G, f(h_1(x_1), \dots, h_n(x_n))\rangle`; the backward pass
    written out by hand (as a graph of calls runs it) against central differences
    with respect to every ``x_i`` and every parameter of the ``h_i``.
    """
    options = options or {}
    fronts = [front_layer(x.shape) for x in xs]
    layer = make_layer()
    xs = [np.array(x) for x in xs]

    def z() -> float:
        y = layer.forward([h.forward(x) for h, x in zip(fronts, xs, strict=True)], **options)
        return float(sum(np.vdot(g, a) for g, a in zip(_as_list(gs), _as_list(y), strict=True)))

    gs = upstream_like(layer.forward([h.forward(x) for h, x in zip(fronts, xs, strict=True)],
                                     **options))  # fmt: skip
    z()
    dhs = layer.backward_input(gs)
    assert len(dhs) == len(xs)
    analytic = []
    for h, dh in zip(fronts, dhs, strict=True):
        analytic.append((h.backward_params(dh), h.backward_input(dh)))
    # As in gradcheck: a gradient that is exactly zero (a bias in front of a key under a
    # softmax) is judged against a thousandth of the largest gradient.
    every = [dx for _, dx in analytic] + [v for d, _ in analytic for v in d.values()]
    floor = 1e-3 * max(float(np.max(np.abs(a))) for a in every)
    for (dparams, dx), h, x in zip(analytic, fronts, xs, strict=True):
        err = relative_error(dx, numerical_gradient(z, x), floor)
        assert err < TOL, f"behind {h!r}: dz/dx of {layer!r}: {err:.2e}"
        for k, p in h.params.items():
            err = relative_error(dparams[k], numerical_gradient(z, p), floor)
            assert err < TOL, f"behind {h!r}: dz/d{k} of {layer!r}: {err:.2e}"


def assert_layer_gradients(
    make_layer: Callable[[], Layer],
    x: np.ndarray | list[np.ndarray],
    *,
    front: bool = True,
    options: dict | None = None,
) -> None:
    """Run every gradient check on a fresh float64 layer from ``make_layer``.

    ``x`` is a list for a layer with several inputs; ``options`` are per-call
    options of ``forward`` (masks, flags).
    """
    layer = make_layer()
    several = isinstance(x, list)
    shapes = [a.shape for a in x] if several else x.shape
    result = ln.gradcheck(layer, x, options=options)
    assert result.passed, f"{layer!r} on input {shapes}\n{result}"
    if not several and x.dtype.kind in "iu":
        # Integer ids (an Embedding) have no derivative: the table's gradient and
        # Jacobian are checked, and the layer is checked in front of another instead.
        assert any(k.startswith("jacobian_params") for k in result.errors)
        chain = [make_layer(), ln.Dense(2, dtype="float64", seed=7)]
        result = ln.gradcheck(chain, x, options=options)
        assert result.passed, f"{chain[0]!r} in front of {chain[1]!r}\n{result}"
        return
    assert any(k.startswith("jacobian_input") for k in result.errors)
    assert len([k for k in result.errors if k.startswith("dz/d ")]) == len(layer.params)
    if several:
        assert {f"dz/dx[{i}]" for i in range(len(x))} <= set(result.errors)

    if front and several:
        assert_behind_front_layers(make_layer, x, options)
    elif front:
        chain = [front_layer(x.shape), make_layer()]
        result = ln.gradcheck(chain, x, jacobians=False, options=options)
        assert result.passed, f"behind {chain[0]!r}: {chain[1]!r} on {x.shape}\n{result}"

    # Non-contiguous input: identical forward and backward.
    a, b = make_layer(), make_layer()
    opts = options or {}
    y1 = a.forward(x, **opts)
    y2 = b.forward([non_contiguous(t) for t in x] if several else non_contiguous(x), **opts)
    # BLAS may take another code path for strided data: equal up to rounding.
    close = {"rtol": 1e-12, "atol": 1e-14}
    for p, q in zip(_as_list(y1), _as_list(y2), strict=True):
        np.testing.assert_allclose(p, q, **close)
    g = upstream_like(y1)
    for p, q in zip(_as_list(a.backward_input(g)), _as_list(b.backward_input(g)), strict=True):
        np.testing.assert_allclose(p, q, **close)
    for k, v in a.backward_params(g).items():
        np.testing.assert_allclose(v, b.backward_params(g)[k], **close)
