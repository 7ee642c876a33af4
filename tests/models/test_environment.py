"""The model code runs without Prefect, and both environments pin the same model versions."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
REQUIREMENTS = ROOT / "requirements"

pytestmark = pytest.mark.unit

# Imports every module under models/ (but __main__, which runs the app) with any import of prefect
# made to fail loudly, then checks that no prefect module got loaded through some other import chain either.
IMPORT_ALL_WITHOUT_PREFECT = """
import importlib, pkgutil, sys

class BlockPrefect:
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" or name.startswith(("prefect.", "prefect_")):
            raise ImportError(f"models/ must not import {name}")
        return None

sys.meta_path.insert(0, BlockPrefect())
import models
names = [m.name for m in pkgutil.walk_packages(models.__path__, "models.")]
names = [name for name in names if not name.endswith(".__main__")]  # running it runs the app
for name in names:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"prefect", "prefect_aws"})
assert not loaded, loaded
print(len(names))
"""


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_models_source_file_imports_prefect() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted(MODELS.rglob("*.py"))
        if _imported_names(path) & {"prefect", "prefect_aws"}
    ]
    assert offenders == []


def test_every_models_module_imports_without_prefect() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_PREFECT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 3  # settings, errors, features at least


def test_the_import_guard_catches_an_import_chain(tmp_path: Path) -> None:
    """The guard itself must fail when a module reaches prefect indirectly."""
    package = tmp_path / "models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "innocent.py").write_text("from models import chain  # noqa\n")
    (package / "chain.py").write_text("import prefect  # noqa\n")
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL_WITHOUT_PREFECT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "must not import prefect" in result.stderr


def _pins(lock: Path) -> dict[str, str]:
    pattern = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", re.MULTILINE)
    return {name.lower().replace("_", "-"): version for name, version in pattern.findall(lock.read_text())}


def test_model_environment_has_no_prefect() -> None:
    pins = _pins(REQUIREMENTS / "model.txt")
    assert not {name for name in pins if name.startswith("prefect")}
    with pytest.raises(ImportError):
        __import__("prefect")


def test_shared_packages_have_identical_pins_in_both_environments() -> None:
    model, agent = _pins(REQUIREMENTS / "model.txt"), _pins(REQUIREMENTS / "agent.txt")
    shared = model.keys() & agent.keys()
    assert {"pandas", "pyarrow", "scikit-learn", "mlflow", "boto3", "botocore"} <= shared
    assert {name: (model[name], agent[name]) for name in shared if model[name] != agent[name]} == {}
    assert {"prefect", "prefect-aws"} <= agent.keys()


def test_image_lock_is_the_runtime_on_the_model_pins() -> None:
    """The agent image's lock: what a flow run imports, at the model environment's versions."""
    model, image = _pins(REQUIREMENTS / "model.txt"), _pins(REQUIREMENTS / "image.txt")
    shared = model.keys() & image.keys()
    assert {"pandas", "pyarrow", "scikit-learn", "mlflow-skinny", "skops", "boto3", "botocore"} <= shared
    assert {name: (model[name], image[name]) for name in shared if model[name] != image[name]} == {}
    assert {"prefect", "prefect-aws"} <= image.keys()
    # Runtime only: no MLflow server (full mlflow, flask, gunicorn), no test or developer tools.
    unwanted = {"mlflow", "flask", "gunicorn", "graphene", "pytest", "ruff", "pip-tools", "awscli"}
    assert not image.keys() & unwanted


def test_every_lock_follows_the_superset() -> None:
    constraints = _pins(REQUIREMENTS / "constraints.txt")
    for lock in ("model.txt", "agent.txt", "bench.txt", "image.txt"):
        pins = _pins(REQUIREMENTS / lock)
        assert {n: v for n, v in pins.items() if constraints.get(n) != v} == {}, lock


def test_bench_engines_stay_out_of_the_model_and_agent_locks() -> None:
    """Polars and DuckDB are the bench's peers only (requirements/bench.txt), pinned by the superset."""
    bench, constraints = _pins(REQUIREMENTS / "bench.txt"), _pins(REQUIREMENTS / "constraints.txt")
    assert {"polars", "duckdb"} <= bench.keys() <= constraints.keys()
    for lock in ("model.txt", "agent.txt"):
        assert not bench.keys() & _pins(REQUIREMENTS / lock).keys(), lock
