"""End the training runs a dead process left RUNNING: FAILED, with a tag saying which flow run ended how.

MLflow ends a run FAILED when an exception (or Prefect's SIGTERM bridge) leaves ``mlflow.start_run``,
but only if the tracking server answers then: a server that was down at that moment, or a process that
was killed, leaves the run RUNNING for good. Such a run is recognised by its ``prefect.flow_run_id`` tag
(``models.training.lineage``) once that flow run is over; ``models`` does not import Prefect, so the
caller says how a flow run ended (``ended``: flow run id -> final state name, or None while it runs).
Runs without a flow run (the command line) are left alone: nothing here knows whether they still run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mlflow import MlflowClient

log = logging.getLogger(__name__)

FLOW_RUN_TAG = "prefect.flow_run_id"
SWEPT_TAG = "to_bikes.swept"
MAX_RUNS = 1000


def find_running_runs(client: MlflowClient, experiment: str) -> list:
    """The experiment's runs whose status is still RUNNING (none when the experiment does not exist)."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs(
        [found.experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=MAX_RUNS
    )


def sweep_stale_runs(client: MlflowClient, experiment: str, ended: Callable[[str], str | None]) -> list[str]:
    """Mark FAILED every RUNNING run of ``experiment`` whose flow run is over; returns their ids."""
    swept = []
    for run in find_running_runs(client, experiment):
        flow_run_id = run.data.tags.get(FLOW_RUN_TAG, "")
        state = ended(flow_run_id) if flow_run_id else None
        if state is None:
            continue
        client.set_tag(run.info.run_id, SWEPT_TAG, f"flow run {flow_run_id} ended {state}")
        client.set_terminated(run.info.run_id, status="FAILED")
        log.warning(
            "run %s was left RUNNING by flow run %s (%s): marked FAILED", run.info.run_id, flow_run_id, state
        )
        swept.append(run.info.run_id)
    return swept
