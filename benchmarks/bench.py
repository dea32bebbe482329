"""Time layernet against PyTorch and Keras 3 (JAX backend) on the CPU, each in its own process.

    python benchmarks/bench.py            # full run (several rounds)
    python benchmarks/bench.py --quick    # smoke run: one round, few repeats
    python benchmarks/bench.py --cases conv_B_fwdbwd lenet_256
    python benchmarks/bench.py --busy     # also with one CPU-bound process alongside
    python benchmarks/bench.py --json results.json   # also write every figure to a file

Each case runs in a fresh worker process per framework, alternating layernet,
PyTorch, Keras, plain PyTorch, layernet, ... over the rounds (OpenBLAS, PyTorch's
OpenMP and XLA's threads slow each other inside one process). A worker builds its
model and data once (PyTorch: channels-first tensors made once; Keras: the step
compiled by ``jit_compile``), warms up, times ``repeat`` runs and reports their
median and its peak resident memory above what it held before the timed work.
The table shows, per framework, the median over rounds and the spread of the
rounds (half the range, in percent of the median), and the ratios layernet /
PyTorch and layernet / Keras (below 1: layernet is faster) against their targets.
Every framework gets the same thread count: layernet's budget (``--threads``,
default :func:`layernet.get_num_threads`), ``torch.set_num_threads`` for PyTorch,
and for XLA one thread (``intra_op_parallelism_threads=1``, no Eigen threads) when
the count is 1 (else XLA's default, all cores).

``torch_plain`` is a check on the PyTorch column: the training cases written as
the simplest loop a PyTorch user writes (``nn.Sequential``, tensors made once, a
for-loop over the batches with ``zero_grad``, ``backward`` and ``step``), timed the
same way; the table gives PyTorch / plain PyTorch and flags it outside 0.9-1.1.
After the table: the targets met or not, the peak memory of every training case,
and with ``--busy`` each case timed again while one CPU-bound process runs
alongside (busy / quiet per framework; layernet's training cases should stay
within 1.3 times their quiet time). That process ends with this one, however
this one ends.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# name: (description, target for layernet / PyTorch with 2 threads, or None)
CASES: dict[str, tuple[str, float | None]] = {
    "mnist1d_epoch": ("MNIST-1D CNN, one epoch (4000 samples, batch 100)", 0.5),
    "lenet_64": ("LeNet-5 training step, batch 64", 1.0),
    "lenet_256": ("LeNet-5 training step, batch 256", 1.0),
    "mnist_convnet_epoch": (
        "keras.io MNIST convnet, one epoch (4000 random 28x28 images, batch 128, Adam)",
        None,
    ),
    "lstm_step": ("LSTM(128), 100 steps x 32 features, Dense(10), SGD step, batch 64", 1.5),
    "transformer_step": (
        "transformer encoder block, batch 32, length 64, width 128, 4 heads, SGD step",
        1.5,
    ),
    "conv_A_fwd": ("Conv2D A: N64 28x28 1->32 k3 p1, forward", None),
    "conv_A_fwdbwd": ("Conv2D A, forward+backward", None),
    "conv_B_fwd": ("Conv2D B: N64 14x14 32->64 k3 p1, forward", None),
    "conv_B_fwdbwd": ("Conv2D B, forward+backward", 1.3),
    "conv_C_fwd": ("Conv2D C: N32 32x32 64->128 k3 p1, forward", None),
    "conv_C_fwdbwd": ("Conv2D C, forward+backward", 1.3),
    "maxpool_fwdbwd": ("MaxPool 2x2 on B's output (N64 14x14 64), forward+backward", None),
    "avgpool_fwdbwd": ("AvgPool 2x2 on B's output, forward+backward", None),
    "gru_step": ("MNIST-1D bidirectional GRU (6 units, 40 steps), Adam step, batch 100", None),
}
CONV = {"A": (64, 28, 1, 32), "B": (64, 14, 32, 64), "C": (32, 32, 64, 128)}
#: Cases that train (or differentiate), and so have a Keras (JAX) column.
KERAS_CASES = (
    "mnist1d_epoch",
    "lenet_64",
    "lenet_256",
    "mnist_convnet_epoch",
    "lstm_step",
    "transformer_step",
    "gru_step",
    "conv_B_fwdbwd",
    "conv_C_fwdbwd",
)
#: The second target column: layernet / Keras (JAX), where one is set.
KERAS_TARGETS: dict[str, float] = {"mnist1d_epoch": 1.0, "lenet_64": 1.0}
#: The cases of ``bench_sequences.py``, whose builders the workers import.
SEQUENCE_CASES = ("lstm_step", "transformer_step")
#: Training cases that also run as the plain PyTorch loop (``torch_plain``).
PLAIN_TORCH_CASES = ("lenet_64", "lenet_256", "mnist1d_epoch", "mnist_convnet_epoch")
#: Where PyTorch / plain PyTorch must lie: the benchmark's PyTorch agrees with a plain loop.
PLAIN_AGREEMENT = (0.9, 1.1)
#: Targets for the memory a training case adds (layernet / PyTorch), where one is set.
MEMORY_TARGETS: dict[str, float] = {"lenet_256": 1.5, "lstm_step": 1.5}
#: With ``--busy``: each layernet training case within this factor of its quiet time.
BUSY_TARGET = 1.3
FRAMEWORKS = ("layernet", "torch", "keras", "torch_plain")
LABELS = {
    "layernet": "layernet",
    "torch": "PyTorch",
    "keras": "Keras/JAX",
    "torch_plain": "plain PyTorch",
}
MNIST_CONVNET_SAMPLES = 4000
#: The ``--busy`` process: it spins, and ends once the process that started it (whose
#: pid it gets as its argument) is gone, so that killing the benchmark cannot leave it.
HOG_SOURCE = """\
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


