"""Jobs that tests/test_distributed.py runs under ``mpiexec -n 2``.

    mpiexec -n 2 python tests/distributed_jobs.py JOB OUTDIR

Each rank works in its own folder ``OUTDIR/rank<r>`` (so files written by a rank
other than 0 would show) and writes what the test compares to
``OUTDIR/result<r>.npz``. Importing this file does nothing (pytest's doctest
collection imports it).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np


def data(n: int = 50, seed: int = 0):
    """A 3-class problem on length-8 sequences, float64."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 8, 1)) * 0.3
    x[np.arange(n), 2 * y + 1, 0] += 2.0
    return x, y


def model(optimizer=None, batch_norm: bool = False):
    import layernet as ln

    d = "float64"
    layers = [ln.Conv1D(4, 3, padding="same", dtype=d), ln.ReLU(dtype=d)]
    if batch_norm:
        layers.append(ln.BatchNorm(momentum=0.9, dtype=d))
    layers += [ln.MaxPool(2, dtype=d), ln.Flatten(dtype=d), ln.Dense(3, dtype=d)]
    net = ln.Sequential(layers)
    net.compile(optimizer or ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
    return net


def flat(weights) -> np.ndarray:
    return np.concatenate([w.ravel().astype(np.float64) for w in weights])


def blocks(dp=None):
    """A GRU and a residual block, trained for two epochs (global batch 9)."""
    import layernet as ln

    d = "float64"
    net = ln.Sequential(
        [
            ln.GRU(5, return_sequences=True, dtype=d),
            ln.Residual([ln.Dense(5, dtype=d), ln.Tanh(dtype=d)]),
            ln.Flatten(dtype=d),
            ln.Dense(3, dtype=d),
        ]
    )
    net.compile(ln.Adam(0.01), "softmax_cross_entropy")
    x, y = data()
    net.fit(x, y, epochs=2, batch_size=9, seed=6, verbose=0, distribute=dp)
    return net


def weighted(dp=None) -> np.ndarray:
    """Sample weights (some zero) in training, validation and evaluation: weights, logs."""
    x, y = data()
    xv, yv = data(20, seed=1)
    w = np.random.default_rng(4).uniform(0, 2, len(x))
    w[:5] = 0
    wv = np.random.default_rng(5).uniform(0, 2, len(xv))
    net = model()
    h = net.fit(
        x,
        y,
        epochs=2,
        batch_size=7,
        sample_weight=w,
        validation_data=(xv, yv, wv),
        seed=8,
        verbose=0,
        distribute=dp,
    )
    ev = net.evaluate(xv, yv, sample_weight=wv, return_dict=True, distribute=dp)
    logs = [v for key in sorted(h.history) for v in h.history[key]]
    return np.concatenate([flat(net.get_weights()), logs, list(ev.values())])


HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_epoch_end",
    "on_train_end",
    "on_test_begin",
    "on_test_end",
    "on_predict_begin",
    "on_predict_end",
)


