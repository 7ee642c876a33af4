"""Remove from the image's venv what no installed package imports: test suites, sources, stubs, notebooks.

Run once by agent/Dockerfile on /opt/venv's site-packages, before the bytecode is written. A folder
named ``tests`` or ``test`` goes only if no module outside such folders imports it: Evidently's
``evidently.legacy.tests`` is its data-test feature, imported by its report code, so it stays
(deleting every ``tests`` folder broke ``import evidently``). Also removed: Cython and C/C++ sources
and headers (``.pyx .pxd .pxi .c .cpp .h .hpp``), type stubs (``.pyi``) and example notebooks
(``.ipynb``), none of which Python imports; and the web front ends that only a server or Jupyter
serves (``SERVED_ASSETS``): neither a worker nor a flow run starts those servers, and no module
reads those files otherwise (Evidently's report HTML inlines ``evidently/nbextension/static``,
which stays). Prints what it removed, in MB.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

TEST_DIRS = frozenset({"tests", "test"})
DROPPED_SUFFIXES = frozenset({".pyx", ".pxd", ".pxi", ".c", ".cpp", ".h", ".hpp", ".pyi", ".ipynb"})
# Static files served over HTTP: Prefect server's UI (``prefect server start`` in this image serves
# the API only), the Evidently UI service (``evidently ui``), plotly's JupyterLab/Notebook extension.
SERVED_ASSETS = (
    "prefect/server/ui",
    "prefect/server/ui-v2",
    "evidently/ui/service/assets",
    "evidently/legacy/ui/assets",
    "jupyterlab_plotly/labextension",
    "jupyterlab_plotly/nbextension",
)
# Only files whose text names a test folder near an import are parsed (a few hundred of ~28,000).
MENTIONS_TESTS = re.compile(rb"import[^\n]*\btests?\b|\btests?\b[^\n]*import")


def module_name(path: Path, site: Path) -> str:
    """The dotted module name of a .py file (a package for __init__.py) under site-packages."""
    parts = list(path.relative_to(site).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, site: Path) -> set[str]:
    """Every module name the file imports, relative imports resolved (``from a import b``: a and a.b)."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return set()
    package = module_name(path, site).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def in_test_dir(path: Path, site: Path) -> bool:
    return any(part in TEST_DIRS for part in path.relative_to(site).parts[:-1])


def imported_test_dirs(site: Path) -> set[str]:
    """Dotted names of the test folders that code outside any test folder imports."""
    wanted: set[str] = set()
    for path in site.rglob("*.py"):
        if in_test_dir(path, site) or not MENTIONS_TESTS.search(path.read_bytes()):
            continue
        for name in imported_names(path, site):
            parts = name.split(".")
            for i, part in enumerate(parts):
                if part in TEST_DIRS:
                    wanted.add(".".join(parts[: i + 1]))
    return wanted


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def prune(site: Path) -> dict[str, int]:
    """Delete the unimported test folders and the dropped files; bytes removed per kind."""
    keep = imported_test_dirs(site)
    removed = {"test folders": 0, "sources, stubs, notebooks": 0, "served web assets": 0}
    for folder in sorted(p for p in site.rglob("*") if p.is_dir() and p.name in TEST_DIRS):
        if folder.exists() and module_name(folder / "__init__.py", site) not in keep:
            removed["test folders"] += size_of(folder)
            shutil.rmtree(folder)
    for path in [p for p in site.rglob("*") if p.suffix in DROPPED_SUFFIXES and p.is_file()]:
        removed["sources, stubs, notebooks"] += size_of(path)
        path.unlink()
    for folder in (site / name for name in SERVED_ASSETS):
        if folder.is_dir():
            removed["served web assets"] += size_of(folder)
            shutil.rmtree(folder)
    print(f"prune: kept imported test folders {sorted(keep)}")
    return removed


def main(argv: list[str]) -> int:
    site = Path(argv[1]) if len(argv) > 1 else Path(sys.prefix) / "lib/python3.11/site-packages"
    for kind, size in prune(site).items():
        print(f"prune: {kind}: {size / 1e6:.1f} MB removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
