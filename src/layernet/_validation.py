"""Argument and array checks that build layernet's standard error messages.

Every message names who is complaining (a layer such as ``Conv 'conv_1'`` or a
function), the argument, what was expected and what was received.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


#: The dtype layers, losses and models use when none is given (``dtype=None`` included).
DEFAULT_DTYPE = np.dtype("float32")


def resolve_dtype(dtype: Any, owner: str) -> np.dtype:
    """Return ``float32`` or ``float64`` as a NumPy dtype, or raise a clear error.

    ``None`` means the default, float32 (NumPy alone would read it as float64).
    """
    if dtype is None:
        return DEFAULT_DTYPE
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in _FLOAT_DTYPES:
        raise ValueError(
            f"{owner}: invalid value for `dtype`: expected 'float32' or 'float64', "
            f"received {dtype!r}."
        )
    return dt


#: The dtypes an :class:`~layernet.Input` may declare: the layers' float dtypes, and
#: integer dtypes for inputs of integer ids (token ids for an embedding).
INPUT_DTYPES = ("float32", "float64", "int32", "int64")


def resolve_input_dtype(dtype: Any, owner: str) -> np.dtype | None:
    """The dtype of a model's inputs: ``float32``, ``float64``, ``int32`` or ``int64``.

    The rule for dtypes: layers compute in float32 or float64 (:func:`resolve_dtype`);
    inputs may also be integer ids, declared as ``int32`` or ``int64``. ``None``
    leaves the choice to the first layer. Anything else gets the standard message.
    """
    if dtype is None:
        return None
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in INPUT_DTYPES:
        raise ValueError(
            f"{owner}: invalid value for `dtype`: expected one of {list(INPUT_DTYPES)} "
            f"(floats for values, ints for integer ids) or None, received {dtype!r}."
        )
    return dt


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers, False for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def is_real(value: Any) -> bool:
    """True for Python and NumPy real numbers (ints and floats), False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def check_number(
    value: Any,
    arg: str,
    owner: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """``value`` as a float if it is a real number within the bounds, else a clear error.

    The one rule for numeric arguments: Python and NumPy ints and floats are
    accepted alike, bools and everything else refused; NaN is always refused and
    infinities too unless ``finite=False``. ``low``/``high`` are inclusive unless
    ``low_open``/``high_open``.
    """
    ok = is_real(value)
    v = float(value) if ok else math.nan
    ok = ok and not math.isnan(v) and (math.isfinite(v) or not finite)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected "
            f"{describe_range(low, high, low_open, high_open, finite)}, received {value!r}."
        )
    return v


def describe_range(
    low: float | None, high: float | None, low_open: bool, high_open: bool, finite: bool
) -> str:
    """Words for the numbers :func:`check_number` accepts, e.g. ``a finite number in [0, 1)``."""
    kind = "a finite number" if finite else "a number"
    if low is not None and high is not None:  # finite by its bounds
        return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind


def check_int(value: Any, arg: str, owner: str, *, minimum: int | None = None) -> int:
    """``value`` as an int if it is a Python or NumPy integer ``>= minimum``, else a clear error."""
    if not is_int(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected an int{bound}, received {value!r}."
        )
    return int(value)


def check_positive_int(value: Any, arg: str, owner: str) -> int:
    """``value`` as an int if it is a positive integer (bools refused), else a clear error."""
    if not is_int(value) or value < 1:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a positive int, received {value!r}."
        )
    return int(value)


