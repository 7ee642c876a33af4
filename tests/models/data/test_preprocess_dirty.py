"""One test per kind of dirty row in the data notes: each is quarantined with its reason, or kept
with a null and counted, and never silently dropped."""

from __future__ import annotations

import json
import random

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from models.data.column_parsers import clean_text, integer_text
from tests.models.data.rows import HEADER_2017_Q3Q4, HEADER_2019, HEADER_2025, csv_bytes, row_2025, run_on

pytestmark = pytest.mark.unit

GOOD = [row_2025(100 + i) for i in range(5)]


def run_2025(tmp_path, rows: list[str], **options):
    return run_on(tmp_path, {"2025/2025-06.csv": csv_bytes(HEADER_2025, GOOD + rows)}, **options)


def reasons(result) -> dict[str, int]:
    return result.summary.by_reason


def test_trip_id_and_duration_run_together_is_a_field_count_row(tmp_path):
    good = "9000001,600,7000,10/01/2020 08:00,A St,7001,10/01/2020 08:10,B St,11,Annual Member"
    shifted = "90000021200,7000,10/01/2020 09:00,A St,7001,10/01/2020 09:20,B St,12,Annual Member"
    result = run_on(tmp_path, {"2020/2020-10.csv": csv_bytes(HEADER_2019, [good, shifted])})
    assert reasons(result) == {"field_count": 1}
    assert result.quarantine.raw.tolist() == [shifted]
    assert result.quarantine.source_file.tolist() == ["2020/2020-10.csv"]


def test_extra_trailing_commas_are_repaired_and_kept(tmp_path):
    result = run_2025(tmp_path, [row_2025(200) + ",,"])
    assert result.summary.quarantined == 0 and 200 in set(result.trips.trip_id)
    assert (
        json.loads((tmp_path / "out" / "trips.quality.json").read_text())["files"]["2025/2025-06.csv"][
            "repaired_rows"
        ]
        == 1
    )


def test_blank_trailing_lines_are_counted_not_rows(tmp_path):
    data = csv_bytes(HEADER_2025, GOOD) + b"\n\n"
    result = run_on(tmp_path, {"2025-06.csv": data})
    assert (result.summary.rows_in, result.summary.quarantined) == (5, 0)
    report = json.loads((tmp_path / "out" / "trips.quality.json").read_text())
    assert report["files"]["2025-06.csv"]["blank_lines"] == 2


def test_null_station_id_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(201, start_id="NULL")])) == {"missing_station_id": 1}


def test_station_id_that_is_not_an_integer_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(202, end_id="7A01")])) == {"bad_station_id": 1}


def test_null_station_name_next_to_a_valid_id_is_kept_and_counted(tmp_path):
    result = run_2025(tmp_path, [row_2025(203, start_name="NULL")])
    assert result.summary.quarantined == 0
    kept = result.trips.set_index("trip_id").loc[203]
    assert pd.isna(kept.start_station_name) and kept.start_station_id == 7000
    assert result.summary.kept_with_nulls["station_name"] == 1


def test_missing_station_name_without_ids_is_quarantined(tmp_path):
    rows = [
        "1500001,7/1/2017 0:00,7/1/2017 0:13,780,A St,B St,Casual",
        "1500002,7/13/2017 8:00,7/13/2017 8:12,720,NULL,B St,Member",
    ]
    result = run_on(tmp_path, {"2017/q3.csv": csv_bytes(HEADER_2017_Q3Q4, rows)})
    assert reasons(result) == {"missing_station": 1}


def test_nullnull_end_time_is_quarantined(tmp_path):
    rows = [
        "2200001,10/13/17 00:00:17,10/13/17 00:12:48,751,A St,B St,Member",
        "2200002,10/13/17 01:00:00,NULLNULL,751,A St,B St,Member",
    ]
    result = run_on(tmp_path, {"2017/q4.csv": csv_bytes(HEADER_2017_Q3Q4, rows)})
    assert reasons(result) == {"missing_end_time": 1}


def test_empty_trip_id_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(0, trip_id="")])) == {"missing_trip_id": 1}


def test_trip_id_that_is_not_an_integer_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(0, trip_id="12a4")])) == {"bad_trip_id": 1}


def test_empty_bike_id_is_kept_with_a_null_and_counted(tmp_path):
    result = run_2025(tmp_path, [row_2025(204, bike="")])
    assert result.summary.quarantined == 0 and result.summary.kept_with_nulls["bike_id"] == 1
    assert pd.isna(result.trips.set_index("trip_id").loc[204].bike_id)


def test_trailing_and_double_spaces_in_names_are_normalised(tmp_path):
    result = run_2025(tmp_path, [row_2025(205, start_name=" Church St  / Wood St  ")])
    assert result.trips.set_index("trip_id").loc[205].start_station_name == "Church St / Wood St"


@pytest.mark.parametrize("duration", ["0", "-12"])
def test_zero_or_negative_duration_is_quarantined(tmp_path, duration):
    assert reasons(run_2025(tmp_path, [row_2025(206, duration=duration)])) == {"nonpositive_duration": 1}


def test_duration_over_24_hours_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(207, duration="90000")])) == {"too_long": 1}


def test_end_before_start_is_quarantined(tmp_path):
    row = row_2025(208, start="2025-06-02 09:00:00", end="2025-06-02 08:00:00")
    assert reasons(run_2025(tmp_path, [row])) == {"end_before_start": 1}


