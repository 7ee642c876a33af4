"""The to-bikes flows: thin Prefect wrappers over ``models.data.preprocess``, ``.train`` and ``.register``.

``preprocess`` turns the raw files of a period into processed Parquet, quarantine and quality report on
S3 (cached on the raw objects' checksums and the code version); ``train`` fits, logs to MLflow and
registers through the champion/challenger gate; ``to-bikes-pipeline`` chains them for one period.
Deployed by ``prefect.yaml``; run by a process worker from the code bundle pulled from S3.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import INPUTS, NO_CACHE
from prefect.tasks import exponential_backoff

import models
from models.core import s3
from models.core.contracts import PreprocessSummary, TrainResult
from models.core.errors import UserError
from models.core.names import DEFAULT_MARGIN, DEFAULT_MAX_EVALS, DEFAULT_MIN_DURATION_S, DEFAULT_SEED
from models.core.periods import format_period
from models.core.settings import Settings
from orchestration.flows.api_loss import ending_on_api_loss, record_lost_registration
from orchestration.flows.caching import (
    InputObjectChecksums,
    ModelsCodeVersion,
    RawObjectChecksums,
    TrainingTarget,
    find_output_problem,
    is_transient,
    read_flow_run_end,
    record_output,
    results_storage,
)
from orchestration.flows.months import report_months
from orchestration.flows.notices import emit_champion_changed, emit_quality_warnings
from orchestration.flows.reports import publish_quality, publish_training, registered_state, training_summary
from orchestration.flows.settings import export_lineage, load_flow_settings
from orchestration.flows.work_locks import hold_work_lock, name_work

if TYPE_CHECKING:
    from models.registry.register import RegistrationResult

IO_RETRIES = {"retries": 2, "retry_delay_seconds": exponential_backoff(3), "retry_condition_fn": is_transient}
PREPROCESS_CACHE = INPUTS - "settings" + RawObjectChecksums() + ModelsCodeVersion()
TRAIN_CACHE = INPUTS - "settings" + InputObjectChecksums() + ModelsCodeVersion() + TrainingTarget()


@task(name="find-latest-year", cache_policy=NO_CACHE, **IO_RETRIES)
def find_latest_year(settings: Settings) -> int:
    """The latest ``<year>/`` folder under the raw prefix (what a scheduled run without a year means)."""
    uri = settings.s3_uri(settings.raw_prefix) + "/"
    years = [int(name) for name in s3.list_folders(uri, settings) if name.isdigit()]
    if not years:
        raise UserError(f"No <year>/ folder under {uri}; run `make sync-data` first.")
    return max(years)


@task(name="select-raw-inputs", cache_policy=NO_CACHE, **IO_RETRIES)
def select_raw_inputs(input_uri: str, period: str, settings: Settings) -> list[str] | None:
    """A month's raw files per the manifest (``models.data.raw_manifest``); None: the whole prefix."""
    from models.data.raw_manifest import select_period_inputs

    return select_period_inputs(input_uri, period, settings)


@task(name="preprocess-period", cache_policy=PREPROCESS_CACHE, persist_result=True, **IO_RETRIES)
def preprocess_period(
    input_uri: str,
    output_uri: str,
    period: str,
    min_duration_s: int,
    settings: Settings,
    input_uris: list[str] | None = None,
) -> dict[str, Any]:
    """``models.data.preprocess.preprocess`` for one period (cached as JSON: ``flows.caching``), on
    the ``input_uris`` under ``input_uri`` when given (a month's files), else on all of them."""
    from models.data.preprocess import preprocess

    summary = preprocess(
        input_uri,
        output_uri,
        period=period,
        min_duration_s=min_duration_s,
        settings=settings,
        inputs=input_uris,
    )
    return record_output(summary.to_dict(), settings)


@task(name="check-output", cache_policy=NO_CACHE, **IO_RETRIES)
def output_problem(cached: dict[str, Any], settings: Settings) -> str | None:
    """Why a cached summary's Parquet is not the one it recorded (missing, replaced), or None."""
    return find_output_problem(cached, settings)


