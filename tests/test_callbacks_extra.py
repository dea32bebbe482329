"""TensorBoard event files, BackupAndRestore's resumption, ProgbarLogger."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import layernet as ln
from layernet.callbacks import BackupAndRestore, ProgbarLogger, TensorBoard, resume_epoch


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3))
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) > 0).astype("float64")
    return x, y


def _model(optimizer="adam"):
    model = ln.Sequential([ln.Dense(4, seed=1), ln.ReLU(), ln.Dense(1, seed=2), ln.Sigmoid()])
    model.compile(optimizer, "binary_crossentropy", metrics=["accuracy"])
    return model


# ---------------------------------------------------------------------------- TensorBoard


def test_tensorboard_writes_what_tensorboard_reads(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    x, y = _data()
    model = _model()
    tb = TensorBoard(tmp_path, histogram_freq=1, update_freq=2, write_steps_per_second=True)
    history = model.fit(
        x, y, epochs=3, batch_size=8, validation_split=0.25, verbose=0, callbacks=[tb], seed=0
    )
    train = accumulator.EventAccumulator(str(tmp_path / "train"), size_guidance={"scalars": 0})
    train.Reload()
    val = accumulator.EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    loss = train.Scalars("epoch_loss")
    assert [e.step for e in loss] == [0, 1, 2]
    np.testing.assert_allclose([e.value for e in loss], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(
        [e.value for e in train.Scalars("epoch_accuracy")], history.history["accuracy"], rtol=1e-6
    )
    np.testing.assert_allclose(
        [e.value for e in val.Scalars("epoch_loss")], history.history["val_loss"], rtol=1e-6
    )
    assert len(train.Scalars("epoch_learning_rate")) == 3
    assert all(e.value > 0 for e in train.Scalars("epoch_steps_per_second"))
    assert [e.step for e in train.Scalars("batch_loss")] == [
        2,
        4,
        6,
        8,
    ]  # 24 samples, 3 batches an epoch
    histograms = train.Tags()["histograms"]
    kernel = f"{model.layers[0].name}/kernel"
    assert kernel in histograms
    h = train.Histograms(kernel)[-1].histogram_value
    w = model.layers[0].params["kernel"]
    assert h.num == w.size and h.min == pytest.approx(w.min()) and h.max == pytest.approx(w.max())


def test_tensorboard_names_the_extra_when_missing(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    model = _model()
    with pytest.raises(ImportError, match=r"pip install -e '\.\[tensorboard\]'"):
        model.fit(*_data(), epochs=1, verbose=0, callbacks=[TensorBoard(tmp_path)])


def test_tensorboard_arguments_are_checked():
    with pytest.raises(ValueError, match="invalid value for `update_freq`"):
        TensorBoard("logs", update_freq="sometimes")
    with pytest.raises(ValueError, match="invalid value for `histogram_freq`"):
        TensorBoard("logs", histogram_freq=-1)
    with pytest.raises(TypeError, match="invalid value for `log_dir`"):
        TensorBoard(3)


def test_tensorboard_writes_on_rank_0_only(tmp_path):
    pytest.importorskip("tensorboard")
    tb = TensorBoard(tmp_path)
    tb.set_model(SimpleNamespace(distribute_strategy=SimpleNamespace(rank=1), layers=[]))
    tb.on_train_begin()
    tb.on_epoch_begin(0)
    tb.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    tb.on_train_end()
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------------- BackupAndRestore


class _Interrupt(ln.callbacks.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("save_freq", ["epoch", 4])
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, save_freq):
    """Per epoch: the run continues as if never stopped. Every 4 batches (one epoch here): the
    last backup came after epoch 2's last batch, before the epoch ended, so, as in Keras,
    epoch 2 runs again from those weights."""
    x, y = _data()
    whole = _model()
    whole.fit(x, y, epochs=5, batch_size=8, verbose=0, seed=3)

    first = _model()
    backup = BackupAndRestore(tmp_path, save_freq=save_freq)
    with pytest.raises(KeyboardInterrupt):
        first.fit(
            x, y, epochs=5, batch_size=8, verbose=0, seed=3, callbacks=[backup, _Interrupt(3)]
        )
    assert os.path.exists(backup.backup_path)  # an exception leaves the backup

    second = _model()  # a new process: fresh weights, fresh optimizer
    backup = BackupAndRestore(tmp_path, save_freq=save_freq)
    backup.set_model(second)
    backup.on_train_begin()
    start = 3 if save_freq == "epoch" else 2
    assert backup.initial_epoch == start and resume_epoch([backup], 0) == start
    saved = ln.load_model(backup.backup_path)
    for a, b in zip(second.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    history = second.fit(
        x,
        y,
        epochs=5,
        batch_size=8,
        verbose=0,
        seed=3,
        callbacks=[backup],
        initial_epoch=resume_epoch([backup], 0),
    )
    assert history.epoch == list(range(start, 5))
    assert not os.path.exists(backup.backup_path)  # deleted after a normal end
    if save_freq != "epoch":
        return
    for a, b in zip(second.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert second.optimizer.iterations == whole.optimizer.iterations


def test_backup_is_kept_on_request_and_written_by_rank_0_only(tmp_path):
    x, y = _data()
    model = _model()
    backup = BackupAndRestore(tmp_path / "a", delete_checkpoint=False)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[backup])
    assert ln.load_model(backup.backup_path).epochs_completed == 2
    other = BackupAndRestore(tmp_path / "b")
    other.set_model(SimpleNamespace(distribute_strategy=SimpleNamespace(rank=1)))
    other.on_train_begin()
    other.on_epoch_end(0)
    assert not (tmp_path / "b").exists()


def test_backup_arguments_are_checked():
    with pytest.raises(ValueError, match="invalid value for `save_freq`"):
        BackupAndRestore("x", save_freq=0)
    with pytest.raises(ValueError, match="invalid value for `delete_checkpoint`"):
        BackupAndRestore("x", delete_checkpoint="yes")


# ---------------------------------------------------------------------------- ProgbarLogger


def test_progbar_logger_takes_fit_verbosity(capsys):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=2, callbacks=[ProgbarLogger()])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert len(lines) == 2  # one bar, not two
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ProgbarLogger()])
    assert capsys.readouterr().out == ""
    assert isinstance(ProgbarLogger(), ln.ProgressBar)
