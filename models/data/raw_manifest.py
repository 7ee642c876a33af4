"""The raw data's manifest on S3: which months each raw file holds, and its checksums.

``raw/_manifest.json`` (beside the ``<year>/`` folders, not a ``.csv``/``.zip``, so no reader takes it
for data) records, per object key: ``sha256`` and ``size`` of the content, the S3 ``etag`` it was
written with, the portal's ``last_modified``, and ``months`` (``YYYY-MM``), read from the file's rows
(its start times, through the preprocess readers), never from its name. ``resources`` records the
portal's yearly ZIPs as last ingested (url, last_modified, size, sha256). Written by
``models.data.ingest`` and by ``make sync-data`` (``stack.sync``) through ``describe_file`` and
``write_manifest``, so both paths agree.

A month run reads only the files of its year whose ``months`` hold the month (``select_period_inputs``).
A file the manifest does not describe as it is now (no entry, or another ETag or size: uploaded by
hand) is read by every month run of its year: a stale manifest can cost time, never trips.
"""

from __future__ import annotations

import json
import logging
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from models.core import s3, storage
from models.core.errors import UserError
from models.core.periods import is_month
from models.core.settings import Settings
from models.data.checks import raw_column
from models.data.column_parsers import parse_time
from models.data.file_format import OpenedFile
from models.data.read_ahead import opened_files

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
LICENCE = "Contains information licensed under the Open Government Licence – Toronto."


def manifest_uri(settings: Settings) -> str:
    """``s3://<bucket>/<raw prefix>/_manifest.json``."""
    return settings.s3_uri(settings.raw_prefix, MANIFEST_NAME)


def empty_manifest() -> dict[str, Any]:
    """A manifest that describes nothing yet."""
    return {"licence": LICENCE, "resources": {}, "files": {}}


def read_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest on S3, or an empty one when there is none; unreadable JSON is a UserError."""
    uri = manifest_uri(settings)
    if not s3.object_exists(uri, settings):
        return empty_manifest()
    bucket, key = s3.split_s3_uri(uri)
    with s3.s3_errors(uri):
        body = s3.s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        manifest = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UserError(f"Manifest {uri} is not valid JSON ({exc}); delete it and ingest again.") from exc
    return {**empty_manifest(), **manifest}


def write_manifest(manifest: dict[str, Any], settings: Settings) -> str:
    """Publish the manifest atomically (``storage.write_file_atomic``); returns its URI."""
    uri = manifest_uri(settings)
    with tempfile.TemporaryDirectory(prefix="to-bikes-manifest-") as tmp:
        path = Path(tmp) / MANIFEST_NAME
        path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        storage.write_file_atomic(path, uri, settings)
    return uri


def batch_months(opened: OpenedFile, batch: pa.RecordBatch) -> set[str]:
    """The ``YYYY-MM`` of the start times of one batch (unreadable times name no month)."""
    column = raw_column(batch, opened.era, "start_time")
    if column is None or not len(column):
        return set()
    times = parse_time(column, opened.fmt).values
    keys = pc.unique(pc.add(pc.multiply(pc.year(times), 100), pc.month(times))).drop_null()
    return {f"{key // 100:04d}-{key % 100:02d}" for key in keys.to_pylist()}


def read_months(path: str | Path) -> list[str]:
    """The months a local CSV (or ZIP of CSVs) holds trips of, from its rows' start times."""
    months: set[str] = set()
    with (
        tempfile.TemporaryDirectory(prefix="to-bikes-months-") as work,
        closing(opened_files(str(path), Path(work), None, batch_months)) as files,
    ):
        for opened in files:
            for found in opened.batches:
                months |= found
    return sorted(months)


def describe_file(path: str | Path, key: str, etag: str, **extra: Any) -> dict[str, Any]:
    """A manifest entry for the local copy of the object ``key`` (as written, with ``etag``).

    A file whose rows cannot be read (an unknown header, not a ZIP) gets ``months: None``: every month
    run of its year reads it, and preprocessing reports what is wrong with it.
    """
    path = Path(path)
    try:
        months: list[str] | None = read_months(path)
    except UserError as exc:
        log.warning("%s: its months could not be read (%s); every month run of its year reads it", key, exc)
        months = None
    return {
        "key": key,
        "sha256": storage.file_digest(path),
        "size": path.stat().st_size,
        "etag": etag.strip('"'),
        "months": months,
        **extra,
    }


def is_described(entry: dict[str, Any] | None, listed: dict[str, Any]) -> bool:
    """Whether a manifest entry describes the object as listed now (same ETag and size)."""
    if not entry or entry.get("months") is None:
        return False
    return entry.get("etag") == listed["ETag"].strip('"') and entry.get("size") == int(listed["Size"])


def select_period_inputs(input_uri: str, period: str, settings: Settings) -> list[str] | None:
    """The raw objects under ``input_uri`` a month run reads: those holding the month, and those the
    manifest does not describe. None (read the whole prefix) for a year, or for a local folder."""
    if not is_month(period) or not s3.is_s3(input_uri):
        return None
    bucket, _ = s3.split_s3_uri(input_uri)
    listed = storage.list_s3_data_objects(input_uri, settings)
    files = read_manifest(settings)["files"]
    chosen, unknown = [], []
    for obj in listed:
        entry = files.get(obj["Key"])
        if not is_described(entry, obj):
            unknown.append(obj["Key"])
        if not is_described(entry, obj) or period in entry["months"]:
            chosen.append(f"{s3.S3_SCHEME}{bucket}/{obj['Key']}")
    if unknown:
        log.warning("%s raw file(s) not in the manifest as they are now, read for every month: %s",
                    len(unknown), ", ".join(unknown[:5]))  # fmt: skip
    log.info("%s: %s of %s raw file(s) under %s hold the month", period, len(chosen), len(listed), input_uri)
    if not chosen:
        raise UserError(f"No raw file under {input_uri} holds trips of {period}; ingest it first.")
    return chosen


def record_files(settings: Settings, files: list[tuple[str, Path, str]]) -> int:
    """Describe data files already on S3 (key, local copy, ETag) in the manifest; written when it changed.

    ``make sync-data`` calls this for what it synced; only a file whose content or ETag is not the
    manifest's is read for its months. Returns how many entries were (re)written.
    """
    manifest = read_manifest(settings)
    prefix = settings.raw_prefix + "/"
    changed = 0
    for key, path, etag in files:
        if not storage.is_data_key(key, prefix):
            continue
        known = manifest["files"].get(key) or {}
        sha256 = storage.file_digest(path)
        if known.get("sha256") == sha256 and known.get("etag") == etag.strip('"'):
            continue
        manifest["files"][key] = describe_file(path, key, etag, last_modified=None, resource="sync-data")
        changed += 1
    if changed:
        write_manifest(manifest, settings)
    return changed
