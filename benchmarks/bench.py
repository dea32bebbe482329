"""Time layernet against PyTorch and Keras 3 (JAX backend) on the CPU, each in its own process.

    python benchmarks/bench.py            # full run (several rounds)
    python benchmarks/bench.py --quick    # smoke run: one round, few repeats
    python benchmarks/bench.py --cases conv_B_fwdbwd lenet_256
    python benchmarks/bench.py --busy     # also with one CPU-bound process alongside

Each case runs in a fresh worker process per framework, alternating layernet,
PyTorch, Keras, layernet, ... over the rounds (OpenBLAS, PyTorch's OpenMP and
XLA's threads slow each other inside one process). A worker builds its model
and data once (PyTorch: channels-first tensors made once; Keras: the step
compiled by ``jit_compile``), warms up, times ``repeat`` runs and reports their
median and its peak resident memory above what it held before the timed work.
The table shows, per framework, the median over rounds and the spread of the
rounds (half the range, in percent of the median), and the ratios layernet /
PyTorch and layernet / Keras (below 1: layernet is faster). Every framework
gets the same thread count: layernet's budget (``--threads``, default
:func:`layernet.get_num_threads`), ``torch.set_num_threads`` for PyTorch, and
for XLA one thread (``intra_op_parallelism_threads=1``, no Eigen threads) when
the count is 1 (else XLA's default, all cores). With ``--busy`` each case is
timed again while one CPU-bound process runs alongside, and the ratio busy /
quiet is shown per framework.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# name: (description, target ratio to PyTorch or None)
CASES: dict[str, tuple[str, float | None]] = {
    "mnist1d_epoch": ("MNIST-1D CNN, one epoch (4000 samples, batch 100)", 0.5),
    "lenet_64": ("LeNet-5 training step, batch 64", 1.3),
    "lenet_256": ("LeNet-5 training step, batch 256", 1.5),
    "lenet_64_functional": ("LeNet-5 training step, batch 64, as a functional Model", None),
    "resnet_block_step": ("ResNet block on 32x32x3, SGD momentum step, batch 64", None),
    "mnist_convnet_epoch": (
        "keras.io MNIST convnet, one epoch (4000 random 28x28 images, batch 128, Adam)",
        None,
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
    "gru_step",
    "conv_B_fwdbwd",
    "conv_C_fwdbwd",
    "resnet_block_step",
)
FRAMEWORKS = ("layernet", "torch", "keras")
LABELS = {"layernet": "layernet", "torch": "PyTorch", "keras": "Keras/JAX"}
MNIST_CONVNET_SAMPLES = 4000
MEMORY_CASE = "lenet_256"
MEMORY_TARGET = 1.5


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


def layernet_resnet_block(n: int = 64) -> Callable[[], None]:
    """The ResNet block as a functional model: its training step on ``n`` images."""
    import layernet as ln

    rng = np.random.default_rng(0)
    inputs = ln.Input((32, 32, 3))
    h = ln.ReLU()(ln.BatchNormalization()(ln.Conv2D(32, 3, padding="same")(inputs)))
    skip = h
    h = ln.ReLU()(ln.BatchNormalization()(ln.Conv2D(32, 3, padding="same")(h)))
    h = ln.BatchNormalization()(ln.Conv2D(32, 3, padding="same")(h))
    h = ln.ReLU()(ln.Add()([h, skip]))
    outputs = ln.Dense(10)(ln.GlobalAveragePooling2D()(h))
    model = ln.Model(inputs, outputs)
    model.compile(
        ln.SGD(0.01, momentum=0.9), ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    x = rng.standard_normal((n, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return lambda: model.train_step(x, y)


def layernet_case(case: str) -> Callable[[], None]:
    sys.path.insert(0, str(HERE.parent / "examples"))
    import layernet as ln

    rng = np.random.default_rng(0)
    if case == "mnist1d_epoch":
        from train_mnist1d import build_model

        (x, y), _ = ln.datasets.load_mnist1d()
        model = build_model()
        model.compile(ln.SGD(0.05, momentum=0.9), "softmax_cross_entropy")
        return lambda: model.fit(x, y, epochs=1, batch_size=100, verbose=0)
    if case == "lenet_64_functional":  # the same layers, called on an Input
        seq, x, t = lenet(64)
        model = ln.Model(seq.inputs, seq.outputs)
        model.compile(ln.SGD(0.01, momentum=0.9), "mse")
        return lambda: model.train_step(x, t)
    if case.startswith("lenet"):
        model, x, t = lenet(int(case.split("_")[1]))
        return lambda: model.train_step(x, t)
    if case == "resnet_block_step":
        return layernet_resnet_block()
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
def torch_resnet_block(n: int = 64) -> Callable[[], None]:
    """The ResNet block as PyTorch users write it: an ``nn.Module``, channels-first data."""
    import torch

    nn, F = torch.nn, torch.nn.functional
    rng = np.random.default_rng(0)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.conv2, self.bn2 = nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.conv3, self.bn3 = nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.fc = nn.Linear(32, 10)

        def forward(self, x):
            skip = F.relu(self.bn1(self.conv1(x)))
            h = F.relu(self.bn2(self.conv2(skip)))
            h = F.relu(self.bn3(self.conv3(h)) + skip)
            return self.fc(h.mean(dim=(2, 3)))

    model = Block()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.tensor(rng.standard_normal((n, 3, 32, 32)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 10, n))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def torch_case(case: str) -> Callable[[], None]:
    import torch

    torch.set_num_threads(blas_threads())
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
    if case == "resnet_block_step":
        return torch_resnet_block()
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
def keras_resnet_block(n: int = 64) -> Callable[[], None]:
    """The ResNet block in Keras 3 (functional API), ``train_on_batch`` with ``jit_compile``."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras
    from keras import layers

    rng = np.random.default_rng(0)
    inputs = keras.Input((32, 32, 3))
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(inputs)))
    skip = h
    h = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(h)))
    h = layers.BatchNormalization()(layers.Conv2D(32, 3, padding="same")(h))
    h = layers.ReLU()(layers.Add()([h, skip]))
    outputs = layers.Dense(10)(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    x = rng.standard_normal((n, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return lambda: model.train_on_batch(x, y)


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
    if case == "resnet_block_step":
        return keras_resnet_block()
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


def worker(framework: str, case: str, repeat: int, warmup: int = 2) -> None:
    make = {"layernet": layernet_case, "torch": torch_case, "keras": keras_case}[framework]
    fn = make(case)
    before = rss_mb()  # libraries, data and model in memory; no step run yet
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "median_s": statistics.median(times),
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


def run_worker(
    framework: str, case: str, repeat: int, threads: int, busy: bool = False, quick: bool = False
) -> dict:
    """Time ``case`` in a fresh process; with ``busy``, one CPU-bound process runs alongside."""
    hog = None
    if busy:
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                framework,
                case,
                "--repeat",
                str(repeat),
                *(["--quick"] if quick else []),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=worker_env(framework, threads),
        )
    finally:
        if hog is not None:
            hog.terminate()
            hog.wait()
    if out.returncode:
        raise RuntimeError(f"{framework} {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_spread(results: list[dict], key: str = "median_s") -> tuple[float, float]:
    """Median over rounds (ms) and the spread: half the range, in percent of the median."""
    values = [r[key] * 1e3 for r in results]
    med = statistics.median(values)
    return med, 50 * (max(values) - min(values)) / med if med else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round, few repeats")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--threads", type=int, default=None, help="threads for every framework")
    parser.add_argument("--frameworks", nargs="+", choices=FRAMEWORKS, default=list(FRAMEWORKS))
    parser.add_argument(
        "--busy", action="store_true", help="also time with one CPU-bound process alongside"
    )
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "CASE"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker, args.repeat or 10, 1 if args.quick else 2)
        return
    rounds = 1 if args.quick else args.rounds
    threads = args.threads or blas_threads()
    import torch

    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"NumPy {np.__version__}, PyTorch {torch.__version__}; threads {threads} for every "
        f"framework; {rounds} round(s), frameworks alternating; medians over rounds, "
        f"spread = half the range in % of the median"
    )
    names = [f for f in FRAMEWORKS if f in args.frameworks]
    header = f"{'case':<20}" + "".join(f"{LABELS[f] + ' ms':>20}" for f in names)
    if "torch" in names:
        header += f"{'/PyTorch':>10}{'target':>8}"
    if "keras" in names:
        header += f"{'/Keras':>8}"
    print(header)
    print("-" * len(header))
    results: dict[str, dict[str, list[dict]]] = {}
    busy_rows = []
    for case in args.cases:
        epoch = case.endswith("epoch")
        repeat = args.repeat or ((1 if epoch else 3) if args.quick else (5 if epoch else 20))
        frameworks = [f for f in names if f != "keras" or case in KERAS_CASES]
        runs: dict[str, list[dict]] = {f: [] for f in frameworks}
        for _ in range(rounds):
            for f in frameworks:
                runs[f].append(run_worker(f, case, repeat, threads, quick=args.quick))
        stats = {f: median_spread(r) for f, r in runs.items()}
        row = f"{case:<20}"
        for f in names:
            if f in stats:
                med, spread = stats[f]
                row += f"{med:>12.2f} ±{spread:>4.0f}% "
            else:
                row += f"{'-':>20}"
        ours = stats["layernet"][0] if "layernet" in stats else None
        if "torch" in names and ours is not None:
            ratio = ours / stats["torch"][0]
            target = CASES[case][1]
            mark = "" if target is None else f"{'<=' if ratio <= target else '> '}{target}"
            row += f"{ratio:>10.2f}{mark:>8}"
        if "keras" in names and ours is not None:
            row += f"{ours / stats['keras'][0]:>8.2f}" if "keras" in stats else f"{'-':>8}"
        print(row, flush=True)
        results[case] = runs
        if args.busy:
            hogged: dict[str, list[dict]] = {f: [] for f in frameworks}
            for _ in range(rounds):
                for f in frameworks:
                    hogged[f].append(run_worker(f, case, repeat, threads, True, args.quick))
            busy = {f: median_spread(r)[0] for f, r in hogged.items()}
            busy_rows.append((case, {f: (busy[f], busy[f] / stats[f][0]) for f in frameworks}))
    if busy_rows:
        print("\nwith one CPU-bound process alongside: busy ms (busy / quiet)")
        for case, row in busy_rows:
            cells = "".join(
                f"{LABELS[f]:>10} {ms:9.2f} ({ratio:4.2f})" for f, (ms, ratio) in row.items()
            )
            print(f"{case:<20}{cells}", flush=True)
    if MEMORY_CASE in results and {"layernet", "torch"} <= set(results[MEMORY_CASE]):
        ours, theirs = results[MEMORY_CASE]["layernet"], results[MEMORY_CASE]["torch"]
        a = statistics.median(r["training_mb"] for r in ours)
        b = statistics.median(r["training_mb"] for r in theirs)
        pa = statistics.median(r["peak_mb"] for r in ours)
        pb = statistics.median(r["peak_mb"] for r in theirs)
        print(
            f"\npeak memory of {MEMORY_CASE} training, MiB: whole process (libraries included) "
            f"layernet {pa:.0f}, PyTorch {pb:.0f}, ratio {pa / pb:.2f}; growth from the loaded "
            f"model to the peak: layernet {a:.0f}, PyTorch {b:.0f}, ratio {a / b:.2f} "
            f"(target <= {MEMORY_TARGET})"
        )


if __name__ == "__main__":
    main()