def check_bool(value: Any, arg: str, owner: str) -> bool:
    """``value`` if it is a bool, else a clear error (no truthiness guessing)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a bool, received {value!r}."
        )
    return bool(value)


def int_tuple(
    value: Any,
    n: int | None,
    arg: str,
    owner: str,
    *,
    minimum: int = 1,
) -> tuple[int, ...]:
    """Normalise an int or a sequence of ints to a tuple of length ``n``.

    ``n=None`` keeps the length of a sequence (an int gives a 1-tuple). Every
    entry must be an integer ``>= minimum``.
    """
    what = "positive ints" if minimum == 1 else f"ints >= {minimum}"
    if is_int(value):
        out = (int(value),) * (1 if n is None else n)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if not all(is_int(v) for v in value) or len(value) == 0:
            raise ValueError(
                f"{owner}: invalid value for `{arg}`: expected an int or a tuple of {what}, "
                f"received {value!r}."
            )
        if n is not None and len(value) != n:
            raise ValueError(
                f"{owner}: invalid value for `{arg}`: expected {n} values (one per spatial "
                f"axis), received {len(value)}: {value!r}."
            )
        out = tuple(int(v) for v in value)
    else:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected an int or a tuple of {what}, "
            f"received {value!r}."
        )
    if any(v < minimum for v in out):
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected {what}, received {value!r}."
        )
    return out


def check_padding(value: Any, owner: str) -> str | int | tuple:
    """Validate a padding spec: ``"valid"``, ``"same"``, an int or a per-axis tuple.

    A per-axis tuple holds ints (symmetric) or ``(before, after)`` pairs. The
    spec is returned in a canonical form (strings lower-cased, lists as tuples);
    :func:`resolve_padding` turns it into per-axis pairs once the input shape is known.
    """
    msg = (
        f"{owner}: invalid value for `padding`: expected 'valid', 'same', a non-negative int, "
        f"or a tuple of non-negative ints or (before, after) pairs, received {value!r}."
    )
    if isinstance(value, str):
        if value.lower() not in ("valid", "same"):
            raise ValueError(msg)
        return value.lower()
    if is_int(value):
        if value < 0:
            raise ValueError(msg)
        return int(value)
    if isinstance(value, Sequence) and len(value) > 0:
        out: list[int | tuple[int, int]] = []
        for v in value:
            if is_int(v) and v >= 0:
                out.append(int(v))
            elif (
                isinstance(v, Sequence)
                and not isinstance(v, str)
                and len(v) == 2
                and all(is_int(p) and p >= 0 for p in v)
            ):
                out.append((int(v[0]), int(v[1])))
            else:
                raise ValueError(msg)
        return tuple(out)
    raise ValueError(msg)


def resolve_padding(
    padding: str | int | tuple,
    spatial: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    owner: str,
) -> tuple[tuple[int, int], ...]:
    """Per-axis ``(before, after)`` padding for inputs of spatial shape ``spatial``.

    ``window`` is the effective (dilated) window size. ``"same"`` follows
    TensorFlow: the output has ``ceil(n / stride)`` entries and any odd pad goes after.
    """
    rank = len(spatial)
    if padding == "valid":
        return ((0, 0),) * rank
    if padding == "same":
        pads = []
        for n, k, s in zip(spatial, window, strides, strict=True):
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if not isinstance(padding, tuple):
        return ((int(padding), int(padding)),) * rank
    if len(padding) != rank:
        raise ValueError(
            f"{owner}: invalid value for `padding`: expected {rank} entries (one per spatial "
            f"axis), received {padding!r}."
        )
    return tuple((int(p), int(p)) if is_int(p) else (int(p[0]), int(p[1])) for p in padding)


def as_array(x: Any, owner: str, arg: str = "input") -> np.ndarray:
    """Return ``x`` as a real numeric ndarray, refusing objects, strings and complex values.

    Masked arrays are refused too: layernet has no notion of a mask, and silently
    dropping one would compute with the hidden values.
    """
    if isinstance(x, np.ma.MaskedArray):
        raise TypeError(
            f"{owner}: expected `{arg}` to be a plain numeric array, received a masked "
            f"array of shape {x.shape}; fill the masked entries first (e.g. "
            f"`{arg}.filled(0)`) or drop them."
        )
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise TypeError(
                f"{owner}: expected `{arg}` to be a numeric array, received "
                f"{type(x).__name__} that NumPy cannot convert ({exc})."
            ) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{owner}: expected `{arg}` to be a real numeric array, received an array of "
            f"dtype {arr.dtype} and shape {arr.shape}."
        )
    return arr


def cast_checked(x: np.ndarray, dtype: np.dtype, owner: str, arg: str) -> np.ndarray:
    """``x`` cast to ``dtype`` (no copy when it already is), with non-finite values refused.

    Values that are finite in ``x`` but too large for ``dtype`` are reported as an
    overflow of the cast, not as non-finite input.
    """
    check_finite(x, owner, arg)
    with np.errstate(over="ignore", invalid="ignore"):
        out = x.astype(dtype, copy=False)
    if out is not x and out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{owner}: `{arg}` has {len(bad)} value(s) too large for {out.dtype.name} "
            f"(largest magnitude {np.finfo(out.dtype).max:.4g}): casting them overflows; the "
            f"first is {x[first].item()!r} at index {first}. Rescale the data or use "
            f"dtype='float64'."
        )
    return out


def check_finite(x: np.ndarray, owner: str, arg: str) -> None:
    """Raise if ``x`` holds NaN or infinity, saying where the first one is."""
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))
        raise ValueError(
            f"{owner}: `{arg}` contains {len(bad)} non-finite value(s) (NaN or inf); the first "
            f"is at index {tuple(int(i) for i in bad[0])}."
        )


def shape_str(shape: Sequence[int | None]) -> str:
    """Format a shape like ``(None, 40, 1)`` for messages."""
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def snake_case(name: str) -> str:
    """``"LeakyReLU"`` -> ``"leaky_relu"``: default instance names of user classes."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def check_data_format(value: Any, owner: str) -> str:
    """Accept Keras's ``data_format`` when it is channels-last (``None`` means that too).

    layernet's arrays are always ``(batch, *spatial, channels)``; ``"channels_first"``
    gets an error that says so and how to convert.
    """
    if value is None or value == "channels_last":
        return "channels_last"
    if value == "channels_first":
        raise ValueError(
            f"{owner}: invalid value for `data_format`: 'channels_first' is not supported; "
            f"layernet is channels-last, (batch, *spatial, channels). Move the channel axis "
            f"of your data last (np.moveaxis(x, 1, -1)) and pass 'channels_last' or None."
        )
    raise ValueError(
        f"{owner}: invalid value for `data_format`: expected 'channels_last' or None, "
        f"received {value!r}."
    )


