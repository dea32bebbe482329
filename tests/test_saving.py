"""Model files: round trips, atomic writes, and refusal of bad files without running code."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import layernet as ln
from layernet.saving import ModelFileError


def trained_model(seed: int = 0) -> tuple[ln.Sequential, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((30, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    model = ln.Sequential(
        [
            ln.Conv2D(3, 3, padding=((0, 1), 1), strides=(1, 2)),
            ln.ReLU(),
            ln.MaxPool((2, 1)),
            ln.AvgPool(1),
            ln.Flatten(),
            ln.Dense(3, use_bias=False),
        ]
    )
    model.compile(ln.SGD(0.05, momentum=0.9, nesterov=True), "softmax_cross_entropy", ["accuracy"])
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, seed=seed)
    return model, x


def test_round_trip_is_bit_identical_and_recompiled(tmp_path):
    model, x = trained_model()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = ln.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert [a.name for a in loaded.layers] == [b.name for b in model.layers]
    assert isinstance(loaded.loss, ln.SoftmaxCrossEntropy)
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    assert isinstance(loaded.optimizer, ln.SGD) and loaded.optimizer.nesterov
    # it can keep training
    loaded.fit(x, np.zeros(30, dtype=int), epochs=1, verbose=0)


def test_float64_model_round_trip(tmp_path):
    model = ln.Sequential([ln.Dense(3, dtype="float64"), ln.Sigmoid(dtype="float64")])
    model.build((None, 4), seed=1)
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    assert loaded.layers[0].params["kernel"].dtype == np.float64
    x = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.loss is None  # never compiled, so nothing to recompile


def test_weights_round_trip(tmp_path):
    model, x = trained_model()
    model.save_weights(tmp_path / "w.npz")
    other, _ = trained_model(seed=1)
    assert not np.array_equal(other.predict(x), model.predict(x))
    other.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    with pytest.raises(ModelFileError, match=r"holds only weights"):
        ln.load_model(tmp_path / "w.npz")


def test_no_pickle_and_no_temporary_files_left(tmp_path):
    model, _ = trained_model()
    model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == ["m.npz"]
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        for k in npz.files:
            assert npz[k].dtype != object


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    model, _x = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    model.layers[0].params["kernel"] += 1
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_non_finite_weights_are_refused_and_previous_file_kept(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()
    model.layers[0].params["kernel"][0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"save: Conv2D '.*' parameter 'kernel' holds NaN or inf"):
        model.save(path)
    assert path.read_bytes() == before


def test_missing_folder_and_unbuilt_model(tmp_path):
    model, _ = trained_model()
    with pytest.raises(FileNotFoundError, match=r"save: folder .* does not exist"):
        model.save(tmp_path / "nope" / "m.npz")
    with pytest.raises(RuntimeError, match=r"is not built yet"):
        ln.Sequential([ln.Dense(2)]).save(tmp_path / "m.npz")
    with pytest.raises(FileNotFoundError, match=r"load: no file at"):
        ln.load_model(tmp_path / "absent.npz")


# ----------------------------------------------------------- refused files
def rewrite(path, header_fn=None, arrays_fn=None):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    if header_fn:
        header = header_fn(header) or header
    if arrays_fn:
        arrays = arrays_fn(arrays) or arrays
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)


@pytest.fixture
def saved(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    return path


def test_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        ModelFileError,
        match=r"not a readable layernet file \(truncated or "
        r"corrupted",
    ):
        ln.load_model(saved)


def test_tampered_weight_bytes(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("layers.0.kernel.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
    data[offset] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"truncated or corrupted.*CRC"):
        ln.load_model(saved)


def test_not_a_layernet_file(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ModelFileError, match=r"is not a layernet file \(no header\)"):
        ln.load_model(path)
    path.write_text("hello")
    with pytest.raises(ModelFileError, match=r"not a readable layernet file"):
        ln.load_model(path)


def test_pickled_object_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "m.npz"
    model, _ = trained_model()
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["layers.0.kernel"] = np.array([Evil()], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(ModelFileError, match=r"holds a pickled object array; refusing"):
        ln.load_model(path)
    assert not marker.exists()


def test_unknown_layer_class_is_refused(saved):
    def evil(h):
        h["layers"][1] = {"class_name": "Popen", "config": {"args": "touch /tmp/x"}}

    rewrite(saved, evil)
    with pytest.raises(
        ModelFileError,
        match=r"names layer class 'Popen', which is not one of "
        r"layernet's layers",
    ):
        ln.load_model(saved)


def test_non_layer_registry_entries_and_bad_configs_are_refused(saved):
    rewrite(saved, lambda h: h["layers"].__setitem__(0, {"class_name": "Layer", "config": {}}))
    with pytest.raises(ModelFileError, match=r"names layer class 'Layer'"):
        ln.load_model(saved)


def test_bad_constructor_arguments_are_refused(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    rewrite(path, lambda h: h["layers"][0]["config"].update({"__class__": "x"}))
    with pytest.raises(ModelFileError, match=r"invalid arguments for Conv2D: \['__class__'\]"):
        ln.load_model(path)
    model.save(path)
    rewrite(path, lambda h: h["layers"][0]["config"].update({"filters": -4}))
    with pytest.raises(ModelFileError, match=r"cannot rebuild Conv2D:.*`filters`"):
        ln.load_model(path)


def test_missing_extra_and_misshapen_parameters_in_one_error(saved):
    def edit(arrays):
        del arrays["layers.0.bias"]
        arrays["layers.9.kernel"] = np.zeros(2, np.float32)
        arrays["layers.5.kernel"] = np.zeros((7, 3), np.float32)

    rewrite(saved, arrays_fn=edit)
    with pytest.raises(ModelFileError) as info:
        ln.load_model(saved)
    msg = str(info.value)
    assert "missing layers.0.bias (3,)" in msg
    assert "unexpected layers.9.kernel (2,)" in msg
    assert "layers.5.kernel: expected shape (18, 3), found (7, 3)" in msg


def test_wrong_format_version_and_garbage_header(saved):
    rewrite(saved, lambda h: h.update({"format_version": 99}))
    with pytest.raises(ModelFileError, match=r"format version 99; this layernet reads version 1"):
        ln.load_model(saved)
    with np.load(saved) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["header"] = np.frombuffer(b"{not json", np.uint8)
    np.savez(saved, **arrays)
    with pytest.raises(ModelFileError, match=r"header that is not valid JSON"):
        ln.load_model(saved)


def test_oversized_header_is_refused(saved, monkeypatch):
    import layernet.saving as saving

    monkeypatch.setattr(saving, "MAX_HEADER_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"member 'header.npy' .* above the limit of 100"):
        ln.load_model(saved)


def test_load_weights_into_a_different_architecture(tmp_path):
    model, _ = trained_model()
    model.save_weights(tmp_path / "w.npz")
    other = ln.Sequential([ln.Dense(3)])
    other.build((None, 5))
    with pytest.raises(ModelFileError, match=r"does not match the model's parameters"):
        other.load_weights(tmp_path / "w.npz")


@pytest.mark.parametrize(
    "optimizer",
    [
        ln.Adam(ln.CosineDecay(0.01, decay_steps=50, alpha=0.1), weight_decay=0.001),
        ln.SGD(ln.StepDecay(0.1, step_size=5, gamma=0.5), momentum=0.8),
    ],
)
def test_optimizer_and_schedule_round_trip(tmp_path, optimizer):
    model, _ = trained_model()
    model.compile(optimizer, "softmax_cross_entropy", ["accuracy"])
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(optimizer)
    assert loaded.optimizer.get_config() == optimizer.get_config()
    assert [loaded.optimizer.learning_rate(t) for t in (0, 7, 60)] == [
        optimizer.learning_rate(t) for t in (0, 7, 60)
    ]


def test_callable_learning_rate_is_not_stored_and_says_so(tmp_path):
    model, _ = trained_model()
    model.compile(ln.SGD(lambda step: 0.1), "softmax_cross_entropy")
    model.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match=r"learning rate given as Python code"):
        loaded = ln.load_model(tmp_path / "m.npz")
    assert isinstance(loaded.optimizer, ln.SGD) and loaded.optimizer.learning_rate == 0.01


def test_tampered_optimizer_entry_is_refused(saved):
    rewrite(
        saved,
        lambda h: h["compile"]["optimizer"]["config"].update(
            {"learning_rate": {"class_name": "os.system", "config": {"x": 1}}}
        ),
    )
    with pytest.raises(
        ModelFileError,
        match=r"cannot rebuild the optimizer: unknown "
        r"learning-rate schedule",
    ):
        ln.load_model(saved)


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_saved_file_gets_the_usual_mode_or_keeps_the_replaced_one(tmp_path):
    model, _ = trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    path.chmod(0o640)
    model.save(path)
    assert path.stat().st_mode & 0o777 == 0o640
