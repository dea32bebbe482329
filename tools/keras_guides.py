"""Run keras.io's guides block by block under layernet with only their imports changed.

    python tools/keras_guides.py PATH/TO/keras-io/guides/keras_core [guide ...]

The guides are not part of this project: point the script at a checkout of the
keras-io repository (the Keras 3 versions of "The Sequential model", "The Functional
API", "Training & evaluation with the built-in methods", "Writing your own callbacks",
"Making new layers and models via subclassing", and "Customizing what happens in fit()
with JAX"). A guide's code blocks are the code between its prose (the module-level
strings of a keras-io ``.py`` guide), or the cells between ``# %%`` lines. Each guide
runs in one namespace, its blocks in order, after these changes only:

- ``import keras`` / ``import keras_core as keras`` become ``import layernet as keras``,
  ``from keras import X`` becomes ``from layernet import X``; ``import tensorflow`` and
  ``import jax`` lines go;
- ``keras.datasets.mnist.load_data()`` / ``cifar10.load_data()`` become offline stand-ins
  (random images of the same per-sample shapes; MNIST at its full 60,000/10,000 length
  since the guides reshape to it, CIFAR-10 at 1,000/200 since the guide uses 1,000);
- a block that uses TensorFlow (``tf.``) or JAX (``jax.``) is dropped, and so is a later
  block that needs a name only a dropped block defined.

The harness, not the guides' text, keeps it fast: within the run, ``fit`` trains one
epoch on the first ``SAMPLES`` samples (at most ``STEPS`` steps on a source of batches),
``evaluate`` and ``predict`` see ``SAMPLES`` samples.

Each guide reports how many blocks ran and the first error of every block that failed.
``RUN_AT_LEAST`` records the counts of the last measured run (layernet's changelog and
compatibility page quote them).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = Path(".")  # set from the command line
SAMPLES = 64
STEPS = 2

# Blocks that run now; raise a number when a fix makes more run.
RUN_AT_LEAST = {
    "sequential_model": 17,
    "functional_api": 29,
    "training_with_built_in_methods": 39,
    "writing_your_own_callbacks": 7,
    "making_new_layers_and_models_via_subclassing": 18,
    "custom_train_step_in_jax": 1,
}

_IMPORTS = [
    (re.compile(r"^import (keras|keras_core)( as keras)?$"), "import layernet as keras"),
    (re.compile(r"^from (keras|keras_core) import (.*)$"), r"from layernet import \2"),
    (re.compile(r"^import (tensorflow as tf|jax)$"), ""),
]
_DATA = [
    ("keras.datasets.mnist.load_data()", "_offline_mnist()"),
    ("keras.datasets.cifar10.load_data()", "_offline_cifar10()"),
]
_DROPPED_API = {"tf", "jax"}


def _offline_mnist():
    rng = np.random.default_rng(0)

    def split(n):
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(
            0, 10, n, dtype=np.uint8
        )

    return split(60000), split(10000)


def _offline_cifar10():
    rng = np.random.default_rng(1)

    def split(n):
        return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(
            0, 10, (n, 1), dtype=np.uint8
        )

    return split(1000), split(200)


def blocks(name: str) -> list[str]:
    """The guide's code blocks: the cells between ``# %%`` lines, or else the runs of
    top-level statements between the module-level strings (the prose)."""
    text = (FOLDER / f"{name}.py").read_text()
    if re.search(r"^# %%$", text, flags=re.M):
        return [b.strip("\n") for b in re.split(r"^# %%$", text, flags=re.M)[1:]]
    lines = text.splitlines()
    out: list[str] = []
    current: list[str] = []
    for node in ast.parse(text).body:
        prose = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if prose and isinstance(node.value.value, str):
            if current:
                out.append("\n".join(current))
                current = []
            continue
        start = node.lineno - 1 - len(getattr(node, "decorator_list", []) or [])
        current.extend(lines[start : node.end_lineno])
    if current:
        out.append("\n".join(current))
    return [b.strip("\n") for b in out if b.strip()]


def _names(code: str) -> tuple[set[str], set[str]]:
    """(names the block defines at top level, names it reads before defining)."""
    tree = ast.parse(code)
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defined.add(node.name)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                defined.add(sub.id)
    read = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in defined
    }
    return defined, read


def adapt(code: str) -> str:
    """The block with layernet's imports and the offline data stand-ins."""
    lines = []
    for line in code.splitlines():
        for pattern, repl in _IMPORTS:
            line = pattern.sub(repl, line)
        lines.append(line)
    code = "\n".join(lines)
    for old, new in _DATA:
        code = code.replace(old, new)
    return code


