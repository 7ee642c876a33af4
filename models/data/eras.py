"""The six header eras of the Bike Share Toronto ridership files, and how each maps to a trip.

A file's era is recognised by its header line alone (after stripping a UTF-8 BOM and surrounding
whitespace), never by its name or year: the City republishes years in newer layouts. Each era
maps its published column names to the canonical trip columns of ``models.data.features``.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.core.errors import UserError

UTF8_BOM = "\ufeff"


@dataclass(frozen=True)
class Era:
    """One published layout: its name, exact header and the canonical name of each column."""

    name: str
    header: tuple[str, ...]
    columns: dict[str, str]  # published name -> canonical name
    day_first_possible: bool = False  # only 2017 Q1-Q2 exists in both day- and month-first copies

    @property
    def has_station_ids(self) -> bool:
        return "start_station_id" in self.columns.values()


def make_era(name: str, header: str, canonical: list[str | None], day_first: bool = False) -> Era:
    """An ``Era`` from its header line and the canonical name per column (None: not kept)."""
    names = tuple(header.split(","))
    mapping = {src: dst for src, dst in zip(names, canonical, strict=True) if dst}
    return Era(name=name, header=names, columns=mapping, day_first_possible=day_first)


OLD_TRIP = ["trip_id", "start_time", "end_time", "duration_s"]
MODERN = [
    "trip_id",
    "duration_s",
    "start_station_id",
    "start_time",
    "start_station_name",
    "end_station_id",
    "end_time",
    "end_station_name",
    "bike_id",
    "user_type",
]
HEADER_2019 = (
    "Trip Id,Trip  Duration,Start Station Id,Start Time,Start Station Name,"
    "End Station Id,End Time,End Station Name,Bike Id,User Type"
)

ERAS: tuple[Era, ...] = (
    make_era(
        "2017_q1q2",
        "trip_id,trip_start_time,trip_stop_time,trip_duration_seconds,from_station_id,"
        "from_station_name,to_station_id,to_station_name,user_type",
        [
            *OLD_TRIP,
            "start_station_id",
            "start_station_name",
            "end_station_id",
            "end_station_name",
            "user_type",
        ],
        day_first=True,
    ),
    make_era(
        "2017_q3q4",
        "trip_id,trip_start_time,trip_stop_time,trip_duration_seconds,from_station_name,"
        "to_station_name,user_type",
        [*OLD_TRIP, "start_station_name", "end_station_name", "user_type"],
    ),
    make_era(
        "2018",
        "trip_id,trip_duration_seconds,from_station_id,trip_start_time,from_station_name,"
        "trip_stop_time,to_station_id,to_station_name,user_type",
        [
            "trip_id",
            "duration_s",
            "start_station_id",
            "start_time",
            "start_station_name",
            "end_time",
            "end_station_id",
            "end_station_name",
            "user_type",
        ],
    ),
    make_era("2019_2023", HEADER_2019, MODERN),
    make_era("2024_model", HEADER_2019 + ",Model", [*MODERN, "bike_model"]),
    make_era(
        "2025",
        "Trip_Id,Trip_Duration,Start_Station_Id,Start_Time,Start_Station_Name,End_Station_Id,"
        "End_Time,End_Station_Name,Bike_Id,User_Type,Bike_Model",
        [*MODERN, "bike_model"],
    ),
)
ERA_NAMES = tuple(era.name for era in ERAS)

LABELS = {
    "member": "member",
    "annual member": "member",
    "casual": "casual",
    "casual member": "casual",
}


def detect_era(header_line: str, source: str) -> Era:
    """The era whose header matches ``header_line`` exactly; anything else is a UserError naming the file."""
    cleaned = header_line.lstrip(UTF8_BOM).strip()
    fields = tuple(cleaned.split(","))
    for era in ERAS:
        if fields == era.header:
            return era
    shown = cleaned if len(cleaned) <= 200 else cleaned[:200] + "..."
    raise UserError(f"File {source} has an unknown header {shown!r}; it matches none of the known eras.")
