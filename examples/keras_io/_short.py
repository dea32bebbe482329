"""Run a keras.io gallery script in its short mode (what the tests and the gallery's figures use).

    python examples/keras_io/_short.py autoencoder [--epochs 1] [--samples 256]
        [--set NAME=VALUE ...]

The script itself is run unchanged (``runpy.run_path``), with:

- ``LAYERNET_GALLERY_SHORT=1``: the offline stand-ins are small (``_offline.py``;
  ``--full-data`` keeps them whole);
- ``Model.fit`` limited to ``--epochs`` epochs and ``--samples`` training samples
  (arrays are cut; datasets get ``steps_per_epoch``), validation,
  ``evaluate`` (and ``predict`` on datasets) to ``--eval-samples`` samples;
- ``--set NAME=VALUE``: a top-level assignment ``NAME = ...`` of the script takes
  ``VALUE`` instead (a Python literal), to shrink a model's sizes; the script's
  text is otherwise what runs;
- Matplotlib's non-interactive backend (``plt.show()`` draws nothing).

The full run is ``python examples/keras_io/<name>.py``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

#: The sizes each script's short mode shrinks (top-level assignments of the script).
SHORT_SETTINGS: dict[str, dict[str, Any]] = {
    "autoencoder": {},
    "siamese_contrastive": {},
    "convmixer": {},
    "image_classification_with_vision_transformer": {
        "image_size": 36,
        "patch_size": 6,
        "projection_dim": 16,
        "num_heads": 2,
        "transformer_layers": 2,
        "mlp_head_units": [64, 32],
    },
    "image_classification_from_scratch": {"image_size": (64, 64), "batch_size": 32},
}


def _cut(data: Any, n: int) -> Any:
    if isinstance(data, np.ndarray):
        return data[:n]
    if isinstance(data, list | tuple) and data and all(isinstance(a, np.ndarray) for a in data):
        return type(data)(a[:n] for a in data)
    if isinstance(data, dict):
        return {k: _cut(v, n) for k, v in data.items()}
    return data


def _is_dataset(data: Any) -> bool:
    return hasattr(data, "__len__") and hasattr(data, "on_epoch_end") and not _is_arrays(data)


def _is_arrays(data: Any) -> bool:
    return isinstance(data, np.ndarray) or (
        isinstance(data, list | tuple) and bool(data) and isinstance(data[0], np.ndarray)
    )


def _steps(data: Any, n: int) -> int:
    size = getattr(data, "batch_size", None) or 32
    return max(1, min(len(data), -(-n // size)))


@contextlib.contextmanager
def short_mode(
    epochs: int = 1, samples: int = 256, eval_samples: int = 64, small_data: bool = True
) -> Iterator[None]:
    """Limit ``fit``/``evaluate``/``predict`` of every layernet model while inside."""
    from layernet.training.trainer import Trainer

    fit, evaluate, predict = Trainer.fit, Trainer.evaluate, Trainer.predict

    def short_fit(self, x=None, y=None, *args, **kwargs):
        kwargs["epochs"] = min(kwargs.get("epochs", 1), epochs)
        if args:  # batch_size given by position
            kwargs["batch_size"] = args[0]
            args = args[1:]
        if _is_dataset(x):
            kwargs["steps_per_epoch"] = _steps(x, samples)
        else:
            x, y = _cut(x, samples), _cut(y, samples)
        val = kwargs.get("validation_data")
        if val is not None:
            if _is_dataset(val):
                kwargs["validation_steps"] = _steps(val, eval_samples)
            else:
                kwargs["validation_data"] = tuple(_cut(v, eval_samples) for v in val)
        return fit(self, x, y, *args, **kwargs)

    def short_evaluate(self, x=None, y=None, *args, **kwargs):
        if _is_dataset(x):
            kwargs["steps"] = _steps(x, eval_samples)
        else:
            x, y = _cut(x, eval_samples), _cut(y, eval_samples)
        return evaluate(self, x, y, *args, **kwargs)

    def short_predict(self, x, *args, **kwargs):
        # Arrays are predicted whole: scripts index the predictions like their inputs.
        if _is_dataset(x):
            kwargs["steps"] = _steps(x, eval_samples)
        return predict(self, x, *args, **kwargs)

    previous = os.environ.get("LAYERNET_GALLERY_SHORT")
    os.environ["LAYERNET_GALLERY_SHORT"] = "1" if small_data else "0"
    Trainer.fit, Trainer.evaluate, Trainer.predict = short_fit, short_evaluate, short_predict
    try:
        yield
    finally:
        Trainer.fit, Trainer.evaluate, Trainer.predict = fit, evaluate, predict
        if previous is None:
            os.environ.pop("LAYERNET_GALLERY_SHORT", None)
        else:
            os.environ["LAYERNET_GALLERY_SHORT"] = previous


def _with_settings(source: str, settings: dict[str, Any], path: str) -> Any:
    """The script compiled with some top-level assignments given other values."""
    tree = ast.parse(source, path)
    missing = set(settings)
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in settings
        ):
            node.value = ast.parse(repr(settings[node.targets[0].id]), mode="eval").body
            missing.discard(node.targets[0].id)
    if missing:
        raise ValueError(f"{path}: no top-level assignment to {sorted(missing)}.")
    return compile(ast.fix_missing_locations(tree), path, "exec")


def run(
    name: str,
    epochs: int = 1,
    samples: int = 256,
    eval_samples: int = 64,
    settings: dict[str, Any] | None = None,
    small_data: bool = True,
) -> dict[str, Any]:
    """Run ``examples/keras_io/<name>.py`` in its short mode; return its globals."""
    import matplotlib

    matplotlib.use("Agg")
    path = os.path.join(HERE, f"{name}.py")
    settings = SHORT_SETTINGS.get(name, {}) if settings is None else settings
    with open(path, encoding="utf-8") as f:
        code = _with_settings(f.read(), settings, path)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": path}
    sys.path.insert(0, HERE)
    try:
        with short_mode(epochs, samples, eval_samples, small_data):
            exec(code, namespace)
    finally:
        sys.path.remove(HERE)
        import matplotlib.pyplot as plt

        plt.close("all")
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(SHORT_SETTINGS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--eval-samples", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--full-data", action="store_true", help="offline stand-ins at their full size"
    )
    args = parser.parse_args()
    settings = dict(SHORT_SETTINGS[args.name])
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key] = ast.literal_eval(value)
    run(args.name, args.epochs, args.samples, args.eval_samples, settings, not args.full_data)


if __name__ == "__main__":
    main()
