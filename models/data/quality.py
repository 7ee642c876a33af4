"""The data-quality record of one preprocessing run: counts per era and file, quarantine reasons,
rows kept with nulls, label share per month, and loud warnings.

The counts are accumulated batch by batch while the data streams past, so the report costs no
second pass. A month whose member share moves more than ``SHARE_JUMP`` from the previous month
present gets a warning: the real 2023 files collapsed their labels (about 6% members), and a model
must not be trained silently on that.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.core.contracts import PreprocessSummary
from models.core.names import CASUAL, MEMBER

log = logging.getLogger(__name__)

SHARE_JUMP = 0.25
MIN_MONTH_TRIPS = 100  # fewer trips than this in a month are too few to judge its share


@dataclass
class FileStats:
    """What one input CSV was and what became of its rows."""

    era: str
    encoding: str
    bom: bool
    time_format: str
    digest: str = ""
    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    other_period: int = 0  # rows starting outside the run's period: skipped, counted
    blank_lines: int = 0
    repaired_rows: int = 0


def month_label_keys(year: np.ndarray, month: np.ndarray, labels: pa.Array) -> pa.Array:
    """``(year * 100 + month) * 2 + is_member`` per trip: integers, since formatting dates is slow."""
    if pa.types.is_dictionary(labels.type):  # compare the indices with the index of "member"
        position = pc.index(labels.dictionary, MEMBER).as_py()
        indices = pc.fill_null(labels.indices, -1).to_numpy()
        member = indices == position
    else:
        member = pc.fill_null(pc.equal(labels, MEMBER), False).to_numpy(zero_copy_only=False)
    return pa.array((year * 100 + month) * 2 + member)


@dataclass
class QualityTracker:
    """Running totals for a run; ``summary`` and ``report`` turn them into JSON-ready dicts."""

    files: dict[str, FileStats] = field(default_factory=dict)
    by_reason: Counter = field(default_factory=Counter)
    by_era: Counter = field(default_factory=Counter)
    kept_with_nulls: Counter = field(default_factory=Counter)
    month_labels: dict[str, Counter] = field(default_factory=dict)

    def add_reasons(self, source: str, reasons: pa.Array) -> None:
        """Count one batch's rows: kept (null reason) or quarantined by reason."""
        stats = self.files[source]
        stats.rows_in += len(reasons)
        self.by_era[stats.era] += len(reasons)
        quarantined = len(reasons) - reasons.null_count
        stats.quarantined += quarantined
        stats.rows_out += reasons.null_count
        if quarantined:
            for item in pc.value_counts(reasons.drop_null()).to_pylist():
                self.by_reason[item["values"]] += item["counts"]

    def add_other_period(self, source: str, count: int) -> None:
        """Count one batch's rows of other periods (read, then skipped: neither kept nor quarantined)."""
        stats = self.files[source]
        stats.rows_in += count
        stats.other_period += count
        self.by_era[stats.era] += count

    def add_label_keys(self, keys: pa.Array) -> None:
        """Count kept trips by their ``month_label_keys``."""
        if not len(keys):
            return
        for item in pc.value_counts(keys).to_pylist():
            month, is_member = divmod(item["values"], 2)
            label = MEMBER if is_member else CASUAL
            name = f"{month // 100:04d}-{month % 100:02d}"
            self.month_labels.setdefault(name, Counter())[label] += item["counts"]

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files.values())

    @property
    def rows_out(self) -> int:
        return sum(f.rows_out for f in self.files.values())

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files.values())

    @property
    def other_period(self) -> int:
        return sum(f.other_period for f in self.files.values())


def month_shares(tracker: QualityTracker) -> dict[str, dict[str, Any]]:
    """Per month: member and casual counts and the member share, in month order."""
    shares = {}
    for month in sorted(tracker.month_labels):
        counts = tracker.month_labels[month]
        total = counts["member"] + counts["casual"]
        share = round(counts["member"] / total, 4) if total else None
        shares[month] = {"member": counts["member"], "casual": counts["casual"], "member_share": share}
    return shares


