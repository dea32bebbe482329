"""The check that a gallery script is Keras code: only its imports and its marked
offline stand-in are layernet's.

A script under ``examples/`` written after a keras.io example imports layernet under
Keras's names (``import layernet as keras``, ``from layernet import layers``); swapped
back, it must run under Keras 3. So every layernet import maps to a Keras module, no
other name reaches layernet, the offline helpers appear only between the stand-in's
markers, and every ``keras.<attr>`` chain (``layers.<attr>``, ``ops.<attr>``) the script
uses exists on the real Keras module too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

BEGIN = "# --- layernet gallery: offline stand-in ---"
END = "# --- end of the offline stand-in ---"
OFFLINE = ("_offline_sequences", "_offline_imdb")


def keras_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the Keras module it stands for, from the script's layernet imports."""
    aliases = {}
    for node in ast.walk(tree):
        text = ast.unparse(node) if isinstance(node, ast.Import | ast.ImportFrom) else ""
        if "layernet" not in text and "_offline_imdb" not in text:
            continue
        if isinstance(node, ast.Import):
            assert text == "import layernet as keras", text
            aliases["keras"] = "keras"
        else:
            assert node.level == 0 and node.module in ("layernet", "_offline_imdb"), text
            for name in node.names:
                if node.module == "_offline_imdb":
                    assert name.name == "keras" and name.asname is None, text
                    aliases["keras"] = "keras"
                else:
                    aliases[name.asname or name.name] = f"keras.{name.name}"
    return aliases


def attribute_chains(tree: ast.Module, roots: set[str]) -> set[str]:
    """Every maximal ``root.a.b`` chain whose root is one of ``roots``."""
    chains = set()
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in roots:
                chains.add(".".join([value.id, *reversed(parts)]))
    return chains


def check_script(path: Path, keras: Any) -> set[str]:
    """Assert the properties above for ``path``; returns the Keras names it uses."""
    text = path.read_text()
    tree = ast.parse(text)
    aliases = keras_aliases(tree)
    assert aliases, f"{path.name}: no layernet import"
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"layernet", "ln"}, f"{path.name} reaches layernet by another name"

    # The offline helpers only between the markers.
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    assert len(starts) == len(ends) <= 1 and all(a < b for a, b in zip(starts, ends))
    inside = {i + 1 for a, b in zip(starts, ends) for i in range(a, b)}
    for node in ast.walk(tree):
        mentions = isinstance(node, ast.Name) and node.id in OFFLINE
        imports = isinstance(node, ast.Import) and any(a.name in OFFLINE for a in node.names)
        if mentions or imports:
            assert node.lineno in inside, f"{path.name}:{node.lineno} outside the stand-in"
    if not starts:
        assert not re.search(r"\b_offline_sequences\b", text.split('"""', 2)[-1])

    # Every Keras name it uses exists in Keras 3.
    used = set()
    for module in aliases.values():
        assert module == "keras" or hasattr(keras, module.split(".")[-1]), module
    for chain in attribute_chains(tree, set(aliases)):
        root, *rest = chain.split(".")
        target, full = keras, aliases[root].split(".")[1:] + rest
        for i, attr in enumerate(full):
            assert hasattr(target, attr), f"{path.name}: keras.{'.'.join(full[: i + 1])}"
            target = getattr(target, attr)
        used.add("keras." + ".".join(full))
    return used
