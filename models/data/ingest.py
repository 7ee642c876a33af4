"""Ingest the City's ridership data straight to S3: only what is new or changed, verified, atomically.

    from models.data.ingest import ingest_portal; ingest_portal(settings)

Every run reads the portal's resources through CKAN ``package_show`` (download links change when a
year is republished). A yearly ZIP whose url, ``last_modified`` and size are those of the manifest
(``models.data.raw_manifest``) is not downloaded at all. Otherwise it is downloaded into a temporary
folder (``models.data.download``: resume, retries), its size checked against the portal's (and its
CKAN ``hash`` when listed: ``models.data.fetch.check_portal_hash``), and its SHA-256 compared with the
manifest's: the same content uploads nothing. A new content is unpacked
(``models.data.fetch.unpack_year``: sub-folders, nested ZIPs, ``__MACOSX``), and only the monthly
CSVs whose SHA-256 changed are written to ``raw/<year>/``, each atomically. A CSV the City withdrew
(or a whole year gone from the portal) is kept on S3 and reported as withdrawn, never deleted.
No local data folder is assumed: it runs in a container. Data: "Contains information licensed under
the Open Government Licence – Toronto."
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from models.core import s3, storage
from models.core.errors import UserError
from models.core.settings import Settings
from models.data.download import Downloader
from models.data.fetch import PACKAGE_ID, Resource, check_portal_hash, pick_resources, unpack_year
from models.data.raw_manifest import describe_file, read_manifest, write_manifest

log = logging.getLogger(__name__)

RESOURCE_PREFIX = "bikeshare-ridership-"


@dataclass
class IngestReport:
    """What one ingest run did: bytes downloaded, objects written, months changed, files withdrawn."""

    api_url: str
    resources: int = 0
    downloaded: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    uploaded: list[str] = field(default_factory=list)
    changed_months: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # written, but no month could be read from them
    manifest_written: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def with_sizes(package: dict[str, Any], picked: list[Resource]) -> list[Resource]:
    """The picked resources with the portal's ``size`` (bytes; None when the portal gives none)."""
    sizes = {r.get("url"): r.get("size") for r in package.get("result", {}).get("resources", [])}
    return [replace(r, size=int(sizes[r.url]) if sizes.get(r.url) else None) for r in picked]


def list_year_resources(package: dict[str, Any], api_url: str) -> list[Resource]:
    """Every yearly ZIP (``bikeshare-ridership-YYYY``) the portal lists, by year."""
    names = (str(r.get("name", "")).strip().lower() for r in package.get("result", {}).get("resources", []))
    years = sorted({int(n[len(RESOURCE_PREFIX) :]) for n in names if n[len(RESOURCE_PREFIX) :].isdigit()})
    zips = []
    for year in years:
        try:
            zips += pick_resources(package, [year], api_url)
        except UserError:  # that year only as XLSX: nothing to ingest
            log.info("%s%s: no ZIP listed; skipped", RESOURCE_PREFIX, year)
    return with_sizes(package, zips)


def describe_resource(resource: Resource) -> dict[str, Any]:
    """What the manifest compares first: url, last_modified and size as the portal lists them."""
    return {"url": resource.url, "last_modified": resource.last_modified, "size": resource.size}


def ingest_portal(
    settings: Settings, *, api_url: str | None = None, downloader: Downloader | None = None
) -> IngestReport:
    """Bring ``raw/`` on S3 up to date with the portal; returns what was done."""
    api_url = api_url or settings.ckan_api_url
    downloader = downloader or Downloader(progress=False)
    resources = list_year_resources(downloader.get_json(api_url, {"id": PACKAGE_ID}), api_url)
    manifest = read_manifest(settings)
    report = IngestReport(api_url, resources=len(resources))
    for resource in resources:
        known = manifest["resources"].get(str(resource.year), {})
        listed_as_before = {k: known.get(k) for k in ("url", "last_modified", "size")}
        if listed_as_before == describe_resource(resource) and not known.get("withdrawn"):
            continue
        with tempfile.TemporaryDirectory(prefix="to-bikes-ingest-") as tmp:
            ingest_year(resource, Path(tmp), manifest, settings, downloader, report)
        write_manifest(manifest, settings)
        report.manifest_written = True
    if mark_withdrawn_years(manifest, {str(r.year) for r in resources}, report):
        write_manifest(manifest, settings)
        report.manifest_written = True
    report.changed_months = sorted(set(report.changed_months))
    log.info("ingest: %s", report.to_dict())
    return report