def pair_tuple(value: Any, rank: int, arg: str, owner: str) -> tuple[tuple[int, int], ...]:
    """Keras-style per-axis ``(before, after)`` amounts: an int, one int per axis, or pairs.

    Every amount must be a non-negative int.
    """
    msg = (
        f"{owner}: invalid value for `{arg}`: expected a non-negative int, a tuple of {rank} "
        f"non-negative ints, or a tuple of {rank} (before, after) pairs, received {value!r}."
    )
    if is_int(value):
        if value < 0:
            raise ValueError(msg)
        return ((int(value), int(value)),) * rank
    if rank == 1 and isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 2 and all(is_int(v) and v >= 0 for v in value):
            return ((int(value[0]), int(value[1])),)
        raise ValueError(msg)
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != rank:
        raise ValueError(msg)
    out = []
    for v in value:
        if is_int(v) and v >= 0:
            out.append((int(v), int(v)))
        elif (
            isinstance(v, Sequence)
            and not isinstance(v, str)
            and len(v) == 2
            and all(is_int(p) and p >= 0 for p in v)
        ):
            out.append((int(v[0]), int(v[1])))
        else:
            raise ValueError(msg)
    return tuple(out)


def normalize_shape(input_shape: Any, owner: str) -> tuple[int | None, ...]:
    """A shape as a tuple of non-negative ints (``None`` allowed), or a clear error."""
    if (
        not isinstance(input_shape, Sequence)
        or isinstance(input_shape, str)
        or not all((s is None or (is_int(s) and s >= 0)) for s in input_shape)
    ):
        raise ValueError(
            f"{owner}: invalid value for `input_shape`: expected a tuple of "
            f"non-negative ints (None for the batch), received {input_shape!r}."
        )
    return tuple(None if s is None else int(s) for s in input_shape)


