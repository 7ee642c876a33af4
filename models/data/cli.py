"""``python -m models fetch|ingest|preprocess``: the data stage's commands (``models.cli`` mounts them)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from models.core.names import DEFAULT_MIN_DURATION_S


def fetch_command(
    years: Annotated[list[int], typer.Option(metavar="YEAR", help="years to fetch, e.g. --years 2024 2025")],
    more_years: Annotated[list[int] | None, typer.Argument(hidden=True, metavar="YEAR")] = None,
    dest: Annotated[str, typer.Option(help="folder to fill")] = "data/raw",
    api_url: Annotated[
        str | None,
        typer.Option(help="CKAN package_show URL (default $TO_BIKES_CKAN_API_URL, else the City's portal)"),
    ] = None,
    retries: Annotated[int, typer.Option(help="attempts per request")] = 5,
) -> int:
    """Download the real yearly ZIPs through the City's CKAN API and unpack them."""
    from models.core.settings import load_settings
    from models.data.fetch import fetch_years

    wanted = [*years, *(more_years or [])]  # `--years 2024 2025`: the later years arrive as arguments
    manifest = fetch_years(wanted, dest, api_url=api_url or load_settings().ckan_api_url, attempts=retries)
    summary = {
        year: {"files": len(entry["files"]), "zip_sha256": entry["zip_sha256"]}
        for year, entry in manifest["years"].items()
    }
    print(json.dumps({"dest": dest, "years": summary}, sort_keys=True))
    return 0


def ingest_command(
    api_url: Annotated[
        str | None,
        typer.Option(help="CKAN package_show URL (default $TO_BIKES_CKAN_API_URL, else the City's portal)"),
    ] = None,
) -> int:
    """Bring raw/ on S3 up to date with the portal: only new or changed files, with raw/_manifest.json."""
    from models.core.settings import load_settings
    from models.data.ingest import ingest_portal

    report = ingest_portal(load_settings(), api_url=api_url)
    print(json.dumps(report.to_dict(), sort_keys=True))
    return 0


def preprocess_command(
    input: Annotated[str, typer.Option(help="a CSV, a ZIP or a folder of them (path or s3:// URI)")],
    output: Annotated[str, typer.Option(help="output Parquet (path or s3:// URI)")],
    period: Annotated[
        str | None, typer.Option(help="read only trips starting in YYYY or YYYY-MM (others skipped, counted)")
    ] = None,
    min_duration: Annotated[int, typer.Option(help="shortest trip kept, seconds")] = DEFAULT_MIN_DURATION_S,
) -> int:
    """Raw CSV/ZIP files to the trips Parquet, a quarantine and a quality report."""
    from models.data.preprocess import preprocess

    summary = preprocess(input, output, period=period, min_duration_s=min_duration)
    print(json.dumps(summary.to_dict(), sort_keys=True))
    return 0
