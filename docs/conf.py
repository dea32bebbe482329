"""Sphinx configuration for layernet's documentation.

The build needs no network: MathJax is served from ``_static``, the NumPy and
Python inventories for cross-references are read from ``_inv/`` (see
``_inv/make_inventories.py``), and the landing page's figure is drawn here by
layernet itself. It runs nitpicky (``-n``) with warnings as errors in the test
suite, so every reference must resolve.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import sys
import typing
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

import layernet

project = "layernet"
author = "layernet developers"
copyright = "2026, layernet developers"
release = version = layernet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # MathJax served from _static: math renders with no network
]

# The notebooks live in ../notebooks; a fresh copy is rendered (and executed) here.
NOTEBOOKS = HERE / "notebooks"
shutil.rmtree(NOTEBOOKS, ignore_errors=True)
NOTEBOOKS.mkdir()
for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copy2(nb, NOTEBOOKS / nb.name)

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_inv"]
templates_path = ["_templates"]

# ---------------------------------------------------------------- references
nitpicky = True
intersphinx_mapping = {
    # Inventories shipped in the repository: the build never goes online.
    "python": ("https://docs.python.org/3", str(HERE / "_inv" / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable", str(HERE / "_inv" / "numpy.inv")),
    "torch": ("https://pytorch.org/docs/stable", str(HERE / "_inv" / "torch.inv")),
}
intersphinx_timeout = 1
# matplotlib (the optional `plot` extra) ships no inventory here: its Figure is named, not linked.
nitpick_ignore = [("py:class", "Figure"), ("py:class", "matplotlib.figure.Figure")]

# ---------------------------------------------------------------- API pages
autosummary_generate = True
autodoc_default_options = {"members": True}  # class pages add inherited members
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "groupwise"
python_use_unqualified_type_names = True
python_maximum_signature_line_length = 78  # long signatures get one parameter a line
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"  # only the aliases below become links
numpydoc_xref_aliases = {
    "bool": "bool",
    "ndarray": "numpy.ndarray",
    "array_like": ":term:`numpy:array_like`",
    "Generator": "numpy.random.Generator",
    "Layer": "layernet.Layer",
    "Loss": "layernet.Loss",
    "Sequential": "layernet.Sequential",
    "History": "layernet.History",
    "Callback": "layernet.callbacks.Callback",
    "Optimizer": "layernet.optimizers.Optimizer",
    "Metric": "layernet.metrics.Metric",
    "GradCheckResult": "layernet.GradCheckResult",
    "path-like": ":term:`python:path-like object`",
    "callable": ":term:`python:callable`",
}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True


# ---------------------------------------------------------------- guide and notebook links
def _derivation_labels() -> dict[str, str]:
    """Class name (lower case) to its label in the derivatives guide, ``(derivatives-conv)=``."""
    text = (HERE / "derivatives.md").read_text(encoding="utf-8")
    return {m: f"derivatives-{m}" for m in re.findall(r"^\(derivatives-([a-z0-9]+)\)=", text, re.M)}


def _notebook_users() -> dict[str, list[str]]:
    """Public name to the notebooks whose code uses it (``ln.Conv(`` or ``ln.gradcheck(``)."""
    import json

    users: dict[str, list[str]] = {}
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for name in set(re.findall(r"\bln\.(?:\w+\.)?(\w+)\(", code)):
            users.setdefault(name, []).append(f"notebooks/{nb.stem}")
    return users


def _derivation_of(name: str, labels: dict[str, str]) -> str | None:
    """``Conv1D`` → ``derivatives-conv``; ``MaxPool2D`` → ``derivatives-maxpool``."""
    obj = getattr(layernet, name, None)
    candidates = [name]
    if inspect.isclass(obj):
        candidates += [base.__name__ for base in obj.__mro__[1:]]
    for candidate in candidates:
        key = re.sub(r"[123]D$", "", candidate).lower()
        if key in labels:
            return labels[key]
    return None


_labels = _derivation_labels()


# ---------------------------------------------------------------- one page per concept
#: What a class may set in its body and still be a pure alias of its parent (a name).
_ALIAS_BODY = {
    "__module__", "__qualname__", "__doc__", "__firstlineno__", "__static_attributes__",
    "_default_name", "fresh_output", "fresh_gradient", "passes_views", "in_place",
    "_call_layer",  # set on every class by the call() machinery
}  # fmt: skip
#: Members every page but the one that defines them leaves out: declarations and
#: file-compatibility tables that only the model machinery reads.
INTERNAL_MEMBERS = [
    "fresh_output",
    "fresh_gradient",
    "passes_views",
    "in_place",
    "declares",
    "renamed_weights",
    "renamed_arguments",
    # instance attributes that Layer.__init__ documents: on Layer's page only
    "workspace",
    "overwrite_inputs",
    "declared_input_shape",
]


def _pure_aliases() -> dict[str, str]:
    """Keras's name → the layernet class it only renames (``MaxPooling2D`` → ``MaxPool2D``).

    A pure alias is a public subclass whose body sets nothing but its default layer
    name and restated speed declarations: same arguments, defaults and behaviour.
    Its parent's page documents both; the alias keeps a small page for links.
    """
    aliases = {}
    for name in layernet.__all__:
        obj = getattr(layernet, name)
        if not (inspect.isclass(obj) and issubclass(obj, layernet.Layer)):
            continue
        parent = obj.__bases__[0]
        if len(obj.__bases__) == 1 and parent.__name__ in layernet.__all__ and parent is not (
            layernet.Layer
        ) and set(vars(obj)) <= _ALIAS_BODY:
            aliases[name] = parent.__name__
    return aliases


ALIASES = _pure_aliases()


def _write_alias_pages() -> None:
    """A small page per pure alias, in no toctree: links and search reach it, the sidebar
    lists only the class it renames."""
    out = HERE / "generated"
    out.mkdir(exist_ok=True)
    for alias, parent in ALIASES.items():
        title = f"layernet.{alias}"
        (out / f"{title}.rst").write_text(
            f":orphan:\n\n{title}\n{'=' * len(title)}\n\n.. currentmodule:: layernet\n\n"
            f"``{alias}`` is Keras's name for :class:`{parent}`: the same arguments, defaults "
            f"and behaviour, documented on :class:`{parent}`'s page.\n\n"
            f".. autoclass:: {alias}\n   :show-inheritance:\n",
            encoding="utf-8",
        )


_write_alias_pages()


def _documented_members(cls: type) -> list[str]:
    """Public members that ``cls``'s own page lists (its body and its private bases)."""
    from sphinx.pycode import ModuleAnalyzer

    names: list[str] = []
    for klass in cls.__mro__:
        if klass is not cls and (klass is object or not klass.__name__.startswith("_")):
            break
        try:
            attr_docs = ModuleAnalyzer.for_module(klass.__module__).find_attr_docs()
        except Exception:  # a class without source: only callables
            attr_docs = {}
        for member, value in vars(klass).items():
            if member.startswith("_") or member in names:
                continue
            if cls is not layernet.Layer and member in INTERNAL_MEMBERS:
                continue
            raw = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if callable(raw) or isinstance(raw, property):
                if inspect.getdoc(getattr(cls, member)):
                    names.append(member)
            elif (klass.__qualname__, member) in attr_docs:
                names.append(member)
    return names


def _public_ancestors(cls: type) -> list[type]:
    """The public classes ``cls`` inherits from, nearest first (private bases skipped)."""
    public = {id(obj) for obj in _public_classes()}
    return [base for base in cls.__mro__[1:] if id(base) in public]


def _public_classes() -> list[type]:
    classes = [getattr(layernet, n) for n in layernet.__all__]
    for module in ("callbacks", "optimizers", "losses", "metrics", "initializers"):
        mod = importlib.import_module(f"layernet.{module}")
        classes += [
            obj
            for name, obj in vars(mod).items()
            if inspect.isclass(obj)
            and not name.startswith("_")
            and obj.__module__.startswith("layernet")
        ]
    return [c for c in classes if inspect.isclass(c)]


def _page_name(cls: type) -> str:
    if getattr(layernet, cls.__name__, None) is cls and cls.__name__ in layernet.__all__:
        return f"layernet.{cls.__name__}"
    return f"{cls.__module__.replace('.layers.base', '')}.{cls.__name__}".replace(
        "layernet.layers.", "layernet."
    )


def _inherited_links() -> dict[str, list[tuple[str, list[str]]]]:
    """Per class page: ``[(ancestor page, [member, ...]), ...]`` for members it inherits
    from public classes, which their own pages document (listed, not repeated)."""
    links: dict[str, list[tuple[str, list[str]]]] = {}
    for cls in _public_classes():
        own = set(_documented_members(cls)) | set(vars(cls))
        seen = set(own)
        entries = []
        for base in _public_ancestors(cls):
            members = [
                m for m in _documented_members(base) if m not in seen and m not in INTERNAL_MEMBERS
            ]
            seen.update(members)
            if members:
                entries.append((_page_name(base), members))
        for key in {f"layernet.{cls.__name__}", f"{cls.__module__}.{cls.__name__}"}:
            links[key] = entries
    return links


def _stop_at() -> dict[str, str]:
    """Per class page: the classes whose members it does not repeat (``:inherited-members:``).

    From the nearest public ancestor on, private bases between included: their
    members are on the ancestor's page, and the page links them instead.
    """
    stops = {}
    for cls in _public_classes():
        ancestors = _public_ancestors(cls)
        if ancestors:
            mro = cls.__mro__
            names = [c.__name__ for c in mro[mro.index(ancestors[0]) :] if c is not object]
        else:
            names = ["object"]
        for key in {f"layernet.{cls.__name__}", f"{cls.__module__}.{cls.__name__}"}:
            stops[key] = ", ".join(names)
    return stops


autosummary_context = {
    "derivations": {
        name: label for name in layernet.__all__ if (label := _derivation_of(name, _labels))
    },
    "notebook_users": _notebook_users(),
    "aliases_of": {
        parent: sorted(a for a, p in ALIASES.items() if p == parent)
        for parent in set(ALIASES.values())
    },
    "inherited": _inherited_links(),
    "stop_at": _stop_at(),
    "internal_members": ", ".join(INTERNAL_MEMBERS),
}

# ---------------------------------------------------------------- theme
html_theme = "pydata_sphinx_theme"
html_title = f"layernet {version}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "logo": {"text": "layernet"},
    "navbar_start": ["navbar-logo", "version"],
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
# Pages without sub-pages get no left sidebar (no empty "Section Navigation").
html_sidebars = {
    "index": [],
    "changelog": [],
    "gallery": [],
    "search": [],
    "genindex": [],
    "py-modindex": [],
}
html_static_path = ["_static"]
# "Show source" links to the file itself (a notebook as .ipynb, not .ipynb.txt).
html_sourcelink_suffix = ""
html_css_files = ["layernet.css"]


# ---------------------------------------------------------------- landing figure
def draw_landing_figure() -> None:
    """Draw the explicit input Jacobians of a 1-D and a 2-D convolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    import layernet as ln

    rng = np.random.default_rng(0)
    conv1 = ln.Conv(1, 3, use_bias=False, dtype="float64", seed=0)
    j1 = conv1.jacobian_input(rng.standard_normal((1, 10, 1)))
    conv2 = ln.Conv(1, (2, 2), use_bias=False, dtype="float64", seed=0)
    j2 = conv2.jacobian_input(rng.standard_normal((1, 4, 4, 1)))
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.0), width_ratios=[10, 16])
    for ax, j, title in (
        (axes[0], j1, "Conv(1, 3): 10 inputs → 8 outputs"),
        (axes[1], j2, "Conv(1, (2, 2)): 4×4 inputs → 3×3 outputs"),
    ):
        lim = np.abs(j).max()
        ax.imshow(j, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("vec(X) index")
        ax.set_ylabel("vec(Y) index")
    fig.suptitle(r"$\partial\,\mathrm{vec}(Y)/\partial\,\mathrm{vec}(X)^T$ from jacobian_input")
    fig.tight_layout()
    out = HERE / "_static" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "conv_jacobians.png", dpi=110)
    plt.close(fig)


draw_landing_figure()


# ---------------------------------------------------------------- public names
def _public_names() -> dict[int, str]:
    """Map each documented object's id to the name its API page is under."""
    names: dict[int, str] = {}
    for name in layernet.__all__:
        obj = getattr(layernet, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            names.setdefault(id(obj), f"layernet.{name}")
    for module in ("metrics", "datasets", "saving", "callbacks", "optimizers", "losses"):
        mod = importlib.import_module(f"layernet.{module}")
        for name, obj in vars(mod).items():
            if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", "").startswith("layernet"):
                names.setdefault(id(obj), f"layernet.{module}.{name}")
    return names


def _lookup(target: str):
    """Import the object that a dotted ``layernet...`` name points at, or None."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve(app, env, node, contnode, new_target):
    node = node.deepcopy()
    node["reftarget"] = new_target
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], new_target, node, contnode
    )


def _documented_attributes(cls) -> set[str]:
    """Names listed in the numpydoc ``Attributes`` section of a class's own docstring."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    match = re.search(r"^Attributes\n-+\n(.*?)(?:^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    if not match:
        return set()
    return set(re.findall(r"^(\w+) :", match.group(1), re.M))


def resolve_inherited(app, env, node, contnode):
    """Resolve ``:attr:`params``` in a docstring that a layer inherits from ``Layer``.

    A method documented on ``Conv``'s page may refer to a member of ``Layer``;
    an instance attribute (``params``, ``grads``) is described in the
    ``Attributes`` section of the class that sets it, and links there.
    """
    target = node.get("reftarget", "")
    cls_name = node.get("py:class")
    if "." in target or not cls_name or node.get("reftype") not in ("attr", "meth", "obj"):
        return None
    cls = _lookup(f"{node.get('py:module')}.{cls_name}")
    if not inspect.isclass(cls):
        return None
    names = _public_names()
    for base in cls.__mro__:
        public = names.get(id(base))
        if public is None:
            continue
        if base is not cls:
            found = _resolve(app, env, node, contnode, f"{public}.{target}")
            if found is not None:
                return found
        if target in _documented_attributes(base):
            node = node.deepcopy()
            node["reftype"] = "class"
            return _resolve(app, env, node, contnode, public)
    return None


def resolve_layernet_alias(app, env, node, contnode):
    """Resolve ``layernet.layers.base.Layer`` & co. to the public page (``layernet.Layer``).

    Type hints name classes by the module that defines them; the API pages are
    under the public names.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("layernet."):
        return resolve_inherited(app, env, node, contnode)
    if isinstance(_lookup(target), typing.TypeVar):
        return contnode  # a type variable in a signature (``T``): shown as text
    parts = target.split(".")
    names = _public_names()
    for cut in range(len(parts), 1, -1):  # a method or attribute: resolve its class
        obj = _lookup(".".join(parts[:cut]))
        public = names.get(id(obj)) if obj is not None else None
        if public is not None:
            new_target = ".".join([public, *parts[cut:]])
            if new_target == target:
                return None
            return _resolve(app, env, node, contnode, new_target)
    return None


def public_bases(app, name, obj, options, bases):
    """Show the nearest public ancestor instead of a private base (``_Pool`` → ``Layer``).

    Mixins from private modules (``layers.calling._KerasLayerAPI``) are left out.
    """
    for i, base in enumerate(bases):
        while base.__name__.startswith("_") and base.__bases__:
            base = base.__bases__[0]
        bases[i] = base
    private = [b for b in bases if any(p.startswith("_") for p in b.__module__.split(".")[1:])]
    for b in private:
        if len(bases) > 1:
            bases.remove(b)


def dataclass_signature(app, what, name, obj, options, signature, return_annotation):
    """Show a dataclass field's default factory as a call (``errors={}``), not ``<factory>``."""
    fields = getattr(obj, "__dataclass_fields__", None)
    if not signature or "<factory>" not in signature or not fields:
        return None
    for field in fields.values():
        factory = getattr(field, "default_factory", None)
        if callable(factory):
            signature = signature.replace("<factory>", repr(factory()), 1)
    return signature, return_annotation


_HEADER = re.compile(r"^([A-Z][A-Za-z ]+)\n-+$", re.M)


def _sections(doc: str) -> tuple[str, dict[str, str]]:
    """Split a numpydoc docstring into its preamble and ``{section title: body}``."""
    parts = _HEADER.split(doc)
    preamble, sections = parts[0], {}
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[title] = body.strip("\n")
    return preamble.strip("\n"), sections


def inherit_alias_docs(app, what, name, obj, options, lines):
    """Complete an alias's page (``MaxPool2D``, ``MaxPooling2D``) with its parent's sections.

    A subclass that only fixes the rank or gives a Keras name documents itself
    in a line or two; its page then continues with the parent's shapes,
    parameters, errors and notes, and keeps its own examples.
    """
    if what != "class" or not inspect.isclass(obj) or not lines:
        return
    behaviour = [
        k
        for k, v in vars(obj).items()
        if inspect.isfunction(v) or isinstance(v, property | classmethod | staticmethod)
    ]
    if behaviour:  # a class with methods of its own is not an alias
        return
    own = "\n".join(lines)
    own_pre, own_sections = _sections(own)
    if "Parameters" in own_sections:
        return
    public = _public_names()
    parent = next((b for b in obj.__mro__[1:] if b in (layernet.Layer,) or id(b) in public), None)
    if parent is None or parent is object or parent is layernet.Layer:
        return
    parent_doc = inspect.getdoc(parent) or ""
    # the parent may itself be an alias: complete it first
    parent_lines = parent_doc.splitlines()
    inherit_alias_docs(app, what, name, parent, options, parent_lines)
    parent_pre, parent_sections = _sections("\n".join(parent_lines))
    if "Parameters" not in parent_sections:
        return
    parent_name = public[id(parent)].removeprefix("layernet.")
    extended = parent_pre.split("\n\n", 1)[1] if "\n\n" in parent_pre else ""
    note = (
        f"It takes the arguments of :class:`~{public[id(parent)]}`, and behaves as "
        f"``{parent_name}`` does; the rest of this page is ``{parent_name}``'s "
        "documentation."
    )
    merged = {**parent_sections, **own_sections}
    # attribute entries (``params``, ``state``) are documented as members on the parent's page
    merged.pop("Attributes", None)
    if "Examples" in own_sections:
        merged["Examples"] = own_sections["Examples"]
    text = own_pre + "\n\n" + note + ("\n\n" + extended if extended else "")
    for title, body in merged.items():
        text += f"\n\n{title}\n{'-' * len(title)}\n{body}"
    lines[:] = text.splitlines()


def setup(app):
    app.connect("autodoc-process-docstring", inherit_alias_docs, priority=100)
    app.connect("autodoc-process-signature", dataclass_signature)
    app.connect("missing-reference", resolve_layernet_alias)
    app.connect("autodoc-process-bases", public_bases)
