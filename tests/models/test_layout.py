"""The shape of the code: no import circle in the repository, layers that import downward only,
test modules that share helpers through conftest or helper modules, and ``models/`` in stage packages
whose modules fit on a few screens."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import models

pytestmark = pytest.mark.unit

ROOT = Path(models.__file__).resolve().parent
MAX_LINES = 250


REPO = ROOT.parent
PACKAGES = ("models", "orchestration", "stack", "bench", "agent")  # the Python of the repository
SKIPPED = {".venv", "node_modules", "__pycache__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(*folders: str) -> dict[str, Path]:
    """Module name -> file of every ``.py`` under ``folders`` (no venvs, no node_modules)."""
    files = (path for folder in folders for path in (REPO / folder).rglob("*.py"))
    return {module_name(path): path for path in files if not SKIPPED & set(path.relative_to(REPO).parts)}


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The ``known`` modules a file imports anywhere (module level, functions, TYPE_CHECKING),
    relative imports resolved against the file's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def import_graph(*folders: str) -> dict[str, set[str]]:
    files = python_files(*folders)
    return {name: imported_modules(path, name, set(files)) - {name} for name, path in files.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start)):
            return circle
    return None


def test_no_import_circle_anywhere_in_the_repository():
    circle = find_circle(import_graph(*PACKAGES))
    assert circle is None, " -> ".join(circle or [])


def test_stack_never_imports_orchestration_and_models_imports_neither():
    graph = import_graph(*PACKAGES)
    forbidden = {"stack": ("orchestration",), "models": ("orchestration", "stack")}
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if target.split(".")[0] in forbidden.get(name.split(".")[0], ())
    )
    assert wrong == []


def test_the_import_reader_sees_imports_inside_functions_and_relative_ones(tmp_path: Path):
    package = tmp_path / "pkg"
    package.mkdir()
    source = "def f():\n    import pkg.b\n    from .c import x\n    from . import d\n"
    (package / "a.py").write_text(source)
    known = {"pkg.b", "pkg.c", "pkg.d", "pkg.e"}
    assert imported_modules(package / "a.py", "pkg.a", known) == {"pkg.b", "pkg.c", "pkg.d"}


def test_no_test_module_imports_another():
    tests = python_files("tests")
    modules = {name for name, path in tests.items() if path.name.startswith("test_")}
    wrong = sorted(
        f"{name} imports {target}"
        for name, path in tests.items()
        if path.name.startswith("test_")
        for target in imported_modules(path, name, set(tests))
        if target in modules
    )
    assert wrong == []


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_circle(graph) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None


def test_only_stage_packages_sit_in_models():
    # Beside the stages only the command line: ``python -m models`` (__main__.py) and its app (cli.py).
    loose = sorted(
        p.name for p in ROOT.glob("*.py") if p.name not in {"__init__.py", "__main__.py", "cli.py"}
    )
    assert loose == []
    for package in sorted(p for p in ROOT.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
        assert doc and "\n" not in doc.strip(), f"{package.name}/__init__.py needs a one-line docstring"


def test_every_module_fits_on_a_few_screens():
    long = {
        name: n
        for name, p in python_files("models").items()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
