"""Train the member-vs-casual model, compare it with a baseline and the current champion, log to MLflow.

``python -m models.training.train --input FEATURES.parquet [--input MORE.parquet ...]`` reads every input as
one data set (for example the monthly outputs of a year; two inputs holding the same month are
refused), validates on the latest month present and trains on the earlier ones. It scores three
models on that same month: a prior-share baseline, the new gradient-boosting pipeline and, when the
registry has one, the current ``champion``, but only on trips neither model trained on (the rule is
``models.registry.gate``'s; a later processed month when the champion trained on the validation month).
The run records its training months and validation month, the month compared on and both scores, so
that ``models.registry.register`` can gate promotion without re-scoring.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from models.core.contracts import TrainResult
from models.core.errors import UserError, run_cli
from models.core.names import DEFAULT_MAX_EVALS, DEFAULT_SEED, EXPERIMENT, MODEL_NAME
from models.core.periods import format_month_ranges
from models.core.settings import Settings, load_settings
from models.registry.gate import Window
from models.registry.mlflow_client import connect_tracking, reported_mlflow_errors
from models.training.candidates import Evaluation, evaluate_candidates, fit_candidates
from models.training.comparison import describe_window, score_champion
from models.training.dataset import read_training_inputs, split_by_month
from models.training.estimator import choose_threads
from models.training.inputs import list_input_uris
from models.training.mlflow_run import log_training_run
from models.training.stale_runs import sweep_stale_runs

log = logging.getLogger(__name__)

TIME_BUDGET_S = 5.0  # seconds the search may take; the final fit is one refit on a fixed sample


def train_model(
    features_uri: str | Sequence[str],
    *,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    model_name: str = MODEL_NAME,
    max_evals: int = DEFAULT_MAX_EVALS,
    seed: int = DEFAULT_SEED,
    settings: Settings | None = None,
    time_budget_s: float = TIME_BUDGET_S,
    threads: int | None = None,
    flow_run_ended: Callable[[str], str | None] | None = None,
) -> TrainResult:
    """Train, evaluate against the baseline and the champion, and log everything to one MLflow run.

    ``features_uri`` is one processed Parquet file (path or ``s3://`` URI) or a sequence of them
    read as one data set (see ``models.training.dataset.read_training_inputs``). With
    ``flow_run_ended`` (a flow runner's answer to "is this flow run over?"), runs that dead flow runs
    left RUNNING are first marked FAILED (``models.training.stale_runs``).
    """
    started = time.monotonic()
    settings = settings or load_settings()
    data = read_training_inputs(list_input_uris(features_uri), settings)
    client = connect_tracking(tracking_uri, settings)
    if flow_run_ended is not None:
        sweep_stale_runs(client, experiment, flow_run_ended)
    split = split_by_month(data.frame, data.source)
    options = {"max_evals": max_evals, "seed": seed, "time_budget_s": time_budget_s, "model_name": model_name}
    options["threads"] = choose_threads(threads)
    with threadpool_limits(limits=options["threads"], user_api="openmp"):
        fitted = fit_candidates(split, max_evals=max_evals, time_budget_s=time_budget_s, seed=seed)
        evaluation = evaluate_candidates(fitted, split)
        window = describe_window(data, split)
        uris = [item.uri for item in data.inputs]
        score_champion(client, model_name, evaluation, fitted.model, window, settings, uris)
        run_id, run_url = log_training_run(client, experiment, data, split, fitted, evaluation, options)
    return TrainResult(
        run_id=run_id,
        metrics=evaluation.metrics,
        baseline_metrics=evaluation.baseline_metrics,
        champion_metrics=evaluation.champion_metrics,
        run_url=run_url,
        valid_month=split.valid_month,
        champion_version=evaluation.champion_version,
        seconds=round(time.monotonic() - started, 1),
        inputs=uris,
        **describe_comparison(window, evaluation),
    )


def describe_comparison(window: Window, evaluation: Evaluation) -> dict[str, Any]:
    """The result's account of the gate's comparison: the window, the month compared on and why."""
    comparison = evaluation.comparison
    return {
        "train_months": format_month_ranges(window.train_months),
        "compared_on": comparison.month if comparison else None,
        "comparison": comparison.reason if comparison else "",
        "compared_metrics": evaluation.compared_metrics,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m models.training.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--input",
        required=True,
        action="append",
        help="processed features Parquet (path or s3:// URI); repeat for several periods",
    )
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: settings / MLFLOW_TRACKING_URI)"
    )
    parser.add_argument("--experiment", help="MLflow experiment (default: settings.experiment)")
    parser.add_argument(
        "--model-name", help="registered model to compare with (default: settings.model_name)"
    )
    parser.add_argument(
        "--max-evals",
        type=int,
        default=DEFAULT_MAX_EVALS,
        help=f"hyper-parameter trials at most (default {DEFAULT_MAX_EVALS})",
    )
    parser.add_argument(
        "--time-budget", type=float, default=TIME_BUDGET_S, help="seconds the search may take"
    )
    parser.add_argument("--threads", type=int, help="OpenMP threads (default: the idle cores, at least 1)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (recorded in the run)")
    return parser.parse_args(argv)


def exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM as an exception, so that ``mlflow.start_run`` ends the run FAILED on the way out."""
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Train once and print a one-line JSON summary as the last line of stdout."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args(argv)
    if args.max_evals < 1 or args.time_budget <= 0:
        raise UserError("--max-evals must be at least 1 and --time-budget positive.")
    settings = load_settings()
    with reported_mlflow_errors("training"):
        result = train_model(
            args.input,
            tracking_uri=args.tracking_uri,
            experiment=args.experiment or settings.experiment,
            model_name=args.model_name or settings.model_name,
            max_evals=args.max_evals,
            seed=args.seed,
            settings=settings,
            time_budget_s=args.time_budget,
            threads=args.threads,
        )
    print(json.dumps(result.__dict__, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
