"""Which date format a file is written in, decided once per file from a sample of its start times.

The published files change format from month to month (zero padding, seconds, two-digit years).
Only the 2017 Q1-Q2 era exists both month-first and day-first; for it the evidence decides (a first
field above 12 means day-first, a second field above 12 month-first). A file without evidence is
ambiguous only when the two readings differ for some value: one whose every date has day equal to
month (``1/1/2017``, ``2/2/2017``) reads the same both ways and is read. A file with differing
readings and no evidence, or with evidence both ways, is an error.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc

from models.core.errors import UserError
from models.data.datetimes import DAY_FIRST, ISO, MIN_YEAR, MONTH_FIRST, SLASH_DATE, parse_times

log = logging.getLogger(__name__)

MIN_PARSED_SHARE = 0.95
MIN_BEST_SHARE = 0.5


def parsed_share(values: pa.Array, fmt: str) -> float:
    """Share of the non-null ``values`` that parse in ``fmt``."""
    present = values.drop_null()
    if len(present) == 0:
        return 0.0
    separator = "/" if "/" in fmt else "-"  # a literal in the format: a value without it cannot parse
    if not pc.any(pc.match_substring(present, separator)).as_py():
        return 0.0
    parsed = parse_times(present, fmt)
    plausible = pc.sum(pc.greater_equal(pc.year(parsed), MIN_YEAR)).as_py() or 0
    return plausible / len(present)


def pick_format(values: pa.Array, candidates: tuple[str, ...], source: str) -> str:
    """The first candidate that parses nearly all sample values, else the best one if it parses most.

    A few bad values in a small file must not fail the run (they are quarantined row by row), but
    a file where no format parses most values is a UserError naming the file.
    """
    best, best_share = candidates[0], -1.0
    for fmt in candidates:
        share = parsed_share(values, fmt)
        if share >= MIN_PARSED_SHARE:
            return fmt
        if share > best_share:
            best, best_share = fmt, share
    if best_share >= MIN_BEST_SHARE:
        return best
    example = values.drop_null()[0].as_py() if len(values.drop_null()) else None
    raise UserError(
        f"File {source} has start times in no known format (e.g. {example!r}; best {best} "
        f"parsed {best_share:.0%})."
    )


def decide_day_first(values: pa.Array, source: str) -> bool:
    """True when the evidence says day-first, False month-first (also when both readings agree).

    No evidence while the readings differ for some value, or evidence both ways, is a UserError.
    """
    parts = pc.extract_regex(values.drop_null(), SLASH_DATE)
    first = pc.cast(pc.struct_field(parts, "first"), pa.int32())
    second = pc.cast(pc.struct_field(parts, "second"), pa.int32())
    day_first = bool(pc.any(pc.greater(first, 12)).as_py())
    month_first = bool(pc.any(pc.greater(second, 12)).as_py())
    if day_first and month_first:
        raise UserError(f"File {source} has dates with a day above 12 in both the first and second field.")
    if not (day_first or month_first) and bool(pc.all(pc.equal(first, second)).as_py()):
        log.info("%s: every date has day equal to month, so both readings agree", source)
        return False
    if not (day_first or month_first):
        raise UserError(
            f"File {source} is ambiguous: no date has a field above 12, so day-first and month-first "
            "cannot be told apart; fix or replace the file."
        )
    return day_first


def choose_format(start_times: pa.Array, source: str, *, day_first_possible: bool) -> str:
    """The format of one file, decided from a sample of its times (all start and end times for 2017 Q1-Q2)."""
    sample = start_times.drop_null()
    if len(sample) == 0:
        raise UserError(f"File {source} has no start times to decide its date format from.")
    slashed = sample.filter(pc.match_substring_regex(sample, SLASH_DATE))
    mostly_slashed = len(slashed) >= MIN_PARSED_SHARE * len(sample)
    if day_first_possible and mostly_slashed and decide_day_first(slashed, source):
        return pick_format(sample, DAY_FIRST, source)
    return pick_format(sample, MONTH_FIRST + ISO, source)
