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
* ``"orthogonal"`` (:class:`Orthogonal`): a random orthogonal matrix times ``gain``.

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
    "Initializer",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TorchUniform",
    "TruncatedNormal",
    "Zeros",
    "get",
    "serialize",
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


class Initializer:
    r"""Base class: ``init(shape, fan_in, fan_out, rng, dtype)`` returns a new array.

    Subclasses implement ``sample``; ``get_config`` returns the
    constructor arguments, so an initialiser round-trips through model files.
    """

    #: The Keras name (as a string argument) of the class's default instance.
    key: ClassVar[str] = ""

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
        shape: tuple[int, ...],
        fan_in: int,
        fan_out: int,
        rng: np.random.Generator,
        dtype: Any,
    ) -> np.ndarray:
        _charge(shape, dtype, type(self).__name__)
        check_array_bytes(shape, dtype, "", "a parameter")
        return np.ascontiguousarray(self.sample(tuple(shape), fan_in, fan_out, rng), dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (JSON values) that rebuild this initialiser."""
        return {}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _VarianceScaling(Initializer):
    scale: ClassVar[float] = 1.0
    mode: ClassVar[str] = "fan_in"
    distribution: ClassVar[str] = "uniform"

    def sample(self, shape, fan_in, fan_out, rng):
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        if self.distribution == "uniform":
            a = math.sqrt(3 * var)
            return rng.uniform(-a, a, shape)
        return _truncated_normal(shape, rng) * (math.sqrt(var) / _TRUNCATED_STD)


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

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
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
        return {"minval": self.minval, "maxval": self.maxval}


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

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = _number(mean, "mean", type(self).__name__)
        self.stddev = _number(stddev, "stddev", type(self).__name__, positive=True)

    def sample(self, shape, fan_in, fan_out, rng):
        return self.mean + self.stddev * rng.standard_normal(shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev}


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

    def __init__(self, gain: float = 1.0) -> None:
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
        return {"gain": self.gain}


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
    )
}
#: Every accepted name, Keras's snake_case names first.
INITIALIZERS: dict[str, type[Initializer]] = {c.key: c for c in _CLASSES.values()}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get(spec: Any, owner: str = "initializers.get", arg: str = "identifier") -> Initializer:
    """Resolve a name, an :class:`Initializer` or a serialised dict to an initialiser.

    Parameters
    ----------
    spec : str, Initializer or dict
        A Keras name (``"he_normal"``) or class name (``"HeNormal"``), an
        initialiser (returned as it is), or ``{"class_name": ..., "config": ...}``
        as :func:`serialize` writes it.
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
        return spec
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


if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
