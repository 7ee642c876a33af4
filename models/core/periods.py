"""Periods: a year (``YYYY``) or a month (``YYYY-MM``), the unit every stage reads and writes.

Processed outputs live under ``processed/<period>/``, a pipeline run is for one period, a backfill for
a range of months. Parsing, checking and the one-sentence error for a bad period live here only.
A month is also handled as an integer key, ``year * 12 + month - 1``, so ranges are plain ranges.
"""

from __future__ import annotations

import re

from models.core.errors import UserError

PERIOD_PATTERN = re.compile(r"^\d{4}(-(0[1-9]|1[0-2]))?$")
MONTH_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
YEAR_PATTERN = re.compile(r"^\d{4}$")


def check_period(period: str, what: str = "Period") -> str:
    """``period`` itself when it is ``YYYY`` or ``YYYY-MM``; else a UserError naming ``what``."""
    if not PERIOD_PATTERN.match(str(period)):
        raise UserError(f"{what} {period!r} is not YYYY or YYYY-MM.")
    return period


def format_period(year: int | str, month: int | str | None = None) -> str:
    """``"YYYY"`` or ``"YYYY-MM"`` from a year and an optional month; impossible values are a UserError."""
    if not YEAR_PATTERN.match(str(year).strip()):
        raise UserError(f"Parameter year={year!r} is not a four-digit year.")
    if month is None:
        return str(year).strip()
    try:
        number = int(str(month).strip())
    except ValueError:
        number = 0
    if not 1 <= number <= 12:
        raise UserError(f"Parameter month={month!r} is not between 1 and 12.")
    return f"{int(year):04d}-{number:02d}"


def is_month(period: str) -> bool:
    """True for ``YYYY-MM``, False for ``YYYY``."""
    return len(period) == 7


def month_key(month: str) -> int:
    """The integer key of ``YYYY-MM`` (year * 12 + month - 1)."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def format_month(key: int) -> str:
    """``YYYY-MM`` of a month key (year * 12 + month - 1)."""
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def months_before(month: str, count: int) -> list[str]:
    """The ``count`` months before ``YYYY-MM``, oldest first."""
    key = month_key(month)
    return [format_month(k) for k in range(key - count, key)]


def month_range(first: str, last: str, names: tuple[str, str] = ("FROM", "TO")) -> list[str]:
    """Every ``YYYY-MM`` from ``first`` to ``last`` inclusive; ``names`` name the two in errors."""
    keys = []
    for name, text in zip(names, (first, last), strict=True):
        if not MONTH_PATTERN.match(text or ""):
            raise UserError(f"{name}={text!r} is not a month like 2024-01.")
        keys.append(month_key(text))
    if keys[0] > keys[1]:
        raise UserError(f"{names[0]}={first} is after {names[1]}={last}.")
    return [format_month(key) for key in range(keys[0], keys[1] + 1)]


def format_month_ranges(months: list[str] | tuple[str, ...] | set[str]) -> str:
    """Months as a compact list of runs, e.g. ``2025-01..2025-11`` or ``2024-03,2024-05..2024-06``."""
    keys = sorted({month_key(month) for month in months})
    runs: list[list[int]] = []
    for key in keys:
        if runs and key == runs[-1][1] + 1:
            runs[-1][1] = key
        else:
            runs.append([key, key])
    return ",".join(format_month(a) if a == b else f"{format_month(a)}..{format_month(b)}" for a, b in runs)


def parse_month_ranges(text: str) -> list[str]:
    """The months of a ``format_month_ranges`` string, oldest first; anything else is a UserError."""
    months: list[str] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        first, _, last = part.partition("..")
        months += month_range(first, last or first, ("month range start", "month range end"))
    return sorted(set(months), key=month_key)
