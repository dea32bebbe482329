"""Pictures: History.plot, plot_model / plot_graph, the notebook summary, confusion matrices."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import layernet as ln
from layernet import visualization as V

pytest.importorskip("matplotlib")


def _trained():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    y = np.eye(3)[rng.integers(0, 3, 40)]
    model = ln.Sequential([ln.Dense(8, seed=0), ln.ReLU(), ln.Dense(3, seed=1), ln.Softmax()])
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    return model, history


def test_history_plot_draws_every_curve():
    _, history = _trained()
    fig = history.plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy"]
    for ax, name in zip(fig.axes, titles, strict=True):
        lines = {line.get_label(): line for line in ax.lines}
        assert set(lines) == {"train", "validation"}
        np.testing.assert_allclose(lines["train"].get_ydata(), history.history[name])
        np.testing.assert_allclose(lines["validation"].get_ydata(), history.history[f"val_{name}"])
        np.testing.assert_array_equal(lines["train"].get_xdata(), [1, 2, 3])
    assert [ax.get_title() for ax in history.plot(["loss"]).axes] == ["loss"]
    with pytest.raises(ValueError, match="not in the history"):
        history.plot(["auc"])


def test_plots_name_the_extra_without_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install -e '\.\[plot\]'"):
        V.plot_history({"loss": [1.0]})
    with pytest.raises(ImportError, match=r"pip install -e '\.\[plot\]'"):
        ln.utils.plot_confusion_matrix([0, 1], [0, 1])


def test_plot_model_svg_names_every_layer_and_shape(tmp_path):
    model, _ = _trained()
    path = tmp_path / "model.svg"
    diagram = ln.utils.plot_model(model, to_file=path, show_shapes=True)
    svg = path.read_text()
    assert svg == diagram.svg == diagram._repr_svg_()
    root = ET.fromstring(svg)  # well-formed XML
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for layer in model.layers:
        assert f"{layer.name} ({type(layer).__name__})" in texts
    assert texts.count("(None, 3)") == 2 and "(None, 8)" in texts and "(None, 4)" in texts
    assert len(list(root.iter("{http://www.w3.org/2000/svg}line"))) == len(model.layers)
    plain = ln.utils.plot_model(model, show_layer_names=False)
    assert model.layers[0].name not in plain.svg and "Dense" in plain.svg


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_plot_model_writes_png_and_pdf(tmp_path, ext, magic):
    model, _ = _trained()
    path = tmp_path / f"model{ext}"
    ln.utils.plot_model(model, to_file=path, show_shapes=True, rankdir="LR", dpi=50)
    assert path.read_bytes().startswith(magic)


def test_plot_graph_lays_out_a_branching_graph():
    nodes = [
        ("x", "InputLayer", (None, 4)),
        ("a", "Dense", (None, 2)),
        ("b", "Dense", (None, 2)),
        ("sum", "Add", (None, 2)),
    ]
    d = ln.utils.plot_graph(nodes, [(0, 1), (0, 2), (1, 3), (2, 3)], show_shapes=True)
    boxes = d._layout["boxes"]
    assert boxes[1][1] == boxes[2][1] > boxes[0][1]  # a and b on one rank, below x
    assert boxes[3][1] > boxes[1][1]
    assert boxes[1][0] != boxes[2][0]
    with pytest.raises(ValueError, match="cycle"):
        ln.utils.plot_graph(nodes[:2], [(0, 1), (1, 0)])
    with pytest.raises(ValueError, match="outside"):
        ln.utils.plot_graph(nodes[:2], [(0, 5)])
    with pytest.raises(ValueError, match="invalid value for `to_file`"):
        d.save("model.gif")


def test_model_summary_html_lists_layers_and_counts():
    model, _ = _trained()
    s = ln.utils.model_summary(model)
    page = s._repr_html_()
    for layer in model.layers:
        assert f"<td>{layer.name}</td>" in page
    assert f"Total params: {model.count_params():,}" in page
    printed = []
    model.summary(print_fn=printed.append)
    assert str(s) == printed[0]
    assert [r[3] for r in s.rows] == [layer.count_params() for layer in model.layers]


def test_confusion_matrix_counts_and_picture():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 50)
    scores = rng.uniform(size=(50, 3))
    p = scores.argmax(axis=1)
    expected = np.zeros((3, 3))
    for a, b in zip(t, p, strict=True):
        expected[a, b] += 1
    np.testing.assert_array_equal(ln.utils.confusion_matrix(t, scores), expected)
    np.testing.assert_array_equal(ln.utils.confusion_matrix(np.eye(3)[t], p), expected)
    fig = ln.utils.plot_confusion_matrix(t, scores, labels=["a", "b", "c"], normalize="true")
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, expected / expected.sum(axis=1, keepdims=True))
    assert [tick.get_text() for tick in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    assert sorted(t.get_text() for t in fig.axes[0].texts) == sorted(
        f"{v:.2f}" for v in shown.ravel()
    )
    with pytest.raises(ValueError, match="invalid value for `normalize`"):
        ln.utils.plot_confusion_matrix(t, p, normalize="rows")
    with pytest.raises(ValueError, match="expected as many predictions"):
        ln.utils.confusion_matrix(t, p[:-1])