def is_training_case(case: str) -> bool:
    """Whether ``case`` times training: an optimizer step or an epoch.

    By name: the LeNet-5 steps (``lenet_*``) and every case named ``*_step`` or
    ``*_epoch``. These get the memory table and the ``--busy`` target.
    """
    return case.startswith("lenet") or case.endswith(("_step", "_epoch"))


def case_frameworks(case: str, names: list[str] | tuple[str, ...] = FRAMEWORKS) -> list[str]:
    """The frameworks among ``names`` that run ``case`` (Keras and plain PyTorch: some cases)."""
    only = {"keras": KERAS_CASES, "torch_plain": PLAIN_TORCH_CASES}
    return [f for f in names if f not in only or case in only[f]]


def blas_threads() -> int:
    """The thread count every framework gets: ``LAYERNET_NUM_THREADS`` or layernet's budget."""
    import layernet as ln

    return ln.get_num_threads()


def cpu_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rss_mb() -> float:
    """Current resident set size in MiB (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_mb()


def peak_mb() -> float:
    """Peak resident set size of this process in MiB.

    Linux: ``VmHWM``, which belongs to this program's address space. (``ru_maxrss``
    would not do: a child started by fork and exec inherits its parent's peak.)
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


# --------------------------------------------------------------- layernet work
def lenet(n: int):
    """LeNet-5 (compiled, built with seed 0), a batch of ``n`` images and one-hot targets."""
    import layernet as ln

    rng = np.random.default_rng(0)
    model = ln.Sequential(
        [
            ln.Conv2D(6, 5),
            ln.ReLU(),
            ln.MaxPool(2),
            ln.Conv2D(16, 5),
            ln.ReLU(),
            ln.MaxPool(2),
            ln.Flatten(),
            ln.Dense(120),
            ln.ReLU(),
            ln.Dense(84),
            ln.ReLU(),
            ln.Dense(10),
        ]
    )
    model.compile(ln.SGD(0.01, momentum=0.9), "mse")
    x = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    model.build(x.shape, seed=0)
    return model, x, t


def mnist_convnet_data() -> tuple[np.ndarray, np.ndarray]:
    """Random images in [0, 1) and one-hot labels for the keras.io convnet (timing only)."""
    rng = np.random.default_rng(0)
    x = rng.random((MNIST_CONVNET_SAMPLES, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, MNIST_CONVNET_SAMPLES)]
    return x, y


