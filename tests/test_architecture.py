"""The import graph of foedus, read from the source with ``ast`` (function-level imports
included): no module imports itself through others; the layers import only downwards: the
app layer (``foedus``, ``foedus.cli``) over ``foedus.models`` over ``foedus.features``, and
``foedus.infra``, which every layer uses, imports nothing else of foedus."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOWER = ("foedus.features", "foedus.models", "foedus.infra")


def modules() -> dict[str, Path]:
    """Every module of the package by its import name, as pyproject.toml maps folders to packages."""
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = {}
    for package, folder in folders.items():
        for path in (ROOT / folder).glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """module -> the foedus modules it imports anywhere in its source (``from a import b`` counts
    as an import of the module ``a.b`` where that is one, else of ``a``)."""
    known = modules()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.stem == "__init__" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {owner(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level-1 packages
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets |= {owner(f"{base}.{alias.name}") if f"{base}.{alias.name}" in known else owner(base)
                            for alias in node.names}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert "foedus.models.seed" in graph["foedus.models.catalogue"]  # at the top
    assert "foedus.models.estimators" in graph["foedus.models.catalogue"]  # inside a function
    assert "foedus.features.readers.core" in graph["foedus.features.readers.alliances"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_features_and_models_do_not_import_the_app_layer():
    upward = sorted((source, target) for source, targets in import_graph().items() for target in targets
                    if source.startswith(LOWER) and not target.startswith(LOWER))
    assert upward == []


def test_infra_imports_nothing_else_of_foedus():
    assert sorted((source, target) for source, targets in import_graph().items() for target in targets
                  if source.startswith("foedus.infra") and not target.startswith("foedus.infra")) == []


def test_features_do_not_import_models():
    assert sorted((source, target) for source, targets in import_graph().items() for target in targets
                  if source.startswith("foedus.features") and target.startswith("foedus.models")) == []
