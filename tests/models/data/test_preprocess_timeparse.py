"""Reading zero-padded date-times from the buffers gives exactly what strptime gives, value by value,
whatever the format, padding, whitespace, impossible dates or nulls; other values still go to strptime."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from models.data.datetimes import DAY_FIRST, ISO, MONTH_FIRST, fixed_layout, parse_strptime, parse_times

pytestmark = pytest.mark.unit


def random_value(rnd: random.Random) -> str | None:
    """A date-time in one of the published shapes, often padded, sometimes out of range or damaged."""
    year = rnd.choice([rnd.randint(1960, 2100), rnd.randint(0, 99), rnd.randint(2016, 2026)])
    month, day, hour, minute, second = (rnd.randint(0, n) for n in (13, 32, 25, 61, 61))
    pad = rnd.random() < 0.8

    def text(number: int, width: int = 2) -> str:
        return str(number).zfill(width) if pad else str(number)

    written_year = text(year, 4 if year > 99 else 2)
    shape = rnd.random()
    if shape < 0.4:
        value = f"{text(month)}/{text(day)}/{written_year} {text(hour)}:{text(minute)}"
    elif shape < 0.7:
        value = f"{text(month)}/{text(day)}/{written_year} {text(hour)}:{text(minute)}:{text(second)}"
    elif shape < 0.9:
        value = f"{text(year, 4)}-{text(month)}-{text(day)} {text(hour)}:{text(minute)}:{text(second)}"
    else:
        value = f"{text(year, 4)}-{text(month)}-{text(day)} {text(hour)}:{text(minute)}"
    damage = rnd.random()
    if damage < 0.03:
        return " " + value
    if damage < 0.06:
        return value + " "
    if damage < 0.08:
        return value.replace("/", "-", 1)
    if damage < 0.1:
        return value[:3] + "x" + value[4:]
    return None if damage < 0.12 else value


@pytest.mark.parametrize("fmt", MONTH_FIRST + DAY_FIRST + ISO)
def test_the_fast_path_agrees_with_strptime_on_random_values(fmt, monkeypatch):
    monkeypatch.setattr("models.data.datetimes.mostly_width", lambda values, size: True)  # mixed widths
    rnd = random.Random(fmt)
    values = pa.array([random_value(rnd) for _ in range(20_000)], pa.string())
    assert fixed_layout(fmt) is not None
    for part in (values, values.slice(7, 15_000)):
        fast, slow = parse_times(part, fmt), parse_strptime(part, fmt)
        assert fast.equals(slow)
        assert fast.null_count < len(part)  # some values parse in every format: the test compares dates


def test_every_day_of_a_leap_year_and_a_common_year_agrees_with_strptime():
    values = pa.array(
        [
            f"{m:02d}/{d:02d}/{y} {h:02d}:59"
            for y in (2019, 2020)
            for m in range(1, 13)
            for d in range(29, 33)
            for h in (0, 23)
        ]
        + [f"{m:02d}/{d:02d}/2024 12:00" for m in range(1, 13) for d in range(1, 29)]
    )
    fast = parse_times(values, "%m/%d/%Y %H:%M")
    assert fast.equals(parse_strptime(values, "%m/%d/%Y %H:%M"))
    assert 0 < fast.null_count < len(values)  # Feb 30, Apr 31, ... are null, Feb 29 2020 is not


def test_a_column_of_only_padded_values_and_an_empty_one():
    values = pa.array(["01/02/2019 03:04", "12/31/2019 23:59"])
    assert (
        parse_times(values, "%m/%d/%Y %H:%M").to_pylist()
        == parse_strptime(values, "%m/%d/%Y %H:%M").to_pylist()
    )
    assert parse_times(values, "%d/%m/%Y %H:%M").to_pylist()[0].month == 2
    empty = pa.array([], pa.string())
    assert len(parse_times(empty, "%m/%d/%Y %H:%M")) == 0


def test_a_column_of_mostly_other_widths_goes_to_strptime_whole(monkeypatch):
    values = pa.array(["1/2/2019 3:04", "1/12/2019 13:04", "01/02/2019 03:04"])
    monkeypatch.setattr("models.data.datetimes.parse_fixed", lambda *args: pytest.fail("not worth it"))
    assert parse_times(values, "%m/%d/%Y %H:%M").equals(parse_strptime(values, "%m/%d/%Y %H:%M"))
