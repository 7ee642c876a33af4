"""Era detection by header line only: exact match after stripping a BOM and whitespace."""

from __future__ import annotations

import pytest

from models.core.errors import UserError
from models.data.eras import ERA_NAMES, detect_era
from tests.models.data import rows

pytestmark = pytest.mark.unit

HEADERS = {
    "2017_q1q2": rows.HEADER_2017_Q1Q2,
    "2017_q3q4": rows.HEADER_2017_Q3Q4,
    "2018": rows.HEADER_2018,
    "2019_2023": rows.HEADER_2019,
    "2024_model": rows.HEADER_2024,
    "2025": rows.HEADER_2025,
}


@pytest.mark.parametrize("era", ERA_NAMES)
def test_each_published_header_is_its_era(era):
    assert detect_era(HEADERS[era], "f.csv").name == era
    assert detect_era("\ufeff" + HEADERS[era] + " \r", "f.csv").name == era


def test_eras_map_to_canonical_columns():
    assert not detect_era(rows.HEADER_2017_Q3Q4, "f").has_station_ids
    assert detect_era(rows.HEADER_2018, "f").columns["trip_stop_time"] == "end_time"
    assert detect_era(rows.HEADER_2019, "f").columns["Trip  Duration"] == "duration_s"
    assert detect_era(rows.HEADER_2024, "f").columns["Model"] == "bike_model"


def test_one_space_in_trip_duration_is_not_the_2019_header():
    with pytest.raises(UserError, match=r"2019-01\.csv has an unknown header"):
        detect_era(rows.HEADER_2019.replace("Trip  Duration", "Trip Duration"), "2019-01.csv")
