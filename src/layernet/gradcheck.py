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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from numpy.random import Generator

from ._ops import Workspace
from ._validation import (
    as_array,
    check_bool,
    check_int,
    check_number,
    check_positive_int,
)
from .layers.base import MAX_JACOBIAN_ENTRIES, Layer, flatten_layers, is_array_list
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


def _flat(values: Any) -> np.ndarray:
    """One float64 vector of an array or of a list of arrays (several inputs or outputs)."""
    if isinstance(values, list | tuple):
        parts = [np.asarray(v, dtype=np.float64).ravel() for v in values]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(values, dtype=np.float64).ravel()


def _copy(h: Any) -> Any:
    """A private copy of an array, or of each array of a list."""
    return [np.array(a) for a in h] if isinstance(h, list | tuple) else np.array(h)


def relative_error(a: np.ndarray, n: np.ndarray, floor: float = 0.0) -> float:
    r"""Norm-wise relative error :math:`\max|a-n| / \max(\max|a|, \max|n|, \text{floor})`.

    0 when both are 0; ``inf`` when either holds a NaN or an infinity (a
    non-finite value is never close to anything). ``floor`` keeps a gradient that
    is exactly zero (a bias in front of a batch normalisation) from turning
    finite-difference rounding into a relative error of 1.
    """
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ: {a.shape} and {n.shape}.")
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(n).all()):
        return math.inf
    scale = max(np.max(np.abs(a)), np.max(np.abs(n)), floor)
    if scale == 0:
        return 0.0
    return float(np.max(np.abs(a - n)) / scale)


@dataclass
class GradCheckResult:
    """What :func:`gradcheck` measured: one relative error per check.

    :func:`gradcheck` returns it; ``print(result)`` shows a table of the checks
    and the verdict. You rarely construct one yourself.

    Parameters
    ----------
    errors : dict of str to float, default {}
        Check name to relative error.
    tol : float, default 1e-6
        The tolerance that :attr:`passed` applies.

    Attributes
    ----------
    errors : dict of str to float
        Check name to relative error, e.g. ``"dz/dx"``, ``"dz/d conv_1.W"``,
        ``"jacobian_input[conv_1]"``, ``"J^T g = backward_input[conv_1]"``;
        ``inf`` for a check that met a non-finite number.
    problems : list of str
        Every non-finite value met, e.g. ``"NaN in analytic gradient of 'kernel'
        (dz/d dense_1.W)"``; any problem fails the check.
    tol : float
        The tolerance that :attr:`passed` applies.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.Dense(2, dtype="float64", seed=0, name="fc")
    >>> result = ln.gradcheck(layer, np.ones((3, 4)))
    >>> result.passed, result.max_error < 1e-8
    (True, True)
    >>> sorted(result.errors)[:2]
    ['J^T g = backward_input[fc]', 'J^T g = backward_params[fc.bias]']
    >>> ln.GradCheckResult({"dz/dx": 3e-4}, tol=1e-6).passed
    False
    """

    errors: dict[str, float] = field(default_factory=dict)
    tol: float = 1e-6
    problems: list[str] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        """The worst relative error over all checks (``inf`` if any is not finite)."""
        return max((e if e == e else math.inf for e in self.errors.values()), default=0.0)

    @property
    def worst(self) -> str | None:
        """Name of the check with the worst error."""
        if not self.errors:
            return None
        return max(self.errors, key=lambda k: self.errors[k] if self.errors[k] == self.errors[k]
                   else math.inf)  # fmt: skip

    @property
    def passed(self) -> bool:
        """Whether every value was finite and every error is at most :attr:`tol`."""
        return not self.problems and self.max_error <= self.tol

    def compare(self, check: str, analytic: Any, numerical: Any, what: str, floor=0.0) -> None:
        """Record the relative error of ``check``, or the non-finite values it met."""
        for kind, values in (("analytic", analytic), ("numerical", numerical)):
            self.require_finite(values, f"{kind} {what} ({check})")
        self.errors[check] = relative_error(analytic, numerical, floor)

    def require_finite(self, values: Any, what: str) -> bool:
        """Record a problem if ``values`` holds a NaN or an infinity; whether all were finite.

        ``values`` may be an array or a list of arrays (several outputs).
        """
        v = _flat(values)
        if np.isfinite(v).all():
            return True
        kind = "NaN" if np.isnan(v).any() else "inf"
        self.problems.append(f"{kind} in {what}")
        return False

    def __str__(self) -> str:
        width = max((len(k) for k in self.errors), default=10)
        lines = [f"{'check':<{width}}  relative error"]
        lines += [f"{k:<{width}}  {v:.3e}" for k, v in self.errors.items()]
        lines += [f"non-finite: {p}" for p in self.problems]
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"worst: {self.max_error:.3e} ({self.worst}); tol {self.tol:g}: {verdict}")
        return "\n".join(lines)


