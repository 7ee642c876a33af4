"""Vectorised parsing of one raw string column: integers, times, labels and station names.

Each parser takes a fast path first (one C++ cast of the whole column, which succeeds on clean
data) and falls back to the row-precise path only when that cast fails or finds nulls: trim,
turn ``""``/``NULL``/``NULLNULL`` into nulls, and flag each value that is present but unparseable.
Low-cardinality text (station names, labels) is cleaned once per distinct value through a
dictionary, not once per row. Parsers return ``Parsed`` with ``missing``/``bad`` masks, or None
for a mask with no true value.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from models.core.names import CASUAL, MEMBER
from models.data.datetimes import ISO, UNIT, parse_times
from models.data.eras import LABELS

NULL_TOKENS = pa.array(["", "NULL", "NULLNULL"])
NULL_STRING = pa.scalar(None, pa.string())
MEMBER_SPELLINGS = pa.array([k for k, v in LABELS.items() if v == MEMBER])
CASUAL_SPELLINGS = pa.array([k for k, v in LABELS.items() if v == CASUAL])
MAX_SPACE_PASSES = 6
MAX_DIGITS = 18  # int64 holds every 18-digit number


@dataclass(frozen=True)
class Parsed:
    """Parsed values plus masks of missing values and of present-but-unparseable ones (None: none)."""

    values: pa.Array
    missing: pa.Array | None = None
    bad: pa.Array | None = None


def any_true(mask: pa.Array | None) -> bool:
    """True when the mask has at least one true value."""
    return mask is not None and bool(pc.any(mask).as_py())


def clean_text(values: pa.Array) -> pa.Array:
    """Trimmed strings, with empty strings and the literals NULL/NULLNULL as nulls."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.is_in(trimmed, value_set=NULL_TOKENS), NULL_STRING, trimmed)


def collapse_spaces(values: pa.Array) -> pa.Array:
    """Runs of spaces collapsed to one (``Church St  / Wood St`` -> ``Church St / Wood St``)."""
    values = pc.replace_substring(values, "\t", " ")
    for _ in range(MAX_SPACE_PASSES):
        if not any_true(pc.match_substring(values, "  ")):
            break
        values = pc.replace_substring(values, "  ", " ")
    return values


def by_dictionary(values: pa.Array, clean) -> pa.DictionaryArray:
    """Apply ``clean`` to each distinct value once; the result stays dictionary-encoded.

    The cleaned dictionary is encoded again, so that it holds distinct values and no nulls (a null
    is a null index): the Parquet writer then stores it as it is, without hashing every row again.
    """
    encoded = pc.dictionary_encode(values)
    cleaned = pc.dictionary_encode(clean(encoded.dictionary))
    return pa.DictionaryArray.from_arrays(pc.take(cleaned.indices, encoded.indices), cleaned.dictionary)


def parse_names(values: pa.Array) -> Parsed:
    """Station names: trimmed, spaces collapsed, NULL as null (``missing`` marks the nulls)."""
    names = by_dictionary(values, lambda d: collapse_spaces(clean_text(d)))
    return Parsed(names, pc.is_null(names) if names.null_count else None)


def parse_text(values: pa.Array) -> Parsed:
    """Short free text (bike model): trimmed, NULL as null."""
    text = by_dictionary(values, clean_text)
    return Parsed(text, pc.is_null(text) if text.null_count else None)


def map_labels(dictionary: pa.Array) -> pa.Array:
    """``member``/``casual`` for every published spelling in a dictionary; null for anything else."""
    lowered = pc.utf8_lower(clean_text(dictionary))
    casual = pc.if_else(pc.is_in(lowered, value_set=CASUAL_SPELLINGS), CASUAL, NULL_STRING)
    return pc.if_else(pc.is_in(lowered, value_set=MEMBER_SPELLINGS), MEMBER, casual)


def parse_labels(values: pa.Array) -> Parsed:
    """Labels normalised to member/casual; ``bad`` marks present values that are neither."""
    labels = by_dictionary(values, map_labels)
    if not labels.null_count:
        return Parsed(labels)
    missing = pc.is_null(by_dictionary(values, clean_text))
    return Parsed(labels, missing, pc.and_(pc.is_null(labels), pc.invert(missing)))


def integer_text(text: pa.Array, *, signed: bool) -> pa.Array:
    r"""Mask of values that are 1-18 ASCII digits (with an optional leading minus when ``signed``).

    The same as matching ``^-?\d{1,18}$`` (or ``^\d{1,18}$``), without a regex over the column.
    """
    short = pc.less_equal(pc.binary_length(text), MAX_DIGITS)
    ok = pc.and_kleene(pc.ascii_is_decimal(text), short)
    if not signed:
        return ok
    digits = pc.utf8_slice_codeunits(text, 1)
    negative = pc.and_kleene(pc.starts_with(text, "-"), pc.ascii_is_decimal(digits))
    negative = pc.and_kleene(negative, pc.less_equal(pc.binary_length(digits), MAX_DIGITS))
    return pc.or_kleene(ok, negative)


def parse_integer(values: pa.Array, *, signed: bool = False) -> Parsed:
    """int64 values; the slow path only when the direct cast fails or finds a negative id."""
    try:
        ints = pc.cast(values, pa.int64())
        if signed or not any_true(pc.less(ints, 0)):
            return Parsed(ints)
    except pa.ArrowInvalid:
        pass
    text = clean_text(values)
    ok = integer_text(text, signed=signed)
    ints = pc.cast(pc.if_else(ok, text, NULL_STRING), pa.int64())
    missing = pc.is_null(text)
    return Parsed(ints, missing, pc.invert(pc.fill_null(ok, True)))


def parse_time(values: pa.Array, fmt: str) -> Parsed:
    """Naive timestamps in the file's format; the slow path only when some value fails."""
    times = None
    if fmt == ISO[0]:
        try:
            times = pc.cast(values, pa.timestamp(UNIT))
        except pa.ArrowInvalid:
            times = None
    if times is None:
        times = parse_times(values, fmt)
    if not times.null_count:
        return Parsed(times)
    text = clean_text(values)
    times = parse_times(text, fmt)
    missing = pc.is_null(text)
    return Parsed(times, missing, pc.and_(pc.is_null(times), pc.invert(missing)))