def share_warnings(shares: dict[str, dict[str, Any]], jump: float = SHARE_JUMP) -> list[str]:
    """One warning per month whose member share moved more than ``jump`` from the previous month."""
    warnings, previous = [], None
    for month, row in shares.items():
        share = row["member_share"]
        if share is None or row["member"] + row["casual"] < MIN_MONTH_TRIPS:
            continue
        if previous is not None and abs(share - previous[1]) > jump:
            warnings.append(
                f"LABEL SHIFT: member share {share:.1%} in {month} vs {previous[1]:.1%} in {previous[0]} "
                f"(moved more than {jump:.0%} points); check the labels before training on it."
            )
        previous = (month, share)
    return warnings


def overall_share(tracker: QualityTracker) -> dict[str, float]:
    """Share of member and casual among all kept trips."""
    totals: Counter = Counter()
    for counts in tracker.month_labels.values():
        totals.update(counts)
    total = totals["member"] + totals["casual"]
    return {label: round(totals[label] / total, 4) if total else 0.0 for label in ("member", "casual")}


def build_summary(tracker: QualityTracker, **extra: Any) -> PreprocessSummary:
    """The run's summary (what the CLI prints): totals, reasons, eras, files, label shares, warnings."""
    shares = month_shares(tracker)
    warnings = share_warnings(shares)
    for warning in warnings:
        log.warning("%s", warning)
    return PreprocessSummary(
        rows_in=tracker.rows_in,
        rows_out=tracker.rows_out,
        quarantined=tracker.quarantined,
        other_period=tracker.other_period,
        by_reason=dict(sorted(tracker.by_reason.items())),
        by_era=dict(sorted(tracker.by_era.items())),
        by_file={name: stats.rows_in for name, stats in tracker.files.items()},
        kept_with_nulls=dict(sorted(tracker.kept_with_nulls.items())),
        label_share=overall_share(tracker),
        label_share_by_month={month: row["member_share"] for month, row in shares.items()},
        warnings=warnings,
        **extra,
    )


def build_report(tracker: QualityTracker, summary: PreprocessSummary) -> dict[str, Any]:
    """The full JSON report: the summary plus per-file detail and monthly label counts."""
    return {
        **summary.to_dict(),
        "files": {name: asdict(stats) for name, stats in tracker.files.items()},
        "label_counts_by_month": month_shares(tracker),
    }


def render_file_row(name: str, f: dict[str, Any]) -> str:
    """One Markdown table row for a file's stats."""
    bom = "yes" if f["bom"] else "no"
    counts = " | ".join(
        str(f.get(k, 0))
        for k in ("rows_in", "rows_out", "quarantined", "other_period", "blank_lines", "repaired_rows")
    )
    return f"| {name} | {f['era']} | {f['encoding']} | {bom} | `{f['time_format']}` | {counts} |"


def render_section(title: str, header: str, rows: list[str]) -> list[str]:
    """One Markdown section: a title and a table (``header`` is ``name|name`` with ``:`` for numbers)."""
    names = header.split("|")
    align = "|".join("---:" if name.endswith(":") else "---" for name in names)
    return [f"## {title}", "", f"| {' | '.join(n.rstrip(':') for n in names)} |", f"|{align}|", *rows, ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: warnings first and loud, then the tables."""
    lines = ["# Data-quality report", ""]
    lines += [f"> **WARNING** {warning}" for warning in report["warnings"]]
    lines += [""] if report["warnings"] else []
    lines += [
        f"Input `{report.get('input')}` ({report.get('input_digest')}); "
        f"period {report.get('period') or 'all'}, minimum duration {report.get('min_duration_s')} s.",
        "",
        f"Rows in **{report['rows_in']}** = kept **{report['rows_out']}** + quarantined "
        f"**{report['quarantined']}** + other periods (skipped) **{report.get('other_period', 0)}**.",
        "",
    ]
    lines += render_section(
        "Quarantine reasons", "reason|rows:", [f"| {k} | {v} |" for k, v in report["by_reason"].items()]
    )
    lines += render_section(
        "Kept with nulls", "column|rows:", [f"| {k} | {v} |" for k, v in report["kept_with_nulls"].items()]
    )
    file_rows = [render_file_row(name, stats) for name, stats in report["files"].items()]
    header = "file|era|encoding|BOM|time format|rows in:|kept:|quarantined:|other period:|blank:|repaired:"
    lines += render_section("Files", header, file_rows)
    months = report["label_counts_by_month"].items()
    month_rows = [f"| {m} | {r['member']} | {r['casual']} | {r['member_share']} |" for m, r in months]
    lines += render_section("Label share per month", "month|member:|casual:|member share:", month_rows)
    return "\n".join(lines)
