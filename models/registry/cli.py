"""``python -m models register``: the registry's command (``models.cli`` mounts it)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from models.core.names import DEFAULT_MARGIN
from models.registry.gate import GATE_METRIC

TRACKING_HELP = "MLflow tracking URI (default: settings / MLFLOW_TRACKING_URI)"
TrackingUri = Annotated[str | None, typer.Option("--tracking-uri", help=TRACKING_HELP)]


def register_command(
    run_id: Annotated[str, typer.Option(help="the `python -m models train` run to register")],
    name: Annotated[
        str | None, typer.Option(help="registered model name (default: settings.model_name)")
    ] = None,
    margin: Annotated[
        float, typer.Option(help=f"{GATE_METRIC} gain a challenger needs over the champion")
    ] = DEFAULT_MARGIN,
    tracking_uri: TrackingUri = None,
) -> int:
    """Register a run's model and move the champion alias only if the gate says it is better."""
    from dataclasses import asdict

    from models.core.settings import load_settings
    from models.registry.mlflow_client import reported_mlflow_errors
    from models.registry.register import register_model

    settings = load_settings()
    with reported_mlflow_errors("registering"):
        result = register_model(
            run_id,
            name=name or settings.model_name,
            margin=margin,
            tracking_uri=tracking_uri,
            settings=settings,
        )
    print(json.dumps(asdict(result), sort_keys=True))
    return 0
