r"""Weight initialisers, chosen by name.

Each initialiser maps ``(shape, fan_in, fan_out, rng, dtype)`` to an array.
For a kernel of shape ``(*kernel_size, in_channels, filters)`` the fans are
:math:`n_\text{in} = \prod k_i \cdot C_\text{in}` and
:math:`n_\text{out} = \prod k_i \cdot C_\text{out}`.

* ``"he_normal"``: :math:`\mathcal N(0, 2/n_\text{in})` (He et al., 2015);
* ``"he_uniform"``: :math:`U(-a, a)` with :math:`a = \sqrt{6/n_\text{in}}`;
* ``"glorot_normal"``: :math:`\mathcal N(0, 2/(n_\text{in}+n_\text{out}))`;
* ``"glorot_uniform"``: :math:`U(-a, a)` with :math:`a = \sqrt{6/(n_\text{in}+n_\text{out})}`
  (Glorot & Bengio, 2010; the default of ``Conv`` and ``Dense``);
* ``"lecun_uniform"``: :math:`U(-a, a)` with :math:`a = \sqrt{1/n_\text{in}}` (what
  PyTorch's convolution and linear layers use for weights and biases);
* ``"orthogonal"``: a matrix with orthonormal rows or columns (whichever are fewer),
  from the QR decomposition of a standard normal matrix with the signs of
  :math:`R`'s diagonal folded into :math:`Q` (Saxe et al., 2014; Keras's default for
  recurrent kernels); a shape with more than two axes is treated as
  ``(prod(shape[:-1]), shape[-1])``;
* ``"zeros"``: all zeros (the default for biases);
* ``"ones"``: all ones (BatchNorm's scale and running variance).

Layers create their parameters and state through :func:`get`, so that code
which must bound memory (loading a model file) can cap what building a layer
may allocate with :func:`allocation_budget`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator

import numpy as np

Initializer = Callable[[tuple[int, ...], int, int, np.random.Generator, np.dtype], np.ndarray]


def _he_normal(shape, fan_in, fan_out, rng, dtype):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def _he_uniform(shape, fan_in, fan_out, rng, dtype):
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, shape).astype(dtype)


def _glorot_normal(shape, fan_in, fan_out, rng, dtype):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def _glorot_uniform(shape, fan_in, fan_out, rng, dtype):
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape).astype(dtype)


def _lecun_uniform(shape, fan_in, fan_out, rng, dtype):
    a = np.sqrt(1.0 / fan_in)
    return rng.uniform(-a, a, shape).astype(dtype)


def _orthogonal(shape, fan_in, fan_out, rng, dtype):
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    cols = shape[-1] if shape else 1
    big, small = max(rows, cols), min(rows, cols)
    q, r = np.linalg.qr(rng.standard_normal((big, small)))
    q *= np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))
    if rows < cols:
        q = q.T
    return np.ascontiguousarray(q.reshape(shape), dtype=dtype)


def _zeros(shape, fan_in, fan_out, rng, dtype):
    return np.zeros(shape, dtype=dtype)


def _ones(shape, fan_in, fan_out, rng, dtype):
    return np.ones(shape, dtype=dtype)


INITIALIZERS: dict[str, Initializer] = {
    "he_normal": _he_normal,
    "he_uniform": _he_uniform,
    "glorot_normal": _glorot_normal,
    "glorot_uniform": _glorot_uniform,
    "lecun_uniform": _lecun_uniform,
    "orthogonal": _orthogonal,
    "zeros": _zeros,
    "ones": _ones,
}

# Bytes that initialisers may still allocate, or None for no limit.
_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "layernet_allocation_budget", default=None
)


class AllocationRefused(MemoryError):
    """A layer asked for more memory than the active :func:`allocation_budget` allows."""


@contextlib.contextmanager
def allocation_budget(nbytes: int) -> Iterator[None]:
    """Refuse, inside the block, initialiser allocations beyond ``nbytes`` in total.

    The check happens before anything is allocated, from the requested shape and dtype.
    """
    token = _budget.set([int(nbytes)])
    try:
        yield
    finally:
        _budget.reset(token)


def _budgeted(init: Initializer, owner: str) -> Initializer:
    def call(shape, fan_in, fan_out, rng, dtype):
        left = _budget.get()
        if left is not None:
            need = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
            if need > left[0]:
                raise AllocationRefused(
                    f"{owner}: an array of shape {tuple(shape)} ({need:,} bytes) exceeds the "
                    f"{left[0]:,} bytes allowed here."
                )
            left[0] -= need
        return init(shape, fan_in, fan_out, rng, dtype)

    return call


def get(name: str, owner: str, arg: str) -> Initializer:
    """Look an initialiser up by name, with a clear error for unknown names."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected one of {sorted(INITIALIZERS)}, "
            f"received {name!r}."
        )
    return _budgeted(INITIALIZERS[name], owner)
