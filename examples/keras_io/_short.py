"""Run a keras.io gallery script in its short mode (what the tests and the gallery's figures use).

    python examples/keras_io/_short.py autoencoder [--epochs 1] [--samples 256]
        [--set NAME=VALUE ...]

The script itself is run unchanged (``runpy.run_path``), with:

- ``LAYERNET_GALLERY_SHORT=1``: the offline stand-ins are small (``_offline.py``;
  ``--full-data`` keeps them whole);
- ``Model.fit`` limited to ``--epochs`` epochs and ``--samples`` training samples
  (arrays are cut; datasets get ``steps_per_epoch``), validation,
  ``evaluate`` (and ``predict`` on datasets) to ``--eval-samples`` samples;
- ``SHORT_SETTINGS`` and ``--set NAME=VALUE``: a top-level assignment ``NAME = ...``
  (or, for ``FUNCTION.NAME``, a default argument or assignment of a top-level
  function) takes ``VALUE`` instead (a Python literal), to shrink a model's sizes;
  the script's text is otherwise what runs;
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
    "convmixer": {
        "get_conv_mixer_256_8.filters": 32,
        "get_conv_mixer_256_8.depth": 4,
        "visualization_plot.num_filters": 32,
    },
    "image_classification_with_vision_transformer": {
        "image_size": 36,
        "patch_size": 6,
        "projection_dim": 16,
        "num_heads": 2,
        "transformer_layers": 2,
        "mlp_head_units": [64, 32],
    },
    "image_classification_from_scratch": {"image_size": (32, 32), "batch_size": 32},
}


#: Training samples of a short run where the default (256) would take long.
SHORT_SAMPLES: dict[str, int] = {"convmixer": 128}


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


def _literal(value: Any) -> ast.expr:
    return ast.parse(repr(value), mode="eval").body


def _set_in(body: list[ast.stmt], name: str, value: Any) -> bool:
    """Give the assignments ``name = ...`` among ``body``'s statements ``value``."""
    found = False
    for node in body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
        ):
            node.value = _literal(value)
            found = True
    return found


def _set_in_function(fn: ast.FunctionDef, name: str, value: Any) -> bool:
    """A default argument ``name=...`` of ``fn``, or an assignment in its body."""
    args = fn.args.args[len(fn.args.args) - len(fn.args.defaults) :]
    for arg, i in zip(args, range(len(fn.args.defaults)), strict=True):
        if arg.arg == name:
            fn.args.defaults[i] = _literal(value)
            return True
    return _set_in(fn.body, name, value)


def _with_settings(source: str, settings: dict[str, Any], path: str) -> Any:
    """The script compiled with some values replaced (the script's file is untouched).

    ``NAME`` is a top-level assignment ``NAME = ...``; ``FUNCTION.NAME`` a default
    argument of the top-level function ``FUNCTION`` or an assignment in its body.
    """
    tree = ast.parse(source, path)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = []
    for key, value in settings.items():
        scope, _, name = key.rpartition(".")
        if scope:
            ok = scope in functions and _set_in_function(functions[scope], name, value)
        else:
            ok = _set_in(tree.body, name, value)
        if not ok:
            missing.append(key)
    if missing:
        raise ValueError(f"{path}: nothing to set for {missing}.")
    return compile(ast.fix_missing_locations(tree), path, "exec")


def run(
    name: str,
    epochs: int = 1,
    samples: int | None = None,
    eval_samples: int = 64,
    settings: dict[str, Any] | None = None,
    small_data: bool = True,
) -> dict[str, Any]:
    """Run ``examples/keras_io/<name>.py`` in its short mode; return its globals."""
    import matplotlib

    matplotlib.use("Agg")
    path = os.path.join(HERE, f"{name}.py")
    settings = SHORT_SETTINGS.get(name, {}) if settings is None else settings
    if samples is None:
        samples = SHORT_SAMPLES.get(name, 256)
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
    parser.add_argument("--samples", type=int, default=None, help="256 for most scripts")
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
