"""The agent image: locked runtime, non-root, a health check, no project code and no secret inside."""

from __future__ import annotations

import json

import pytest

from tests.agent.conftest import BuiltImage
from tests.agent.docker_helpers import docker, inspect_image, scan_image_files

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_image_runs_as_non_root_with_health_check_and_worker_entrypoint(agent_image: BuiltImage) -> None:
    config = inspect_image(agent_image.name)["Config"]
    assert config["User"] == "agent"
    assert config["Healthcheck"]["Test"] == ["CMD", "to-bikes-agent", "health"]
    assert config["Entrypoint"] == ["to-bikes-agent"]
    assert config["Cmd"] == ["worker"]
    assert config["Labels"]["org.opencontainers.image.revision"] in agent_image.build_output
    uid = docker("run", "--rm", "--network", "host", agent_image.name, "id", "-u").stdout.strip()
    assert uid != "0"


def test_image_has_the_locked_runtime_but_not_the_project(agent_image: BuiltImage) -> None:
    probe = (
        "import importlib.metadata as m, importlib.util as u, json; "
        "print(json.dumps({p: m.version(p) for p in ('prefect', 'prefect-aws', 'mlflow-skinny', 'pandas')} "
        "| {n: u.find_spec(n) is not None for n in ('models', 'orchestration')}))"
    )
    result = docker("run", "--rm", "--network", "host", agent_image.name, "python", "-c", probe)
    found = json.loads(result.stdout)
    assert found == {
        "prefect": "3.9.1",
        "prefect-aws": "0.7.12",
        "mlflow-skinny": "3.17.2",
        "pandas": "3.1.1",
        "models": False,
        "orchestration": False,
    }


def test_worker_without_an_api_url_exits_2_with_one_sentence(agent_image: BuiltImage) -> None:
    result = docker("run", "--rm", "--network", "host", agent_image.name, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "to-bikes-agent: PREFECT_API_URL is not set; pass it with docker run -e PREFECT_API_URL=..."
    ]


def test_no_secret_in_history_metadata_or_files(agent_image: BuiltImage) -> None:
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", agent_image.name).stdout
    metadata = json.dumps(inspect_image(agent_image.name))
    for secret in agent_image.canaries:
        assert secret not in history
        assert secret not in metadata
    found = scan_image_files(agent_image.name, agent_image.canaries)
    assert found == {"project_code": [], "secret_files": [], "needles": [], "build_dirs": []}
