"""Finding the CSV files in an input (folder, CSV, ZIP, S3 prefix) and streaming them as string batches.

Inputs are handled one file at a time: an S3 object is downloaded, a ZIP unpacked (nested ZIPs and
sub-folders included, ``__MACOSX`` junk ignored) into a scratch folder, read, then deleted, so
disk holds one input and memory a few batches at most. Each CSV is read by pyarrow in record
batches with every column as a string; rows with the wrong number of fields are handed back for
quarantine, never dropped.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from models.core import storage
from models.core.errors import UserError
from models.core.settings import Settings
from models.data.encodings import (
    UTF8_BOM_BYTES,
    BatchDecoder,
    UndecodableRows,
    head_encoding,
    read_head,
)
from models.data.eras import Era
from models.data.unzip import CsvFile, unpack_zip

log = logging.getLogger(__name__)

BLOCK_SIZE = 16 * 1024 * 1024
BLANK_CHARS = " \t\r\n,"  # a line of only these holds no row (counted as blank)


@dataclass
class FileHead:
    """What the first bytes say: the header line, a leading BOM, the encoding (updated while reading)."""

    header: str
    bom: bool
    encoding: str
    decoder: BatchDecoder = field(init=False)

    def __post_init__(self) -> None:
        self.decoder = BatchDecoder(self.encoding)


@dataclass
class OddRows:
    """Rows the CSV parser could not shape: repaired rows (extra empty fields) and rows to quarantine."""

    expected: int
    repaired: list[list[str]] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    def handle(self, row: pacsv.InvalidRow) -> str:
        """pyarrow's invalid-row hook: sort the row, then always skip it in the parsed batch.

        An unterminated quote makes the parser swallow the following lines into this row: the
        first line is quarantined, and each swallowed line is sorted again on its own.
        """
        first, *swallowed = (row.text or "").splitlines() or [""]
        self.sort_line(first)
        for line in swallowed:
            self.sort_line(line, whole_only=True)
        return "skip"

    def sort_line(self, text: str, *, whole_only: bool = False) -> None:
        """Blank (whitespace/commas only): no row. Extra empty fields: repaired. Else: quarantined."""
        if not text.strip(BLANK_CHARS):
            return
        fields = next(csv.reader([text]), [])
        extra = fields[self.expected :]
        fits = len(fields) == self.expected if whole_only else len(fields) > self.expected
        if fits and not any(value.strip() for value in extra):
            self.repaired.append(fields[: self.expected])
        else:
            self.broken.append(text)

    def repaired_batch(self, names: list[str]) -> pa.RecordBatch | None:
        """The rows that only had extra empty trailing fields, as one string batch."""
        if not self.repaired:
            return None
        columns = [pa.array([r[i] for r in self.repaired], pa.string()) for i in range(len(names))]
        return pa.RecordBatch.from_arrays(columns, names=names)


def display_name(uri: str, root: str) -> str:
    """The input's name relative to the folder or prefix given on the command line."""
    base = root.rstrip("/")
    return uri[len(base) + 1 :] if uri.startswith(base + "/") else Path(uri).name


def iter_csv_files(
    root: str, work: Path, settings: Settings | None = None, selected: Sequence[str] | None = None
) -> Iterator[CsvFile]:
    """Each CSV of the input in name order (only the ``selected`` files under ``root`` when given);
    the scratch copy of each input is removed after use."""
    inputs = list(selected) if selected is not None else storage.list_inputs(root, settings)
    if not inputs:
        raise UserError(f"Input {root} holds no .csv or .zip files.")
    for index, uri in enumerate(inputs):
        scratch = work / f"input_{index}"
        scratch.mkdir(parents=True)
        try:
            local = storage.open_local(uri, scratch, settings)
            source = display_name(uri, root)
            if local.suffix.lower() == ".zip":
                yield from unpack_zip(local, scratch, source)
            else:
                yield CsvFile(source=source, path=local)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def open_head(path: Path, source: str) -> FileHead:
    """Header line, BOM and encoding guess of a CSV, from its first bytes."""
    try:
        head = read_head(path)
    except OSError as exc:
        raise UserError(f"File {source} could not be read ({exc}).") from exc
    encoding = head_encoding(head)
    first = re.split(rb"\r\n|\r|\n", head, maxsplit=1)[0].decode(encoding, errors="replace")
    if not first.strip():
        raise UserError(f"File {source} is empty or has a blank header line.")
    return FileHead(first, head.startswith(UTF8_BOM_BYTES), encoding)


def parse_batches(csv_file: CsvFile, era: Era, head: FileHead, odd: OddRows) -> Iterator[pa.RecordBatch]:
    """The file's data rows as string batches under the era's column names (header skipped).

    pyarrow's streaming reader parses the next blocks in its threads while the caller works on
    the current batch, and memory stays bounded by a few blocks whatever the file size. Columns
    are read as bytes and decoded per batch (see ``models.data.encodings``); a file that starts in
    cp1252 is transcoded by the reader so that malformed rows reach the quarantine as text.
    """
    names = list(era.header)
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_SIZE)
    if head.encoding != "utf-8":  # naming utf8 explicitly would add a (slow) transcoding stream
        read_options.encoding = head.encoding
    parse_options = pacsv.ParseOptions(invalid_row_handler=odd.handle)
    convert_options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()))
    for batch in pacsv.open_csv(csv_file.path, read_options, parse_options, convert_options):
        yield head.decoder.decode(batch)


def skip_rows(batches: Iterator[pa.RecordBatch], count: int) -> Iterator[pa.RecordBatch]:
    """The batches without their first ``count`` rows (sliced, not copied)."""
    for batch in batches:
        if count >= batch.num_rows:
            count -= batch.num_rows
            continue
        yield batch.slice(count) if count else batch
        count = 0


def read_batches(csv_file: CsvFile, era: Era, head: FileHead, odd: OddRows) -> Iterator[pa.RecordBatch]:
    """``parse_batches``, read again as cp1252 when a malformed row is not UTF-8 (see below).

    Both readings split the bytes into the same rows (cp1252 maps no byte above 127 to ASCII), so the
    second one skips the rows already handed on and sorts every malformed row again from the start:
    malformed rows are only handed on once the file is done, so each row is counted exactly once.
    """
    delivered, undecodable = 0, UndecodableRows()
    try:
        with undecodable:
            for batch in parse_batches(csv_file, era, head, odd):
                delivered += batch.num_rows
                yield batch
        return
    except (pa.ArrowInvalid, OSError) as exc:
        if not (undecodable.seen and head.encoding == "utf-8"):
            raise UserError(f"File {csv_file.source} could not be parsed as CSV ({exc}).") from exc
    log.info("%s: a malformed row is not UTF-8; reading the file again as cp1252", csv_file.source)
    head.encoding, head.decoder = "cp1252", BatchDecoder("cp1252")
    odd.repaired.clear()
    odd.broken.clear()
    try:
        yield from skip_rows(parse_batches(csv_file, era, head, odd), delivered)
    except (pa.ArrowInvalid, OSError) as exc:
        raise UserError(f"File {csv_file.source} could not be parsed as CSV ({exc}).") from exc
