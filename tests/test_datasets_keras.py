"""Keras's data set loaders: the same arrays as ``keras.datasets`` on the same files.

Each test writes a small file of the real format into a temporary ``KERAS_HOME``,
then calls Keras's loader and layernet's on that folder. Nothing is downloaded:
layernet's opener and Keras's ``urlretrieve`` are replaced by functions that fail.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import tarfile
import time
import urllib.error

import numpy as np
import pytest

import layernet as ln
from layernet import _files
from layernet.datasets import _keras_files

os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh KERAS_HOME for both libraries, and no network for either."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(_files, "opener", offline)
    (tmp_path / "datasets").mkdir()
    return tmp_path


@pytest.fixture
def keras(home, monkeypatch):
    keras = pytest.importorskip("keras")
    from keras.src.backend import config
    from keras.src.utils import file_utils

    monkeypatch.setattr(config, "_KERAS_DIR", str(home))
    monkeypatch.setattr(file_utils, "urlretrieve", lambda *a, **k: pytest.fail("downloading"))
    # The files are ours, not the originals: Keras's hash check would ask for a download.
    monkeypatch.setattr(file_utils, "validate_file", lambda *a, **k: True)
    return keras


def register(monkeypatch, key: str, path) -> None:
    """Make layernet's hash check accept the file the test wrote (it still runs)."""
    entry = _keras_files.FILES[key]
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if entry.file_hash else ""
    monkeypatch.setitem(_keras_files.FILES, key, entry._replace(file_hash=digest))


def assert_same(ours, theirs):
    (a, b), (c, d) = ours
    (e, f), (g, h) = theirs
    for x, y in ((a, e), (b, f), (c, g), (d, h)):
        assert type(x) is type(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        if x.dtype == object:
            assert [list(s) for s in x] == [list(s) for s in y]
        else:
            np.testing.assert_array_equal(x, y)


def test_mnist(home, keras, monkeypatch, rng):
    p = home / "datasets" / "mnist.npz"
    np.savez(
        p,
        x_train=rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, 7, dtype=np.uint8),
        x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, 3, dtype=np.uint8),
    )
    register(monkeypatch, "mnist.npz", p)
    assert_same(ln.datasets.mnist.load_data(), keras.datasets.mnist.load_data())


def test_fashion_mnist(home, keras, monkeypatch, rng):
    folder = home / "datasets" / "fashion-mnist"
    folder.mkdir()
    for prefix, n in (("train", 5), ("t10k", 3)):
        labels = b"\0" * 8 + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        images = b"\0" * 16 + rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes()
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
    assert_same(ln.datasets.fashion_mnist.load_data(), keras.datasets.fashion_mnist.load_data())


def cifar_archive(path, root: str, batches: dict[str, tuple[str, int]], rng):
    with tarfile.open(path, "w:gz") as tar:
        for name, (key, n) in batches.items():
            d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
            d[key.encode()] = rng.integers(0, 10, n).tolist()
            if key == "fine_labels":
                d[b"coarse_labels"] = rng.integers(0, 20, n).tolist()
            data = pickle.dumps(d, protocol=3)
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_cifar10(home, keras, monkeypatch, rng):
    p = home / "datasets" / "cifar-10-batches-py-target_archive"
    batches = {f"data_batch_{i}": ("labels", 2) for i in range(1, 6)}
    cifar_archive(p, "cifar-10-batches-py", {**batches, "test_batch": ("labels", 3)}, rng)
    register(monkeypatch, "cifar-10-batches-py-target", p)
    ours = ln.datasets.cifar10.load_data()
    (x, y), _ = ours
    assert x.shape == (10, 32, 32, 3) and y.shape == (10, 1) and x.dtype == np.uint8
    # keras.datasets.cifar10 preallocates 10,000 training images per batch file: its
    # own reader's output is padded to that size, and the rows our files fill compared.
    from keras.src.datasets import cifar10 as keras_cifar10

    real = keras_cifar10.load_batch

    def padded(fpath, label_key="labels"):
        data, labels = real(fpath, label_key)
        if "data_batch" not in fpath:
            return data, labels
        full = np.zeros((10000, *data.shape[1:]), data.dtype)
        full[: len(data)] = data
        return full, list(labels) + [0] * (10000 - len(labels))

    monkeypatch.setattr(keras_cifar10, "load_batch", padded)
    (kx, ky), (kxt, kyt) = keras.datasets.cifar10.load_data()
    rows = [k * 10000 + j for k in range(5) for j in range(2)]
    assert_same(ours, ((kx[rows], ky[rows]), (kxt, kyt)))


def test_cifar10_from_an_extracted_folder_without_the_archive(home, monkeypatch, rng):
    p = home / "datasets" / "cifar-10-batches-py-target_archive"
    batches = {f"data_batch_{i}": ("labels", 1) for i in range(1, 6)}
    cifar_archive(p, "cifar-10-batches-py", {**batches, "test_batch": ("labels", 2)}, rng)
    register(monkeypatch, "cifar-10-batches-py-target", p)
    first = ln.datasets.cifar10.load_data()
    p.unlink()  # only the extracted folder is left (as when copied by hand): no download
    assert_same(ln.datasets.cifar10.load_data(), first)


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100(home, keras, monkeypatch, rng, label_mode):
    p = home / "datasets" / "cifar-100-python-target_archive"
    cifar_archive(
        p, "cifar-100-python", {"train": ("fine_labels", 4), "test": ("fine_labels", 2)}, rng
    )
    register(monkeypatch, "cifar-100-python-target", p)
    assert_same(
        ln.datasets.cifar100.load_data(label_mode),
        keras.datasets.cifar100.load_data(label_mode),
    )
    with pytest.raises(ValueError, match=r"`label_mode`: expected 'fine' or 'coarse'"):
        ln.datasets.cifar100.load_data("medium")


