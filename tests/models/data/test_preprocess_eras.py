"""One test per header era, on rows written in exactly the published layout and date format."""

from __future__ import annotations

import pandas as pd
import pytest

from models.core.errors import UserError
from tests.models.data.rows import (
    HEADER_2017_Q1Q2,
    HEADER_2017_Q3Q4,
    HEADER_2018,
    HEADER_2019,
    HEADER_2024,
    HEADER_2025,
    csv_bytes,
    run_on,
)

pytestmark = pytest.mark.unit


def first(result, trip_id: int) -> pd.Series:
    return result.trips.set_index("trip_id").loc[trip_id]


def test_2017_q1_month_first_city_copy(tmp_path):
    rows = [
        "712382,1/1/2017 0:00,1/1/2017 0:03,223,7051,Wellesley St E / Yonge St Green P,"
        "7089,Church St  / Wood St,Member",
        "712383,1/13/2017 17:45,1/13/2017 18:02,1020,7143,Kendal Ave / Bernard Ave,7143,"
        "Kendal Ave / Bernard Ave,Casual",
    ]
    result = run_on(tmp_path, {"2017/Bikeshare Ridership (2017 Q1).csv": csv_bytes(HEADER_2017_Q1Q2, rows)})
    assert result.summary.by_era == {"2017_q1q2": 2}
    trip = first(result, 712383)
    assert trip.start_time == pd.Timestamp("2017-01-13 17:45") and trip.end_time == pd.Timestamp(
        "2017-01-13 18:02"
    )
    assert (trip.duration_s, trip.start_station_id, trip.user_type, trip.round_trip) == (
        1020,
        7143,
        "casual",
        1,
    )
    assert first(result, 712382).end_station_name == "Church St / Wood St"  # double space collapsed
    assert result.summary.quarantined == 0


def test_2017_q2_day_first_older_copy(tmp_path):
    rows = [
        "1000001,2/4/2017 9:05,2/4/2017 9:20,900,7000,Fort York Blvd / Capreol Ct,7001,"
        "Lower Jarvis St / The Esplanade,Member",
        "1000002,13/4/2017 18:30,13/4/2017 18:41,660,7001,"
        "Lower Jarvis St / The Esplanade,7000,Fort York Blvd / Capreol Ct,Member",
    ]
    result = run_on(tmp_path, {"2017/q2.csv": csv_bytes(HEADER_2017_Q1Q2, rows)})
    assert first(result, 1000001).start_time == pd.Timestamp("2017-04-02 09:05")  # 2 April, not 4 February
    assert first(result, 1000002).start_time == pd.Timestamp("2017-04-13 18:30")


def test_2017_q1q2_without_evidence_is_an_error_naming_the_file(tmp_path):
    rows = ["1,2/4/2017 9:05,2/4/2017 9:20,900,7000,A St,7001,B St,Member"]
    with pytest.raises(UserError, match=r"q2\.csv.*ambiguous"):
        run_on(tmp_path, {"2017/q2.csv": csv_bytes(HEADER_2017_Q1Q2, rows)})


def test_2017_q3_has_no_station_ids(tmp_path):
    rows = [
        "1500001,7/1/2017 0:00,7/1/2017 0:13,780,Queens Quay W / Lower Simcoe St,"
        "Bay St / Wellesley St W,Casual",
        "1500002,9/30/2017 23:58,10/1/2017 0:10,720,Dundas St W / Yonge St,Dundas St W / Yonge St,Member",
    ]
    result = run_on(tmp_path, {"2017/Bikeshare Ridership (2017 Q3).csv": csv_bytes(HEADER_2017_Q3Q4, rows)})
    assert result.summary.by_era == {"2017_q3q4": 2}
    assert result.trips["start_station_id"].isna().all()
    trip = first(result, 1500002)
    assert trip.end_time == pd.Timestamp("2017-10-01 00:10") and trip.round_trip == 1  # same name
    assert first(result, 1500001).start_station_name == "Queens Quay W / Lower Simcoe St"


def test_2017_q4_two_digit_years_with_seconds(tmp_path):
    rows = [
        "2200001,10/01/17 00:00:17,10/01/17 00:12:48,751,Bay St / College St (East Side),"
        "King St W / Bay St,Member"
    ]
    result = run_on(tmp_path, {"2017/q4.csv": csv_bytes(HEADER_2017_Q3Q4, rows)})
    trip = first(result, 2200001)
    assert trip.start_time == pd.Timestamp("2017-10-01 00:00:17")
    assert trip.end_time == pd.Timestamp("2017-10-01 00:12:48")


def test_2018_other_column_order_and_annual_member_labels(tmp_path):
    rows = [
        "2383648,393,7018,1/1/2018 0:47,Bremner Blvd / Rees St,1/1/2018 0:54,7176,"
        "Bathurst St / Fort York Blvd,Annual Member",
        "2383649,625,7184,1/1/2018 0:52,Ossington Ave / College St,1/1/2018 1:03,7191,"
        "Central Tech  (Harbord St),Casual Member",
    ]
    result = run_on(tmp_path, {"2018/Bike Share Toronto Ridership_Q1 2018.csv": csv_bytes(HEADER_2018, rows)})
    trip = first(result, 2383648)
    assert (trip.duration_s, trip.start_station_id, trip.end_station_id) == (393, 7018, 7176)
    assert trip.start_time == pd.Timestamp("2018-01-01 00:47") and trip.user_type == "member"
    assert first(result, 2383649).user_type == "casual"
    assert first(result, 2383649).end_station_name == "Central Tech (Harbord St)"


