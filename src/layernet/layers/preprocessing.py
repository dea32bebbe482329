r"""Preprocessing layers with Keras's names: rescaling, normalisation, resizing, augmentation.

Images are ``(batch, height, width, channels)``. The random layers transform only
when called with ``training=True`` and are the identity otherwise (:class:`RandomCrop`
centre-crops instead, as in Keras, since it changes the shape). For a fixed random
draw every layer here is linear in its input (or piecewise linear where values are
clipped), so each has an exact derivative, given in its Notes.

Random layers draw from a generator whose whole state is two numbers, the seed and
a counter of draws, kept in ``state["seed_generator_state"]``: it is saved in model
files with the weights, so a resumed run continues the same sequence of draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, cast

import numpy as np

from .._validation import as_array, check_bool, check_positive_int, is_int, is_real, shape_str
from . import _resample
from .base import Layer

_CHUNK = 1 << 24  # seed and counter are stored in 24-bit pieces: exact in float32


# ------------------------------------------------------------------ helpers
def _check_real(value: Any, arg: str, owner: str) -> float:
    if not is_real(value) or not np.isfinite(value):
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a finite number, received {value!r}."
        )
    return float(value)


def _factor(
    value: Any, arg: str, owner: str, low: float, high: float, symmetric: bool = True
) -> tuple[float, float]:
    """A float ``f`` (meaning ``(-f, f)``, or ``(f, f)`` when not symmetric) or a pair
    ``(lower, upper)``, every value in ``[low, high]``; a pair is sorted, as Keras does."""
    if is_real(value) and not isinstance(value, bool):
        pair = (-abs(float(value)), abs(float(value))) if symmetric else (float(value),) * 2
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(is_real(v) and not isinstance(v, bool) for v in value)
    ):
        pair = (min(float(value[0]), float(value[1])), max(float(value[0]), float(value[1])))
    else:
        pair = (np.nan, np.nan)
    if not (low <= pair[0] <= pair[1] <= high):
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected a number or a pair (lower, upper) "
            f"with values in [{low}, {high}], received {value!r}."
        )
    return pair


def _choice(value: Any, arg: str, owner: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(
            f"{owner}: invalid value for `{arg}`: expected one of "
            f"{', '.join(repr(a) for a in allowed)}, received {value!r}."
        )
    return str(value)


def _value_range(value: Any, owner: str) -> tuple[float, float]:
    ok = (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(is_real(v) and not isinstance(v, bool) for v in value)
        and value[0] < value[1]
    )
    if not ok:
        raise ValueError(
            f"{owner}: invalid value for `value_range`: expected a pair (low, high) with "
            f"low < high, received {value!r}."
        )
    return float(value[0]), float(value[1])


FILL_MODES = ("reflect", "wrap", "constant", "nearest", "mirror")


class ScaleSaved(NamedTuple):
    """What the elementwise layers keep: the factor that multiplies ``G`` (or ``None``)."""

    scale: Any


class ResampleSaved(NamedTuple):
    """What :class:`Resizing`, :class:`CenterCrop` and :class:`RandomCrop` keep."""

    x_shape: tuple[int, ...]
    rows: np.ndarray  #: ``(out_height, height)`` matrix
    cols: np.ndarray  #: ``(out_width, width)`` matrix


class AffineSaved(NamedTuple):
    """What the random geometric layers keep: the sparse sampling of the last draw."""

    x_shape: tuple[int, ...]
    source: np.ndarray | None  #: ``(N, P, K)`` source pixels (``None``: identity)
    weight: np.ndarray | None  #: ``(N, P, K)`` their weights


class FlipSaved(NamedTuple):
    """What :class:`RandomFlip` keeps: which samples were flipped along each axis."""

    vertical: np.ndarray | None
    horizontal: np.ndarray | None


class ContrastSaved(NamedTuple):
    """What :class:`RandomContrast` keeps: the factor per image and the unclipped mask."""

    factor: np.ndarray | None
    inside: np.ndarray | None


class _Image(Layer):
    """A layer on ``(batch, height, width, channels)`` images (not public)."""

    input_ndim = 4

    def compute_output_shape(self, input_shape):
        return input_shape

    def _check_pixels(self, shape: Sequence[int | None]) -> None:
        """Refuse images with no rows or no columns: there is nothing to resample from."""
        if 0 in (shape[1], shape[2]):
            raise ValueError(
                f"{self.owner}: expected images with at least 1 row and 1 column to resample "
                f"from, got shape {shape_str(shape)}."
            )


class _Random(_Image):
    """Keeps a reproducible generator in ``state["seed_generator_state"]`` (not public)."""

    def build_params(self, input_shape, rng):
        base = int(self.seed) if self.seed is not None else int(rng.integers(_CHUNK * _CHUNK))
        base %= _CHUNK * _CHUNK
        self.state["seed_generator_state"] = np.array(
            [base // _CHUNK, base % _CHUNK, 0, 0], dtype=self.dtype
        )

    def next_generator(self) -> np.random.Generator:
        """A generator for the next draw: seeded by ``(seed, counter)``; the counter advances.

        Restoring ``state["seed_generator_state"]`` (as loading a model file does)
        repeats the same draws.
        """
        s = [int(v) for v in self.state["seed_generator_state"]]
        base, count = s[0] * _CHUNK + s[1], s[2] * _CHUNK + s[3]
        count += 1
        self.state["seed_generator_state"][2:] = (count // _CHUNK % _CHUNK, count % _CHUNK)
        return np.random.default_rng([base, count])


# ----------------------------------------------------------- deterministic
class Rescaling(Layer):
    r"""Multiply by ``scale`` and add ``offset`` (Keras's ``Rescaling``).

    .. rubric:: Input and output shape

    Any input ``(batch, ...)``; the output has its shape.

    Parameters
    ----------
    scale : float
        The factor :math:`a` (``1/255`` maps bytes to [0, 1]).
    offset : float, default 0.0
        The shift :math:`b`.
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        ``Rescaling 'rescaling_1': invalid value for `scale`: expected a finite
        number, ...``; the same for ``offset``.

    Notes
    -----
    .. math::

        Y = aX + b,\qquad \frac{\partial z}{\partial X} = a\,G,\qquad
        \frac{\partial\operatorname{vec}Y}{\partial\operatorname{vec}X^T} = aI.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> ln.Rescaling(1 / 127.5, offset=-1, dtype="float64").forward(np.array([[0.0, 255.0]]))
    array([[-1.,  1.]])
    """

    _default_name = "rescaling"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        scale: float,
        offset: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.scale = _check_real(scale, "scale", self.owner)
        self.offset = _check_real(offset, "offset", self.owner)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset": self.offset, **super().get_config()}

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_forward(self, x, training):
        return x * x.dtype.type(self.scale) + x.dtype.type(self.offset), ScaleSaved(None)

    def compute_backward_input(self, dy, saved):
        return dy * dy.dtype.type(self.scale)


class Normalization(Layer):
    r"""Standardise features with a mean and variance, given or learnt from data by ``adapt``.

    Keras's ``Normalization``: statistics per entry of the kept ``axis`` (per
    channel by default), shared over the other axes.

    .. rubric:: Input and output shape

    Any input ``(batch, ...)``; the output has its shape.

    Parameters
    ----------
    axis : int, tuple of int or None, default -1
        Axes that keep separate statistics; ``None`` for one mean and variance.
    mean, variance : float or array_like, optional
        Fixed statistics (broadcast to the kept axes); both or neither. Without
        them, call :meth:`~layernet.Normalization.adapt` (before that the layer
        uses 0 and 1).
    invert : bool, default False
        Apply the inverse map :math:`\mu + \sigma X` (undo a normalisation).
    name, dtype
        See :class:`~layernet.Layer`.

    Attributes
    ----------
    state : dict
        ``"mean"`` and ``"variance"`` of the kept axes' shape (saved in model files).

    Raises
    ------
    ValueError
        Only one of ``mean`` and ``variance``, a negative variance, a bad ``axis``
        or ``invert``; inputs whose kept axes differ from the built ones; data for
        :meth:`~layernet.Normalization.adapt` with another shape.

    Notes
    -----
    With :math:`\sigma = \max(\sqrt{v}, \epsilon)`, :math:`\epsilon = 10^{-7}`
    (Keras's ``backend.epsilon()``), broadcast over the reduced axes:

    .. math::

        Y = \frac{X - \mu}{\sigma},\qquad
        \frac{\partial z}{\partial X} = \frac{G}{\sigma};\qquad
        \text{invert: } Y = \mu + \sigma X,\quad \frac{\partial z}{\partial X} = \sigma G.

    The Jacobian is diagonal, :math:`\operatorname{diag}(1/\sigma)` broadcast. The
    statistics are not trained (no parameters).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> data = np.array([[0.0, 10.0], [2.0, 30.0]])
    >>> norm = ln.Normalization(dtype="float64")
    >>> norm.adapt(data)
    >>> norm.state["mean"], norm.state["variance"]
    (array([ 1., 20.]), array([  1., 100.]))
    >>> norm.forward(data)
    array([[-1., -1.],
           [ 1.,  1.]])
    """

    _default_name = "normalization"
    fresh_output = True
    fresh_gradient = True
    epsilon: ClassVar[float] = 1e-7

    def __init__(
        self,
        axis: int | Sequence[int] | None = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        o = self.owner
        if axis is None:
            self.axis: tuple[int, ...] = ()
        elif is_int(axis):
            self.axis = (int(cast(int, axis)),)
        elif isinstance(axis, Sequence) and all(is_int(a) for a in axis):
            self.axis = tuple(int(a) for a in axis)
        else:
            raise ValueError(
                f"{o}: invalid value for `axis`: expected an int, a tuple of ints or None, "
                f"received {axis!r}."
            )
        if (mean is None) != (variance is None):
            raise ValueError(
                f"{o}: expected both `mean` and `variance` or neither, received "
                f"mean={mean!r}, variance={variance!r}."
            )
        self.input_mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.input_variance = None if variance is None else np.asarray(variance, np.float64)
        if self.input_variance is not None and (self.input_variance < 0).any():
            raise ValueError(
                f"{o}: invalid value for `variance`: expected non-negative values, "
                f"received {variance!r}."
            )
        self.invert = check_bool(invert, "invert", o)
        self._adapted: tuple[np.ndarray, np.ndarray] | None = None

    def get_config(self) -> dict[str, Any]:
        def listed(a: np.ndarray | None) -> Any:
            return None if a is None else a.tolist()

        return {
            "axis": list(self.axis) if len(self.axis) != 1 else self.axis[0],
            "mean": listed(self.input_mean),
            "variance": listed(self.input_variance),
            "invert": self.invert,
            **super().get_config(),
        }

    def _keep(self, ndim: int) -> tuple[int, ...]:
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(
                f"{self.owner}: `axis` {self.axis} is out of range for inputs with {ndim} dims."
            )
        return tuple(sorted(a % ndim for a in self.axis))

    def _stat_shape(self, shape: Sequence[int | None]) -> tuple[int, ...]:
        keep = self._keep(len(shape))
        if any(shape[d] is None for d in keep):
            raise ValueError(
                f"{self.owner}: the kept axes {keep} must have known sizes, got shape "
                f"{shape_str(shape)}."
            )
        return tuple(int(shape[d]) for d in keep)  # type: ignore[arg-type]

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        stat = self._stat_shape(shape)
        if self.built and self.state["mean"].shape != stat:
            raise ValueError(
                f"{self.owner}: built for statistics of shape {self.state['mean'].shape} "
                f"(axis {self.axis}), got input shape {shape_str(shape)}."
            )

    def compute_output_shape(self, input_shape):
        return input_shape

    def build_params(self, input_shape, rng):
        stat = self._stat_shape(input_shape)
        where = f"{self.owner}: `mean`/`variance`"
        try:
            if self._adapted is not None:
                mean, var = self._adapted
            elif self.input_mean is not None and self.input_variance is not None:
                mean = np.broadcast_to(self.input_mean, stat)
                var = np.broadcast_to(self.input_variance, stat)
            else:
                mean, var = np.zeros(stat), np.ones(stat)
        except ValueError:
            raise ValueError(
                f"{where} do not broadcast to the kept axes' shape {stat}, for inputs of shape "
                f"{shape_str(input_shape)}."
            ) from None
        self.state["mean"] = np.array(mean, dtype=self.dtype)
        self.state["variance"] = np.array(var, dtype=self.dtype)

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Set ``mean`` and ``variance`` from ``data`` (population statistics).

        Parameters
        ----------
        data : array_like of shape (n, ...)
            Samples shaped like the layer's inputs.
        batch_size, steps
            Accepted for Keras compatibility; the statistics are exact either way.

        Raises
        ------
        ValueError
            When the layer was built with statistics given at construction, or
            ``data`` does not fit the kept axes.
        """
        if self.input_mean is not None:
            raise ValueError(
                f"{self.owner}: cannot adapt a layer built with fixed `mean` and `variance`."
            )
        x = as_array(data, self.owner, "data").astype(np.float64)
        keep = self._keep(x.ndim)
        reduce = tuple(d for d in range(x.ndim) if d not in keep)
        stat = self._stat_shape(x.shape)
        self._adapted = (x.mean(axis=reduce).reshape(stat), x.var(axis=reduce).reshape(stat))
        if self.built:
            if self.state["mean"].shape != stat:
                raise ValueError(
                    f"{self.owner}: built for statistics of shape {self.state['mean'].shape}, "
                    f"received data of shape {shape_str(x.shape)}."
                )
            self.state["mean"][...] = self._adapted[0]
            self.state["variance"][...] = self._adapted[1]
        else:
            self.build((None, *x.shape[1:]))

    def _broadcast(self, a: np.ndarray, ndim: int) -> np.ndarray:
        keep = self._keep(ndim)
        shape = [1] * ndim
        for d, n in zip(keep, a.shape, strict=True):
            shape[d] = n
        return a.reshape(shape)

    def _sigma(self, ndim: int) -> np.ndarray:
        var = self._broadcast(self.state["variance"], ndim)
        return np.maximum(np.sqrt(var), var.dtype.type(self.epsilon))

    def compute_forward(self, x, training):
        mean, sigma = self._broadcast(self.state["mean"], x.ndim), self._sigma(x.ndim)
        if self.invert:
            return mean + x * sigma, ScaleSaved(sigma)
        return (x - mean) / sigma, ScaleSaved(1 / sigma)

    def compute_backward_input(self, dy, saved):
        return dy * saved.scale


class Resizing(_Image):
    r"""Resize images to ``(height, width)`` (Keras's ``Resizing``, no antialiasing).

    .. rubric:: Input and output shape

    Input ``(batch, H, W, channels)``; output ``(batch, height, width, channels)``.

    Parameters
    ----------
    height, width : int
        The output size.
    interpolation : {"bilinear", "nearest"}, default "bilinear"
        Half-pixel-centre sampling as ``jax.image.resize`` (Keras's JAX backend).
    crop_to_aspect_ratio : bool, default False
        First crop the largest centred window with the output's aspect ratio, so
        that the image is not distorted.
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        ``height`` or ``width`` not a positive int, an unknown ``interpolation``,
        a non-bool ``crop_to_aspect_ratio``; inputs that are not 4-D, or images with
        no rows or no columns.

    Notes
    -----
    Along each axis the output samples the input at
    :math:`u_i = (i + \tfrac12)\,n_\text{in}/n_\text{out} - \tfrac12` (clamped to
    the image) by linear interpolation between its two neighbours, or takes input
    :math:`\lfloor (i+\tfrac12)\,n_\text{in}/n_\text{out}\rfloor` (nearest). Both are
    matrices :math:`R_h` (height) and :math:`R_w` (width), a crop included, so per
    sample and channel

    .. math::

        Y = R_h X R_w^T,\qquad \frac{\partial z}{\partial X} = R_h^T G R_w,\qquad
        \frac{\partial\operatorname{vec}Y}{\partial\operatorname{vec}X^T}
            = I_N \otimes R_h \otimes R_w \otimes I_C.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(1, 2, 2, 1)
    >>> ln.Resizing(1, 1, dtype="float64").forward(x)[0, :, :, 0]
    array([[1.5]])
    >>> ln.Resizing(2, 4, interpolation="nearest", dtype="float64").forward(x)[0, :, :, 0]
    array([[0., 0., 1., 1.],
           [2., 2., 3., 3.]])
    """

    _default_name = "resizing"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        height: int,
        width: int,
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.height = check_positive_int(height, "height", self.owner)
        self.width = check_positive_int(width, "width", self.owner)
        self.interpolation = _choice(
            interpolation, "interpolation", self.owner, ("bilinear", "nearest")
        )
        self.crop_to_aspect_ratio = check_bool(
            crop_to_aspect_ratio, "crop_to_aspect_ratio", self.owner
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            **super().get_config(),
        }

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        self._check_pixels(shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def _matrices(self, h: int, w: int, crop: bool) -> tuple[np.ndarray, np.ndarray]:
        rows = _resample.resize_matrix
        if not crop:
            return (
                rows(h, self.height, self.interpolation, self.dtype),
                rows(w, self.width, self.interpolation, self.dtype),
            )
        top, ch, left, cw = _resample.aspect_crop(h, w, self.height, self.width)
        return (
            rows(ch, self.height, self.interpolation, self.dtype)
            @ _resample.crop_matrix(h, top, ch, self.dtype),
            rows(cw, self.width, self.interpolation, self.dtype)
            @ _resample.crop_matrix(w, left, cw, self.dtype),
        )

    def compute_forward(self, x, training):
        r, c = self._matrices(x.shape[1], x.shape[2], self.crop_to_aspect_ratio)
        return _resample.apply(x, r, c), ResampleSaved(x.shape, r, c)

    def compute_backward_input(self, dy, saved):
        return _resample.apply_transpose(dy, saved.rows, saved.cols)


class CenterCrop(Resizing):
    r"""Crop the centre ``(height, width)`` window of every image (Keras's ``CenterCrop``).

    An image smaller than the window along an axis is instead resized (bilinear)
    after cropping the largest centred window of the target aspect ratio, as Keras does.

    .. rubric:: Input and output shape

    Input ``(batch, H, W, channels)``; output ``(batch, height, width, channels)``.

    Parameters
    ----------
    height, width : int
        The window.
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        ``height`` or ``width`` not a positive int; inputs that are not 4-D, or images
        with no rows or no columns.

    Notes
    -----
    With :math:`t = \lfloor (H - h)/2\rfloor`, :math:`l = \lfloor (W - w)/2\rfloor`:

    .. math::

        Y_{n,i,j,c} = X_{n,\,t+i,\,l+j,\,c},\qquad
        \frac{\partial z}{\partial X_{n,t+i,l+j,c}} = G_{n,i,j,c}

    and zero elsewhere: the Jacobian is a 0/1 selection matrix (in the resizing
    case, :class:`Resizing`'s :math:`R_h \otimes R_w`).

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
    >>> ln.CenterCrop(2, 2, dtype="float64").forward(x)[0, :, :, 0]
    array([[ 5.,  6.],
           [ 9., 10.]])
    """

    _default_name = "center_crop"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        height: int,
        width: int,
        *,
        name: str | None = None,
        dtype: str = "float32",
        seed: int | None = None,
        trainable: bool = True,
    ) -> None:
        super().__init__(height, width, name=name, dtype=dtype, seed=seed, trainable=trainable)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        del cfg["interpolation"], cfg["crop_to_aspect_ratio"]
        return cfg

    def _window(self, h: int, w: int, start: tuple[int, int] | None) -> tuple[np.ndarray, ...]:
        if h < self.height or w < self.width:
            return self._matrices(h, w, crop=True)
        top, left = start if start is not None else ((h - self.height) // 2, (w - self.width) // 2)
        return (
            _resample.crop_matrix(h, top, self.height, self.dtype),
            _resample.crop_matrix(w, left, self.width, self.dtype),
        )

    def compute_forward(self, x, training):
        r, c = self._window(x.shape[1], x.shape[2], None)
        return _resample.apply(x, r, c), ResampleSaved(x.shape, r, c)


# ------------------------------------------------------------------ random
_RANDOM_NOTES = r"""
    Random layers transform only with ``training=True``; otherwise ``Y = X`` (the
    explicit Jacobians are those of that inference map). The draws come from
    ``state["seed_generator_state"]`` (seed and draw counter), saved with the model.
"""


class RandomFlip(_Random):
    r"""Flip each image left-right and/or upside down with probability 1/2 (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    mode : {"horizontal", "vertical", "horizontal_and_vertical"}, default "horizontal_and_vertical"
        Which flips may happen (each drawn independently per image).
    seed : int, optional
        Seed of the draws (global seed when ``None``).
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        An unknown ``mode``; inputs that are not 4-D.

    Notes
    -----
    For a drawn flip the output is a permutation of the input,
    :math:`Y_{n,i,j,c} = X_{n,\,H-1-i,\,j,\,c}` (vertical) or
    :math:`X_{n,\,i,\,W-1-j,\,c}` (horizontal); the gradient is the same
    permutation of :math:`G` (a permutation matrix is orthogonal:
    :math:`J^T = J^{-1}`).
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> flip = ln.RandomFlip("horizontal", seed=0, dtype="float64")
    >>> x = np.arange(4.0).reshape(1, 1, 4, 1)
    >>> flip.forward(x)[0, 0, :, 0]                    # inference: unchanged
    array([0., 1., 2., 3.])
    >>> sorted({tuple(flip.forward(x, training=True)[0, 0, :, 0].tolist()) for _ in range(20)})
    [(0.0, 1.0, 2.0, 3.0), (3.0, 2.0, 1.0, 0.0)]
    """

    _default_name = "random_flip"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        mode: str = "horizontal_and_vertical",
        seed: int | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.mode = _choice(
            mode, "mode", self.owner, ("horizontal", "vertical", "horizontal_and_vertical")
        )

    def get_config(self) -> dict[str, Any]:
        return {"mode": self.mode, **super().get_config()}

    @staticmethod
    def _flip(x: np.ndarray, saved: FlipSaved) -> np.ndarray:
        out = x.copy()
        if saved.vertical is not None:
            out[saved.vertical] = out[saved.vertical, ::-1]
        if saved.horizontal is not None:
            out[saved.horizontal] = out[saved.horizontal, :, ::-1]
        return out

    def compute_forward(self, x, training):
        if not training:
            return x.copy(), FlipSaved(None, None)
        rng = self.next_generator()
        n = x.shape[0]
        vertical = rng.random(n) < 0.5 if self.mode != "horizontal" else None
        horizontal = rng.random(n) < 0.5 if self.mode != "vertical" else None
        saved = FlipSaved(vertical, horizontal)
        return self._flip(x, saved), saved

    def compute_backward_input(self, dy, saved):
        return self._flip(dy, saved)


class _Affine(_Random):
    """Random per-image geometric transforms by sparse bilinear sampling (not public)."""

    def _setup(self, fill_mode: str, interpolation: str, fill_value: Any) -> None:
        self.fill_mode = _choice(fill_mode, "fill_mode", self.owner, FILL_MODES)
        self.interpolation = _choice(
            interpolation, "interpolation", self.owner, ("bilinear", "nearest")
        )
        self.fill_value = _check_real(fill_value, "fill_value", self.owner)

    def _config(self) -> dict[str, Any]:
        return {
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }

    def source_coordinates(self, rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
        """``(n, h*w, 2)`` input (row, column) sampled by every output pixel."""
        raise NotImplementedError

    def compute_forward(self, x, training):
        if not training:
            return x.copy(), AffineSaved(x.shape, None, None)
        n, h, w, c = x.shape
        coords = self.source_coordinates(self.next_generator(), n, h, w)
        index, weight, outside = _resample.affine_weights(
            coords, h, w, self.interpolation, self.fill_mode
        )
        y = _resample.sample(x.reshape(n, h * w, c), index, weight)
        if self.fill_mode == "constant" and self.fill_value:
            y += (outside * self.fill_value).astype(x.dtype)[..., None]
        return y.reshape(x.shape), AffineSaved(x.shape, index, weight)

    def compute_backward_input(self, dy, saved):
        if saved.source is None:
            return dy.copy()
        n, h, w, c = saved.x_shape
        dx = _resample.sample_transpose(dy.reshape(n, h * w, c), saved.source, saved.weight, h * w)
        return dx.reshape(saved.x_shape)


def _grid(n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64))
    return rows.T.reshape(1, -1).repeat(n, 0), cols.T.reshape(1, -1).repeat(n, 0)


_AFFINE_NOTES = r"""
    For the drawn transform each output pixel :math:`p` reads the input at a point
    :math:`u(p)`, by bilinear interpolation between the four pixels around it
    (indices outside the image mapped back by ``fill_mode``; ``"constant"`` reads
    ``fill_value``):

    .. math::

        Y_{n,p,c} = \sum_{k=1}^{4} w_{n,p,k}\, X_{n,\,q_k(p),\,c} \;(+\ \text{fill}),
        \qquad
        \frac{\partial z}{\partial X_{n,q,c}} = \sum_{(p,k)\,:\,q_k(p) = q}
            w_{n,p,k}\, G_{n,p,c}.

    The Jacobian is sparse with at most four weights per row (one, 0/1, with
    ``interpolation="nearest"``); the fill constant does not depend on :math:`X`.
"""


class RandomTranslation(_Affine):
    r"""Shift each image by a random fraction of its size (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    height_factor, width_factor : float or (float, float)
        Shift as a fraction of the height / width, drawn uniformly in
        ``(lower, upper)`` (a float ``f`` means ``(-f, f)``; a pair is sorted), within
        [-1, 1]; positive values move the content down / right.
    fill_mode : {"reflect", "wrap", "constant", "nearest", "mirror"}, default "reflect"
        How points outside the image are read: ``"reflect"`` repeats the edge
        pixel (``d c b a | a b c d | d c b a``), ``"mirror"`` (layernet's own)
        does not (``d c b | a b c d | c b a``).
    interpolation : {"bilinear", "nearest"}, default "bilinear"
        ``"nearest"`` rounds half-pixel positions away from zero (as Keras's JAX
        backend).
    seed : int, optional
        Seed of the draws.
    fill_value : float, default 0.0
        The value outside the image with ``fill_mode="constant"``.
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        A factor outside [-1, 1], an unknown ``fill_mode``
        or ``interpolation``; inputs that are not 4-D.

    Notes
    -----
    The drawn shift :math:`(\delta_h H, \delta_w W)` gives
    :math:`u(i, j) = (i - \delta_h H,\ j - \delta_w W)`.
    {affine}
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.RandomTranslation((0.25, 0.25), 0, fill_mode="constant", seed=0,
    ...                              dtype="float64")
    >>> layer.forward(np.ones((1, 4, 1, 1)), training=True)[0, :, 0, 0]
    array([0., 1., 1., 1.])
    """

    _default_name = "random_translation"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        height_factor: float | tuple[float, float],
        width_factor: float | tuple[float, float],
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.height_factor = _factor(height_factor, "height_factor", self.owner, -1, 1)
        self.width_factor = _factor(width_factor, "width_factor", self.owner, -1, 1)
        self._setup(fill_mode, interpolation, fill_value)

    def get_config(self) -> dict[str, Any]:
        return {
            "height_factor": list(self.height_factor),
            "width_factor": list(self.width_factor),
            **self._config(),
            **super().get_config(),
        }

    def source_coordinates(self, rng, n, h, w):
        dy = rng.uniform(*self.height_factor, size=(n, 1)) * h
        dx = rng.uniform(*self.width_factor, size=(n, 1)) * w
        rows, cols = _grid(n, h, w)
        return np.stack([rows - dy, cols - dx], -1)


class RandomRotation(_Affine):
    r"""Rotate each image about its centre by a random angle (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    factor : float or (float, float)
        Angle as a fraction of :math:`2\pi`, drawn uniformly in ``(lower, upper)``
        (a float ``f`` means ``(-f, f)``; a pair is sorted), within [-1, 1]; positive
        angles turn the content counter-clockwise, as in Keras.
    fill_mode : {"reflect", "wrap", "constant", "nearest", "mirror"}, default "reflect"
    interpolation : {"bilinear", "nearest"}, default "bilinear"
    seed : int, optional
    fill_value : float, default 0.0
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        A factor outside [-1, 1], an unknown ``fill_mode`` or ``interpolation``;
        inputs that are not 4-D.

    Notes
    -----
    With the centre :math:`(c_h, c_w) = ((H-1)/2, (W-1)/2)` and the drawn angle
    :math:`\theta`, in (row, column) coordinates (rows grow downwards),
    :math:`u(i, j) = c + R\,((i, j) - c)` with
    :math:`R = \begin{pmatrix}\cos\theta & \sin\theta\\ -\sin\theta & \cos\theta\end{pmatrix}`.
    {affine}
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.RandomRotation((0.5, 0.5), seed=0, dtype="float64")   # always 180 degrees
    >>> x = np.arange(4.0).reshape(1, 2, 2, 1)
    >>> np.round(layer.forward(x, training=True)[0, :, :, 0], 12)
    array([[3., 2.],
           [1., 0.]])
    """

    _default_name = "random_rotation"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        factor: float | tuple[float, float],
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.factor = _factor(factor, "factor", self.owner, -1, 1)
        self._setup(fill_mode, interpolation, fill_value)

    def get_config(self) -> dict[str, Any]:
        return {"factor": list(self.factor), **self._config(), **super().get_config()}

    def source_coordinates(self, rng, n, h, w):
        theta = rng.uniform(*self.factor, size=(n, 1)) * 2 * np.pi
        rows, cols = _grid(n, h, w)
        ch, cw = (h - 1) / 2, (w - 1) / 2
        r, c = rows - ch, cols - cw
        cos, sin = np.cos(theta), np.sin(theta)
        return np.stack([ch + cos * r + sin * c, cw - sin * r + cos * c], -1)


class RandomZoom(_Affine):
    r"""Zoom each image in or out about its centre by a random factor (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    height_factor : float or (float, float)
        Zoom drawn in ``(lower, upper)`` (a float ``f``: ``(-f, f)``; a pair is
        sorted), within [-1, 1]; positive values zoom out (Keras's convention), the
        image read at scale :math:`1 + \text{draw}`.
    width_factor : float or (float, float), optional
        The same for the width; ``None`` uses the height's draw (keeps the aspect).
    fill_mode : {"reflect", "wrap", "constant", "nearest", "mirror"}, default "reflect"
    interpolation : {"bilinear", "nearest"}, default "bilinear"
    seed : int, optional
    fill_value : float, default 0.0
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        A factor outside [-1, 1], an unknown ``fill_mode`` or ``interpolation``;
        inputs that are not 4-D.

    Notes
    -----
    With the centre :math:`c` and drawn scales :math:`(s_h, s_w)`,
    :math:`u(i, j) = (c_h + s_h (i - c_h),\ c_w + s_w (j - c_w))`.
    {affine}
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.RandomZoom((-0.5, -0.5), seed=0, dtype="float64")   # 2x zoom in
    >>> layer.forward(np.arange(4.0).reshape(1, 1, 4, 1), training=True)[0, 0, :, 0]
    array([0., 1., 2., 3.])
    """

    _default_name = "random_zoom"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        height_factor: float | tuple[float, float],
        width_factor: float | tuple[float, float] | None = None,
        fill_mode: str = "reflect",
        interpolation: str = "bilinear",
        seed: int | None = None,
        fill_value: float = 0.0,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.height_factor = _factor(height_factor, "height_factor", self.owner, -1, 1)
        self.width_factor = (
            None
            if width_factor is None
            else _factor(width_factor, "width_factor", self.owner, -1, 1)
        )
        self._setup(fill_mode, interpolation, fill_value)

    def get_config(self) -> dict[str, Any]:
        wf = None if self.width_factor is None else list(self.width_factor)
        return {
            "height_factor": list(self.height_factor),
            "width_factor": wf,
            **self._config(),
            **super().get_config(),
        }

    def source_coordinates(self, rng, n, h, w):
        sh = 1 + rng.uniform(*self.height_factor, size=(n, 1))
        sw = sh if self.width_factor is None else 1 + rng.uniform(*self.width_factor, (n, 1))
        rows, cols = _grid(n, h, w)
        ch, cw = (h - 1) / 2, (w - 1) / 2
        return np.stack([ch + sh * (rows - ch), cw + sw * (cols - cw)], -1)


class RandomContrast(_Random):
    r"""Scale each image's deviation from its mean by a random factor (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    factor : float or (float, float)
        The contrast factor is drawn per image in ``[1 - lower, 1 + upper]``.
        A float ``f`` in [0, 1] means ``lower = 0, upper = f`` (the factor drawn in
        ``[1, 1 + f]``: what Keras 3 does, although its docstring says
        ``lower = upper = f``); a pair is sorted into ``(lower, upper)``, so
        ``(-a, a)`` pins the factor at ``1 + a``.
    value_range : (float, float), default (0, 255)
        Outputs are clipped to this range.
    seed : int, optional
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        A factor outside its range, a bad ``value_range``; inputs that are not 4-D.

    Notes
    -----
    With :math:`\bar X_{n,c}` the mean over the image's pixels (:math:`P = HW`) and
    the drawn factor :math:`a_n`, and :math:`M` the mask of outputs inside the range,

    .. math::

        Y = \operatorname{clip}\big(a_n (X - \bar X_{n,c}) + \bar X_{n,c}\big),\qquad
        \frac{\partial z}{\partial X_{n,p,c}} = a_n M_{n,p,c} G_{n,p,c}
          + \frac{1 - a_n}{P}\sum_{p'} M_{n,p',c} G_{n,p',c}.
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.RandomContrast((-0.5, 0.5), seed=0, dtype="float64")   # factor 1.5
    >>> layer.forward(np.array([20.0, 80.0]).reshape(1, 1, 2, 1), training=True)[0, 0, :, 0]
    array([  5.,  95.])
    """

    _default_name = "random_contrast"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        factor: float | tuple[float, float],
        value_range: tuple[float, float] = (0, 255),
        seed: int | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        if is_real(factor) and not isinstance(factor, bool):
            lower, upper = 0.0, float(cast(float, factor))
            ok = 0 <= upper <= 1
        elif (
            isinstance(factor, Sequence)
            and not isinstance(factor, str)
            and len(factor) == 2
            and all(is_real(v) and not isinstance(v, bool) for v in factor)
        ):
            lower, upper = sorted((float(factor[0]), float(factor[1])))
            ok = -1 <= lower <= 1 and 0 <= upper <= 1
        else:
            lower = upper = np.nan
            ok = False
        if not ok:
            raise ValueError(
                f"{self.owner}: invalid value for `factor`: expected a number in [0, 1] or a "
                f"pair (lower, upper) with values in [-1, 1] and upper >= 0, "
                f"received {factor!r}."
            )
        self.factor = (lower, upper)
        self.value_range = _value_range(value_range, self.owner)

    def get_config(self) -> dict[str, Any]:
        return {
            "factor": list(self.factor),
            "value_range": list(self.value_range),
            **super().get_config(),
        }

    def compute_forward(self, x, training):
        if not training:
            return x.copy(), ContrastSaved(None, None)
        rng = self.next_generator()
        a = rng.uniform(1 - self.factor[0], 1 + self.factor[1], (x.shape[0], 1, 1, 1))
        a = a.astype(x.dtype)
        pixels = max(x.shape[1] * x.shape[2], 1)  # (an image with no pixels has no mean)
        mean = x.sum(axis=(1, 2), keepdims=True) / x.dtype.type(pixels)
        y = (x - mean) * a + mean
        lo, hi = self.value_range
        inside = (y >= lo) & (y <= hi)
        return np.clip(y, lo, hi).astype(x.dtype), ContrastSaved(a, inside)

    def compute_backward_input(self, dy, saved):
        if saved.factor is None:
            return dy.copy()
        gm = dy * saved.inside
        pixels = max(dy.shape[1] * dy.shape[2], 1)
        return saved.factor * gm + (1 - saved.factor) * gm.sum(axis=(1, 2), keepdims=True) / pixels


class RandomBrightness(_Random):
    r"""Add a random offset to each image (training only).

    .. rubric:: Input and output shape

    ``(batch, height, width, channels)``, unchanged.

    Parameters
    ----------
    factor : float or (float, float)
        Offset as a fraction of ``value_range``'s width, drawn per image in
        ``(lower, upper)`` (a float ``f`` means ``(-f, f)``; a pair is sorted),
        within [-1, 1].
    value_range : (float, float), default (0, 255)
        Outputs are clipped to this range.
    seed : int, optional
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        A factor outside [-1, 1], a bad ``value_range``; inputs that are not 4-D.

    Notes
    -----
    With the drawn offset :math:`\delta_n` and :math:`M` the mask of outputs
    inside the range,

    .. math::

        Y = \operatorname{clip}(X + \delta_n),\qquad
        \frac{\partial z}{\partial X} = M \odot G,\qquad
        \frac{\partial\operatorname{vec}Y}{\partial\operatorname{vec}X^T}
            = \operatorname{diag}(\operatorname{vec} M).
    {notes}

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> layer = ln.RandomBrightness((0.1, 0.1), value_range=(0, 1), seed=0, dtype="float64")
    >>> layer.forward(np.array([0.2, 0.95]).reshape(1, 1, 2, 1), training=True)[0, 0, :, 0]
    array([0.3, 1. ])
    """

    _default_name = "random_brightness"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        factor: float | tuple[float, float],
        value_range: tuple[float, float] = (0, 255),
        seed: int | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.factor = _factor(factor, "factor", self.owner, -1, 1)
        self.value_range = _value_range(value_range, self.owner)

    def get_config(self) -> dict[str, Any]:
        return {
            "factor": list(self.factor),
            "value_range": list(self.value_range),
            **super().get_config(),
        }

    def compute_forward(self, x, training):
        if not training:
            return x.copy(), ScaleSaved(None)
        rng = self.next_generator()
        lo, hi = self.value_range
        delta = rng.uniform(*self.factor, (x.shape[0], 1, 1, 1)) * (hi - lo)
        y = x + delta.astype(x.dtype)
        return np.clip(y, lo, hi).astype(x.dtype), ScaleSaved((y >= lo) & (y <= hi))

    def compute_backward_input(self, dy, saved):
        return dy.copy() if saved.scale is None else dy * saved.scale


class RandomCrop(_Random):
    r"""Crop a random ``(height, width)`` window (training); centre-crop otherwise.

    Keras's ``RandomCrop``: one window position per batch, drawn uniformly. At
    inference, and for images smaller than the window, the image is resized after
    cropping the largest centred window of the target aspect ratio
    (:class:`Resizing` with ``crop_to_aspect_ratio=True``), as Keras documents it,
    so that the output shape never depends on ``training`` (Keras 3's own code
    returns the input unchanged at inference).

    .. rubric:: Input and output shape

    Input ``(batch, H, W, channels)``; output ``(batch, height, width, channels)``.

    Parameters
    ----------
    height, width : int
        The window.
    seed : int, optional
    name, dtype
        See :class:`~layernet.Layer`.

    Raises
    ------
    ValueError
        ``height`` or ``width`` not a positive int; inputs that are not 4-D, or images
        with no rows or no columns.

    Notes
    -----
    For the drawn corner :math:`(t, l)`:
    :math:`Y_{n,i,j,c} = X_{n,t+i,l+j,c}`, and :math:`\partial z/\partial X` is
    :math:`G` placed in that window, zero elsewhere (a selection matrix). The
    inference map is :class:`Resizing`'s, :math:`R_h X R_w^T`.

    Examples
    --------
    >>> import layernet as ln
    >>> import numpy as np
    >>> crop = ln.RandomCrop(2, 2, seed=0, dtype="float64")
    >>> crop.forward(np.zeros((3, 5, 5, 1)), training=True).shape
    (3, 2, 2, 1)
    """

    _default_name = "random_crop"
    fresh_output = True
    fresh_gradient = True

    def __init__(
        self,
        height: int,
        width: int,
        seed: int | None = None,
        *,
        name: str | None = None,
        dtype: str = "float32",
        trainable: bool = True,
    ) -> None:
        super().__init__(name=name, dtype=dtype, seed=seed, trainable=trainable)
        self.height = check_positive_int(height, "height", self.owner)
        self.width = check_positive_int(width, "width", self.owner)
        self._resize = Resizing(self.height, self.width, crop_to_aspect_ratio=True, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"height": self.height, "width": self.width, **super().get_config()}

    def check_input_shape(self, shape):
        super().check_input_shape(shape)
        self._check_pixels(shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def compute_forward(self, x, training):
        h, w = x.shape[1], x.shape[2]
        if training and h >= self.height and w >= self.width:
            rng = self.next_generator()
            top = int(rng.integers(0, h - self.height + 1))
            left = int(rng.integers(0, w - self.width + 1))
            r = _resample.crop_matrix(h, top, self.height, self.dtype)
            c = _resample.crop_matrix(w, left, self.width, self.dtype)
        else:
            r, c = self._resize._matrices(h, w, crop=True)
        return _resample.apply(x, r, c), ResampleSaved(x.shape, r, c)

    def compute_backward_input(self, dy, saved):
        return _resample.apply_transpose(dy, saved.rows, saved.cols)


for _cls in (RandomFlip, RandomContrast, RandomBrightness):
    _cls.__doc__ = (_cls.__doc__ or "").replace("{notes}", _RANDOM_NOTES)
for _geo in (RandomTranslation, RandomRotation, RandomZoom):
    _geo.__doc__ = (
        (_geo.__doc__ or "").replace("{affine}", _AFFINE_NOTES).replace("{notes}", _RANDOM_NOTES)
    )
