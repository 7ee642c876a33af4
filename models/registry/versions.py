"""A registered model's versions: made once per training run, tagged with its lineage and its gate decision.

Kept apart from ``models.registry.register`` (which puts the steps in order and moves the aliases).
Every write is skipped when its value is already in place, so a rerun writes only what moved.
One training is one version: a run that trained what a version already holds (the same data, months,
code and parameters) is registered as that version (``find_training_version``), not as a new one.
The gate's decision is history: the first registration's decision tags (``DECISION_TAGS``) are written
once and never rewritten; a later registration of the same run adds a record of its own to the run
(``gate.rerun.<UTC time>``: its verdict, reason and flow run), so every outcome stays readable.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.registry.gate import COMPARED_ON_TAG, NONE, RERUN_RUN_SUFFIX, RERUN_TAG_PREFIX, Decision
from models.training.lineage import read_flow_run_id

READY_TIMEOUT_S = 120.0
POLL_S = 0.5
# What a version carries from its run: lineage, and the months it trained and was validated on.
VERSION_TAGS = (
    "git.commit",
    "git.dirty",
    "data.digest",
    "data.train_months",
    "data.valid_month",
    "prefect.flow_run_id",
    "prefect.deployment",
)
# What makes two runs the same training (their models the same): version tags and run parameters.
SAME_TRAINING_TAGS = ("data.digest", "data.train_months", "data.valid_month", "git.commit", "git.dirty")
SAME_TRAINING_PARAMS = ("seed", "max_evals", "time_budget_s")
SAME_TRAINING_TAG = "registry.same_training_as"  # on a run whose training a version of another run holds
DECISION_TAG, REASON_TAG = "gate.decision", "gate.reason"
DECISION_TAGS = (DECISION_TAG, REASON_TAG, COMPARED_ON_TAG)  # the first registration's, never rewritten


def find_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    """The earliest version of ``name`` made from ``run_id``, if there is one."""
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return min(versions, key=lambda v: int(v.version)) if versions else None


def find_training_version(client: MlflowClient, name: str, run: Run) -> ModelVersion | None:
    """The version of ``name`` that holds this run's training: made from the run, or else the earliest
    made from another run of the same training (``SAME_TRAINING_TAGS`` and ``SAME_TRAINING_PARAMS``
    equal: the same data digest and months, code and parameters), so one training input is one version
    however many runs trained it (two runs whose cache keys differed, a cache record lost)."""
    own = find_version(client, name, run.info.run_id)
    digest = run.data.tags.get("data.digest")
    if own is not None or not digest:
        return own
    wanted = [run.data.tags.get(key) for key in SAME_TRAINING_TAGS]
    found = client.search_model_versions(f"name = '{name}' and tags.`data.digest` = '{digest}'")
    for version in sorted(found, key=lambda v: int(v.version)):
        same_tags = [version.tags.get(key) for key in SAME_TRAINING_TAGS] == wanted
        if not same_tags or not version.run_id or version.status == "FAILED_REGISTRATION":
            continue
        other = client.get_run(version.run_id)
        if other.info.lifecycle_stage != "active":  # a deleted run's version does not stand for it
            continue
        if all(other.data.params.get(key) == run.data.params.get(key) for key in SAME_TRAINING_PARAMS):
            return version
    return None


def create_version(client: MlflowClient, name: str, run: Run) -> ModelVersion:
    """A new version of ``name`` from the run's logged model, tagged with the run's lineage."""
    try:
        client.create_registered_model(name, description="Bike Share Toronto: P(member) for a trip.")
    except MlflowException as exc:
        if exc.error_code not in {"RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"}:
            raise
    tags = {key: run.data.tags[key] for key in VERSION_TAGS if key in run.data.tags}
    return client.create_model_version(
        name,
        source=run.data.tags["model.uri"],
        run_id=run.info.run_id,
        tags={**tags, "validation.month": run.data.tags.get("validation.month", "")},
        model_id=run.data.tags.get("model.id") or None,
    )


def wait_until_ready(client: Any, name: str, version: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Block until the version is READY; a failed or stuck registration is a UserError."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION":
            raise UserError(
                f"Registering version {version} of {name} failed; run models.registry.register again."
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"Version {version} of {name} is still {status} after {timeout_s:.0f} s; rerun later."
            )
        time.sleep(POLL_S)


def read_aliases(client: MlflowClient, version: ModelVersion, champion: ModelVersion | None) -> set[str]:
    """The aliases ``version`` holds now: a search does not return them, the champion's read does."""
    if champion is not None and str(champion.version) == str(version.version):
        return set(champion.aliases)
    return set(client.get_model_version(version.name, version.version).aliases)


def record_decision(client: MlflowClient, version: ModelVersion, run: Run, decision: Decision) -> str | None:
    """The decision on the version and its run, or, for a rerun, a record of its own on the run (and
    on the version when the run is another run of the version's training).

    The first registration's tags are completed when a failure cut them short, never changed. A rerun
    (the version already holds a decision) adds ``gate.rerun.<UTC time>``; its key is returned.
    """
    values = {DECISION_TAG: decision.verdict, REASON_TAG: decision.reason}
    values[COMPARED_ON_TAG] = decision.compared_on or NONE
    rerun = DECISION_TAG in version.tags
    for key, value in values.items():
        if key not in version.tags:
            client.set_model_version_tag(version.name, version.version, key, value)
        if key != COMPARED_ON_TAG and key not in run.data.tags:
            client.set_tag(run.info.run_id, key, value)
    if not rerun:
        return None
    key = RERUN_TAG_PREFIX + datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    record = f"{decision.verdict}: {decision.reason} (flow run {read_flow_run_id()})"
    client.set_tag(run.info.run_id, key, record)
    if version.run_id != run.info.run_id:  # another run of its training: the version shows it too
        client.set_model_version_tag(
            version.name, version.version, key, f"{record}{RERUN_RUN_SUFFIX}{run.info.run_id}"
        )
    return key


def describe_flow_run_work(client: MlflowClient, experiment: str, name: str, flow_run_id: str) -> str:
    """What a flow run left in MLflow: its training runs (lineage tag) and their versions of ``name``.

    Read by a flow run that lost the Prefect API, so that its last line says what was done.
    """
    found = client.get_experiment_by_name(experiment)
    runs = []
    if found is not None:
        runs = client.search_runs(
            [found.experiment_id], filter_string=f"tags.`prefect.flow_run_id` = '{flow_run_id}'"
        )
    if not runs:
        return "no MLflow run of this flow run"
    parts = []
    for run in runs:
        version = find_version(client, name, run.info.run_id)
        held = f"version {version.version} of {name}" if version else "no version"
        parts.append(f"run {run.info.run_id} {run.info.status} with {held}")
    return "; ".join(parts)
