"""House rules checked on the source: no vizcore module uses another module's ``_private`` name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_names(root: Path) -> dict[str, Path]:
    """{"vizcore.graph": path, "vizcore.featurevis": .../featurevis/__init__.py, ...}"""
    names = {}
    for path in sorted((root / "vizcore").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_uses(source: str, module: str, modules: set[str], *, is_package: bool = False) -> list[str]:
    """Every ``other_module._name`` and ``from other_module import _name`` in ``source``.

    Args:
        source: Python source of ``module``.
        module: its dotted name, e.g. "vizcore.featurevis.slicing".
        modules: dotted names of every vizcore module and package.
    """
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    aliases: dict[str, str] = {}  # local name -> the vizcore module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "vizcore":
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["vizcore"] = "vizcore"
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "vizcore":
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                if full in modules:
                    aliases[a.asname or a.name] = full
                elif _is_private(a.name) and base != module:
                    found.append(f"from {base} import {a.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = _dotted(node.value)
            if owner is None:
                continue
            head, _, rest = owner.partition(".")
            if head not in aliases:
                continue
            target = aliases[head] + (f".{rest}" if rest else "")
            if target in modules and target != module:
                found.append(f"{owner}.{node.attr}")
    return found


def test_the_checker_finds_private_names_of_other_modules():
    modules = {
        "vizcore",
        "vizcore.graph",
        "vizcore.featurevis",
        "vizcore.featurevis.slicing",
        "vizcore.featurevis.engine",
    }
    bad = """
import vizcore.graph
import vizcore.graph as g
from vizcore import graph
from vizcore.graph import _trace, trace as ok
from . import slicing
from .slicing import _feed
from .. import graph as up
x = graph._flat(1), g._trace, vizcore.graph._Trace, slicing._source, up._head_of
"""
    uses = private_uses(bad, "vizcore.featurevis.engine", modules)
    assert sorted(uses) == sorted(
        [
            "from vizcore.graph import _trace",
            "from vizcore.featurevis.slicing import _feed",
            "graph._flat",
            "g._trace",
            "vizcore.graph._Trace",
            "slicing._source",
            "up._head_of",
        ]
    )
    fine = """
import numpy as np
from vizcore import graph
from vizcore.graph import trace
from vizcore.featurevis.engine import _own
x = graph.trace, graph.__name__, np._private_but_not_ours, self._cache, _own
"""
    assert private_uses(fine, "vizcore.featurevis.engine", modules) == []


def test_no_vizcore_module_uses_another_modules_private_names():
    modules = _module_names(ROOT)
    assert "vizcore.models.graph" in modules and "vizcore.featurevis.slicing" in modules
    uses = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        for use in private_uses(source, name, set(modules), is_package=path.name == "__init__.py"):
            uses.append(f"{path.relative_to(ROOT)}: {use}")
    assert uses == [], "make these names public (and document them) or keep them in their module:\n" + "\n".join(uses)
