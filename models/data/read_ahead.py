"""Every CSV of an input opened (``models.data.file_format``) and read ahead in background threads.

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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from models.core.settings import Settings
from models.data.csv_reader import iter_csv_files
from models.data.encodings import digest_and_lines
from models.data.file_format import OpenedFile, open_file

log = logging.getLogger(__name__)

READ_AHEAD = 3  # items (batches, file starts and ends) queued ahead of the caller
POLL_S = 0.1


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


def file_events(
    root: str, work: Path, settings: Settings | None, selected: Sequence[str] | None = None
) -> Iterator[object]:
    """Per CSV of the input: its ``OpenedFile``, then its batches, then its ``Scanned``.

    The repaired rows (extra empty fields) come last, as one more batch, once the reader is done.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest") as scanner:
        for csv_file in iter_csv_files(root, work, settings, selected):
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
    root: str,
    work: Path,
    settings: Settings | None = None,
    prepare: Prepare = as_is,
    selected: Sequence[str] | None = None,
) -> Iterator[OpenedFile]:
    """Each CSV of the input, opened and read ahead in a background thread, in name order.

    ``prepare(opened, batch)`` runs in a second thread, on every batch (the repaired rows last):
    work that needs no state of the run is done there, overlapping both the reading and the
    caller's work. The caller must exhaust each file's ``batches`` (the prepared items) before
    asking for the next file. ``selected``: only these files under ``root`` (a month run's).
    """
    with (
        ReadAhead(file_events(root, work, settings, selected), READ_AHEAD, "read-ahead") as reading,
        ReadAhead(prepared_events(iter(reading), prepare), READ_AHEAD, "prepare") as ahead,
    ):
        events = iter(ahead)
        for event in events:
            if not isinstance(event, OpenedFile):
                raise RuntimeError("the batches of the previous file were not all consumed")
            event.batches = batches_until_scanned(events, event)
            yield event
