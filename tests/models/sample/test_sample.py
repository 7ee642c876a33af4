"""The generated sample: deterministic, every era and layout, known dirty rows, learnable structure."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from models.core.errors import UserError
from models.data.preprocess import preprocess
from models.sample.generate import generate_sample

pytestmark = pytest.mark.unit

ROWS = 12_000
ERAS = {"2017_q1q2", "2017_q3q4", "2018", "2019_2023", "2024_model", "2025"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("sample")
    return dest, generate_sample(dest, seed=7, rows=ROWS)


@pytest.fixture(scope="module")
def processed(sample, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    output = tmp_path_factory.mktemp("processed") / "trips.parquet"
    summary = preprocess(str(sample[0]), str(output))
    return summary, pq.read_table(output).to_pandas()


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(sample, tmp_path):
    generate_sample(tmp_path / "again", seed=7, rows=ROWS)
    generate_sample(tmp_path / "other", seed=8, rows=ROWS)
    assert digests(tmp_path / "again") == digests(sample[0])
    assert digests(tmp_path / "other") != digests(sample[0])


def test_layout_years_zip_subfolder_macosx_and_nested_zip(sample):
    dest, _ = sample
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == [str(y) for y in range(2017, 2026)]
    with zipfile.ZipFile(dest / "2022" / "bikeshare-ridership-2022.zip") as archive:
        names = archive.namelist()
    assert any(n.startswith("__MACOSX/") for n in names)
    assert any(n.startswith("bikeshare-ridership-2022/") and n.endswith(".zip") for n in names)
    months_2025 = sorted(p.name for p in (dest / "2025").iterdir())
    assert len(months_2025) == 12


def test_every_era_a_bom_and_a_cp1252_file(sample):
    _, manifest = sample
    assert set(manifest["by_era"]) == ERAS
    files = manifest["files"].values()
    assert any(f["bom"] for f in files) and any(f["encoding"] == "cp1252" for f in files)
    assert max(manifest["by_era"], key=manifest["by_era"].get) == "2025"


def test_preprocess_accounts_for_every_row_and_finds_exactly_the_injected_dirt(sample, processed):
    _, manifest = sample
    summary, _ = processed
    assert summary.rows_in == manifest["rows"] == summary.rows_out + summary.quarantined
    assert summary.other_period == 0  # no period: every row is kept or quarantined
    assert summary.by_reason == manifest["by_reason"]
    assert summary.kept_with_nulls == manifest["kept_with_nulls"]
    assert summary.by_era == manifest["by_era"]
    assert len(manifest["by_reason"]) >= 12  # every quarantined kind of the data notes occurs


def test_the_2023_label_collapse_is_flagged(processed):
    summary, _ = processed
    assert any("2023-05" in warning for warning in summary.warnings)


def test_members_ride_weekday_rush_hours_shorter_and_casuals_do_more_round_trips(processed):
    _, trips = processed
    trips = trips[trips.start_time.dt.year != 2023]  # the collapsed labels
    member, casual = trips[trips.user_type == "member"], trips[trips.user_type == "casual"]
    rush = trips.hour.isin([7, 8, 9, 16, 17, 18]) & (trips.weekday < 5)
    assert rush[member.index].mean() > rush[casual.index].mean() + 0.2
    assert member.duration_s.median() < 0.7 * casual.duration_s.median()
    assert casual.round_trip.mean() > 3 * member.round_trip.mean()
    assert casual.is_weekend.mean() > member.is_weekend.mean() + 0.2
    assert 0.65 < (trips.user_type == "member").mean() < 0.85


def test_too_few_rows_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="too small"):
        generate_sample(tmp_path, rows=10)
