"""Data-parallel training over MPI, and resumable training.

The MPI tests run real ``mpiexec -n 2`` jobs (tests/distributed_jobs.py) and
compare them with the one-process run done here; ``python3 run.py test`` installs
mpi4py and MPICH (the ``mpi`` extra), so they run in CI.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import layernet as ln
from layernet import distributed

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distributed_jobs as jobs

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # seconds for one mpiexec job; the jobs take about one


def mpiexec() -> str | None:
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


needs_mpi = pytest.mark.skipif(
    mpiexec() is None or not distributed._mpi_available(),
    reason="needs mpi4py and mpiexec: install the 'mpi' extra (python3 run.py test does)",
)


def run_job(job: str, outdir: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_"))
        and k not in distributed.BLAS_ENV_VARS
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    cmd = [mpiexec(), "-n", "2", sys.executable, str(ROOT / "tests" / "distributed_jobs.py")]
    start = time.perf_counter()
    result = subprocess.run(
        [*cmd, job, str(outdir)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return result, time.perf_counter() - start


def results(outdir: Path) -> list[dict[str, np.ndarray]]:
    return [dict(np.load(outdir / f"result{r}.npz")) for r in (0, 1)]


# ------------------------------------------------------------- mpiexec -n 2 jobs
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("dp_train")
    result, _ = run_job("train", outdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return outdir, result, results(outdir)


@needs_mpi
def test_ranks_end_with_bit_identical_weights_and_logs(trained):
    _, _, (r0, r1) = trained
    assert int(r0["size"]) == 2
    assert set(r0) == set(r1)
    for key in set(r0) - {"drift_warned"}:  # rank 0 alone warns
        assert np.array_equal(r0[key], r1[key]), key


@needs_mpi
def test_two_ranks_equal_one_process(trained):
    _, _, (r0, _) = trained
    x, y = jobs.data()
    xv, yv = jobs.data(20, seed=1)
    net = jobs.model()
    h = net.fit(x, y, epochs=4, batch_size=7, validation_data=(xv, yv), verbose=0, seed=3)
    np.testing.assert_allclose(r0["weights"], jobs.flat(net.get_weights()), rtol=0, atol=1e-10)
    assert set(h.history) == {k.removeprefix("history_") for k in r0 if k.startswith("history_")}
    for key, values in h.history.items():
        np.testing.assert_allclose(r0[f"history_{key}"], values, rtol=0, atol=1e-10)
    ev = net.evaluate(xv, yv, batch_size=6, return_dict=True)
    np.testing.assert_allclose(r0["evaluate"], [ev["loss"], ev["accuracy"]], rtol=0, atol=1e-10)
    np.testing.assert_allclose(r0["predict"], net.predict(xv), rtol=0, atol=1e-10)
    np.testing.assert_allclose(r0["weighted"], jobs.weighted(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        r0["blocks"], jobs.flat(jobs.blocks().get_weights()), rtol=0, atol=1e-10
    )
    one = net.evaluate(xv[:1], yv[:1], return_dict=True)
    np.testing.assert_allclose(r0["evaluate_one"], [one["loss"], one["accuracy"]], atol=1e-10)
    np.testing.assert_allclose(r0["predict_one"], net.predict(xv[:1]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        r0["predict_two_outputs"], jobs.two_outputs_predict(), rtol=0, atol=1e-10
    )


@needs_mpi
def test_every_rank_makes_one_process_callback_calls_with_its_logs(trained):
    # the same hooks in the same order with the same logs (AUC and Precision, which
    # are no means of per-batch values, included) on both ranks as in one process
    _, _, (r0, r1) = trained
    names, values = jobs.recorded()
    assert names.count("on_train_batch_end:7:loss,auc,precision,accuracy") == 3
    for r in (r0, r1):
        assert r["recorded_names"].tolist() == names
        np.testing.assert_allclose(r["recorded_values"], values, rtol=0, atol=1e-10)


@needs_mpi
def test_a_loop_of_ones_own_in_distribution_scope_trains_as_fit(trained):
    _, _, (r0, r1) = trained
    np.testing.assert_allclose(r0["own_loop"], jobs.own_loop(), rtol=0, atol=1e-10)
    assert np.array_equal(r0["own_loop"], r1["own_loop"])


@needs_mpi
def test_evaluate_on_one_rank_inside_a_distributed_fit_runs_in_one_process(trained):
    # rank 0's callback evaluated alone (rank 1 did after fit): the same values, no hang
    _, _, (r0, r1) = trained
    assert np.array_equal(r0["root_alone"], r1["root_alone"])
    assert np.isfinite(r0["root_alone"]).all()


@needs_mpi
def test_only_rank_zero_prints_and_writes(trained):
    outdir, result, _ = trained
    assert sorted(p.name for p in (outdir / "rank1").iterdir()) == []
    names = sorted(p.name for p in (outdir / "rank0").iterdir())
    checkpoints = [f"ckpt-{e}.npz" for e in range(1, 5)]
    assert names == [*checkpoints, "final.npz", "resume-1.npz", "resume-2.npz"]
    assert result.stdout.count("Epoch 1/4") == 1
    assert result.stderr.count("TerminateOnNaN: loss became") == 1
    ckpt = ln.load_model(outdir / "rank0" / "ckpt-4.npz")
    final = ln.load_model(outdir / "rank0" / "final.npz")
    assert ckpt.epochs_completed == final.epochs_completed == 4
    assert all(np.array_equal(a, b) for a, b in zip(ckpt.get_weights(), final.get_weights()))


@needs_mpi
def test_resume_on_two_ranks_equals_a_straight_run(trained):
    _, _, (r0, r1) = trained
    assert np.array_equal(r0["resume_straight"], r0["resume_resumed"])
    assert np.array_equal(r0["resume_straight"], r0["backup_resumed"])  # BackupAndRestore
    assert r0["backup_epochs"].tolist() == r1["backup_epochs"].tolist() == [2, 3]
    assert int(r0["resume_epochs"]) == 4


@needs_mpi
def test_callbacks_and_nan_stops_are_agreed(trained):
    _, _, (r0, r1) = trained
    # rank 1 alone asked to stop after its third step: both ranks stop there
    assert int(r0["stop_steps"]) == int(r1["stop_steps"]) == 3
    assert int(r0["stop_epochs"]) == 1
    assert bool(r0["nan_finite"]) and int(r0["nan_steps"]) == int(r1["nan_steps"])


@needs_mpi
def test_weights_that_drift_apart_are_replaced_by_rank_zeros(trained):
    _, _, (r0, r1) = trained
    assert np.array_equal(r0["drift_weights"], r1["drift_weights"])
    assert bool(r0["drift_warned"]) and not bool(r1["drift_warned"])


def test_importing_layernet_needs_no_mpi4py():
    code = "import sys; sys.modules['mpi4py'] = None; import layernet as ln; print(ln.DataParallel)"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "DataParallel" in out.stdout


@needs_mpi
def test_ranks_given_different_data_all_refuse(trained):
    _, _, (r0, _) = trained
    assert str(r0["mismatch"]).startswith("fit: ranks disagree on `x checksum`: rank 0 has")


@needs_mpi
def test_blas_threads_default_to_cores_per_rank(trained):
    _, _, (r0, _) = trained
    assert int(r0["local_size"]) == 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert int(r0["blas_threads"]) == max(1, cores // 2)
    if int(r0["blas_now"]) != -1:  # readable with OpenBLAS
        assert int(r0["blas_now"]) == int(r0["blas_threads"])
        assert int(r0["blas_two"]) == int(r0["blas_two_now"]) == 2  # asked for explicitly


def test_default_blas_threads_yield_to_the_environment():
    assert distributed.auto_blas_threads(16, 16, {}) == 1
    assert distributed.auto_blas_threads(16, 3, {}) == 5
    assert distributed.auto_blas_threads(2, 4, {}) == 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert distributed.auto_blas_threads(16, 2, {var: "3"}) is None


@needs_mpi
def test_failure_in_one_ranks_callback_ends_every_rank(tmp_path):
    result, seconds = run_job("fail_in_callback", tmp_path)
    assert result.returncode != 0
    assert "RuntimeError: callback exploded on rank 1" in result.stderr
    assert "rank 1 of 2 failed in fit; ending every rank" in result.stderr
    assert seconds < TIMEOUT


@needs_mpi
def test_failure_outside_fit_on_one_rank_ends_every_rank(tmp_path):
    result, seconds = run_job("fail_outside_fit", tmp_path)
    assert result.returncode != 0
    assert "OSError: rank 1 could not read its data" in result.stderr
    assert seconds < TIMEOUT


@needs_mpi
def test_failure_in_one_ranks_step_is_raised_on_every_rank(tmp_path):
    result, _ = run_job("fail_in_step", tmp_path)
    assert result.returncode != 0
    r0, r1 = results(tmp_path)
    assert str(r1["error"]) == "ValueError: fragile layer broke on rank 1"
    assert str(r0["error"]) == (
        "DataParallelError: rank 1 of 2 failed: ValueError: fragile layer broke on rank 1"
    )


@needs_mpi
def test_failure_in_one_ranks_test_or_predict_step_is_raised_on_every_rank(tmp_path):
    result, _ = run_job("fail_in_evaluate_and_predict", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr  # caught: no abort
    r0, r1 = results(tmp_path)
    for name in ("evaluate", "predict"):
        assert str(r1[name]) == "ValueError: fragile layer broke on rank 1"
        assert str(r0[name]) == (
            "DataParallelError: rank 1 of 2 failed: ValueError: fragile layer broke on rank 1"
        )
    # a metric that makes its state at its first update, and a rank without samples then:
    # the same clear error on both ranks before either updates, no crash
    assert (
        str(r0["lazy_metric"])
        == str(r1["lazy_metric"])
        == (
            "ValueError: DataParallel: the metric(s) ['f1_score'] create their state at their "
            "first update, and 1 rank(s) have no samples in this batch; give every rank samples "
            "in the first batch (at least 2, one per rank)."
        )
    )
    # then with samples on every rank it works, and equals one process
    x, y = jobs.data()
    lazy = ln.Sequential(
        [ln.Flatten(dtype="float64"), ln.Dense(3, activation="softmax", seed=0, dtype="float64")]
    )
    lazy.compile("sgd", "categorical_crossentropy", [ln.metrics.F1Score(average="macro")])
    assert str(r0["made_on_one_rank"]) == str(r1["made_on_one_rank"])
    assert str(r0["made_on_one_rank"]).startswith(
        "DataParallelError: evaluate: ranks disagree on `metrics state`"
    )
    one = lazy.evaluate(x[:4], np.eye(3)[y[:4]], verbose=0, return_dict=True)
    for r in (r0, r1):
        np.testing.assert_allclose(
            r["lazy_metric_then"], [one["loss"], one["f1_score"]], atol=1e-12
        )


# ------------------------------------------ several inputs and outputs; sources
@pytest.fixture(scope="module")
def inputs_job(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("dp_inputs")
    result, _ = run_job("inputs", outdir)
    assert result.returncode == 0, result.stdout + result.stderr
    return results(outdir)


def assert_equals_one_process(ranks, prefix: str, one: dict) -> None:
    """Every rank's results under ``prefix`` equal the one-process run's ``one``."""
    for r in ranks:
        assert {k for k in r if k.startswith(prefix)} >= {prefix + k for k in one}
        for key, value in one.items():
            got = r[prefix + key]
            if np.asarray(value).dtype.kind in "US":
                assert got.tolist() == np.asarray(value).tolist(), key
            else:
                np.testing.assert_allclose(got, value, rtol=0, atol=1e-10, err_msg=key)


@needs_mpi
def test_two_inputs_two_outputs_by_name_equal_one_process(inputs_job):
    # dict x and y, sample weights, loss_weights, per-output metrics, dict validation
    # data; evaluate; predict from a list and from a dict: the same on both ranks as here
    one = jobs.multi_io()
    assert_equals_one_process(inputs_job, "multi_", one)
    keys = inputs_job[0]["multi_history_keys"].tolist()
    assert {"cls_loss", "reg_mae", "val_cls_accuracy", "val_reg_loss"} <= set(keys)
    assert str(inputs_job[0]["multi_predict_kind"]) == "list"


@needs_mpi
@pytest.mark.parametrize("case", ["generator", "finite", "dataset"])
def test_generators_and_pydatasets_equal_one_process(inputs_job, case):
    # generator: infinite, steps_per_epoch, a generator as validation_data; finite: read to
    # its end; dataset: a PyDataset reshuffled in on_epoch_end, evaluate and predict over
    # sources; every model built by its first batch
    one = {k: v for k, v in jobs.sources().items() if k.startswith(case)}
    assert_equals_one_process(inputs_job, "sources_", one)
    if case == "generator":
        assert "val_loss" in inputs_job[0]["sources_generator_keys"].tolist()
    if case == "dataset":
        assert int(inputs_job[1]["sources_dataset_epochs_ended"]) == 3


@needs_mpi
def test_sources_that_differ_between_ranks_raise_on_every_rank(tmp_path):
    # rank-dependent batch shapes, a generator one batch shorter on rank 1, PyDatasets of
    # different lengths, dicts of different data: every rank raises the same error, and
    # the job ends (run_job's timeout fails the test if it hangs); a generator that raises
    # on rank 1 alone: its error on rank 1, DataParallelError naming it on rank 0
    result, seconds = run_job("source_errors", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert seconds < TIMEOUT
    r0, r1 = results(tmp_path)
    assert int(r0["after"]) == int(r1["after"]) == 2
    for name in ("shapes", "shorter", "evaluate_shorter", "predict_shapes", "lengths", "dicts"):
        assert str(r0[name]) == str(r1[name]), name
    rule = "Every rank's source must yield the same batches in the same order."
    batch = "x: (8, 8, 1) float64, y: (8,) int64"
    assert str(r0["shapes"]) == (
        "DataParallelError: fit: the ranks' sources gave different batches at batch 2 of "
        f"epoch 0: rank 0 has ({batch}); rank 1 has (x: (9, 8, 1) float64, y: (9,) int64). " + rule
    )
    ended = "rank 1 has none (its source ended after 3 batches)"
    assert str(r0["shorter"]) == (
        "DataParallelError: fit: the ranks' sources gave different batches at batch 3 of "
        f"epoch 0: rank 0 has ({batch}); {ended}. " + rule
    )
    assert str(r0["evaluate_shorter"]) == (
        "DataParallelError: evaluate: the ranks' sources gave different batches at batch 3: "
        f"rank 0 has ({batch}); {ended}. " + rule
    )
    assert str(r0["predict_shapes"]) == (
        "DataParallelError: predict: the ranks' sources gave different batches at batch 2: "
        "rank 0 has (x: (8, 8, 1) float64); rank 1 has (x: (9, 8, 1) float64). " + rule
    )
    assert str(r0["lengths"]) == (
        "DataParallelError: fit: ranks disagree on `steps`: rank 0 has 6, rank 1 has 5."
    )
    # a source that raises on one rank: its exception there, DataParallelError on the others
    assert str(r1["breaks"]) == "ValueError: rank 1's data broke"
    assert str(r0["breaks"]) == (
        "DataParallelError: rank 1 of 2 failed: ValueError: rank 1's data broke"
    )
    assert str(r0["dicts"]).startswith(
        "DataParallelError: fit: ranks disagree on `x['b'] checksum`: rank 0 has 'sha256:"
    )


@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    ranks=st.integers(1, 5),
    weighted=st.booleans(),
)
def test_the_ranks_shares_of_each_yielded_batch_make_the_batch(sizes, ranks, weighted):
    from layernet.training.data_adapters import SourceEpochs, batch_source

    n = sum(sizes)
    x = np.arange(n * 2.0).reshape(n, 2)
    w = np.linspace(0, 1, n) if weighted else None
    cuts = np.cumsum([0, *sizes])

    def source():
        for a, b in itertools.pairwise(cuts):
            yield (x[a:b], x[a:b, 0], w[a:b]) if weighted else (x[a:b], x[a:b, 0])

    def agree(owner, index, where, spec, error):
        assert owner == "fit" and where == " of epoch 0" and error is None
        return spec is not None

    passes = []
    for r in range(ranks):
        data = SourceEpochs(
            batch_source(source()),
            None,
            lambda b: b if len(b) == 3 else (*b, None),
            agree=agree,
            shard=functools.partial(distributed._shard, rank=r, size=ranks),
        )
        passes.append(list(data.shares(" of epoch 0")))
    assert all(len(p) == len(sizes) for p in passes)
    for step, (a, b) in enumerate(itertools.pairwise(cuts)):
        rows = [p[step][1] for p in passes]  # each rank's rows among all the samples
        assert rows[0].start == a and rows[-1].stop == b
        assert all(u.stop == v.start for u, v in itertools.pairwise(rows))
        lengths = [r.stop - r.start for r in rows]
        assert max(lengths) - min(lengths) <= 1
        for p in passes:
            got_step, got, (xs, ys, ws) = p[step]
            assert got_step == step
            assert np.array_equal(xs, x[got]) and np.array_equal(ys, x[got, 0])
            assert ws is None if w is None else np.array_equal(ws, w[got])


def test_one_process_source_epochs_yield_the_batches_as_they_are():
    from layernet.training.data_adapters import SourceEpochs, batch_source

    x = np.arange(10.0)
    data = SourceEpochs(batch_source(iter([(x[:4], x[:4]), (x[4:], x[4:])])), None, tuple)
    assert [(s, b[0].tolist()) for s, b in data.batches(0)] == [
        (0, [0.0, 1.0, 2.0, 3.0]),
        (1, x[4:].tolist()),
    ]


def test_batch_disagreements_name_the_batch_and_group_ranks():
    views = [("x: (4,) float64", None)] * 3 + [(None, None), (None, "ValueError: bad")]
    message = distributed._batches_differ("evaluate", 5, "", views)
    assert message.startswith("evaluate: the ranks' sources gave different batches at batch 5: ")
    assert "ranks 0, 1, 2 have (x: (4,) float64)" in message
    assert "rank 3 has none (its source ended after 5 batches)" in message
    assert "rank 4 failed reading it (ValueError: bad)" in message


def test_the_handshake_describes_several_arrays_and_sources_by_name():
    from layernet._agreement import fit_entries

    x = {"b": np.zeros((6, 2)), "a": np.ones((6, 3))}
    e = fit_entries(x, [np.zeros(6), None], epochs=1, batch_size=4, shuffle=True, seed=0)
    assert e["x"] == ["a", "b"] and e["steps"] == 2
    assert e["x['a'] shape"] == [3] and e["x['b'] samples"] == 6
    assert e["y"] == "2 arrays" and e["y[0] samples"] == 6 and e["y[1]"] is None
    g = fit_entries((i for i in []), None, epochs=1, batch_size=None, shuffle=None, seed=0, steps=7)
    assert g["x"] == "<generator>" and g["steps"] == 7


# ------------------------------------------------------------------ one process
@needs_mpi
def test_one_rank_is_plain_fit():
    dp = ln.DataParallel()
    assert (dp.rank, dp.size, dp.is_root, dp.blas_threads) == (0, 1, True, None)
    x, y = jobs.data()
    runs = []
    for strategy in (None, dp):
        net = jobs.model()
        h = net.fit(x, y, epochs=2, batch_size=7, verbose=0, seed=4, distribute=strategy)
        ev = net.evaluate(x, y, distribute=strategy)
        runs.append((jobs.flat(net.get_weights()), h.history, ev, net.predict(x)))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and runs[0][2] == runs[1][2]
    assert np.array_equal(runs[0][3], runs[1][3])
    assert repr(dp).startswith("DataParallel(rank=0, size=1")


@needs_mpi
def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="DataParallel: invalid value for `comm`"):
        ln.DataParallel(comm="world")
    with pytest.raises(ValueError, match=r"invalid value for `blas_threads`.*received 0"):
        ln.DataParallel(blas_threads=0)


def test_distribute_must_be_a_strategy():
    x, y = jobs.data()
    net = jobs.model()
    with pytest.raises(TypeError, match="fit: invalid value for `distribute`"):
        net.fit(x, y, verbose=0, distribute="mpi")
    with pytest.raises(TypeError, match="predict: invalid value for `distribute`"):
        net.predict(x, distribute=4)


def test_missing_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[mpi\]'"):
        ln.DataParallel()


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 20),
    size=st.integers(1, 5),
    shuffled=st.booleans(),
)
def test_the_ranks_shares_of_each_step_make_its_global_batch(n, batch_size, size, shuffled):
    from layernet.training.data_adapters import array_batches

    order = np.random.default_rng(n).permutation(n) if shuffled else np.arange(n)
    whole = list(array_batches(order, batch_size))
    assert np.array_equal(np.concatenate([idx for _, idx in whole]), order)
    shards = [functools.partial(distributed._shard, rank=r, size=size) for r in range(size)]
    per_rank = [list(array_batches(order if shuffled else n, batch_size, s)) for s in shards]
    assert all(len(steps) == len(whole) for steps in per_rank)
    for step, global_batch in whole:
        parts = []
        for steps in per_rank:
            got_step, idx = steps[step]
            assert got_step == step
            parts.append(idx if shuffled else np.arange(n)[idx])  # (slices when in order)
        assert np.array_equal(np.concatenate(parts), global_batch)


def test_the_strategy_reads_no_private_member_of_the_model():
    source = (ROOT / "src" / "layernet" / "distributed.py").read_text()
    assert not re.findall(r"\b(?:model|opt|optimizer|layer|m)\._[a-z]", source)
    assert "_require_compiled" not in source and "_compute_gradients" not in source


def test_training_modules_import_without_cycles():
    # none of these imports, at module level, a module that imports it back (directly
    # or through other layernet modules)
    src = ROOT / "src" / "layernet"
    every = {p.stem for p in src.glob("*.py")} | {p.name for p in src.iterdir() if p.is_dir()}
    graph = {name: module_imports(name) for name in every - {"__init__", "__pycache__"}}
    for a in ["models", "callbacks", "distributed", "saving", "training", "_agreement"]:
        assert a not in reachable(graph, a), a


def module_imports(name: str) -> set[str]:
    """The layernet modules (first component) a module or package imports at module level."""
    base = ROOT / "src" / "layernet" / name
    files = sorted(base.glob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    found: set[str] = set()
    for f in files:
        tree = ast.parse(f.read_text())
        for node in tree.body:  # module level only (not inside functions)
            if isinstance(node, ast.ImportFrom) and node.level:
                depth = node.level - (1 if base.is_dir() else 0)
                if depth == 1 and node.module:
                    found.add(node.module.split(".")[0])
                elif depth == 1:
                    found.update(a.name for a in node.names)
    return found - {name}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@given(n=st.integers(0, 300), size=st.integers(1, 17))
def test_shares_are_contiguous_and_even(n, size):
    shares = [distributed._shard(n, r, size) for r in range(size)]
    assert shares[0].start == 0 and shares[-1].stop == n
    assert all(a.stop == b.start for a, b in itertools.pairwise(shares))
    lengths = [s.stop - s.start for s in shares]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


@pytest.mark.skipif(distributed.get_blas_threads() is None, reason="needs NumPy's OpenBLAS")
def test_blas_threads_can_be_set_at_run_time():
    before = distributed.get_blas_threads()
    try:
        assert distributed.set_blas_threads(1)
        assert distributed.get_blas_threads() == 1
    finally:
        distributed.set_blas_threads(before)


# --------------------------------------------------------------- resumable runs
def float32_model(optimizer):
    net = ln.Sequential(
        [ln.Conv1D(4, 3, padding="same"), ln.ReLU(), ln.Flatten(), ln.Dense(3)], name="m"
    )
    net.compile(optimizer, "softmax_cross_entropy", ["accuracy"])
    return net


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: ln.SGD(0.05, momentum=0.9, nesterov=True),
        lambda: ln.Adam(ln.StepDecay(0.01, step_size=7, gamma=0.5)),
    ],
    ids=["sgd", "adam"],
)
def test_two_epochs_save_load_two_more_equals_four_bit_for_bit(tmp_path, make_optimizer):
    x, y = jobs.data(64)
    x = x.astype(np.float32)
    straight = float32_model(make_optimizer())
    hs = straight.fit(x, y, epochs=4, batch_size=10, seed=9, verbose=0)

    first = float32_model(make_optimizer())
    ckpt = ln.ModelCheckpoint(tmp_path / "ckpt-{epoch}.npz", monitor="loss")
    first.fit(x, y, epochs=2, batch_size=10, seed=9, verbose=0, callbacks=[ckpt])
    resumed = ln.load_model(tmp_path / "ckpt-2.npz")
    assert resumed.epochs_completed == 2
    assert resumed.optimizer.iterations == first.optimizer.iterations == 14
    hr = resumed.fit(x, y, epochs=4, batch_size=10, seed=9, verbose=0, initial_epoch=2)

    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        assert np.array_equal(a, b)
    assert hr.epoch == [2, 3]
    assert hr.history["loss"] == hs.history["loss"][2:]
    assert resumed.epochs_completed == 4


def test_model_files_hold_the_optimizer_state(tmp_path):
    x, y = jobs.data()
    net = float32_model(ln.Adam(0.01))
    net.fit(x.astype(np.float32), y, epochs=1, batch_size=10, verbose=0, seed=0)
    net.save(tmp_path / "m.npz")
    back = ln.load_model(tmp_path / "m.npz")
    assert back.optimizer.iterations == net.optimizer.iterations == 5
    assert back.optimizer.state.keys() == net.optimizer.state.keys()
    for key, slots in net.optimizer.state.items():
        assert slots.keys() == {"m", "v"}
        for name, value in slots.items():
            assert np.array_equal(back.optimizer.state[key][name], value)
            assert back.optimizer.state[key][name].dtype == value.dtype
    # weights-only files and load_weights ignore the optimizer
    other = float32_model(ln.Adam(0.01))
    other.build((None, 8, 1))
    other.load_weights(tmp_path / "m.npz")
    assert other.optimizer.iterations == 0


def rewrite(path: Path, edit) -> None:
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    edit(header, arrays)
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, header=raw, **arrays)


def test_files_without_optimizer_state_still_load(tmp_path):
    x, y = jobs.data()
    net = float32_model(ln.SGD(0.05, momentum=0.9))
    net.fit(x.astype(np.float32), y, epochs=1, batch_size=10, verbose=0, seed=0)
    path = tmp_path / "old.npz"
    net.save(path)

    def as_before(header, arrays):
        del header["optimizer_state"], header["epochs_completed"]
        for k in [k for k in arrays if k.startswith("optimizer.")]:
            del arrays[k], header["weights"][k]

    rewrite(path, as_before)
    old = ln.load_model(path)
    assert old.optimizer.iterations == 0 and old.optimizer.state == {}
    assert old.epochs_completed == 0
    assert all(np.array_equal(a, b) for a, b in zip(old.get_weights(), net.get_weights()))


def test_tampered_optimizer_state_is_refused(tmp_path):
    x, y = jobs.data()
    net = float32_model(ln.SGD(0.05, momentum=0.9))
    net.fit(x.astype(np.float32), y, epochs=1, batch_size=10, verbose=0, seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    rewrite(path, lambda h, a: h["optimizer_state"]["slots"][0].update(param="0.nowhere.kernel"))
    with pytest.raises(
        ln.ModelFileError, match=r"slot 'velocity' of parameter '0\.nowhere\.kernel'\): the model"
    ):
        ln.load_model(path)
    net.save(path)
    rewrite(path, lambda h, a: a["optimizer.0"].fill(np.nan))
    with pytest.raises(ln.ModelFileError, match=r"optimizer state: .*slot 'velocity'.* holds NaN"):
        ln.load_model(path)
    net.save(path)
    rewrite(path, lambda h, a: h["optimizer_state"].update(iterations=-1))
    with pytest.raises(ln.ModelFileError, match="optimizer state: malformed step count"):
        ln.load_model(path)


def test_initial_epoch_is_checked_and_counts_epochs():
    x, y = jobs.data()
    net = float32_model("sgd")
    with pytest.raises(ValueError, match=r"`initial_epoch`: expected an int >= 0, received -1"):
        net.fit(x, y, initial_epoch=-1, verbose=0)
    with pytest.raises(ValueError, match="initial_epoch"):  # would train nothing: refused
        net.fit(x.astype(np.float32), y, epochs=3, initial_epoch=3, verbose=0)
    assert net.optimizer.iterations == 0
    h = net.fit(x.astype(np.float32), y, epochs=3, initial_epoch=1, verbose=0)
    assert h.epoch == [1, 2] and net.epochs_completed == 3


def test_shuffling_depends_only_on_seed_and_epoch():
    x, y = jobs.data()
    x = x.astype(np.float32)
    a = float32_model(ln.SGD(0.05))
    a.fit(x, y, epochs=2, batch_size=10, seed=1, verbose=0)
    b = float32_model(ln.SGD(0.05))
    b.fit(x, y, epochs=1, batch_size=10, seed=1, verbose=0)
    b.fit(x, y, epochs=2, initial_epoch=1, batch_size=10, seed=1, verbose=0)  # epoch 1 alone
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
