"""The sample's file plan (one entry per published file) and how each file is rendered and packed.

Each ``FileSpec`` says which era, months, date style, label spellings, encoding and dirty-row kinds a
file has. ``render_file`` turns generated trips into the file's exact bytes and counts what it
injected; ``write_outputs`` lays the files out per year, packing ``a.zip!b/c.csv`` paths into ZIPs.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from models.data.eras import ERAS
from models.sample.dirty_rows import inject_dirty
from models.sample.trips import Stations, format_times, generate_trips

ZIP_TIME = (2020, 1, 1, 0, 0, 0)
OLD_LABELS = ("Member", "Casual")
ANNUAL_LABELS = ("Annual Member", "Casual Member")


@dataclass(frozen=True)
class FileSpec:
    """One published file: where it lives, its layout and which dirty rows it carries."""

    year: int
    path: str  # inside <dest>/<year>/; "!" separates ZIP members (nested ZIPs allowed)
    era: str
    months: tuple[int, ...]
    weight: float
    style: str
    labels: tuple[str, str] = ANNUAL_LABELS
    member_share: float = 0.8
    encoding: str = "utf-8"
    bom: bool = False
    dirty: tuple[str, ...] = ()
    shuffle: bool = False

    @property
    def source(self) -> str:
        return f"{self.year}/{self.path}"


def month_file(year: int, month: int, **kw) -> FileSpec:
    """A monthly file of the 2019-on naming."""
    return FileSpec(year, f"Bike share ridership {year}-{month:02d}.csv", months=(month,), **kw)


Z20 = "bikeshare-ridership-2020.zip!bikeshare-ridership-2020/"
Z22 = "bikeshare-ridership-2022.zip!bikeshare-ridership-2022/"
Z22_NOV = Z22 + "Bike share ridership 2022-11.zip!Bike share ridership 2022-11.csv"  # a ZIP in the ZIP
E19 = "2019_2023"
DECEMBER = ("other_month", "blank_lines")  # a trip from next January; blank trailing lines
R17 = "Bikeshare Ridership (2017 Q{}).csv"
R18 = "Bike Share Toronto Ridership_Q{} {}.csv"
PLAN: tuple[FileSpec, ...] = (
    FileSpec(2017, R17.format(1), "2017_q1q2", (1, 2, 3), 1.0, "loose", OLD_LABELS,
             dirty=("missing_station_id", "unknown_user_type")),
    FileSpec(2017, R17.format(2), "2017_q1q2", (4, 5, 6), 1.5, "day_first", OLD_LABELS,
             dirty=("bad_trip_id",)),
    FileSpec(2017, R17.format(3), "2017_q3q4", (7, 8, 9), 2.0, "loose", OLD_LABELS,
             dirty=("missing_station",)),
    FileSpec(2017, R17.format(4), "2017_q3q4", (10, 11, 12), 1.0, "short_year", OLD_LABELS,
             dirty=("missing_end_time_double",)),
    FileSpec(2018, R18.format(2, 2018), "2018", (4, 5, 6), 2.0, "loose",
             dirty=("end_before_start", "unknown_user_type")),
    FileSpec(2018, R18.format(3, 2018), "2018", (7, 8, 9), 2.5, "loose"),
    FileSpec(2019, R18.format(3, 2019), E19, (7, 8, 9), 3.0, "padded", bom=True,
             dirty=("missing_end_time", "nonpositive_duration", "messy_names", "blank_lines")),
    FileSpec(2020, Z20 + "2020-09.csv", E19, (9,), 2.0, "padded", bom=True),
    FileSpec(2020, Z20 + "2020-10.csv", E19, (10,), 2.0, "padded", dirty=("field_count", "bad_station_id")),
    month_file(2021, 6, era=E19, weight=2.5, style="padded", encoding="cp1252",
               dirty=("missing_trip_id", "null_bike_id", "duplicate_trip_id")),
    month_file(2021, 7, era=E19, weight=2.5, style="padded", bom=True, dirty=("duplicate_trip_id",)),
    FileSpec(2022, Z22 + "Bike share ridership 2022-10.csv", E19, (10,), 2.5, "padded", bom=True,
             member_share=0.78, dirty=("too_long", "missing_station_id")),
    FileSpec(2022, Z22_NOV, E19, (11,), 2.0, "padded", bom=True, member_share=0.78),
    month_file(2023, 5, era=E19, weight=2.5, style="padded", bom=True, member_share=0.06),  # labels collapsed
    month_file(2023, 6, era=E19, weight=2.5, style="padded", bom=True, member_share=0.06),
    month_file(2024, 8, era="2024_model", weight=3.0, style="loose", member_share=0.75,
               dirty=("null_station_name",)),
    month_file(2024, 9, era="2024_model", weight=3.0, style="padded", member_share=0.75,
               dirty=("null_station_name", "too_short")),
    month_file(2024, 10, era="2025", weight=3.0, style="iso", labels=OLD_LABELS, member_share=0.75),
    *(
        month_file(2025, m, era="2025", weight=3.5, style="iso", labels=OLD_LABELS, member_share=0.726,
                   shuffle=True, dirty=("too_short", "trailing_commas", *DECEMBER * (m == 12)))
        for m in range(1, 13)
    ),
)  # fmt: skip


def allocate_rows(rows: int) -> list[int]:
    """Rows per planned file, proportional to its weight, summing exactly to ``rows``."""
    weights = np.array([spec.weight for spec in PLAN])
    sizes = np.floor(rows * weights / weights.sum()).astype(int)
    sizes[-1] += rows - sizes.sum()
    return [int(s) for s in sizes]


def string_columns(trips: pd.DataFrame, spec: FileSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Canonical column name -> the file's string values (before dirty rows)."""
    first_id = (spec.year - 2016) * 10_000_000 + spec.months[0] * 800_000  # room for 800k trips a month
    member, casual = spec.labels
    return {
        "trip_id": (first_id + np.arange(len(trips))).astype(str).astype(object),
        "start_time": format_times(trips["start"], spec.style).to_numpy(object),
        "end_time": format_times(trips["end"], spec.style).to_numpy(object),
        "duration_s": trips["duration"].astype(str).to_numpy(object),
        "start_station_id": trips["start_id"].astype(str).to_numpy(object),
        "start_station_name": trips["start_name"].to_numpy(object),
        "end_station_id": trips["end_id"].astype(str).to_numpy(object),
        "end_station_name": trips["end_name"].to_numpy(object),
        "bike_id": trips["bike_id"].astype(str).to_numpy(object),
        "user_type": np.where(trips["member"], member, casual).astype(object),
        "bike_model": rng.choice(["ICONIC", "EFIT", "EFIT G5"], size=len(trips), p=[0.7, 0.2, 0.1]).astype(
            object
        ),
    }