@task(name="select-training-inputs", cache_policy=NO_CACHE, **IO_RETRIES)
def select_inputs(period: str, settings: Settings) -> list[str]:
    """The processed files a run for ``period`` trains on (``models.training.inputs``)."""
    from models.training.inputs import select_training_inputs

    return select_training_inputs(settings, period)


@task(name="train-model", cache_policy=TRAIN_CACHE, persist_result=True)
def train_candidate(
    features_uris: list[str], max_evals: int, seed: int, settings: Settings
) -> dict[str, Any]:
    """``models.training.train.train_model``: one MLflow run, cached (a retry would log a second run)."""
    from models.training.train import train_model

    result = train_model(
        features_uris,
        tracking_uri=settings.mlflow_tracking_uri,
        experiment=settings.experiment,
        model_name=settings.model_name,
        max_evals=max_evals,
        seed=seed,
        settings=settings,
        flow_run_ended=read_flow_run_end,
    )
    return result.to_dict()


@task(name="check-cached-run", cache_policy=NO_CACHE, **IO_RETRIES)
def reuse_problem(run_id: str, settings: Settings) -> str | None:
    """Why a cached MLflow run cannot be reused (deleted, champion replaced), or None."""
    from models.registry.register import reuse_problem as find_problem

    return find_problem(
        run_id, name=settings.model_name, tracking_uri=settings.mlflow_tracking_uri, settings=settings
    )


@task(name="register-model", cache_policy=NO_CACHE, **IO_RETRIES)
def register_candidate(run_id: str, margin: float, settings: Settings) -> RegistrationResult:
    """``models.registry.register.register_model``: idempotent, so a retry after a network error is safe."""
    from models.registry.register import register_model

    return register_model(
        run_id, name=settings.model_name, margin=margin, tracking_uri=settings.mlflow_tracking_uri
    )


def run_preprocess(
    input_uri: str,
    output_uri: str,
    period: str,
    min_duration_s: int,
    settings: Settings,
    input_uris: list[str] | None = None,
):
    """Preprocess through the cache, one run per output at a time; recompute when the cached output
    is not the one recorded (missing, replaced: ``orchestration.flows.caching.find_output_problem``)."""
    cached_task = preprocess_period.with_options(result_storage=results_storage(), result_serializer="json")
    args = (input_uri, output_uri, period, min_duration_s, settings, input_uris)
    with hold_work_lock(name_work("preprocess", output_uri)):
        state = cached_task(*args, return_state=True)
        summary = state.result()
        problem = output_problem(summary, settings) if state.name == "Cached" else None
        if problem:
            get_run_logger().warning("not serving the cached preprocessing: %s; preprocessing again", problem)
            state = cached_task.with_options(refresh_cache=True)(*args, return_state=True)
            summary = state.result()
    return PreprocessSummary.from_dict(summary), state.name == "Cached"


def run_training(features_uris: list[str], max_evals: int, seed: int, settings: Settings):
    """Train through the cache; train again when the cached MLflow run cannot be reused."""
    cached_task = train_candidate.with_options(result_storage=results_storage(), result_serializer="json")
    args = (features_uris, max_evals, seed, settings)
    state = cached_task(*args, return_state=True)
    found = state.result()
    problem = reuse_problem(found["run_id"], settings) if state.name == "Cached" else None
    if problem:
        get_run_logger().warning("not reusing the cached training run: %s; training again", problem)
        state = cached_task.with_options(refresh_cache=True)(*args, return_state=True)
        found = state.result()
    return TrainResult.from_dict(found), state.name == "Cached"