def sequences():
    """``bench_sequences`` (the sequence cases' data and model builders), from this folder."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import bench_sequences

    return bench_sequences


def layernet_case(case: str) -> Callable[[], None]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    import layernet as ln

    if case in SEQUENCE_CASES:
        return sequences().layernet_case(case)
    rng = np.random.default_rng(0)
    if case == "mnist1d_epoch":
        from train_mnist1d import build_model

        (x, y), _ = ln.datasets.load_mnist1d()
        model = build_model()
        model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
        return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    if case.startswith("lenet"):
        model, x, t = lenet(int(case.split("_")[1]))
        return lambda: model.train_step(x, t)
    if case == "mnist_convnet_epoch":
        x, y = mnist_convnet_data()
        model = ln.Sequential(
            [
                ln.Input(shape=(28, 28, 1)),
                ln.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
                ln.layers.MaxPooling2D(pool_size=(2, 2)),
                ln.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                ln.layers.MaxPooling2D(pool_size=(2, 2)),
                ln.layers.Flatten(),
                ln.layers.Dropout(0.5),
                ln.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        return lambda: model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    if case.startswith("conv"):
        n, hw, cin, cout = CONV[case.split("_")[1]]
        layer = ln.Conv2D(cout, 3, padding=1, seed=0)
        x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        if case.endswith("_fwd"):
            return lambda: layer.forward(x)

        def step():
            layer.forward(x, training=True)
            layer.backward_params(dy)
            layer.backward_input(dy)

        return step
    if case.endswith("pool_fwdbwd"):
        layer = (ln.MaxPool if case.startswith("max") else ln.AvgPool)(2)
        x = rng.standard_normal((64, 14, 14, 64)).astype(np.float32)
        dy = rng.standard_normal((64, 7, 7, 64)).astype(np.float32)

        def step():
            layer.forward(x, training=True)
            layer.backward_input(dy)

        return step
    if case == "gru_step":
        (x, y), _ = ln.datasets.load_mnist1d()
        model = ln.Sequential(
            [ln.Bidirectional(ln.GRU(6, return_sequences=True)), ln.Flatten(), ln.Dense(10)]
        )
        model.compile(ln.Adam(1e-2), "softmax_cross_entropy")
        model.build((None, 40, 1), seed=0)
        xb, yb = x[:100], y[:100]
        return lambda: model.train_step(xb, yb)
    raise ValueError(case)


# ---------------------------------------------------------------- PyTorch work
def torch_case(case: str) -> Callable[[], None]:
    import torch

    torch.set_num_threads(blas_threads())
    if case in SEQUENCE_CASES:
        return sequences().torch_case(case)
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if case == "mnist1d_epoch":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        xt = torch.tensor(x.transpose(0, 2, 1).copy())
        yt = torch.tensor(y)
        model = nn.Sequential(
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(125, 10),
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

        def epoch():
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 100):
                idx = perm[i : i + 100]
                opt.zero_grad()
                F.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()

        return epoch
    if case.startswith("lenet"):
        n = int(case.split("_")[1])
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.tensor(rng.standard_normal((n, 1, 28, 28)).astype(np.float32))
        t = torch.tensor(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)])

        def step():
            opt.zero_grad()
            out = model(x)
            (0.5 * ((out - t) ** 2).sum() / n).backward()
            opt.step()

        return step
    if case == "mnist_convnet_epoch":
        x, y = mnist_convnet_data()
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy())  # channels-first, made once
        yt = torch.tensor(y)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(1600, 10),
        )
        opt = torch.optim.Adam(model.parameters())

        def convnet_epoch():
            perm = torch.randperm(len(xt))
            for i in range(0, len(xt), 128):
                idx = perm[i : i + 128]
                opt.zero_grad()
                F.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()

        return convnet_epoch
    if case.startswith("conv"):
        n, hw, cin, cout = CONV[case.split("_")[1]]
        conv = nn.Conv2d(cin, cout, 3, padding=1)
        x = torch.tensor(rng.standard_normal((n, cin, hw, hw)).astype(np.float32))
        if case.endswith("_fwd"):

            def fwd():
                with torch.no_grad():
                    conv(x)

            return fwd
        xg = x.clone().requires_grad_(True)
        dy = torch.tensor(rng.standard_normal((n, cout, hw, hw)).astype(np.float32))

        def step():
            conv.zero_grad()
            xg.grad = None
            conv(xg).backward(dy)

        return step
    if case.endswith("pool_fwdbwd"):
        pool = F.max_pool2d if case.startswith("max") else F.avg_pool2d
        x = torch.tensor(
            rng.standard_normal((64, 64, 14, 14)).astype(np.float32), requires_grad=True
        )
        dy = torch.tensor(rng.standard_normal((64, 64, 7, 7)).astype(np.float32))

        def step():
            x.grad = None
            pool(x, 2).backward(dy)

        return step
    if case == "gru_step":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
        linear = nn.Linear(480, 10)
        opt = torch.optim.Adam([*gru.parameters(), *linear.parameters()], lr=1e-2)
        xb, yb = torch.tensor(x[:100]), torch.tensor(y[:100])

        def step():
            opt.zero_grad()
            out, _ = gru(xb)
            F.cross_entropy(linear(out.reshape(100, -1)), yb).backward()
            opt.step()

        return step
    raise ValueError(case)


# ---------------------------------------------------------- Keras (JAX) work
def keras_case(case: str) -> Callable[[], None]:
    """The case in Keras 3 on JAX: ``fit`` / ``train_on_batch`` with ``jit_compile=True``.

    Needs ``KERAS_BACKEND=jax`` in the environment before the first ``import keras``
    (the worker's parent sets it).
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if case in SEQUENCE_CASES:
        seq = sequences()
        x, y = seq._data(case)
        if case == "lstm_step":
            model = seq.lstm_model(keras)
        else:
            b = seq.BLOCK
            model = seq.transformer_block(keras, b["length"], b["width"], b["heads"], b["ff"])
        model.compile(keras.optimizers.SGD(learning_rate=0.01), "mse", jit_compile=True)
        return lambda: model.train_on_batch(x, y)
    if case == "mnist1d_epoch":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        model = keras.Sequential(
            [
                keras.Input((40, 1)),
                layers.ZeroPadding1D(1),
                layers.Conv1D(25, 5, strides=2, activation="relu"),
                layers.ZeroPadding1D(1),
                layers.Conv1D(25, 3, strides=2, activation="relu"),
                layers.ZeroPadding1D(1),
                layers.Conv1D(25, 3, strides=2, activation="relu"),
                layers.Flatten(),
                layers.Dense(10),
            ]
        )
        model.compile(
            keras.optimizers.SGD(0.05, momentum=0.9),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    if case.startswith("lenet"):
        n = int(case.split("_")[1])
        model = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                layers.Conv2D(6, 5, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Conv2D(16, 5, activation="relu"),
                layers.MaxPooling2D(2),
                layers.Flatten(),
                layers.Dense(120, activation="relu"),
                layers.Dense(84, activation="relu"),
                layers.Dense(10),
            ]
        )
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9), "mse", jit_compile=True)
        x = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
        t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
        return lambda: model.train_on_batch(x, t)
    if case == "mnist_convnet_epoch":
        x, y = mnist_convnet_data()
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28, 1)),
                layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Flatten(),
                layers.Dropout(0.5),
                layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(loss="categorical_crossentropy", optimizer="adam", jit_compile=True)
        return lambda: model.fit(x, y, batch_size=128, epochs=1, verbose=0)
    if case == "gru_step":
        import layernet as ln

        (x, y), _ = ln.datasets.load_mnist1d()
        model = keras.Sequential(
            [
                keras.Input((40, 1)),
                layers.Bidirectional(layers.GRU(6, return_sequences=True)),
                layers.Flatten(),
                layers.Dense(10),
            ]
        )
        model.compile(
            keras.optimizers.Adam(1e-2),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        xb, yb = x[:100], y[:100]
        return lambda: model.train_on_batch(xb, yb)
    if case.startswith("conv") and case.endswith("_fwdbwd"):
        import jax

        n, hw, cin, cout = CONV[case.split("_")[1]]
        conv = layers.Conv2D(cout, 3, padding="same")
        conv.build((n, hw, hw, cin))
        x = jax.numpy.asarray(rng.standard_normal((n, hw, hw, cin)).astype(np.float32))
        dy = jax.numpy.asarray(rng.standard_normal((n, hw, hw, cout)).astype(np.float32))
        weights = [v.value for v in conv.trainable_variables]

        def objective(weights, x):  # <Y, dY>: its gradients are the backward pass's
            y, _ = conv.stateless_call(weights, [], x)
            return jax.numpy.vdot(y, dy)

        grad = jax.jit(jax.grad(objective, argnums=(0, 1)))
        return lambda: jax.block_until_ready(grad(weights, x))
    raise ValueError(case)


# ------------------------------------------------------- plain PyTorch loop
def torch_plain_case(case: str) -> Callable[[], None]:
    """The case as the simplest training loop a PyTorch user writes: a check on ``torch_case``.

    ``nn.Sequential``, the data as tensors made once, and a for-loop over the
    batches with ``zero_grad``, ``backward`` and ``step`` (the LeNet-5 steps are one
    batch); the same models, optimizers and thread count as the PyTorch column.
    """
    import torch
    from torch import nn

    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)
    if case.startswith("lenet"):
        batch = int(case.split("_")[1])
        model = nn.Sequential(
            nn.Conv2d(1, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )
        x = torch.randn(batch, 1, 28, 28)
        y = nn.functional.one_hot(torch.randint(0, 10, (batch,)), 10).float()
        loss_fn = nn.MSELoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    elif case == "mnist1d_epoch":
        import layernet as ln

        (x_train, y_train), _ = ln.datasets.load_mnist1d()
        x = torch.tensor(x_train).permute(0, 2, 1).contiguous()  # (4000, 1, 40)
        y = torch.tensor(y_train)
        batch = 100
        model = nn.Sequential(
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(125, 10),
        )
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    elif case == "mnist_convnet_epoch":
        x = torch.rand(MNIST_CONVNET_SAMPLES, 1, 28, 28)
        y = torch.randint(0, 10, (MNIST_CONVNET_SAMPLES,))
        batch = 128
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.5),
            nn.Linear(1600, 10),
        )
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.Adam(model.parameters())
    else:
        raise ValueError(f"no plain PyTorch loop for the case {case!r}")

    def train() -> None:
        for i in range(0, len(x), batch):
            optimizer.zero_grad()
            loss = loss_fn(model(x[i : i + batch]), y[i : i + batch])
            loss.backward()
            optimizer.step()

    return train


