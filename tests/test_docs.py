"""The documentation builds offline, nitpicky, with warnings as errors, executing every notebook."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html import unescape
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
            "-n",
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


def _text(html: str) -> str:
    """The page's text without tags (highlighted code is split into many spans)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


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


def test_header_links_guide_api_notebooks_and_shows_the_version(built):
    import layernet as ln

    index = (built / "index.html").read_text()
    for page in ("guide.html", "api.html", "notebooks.html"):
        assert f'class="nav-link nav-internal" href="{page}"' in index, page
    assert f"v{ln.__version__}" in index
    text = _text(index)
    assert "pip install -e ." in text and "python3 run.py demo" in text
    assert "ln.Sequential" in text and "conv.jacobian_input(x)" in text
    assert (built / "_images" / "conv_jacobians.png").exists()


def test_no_empty_section_navigation(built):
    for page in ["index.html", "changelog.html", *(p.name for p in built.glob("*.html"))]:
        html = (built / page).read_text()
        if "Section Navigation" in html:
            nav = html.split("Section Navigation", 1)[1].split("</nav>", 1)[0]
            assert "<li" in nav, f"{page}: empty Section Navigation"


def test_api_pages_link_source_offer_copy_buttons_and_hide_private_bases(built):
    generated = built / "generated"
    import layernet as ln

    for page in generated.glob("layernet.*.html"):
        html = page.read_text()
        name = page.stem.removeprefix("layernet.losses.")
        made = getattr(ln.losses.__dict__.get(name), "loss_class", None) is not None
        if not made:  # (a loss's function form is made from its class, which links its source)
            assert "_modules/layernet" in html, f"{page.name}: no source link"
        assert "copybutton" in html
        assert "_Pool" not in html and "_Elementwise" not in html, page.name
    layer = (generated / "layernet.Layer.html").read_text()  # forward(x : ndarray), ...
    assert "numpy.org/doc/stable/reference/generated/numpy.ndarray.html" in layer


def test_offline_inventories_are_shipped():
    for name in ("python.inv", "numpy.inv", "torch.inv"):
        data = (ROOT / "docs" / "_inv" / name).read_bytes()
        assert data.startswith(b"# Sphinx inventory version 2")


def test_layer_pages_link_their_derivation_and_notebooks(built):
    generated = built / "generated"
    conv = (generated / "layernet.Conv.html").read_text()
    assert "derivatives.html#derivatives-conv" in conv
    assert "notebooks/02_convolution_feature_detector.html" in conv
    for name in ("MaxPool2D", "AvgPool1D", "Sigmoid", "Tanh", "Dropout", "BatchNorm", "Dense"):
        page = (generated / f"layernet.{name}.html").read_text()
        assert "derivatives.html#derivatives-" in page, name


def test_getting_started_shows_a_built_summary(built):
    text = _text((built / "getting_started.html").read_text())
    assert "Total params: 5,210" in text and "(None, 19, 25)" in text
    assert "?" not in text.split("Total params")[0].rsplit("Model:", 1)[-1]


def test_custom_layers_guide_and_notebook_are_built(built):
    guide = (built / "custom_layers.html").read_text()
    for needed in ("compute_forward", "compute_backward_input", "custom_objects", "declares"):
        assert needed in guide, needed
    page = (built / "notebooks" / "05_custom_layers.html").read_text()
    assert page.count("passed") >= 3  # gradcheck of both layers and of the chain
    assert "test accuracy: 0." in page
    assert "identical predictions after reload: True" in page


def _own_docstring(html: str) -> str:
    """The part of an API page above the first member (method, property, attribute)."""
    main = html.split('<dl class="py', 1)[-1]
    return re.split(r'<dl class="py (?:method|property|attribute)', main)[0]


def test_every_layer_page_states_shapes_parameters_errors_and_an_example(built):
    import layernet as ln

    for name in ln.__all__:
        obj = getattr(ln, name)
        if not (isinstance(obj, type) and issubclass(obj, ln.Layer)) or obj is ln.Layer:
            continue
        own = _own_docstring((built / "generated" / f"layernet.{name}.html").read_text())
        for section in ("Input and output shape", "Parameters", "Raises", "Examples"):
            assert section in own, f"{name}: no {section}"


def test_every_public_page_has_an_example(built):
    import layernet as ln

    for name in ln.__all__:
        obj = getattr(ln, name)
        if isinstance(obj, type) or callable(obj):
            own = _own_docstring((built / "generated" / f"layernet.{name}.html").read_text())
            assert "Examples" in own, name