def gradcheck(
    layers: Layer | Loss | Sequence[Layer | Loss],
    x: np.ndarray | Sequence[np.ndarray],
    target: np.ndarray | None = None,
    *,
    dy: np.ndarray | Sequence[np.ndarray] | None = None,
    eps: float = 1e-6,
    tol: float = 1e-6,
    jacobians: bool = True,
    training: bool = False,
    seed: int = 0,
    max_entries: int = MAX_JACOBIAN_ENTRIES,
    options: dict[str, Any] | None = None,
) -> GradCheckResult:
    r"""Compare a layer's (or a chain's) derivatives with central differences.

    Parameters
    ----------
    layers : Layer or sequence of Layer
        One layer, or a chain applied left to right. If the last one is a
        :class:`~layernet.losses.Loss`, :math:`z` is that loss against ``target``.
        Every layer must use ``dtype="float64"``: finite differences in float32
        cannot resolve the errors that matter.
    x : ndarray or list of ndarray
        The input of the first layer; a list for a layer that takes several
        inputs (a merging or attention layer), which is then checked with
        respect to each (``dz/dx[0]``, ``dz/dx[1]``, ...).
    target : ndarray, optional
        The loss target (required with a loss, refused without one).
    dy : ndarray or list of ndarray, optional
        The upstream gradient :math:`G` when there is no loss; a seeded random,
        non-uniform array by default (a list of them, one per output, for a
        chain whose last layer has several outputs: then
        :math:`z = \sum_k \langle G_k, Y_k\rangle`).
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
    options : dict, optional
        Per-call options of the first layer (a mask, ``use_causal_mask``),
        passed to its ``forward`` and to its Jacobian methods as keyword
        arguments.

    Returns
    -------
    GradCheckResult
        Errors per check, and every non-finite value met (a NaN or an infinity
        in an output, the objective, an analytic or a numerical derivative fails
        the check). Every layer is left as it was, even when a check raises:
        parameters, ``state``, accumulated ``grads``, ``saved`` (and its
        scratch buffers) and random generators are put back.

    Raises
    ------
    TypeError
        ``gradcheck: expected a Layer or a non-empty sequence of Layers
        (optionally ending in a Loss), received ...``
    ValueError
        ``gradcheck: Conv 'conv_1' has dtype float32; expected float64
        (construct it with dtype='float64').``; a Loss that is not last;
        ``target`` given without a loss or missing with one; a ``dy`` whose
        shape is not the chain's output's; invalid ``eps`` (> 0), ``tol``
        (>= 0), ``max_entries``, ``seed``, ``jacobians`` or ``training``;
        inputs a layer refuses; a Jacobian above ``max_entries``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> chain = [ln.Conv(2, 3, dtype="float64", seed=0), ln.ReLU(dtype="float64"),
    ...          ln.Flatten(dtype="float64"), ln.MSELoss(dtype="float64")]
    >>> x = rng.standard_normal((2, 10, 1))
    >>> result = ln.gradcheck(chain, x, rng.standard_normal((2, 16)))
    >>> result.passed, result.max_error < 1e-7
    (True, True)
    """
    body, loss = _split_chain(layers, target)
    eps = check_number(eps, "eps", "gradcheck", low=0, low_open=True)
    tol = check_number(tol, "tol", "gradcheck", low=0)
    max_entries = check_positive_int(max_entries, "max_entries", "gradcheck")
    seed = check_int(seed, "seed", "gradcheck", minimum=0)
    jacobians = check_bool(jacobians, "jacobians", "gradcheck")
    training = check_bool(training, "training", "gradcheck")
    # A private copy to perturb (one per input for a layer that takes several).
    if is_array_list(x):
        x = [np.array(as_array(a, "gradcheck", f"x[{i}]"), dtype=np.float64) for i, a in
             enumerate(x)]  # fmt: skip
    else:
        x = as_array(x, "gradcheck", "x")
        # integer ids (an Embedding's input) stay integers: there is no derivative in them
        x = np.array(x, dtype=np.int64 if x.dtype.kind in "iub" else np.float64)
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"gradcheck: invalid value for `options`: expected a dict or None, "
                         f"received {options!r}.")  # fmt: skip
    options = dict(options or {})
    snapshot = _Snapshot(body, loss)
    try:
        _build(body, x, options)
        snapshot.take_values()
        result = GradCheckResult(tol=tol)
        # Non-finite numbers are reported in the result, not as floating-point warnings.
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            objective = _Objective(body, loss, x, target, dy, seed, training, result, options)
            upstream = _check_gradients(result, objective, eps)
            if jacobians:
                _check_jacobians(result, objective, upstream, eps, max_entries)
    finally:
        snapshot.restore()
    return result


