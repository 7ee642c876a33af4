"""``make screenshots``: PNGs of the running stack's pages, taken by headless Chromium, for the README.

    agent/.venv/bin/python -m orchestration screenshots --dest docs/images

Six pages, each found through the APIs so the pictures show what the stack holds now: the newest
pipeline run that registered a version (its name and tags show the version and decision), the newest
``score`` flow run's graph and the ``monitoring-history`` artifact (Prefect UI), the newest Evidently
report (downloaded from ``reports/<period>/``, opened as a file), and in MLflow's model-training view
the experiment's runs table and the champion's page.
Chromium (Debian's ``chromium``) runs once per page with a fresh profile and no background traffic.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from models.core.errors import UserError
from models.core.names import CHAMPION
from models.core.settings import Settings

log = logging.getLogger(__name__)

WINDOW = "1400,900"
VIRTUAL_TIME_MS = 15000
SCORE_FLOW = "score"
PIPELINE_FLOW = "to-bikes-pipeline"
GATE_TAG = "gate:"
HISTORY_KEY = "monitoring-history"


def chromium_command(user_dir: Path, *action: str) -> list[str]:
    """Headless Chromium with a throwaway profile; ``action`` is e.g. ``--screenshot=x.png URL``."""
    program = shutil.which("chromium")
    if program is None:
        raise UserError(
            "chromium is not installed; `make screenshots` installs it (apt-get install chromium)."
        )
    return [
        program,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={user_dir}",
        f"--window-size={WINDOW}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        *action,
    ]


def run_chromium(*action: str) -> str:
    """Run Chromium once; its standard output (the DOM for ``--dump-dom``)."""
    with tempfile.TemporaryDirectory(prefix="to-bikes-chromium-") as user_dir:
        done = subprocess.run(
            chromium_command(Path(user_dir), *action), capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise UserError(
            f"chromium failed on {action[-1]} (exit {done.returncode}): {done.stderr.strip()[-300:]}"
        )
    return done.stdout


def take_screenshot(url: str, png: Path) -> Path:
    """One PNG of ``url``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium(f"--screenshot={png.resolve()}", url)
    if not png.is_file():
        raise UserError(f"chromium wrote no {png} for {url}.")
    log.info("%s <- %s", png, url)
    return png


def find_prefect_pages(settings: Settings) -> dict[str, str]:
    """The newest score run's page (its graph) and the monitoring-history artifact's page."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import ArtifactSort, FlowRunSort

    ui = settings.prefect_api_url.removesuffix("/api")
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[SCORE_FLOW])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[HISTORY_KEY])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
        pipeline_runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[PIPELINE_FLOW])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
    # The newest pipeline run that registered a version: its name and tags say the version and decision.
    registered = [run for run in pipeline_runs if any(tag.startswith(GATE_TAG) for tag in run.tags)]
    if not runs or not artifacts or not registered:
        raise UserError(
            "No score flow run, monitoring-history artifact or pipeline run that registered a version yet; "
            "run `make demo` first."
        )
    return {
        "prefect-pipeline-run.png": f"{ui}/runs/flow-run/{registered[0].id}",
        "prefect-flow-run-graph.png": f"{ui}/runs/flow-run/{runs[0].id}",
        "prefect-monitoring-history.png": f"{ui}/artifacts/artifact/{artifacts[0].id}",
    }


def find_mlflow_pages(settings: Settings) -> dict[str, str]:
    """The experiment's training runs table and the champion version's page, in MLflow's model-training
    view (the links ``make demo`` prints; without the view MLflow 3 opens its GenAI traces overview)."""
    from models.registry.mlflow_client import build_experiment_url, build_version_url, connect_tracking

    client = connect_tracking(settings.mlflow_tracking_uri, settings)
    version = client.get_model_version_by_alias(settings.model_name, CHAMPION).version
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        raise UserError(f"No MLflow experiment {settings.experiment!r} yet; run `make demo` first.")
    uri = client.tracking_uri
    return {
        "mlflow-training-runs.png": build_experiment_url(uri, experiment.experiment_id) or uri,
        "mlflow-model-version.png": build_version_url(uri, settings.model_name, version) or uri,
    }


def fetch_latest_report(settings: Settings, workdir: Path) -> Path:
    """The newest period's Evidently report, downloaded from ``reports/<period>/``."""
    from models.core import s3, storage
    from models.scoring.monitor import REPORT_FILE, report_uri

    periods = sorted(s3.list_folders(settings.s3_uri(settings.reports_prefix) + "/", settings))
    if not periods:
        raise UserError("No monitoring report under reports/ yet; run `make score` first.")
    return storage.download_file(report_uri(settings, periods[-1]), workdir / REPORT_FILE, settings)


def take_all(settings: Settings, dest: Path) -> list[Path]:
    """Every screenshot, in the order the README shows them."""
    pages = find_prefect_pages(settings)
    with tempfile.TemporaryDirectory(prefix="to-bikes-report-") as workdir:
        report = fetch_latest_report(settings, Path(workdir))
        pages["evidently-report.png"] = report.resolve().as_uri()
        pages.update(find_mlflow_pages(settings))
        return [take_screenshot(url, dest / name) for name, url in pages.items()]
