"""House rules checked on the source: no vizcore module uses another module's ``_private`` name, and no module
imports a layer above its own (nor streamlit)."""

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


# --------------------------------------------------------------------------- layers

# The engine's layers, bottom to top. A module may import its own layer and the layers below it, never one
# above (imports inside functions count too). A top-level package not named here (a feature package such as
# transfer, robustness, concepts or report) is the top layer: it may import every layer.
LAYERS = {
    "vizcore.errors": 0,
    "vizcore.cache": 0,
    "vizcore.profile": 0,
    "vizcore.present": 1,
    "vizcore.data": 2,
    "vizcore.models": 3,
    "vizcore.inspect": 4,
    "vizcore.attribution": 5,
    "vizcore.featurevis": 6,
    "vizcore.training": 7,
    "vizcore.precompute": 8,
}
TOP = max(LAYERS.values()) + 1


def layer_of(module: str) -> int:
    """The layer of a dotted vizcore name; ``vizcore`` itself (which only prepares the environment) is the bottom."""
    parts = module.split(".")
    if len(parts) == 1:
        return 0
    return LAYERS.get(".".join(parts[:2]), TOP)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every module ``source`` imports, anywhere in it: ``import a.b``, ``from a import b`` (gives ``a`` and
    ``a.b``: b may be a module), relative imports resolved, and ``importlib.import_module("a.b")``."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names if a.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "import_module" and isinstance(node.args[0].value, str):
                found.append(node.args[0].value)
    return found


def layer_breaks(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Each import of ``source`` that goes up a layer, and each import of streamlit."""
    own = layer_of(module)
    out = []
    for target in imported_modules(source, module, is_package=is_package):
        top = target.split(".")[0]
        if top == "streamlit":
            out.append(f"imports {target}: vizcore never imports streamlit")
        elif top == "vizcore" and layer_of(target) > own:
            out.append(f"imports {target} (layer {layer_of(target)}) from layer {own}")
    return out


def test_the_layer_checker_finds_imports_up_a_layer_and_streamlit():
    bad = """
import numpy as np
from vizcore.models import graph
from vizcore import errors, present


def later():
    from vizcore.training import run
    import streamlit as st
    from .. import attribution
    return importlib.import_module("vizcore.precompute.store")
"""
    assert layer_breaks(bad, "vizcore.inspect.examples") == [
        "imports vizcore.training (layer 7) from layer 4",
        "imports vizcore.training.run (layer 7) from layer 4",
        "imports streamlit: vizcore never imports streamlit",
        "imports vizcore.attribution (layer 5) from layer 4",
        "imports vizcore.precompute.store (layer 8) from layer 4",
    ]
    assert layer_breaks(bad.replace("import streamlit as st", ""), "vizcore.robustness.sweep") == []  # a new package
    assert layer_breaks("from . import graph\nfrom ..data import images", "vizcore.models.fields") == []
    assert layer_breaks("from .engines import forward", "vizcore.attribution", is_package=True) == []
    assert layer_of("vizcore") == layer_of("vizcore.errors") == 0 and layer_of("vizcore.report") == TOP


def test_no_vizcore_module_imports_a_layer_above_its_own_or_streamlit():
    modules = _module_names(ROOT)
    named = {n for n in modules if n.count(".") == 1}
    assert set(LAYERS) <= named, f"LAYERS names what is not there: {sorted(set(LAYERS) - named)}"
    breaks = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        for found in layer_breaks(source, name, is_package=path.name == "__init__.py"):
            breaks.append(f"{path.relative_to(ROOT)}: {found}")
    assert len(modules) > 100 and breaks == [], "move the shared piece down a layer:\n" + "\n".join(breaks)
