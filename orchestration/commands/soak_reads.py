"""What the soak's invariants are checked on, read after the run: S3 (with an oracle preprocessing the
final raw files in this process), the MLflow registry and runs, and Prefect's flow runs."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.core.settings import Settings
from orchestration.commands import soak_checks as checks

PAGE = 200  # flow runs per API call, the server's maximum
NOTICE_WAIT_S = 120.0  # the server sends a failed run's message a moment after its state changes
# After a Prefect restart, a run's Failed event that follows (within 5 min) a state event the server
# handled before the restart is held by Prefect's causal ordering until its leader counts as lost
# (prefect.server.events.ordering.PRECEDING_EVENT_LOOKBACK, 15 min), then evaluated: the message comes late.
HELD_NOTICE_WAIT_S = 16 * 60.0
FAILED_SUBJECT = "to-bikes: flow run "  # orchestration.deploy.notifications.build_failed_run_notice


def content_digest(path: Path) -> tuple[int, str]:
    """(rows, a digest of every row's values, all columns) of a processed Parquet file; the sum of the row
    hashes does not depend on the order the rows were written in."""
    import pandas as pd

    frame = pd.read_parquet(path)
    hashed = pd.util.hash_pandas_object(frame[sorted(frame.columns)], index=False)
    return len(frame), f"{int(hashed.sum()) & (2**64 - 1):016x}"


def read_processed_rows(
    settings: Settings, periods: list[tuple[int, int]]
) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str] | None]]:
    """(oracle, S3) rows and content digest per (year, month): the oracle runs ``models`` preprocessing
    on a local copy of ``raw/<year>/`` (the final raw files), outside the stack's flows."""
    from models.core import s3
    from models.data.preprocess import preprocess

    client = s3.s3_client(settings)
    oracle: dict[str, tuple[int, str]] = {}
    processed: dict[str, tuple[int, str] | None] = {}
    with tempfile.TemporaryDirectory(prefix="to-bikes-soak-oracle-") as tmp:
        for year in sorted({year for year, _ in periods}):
            bucket, prefix = s3.split_s3_uri(settings.s3_uri(settings.raw_prefix, str(year)) + "/")
            folder = Path(tmp, "raw", str(year))
            folder.mkdir(parents=True)
            for item in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                if item["Key"].lower().endswith(".csv"):
                    client.download_file(bucket, item["Key"], str(folder / Path(item["Key"]).name))
        for year, month in periods:
            period, raw = f"{year}-{month:02d}", Path(tmp, "raw", str(year))
            mine = Path(tmp, period, "trips.parquet")
            preprocess(str(raw), str(mine), period=period, settings=settings)
            oracle[period] = content_digest(mine)
            key = s3.split_s3_uri(settings.s3_uri(settings.processed_prefix, period, "trips.parquet"))[1]
            local = Path(tmp, f"{period}-s3.parquet")
            try:
                client.download_file(bucket, key, str(local))
                processed[period] = content_digest(local)
            except client.exceptions.ClientError:
                processed[period] = None
    return oracle, processed


def read_registry(client: Any, name: str) -> tuple[list[dict[str, str]], dict[str, str] | None, list[str]]:
    """(each version's tags and number, the champion's tags and trained months, promoted versions)."""
    from mlflow.exceptions import MlflowException

    from models.core.names import CHAMPION
    from models.core.periods import parse_month_ranges
    from models.registry.gate import COMPARED_ON_TAG, NONE, PROMOTED

    versions = [
        {**v.tags, "version": str(v.version)} for v in client.search_model_versions(f"name = '{name}'")
    ]
    promoted = [
        v["version"] for v in versions if v.get("gate.decision") == PROMOTED or checks.rerun_promotions(v)
    ]
    try:
        found = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return versions, None, promoted
    champion = {**found.tags, "version": str(found.version)}
    months = [
        client.get_run(run).data.tags.get(COMPARED_ON_TAG, NONE)
        for run in checks.rerun_promotions(found.tags)
    ]
    champion[checks.RERUN_PROMOTED_ON] = ",".join(months)
    champion["trained_months"] = ",".join(parse_month_ranges(champion.get("data.train_months", "")))
    return versions, champion, promoted


def read_mlflow_runs(client: Any) -> list[tuple[str, str, str]]:
    experiments = client.search_experiments()
    ids = [e.experiment_id for e in experiments]
    names = {e.experiment_id: e.name for e in experiments}
    runs = client.search_runs(ids, max_results=5000) if ids else []
    return [(names[r.info.experiment_id], r.info.run_id, r.info.status) for r in runs]


def read_monitorings(client: Any, name: str) -> list[tuple[str, str, str]]:
    from models.core.names import MONITORING_EXPERIMENT

    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    if experiment is None:
        return []
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`model.name` = '{name}' and attributes.status = 'FINISHED'"
    )
    return [
        (r.data.tags["period"], r.data.tags["model.version"], r.data.tags.get("data.checksum", ""))
        for r in runs
    ]


