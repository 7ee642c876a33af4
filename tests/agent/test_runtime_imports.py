"""The image's bytecode covers what a flow run imports before it is Running (agent/runtime_imports.py).

A module missing from ``BEFORE_RUNNING`` still works in the image, but is compiled in memory in every
flow-run container before the run can start: this test names it instead.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from models.core.settings import PROJECT_ROOT
from stack.prefect_yaml import read_spec

pytestmark = [pytest.mark.unit]

# The backfill (orchestration/flows/backfill.py) is left out on purpose: its Dask compiles at import
# (runtime_imports.py).
UNCOMPILED = {"orchestration.flows.backfill"}


def flow_modules() -> list[str]:
    """The modules of prefect.yaml's flow entrypoints (``path/to/file.py:function``), but the backfill's."""
    paths = {d["entrypoint"].split(":")[0] for d in read_spec()["deployments"]}
    modules = {path.removesuffix(".py").replace("/", ".") for path in paths}
    return sorted(modules - UNCOMPILED)


PROBE = """
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import runtime_imports
runtime_imports.import_all(runtime_imports.BEFORE_RUNNING)
sys.modules["boto3"].client("s3", region_name="us-east-1")
before = set(sys.modules)
for name in sys.argv[3:]:
    __import__(name)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_flow_entrypoints_import_nothing_outside_the_compiled_modules() -> None:
    entrypoints = flow_modules()
    assert "orchestration.flows.pipeline" in entrypoints and len(entrypoints) >= 4, entrypoints
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(PROJECT_ROOT / "agent"), str(PROJECT_ROOT), *entrypoints],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    added = json.loads(result.stdout.splitlines()[-1])
    ours = {"models", "orchestration"}
    third_party = sorted(name for name in added if name.split(".")[0] not in sys.stdlib_module_names | ours)
    assert third_party == []