def render_file(
    rng: np.random.Generator, stations: Stations, spec: FileSpec, size: int
) -> tuple[bytes, dict]:
    """The file's bytes and what it holds: rows, era, expected reasons, rows kept with nulls."""
    era = next(e for e in ERAS if e.name == spec.era)
    months = [(spec.year, m) for m in spec.months]
    trips = generate_trips(rng, stations, months, size, spec.member_share)
    columns = string_columns(trips, spec, rng)
    lines, counts = inject_dirty(rng, trips, columns, spec, era)
    if spec.shuffle:
        lines = [lines[i] for i in rng.permutation(len(lines))]
    text = ",".join(era.header) + "\n" + "\n".join(lines) + "\n" + "\n" * counts.get("blank_lines", 0)
    data = text.encode(spec.encoding)
    counts.update(era=spec.era, encoding=spec.encoding, bom=spec.bom, time_style=spec.style)
    return (b"\xef\xbb\xbf" if spec.bom else b"") + data, counts


def pack_zip(entries: dict[str, bytes]) -> bytes:
    """A ZIP of ``path -> bytes`` (``a.zip!b.csv`` paths nest), with ``__MACOSX`` junk for each CSV."""
    nested: dict[str, dict[str, bytes]] = {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(entries.items()):
            outer, _, inner = path.partition("!")
            if inner:
                nested.setdefault(outer, {})[inner] = data
                continue
            archive.writestr(zipfile.ZipInfo(path, ZIP_TIME), data)
            name = PurePosixPath(path)
            junk = PurePosixPath("__MACOSX", *name.parts[:-1], f"._{name.name}")
            archive.writestr(zipfile.ZipInfo(str(junk), ZIP_TIME), b"\x00\x05\x16\x07Mac OS X")
        for outer, inner_entries in sorted(nested.items()):
            archive.writestr(zipfile.ZipInfo(outer, ZIP_TIME), pack_zip(inner_entries))
    return buffer.getvalue()


def write_outputs(dest: Path, rendered: dict[FileSpec, bytes]) -> None:
    """Write each year folder afresh: plain CSVs as files, ``x.zip!...`` paths packed into ZIPs."""
    zips: dict[Path, dict[str, bytes]] = {}
    for year in sorted({spec.year for spec in rendered}):
        shutil.rmtree(dest / str(year), ignore_errors=True)
        (dest / str(year)).mkdir(parents=True)
    for spec, data in rendered.items():
        outer, _, inner = spec.path.partition("!")
        target = dest / str(spec.year) / outer
        if inner:
            zips.setdefault(target, {})[inner] = data
        else:
            target.write_bytes(data)
    for target, entries in zips.items():
        target.write_bytes(pack_zip(entries))


def counter_dict(counter: Counter) -> dict[str, int]:
    """A Counter as a plain, sorted dict without zero entries."""
    return {k: v for k, v in sorted(counter.items()) if v}
