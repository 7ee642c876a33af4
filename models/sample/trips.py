"""Synthetic trips with the structure a member-vs-casual model can learn, formatted like the real files.

Members ride mostly on weekdays at rush hours, shorter, between busy stations; casual riders on
weekends and afternoons, longer, with more round trips. Everything is drawn from one seeded numpy
generator, so the same seed gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STREETS = [
    "Bay St", "Yonge St", "Queen St W", "King St E", "Bloor St W", "College St", "Dundas St W",
    "Spadina Ave", "Front St W", "Wellesley St E", "Church St", "Jarvis St", "Sherbourne St",
    "Parliament St", "University Ave", "Simcoe St", "York St", "Richmond St W", "Adelaide St W",
    "Wellington St W", "Harbord St", "Bathurst St", "Ossington Ave", "Dufferin St", "Lansdowne Ave",
]  # fmt: skip
N_STATIONS = 160
FIRST_STATION_ID = 7000
BUSY = 25  # the busiest stations (downtown, near transit) that members favour


@dataclass(frozen=True)
class Stations:
    """Station ids, names and two popularity profiles (members favour the busy ones)."""

    ids: np.ndarray
    names: np.ndarray
    member_weights: np.ndarray
    casual_weights: np.ndarray


def make_stations(rng: np.random.Generator) -> Stations:
    """A fixed network: ids 7000.., names from street pairs, one name with an en dash (cp1252 0x96)."""
    pairs = [(a, b) for a in STREETS for b in STREETS if a != b]
    picked = rng.choice(len(pairs), size=N_STATIONS, replace=False)
    names = np.array([f"{pairs[i][0]} / {pairs[i][1]}" for i in picked], dtype=object)
    names[3] = "Bloor St W / Spadina Ave – SE"
    rank = np.arange(1, N_STATIONS + 1, dtype=float)
    member = 1.0 / rank**1.1
    member[:BUSY] *= 3.0
    casual = 1.0 / rank**0.5
    casual[rng.choice(N_STATIONS, size=12, replace=False)] *= 4.0  # waterfront and park stations
    return Stations(
        ids=np.arange(FIRST_STATION_ID, FIRST_STATION_ID + N_STATIONS),
        names=names,
        member_weights=member / member.sum(),
        casual_weights=casual / casual.sum(),
    )


def draw_days(
    rng: np.random.Generator, months: list[tuple[int, int]], size: int, weekday_p: np.ndarray
) -> pd.Series:
    """Dates in the given months, weekday or weekend chosen per trip with probability ``weekday_p``."""
    days = pd.concat(
        [
            pd.Series(pd.date_range(f"{y}-{m:02d}-01", periods=pd.Period(f"{y}-{m:02d}").days_in_month))
            for y, m in months
        ],
        ignore_index=True,
    )
    is_weekday = (days.dt.day_of_week < 5).to_numpy()
    want_weekday = rng.random(size) < weekday_p
    pool_weekday, pool_weekend = days[is_weekday].to_numpy(), days[~is_weekday].to_numpy()
    chosen = np.where(
        want_weekday,
        pool_weekday[rng.integers(0, len(pool_weekday), size)],
        pool_weekend[rng.integers(0, len(pool_weekend), size)],
    )
    return pd.Series(chosen)


def draw_hours(rng: np.random.Generator, member: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Start hours: weekday members peak at 8 and 17; everyone else in the early afternoon."""
    size = member.size
    rush = np.where(rng.random(size) < 0.5, rng.normal(8.2, 1.0, size), rng.normal(17.3, 1.2, size))
    leisure = rng.normal(14.5, 3.2, size)
    commuting = member & weekday & (rng.random(size) < 0.75)
    return np.clip(np.where(commuting, rush, leisure), 0, 23.99)


def draw_stations(
    rng: np.random.Generator, stations: Stations, member: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end station indices: members between busy stations, casual riders more round trips."""
    size = member.size

    def pick() -> np.ndarray:
        return np.where(
            member,
            rng.choice(N_STATIONS, size=size, p=stations.member_weights),
            rng.choice(N_STATIONS, size=size, p=stations.casual_weights),
        )

    start_idx, end_idx = pick(), pick()
    round_trip = rng.random(size) < np.where(member, 0.02, 0.16)
    moved = np.where(end_idx == start_idx, (end_idx + 1) % N_STATIONS, end_idx)
    return start_idx, np.where(round_trip, start_idx, moved)


def generate_trips(
    rng: np.random.Generator,
    stations: Stations,
    months: list[tuple[int, int]],
    size: int,
    member_share: float,
) -> pd.DataFrame:
    """Clean trips for the given months: times, duration, stations and the member flag."""
    member = rng.random(size) < member_share
    days = draw_days(rng, months, size, np.where(member, 0.86, 0.45))
    weekday = (days.dt.day_of_week < 5).to_numpy()
    hours = draw_hours(rng, member, weekday)
    start = days + pd.to_timedelta(np.floor(hours * 3600).astype(np.int64), unit="s")
    median = np.where(member, 640.0, 1350.0)
    duration = np.clip(rng.lognormal(np.log(median), 0.55), 120, 6 * 3600).astype(np.int64)
    start_idx, end_idx = draw_stations(rng, stations, member)
    return pd.DataFrame({
        "start": start.dt.floor("s"),
        "end": (start + pd.to_timedelta(duration, unit="s")).dt.floor("s"),
        "duration": duration,
        "start_id": stations.ids[start_idx],
        "start_name": stations.names[start_idx],
        "end_id": stations.ids[end_idx],
        "end_name": stations.names[end_idx],
        "member": member,
        "bike_id": rng.integers(1000, 9000, size),
    })  # fmt: skip


def format_times(times: pd.Series, style: str) -> pd.Series:
    """Times as the files print them: ``iso``, ``padded`` (MM/DD/YYYY HH:MM), ``loose`` (M/D/YYYY H:MM),
    ``short_year`` (MM/DD/YY HH:MM:SS) or ``day_first`` (D/M/YYYY H:MM)."""
    if style == "iso":
        return times.dt.strftime("%Y-%m-%d %H:%M:%S")
    if style == "padded":
        return times.dt.strftime("%m/%d/%Y %H:%M")
    if style == "short_year":
        return times.dt.strftime("%m/%d/%y %H:%M:%S")
    day, month = times.dt.day.astype(str), times.dt.month.astype(str)
    clock = times.dt.hour.astype(str) + ":" + times.dt.strftime("%M")
    year = times.dt.year.astype(str)
    if style == "loose":
        return month + "/" + day + "/" + year + " " + clock
    if style == "day_first":
        return day + "/" + month + "/" + year + " " + clock
    raise ValueError(f"unknown time style {style!r}")