def recorded(dp=None) -> tuple[list[str], np.ndarray]:
    """Every callback call of a fit (uneven shares, a short last batch, sample weights,
    validation, stateful metrics), an evaluate and a predict, in order: each call as
    ``"hook:index:key,key"`` and the logs' values, all in one array.

    The metrics are not means of per-batch values (``AUC``, ``Precision``), so their
    logs equal one process's only if their variables are summed over the ranks.
    """
    import layernet as ln

    names: list[str] = []
    values: list[float] = []

    class Recorder(ln.callbacks.Callback):
        pass

    def hook(name):
        def record(self, *args):
            index = args[0] if len(args) == 2 else ""
            logs = dict(args[-1] or {}) if args else {}
            names.append(f"{name}:{index}:{','.join(logs)}")
            values.extend(float(v) for v in logs.values())

        return record

    for name in HOOKS:
        setattr(Recorder, name, hook(name))
    x, labels = data()
    y = (labels == 1).astype(np.float64)[:, None]
    xv, lv = data(20, seed=1)
    yv = (lv == 1).astype(np.float64)[:, None]
    w = np.random.default_rng(7).uniform(0, 2, len(x))
    d = "float64"
    net = ln.Sequential(
        [ln.Flatten(dtype=d), ln.Dense(4, activation="tanh", dtype=d), ln.Dense(1, dtype=d)]
    )
    net.add(ln.Sigmoid(dtype=d))
    net.compile(
        ln.SGD(0.1, momentum=0.9),
        "binary_crossentropy",
        metrics=[ln.metrics.AUC(), ln.metrics.Precision(), "accuracy"],
    )
    cb = Recorder()
    net.fit(
        x,
        y,
        epochs=3,
        batch_size=7,
        sample_weight=w,
        validation_data=(xv, yv),
        callbacks=[cb],
        seed=11,
        verbose=0,
        distribute=dp,
    )
    net.evaluate(xv, yv, batch_size=3, callbacks=[cb], distribute=dp)
    values.extend(net.predict(xv, batch_size=3, callbacks=[cb], distribute=dp).ravel())
    values.extend(flat(net.get_weights()))
    return names, np.array(values)


def own_loop(dp=None) -> np.ndarray:
    """Weights after one pass in order over global batches of 7, each rank stepping on its
    share inside ``distribution_scope`` (one process: ``fit`` without shuffling)."""
    x, y = data()
    net = model()
    net.build((None, 8, 1), seed=5)
    if dp is None:
        net.fit(x, y, epochs=1, batch_size=7, shuffle=False, verbose=0)
        return flat(net.get_weights())
    with net.distribution_scope(dp):
        for start in range(0, len(x), 7):
            n = min(7, len(x) - start)
            share = np.arange(start, start + n)[dp.shard(n)]
            net.train_step((x[share], y[share]))
    return flat(net.get_weights())


def two_outputs_predict(dp=None) -> np.ndarray:
    """A functional model with two outputs: its predictions, both outputs side by side."""
    import layernet as ln

    inp = ln.Input((8, 1), dtype="float64")
    h = ln.Flatten(dtype="float64")(inp)
    a = ln.Dense(3, seed=1, dtype="float64")(h)
    b = ln.Dense(2, seed=2, dtype="float64")(h)
    net = ln.Model(inp, [a, b])
    xv, _ = data(20, seed=1)
    first, second = net.predict(xv, batch_size=3, verbose=0, distribute=dp)
    return np.concatenate([first, second], axis=1)


