"""``python -m models COMMAND``: the model venv's one command line (no Prefect), one command per stage.

    python -m models sample --dest data/sample --seed 7 [--rows 40000]
    python -m models fetch --years 2024 2025 --dest data/raw [--api-url URL]
    python -m models preprocess --input data/sample --output data/processed/trips.parquet [--period 2025]
    python -m models train --input FEATURES.parquet [--input MORE.parquet ...]
    python -m models register --run-id RUN [--margin 0.002]
    python -m models predict [--input URI] [--output URI] [--model URI]
    python -m models score --period 2025-12
    python -m models monitor --period 2025-12
    python -m models serve [--port 5100] [--dry-run]

Each command parses its options, calls the stage's own function (``models.<stage>.<module>``) and
prints that stage's one-line JSON summary as the last stdout line. Stage modules are imported only by
the command that needs them, so ``preprocess`` never loads MLflow. Errors: ``models.core.cli``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Annotated

import typer

from models.core.cli import build_app, run_app
from models.core.errors import UserError
from models.core.names import (
    CHAMPION,
    DEFAULT_MARGIN,
    DEFAULT_MAX_EVALS,
    DEFAULT_MIN_DURATION_S,
    DEFAULT_SEED,
    TIME_BUDGET_S,
)
from models.core.settings import LOCAL_HOST
from models.registry.gate import GATE_METRIC
from models.sample.generate import DEFAULT_ROWS

app = build_app("to-bikes model commands (.venv, no Prefect): data, training, registry, scoring.")

TRACKING_HELP = "MLflow tracking URI (default: settings / MLFLOW_TRACKING_URI)"
TrackingUri = Annotated[str | None, typer.Option("--tracking-uri", help=TRACKING_HELP)]


@app.command("sample")
def sample_command(
    dest: Annotated[str, typer.Option(help="folder to write")] = "data/sample",
    seed: Annotated[int, typer.Option(help="random seed")] = DEFAULT_SEED,
    rows: Annotated[int, typer.Option(help="rows in all")] = DEFAULT_ROWS,
) -> int:
    """Write the deterministic synthetic sample (all six eras' formats) and its manifest."""
    from models.sample.generate import generate_sample

    manifest = generate_sample(dest, seed=seed, rows=rows)
    brief = {k: manifest[k] for k in ("rows", "quarantined", "by_era", "seed")}
    print(json.dumps({"dest": dest, **brief}, sort_keys=True))
    return 0


@app.command("fetch")
def fetch_command(
    years: Annotated[list[int], typer.Option(metavar="YEAR", help="years to fetch, e.g. --years 2024 2025")],
    more_years: Annotated[list[int] | None, typer.Argument(hidden=True, metavar="YEAR")] = None,
    dest: Annotated[str, typer.Option(help="folder to fill")] = "data/raw",
    api_url: Annotated[
        str | None,
        typer.Option(help="CKAN package_show URL (default $TO_BIKES_CKAN_API_URL, else the City's portal)"),
    ] = None,
    retries: Annotated[int, typer.Option(help="attempts per request")] = 5,
) -> int:
    """Download the real yearly ZIPs through the City's CKAN API and unpack them."""
    from models.core.settings import load_settings
    from models.data.fetch import fetch_years

    wanted = [*years, *(more_years or [])]  # `--years 2024 2025`: the later years arrive as arguments
    manifest = fetch_years(wanted, dest, api_url=api_url or load_settings().ckan_api_url, attempts=retries)
    summary = {
        year: {"files": len(entry["files"]), "zip_sha256": entry["zip_sha256"]}
        for year, entry in manifest["years"].items()
    }
    print(json.dumps({"dest": dest, "years": summary}, sort_keys=True))
    return 0


@app.command("preprocess")
def preprocess_command(
    input: Annotated[str, typer.Option(help="a CSV, a ZIP or a folder of them (path or s3:// URI)")],
    output: Annotated[str, typer.Option(help="output Parquet (path or s3:// URI)")],
    period: Annotated[
        str | None, typer.Option(help="read only trips starting in YYYY or YYYY-MM (others skipped, counted)")
    ] = None,
    min_duration: Annotated[int, typer.Option(help="shortest trip kept, seconds")] = DEFAULT_MIN_DURATION_S,
) -> int:
    """Raw CSV/ZIP files to the trips Parquet, a quarantine and a quality report."""
    from models.data.preprocess import preprocess

    summary = preprocess(input, output, period=period, min_duration_s=min_duration)
    print(json.dumps(summary.to_dict(), sort_keys=True))
    return 0


@app.command("train")
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


@app.command("register")
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


@app.command("predict")
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


@app.command("score")
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


@app.command("monitor")
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


@app.command("serve")
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


def main(argv: list[str] | None = None) -> int:
    """Run the app on ``argv`` (default: the command line) and return its exit code."""
    return run_app(app, argv, prog_name="python -m models")
