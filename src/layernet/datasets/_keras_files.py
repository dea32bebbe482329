"""What Keras's data set loaders read: origins, file names, hashes, and safe readers.

The loaders in this package fetch the same files from the same places as
``keras.datasets`` and keep them in the same cache folder (see
:func:`layernet.utils.get_file`).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any, NamedTuple

import numpy as np

from .. import _files


class KerasFile(NamedTuple):
    """One file a Keras loader reads: its origin and its hash."""

    origin: str
    file_hash: str


_GCS = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

#: Keras's files by name (``fname`` in the cache's ``datasets`` folder), with the
#: hashes Keras checks them against.
FILES: dict[str, KerasFile] = {
    "mnist.npz": KerasFile(
        _GCS + "mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
    ),
    "fashion-mnist/train-labels-idx1-ubyte.gz": KerasFile(_GCS + "train-labels-idx1-ubyte.gz", ""),
    "fashion-mnist/train-images-idx3-ubyte.gz": KerasFile(_GCS + "train-images-idx3-ubyte.gz", ""),
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": KerasFile(_GCS + "t10k-labels-idx1-ubyte.gz", ""),
    "fashion-mnist/t10k-images-idx3-ubyte.gz": KerasFile(_GCS + "t10k-images-idx3-ubyte.gz", ""),
    "cifar-10-batches-py-target": KerasFile(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    "cifar-100-python-target": KerasFile(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ),
    "imdb.npz": KerasFile(
        _GCS + "imdb.npz", "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    ),
    "imdb_word_index.json": KerasFile(
        _GCS + "imdb_word_index.json", "bfafd718b763782e994055a2d397834f"
    ),
    "reuters.npz": KerasFile(
        _GCS + "reuters.npz", "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    ),
    "reuters_word_index.json": KerasFile(
        _GCS + "reuters_word_index.json", "4d44cc38712099c9e383dc6e5f11a921"
    ),
    "boston_housing.npz": KerasFile(
        _GCS + "boston_housing.npz",
        "f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5",
    ),
    "california_housing.npz": KerasFile(
        _GCS + "california_housing.npz",
        "1a2e3a52e0398de6463aebe6f4a8da34fb21fbb6b934cf88c3425e766f2a1a6f",
    ),
}


def fetch(key: str, where: str, fname: str | None = None, **kwargs: Any) -> str:
    """The cached path of Keras's file ``key`` (downloaded when missing), as Keras names it.

    ``fname`` is the loader's ``path`` argument (Keras's ``fname``): the name in the
    cache, which defaults to ``key``.
    """
    entry = FILES[key]
    subdir = "datasets"
    if "/" in key:  # fashion-mnist's files live in datasets/fashion-mnist
        folder, key = key.split("/", 1)
        subdir = f"datasets/{folder}"
    name = key if fname is None else fname
    return _files._get_file(
        where,
        name,
        entry.origin,
        file_hash=entry.file_hash or None,
        cache_subdir=subdir,
        **kwargs,
    )


_ALLOWED = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }
)


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else (no other global can be loaded)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name} from a data set file: only NumPy arrays are "
            f"allowed (the file may be corrupted or tampered with)."
        )


def _read_npy(buf: io.BytesIO) -> np.ndarray:
    try:
        return np.lib.format.read_array(buf, allow_pickle=False)
    except ValueError:  # an object array: its payload is a pickle stream
        buf.seek(0)
        major, _ = np.lib.format.read_magic(buf)
        if major == 1:
            np.lib.format.read_array_header_1_0(buf)
        elif major in (2, 3):
            np.lib.format.read_array_header_2_0(buf)
        else:
            raise ValueError(f"unsupported .npy format version {major}") from None
        return ArrayUnpickler(buf).load()


def load_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file; object arrays through :class:`ArrayUnpickler`."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    out[member[: -len(".npy")]] = _read_npy(io.BytesIO(raw.read()))
    return out


def load_cifar_batch(path: str, label_key: str = "labels") -> tuple[np.ndarray, Any]:
    """One pickled CIFAR batch: data ``(n, 3, 32, 32)`` uint8 and its labels (a list)."""
    with open(path, "rb") as f:
        d = ArrayUnpickler(f, encoding="bytes").load()
    d = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in d.items()}
    data = d["data"]
    return data.reshape(data.shape[0], 3, 32, 32), d[label_key]


def split(
    x: np.ndarray, y: np.ndarray, test_split: float, seed: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Keras's shuffled train/test split (``RandomState(seed).shuffle``)."""
    order = np.arange(len(x))
    np.random.RandomState(seed).shuffle(order)
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - test_split))
    return (np.array(x[:cut]), np.array(y[:cut])), (np.array(x[cut:]), np.array(y[cut:]))


def check_test_split(test_split: Any, where: str) -> float:
    if isinstance(test_split, bool) or not isinstance(test_split, int | float):
        ok = False
    else:
        ok = 0 <= test_split < 1
    if not ok:
        raise ValueError(
            f"{where}: invalid value for `test_split`: expected a number in [0, 1), "
            f"received {test_split!r}."
        )
    return float(test_split)


def check_sequence_args(where: str, **kwargs: Any) -> None:
    """Validate imdb/reuters integer options (None allowed where Keras allows it)."""
    for arg, value in kwargs.items():
        optional = arg in ("num_words", "maxlen", "start_char", "oov_char")
        if value is None and optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            expected = "a non-negative int or None" if optional else "a non-negative int"
            raise ValueError(
                f"{where}: invalid value for `{arg}`: expected {expected}, received {value!r}."
            )


def encode(
    xs: list[list[int]],
    num_words: int | None,
    skip_top: int,
    oov_char: int | None,
) -> list[list[int]]:
    """Keras's vocabulary cut: words outside ``[skip_top, num_words)`` become ``oov_char``
    (or are dropped when it is ``None``)."""
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def shift(xs: Any, start_char: int | None, index_from: int) -> list[list[int]]:
    """Prepend ``start_char`` and add ``index_from`` to every index, as Keras does."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    if index_from:
        return [[w + index_from for w in x] for x in xs]
    return [list(x) for x in xs]


def drop_long(maxlen: int, xs: list[list[int]], labels: Any) -> tuple[list[list[int]], Any]:
    """Keep the sequences shorter than ``maxlen`` (strictly, as Keras does)."""
    kept = [(x, y) for x, y in zip(xs, labels, strict=True) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]
