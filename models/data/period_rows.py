"""Rows of other periods: a month (or year) run reads only the trips that start in its period.

A row whose start time parses and falls outside ``--period`` is not a bad row: it is dropped before
any other check, written nowhere and counted as ``other_period`` (its own period's run reads it).
A row whose start time cannot be read is checked as usual and quarantined with its reason, since
no period can be told for it. The start times parsed here are handed on, so they are parsed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from models.data.checks import count_true, raw_column
from models.data.column_parsers import Parsed, parse_time
from models.data.eras import Era


@dataclass(frozen=True)
class InPeriod:
    """A batch's rows that a run of the period reads, their parsed start times, and how many were not."""

    batch: pa.RecordBatch
    start: Parsed | None  # None when no period is set (the checks parse the start times)
    other_period: int = 0


def period_outside(start: pa.Array, period: str | None) -> pa.Array | None:
    """Mask of start times outside ``YYYY`` or ``YYYY-MM`` (None when no period is set; null stays null)."""
    if period is None:
        return None
    outside = pc.not_equal(pc.year(start), int(period[:4]))
    if len(period) == 7:
        outside = pc.or_(outside, pc.not_equal(pc.month(start), int(period[5:7])))
    return outside


def filter_parsed(parsed: Parsed, keep: pa.Array) -> Parsed:
    """The parsed values and their masks, for the rows of ``keep`` only."""
    masks = [None if mask is None else mask.filter(keep) for mask in (parsed.missing, parsed.bad)]
    return Parsed(parsed.values.filter(keep), *masks)


def split_period(batch: pa.RecordBatch, era: Era, fmt: str, period: str | None) -> InPeriod:
    """The rows of ``batch`` whose start time is in ``period`` or unreadable; the others only counted."""
    if period is None:
        return InPeriod(batch, None)
    start = parse_time(raw_column(batch, era, "start_time"), fmt)
    outside = pc.fill_null(period_outside(start.values, period), False)
    other = count_true(outside)
    if not other:
        return InPeriod(batch, start)
    keep = pc.invert(outside)
    return InPeriod(batch.filter(keep), filter_parsed(start, keep), other)
