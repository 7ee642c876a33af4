"""The preprocessing rules as tables any of the peers can read: eras, formats, labels, reasons, limits.

A user writing one of the peers would copy these from the data stage's documentation; the era
headers are read from ``models.data.eras`` (definitions only) and the Ontario holidays from
``models.data.holidays`` (a date table), nothing else of ``models`` is used. The format of a file is
chosen here with the same thresholds as the data stage, from the shares of a sample of at most
``SAMPLE_VALUES`` start times that the engine parses in each candidate format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from models.data.eras import ERAS, UTF8_BOM
from models.data.holidays import holidays_for

NULL_TOKENS = ("", "NULL", "NULLNULL")
LABELS = {"member": "member", "annual member": "member", "casual": "casual", "casual member": "casual"}
MIN_DURATION_S = 60
MAX_DURATION_S = 24 * 3600
MAX_FIELD_BYTES = 1000
MAX_DIGITS = 18
BLANK_CHARS = " \t\r\n,"
SAMPLE_VALUES = 5_000
MIN_PARSED_SHARE = 0.95
MIN_BEST_SHARE = 0.5
MIN_YEAR = 2000
# Two-digit years first: "%Y" would also read "17" as the year 17.
MONTH_FIRST = ("%m/%d/%y %H:%M:%S", "%m/%d/%y %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S")
ISO = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
DAY_FIRST = ("%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")
SLASH_DATE = r"^(\d{1,2})/(\d{1,2})/"
OUTPUT_COLUMNS = (
    "trip_id",
    "start_time",
    "end_time",
    "duration_s",
    "start_station_id",
    "start_station_name",
    "end_station_id",
    "end_station_name",
    "bike_id",
    "bike_model",
    "user_type",
    "source_file",
    "hour",
    "weekday",
    "month",
    "is_weekend",
    "is_holiday",
    "round_trip",
)
CANONICAL_COLUMNS = OUTPUT_COLUMNS[:12]  # up to source_file; the features follow


class RuleError(ValueError):
    """A file the rules refuse (unknown header, no usable date format, ambiguous day order)."""


@dataclass(frozen=True)
class Layout:
    """One era as the peers need it: field count, 0-based position of each canonical column."""

    name: str
    fields: int
    position: dict[str, int]
    has_station_ids: bool
    day_first_possible: bool


def layouts() -> dict[tuple[str, ...], Layout]:
    """Header fields -> layout, for every era."""
    found = {}
    for era in ERAS:
        position = {canonical: era.header.index(published) for published, canonical in era.columns.items()}
        found[era.header] = Layout(
            era.name, len(era.header), position, era.has_station_ids, era.day_first_possible
        )
    return found


def detect_layout(header_line: str, source: str) -> Layout:
    """The era whose header is exactly ``header_line`` (BOM and surrounding whitespace stripped)."""
    fields = tuple(header_line.lstrip(UTF8_BOM).strip().split(","))
    layout = layouts().get(fields)
    if layout is None:
        raise RuleError(f"File {source} has an unknown header {header_line[:200]!r}.")
    return layout


def format_candidates(
    layout: Layout, mostly_slashed: bool, first_over_12: bool, second_over_12: bool, source: str
) -> tuple[str, ...]:
    """Day-first formats only for the 2017 Q1-Q2 era when the evidence says so; mixed or none is an error."""
    if not (layout.day_first_possible and mostly_slashed):
        return MONTH_FIRST + ISO
    if first_over_12 and second_over_12:
        raise RuleError(f"File {source} has dates with a day above 12 in both the first and second field.")
    if not (first_over_12 or second_over_12):
        raise RuleError(f"File {source} is ambiguous: no date has a field above 12.")
    return DAY_FIRST if first_over_12 else MONTH_FIRST + ISO


def pick_format(share_of: Callable[[str], float], candidates: tuple[str, ...], source: str) -> str:
    """The first candidate parsing nearly all of the sample, else the best one if it parses most.

    ``share_of(fmt)`` is the engine's share of the sample that parses in ``fmt`` to a year from
    ``MIN_YEAR`` on (0 for an empty sample).
    """
    best, best_share = candidates[0], -1.0
    for fmt in candidates:
        share = share_of(fmt)
        if share >= MIN_PARSED_SHARE:
            return fmt
        if share > best_share:
            best, best_share = fmt, share
    if best_share >= MIN_BEST_SHARE:
        return best
    raise RuleError(
        f"File {source} has start times in no known format (best {best} parsed {best_share:.0%})."
    )


def sample_step(size: int) -> int:
    """Every how many start times one is sampled, for at most ``SAMPLE_VALUES`` of them."""
    return size // SAMPLE_VALUES + 1


def holiday_dates(years: list[int]) -> list[dt.date]:
    """Ontario statutory holidays (observed days included) of the given years."""
    return holidays_for(year for year in years if dt.MINYEAR <= year < dt.MAXYEAR)


def summary(rows_out: int, by_reason: dict[str, int]) -> dict[str, object]:
    """The counts every peer returns, in the shape of ``models.data.preprocess``'s summary."""
    quarantined = sum(by_reason.values())
    return {
        "rows_in": rows_out + quarantined,
        "rows_out": rows_out,
        "quarantined": quarantined,
        "by_reason": dict(sorted(by_reason.items())),
    }
