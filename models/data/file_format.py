"""Opening one CSV: its era from the header line, its date format from its start-time values.

The era is decided by the header line alone; the date format per file, from the first batch's
start times (all start and end times for the 2017 Q1-Q2 era, where day-first and month-first
copies exist and the evidence may sit anywhere in the quarter, an end time included; such a file
is kept in memory after that scan instead of being read twice, up to ``KEEP_BYTES``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.data.csv_reader import CsvFile, FileHead, OddRows, open_head, read_batches
from models.data.date_formats import choose_format
from models.data.datetimes import MONTH_FIRST
from models.data.eras import Era, detect_era

log = logging.getLogger(__name__)

SAMPLE_VALUES = 5_000
KEEP_BYTES = 512 * 1024 * 1024  # a 2017 Q1-Q2 quarter is about 60 MB of CSV


@dataclass
class OpenedFile:
    """A CSV whose era and time format are decided, with its batch stream started.

    ``scan`` (digest, line count) is set once ``batches`` is exhausted.
    """

    source: str
    head: FileHead
    era: Era
    fmt: str
    odd: OddRows
    batches: Iterator[pa.RecordBatch]
    scan: tuple[str, int] | None = None


def start_column(era: Era, canonical: str = "start_time") -> str:
    """The published name of the era's start-time column (or of another ``canonical`` column)."""
    return next(name for name, known in era.columns.items() if known == canonical)


def starts_with_digit(values: pa.Array) -> pa.Array:
    """Mask of values whose trimmed text starts with an ASCII digit.

    Read from the first byte of each value (offsets and data buffers, no kernel): only values
    that do not start with a digit, usually none, are trimmed and looked at again.
    """
    values = values.cast(pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], np.int64)[values.offset : values.offset + len(values) + 1]
    data = values.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    nonempty = offsets[1:] > offsets[:-1]
    first = np.zeros(len(values), np.uint8)
    first[nonempty] = data[offsets[:-1][nonempty]]
    digit = (first >= ord("0")) & (first <= ord("9"))
    other = np.flatnonzero(~digit)
    if len(other):
        rest = pc.match_substring_regex(pc.utf8_trim_whitespace(values.take(other)), r"^\d")
        digit[other] = pc.fill_null(rest, False).to_numpy(zero_copy_only=False)
    return pa.array(digit & values.is_valid().to_numpy(zero_copy_only=False))


def start_times(columns: list[pa.Array], era: Era) -> pa.Array:
    """Start times to decide the format from: a spread sample (all of them for 2017 Q1-Q2), trimmed."""
    values = pa.chunked_array(columns, pa.string()).combine_chunks()
    values = values.filter(starts_with_digit(values))
    if not era.day_first_possible and len(values) > SAMPLE_VALUES:
        values = values.take(pa.array(range(0, len(values), len(values) // SAMPLE_VALUES + 1)))
    return pc.utf8_trim_whitespace(values)


def scan_whole(
    csv_file: CsvFile, era: Era, head: FileHead
) -> tuple[list[pa.Array], OddRows, Iterator[pa.RecordBatch]]:
    """All start and end times of a 2017 Q1-Q2 file, and its batches: kept from that scan unless too big."""
    odd = OddRows(expected=len(era.header))
    names, columns, kept, size = [start_column(era), start_column(era, "end_time")], [], [], 0
    for batch in read_batches(csv_file, era, head, odd):
        columns += [batch.column(name) for name in names]
        size += batch.nbytes
        kept = kept if kept is not None and size <= KEEP_BYTES else None
        if kept is not None:
            kept.append(batch)
    if kept is not None:
        return columns, odd, iter(kept)
    log.info("%s: too big to keep in memory, reading it again", csv_file.source)
    odd = OddRows(expected=len(era.header))
    return columns, odd, read_batches(csv_file, era, head, odd)


def open_file(csv_file: CsvFile) -> OpenedFile:
    """Scan a CSV, detect its era from the header and its time format from a sample of values."""
    head = open_head(csv_file.path, csv_file.source)
    era = detect_era(head.header, csv_file.source)
    if era.day_first_possible:
        columns, odd, batches = scan_whole(csv_file, era, head)
    else:
        odd = OddRows(expected=len(era.header))
        batches = read_batches(csv_file, era, head, odd)
        first = next(batches, None)
        columns = [] if first is None else [first.column(start_column(era))]
        batches = chain([first] if first is not None else [], batches)
    sample = start_times(columns, era)
    fmt = MONTH_FIRST[0]  # a file without a single start time quarantines every row anyway
    if len(sample):
        fmt = choose_format(sample, csv_file.source, day_first_possible=era.day_first_possible)
    bom = " (BOM)" if head.bom else ""
    log.info("%s: era %s, %s%s, times %s", csv_file.source, era.name, head.encoding, bom, fmt)
    return OpenedFile(csv_file.source, head, era, fmt, odd, batches)
