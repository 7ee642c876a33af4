"""Register a training run's model and move ``champion`` only when the new model is really better.

``python -m models register --run-id RUN`` adds the run's model as a version of ``to-bikes-member``
(once: the same run again finds its existing version, tagged with the months it trained and was
validated on, and another run of the same training, on the same data, months, code and parameters,
finds that version too and is tagged ``registry.same_training_as``), points ``challenger`` at it,
and moves ``champion`` only if the run's ROC AUC beats the baseline on its validation month and the
current champion on a month neither model trained on (both scored by ``models.training.train``; the
rule is ``models.registry.gate``'s) by more than ``--margin``.
When no such month exists the champion stays. The decision, its reason and the month compared on are
tagged on the version and the run, once: a rerun never rewrites them but records its own outcome
("already-champion" when the version holds the alias already) in a tag of its own on the run
(``models.registry.versions.record_decision``). Every step is safe to repeat, and ``champion`` moves
last, in one call: a failure anywhere leaves the old champion in place and a rerun finishes the job;
an alias or tag already in place is not written again.

Every call goes through MLflow's ``MlflowClient`` (``mlflow_client.connect_tracking``); a failure
the server answers is one sentence naming the server, with any password masked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from models.core.errors import UserError
from models.core.names import CHALLENGER, CHAMPION, DEFAULT_MARGIN, MODEL_NAME
from models.core.secrets import mask_secrets
from models.core.settings import Settings
from models.registry.gate import decide_promotion
from models.registry.mlflow_client import (
    build_run_url,
    build_version_url,
    connect_tracking,
    describe_failure,
    find_alias_version,
    is_not_found,
)
from models.registry.versions import (
    SAME_TRAINING_TAG,
    create_version,
    find_training_version,
    read_aliases,
    record_decision,
    wait_until_ready,
)

log = logging.getLogger(__name__)

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class RegistrationResult:
    """The version for the run, the gate's decision and why, on which month with which scores, and links."""

    version: str
    promoted: bool
    reason: str
    champion_version: str | None
    name: str = ""
    run_id: str = ""
    decision: str = ""  # "promoted", "kept-champion" or "already-champion" (models.registry.gate)
    compared_on: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    run_url: str | None = None
    version_url: str | None = None
    rerun_record: str | None = None  # a rerun's own tag on the run (the first decision stays as it was)
    previous_champion_version: str | None = None  # before this registration: differs when the alias moved


def read_run(client: MlflowClient, run_id: str) -> Run | None:
    """The run, or None when the tracking store does not have it; any other failure is one sentence."""
    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise describe_failure(client.tracking_uri, f"reading run {run_id}", exc) from exc


def fetch_run(client: MlflowClient, run_id: str) -> Run:
    """The training run, which must exist and hold a logged model."""
    run = read_run(client, run_id)
    if run is None:
        where = mask_secrets(client.tracking_uri)
        raise UserError(f"Run {run_id!r} is not in the tracking store at {where}.")
    if "model.uri" not in run.data.tags:
        raise UserError(
            f"Run {run_id} has no logged model (tag model.uri); was it made by models.training.train?"
        )
    return run


