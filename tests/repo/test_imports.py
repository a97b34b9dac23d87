"""Imports inside ``trellis/`` run one way: no cycle between modules, none between packages.

The import graph is read from the source with ``ast``, not by importing: every ``import x``,
``from x import y``, relative ``from . import y`` and ``importlib.import_module("literal")`` (an
f-string counts by its literal prefix), at module level and inside function bodies. ``from pkg
import name`` is an import of ``pkg.name`` when that is a module, and importing ``a.b.c`` also
runs the ``__init__`` of ``a`` and ``a.b`` (except the packages the importing module is itself
inside: Python has imported those already).

Two checks:

- module level: an import that runs when a module is imported (function bodies and ``if
  TYPE_CHECKING:`` blocks excluded) may not lead back to the module: such a cycle works or fails
  by import order;
- packages: between the top-level subpackages (``trellis.core``, ``trellis.evaluate``, ...) no
  cycle at all, function bodies included: a lazy import hides a dependency, it does not remove
  it (docs/architecture.md draws the resulting layers).

Package ``__init__.py`` files hold a docstring, imports and re-exports and ``__all__``, nothing else.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "trellis"


@dataclass(frozen=True)
class Edge:
    source: str  # importing module
    target: str  # imported module (or package __init__)
    where: str  # path:line of the import statement
    module_level: bool  # runs when ``source`` is imported


def module_index(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_prefix(node: ast.expr) -> str | None:
    """A string constant, or the literal start of an f-string; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        prefix = ""
        for part in node.values:
            if not (isinstance(part, ast.Constant) and isinstance(part.value, str)):
                # Only the complete dotted names before the first placeholder are known.
                return prefix.rsplit(".", 1)[0] if "." in prefix else (prefix or None)
            prefix += part.value
        return prefix
    return None


