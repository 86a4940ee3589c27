"""The dependency rules of docs/architecture.md, checked on the source text.

Every import between files of ``bot``, ``handlers``, ``seal_platform`` and ``scheduler`` is
read with ``ast`` (function-level imports included: a deferred import is still a dependency,
it only hides a cycle from the interpreter). Imports under ``if TYPE_CHECKING:`` are left out:
they never run, and annotations may point in any direction.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "seal_platform", "scheduler")

# Cycles tolerated for now, each with why. Empty today; an entry names the files of one
# strongly connected component (sorted module names) and must say who removes it and when.
ALLOWED_CYCLES: dict[frozenset[str], str] = {}

# Programs that start the platform on their own sit above its composition root, as bot/app.py
# does for the embedded mode; they are the only platform modules that may import it.
PLATFORM_ENTRY_POINTS = frozenset({"seal_platform.standalone"})


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if ".venv" not in path.parts:
                modules[_module_name(path)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, package: str) -> Iterator[str]:
    """Every module name an import statement may load, outside ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                yield from _imported_names(ast.Module(body=[child], type_ignores=[]), package)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # ``from pkg import module`` loads pkg.module.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imported_names(node, package)


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the four packages it imports (itself excluded)."""
    modules = _source_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for imported in _imported_names(ast.parse(path.read_text(encoding="utf-8")), package):
            # ``from a.b import C`` names a class, not a module: fall back to the longest
            # prefix that is a file of ours.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_no_import_cycle_between_files_of_bot_handlers_platform_and_scheduler() -> None:
    unexpected = [sorted(cycle) for cycle in cycles(import_graph()) if cycle not in ALLOWED_CYCLES]
    assert unexpected == []


def test_every_allowed_cycle_still_exists() -> None:
    """An allow-list entry whose cycle is gone must go too, so the list only shrinks."""
    present = set(cycles(import_graph()))
    assert [sorted(cycle) for cycle in ALLOWED_CYCLES if cycle not in present] == []


def test_no_module_of_the_platform_imports_its_composition_root() -> None:
    graph = import_graph()
    importers = sorted(
        name
        for name, targets in graph.items()
        if name.startswith("seal_platform.")
        and name not in {"seal_platform.app", *PLATFORM_ENTRY_POINTS}
        and "seal_platform.app" in targets
    )
    assert importers == []


def test_the_graph_sees_deferred_imports_and_ignores_type_checking_ones() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from seal_platform.app import create_platform_app\n"
        "def later():\n    from seal_platform import accounts\n"
        "from . import sms\n"
    )
    names = set(_imported_names(tree, "seal_platform"))
    assert "seal_platform.accounts" in names
    assert "seal_platform.sms" in names
    assert "seal_platform.app" not in names


def test_a_cycle_of_two_modules_is_found() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set()}
    assert cycles(graph) == [frozenset({"a", "b"})]
