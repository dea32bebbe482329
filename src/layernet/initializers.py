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
* ``"zeros"``: all zeros (the default for biases).
"""

from __future__ import annotations

from collections.abc import Callable

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


INITIALIZERS: dict[str, Initializer] = {
    "he_normal": _he_normal,
    "he_uniform": _he_uniform,
    "glorot_normal": _glorot_normal,
    "glorot_uniform": _glorot_uniform,
    "lecun_uniform": _lecun_uniform,
    "orthogonal": _orthogonal,
    "zeros": _zeros,
}


def get(name: str, owner: str, arg: str) -> Initializer:
    """Look an initialiser up by name, with a clear error for unknown names."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected one of {sorted(INITIALIZERS)}, "
            f"received {name!r}."
        )
    return INITIALIZERS[name]
