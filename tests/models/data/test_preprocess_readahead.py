"""Reading ahead in a background thread: errors surface in order, stopping early cleans up, and a
2017 Q1-Q2 file gives the same rows whether it is kept in memory after its scan or read again."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.core import storage
from models.core.errors import UserError
from models.data.file_format import starts_with_digit
from models.data.read_ahead import ReadAhead, opened_files
from tests.models.data.rows import HEADER_2017_Q1Q2, HEADER_2025, csv_bytes, row_2025, run_on

pytestmark = pytest.mark.unit


def numbers(count: int, fail_at: int | None = None, cleaned: list[str] | None = None):
    try:
        for number in range(count):
            if number == fail_at:
                raise UserError(f"item {number} is bad")
            yield number
    finally:
        if cleaned is not None:
            cleaned.append(threading.current_thread().name)


def test_items_arrive_in_order_and_an_error_is_raised_where_it_happened():
    received = []
    with ReadAhead(numbers(10, fail_at=6), depth=2) as ahead, pytest.raises(UserError, match="item 6"):
        for item in ahead:
            received.append(item)
    assert received == [0, 1, 2, 3, 4, 5]


def test_stopping_early_runs_the_clean_up_in_the_reading_thread():
    cleaned: list[str] = []
    ahead = ReadAhead(numbers(1_000_000, cleaned=cleaned), depth=2)
    assert next(iter(ahead)) == 0
    ahead.close()
    assert cleaned == ["read-ahead"] and not ahead.thread.is_alive()


def test_a_bad_file_after_a_good_one_is_the_one_sentence_error(tmp_path):
    files = {
        "a.csv": csv_bytes(HEADER_2025, [row_2025(n) for n in range(1, 50)]),
        "b.csv": csv_bytes("no,such,header", ["1,2,3"]),
    }
    with pytest.raises(UserError, match=r"b\.csv has an unknown header"):
        run_on(tmp_path, files)


def q2_rows(count: int) -> list[str]:
    """Day-first rows (13 April is the evidence), spread over many CSV blocks."""
    return [
        f"{1000 + n},13/4/2017 18:{n % 60:02d},13/4/2017 19:{n % 60:02d},3600,7000,A St,7001,B St,Member"
        for n in range(count)
    ] + ["bad,row"]


def test_a_2017_q1q2_file_too_big_to_keep_is_read_again_with_the_same_result(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("models.data.csv_reader.BLOCK_SIZE", 4096)
    data = {"2017/q2.csv": csv_bytes(HEADER_2017_Q1Q2, q2_rows(2000))}
    kept = run_on(tmp_path / "kept", data)
    monkeypatch.setattr("models.data.file_format.KEEP_BYTES", 10_000)
    with caplog.at_level("INFO", logger="models.data.file_format"):
        again = run_on(tmp_path / "again", data)
    assert "too big to keep in memory" in caplog.text
    assert kept.summary.rows_in == again.summary.rows_in == 2001
    assert kept.summary.by_reason == again.summary.by_reason == {"field_count": 1}
    assert kept.trips.equals(again.trips) and kept.quarantine.equals(again.quarantine)


def test_the_output_reads_back_with_plain_types(tmp_path):
    """Text columns are dictionary-encoded in memory but read back as strings, times as naive ms."""
    run_on(tmp_path, {"a.csv": csv_bytes(HEADER_2025, [row_2025(n) for n in range(1, 5)])})
    schema = pq.read_schema(tmp_path / "out" / "trips.parquet")
    types = {field.name: field.type for field in schema}
    assert types["start_station_name"] == types["user_type"] == types["source_file"] == pa.string()
    assert types["start_time"] == pa.timestamp("ms") and types["trip_id"] == pa.int64()
    assert types["hour"] == pa.int8()
    columns = pq.ParquetFile(tmp_path / "out" / "trips.parquet").metadata.row_group(0)
    encodings = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(len(types))}
    assert "DELTA_BINARY_PACKED" in encodings["trip_id"] and "DELTA_BINARY_PACKED" in encodings["start_time"]


def test_start_time_sample_keeps_values_whose_trimmed_text_starts_with_a_digit():
    values = pa.array(["1/2/2017 0:00", " 3/4", "\u00a05/6", "", None, "NULL", "x1", "\u0661", "  "]).slice(1)
    assert starts_with_digit(values).to_pylist() == [True, True, False, False, False, False, False, False]


def test_batches_are_prepared_in_their_own_thread_with_the_repaired_rows_last(tmp_path):
    """``prepare`` runs beside the reader and the caller; a file's repaired rows are its last batch."""
    rows = [row_2025(n) for n in range(1, 40)] + [row_2025(40) + ",,"]  # two extra empty fields
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_bytes(csv_bytes(HEADER_2025, rows))
    seen = []

    def prepare(opened, batch):
        return opened.source, batch.num_rows, threading.current_thread().name

    for opened in opened_files(str(folder), tmp_path / "work", prepare=prepare):
        seen.extend(opened.batches)
        assert opened.scan is not None and opened.odd.repaired
    assert seen == [(name, rows, "prepare") for name in ("a.csv", "b.csv") for rows in (39, 1)]


def test_an_error_while_preparing_is_raised_in_the_caller_at_its_place(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        (folder / name).write_bytes(csv_bytes(HEADER_2025, [row_2025(n) for n in range(1, 5)]))

    def prepare(opened, batch):
        if opened.source == "b.csv":
            raise UserError("b is bad")
        return batch.num_rows

    received = []
    with pytest.raises(UserError, match="b is bad"):
        for opened in opened_files(str(folder), tmp_path / "work", prepare=prepare):
            received.append((opened.source, list(opened.batches)))
    assert received == [("a.csv", [4])]


def test_outputs_are_renamed_into_place_or_copied_when_renaming_fails(tmp_path, monkeypatch):
    files = {"a.csv": csv_bytes(HEADER_2025, [row_2025(n) for n in range(1, 5)])}
    copies = []
    real_copy, real_replace = storage.write_file_atomic, Path.replace
    monkeypatch.setattr(storage, "write_file_atomic", lambda *args: copies.append(args) or real_copy(*args))
    renamed = run_on(tmp_path / "renamed", files)
    assert copies == []

    def other_file_system(self, target):
        if "to-bikes-preprocess-" in str(self):  # the scratch files only: the copy renames its own
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", other_file_system)
    copied = run_on(tmp_path / "copied", files)
    assert len(copies) == 4
    assert renamed.trips.equals(copied.trips) and len(renamed.trips) == 4
    for name in ("trips.parquet", "trips.quarantine.parquet", "trips.quality.json", "trips.quality.md"):
        assert (tmp_path / "copied" / "out" / name).is_file()