class _Imports(ast.NodeVisitor):
    """(dotted name or (base, names) for ``from`` imports, line, module level?) of one module."""

    def __init__(self, module: str, is_package: bool):
        self.module = module
        # The package relative imports start from: the module's own package.
        self.package = module if is_package else module.rpartition(".")[0]
        self.depth = 0  # > 0 inside a function body or a TYPE_CHECKING block
        self.found: list[tuple[str, list[str], int, bool]] = []

    def _add(self, base: str, names: list[str], line: int):
        self.found.append((base, names, line, self.depth == 0))

    def _deferred(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _deferred

    def visit_If(self, node: ast.If):
        if _is_type_checking(node.test):
            self.depth += 1
            for child in node.body:
                self.visit(child)
            self.depth -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import):
        for alias in node.names:
            self._add(alias.name, [], node.lineno)

    def _relative(self, level: int, module: str | None) -> str:
        base = self.package.split(".")
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    def visit_ImportFrom(self, node: ast.ImportFrom):
        base = self._relative(node.level, node.module) if node.level else node.module
        self._add(base, [a.name for a in node.names if a.name != "*"], node.lineno)

    def visit_Call(self, node: ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and node.args:
            target = _literal_prefix(node.args[0])
            if target and target.startswith("."):
                package = next((k.value for k in node.keywords if k.arg == "package"), None)
                if isinstance(package, ast.Name) and package.id in ("__name__", "__package__"):
                    level = len(target) - len(target.lstrip("."))
                    target = self._relative(level, target.lstrip(".") or None)
                else:
                    target = None
            if target:
                self._add(target, [], node.lineno)
        self.generic_visit(node)


def import_edges(root: Path, package: str) -> list[Edge]:
    """Every import of a module of ``package`` by a module of ``package``, resolved to modules."""
    modules = module_index(root, package)
    edges = []
    for source, path in modules.items():
        visitor = _Imports(source, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        already = set(_ancestors(source)) | {source}  # imported before this module's code runs
        for base, names, line, module_level in visitor.found:
            if base != package and not base.startswith(package + "."):
                continue
            targets = {f"{base}.{n}" for n in names if f"{base}.{n}" in modules}
            if not names or len(targets) < len(names):
                targets.add(base)  # some names are attributes of base itself
            for target in sorted(targets):
                for t in _ancestors(target) + [target]:
                    if t in modules and t not in already:
                        where = f"{path.relative_to(root)}:{line}"
                        edges.append(Edge(source, t, where, module_level))
    return edges


def find_cycles(edges: dict[tuple[str, str], str]) -> list[list[str]]:
    """One cycle (a, b, ..., a) per strongly connected component with more than one node."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
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
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for component in components:
        members, start = set(component), component[0]
        # Shortest way back to start inside the component (breadth first).
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in graph[v]:
                if w == start:
                    cycles.append(paths[v] + [start])
                    queue = []
                    break
                if w in members and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return cycles


def describe(cycle: list[str], edges: dict[tuple[str, str], str]) -> str:
    steps = [f"  {a} -> {b}  ({edges[a, b]})" for a, b in itertools.pairwise(cycle)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def module_cycles(root: Path, package: str) -> list[str]:
    """Cycles of imports that run at module import time, spelled out."""
    edges: dict[tuple[str, str], str] = {}
    for e in import_edges(root, package):
        if e.module_level and e.source != e.target:
            edges.setdefault((e.source, e.target), e.where)
    return [describe(c, edges) for c in find_cycles(edges)]


def top_package(module: str, package: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else package


def package_edges(root: Path, package: str) -> dict[tuple[str, str], str]:
    """(importing subpackage, imported subpackage) -> where (the first import that makes the edge)."""
    edges: dict[tuple[str, str], str] = {}
    for e in import_edges(root, package):
        a, b = top_package(e.source, package), top_package(e.target, package)
        if a != b and package not in (a, b):
            edges.setdefault((a, b), f"{e.where}, {e.source} -> {e.target}")
    return edges


def package_cycles(root: Path, package: str) -> list[str]:
    """Cycles between the top-level subpackages, function-body imports included, spelled out."""
    edges = package_edges(root, package)
    return [describe(c, edges) for c in find_cycles(edges)]


# --- the checks on trellis ---------------------------------------------------------------------


def test_no_module_level_import_cycle():
    cycles = module_cycles(ROOT, PACKAGE)
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)


def test_no_cycle_between_packages():
    cycles = package_cycles(ROOT, PACKAGE)
    edges = sorted(package_edges(ROOT, PACKAGE))
    assert not cycles, (
        "import cycles between packages (function bodies included):\n"
        + "\n".join(cycles)
        + "\nall package edges: "
        + ", ".join(f"{a}->{b}" for a, b in edges)
    )


def test_training_and_evaluation_share_structured_and_evaluation_does_not_import_training():
    edges = package_edges(ROOT, PACKAGE)
    assert ("trellis.train", "trellis.structured") in edges
    assert ("trellis.evaluate", "trellis.structured") in edges
    assert ("trellis.evaluate", "trellis.train") not in edges, edges.get(
        ("trellis.evaluate", "trellis.train")
    )
    # structured sits under both: it imports neither (nor anything but core).
    assert {b for a, b in edges if a == "trellis.structured"} <= {"trellis.core"}


ALLOWED_IN_INIT = (ast.Import, ast.ImportFrom)


def _init_offences(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = []
    for i, node in enumerate(tree.body):
        if (
            i == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            continue  # the docstring
        if isinstance(node, ALLOWED_IN_INIT):
            continue
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AnnAssign, ast.AugAssign))
            else []
        )
        if targets and all(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            continue
        bad.append(f"{path.relative_to(root)}:{node.lineno}: {type(node).__name__}")
    return bad


def test_package_inits_only_document_and_reexport():
    inits = sorted((ROOT / PACKAGE).rglob("__init__.py"))
    assert inits
    bad = [offence for path in inits for offence in _init_offences(path)]
    assert not bad, "__init__.py may hold only a docstring, imports and __all__:\n" + "\n".join(bad)


# --- the checker itself, on planted packages ---------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_a_package_cycle_hidden_in_a_function_body(tmp_path):
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": '"""A planted package."""\n',
            "pkg/a/__init__.py": "",
            "pkg/a/m.py": "from pkg.b import n\n",
            "pkg/b/__init__.py": "",
            "pkg/b/n.py": "def later():\n    from pkg.a import m  # hidden: runs only when called\n    "
            "return m\n",
            "pkg/c/__init__.py": "",
            "pkg/c/x.py": "import pkg.a.m\n",
        },
    )
    assert module_cycles(root, "pkg") == []  # the import inside later() does not run at import time
    (cycle,) = package_cycles(root, "pkg")
    assert cycle.splitlines()[0] == "pkg.a -> pkg.b -> pkg.a"
    assert "pkg/b/n.py:2" in cycle and "pkg/a/m.py:1" in cycle


def test_the_checker_finds_a_module_cycle_through_relative_and_dynamic_imports(tmp_path):
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/c/__init__.py": "",
            "pkg/c/x.py": "from . import y\n",  # `from package import submodule`
            "pkg/c/y.py": "import importlib\nz = importlib.import_module('pkg.c.z')\n",
            "pkg/c/z.py": "from pkg.c.x import something\n",
        },
    )
    (cycle,) = module_cycles(root, "pkg")
    assert cycle.splitlines()[0] == "pkg.c.x -> pkg.c.y -> pkg.c.z -> pkg.c.x"
    assert package_cycles(root, "pkg") == []  # all inside one package


def test_the_checker_counts_package_inits_and_f_string_prefixes(tmp_path):
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            # Importing pkg.d.deep runs pkg/d/__init__.py, which imports pkg.e: an edge pkg.f -> pkg.e.
            "pkg/d/__init__.py": "from pkg.e import tool\n",
            "pkg/d/deep.py": "",
            "pkg/e/__init__.py": "",
            "pkg/e/tool.py": "from importlib import import_module\n\ndef load(kind):\n"
            "    return import_module(f'pkg.f.{kind}')\n",
            "pkg/f/__init__.py": "",
            "pkg/f/user.py": "import pkg.d.deep\n",
        },
    )
    edges = package_edges(root, "pkg")
    assert ("pkg.f", "pkg.d") in edges and ("pkg.d", "pkg.e") in edges and ("pkg.e", "pkg.f") in edges
    (cycle,) = package_cycles(root, "pkg")
    assert set(cycle.splitlines()[0].split(" -> ")) == {"pkg.d", "pkg.e", "pkg.f"}


def test_a_package_reexporting_its_submodules_is_no_cycle(tmp_path):
    # The __init__ imports a submodule that imports a sibling by its absolute name: Python has the
    # package in sys.modules by then, so this is the ordinary re-export pattern, not a cycle.
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/g/__init__.py": '"""Re-exports."""\nfrom pkg.g.api import run\n\n__all__ = ["run"]\n',
            "pkg/g/api.py": "from pkg.g.util import helper\n\ndef run():\n    return helper()\n",
            "pkg/g/util.py": "def helper():\n    return 1\n",
        },
    )
    assert module_cycles(root, "pkg") == [] and package_cycles(root, "pkg") == []


@pytest.mark.parametrize(
    "text, ok",
    [
        ('"""Doc."""\nfrom a import b\n\n__all__ = ["b"]\n', True),
        ('"""Doc."""\nimport a\n__all__: list[str] = []\n__all__ += ["x"]\n', True),
        ('"""Doc."""\ndef f():\n    pass\n', False),
        ('"""Doc."""\nclass C:\n    pass\n', False),
        ('"""Doc."""\nX = 1\n', False),
        ('"""Doc."""\nprint("side effect")\n', False),
    ],
)
def test_the_init_check(tmp_path, text, ok):
    path = tmp_path / "__init__.py"
    path.write_text(text)
    assert (_init_offences(path, tmp_path) == []) is ok
