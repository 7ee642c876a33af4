"""Local paths and ``s3://`` URIs behind one small set of helpers.

Every module that reads or writes data goes through these functions, so the same code runs
against a local folder, the embedded S3 server or AWS: only the settings differ (endpoint and
credentials come from ``models.core.settings``). Writes are atomic: a reader never sees a half file.
The S3 client, listing and error sentence are ``models.core.s3``'s (``is_s3``, ``split_s3_uri`` and
``s3_client`` are imported here, so ``storage.<name>`` keeps working).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from models.core.errors import UserError
from models.core.s3 import (
    MAX_ATTEMPTS,  # noqa: F401 (storage's callers read the retry count here too)
    S3_SCHEME,
    is_s3,
    list_objects,
    s3_client,
    s3_error_types,
    s3_errors,
    split_s3_uri,
)
from models.core.settings import Settings

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".csv", ".zip")
DIGEST_CHUNK = 8 * 1024 * 1024
# Atomic S3 writes stage each object under this bucket-level prefix (``_tmp/<uuid>/<key>``), never
# beside the final key: a publish killed half-way leaves its temporary object where nothing lists
# inputs or outputs, and one lifecycle rule on this prefix expires such leftovers.
TEMP_PREFIX = "_tmp/"


def list_inputs(uri_or_dir: str | Path, settings: Settings | None = None) -> list[str]:
    """Every ``.csv``/``.zip`` under a folder or S3 prefix (or the one file named), sorted by name.

    Dot-folders and ``__MACOSX`` are skipped, so the ZIPs that models.data.fetch keeps in
    ``<dest>/.downloads`` are not read a second time next to the CSVs unpacked from them.
    """
    if is_s3(uri_or_dir):
        return list_s3_inputs(str(uri_or_dir), settings)
    path = Path(str(uri_or_dir).removeprefix("file://"))
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise UserError(f"Input {path} does not exist.")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
    return [str(p) for p in found if not is_hidden(p.relative_to(path))]


def is_hidden(relative: Path) -> bool:
    """``__MACOSX`` junk and anything under a dot-folder (``.downloads`` of models.data.fetch) is no input."""
    return any(part == "__MACOSX" or part.startswith(".") for part in relative.parts)


def list_s3_inputs(uri: str, settings: Settings | None = None) -> list[str]:
    """The data objects under an S3 prefix (or the one object named), as ``s3://`` URIs."""
    bucket, _ = split_s3_uri(uri)
    objects = list_s3_data_objects(uri, settings)
    if not objects:
        raise UserError(f"Input {uri} holds no .csv or .zip objects.")
    return [f"{S3_SCHEME}{bucket}/{obj['Key']}" for obj in objects]


