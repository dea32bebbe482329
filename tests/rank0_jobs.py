"""Data-parallel runs whose callbacks write to paths shared by every rank.

    mpiexec -n 2 python tests/rank0_jobs.py SHARED_DIR

Both ranks train the same model with CSVLogger, ModelCheckpoint and a verbose
ReduceLROnPlateau pointed at the same files; tests/test_callbacks.py checks that
each file was written once (rank 0) and each message printed once. Every rank
works in a folder of its own (``SHARED_DIR/rank<r>``) so that a file written by
a relative path on another rank would show. Importing this file does nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np


def main(shared: str) -> None:
    import layernet as ln
    from layernet.distributed import DataParallel

    dp = DataParallel()
    work = Path(shared, f"rank{dp.rank}")
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]])
    model = ln.Sequential(
        [ln.Dense(4, seed=0, dtype="float64"), ln.Dense(1, seed=1, dtype="float64")]
    )
    model.compile(ln.SGD(0.01), "mse")
    for run in range(2):  # a second run appends to the same CSV file
        callbacks = [
            ln.CSVLogger(Path(shared, "log.csv")),
            ln.CSVLogger(Path(shared, "appended.csv"), append=True),
            ln.ModelCheckpoint(Path(shared, f"run{run}-{{epoch}}.npz"), monitor="loss"),
            ln.ModelCheckpoint(
                Path(shared, "best.npz"),
                monitor="loss",
                save_best_only=True,
                save_weights_only=True,
            ),
            ln.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=1e9, verbose=1),
            ln.CSVLogger("relative.csv"),  # each rank's own folder: only rank0/ gets one
        ]
        model.fit(
            x, y, epochs=3, batch_size=8, seed=run, verbose=0, callbacks=callbacks, distribute=dp
        )


if __name__ == "__main__":
    main(sys.argv[1])
