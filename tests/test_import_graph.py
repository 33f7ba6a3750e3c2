"""fastserve's modules import one way: the import graph has no cycles.

The graph is read from the source with ``ast`` (the compiled parser's
``.pyx`` with a line pattern), and counts *every* import: module level,
function level and under ``if TYPE_CHECKING:`` (a cycle a type checker
follows is still two modules that each need the other). An import of
``pkg.sub`` also depends on ``pkg`` (its ``__init__`` runs first), unless the
importer is itself inside ``pkg``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import fastserve

PACKAGE_DIR = Path(fastserve.__file__).parent

#: ``from X import a, b`` / ``from X import (`` / ``import X`` (not ``cimport``); the
#: names of a parenthesised list on the next lines are not read: X itself counts.
_PYX_IMPORT = re.compile(r"^\s*from\s+(\.*[\w.]*)\s+import\s+\(?([\w\s,]*)|^\s*import\s+([\w.]+)")


def _module_names(package_dir: Path) -> dict[str, Path]:
    names = {}
    for path in [*package_dir.rglob("*.py"), *package_dir.rglob("*.pyx")]:
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.setdefault(".".join(parts), path)
    return names


def _imports(path: Path) -> list[tuple[int, str | None, list[str]]]:
    """``(level, module, names)`` of every import statement in ``path``."""
    found: list[tuple[int, str | None, list[str]]] = []
    if path.suffix == ".pyx":
        for line in path.read_text().splitlines():
            m = _PYX_IMPORT.match(line)
            if m and m.group(1) is not None:
                level = len(m.group(1)) - len(m.group(1).lstrip("."))
                module = m.group(1).lstrip(".") or None
                names = [n.strip() for n in m.group(2).split(",") if n.strip()]
                found.append((level, module, names))
            elif m:
                found.append((0, m.group(3), []))
        return found
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((0, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module, [a.name for a in node.names]))
    return found


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports (directly)."""
    modules = _module_names(package_dir)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.stem == "__init__"
        here = name.split(".") if is_package else name.split(".")[:-1]
        for level, module, names in _imports(path):
            if level:
                base = here[: len(here) - level + 1]
                source = ".".join(base + ([module] if module else []))
            else:
                source = module or ""
            targets = {f"{source}.{n}" for n in names if f"{source}.{n}" in modules}
            if len(targets) < len(names) or not names:
                targets.add(source)
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if not target or target == name:
                    continue
                graph[name].add(target)
                graph[name] |= (_ancestors(target) - _ancestors(name) - {name}) & set(modules)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def describe(graph: dict[str, set[str]], cycle: set[str]) -> str:
    edges = [f"{a} -> {b}" for a in sorted(cycle) for b in sorted(graph[a] & cycle)]
    return "cycle among " + ", ".join(sorted(cycle)) + ":\n  " + "\n  ".join(edges)


def test_graph_sees_all_kinds_of_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\nx = 1\n"
    )
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from .sub import d\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "d.py").write_text("import pkg.a\n")
    pyx = "cimport cython\nfrom pkg.sub import d\nfrom pkg import (\n    a,\n)\n"
    (pkg / "e.pyx").write_text(pyx)
    graph = import_graph(pkg)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.c"},
        "pkg.c": {"pkg.sub", "pkg.sub.d"},
        "pkg.sub": set(),
        "pkg.sub.d": {"pkg.a"},
        "pkg.e": {"pkg", "pkg.sub", "pkg.sub.d"},
    }
    assert find_cycles(graph) == [{"pkg.a", "pkg.b", "pkg.c", "pkg.sub.d"}]


def test_no_import_cycles() -> None:
    graph = import_graph(PACKAGE_DIR)
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(describe(graph, c) for c in cycles)