def check_initial_epoch(initial_epoch: Any, epochs: Any, fn: str = "fit") -> int:
    """``initial_epoch`` as an int if it is ``>= 0`` and below ``epochs``, else a clear error.

    ``epochs`` is the index of the last epoch plus one (Keras's convention), so
    ``fit(epochs=4, initial_epoch=4)`` would train nothing. Keras then returns
    without a word; layernet refuses it, since it is nearly always a resumed run
    that meant "4 more epochs". ``epochs=0`` with ``initial_epoch=0`` (a run of
    no epochs, asked for as such) stays allowed. ``epochs`` is assumed checked.

    Parameters
    ----------
    initial_epoch : int
        The epoch to start at.
    epochs : int
        The index of the last epoch plus one.
    fn : str, default "fit"
        The function named in the message.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        ``fit: invalid value for `initial_epoch`: expected an int >= 0, ...`` or
        ``fit: `initial_epoch`=4 is not below `epochs`=4, so no epoch would be
        trained: ...``.

    Examples
    --------
    >>> from layernet._validation import check_initial_epoch
    >>> check_initial_epoch(2, 4)
    2
    >>> try:
    ...     check_initial_epoch(4, 4)
    ... except ValueError as err:
    ...     print(str(err)[:68])
    fit: `initial_epoch`=4 is not below `epochs`=4, so no epoch would be
    """
    initial = check_int(initial_epoch, "initial_epoch", fn, minimum=0)
    if initial > 0 and initial >= epochs:
        raise ValueError(
            f"{fn}: `initial_epoch`={initial} is not below `epochs`={epochs}, so no epoch would "
            f"be trained: `epochs` is the index of the last epoch plus one (Keras's convention), "
            f"not a number of epochs to add; to train {max(epochs, 1)} more, pass "
            f"epochs={initial + max(epochs, 1)}."
        )
    return initial


def classes_of_output(output_shape: Sequence[int | None]) -> int | None:
    """How many classes a model with outputs of ``output_shape`` tells apart.

    The last axis's size (one score per class), or 2 when it is 1 (one logit or
    probability for a binary target); ``None`` when it is unknown.

    Examples
    --------
    >>> from layernet._validation import classes_of_output
    >>> classes_of_output((None, 10)), classes_of_output((None, 1))
    (10, 2)
    """
    last = output_shape[-1] if len(output_shape) else None
    if last is None:
        return None
    return 2 if last == 1 else int(last)


