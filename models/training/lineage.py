"""Lineage tags that tie every MLflow run to the exact code, data and orchestration run behind it.

Read from the environment and from git only; Prefect is never imported here: Prefect sets
``PREFECT__FLOW_RUN_ID`` in flow-run processes and the deployment sets ``TO_BIKES_DEPLOYMENT`` and
``TO_BIKES_GIT_COMMIT`` (the worker's code bundle has no ``.git``). Nothing secret is read: only the
named variables, and the command line masked by ``models.core.secrets``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from models.core.secrets import mask_arguments
from models.core.settings import PROJECT_ROOT

UNKNOWN = "unknown"
NONE = "none"
GIT_TIMEOUT_S = 10


def run_git(args: Sequence[str], cwd: Path = PROJECT_ROOT) -> str | None:
    """Output of one git command in the project, or None when git or the repository is missing."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def read_git_state(env: Mapping[str, str] | None = None, cwd: Path = PROJECT_ROOT) -> tuple[str, str]:
    """``(commit, dirty)``: the deployment's ``TO_BIKES_GIT_COMMIT`` first, else the checkout's HEAD.

    ``dirty`` is "true"/"false" from ``git status`` in a checkout; with a commit from the environment
    it is ``TO_BIKES_GIT_DIRTY`` when the deployment sets it, else "unknown".
    """
    env = os.environ if env is None else env
    if env.get("TO_BIKES_GIT_COMMIT"):
        return env["TO_BIKES_GIT_COMMIT"], env.get("TO_BIKES_GIT_DIRTY") or UNKNOWN
    commit = run_git(["rev-parse", "HEAD"], cwd)
    if not commit:
        return UNKNOWN, UNKNOWN
    status = run_git(["status", "--porcelain"], cwd)
    return commit, UNKNOWN if status is None else str(bool(status)).lower()


def describe_command(argv: Sequence[str] | None = None) -> str:
    """The command line that started this process, with secrets masked (MLflow tags hold 5000 chars)."""
    if argv is None:
        argv = list(sys.argv)
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if argv and spec is not None and spec.name:  # started as ``python -m package.module``
            argv[0:1] = ["-m", spec.name.removesuffix(".__main__")]
    executable = Path(sys.executable).name
    return " ".join([executable, *mask_arguments(argv)])[:5000]


def read_flow_run_id(env: Mapping[str, str] | None = None) -> str:
    """The Prefect flow run this process works for (set by Prefect or the deployment), else "none"."""
    env = os.environ if env is None else env
    return env.get("PREFECT__FLOW_RUN_ID") or env.get("TO_BIKES_FLOW_RUN_ID") or NONE


def collect_lineage(
    data_digest: str, env: Mapping[str, str] | None = None, argv: Sequence[str] | None = None
) -> dict[str, str]:
    """The lineage tags every training run carries (names fixed by the team contract)."""
    env = os.environ if env is None else env
    commit, dirty = read_git_state(env)
    flow_run_id = read_flow_run_id(env)
    return {
        "git.commit": commit,
        "git.dirty": dirty,
        "data.digest": data_digest,
        "command": describe_command(argv),
        "prefect.flow_run_id": flow_run_id,
        "prefect.deployment": env.get("TO_BIKES_DEPLOYMENT") or NONE,
    }
