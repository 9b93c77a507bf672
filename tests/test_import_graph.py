"""The import graph of the installed packages: hosts import the core, never the reverse, and no
module imports itself through others.

Every module of `dashfleet_core`, `dashfleet_web`, `dashfleet_agent` and `dashfleet_plugins` is read
with `ast` (nothing is imported): imports at any depth count, inside functions too, relative imports
are resolved, and `importlib.import_module("...")` / `__import__("...")` with a literal name count
as imports. Imports under `if TYPE_CHECKING:` never run: they count for the direction rule (the core
does not even name a host's types) but not for cycles (a type hint cannot leave a module half
initialised).
"""

from __future__ import annotations

import ast
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGES = ("dashfleet_core", "dashfleet_web", "dashfleet_agent", "dashfleet_desktop", "dashfleet_plugins")
HOSTS = ("dashfleet_web", "dashfleet_agent", "dashfleet_desktop")


@dataclass
class Graph:
    files: dict[str, Path] = field(default_factory=dict)       # module -> source file
    runtime: dict[str, set[str]] = field(default_factory=dict)  # module -> modules it imports when run
    typing: dict[str, set[str]] = field(default_factory=dict)   # module -> modules named under TYPE_CHECKING


def package_modules(package: str, root: Path) -> dict[str, Path]:
    """Every module of a package folder, by dotted name (sub-folders without __init__.py are data)."""
    found = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if (Path(folder, d) / "__init__.py").is_file())
        for name in names:
            if not name.endswith(".py"):
                continue
            parts = list(Path(folder, name).relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = Path(folder, name)
    return found


def installed_modules(packages=PACKAGES) -> dict[str, Path]:
    modules = {}
    for package in packages:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
        for location in spec.submodule_search_locations:
            modules.update(package_modules(package, Path(location)))
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(module: str, is_package: bool, tree: ast.AST):
    """Yield (dotted name, under TYPE_CHECKING) for every import in the tree, at any depth."""

    def visit(node: ast.AST, typing_only: bool):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, True)
            for child in node.orelse:
                yield from visit(child, typing_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, typing_only
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            for alias in node.names:  # a submodule if there is one, else the module it comes from
                yield f"{source}.{alias.name}", typing_only
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                yield node.args[0].value, typing_only
        for child in ast.iter_child_nodes(node):
            yield from visit(child, typing_only)

    yield from visit(tree, False)


def build_graph(modules: dict[str, Path]) -> Graph:
    """Edges to the modules of `modules` (the deepest one an import names) and to any host module."""
    graph = Graph(files=dict(modules))
    for module, path in modules.items():
        runtime, typing = set(), set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for name, typing_only in _imported_names(module, path.name == "__init__.py", tree):
            target = name
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target not in modules:
                if name.partition(".")[0] not in HOSTS:
                    continue  # the standard library or a third-party package
                target = name  # a host that is not installed here (dashfleet_desktop) still counts
            if target == module:
                continue  # `from . import x` in a package naming one of its own attributes
            (typing if typing_only else runtime).add(target)
        graph.runtime[module] = runtime
        graph.typing[module] = typing - runtime
    return graph


def host_imports(graph: Graph) -> list[str]:
    """`core.module -> host.module` for every import of a host from the core."""
    found = []
    for module in sorted(graph.files):
        if module.partition(".")[0] != "dashfleet_core":
            continue
        for target in sorted(graph.runtime[module] | graph.typing[module]):
            if target.partition(".")[0] in HOSTS:
                found.append(f"{module} -> {target}")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path that returns to its start) for each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return [_path_round(group, edges) for group in groups]


def _path_round(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(group)}")


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph(installed_modules())


def test_the_reader_sees_every_package_and_imports_at_any_depth(graph):
    for package in PACKAGES:
        assert sum(m.partition(".")[0] == package for m in graph.files) > 3, package
    # a module-level import, and a relative one
    assert "dashfleet_core.config" in graph.runtime["dashfleet_core.cli._context"]
    # imports inside functions count
    assert "dashfleet_core.engine" in graph.runtime["dashfleet_core.cli.status"]


def test_the_core_imports_no_host(graph):
    found = host_imports(graph)
    assert not found, ("the core imports a host (hosts import the core, never the reverse; a host "
                       "contributes its command through the `dashfleet.commands` entry points):\n  "
                       + "\n  ".join(found))


def test_no_module_imports_itself_through_others(graph):
    found = cycles(graph.runtime)
    assert not found, "import cycles (each module imports the next; break each by moving code):\n  " \
        + "\n  ".join(" -> ".join(cycle) for cycle in found)


def test_the_checks_find_what_they_look_for(tmp_path):
    """The reader on a small package of its own: a host import inside a function, a relative
    import cycle, an import_module call, and a TYPE_CHECKING import that is no cycle."""
    pkg = tmp_path / "dashfleet_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("import importlib\n\ndef g():\n"
                                      "    importlib.import_module('dashfleet_core.c')\n")
    (pkg / "c.py").write_text("from . import a\n\ndef h():\n    import dashfleet_web.app\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from .e import E\n    from dashfleet_desktop import ui\n")
    (pkg / "e.py").write_text("from .d import x\n")
    graph = build_graph(package_modules("dashfleet_core", pkg))
    assert host_imports(graph) == ["dashfleet_core.c -> dashfleet_web.app",
                                   "dashfleet_core.d -> dashfleet_desktop.ui"]
    assert cycles(graph.runtime) == [["dashfleet_core.a", "dashfleet_core.sub.b", "dashfleet_core.c",
                                      "dashfleet_core.a"]]
