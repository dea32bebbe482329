r"""Check any layer's derivatives against central finite differences.

:func:`gradcheck` compares, in float64,

* ``backward_input`` and ``backward_params`` of a layer, or of a chain of layers
  ending (optionally) in a loss, with central differences of the scalar
  :math:`z`;
* each layer's explicit ``jacobian_input`` and ``jacobian_params`` with
  column-by-column central differences of its forward pass, and with its
  backward rules (:math:`J^T\,\partial z/\partial\operatorname{vec}(Y)` must
  equal the backward result).

Without a loss, :math:`z = \langle G, Y\rangle = \sum G \odot Y` for a fixed
random, non-uniform upstream gradient :math:`G`, so
:math:`\partial z/\partial Y = G`.

The error reported for each check is the norm-wise relative error
:math:`\max|a - n| / \max(\max|a|, \max|n|)` between the analytic values
:math:`a` and the numerical ones :math:`n`; for the gradients of :math:`z` the
denominator is at least a thousandth of the largest gradient in the check, so
that a gradient that is exactly zero (a bias in front of a batch normalisation)
is judged by the rounding error of its finite differences, not divided by it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._validation import as_array
from .layers.base import MAX_JACOBIAN_ENTRIES, Layer
from .losses import Loss

__all__ = [
    "GradCheckResult",
    "gradcheck",
    "numerical_gradient",
    "numerical_jacobian",
    "relative_error",
]


def _flat_view(x: np.ndarray, fn: str) -> np.ndarray:
    if not (isinstance(x, np.ndarray) and x.flags.c_contiguous and x.flags.writeable):
        raise ValueError(f"{fn}: expected a writeable C-contiguous ndarray to perturb in place.")
    return x.reshape(-1)


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    r"""Central-difference gradient of ``f()`` with respect to the array ``x``, in place.

    Each entry of ``x`` is moved by :math:`\pm\varepsilon` and restored, so ``f``
    must read ``x`` (a parameter array or an input held by the caller).

    .. math:: \frac{\partial f}{\partial x_i} \approx \frac{f(x + \varepsilon e_i) -
        f(x - \varepsilon e_i)}{2\varepsilon}

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([1.0, 2.0])
    >>> np.round(numerical_gradient(lambda: float(np.sum(x ** 2)), x), 6)
    array([2., 4.])
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = _flat_view(x, "numerical_gradient")
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        g[i] = (up - down) / (2 * eps)
    return grad


def numerical_jacobian(f: Callable[[], np.ndarray], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    r"""Central-difference :math:`\partial\operatorname{vec}(f)/\partial\operatorname{vec}(x)^T`.

    Returns an array of shape ``(f().size, x.size)``; ``x`` is perturbed in place
    and restored, one column per entry.
    """
    flat = _flat_view(x, "numerical_jacobian")
    cols = []
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = np.array(f(), dtype=np.float64).ravel()
        flat[i] = old - eps
        down = np.array(f(), dtype=np.float64).ravel()
        flat[i] = old
        cols.append((up - down) / (2 * eps))
    if not cols:
        return np.zeros((np.asarray(f()).size, 0))
    return np.stack(cols, axis=1)


def relative_error(a: np.ndarray, n: np.ndarray, floor: float = 0.0) -> float:
    r"""Norm-wise relative error :math:`\max|a-n| / \max(\max|a|, \max|n|, \text{floor})`.

    0 when both are 0. ``floor`` keeps a gradient that is exactly zero (a bias in
    front of a batch normalisation) from turning finite-difference rounding into
    a relative error of 1.
    """
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ: {a.shape} and {n.shape}.")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)), np.max(np.abs(n)), floor)
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / scale)