def download_checked(resource: Resource, folder: Path, downloader: Downloader) -> Path:
    """The ZIP downloaded into ``folder``; a size other than the portal's is a UserError."""
    path = downloader.download(resource.url, folder / f"{resource.name}.zip")
    size = path.stat().st_size
    if resource.size is not None and size != resource.size:
        raise UserError(
            f"Download of {resource.url} is {size} bytes but the portal lists {resource.size}; "
            "nothing was written: run the ingest again later."
        )
    check_portal_hash(path, resource, quarantine=False)  # when the portal lists one
    return path


def ingest_year(
    resource: Resource,
    tmp: Path,
    manifest: dict[str, Any],
    settings: Settings,
    downloader: Downloader,
    report: IngestReport,
) -> None:
    """Download one yearly ZIP and write the CSVs whose content changed; updates the manifest."""
    zip_path = download_checked(resource, tmp, downloader)
    report.downloaded.append(resource.name)
    report.bytes_downloaded += zip_path.stat().st_size
    digest = storage.file_digest(zip_path)
    entry = {**describe_resource(resource), "name": resource.name, "sha256": digest}
    year = str(resource.year)
    before = manifest["resources"].get(year, {})
    if before.get("sha256") == digest and not before.get("withdrawn"):
        log.info("%s: same content as ingested before; nothing to write", resource.name)
        manifest["resources"][year] = entry
        return
    files = unpack_year(zip_path, tmp / year, f"{year}/{resource.name}.zip")  # every CSV checked here
    for name, sha256 in files.items():
        key = f"{settings.raw_prefix}/{year}/{name}"
        known = manifest["files"].get(key)
        if known and known.get("sha256") == sha256:  # on S3 already (back, if it had been withdrawn)
            known.pop("withdrawn", None)
            continue
        written = manifest["files"][key] = write_raw_file(tmp / year / name, key, resource, settings)
        report.uploaded.append(key)
        if written["months"] is None:  # the month runs of its year read it and quarantine what is wrong
            report.unreadable.append(key)
        # The months it holds now and held before (an unreadable file changes the months it replaced).
        changed = set(written["months"] or ()) | set((known or {}).get("months") or ())
        report.changed_months += sorted(m for m in changed if m.startswith(f"{year}-"))
    mark_withdrawn_files(manifest, year, set(files), settings, report)
    manifest["resources"][year] = entry


def write_raw_file(path: Path, key: str, resource: Resource, settings: Settings) -> dict[str, Any]:
    """Publish one CSV atomically to ``key``; its manifest entry (months read from its rows)."""
    uri = f"{s3.S3_SCHEME}{settings.bucket}/{key}"
    storage.write_file_atomic(path, uri, settings)
    etag = s3.head_object(uri, settings)["ETag"]
    log.info("wrote %s (%s bytes)", uri, path.stat().st_size)
    return describe_file(path, key, etag, last_modified=resource.last_modified, resource=resource.name)


def mark_withdrawn_files(
    manifest: dict[str, Any], year: str, names: set[str], settings: Settings, report: IngestReport
) -> None:
    """Files of ``raw/<year>/`` the republished ZIP no longer holds: kept on S3, marked and reported."""
    folder = f"{settings.raw_prefix}/{year}/"
    for key, entry in manifest["files"].items():
        if key.startswith(folder) and key[len(folder) :] not in names and not entry.get("withdrawn"):
            entry["withdrawn"] = True
            report.withdrawn.append(key)
            log.warning("%s: no longer in the portal's %s; kept, not deleted", key, entry.get("resource"))


def mark_withdrawn_years(manifest: dict[str, Any], listed: set[str], report: IngestReport) -> bool:
    """Years ingested before that the portal no longer lists: their files kept, marked and reported."""
    changed = False
    for year, entry in manifest["resources"].items():
        if year in listed or entry.get("withdrawn"):
            continue
        entry["withdrawn"] = changed = True
        for key, file_entry in manifest["files"].items():
            if file_entry.get("resource") == entry.get("name") and not file_entry.get("withdrawn"):
                file_entry["withdrawn"] = True
                report.withdrawn.append(key)
                log.warning("%s: the portal no longer lists %s; kept, not deleted", key, entry.get("name"))
    return changed
