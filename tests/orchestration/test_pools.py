"""Work pool types: the setting, the deployments each type registers, the image tag they name."""

from __future__ import annotations

import pytest

from models.core.errors import UserError
from orchestration.deploy.pools import base_job_template, image_tag, select_deployments, write_prefect_file
from stack.prefect_yaml import POOL_TYPES, pool_name, read_pool_type, read_spec

pytestmark = pytest.mark.unit


def test_the_pool_type_comes_from_the_setting_and_defaults_to_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TO_BIKES_WORK_POOL_TYPE", raising=False)
    assert read_pool_type() == "process"
    monkeypatch.setenv("TO_BIKES_WORK_POOL_TYPE", "Docker")
    assert read_pool_type() == "docker"
    assert read_pool_type("ecs") == "ecs"
    monkeypatch.setenv("TO_BIKES_WORK_POOL_TYPE", "lambda")
    with pytest.raises(UserError, match="TO_BIKES_WORK_POOL_TYPE='lambda' is not a work pool type"):
        read_pool_type()


def test_each_type_deploys_the_same_named_deployments_on_its_own_pool_and_process_is_unchanged() -> None:
    spec = read_spec()
    for pool_type in POOL_TYPES:
        chosen = select_deployments(pool_type, spec)["deployments"]
        assert [(d["name"], d["work_pool"]["work_queue_name"]) for d in chosen] == [
            ("on-demand", "pipeline"),
            ("on-demand", "preprocess"),
            ("on-demand", "pipeline"),
            ("scheduled-daily", "ingest"),
            ("on-demand", "score"),
            ("on-demand", "backfill"),
        ]
        # A deployment lists a schedule only when it runs on it: the name and a tag say which.
        for d in chosen:
            scheduled_one = bool(d.get("schedules"))
            assert scheduled_one == d["name"].startswith("scheduled-") == ("scheduled" in d["tags"])
            assert all(s["active"] for s in d.get("schedules", []))
            assert scheduled_one or "on-demand" in d["tags"]
        scheduled = [
            (d["name"], d["work_pool"]["work_queue_name"])
            for d in chosen
            if any(s.get("active") for s in d.get("schedules", []))
        ]
        assert scheduled == [("scheduled-daily", "ingest")]  # months are events: pipeline and scoring follow
        assert {d["work_pool"]["name"] for d in chosen} == {pool_name(pool_type, spec)}
        image = {d["work_pool"]["job_variables"].get("image") for d in chosen}
        assert image == (
            {None} if pool_type == "process" else {"{{ $TO_BIKES_AGENT_IMAGE }}:{{ $TO_BIKES_IMAGE_TAG }}"}
        )
    assert pool_name("process", spec) == "to-bikes"


def test_the_written_prefect_file_holds_only_the_selected_deployments(tmp_path) -> None:
    import yaml

    written = yaml.safe_load(write_prefect_file("docker", tmp_path).read_text())
    assert {d["work_pool"]["name"] for d in written["deployments"]} == {"to-bikes-docker"}
    assert written["pull"] == read_spec()["pull"] and written["push"] == read_spec()["push"]


def test_templates_and_image_tag() -> None:
    assert base_job_template("docker")["variables"]["properties"]["network_mode"]["default"] == "host"
    assert "job_configuration" in base_job_template("process")
    assert image_tag("0123456789abcdef", False) == "0123456789ab"
    assert image_tag("0123456789abcdef", True) == "0123456789ab-dirty"
