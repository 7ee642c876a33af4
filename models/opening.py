"""Opening one CSV: its era from the header, its date format from a sample of its values.

The era is decided by the header line alone; the date format per file, from the first batch's
start times (all of them for the 2017 Q1-Q2 era, where day-first and month-first copies exist
and the evidence may sit anywhere in the quarter). The batch stream continues where the sample
left off, so no row is read twice except in that small era.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain

import pyarrow as pa
import pyarrow.compute as pc

from models.readers import CsvFile, FileHead, OddRows, open_head, read_batches
from models.schema import Era, detect_era
from models.timeparse import MONTH_FIRST, choose_format

log = logging.getLogger(__name__)

SAMPLE_VALUES = 5_000


def sample_start_times(first: pa.RecordBatch | None, csv_file: CsvFile, era: Era, head: FileHead) -> pa.Array:
    """Start times to decide the format from: the first batch, or the whole column for 2017 Q1-Q2."""
    column = next(name for name, canonical in era.columns.items() if canonical == "start_time")
    if era.day_first_possible:
        odd = OddRows(expected=len(era.header))
        values = [batch.column(column) for batch in read_batches(csv_file, era, head, odd)]
        chunked = pa.chunked_array(values, pa.string()).combine_chunks()
    else:
        chunked = first.column(column) if first is not None else pa.array([], pa.string())
    values = pc.utf8_trim_whitespace(chunked)
    values = values.filter(pc.match_substring_regex(values, r"^\d"))
    if not era.day_first_possible and len(values) > SAMPLE_VALUES:
        values = values.take(pa.array(range(0, len(values), len(values) // SAMPLE_VALUES + 1)))
    return values


@dataclass(frozen=True)
class OpenedFile:
    """A CSV whose era and time format are decided, with its batch stream started."""

    head: FileHead
    era: Era
    fmt: str
    odd: OddRows
    batches: Iterator[pa.RecordBatch]


def open_file(csv_file: CsvFile) -> OpenedFile:
    """Scan a CSV, detect its era from the header and its time format from a sample of values."""
    head = open_head(csv_file.path, csv_file.source)
    era = detect_era(head.header, csv_file.source)
    odd = OddRows(expected=len(era.header))
    batches = read_batches(csv_file, era, head, odd)
    first = next(batches, None)
    sample = sample_start_times(first, csv_file, era, head)
    fmt = MONTH_FIRST[0]  # a file without a single start time quarantines every row anyway
    if len(sample):
        fmt = choose_format(sample, csv_file.source, day_first_possible=era.day_first_possible)
    bom = " (BOM)" if head.bom else ""
    log.info("%s: era %s, %s%s, times %s", csv_file.source, era.name, head.encoding, bom, fmt)
    return OpenedFile(head, era, fmt, odd, chain([first] if first is not None else [], batches))
