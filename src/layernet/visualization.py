r"""Pictures: training curves, the layer graph, a notebook summary and confusion matrices.

Drawn with matplotlib (the ``plot`` extra: ``pip install -e '.[plot]'``),
except the layer graph's SVG, which is written as text and needs nothing.
:func:`~layernet.utils.plot_graph` draws any graph given as nodes and edges, so a model of any
shape can be drawn by listing its calls; :func:`~layernet.utils.plot_model` does so for a
:class:`~layernet.Sequential`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._validation import as_array, shape_str

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(owner: str, **kwargs: Any) -> Figure:
    """A matplotlib ``Figure`` not tied to any GUI, or an ImportError naming the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"{owner} needs matplotlib: pip install -e '.[plot]'.") from None
    return Figure(**kwargs)


# ============================================================================ history
def plot_history(history: Any, metrics: Sequence[str] | None = None) -> Figure:
    """Training curves of a ``fit``: one panel per loss or metric, training and validation.

    Parameters
    ----------
    history : History or dict of str to list of float
        What :meth:`~layernet.training.trainer.Trainer.fit` returned (or its ``history`` dict).
    metrics : list of str, optional
        The names to plot (default: ``"loss"`` and every metric, ``"val_*"``
        drawn with its training curve; ``"learning_rate"`` left out).

    Returns
    -------
    matplotlib.figure.Figure
        One axes per name, epochs (from 1) along x, legends ``"train"`` and
        ``"validation"``.

    Raises
    ------
    ImportError
        Without matplotlib (the ``plot`` extra).
    ValueError
        A name the history does not hold, or an empty history.

    Examples
    --------
    >>> import layernet as ln
    >>> fig = ln.visualization.plot_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]})
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['train', 'validation']
    """
    logs = history.history if hasattr(history, "history") else history
    if not isinstance(logs, dict) or not logs:
        raise ValueError(
            f"plot_history: expected a History or a dict of logs with at least one entry, "
            f"received {history!r:.200}."
        )
    epochs = list(getattr(history, "epoch", []) or [])
    names = (
        list(metrics)
        if metrics is not None
        else sorted(  # the loss first, then the metrics in the history's order
            (k for k in logs if not k.startswith("val_") and k != "learning_rate"),
            key=lambda k: k != "loss",
        )
    )
    names += (
        []
        if metrics is not None
        else [
            k[4:]
            for k in logs
            if k.startswith("val_") and k[4:] not in logs and k != "val_learning_rate"
        ]
    )
    unknown = [n for n in names if n not in logs and f"val_{n}" not in logs]
    if unknown or not names:
        raise ValueError(
            f"plot_history: invalid value for `metrics`: {unknown or names} not in the history; "
            f"available: {sorted(logs)}."
        )
    fig = _figure("History.plot", figsize=(4.2 * len(names), 3.2), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs:
                values = np.asarray(logs[key], dtype=np.float64)
                xs = (
                    np.asarray(epochs[-len(values) :]) + 1
                    if len(epochs) >= len(values)
                    else (np.arange(1, len(values) + 1))
                )
                ax.plot(xs, values, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    return fig


# ============================================================================ graphs
class GraphNode(NamedTuple):
    """One box of :func:`~layernet.utils.plot_graph`: a layer's name, class and output shape."""

    name: str
    class_name: str
    output_shape: tuple[int | None, ...] | None = None


class ModelDiagram:
    """A drawn layer graph: SVG text, shown inline in Jupyter, savable as SVG, PNG or PDF.

    Made by :func:`~layernet.utils.plot_graph` / :func:`~layernet.utils.plot_model`.

    Attributes
    ----------
    svg : str
        The SVG document.
    nodes : list of GraphNode
    edges : list of (int, int)
    """

    def __init__(
        self, svg: str, nodes: list[GraphNode], edges: list[tuple[int, int]], layout: dict[str, Any]
    ) -> None:
        self.svg = svg
        self.nodes = nodes
        self.edges = edges
        self._layout = layout

    def _repr_svg_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return f"ModelDiagram(nodes={len(self.nodes)}, edges={len(self.edges)})"

    def save(self, path: str | os.PathLike, dpi: int = 200) -> None:
        """Write the diagram: ``.svg`` as text, ``.png``/``.pdf`` through matplotlib.

        Raises
        ------
        ValueError
            Another extension.
        ImportError
            PNG or PDF without matplotlib.
        """
        path = os.fspath(path)
        ext = os.path.splitext(str(path))[1].lower()
        if ext == ".svg":
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.svg)
            return
        if ext not in (".png", ".pdf"):
            raise ValueError(
                f"plot_model: invalid value for `to_file`: expected a name ending in .svg, .png "
                f"or .pdf, received {path!r}."
            )
        self.figure().savefig(path, dpi=dpi)

    def figure(self) -> Figure:
        """The diagram drawn as a matplotlib ``Figure`` (boxes and arrows, same layout)."""
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

        lay = self._layout
        width, height = lay["width"], lay["height"]
        fig = _figure("plot_model", figsize=(width / 96, height / 96))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
        for (x, y), lines in zip(lay["boxes"], lay["labels"], strict=True):
            ax.add_patch(
                FancyBboxPatch(
                    (x, y),
                    lay["box_w"],
                    lay["box_h"],
                    boxstyle="round,pad=0,rounding_size=6",
                    facecolor="#eef3fb",
                    edgecolor="#35577d",
                )
            )
            for k, text in enumerate(lines):
                ax.text(
                    x + lay["box_w"] / 2,
                    y + 18 + 16 * k,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8 if k else 9,
                    fontweight="normal" if k else "bold",
                    family="monospace" if k else None,
                )
        for (x0, y0), (x1, y1) in lay["arrows"]:
            ax.add_patch(
                FancyArrowPatch(
                    (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10, color="#35577d"
                )
            )
        return fig


def plot_graph(
    nodes: Sequence[GraphNode | tuple[Any, ...]],
    edges: Sequence[tuple[int, int]],
    to_file: str | os.PathLike | None = None,
    show_shapes: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    dpi: int = 200,
) -> ModelDiagram:
    """Draw a graph of layers as boxes and arrows (no Graphviz needed).

    Parameters
    ----------
    nodes : list of GraphNode or tuple
        ``(name, class_name, output_shape)`` per layer (shape may be None).
    edges : list of (int, int)
        ``(from, to)`` indices into ``nodes``; the graph must have no cycle.
    to_file : str or os.PathLike, optional
        Also write the picture: ``.svg``, ``.png`` or ``.pdf``.
    show_shapes : bool, default False
        Write each layer's output shape in its box.
    show_layer_names : bool, default True
        Write each layer's name (its class name always shows).
    rankdir : {"TB", "LR"}, default "TB"
        Top to bottom, or left to right.
    dpi : int, default 200
        For PNG output.

    Returns
    -------
    ModelDiagram
        Shown inline in Jupyter (``_repr_svg_``); ``.svg`` holds the text.

    Raises
    ------
    ValueError
        An edge naming a missing node, a cycle, or an invalid ``rankdir``.

    Examples
    --------
    >>> import layernet as ln
    >>> d = ln.utils.plot_graph([("x", "InputLayer", (None, 4)), ("dense", "Dense", (None, 2))],
    ...                         [(0, 1)], show_shapes=True)
    >>> "dense" in d.svg and "(None, 2)" in d.svg
    True
    """
    items = [n if isinstance(n, GraphNode) else GraphNode(*n) for n in nodes]
    pairs = [(int(a), int(b)) for a, b in edges]
    if rankdir not in ("TB", "LR"):
        raise ValueError(
            f"plot_model: invalid value for `rankdir`: expected 'TB' or 'LR', received {rankdir!r}."
        )
    for a, b in pairs:
        if not (0 <= a < len(items) and 0 <= b < len(items)):
            raise ValueError(
                f"plot_graph: edge ({a}, {b}) names a node outside 0..{len(items) - 1}."
            )
    depth = _depths(len(items), pairs)
    labels = []
    for n in items:
        lines = [f"{n.name} ({n.class_name})" if show_layer_names else n.class_name]
        if show_shapes:
            lines.append("?" if n.output_shape is None else shape_str(tuple(n.output_shape)))
        labels.append(lines)
    chars = max(len(s) for lines in labels for s in lines) if labels else 10
    box_w, box_h = (
        max(140, 7.2 * chars + 24),
        22 + 16 * max(len(lines) for lines in labels or [[""]]),
    )
    gap_rank, gap_side = 36, 24
    rows: dict[int, list[int]] = {}
    for i, d in enumerate(depth):
        rows.setdefault(d, []).append(i)
    widest = max((len(v) for v in rows.values()), default=1)
    boxes: list[tuple[float, float]] = [(0.0, 0.0)] * len(items)
    for d, members in rows.items():
        for k, i in enumerate(members):
            offset = (widest - len(members)) * (box_w + gap_side) / 2
            along, across = d * (box_h + gap_rank), offset + k * (box_w + gap_side)
            if rankdir == "TB":
                boxes[i] = (10 + across, 10 + along)
            else:
                along_lr = d * (box_w + gap_rank)
                across_lr = (widest - len(members)) * (box_h + gap_side) / 2 + k * (
                    box_h + gap_side
                )
                boxes[i] = (10 + along_lr, 10 + across_lr)
    n_ranks = max(depth, default=0) + 1
    if rankdir == "TB":
        width = 20 + widest * box_w + (widest - 1) * gap_side
        height = 20 + n_ranks * box_h + (n_ranks - 1) * gap_rank
    else:
        width = 20 + n_ranks * box_w + (n_ranks - 1) * gap_rank
        height = 20 + widest * box_h + (widest - 1) * gap_side
    arrows = []
    for a, b in pairs:
        (xa, ya), (xb, yb) = boxes[a], boxes[b]
        if rankdir == "TB":
            arrows.append(((xa + box_w / 2, ya + box_h), (xb + box_w / 2, yb)))
        else:
            arrows.append(((xa + box_w, ya + box_h / 2), (xb, yb + box_h / 2)))
    layout = {
        "width": width,
        "height": height,
        "box_w": box_w,
        "box_h": box_h,
        "boxes": boxes,
        "labels": labels,
        "arrows": arrows,
    }
    diagram = ModelDiagram(_svg(layout), items, pairs, layout)
    if to_file is not None:
        diagram.save(to_file, dpi=dpi)
    return diagram


def _depths(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Each node's longest distance from a source (its rank), or a ValueError for a cycle."""
    preds: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
        preds[b].append(a)
        indeg[b] += 1
    order = [i for i in range(n) if indeg[i] == 0]
    depth = [0] * n
    for i in order:
        for j in succ[i]:
            depth[j] = max(depth[j], depth[i] + 1)
            indeg[j] -= 1
            if indeg[j] == 0:
                order.append(j)
    if len(order) != n:
        raise ValueError("plot_graph: the edges form a cycle; expected a graph without cycles.")
    return depth


def _svg(lay: dict[str, Any]) -> str:
    w, h = lay["box_w"], lay["box_h"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay["width"]:.0f}" '
        f'height="{lay["height"]:.0f}" viewBox="0 0 {lay["width"]:.0f} {lay["height"]:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#35577d"/></marker>'
        "</defs>",
    ]
    for (x0, y0), (x1, y1) in lay["arrows"]:
        out.append(
            f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="#35577d" '
            f'stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for (x, y), lines in zip(lay["boxes"], lay["labels"], strict=True):
        out.append(
            f'<g><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="6" '
            f'fill="#eef3fb" stroke="#35577d"/>'
        )
        for k, text in enumerate(lines):
            style = (
                'font-family="sans-serif" font-weight="bold" font-size="12"'
                if k == 0
                else 'font-family="monospace" font-size="11"'
            )
            out.append(
                f'<text x="{x + w / 2:.1f}" y="{y + 18 + 16 * k:.1f}" text-anchor="middle" '
                f'dominant-baseline="middle" {style}>'
                f"{html.escape(text)}</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def model_graph(model: Any) -> tuple[list[GraphNode], list[tuple[int, int]]]:
    """The nodes and edges :func:`~layernet.utils.plot_graph` draws for a model.

    For a :class:`~layernet.Sequential`, an ``InputLayer`` node (the model's input
    shape) comes first, then one node per layer, each linked to the next. For a
    functional :class:`~layernet.Model`, one node per input and per call of a
    layer, linked as the calls take their tensors (branches and merges included).

    Parameters
    ----------
    model : Sequential or Model

    Returns
    -------
    nodes : list of GraphNode
    edges : list of (int, int)
    """
    if getattr(model, "is_functional", False):
        graph = model.graph
        nodes: list[GraphNode] = []
        index: dict[int, int] = {}  # tensor id -> node index
        for t in graph.inputs:
            index[id(t)] = len(nodes)
            nodes.append(GraphNode(t.name, "InputLayer", tuple(t.shape)))
        edges: list[tuple[int, int]] = []
        for node in graph.nodes:
            k = len(nodes)
            shape = tuple(node.outputs[0].shape) if len(node.outputs) == 1 else None
            nodes.append(GraphNode(node.layer.name, type(node.layer).__name__, shape))
            for t in node.input_tensors:
                if id(t) in index:
                    edges.append((index[id(t)], k))
            for t in node.outputs:
                index[id(t)] = k
        return nodes, edges
    shape = getattr(model, "input_shape", None)
    nodes = [GraphNode("input", "InputLayer", None if shape is None else tuple(shape))]
    for layer in model.layers:
        if shape is not None:
            shape = tuple(layer.output_shape(shape))
        nodes.append(GraphNode(layer.name, type(layer).__name__, shape))
    return nodes, [(i, i + 1) for i in range(len(nodes) - 1)]


def plot_model(
    model: Any,
    to_file: str | os.PathLike | None = None,
    show_shapes: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    dpi: int = 200,
) -> ModelDiagram:
    """Draw a model's layers and their connections (Keras's ``plot_model``, without Graphviz).

    Parameters
    ----------
    model : Sequential
    to_file : str or os.PathLike, optional
        Also write the picture: ``.svg`` (text, no matplotlib), ``.png`` or ``.pdf``.
    show_shapes : bool, default False
        Write output shapes (known once the model is built or has an ``Input``).
    show_layer_names : bool, default True
    rankdir : {"TB", "LR"}, default "TB"
    dpi : int, default 200

    Returns
    -------
    ModelDiagram
        Displayed inline in Jupyter.

    Raises
    ------
    ValueError
        An invalid ``rankdir`` or ``to_file`` extension.
    ImportError
        PNG or PDF output without matplotlib (the ``plot`` extra).

    Examples
    --------
    >>> import layernet as ln
    >>> model = ln.Sequential([ln.Dense(8), ln.ReLU(), ln.Dense(2)])
    >>> model.build((None, 4))
    >>> diagram = ln.utils.plot_model(model, show_shapes=True)
    >>> all(layer.name in diagram.svg for layer in model.layers), "(None, 8)" in diagram.svg
    (True, True)
    """
    nodes, edges = model_graph(model)
    return plot_graph(nodes, edges, to_file, show_shapes, show_layer_names, rankdir, dpi)


# ============================================================================ summary
class ModelSummary:
    """``model.summary()`` as an object: text when printed, an HTML table in Jupyter.

    Parameters
    ----------
    model : Sequential

    Attributes
    ----------
    rows : list of (str, str, str, int)
        Layer name, class, output shape and parameter count.
    text : str
        What ``model.summary()`` prints.

    Examples
    --------
    >>> import layernet as ln
    >>> model = ln.Sequential([ln.Dense(3)])
    >>> model.build((None, 2))
    >>> s = ln.utils.model_summary(model)
    >>> "<table" in s._repr_html_() and "Total params: 9" in str(s)
    True
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        lines: list[str] = []
        model.summary(print_fn=lines.append)
        self.text = "\n".join(lines)
        shape = getattr(model, "input_shape", None)
        self.rows: list[tuple[str, str, str, int]] = []
        for layer in model.layers:
            if shape is not None:
                shape = layer.output_shape(shape)
            count = layer.count_params() if layer.built else 0
            out = shape_str(shape) if shape is not None else "?"
            self.rows.append((layer.name, type(layer).__name__, out, count))
        self.total = int(model.count_params())
        self.trainable = int(
            sum(p.size for layer in model.layers if layer.trainable for p in layer.params.values())
        )

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        e = html.escape
        body = "".join(
            f"<tr><td>{e(name)}</td><td>{e(cls)}</td><td><code>{e(shape)}</code></td>"
            f'<td style="text-align:right">{count:,}</td></tr>'
            for name, cls, shape, count in self.rows
        )
        return (
            f"<div><b>Model: {e(str(self.model.name))}</b>"
            "<table><thead><tr><th>Layer</th><th>Type</th><th>Output shape</th>"
            f'<th style="text-align:right">Param #</th></tr></thead><tbody>{body}</tbody>'
            f"</table><p>Total params: {self.total:,}<br>Trainable params: {self.trainable:,}"
            f"<br>Non-trainable params: {self.total - self.trainable:,}</p></div>"
        )


def model_summary(model: Any) -> ModelSummary:
    """A :class:`ModelSummary` of ``model`` (a rich table in Jupyter, text elsewhere).

    Parameters
    ----------
    model : Sequential

    Returns
    -------
    ModelSummary

    Examples
    --------
    >>> import layernet as ln
    >>> model = ln.Sequential([ln.Dense(3)])
    >>> model.build((None, 2))
    >>> ln.utils.model_summary(model).rows[0][1:]
    ('Dense', '(None, 3)', 9)
    """
    return ModelSummary(model)


# ============================================================================ confusion
def confusion_matrix(
    y_true: Any, y_pred: Any, num_classes: int | None = None, sample_weight: Any = None
) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of class ``i`` predicted as ``j`` (weighted if given).

    Parameters
    ----------
    y_true : array_like
        Integer labels ``(N,)`` or one-hot rows ``(N, K)``.
    y_pred : array_like
        Integer labels ``(N,)``, or scores ``(N, K)`` (the arg-max is the
        prediction), or one probability column ``(N, 1)`` (above 0.5 is class 1).
    num_classes : int, optional
        Default: one more than the largest label seen.
    sample_weight : array_like of shape (N,), optional

    Returns
    -------
    ndarray of shape (num_classes, num_classes)

    Raises
    ------
    ValueError
        Different numbers of samples, negative or out-of-range labels.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.utils.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2])
    array([[1., 0., 0.],
           [0., 1., 1.],
           [0., 0., 1.]])
    """
    t = _class_labels(y_true, "y_true")
    p = _class_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"confusion_matrix: expected as many predictions as targets, received "
            f"{p.shape[0]} and {t.shape[0]}."
        )
    k = (
        int(num_classes)
        if num_classes is not None
        else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    )
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= k):
        raise ValueError(
            f"confusion_matrix: expected labels in [0, {k - 1}], received labels from "
            f"{min(t.min(), p.min())} to {max(t.max(), p.max())}."
        )
    w = np.ones(t.shape) if sample_weight is None else np.asarray(sample_weight, np.float64)
    out = np.zeros((k, k))
    np.add.at(out, (t, p), w)
    return out


def _class_labels(y: Any, arg: str) -> np.ndarray:
    a = as_array(y, "confusion_matrix", arg)
    if (
        a.ndim == 2
        and a.shape[1] == 1
        and a.dtype.kind == "f"
        and not np.array_equal(a, np.round(a))
    ):
        return (a[:, 0] > 0.5).astype(np.int64)
    if a.ndim == 2 and a.shape[1] > 1:
        return a.argmax(axis=1)
    a = a.reshape(len(a)) if a.ndim == 2 and a.shape[1] == 1 else a
    if a.ndim != 1 or (a.dtype.kind == "f" and not np.array_equal(a, np.round(a))):
        raise ValueError(
            f"confusion_matrix: expected integer labels (N,) or scores (N, K) for `{arg}`, "
            f"received shape {shape_str(a.shape)}."
        )
    return a.astype(np.int64)


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    labels: Sequence[str] | None = None,
    normalize: str | None = None,
    sample_weight: Any = None,
    cmap: str = "Blues",
    title: str | None = None,
) -> Figure:
    """Draw the confusion matrix of predictions against targets, with the counts written in.

    Parameters
    ----------
    y_true, y_pred, sample_weight
        As in :func:`confusion_matrix`.
    labels : list of str, optional
        Class names for the axes (their number fixes the number of classes).
    normalize : {None, "true", "pred", "all"}, default None
        Show rates: each row (true class), column (predicted class) or the
        whole matrix summing to 1.
    cmap : str, default "Blues"
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axes; its image holds the matrix shown.

    Raises
    ------
    ImportError
        Without matplotlib (the ``plot`` extra).
    ValueError
        An invalid ``normalize``, and what :func:`confusion_matrix` refuses.

    Examples
    --------
    >>> import layernet as ln
    >>> fig = ln.utils.plot_confusion_matrix([0, 1, 1], [0, 1, 0], labels=["cat", "dog"])
    >>> fig.axes[0].images[0].get_array().tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(
            f"plot_confusion_matrix: invalid value for `normalize`: expected None, 'true', "
            f"'pred' or 'all', received {normalize!r}."
        )
    c = confusion_matrix(y_true, y_pred, len(labels) if labels else None, sample_weight)
    if normalize == "true":
        c = c / np.maximum(c.sum(axis=1, keepdims=True), 1e-300)
    elif normalize == "pred":
        c = c / np.maximum(c.sum(axis=0, keepdims=True), 1e-300)
    elif normalize == "all":
        c = c / max(c.sum(), 1e-300)
    k = len(c)
    names = list(labels) if labels else [str(i) for i in range(k)]
    fig = _figure(
        "plot_confusion_matrix", figsize=(1.0 + 0.6 * k, 0.8 + 0.6 * k), layout="constrained"
    )
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(c, cmap=cmap, vmin=0)
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    middle = c.max() / 2 if c.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{c[i, j]:.2f}" if normalize else f"{c[i, j]:g}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if c[i, j] > middle else "black",
                fontsize=8,
            )
    return fig
