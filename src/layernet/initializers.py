r"""Weight initialisers with Keras's names and Keras's distributions.

A layer's ``kernel_initializer`` / ``bias_initializer`` is a name (``"he_normal"``),
an initialiser object (``Constant(0.1)``), or the ``{"class_name": ..., "config": ...}``
dict that :func:`serialize` writes into model files. Every initialiser maps
``(shape, fan_in, fan_out, rng, dtype)`` to a new array. For a kernel of shape
``(*kernel_size, a, b)`` the fans are Keras's: :math:`n_\text{in} = \prod k_i \cdot a`
and :math:`n_\text{out} = \prod k_i \cdot b` (``(in_features, units)`` for ``Dense``).

* ``"glorot_uniform"`` (:class:`GlorotUniform`, the default kernel initialiser):
  :math:`U(\pm\sqrt{6/(n_\text{in}+n_\text{out})})`;
* ``"glorot_normal"`` (:class:`GlorotNormal`): :math:`\mathcal T(0, 2/(n_\text{in}+n_\text{out}))`;
* ``"he_uniform"`` (:class:`HeUniform`): :math:`U(\pm\sqrt{6/n_\text{in}})`;
* ``"he_normal"`` (:class:`HeNormal`): :math:`\mathcal T(0, 2/n_\text{in})`;
* ``"lecun_uniform"`` (:class:`LecunUniform`): :math:`U(\pm\sqrt{3/n_\text{in}})`;
* ``"lecun_normal"`` (:class:`LecunNormal`): :math:`\mathcal T(0, 1/n_\text{in})`;
* ``"torch_uniform"`` (:class:`TorchUniform`): :math:`U(\pm\sqrt{1/n_\text{in}})`, PyTorch's
  default (not a Keras name);
* ``"zeros"`` (:class:`Zeros`, the default bias initialiser), ``"ones"`` (:class:`Ones`),
  ``"constant"`` (:class:`Constant`, ``value=0``);
* ``"random_uniform"`` (:class:`RandomUniform`): :math:`U(-0.05, 0.05)` by default;
* ``"random_normal"`` (:class:`RandomNormal`): :math:`\mathcal N(0, 0.05^2)` by default;
* ``"truncated_normal"`` (:class:`TruncatedNormal`): the same, redrawn outside 2 std. dev.;
* ``"orthogonal"`` (:class:`Orthogonal`): a random orthogonal matrix times ``gain``;
* ``"variance_scaling"`` (:class:`VarianceScaling`): Keras's general form of the first six;
* ``"identity"`` (:class:`Identity`): ``gain`` times the identity matrix.

Called as Keras calls them, ``init(shape, dtype=None)``, initialisers take Keras's
fans (:func:`compute_fans`); the random ones take Keras's ``seed`` (the same values
on every call, and in every layer built with the initialiser). A function
``f(shape, dtype=None)`` or an :class:`Initializer` subclass that overrides
``__call__(shape, dtype=None)`` is accepted wherever an initialiser is.

:math:`\mathcal T(0, v)` is a normal distribution truncated at two standard
deviations and rescaled so that its variance is :math:`v` (Keras's
``VarianceScaling(distribution="truncated_normal")``; the untruncated standard
deviation is :math:`\sqrt v / 0.87962566`). The Keras class names as strings
(``"GlorotUniform"``) are accepted too.

``"torch_uniform"`` for kernel and bias reproduces the initialisation of
PyTorch's ``Conv*d`` and ``Linear`` layers, :math:`U(\pm 1/\sqrt{n_\text{in}})`;
Keras's ``"lecun_uniform"`` is :math:`\sqrt 3` times wider.

Examples
--------
>>> import layernet as ln
>>> import numpy as np
>>> init = ln.initializers.get("lecun_uniform", "example", "kernel_initializer")
>>> w = init((1000, 10), 1000, 10, np.random.default_rng(0), np.dtype("float64"))
>>> bool(np.abs(w).max() <= np.sqrt(3 / 1000))
True
>>> ln.Dense(3, kernel_initializer=ln.initializers.Constant(0.5)).get_config()[
...     "kernel_initializer"]
{'class_name': 'Constant', 'config': {'value': 0.5}}
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ._sizes import check_array_bytes
from ._validation import missing_attribute

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "IdentityInitializer",
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "OrthogonalInitializer",
    "RandomNormal",
    "RandomUniform",
    "TorchUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "compute_fans",
    "constant",
    "deserialize",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "identity",
    "lecun_normal",
    "lecun_uniform",
    "ones",
    "orthogonal",
    "random_normal",
    "random_uniform",
    "serialize",
    "truncated_normal",
    "variance_scaling",
    "zeros",
]

#: Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


def _number(value: Any, arg: str, cls: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(
            f"{cls}: invalid value for `{arg}`: expected a number, received {value!r}."
        )
    if not math.isfinite(value) or (positive and value <= 0):
        what = "a positive finite number" if positive else "a finite number"
        raise ValueError(f"{cls}: invalid value for `{arg}`: expected {what}, received {value!r}.")
    return float(value)


def _truncated_normal(shape, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws redrawn until every one lies in [-2, 2]."""
    z = rng.standard_normal(shape)
    bad = np.abs(z) > 2
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2
    return z