def worker(framework: str, case: str, repeat: int, warmup: int = 2) -> None:
    make = {
        "layernet": layernet_case,
        "torch": torch_case,
        "keras": keras_case,
        "torch_plain": torch_plain_case,
    }[framework]
    fn = make(case)
    before = rss_mb()  # libraries, data and model in memory; no step run yet
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(
        json.dumps(
            {
                "median_s": statistics.median(times),
                "cpu_s": statistics.median(cpu),
                "peak_mb": peak_mb(),
                "training_mb": peak_mb() - before,
            }
        )
    )


def worker_env(framework: str, threads: int) -> dict[str, str]:
    """The environment of a worker: the same thread count for every framework."""
    env = {**os.environ, "LAYERNET_NUM_THREADS": str(threads)}
    if framework == "keras":
        env["KERAS_BACKEND"] = "jax"
        env["JAX_PLATFORMS"] = "cpu"
        if threads == 1:
            flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    return env


@contextlib.contextmanager
def cpu_hog() -> Iterator[subprocess.Popen]:
    """One CPU-bound process, running while the block runs.

    It is killed when the block ends, however it ends (an error, Ctrl-C, or
    ``SIGTERM`` once :func:`exit_on_sigterm` is set), and it ends by itself
    soon after this process dies without running the block's end
    (``SIGKILL``): every few milliseconds it checks its parent's pid (:data:`HOG_SOURCE`).
    """
    hog = subprocess.Popen([sys.executable, "-c", HOG_SOURCE, str(os.getpid())])
    try:
        yield hog
    finally:
        hog.kill()
        hog.wait()


