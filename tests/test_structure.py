"""The engine's shape, checked: no module reaches into another module's private (underscore) names.

An AST scan over ``src/gitops_ml``: ``from <engine module> import _name`` and ``<engine module>._name``
(where the name is bound by ``import``/``from . import``) both fail. A module's own privates are its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "gitops_ml"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _engine_module(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "gitops_ml"


def private_uses(source: str, where: str) -> list[str]:
    """Every cross-module use of a private name in one module's source."""
    tree = ast.parse(source)
    modules: set[str] = set()  # local names bound to engine modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _engine_module(node):
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(
                        f"{where}:{node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}"
                    )
                modules.add(alias.asname or alias.name)  # may be a module (from . import tracking)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gitops_ml":
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{where}:{node.lineno}: {node.value.id}.{node.attr}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def scan(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        if "template" in path.relative_to(package).parts:
            continue  # the cookiecutter template is the generated project's code, not the engine's
        found += private_uses(path.read_text(encoding="utf-8"), path.relative_to(package).as_posix())
    return found


def test_no_module_calls_another_modules_private_names():
    assert scan(PACKAGE) == []


def test_the_scan_finds_both_forms():
    """The check above can fail: both ways of reaching a private name are caught, a module's own are not."""
    source = (
        "from . import tracking\nfrom .drift import _model_inputs, drift\nimport gitops_ml.cards as cards\n"
        "def f(self):\n    tracking._call(1)\n    cards._x\n    self._own\n    _local()\n    tracking.call()\n"
    )
    assert private_uses(source, "m.py") == [
        "m.py:2: from .drift import _model_inputs",
        "m.py:5: tracking._call",
        "m.py:6: cards._x",
    ]
