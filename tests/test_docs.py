"""The documentation builds offline with warnings as errors, executing every notebook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    pytest.importorskip("sphinx", reason="needs the 'docs' extra")
    out = tmp_path_factory.mktemp("html")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # keep inline figures
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-q",
            str(ROOT / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    problems = "\n".join(
        line
        for line in result.stderr.splitlines()
        if "WARNING" in line or "ERROR" in line or "Error" in line
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{problems or result.stderr[-3000:]}"
    return out


def test_every_public_name_has_a_page(built):
    import layernet as ln

    generated = built / "generated"
    for name in ln.__all__:
        obj = getattr(ln, name)
        if isinstance(obj, type) or callable(obj):
            assert (generated / f"layernet.{name}.html").exists(), name


def test_layer_pages_show_formulas_and_math_renders_offline(built):
    page = (built / "generated" / "layernet.Conv.html").read_text()
    assert "Jacobian structure" in page and "Derivatives" in page
    assert 'src="../_static/mathjax/tex-chtml.js"' in page  # bundled, no CDN
    assert (built / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert "cdn.jsdelivr" not in page


def test_notebooks_were_executed_into_the_docs(built):
    mnist = (built / "notebooks" / "03_mnist1d.html").read_text()
    assert "test accuracy: 0.9" in mnist and mnist.count("_images/") >= 4  # curves, matrix...
    backprop = (built / "notebooks" / "01_backprop_by_hand.html").read_text()
    assert "passed" in backprop and "_images/" in backprop
    assert len(list((built / "_images").glob("*.png"))) >= 8
    digits = (built / "notebooks" / "04_lenet_digits.html").read_text()
    assert "identical predictions after reload: True" in digits


def test_custom_layers_guide_and_notebook_are_built(built):
    guide = (built / "custom_layers.html").read_text()
    for needed in ("compute_forward", "compute_backward_input", "custom_objects", "declares"):
        assert needed in guide, needed
    page = (built / "notebooks" / "05_custom_layers.html").read_text()
    assert page.count("passed") >= 3  # gradcheck of both layers and of the chain
    assert "test accuracy: 0." in page
    assert "identical predictions after reload: True" in page