def list_s3_data_objects(uri: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The listing entries (``Key``, ``ETag``, ``Size``) of exactly the objects ``list_inputs`` reads.

    Under a prefix (``raw/2025`` means ``raw/2025/``, not ``raw/2025-old/``): ``.csv``/``.zip``
    objects, without dot-folders, ``__MACOSX`` or other publishes' temporary objects; sorted by key
    (empty when there is none).
    """
    _, key = split_s3_uri(uri)
    found = list_objects(uri, settings)
    named = [obj for obj in found if obj["Key"] == key and not key.endswith("/")]
    if named:
        return named
    prefix = key if not key or key.endswith("/") else key + "/"
    return sorted((obj for obj in found if is_data_key(obj["Key"], prefix)), key=lambda obj: obj["Key"])


def is_data_key(key: str, prefix: str) -> bool:
    """A ``.csv``/``.zip`` under ``prefix``, not hidden, and (from the bucket's root) not another
    publish's temporary object."""
    if not key.startswith(prefix) or not key.lower().endswith(DATA_SUFFIXES):
        return False
    return not is_hidden(Path(key[len(prefix) :])) and not key.startswith(TEMP_PREFIX)


def download_file(uri: str, local_path: str | Path, settings: Settings | None = None) -> Path:
    """Copy an ``s3://`` object (or a local file) to ``local_path``; returns the local path."""
    local_path = Path(local_path)
    local_path.parent.mkdir(parents=True, exist_ok=True)
    if not is_s3(uri):
        source = Path(str(uri).removeprefix("file://"))
        if not source.is_file():
            raise UserError(f"Input file {source} does not exist.")
        write_file_atomic(source, local_path)
        return local_path
    bucket, key = split_s3_uri(uri)
    with s3_errors(uri):
        s3_client(settings).download_file(bucket, key, str(local_path))
    return local_path


def open_local(uri: str | Path, workdir: str | Path, settings: Settings | None = None) -> Path:
    """A local path for ``uri``: the path itself, or a download of an S3 object into ``workdir``."""
    if is_s3(uri):
        return download_file(str(uri), Path(workdir) / Path(str(uri)).name, settings)
    path = Path(str(uri).removeprefix("file://"))
    if not path.is_file():
        raise UserError(f"Input file {path} does not exist.")
    return path


def write_file_atomic(local_path: str | Path, dest: str | Path, settings: Settings | None = None) -> str:
    """Publish a finished local file at ``dest`` so that nobody ever reads half of it.

    Local: copy to a temporary file in the destination folder, then ``os.replace``. S3: upload to a
    temporary key under ``TEMP_PREFIX``, then server-side copy to the final key and delete the
    temporary one.
    """
    local_path = Path(local_path)
    if is_s3(dest):
        return upload_atomic(local_path, str(dest), settings)
    target = Path(str(dest).removeprefix("file://"))
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, local_path.open("rb") as src:
            while chunk := src.read(DIGEST_CHUNK):
                out.write(chunk)
        Path(temp_name).replace(target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return str(target)


def move_file_atomic(local_path: str | Path, dest: str | Path, settings: Settings | None = None) -> str:
    """``write_file_atomic`` for a finished file the caller no longer needs (a staged output).

    On the same local file system it is renamed into place: as atomic, and the data is not copied.
    Anywhere else (another file system, S3) it is copied or uploaded by ``write_file_atomic``.
    """
    local_path = Path(local_path)
    if not is_s3(dest):
        target = Path(str(dest).removeprefix("file://"))
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            local_path.replace(target)
            return str(target)
        except OSError:  # another file system, or a folder in the way: copy (which names the problem)
            log.debug("%s: not renamed into place, copying", target)
    return write_file_atomic(local_path, dest, settings)


def upload_atomic(local_path: Path, uri: str, settings: Settings | None = None) -> str:
    """Upload to ``_tmp/<uuid>/<key>``, copy to ``<key>``, delete the temporary key."""
    bucket, key = split_s3_uri(uri)
    if not key or key.endswith("/"):
        raise UserError(f"Output {uri} names no object key.")
    temp_key = temp_key_for(key)
    client = s3_client(settings)
    try:
        with s3_errors(uri):
            client.upload_file(str(local_path), bucket, temp_key)
            client.copy({"Bucket": bucket, "Key": temp_key}, bucket, key)
    finally:
        try:
            client.delete_object(Bucket=bucket, Key=temp_key)
        except s3_error_types() as exc:
            log.warning("could not delete temporary key s3://%s/%s: %s", bucket, temp_key, exc)
    return uri


def temp_key_for(key: str) -> str:
    """A fresh temporary key for ``key`` in the same bucket: ``_tmp/<uuid>/<key>``."""
    return f"{TEMP_PREFIX}{uuid.uuid4().hex}/{key}"


def file_digest(path_or_uri: str | Path, settings: Settings | None = None) -> str:
    """``sha256:<hex>`` of a local file or an S3 object (streamed, never whole in memory)."""
    digest = hashlib.sha256()
    if is_s3(path_or_uri):
        bucket, key = split_s3_uri(str(path_or_uri))
        with s3_errors(str(path_or_uri)):
            body = s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in body.iter_chunks(DIGEST_CHUNK):
                digest.update(chunk)
        return f"sha256:{digest.hexdigest()}"
    path = Path(str(path_or_uri).removeprefix("file://"))
    if not path.is_file():
        raise UserError(f"File {path} does not exist.")
    with path.open("rb") as src:
        while chunk := src.read(DIGEST_CHUNK):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"
