"""Run a gallery sequence or time-series script in a short mode (the tests and docs use it).

    python examples/keras_io/_short_sequences.py NAME [--samples 64] [--epochs 1]
        [--small-data] [--set NAME=VALUE ...]

The script's text runs as it is (``runpy``), with:

- ``Model.fit`` given at most ``--epochs`` epochs and the first ``--samples`` training
  samples (and half as many validation samples when ``validation_data`` is given);
  ``Model.evaluate`` the first ``--samples // 2`` samples; fit prints one line an epoch;
- ``--small-data``: the offline stand-ins are smaller (``LAYERNET_GALLERY_SHORT=1``);
- ``--set NAME=VALUE``: a top-level assignment ``NAME = ...`` of the script takes the
  Python literal ``VALUE`` instead (a loop's epoch count, a generated data size);
- Matplotlib's non-interactive backend (``plt.show()`` draws nothing).

It prints, at the end, the last epoch's logs and what each ``evaluate`` returned.
The full run is ``python examples/keras_io/NAME.py``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import inspect
import os
import runpy
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _cut(value: Any, n: int) -> Any:
    """The first ``n`` samples of an array, or of each array of a list, tuple or dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _cut(v, n) for k, v in value.items()}
    if isinstance(value, list | tuple) and value and hasattr(value[0], "shape"):
        return type(value)(_cut(v, n) for v in value)
    return value[:n]


@contextlib.contextmanager
def shortened(samples: int, epochs: int = 1) -> Iterator[dict[str, list]]:
    """Within the block, ``fit`` and ``evaluate`` run short; yields what they returned."""
    from layernet.training.trainer import Trainer

    fit, evaluate = Trainer.fit, Trainer.evaluate
    record: dict[str, list] = {"fit": [], "evaluate": []}

    def short_fit(self, *args, **kwargs):
        bound = inspect.signature(fit).bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        a["x"], a["y"] = _cut(a["x"], samples), _cut(a["y"], samples)
        if a["validation_data"] is not None:
            a["validation_data"] = tuple(_cut(v, samples // 2) for v in a["validation_data"])
        a["epochs"] = min(a["epochs"], a["initial_epoch"] + epochs)
        a["verbose"] = 2
        history = fit(*bound.args, **bound.kwargs)
        record["fit"].append(history)
        return history

    def short_evaluate(self, *args, **kwargs):
        bound = inspect.signature(evaluate).bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        a["x"], a["y"] = _cut(a["x"], samples // 2), _cut(a["y"], samples // 2)
        result = evaluate(*bound.args, **bound.kwargs)
        record["evaluate"].append(result)
        return result

    Trainer.fit, Trainer.evaluate = short_fit, short_evaluate  # type: ignore[method-assign]
    try:
        yield record
    finally:
        Trainer.fit, Trainer.evaluate = fit, evaluate  # type: ignore[method-assign]


def run(
    name: str,
    samples: int = 64,
    epochs: int = 1,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``NAME.py`` short; its namespace, with ``record`` (the fits and evaluations)."""
    import matplotlib

    matplotlib.use("Agg")
    path = HERE / f"{name}.py"
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    with shortened(samples, epochs) as record:
        if overrides:
            tree = ast.parse(path.read_text())
            done = set()
            for node in tree.body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name) and target.id in overrides:
                        value = ast.Constant(overrides[target.id])
                        node.value = ast.copy_location(value, node.value)
                        done.add(target.id)
            missing = set(overrides) - done
            if missing:
                raise ValueError(f"{name}.py has no top-level assignment to {sorted(missing)}")
            namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(path)}
            exec(compile(tree, str(path), "exec"), namespace)
        else:
            namespace = runpy.run_path(str(path), run_name="__main__")
    namespace["record"] = record
    return namespace


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the script, e.g. timeseries_anomaly_detection")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--small-data", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = ast.literal_eval(value)
    if args.small_data:
        os.environ["LAYERNET_GALLERY_SHORT"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    record = run(args.name, args.samples, args.epochs, overrides)["record"]
    if record["fit"]:
        logs = {k: round(v[-1], 4) for k, v in record["fit"][-1].history.items()}
        print(f"[short mode] last epoch: {logs}")
    for result in record["evaluate"]:
        print(f"[short mode] evaluate returned {result}")


if __name__ == "__main__":
    main()