@dataclass
class GradCheckResult:
    """What :func:`gradcheck` measured: one relative error per check.

    Attributes
    ----------
    errors : dict of str to float
        Check name to relative error, e.g. ``"dz/dx"``, ``"dz/d conv_1.W"``,
        ``"jacobian_input[conv_1]"``, ``"J^T g = backward_input[conv_1]"``.
    tol : float
        The tolerance that :attr:`passed` applies.
    """

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6

    @property
    def max_error(self) -> float:
        """The worst relative error over all checks."""
        return max(self.errors.values(), default=0.0)

    @property
    def worst(self) -> str | None:
        """Name of the check with the worst error."""
        return max(self.errors, key=self.errors.get) if self.errors else None

    @property
    def passed(self) -> bool:
        """Whether every error is at most :attr:`tol`."""
        return self.max_error <= self.tol

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=10)
        lines = [f"{'check':<{width}}  relative error"]
        lines += [f"{k:<{width}}  {v:.3e}" for k, v in self.errors.items()]
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"worst: {self.max_error:.3e} ({self.worst}); tol {self.tol:g}: {verdict}")
        return "\n".join(lines)


def gradcheck(
    layers: Layer | Sequence[Layer],
    x: np.ndarray,
    target: np.ndarray | None = None,
    *,
    dy: np.ndarray | None = None,
    eps: float = 1e-6,
    tol: float = 1e-6,
    jacobians: bool = True,
    training: bool = False,
    seed: int = 0,
    max_entries: int = MAX_JACOBIAN_ENTRIES,
) -> GradCheckResult:
    r"""Compare a layer's (or a chain's) derivatives with central differences.

    Parameters
    ----------
    layers : Layer or sequence of Layer
        One layer, or a chain applied left to right. If the last one is a
        :class:`~layernet.losses.Loss`, :math:`z` is that loss against ``target``.
        Every layer must use ``dtype="float64"``: finite differences in float32
        cannot resolve the errors that matter.
    x : ndarray
        The input of the first layer.
    target : ndarray, optional
        The loss target (required with a loss, refused without one).
    dy : ndarray, optional
        The upstream gradient :math:`G` when there is no loss; a seeded random,
        non-uniform array by default.
    eps : float, default 1e-6
        Finite-difference step.
    tol : float, default 1e-6
        Tolerance for :attr:`GradCheckResult.passed`.
    jacobians : bool, default True
        Also check every layer's explicit Jacobians (small inputs only). The
        Jacobians are those of the inference map (``training=False``).
    training : bool, default False
        Run the forward passes of the gradient checks in training mode (for
        layers such as :class:`~layernet.BatchNorm` whose training map differs).
    seed : int, default 0
        Seed of the default ``dy``.
    max_entries : int
        Passed to the Jacobian methods.

    Returns
    -------
    GradCheckResult
        Errors per check; the layers' accumulated ``grads`` are left as they were.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> rng = np.random.default_rng(0)
    >>> chain = [ln.Conv(2, 3, dtype="float64", seed=0), ln.ReLU(dtype="float64"),
    ...          ln.Flatten(dtype="float64"), ln.MSELoss(dtype="float64")]
    >>> x = rng.standard_normal((2, 10, 1))
    >>> result = ln.gradcheck(chain, x, rng.standard_normal((2, 16)))
    >>> result.passed, result.max_error < 1e-7
    (True, True)
    """
    chain = [layers] if isinstance(layers, Layer | Loss) else list(layers)
    if not chain or not all(isinstance(layer, Layer | Loss) for layer in chain):
        raise TypeError(
            f"gradcheck: expected a Layer or a non-empty sequence of Layers (optionally "
            f"ending in a Loss), received {layers!r}."
        )
    for layer in chain:
        if layer.dtype != np.float64:
            raise ValueError(
                f"gradcheck: {layer.owner} has dtype {layer.dtype.name}; expected float64 "
                f"(construct it with dtype='float64')."
            )
    loss = chain[-1] if isinstance(chain[-1], Loss) else None
    body = chain[:-1] if loss is not None else chain
    if any(isinstance(layer, Loss) for layer in body):
        raise ValueError("gradcheck: a Loss may only be the last element of the chain.")
    if loss is None and target is not None:
        raise ValueError("gradcheck: `target` given but the chain does not end in a Loss.")
    if loss is not None and target is None:
        raise ValueError(f"gradcheck: {loss.owner} needs `target`.")
    x = np.array(as_array(x, "gradcheck", "x"), dtype=np.float64)  # a private copy to perturb

    inputs: list[np.ndarray] = []

    def run(record: bool = False) -> np.ndarray:
        h = x
        for layer in body:
            if record:
                inputs.append(np.array(h))
            h = layer.forward(h, training=training)
        return h

    if not all(layer.built for layer in body):
        with np.errstate(all="ignore"):
            h = x
            for layer in body:  # build, in inference mode: no running statistic moves
                h = layer.forward(h)
    # accumulated gradients and state (running statistics) are put back at the end
    saved = [{k: g.copy() for k, g in layer.grads.items()} for layer in body]
    saved_state = [{k: s.copy() for k, s in layer.state.items()} for layer in body]
    out = run(record=True)
    if loss is None:
        g = (
            np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)
            * np.random.default_rng(seed + 1).choice([-1.0, 1.0], out.shape)
            if dy is None
            else np.asarray(dy, dtype=np.float64)
        )
        if g.shape != out.shape:
            raise ValueError(
                f"gradcheck: expected `dy` of shape {out.shape} (the chain's "
                f"output), got shape {g.shape}."
            )

        def z() -> float:
            return float(np.vdot(g, run()))
    else:

        def z() -> float:
            return loss.forward(run(), target)

    result = GradCheckResult(tol=tol)
    # Analytic pass: exactly what a model does, the chain run backwards.
    z()
    grad = loss.backward_input() if loss is not None else g
    upstream: list[np.ndarray] = [None] * len(body)  # type: ignore[list-item]
    analytic_params: dict[tuple[int, str], np.ndarray] = {}
    for i in range(len(body) - 1, -1, -1):
        upstream[i] = grad
        for k, v in body[i].backward_params(grad).items():
            analytic_params[(i, k)] = v
        grad = body[i].backward_input(grad)
    # Each gradient is compared relative to its own size, but never to less than a
    # thousandth of the largest gradient of z in this check.
    floor = 1e-3 * max(
        (float(np.max(np.abs(g))) for g in [grad, *analytic_params.values()] if g.size), default=0.0
    )
    result.errors["dz/dx"] = relative_error(grad, numerical_gradient(z, x, eps), floor)
    for i, layer in enumerate(body):
        for k, p in layer.params.items():
            num = numerical_gradient(z, p, eps)
            result.errors[f"dz/d {layer.name}.{k}"] = relative_error(
                analytic_params[(i, k)], num, floor
            )

    if jacobians:
        for i, layer in enumerate(body):
            xi = inputs[i]
            j_in = layer.jacobian_input(xi, max_entries=max_entries)
            num = numerical_jacobian(lambda layer=layer, xi=xi: layer.forward(xi), xi, eps)
            result.errors[f"jacobian_input[{layer.name}]"] = relative_error(j_in, num)
            layer.forward(xi)
            result.errors[f"J^T g = backward_input[{layer.name}]"] = relative_error(
                upstream[i].ravel() @ j_in, layer.backward_input(upstream[i]).ravel()
            )
            j_par = layer.jacobian_params(xi, max_entries=max_entries)
            for k, p in layer.params.items():
                num = numerical_jacobian(lambda layer=layer, xi=xi: layer.forward(xi), p, eps)
                result.errors[f"jacobian_params[{layer.name}.{k}]"] = relative_error(j_par[k], num)
            if layer.params:
                layer.forward(xi)
                back = layer.backward_params(upstream[i])
                for k in layer.params:
                    result.errors[f"J^T g = backward_params[{layer.name}.{k}]"] = relative_error(
                        upstream[i].ravel() @ j_par[k], back[k].ravel()
                    )
        if loss is not None:
            xl = np.array(run())
            j = loss.jacobian_input(xl, target)
            num = numerical_gradient(lambda: loss.forward(xl, target), xl, eps).reshape(1, -1)
            result.errors[f"jacobian_input[{loss.name}]"] = relative_error(j, num)

    for layer, grads, state in zip(body, saved, saved_state, strict=True):
        for k, g0 in grads.items():
            layer.grads[k][...] = g0
        for k, s0 in state.items():
            layer.state[k][...] = s0
    return result
