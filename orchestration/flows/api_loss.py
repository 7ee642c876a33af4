"""What a flow run does when the Prefect API stays away past its client's retries (issue 22).

Flow runs get ``PREFECT_CLIENT_MAX_RETRIES=7`` (``OUTAGE_ENV`` in ``stack.worker``):
each API call waits out about 4 minutes of outage, so a 3-minute outage is survived. When a call
still fails, the flow-run process ends here, in one line naming the server and what this flow run
left in MLflow (its training runs and their versions, found by the ``prefect.flow_run_id`` lineage
tag), with exit code ``EXIT_API_LOST``, but only in the process a worker started for the flow run
(``started_by_worker``): a flow called in-process raises instead. It ends with ``os._exit`` rather
than an exception: Prefect's engine would report the failure over the same dead API, waiting out the
retries once more per call, and end in a traceback; no final state can reach a server that does not answer.

Once the server is back, Prefect shows the lost run Running (or Crashed, by the zombie automation
of ``make deploy``). The next run of the same work reuses its cached training run, registers it again
(idempotent: the same version) and records the version on the lost run as an artifact
(``record_lost_registration``), besides naming it in its own Completed state's message.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from models.core.settings import Settings
from orchestration.flows.settings import FLOW_RUN_ENV

if TYPE_CHECKING:
    from models.registry.register import RegistrationResult

log = logging.getLogger(__name__)

API_OUTAGE_S = 210  # the outage flow runs, `make run` and the zombie automation wait out (3 min + slack)
EXIT_API_LOST = 75  # EX_TEMPFAIL: run it again once the server is back
LOST_RUN_KEY = "registered-after-api-loss"
ENGINE_FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"  # what a worker gives `python -m prefect.engine`


def is_api_outage(exc: BaseException | None) -> bool:
    """True when ``exc`` or what caused it means the Prefect API did not answer (connection, timeout, 5xx)."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    while exc is not None:
        if isinstance(exc, PrefectHTTPStatusError) and exc.response.status_code >= 500:
            return True
        if isinstance(exc, httpx.TransportError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def describe_flow_run_work(settings: Settings, flow_run_id: str) -> str:
    """This flow run's training runs and versions in MLflow, or why they could not be read."""
    from models.registry.mlflow_client import connect_tracking
    from models.registry.versions import describe_flow_run_work as describe

    try:
        client = connect_tracking(settings.mlflow_tracking_uri, settings)
        return describe(client, settings.experiment, settings.model_name, flow_run_id)
    except Exception as exc:  # the line is said either way; MLflow may be down too
        return f"MLflow could not be read ({type(exc).__name__})"


def describe_api_loss(settings: Settings, exc: BaseException) -> str:
    """The one line a flow run ends with when the Prefect API is gone."""
    from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES

    flow_run_id = os.environ.get(FLOW_RUN_ENV, "")
    return (
        f"The Prefect API at {PREFECT_API_URL.value()} did not answer after "
        f"{PREFECT_CLIENT_MAX_RETRIES.value()} retries ({type(exc).__name__}): flow run {flow_run_id} "
        f"stops here without a final state; it left {describe_flow_run_work(settings, flow_run_id)}; "
        "run it again once the server is back (the next run records what this one registered)."
    )


def started_by_worker() -> bool:
    """True in the process a worker started for a flow run.

    A worker starts the deployments' command (``to-bikes-engine``, which becomes ``python -m
    prefect.engine`` once the API answers) with the flow run's id in ``PREFECT__FLOW_RUN_ID``; that
    entry point is the only one that reads it. A flow called in-process
    (a test, a notebook, ``flow()``) has no such variable.
    """
    return bool(os.environ.get(ENGINE_FLOW_RUN_ENV))


@contextmanager
def ending_on_api_loss(settings: Settings) -> Iterator[None]:
    """Every flow's work runs in here: in a worker-started process, an API lost for good ends it in one line.

    Called in-process, the exception goes to the caller like any other: the process is the caller's.
    """
    try:
        yield
    except Exception as exc:
        if not is_api_outage(exc) or not started_by_worker():
            raise
        end_process(describe_api_loss(settings, exc))


def end_process(line: str) -> None:
    """Say ``line`` and end the process now (the module docstring says why not by an exception)."""
    from prefect import get_run_logger

    get_run_logger().error("%s", line)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_API_LOST)


def read_training_flow_run(settings: Settings, run_id: str) -> str:
    """The ``prefect.flow_run_id`` lineage tag of a training run (the flow run that trained it)."""
    from models.registry.mlflow_client import connect_tracking
    from models.training.stale_runs import FLOW_RUN_TAG

    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    return client.get_run(run_id).data.tags.get(FLOW_RUN_TAG, "")


def record_lost_registration(settings: Settings, registration: RegistrationResult) -> bool:
    """``record_on_lost_run``; a failure (other than the API gone) is a warning, the work being done."""
    try:
        return record_on_lost_run(settings, registration)
    except Exception as exc:
        if is_api_outage(exc):
            raise
        log.warning("version %s was not recorded on its training's flow run: %s", registration.version, exc)
        return False


def record_on_lost_run(settings: Settings, registration: RegistrationResult) -> bool:
    """Name a reused run's version on the flow run that trained it, when that run could not say so.

    Nothing is written when the training run is this flow run's, its flow run Completed (it published
    the version itself), Prefect no longer has it, or the record is already there.
    """
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.actions import ArtifactCreate
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.exceptions import ObjectNotFound
    from prefect.runtime import flow_run

    lost_id = read_training_flow_run(settings, registration.run_id)
    if lost_id in {"", "none", os.environ.get(FLOW_RUN_ENV)}:
        return False
    with get_client(sync_client=True) as client:
        try:
            lost = client.read_flow_run(UUID(lost_id))
        except (ValueError, ObjectNotFound):
            return False
        recorded = ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[lost.id]), key=ArtifactFilterKey(any_=[LOST_RUN_KEY])
        )
        if (lost.state is not None and lost.state.is_completed()) or client.read_artifacts(
            artifact_filter=recorded
        ):
            return False
        text = (
            f"Version {registration.version} of `{registration.name}` was registered from this flow run's "
            f"training run `{registration.run_id}`, which lost the Prefect API before it could say so "
            f"(recorded by flow run {flow_run.id}). The gate decided: {registration.reason}"
        )
        record = ArtifactCreate(key=LOST_RUN_KEY, type="markdown", data=text, flow_run_id=lost.id)
        client.create_artifact(record)
    log.info("recorded version %s on flow run %s", registration.version, lost_id)
    return True
