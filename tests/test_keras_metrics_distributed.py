"""The new Keras metrics in data-parallel training: ``mpiexec -n 2`` equals one process.

Their states are sums, so the trainer's one all-reduce of every metric's ``variables``
gives each rank the metric of the global batch; the two-rank logs must equal the
one-process logs (up to float rounding).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import layernet as ln
from layernet import distributed

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import layernet as ln

    def histories(distribute):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(40, 4))
        labels = rng.integers(0, 3, 40)
        y = x @ rng.normal(size=(4, 2)) + 0.1 * rng.normal(size=(40, 2))
        out = {}
        clf = ln.Sequential(
            [ln.Input((4,)), ln.Dense(3, activation="softmax", seed=1, dtype="float64")]
        )
        clf.compile(
            optimizer=ln.SGD(learning_rate=0.1),
            loss="sparse_categorical_crossentropy",
            metrics=[
                ln.metrics.SparseCategoricalCrossentropy(ignore_class=2, name="xent"),
                ln.metrics.MeanIoU(num_classes=3, sparse_y_pred=False),
                ln.metrics.IoU(num_classes=3, target_class_ids=[1], sparse_y_pred=False),
            ],
        )
        h = clf.fit(x, labels, batch_size=10, epochs=2, shuffle=False, verbose=0,
                    distribute=distribute)
        out.update({f"clf_{k}": v for k, v in h.history.items()})
        reg = ln.Sequential([ln.Input((4,)), ln.Dense(2, seed=2, dtype="float64")])
        reg.compile(
            optimizer=ln.SGD(learning_rate=0.05),
            loss="mse",
            metrics=["r2_score", "pearson_correlation", "log_cosh_error",
                     ln.metrics.R2Score(class_aggregation=None, name="r2_each")],
        )
        h = reg.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0,
                    distribute=distribute)
        out.update({f"reg_{k}": np.asarray(v).tolist() for k, v in h.history.items()})
        return out

    if __name__ == "__main__":
        if sys.argv[1] == "one":
            print(json.dumps(histories(None)))
        else:
            dp = ln.DataParallel()
            logs = histories(dp)
            if dp.is_root:
                print(json.dumps(logs))
    """
)


def _mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.mark.skipif(
    _mpiexec() is None or not distributed._mpi_available(),
    reason="needs mpi4py and mpiexec: install the 'mpi' extra (python3 run.py test does)",
)
def test_two_ranks_log_what_one_process_logs(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_"))
        and k not in distributed.BLAS_ENV_VARS
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))

    def run(cmd):
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    one = run([sys.executable, str(script), "one"])
    two = run([_mpiexec(), "-n", "2", sys.executable, str(script), "dp"])
    assert set(one) == set(two) and len(one) == 9
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert ln.metrics.R2Score.direction == "up"
