"""A Parquet file written from a background thread, so encoding one batch overlaps parsing the next.

pyarrow releases the GIL while it encodes and compresses, so the writer thread runs on another
core. At most one write is pending at any time: memory stays bounded by two batches, and batches
land in the file in the order they were given.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


class ParquetSink:
    """``write`` hands a table to the writer thread after the previous one is done; ``close`` flushes."""

    def __init__(self, path: str | Path, schema: pa.Schema, **options: Any) -> None:
        self.writer = pq.ParquetWriter(str(path), schema, **options)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-sink")
        self.pending: Future | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        """Queue one table (empty tables are skipped)."""
        if table.num_rows == 0:
            return
        self.wait()
        self.pending = self.pool.submit(self.writer.write_table, table)
        self.rows += table.num_rows

    def wait(self) -> None:
        """Block until the pending write is done (re-raising its error, if any)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        """Finish the pending write and the file footer."""
        try:
            self.wait()
        finally:
            self.writer.close()
            self.pool.shutdown(wait=True)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
