"""Ontario statutory holidays, computed by rule for any year (no table to keep up to date).

The nine statutory holidays of the Employment Standards Act: New Year's Day, Family Day (third
Monday of February), Good Friday, Victoria Day (the Monday before May 25), Canada Day, Labour Day
(first Monday of September), Thanksgiving (second Monday of October), Christmas and Boxing Day.
When a fixed-date holiday falls on a weekend, the weekday it is observed on is included too:
riders behave on the day off, not on the calendar date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

MONDAY = 0
SATURDAY = 5


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def nth_monday(year: int, month: int, n: int) -> dt.date:
    """The n-th Monday (1-based) of a month."""
    first = dt.date(year, month, 1)
    offset = (MONDAY - first.weekday()) % 7
    return first + dt.timedelta(days=offset + 7 * (n - 1))


def monday_before(day: dt.date) -> dt.date:
    """The last Monday strictly before ``day`` (Victoria Day: the Monday before May 25)."""
    back = (day.weekday() - MONDAY) % 7 or 7
    return day - dt.timedelta(days=back)


def observed_fixed(days: list[dt.date]) -> list[dt.date]:
    """Weekday substitutes for fixed-date holidays that fall on a weekend (Dec 25/26 shift together)."""
    taken = set(days)
    observed: list[dt.date] = []
    for day in days:
        if day.weekday() >= SATURDAY:
            substitute = day + dt.timedelta(days=7 - day.weekday())
            while substitute in taken or substitute.weekday() >= SATURDAY:
                substitute += dt.timedelta(days=1)
            taken.add(substitute)
            observed.append(substitute)
    return observed


def ontario_holidays(year: int) -> list[dt.date]:
    """Statutory holidays of ``year`` in date order, with observed substitutes for weekend dates."""
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 1), dt.date(year, 12, 25), dt.date(year, 12, 26)]
    moving = [
        nth_monday(year, 2, 3),
        easter_sunday(year) - dt.timedelta(days=2),
        monday_before(dt.date(year, 5, 25)),
        nth_monday(year, 9, 1),
        nth_monday(year, 10, 2),
    ]
    return sorted({*fixed, *moving, *observed_fixed(fixed)})


def holidays_for(years: Iterable[int]) -> list[dt.date]:
    """Every statutory (and observed) holiday of the given years."""
    return sorted(day for year in set(years) for day in ontario_holidays(year))