# ------------------------------------------------------------------ the parts
def _split_chain(layers: Any, target: Any) -> tuple[list[Layer], Loss | None]:
    """Validate the chain and split it into its layers and its (optional) final loss."""
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
    return cast(list[Layer], body), loss


class _Snapshot:
    """Everything gradcheck may change in the layers, to put back in a ``finally``.

    Each layer gets a workspace of its own for the duration, so the buffers its
    ``saved`` state points into are not overwritten either.
    """

    def __init__(self, body: list[Layer], loss: Loss | None) -> None:
        self.body, self.loss = body, loss
        self.loss_saved = loss.saved if loss is not None else None
        self.saved = [(layer.saved, layer._y_shape) for layer in body]
        self.every = flatten_layers(body)  # inner layers of containers keep buffers too
        self.workspaces = [layer.workspace for layer in self.every]
        self.values: list[dict[str, Any]] = []
        self.generators = [
            {k: g.bit_generator.state for k, g in vars(layer).items() if isinstance(g, Generator)}
            for layer in self.every
        ]
        for layer in self.every:
            layer.workspace = Workspace()

    def take_values(self) -> None:
        """Copy the arrays (after building, which creates them)."""
        self.values = [
            {
                "params": {k: p.copy() for k, p in layer.params.items()},
                "state": {k: s.copy() for k, s in layer.state.items()},
                "grads": {k: g.copy() for k, g in layer.grads.items()},
            }
            for layer in self.body
        ]

    def restore(self) -> None:
        for layer, ws, gens in zip(self.every, self.workspaces, self.generators, strict=True):
            layer.workspace = ws
            for k, state in gens.items():
                getattr(layer, k).bit_generator.state = state
        for i, layer in enumerate(self.body):
            layer.saved, layer._y_shape = self.saved[i]
            if i < len(self.values):
                for group, arrays in self.values[i].items():
                    for k, a in arrays.items():
                        getattr(layer, group)[k][...] = a
        if self.loss is not None:
            self.loss.saved = self.loss_saved


def _build(body: list[Layer], x: Any, options: dict[str, Any]) -> None:
    """Build unbuilt layers with an inference pass (no running statistic moves)."""
    if not all(layer.built for layer in body):
        with np.errstate(all="ignore"):
            h = x
            for i, layer in enumerate(body):
                h = layer.forward(h, **(options if i == 0 else {}))


