"""Encodings: UTF-8, UTF-8 with a BOM, cp1252 from the first bytes or only later in the file."""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow as pa
import pytest

from models.data.encodings import BatchDecoder, digest_and_lines, head_encoding, transcode
from tests.models.data.rows import HEADER_2019, HEADER_2025, csv_bytes, row_2025, run_on

pytestmark = pytest.mark.unit

CAFE = "Café Rd / Queen’s Quay – E"  # é, ’ and – are all single bytes in cp1252


def files_report(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "trips.quality.json").read_text())["files"]


def test_bom_is_recorded_and_the_header_still_matches(tmp_path):
    result = run_on(tmp_path, {"a.csv": csv_bytes(HEADER_2025, [row_2025(1)], bom=True)})
    assert result.summary.rows_out == 1
    assert files_report(tmp_path)["a.csv"]["bom"] is True


def test_cp1252_file_is_decoded_and_recorded(tmp_path):
    rows = [f"10,600,7001,06/01/2021 08:00,{CAFE},7002,06/01/2021 08:10,B St,5,Annual Member"]
    result = run_on(tmp_path, {"2021-06.csv": csv_bytes(HEADER_2019, rows, encoding="cp1252")})
    assert result.trips.start_station_name.tolist() == [CAFE]
    assert files_report(tmp_path)["2021-06.csv"]["encoding"] == "cp1252"


def test_cp1252_bytes_deep_in_a_file_that_starts_as_ascii_are_transcoded(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "models.data.csv_reader.BLOCK_SIZE", 4096
    )  # several batches, the first ones ASCII only
    monkeypatch.setattr("models.data.encodings.HEAD_BYTES", 1024)
    rows = [row_2025(i) for i in range(200)] + [row_2025(999, start_name=CAFE)]
    result = run_on(tmp_path, {"late.csv": csv_bytes(HEADER_2025, rows, encoding="cp1252")})
    assert result.summary.rows_out == 201
    assert result.trips.set_index("trip_id").loc[999].start_station_name == CAFE
    assert files_report(tmp_path)["late.csv"]["encoding"] == "cp1252"


def test_utf8_names_survive_unchanged(tmp_path):
    result = run_on(tmp_path, {"u.csv": csv_bytes(HEADER_2025, [row_2025(1, start_name=CAFE)])})
    assert result.trips.start_station_name.tolist() == [CAFE]
    assert files_report(tmp_path)["u.csv"]["encoding"] == "utf-8"


def test_head_encoding_tolerates_a_character_cut_at_the_end():
    head = "a,b\nCafé\n".encode() + "é".encode()[:1]
    assert head_encoding(head) == "utf-8"
    assert head_encoding("a,b\ncaf\xe9\n".encode("cp1252")) == "cp1252"


def test_transcode_keeps_nulls_offsets_and_undefined_bytes():
    values = pa.array([CAFE.encode("cp1252"), None, b"", b"x\x81y"], pa.binary())
    assert transcode(values, "cp1252").to_pylist() == [CAFE, None, "", "x\ufffdy"]
    assert transcode(values.slice(1, 2), "cp1252").to_pylist() == [None, ""]


def test_batch_decoder_switches_to_cp1252_for_good():
    decoder = BatchDecoder()
    ascii_batch = pa.RecordBatch.from_arrays([pa.array([b"abc"], pa.binary())], names=["a"])
    latin_batch = pa.RecordBatch.from_arrays([pa.array(["é".encode("cp1252")], pa.binary())], names=["a"])
    assert decoder.decode(ascii_batch).column(0).to_pylist() == ["abc"]
    assert decoder.decode(latin_batch).column(0).to_pylist() == ["é"]
    assert decoder.encoding == "cp1252"


def test_digest_and_line_count(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"h\r\n1\r\n2")
    digest, lines = digest_and_lines(path)
    assert digest.startswith("sha256:") and len(digest) == 71 and lines == 3
    path.write_bytes(b"h\r1\r2\r")  # classic Mac line ends
    assert digest_and_lines(path)[1] == 3


@pytest.mark.parametrize("chunk", [1, 3, 1024])
def test_line_count_matches_python_across_chunk_borders(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr("models.data.encodings.CHUNK", chunk)
    rnd = random.Random(chunk)
    for ends in ("\n", "\r\n", "\r"):
        data = ends.join("x" * rnd.randint(0, 9) for _ in range(200)).encode() + rnd.choice([b"", b"z"])
        path = tmp_path / "f.csv"
        path.write_bytes(data)
        expected = data.count(b"\n") or data.count(b"\r")
        expected += 1 if data[-1:] not in (b"", b"\n", b"\r") else 0
        assert digest_and_lines(path) == (f"sha256:{hashlib.sha256(data).hexdigest()}", expected)


@pytest.mark.parametrize("block", [4096, 16 * 1024 * 1024])
def test_a_malformed_cp1252_row_after_a_utf8_head_is_read_again_as_cp1252(tmp_path, monkeypatch, block):
    """pyarrow cannot hand such a row to the invalid-row hook: the file is read again, every row once."""
    monkeypatch.setattr("models.data.csv_reader.BLOCK_SIZE", block)  # 4096: rows already handed on
    monkeypatch.setattr("models.data.encodings.HEAD_BYTES", 1024)
    rows = [row_2025(i) for i in range(300)] + [row_2025(999, start_name=CAFE) + ",extra,fields"]
    rows += [row_2025(1000 + i, start_name=CAFE) for i in range(50)] + [row_2025(2000, start_name='"' + CAFE)]
    rows += [row_2025(2001)]
    result = run_on(tmp_path, {"late.csv": csv_bytes(HEADER_2025, rows, encoding="cp1252")})
    summary = result.summary
    assert (summary.rows_in, summary.rows_out, summary.quarantined) == (353, 351, 2)
    assert sorted(result.trips.trip_id) == [*range(300), *range(1000, 1050), 2001]
    assert set(result.trips.set_index("trip_id").loc[1000:1049].start_station_name) == {CAFE}
    assert sorted(result.quarantine.raw) == sorted([rows[300], rows[351]])  # decoded, not replaced
    assert files_report(tmp_path)["late.csv"]["encoding"] == "cp1252"
