"""``make demo``'s closing lines: the champion model's metrics and where to look next.

    agent/.venv/bin/python -m orchestration champion

Reads ``models:/<model>@champion`` from the MLflow registry (the tracking URI from the settings)
and prints its version, run, training and validation months, the gate's reason, lineage tags and
metrics next to the baseline's, direct links to the run and the model version in the MLflow UI, then
the Prefect and MLflow UI addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.core.errors import UserError
from models.core.names import CHAMPION
from models.core.secrets import mask_secrets
from models.core.settings import Settings

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

SHOWN_TAGS = (
    "data.train_months",
    "data.valid_month",
    "gate.compared_on",
    "gate.reason",
    "git.commit",
    "prefect.flow_run_id",
    "prefect.deployment",
    "data.digest",
)


def describe_champion(settings: Settings) -> list[str]:
    """Lines describing the current champion; a registry without one is a UserError."""
    from models.registry.mlflow_client import connect_tracking, find_alias_version

    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    version = find_alias_version(client, settings.model_name, CHAMPION)
    if version is None:
        where = mask_secrets(settings.mlflow_tracking_uri)
        raise UserError(f"{settings.model_name} has no champion in {where} yet; run `make run`.")
    run = client.get_run(version.run_id)
    lines = [
        f"champion: models:/{settings.model_name}@champion = version {version.version}, run {run.info.run_id}"
    ]
    lines += [f"  {tag}: {run.data.tags[tag]}" for tag in SHOWN_TAGS if tag in run.data.tags]
    metrics = run.data.metrics
    for name in sorted(k for k in metrics if not k.startswith(("baseline_", "champion_", "gate_"))):
        baseline = metrics.get(f"baseline_{name}")
        suffix = f"   (baseline {baseline:.4f})" if baseline is not None else ""
        lines.append(f"  {name:>14}: {metrics[name]:.4f}{suffix}")
    return [*lines, *describe_links(client.tracking_uri, settings.model_name, version, run)]


def describe_links(tracking_uri: str, name: str, version: ModelVersion, run: Run) -> list[str]:
    """Direct links (MLflow UI, model-training view) to the champion's run, version and experiment."""
    from models.registry.mlflow_client import build_experiment_url, build_run_url, build_version_url

    experiment = run.info.experiment_id
    run_url = build_run_url(tracking_uri, experiment, run.info.run_id)
    version_url = build_version_url(tracking_uri, name, str(version.version))
    experiment_url = build_experiment_url(tracking_uri, experiment)
    return [
        f"  run: {run_url or run.info.run_id}",
        f"  model version: {version_url or version.version}",
        f"  experiment runs: {experiment_url or experiment}",
    ]


def describe_addresses(settings: Settings) -> list[str]:
    """Where the UIs are: MLflow's as the training runs of the experiment (its model-training view)."""
    from prefect.settings import PREFECT_UI_URL

    return [f"Prefect UI: {PREFECT_UI_URL.value()}", f"MLflow UI:  {mlflow_ui_address(settings)}"]


def mlflow_ui_address(settings: Settings) -> str:
    """The experiment's runs table in MLflow's model-training view; the UI's home (GenAI view unless the
    browser chose otherwise) only while the experiment does not exist yet or the store is not a server."""
    from models.registry.mlflow_client import build_experiment_url, build_ui_url, connect_tracking

    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        url = build_experiment_url(client.tracking_uri, experiment.experiment_id)
    else:
        url = build_ui_url(client.tracking_uri, "experiments")
    return url or mask_secrets(settings.mlflow_tracking_uri)
