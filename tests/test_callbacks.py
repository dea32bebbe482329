"""Callbacks: EarlyStopping, ModelCheckpoint, TerminateOnNaN, LearningRateScheduler."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln


def data(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ np.array([[1.0], [2.0], [-1.0], [0.5]])).astype(np.float32)
    return x, y


def regression(lr: float = 0.05) -> ln.Sequential:
    model = ln.Sequential([ln.Dense(8), ln.Tanh(), ln.Dense(1)])
    model.compile(ln.SGD(lr), "mse")
    return model


class _FakeModel:
    def __init__(self):
        self.stop_training = False
        self.w = [np.zeros(1)]

    def get_weights(self):
        return [w.copy() for w in self.w]

    def set_weights(self, weights):
        self.w = [w.copy() for w in weights]


def test_early_stopping_logic_and_restore_best():
    cb = ln.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model = _FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, val in enumerate([1.0, 0.5, 0.6, 0.7, 0.8]):
        model.w = [np.array([float(epoch)])]
        cb.on_epoch_end(epoch, {"val_loss": val})
        if model.stop_training:
            break
    assert cb.stopped_epoch == 3 and cb.best == 0.5 and cb.best_epoch == 1
    cb.on_train_end()
    assert model.w[0][0] == 1.0  # weights of the best epoch


def test_early_stopping_in_fit_and_max_mode():
    x, y = data()
    model = regression()
    stop = ln.EarlyStopping(monitor="loss", patience=1, min_delta=1e9)
    h = model.fit(x, y, epochs=20, callbacks=[stop], verbose=0)
    assert len(h.history["loss"]) == 2 and stop.stopped_epoch == 1
    assert ln.EarlyStopping(monitor="val_accuracy").mode == "max"


def test_early_stopping_names_missing_monitor():
    x, y = data()
    with pytest.raises(
        ValueError,
        match=r"EarlyStopping: monitored value 'val_loss' is not in "
        r"the logs; available: \['loss'\]",
    ):
        regression().fit(x, y, epochs=2, callbacks=[ln.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match=r"`patience`"):
        ln.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"`mode`"):
        ln.EarlyStopping(mode="up")


def test_model_checkpoint_saves_best_only(tmp_path):
    x, y = data()
    path = tmp_path / "best.npz"
    ckpt = ln.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    model = regression()
    h = model.fit(
        x[:40],
        y[:40],
        epochs=6,
        validation_data=(x[40:], y[40:]),
        callbacks=[ckpt],
        verbose=0,
        seed=0,
    )
    assert path.exists()
    best = min(h.history["val_loss"])
    assert ckpt.best == pytest.approx(best)
    loaded = ln.load_model(path)
    if h.history["val_loss"][-1] == best:
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_model_checkpoint_every_epoch_with_formatted_names(tmp_path):
    x, y = data()
    model = regression()
    model.fit(
        x,
        y,
        epochs=3,
        callbacks=[ln.ModelCheckpoint(tmp_path / "w-{epoch:02d}.npz", save_weights_only=True)],
        verbose=0,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-01.npz", "w-02.npz", "w-03.npz"]


def test_terminate_on_nan_stops_and_keeps_finite_weights(capsys):
    x, y = data()
    model = regression(lr=1e6)  # diverges within a few steps
    h = model.fit(x, y, epochs=50, batch_size=10, verbose=0)
    assert len(h.history["loss"]) < 50
    assert not np.isfinite(h.history["loss"][-1])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert "TerminateOnNaN: loss became" in capsys.readouterr().err


def test_learning_rate_scheduler_sets_lr_per_epoch():
    x, y = data()
    model = regression(lr=0.1)
    h = model.fit(
        x, y, epochs=4, verbose=0, callbacks=[ln.LearningRateScheduler(lambda epoch, lr: lr * 0.5)]
    )
    assert h.history["learning_rate"] == [0.05, 0.025, 0.0125, 0.00625]
    h = model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[ln.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))],
    )
    assert h.history["learning_rate"] == [0.01, 0.02]
    with pytest.raises(ValueError, match=r"schedule returned -1"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ln.LearningRateScheduler(lambda epoch: -1)])


def test_step_schedule_in_optimizer_is_read_from_the_optimizer():
    x, y = data(40)
    model = ln.Sequential([ln.Dense(1)])
    model.compile(ln.SGD(ln.StepDecay(0.1, step_size=4, gamma=0.5)), "mse")
    rates = []
    read = ln.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: rates.append(model.optimizer.current_learning_rate)
    )
    h = model.fit(x, y, epochs=3, batch_size=10, verbose=0, callbacks=[read])  # 4 steps/epoch
    assert rates == [0.1, 0.05, 0.025]
    assert list(h.history) == ["loss"]  # as Keras: no rate in the logs without a rate callback


def test_nan_stop_with_validation_monitors_does_not_break_callbacks(tmp_path):
    x, y = data()
    model = regression(lr=1e6)
    h = model.fit(
        x[:40],
        y[:40],
        epochs=20,
        batch_size=10,
        verbose=0,
        validation_data=(x[40:], y[40:]),
        callbacks=[
            ln.EarlyStopping(patience=3),
            ln.ModelCheckpoint(tmp_path / "best.npz", save_best_only=True),
        ],
    )
    assert len(h.history["loss"]) < 20
    assert len(h.history["val_loss"]) == len(h.history["loss"])
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ------------------------------------------------------------ data-parallel: rank 0 writes
def test_callbacks_write_on_rank_0_only_under_mpiexec(tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from layernet import distributed

    here = Path(sys.executable).parent / "mpiexec"
    launcher = str(here) if here.exists() else shutil.which("mpiexec")
    if launcher is None or not distributed._mpi_available():
        pytest.skip("needs mpi4py and mpiexec: install the 'mpi' extra")
    root = Path(__file__).resolve().parents[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_"))
        and k not in distributed.BLAS_ENV_VARS
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root / "src"), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [launcher, "-n", "2", sys.executable, str(root / "tests" / "rank0_jobs.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = (tmp_path / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,") and len(log) == 4  # the second run rewrote it: 3 rows
    appended = (tmp_path / "appended.csv").read_text().splitlines()
    assert [line.startswith("epoch,") for line in appended] == [True] + [False] * 6
    assert [int(line.split(",")[0]) for line in appended[1:]] == [0, 1, 2, 0, 1, 2]
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == sorted(
        ["log.csv", "appended.csv", "best.npz"]
        + [f"run{r}-{e}.npz" for r in (0, 1) for e in (1, 2, 3)]
    )  # and no temporary files left behind by a second writer
    assert ln.load_model(tmp_path / "run1-3.npz").epochs_completed == 3
    assert (tmp_path / "rank0" / "relative.csv").exists()
    assert not (tmp_path / "rank1" / "relative.csv").exists()
    printed = [line for line in result.stdout.splitlines() if "ReduceLROnPlateau" in line]
    assert len(printed) == 4 and len(set(printed)) == 4  # epochs 2 and 3 of each run, once
