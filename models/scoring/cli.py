"""``python -m models predict|score|monitor|serve``: the scoring commands (mounted by ``models.cli``)."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from models.core.names import CHAMPION
from models.core.settings import LOCAL_HOST
from models.registry.cli import TrackingUri


def predict_command(
    input: Annotated[
        str | None, typer.Option(help="features Parquet, path or s3:// URI (default: latest period on S3)")
    ] = None,
    output: Annotated[
        str | None, typer.Option(help="predictions Parquet (default: data/predictions/<period>.parquet)")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=f"model URI (default: models:/<settings.model_name>@{CHAMPION})")
    ] = None,
    tracking_uri: TrackingUri = None,
) -> int:
    """Score a processed Parquet file with the champion: one progress line, then the JSON summary."""
    from models.core.settings import load_settings
    from models.registry.mlflow_client import reported_mlflow_errors
    from models.scoring.predict import PROGRESS_BAR_VARIABLE, default_paths, predict

    os.environ.setdefault(PROGRESS_BAR_VARIABLE, "false")
    settings = load_settings()
    with reported_mlflow_errors("scoring"):
        input_uri, output_uri = default_paths(input, output, settings)
        model_uri = model or f"models:/{settings.model_name}@{CHAMPION}"
        print(f"scoring {input_uri} with {model_uri} -> {output_uri}", flush=True)
        summary = predict(input_uri, output_uri, model_uri, tracking_uri=tracking_uri, settings=settings)
    print(json.dumps(summary, sort_keys=True))
    return 0


def score_command(
    period: Annotated[str, typer.Option(help="YYYY or YYYY-MM (processed/<period>/trips.parquet)")],
    input: Annotated[
        str | None, typer.Option(help="processed trips to score instead (path or s3:// URI)")
    ] = None,
) -> int:
    """Score a processed period with the champion into predictions/<period>/ on S3."""
    from models.registry.mlflow_client import reported_mlflow_errors
    from models.scoring.score import score_period

    with reported_mlflow_errors("scoring"):
        result = score_period(period, input_uri=input)
    print(json.dumps(result.to_dict(), sort_keys=True))
    return 0


def monitor_command(
    period: Annotated[str, typer.Option(help="a scored period, YYYY or YYYY-MM")],
) -> int:
    """Monitor a scored period: metrics, drift report and the verdict, logged to MLflow."""
    from models.registry.mlflow_client import reported_mlflow_errors
    from models.scoring.monitor import monitor_period

    with reported_mlflow_errors("monitoring"):
        summary = monitor_period(period)
    print(json.dumps(summary, sort_keys=True))
    return 0


def serve_command(
    port: Annotated[
        int | None, typer.Option(help=f"port on {LOCAL_HOST} (default TO_BIKES_SERVE_PORT, else 5100)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the command instead of running it")
    ] = False,
) -> int:
    """Serve the champion with MLflow's model server (this process becomes the server)."""
    from models.core.settings import load_settings
    from models.registry.mlflow_client import check_tracking_uri
    from models.scoring.serve import serve_command as build_serve_command
    from models.scoring.serve import serve_environment

    settings = load_settings()
    port = settings.serve_port if port is None else port
    command = build_serve_command(settings, port)
    if dry_run:
        print(" ".join(command))
        return 0
    check_tracking_uri(settings.mlflow_tracking_uri)
    print(f"serving {command[4]} on http://{LOCAL_HOST}:{port}/invocations (restart for a new champion)")
    sys.stdout.flush()
    os.execve(command[0], command, serve_environment(settings, command[0]))  # noqa: S606 (the server replaces this process)
    return 0  # not reached: execve replaces the process