# Bytes that initialisers may still allocate (see allocation_budget), or None for no limit.
_budget: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "layernet_allocation_budget", default=None
)


class AllocationRefused(MemoryError):
    """A layer asked for more memory than the active :func:`allocation_budget` allows."""


@contextlib.contextmanager
def allocation_budget(nbytes: int) -> Iterator[None]:
    """Refuse, inside the block, initialiser allocations beyond ``nbytes`` in total.

    Layers create their parameters and state through initialisers, so code that
    must bound memory (loading a model file) caps what building a layer may
    allocate. The check happens before anything is allocated, from the requested
    shape and dtype.
    """
    token = _budget.set([int(nbytes)])
    try:
        yield
    finally:
        _budget.reset(token)


def _charge(shape: Any, dtype: Any, who: str) -> None:
    left = _budget.get()
    if left is None:
        return
    need = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    if need > left[0]:
        raise AllocationRefused(
            f"{who}: an array of shape {tuple(shape)} ({need:,} bytes) exceeds the "
            f"{left[0]:,} bytes allowed here."
        )
    left[0] -= need


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    r"""Keras's fans of a weight of ``shape``: ``(fan_in, fan_out)``.

    ``(n,)``: both ``n``; ``(a, b)``: ``a`` and ``b``; a kernel ``(*k, a, b)``:
    :math:`\prod k_i \cdot a` and :math:`\prod k_i \cdot b`; a scalar: 1 and 1.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.initializers.compute_fans((3, 3, 16, 32))
    (144, 288)
    """
    shape = tuple(int(d) for d in shape)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return shape[-2] * field, shape[-1] * field


def _is_dtype(value: Any) -> bool:
    if isinstance(value, str | np.dtype) or (isinstance(value, type) and value is not int):
        try:
            np.dtype(value)
        except TypeError:
            return False
        return True
    return False


