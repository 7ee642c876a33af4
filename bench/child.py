"""One measured task in a fresh process: ``python -m bench.child TASK JSON_ARGS``.

Imports and set-up happen before the clock starts; the last stdout line is a JSON object with the
task's own result plus ``seconds`` (wall clock) and ``cpu_seconds`` (all threads). The parent reads
this process's peak resident memory from ``os.wait4``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any


def run_preprocess(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """models.data.preprocess on the input folder (optionally one period)."""
    from models.data.preprocess import preprocess

    def task() -> dict[str, Any]:
        summary = preprocess(args["input"], args["output"], period=args.get("period"))
        keys = ("rows_in", "rows_out", "quarantined", "other_period", "by_reason")
        return {k: getattr(summary, k) for k in keys}

    return task


def run_pyarrow(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """pyarrow's CSV reader over the same files, no processing."""
    from bench.reference import read_input

    return lambda: read_input(args["input"])


def run_notebook(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The pandas notebook-style cleaning."""
    from bench.notebook import clean_input

    return lambda: clean_input(args["input"], args["output"])


def run_peer(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """One peer of models.data.preprocess (bench/peers/): Polars, DuckDB or vectorized pandas."""
    import importlib

    module = importlib.import_module(f"bench.peers.{args['engine']}_peer")
    return lambda: module.clean_input(args["input"], args["output"])


def run_train(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """models.training.train on the processed year; the tracking store is created before the clock starts."""
    import pyarrow.parquet as pq
    from mlflow import MlflowClient

    from models.training.train import train_model

    MlflowClient(tracking_uri=args["tracking_uri"]).search_experiments()  # creates the tables

    def task() -> dict[str, Any]:
        result = train_model(args["input"], tracking_uri=args["tracking_uri"], seed=7)
        return {
            "metrics": result.metrics,
            "baseline_metrics": result.baseline_metrics,
            "valid_month": result.valid_month,
            "rows": pq.ParquetFile(args["input"]).metadata.num_rows,
        }

    return task


def run_baseline(args: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """The baseline alone: read the same file, split by month, fit the prior and score it."""
    import numpy as np

    from models.data.features import LABEL_COLUMN
    from models.training.dataset import read_labelled_trips, split_by_month
    from models.training.estimator import build_baseline
    from models.training.metrics import compute_metrics, member_probability

    def task() -> dict[str, Any]:
        split = split_by_month(read_labelled_trips(args["input"]), args["input"])
        labels = split.train[LABEL_COLUMN].to_numpy()
        baseline = build_baseline().fit(np.zeros((len(labels), 1)), labels)
        valid = split.valid[LABEL_COLUMN].to_numpy()
        p_member = member_probability(baseline, np.zeros((len(valid), 1)))
        return {"metrics": compute_metrics(valid, p_member)}

    return task


TASKS = {
    "preprocess": run_preprocess,
    "pyarrow": run_pyarrow,
    "notebook": run_notebook,
    "peer": run_peer,
    "train": run_train,
    "baseline": run_baseline,
}


def main(argv: list[str]) -> int:
    """Set up the task, time it, print the result as JSON."""
    logging.basicConfig(level=logging.WARNING)
    task = TASKS[argv[0]](json.loads(argv[1]))
    wall, cpu = time.perf_counter(), time.process_time()
    result = task()
    result.update(seconds=time.perf_counter() - wall, cpu_seconds=time.process_time() - cpu)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
