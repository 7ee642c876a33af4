"""Writing one training run to MLflow: lineage tags, params, metrics, data set, plots and the model.

Kept apart from ``models.training.train`` so that training reads as the steps it takes and this module as
what a reader of the run finds in the MLflow UI.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from models.core.errors import UserError
from models.core.names import LABEL_COLUMN
from models.core.periods import PERIOD_PATTERN
from models.core.secrets import mask_secrets
from models.registry.gate import (
    CHALLENGER_SCORE,
    CHAMPION_SCORE,
    COMPARED_ON_TAG,
    COMPARISON_TAG,
    GATE_METRIC,
    NONE,
)
from models.registry.mlflow_client import SKOPS_TRUSTED_TYPES, build_run_url, pinned_requirements
from models.scoring.reference import log_reference
from models.training.candidates import SAMPLING, Evaluation, Fitted
from models.training.comparison import describe_window, window_tags
from models.training.dataset import Split, TrainingData, TrainingInput
from models.training.estimator import MAX_BINS, MAX_ITER, SELECTION_METRIC
from models.training.lineage import collect_lineage
from models.training.metrics import compute_importance, prefix_metrics
from models.training.plots import (
    plot_calibration,
    plot_confusion,
    plot_importance,
    plot_precision_recall,
    plot_roc,
)

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
SCHEMA_ROWS = 1000
DIGEST_CHARS = 32  # MLflow keeps at most 36 characters of a data set digest
MODEL_KIND = "hgb"  # the runs' names: "<period> hgb" (HistGradientBoostingClassifier)
SOURCE_NAME_TAG, SOURCE_NAME = "mlflow.source.name", "models.training.train"  # not MLflow's guess
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def ensure_experiment(client: MlflowClient, experiment: str) -> str:
    """The id of the named experiment, created when missing, marked as one of model training runs.

    The ``mlflow.experimentKind`` tag records what the experiment holds. MLflow 3.17's UI does not read it
    to pick its view (the link's ``workflowType`` or the browser's sidebar switch does, GenAI by default),
    so the printed links carry ``?workflowType=machine_learning`` (``models.registry.mlflow_client``).
    """
    try:
        found = mlflow.set_experiment(experiment)
        if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return found.experiment_id
    except MlflowException as exc:
        why = mask_secrets(str(exc.message))
        raise UserError(f"MLflow experiment {experiment!r} cannot be used ({why}).") from exc


def name_run(data: TrainingData, split: Split) -> str:
    """What the run is: its period (the last input's ``processed/<period>/`` folder) and the model kind."""
    folder = Path(data.inputs[-1].uri).parent.name if data.inputs else ""
    period = (
        folder if PERIOD_PATTERN.match(folder) and split.valid_month.startswith(folder) else split.valid_month
    )
    return f"{period} {MODEL_KIND}"


def run_tags(
    data: TrainingData, split: Split, evaluation: Evaluation, options: dict[str, Any]
) -> dict[str, str]:
    """Lineage, the training window, which champion was scored and on which month (what the gate needs)."""
    comparison = evaluation.comparison
    return {
        **collect_lineage(data.digest),
        **window_tags(describe_window(data, split)),
        SOURCE_NAME_TAG: SOURCE_NAME,
        "validation.month": split.valid_month,
        "model.name": str(options["model_name"]),
        "champion.version": evaluation.champion_version or NONE,
        "champion.run_id": evaluation.champion_run_id or NONE,
        "champion.scored": str(evaluation.champion_metrics is not None).lower(),
        COMPARED_ON_TAG: (comparison.month if comparison else None) or NONE,
        COMPARISON_TAG: comparison.reason if comparison else "",
    }


def log_comparison(evaluation: Evaluation) -> None:
    """The champion's metrics on the compared month, and both gate scores on it."""
    champion, challenger = evaluation.champion_metrics, evaluation.compared_metrics
    if champion is None or challenger is None:
        return
    mlflow.log_metrics(prefix_metrics(champion, "champion"))
    mlflow.log_metrics({CHALLENGER_SCORE: challenger[GATE_METRIC], CHAMPION_SCORE: champion[GATE_METRIC]})


def log_params_and_metrics(data: TrainingData, split: Split, fitted: Fitted, evaluation: Evaluation, options):
    """Search settings, chosen hyper-parameters, row counts and the three sets of metrics."""
    booster = fitted.model.named_steps["model"]
    mlflow.log_params({f"model.{k}": v for k, v in fitted.search.best_params.items()})
    mlflow.log_params(
        {
            "input": mask_secrets(",".join(item.uri for item in data.inputs)),
            "n_inputs": len(data.inputs),
            "seed": options["seed"],
            "max_evals": options["max_evals"],
            "time_budget_s": options["time_budget_s"],
            "threads": options["threads"],
            "trials_run": len(fitted.search.trials),
            "selection_metric": SELECTION_METRIC,
            "max_bins": MAX_BINS,
            "max_iter": MAX_ITER,
            "n_iter": booster.n_iter_,
            "n_train": len(split.train),
            "n_valid": len(split.valid),
            "fit_rows": fitted.fit_rows,
            "search_rows": fitted.search_rows,
            "sampling": SAMPLING,
            **{k: getattr(booster, k) for k in ("early_stopping", "validation_fraction", "n_iter_no_change")},
            **window_tags(describe_window(data, split)),
        }
    )
    mlflow.log_metrics(evaluation.metrics)
    mlflow.log_metrics(prefix_metrics(evaluation.baseline_metrics, "baseline"))
    log_comparison(evaluation)
    mlflow.log_metric("search_best_" + SELECTION_METRIC, fitted.search.best_score)


def log_datasets(data: TrainingData, split: Split) -> None:
    """Each input file as an MLflow data set of its own rows, and every URI with its full digest."""
    start = 0
    for item in data.inputs:
        log_dataset(data.frame.iloc[start : start + item.rows], item, split)
        start += item.rows
    inputs = [
        {"uri": mask_secrets(i.uri), "digest": i.digest, "rows": i.rows, "months": i.months}
        for i in data.inputs
    ]
    mlflow.log_dict({"inputs": inputs}, "inputs.json")


def log_dataset(frame: pd.DataFrame, item: TrainingInput, split: Split) -> None:
    """One input file as an MLflow data set, named by its folder, file and the validation month."""
    path = Path(item.uri)
    source = item.uri if "://" in item.uri else str(path.resolve())
    with warnings.catch_warnings():
        # MLflow warns that a path matches two source types, and hints about integer columns in
        # the data set's schema: neither applies to a data set that is only recorded.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(
            frame,
            source=source,
            targets=LABEL_COLUMN,
            name=f"{path.parent.name}/{path.name} (validation {split.valid_month})",
            digest=item.digest.removeprefix("sha256:")[:DIGEST_CHARS],
        )
    # MLflow infers a data set's schema from every row (a minute for 7.8M trips): a sample has the
    # same columns and types, so the schema is set from it; the profile still counts every row.
    dataset.__dict__["schema"] = infer_signature(frame.head(SCHEMA_ROWS)).inputs
    log_input_once(dataset)