def check_class_weight(
    class_weight: Any, num_classes: int | None, fn: str = "fit"
) -> dict[int, float] | None:
    """``class_weight`` as ``{class: weight}`` if its keys are classes the loss can see and its
    weights finite and non-negative, else a clear error.

    Parameters
    ----------
    class_weight : dict of int to float or None
        Weights by class index (Python or NumPy ints, not bools); ``None`` passes.
    num_classes : int or None
        How many classes the model's output tells apart (see
        :func:`classes_of_output`); keys must lie in ``[0, num_classes)``.
        ``None``: only ``>= 0`` is checked.
    fn : str, default "fit"
        The function named in the message.

    Returns
    -------
    dict of int to float or None

    Raises
    ------
    ValueError
        ``fit: invalid value for `class_weight`: expected a dict of class index
        to weight, ...``; ``fit: `class_weight` has key 5, which is not a class
        the loss can see: the model's output has 3 classes (0 to 2).``;
        ``fit: `class_weight` gives class 1 the weight -2.0: expected a finite
        number >= 0.``

    Examples
    --------
    >>> from layernet._validation import check_class_weight
    >>> check_class_weight({0: 1, 2: 0.5}, 3)
    {0: 1.0, 2: 0.5}
    >>> try:
    ...     check_class_weight({3: 1.0}, 3)
    ... except ValueError as err:
    ...     print(err)
    fit: `class_weight` has key 3, which is not a class the loss can see: the model's
    output has 3 classes (0 to 2).
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict):
        raise ValueError(
            f"{fn}: invalid value for `class_weight`: expected a dict of class index to "
            f"weight, received {class_weight!r:.200}."
        )
    out: dict[int, float] = {}
    for key, weight in class_weight.items():
        if not is_int(key):
            raise ValueError(
                f"{fn}: invalid value for `class_weight`: expected int class indices as keys, "
                f"received the key {key!r:.80}."
            )
        if key < 0 or (num_classes is not None and key >= num_classes):
            seen = (
                "class indices are >= 0"
                if num_classes is None
                else f"the model's output has {num_classes} classes (0 to {num_classes - 1})"
            )
            raise ValueError(
                f"{fn}: `class_weight` has key {key!r}, which is not a class the loss can see: "
                f"{seen}."
            )
        if not is_real(weight) or not math.isfinite(weight) or weight < 0:
            raise ValueError(
                f"{fn}: `class_weight` gives class {key!r} the weight {weight!r:.80}: expected a "
                f"finite number >= 0."
            )
        out[int(key)] = float(weight)
    return out


# ---------------------------------------------------------------- Keras habits
#: The guide page that lists Keras's names and arguments layernet has, and what differs.
COMPAT_PAGE = "'Coming from Keras or PyTorch' (docs/keras_compat.md)"


def _bind_error(
    kind: str, signature: inspect.Signature, exc: TypeError, also: tuple[str, ...]
) -> TypeError:
    """The message for a constructor call that does not fit ``signature``."""
    accepted = ", ".join(
        [
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        + list(also)
    )
    text = str(exc)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unexpected:
        arg = unexpected.group(1)
        return TypeError(
            f"{kind}: layernet does not support the argument `{arg}` (layernet's {kind} "
            f"takes {accepted}); the page {COMPAT_PAGE} lists the Keras arguments layernet "
            f"has and what differs."
        )
    return TypeError(f"{kind}: {text} ({kind} takes {accepted}); see {COMPAT_PAGE}.")


def checked_init(init: Any, declared_shape: Any = None, also: tuple[str, ...] = ()) -> Any:
    """Wrap a class's ``__init__`` so that an argument it lacks gets a helpful error.

    An unknown keyword (a Keras argument layernet does not support, or a typo)
    raises a ``TypeError`` that names the class and the argument, lists the
    arguments the class takes and points to the compatibility page, instead of
    Python's bare message. ``declared_shape(self, kwargs)``, when given, pops
    arguments the wrapper handles itself before the check and returns a function
    to call on the built object (layers use it for ``input_shape``); ``also``
    names those arguments for the message.
    """
    if getattr(init, "_checked_init", False):
        return init
    signature = inspect.signature(init)
    open_ended = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    # an argument the class names itself (a user's `input_dim`) is the class's, not Keras's
    also = tuple(a for a in also if a not in signature.parameters)

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        finish = None
        if declared_shape is not None and any(a in kwargs for a in also):
            own = {k: kwargs.pop(k) for k in list(kwargs) if k not in also}
            finish = declared_shape(self, kwargs)
            kwargs = {**kwargs, **own}
        try:
            init(self, *args, **kwargs)
        except TypeError:
            # arguments Python refused before the body ran: say which and what is taken
            # (binding only here: on every call it would cost more than some steps)
            if not open_ended:
                try:
                    signature.bind(self, *args, **kwargs)
                except TypeError as exc:
                    raise _bind_error(type(self).__name__, signature, exc, also) from None
            raise
        if finish is not None:
            finish()

    if also and not open_ended:  # show (and let model files pass) the handled arguments
        params = list(signature.parameters.values())
        params += [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, default=None) for a in also]
        __init__.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    __init__._checked_init = True  # type: ignore[attr-defined]
    return __init__


def missing_attribute(module: str, name: str) -> AttributeError:
    """The ``AttributeError`` for ``module.name`` that points Keras users to the guide."""
    if name.startswith("__"):
        return AttributeError(f"module {module!r} has no attribute {name!r}")
    return AttributeError(
        f"module {module!r} has no attribute {name!r}: layernet does not have it (yet); "
        f"the page {COMPAT_PAGE} lists the Keras names layernet has and what differs."
    )