def preprocess_period_steps(
    settings: Settings, year: int | None, month: int | None, min_duration_s: int
) -> dict:
    """The preprocess flow's work, inside whichever flow run calls it (no subflow run of its own)."""
    year = year if year is not None else find_latest_year(settings)
    period = format_period(year, month)
    input_uri = settings.s3_uri(settings.raw_prefix, str(year)) + "/"
    output_uri = settings.s3_uri(settings.processed_prefix, period, "trips.parquet")
    selected = select_raw_inputs(input_uri, period, settings)  # a month: only the files holding it
    summary, cached = run_preprocess(input_uri, output_uri, period, min_duration_s, settings, selected)
    publish_quality(summary, period, cached)
    if not cached:  # a cached summary's warnings were emitted by the run that computed it
        emit_quality_warnings(summary, settings)
    get_run_logger().info(
        "%s: %s rows kept, %s quarantined, %s of other periods skipped -> %s",
        period,
        summary.rows_out,
        summary.quarantined,
        summary.other_period,
        output_uri,
    )
    return {**summary.to_dict(), "cached": cached}


def train_steps(
    settings: Settings, features_uris: list[str], max_evals: int, seed: int, margin: float
) -> dict:
    """The train flow's work: a cached training run, then the registry gate (idempotent)."""
    target = (features_uris, settings.mlflow_tracking_uri, settings.experiment, settings.model_name)
    with hold_work_lock(name_work("train", *target)):  # one training and registration at a time
        result, cached = run_training(features_uris, max_evals, seed, settings)
        registration = register_candidate(result.run_id, margin, settings)
    publish_training(result, registration)
    emit_champion_changed(registration, result.valid_month)
    if cached:  # a run trained by another flow run, which may have lost the API before saying so
        record_lost_registration(settings, registration)
    get_run_logger().info(
        "run %s -> version %s: %s", result.run_id, registration.version, registration.reason
    )
    return training_summary(result, registration, cached)


def start_flow_run() -> Settings:
    """Lineage variables, where the code was imported from, and the settings from the blocks."""
    lineage = export_lineage()
    get_run_logger().info(
        "flows from %s, models from %s; lineage %s",
        Path(__file__).resolve(),
        Path(models.__file__).parent,
        lineage,
    )
    return load_flow_settings()


@flow(name="preprocess")
def preprocess_flow(
    year: int | None = None, month: int | None = None, min_duration_s: int = DEFAULT_MIN_DURATION_S
) -> dict:
    """Raw files of ``year`` (latest if omitted), kept to ``month`` if given -> processed/<period>/."""
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        return preprocess_period_steps(settings, year, month, min_duration_s)


@flow(name="train")
def train_flow(
    features_uris: list[str],
    max_evals: int = DEFAULT_MAX_EVALS,
    seed: int = DEFAULT_SEED,
    margin: float = DEFAULT_MARGIN,
) -> dict:
    """Processed Parquet files -> MLflow run (flow run id and deployment as tags) -> registry gate.

    The run is cached (``orchestration.flows.caching``): unchanged inputs, code, parameters and champion
    reuse the MLflow run, which is registered again (idempotent) so a run that failed there resumes.
    Its Completed state's message names the version.
    """
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        trained = train_steps(settings, list(features_uris), max_evals, seed, margin)
    return registered_state(trained, settings.model_name)


@flow(name="to-bikes-pipeline")
def pipeline_flow(
    year: int | None = None,
    month: int | None = None,
    max_evals: int = DEFAULT_MAX_EVALS,
    seed: int = DEFAULT_SEED,
    margin: float = DEFAULT_MARGIN,
) -> dict:
    """Preprocess one period, then train and register on it (a month with the months before it).

    One flow run whose tasks are the preprocess and train flows' tasks: subflow runs cost about half a
    second each in API round trips, which a cached rerun of the pipeline would mostly be made of.
    Its Completed state's message names the version; a Prefect API gone for longer than the client's
    retries ends the process in one line (``orchestration.flows.api_loss``).
    """
    settings = start_flow_run()
    with ending_on_api_loss(settings):
        processed = preprocess_period_steps(settings, year, month, DEFAULT_MIN_DURATION_S)
        inputs = select_inputs(processed["period"], settings)
        trained = train_steps(settings, inputs, max_evals, seed, margin)
        report_months(settings)
    result = {"period": processed["period"], "cached": processed["cached"], **trained}
    return registered_state(result, settings.model_name)
