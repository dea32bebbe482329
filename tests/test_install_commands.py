"""Every install command the project prints or documents installs this project.

``layernet`` on PyPI is an unrelated package, so ``pip install layernet`` (with or
without extras) installs somebody else's code. The project installs from a clone
(``pip install -e '.[extras]'``) under the distribution name set in
``pyproject.toml``; these tests scan the README, the docs, the examples, the
notebooks, the package and ``run.py`` for commands that name a bare ``layernet``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: ``pip install`` (also ``python -m pip install``, ``uv pip install``); its arguments are the
#: words after it on the same line, up to the first that is not one (prose, a comment).
PIP_INSTALL = re.compile(r"pip3?\s+install\s+")
#: A requirement that names the PyPI project ``layernet`` (with extras, a version or none).
BARE_LAYERNET = re.compile(r"""^["']?layernet(\[[^\]]*\])?([<>=!~]=?[^\s"']*)?["']?$""")

#: Files whose text is checked (the built docs and their notebook copies are not sources).
SCANNED = [
    ROOT / "README.md",
    ROOT / "run.py",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "docs").glob("*.rst")),
    ROOT / "docs" / "conf.py",
    *sorted((ROOT / "examples").glob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
    *sorted((ROOT / "src" / "layernet").rglob("*.py")),
]

#: Files whose install hints are known to be wrong (none).
PENDING: dict[str, str] = {}


def bare_layernet_installs(text: str) -> list[str]:
    """The ``pip install`` commands in ``text`` that install ``layernet`` from an index."""
    found = []
    text = text.replace("\\n", "\n").replace('\\"', '"')
    for match in PIP_INSTALL.finditer(text):
        line = text[match.end() :].split("\n", 1)[0]
        for word in line.split():
            if word.startswith("#"):
                break  # a comment follows
            if BARE_LAYERNET.match(word.strip("`").rstrip('`).,;:"')):
                found.append(f"pip install {line.strip()}")
                break
            if "(" in word or ")" in word or word.endswith(","):
                break  # the command ended: prose follows
    return found


@pytest.mark.parametrize(
    "text, bad",
    [
        ("pip install 'layernet[mpi]'", True),
        ('pip install "layernet[data]"', True),
        ("pip install layernet", True),
        ("python -m pip install -U layernet==0.1", True),
        ("f\"(or pip install 'layernet[data]').\"", True),
        ("(``pip install 'layernet[mpi]'``).", True),
        ("`pip install layernet`.", True),
        ("pip install -e '.[mpi]'", False),
        ('pip install -e ".[data]"', False),
        ("pip install -e .", False),
        ("pip install mnist1d (or, from a clone of layernet, pip install -e '.[data]')", False),
        ("pip install layernet-numpy", False),
        ("pip install --no-binary mpi4py mpi4py", False),
    ],
)
def test_the_scanner_tells_bare_installs_apart(text, bad):
    assert bool(bare_layernet_installs(text)) is bad


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p,
            id=p.relative_to(ROOT).as_posix(),
            marks=(
                [pytest.mark.xfail(reason=PENDING[p.relative_to(ROOT).as_posix()], strict=True)]
                if p.relative_to(ROOT).as_posix() in PENDING
                else []
            ),
        )
        for p in SCANNED
    ],
)
def test_no_install_command_names_pypi_layernet(path):
    bad = bare_layernet_installs(path.read_text(encoding="utf-8"))
    assert not bad, (
        f"{path.relative_to(ROOT)} tells users to install the unrelated PyPI package "
        f"'layernet': {bad}; write pip install -e '.[extra]' (from a clone) instead."
    )


def test_distribution_name_is_not_layernet_and_the_readme_says_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = project["name"]
    assert name != "layernet"
    assert f"`{name}`" in (ROOT / "README.md").read_text(encoding="utf-8")
    extras = project["optional-dependencies"]
    assert {"jupyterlab>=4", "ipykernel>=6.29", "nbconvert>=7"} <= set(extras["notebooks"])
    assert any(r.startswith("matplotlib") for r in extras["notebooks"])


def test_run_py_installs_this_project_with_its_extras():
    text = (ROOT / "run.py").read_text(encoding="utf-8")
    assert '"-e",\n                f".[{extras}]",' in text
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]
    assert wheel["build"]["targets"]["wheel"]["packages"] == ["src/layernet"]


@pytest.mark.parametrize("argv", [["--help"], ["-h"], [], ["help"]])
def test_run_py_help_lists_the_tasks_and_exits_0(argv):
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *argv], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    for task in ("demo", "table", "test", "notebooks"):
        assert re.search(rf"^  {task}\s", out.stdout, re.M), out.stdout


def test_run_py_unknown_task_exits_2_with_the_list():
    out = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "tset"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "unknown task 'tset'" in out.stderr
    assert "demo, table, test, notebooks" in out.stderr
