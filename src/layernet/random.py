r"""Random ops with Keras's names and signatures (``keras.random``).

``seed`` is an int (the same draw every time: a stateless call), a
:class:`SeedGenerator` (a new draw each call, reproducible from its seed), or
``None`` (drawn from the global seed, see :func:`layernet.set_seed`).

Examples
--------
>>> import layernet as ln
>>> a = ln.random.normal((2,), seed=1)
>>> b = ln.random.normal((2,), seed=1)
>>> bool((a == b).all())
True
>>> gen = ln.random.SeedGenerator(3)
>>> bool((ln.random.uniform((2,), seed=gen) == ln.random.uniform((2,), seed=gen)).all())
False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _random
from .ops import numpy as onp
from .ops.tensor import unwrap
from .variables import Variable


class SeedGenerator:
    """A seed and a counter: each ``next()`` gives a new, reproducible generator.

    Held by a layer (as an attribute), its state (seed, counter) is saved with the
    layer's ``state``, so a model file restores the random stream.

    Parameters
    ----------
    seed : int, optional
        The seed; ``None`` draws one from the global seed.
    name : str, default "seed_generator"

    Examples
    --------
    >>> import layernet as ln
    >>> g = ln.random.SeedGenerator(0)
    >>> g.state.numpy()
    array([0., 0.])
    >>> _ = g.next(); g.state.numpy()
    array([0., 1.])
    """

    def __init__(self, seed: int | None = None, name: str | None = None, **kwargs: Any) -> None:
        if seed is None:
            seed = int(_random.generator(None).integers(0, 2**31 - 1))
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(
                f"SeedGenerator: invalid value for `seed`: expected a non-negative int or None, "
                f"received {seed!r}."
            )
        self.name = name or "seed_generator"
        # float64 holds ints exactly up to 2**53; model files store float arrays.
        self.state = Variable(
            np.array([float(seed), 0.0]), trainable=False, name="seed_generator_state"
        )

    def next(self) -> np.random.Generator:
        """A generator for the next draw (advances the counter)."""
        seed, count = (int(v) for v in self.state.numpy())
        self.state.assign_add([0.0, 1.0])
        return np.random.default_rng([seed, count])

    def get_config(self) -> dict[str, Any]:
        return {"seed": int(self.state.numpy()[0]), "name": self.name}


def _rng(seed: Any, fn: str) -> np.random.Generator:
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        return _random.generator(None)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(
            f"random.{fn}: invalid value for `seed`: expected a non-negative int, a "
            f"SeedGenerator or None, received {seed!r}."
        )
    return np.random.default_rng(int(seed))


def _float(dtype: Any) -> np.dtype:
    from . import backend

    return np.dtype(backend.floatx() if dtype is None else dtype)


def normal(
    shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None
) -> np.ndarray:
    """Draws from :math:`\\mathcal N(\\text{mean}, \\text{stddev}^2)`."""
    return _rng(seed, "normal").normal(mean, stddev, tuple(shape)).astype(_float(dtype))


def uniform(
    shape: Any, minval: float = 0.0, maxval: float = 1.0, dtype: Any = None, seed: Any = None
) -> np.ndarray:
    """Draws from the uniform distribution on ``[minval, maxval)``."""
    return _rng(seed, "uniform").uniform(minval, maxval, tuple(shape)).astype(_float(dtype))


def randint(
    shape: Any, minval: int, maxval: int, dtype: Any = "int32", seed: Any = None
) -> np.ndarray:
    """Integers drawn uniformly from ``[minval, maxval)``."""
    return _rng(seed, "randint").integers(minval, maxval, tuple(shape)).astype(dtype)


def truncated_normal(
    shape: Any, mean: float = 0.0, stddev: float = 1.0, dtype: Any = None, seed: Any = None
) -> np.ndarray:
    """Normal draws, redrawn until within two standard deviations of the mean."""
    rng = _rng(seed, "truncated_normal")
    out = rng.standard_normal(tuple(shape))
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2
    return (mean + stddev * out).astype(_float(dtype))


def dropout(inputs: Any, rate: float, noise_shape: Any = None, seed: Any = None) -> Any:
    r"""Zero each entry with probability ``rate`` and scale the rest by :math:`1/(1-\text{rate})`.

    Differentiable in ``inputs``: :math:`\partial z/\partial x = G\odot m/(1-\text{rate})`
    with the same mask :math:`m` (a :func:`~layernet.ops.multiply`).
    """
    if not 0 <= rate < 1:
        raise ValueError(
            f"random.dropout: invalid value for `rate`: expected a number in [0, 1), "
            f"received {rate!r}."
        )
    value = np.asarray(unwrap(inputs))
    shape = (
        value.shape
        if noise_shape is None
        else tuple(n if n is not None else value.shape[i] for i, n in enumerate(noise_shape))
    )
    keep = _rng(seed, "dropout").uniform(size=shape) >= rate
    return onp.multiply(inputs, (keep / (1 - rate)).astype(value.dtype))


def shuffle(x: Any, axis: int = 0, seed: Any = None) -> Any:
    """``x`` with its entries permuted along ``axis`` (differentiable: an ``ops.take``)."""
    n = np.shape(np.asarray(unwrap(x)))[axis]
    return onp.take(x, _rng(seed, "shuffle").permutation(n), axis=axis)