def exit_on_sigterm() -> None:
    """Turn ``SIGTERM`` into :class:`SystemExit`, so that ``finally`` blocks run on ``kill``."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def run_worker(
    framework: str, case: str, repeat: int, threads: int, busy: bool = False, quick: bool = False
) -> dict:
    """Time ``case`` in a fresh process; with ``busy``, one CPU-bound process runs alongside."""
    command = [sys.executable, __file__, "--worker", framework, case, "--repeat", str(repeat)]
    with cpu_hog() if busy else contextlib.nullcontext():
        out = subprocess.run(
            [*command, *(["--quick"] if quick else [])],
            capture_output=True,
            text=True,
            check=False,
            env=worker_env(framework, threads),
        )
    if out.returncode:
        raise RuntimeError(f"{framework} {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_spread(results: list[dict], key: str = "median_s") -> tuple[float, float]:
    """Median over rounds (ms) and the spread: half the range, in percent of the median."""
    values = [r[key] * 1e3 for r in results]
    med = statistics.median(values)
    return med, 50 * (max(values) - min(values)) / med if med else 0.0


# ------------------------------------------------------------------ the report
def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``, or None when either is missing or ``b`` is not positive."""
    return None if a is None or b is None or b <= 0 else a / b


def verdict(value: float | None, target: float | None) -> str:
    """``"met"`` / ``"not met"`` for a ratio against its target (``""`` without a target)."""
    if target is None:
        return ""
    if value is None:
        return "not measured"
    return "met" if value <= target else "not met"


