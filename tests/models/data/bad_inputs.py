"""The bad-input corpus: files that a scheduled run may meet, each with the outcome it must give.

``write_corpus(folder)`` writes every case into ``folder/<case>/<file>`` (a few kilobytes each,
except the bounded 20 MB field) and returns the cases. An outcome is either ``quarantine`` (the run
completes; ``rows_in`` data rows go in, exactly ``by_reason`` of them are quarantined and
``other_period`` skipped as another period's, the rest kept) or ``error`` (a ``UserError``: one
sentence that names the file, nothing published). Nothing here is random: every byte is fixed, so
a failure can be reproduced from the case name.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HEADER_2025 = (
    "Trip_Id,Trip_Duration,Start_Station_Id,Start_Time,Start_Station_Name,End_Station_Id,"
    "End_Time,End_Station_Name,Bike_Id,User_Type,Bike_Model"
)
HEADER_2019 = (
    "Trip Id,Trip  Duration,Start Station Id,Start Time,Start Station Name,"
    "End Station Id,End Time,End Station Name,Bike Id,User Type"
)
HEADER_2017 = (
    "trip_id,trip_start_time,trip_stop_time,trip_duration_seconds,from_station_id,"
    "from_station_name,to_station_id,to_station_name,user_type"
)
GOOD = 100  # good rows around the bad ones, so the date format is decided from clear evidence
EIGHT_GB = 8 * 1024**3


@dataclass(frozen=True)
class BadInput:
    """One case: how to build its file, and what preprocessing must do with it."""

    name: str
    filename: str
    build: Callable[[], bytes]
    outcome: str  # "quarantine" or "error"
    note: str
    rows_in: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    names: str = ""  # what the error must name (default: the file name)
    period: str | None = None
    other_period: int = 0  # rows of another period: skipped and counted, neither kept nor quarantined

    @property
    def rows_out(self) -> int:
        return self.rows_in - sum(self.by_reason.values()) - self.other_period

    @property
    def named(self) -> str:
        return self.names or self.filename


def row_2025(i: int, **over: str) -> str:
    """A valid 2025-era row (trip id 1000+i, 600 s, on 2025-06-02) with fields overridden by name."""
    minute = i % 50
    values = {
        "trip_id": str(1000 + i),
        "duration": "600",
        "start_id": str(7000 + i % 9),
        "start": f"2025-06-02 08:{minute:02d}:00",
        "start_name": f"Station {i % 9}",
        "end_id": str(7010 + i % 7),
        "end": f"2025-06-02 {8 + (minute + 10) // 60:02d}:{(minute + 10) % 60:02d}:00",
        "end_name": f"Station {10 + i % 7}",
        "bike": str(5000 + i),
        "label": "Member" if i % 4 else "Casual",
        "model": "ICONIC",
    }
    unknown = set(over) - set(values)
    if unknown:
        raise KeyError(f"row_2025 has no field {sorted(unknown)}")
    values.update(over)
    return ",".join(values.values())


def good_rows(count: int = GOOD, first: int = 0) -> list[str]:
    return [row_2025(i) for i in range(first, first + count)]


def csv_bytes(lines: list[str], header: str = HEADER_2025, encoding: str = "utf-8", eol: str = "\n") -> bytes:
    return eol.join([header, *lines]).encode(encoding) + eol.encode()


def good_csv() -> bytes:
    return csv_bytes(good_rows())


def with_bad(bad: list[str]) -> Callable[[], bytes]:
    """Good rows with the given bad rows in the middle."""
    return lambda: csv_bytes([*good_rows(30), *bad, *good_rows(GOOD - 30, first=30)])


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def truncated_zip() -> bytes:
    data = zip_of({"2025-06.csv": good_csv()})
    return data[: len(data) // 2]


def zip_bad_crc() -> bytes:
    """A stored entry with one data byte changed: the CRC-32 no longer matches."""
    data = bytearray(zip_of({"2025-06.csv": good_csv()}, zipfile.ZIP_STORED))
    at = data.index(b"Station 3")
    data[at] ^= 0x20
    return bytes(data)


def zip_bad_deflate() -> bytes:
    """A deflated entry whose compressed stream is garbage (zlib fails, not the ZIP directory)."""
    payload = good_csv()
    data = bytearray(zip_of({"2025-06.csv": payload}))
    start = data.index(b"2025-06.csv") + len("2025-06.csv")  # data follows the local header's name
    for offset in range(start + 2, start + 40):
        data[offset] = 0xFF
    return bytes(data)


def zip_claiming(size: int, name: str = "2025-06.csv") -> bytes:
    """A one-entry ZIP64 archive whose entry declares ``size`` uncompressed bytes but holds a small CSV.

    Written field by field (``zipfile`` cannot be told to lie): local header, deflated data,
    central directory, end record; both headers carry the ZIP64 sizes.
    """
    payload = good_csv()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush()
    crc, raw_name, unknown = zlib.crc32(payload), name.encode(), 0xFFFFFFFF
    extra = struct.pack("<HHQQ", 1, 16, size, len(data))
    common = struct.pack("<HHHHHIII", 45, 0, 8, 0, 0x5B21, crc, unknown, unknown)
    local = struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(raw_name), len(extra))
    local += raw_name + extra
    central = struct.pack("<IH", 0x02014B50, 45) + common
    central += struct.pack("<HHHHHII", len(raw_name), len(extra), 0, 0, 0, 0, 0) + raw_name + extra
    offset = len(local) + len(data)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
    return local + data + central + end


def nested_bomb() -> bytes:
    """Three levels of ZIPs, four copies per level, each innermost entry claiming 8 GB (512 GB declared)."""
    level = zip_claiming(EIGHT_GB)
    for _ in range(3):
        level = zip_of({f"part{i}.zip": level for i in range(4)}, zipfile.ZIP_STORED)
    return level


def nested_deep() -> bytes:
    """A CSV inside twelve nested ZIPs (a recursion bomb in miniature)."""
    level = zip_of({"2025-06.csv": good_csv()})
    for depth in range(12):
        level = zip_of({f"level{depth}.zip": level})
    return level


def nested_once() -> bytes:
    """November 2022: a ZIP inside the ZIP, in a sub-folder, next to ``__MACOSX`` junk."""
    inner = zip_of({"Bike share ridership 2025-06.csv": good_csv()})
    return zip_of({"2025/inner.zip": inner, "__MACOSX/2025/._inner.zip": b"\x00\x05\x16\x07junk"})


def mixed_eras() -> bytes:
    """A 2025 file with a 2019-era header and rows pasted into its middle."""
    old = [
        f"{2000 + i},600,7001,06/02/2025 09:{i:02d},Old St,7002,06/02/2025 09:{i + 10:02d},New St,77,"
        "Annual Member"
        for i in range(5)
    ]
    return csv_bytes([*good_rows(30), HEADER_2019, *old, *good_rows(GOOD - 30, first=30)])


def mixed_eras_same_width() -> bytes:
    """2024 published rows (11 fields, month-first times) pasted into a 2025 file."""
    old = [
        f"{2000 + i},600,7001,06/02/2024 09:{i:02d},Old St,7002,06/02/2024 09:{i + 10:02d},New St,77,"
        "Annual Member,EFIT"
        for i in range(4)
    ]
    return csv_bytes([*good_rows(30), HEADER_2019 + ",Model", *old, *good_rows(GOOD - 30, first=30)])


def fall_back_rows() -> list[str]:
    """Trips across the 2025-11-02 fall-back hour: wall-clock end earlier than start, durations right."""
    return [
        row_2025(230 + i, start=f"2025-11-02 01:5{i}:00", end=f"2025-11-02 01:0{i + 2}:00", duration="720")
        for i in range(3)
    ]


def gap_rows() -> list[str]:
    """Starts inside the 2025-03-09 spring-forward gap (02:00-03:00 does not exist in Toronto)."""
    return [
        row_2025(240 + i, start=f"2025-03-09 02:{10 * i:02d}:00", end=f"2025-03-09 03:{10 * i + 5:02d}:00")
        for i in range(3)
    ]


def rows_2017(first: Callable[[int], int], second: Callable[[int], int]) -> bytes:
    """Twenty 2017 Q1-Q2 rows whose dates read ``first(i)/second(i)/2017``, ten minutes each."""
    rows = []
    for i in range(20):
        date = f"{first(i)}/{second(i)}/2017"
        rows.append(f"{i},{date} 8:0{i % 10},{date} 8:1{i % 10},600,7000,A,7001,B,Member")
    return csv_bytes(rows, HEADER_2017)


def ambiguous_2017() -> bytes:
    """No field above 12, and 3/4/2017 is 4 March or 3 April: the readings differ."""
    return rows_2017(lambda i: i % 11 + 1, lambda i: i % 11 + 2)


def day_equals_month_2017() -> bytes:
    """Every date has day equal to month (1/1/2017, 2/2/2017...): both readings agree."""
    return rows_2017(lambda i: i % 12 + 1, lambda i: i % 12 + 1)


def binary_junk() -> bytes:
    """Deterministic pseudo-random bytes (a linear congruential sequence), with NULs and newlines."""
    state, out = 12345, bytearray()
    for _ in range(64 * 1024):
        state = (1103515245 * state + 12345) % 2**31
        out.append(state >> 23 & 0xFF)
    return bytes(out)


def gzip_named_csv() -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(good_csv()) + compressor.flush()


HTML = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\n"
    b"<body><h1>Service Unavailable</h1><p>The portal is down for maintenance.</p></body></html>\n"
)
E = "error"
Q = "quarantine"
R = "rows"


def build_cases() -> list[BadInput]:
    """Every case, in a fixed order (the table in the reliability report follows it).

    Bad rows use trip ids from 1200 on, apart from the good rows' 1000-1099.
    """
    g, mb = GOOD, 1024 * 1024
    # fmt: off
    return [
        BadInput("empty_file", "2025-06.csv", lambda: b"", E, "zero bytes"),
        BadInput("blank_lines_only", "2025-06.csv", lambda: b"\n\n \r\n\t\n", E, "whitespace, no header"),
        BadInput("header_only", "2025-06.csv", lambda: csv_bytes([]), E, "a header and no rows"),
        BadInput("header_then_blank_lines", "2025-06.csv", lambda: csv_bytes(["", "", ",,,"]), E,
                 "a header, blank lines and a line of commas: no data rows"),
        BadInput("unknown_header", "2025-06.csv", lambda: csv_bytes(good_rows(), "id,a,b,c"), E,
                 "unknown header"),
        BadInput("header_upper_case", "2025-06.csv", lambda: csv_bytes(good_rows(), HEADER_2025.upper()), E,
                 "a known header in upper case"),
        BadInput("semicolon_delimiter", "2025-06.csv", lambda: delimited(";"), E, "wrong delimiter (;)"),
        BadInput("tab_delimiter", "2025-06.csv", lambda: delimited("\t"), E, "wrong delimiter (tab)"),
        BadInput("html_not_csv", "2025-06.csv", lambda: HTML, E, "an HTML error page saved as .csv"),
        BadInput("binary_junk", "2025-06.csv", binary_junk, E, "64 KiB of pseudo-random bytes"),
        BadInput("gzip_named_csv", "2025-06.csv", gzip_named_csv, E, "a gzip stream named .csv"),
        BadInput("utf16_file", "2025-06.csv", lambda: csv_bytes(good_rows(), encoding="utf-16"), E,
                 "UTF-16 with BOM (not a published encoding)"),
        BadInput("dates_dotted", "2025-06.csv", lambda: all_starts("2.6.2025 08:00", "2.6.2025 08:10"), E,
                 "start times in no known format (D.M.YYYY)"),
        BadInput("ambiguous_day_month_2017", "2017-q1.csv", ambiguous_2017, E,
                 "2017 Q1, no date field above 12, readings differ (3/4): day/month undecidable"),
        BadInput("day_equals_month_2017", "2017-q1.csv", day_equals_month_2017, Q,
                 "2017 Q1 whose every date has day equal to month: read, both readings agree", rows_in=20),
        BadInput("not_a_zip", "2025.zip", good_csv, E, "CSV text named .zip"),
        BadInput("truncated_zip", "2025.zip", truncated_zip, E, "ZIP cut in half (no central directory)"),
        BadInput("zip_bad_crc", "2025.zip", zip_bad_crc, E, "a stored entry's byte flipped (bad CRC)"),
        BadInput("zip_bad_deflate", "2025.zip", zip_bad_deflate, E, "deflate stream overwritten (zlib)"),
        BadInput("zip_empty", "2025.zip", lambda: zip_of({}), E, "a valid ZIP with no entries"),
        BadInput("zip_only_junk", "2025.zip", lambda: zip_of({"__MACOSX/._a.csv": b"\x00", "a.txt": b"hi"}),
                 E, "only __MACOSX junk and a text file"),
        BadInput("zip_claims_8gb", "2025.zip", lambda: zip_claiming(EIGHT_GB), E,
                 "ZIP64 entry declaring 8 GB uncompressed: refused before extracting"),
        BadInput("zip_nested_bomb", "2025.zip", nested_bomb, E, "3 nested levels x 4 copies: 512 GB"),
        BadInput("zip_nested_12_deep", "2025.zip", nested_deep, E, "a CSV under 12 levels of ZIP"),
        BadInput("zip_member_html", "2025.zip", lambda: zip_of({"a.csv": good_csv(), "2025-07.csv": HTML}), E,
                 "a good CSV and an HTML page in one ZIP", names="2025.zip!2025-07.csv"),
        BadInput("zip_nested_once_with_junk", "2025.zip", nested_once, Q,
                 "Nov 2022 layout: a ZIP in a sub-folder of the ZIP, __MACOSX junk", rows_in=g),
        BadInput("zip_path_traversal", "2025.zip", lambda: zip_of({"../../escape.csv": good_csv()}), Q,
                 "entry named ../../escape.csv is read, never written outside", rows_in=g),
        BadInput("dates_in_words", "2025-06.csv", lambda: all_starts("June 2 2025 8am", "June 2 2025 9am"), Q,
                 "no start time begins with a digit: every row quarantined", rows_in=g,
                 by_reason={"bad_start_time": g}),
        BadInput("huge_field_20mb", "2025-06.csv", with_bad([row_2025(200, start_name="X" * 20 * mb)]), Q,
                 "one 20 MB station name (beyond the reader's block)", rows_in=g + 1,
                 by_reason={"field_too_long": 1}),
        BadInput("mixed_eras_in_file", "2025-06.csv", mixed_eras, Q,
                 "2019 header and rows pasted into a 2025 file", rows_in=g + 6, by_reason={"field_count": 6}),
        BadInput("mixed_eras_same_width", "2025-06.csv", mixed_eras_same_width, Q,
                 "2024 header and rows (11 fields, M/D/Y) inside a 2025 file", rows_in=g + 5,
                 by_reason={"bad_trip_id": 1, "bad_start_time": 4}),
        BadInput("nul_padding", "2025-06.csv", lambda: good_csv() + b"\x00" * 4096 + b"\n", Q,
                 "a crashed writer's NUL padding at the end", rows_in=g + 1, by_reason={"field_count": 1}),
        BadInput("nul_in_trip_id", "2025-06.csv", with_bad([row_2025(201, trip_id="12\x0001")]), Q,
                 "a NUL byte inside a trip id", rows_in=g + 1, by_reason={"bad_trip_id": 1}),
        BadInput("impossible_dates", "2025-06.csv", impossible_dates, Q,
                 "Feb 30, month 13, 25:61 starts; a June 31 end", rows_in=g + 4,
                 by_reason={"bad_start_time": 3, "bad_end_time": 1}),
        BadInput("dst_gap_starts", "2025-03.csv", with_bad(gap_rows()), Q,
                 "starts in the 2025-03-09 spring-forward gap: kept as published", rows_in=g + 3),
        BadInput("dst_fall_back_crossing", "2025-11.csv", with_bad(fall_back_rows()), Q,
                 "trips across the repeated hour: wall-clock end before start", rows_in=g + 3,
                 by_reason={"end_before_start": 3}),
        BadInput("unterminated_quote", "2025-06.csv", with_bad([row_2025(202, start_name='"Union St')]), Q,
                 "an opening quote never closed must not swallow the rows after it", rows_in=g + 1,
                 by_reason={"field_count": 1}),
        BadInput("extra_data_columns", "2025-06.csv", with_bad([row_2025(203) + ",surprise,42"]), Q,
                 "two extra non-empty fields", rows_in=g + 1, by_reason={"field_count": 1}),
        BadInput("concatenated_id_duration", "2025-06.csv", with_bad([row_2025(204).replace(",", "", 1)]), Q,
                 "Oct 2020: trip id and duration run together (one field short)", rows_in=g + 1,
                 by_reason={"field_count": 1}),
        BadInput("numbers_out_of_range", "2025-06.csv", numbers_out_of_range, Q,
                 "30-digit id, 20-digit duration, negative station id; bike 1e9 kept as null", rows_in=g + 4,
                 by_reason={"bad_trip_id": 1, "bad_duration": 1, "bad_station_id": 1}),
        BadInput("cr_only_line_ends", "2025-06.csv", lambda: csv_bytes(good_rows(), eol="\r"), Q,
                 "classic Mac line ends", rows_in=g),
        BadInput("other_period", "2025-06.csv",
                 with_bad([row_2025(205, start="2026-01-03 08:00:00", end="2026-01-03 08:10:00"),
                           row_2025(206, start="2026-01-03 08:00:00", duration="0")]), Q,
                 "January 2026 trips (one also bad) in the June 2025 file, period 2025-06: skipped, counted",
                 rows_in=g + 2, other_period=2, period="2025-06"),
    ]
    # fmt: on


def delimited(separator: str) -> bytes:
    return csv_bytes([r.replace(",", separator) for r in good_rows()], HEADER_2025.replace(",", separator))


def all_starts(start: str, end: str) -> bytes:
    return csv_bytes([row_2025(i, start=start, end=end) for i in range(GOOD)])


def impossible_dates() -> bytes:
    return with_bad(
        [
            row_2025(210, start="2025-02-30 08:00:00"),
            row_2025(211, start="2025-13-01 08:00:00"),
            row_2025(212, start="2025-06-02 25:61:00"),
            row_2025(213, end="2025-06-31 08:00:00"),
        ]
    )()


def numbers_out_of_range() -> bytes:
    return with_bad(
        [
            row_2025(220, trip_id="9" * 30),
            row_2025(221, duration="9" * 20),
            row_2025(222, start_id="-7"),
            row_2025(223, bike="1e9"),
        ]
    )()


def write_corpus(folder: Path) -> list[BadInput]:
    """Write every case's file to ``folder/<case>/<file>``; returns the cases."""
    cases = build_cases()
    for case in cases:
        target = folder / case.name / case.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(case.build())
    return cases
