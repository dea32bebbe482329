"""Backend settings with Keras's names: the fuzz factor and the default float type.

Examples
--------
>>> import layernet as ln
>>> ln.backend.epsilon(), ln.backend.floatx()
(1e-07, 'float32')
"""

from __future__ import annotations

from ._validation import resolve_dtype

_EPSILON = 1e-7
_FLOATX = "float32"


def epsilon() -> float:
    """The fuzz factor used to keep logarithms and divisions finite (``1e-7``).

    Returns
    -------
    float
    """
    return _EPSILON


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by :func:`epsilon`.

    Parameters
    ----------
    value : float
        A positive number.

    Raises
    ------
    ValueError
        ``set_epsilon: invalid value for `value`: expected a positive number, ...``.
    """
    global _EPSILON
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(
            f"set_epsilon: invalid value for `value`: expected a positive number, "
            f"received {value!r}."
        )
    _EPSILON = float(value)


def floatx() -> str:
    """The default float dtype's name (``"float32"``).

    Returns
    -------
    str
    """
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float dtype of :mod:`layernet.ops` creation functions.

    Parameters
    ----------
    value : {"float32", "float64"}

    Raises
    ------
    ValueError
        For another dtype.
    """
    global _FLOATX
    _FLOATX = resolve_dtype(value, "set_floatx").name