def mark(value: float | None, target: float | None) -> str:
    """The table's short form of :func:`verdict`: ``<=1.3`` (met) or ``> 1.3`` (not met)."""
    if target is None or value is None:
        return ""
    return f"{'<=' if value <= target else '> '}{show(target)}"


def plain_outside(value: float | None) -> bool:
    """Whether PyTorch / plain PyTorch lies outside :data:`PLAIN_AGREEMENT`."""
    low, high = PLAIN_AGREEMENT
    return value is not None and not low <= value <= high


def summarize(case: str, runs: dict[str, list[dict]]) -> dict:
    """Every figure of one case: the rounds, their medians, the ratios and the targets."""
    frameworks: dict[str, dict] = {}
    for f, results in runs.items():
        med, spread = median_spread(results)
        frameworks[f] = {
            "median_ms": med,
            "spread_pct": spread,
            "cpu_ms": median_spread(results, "cpu_s")[0] if "cpu_s" in results[0] else None,
            "training_mb": statistics.median(r["training_mb"] for r in results),
            "peak_mb": statistics.median(r["peak_mb"] for r in results),
            "rounds": results,
        }

    def get(f: str, key: str) -> float | None:
        return frameworks[f][key] if f in frameworks else None

    training = is_training_case(case)
    return {
        "description": CASES[case][0],
        "training": training,
        "frameworks": frameworks,
        "ratios": {
            "layernet/torch": ratio(get("layernet", "median_ms"), get("torch", "median_ms")),
            "layernet/keras": ratio(get("layernet", "median_ms"), get("keras", "median_ms")),
            "torch/torch_plain": ratio(get("torch", "median_ms"), get("torch_plain", "median_ms")),
            "memory layernet/torch": ratio(
                get("layernet", "training_mb"), get("torch", "training_mb")
            ),
        },
        "targets": {
            "layernet/torch": CASES[case][1],
            "layernet/keras": KERAS_TARGETS.get(case),
            "memory layernet/torch": MEMORY_TARGETS.get(case),
            "busy/quiet": BUSY_TARGET if training else None,
        },
    }


def add_busy(entry: dict, hogged: dict[str, list[dict]]) -> None:
    """Add the busy medians and busy / quiet to ``entry`` (from :func:`summarize`)."""
    for f, results in hogged.items():
        cell = entry["frameworks"][f]
        cell["busy_ms"] = median_spread(results)[0]
        cell["busy/quiet"] = ratio(cell["busy_ms"], cell["median_ms"])
        cell["busy_rounds"] = results


