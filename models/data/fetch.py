"""Download the real yearly ridership ZIPs from the City of Toronto open-data portal.

    python -m models fetch --years 2024 2025 --dest data/raw [--api-url URL]

Download links are resolved through the portal's CKAN ``package_show`` API on every run (they
change when a year is republished); nothing here hard-codes a file URL. Each ZIP is downloaded to
``<dest>/.downloads/<name>.zip.part`` (resumed with an HTTP Range request after a broken
connection, retried with exponential backoff), checked, renamed into place, then unpacked into
``<dest>/<year>/`` (sub-folders flattened, nested ZIPs opened, ``__MACOSX`` junk ignored).
``<dest>/manifest.json`` records the URL and SHA-256 of every ZIP and CSV; a ZIP whose digest
matches the manifest is not downloaded again. When the portal lists a ``hash`` for the resource
(CKAN's free-text field: ``<algorithm>:<hex>``, or bare hex read by its length as MD5, SHA-1,
SHA-256 or SHA-512), the download is checked against it (``check_portal_hash``); a mismatch is
kept aside as ``<name>.zip.hash-mismatch`` and nothing is unpacked. Data: "Contains information
licensed under the Open Government Licence – Toronto."
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from models.core import storage
from models.core.errors import UserError
from models.core.settings import Settings
from models.data.download import Downloader
from models.data.unzip import unpack_zip

log = logging.getLogger(__name__)

DEFAULT_API_URL = Settings.model_fields["ckan_api_url"].default
PACKAGE_ID = "bike-share-toronto-ridership-data"
API_URL_ENV = "TO_BIKES_CKAN_API_URL"
DOWNLOADS = ".downloads"
MANIFEST = "manifest.json"
LICENCE = "Contains information licensed under the Open Government Licence – Toronto."


@dataclass(frozen=True)
class Resource:
    """One yearly ZIP as the CKAN API describes it."""

    year: int
    name: str
    url: str
    last_modified: str | None
    size: int | None = None  # bytes, as the portal lists them (models.data.ingest checks the download)
    hash: str | None = None  # CKAN's ``hash`` field when the portal gives one (check_portal_hash)


def pick_resources(package: dict[str, Any], years: Sequence[int], api_url: str) -> list[Resource]:
    """The ZIP resource named ``bikeshare-ridership-YYYY`` for each year; a missing year is a UserError."""
    resources = package.get("result", {}).get("resources", [])
    picked = []
    for year in years:
        matches = [
            r
            for r in resources
            if str(r.get("name", "")).strip().lower() == f"bikeshare-ridership-{year}"
            and (str(r.get("format", "")).upper() == "ZIP" or str(r.get("url", "")).lower().endswith(".zip"))
        ]
        if not matches:
            raise UserError(f"The CKAN package at {api_url} lists no ZIP named bikeshare-ridership-{year}.")
        chosen = matches[-1]
        listed_hash = str(chosen.get("hash") or "").strip() or None
        picked.append(
            Resource(year, chosen["name"], chosen["url"], chosen.get("last_modified"), hash=listed_hash)
        )
    return picked


HEX_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
HASH_CHUNK = 1 << 20
MISMATCH_SUFFIX = ".hash-mismatch"


def parse_portal_hash(listed: str) -> tuple[str, str] | None:
    """``(algorithm, hex)`` of a CKAN ``hash`` value, or None when it names no hash this can compute."""
    algorithm, _, hexdigest = listed.rpartition(":")
    algorithm = algorithm.strip().lower().replace("-", "") or HEX_LENGTHS.get(len(hexdigest.strip()), "")
    hexdigest = hexdigest.strip().lower()
    if algorithm not in hashlib.algorithms_guaranteed or not hexdigest:
        return None
    if any(char not in "0123456789abcdef" for char in hexdigest):
        return None
    return algorithm, hexdigest


def check_portal_hash(path: Path, resource: Resource, *, quarantine: bool = True) -> None:
    """The download at ``path`` against the portal's ``hash`` (when listed); a mismatch is a UserError,
    after moving the file to ``<path>.hash-mismatch`` with ``quarantine`` (a fetch's download folder;
    the ingest's is a temporary one). A value that names no known hash is logged, not checked.
    """
    if not resource.hash:
        return
    parsed = parse_portal_hash(resource.hash)
    if parsed is None:
        log.warning(
            "%s: the portal's hash %r names no known algorithm; not checked", resource.url, resource.hash
        )
        return
    algorithm, expected = parsed
    digest = hashlib.new(algorithm)
    with path.open("rb") as source:
        while chunk := source.read(HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() == expected:
        log.info("%s: matches the portal's %s hash", path.name, algorithm)
        return
    kept = "run the ingest again later"
    if quarantine:
        quarantined = path.with_name(path.name + MISMATCH_SUFFIX)
        path.replace(quarantined)
        kept = f"the file is kept in {quarantined}"
    raise UserError(
        f"Download of {resource.url} does not match the portal's hash {resource.hash} "
        f"(got {algorithm}:{digest.hexdigest()}); nothing was written: {kept}."
    )


def read_manifest(dest: Path) -> dict[str, Any]:
    """The manifest of earlier runs (empty when there is none)."""
    path = dest / MANIFEST
    if not path.is_file():
        return {"licence": LICENCE, "years": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"Manifest {path} is not valid JSON ({exc}); delete it to start afresh.") from exc


def write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically."""
    handle, temp = tempfile.mkstemp(dir=dest, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.write("\n")
    storage.move_file_atomic(temp, dest / MANIFEST)
    Path(temp).unlink(missing_ok=True)  # left behind only if the move had to copy


def unpack_year(zip_path: Path, year_dir: Path, source: str) -> dict[str, str]:
    """Unpack every CSV of a yearly ZIP into ``year_dir`` under its own file name; returns name -> digest."""
    shutil.rmtree(year_dir, ignore_errors=True)
    year_dir.mkdir(parents=True)
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory(dir=year_dir.parent, prefix=".unpack-") as scratch:
        for csv_file in unpack_zip(zip_path, Path(scratch), source):
            name = PurePosixPath(csv_file.source.rsplit("!", 1)[-1]).name
            stem, suffix, number = Path(name).stem, Path(name).suffix, 1
            while name in digests:  # the same file name in two sub-folders
                number += 1
                name = f"{stem} ({number}){suffix}"
            target = year_dir / name
            shutil.move(str(csv_file.path), target)
            digests[name] = storage.file_digest(target)
    return digests


def fetch_year(
    resource: Resource, dest: Path, downloader: Downloader, manifest: dict[str, Any]
) -> dict[str, Any]:
    """Download (unless the manifest's digest still matches) and unpack one year; returns its entry."""
    zip_name = f"{resource.name}.zip"
    zip_path = dest / DOWNLOADS / zip_name
    known = manifest.get("years", {}).get(str(resource.year), {})
    year_dir = dest / str(resource.year)
    fresh = known.get("url") == resource.url and known.get("last_modified") == resource.last_modified
    if fresh and zip_path.is_file() and storage.file_digest(zip_path) == known.get("zip_sha256"):
        log.info("%s: already downloaded (digest matches the manifest)", zip_name)
        if year_dir.is_dir() and all((year_dir / name).is_file() for name in known.get("files", {})):
            return known
    else:
        downloader.download(resource.url, zip_path)
        check_portal_hash(zip_path, resource)
    files = unpack_year(zip_path, year_dir, f"{resource.year}/{zip_name}")
    return {
        "name": resource.name,
        "url": resource.url,
        "last_modified": resource.last_modified,
        "zip": f"{DOWNLOADS}/{zip_name}",
        "zip_sha256": storage.file_digest(zip_path),
        "zip_bytes": zip_path.stat().st_size,
        "files": files,
    }


def fetch_years(
    years: Sequence[int], dest: str | Path, *, api_url: str = DEFAULT_API_URL, **options: Any
) -> dict:
    """Resolve, download and unpack the given years into ``dest``; returns the manifest."""
    dest = Path(dest)
    (dest / DOWNLOADS).mkdir(parents=True, exist_ok=True)
    downloader = Downloader(**options)
    package = downloader.get_json(api_url, {"id": PACKAGE_ID})
    manifest = read_manifest(dest)
    manifest["licence"] = LICENCE
    manifest["api_url"] = api_url
    for resource in pick_resources(package, years, api_url):
        manifest.setdefault("years", {})[str(resource.year)] = fetch_year(
            resource, dest, downloader, manifest
        )
        write_manifest(dest, manifest)
    return manifest