def log_input_once(dataset: Any) -> None:
    """``mlflow.log_input``, again once when a concurrent run stored the same data set first.

    MLflow's server looks a data set up, then inserts it: two runs logging one data set at the same
    moment collide on its unique key (seen with ten pipeline runs at once); the retry finds the row.
    """
    try:
        mlflow.log_input(dataset, context="training")
    except MlflowException as exc:
        if "unique constraint" not in str(exc).lower():
            raise
        log.info("data set %s was stored by a concurrent run; linking it", dataset.name)
        mlflow.log_input(dataset, context="training")


def log_plots(evaluation: Evaluation, fitted: Fitted, seed: int) -> None:
    """Confusion matrix, ROC, precision-recall, calibration and permutation importance."""
    p_model = evaluation.scores["model"]
    importance = compute_importance(fitted.model, evaluation.features, evaluation.labels, seed=seed)
    figures = {
        "confusion_matrix.png": plot_confusion(evaluation.labels, p_model),
        "roc.png": plot_roc(evaluation.labels, evaluation.scores),
        "precision_recall.png": plot_precision_recall(evaluation.labels, evaluation.scores),
        "calibration.png": plot_calibration(evaluation.labels, p_model),
        "feature_importance.png": plot_importance(importance),
    }
    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
    mlflow.log_dict(importance, "feature_importance.json")
    mlflow.log_dict({"trials": fitted.search.trials}, "search_trials.json")


def log_model(model: Any, features: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """The fitted pipeline with its signature, an input example and pinned requirements.

    As a pyfunc (``make serve``) it answers ``predict_proba``: one [P(casual), P(member)] pair per trip.
    """
    sample = features.head(100)
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=infer_signature(sample, model.predict_proba(sample)),
        pyfunc_predict_fn="predict_proba",
        input_example=sample.head(5),
        pip_requirements=pinned_requirements(),
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )


def log_training_run(
    client: MlflowClient,
    experiment: str,
    data: TrainingData,
    split: Split,
    fitted: Fitted,
    evaluation: Evaluation,
    options: dict[str, Any],
) -> tuple[str, str | None]:
    """Log everything about one training run; returns its id and UI link."""
    experiment_id = ensure_experiment(client, experiment)
    tags = run_tags(data, split, evaluation, options)
    with mlflow.start_run(experiment_id=experiment_id, run_name=name_run(data, split), tags=tags) as run:
        log_params_and_metrics(data, split, fitted, evaluation, options)
        log_datasets(data, split)
        log_plots(evaluation, fitted, options["seed"])
        log_reference(split.valid, fitted.model, options["seed"], split.valid_month)
        info = log_model(fitted.model, evaluation.features)
        mlflow.set_tags({"model.uri": info.model_uri, "model.id": info.model_id or ""})
        mlflow.log_dict(json.loads(json.dumps(options, default=str)), "options.json")
    log.info("logged run %s (model %s)", run.info.run_id, info.model_uri)
    return run.info.run_id, build_run_url(client.tracking_uri, experiment_id, run.info.run_id)
