"""A training or pipeline flow run says which version it registered and what the gate decided in its
name and tags, so the runs list and the run page's header show it without opening Details."""

from __future__ import annotations

import pytest

from orchestration.flows.reports import registered_state, run_label
from stack.embedded import make_stack_env, running_stack

SUMMARY = {"period": "2025-12", "version": "3", "decision": "promoted", "run_id": "abc"}


@pytest.mark.unit
def test_the_label_names_the_period_the_version_and_the_decision() -> None:
    assert run_label(SUMMARY) == ("2025-12 v3 promoted", ["model-version:3", "gate:promoted"])
    trained = {"valid_month": "2025-11", "version": "4", "decision": "kept-champion"}
    assert run_label(trained)[0] == "2025-11 v4 kept-champion"


@pytest.mark.integration
def test_a_flow_run_that_registered_is_renamed_and_tagged_on_the_server(tmp_path) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    @flow(name="to-bikes-pipeline")
    def registering_flow() -> dict:
        return registered_state(SUMMARY, "to-bikes-member")

    env = make_stack_env(tmp_path, ("prefect",))
    with running_stack(env, ("prefect",)), temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        state = registering_flow(return_state=True)
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(state.state_details.flow_run_id)
        EventsWorker.drain_all()  # send the run's events and logs while the server still listens
        APILogWorker.drain_all()
    assert state.message == "registered version 3 of to-bikes-member: promoted"
    assert run.name == "2025-12 v3 promoted"
    assert {"model-version:3", "gate:promoted"} <= set(run.tags)
