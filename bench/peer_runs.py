"""The peers section: models.data.preprocess beside its Polars, DuckDB and pandas peers, same input.

At each size (the bench's ``--rows`` and ``--rss-rows``) every contender runs in its own child
process, interleaved (models, polars, duckdb, pandas, models, ...), so a burst of load from other
processes hits them alike. A peer counts only when it kept and quarantined the same rows per
reason as models did on that input; the goals compare models with the fastest correct peer.
"""

from __future__ import annotations

import logging
from typing import Any

from bench.inputs import ensure_sample
from bench.measure import ChildFailedError, median_of, run_child
from bench.peers import PEERS
from bench.sections import Context, counts_of

log = logging.getLogger(__name__)

MODELS = "models"
GOAL_PEER_RATIO = 1.0
MB = 1_000_000


def correctness(peer: dict[str, Any], models: dict[str, Any]) -> str:
    """``yes``, or ``no (...)`` naming what differs: rows in, rows kept, the reasons whose counts differ."""
    mine, theirs = counts_of(peer), counts_of(models)
    differ = [name for name in ("rows_in", "rows_out") if mine[name] != theirs[name]]
    reasons = sorted(set(mine["by_reason"]) | set(theirs["by_reason"]))
    differ += [r for r in reasons if mine["by_reason"].get(r, 0) != theirs["by_reason"].get(r, 0)]
    return "yes" if not differ else "no (" + ", ".join(differ) + ")"


def run_contender(ctx: Context, name: str, folder: str, rows: int) -> dict[str, Any] | None:
    """One timed run of models or a peer (None when the peer failed: its log says why)."""
    out = str(ctx.path("out", f"{name}-{rows}.parquet"))
    log_path = ctx.log(f"{name}-{rows}")
    if name == MODELS:
        return run_child("preprocess", {"input": folder, "output": out}, log_path)
    try:
        return run_child("peer", {"engine": name, "input": folder, "output": out}, log_path)
    except ChildFailedError as exc:
        log.warning("%s", exc)
        return None


def measure_size(ctx: Context, rows: int, repeats: int) -> dict[str, Any]:
    """Interleaved runs of models and every peer on the ``rows``-row input; medians and correctness."""
    folder = str(ensure_sample(ctx.work, rows, ctx.seed))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (MODELS, *PEERS)}
    failed: set[str] = set()
    for repeat in range(repeats):
        for name in runs:
            if name in failed:
                continue
            log.info("peers at %s rows: %s, repeat %s of %s", f"{rows:,}", name, repeat + 1, repeats)
            run = run_contender(ctx, name, folder, rows)
            if run is None:
                failed.add(name)
            else:
                runs[name].append(run)
    reference = runs[MODELS][0]
    figures = {}
    for name, found in runs.items():
        if not found:
            figures[name] = {"correct": "no (the run failed; see bench/work/logs)"}
            continue
        seconds = median_of(found, "seconds")
        figures[name] = {
            "rows_per_s": reference["rows_in"] / seconds,
            "seconds": seconds,
            "cpu_seconds": median_of(found, "cpu_seconds"),
            "peak_rss_bytes": max(run["peak_rss_bytes"] for run in found),
            "correct": "yes" if name == MODELS else correctness(found[0], reference),
        }
    return {"rows": reference["rows_in"], "repeats": repeats, "figures": figures, "runs": runs}


def measure_peers(ctx: Context, full_repeats: int) -> dict[str, Any]:
    """The peers at the bench's size (``repeats``) and at the full-year size (``full_repeats``)."""
    sizes = {"default": measure_size(ctx, ctx.rows, ctx.repeats)}
    if ctx.rss_rows and ctx.rss_rows != ctx.rows:
        sizes["full"] = measure_size(ctx, ctx.rss_rows, full_repeats)
    return sizes


def fastest_correct(size: dict[str, Any]) -> str | None:
    """The correct peer with the highest throughput at one size (None when no peer was correct)."""
    correct = [name for name in PEERS if size["figures"][name]["correct"] == "yes"]
    return max(correct, key=lambda name: size["figures"][name]["rows_per_s"], default=None)


def goal_rows(peers: dict[str, Any]) -> list[dict[str, Any]]:
    """Throughput against the fastest correct peer at each size; peak RSS against it at full size."""
    rows = []
    for key, size in peers.items():
        best = fastest_correct(size)
        ours = size["figures"][MODELS]
        label = f"preprocess throughput vs the fastest correct peer, {size['rows']:,} rows"
        if best is None:
            rows.append(no_peer_row(label))
            continue
        theirs = size["figures"][best]
        ratio = ours["rows_per_s"] / theirs["rows_per_s"]
        rows.append(
            {
                "measure": label,
                "value": f"{ours['rows_per_s']:,.0f} rows/s",
                "reference": f"{best}: {theirs['rows_per_s']:,.0f} rows/s",
                "ratio": ratio,
                "goal": f">= {GOAL_PEER_RATIO:.1f}x",
                "holds": ratio >= GOAL_PEER_RATIO,
            }
        )
        if key == "full" or len(peers) == 1:
            rss = ours["peak_rss_bytes"] / theirs["peak_rss_bytes"]
            rows.append(
                {
                    "measure": f"preprocess peak RSS vs that peer, {size['rows']:,} rows",
                    "value": f"{ours['peak_rss_bytes'] / MB:,.0f} MB",
                    "reference": f"{best}: {theirs['peak_rss_bytes'] / MB:,.0f} MB",
                    "ratio": rss,
                    "goal": "<= 1.0x",
                    "holds": rss <= 1.0 if key == "full" else None,
                }
            )
    return rows


def no_peer_row(label: str) -> dict[str, Any]:
    return {"measure": label, "value": "-", "reference": "no correct peer", "ratio": None, "goal": ">= 1.0x"}


def peer_table(peers: dict[str, Any]) -> list[str]:
    """The side-by-side table: every contender at every size."""
    lines = [
        "## Peers: the same rules in Polars, DuckDB and vectorized pandas",
        "",
        "| contender | rows | rows/s | vs models | wall s | CPU s | peak RSS | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for size in peers.values():
        ours = size["figures"][MODELS]
        for name, figures in size["figures"].items():
            if "rows_per_s" not in figures:
                lines.append(f"| {name} | {size['rows']:,} | - | - | - | - | - | {figures['correct']} |")
                continue
            shown = "models.data.preprocess" if name == MODELS else name
            lines.append(
                f"| {shown} | {size['rows']:,} | {figures['rows_per_s']:,.0f} | "
                f"{figures['rows_per_s'] / ours['rows_per_s']:.2f}x | {figures['seconds']:.1f} | "
                f"{figures['cpu_seconds']:.1f} | {figures['peak_rss_bytes'] / MB:,.0f} MB | "
                f"{figures['correct']} |"
            )
    return [*lines, ""]
