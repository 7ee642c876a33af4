"""Date-time formats of the ridership files and their vectorised parsing (one format per file).

The format of a file is chosen by ``models.data.date_formats``. Parsed values are naive local
Toronto wall-clock times: the files carry no offset, and keeping them naive keeps DST gaps and
repeats exactly as published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Two-digit-year formats come first: "%Y" would also accept "17" as the year 17.
MONTH_FIRST = (
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
)
ISO = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
DAY_FIRST = ("%d/%m/%y %H:%M:%S", "%d/%m/%y %H:%M", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")
MIN_YEAR = 2000
UNIT = "s"
SLASH_DATE = r"^(?P<first>\d{1,2})/(?P<second>\d{1,2})/"


ROLLOVER_DAYS = 3  # strptime rolls impossible days over: Feb 30 -> Mar 2, Jun 31 -> Jul 1
FIELD_WIDTHS = {"%Y": 4, "%y": 2, "%m": 2, "%d": 2, "%H": 2, "%M": 2, "%S": 2}
DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def unpadded(values: pa.Array) -> pa.Array:
    """Date-time text without leading zeros (``08/01/2024 00:00`` -> ``8/1/2024 0:0``)."""
    return pc.replace_substring_regex(values, r"\b0+(\d)", r"\1")


def written_month(values: pa.Array, fmt: str) -> pa.Array:
    """The month number as written in each value, read from its position in ``fmt``."""
    separator = "-" if fmt.startswith("%Y-") else "/"
    position = fmt.split(" ")[0].split(separator).index("%m")
    parts = pc.split_pattern(pc.utf8_trim_whitespace(values), separator, max_splits=2)
    return pc.cast(pc.list_element(parts, position), pa.int64())


def rolled_over(parsed: pa.Array, values: pa.Array, fmt: str) -> pa.Array:
    """True where strptime rolled an impossible day into the next month (the month differs from the text)."""
    try:
        return pc.not_equal(pc.month(parsed), written_month(values, fmt))
    except (pa.ArrowInvalid, ValueError):  # an odd layout: print the value back and compare
        printed = unpadded(pc.strftime(parsed, format=fmt))
        return pc.not_equal(printed, unpadded(pc.utf8_trim_whitespace(values)))


def parse_times(values: pa.Array, fmt: str) -> pa.Array:
    """Timestamps (naive, seconds) for strings in ``fmt``; unparseable values become null.

    Zero-padded values (nearly all of them) are read digit by digit from the buffers; strptime
    sees only the rest, and gives the same timestamps for the padded ones (a test compares them).
    """
    layout = fixed_layout(fmt)
    if layout is None or not mostly_width(values, layout.size):
        return parse_strptime(values, fmt)
    seconds, ok = parse_fixed(values, layout)
    if ok.all():
        return pa.array(seconds, pa.timestamp(UNIT))
    others = np.flatnonzero(~ok)
    slow = parse_strptime(values.take(pa.array(others)), fmt)
    seconds[others] = slow.fill_null(0).cast(pa.int64()).to_numpy()
    ok[others] = slow.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(seconds, pa.timestamp(UNIT), mask=~ok)


def mostly_width(values: pa.Array, size: int) -> bool:
    """True when most values are ``size`` bytes long (zero-padded in a format of that width)."""
    if not len(values):
        return False
    lengths = pc.binary_length(values)
    return (pc.sum(pc.equal(lengths, size)).as_py() or 0) * 2 >= len(values)


@dataclass(frozen=True, eq=False)
class Layout:
    """Where each field and literal of a format sits when every field is written zero-padded."""

    size: int
    fields: dict[str, tuple[int, int]]  # "Y", "m", ... -> (position, width)
    literals: tuple[tuple[int, int], ...]  # (position, byte)


@cache
def fixed_layout(fmt: str) -> Layout | None:
    """The zero-padded layout of ``fmt``; None when it has a field of no fixed width."""
    fields, literals, position = {}, [], 0
    for token in re.findall(r"%.|[^%]", fmt):
        if token.startswith("%"):
            if token not in FIELD_WIDTHS:
                return None
            fields[token[1]] = (position, FIELD_WIDTHS[token])
            position += FIELD_WIDTHS[token]
        else:
            literals.append((position, ord(token)))
            position += 1
    return Layout(position, fields, tuple(literals))


def days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), vectorised."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def fixed_width_chars(values: pa.Array, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose value is exactly ``size`` bytes, and those bytes as a size x rows matrix."""
    text = values if values.type in (pa.string(), pa.large_string()) else values.cast(pa.large_string())
    width = np.int64 if text.type == pa.large_string() else np.int32
    offsets = np.frombuffer(text.buffers()[1], width)[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    fits = np.diff(offsets) == size
    if text.null_count:
        fits &= text.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(fits)
    if len(rows) == len(text):  # all of them: the bytes are one contiguous block
        block = data[offsets[0] : offsets[0] + size * len(rows)].reshape(len(rows), size)
        return rows, np.ascontiguousarray(block.T)
    starts = offsets[:-1][rows]
    chars = np.empty((size, len(rows)), np.uint8)
    for position in range(size):
        chars[position] = data[starts + position]
    return rows, chars


def read_fields(chars: np.ndarray, layout: Layout) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each field's number per row, and the mask of rows whose literals and digits are in place."""
    low, high = layout_bounds(layout)
    good = ((chars >= low[:, None]) & (chars <= high[:, None])).all(axis=0)
    values = {}
    for name, (position, width) in layout.fields.items():
        value = chars[position].astype(np.int32) - ord("0")
        for column in range(position + 1, position + width):
            value = value * 10 + chars[column] - ord("0")
        values[name] = value
    return values, good


@cache
def layout_bounds(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest byte allowed at each position: a digit, or the format's literal."""
    low = np.full(layout.size, ord("0"), np.uint8)
    high = np.full(layout.size, ord("9"), np.uint8)
    for position, byte in layout.literals:
        low[position] = high[position] = byte
    return low, high


def parse_fixed(values: pa.Array, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the epoch and the mask of values read: exact width, digits, real dates and times."""
    rows, chars = fixed_width_chars(values, layout.size)
    fields, good = read_fields(chars, layout)
    zero = np.zeros(len(rows), np.int32)
    year = fields["Y"] if "Y" in fields else fields.get("y", zero) + 2000
    if "y" in fields:
        year = np.where(year >= 2069, year - 100, year)  # strptime's pivot: 69-99 are the 1900s
    month, day = fields.get("m", zero), fields.get("d", zero)
    hour, minute, second = fields.get("H", zero), fields.get("M", zero), fields.get("S", zero)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    good &= (hour <= 23) & (minute <= 59) & (second <= 59)
    stamp = days_from_civil(year, month, day).astype(np.int64) * 86400 + (hour * 3600 + minute * 60 + second)
    seconds, ok = np.zeros(len(values), np.int64), np.zeros(len(values), bool)
    seconds[rows], ok[rows] = np.where(good, stamp, 0), good
    return seconds, ok


def parse_strptime(values: pa.Array, fmt: str) -> pa.Array:
    """strptime, with its rolled-over impossible days (``2025-02-30`` -> ``2025-03-02``) made null.

    Values landing on days 1-3 must still show the month their text names.
    """
    parsed = pc.strptime(values, format=fmt, unit=UNIT, error_is_null=True)
    suspect = pc.indices_nonzero(pc.fill_null(pc.less_equal(pc.day(parsed), ROLLOVER_DAYS), False))
    if len(suspect) == 0:
        return parsed
    rolled = rolled_over(parsed.take(suspect), values.take(suspect), fmt)
    bad = np.zeros(len(parsed), dtype=bool)
    bad[suspect.filter(rolled).to_numpy()] = True
    return pc.if_else(pa.array(bad), pa.scalar(None, parsed.type), parsed)
