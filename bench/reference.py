"""The practical ceiling for preprocessing: pyarrow's CSV reader parsing the same files, nothing else.

Every CSV of the input (ZIPs unpacked in memory, nested ones too) is parsed by
``pyarrow.csv.read_csv`` with its defaults (multi-threaded, types inferred); a file that is not
UTF-8 is read again as cp1252, and rows with the wrong number of fields are skipped, since the
point is the cost of parsing alone.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from bench.notebook import read_members


def skip_row(_row: pacsv.InvalidRow) -> str:
    """Skip rows with the wrong number of fields (the reference only parses)."""
    return "skip"


def read_one(data: bytes) -> pa.Table:
    """One CSV, parsed with pyarrow's defaults; cp1252 when the bytes are not UTF-8."""
    parse = pacsv.ParseOptions(invalid_row_handler=skip_row)
    try:
        return pacsv.read_csv(pa.BufferReader(data), parse_options=parse)
    except pa.ArrowInvalid:
        read = pacsv.ReadOptions(encoding="cp1252")
        return pacsv.read_csv(pa.BufferReader(data), read_options=read, parse_options=parse)


def read_input(input_dir: str | Path) -> dict[str, int]:
    """Parse every CSV under ``input_dir``; returns the number of rows parsed."""
    rows = 0
    for path in sorted(p for p in Path(input_dir).rglob("*") if p.suffix.lower() in (".csv", ".zip")):
        for _source, data in read_members(path):
            rows += read_one(data).num_rows
    return {"rows": rows}