def table_header(names: list[str]) -> str:
    header = f"{'case':<20}" + "".join(f"{LABELS[f] + ' ms':>20}" for f in names)
    if "torch" in names:
        header += f"{'/PyTorch':>10}{'target':>8}"
    if "keras" in names:
        header += f"{'/Keras':>8}{'target':>8}"
    if {"torch", "torch_plain"} <= set(names):
        header += f"{'PyTorch/plain':>15}"
    return header


def table_row(case: str, entry: dict, names: list[str]) -> str:
    row = f"{case:<20}"
    for f in names:
        if f in entry["frameworks"]:
            cell = entry["frameworks"][f]
            row += f"{cell['median_ms']:>12.2f} ±{cell['spread_pct']:>4.0f}% "
        else:
            row += f"{'-':>20}"
    r, t = entry["ratios"], entry["targets"]
    if "torch" in names:
        value = r["layernet/torch"]
        row += f"{fmt(value):>10}{mark(value, t['layernet/torch']):>8}"
    if "keras" in names:
        value = r["layernet/keras"]
        row += f"{fmt(value):>8}{mark(value, t['layernet/keras']):>8}"
    if {"torch", "torch_plain"} <= set(names):
        value = r["torch/torch_plain"]
        flag = " (!)" if plain_outside(value) else "    "
        row += f"{fmt(value):>11}{flag}"
    return row


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def show(target: float) -> str:
    """A target as the tables write it: ``1.0``, ``0.5``, ``1.25``."""
    return f"{target:.1f}" if round(target, 1) == target else f"{target:g}"


def summary(report: dict, threads: int) -> list[str]:
    """The targets, met or not, and the plain-loop check, as lines of text."""
    cases = report["cases"]
    lines = []
    note = "" if threads == 2 else "; the targets are set for 2 threads"
    for key, title in (
        ("layernet/torch", f"layernet / PyTorch ({threads} thread{'s' * (threads != 1)}{note})"),
        ("layernet/keras", "layernet / Keras-JAX"),
    ):
        rows = [(c, e["ratios"][key], e["targets"][key]) for c, e in cases.items()]
        rows = [row for row in rows if row[2] is not None]
        if rows:
            lines.append(f"targets, {title}:")
            lines += [f"  {c:<20}{fmt(v):>6}  <= {show(t):<5}{verdict(v, t)}" for c, v, t in rows]
    plain = [(c, e["ratios"]["torch/torch_plain"]) for c, e in cases.items()]
    plain = [(c, v) for c, v in plain if v is not None]
    if plain:
        low, high = PLAIN_AGREEMENT
        lines.append(f"PyTorch column / plain PyTorch loop (must lie within {low:g}-{high:g}):")
        lines += [
            f"  {c:<20}{fmt(v):>6}  {'outside' if plain_outside(v) else 'agrees'}" for c, v in plain
        ]
    return lines


def busy_table(report: dict, names: list[str]) -> list[str]:
    """``--busy``'s table: busy ms (busy / quiet) per framework, layernet marked."""
    rows = [
        (c, e)
        for c, e in report["cases"].items()
        if any("busy_ms" in cell for cell in e["frameworks"].values())
    ]
    if not rows:
        return []
    lines = [
        "with one CPU-bound process alongside: busy ms (busy / quiet); target: layernet's "
        f"training cases within {BUSY_TARGET:g}x their quiet time",
        f"{'case':<20}" + "".join(f"{LABELS[f]:>24}" for f in names) + f"{'layernet':>10}",
    ]
    for case, entry in rows:
        line = f"{case:<20}"
        for f in names:
            cell = entry["frameworks"].get(f, {})
            if "busy_ms" in cell:
                line += f"{cell['busy_ms']:>14.2f} ({fmt(cell['busy/quiet']):>6})"
            else:
                line += f"{'-':>24}"
        ours = entry["frameworks"].get("layernet", {}).get("busy/quiet")
        line += f"{verdict(ours, entry['targets']['busy/quiet']):>10}"
        lines.append(line)
    judged = [
        verdict(e["frameworks"]["layernet"].get("busy/quiet"), e["targets"]["busy/quiet"])
        for _, e in rows
        if e["training"] and "layernet" in e["frameworks"]
    ]
    if judged:
        met = judged.count("met")
        lines.append(
            f"layernet: {met} of {len(judged)} training cases within {BUSY_TARGET:g}x their "
            f"quiet time ({'met' if met == len(judged) else 'not met'})"
        )
    return lines


