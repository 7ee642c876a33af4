"""The measured sections of the benchmark: preprocessing throughput, peak memory, training time.

Every figure is paired with a reference measured in the same run on the same generated data, and
repeated timings are interleaved (A, B, C, A, B, C, ...) so that a burst of load from other
processes on the machine hits every contender alike.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.inputs import ensure_sample, input_bytes
from bench.measure import median_of, run_child
from bench.training_reference import REFERENCE_COMMIT, ensure_reference_tree

log = logging.getLogger(__name__)

GOAL_NOTEBOOK = 5.0
GOAL_RSS_BYTES = 1_000_000_000
GOAL_RSS_ROWS = 7_800_000
GOAL_TRAIN_S = 60.0
GOAL_TRAIN_RATIO = 0.5  # issue 29: at most half of the training time before it
GOAL_AUC_DROP = 0.002  # ... with a validation ROC AUC at most this much below the one before
TRAIN_YEAR = "2025"


@dataclass(frozen=True)
class Context:
    """Where the bench works and how big and how often it measures."""

    work: Path
    rows: int
    seed: int
    repeats: int
    subset_rows: int
    rss_rows: int
    train_repeats: int

    def path(self, *parts: str) -> Path:
        target = self.work.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def log(self, name: str) -> Path:
        return self.path("logs", f"{name}.log")


def counts_of(result: dict[str, Any]) -> dict[str, Any]:
    """Rows in, out, quarantined and reasons (``reason:detail`` folded to ``reason``) for comparing."""
    reasons: dict[str, int] = {}
    for reason, count in result["by_reason"].items():
        key = reason.split(":", 1)[0]
        reasons[key] = reasons.get(key, 0) + count
    return {"rows_in": result["rows_in"], "rows_out": result["rows_out"], "by_reason": reasons}


def measure_preprocess(ctx: Context) -> dict[str, Any]:
    """models.data.preprocess vs pyarrow's reader (same files) and vs the pandas notebook (on a subset)."""
    main = ensure_sample(ctx.work, ctx.rows, ctx.seed)
    subset = ensure_sample(ctx.work, ctx.subset_rows, ctx.seed)
    runs: dict[str, list[dict[str, Any]]] = {"preprocess": [], "pyarrow": [], "notebook": []}
    for repeat in range(ctx.repeats):
        log.info("preprocessing, repeat %s of %s", repeat + 1, ctx.repeats)
        out = str(ctx.path("out", "trips.parquet"))
        runs["preprocess"].append(run_child("preprocess", {"input": str(main), "output": out}, ctx.log("pp")))
        runs["pyarrow"].append(run_child("pyarrow", {"input": str(main)}, ctx.log("pyarrow")))
        nb_args = {"input": str(subset), "output": str(ctx.path("out", "notebook.parquet"))}
        runs["notebook"].append(run_child("notebook", nb_args, ctx.log("nb")))
    same = run_child("preprocess", {"input": str(subset), "output": out}, ctx.log("pp-subset"))
    rows, subset_rows = runs["preprocess"][0]["rows_in"], runs["notebook"][0]["rows_in"]
    rate = {name: rows / median_of(found, "seconds") for name, found in runs.items()}
    rate["notebook"] = subset_rows / median_of(runs["notebook"], "seconds")
    return {
        "rows": rows,
        "subset_rows": subset_rows,
        "input_bytes": input_bytes(main),
        "rows_per_s": rate,
        "median_seconds": {name: median_of(found, "seconds") for name, found in runs.items()},
        "subset_preprocess_seconds": same["seconds"],
        "same_counts_as_notebook": counts_of(same) == counts_of(runs["notebook"][0]),
        "runs": runs,
    }


def measure_memory(ctx: Context, pre: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS of preprocessing a full-year-sized input (``rss_rows``) in a child process."""
    if ctx.rss_rows in (0, ctx.rows):
        peak = max(run["peak_rss_bytes"] for run in pre["runs"]["preprocess"])
        return {"rows": pre["rows"], "input_bytes": pre["input_bytes"], "peak_rss_bytes": peak}
    folder = ensure_sample(ctx.work, ctx.rss_rows, ctx.seed)
    out = str(ctx.path("out", "year.parquet"))
    run = run_child("preprocess", {"input": str(folder), "output": out}, ctx.log("pp-rss"))
    return {
        "rows": run["rows_in"],
        "input_bytes": input_bytes(folder),
        "peak_rss_bytes": run["peak_rss_bytes"],
        "seconds": run["seconds"],
        "rows_per_s": run["rows_in"] / run["seconds"],
    }


def measure_training(ctx: Context) -> dict[str, Any]:
    """train_model now and as it was (``bench.training_reference``), and the prior baseline, on one file.

    The three run interleaved in child processes on the main sample's processed 2025, so they read the
    same trips and validate on the same month; each train run logs to a fresh throw-away SQLite store.
    """
    folder = ensure_sample(ctx.work, ctx.rows, ctx.seed) / TRAIN_YEAR
    features = str(ctx.path("out", f"trips-{TRAIN_YEAR}.parquet"))
    year_args = {"input": str(folder), "output": features, "period": TRAIN_YEAR}
    run_child("preprocess", year_args, ctx.log("pp-year"))
    reference = ensure_reference_tree(ctx.work)
    runs: dict[str, list[dict[str, Any]]] = {"train": [], "train_before": [], "baseline": []}
    for repeat in range(ctx.train_repeats):
        log.info("training, repeat %s of %s", repeat + 1, ctx.train_repeats)
        for name, first in (("train_before", reference), ("train", None)):
            store = fresh_store(ctx.work / "mlflow" / name)
            args = {"input": features, "tracking_uri": f"sqlite:///{store / 'mlflow.db'}"}
            runs[name].append(run_child("train", args, ctx.log(name), cwd=store, first_on_path=first))
        runs["baseline"].append(run_child("baseline", {"input": features}, ctx.log("baseline")))
    return {
        "rows": runs["train"][0].get("rows"),
        "median_seconds": {name: median_of(found, "seconds") for name, found in runs.items()},
        "metrics": runs["train"][0]["metrics"],
        "metrics_before": runs["train_before"][0]["metrics"],
        "baseline_metrics": runs["baseline"][0]["metrics"],
        "valid_month": runs["train"][0]["valid_month"],
        "valid_month_before": runs["train_before"][0]["valid_month"],
        "reference_commit": REFERENCE_COMMIT,
        "runs": runs,
    }


def fresh_store(store: Path) -> Path:
    """An empty folder for a throw-away MLflow tracking store (one per run, so no run sees another's)."""
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    return store
