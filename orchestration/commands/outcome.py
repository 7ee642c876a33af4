"""What a finished flow run did, read back from the API by ``make run``: its reason or its results.

A failed run's reason is the one sentence the flow raised: Prefect keeps it in the final state's
message (``Flow run encountered an exception: UserError: ...``); when that message is generic, the
failed task run's message is used. A completed pipeline run's figures come from the flow's return value
when Prefect persisted it (``state.result()``), and otherwise from the run's table artifacts
(``orchestration.flows.reports``): the data-quality table (rows in/out/quarantined) and the metrics table
(model, baseline, previous champion) with the gate decision in its description. Missing keys are
left out, never guessed.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

ENGINE_PREFIX = re.compile(r"^(Flow|Task) run encountered an exception:?\s*")
USER_ERROR_PREFIX = re.compile(r"^(\w+\.)*UserError:\s*")
GENERIC = re.compile(r"^(\d+/\d+ states? \w+|All states completed|Flow run encountered an exception:?)\.?$")
ROW_KEYS = ("rows_in", "rows_out", "quarantined", "other_period")
HEADLINE_METRICS = ("roc_auc", "f1", "accuracy")
GATE_KEYS = (
    "compared_on",
    "challenger_score",
    "champion_score",
    "champion_version",
    "run_url",
    "rerun_record",
)


def clean_message(message: str | None) -> str:
    """A state message without Prefect's prefix and the ``UserError:`` label (the sentence itself)."""
    text = ENGINE_PREFIX.sub("", (message or "").strip())
    return USER_ERROR_PREFIX.sub("", text).strip()


def is_generic(message: str | None) -> bool:
    """True when a state message says nothing of why (empty, ``1/2 states failed`` ...)."""
    return not clean_message(message) or bool(GENERIC.match((message or "").strip()))


def read_failed_task_messages(client: Any, flow_run_id: Any) -> list[str]:
    """The messages of the run's failed or crashed task runs, oldest first."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    task_runs = client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        task_run_filter=TaskRunFilter(
            state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED]))
        ),
    )
    ordered = sorted(task_runs, key=lambda run: run.expected_start_time or run.created)
    return [run.state.message for run in ordered if run.state is not None and run.state.message]


def failure_reason(client: Any, flow_run_id: Any, state: Any) -> str:
    """The one sentence why the run did not complete."""
    if state.message and not is_generic(state.message):
        return clean_message(state.message)
    for message in read_failed_task_messages(client, flow_run_id):
        if not is_generic(message):
            return clean_message(message)
    return clean_message(state.message) or f"the run ended {state.name} and Prefect recorded no reason"


def read_flow_result(state: Any) -> dict[str, Any]:
    """The flow's return value when Prefect persisted it (else ``{}``: the artifacts are read instead)."""
    try:
        value = state.result(raise_on_failure=False)
    except Exception as exc:  # MissingResult, or storage this process cannot reach
        log.debug("the run's result is not readable here: %s", exc)
        return {}
    return value if isinstance(value, dict) else {}


def table_rows(artifact: Any) -> list[dict[str, Any]]:
    """The rows of a table artifact (Prefect stores them as JSON text)."""
    data = artifact.data
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return []
    return data if isinstance(data, list) else []


def read_artifact_figures(client: Any, flow_run_id: Any) -> dict[str, Any]:
    """Rows and metrics from the run's data-quality and metrics tables, and the metrics' description."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    figures: dict[str, Any] = {}
    for artifact in found:
        key = artifact.key or ""
        rows = table_rows(artifact) if artifact.type == "table" else []
        if key.startswith("data-quality"):
            values = {row.get("measure"): row.get("value") for row in rows}
            figures.update({k: values[k] for k in ROW_KEYS if k in values})
        elif key.endswith("-metrics") and rows:
            figures["metric_table"] = rows
            figures["gate_text"] = artifact.description or ""
        elif key == "mlflow-run" and artifact.type == "link":
            figures.setdefault("run_url", artifact.data)
    return figures


def format_number(value: Any) -> str:
    """A metric as four decimals, anything else as it is."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def describe_rows(figures: dict[str, Any]) -> list[str]:
    """``rows: in 20274, out 18568, quarantined 1706`` (only the counts that are known)."""
    parts = [f"{key.replace('rows_', '')} {figures[key]}" for key in ROW_KEYS if figures.get(key) is not None]
    return [f"rows: {', '.join(parts)}"] if parts else []


def describe_metrics(figures: dict[str, Any]) -> list[str]:
    """The headline metrics, each beside the baseline's and the previous champion's."""
    rows = {row.get("metric"): row for row in figures.get("metric_table", [])}
    lines = []
    for name in [m for m in HEADLINE_METRICS if m in rows] or list(rows)[:3]:
        row = rows[name]
        labels = [label for label in ("baseline", "previous champion") if label in row]
        others = ", ".join(f"{label} {format_number(row[label])}" for label in labels)
        lines.append(f"{name}: model {format_number(row.get('model'))} ({others})")
    if not lines and isinstance(figures.get("metrics"), dict):
        metrics = figures["metrics"]
        lines.append("metrics: " + ", ".join(f"{k} {format_number(v)}" for k, v in sorted(metrics.items())))
    return lines


def describe_gate(figures: dict[str, Any]) -> list[str]:
    """The gate decision and its reason: the flow's keys when present, else the artifact's sentence.

    A rerun reads "already champion (no change)", never "promoted", and names the run it reused.
    """
    from models.registry.gate import describe_verdict

    decision = figures.get("decision")
    if decision is None and "promoted" in figures:
        decision = "promoted" if figures["promoted"] else "champion kept"
    if decision is None:
        return [f"gate: {figures['gate_text']}"] if figures.get("gate_text") else []
    head = f"gate: {describe_verdict(decision)}"
    if figures.get("version") is not None:
        head += f" (version {figures['version']})"
    if figures.get("reason"):
        head += f": {figures['reason']}"
    known = [key for key in GATE_KEYS if figures.get(key)]
    details = [f"{key.replace('_', ' ')} {format_number(figures[key])}" for key in known]
    if figures.get("training_cached") and figures.get("run_id"):
        details.insert(0, f"reused run {figures['run_id']}")
    return [head] + ([f"      {'; '.join(details)}"] if details else [])


def describe_state(state: Any) -> list[str]:
    """The completed state's own message when it says something (a version's gate, a month's monitoring)."""
    message = getattr(state, "message", None)
    return [] if is_generic(message) else [f"result: {clean_message(message)}"]


def describe_success(client: Any, flow_run_id: Any, state: Any) -> list[str]:
    """The lines ``make run`` and ``make score`` print for a completed run (empty when nothing is known)."""
    figures = read_artifact_figures(client, flow_run_id)
    figures.update({k: v for k, v in read_flow_result(state).items() if v is not None})
    lines = describe_rows(figures) + describe_metrics(figures) + describe_gate(figures)
    return lines + describe_state(state)