def test_2019_to_2023_header_with_two_spaces_and_bom(tmp_path):
    rows = [
        "4581278,1547,7021,01/01/2019 00:08,Bay St / Albert St,7233,01/01/2019 00:33,"
        "King / Cowan Ave - SMART,1296,Annual Member"
    ]
    result = run_on(tmp_path, {"2019/2019-01.csv": csv_bytes(HEADER_2019, rows, bom=True, eol="\r\n")})
    assert result.summary.by_era == {"2019_2023": 1}
    trip = first(result, 4581278)
    assert (trip.duration_s, trip.bike_id, trip.start_time) == (1547, 1296, pd.Timestamp("2019-01-01 00:08"))
    assert result.summary.rows_out == 1


def test_2024_first_published_model_column_padded_and_unpadded(tmp_path):
    august = [
        "26682755,840,7259,8/1/2024 0:00,Lower Spadina Ave / Lake Shore Blvd,7712,"
        "8/1/2024 0:14,NULL,5795,Casual Member,ICONIC"
    ]
    september = [
        "28036330,659,7076,09/01/2024 00:00,York St / Queens Quay W,7203,"
        "09/01/2024 00:11,Bathurst St/Queens Quay(Billy Bishop Airport),6870,"
        "Annual Member,EFIT G5"
    ]
    result = run_on(
        tmp_path,
        {
            "2024/2024-08.csv": csv_bytes(HEADER_2024, august),
            "2024/2024-09.csv": csv_bytes(HEADER_2024, september),
        },
    )
    assert result.summary.by_era == {"2024_model": 2}
    aug, sep = first(result, 26682755), first(result, 28036330)
    assert aug.start_time == pd.Timestamp("2024-08-01 00:00") and sep.start_time == pd.Timestamp(
        "2024-09-01 00:00"
    )
    assert (aug.bike_model, sep.bike_model) == ("ICONIC", "EFIT G5")
    assert (
        pd.isna(aug.end_station_name) and aug.end_station_id == 7712
    )  # a NULL name next to a valid id is kept
    assert result.summary.kept_with_nulls["station_name"] == 1


def test_2025_iso_times_and_member_casual(tmp_path):
    rows = [
        "30000001,1312,7301,2025-01-01 00:00:04,Lakeshore Blvd W / Ellis Ave,7301,"
        "2025-01-01 00:21:56,Lakeshore Blvd W / Ellis Ave,4102,Casual,EFIT",
        "30000002,455,7031,2025-01-01 00:01:10,Jarvis St / Isabella St,7261,"
        "2025-01-01 00:08:45,Queen St E / Leslieville Public School,771,Member,ICONIC",
    ]
    result = run_on(tmp_path, {"2025/Bike share ridership 2025-01.csv": csv_bytes(HEADER_2025, rows)})
    assert result.summary.by_era == {"2025": 2}
    trip = first(result, 30000001)
    assert trip.start_time == pd.Timestamp("2025-01-01 00:00:04") and trip.round_trip == 1
    assert first(result, 30000002).user_type == "member" and first(result, 30000002).duration_s == 455


def test_2024_republished_in_the_2025_layout_is_read_by_its_header(tmp_path):
    rows = ["27000001,600,7000,2024-10-01 08:00:00,A St,7001,2024-10-01 08:10:00,B St,1,Member,ICONIC"]
    result = run_on(tmp_path, {"2024/Bike share ridership 2024-10.csv": csv_bytes(HEADER_2025, rows)})
    assert result.summary.by_era == {"2025": 1}


def test_unknown_header_names_the_file_and_header(tmp_path):
    with pytest.raises(UserError, match=r"odd\.csv.*unknown header 'id,when'"):
        run_on(tmp_path, {"odd.csv": b"id,when\n1,2\n"})


def test_2017_q1q2_whose_dates_read_the_same_both_ways_is_read(tmp_path):
    rows = [
        "1,1/1/2017 9:05,1/1/2017 9:20,900,7000,A St,7001,B St,Member",
        "2,3/3/2017 18:30,3/3/2017 18:41,660,7001,B St,7000,A St,Casual",
    ]
    result = run_on(tmp_path, {"2017/q1.csv": csv_bytes(HEADER_2017_Q1Q2, rows)})
    assert first(result, 1).start_time == pd.Timestamp("2017-01-01 09:05")
    assert first(result, 2).end_time == pd.Timestamp("2017-03-03 18:41")
    assert result.summary.quarantined == 0


def test_2017_q1q2_end_time_across_midnight_makes_the_readings_differ(tmp_path):
    rows = ["1,1/1/2017 23:55,2/1/2017 0:07,720,7000,A St,7001,B St,Member"]  # 2 January or 1 February
    with pytest.raises(UserError, match=r"q1\.csv.*ambiguous"):
        run_on(tmp_path, {"2017/q1.csv": csv_bytes(HEADER_2017_Q1Q2, rows)})


def test_2017_q1q2_evidence_in_an_end_time_decides(tmp_path):
    rows = [
        "1,4/4/2017 9:05,4/4/2017 9:20,900,7000,A St,7001,B St,Member",
        "2,12/12/2017 23:55,13/12/2017 0:07,720,7000,A St,7001,B St,Member",  # 13 is a day
        "3,1/2/2017 8:00,1/2/2017 8:10,600,7000,A St,7001,B St,Member",
    ]
    result = run_on(tmp_path, {"2017/q1.csv": csv_bytes(HEADER_2017_Q1Q2, rows)})
    assert first(result, 2).end_time == pd.Timestamp("2017-12-13 00:07")
    assert first(result, 3).start_time == pd.Timestamp("2017-02-01 08:00")  # 1 February, day first