def reuse_problem(
    run_id: str, *, name: str, tracking_uri: str | None = None, settings: Settings | None = None
) -> str | None:
    """Why a cached training run cannot stand for a new one, or None when it can.

    It can when it is still in the tracking store, FINISHED, its logged model READY, and either its
    training has a version already (``find_training_version``) or the gate can still judge it: there
    is no champion, the champion is this run's own version, or it is the champion the run scored. A
    registered training is judged once: training it again because the champion moved since would
    register a second version of one training input, so a rerun reuses the version and records its
    own outcome on it. A run with no version yet that scored a replaced champion is trained again, so
    that its first decision compares with today's champion.
    """
    client = connect_tracking(tracking_uri, settings)
    run = read_run(client, run_id)
    if run is None:
        return f"run {run_id} is no longer in the tracking store"
    if run.info.lifecycle_stage != "active":
        return f"run {run_id} was deleted"
    if run.info.status != "FINISHED" or not run.data.tags.get("model.id"):
        return f"run {run_id} is {run.info.status} with model {run.data.tags.get('model.id') or 'none'}"
    try:
        model = client.get_logged_model(run.data.tags["model.id"])
        if str(model.status) != "READY" or not client.list_logged_model_artifacts(model.model_id):
            return f"the model {model.model_id} of run {run_id} is {model.status} or has no artifacts"
    except MlflowException as exc:
        if not is_not_found(exc):
            raise describe_failure(client.tracking_uri, f"reading the model of run {run_id}", exc) from exc
        return f"the model of run {run_id} is no longer in the tracking store"
    champion = find_alias_version(client, name, CHAMPION)
    if champion is None or champion.run_id == run_id or find_training_version(client, name, run):
        return None
    scored = run.data.tags.get("champion.version")
    if scored != str(champion.version):
        return f"the champion is now version {champion.version}, the run scored {scored or 'none'}"
    return None


def note_same_training(client: MlflowClient, run: Run, version: ModelVersion) -> None:
    """Tag a run whose training another run's version holds, once, and say so in the log.

    The gate judges the version on this run's scores (the champion it scored may be newer) as a
    rerun: the version's first decision stays, and this outcome is recorded on the run and on the
    version (``models.registry.versions.record_decision``).
    """
    value = f"version {version.version} (run {version.run_id})"
    if run.data.tags.get(SAME_TRAINING_TAG) != value:
        client.set_tag(run.info.run_id, SAME_TRAINING_TAG, value)
    log.info(
        "run %s trained what version %s of %s holds (run %s: the same data, months, code and "
        "parameters); no new version",
        run.info.run_id,
        version.version,
        version.name,
        version.run_id,
    )


def register_model(
    run_id: str,
    *,
    name: str = MODEL_NAME,
    margin: float = DEFAULT_MARGIN,
    tracking_uri: str | None = None,
    settings: Settings | None = None,
) -> RegistrationResult:
    """Register the run's model (idempotent), alias it ``challenger``, promote it if the gate allows."""
    if not _MODEL_NAME.match(name):
        raise UserError(f"Model name {name!r} must be letters, digits, '.', '_' or '-'.")
    if margin < 0:
        raise UserError(f"--margin must not be negative (got {margin}).")
    client = connect_tracking(tracking_uri, settings)
    run = fetch_run(client, run_id)
    version = find_training_version(client, name, run) or create_version(client, name, run)
    if version.run_id != run_id:  # another run's version holds this training: this run's scores judge it
        note_same_training(client, run, version)
    if version.status != "READY":
        wait_until_ready(client, name, version.version)
    current = find_alias_version(client, name, CHAMPION)
    if CHALLENGER not in read_aliases(client, version, current):
        client.set_registered_model_alias(name, CHALLENGER, version.version)
    current_version = previous = str(current.version) if current else None
    decision = decide_promotion(
        run.data.metrics, run.data.tags, str(version.version), current_version, margin
    )
    rerun_record = record_decision(client, version, run, decision)
    if decision.promote and current_version != str(version.version):
        client.set_registered_model_alias(name, CHAMPION, version.version)
        current_version = str(version.version)
    log.info("%s version %s (%s): %s", name, version.version, decision.verdict, decision.reason)
    return RegistrationResult(
        version=str(version.version),
        promoted=decision.promote,
        reason=decision.reason,
        champion_version=current_version,
        name=name,
        run_id=run_id,
        decision=decision.verdict,
        compared_on=decision.compared_on,
        challenger_score=decision.challenger_score,
        champion_score=decision.champion_score,
        run_url=build_run_url(client.tracking_uri, run.info.experiment_id, run_id),
        version_url=build_version_url(client.tracking_uri, name, str(version.version)),
        rerun_record=rerun_record,
        previous_champion_version=previous,
    )
