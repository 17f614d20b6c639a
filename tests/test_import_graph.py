"""The project's packages import each other without cycles.

The graph is read from the source with ``ast`` (nothing is imported): an edge ``a -> b`` for every
``import b`` / ``from b import x`` in module ``a`` — at module level *and* inside functions or
methods, since a deferred import is still a dependency and a cycle through one is still a cycle.
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
Imports under ``if TYPE_CHECKING:`` are left out: they never run, they only name types for
annotations. A package's ``__init__`` is not counted as imported by its own submodules (Python
runs it first, but that is packaging, not a dependency of the submodule's code).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "recraft", "baselines", "search_spaces")


def project_modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def _type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported name, line) of every import in the module that runs (see the docstring)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in modules else base, node.lineno))
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {project module it imports: first line of such an import}."""
    modules = project_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for name, line in imported_names(module, path, modules):
            while name and name not in modules:       # "harness.x.func" -> "harness.x"
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.setdefault(name, line)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_the_scan_sees_the_packages_and_their_deferred_imports():
    graph = import_graph()
    assert {"harness.engine.searcher", "harness.sweep.cli", "recraft.pipeline"} <= set(graph)
    # a function-level import is an edge (harness.search imports the engine inside run_search)
    assert "harness.engine" in graph["harness.search"]
    # a detected cycle is reported (the scanner is not blind to them)
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == \
        [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    cycles = find_cycles(graph)
    described = []
    for component in cycles:
        edges = [f"{a} -> {b} (line {graph[a][b]})" for a in component for b in graph[a]
                 if b in component]
        described.append("; ".join(edges))
    assert not cycles, "import cycles:\n" + "\n".join(described)