def test_redock_shorter_than_the_minimum_is_quarantined_and_the_minimum_is_configurable(tmp_path):
    redock = row_2025(209, duration="2", end_id="7000", end="2025-06-02 08:00:02")
    assert reasons(run_2025(tmp_path / "a", [redock])) == {"too_short": 1}
    assert reasons(run_2025(tmp_path / "b", [redock], min_duration_s=0)) == {}


def test_unknown_and_missing_labels_are_quarantined_with_the_value_as_reason(tmp_path):
    rows = [row_2025(210, user="Subscriber"), row_2025(211, user="")]
    assert reasons(run_2025(tmp_path, rows)) == {"missing_user_type": 1, "unknown_user_type:Subscriber": 1}


def test_unparseable_start_time_is_quarantined(tmp_path):
    assert reasons(run_2025(tmp_path, [row_2025(212, start="2025-06-02 8h")])) == {"bad_start_time": 1}


def test_duplicate_trip_ids_keep_the_first_even_across_files(tmp_path):
    files = {
        "2021/2021-06.csv": csv_bytes(HEADER_2025, [*GOOD, row_2025(101)]),
        "2021/2021-07.csv": csv_bytes(
            HEADER_2025, [row_2025(102, start="2025-06-03 08:00:00", end="2025-06-03 08:10:00")]
        ),
    }
    result = run_on(tmp_path, files)
    assert reasons(result) == {"duplicate_trip_id": 2}
    assert sorted(result.trips.trip_id) == [100, 101, 102, 103, 104]


def test_unsorted_rows_and_a_trip_from_another_month_are_kept_unless_a_period_is_set(tmp_path):
    rows = [row_2025(213, start="2026-01-01 00:05:00", end="2026-01-01 00:20:00"), row_2025(99)]
    everything = run_2025(tmp_path / "all", rows)
    assert (everything.summary.quarantined, everything.summary.other_period) == (0, 0)
    for name, period in (("june", "2025-06"), ("year", "2025")):
        summary = run_2025(tmp_path / name, rows, period=period).summary
        assert (summary.rows_in, summary.rows_out, summary.quarantined, summary.other_period) == (7, 6, 0, 1)


def test_a_month_run_skips_other_months_and_quarantines_only_its_own_bad_rows(tmp_path):
    july = "2025-07-01 08:00:00"
    rows = [
        row_2025(216, start=july, end="2025-07-01 08:10:00"),  # another month: skipped
        row_2025(217, start=july, duration="0"),  # another month, and bad: skipped, its own run judges it
        row_2025(218, duration="0"),  # this month, bad: quarantined
        row_2025(219, start="2025-06-02 8h"),  # no readable start, so no period: quarantined
    ]
    result = run_2025(tmp_path, rows, period="2025-06")
    summary = result.summary
    assert (summary.rows_in, summary.rows_out, summary.quarantined, summary.other_period) == (9, 5, 2, 2)
    assert reasons(result) == {"nonpositive_duration": 1, "bad_start_time": 1}
    assert sorted(result.trips.trip_id) == [100, 101, 102, 103, 104]
    report = json.loads((tmp_path / "out" / "trips.quality.json").read_text())
    assert report["other_period"] == 2 and report["files"]["2025/2025-06.csv"]["other_period"] == 2
    markdown = (tmp_path / "out" / "trips.quality.md").read_text()
    assert "other periods (skipped) **2**" in markdown


def test_a_skipped_trip_of_another_month_does_not_make_its_id_a_duplicate(tmp_path):
    july = {"start": "2025-07-01 08:00:00", "end": "2025-07-01 08:10:00"}
    files = {
        "2025/2025-06.csv": csv_bytes(HEADER_2025, [*GOOD, row_2025(300)]),
        "2025/2025-07.csv": csv_bytes(HEADER_2025, [row_2025(300, **july)]),
    }
    result = run_on(tmp_path, files, period="2025-07")
    assert (result.summary.rows_out, result.summary.other_period, result.summary.quarantined) == (1, 6, 0)
    assert result.trips.start_time.dt.month.tolist() == [7]


def test_every_quarantined_row_keeps_its_text_and_reason(tmp_path):
    rows = [row_2025(214, duration="0"), row_2025(215, start_id="NULL")]
    result = run_2025(tmp_path, rows)
    assert set(result.quarantine.columns) == {"source_file", "era", "reason", "raw"}
    assert dict(zip(result.quarantine.raw, result.quarantine.reason, strict=True)) == {
        rows[0]: "nonpositive_duration",
        rows[1]: "missing_station_id",
    }


@pytest.mark.parametrize("signed", [False, True])
def test_integer_text_is_the_regex_without_a_regex(signed):
    rnd = random.Random(int(signed))
    alphabet = "0123456789-+ a.\u0661\u00a0"
    values = [
        "".join(rnd.choice(alphabet) if rnd.random() < 0.3 else rnd.choice("0123456789") for _ in range(size))
        for size in (rnd.randint(0, 21) for _ in range(20_000))
    ]
    values += [None, "-", "--1", "-" + "1" * 18, "-" + "1" * 19, "1" * 18, "1" * 19, "+1"]
    text = clean_text(pa.array(values))
    expected = pc.match_substring_regex(text, r"^-?\d{1,18}$" if signed else r"^\d{1,18}$")
    found = integer_text(text, signed=signed)
    assert found.to_pylist() == expected.to_pylist()
    assert 0 < pc.sum(found).as_py() < len(values)
