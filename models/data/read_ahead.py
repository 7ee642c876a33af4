"""Opening each CSV of an input (era from the header, date format from its values), read ahead.

The era is decided by the header line alone; the date format per file, from the first batch's
start times (all of them for the 2017 Q1-Q2 era, where day-first and month-first copies exist
and the evidence may sit anywhere in the quarter; such a file is kept in memory after that scan
instead of being read twice, up to ``KEEP_BYTES``).

Finding, unpacking, hashing, parsing and decoding run in a background thread, a few batches
ahead; a second thread prepares each batch (the caller's ``prepare``: checks and features), and
the caller keeps only the work that must follow input order. The next file is read while the
current one is checked and written, so both cores work. Memory stays bounded by twice
``READ_AHEAD`` batches (one CSV block each).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.data.encodings import digest_and_lines
from models.data.csv_reader import CsvFile, FileHead, OddRows, iter_csv_files, open_head, read_batches
from models.data.eras import Era, detect_era
from models.core.settings import Settings
from models.data.datetimes import MONTH_FIRST, choose_format

log = logging.getLogger(__name__)

SAMPLE_VALUES = 5_000
KEEP_BYTES = 512 * 1024 * 1024  # a 2017 Q1-Q2 quarter is about 60 MB of CSV
READ_AHEAD = 3  # items (batches, file starts and ends) queued ahead of the caller
POLL_S = 0.1


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


def start_column(era: Era) -> str:
    """The published name of the era's start-time column."""
    return next(name for name, canonical in era.columns.items() if canonical == "start_time")


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
    """All start times of a 2017 Q1-Q2 file, and its batches: kept from that scan unless too big."""
    odd = OddRows(expected=len(era.header))
    column, columns, kept, size = start_column(era), [], [], 0
    for batch in read_batches(csv_file, era, head, odd):
        columns.append(batch.column(column))
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


@dataclass(frozen=True)
class Failed:
    """An error raised while reading ahead, handed to the caller to raise in its own thread."""

    error: Exception


DONE = object()
Prepare = Callable[["OpenedFile", pa.RecordBatch], Any]


class ReadAhead:
    """Runs an iterator in a background thread, at most ``depth`` items ahead of the consumer.

    Errors are raised in the consumer at the point of the stream where they happened. ``close``
    (or leaving the ``with`` block) stops the thread and runs the iterator's own clean-up there.
    """

    def __init__(self, items: Iterator, depth: int, name: str = "read-ahead") -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.fill, args=(items,), name=name, daemon=True)
        self.thread.start()

    def fill(self, items: Iterator) -> None:
        """The thread: put every item, or the error that ended the iterator, then the end marker."""
        try:
            for item in items:
                if not self.put(item):
                    break
        except Exception as exc:  # re-raised in the consumer
            self.put(Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
            self.put(DONE)

    def put(self, item: object) -> bool:
        """Queue one item, waiting while the queue is full; False once the consumer has stopped."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator:
        while (item := self.queue.get()) is not DONE:
            if isinstance(item, Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (its iterator's clean-up included)."""
        self.stopping.set()
        self.thread.join()

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class Scanned:
    """The end of one file's batches: its digest and line count."""

    digest: str
    lines: int


def as_is(_opened: OpenedFile, batch: pa.RecordBatch) -> pa.RecordBatch:
    """The default ``prepare``: batches reach the caller as they were read."""
    return batch


def file_events(root: str, work: Path, settings: Settings | None) -> Iterator[object]:
    """Per CSV of the input: its ``OpenedFile``, then its batches, then its ``Scanned``.

    The repaired rows (extra empty fields) come last, as one more batch, once the reader is done.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest") as scanner:
        for csv_file in iter_csv_files(root, work, settings):
            scanned = scanner.submit(digest_and_lines, csv_file.path)  # hashing overlaps the parse
            opened = open_file(csv_file)
            yield opened
            yield from opened.batches
            repaired = opened.odd.repaired_batch(list(opened.era.header))
            if repaired is not None:
                yield repaired
            yield Scanned(*scanned.result())  # before the scratch copy is removed


def prepared_events(events: Iterator[object], prepare: Prepare) -> Iterator[object]:
    """The same stream with ``prepare(opened, batch)`` in place of each batch."""
    opened = None
    for event in events:
        if isinstance(event, OpenedFile):
            opened = event
        yield prepare(opened, event) if isinstance(event, pa.RecordBatch) else event


def batches_until_scanned(events: Iterator[object], opened: OpenedFile) -> Iterator[Any]:
    """The file's prepared batches from the shared stream; sets ``opened.scan`` at its end."""
    for event in events:
        if isinstance(event, Scanned):
            opened.scan = (event.digest, event.lines)
            return
        yield event


def opened_files(
    root: str, work: Path, settings: Settings | None = None, prepare: Prepare = as_is
) -> Iterator[OpenedFile]:
    """Each CSV of the input, opened and read ahead in a background thread, in name order.

    ``prepare(opened, batch)`` runs in a second thread, on every batch (the repaired rows last):
    work that needs no state of the run is done there, overlapping both the reading and the
    caller's work. The caller must exhaust each file's ``batches`` (the prepared items) before
    asking for the next file.
    """
    with (
        ReadAhead(file_events(root, work, settings), READ_AHEAD, "read-ahead") as reading,
        ReadAhead(prepared_events(iter(reading), prepare), READ_AHEAD, "prepare") as ahead,
    ):
        events = iter(ahead)
        for event in events:
            if not isinstance(event, OpenedFile):
                raise RuntimeError("the batches of the previous file were not all consumed")
            event.batches = batches_until_scanned(events, event)
            yield event