def read_all_flow_runs(client: Any, flow_run_filter: Any) -> list[Any]:
    """Every flow run the filter matches, a page of ``PAGE`` at a time (the server gives at most that)."""
    runs: list[Any] = []
    while page := client.read_flow_runs(flow_run_filter=flow_run_filter, limit=PAGE, offset=len(runs)):
        runs += page
    return runs


def read_flow_runs(since: datetime) -> list[tuple[str, str, str]]:
    """(flow/run name, state type, why) of the flow runs created since the soak began."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        runs = [r for r in read_all_flow_runs(client, FlowRunFilter()) if r.created >= since]
    found = []
    for run in runs:
        state = run.state.type.value if run.state else "SCHEDULED"
        later = state == "SCHEDULED" and run.expected_start_time and run.expected_start_time > now
        why = "future" if later else (run.state.message or "" if run.state else "")
        found.append((f"{flows.get(run.flow_id, '?')}/{run.name}", state, why[:120]))
    return found


def read_failure_notices(
    since: datetime, receiver: Any, wait_s: float = NOTICE_WAIT_S
) -> tuple[dict[str, str], list[str]]:
    """(the project's flow runs created since ``since`` that ended Failed or Crashed: id -> name and
    state; the failed-run messages ``receiver`` got), once each such run has one or ``wait_s`` passed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    from orchestration.deploy.automations import RUN_TAG

    ended = FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED]))
    wanted = FlowRunFilter(state=ended, tags=FlowRunFilterTags(all_=[RUN_TAG]))
    deadline = time.monotonic() + wait_s
    while True:
        with get_client(sync_client=True) as client:
            runs = read_all_flow_runs(client, wanted)
        failed = {str(r.id): f"{r.name} {r.state_name}" for r in runs if r.created >= since}
        notices = [m for m in receiver.about(FAILED_SUBJECT) if m.startswith(FAILED_SUBJECT)]
        if all(any(i in m for m in notices) for i in failed) or time.monotonic() > deadline:
            return failed, notices
        time.sleep(3.0)


def check_all(
    settings: Settings,
    periods: list[tuple[int, int]],
    since: datetime,
    outputs: dict[str, str],
    receiver: Any,
    notice_wait_s: float = NOTICE_WAIT_S,
) -> list[checks.Check]:
    from models.registry.mlflow_client import connect_tracking

    oracle, processed = read_processed_rows(settings, periods)
    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    versions, champion, promoted = read_registry(client, settings.model_name)
    return [
        checks.check_processed_rows(oracle, processed),
        checks.check_versions_per_input(versions),
        checks.check_champion(champion, promoted),
        checks.check_no_running_mlflow(read_mlflow_runs(client)),
        checks.check_flow_runs_final(read_flow_runs(since)),
        checks.check_monitored_once(read_monitorings(client, settings.model_name)),
        checks.check_one_notice_per_failure(*read_failure_notices(since, receiver, notice_wait_s)),
        checks.check_no_traceback(outputs),
    ]