class _Objective:
    r"""The scalar :math:`z` of the chain: the loss, or :math:`\langle G, Y\rangle`."""

    def __init__(
        self,
        body: list[Layer],
        loss: Loss | None,
        x: Any,
        target: Any,
        dy: Any,
        seed: int,
        training: bool,
        result: GradCheckResult,
        options: dict[str, Any],
    ) -> None:
        self.body, self.loss, self.x, self.target, self.training = body, loss, x, target, training
        self.options = options
        self.inputs: list[Any] = []
        out = self.run(record=True)
        for layer, h in zip(body, [*self.inputs[1:], out], strict=True):
            result.require_finite(h, f"the output of {layer.owner}")
        if loss is None:
            outs = out if isinstance(out, list | tuple) else [out]
            if dy is None:
                gs = [
                    np.random.default_rng(seed + 2 * k).uniform(0.5, 1.5, o.shape)
                    * np.random.default_rng(seed + 2 * k + 1).choice([-1.0, 1.0], o.shape)
                    for k, o in enumerate(outs)
                ]
            else:
                dys = dy if isinstance(out, list | tuple) and isinstance(dy, list | tuple) else [dy]
                gs = [np.asarray(d, dtype=np.float64) for d in dys]
            if [g.shape for g in gs] != [o.shape for o in outs]:
                raise ValueError(
                    f"gradcheck: expected `dy` of shape {', '.join(str(o.shape) for o in outs)} "
                    f"(the chain's output), got shape {', '.join(str(g.shape) for g in gs)}."
                )
            self.g: Any = gs if isinstance(out, list | tuple) else gs[0]
        result.require_finite(self(), "the objective z")

    def run(self, record: bool = False) -> Any:
        h = self.x
        for i, layer in enumerate(self.body):
            if record:
                self.inputs.append(_copy(h))
            h = layer.forward(h, training=self.training, **(self.options if i == 0 else {}))
        return h

    def __call__(self) -> float:
        if self.loss is None:
            return float(np.vdot(_flat(self.g), _flat(self.run())))
        return self.loss.forward(self.run(), self.target)

    def upstream(self) -> Any:
        """:math:`\\partial z/\\partial Y` at the last call."""
        return self.loss.backward_input() if self.loss is not None else self.g


def _check_gradients(
    result: GradCheckResult, objective: _Objective, eps: float
) -> list[np.ndarray]:
    """The chain's backward pass against central differences of :math:`z`.

    Returns the upstream gradient each layer received (for the Jacobian checks).
    """
    body = objective.body
    objective()
    grad = objective.upstream()
    upstream: list[np.ndarray] = [grad] * len(body)
    analytic: dict[tuple[int, str], np.ndarray] = {}
    for i in range(len(body) - 1, -1, -1):  # exactly what a model does
        upstream[i] = grad
        for k, v in body[i].backward_params(grad).items():
            analytic[(i, k)] = v
        grad = body[i].backward_input(grad)
    # Each gradient is compared relative to its own size, but never to less than a
    # thousandth of the largest gradient of z in this check.
    grads = grad if isinstance(grad, list) else [grad]
    finite = [a for a in [*grads, *analytic.values()] if a.size and np.isfinite(a).all()]
    floor = 1e-3 * max((float(np.max(np.abs(a))) for a in finite), default=0.0)
    if isinstance(objective.x, list):  # several inputs: a check per input
        for j, (gj, xj) in enumerate(zip(grads, objective.x, strict=True)):
            result.compare(
                f"dz/dx[{j}]", gj, numerical_gradient(objective, xj, eps),
                f"gradient of input {j}", floor,
            )  # fmt: skip
    elif objective.x.dtype.kind == "f":  # (integer ids have no derivative)
        result.compare(
            "dz/dx", grad, numerical_gradient(objective, objective.x, eps),
            "gradient of the input", floor,
        )  # fmt: skip
    for i, layer in enumerate(body):
        for k, p in layer.params.items():
            result.compare(
                f"dz/d {layer.name}.{k}",
                analytic[(i, k)],
                numerical_gradient(objective, p, eps),
                f"gradient of {k!r}",
                floor,
            )
    return upstream


