"""The Arrow memory pool preprocessing streams through (models.data.memory_pool)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from models.data import memory_pool as arrow_pool
from models.data.memory_pool import POOL_VARIABLE, streaming_memory_pool


def test_jemalloc_while_the_block_runs_then_the_previous_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    before = pa.default_memory_pool().backend_name
    with streaming_memory_pool():
        inside = pa.default_memory_pool().backend_name
        made = pc.add(pa.array(range(100_000)), 1)  # allocated from the streaming pool
    assert inside == "jemalloc"
    assert pa.default_memory_pool().backend_name == before
    assert made[99_999].as_py() == 100_000  # buffers stay valid once the pool is put back


def test_a_pool_chosen_by_the_user_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POOL_VARIABLE, "system")
    before = pa.default_memory_pool().backend_name
    with streaming_memory_pool():
        assert pa.default_memory_pool().backend_name == before


def test_pyarrow_without_jemalloc_keeps_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> pa.MemoryPool:
        raise NotImplementedError("jemalloc not built")

    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    monkeypatch.setattr(arrow_pool.pa, "jemalloc_memory_pool", missing)
    before = pa.default_memory_pool().backend_name
    with streaming_memory_pool():
        assert pa.default_memory_pool().backend_name == before


def test_the_previous_pool_comes_back_after_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POOL_VARIABLE, raising=False)
    before = pa.default_memory_pool().backend_name
    with pytest.raises(RuntimeError), streaming_memory_pool():
        raise RuntimeError("a bad file")
    assert pa.default_memory_pool().backend_name == before
