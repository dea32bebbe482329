"""Agreement between data-parallel ranks (layernet._agreement).

The MPI tests run real ``mpiexec -n 2`` jobs (tests/agreement_jobs.py) in which
the two ranks call ``agree`` with entries that differ in one way per case; every
case must end on both ranks, well within 30 seconds, with the same message.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layernet as ln
from layernet import _agreement as ag
from layernet import distributed

ROOT = Path(__file__).resolve().parents[1]
CASE_SECONDS = 30  # every case ends within this, on both ranks


def mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    mpiexec() is None or not distributed._mpi_available(),
    reason="needs mpi4py and mpiexec: install the 'mpi' extra (python3 run.py test does)",
)


def run_cases(cases: list[str], outdir: Path) -> dict[str, list[dict]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    cmd = [mpiexec(), "-n", "2", sys.executable, str(ROOT / "tests" / "agreement_jobs.py")]
    result = subprocess.run(
        [*cmd, str(outdir), *cases],
        capture_output=True,
        text=True,
        timeout=CASE_SECONDS + 10 * len(cases),  # the job's start, then each case
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ranks = [json.loads((outdir / f"result{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["__final__"]["result"] == [0, 1] == ranks[1]["__final__"]["result"]
    return {case: [ranks[0][case], ranks[1][case]] for case in cases}


def assert_same_error(outcome: list[dict], pattern: str) -> str:
    """Both ranks ended quickly with the same message, which matches ``pattern``."""
    import re

    r0, r1 = outcome
    assert r0["result"] == r1["result"], (r0, r1)
    assert re.fullmatch(pattern, r0["result"]), r0["result"]
    assert r0["seconds"] < CASE_SECONDS and r1["seconds"] < CASE_SECONDS
    return r0["result"]


DISAGREE = "DataParallelError: fit: ranks disagree on "

VALUE_CASES = {
    "int": r"`int`: rank 0 has 32, rank 1 has 64\.",
    "float": r"`float`: rank 0 has 0\.1, rank 1 has 0\.2\.",
    "bool": r"`bool`: rank 0 has True, rank 1 has False\.",
    "none": r"`none`: rank 0 has None, rank 1 has 0\.",
    "str": r"`str`: rank 0 has 'adam', rank 1 has 'sgd'\.",
    "list": r"`list`: rank 0 has \[1, 2, 3\], rank 1 has \[1, 2\]\.",
    "tuple": r"`tuple`: rank 0 has \[4, 5\], rank 1 has \[4, 6\]\.",
    "dict": r"`dict`: rank 0 has \{'a': 1, 'b': \[2, 3\]\}, rank 1 has \{'a': 1, 'b': \[2, 4\]\}\.",
    "nested": r"`nested`: rank 0 has \{'k': \[\{'x': 1\.5\}\]\}, rank 1 has .*2\.5.*\.",
    "array": r"`array`: rank 0 has 'array\(2, 3\) float64 sha256:\w+', rank 1 has "
    r"'array\(3, 2\) float64 sha256:\w+'\.",
    "npint": r"`npint`: rank 0 has 7, rank 1 has 8\.",
    "long": r"`long`: rank 0 has sha256:\w{16} \(302 chars\), "
    r"rank 1 has sha256:\w{16} \(302 chars\)\.",
}


@needs_mpi
def test_every_kind_of_value_that_differs_gives_the_same_error_on_both_ranks(tmp_path):
    out = run_cases([f"value:{k}" for k in VALUE_CASES], tmp_path)
    for kind, pattern in VALUE_CASES.items():
        assert_same_error(out[f"value:{kind}"], DISAGREE + pattern)


@needs_mpi
def test_structural_disagreements_end_every_rank(tmp_path):
    out = run_cases(["missing", "fn", "unserialisable:one", "unserialisable:both", *SAME], tmp_path)
    assert_same_error(
        out["missing"], DISAGREE + r"`epochs`: rank 0 has 2, rank 1 has \(missing\)\."
    )
    assert_same_error(
        out["fn"],
        r"DataParallelError: fit: ranks disagree on the call: "
        r"rank 0 has fit, rank 1 has evaluate\.",
    )
    assert_same_error(
        out["unserialisable:one"],
        DISAGREE + r"`obj`: rank 0 has 1, rank 1 has <unserialisable> object\.",
    )
    assert_same_error(
        out["unserialisable:both"],
        r"TypeError: fit: entry `obj`: a object cannot be compared between ranks .*",
    )
    for case in SAME:  # equal entries given in another order or type agree
        assert_same_error(out[case], "ok")


SAME = ["same:order", "same:numpy", "same:nan"]

MODEL_CASES = {
    "units": r"`layer 0 \(Dense\) units`: rank 0 has 4, rank 1 has 5\.",
    "dtype": r"`layer 0 \(Dense\) dtype`: rank 0 has 'float32', rank 1 has 'float64'\.",
    "frozen": r"`layer 0 \(Dense\) trainable`: rank 0 has True, rank 1 has False\.",
    "activation": r"`layer 0 \(Dense\) activation`: rank 0 has None, rank 1 has 'tanh'\.",
    "input": r"`model input shape`: rank 0 has \[None, 3\], rank 1 has \[None, 4\]\.",
    "extra_layer": r"`model layers`: rank 0 has \['layernet>Dense', 'layernet>ReLU', "
    r"'layernet>Dense'\], rank 1 has \['layernet>Dense', 'layernet>Dropout', .*\]\.",
    "layer_class": r"`model layers`: .*'layernet>ReLU'.*, rank 1 has .*'layernet>Tanh'.*\.",
}

COMPILE_CASES = {
    "lr": r"`optimizer`: rank 0 has .*'learning_rate': 0\.1.*, "
    r"rank 1 has .*'learning_rate': 0\.2.*\.",
    "optimizer": r"`optimizer`: rank 0 has \{'class_name': 'SGD'.*, rank 1 has \{'class_name': "
    r"'Adam'.*\.",
    "momentum": r"`optimizer`: .*'momentum': 0\.0.*'momentum': 0\.9.*\.",
    "schedule": r"`optimizer`: .*'StepDecay'.*\.",
    "loss": r"`loss`: rank 0 has .*, rank 1 has .*\.",
    "metrics": r"`metrics`: rank 0 has \['mae'\], rank 1 has \['mae', 'mse'\]\.",
    "not_compiled": r"`compiled`: rank 0 has True, rank 1 has False\.",
}

DATA_CASES = {
    "values": r"`x checksum`: rank 0 has 'sha256:\w{16}', rank 1 has 'sha256:\w{16}'\.",
    "samples": r"`x samples`: rank 0 has 40, rank 1 has 39\.",
    "dtype": r"`x dtype`: rank 0 has 'float64', rank 1 has 'float32'\.",
    "shape": r"`x shape`: rank 0 has \[3\], rank 1 has \[3, 1\]\.",
}

FITARG_CASES = {
    "epochs": r"`epochs`: rank 0 has 4, rank 1 has 5\.",
    "batch_size": r"`batch_size`: rank 0 has 8, rank 1 has 16\.",
    "shuffle": r"`shuffle`: rank 0 has True, rank 1 has False\.",
    "seed": r"`seed`: rank 0 has 3, rank 1 has None\.",
    "initial_epoch": r"`initial_epoch`: rank 0 has 0, rank 1 has 2\.",
    "validation_split": r"`validation_split`: rank 0 has 0\.0, rank 1 has 0\.25\.",
    "class_weight": r"`class_weight`: rank 0 has \[\[0, 1\.0\], \[1, 2\.0\]\], "
    r"rank 1 has \[\[0, 1\.0\], \[1, 3\.0\]\]\.",
}


@needs_mpi
def test_models_compile_settings_data_and_fit_arguments_that_differ(tmp_path):
    cases = (
        [f"model:{k}" for k in MODEL_CASES]
        + [f"compile:{k}" for k in COMPILE_CASES]
        + [f"data:{k}" for k in DATA_CASES]
        + [f"fitarg:{k}" for k in FITARG_CASES]
        + ["predict:samples", "model:none", "compile:none", "data:none"]
    )
    out = run_cases(cases, tmp_path)
    for prefix, table in (
        ("model", MODEL_CASES),
        ("compile", COMPILE_CASES),
        ("data", DATA_CASES),
        ("fitarg", FITARG_CASES),
    ):
        for change, pattern in table.items():
            assert_same_error(out[f"{prefix}:{change}"], DISAGREE + pattern)
    assert_same_error(
        out["predict:samples"],
        r"DataParallelError: predict: ranks disagree on `x samples`: "
        r"rank 0 has 40, rank 1 has 39\.",
    )
    for same in ("model:none", "compile:none", "data:none"):  # no change: agreement
        assert_same_error(out[same], "ok")


# ------------------------------------------------------------ one process
def test_one_process_or_no_communicator_checks_nothing():
    ag.agree(None, "fit", {"batch_size": 32, "x": np.zeros(3)})
    with pytest.raises(TypeError, match=r"fit: entry `cb`: a object cannot be compared"):
        ag.agree(None, "fit", {"cb": object()})


def test_the_strategy_is_accepted_in_place_of_its_communicator():
    class FakeStrategy:
        comm = None

    ag.agree(FakeStrategy(), "fit", {"epochs": 1})


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
        ),
        max_leaves=8,
    )
)
def test_stable_hash_is_a_function_of_the_value(value):
    assert ag.stable_hash(value) == ag.stable_hash(copy.deepcopy(value))
    assert ag.stable_hash([value]) != ag.stable_hash([value, 1])
    assert ag.stable_hash(value).startswith("sha256:")


def test_describe_model_names_the_argument_that_differs():
    def model(**dense):
        m = ln.Sequential([ln.Dense(**{"units": 3, **dense}), ln.ReLU(), ln.Dense(2)])
        m.build((None, 4))
        return m

    base = ag.describe_model(model())
    for change, key in (
        ({"units": 5}, "layer 0 (Dense) units"),
        ({"use_bias": False}, "layer 0 (Dense) use_bias"),
        ({"dtype": "float64"}, "layer 0 (Dense) dtype"),
        ({"trainable": False}, "layer 0 (Dense) trainable"),
        ({"kernel_initializer": "zeros"}, "layer 0 (Dense) kernel_initializer"),
    ):
        other = ag.describe_model(model(**change))
        differing = [k for k in base if base[k] != other.get(k)]
        assert differing[0] == key, (change, differing)
        assert "model config" in differing
    # names count instances inside one process: they never make ranks disagree
    assert ag.describe_model(model(name="renamed")) == base


def test_describe_model_sees_state_and_containers():
    def model(momentum=0.99, inner=3):
        m = ln.Sequential(
            [ln.Residual([ln.Dense(inner), ln.Dense(4)]), ln.BatchNorm(momentum=momentum)]
        )
        m.build((None, 4))
        return m

    base = ag.describe_model(model())
    assert ag.describe_model(model()) == base
    assert ag.describe_model(model(momentum=0.9)) != base
    changed = ag.describe_model(model(inner=5))
    assert changed["model config"] != base["model config"]
    assert changed["model weight shapes"] != base["model weight shapes"]


def test_describe_compile_never_shows_memory_addresses():
    def compiled(lr):
        m = ln.Sequential([ln.Dense(1)])
        m.compile(ln.SGD(lr), "mse", ["mae"])
        return ag.describe_compile(m)

    def schedule(step):
        return 0.1

    first, again = compiled(schedule), compiled(schedule)
    assert first == again
    assert "0x" not in json.dumps(first)
    assert first["optimizer"]["config"]["learning_rate"].endswith("schedule")
    assert ag.describe_compile(ln.Sequential([ln.Dense(1)])) == {"compiled": False}


@pytest.mark.parametrize("n", [0, 1, 5, 3000])
def test_describe_array_sees_any_changed_sampled_row(n):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    d = ag.describe_array(x, "x")
    assert d["x samples"] == n and d["x shape"] == [2] and d["x dtype"] == "float64"
    if n:
        y = x.copy()
        y[-1, 0] += 1
        assert ag.describe_array(y, "x")["x checksum"] != d["x checksum"]


def test_entry_lists_match_what_the_helpers_return():
    x, y = np.zeros((10, 2)), np.zeros(10)
    fit = ag.fit_entries(x, y, epochs=2, batch_size=4, shuffle=True, seed=0)
    assert tuple(fit) == ag.FIT_ENTRIES
    assert tuple(ag.evaluate_entries(x, y, batch_size=4)) == ag.EVALUATE_ENTRIES
    assert tuple(ag.predict_entries(x, batch_size=4)) == ag.PREDICT_ENTRIES
