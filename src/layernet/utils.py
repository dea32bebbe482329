"""Helpers with Keras's names: ``to_categorical``, ``set_random_seed``, ``get_file``, images.

Reachable as ``layernet.utils`` so that ``keras.utils.to_categorical(y, 10)``
runs unchanged after ``import layernet as keras``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import _random
from ._files import DownloadError, get_file, keras_home
from ._images import (
    ImageDataset,
    array_to_img,
    image_dataset_from_directory,
    img_to_array,
    load_img,
    save_img,
)
from ._keras_utils import (
    CustomObjectScope,
    clear_session,
    custom_object_scope,
    get_custom_objects,
    get_registered_object,
    get_source_inputs,
    is_keras_tensor,
    normalize,
    pack_x_y_sample_weight,
    split_dataset,
    standardize_dtype,
    timeseries_dataset_from_array,
    unpack_x_y_sample_weight,
)
from ._validation import as_array, is_int, missing_attribute, resolve_dtype
from .explain import CallExplanation, explain
from .registry import get_registered_name
from .visualization import (
    ModelDiagram,
    ModelSummary,
    confusion_matrix,
    model_summary,
    plot_confusion_matrix,
    plot_graph,
    plot_model,
)

__all__ = [
    "CallExplanation",
    "CustomObjectScope",
    "DownloadError",
    "ImageDataset",
    "ModelDiagram",
    "ModelSummary",
    "PyDataset",
    "array_to_img",
    "clear_session",
    "confusion_matrix",
    "custom_object_scope",
    "explain",
    "get_custom_objects",
    "get_file",
    "get_registered_name",
    "get_registered_object",
    "get_source_inputs",
    "image_dataset_from_directory",
    "img_to_array",
    "is_keras_tensor",
    "keras_home",
    "load_img",
    "model_summary",
    "normalize",
    "pack_x_y_sample_weight",
    "pad_sequences",
    "plot_confusion_matrix",
    "plot_graph",
    "plot_model",
    "register_keras_serializable",
    "save_img",
    "set_random_seed",
    "split_dataset",
    "standardize_dtype",
    "timeseries_dataset_from_array",
    "to_categorical",
    "unpack_x_y_sample_weight",
]


def to_categorical(y: Any, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    r"""One-hot encode integer class labels (Keras's ``keras.utils.to_categorical``).

    Parameters
    ----------
    y : array_like of int
        Class labels in ``[0, num_classes)``, any shape. A trailing axis of
        length 1 is dropped first, as in Keras: ``(N, 1)`` gives ``(N, num_classes)``.
    num_classes : int, optional
        Number of classes; default ``max(y) + 1``.
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    ndarray of shape ``y.shape + (num_classes,)``
        ``out[..., k] = 1`` where ``y == k``, else 0.

    Raises
    ------
    ValueError
        For non-integer, negative or out-of-range labels, or a bad ``num_classes``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.to_categorical([0, 2, 1], num_classes=3)
    array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 0.]], dtype=float32)
    """
    dt = resolve_dtype(dtype, "to_categorical")
    labels = as_array(y, "to_categorical", "y")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.round(labels)):
            raise ValueError(
                "to_categorical: expected integer class labels in `y`, received non-integer values."
            )
    if labels.dtype.kind == "b":
        raise ValueError("to_categorical: expected integer class labels in `y`, received bools.")
    labels = labels.astype(np.int64)
    shape = labels.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = labels.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(
            f"to_categorical: expected non-negative class labels in `y`, received {flat.min()}."
        )
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    elif not is_int(num_classes) or num_classes < 1:
        raise ValueError(
            f"to_categorical: invalid value for `num_classes`: expected a positive int, "
            f"received {num_classes!r}."
        )
    elif flat.size and flat.max() >= num_classes:
        raise ValueError(
            f"to_categorical: expected labels in [0, {num_classes - 1}] for "
            f"num_classes={num_classes}, received a label {flat.max()}."
        )
    out = np.zeros((flat.size, int(num_classes)), dtype=dt)
    out[np.arange(flat.size), flat] = 1
    return out.reshape((*shape, int(num_classes)))


def set_random_seed(seed: int) -> None:
    """Seed every generator layernet creates from now on (Keras's ``keras.utils.set_random_seed``).

    The same as :func:`layernet.set_seed`: weight initialisation, dropout masks
    and the shuffling in ``fit`` draw from it.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Raises
    ------
    ValueError
        ``set_random_seed: expected a non-negative int `seed`, received ...``.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.set_random_seed(0)
    """
    if not is_int(seed) or seed < 0:
        raise ValueError(f"set_random_seed: expected a non-negative int `seed`, received {seed!r}.")
    _random.set_seed(int(seed))


from .layers.sequence import pad_sequences  # noqa: E402  (Keras's keras.utils.pad_sequences)
from .saving import register_keras_serializable  # noqa: E402  (also keras.utils's)
from .training.data_adapters import PyDataset  # noqa: E402  (Keras's keras.utils.PyDataset)

if not TYPE_CHECKING:  # type checkers keep flagging unknown names

    def __getattr__(name: str):
        """A Keras name this module lacks: an error that points to the compatibility page."""
        raise missing_attribute(__name__, name)
