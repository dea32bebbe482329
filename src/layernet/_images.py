r"""Image files with Keras's helpers: load, convert, save, and a data set from a folder tree.

Needs Pillow (``pip install -e '.[images]'``); a clear error says so otherwise.
Arrays are channels-last ``(height, width, channels)`` float32 with values 0-255, as
Keras gives them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._validation import is_int
from .layers import _resample

__all__ = [
    "ImageDataset",
    "array_to_img",
    "image_dataset_from_directory",
    "img_to_array",
    "load_img",
    "save_img",
]

#: File extensions :func:`image_dataset_from_directory` reads (Keras's list).
ALLOWED_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


def _pil(where: str) -> Any:
    try:
        return importlib.import_module("PIL.Image")
    except ImportError:
        raise ImportError(
            f"{where} needs the 'pillow' package: pip install pillow "
            f"(or pip install -e '.[images]')."
        ) from None


def _check_format(data_format: Any, where: str) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(
            f"{where}: invalid value for `data_format`: only 'channels_last' (or None) is "
            f"supported, received {data_format!r}."
        )


def _color_mode(color_mode: Any, where: str) -> str:
    if color_mode not in _MODES:
        raise ValueError(
            f"{where}: invalid value for `color_mode`: expected 'grayscale', 'rgb' or 'rgba', "
            f"received {color_mode!r}."
        )
    return _MODES[color_mode]


def _size(value: Any, arg: str, where: str) -> tuple[int, int]:
    if isinstance(value, Sequence) and len(value) == 2 and all(is_int(v) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(
        f"{where}: invalid value for `{arg}`: expected (height, width), two positive ints, "
        f"received {value!r}."
    )


def load_img(
    path: str | os.PathLike,
    color_mode: str = "rgb",
    target_size: tuple[int, int] | None = None,
    interpolation: str = "nearest",
    keep_aspect_ratio: bool = False,
) -> Any:
    """Load an image file as a PIL image (Keras's ``keras.utils.load_img``).

    Parameters
    ----------
    path : str or path-like
        The image file.
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        Converted to this mode.
    target_size : (int, int), optional
        ``(height, width)`` to resize to (Pillow's resampling).
    interpolation : str, default "nearest"
        Pillow's filter for ``target_size``: ``"nearest"``, ``"bilinear"``,
        ``"bicubic"``, ``"lanczos"``, ``"box"`` or ``"hamming"``.
    keep_aspect_ratio : bool, default False
        Crop the centre to the target's aspect ratio before resizing.

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    ImportError
        Without Pillow: ``load_img needs the 'pillow' package: ...``.
    ValueError
        An unknown ``color_mode`` or ``interpolation``, a bad ``target_size``.
    FileNotFoundError
        When ``path`` does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import layernet as ln
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png")
    >>> ln.utils.save_img(path, np.zeros((4, 6, 3)), scale=False)
    >>> img = ln.utils.load_img(path, target_size=(2, 3))
    >>> img.size, ln.utils.img_to_array(img).shape
    ((3, 2), (2, 3, 3))
    """
    where = "load_img"
    image_mod = _pil(where)
    mode = _color_mode(color_mode, where)
    filters = {
        "nearest": image_mod.Resampling.NEAREST,
        "bilinear": image_mod.Resampling.BILINEAR,
        "bicubic": image_mod.Resampling.BICUBIC,
        "lanczos": image_mod.Resampling.LANCZOS,
        "box": image_mod.Resampling.BOX,
        "hamming": image_mod.Resampling.HAMMING,
    }
    if interpolation not in filters:
        raise ValueError(
            f"{where}: invalid value for `interpolation`: expected one of "
            f"{', '.join(repr(k) for k in filters)}, received {interpolation!r}."
        )
    with open(os.fspath(path), "rb") as f:
        img = image_mod.open(f)
        img.load()
    if img.mode != mode:
        img = img.convert(mode)
    if target_size is not None:
        height, width = _size(target_size, "target_size", where)
        if img.size != (width, height):
            box = None
            if keep_aspect_ratio:  # the centred window of the target's aspect ratio
                ch = min(img.height, img.width * height // width)
                cw = min(img.width, img.height * width // height)
                top, left = (img.height - ch) // 2, (img.width - cw) // 2
                box = (left, top, left + cw, top + ch)
            img = img.resize((width, height), filters[interpolation], box=box)
    return img


def img_to_array(img: Any, data_format: str | None = None, dtype: Any = None) -> np.ndarray:
    """A PIL image as an array ``(height, width, channels)`` (``keras.utils.img_to_array``).

    Parameters
    ----------
    img : PIL.Image.Image
    data_format : {"channels_last", None}, optional
        Only channels-last.
    dtype : dtype, default float32

    Returns
    -------
    ndarray of shape (height, width, channels)
        Grayscale images get one channel.

    Raises
    ------
    ValueError
        ``data_format`` other than channels-last, or an image that does not give a
        2-D or 3-D array.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> img = ln.utils.array_to_img(np.full((2, 2, 1), 255.0), scale=False)
    >>> ln.utils.img_to_array(img)[..., 0]
    array([[255., 255.],
           [255., 255.]], dtype=float32)
    """
    _check_format(data_format, "img_to_array")
    x = np.asarray(img, dtype=np.dtype(dtype or "float32"))
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise ValueError(
            f"img_to_array: expected an image giving a 2-D or 3-D array, received shape {x.shape}."
        )
    return x


def array_to_img(
    x: Any, data_format: str | None = None, scale: bool = True, dtype: Any = None
) -> Any:
    """An array ``(height, width, channels)`` as a PIL image (``keras.utils.array_to_img``).

    Parameters
    ----------
    x : array_like of shape (height, width, channels)
        1 channel (grayscale), 3 (RGB) or 4 (RGBA).
    data_format : {"channels_last", None}, optional
    scale : bool, default True
        Map the values to 0-255 first: subtract the minimum and divide by the maximum.
    dtype : dtype, optional
        Accepted for Keras compatibility.

    Returns
    -------
    PIL.Image.Image

    Raises
    ------
    ImportError
        Without Pillow.
    ValueError
        An array that is not 3-D or has another number of channels.

    Examples
    --------
    >>> import numpy as np
    >>> import layernet as ln
    >>> ln.utils.array_to_img(np.zeros((2, 3, 3))).size
    (3, 2)
    """
    where = "array_to_img"
    image_mod = _pil(where)
    _check_format(data_format, where)
    a = np.array(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{where}: expected an array of shape (height, width, channels) with 1, 3 or 4 "
            f"channels, received shape {a.shape}."
        )
    if scale:
        a = a - a.min()
        top = a.max()
        if top != 0:
            a /= top
        a *= 255
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        return image_mod.fromarray(a[..., 0], "L")
    return image_mod.fromarray(a, "RGB" if a.shape[-1] == 3 else "RGBA")


def save_img(
    path: str | os.PathLike,
    x: Any,
    data_format: str | None = None,
    file_format: str | None = None,
    scale: bool = True,
    **kwargs: Any,
) -> None:
    """Save an array as an image file (``keras.utils.save_img``).

    Parameters
    ----------
    path : str or path-like
    x : array_like of shape (height, width, channels)
    data_format : {"channels_last", None}, optional
    file_format : str, optional
        Pillow's format name; by default from the file's extension.
    scale : bool, default True
        As :func:`array_to_img`.
    **kwargs
        Passed to ``PIL.Image.Image.save``.

    Raises
    ------
    ImportError
        Without Pillow.
    ValueError
        As :func:`array_to_img`.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import layernet as ln
    >>> path = os.path.join(tempfile.mkdtemp(), "x.png")
    >>> ln.utils.save_img(path, np.ones((2, 2, 3)) * 200, scale=False)
    >>> ln.utils.img_to_array(ln.utils.load_img(path))[0, 0]
    array([200., 200., 200.], dtype=float32)
    """
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and (
        file_format == "jpg" or str(path).lower().endswith((".jpg", ".jpeg"))
    ):
        img = img.convert("RGB")
    img.save(os.fspath(path), format=file_format, **kwargs)


class ImageDataset:
    r"""Batches of images read from files: what :func:`image_dataset_from_directory` returns.

    A Keras ``PyDataset``: ``len(ds)`` batches, ``ds[i]`` the ``i``-th as
    ``(x_batch, y_batch)`` (or ``x_batch`` alone without labels), ``on_epoch_end()``
    reshuffles; ``fit(ds)`` takes it, and iterating over it gives the batches.

    Attributes
    ----------
    file_paths : list of str
        The files in their current order.
    labels : ndarray or None
        Their integer labels, in the same order.
    class_names : list of str or None
        The class of every label value.
    """

    def __init__(
        self,
        file_paths: list[str],
        labels: np.ndarray | None,
        label_mode: str | None,
        class_names: list[str] | None,
        color_mode: str,
        batch_size: int | None,
        image_size: tuple[int, int],
        shuffle: bool,
        seed: int | None,
        interpolation: str,
        crop_to_aspect_ratio: bool,
    ) -> None:
        self.file_paths = list(file_paths)
        self.labels = labels
        self.label_mode = label_mode
        self.class_names = class_names
        self.color_mode = color_mode
        self.batch_size = batch_size
        self.image_size = image_size
        self.shuffle = shuffle
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = crop_to_aspect_ratio
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self.file_paths))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        if self.batch_size is None:
            return len(self.file_paths)
        return -(-len(self.file_paths) // self.batch_size)

    def _load(self, path: str) -> np.ndarray:
        image_mod = _pil("image_dataset_from_directory")
        with open(path, "rb") as f:
            img = image_mod.open(f)
            img.load()
        mode = _MODES[self.color_mode]
        if img.mode != mode:
            img = img.convert(mode)
        x = img_to_array(img)
        h, w = self.image_size
        if x.shape[:2] == (h, w):
            return x
        rows = _resample.resize_matrix(x.shape[0], h, self.interpolation, np.float32)
        cols = _resample.resize_matrix(x.shape[1], w, self.interpolation, np.float32)
        if self.crop_to_aspect_ratio:
            top, ch, left, cw = _resample.aspect_crop(x.shape[0], x.shape[1], h, w)
            rows = _resample.resize_matrix(ch, h, self.interpolation, np.float32)
            rows = rows @ _resample.crop_matrix(x.shape[0], top, ch, np.float32)
            cols = _resample.resize_matrix(cw, w, self.interpolation, np.float32)
            cols = cols @ _resample.crop_matrix(x.shape[1], left, cw, np.float32)
        return _resample.apply(x[None], rows, cols)[0]

    def _targets(self, idx: np.ndarray) -> np.ndarray | None:
        if self.labels is None or self.label_mode is None:
            return None
        y = self.labels[idx]
        if self.label_mode == "int":
            return y.astype(np.int32)
        if self.label_mode == "binary":
            return y.astype(np.float32)[:, None]
        n = len(self.class_names or []) or int(self.labels.max()) + 1
        return np.eye(n, dtype=np.float32)[y]

    def __getitem__(self, index: int) -> Any:
        if not is_int(index) or not -len(self) <= index < len(self):
            raise IndexError(
                f"ImageDataset: batch index {index!r} out of range for {len(self)} batches."
            )
        index = int(index) % len(self)
        size = self.batch_size or 1
        idx = self._order[index * size : (index + 1) * size]
        x = np.stack([self._load(self.file_paths[i]) for i in idx])
        y = self._targets(idx)
        if self.batch_size is None:
            x = x[0]
            y = None if y is None else y[0]
        return x if y is None else (x, y)

    def __iter__(self) -> Any:
        for i in range(len(self)):
            yield self[i]

    def on_epoch_end(self) -> None:
        """Reshuffle the order of the files (when ``shuffle``)."""
        if self.shuffle:
            self._rng.shuffle(self._order)

    # tf.data's methods, as Keras's scripts call them on this data set
    def map(self, map_func: Any, num_parallel_calls: Any = None, deterministic: Any = None) -> Any:
        """The batches with ``map_func(x, y)`` applied (a :class:`layernet.data.Dataset`)."""
        from .data import Dataset

        return Dataset.from_batches(self).map(map_func, num_parallel_calls, deterministic)

    def take(self, count: int) -> Any:
        """The first ``count`` batches (a :class:`layernet.data.Dataset`)."""
        from .data import Dataset

        return Dataset.from_batches(self).take(count)

    def prefetch(self, buffer_size: int) -> Any:
        """This data set (accepted for ``tf.data``'s scripts; nothing runs ahead)."""
        return self

    def __repr__(self) -> str:
        return (
            f"ImageDataset({len(self.file_paths)} files, {len(self)} batches, "
            f"class_names={self.class_names})"
        )


def _index_directory(
    directory: str, labels: Any, class_names: list[str] | None, where: str
) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """Image files of ``directory`` in Keras's order, and their labels."""
    if labels == "inferred":
        subdirs = sorted(
            d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d))
        )
        if class_names is not None:
            missing = sorted(set(class_names) - set(subdirs))
            if missing or sorted(class_names) != subdirs:
                raise ValueError(
                    f"{where}: `class_names` must list the subfolders of {directory!r} "
                    f"({subdirs}), received {class_names!r}."
                )
            subdirs = list(class_names)
        paths: list[str] = []
        label_list: list[int] = []
        for k, sub in enumerate(subdirs):
            for root, dirs, files in os.walk(os.path.join(directory, sub), followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    if name.lower().endswith(ALLOWED_FORMATS):
                        paths.append(os.path.join(root, name))
                        label_list.append(k)
        return paths, np.asarray(label_list, dtype=np.int64), subdirs
    paths = []
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(ALLOWED_FORMATS):
                paths.append(os.path.join(root, name))
    if labels is None:
        return paths, None, None
    values = np.asarray(labels)
    if values.ndim != 1 or len(values) != len(paths) or values.dtype.kind not in "iu":
        raise ValueError(
            f"{where}: `labels` must be 'inferred', None, or a list of ints with one per image "
            f"file ({len(paths)} found, in alphanumeric order), received {len(values)} labels."
        )
    return paths, values.astype(np.int64), None


def image_dataset_from_directory(
    directory: str | os.PathLike,
    labels: Any = "inferred",
    label_mode: str | None = "int",
    class_names: list[str] | None = None,
    color_mode: str = "rgb",
    batch_size: int | None = 32,
    image_size: tuple[int, int] = (256, 256),
    shuffle: bool = True,
    seed: int | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    interpolation: str = "bilinear",
    follow_links: bool = False,
    crop_to_aspect_ratio: bool = False,
) -> Any:
    r"""Image batches from a folder per class (``keras.utils.image_dataset_from_directory``).

    With ``labels="inferred"`` the folder holds one subfolder per class::

        directory/
            cats/  a.jpg  b.png ...
            dogs/  c.jpg ...

    and the classes are the subfolders in alphanumeric order (or ``class_names``).
    Files ending in .bmp, .gif, .jpeg, .jpg or .png are read (also in nested folders).

    Parameters
    ----------
    directory : str or path-like
    labels : "inferred", None, or list of int, default "inferred"
        ``None``: no labels; a list: one label per file, in the alphanumeric order
        of the files' paths.
    label_mode : {"int", "categorical", "binary", None}, default "int"
        ``"int"``: int32 labels ``(batch,)``; ``"categorical"``: float32 one-hot
        ``(batch, classes)``; ``"binary"``: float32 ``(batch, 1)`` (two classes);
        ``None``: batches of images only.
    class_names : list of str, optional
        The order of the classes (must name every subfolder).
    color_mode : {"rgb", "grayscale", "rgba"}, default "rgb"
        3, 1 or 4 channels.
    batch_size : int or None, default 32
        ``None`` gives single images.
    image_size : (int, int), default (256, 256)
        ``(height, width)`` every image is resized to (as Keras, with no antialiasing).
    shuffle : bool, default True
        Shuffle the files (once before any split, and again after every epoch).
    seed : int, optional
        Seed of the shuffles; required with ``validation_split`` and ``shuffle``.
    validation_split : float, optional
        Fraction in (0, 1) held out for validation.
    subset : {"training", "validation", "both"}, optional
        Which part to return with ``validation_split`` (``"both"``: a tuple).
    interpolation : {"bilinear", "nearest"}, default "bilinear"
    follow_links : bool, default False
        Accepted for Keras compatibility (links are not followed).
    crop_to_aspect_ratio : bool, default False
        Crop the centre to the target aspect ratio before resizing.

    Returns
    -------
    ImageDataset, or a tuple (training, validation) with ``subset="both"``
        ``len()`` batches; item ``i`` is ``(x, y)`` with ``x`` float32 of shape
        ``(batch, height, width, channels)`` (values 0-255) and ``y`` as
        ``label_mode`` says; ``class_names`` lists the classes.

    Raises
    ------
    ImportError
        Without Pillow: ``image_dataset_from_directory needs the 'pillow' package: ...``.
    ValueError
        A missing folder, no image files, and every invalid argument (named, with
        what was expected and received): ``label_mode``, ``labels``, ``class_names``,
        ``color_mode``, ``batch_size``, ``image_size``, ``validation_split``,
        ``subset`` (required with a split), ``interpolation``; ``"binary"`` with
        other than two classes; a split with ``shuffle`` but no ``seed``.

    Notes
    -----
    The files are sorted, shuffled with ``numpy.random.RandomState(seed)`` as Keras
    does, then the last ``int(validation_split * n)`` go to validation. As Keras, it
    prints how many files it found (``Found 6 files belonging to 2 classes.``) and,
    with a split, how many each subset uses.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import layernet as ln
    >>> root = tempfile.mkdtemp()
    >>> for cls in ("cat", "dog"):
    ...     os.mkdir(os.path.join(root, cls))
    ...     for k in range(3):
    ...         ln.utils.save_img(os.path.join(root, cls, f"{k}.png"), np.zeros((5, 4, 3)))
    >>> ds = ln.utils.image_dataset_from_directory(root, image_size=(8, 8), batch_size=4, seed=0)
    Found 6 files belonging to 2 classes.
    >>> len(ds), ds.class_names
    (2, ['cat', 'dog'])
    >>> x, y = ds[0]
    >>> x.shape, x.dtype, y.dtype
    ((4, 8, 8, 3), dtype('float32'), dtype('int32'))
    """
    where = "image_dataset_from_directory"
    _pil(where)
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"{where}: `directory` {directory!r} is not a folder.")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(
            f"{where}: invalid value for `label_mode`: expected 'int', 'categorical', "
            f"'binary' or None, received {label_mode!r}."
        )
    if labels is None:
        label_mode = None
    elif not (
        labels == "inferred"
        if isinstance(labels, str)
        else isinstance(labels, list | tuple | np.ndarray)
    ):
        raise ValueError(
            f"{where}: invalid value for `labels`: expected 'inferred', None or a list of "
            f"ints, received {labels!r}."
        )
    if class_names is not None and labels != "inferred":
        raise ValueError(
            f"{where}: `class_names` is only valid with labels='inferred', received "
            f"labels={labels!r}."
        )
    _color_mode(color_mode, where)
    if batch_size is not None and not (is_int(batch_size) and batch_size > 0):
        raise ValueError(
            f"{where}: invalid value for `batch_size`: expected a positive int or None, "
            f"received {batch_size!r}."
        )
    size = _size(image_size, "image_size", where)
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(
            f"{where}: invalid value for `interpolation`: expected 'bilinear' or 'nearest', "
            f"received {interpolation!r}."
        )
    if validation_split is not None:
        if not (isinstance(validation_split, int | float) and 0 < validation_split < 1):
            raise ValueError(
                f"{where}: invalid value for `validation_split`: expected a number in (0, 1), "
                f"received {validation_split!r}."
            )
        if subset not in ("training", "validation", "both"):
            raise ValueError(
                f"{where}: invalid value for `subset`: expected 'training', 'validation' or "
                f"'both' with a validation_split, received {subset!r}."
            )
        if shuffle and seed is None:
            raise ValueError(
                f"{where}: with `validation_split` and `shuffle`, pass a `seed` so that the "
                f"training and validation subsets do not overlap."
            )
    elif subset is not None:
        raise ValueError(f"{where}: `subset`={subset!r} needs a `validation_split`, received None.")

    paths, label_values, names = _index_directory(directory, labels, class_names, where)
    if not paths:
        raise ValueError(
            f"{where}: no image files ({', '.join(ALLOWED_FORMATS)}) found in {directory!r}."
        )
    if names is not None:  # Keras's report
        print(f"Found {len(paths)} files belonging to {len(names)} classes.")
    else:
        print(f"Found {len(paths)} files.")
    if label_mode == "binary":
        count = len(names) if names is not None else len(np.unique(np.asarray(label_values)))
        if count != 2:
            raise ValueError(
                f"{where}: label_mode='binary' needs exactly 2 classes, found {count}."
            )
    if shuffle:
        if seed is None:
            seed = int(np.random.default_rng().integers(1_000_000))
        order = np.arange(len(paths))
        np.random.RandomState(seed).shuffle(order)
        paths = [paths[i] for i in order]
        if label_values is not None:
            label_values = label_values[order]

    def make(part: slice) -> ImageDataset:
        return ImageDataset(
            paths[part],
            None if label_values is None else label_values[part],
            label_mode,
            names,
            color_mode,
            batch_size,
            size,
            shuffle,
            seed,
            interpolation,
            crop_to_aspect_ratio,
        )

    if validation_split is None:
        return make(slice(None))
    n_val = int(validation_split * len(paths))
    train, val = slice(0, len(paths) - n_val), slice(len(paths) - n_val, None)
    if subset in ("training", "both"):
        print(f"Using {len(paths) - n_val} files for training.")
    if subset in ("validation", "both"):
        print(f"Using {n_val} files for validation.")
    if subset == "training":
        return make(train)
    if subset == "validation":
        return make(val)
    return make(train), make(val)
