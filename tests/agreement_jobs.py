"""Cases that tests/test_agreement.py runs under ``mpiexec -n 2``.

    mpiexec -n 2 python tests/agreement_jobs.py OUTDIR CASE [CASE ...]

Every rank calls :func:`layernet._agreement.agree` once per case with the entries
the case gives it (they depend on the rank), records what happened (``"ok"`` or
the exception's type and message) and how long the call took, then writes
``OUTDIR/result<rank>.json``. A final ``allgather`` after the last case shows that
no rank was left behind in a collective. Importing this file does nothing.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _model(rank: int, change: str):
    import layernet as ln

    layers = [ln.Dense(4, seed=0), ln.ReLU(), ln.Dense(2, seed=1)]
    dtype = "float32"
    if rank == 1:
        if change == "units":
            layers[0] = ln.Dense(5, seed=0)
        elif change == "extra_layer":
            layers.insert(1, ln.Dropout(0.5))
        elif change == "layer_class":
            layers[1] = ln.Tanh()
        elif change == "dtype":
            dtype = "float64"
        elif change == "frozen":
            layers[0] = ln.Dense(4, seed=0, trainable=False)
        elif change == "activation":
            layers[0] = ln.Dense(4, seed=0, activation="tanh")
    model = ln.Sequential(
        [type(lay).from_config({**lay.get_config(), "dtype": dtype}) for lay in layers]
    )
    model.build((None, 3 if not (rank == 1 and change == "input") else 4))
    return model


def _compiled(rank: int, change: str):
    import layernet as ln

    model = _model(0, "")
    opt: Any = ln.SGD(0.1)
    loss, metrics = "mse", ["mae"]
    if rank == 1:
        if change == "lr":
            opt = ln.SGD(0.2)
        elif change == "optimizer":
            opt = ln.Adam(0.1)
        elif change == "momentum":
            opt = ln.SGD(0.1, momentum=0.9)
        elif change == "loss":
            loss = "mae"
        elif change == "metrics":
            metrics = ["mae", "mse"]
        elif change == "schedule":
            opt = ln.SGD(ln.StepDecay(0.1, 10))
    if change != "not_compiled" or rank == 0:
        model.compile(opt, loss, metrics)
    return model


def _data(rank: int, change: str):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.integers(0, 2, 40)
    if rank == 1:
        if change == "values":
            x = x.copy()
            x[17, 1] += 1e-6
        elif change == "samples":
            x, y = x[:39], y[:39]
        elif change == "dtype":
            x = x.astype("float32")
        elif change == "shape":
            x = x.reshape(40, 3, 1)
    return x, y


def entries(case: str, rank: int) -> tuple[str, dict[str, Any]]:
    """The function name and entries rank ``rank`` passes in ``case``."""
    from layernet import _agreement as ag

    kind, _, change = case.partition(":")
    other = rank == 1
    if kind == "value":  # one entry of each JSON kind that differs
        base: dict[str, Any] = {
            "int": 32,
            "float": 0.1,
            "bool": True,
            "none": None,
            "str": "adam",
            "list": [1, 2, 3],
            "tuple": (4, 5),
            "dict": {"a": 1, "b": [2, 3]},
            "nested": {"k": [{"x": 1.5}]},
            "array": np.arange(6.0).reshape(2, 3),
            "npint": np.int64(7),
            "long": "v" * 300,
        }
        if other:
            base[change] = {
                "int": 64,
                "float": 0.2,
                "bool": False,
                "none": 0,
                "str": "sgd",
                "list": [1, 2],
                "tuple": (4, 6),
                "dict": {"a": 1, "b": [2, 4]},
                "nested": {"k": [{"x": 2.5}]},
                "array": np.arange(6.0).reshape(3, 2),
                "npint": np.int64(8),
                "long": "v" * 299 + "w",
            }[change]
        return "fit", base
    if kind == "same":  # equal entries, given differently: agreement
        if change == "order":
            e = {"a": 1, "b": 2} if other else {"b": 2, "a": 1}
        elif change == "numpy":
            e = {"n": np.int32(3), "f": np.float64(0.5), "t": (1, 2)}
            if other:
                e = {"n": 3, "f": 0.5, "t": [1, 2]}
        else:  # "nan"
            e = {"v": float("nan")}
        return "fit", e
    if kind == "missing":
        e = {"batch_size": 32, "epochs": 2}
        if other:
            del e["epochs"]
        return "fit", e
    if kind == "fn":
        return ("evaluate" if other else "fit"), {"batch_size": 32}
    if kind == "unserialisable":
        e = {"batch_size": 32, "obj": 1}
        if (change == "one" and other) or change == "both":
            e["obj"] = object()
        return "fit", e
    if kind == "model":
        return "fit", ag.describe_model(_model(rank, change))
    if kind == "compile":
        return "fit", ag.describe_compile(_compiled(rank, change))
    if kind == "data":
        x, y = _data(rank, change)
        return "fit", ag.fit_entries(x, y, epochs=2, batch_size=8, shuffle=True, seed=0)
    if kind == "fitarg":
        args: dict[str, Any] = {
            "epochs": 4,
            "batch_size": 8,
            "shuffle": True,
            "seed": 3,
            "initial_epoch": 0,
            "validation_split": 0.0,
            "class_weight": {0: 1.0, 1: 2.0},
        }
        if other:
            args[change] = {
                "epochs": 5,
                "batch_size": 16,
                "shuffle": False,
                "seed": None,
                "initial_epoch": 2,
                "validation_split": 0.25,
                "class_weight": {0: 1.0, 1: 3.0},
            }[change]
        x, y = _data(0, "")
        return "fit", ag.fit_entries(x, y, **args)
    if kind == "predict":
        x, _ = _data(rank, change)
        return "predict", ag.predict_entries(x, batch_size=8)
    raise ValueError(f"unknown case {case!r}")


def main(outdir: str, cases: list[str]) -> None:
    from mpi4py import MPI

    from layernet._agreement import agree

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    out = {}
    for case in cases:
        fn, e = entries(case, rank)
        start = time.perf_counter()
        try:
            agree(comm, fn, e)
            result = "ok"
        except Exception as exc:
            result = f"{type(exc).__name__}: {exc}"
        out[case] = {"result": result, "seconds": time.perf_counter() - start}
    out["__final__"] = {"result": comm.allgather(rank), "seconds": 0.0}
    (Path(outdir) / f"result{rank}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