def _check_jacobians(
    result: GradCheckResult,
    objective: _Objective,
    upstream: list[np.ndarray],
    eps: float,
    max_entries: int,
) -> None:
    """Each layer's explicit Jacobians against finite differences and its backward rules."""
    for i, layer in enumerate(objective.body):
        xi, gi = objective.inputs[i], upstream[i]
        opts = objective.options if i == 0 else {}

        def fwd(layer: Layer = layer, xi: Any = xi, opts: dict = opts) -> np.ndarray:
            return _flat(layer.forward(xi, **opts))

        g_flat = _flat(gi)
        # integer ids (an Embedding's input): only the parameter Jacobians exist
        integer = not isinstance(xi, list) and np.asarray(xi).dtype.kind != "f"
        j_in = None if integer else layer.jacobian_input(xi, max_entries=max_entries, **opts)
        j_par = layer.jacobian_params(xi, max_entries=max_entries, **opts)
        # As for the gradients of z: an entry that is exactly zero (a key bias under a
        # softmax) is judged against a thousandth of the layer's largest derivative.
        every = [*([] if j_in is None else [_flat(j_in)]), *(_flat(v) for v in j_par.values())]
        finite = [a for a in every if a.size and np.isfinite(a).all()]
        floor = 1e-3 * max((float(np.max(np.abs(a))) for a in finite), default=0.0)
        ins = [] if j_in is None else (j_in if isinstance(j_in, list) else [j_in])
        products = [g_flat @ m for m in ins]
        products += [g_flat @ m for m in j_par.values()]
        finite = [a for a in products if a.size and np.isfinite(a).all()]
        g_floor = 1e-3 * max((float(np.max(np.abs(a))) for a in finite), default=0.0)
        if j_in is None:
            pass
        elif isinstance(xi, list):  # several inputs: one matrix per input
            layer.forward(xi, **opts)
            back_in = layer.backward_input(gi)
            for j, xj in enumerate(xi):
                result.compare(
                    f"jacobian_input[{layer.name}][{j}]", j_in[j],
                    numerical_jacobian(fwd, xj, eps), f"jacobian_input {j} of {layer.owner}",
                    floor,
                )  # fmt: skip
                result.compare(
                    f"J^T g = backward_input[{layer.name}][{j}]", g_flat @ j_in[j],
                    back_in[j].ravel(), f"backward_input {j} of {layer.owner}", g_floor,
                )  # fmt: skip
        else:
            result.compare(
                f"jacobian_input[{layer.name}]", j_in, numerical_jacobian(fwd, xi, eps),
                f"jacobian_input of {layer.owner}", floor,
            )  # fmt: skip
            layer.forward(xi, **opts)
            result.compare(
                f"J^T g = backward_input[{layer.name}]", g_flat @ j_in,
                layer.backward_input(gi).ravel(), f"backward_input of {layer.owner}", g_floor,
            )  # fmt: skip
        for k, p in layer.params.items():
            result.compare(
                f"jacobian_params[{layer.name}.{k}]", j_par[k], numerical_jacobian(fwd, p, eps),
                f"jacobian_params of {k!r}", floor,
            )  # fmt: skip
        if layer.params:
            layer.forward(xi, **opts)
            back = layer.backward_params(gi)
            for k in layer.params:
                result.compare(
                    f"J^T g = backward_params[{layer.name}.{k}]", g_flat @ j_par[k],
                    back[k].ravel(), f"backward_params of {k!r}", g_floor,
                )  # fmt: skip
    loss = objective.loss
    if loss is not None:
        xl = np.array(objective.run())
        target = objective.target
        result.compare(
            f"jacobian_input[{loss.name}]", loss.jacobian_input(xl, target),
            numerical_gradient(lambda: loss.forward(xl, target), xl, eps).reshape(1, -1),
            f"jacobian_input of {loss.owner}",
        )  # fmt: skip