def two_headed():
    """A functional model with inputs ``a``, ``b`` and outputs ``cls``, ``reg`` (dicts),
    per-output losses, ``loss_weights`` and per-output metrics, float64."""
    import layernet as ln

    d = "float64"
    a = ln.Input((8, 1), name="a", dtype=d)
    b = ln.Input((3,), name="b", dtype=d)
    h = ln.Concatenate(dtype=d)(
        [ln.Flatten(dtype=d)(a), ln.Dense(4, activation="tanh", seed=1, dtype=d)(b)]
    )
    h = ln.Dense(6, activation="relu", seed=2, dtype=d)(h)
    cls = ln.Dense(3, seed=3, name="cls", dtype=d)(h)
    reg = ln.Dense(1, seed=4, name="reg", dtype=d)(h)
    net = ln.Model({"a": a, "b": b}, {"cls": cls, "reg": reg})
    net.compile(
        ln.SGD(0.05, momentum=0.9),
        loss={"cls": "softmax_cross_entropy", "reg": "mse"},
        loss_weights={"cls": 1.0, "reg": 0.5},
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    return net


def two_headed_data(n: int = 50, seed: int = 0):
    """Dict inputs and targets for :func:`two_headed`."""
    x8, labels = data(n, seed)
    rng = np.random.default_rng(seed + 10)
    b = rng.standard_normal((n, 3))
    x = {"a": x8, "b": b}
    y = {"cls": labels, "reg": (b.sum(axis=1, keepdims=True) + labels[:, None]) * 0.5}
    return x, y


def history_values(history) -> tuple[list[str], np.ndarray]:
    keys = sorted(history.history)
    return keys, np.array([v for k in keys for v in history.history[k]], dtype=np.float64)


def multi_io(dp=None) -> dict:
    """fit (dict x/y, sample weights, dict validation data), evaluate and predict of
    :func:`two_headed` (global batch 7: uneven shares and a short last batch)."""
    x, y = two_headed_data()
    xv, yv = two_headed_data(20, seed=1)
    w = np.random.default_rng(3).uniform(0, 2, 50)
    net = two_headed()
    h = net.fit(
        x,
        y,
        epochs=3,
        batch_size=7,
        sample_weight=w,
        validation_data=(xv, yv),
        seed=5,
        verbose=0,
        distribute=dp,
    )
    keys, values = history_values(h)
    ev = net.evaluate(xv, yv, batch_size=6, return_dict=True, verbose=0, distribute=dp)
    listed = net.predict([xv["a"], xv["b"]], batch_size=4, verbose=0, distribute=dp)
    named = net.predict(xv, batch_size=3, verbose=0, distribute=dp)
    return {
        "weights": flat(net.get_weights()),
        "history_keys": np.array(keys),
        "history": values,
        "evaluate_keys": np.array(list(ev)),
        "evaluate": np.array(list(ev.values())),
        "predict_kind": np.array(type(listed).__name__),
        "predict": np.concatenate(listed, axis=1),
        "predict_named": np.concatenate(named, axis=1),
    }


def pipeline_model(seed: int = 0):
    """A Sequential without an input shape: built by its first batch (seeded weights)."""
    import layernet as ln

    d = "float64"
    net = ln.Sequential(
        [
            ln.Flatten(dtype=d),
            ln.Dense(5, activation="tanh", seed=seed, dtype=d),
            ln.Dense(3, seed=seed + 1, dtype=d),
        ]
    )
    net.compile(ln.SGD(0.1, momentum=0.9), "softmax_cross_entropy", ["accuracy"])
    return net


def batches_of(x, y, size: int, repeat: bool):
    """A generator of ``(x, y)`` batches in order (forever with ``repeat``)."""
    while True:
        for start in range(0, len(x), size):
            yield x[start : start + size], y[start : start + size]
        if not repeat:
            return


def shuffled_dataset(x, y, size: int, seed: int):
    """A PyDataset of batches of ``size`` that reshuffles in ``on_epoch_end`` (seeded: the
    same order on every rank)."""
    import layernet as ln

    class Shuffled(ln.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            self.epochs_ended = 0

        def __len__(self):
            return -(-len(x) // size)

        def __getitem__(self, i):
            idx = self.order[i * size : (i + 1) * size]
            return x[idx], y[idx]

        def on_epoch_end(self):
            self.epochs_ended += 1
            self.order = self.rng.permutation(len(x))

    return Shuffled()


def sources(dp=None) -> dict:
    """fit over an infinite generator (``steps_per_epoch``) with a generator as
    ``validation_data``, over a finite generator, and over a PyDataset (with array
    validation data), each model built by its first batch; evaluate and predict over
    a PyDataset and a generator."""
    x, y = data()
    xv, yv = data(20, seed=1)
    out: dict = {}
    net = pipeline_model(1)
    h = net.fit(
        batches_of(x, y, 9, repeat=True),
        epochs=3,
        steps_per_epoch=4,  # 36 samples per epoch: the epochs start at other batches
        validation_data=batches_of(xv, yv, 6, repeat=True),
        validation_steps=3,
        verbose=0,
        distribute=dp,
    )
    out["generator_keys"], out["generator_history"] = history_values(h)
    out["generator_weights"] = flat(net.get_weights())

    finite = pipeline_model(3)
    h = finite.fit(batches_of(x, y, 8, repeat=False), epochs=1, verbose=0, distribute=dp)
    out["finite_keys"], out["finite_history"] = history_values(h)
    out["finite_weights"] = flat(finite.get_weights())

    dataset = shuffled_dataset(x, y, 9, seed=7)
    pd = pipeline_model(5)
    h = pd.fit(dataset, epochs=3, validation_data=(xv, yv), verbose=0, distribute=dp)
    out["dataset_keys"], out["dataset_history"] = history_values(h)
    out["dataset_weights"] = flat(pd.get_weights())
    out["dataset_epochs_ended"] = np.array(dataset.epochs_ended)
    ev = pd.evaluate(
        shuffled_dataset(xv, yv, 6, seed=8), return_dict=True, verbose=0, distribute=dp
    )
    out["dataset_evaluate"] = np.array(list(ev.values()))
    ev = pd.evaluate(
        batches_of(xv, yv, 7, repeat=False), return_dict=True, verbose=0, distribute=dp
    )
    out["generator_evaluate"] = np.array(list(ev.values()))
    out["dataset_predict"] = pd.predict(
        shuffled_dataset(xv, yv, 6, seed=8), verbose=0, distribute=dp
    )
    out["generator_predict"] = pd.predict(
        (b for b, _ in batches_of(xv, yv, 7, repeat=False)), verbose=0, distribute=dp
    )
    return out


def train(dp, out: dict) -> None:
    """Uneven shares and a short last batch (50 samples, global batch 7: the last
    step has one sample, so rank 1's share is empty), validation, checkpoints."""
    import layernet as ln
    from layernet.distributed import DataParallel

    x, y = data()
    xv, yv = data(20, seed=1)
    net = model()
    ckpt = ln.ModelCheckpoint("ckpt-{epoch}.npz", monitor="val_loss")
    h = net.fit(
        x,
        y,
        epochs=4,
        batch_size=7,
        validation_data=(xv, yv),
        callbacks=[ckpt],
        verbose=2,
        seed=3,
        distribute=dp,
    )
    net.save("final.npz")
    out["weights"] = flat(net.get_weights())
    for k, v in h.history.items():
        out[f"history_{k}"] = np.array(v)
    ev = net.evaluate(xv, yv, batch_size=6, return_dict=True, distribute=dp)
    out["evaluate"] = np.array([ev["loss"], ev["accuracy"]])
    out["predict"] = net.predict(xv, batch_size=4, distribute=dp)
    one = net.evaluate(xv[:1], yv[:1], return_dict=True, distribute=dp)  # rank 1's share is empty
    out["evaluate_one"] = np.array([one["loss"], one["accuracy"]])
    out["predict_one"] = net.predict(xv[:1], distribute=dp)
    out["predict_two_outputs"] = two_outputs_predict(dp)
    out["blas_threads"] = np.array(dp.blas_threads or -1)
    out["blas_now"] = np.array(ln.distributed.get_blas_threads() or -1)
    out["local_size"] = np.array(dp.local_size)
    out["blas_two"] = np.array(DataParallel(blas_threads=2).blas_threads or -1)
    out["blas_two_now"] = np.array(ln.distributed.get_blas_threads() or -1)
    if dp.blas_threads:
        ln.distributed.set_blas_threads(dp.blas_threads)

    # resume: 2 epochs, checkpoint, load on every rank, 2 more == 4 straight (Adam, decay)
    def adam():
        return ln.Adam(ln.CosineDecay(0.01, decay_steps=20))

    straight = model(adam())
    straight.fit(x, y, epochs=4, batch_size=8, seed=5, verbose=0, distribute=dp)
    first = model(adam())
    first.fit(
        x,
        y,
        epochs=2,
        batch_size=8,
        seed=5,
        verbose=0,
        callbacks=[ln.ModelCheckpoint("resume-{epoch}.npz", monitor="loss")],
        distribute=dp,
    )
    dp.comm.Barrier()  # rank 0 has written the file
    resumed = ln.load_model(Path("..", "rank0", "resume-2.npz"))
    resumed.fit(x, y, epochs=4, batch_size=8, seed=5, verbose=0, initial_epoch=2, distribute=dp)
    out["resume_straight"] = flat(straight.get_weights())
    out["resume_resumed"] = flat(resumed.get_weights())
    out["resume_epochs"] = np.array(resumed.epochs_completed)

    # BackupAndRestore: a run that finds a backup of 2 epochs continues it (rank 0 writes)
    backup_dir = Path("..", "backup").resolve()
    backed = model(adam())
    keep = ln.BackupAndRestore(backup_dir, delete_checkpoint=False)
    backed.fit(x, y, epochs=2, batch_size=8, seed=5, verbose=0, callbacks=[keep], distribute=dp)
    dp.comm.Barrier()  # rank 0 has written the backup
    again = model(adam())
    restore = ln.BackupAndRestore(backup_dir)
    hb = again.fit(
        x, y, epochs=4, batch_size=8, seed=5, verbose=0, callbacks=[restore], distribute=dp
    )
    out["backup_resumed"] = flat(again.get_weights())
    out["backup_epochs"] = np.array(hb.epoch)

    # sample weights: weighted losses and metrics over the global batch
    out["weighted"] = weighted(dp)

    # a training loop of one's own: in distribution_scope, train_step reduces as fit's does
    out["own_loop"] = own_loop(dp)

    # every callback call, in order, with its logs (stateful metrics reduced over the ranks)
    names, values = recorded(dp)
    out["recorded_names"] = np.array(names)
    out["recorded_values"] = values

    # layers made of layers (a residual block, a GRU): the same as one process
    out["blocks"] = flat(blocks(dp).get_weights())

    # BatchNorm: per-share statistics, running statistics averaged: ranks stay identical
    bn = model(batch_norm=True)
    bn.fit(x, y, epochs=2, batch_size=10, seed=1, verbose=0, distribute=dp)
    out["batchnorm"] = flat(bn.get_weights())

    # a stop asked for on rank 1 only, mid-epoch: every rank stops after the same step
    class StopOnOneRank(ln.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if dp.rank == 1 and batch == 2:
                self.model.stop_training = True

    stop = model()
    hs = stop.fit(
        x, y, epochs=3, batch_size=7, seed=2, verbose=0, callbacks=[StopOnOneRank()], distribute=dp
    )
    out["stop_weights"] = flat(stop.get_weights())
    out["stop_steps"] = np.array(stop.optimizer.iterations)
    out["stop_epochs"] = np.array(len(hs.epoch))

    # weights that drifted apart on one rank are replaced by rank 0's at the epoch's end
    class Drift(ln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if dp.rank == 1 and epoch == 0:
                next(iter(self.model.layers[-1].params.values()))[...] += 1e-3

    drift = model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drift.fit(
            x, y, epochs=2, batch_size=7, seed=2, verbose=0, callbacks=[Drift()], distribute=dp
        )
    out["drift_weights"] = flat(drift.get_weights())
    out["drift_warned"] = np.array(any("drifted apart" in str(w.message) for w in caught))

    # a callback that evaluates on rank 0 alone during a data-parallel fit: evaluate and
    # test_on_batch without `distribute` run in one process (no collective, no hang)
    class RootEvaluates(ln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if dp.is_root:
                out["root_alone"] = alone(self.model)

    def alone(net):
        ev = net.evaluate(xv, yv, verbose=0, return_dict=True)
        return np.array([ev["loss"], net.test_on_batch(xv, yv)[0], net.predict(xv[:3]).sum()])

    lone = model()
    lone.fit(
        x, y, epochs=1, batch_size=7, seed=2, verbose=0, callbacks=[RootEvaluates()], distribute=dp
    )
    if not dp.is_root:
        out["root_alone"] = alone(lone)

    # ranks given different data: every rank raises the same error (no hang, no abort)
    try:
        model().fit(x + dp.rank, y, verbose=0, distribute=dp)
    except (ValueError, ln.DataParallelError) as exc:
        out["mismatch"] = np.array(str(exc))

    # a loss that becomes NaN: TerminateOnNaN stops every rank at the same batch
    nan = model(ln.SGD(1e6))
    hn = nan.fit(x * 1e6, y, epochs=2, batch_size=7, seed=2, verbose=0, distribute=dp)
    out["nan_steps"] = np.array(nan.optimizer.iterations)
    out["nan_finite"] = np.array(all(np.isfinite(w).all() for w in nan.get_weights()))
    out["nan_epochs"] = np.array(len(hn.epoch))


def fail_in_callback(dp, out: dict) -> None:
    """Rank 1 raises in a callback at the end of the second epoch; rank 0 goes on."""
    import layernet as ln

    class Explode(ln.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if dp.rank == 1 and epoch == 1:
                raise RuntimeError("callback exploded on rank 1")

    x, y = data()
    model().fit(x, y, epochs=50, batch_size=7, verbose=0, callbacks=[Explode()], distribute=dp)


def fail_in_step(dp, out: dict) -> None:
    """A layer that raises inside rank 1's share of the third step."""
    import layernet as ln

    class Fragile(ln.ReLU):
        calls = 0

        def compute_forward(self, x, training):
            if training and dp.rank == 1:
                Fragile.calls += 1
                if Fragile.calls == 3:
                    raise ValueError("fragile layer broke on rank 1")
            return super().compute_forward(x, training)

    x, y = data()
    net = ln.Sequential([ln.Flatten(dtype="float64"), Fragile(dtype="float64"), ln.Dense(3)])
    net.compile("sgd", "softmax_cross_entropy")
    try:
        net.fit(x, y, epochs=2, batch_size=7, verbose=0, distribute=dp)
    except Exception as exc:
        out["error"] = np.array(f"{type(exc).__name__}: {exc}")
        raise


def fail_in_evaluate_and_predict(dp, out: dict) -> None:
    """A layer that raises in inference on rank 1: evaluate, then predict, each caught."""
    import layernet as ln

    class Fragile(ln.ReLU):
        def compute_forward(self, x, training):
            if not training and dp.rank == 1:
                raise ValueError("fragile layer broke on rank 1")
            return super().compute_forward(x, training)

    x, y = data()
    net = ln.Sequential([ln.Flatten(dtype="float64"), Fragile(dtype="float64"), ln.Dense(3)])
    net.compile("sgd", "softmax_cross_entropy", ["accuracy"])
    calls = {
        "evaluate": lambda: net.evaluate(x, y, batch_size=7, verbose=0, distribute=dp),
        "predict": lambda: net.predict(x, batch_size=7, verbose=0, distribute=dp),
    }
    for name, call in calls.items():
        try:
            call()
        except Exception as exc:
            out[name] = np.array(f"{type(exc).__name__}: {exc}")

    # a metric whose state its first update makes, and one sample: rank 1's share is empty
    lazy = ln.Sequential(
        [ln.Flatten(dtype="float64"), ln.Dense(3, activation="softmax", seed=0, dtype="float64")]
    )
    lazy.compile("sgd", "categorical_crossentropy", [ln.metrics.F1Score(average="macro")])
    onehot = np.eye(3)[y]
    try:
        lazy.evaluate(x[:1], onehot[:1], verbose=0, distribute=dp)
    except Exception as exc:
        out["lazy_metric"] = np.array(f"{type(exc).__name__}: {exc}")
    ev = lazy.evaluate(x[:4], onehot[:4], verbose=0, return_dict=True, distribute=dp)
    out["lazy_metric_then"] = np.array([ev["loss"], ev["f1_score"]])

    # a metric whose state rank 0 alone made (evaluating in one process): the handshake of
    # the next data-parallel evaluate refuses it on every rank
    alone = ln.Sequential([ln.Flatten(dtype="float64"), ln.Dense(3, activation="softmax", seed=0)])
    alone.compile("sgd", "categorical_crossentropy", [ln.metrics.F1Score(average="macro")])
    if dp.is_root:
        alone.evaluate(x[:4], onehot[:4], verbose=0)
    try:
        alone.evaluate(x[:4], onehot[:4], verbose=0, distribute=dp)
    except Exception as exc:
        out["made_on_one_rank"] = np.array(f"{type(exc).__name__}: {exc}")


def inputs(dp, out: dict) -> None:
    """Several inputs and outputs, generators and PyDatasets, as :func:`multi_io` and
    :func:`sources` run them."""
    out.update({f"multi_{k}": v for k, v in multi_io(dp).items()})
    out.update({f"sources_{k}": v for k, v in sources(dp).items()})


def source_errors(dp, out: dict) -> None:
    """Sources that differ between the ranks, and data dicts that do: each call caught."""
    x, y = data()

    def shapes_differ():  # rank 1's batch 2 has one sample more
        for i in range(5):
            extra = 1 if dp.rank == 1 and i == 2 else 0
            yield x[i * 8 : (i + 1) * 8 + extra], y[i * 8 : (i + 1) * 8 + extra]

    def shorter():  # rank 1's generator ends one batch earlier
        for i in range(4 - dp.rank):
            yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    def breaks():  # rank 1's generator raises when asked for its second batch
        for i in range(4):
            if dp.rank == 1 and i == 1:
                raise ValueError("rank 1's data broke")
            yield x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]

    xd, yd = two_headed_data()
    calls = {
        "breaks": lambda: pipeline_model().fit(breaks(), verbose=0, distribute=dp),
        "shapes": lambda: pipeline_model().fit(shapes_differ(), verbose=0, distribute=dp),
        "shorter": lambda: pipeline_model().fit(shorter(), verbose=0, distribute=dp),
        "evaluate_shorter": lambda: pipeline_model().evaluate(shorter(), verbose=0, distribute=dp),
        "predict_shapes": lambda: pipeline_model().predict(
            (b for b, _ in shapes_differ()), verbose=0, distribute=dp
        ),
        "lengths": lambda: pipeline_model().fit(
            shuffled_dataset(x[: 50 - 9 * dp.rank], y[: 50 - 9 * dp.rank], 9, seed=0),
            verbose=0,
            distribute=dp,
        ),
        "dicts": lambda: two_headed().fit(
            {"a": xd["a"], "b": xd["b"] + dp.rank}, yd, verbose=0, distribute=dp
        ),
    }
    for name, call in calls.items():
        try:
            call()
        except Exception as exc:
            out[name] = np.array(f"{type(exc).__name__}: {exc}")
    out["after"] = np.array(dp.comm.allreduce(1))  # every rank got here


def fail_outside_fit(dp, out: dict) -> None:
    """Rank 1's script dies before fit (loading its data, say); rank 0 enters fit."""
    if dp.rank == 1:
        raise OSError("rank 1 could not read its data")
    x, y = data()
    model().fit(x, y, epochs=50, batch_size=7, verbose=0, distribute=dp)


JOBS = {
    "train": train,
    "fail_in_callback": fail_in_callback,
    "fail_in_step": fail_in_step,
    "fail_in_evaluate_and_predict": fail_in_evaluate_and_predict,
    "fail_outside_fit": fail_outside_fit,
    "inputs": inputs,
    "source_errors": source_errors,
}


def main(job: str, outdir: str) -> None:
    from layernet.distributed import DataParallel

    dp = DataParallel()
    work = Path(outdir, f"rank{dp.rank}")
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    out: dict = {"size": np.array(dp.size)}
    try:
        JOBS[job](dp, out)
    finally:
        np.savez(Path(outdir, f"result{dp.rank}.npz"), **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
