"""Image utilities: load/save/convert (Keras's as oracle) and image_dataset_from_directory."""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import layernet as ln
from layernet import _images

pytest.importorskip("PIL", reason="needs the 'images' extra")
os.environ.setdefault("KERAS_BACKEND", "jax")


@pytest.mark.parametrize("channels, mode", [(3, "rgb"), (1, "grayscale"), (4, "rgba")])
def test_save_and_load_round_trip(tmp_path, rng, channels, mode):
    x = rng.integers(0, 256, (5, 7, channels)).astype(np.float32)
    path = tmp_path / "img.png"
    ln.utils.save_img(path, x, scale=False)
    img = ln.utils.load_img(path, color_mode=mode)
    y = ln.utils.img_to_array(img)
    assert y.shape == (5, 7, channels) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x)


def test_against_keras(tmp_path, rng):
    keras = pytest.importorskip("keras")
    x = rng.uniform(-3, 5, (6, 9, 3))
    a, b = ln.utils.array_to_img(x), keras.utils.array_to_img(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    path = tmp_path / "k.png"
    keras.utils.save_img(path, x)
    for kwargs in (
        {},
        {"color_mode": "grayscale"},
        {"target_size": (4, 5)},
        {"target_size": (3, 3), "interpolation": "bilinear", "keep_aspect_ratio": True},
        {"target_size": (8, 2), "keep_aspect_ratio": True},
    ):
        ours = ln.utils.img_to_array(ln.utils.load_img(path, **kwargs))
        theirs = keras.utils.img_to_array(keras.utils.load_img(path, **kwargs))
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"array_to_img: expected an array of shape"):
        ln.utils.array_to_img(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"`color_mode`"):
        ln.utils.load_img(tmp_path / "x.png", color_mode="cmyk")
    with pytest.raises(FileNotFoundError):
        ln.utils.load_img(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"`data_format`"):
        ln.utils.img_to_array(ln.utils.array_to_img(np.zeros((2, 2, 3))), "channels_first")

    real = importlib.import_module

    def no_pil(name, *a, **k):
        if name.startswith("PIL"):
            raise ImportError("no PIL")
        return real(name, *a, **k)

    monkeypatch.setattr(_images.importlib, "import_module", no_pil)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[images\]'"):
        ln.utils.load_img(tmp_path / "x.png")


def make_tree(root, sizes, rng):
    """Three classes; the red channel of every image is its class index * 50."""
    files = {}
    for name in ["b_dogs", "a_cats", "c_birds"]:
        os.makedirs(root / name / "nested")
        for i, (h, w) in enumerate(sizes):
            img = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
            img[..., 0] = {"a_cats": 0, "b_dogs": 1, "c_birds": 2}[name] * 50
            sub = "nested" if i % 2 else ""
            path = root / name / sub / f"img{i}.png"
            ln.utils.save_img(path, img, scale=False)
            files[str(path)] = img
    (root / "a_cats" / "notes.txt").write_text("not an image")
    return files


def test_image_dataset_labels_and_batches(tmp_path, rng):
    files = make_tree(tmp_path, [(6, 6), (4, 5), (6, 6), (5, 3)], rng)
    ds = ln.utils.image_dataset_from_directory(
        tmp_path, image_size=(6, 6), batch_size=5, seed=1, interpolation="nearest"
    )
    assert ds.class_names == ["a_cats", "b_dogs", "c_birds"]
    assert len(ds) == 3 and len(ds.file_paths) == 12
    seen = 0
    for x, y in ds:
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape[1:] == (6, 6, 3)
        np.testing.assert_array_equal(x[:, 0, 0, 0], y * 50.0)
        seen += len(x)
    assert seen == 12
    # Images of the target size are returned as they are.
    for path, label in zip(ds.file_paths, ds.labels):
        if files[path].shape[:2] == (6, 6):
            assert path.split(os.sep)[-2 if "nested" not in path else -3] == ds.class_names[label]
    first = [ds[i][1].tolist() for i in range(len(ds))]
    ds.on_epoch_end()
    assert [ds[i][1].tolist() for i in range(len(ds))] != first or len(ds) == 1


def test_image_dataset_resizes_like_the_resizing_layer(tmp_path, rng):
    img = rng.integers(0, 256, (7, 5, 3)).astype(np.float32)
    os.makedirs(tmp_path / "only")
    ln.utils.save_img(tmp_path / "only" / "a.png", img, scale=False)
    for crop in (False, True):
        ds = ln.utils.image_dataset_from_directory(
            tmp_path, image_size=(4, 6), shuffle=False, crop_to_aspect_ratio=crop
        )
        x, _ = ds[0]
        expected = ln.Resizing(4, 6, crop_to_aspect_ratio=crop).forward(img[None])
        np.testing.assert_allclose(x, expected, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("label_mode", ["categorical", "binary", None])
def test_label_modes(tmp_path, rng, label_mode):
    make_tree(tmp_path, [(3, 3)] * 2, rng)
    if label_mode == "binary":
        with pytest.raises(ValueError, match=r"exactly 2 classes, found 3"):
            ln.utils.image_dataset_from_directory(tmp_path, label_mode="binary")
        ds = ln.utils.image_dataset_from_directory(
            tmp_path, label_mode="binary", class_names=None, image_size=(3, 3), labels=[0, 1] * 3
        )
        _, y = ds[0]
        assert y.shape == (6, 1) and y.dtype == np.float32
        return
    ds = ln.utils.image_dataset_from_directory(
        tmp_path, label_mode=label_mode, image_size=(3, 3), batch_size=None
    )
    item = ds[0]
    if label_mode is None:
        assert item.shape == (3, 3, 3)
    else:
        x, y = item
        assert y.shape == (3,) and y.sum() == 1 and y.dtype == np.float32
        assert x[0, 0, 0] == 50 * int(np.argmax(y))


def test_validation_split(tmp_path, rng):
    make_tree(tmp_path, [(3, 3)] * 4, rng)
    kw = {"image_size": (3, 3), "validation_split": 0.25, "seed": 5}
    train, val = ln.utils.image_dataset_from_directory(tmp_path, subset="both", **kw)
    assert len(train.file_paths) == 9 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    again = ln.utils.image_dataset_from_directory(tmp_path, subset="validation", **kw)
    assert again.file_paths == val.file_paths
    # Keras's order: sorted files shuffled by RandomState(seed), last 25% held out.
    every = ln.utils.image_dataset_from_directory(tmp_path, image_size=(3, 3), shuffle=False)
    order = np.arange(12)
    np.random.RandomState(5).shuffle(order)
    assert sorted(val.file_paths) == sorted(every.file_paths[i] for i in order[-3:])


def test_bad_arguments(tmp_path, rng):
    make_tree(tmp_path, [(3, 3)], rng)
    call = ln.utils.image_dataset_from_directory
    with pytest.raises(ValueError, match=r"pass a `seed`"):
        call(tmp_path, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match=r"`subset`"):
        call(tmp_path, validation_split=0.2, seed=1)
    with pytest.raises(ValueError, match=r"`label_mode`"):
        call(tmp_path, label_mode="sparse")
    with pytest.raises(ValueError, match=r"`class_names` must list the subfolders"):
        call(tmp_path, class_names=["a_cats"])
    with pytest.raises(ValueError, match=r"`image_size`"):
        call(tmp_path, image_size=(0, 3))
    with pytest.raises(ValueError, match=r"is not a folder"):
        call(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"no image files"):
        os.makedirs(tmp_path / "empty" / "x")
        call(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"`labels` must be"):
        call(tmp_path, labels=[0, 1])
