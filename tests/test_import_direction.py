"""Imports run one way (docs/architecture.md): every module's imports, read with ``ast``.

Every ``import`` statement counts, also the ones inside functions and under ``TYPE_CHECKING``:
a lazy import is still an arrow between two parts of the design. A new backwards arrow (say
``models`` importing ``storage``, or ``sim_devices`` importing torch) fails
:func:`test_packages_import_only_downwards`; a new cycle between two files fails
:func:`test_no_import_cycles_between_files`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Our packages, and which of our packages each may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "patterns": frozenset(),
    "crystals": frozenset({"patterns"}),
    "sim_devices": frozenset({"patterns", "crystals"}),
    "epics_devices": frozenset(),
    "models": frozenset({"patterns"}),
    "training": frozenset({"models", "crystals", "patterns"}),
    "evaluation": frozenset({"training", "models", "sim_devices", "crystals", "patterns"}),
    "agent": frozenset({"models", "patterns"}),
    "storage": frozenset({"patterns"}),
    "plans": frozenset({"agent", "sim_devices", "epics_devices", "models", "storage", "patterns"}),
    "flows": frozenset({"training", "models", "storage", "patterns"}),
}
"""``cli`` and ``bench`` sit on top and may import anything (lazily); tests are not checked."""

#: Third-party packages a layer must not import, with the reason.
FORBIDDEN_THIRD_PARTY: dict[str, dict[str, str]] = {
    "patterns": {name: "the bottom layer stays numpy-only" for name in ("torch", "bluesky", "ophyd", "tiled", "prefect")},
    "crystals": {name: "the bottom layer needs no ML or control stack" for name in ("torch", "bluesky", "ophyd", "tiled", "prefect")},
    "sim_devices": {"torch": "device physics is numpy", "bluesky": "devices are driven by any plan", "prefect": "", "tiled": ""},
    "epics_devices": {"torch": "devices know no model", "bluesky": "devices are driven by any plan", "prefect": "", "tiled": ""},
    "models": {name: "the runtime model knows no acquisition, storage or orchestration"
               for name in ("bluesky", "ophyd", "tiled", "databroker", "prefect", "zmq")},
    "training": {name: "training runs without a beamline" for name in ("bluesky", "ophyd", "tiled", "prefect")},
    "evaluation": {name: "evaluation runs without a beamline" for name in ("bluesky", "ophyd", "tiled", "prefect")},
    "agent": {"prefect": "the agent does not orchestrate", "tiled": "the agent reads documents, not the catalog"},
    "storage": {"torch": "storage holds runs, not models", "prefect": "flows call storage, not the reverse"},
}
PACKAGES = tuple(ALLOWED) + ("cli", "bench")


def module_name(path: Path) -> str:
    """``models/grid.py`` -> ``models.grid``; ``models/__init__.py`` -> ``models``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    """Every module of our packages, name -> file."""
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def imported_names(path: Path) -> list[tuple[str, int]]:
    """Every module name a file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``), with its line."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.module, node.lineno))
            names += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return names


def backwards_imports(modules: dict[str, Path]) -> list[str]:
    """One line ``file:line: a -> b (rule)`` for each import statement the rules forbid."""
    problems = []
    for name, path in modules.items():
        package = name.split(".")[0]
        if package not in ALLOWED:
            continue
        seen_lines = set()
        for imported, line in imported_names(path):
            if line in seen_lines:
                continue
            top = imported.split(".")[0]
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            where = f"{shown}:{line}: {package} -> {imported}"
            if top in ALLOWED or top in ("cli", "bench"):
                if top != package and top not in ALLOWED[package]:
                    problems.append(f"{where} (allowed: {sorted(ALLOWED[package]) or 'none of ours'})")
                    seen_lines.add(line)
            elif top in FORBIDDEN_THIRD_PARTY.get(package, {}):
                problems.append(f"{where} ({FORBIDDEN_THIRD_PARTY[package][top] or 'forbidden in this layer'})")
                seen_lines.add(line)
    return problems


def file_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a package's ``__init__`` counts as a module)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported, _ in imported_names(path):
            if imported in modules and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_packages_import_only_downwards() -> None:
    problems = backwards_imports(project_modules())
    assert not problems, "imports against the direction of docs/architecture.md:\n" + "\n".join(problems)


def test_no_import_cycles_between_files() -> None:
    graph = file_graph(project_modules())
    # a package's __init__ re-exporting its own modules is not a cycle between files of two jobs
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t == name.rsplit(".", 1)[0] and "." in name)}
    assert not cycles(graph), f"import cycles between files: {cycles(graph)}"


@pytest.mark.parametrize(
    ("package", "statement"),
    [("models", "from storage.catalog import open_catalog"), ("sim_devices", "import torch"),
     ("storage", "from flows.retrain import retrain_flow"), ("agent", "import plans.adaptive")],
)
def test_a_backwards_import_is_caught(tmp_path: Path, package: str, statement: str) -> None:
    bad = tmp_path / "bad_example.py"
    bad.write_text(f"def later():\n    {statement}\n")
    problems = backwards_imports({f"{package}.bad_example": bad})
    assert len(problems) >= 1 and f"{package} -> {statement.split()[1]}" in problems[0], problems


def test_a_cycle_is_caught() -> None:
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "b": {"a.x"}}) == [["a.x", "a.y", "a.z"]]