def ragged(rng, n, vocab=40):
    seqs = [rng.integers(1, vocab, rng.integers(1, 12)).tolist() for _ in range(n)]
    out = np.empty(n, dtype=object)
    out[:] = seqs
    return out


SEQUENCE_OPTIONS = [
    {},
    {"num_words": 20, "skip_top": 2},
    {"maxlen": 8, "seed": 1},
    {"start_char": None, "oov_char": None, "index_from": 0, "num_words": 15},
    {"start_char": None, "index_from": 2},
]


@pytest.mark.parametrize("options", SEQUENCE_OPTIONS)
def test_imdb(home, keras, monkeypatch, rng, options):
    p = home / "datasets" / "imdb.npz"
    np.savez(
        p,
        x_train=ragged(rng, 9),
        y_train=rng.integers(0, 2, 9),
        x_test=ragged(rng, 6),
        y_test=rng.integers(0, 2, 6),
    )
    register(monkeypatch, "imdb.npz", p)
    assert_same(ln.datasets.imdb.load_data(**options), keras.datasets.imdb.load_data(**options))


@pytest.mark.parametrize("options", [*SEQUENCE_OPTIONS, {"test_split": 0.5}])
def test_reuters(home, keras, monkeypatch, rng, options):
    p = home / "datasets" / "reuters.npz"
    np.savez(p, x=ragged(rng, 11), y=rng.integers(0, 46, 11))
    register(monkeypatch, "reuters.npz", p)
    assert_same(
        ln.datasets.reuters.load_data(**options), keras.datasets.reuters.load_data(**options)
    )


@pytest.mark.parametrize("module", ["imdb", "reuters"])
def test_word_index(home, keras, monkeypatch, module):
    p = home / "datasets" / f"{module}_word_index.json"
    p.write_text(json.dumps({"the": 1, "a": 2}))
    key = f"{module}_word_index.json"
    entry = _keras_files.FILES[key]
    monkeypatch.setitem(
        _keras_files.FILES, key, entry._replace(file_hash=hashlib.md5(p.read_bytes()).hexdigest())
    )
    ours = getattr(ln.datasets, module).get_word_index()
    assert ours == getattr(keras.datasets, module).get_word_index() == {"the": 1, "a": 2}


@pytest.mark.parametrize("test_split", [0.2, 0.5, 0.0])
def test_boston_housing(home, keras, monkeypatch, rng, test_split):
    p = home / "datasets" / "boston_housing.npz"
    np.savez(p, x=rng.standard_normal((13, 13)), y=rng.standard_normal(13))
    register(monkeypatch, "boston_housing.npz", p)
    assert_same(
        ln.datasets.boston_housing.load_data(test_split=test_split, seed=3),
        keras.datasets.boston_housing.load_data(test_split=test_split, seed=3),
    )


@pytest.mark.parametrize("version", ["large", "small"])
def test_california_housing(home, keras, monkeypatch, rng, version):
    p = home / "datasets" / "california_housing.npz"
    np.savez(p, x=rng.standard_normal((700, 8)).astype(np.float32), y=rng.standard_normal(700))
    register(monkeypatch, "california_housing.npz", p)
    assert_same(
        ln.datasets.california_housing.load_data(version),
        keras.datasets.california_housing.load_data(version),
    )


def test_layernet_checks_the_hash_of_a_cached_file(home, monkeypatch):
    (home / "datasets" / "mnist.npz").write_bytes(b"not the real file")
    with pytest.raises(ln.utils.DownloadError, match=r"mnist\.npz"):
        ln.datasets.mnist.load_data()  # the hash differs: a download is attempted, and fails


@pytest.mark.parametrize(
    "call, file",
    [
        (lambda: ln.datasets.mnist.load_data(), "mnist.npz"),
        (lambda: ln.datasets.fashion_mnist.load_data(), "train-labels-idx1-ubyte.gz"),
        (lambda: ln.datasets.cifar10.load_data(), "cifar-10-batches-py-target_archive"),
        (lambda: ln.datasets.cifar100.load_data(), "cifar-100-python-target_archive"),
        (lambda: ln.datasets.imdb.load_data(), "imdb.npz"),
        (lambda: ln.datasets.imdb.get_word_index(), "imdb_word_index.json"),
        (lambda: ln.datasets.reuters.load_data(), "reuters.npz"),
        (lambda: ln.datasets.boston_housing.load_data(), "boston_housing.npz"),
        (lambda: ln.datasets.california_housing.load_data(), "california_housing.npz"),
    ],
)
def test_offline_without_the_file_fails_fast_and_clearly(home, call, file):
    start = time.perf_counter()
    with pytest.raises(ln.utils.DownloadError) as info:
        call()
    assert time.perf_counter() - start < 1
    msg = str(info.value)
    assert f"'{file}'" in msg and "https://" in msg and str(home / "datasets") in msg


def test_bad_arguments(home):
    with pytest.raises(ValueError, match=r"imdb\.load_data: invalid value for `num_words`"):
        ln.datasets.imdb.load_data(num_words=-1)
    with pytest.raises(ValueError, match=r"reuters\.load_data: invalid value for `test_split`"):
        ln.datasets.reuters.load_data(test_split=1.0)
    with pytest.raises(ValueError, match=r"`version`: expected 'large' or 'small'"):
        ln.datasets.california_housing.load_data("medium")
