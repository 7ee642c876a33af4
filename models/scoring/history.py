"""Every monitored period so far, one row each: the month-by-month view of how the champion did.

Read from the ``reports/<period>/monitoring.json`` summaries ``models.scoring.monitor`` writes, so the
history needs neither MLflow searches nor old data, and a period monitored again replaces its row.
Each row says whether the champion trained on the period (``sample``: ``in-sample`` rows' figures cannot
show a worse model; ``models.scoring.window``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from models.core import s3, storage
from models.core.settings import Settings
from models.scoring.drift import describe_drift
from models.scoring.monitor import SUMMARY_FILE, report_uri

log = logging.getLogger(__name__)

ROW_METRICS = (
    "roc_auc",
    "pr_auc_casual",
    "f1_member",
    "f1_casual",
    "member_share_predicted",
    "member_share_actual",
)


def history_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The columns a person compares month to month."""
    metrics = summary["metrics"]
    return {
        "period": summary["period"],
        "verdict": summary["verdict"],
        "sample": summary.get("sample", "unknown"),  # summaries written before the field was kept
        "model_version": summary["model_version"],
        "rows": summary["rows"],
        "validation_roc_auc": round(summary["validation_roc_auc"] or float("nan"), 4),
        **{name: round(metrics[name], 4) for name in ROW_METRICS},
        "drift_share": round(summary["drift_share"], 3),
        "drifted": ", ".join(summary["drifted"]) or "-",
        "not_judged": ", ".join(summary.get("drift_not_judged", {})) or "-",  # older summaries judged all
        "report": summary["report"],
    }


def read_history(settings: Settings) -> list[dict[str, Any]]:
    """One row per period with a monitoring summary, oldest period first."""
    prefix = settings.s3_uri(settings.reports_prefix) + "/"
    rows = []
    with tempfile.TemporaryDirectory(prefix="to-bikes-history-") as workdir:
        for period in sorted(s3.list_folders(prefix, settings)):
            uri = report_uri(settings, period, SUMMARY_FILE)
            if not s3.object_exists(uri, settings):
                continue
            local = storage.download_file(uri, Path(workdir) / f"{period}.json", settings)
            rows.append(history_row(json.loads(local.read_text())))
    log.info("monitoring history: %s period(s)", len(rows))
    return rows


def read_summary(settings: Settings, period: str) -> dict[str, Any]:
    """The monitoring summary of one period (``reports/<period>/monitoring.json``)."""
    with tempfile.TemporaryDirectory(prefix="to-bikes-summary-") as workdir:
        local = storage.download_file(
            report_uri(settings, period, SUMMARY_FILE), Path(workdir) / SUMMARY_FILE, settings
        )
        return json.loads(local.read_text())


def describe_sample(summary: dict[str, Any]) -> str:
    """How the period relates to the champion's training window, and what drift is measured against."""
    note = summary.get("sample_note") or "no training window known"
    head = f"sample: {summary.get('sample', 'unknown')}"
    if summary.get("sample") != "in-sample":  # an in-sample verdict already gives the note as its reason
        head += f" ({note})"
    return f"{head}; drift reference: {summary.get('reference') or 'unknown'}"


def describe_summary(summary: dict[str, Any], predictions: str, report_link: str | None = None) -> list[str]:
    """What a person reads after ``make score``: where things went, the figures and the verdict.

    ``report_link``: an http link to the Evidently report (``models.scoring.monitor.report_link``).
    """
    metrics = summary["metrics"]
    reasons = "; ".join(summary["reasons"]) or "within the thresholds"
    return [
        f"predictions: {predictions} ({summary['rows']} trips, champion version {summary['model_version']})",
        f"ROC AUC {metrics['roc_auc']:.4f} (validation {summary['validation_roc_auc'] or float('nan'):.4f}), "
        f"PR AUC casual {metrics['pr_auc_casual']:.4f}, F1 member {metrics['f1_member']:.4f}, "
        f"F1 casual {metrics['f1_casual']:.4f}",
        f"member share predicted {metrics['member_share_predicted']:.1%}, "
        f"actual {metrics['member_share_actual']:.1%}",
        describe_drift(summary),
        f"verdict: {summary['verdict'].upper()} ({reasons})",
        describe_sample(summary),
        f"Evidently report: {report_link or summary['report']}",
        f"MLflow monitoring run: {summary.get('monitoring_run_url') or summary.get('monitoring_run_id')}",
    ]
