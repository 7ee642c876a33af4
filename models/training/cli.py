"""``python -m models train``: the training stage's command (``models.cli`` mounts it)."""

from __future__ import annotations

import json
import signal
from typing import Annotated

import typer

from models.core.errors import UserError
from models.core.names import DEFAULT_MAX_EVALS, DEFAULT_SEED, TIME_BUDGET_S
from models.registry.cli import TrackingUri


def train_command(
    input: Annotated[
        list[str],
        typer.Option(metavar="PATH", help="features Parquet (path or s3:// URI); repeat for several periods"),
    ],
    tracking_uri: TrackingUri = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: settings.experiment)")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="registered model to compare with (default: settings.model_name)")
    ] = None,
    max_evals: Annotated[int, typer.Option(help="hyper-parameter trials at most")] = DEFAULT_MAX_EVALS,
    time_budget: Annotated[
        float, typer.Option(help="seconds of fitting: search + final fit")
    ] = TIME_BUDGET_S,
    threads: Annotated[
        int | None, typer.Option(help="OpenMP threads (default: the idle cores, at least 1)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed (recorded in the run)")] = DEFAULT_SEED,
) -> int:
    """Train against the baseline and the champion on the inputs; log the run to MLflow."""
    from models.core.settings import load_settings
    from models.registry.mlflow_client import reported_mlflow_errors
    from models.training.train import exit_on_sigterm, train_model

    signal.signal(signal.SIGTERM, exit_on_sigterm)
    if max_evals < 1 or time_budget <= 0:
        raise UserError("--max-evals must be at least 1 and --time-budget positive.")
    settings = load_settings()
    with reported_mlflow_errors("training"):
        result = train_model(
            input,
            tracking_uri=tracking_uri,
            experiment=experiment or settings.experiment,
            model_name=model_name or settings.model_name,
            max_evals=max_evals,
            seed=seed,
            settings=settings,
            time_budget_s=time_budget,
            threads=threads,
        )
    print(json.dumps(result.__dict__, sort_keys=True, default=str))
    return 0