class Initializer:
    r"""Base class of initialisers: ``init(shape, dtype=None)`` returns a new array (Keras).

    Subclasses implement ``sample(shape, fan_in, fan_out, rng)``; ``get_config``
    returns the constructor arguments, so an initialiser round-trips through model
    files. A layer calls ``init(shape, fan_in, fan_out, rng, dtype)`` with its
    own fans and its seeded generator; called as Keras calls it,
    ``init(shape, dtype=None)``, the fans are Keras's (:func:`compute_fans`) and
    the generator is the initialiser's ``seed`` (the same values on every call)
    or, without one, the next one from :func:`layernet.set_seed`'s sequence.

    A subclass written the Keras way, overriding ``__call__(self, shape,
    dtype=None)``, works too: layers call it with the shape and dtype only.

    Examples
    --------
    >>> import layernet as ln
    >>> w = ln.initializers.GlorotUniform(seed=1)((3, 4))
    >>> w.shape, w.dtype.name
    ((3, 4), 'float32')
    >>> bool((w == ln.initializers.GlorotUniform(seed=1)((3, 4))).all())
    True
    """

    #: The Keras name (as a string argument) of the class's default instance.
    key: ClassVar[str] = ""
    #: The seed of a seeded initialiser (``None``: the caller's generator).
    seed: int | None = None

    def sample(self, shape: tuple[int, ...], fan_in: int, fan_out: int, rng) -> np.ndarray:
        """Draw the values: an array of ``shape`` (any float dtype; the call casts it).

        Parameters
        ----------
        shape : tuple of int
            Shape of the parameter.
        fan_in, fan_out : int
            The parameter's fans (see the module's description).
        rng : numpy.random.Generator
            The generator to draw from (the layer's seeded one).

        Returns
        -------
        ndarray
        """
        raise NotImplementedError

    def __call__(
        self,
        shape: Any,
        fan_in: Any = None,
        fan_out: int | None = None,
        rng: np.random.Generator | None = None,
        dtype: Any = None,
    ) -> np.ndarray:
        """A new array of ``shape``: ``init(shape, dtype=None)`` as Keras, or a layer's
        ``init(shape, fan_in, fan_out, rng, dtype)``.

        Parameters
        ----------
        shape : tuple of int
        fan_in, fan_out : int, optional
            The weight's fans; default Keras's (:func:`compute_fans`). A dtype in
            ``fan_in``'s place is read as ``dtype`` (Keras's ``init(shape, dtype)``).
        rng : numpy.random.Generator, optional
            The generator to draw from (a seeded initialiser uses its seed instead).
        dtype : dtype, optional
            Default float32.

        Returns
        -------
        ndarray
        """
        if fan_in is not None and fan_out is None and rng is None and _is_dtype(fan_in):
            fan_in, dtype = None, fan_in
        shape = _check_shape(shape, type(self).__name__)
        if fan_in is None or fan_out is None:
            fan_in, fan_out = compute_fans(shape)
        if self.seed is not None:
            rng = np.random.default_rng(self.seed)
        elif rng is None:
            from . import _random

            rng = _random.generator()
        dtype = np.dtype("float32" if dtype is None else dtype)
        _charge(shape, dtype, type(self).__name__)
        check_array_bytes(shape, dtype, "", "a parameter")
        return np.ascontiguousarray(self.sample(shape, fan_in, fan_out, rng), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON values) that rebuild this initialiser."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        """The initialiser that ``config`` (from :meth:`get_config`) describes."""
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(
            f"{k}={v!r}" for k, v in self.get_config().items() if not (k == "seed" and v is None)
        )
        return f"{type(self).__name__}({args})"


def _check_shape(shape: Any, owner: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        dims = ()
        ok = False
    else:
        ok = all(d >= 0 and d == d0 for d, d0 in zip(dims, shape, strict=True))
    if not ok:
        raise ValueError(
            f"{owner}: invalid value for `shape`: expected a tuple of non-negative ints, "
            f"received {shape!r}."
        )
    return dims


def _check_seed(seed: Any, owner: str) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(
            f"{owner}: invalid value for `seed`: expected a non-negative int or None, "
            f"received {seed!r}."
        )
    return int(seed)


class _VarianceScaling(Initializer):
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "uniform"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _check_seed(seed, type(self).__name__)

    def sample(self, shape, fan_in, fan_out, rng):
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            a = math.sqrt(3 * var)
            return rng.uniform(-a, a, shape)
        if self.distribution == "untruncated_normal":
            return rng.standard_normal(shape) * math.sqrt(var)
        return _truncated_normal(shape, rng) * (math.sqrt(var) / _TRUNCATED_STD)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class VarianceScaling(_VarianceScaling):
    r"""Keras's ``VarianceScaling``: variance :math:`s/n` with :math:`n` one of the fans.

    :math:`n` is :math:`n_\text{in}`, :math:`n_\text{out}` or their mean (``mode``);
    the values are :math:`U(\pm\sqrt{3 s / n})` (``"uniform"``), normal with
    standard deviation :math:`\sqrt{s/n}` (``"untruncated_normal"``), or that
    normal truncated at two standard deviations and rescaled to keep the variance
    (``"truncated_normal"``). Glorot, He and LeCun's initialisers are instances.

    Parameters
    ----------
    scale : float, default 1.0
        Positive.
    mode : {"fan_in", "fan_out", "fan_avg"}, default "fan_in"
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}, default "truncated_normal"
        ``"normal"`` is read as ``"truncated_normal"``, as Keras reads it.
    seed : int, optional
        The same values on every call.

    Raises
    ------
    ValueError
        A non-positive ``scale``, an unknown ``mode`` or ``distribution``, a bad ``seed``.

    Examples
    --------
    >>> import layernet as ln
    >>> init = ln.initializers.VarianceScaling(2.0, "fan_in", "uniform", seed=0)
    >>> bool(abs(init((2000, 10)).var() - 2.0 / 2000) < 1e-4)
    True
    """

    key = "variance_scaling"

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        self.scale = _number(scale, "scale", "VarianceScaling", positive=True)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(
                f"VarianceScaling: invalid value for `mode`: expected 'fan_in', 'fan_out' or "
                f"'fan_avg', received {mode!r}."
            )
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(
                f"VarianceScaling: invalid value for `distribution`: expected "
                f"'truncated_normal', 'untruncated_normal' or 'uniform', received "
                f"{distribution!r}."
            )
        self.mode = mode
        self.distribution = distribution

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


class GlorotUniform(_VarianceScaling):
    r""":math:`U(-a, a)`, :math:`a = \sqrt{6/(n_\text{in}+n_\text{out})}` (Glorot, Bengio 2010).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.GlorotUniform()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="glorot_uniform")   # the same, by name
    """

    key = "glorot_uniform"
    mode = "fan_avg"


class GlorotNormal(_VarianceScaling):
    r"""Truncated normal with variance :math:`2/(n_\text{in}+n_\text{out})`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.GlorotNormal()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="glorot_normal")   # the same, by name
    """

    key = "glorot_normal"
    mode = "fan_avg"
    distribution = "truncated_normal"


class HeUniform(_VarianceScaling):
    r""":math:`U(-a, a)`, :math:`a = \sqrt{6/n_\text{in}}` (He et al., 2015).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.HeUniform()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="he_uniform")   # the same, by name
    """

    key = "he_uniform"
    scale = 2.0


class HeNormal(_VarianceScaling):
    r"""Truncated normal with variance :math:`2/n_\text{in}` (He et al., 2015).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.HeNormal()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="he_normal")   # the same, by name
    """

    key = "he_normal"
    scale = 2.0
    distribution = "truncated_normal"


class LecunUniform(_VarianceScaling):
    r""":math:`U(-a, a)`, :math:`a = \sqrt{3/n_\text{in}}` (variance :math:`1/n_\text{in}`).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.LecunUniform()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="lecun_uniform")   # the same, by name
    """

    key = "lecun_uniform"


class LecunNormal(_VarianceScaling):
    r"""Truncated normal with variance :math:`1/n_\text{in}`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.LecunNormal()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="lecun_normal")   # the same, by name
    """

    key = "lecun_normal"
    distribution = "truncated_normal"


class TorchUniform(Initializer):
    r""":math:`U(-a, a)`, :math:`a = 1/\sqrt{n_\text{in}}`: PyTorch's default for
    the weights and biases of ``Conv*d`` and ``Linear`` (variance :math:`1/(3 n_\text{in})`).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.TorchUniform()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="torch_uniform")   # the same, by name
    """

    key = "torch_uniform"

    def __init__(self, seed: int | None = None) -> None:
        self.seed = _check_seed(seed, "TorchUniform")

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def sample(self, shape, fan_in, fan_out, rng):
        a = 1 / math.sqrt(max(1, fan_in))
        return rng.uniform(-a, a, shape)


class Zeros(Initializer):
    """All zeros (the default for biases).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.Zeros()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="zeros")   # the same, by name
    """

    key = "zeros"

    def sample(self, shape, fan_in, fan_out, rng):
        return np.zeros(shape)


class Ones(Initializer):
    """All ones.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.Ones()
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="ones")   # the same, by name
    """

    key = "ones"

    def sample(self, shape, fan_in, fan_out, rng):
        return np.ones(shape)


class Constant(Initializer):
    """Every entry equal to ``value`` (default 0).

    Parameters
    ----------
    value : float, default 0.0
        The value of every entry.

    Raises
    ------
    ValueError
        ``Constant: invalid value for `value`: expected a finite number, ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.Constant(0.5)
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="constant")   # by name: value 0
    """

    key = "constant"

    def __init__(self, value: float = 0.0) -> None:
        self.value = _number(value, "value", "Constant")

    def sample(self, shape, fan_in, fan_out, rng):
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class RandomUniform(Initializer):
    """Independent :math:`U(\\text{minval}, \\text{maxval})` entries (Keras's defaults ±0.05).

    Parameters
    ----------
    minval : float, default -0.05
        Lower bound.
    maxval : float, default 0.05
        Upper bound (at least ``minval``).

    Raises
    ------
    ValueError
        ``RandomUniform: invalid value for `minval`: ...`` (likewise
        ``maxval``), or ``expected minval <= maxval, ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.RandomUniform(-0.1, 0.1)
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="random_uniform")   # by name: defaults
    """

    key = "random_uniform"

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        self.seed = _check_seed(seed, "RandomUniform")
        self.minval = _number(minval, "minval", "RandomUniform")
        self.maxval = _number(maxval, "maxval", "RandomUniform")
        if self.maxval < self.minval:
            raise ValueError(
                f"RandomUniform: invalid values: expected minval <= maxval, received "
                f"minval={minval!r}, maxval={maxval!r}."
            )

    def sample(self, shape, fan_in, fan_out, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    r"""Independent :math:`\mathcal N(\text{mean}, \text{stddev}^2)` entries (default 0, 0.05).

    Parameters
    ----------
    mean : float, default 0.0
        Mean of the entries.
    stddev : float, default 0.05
        Standard deviation, positive.

    Raises
    ------
    ValueError
        ``RandomNormal: invalid value for `stddev`: ...`` (a finite positive
        number) or for ``mean``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.RandomNormal(0.0, 0.1)
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="random_normal")   # by name: defaults
    """

    key = "random_normal"

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        self.seed = _check_seed(seed, type(self).__name__)
        self.mean = _number(mean, "mean", type(self).__name__)
        self.stddev = _number(stddev, "stddev", type(self).__name__, positive=True)

    def sample(self, shape, fan_in, fan_out, rng):
        return self.mean + self.stddev * rng.standard_normal(shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    r""":math:`\mathcal N(\text{mean}, \text{stddev}^2)`, redrawn outside two std. deviations.

    Parameters
    ----------
    mean : float, default 0.0
        Mean of the untruncated normal.
    stddev : float, default 0.05
        Its standard deviation, positive.

    Raises
    ------
    ValueError
        ``TruncatedNormal: invalid value for `stddev`: ...`` (a finite positive
        number) or for ``mean``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.TruncatedNormal(0.0, 0.1)
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="truncated_normal")   # by name: defaults
    """

    key = "truncated_normal"

    def sample(self, shape, fan_in, fan_out, rng):
        return self.mean + self.stddev * _truncated_normal(shape, rng)


class Orthogonal(Initializer):
    """A random orthogonal matrix times ``gain``, on the array reshaped to
    ``(prod(shape[:-1]), shape[-1])`` (orthonormal rows or columns, whichever are fewer).

    Parameters
    ----------
    gain : float, default 1.0
        Factor applied to the orthogonal matrix.

    Raises
    ------
    ValueError
        ``Orthogonal: invalid value for `gain`: ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> init = ln.initializers.Orthogonal(1.0)
    >>> init((4, 3), 4, 3, np.random.default_rng(0), np.float64).shape
    (4, 3)
    >>> layer = ln.Dense(3, kernel_initializer="orthogonal")   # the same, by name
    """

    key = "orthogonal"

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        self.seed = _check_seed(seed, "Orthogonal")
        self.gain = _number(gain, "gain", "Orthogonal")

    def sample(self, shape, fan_in, fan_out, rng):
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        cols = shape[-1] if shape else 1
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # a uniform (Haar) draw, not QR's sign convention
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D weights only), Keras's ``Identity``.

    Parameters
    ----------
    gain : float, default 1.0

    Raises
    ------
    ValueError
        A shape that is not 2-D.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.initializers.Identity(2.0)((2, 3)).tolist()
    [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    """

    key = "identity"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _number(gain, "gain", "Identity")

    def sample(self, shape, fan_in, fan_out, rng):
        if len(shape) != 2:
            raise ValueError(
                f"Identity: expected a 2-D weight shape, received {shape!r}; the identity "
                f"initialiser makes matrices only."
            )
        return self.gain * np.eye(*shape)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


