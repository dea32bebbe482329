#!/usr/bin/env python3
"""Project tasks, with nothing but Python 3.11+ installed.

usage: python3 run.py TASK [ARGS...]

tasks:
  demo        train the MNIST-1D CNN with layernet's recipe (SGD, momentum 0.9, learning
              rate 0.05, 150 shuffled epochs) and print its test accuracy; `demo --recipe
              paper` uses the MNIST-1D paper's (Adam 1e-2, batch 100, unshuffled batches in
              order). About a minute the first time on a 2-core machine (installing
              about 500 MB into .venv), seconds after that.
  table       reproduce the MNIST-1D paper's benchmark table (four models, two variants,
              three seeds, the paper's recipe; several minutes)
  test        lint, then the whole test suite (with the notebooks and the docs); about
              14 minutes on a busy 2-core machine and about 1.8 GB of disk for `.venv`
              (PyTorch as test oracle, Sphinx, MPI); arguments go to pytest
  notebooks   install JupyterLab and open the notebooks folder in it; arguments go to
              JupyterLab (e.g. `--no-browser`)

Each task creates the virtual environment ``.venv`` when it is missing and
installs this project (``pip install -e '.[extras]'``) with what the task needs
into it (again whenever ``pyproject.toml`` changes). `python3 run.py --help`
prints this text.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
EXTRAS = {
    "demo": "data,plot",
    "table": "data,plot",
    "test": "dev,oracle,data,plot,docs,mpi,images,tensorboard,gallery",
    "notebooks": "data,plot,notebooks",
}


def venv_python() -> Path:
    scripts = "Scripts" if os.name == "nt" else "bin"
    return VENV / scripts / ("python.exe" if os.name == "nt" else "python")


def ensure_env(extras: str) -> Path:
    """Create ``.venv`` if needed and install the project with ``extras`` into it."""
    py = venv_python()
    if not py.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=VENV.exists()).create(VENV)
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".installed-{extras.replace(',', '-')}"
    if not stamp.exists() or stamp.read_text() != key:
        print(f"installing this project with pip install -e '.[{extras}]' into {VENV}", flush=True)
        subprocess.run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-q",
                "-e",
                f".[{extras}]",
            ],
            cwd=ROOT,
            check=True,
        )
        stamp.write_text(key)
    return py


def run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    task = argv[0] if argv else "--help"
    if task in ("-h", "--help", "help"):
        print(__doc__)
        return
    if task not in EXTRAS:
        print(
            f"run.py: unknown task {task!r}; the tasks are: {', '.join(EXTRAS)}.", file=sys.stderr
        )
        print("Run `python3 run.py --help` for what each does.", file=sys.stderr)
        sys.exit(2)
    py = str(ensure_env(EXTRAS[task]))
    if task == "demo":
        run(py, "examples/train_mnist1d.py", *argv[1:])
    elif task == "table":
        run(py, "examples/mnist1d_table.py", *argv[1:])
    elif task == "notebooks":
        run(py, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'notebooks'}", *argv[1:])
    else:
        run(py, "-m", "ruff", "check", "src", "tests", "examples", "benchmarks", "tools", "run.py")
        run(
            py,
            "-m",
            "ruff",
            "format",
            "--check",
            "src",
            "tests",
            "examples",
            "benchmarks",
            "tools",
            "run.py",
        )
        run(py, "-m", "pytest", *argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
