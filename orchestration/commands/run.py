"""``make run`` (``python -m orchestration run``): check the parameters, start a deployment run, wait.

``run`` checks the parameters before a run exists (one sentence, exit 2), prints the flow run's URL,
then one line whenever what it waits for changes (no worker polling the pool, or the run's state),
waits up to ``--wait-seconds`` (default ten minutes; then it says the run goes on, with its URL) and
exits 0 only when the run is Completed. A failed run's own reason is printed; a completed pipeline
run's rows, headline metrics and gate decision (``orchestration.commands.outcome``). ``backfill``
starts one run per month, one after another, and exits 0 only when every month Completed. An API
outage of up to three minutes is waited out (``orchestration.commands.runs``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from models.core.errors import UserError
from models.core.names import PIPELINE_DEPLOYMENT, PREPROCESS_DEPLOYMENT
from models.core.periods import format_period
from orchestration.commands import runs

PIPELINE = PIPELINE_DEPLOYMENT
PREPROCESS = PREPROCESS_DEPLOYMENT
DEFAULT_WAIT_S = 600.0  # ten minutes: a demo-sized run takes one or two


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value is read as JSON when it parses (``year=2025`` is the int 2025)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UserError(f"--param {pair!r} is not key=value.")
        try:
            params[key] = json.loads(text)
        except json.JSONDecodeError:
            params[key] = text
    return params


def check_params(params: dict[str, Any], deployment: Any) -> None:
    """Refuse, in one sentence and before any run exists, parameters the flow would reject.

    ``year`` and ``month`` are read by ``models.core.periods.format_period`` (the flow's own check);
    every parameter is then checked against the deployment's parameter schema with Prefect's own
    validator, the check the server makes (a 409 Conflict) when a run is created.
    """
    from prefect.utilities.schema_tools import ValidationError, validate

    if params.get("year") is not None:
        format_period(params["year"], params.get("month"))
    elif params.get("month") is not None:
        format_period("2000", params["month"])  # no year: the latest one; the month must still be one
    schema = deployment.parameter_openapi_schema or {}
    known = schema.get("properties", {})
    unknown = sorted(set(params) - set(known))
    if known and unknown:
        raise UserError(
            f"Parameter {unknown[0]!r} is not one of {deployment.name!r}'s: {', '.join(sorted(known))}."
        )
    try:
        validate(params, schema, raise_on_error=True)
    except ValidationError as exc:
        raise UserError(f"Parameters {json.dumps(params, sort_keys=True)} are refused: {exc}") from exc


def run_deployment_once(name: str, params: dict[str, Any], timeout_s: float) -> tuple[bool, list[str]]:
    """Check the parameters, start one run and wait for it (``runs.start_and_wait``)."""
    return runs.start_and_wait(name, params, timeout_s, check=check_params)