class _Callable(Initializer):
    """A Keras-style initialiser a user wrote (a function or a ``__call__(shape, dtype)``
    override), called with the shape and dtype only."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def __call__(self, shape, fan_in=None, fan_out=None, rng=None, dtype=None) -> np.ndarray:
        if fan_in is not None and fan_out is None and rng is None and _is_dtype(fan_in):
            dtype = fan_in
        dtype = np.dtype("float32" if dtype is None else dtype)
        shape = _check_shape(shape, "initializer")
        name = getattr(self.fn, "__name__", type(self.fn).__name__)
        out = np.asarray(self.fn(shape, dtype=dtype))
        if out.shape != shape:
            raise ValueError(
                f"initializer {name!r}: expected an array of shape {shape}, received shape "
                f"{out.shape}."
            )
        return np.ascontiguousarray(out, dtype=dtype)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Callable) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


_CLASSES: dict[str, type[Initializer]] = {
    c.__name__: c
    for c in (
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
        TorchUniform,
        Zeros,
        Ones,
        Constant,
        RandomUniform,
        RandomNormal,
        TruncatedNormal,
        Orthogonal,
        VarianceScaling,
        Identity,
    )
}
_CLASSES["IdentityInitializer"] = Identity
_CLASSES["OrthogonalInitializer"] = Orthogonal
#: Every accepted name, Keras's snake_case names first.
INITIALIZERS: dict[str, type[Initializer]] = {c.key: c for c in _CLASSES.values()}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get(spec: Any, owner: str = "initializers.get", arg: str = "identifier") -> Initializer:
    """Resolve a name, an :class:`Initializer` or a serialised dict to an initialiser.

    Parameters
    ----------
    spec : str, Initializer, callable or dict
        A Keras name (``"he_normal"``) or class name (``"HeNormal"``), an
        initialiser (returned as it is), a function ``f(shape, dtype=None)`` or an
        initialiser class, or ``{"class_name": ..., "config": ...}`` as
        :func:`serialize` writes it.
    owner : str, default "initializers.get"
        Who asks, for the error message (e.g. ``"Dense 'dense_1'"``).
    arg : str, default "identifier"
        The argument's name, for the error message. With neither, ``get(spec)`` is
        Keras's ``keras.initializers.get(identifier)``.

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        ``<owner>: invalid value for `<arg>`: expected one of [...] ...`` for
        anything else, or a serialised dict whose config the class refuses.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.initializers.get("he_normal", "example", "kernel_initializer")
    HeNormal()
    >>> ln.initializers.get({"class_name": "Constant", "config": {"value": 2.0}}, "x", "y")
    Constant(value=2.0)
    >>> ln.initializers.get("glorot_uniform")   # Keras's one-argument form
    GlorotUniform()
    """
    if isinstance(spec, Initializer):
        if type(spec).__call__ is not Initializer.__call__ and not isinstance(spec, _Callable):
            return _Callable(spec)  # written the Keras way: __call__(shape, dtype=None)
        return spec
    if callable(spec) and not isinstance(spec, type):
        return _Callable(spec)  # a function (shape, dtype=None) -> array, as Keras takes
    if isinstance(spec, type) and issubclass(spec, Initializer) and spec is not Initializer:
        return get(spec(), owner, arg)
    if isinstance(spec, str):
        cls = INITIALIZERS.get(spec) or INITIALIZERS.get(_snake(spec))
        if cls is not None:
            return cls()
    elif isinstance(spec, dict) and set(spec) == {"class_name", "config"}:
        cls = _CLASSES.get(spec["class_name"])
        if cls is not None and isinstance(spec["config"], dict):
            try:
                return cls(**spec["config"])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{owner}: invalid value for `{arg}`: {exc}") from None
    raise ValueError(
        f"{owner}: invalid value for `{arg}`: expected one of {sorted(INITIALIZERS)} or a "
        f"layernet.initializers.Initializer, received {spec!r}."
    )


def serialize(spec: str | Initializer | dict) -> str | dict[str, Any]:
    """What a layer's ``get_config`` stores: a name as it is, an object as a JSON-able dict.

    Parameters
    ----------
    spec : str, Initializer or dict
        What a layer was given as an initialiser.

    Returns
    -------
    str or dict
        The name unchanged, or ``{"class_name": ..., "config": ...}``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.initializers.serialize(ln.initializers.Constant(0.5))
    {'class_name': 'Constant', 'config': {'value': 0.5}}
    >>> ln.initializers.serialize("zeros")
    'zeros'
    """
    if isinstance(spec, Initializer):
        return {"class_name": type(spec).__name__, "config": spec.get_config()}
    return spec


def deserialize(config: Any, custom_objects: dict[str, Any] | None = None) -> Initializer:
    """The initialiser a name or ``{"class_name": ..., "config": ...}`` dict describes (Keras's).

    Parameters
    ----------
    config : str or dict
    custom_objects : dict, optional
        Classes of your own, by class name.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import layernet as ln
    >>> ln.initializers.deserialize({"class_name": "Identity", "config": {"gain": 2.0}})
    Identity(gain=2.0)
    """
    if isinstance(config, dict) and custom_objects and config.get("class_name") in custom_objects:
        return get(custom_objects[config["class_name"]](**config.get("config", {})))
    return get(config, "initializers.deserialize", "config")


# Keras's lowercase names of the classes (``keras.initializers.glorot_uniform(seed=1)``)
constant = Constant
glorot_normal = GlorotNormal
glorot_uniform = GlorotUniform
he_normal = HeNormal
he_uniform = HeUniform
identity = Identity
IdentityInitializer = Identity
lecun_normal = LecunNormal
lecun_uniform = LecunUniform
ones = Ones
orthogonal = Orthogonal
OrthogonalInitializer = Orthogonal
random_normal = RandomNormal
random_uniform = RandomUniform
truncated_normal = TruncatedNormal
variance_scaling = VarianceScaling
zeros = Zeros


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