def memory_table(report: dict, names: list[str]) -> list[str]:
    """Peak memory of the training cases: growth from the loaded model (whole process)."""
    rows = [(c, e) for c, e in report["cases"].items() if e["training"]]
    if not rows:
        return []
    lines = [
        "peak memory of training, MiB: growth from the loaded model to the peak (in "
        "parentheses: the whole process, libraries included)",
        f"{'case':<20}"
        + "".join(f"{LABELS[f]:>18}" for f in names)
        + f"{'layernet/PyTorch':>18}{'target':>8}{'':>9}",
    ]
    for case, entry in rows:
        line = f"{case:<20}"
        for f in names:
            cell = entry["frameworks"].get(f)
            line += (
                f"{'-':>18}"
                if cell is None
                else f"{cell['training_mb']:>10.0f} ({cell['peak_mb']:>4.0f})"
            )
        value, target = (
            entry["ratios"]["memory layernet/torch"],
            entry["targets"]["memory layernet/torch"],
        )
        line += f"{fmt(value):>18}{mark(value, target):>8}{verdict(value, target):>9}"
        lines.append(line)
    return lines


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine(threads: int) -> dict:
    """The machine and library versions (read without importing PyTorch or Keras here)."""
    import layernet as ln

    versions = {"python": platform.python_version(), "numpy": np.__version__}
    versions["layernet"] = ln.__version__
    for name in ("torch", "keras", "jax"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "load_average_start": load_average(),
        "versions": versions,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (or, with ``--worker``, one worker); returns the report it prints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--threads", type=int, default=None, help="threads for every framework")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument(
        "--busy", action="store_true", help="also time with one CPU-bound process alongside"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH (JSON)")
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "CASE"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.repeat or 10, 1 if args.quick else 2)
        return {}
    exit_on_sigterm()  # a killed run still ends its workers and its --busy process
    rounds = 1 if args.quick else args.rounds
    threads = args.threads or blas_threads()
    info = machine(threads)
    v = info["versions"]
    print(
        f"CPU: {info['cpu']}, {info['cores']} cores; load average "
        f"{' '.join(map(str, info['load_average_start'] or ['-']))}; "
        f"Python {v['python']}, NumPy {v['numpy']}, PyTorch {v['torch']}, Keras {v['keras']}, "
        f"JAX {v['jax']}; threads {threads} for every framework; {rounds} round(s), "
        f"frameworks alternating; medians over rounds, spread = half the range in % of the median"
    )
    names = [f for f in FRAMEWORKS if f in args.frameworks]
    header = table_header(names)
    print(header)
    print("-" * len(header))
    report: dict = {
        "machine": info,
        "settings": {"rounds": rounds, "quick": args.quick, "busy": args.busy},
        "cases": {},
    }
    for case in args.cases:
        epoch = case.endswith("epoch")
        repeat = args.repeat or ((1 if epoch else 3) if args.quick else (5 if epoch else 20))
        frameworks = case_frameworks(case, names)
        runs: dict[str, list[dict]] = {f: [] for f in frameworks}
        for _ in range(rounds):
            for f in frameworks:
                runs[f].append(run_worker(f, case, repeat, threads, quick=args.quick))
        entry = summarize(case, runs)
        entry["repeat"] = repeat
        print(table_row(case, entry, names), flush=True)
        if args.busy:
            hogged: dict[str, list[dict]] = {f: [] for f in frameworks}
            for _ in range(rounds):
                for f in frameworks:
                    hogged[f].append(run_worker(f, case, repeat, threads, True, args.quick))
            add_busy(entry, hogged)
        report["cases"][case] = entry
    info["load_average_end"] = load_average()
    for block in (summary(report, threads), busy_table(report, names), memory_table(report, names)):
        if block:
            print("\n" + "\n".join(block), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nevery figure written to {args.json}")
    return report


if __name__ == "__main__":
    main()
