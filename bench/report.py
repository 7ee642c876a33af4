"""Turning the measured sections into the results table (Markdown) and the full record (JSON).

Each row of the table is one figure, its same-run reference, their ratio, the goal and whether it
holds; a section that could not be measured says so in its row instead of showing a number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import peer_runs
from bench import sections as s

MB = 1_000_000


def rate(value: float) -> str:
    return f"{value:,.0f} rows/s"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def preprocess_rows(pre: dict[str, Any]) -> list[dict[str, Any]]:
    """Throughput against pyarrow's reader and against the pandas notebook."""
    r = pre["rows_per_s"]
    to_arrow, to_notebook = r["preprocess"] / r["pyarrow"], r["preprocess"] / r["notebook"]
    return [
        {
            "measure": f"preprocess throughput, {pre['rows']:,} rows (physical-limit figure)",
            "value": rate(r["preprocess"]),
            "reference": f"pyarrow.csv.read_csv, same files, no processing: {rate(r['pyarrow'])}",
            "ratio": to_arrow,
            "goal": "- (no goal)",
            "holds": None,
        },
        {
            "measure": "preprocess throughput vs a pandas notebook",
            "value": rate(r["preprocess"]),
            "reference": f"pandas, apply + strptime, {pre['subset_rows']:,} rows: {rate(r['notebook'])}",
            "ratio": to_notebook,
            "goal": f">= {s.GOAL_NOTEBOOK:g}x",
            "holds": to_notebook >= s.GOAL_NOTEBOOK,
        },
    ]


def memory_row(mem: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS against the input size; the goal is judged only at full-year size."""
    full = mem["rows"] >= s.GOAL_RSS_ROWS
    return {
        "measure": f"preprocess peak RSS, {mem['rows']:,} rows",
        "value": f"{mem['peak_rss_bytes'] / MB:,.0f} MB",
        "reference": f"input on disk: {mem['input_bytes'] / MB:,.0f} MB",
        "ratio": mem["peak_rss_bytes"] / mem["input_bytes"],
        "goal": f"< 1 GB at {s.GOAL_RSS_ROWS:,} rows",
        "holds": (mem["peak_rss_bytes"] < s.GOAL_RSS_BYTES) if full else None,
    }


def training_row(train: dict[str, Any]) -> dict[str, Any]:
    """Training time against the baseline's, with both ROC AUCs."""
    seconds = train["median_seconds"]
    auc, base_auc = train["metrics"]["roc_auc"], train["baseline_metrics"]["roc_auc"]
    return {
        "measure": f"train on processed {s.TRAIN_YEAR} ({train['rows']:,} trips), ROC AUC {auc:.3f}",
        "value": f"{seconds['train']:.1f} s",
        "reference": f"prior baseline (read, split, fit, score): {seconds['baseline']:.1f} s, "
        f"ROC AUC {base_auc:.3f}",
        "ratio": seconds["train"] / seconds["baseline"],
        "goal": f"< {s.GOAL_TRAIN_S:g} s",
        "holds": seconds["train"] < s.GOAL_TRAIN_S,
    }


def training_before_row(train: dict[str, Any]) -> dict[str, Any]:
    """Issue 29: training now against training before it, same file and split: time and ROC AUC."""
    seconds = train["median_seconds"]
    auc, before = train["metrics"]["roc_auc"], train["metrics_before"]["roc_auc"]
    ratio = seconds["train"] / seconds["train_before"]
    return {
        "measure": f"train on processed {s.TRAIN_YEAR} ({train['rows']:,} trips) vs training before "
        f"(validated on {train['valid_month']}): ROC AUC {before:.4f} -> {auc:.4f}",
        "value": f"{seconds['train']:.1f} s, ROC AUC {auc:.4f}",
        "reference": f"models/ at {train['reference_commit']}: {seconds['train_before']:.1f} s, "
        f"ROC AUC {before:.4f}",
        "ratio": ratio,
        "goal": f"<= {s.GOAL_TRAIN_RATIO:g}x, ROC AUC drop <= {s.GOAL_AUC_DROP:g}",
        "holds": ratio <= s.GOAL_TRAIN_RATIO and before - auc <= s.GOAL_AUC_DROP,
    }


def build_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """All table rows in order; sections missing from ``results`` are left out."""
    rows: list[dict[str, Any]] = []
    if "preprocess" in results:
        rows += preprocess_rows(results["preprocess"])
    if "peers" in results:
        rows += peer_runs.goal_rows(results["peers"])
    if "memory" in results:
        rows.append(memory_row(results["memory"]))
    if "training" in results:
        rows.append(training_row(results["training"]))
        if "metrics_before" in results["training"]:
            rows.append(training_before_row(results["training"]))
    rows += results.get("orchestration", {}).get("rows", [])
    rows += results.get("scale", {}).get("rows", [])
    return rows


def render_markdown(results: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results page: how it was made, the table, then the environment."""
    env = results["environment"]
    lines = [
        "# to-bikes benchmark results",
        "",
        f"Made by `{results['command']}` on {results['finished']} (commit {env['git_commit']}).",
        f"{env['cores']} cores, load average {env['load_start']} at start, {env['load_end']} at the end; "
        f"timings are medians of {results['repeats']} interleaved runs unless said otherwise.",
        "",
        "| measure | value | reference | ratio | goal | holds? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        cells = [row["measure"], row["value"], row["reference"], ratio, row["goal"], verdict(row["holds"])]
        lines.append("| " + " | ".join(cells) + " |")
    if "peers" in results:
        lines += ["", *peer_runs.peer_table(results["peers"])]
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()), ""]
    lines += [f"- {note}" for note in results.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """Write ``results.md`` and ``results.json`` into ``folder``; returns the table rows."""
    rows = build_rows(results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.md").write_text(render_markdown(results, rows), encoding="utf-8")
    record = {**results, "table": rows}
    (folder / "results.json").write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    return rows