def test_pooling_pages_give_the_output_size_and_the_dropped_remainder(built):
    page = _text((built / "generated" / "layernet.MaxPool.html").read_text())
    assert "7 inputs in windows of 2 give" in page
    conv = _text((built / "generated" / "layernet.Conv.html").read_text())
    assert "Input and output shape" in conv and "d(k-1)" in conv


def _page_toc(html: str) -> str:
    """The text of a page's "On this page" list."""
    nav = html.split('id="pst-page-toc-nav"', 1)[1].split("</nav>", 1)[0]
    return _text(nav)


def test_pure_aliases_live_on_their_class_page_not_in_the_sidebar(built):
    api = (built / "api.html").read_text()
    sidebar = (built / "generated" / "layernet.Conv.html").read_text()
    sidebar = sidebar.split("bd-docs-nav", 1)[1].split("</nav>", 1)[0]
    for alias, parent in (("MaxPooling1D", "MaxPool1D"), ("BatchNormalization", "BatchNorm")):
        assert f"layernet.{alias}.html" not in sidebar, alias
        assert f"layernet.{parent}.html" in sidebar, parent
        assert f"layernet.{alias}.html" in api  # the table of Keras's names links it
        page = _text((built / "generated" / f"layernet.{parent}.html").read_text())
        assert f"Also named:\n{alias} (Keras" in page, parent
        own = _text((built / "generated" / f"layernet.{alias}.html").read_text())
        assert re.search(rf"{alias} is Keras.s name for {parent}", own)


def test_layer_pages_list_the_public_api_only_and_link_what_they_inherit(built):
    hidden = ("fresh_output", "passes_views", "in_place", "overwrite_inputs", "workspace")
    for name in ("Conv2D", "Dense", "BatchNorm", "MaxPool2D", "ReLU", "GRU"):
        html = (built / "generated" / f"layernet.{name}.html").read_text()
        toc = _page_toc(html)
        for internal in (*hidden, "renamed_weights", "renamed_arguments", "declares"):
            assert internal not in toc, (name, internal)
        assert "Inherited from Layer" in _text(html), name
        assert "layernet.Layer.html#layernet.Layer.get_weights" in html, name
    layer = _page_toc((built / "generated" / "layernet.Layer.html").read_text())
    assert all(h in layer for h in hidden)  # the contract page keeps them


def test_a_method_is_documented_once_where_it_is_defined(built):
    """Searching ``jacobian_params`` finds Layer's page and the layers that define their own."""
    import layernet as ln

    def defines(cls: type) -> bool:
        for klass in cls.__mro__:
            if klass is not cls and not klass.__name__.startswith("_"):
                return False  # reached the public ancestor whose page documents it
            if "jacobian_params" in vars(klass):
                return True
        return False

    expected, found = set(), set()
    for page in (built / "generated").glob("layernet.*.html"):
        name = page.name.removeprefix("layernet.").removesuffix(".html")
        if f'id="layernet.{name}.jacobian_params"' in page.read_text():
            found.add(name)
        obj = getattr(ln, name, None)
        if isinstance(obj, type) and issubclass(obj, ln.Layer | ln.Loss) and defines(obj):
            expected.add(name)
    assert "Layer" in found and found == expected
    assert len(found) < 10


def test_notebooks_page_says_how_to_open_them_and_offers_ipynb_files(built):
    page = (built / "notebooks.html").read_text()
    text = _text(page)
    assert "Open the notebooks" in text and "python3 run.py notebooks" in text
    links = re.findall(r'href="(_downloads/[^"]+\.ipynb)"', page)
    names = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(link.rsplit("/", 1)[1] for link in links) == names
    assert all((built / link).is_file() for link in links)
    source = (built / "notebooks" / "03_mnist1d.html").read_text()
    assert "_sources/notebooks/03_mnist1d.ipynb" in source and ".ipynb.txt" not in source


def test_executed_notebooks_keep_one_line_per_epoch(built):
    text = _text((built / "notebooks" / "05_custom_layers.html").read_text())
    lines = re.findall(r"^Epoch (\d)/8 - [\d.]+s - accuracy: \S+ - loss: \S+$", text, re.M)
    assert lines == [str(e) for e in range(1, 9)], text[:3000]
    assert "batch/s" not in text  # no progress widget saved as its first frame
