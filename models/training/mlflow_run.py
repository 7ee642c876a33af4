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
from models.core.secrets import mask_secrets
from models.registry.mlflow_client import SKOPS_TRUSTED_TYPES, pinned_requirements
from models.training.candidates import Evaluation, Fitted
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


def ensure_experiment(experiment: str) -> str:
    """The id of the named experiment, created when missing."""
    try:
        return mlflow.set_experiment(experiment).experiment_id
    except MlflowException as exc:
        why = mask_secrets(str(exc.message))
        raise UserError(f"MLflow experiment {experiment!r} cannot be used ({why}).") from exc


def build_run_url(client: MlflowClient, experiment_id: str, run_id: str) -> str | None:
    """A link to the run in the MLflow UI when the tracking store is a server, else None."""
    uri = client.tracking_uri
    if not uri.startswith(("http://", "https://")):
        return None
    return mask_secrets(f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}")


def run_tags(digest: str, split: Split, evaluation: Evaluation, options: dict[str, Any]) -> dict[str, str]:
    """Lineage tags plus what the gate needs: the validation month and which champion was scored."""
    return {
        **collect_lineage(digest),
        "validation.month": split.valid_month,
        "model.name": str(options["model_name"]),
        "champion.version": evaluation.champion_version or "none",
        "champion.run_id": evaluation.champion_run_id or "none",
        "champion.scored": str(evaluation.champion_metrics is not None).lower(),
    }


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
        }
    )
    mlflow.log_metrics(evaluation.metrics)
    mlflow.log_metrics(prefix_metrics(evaluation.baseline_metrics, "baseline"))
    if evaluation.champion_metrics is not None:
        mlflow.log_metrics(prefix_metrics(evaluation.champion_metrics, "champion"))
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
    """The fitted pipeline with its signature, an input example and pinned requirements."""
    sample = features.head(100)
    return mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT,
        signature=infer_signature(sample, model.predict(sample)),
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
    experiment_id = ensure_experiment(experiment)
    with mlflow.start_run(
        experiment_id=experiment_id, tags=run_tags(data.digest, split, evaluation, options)
    ) as run:
        log_params_and_metrics(data, split, fitted, evaluation, options)
        log_datasets(data, split)
        log_plots(evaluation, fitted, options["seed"])
        info = log_model(fitted.model, evaluation.features)
        mlflow.set_tags({"model.uri": info.model_uri, "model.id": info.model_id or ""})
        mlflow.log_dict(json.loads(json.dumps(options, default=str)), "options.json")
    log.info("logged run %s (model %s)", run.info.run_id, info.model_uri)
    return run.info.run_id, build_run_url(client, experiment_id, run.info.run_id)