def _cut(value: Any, n: int) -> Any:
    if isinstance(value, dict):
        return {k: _cut(v, n) for k, v in value.items()}
    if isinstance(value, list | tuple) and value and hasattr(value[0], "shape"):
        return type(value)(_cut(v, n) for v in value)
    if isinstance(value, np.ndarray) and value.ndim:
        return value[:n]
    return value


def _is_arrays(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_arrays(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_is_arrays(v) for v in value)
    return value is None or isinstance(value, np.ndarray)


@contextlib.contextmanager
def shortened() -> Iterator[None]:
    """Within the block, fit/evaluate/predict run on a few samples, one epoch."""
    from layernet.training.trainer import Trainer

    fit, evaluate, predict = Trainer.fit, Trainer.evaluate, Trainer.predict

    def short_fit(self, *args, **kwargs):
        bound = inspect.signature(fit).bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if _is_arrays(a["x"]):
            for key in ("x", "y", "sample_weight"):
                a[key] = _cut(a[key], SAMPLES)
        else:
            a["steps_per_epoch"] = min(a["steps_per_epoch"] or STEPS, STEPS)
        v = a["validation_data"]
        if v is not None:
            if isinstance(v, tuple) and _is_arrays(v):
                a["validation_data"] = tuple(_cut(part, SAMPLES) for part in v)
            else:
                a["validation_steps"] = min(a["validation_steps"] or STEPS, STEPS)
        a["epochs"] = min(a["epochs"], a["initial_epoch"] + 1)
        return fit(*bound.args, **bound.kwargs)

    def short(method):
        def run(self, *args, **kwargs):
            bound = inspect.signature(method).bind(self, *args, **kwargs)
            bound.apply_defaults()
            a = bound.arguments
            if _is_arrays(a["x"]):
                for key in ("x", "y", "sample_weight"):
                    if key in a:
                        a[key] = _cut(a[key], SAMPLES)
            else:
                a["steps"] = min(a["steps"] or STEPS, STEPS)
            return method(*bound.args, **bound.kwargs)

        return run

    Trainer.fit = short_fit  # type: ignore[method-assign]
    Trainer.evaluate = short(evaluate)  # type: ignore[method-assign]
    Trainer.predict = short(predict)  # type: ignore[method-assign]
    try:
        yield
    finally:
        Trainer.fit, Trainer.evaluate, Trainer.predict = fit, evaluate, predict  # type: ignore[method-assign]


def run_guide(name: str) -> dict[str, Any]:
    """Run the guide's blocks in order in one namespace.

    Returns ``{"ran": [...], "failed": {index: first error}, "dropped": {index: why}}``.
    """
    namespace: dict[str, Any] = {
        "__name__": f"guide_{name}",
        "_offline_mnist": _offline_mnist,
        "_offline_cifar10": _offline_cifar10,
    }
    report: dict[str, Any] = {"ran": [], "failed": {}, "dropped": {}, "total": 0}
    dropped_names: set[str] = set()
    with shortened():
        for i, original in enumerate(blocks(name)):
            report["total"] += 1
            code = adapt(original)
            defined, read = _names(code)
            if read & _DROPPED_API:
                report["dropped"][i] = "uses TensorFlow or JAX"
                dropped_names |= defined
                continue
            if read & dropped_names:
                report["dropped"][i] = f"needs {sorted(read & dropped_names)} of a dropped block"
                dropped_names |= defined
                continue
            dropped_names -= defined
            try:
                exec(compile(code, f"<{name} block {i}>", "exec"), namespace)
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                where = f"{Path(frame.filename).name}:{frame.lineno}"
                report["failed"][i] = f"{type(exc).__name__}: {exc} ({where})"
            else:
                report["ran"].append(i)
    return report


def _format(name: str, report: dict[str, Any]) -> str:
    lines = [
        f"{name}: {len(report['ran'])} of {report['total']} blocks ran "
        f"({len(report['dropped'])} dropped, {len(report['failed'])} failed)"
    ]
    for i, why in report["dropped"].items():
        lines.append(f"  block {i}: dropped, {why}")
    for i, error in report["failed"].items():
        lines.append(f"  block {i}: {error[:300]}")
    return "\n".join(lines)


if __name__ == "__main__":
    import os
    import tempfile

    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["KERAS_BACKEND"] = "numpy"  # a guide may set it; layernet ignores it
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    FOLDER = Path(sys.argv[1]).resolve()
    names = sys.argv[2:] or sorted(RUN_AT_LEAST)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        for guide in names:
            print(_format(guide, run_guide(guide)), flush=True)
