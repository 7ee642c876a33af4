"""Text encodings of the ridership files: UTF-8, UTF-8 with a BOM, and cp1252 (the 2021 files).

A file's encoding is guessed from its first bytes (the header and the first rows). Its columns are
read as raw bytes and validated as UTF-8 batch by batch, which Arrow does at memory speed; a batch
that is not valid UTF-8 is transcoded from cp1252 (the five bytes cp1252 leaves undefined become
U+FFFD) with whole-buffer operations, never value by value. The encoding actually used is
recorded per file. A malformed row that is not UTF-8, in a file whose first bytes are, cannot be
handed to the CSV reader's invalid-row hook (pyarrow decodes its text as UTF-8 first and reports
the failure as unraisable): ``UndecodableRows`` notices that, and the file is read again as cp1252
(see ``models.data.csv_reader``). Digest and line count come from a separate pass that runs in a
thread (hashing releases the GIL), overlapping the parse.
"""

from __future__ import annotations

import hashlib
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

CHUNK = 8 * 1024 * 1024
HEAD_BYTES = 1024 * 1024
UTF8_BOM_BYTES = b"\xef\xbb\xbf"
LF, CR = ord("\n"), ord("\r")


def utf8_lengths(codec: str) -> np.ndarray:
    """For each byte value, the length in UTF-8 of the character ``codec`` decodes it to."""
    lengths = np.ones(256, dtype=np.int64)
    for value in range(128, 256):
        char = bytes([value]).decode(codec, errors="replace")
        lengths[value] = len(char.encode("utf-8"))
    return lengths


def head_encoding(head: bytes) -> str:
    """``utf-8`` when the first bytes decode as UTF-8 (a cut character at the end is allowed), else cp1252."""
    cut = head.rfind(b"\n")
    try:
        head[: cut if cut > 0 else len(head)].decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def read_head(path: Path) -> bytes:
    """The first bytes of a file: enough for the header line and the encoding guess."""
    with path.open("rb") as src:
        return src.read(HEAD_BYTES)


def count_byte(chunk: bytes, value: int) -> int:
    """How many times the byte ``value`` occurs in ``chunk``."""
    return int(np.count_nonzero(np.frombuffer(chunk, np.uint8) == value))


def digest_and_lines(path: Path) -> tuple[str, int]:
    """SHA-256 of the bytes and the number of lines (a last line without a line end counts).

    Lines end in LF or CRLF; a file without a single LF is counted by its CRs (classic Mac).
    Bytes are counted with numpy, which releases the GIL (``bytes.count`` holds it) and is faster.
    """
    digest, lf, cr, last = hashlib.sha256(), 0, 0, b""
    with path.open("rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            lf += count_byte(chunk, LF)
            cr += 0 if lf else count_byte(chunk, CR)
            last = chunk[-1:]
    lines = lf or cr
    return f"sha256:{digest.hexdigest()}", lines + (1 if last not in (b"", b"\n", b"\r") else 0)


def transcode(values: pa.Array, codec: str) -> pa.Array:
    """A binary column decoded from a one-byte ``codec`` into a UTF-8 string column, buffer-wise.

    Each byte's UTF-8 length is looked up in a table and summed, giving the new offsets; the bytes
    themselves are decoded and re-encoded in one call over the whole buffer.
    """
    values = values.cast(pa.large_binary())
    validity, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[: values.offset + len(values) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    raw = data[: int(offsets[-1])]
    grown = np.concatenate([[0], np.cumsum(utf8_lengths(codec)[raw])])
    text = raw.tobytes().decode(codec, errors="replace").encode("utf-8")
    buffers = [validity, pa.py_buffer(grown[offsets].astype(np.int64)), pa.py_buffer(text)]
    array = pa.Array.from_buffers(
        pa.large_string(), len(values), buffers, null_count=values.null_count, offset=values.offset
    )
    return array.cast(pa.string())


@dataclass
class BatchDecoder:
    """Turns binary batches into string batches; from the first batch that is not UTF-8 on, cp1252.

    ``encoding`` is what the file turned out to be. A file whose first bytes are already cp1252 is
    transcoded by the CSV reader itself (so malformed rows reach the quarantine as text).
    """

    encoding: str = "utf-8"
    transcoding: bool = field(default=False, init=False)

    def decode(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with every column as UTF-8 strings."""
        if not self.transcoding:
            try:
                columns = [column.cast(pa.string()) for column in batch.columns]
                return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
            except pa.ArrowInvalid:
                self.encoding, self.transcoding = "cp1252", True
        columns = [transcode(column, "cp1252") for column in batch.columns]
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


class UndecodableRows:
    """While entered: counts pyarrow's unraisable reports of a malformed CSV row that is not UTF-8.

    Only a ``UnicodeDecodeError`` raised in pyarrow's CSV module is taken (and kept off stderr, since
    the file is then read again); anything else goes on to the previous hook.
    """

    def __init__(self) -> None:
        self.seen = 0
        self.previous = sys.unraisablehook

    def hook(self, unraisable: Any) -> None:
        frames = traceback.extract_tb(unraisable.exc_traceback) if unraisable.exc_traceback else []
        in_csv = any("_csv" in frame.filename for frame in frames)
        if issubclass(unraisable.exc_type, UnicodeDecodeError) and in_csv:
            self.seen += 1
            return
        self.previous(unraisable)

    def __enter__(self) -> UndecodableRows:
        self.previous, sys.unraisablehook = sys.unraisablehook, self.hook
        return self

    def __exit__(self, *exc_info: object) -> None:
        sys.unraisablehook = self.previous
