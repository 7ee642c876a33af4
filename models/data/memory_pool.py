"""Which Arrow memory pool preprocessing allocates from.

Preprocessing streams a year through batches of a few megabytes each: every batch's buffers are
allocated, handed between threads and freed within a second. Arrow's default pool on Linux
(mimalloc) hands large freed regions back to the kernel within milliseconds, so the next batch
faults them in again and the kernel zeroes every page: on 2 cores that cost about 15% of the CPU
time of a run (``perf``: ``clear_page_erms``). jemalloc keeps freed pages for a second before
returning them, which is what a stream of same-sized batches needs; it also peaks lower.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

log = logging.getLogger(__name__)

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"  # Arrow's own setting: when set, it is respected as is


def streaming_pool() -> pa.MemoryPool | None:
    """jemalloc's pool, or None when this pyarrow has none or the user chose a pool explicitly."""
    if os.environ.get(POOL_VARIABLE):
        return None
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc (e.g. Windows wheels)
        return None


@contextmanager
def streaming_memory_pool() -> Iterator[None]:
    """Make jemalloc Arrow's default pool while the block runs, then put back the previous one.

    Buffers keep a reference to the pool they came from, so arrays made inside the block stay
    valid after it; other threads allocating meanwhile simply use jemalloc too.
    """
    pool = streaming_pool()
    if pool is None:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    log.debug("Arrow memory pool: %s (was %s)", pool.backend_name, previous.backend_name)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
