"""``make sync-data``: put a raw-data folder onto S3 under ``raw/`` and prove it arrived intact.

``aws s3 sync --size-only`` (awscli from .venv, endpoint and key pair from the settings) uploads
what is new or has a new size. Its default, size and modification time, re-uploads any file written
in the same second as its last upload, because S3 listings keep whole seconds; so a rerun did not
always upload nothing. Then every local file is checked against its object: by ETag when the ETag
is the file's MD5 (single PUT) or its multipart MD5 with awscli's 8 MiB parts, otherwise by
downloading it and comparing SHA-256; a file whose content changed at the same size is uploaded
again and checked again. The manifest of SHA-256 sums is
stored at ``manifests/<raw prefix>/<folder name>.json`` (outside ``raw/``, so no reader mistakes it
for data) and rewritten only when it changed. The data files are also recorded in ``raw/_manifest.json``
with the months their rows hold (``models.data.raw_manifest.record_files``, as the ingest does), so
a month run reads only the files holding its month whichever way the data arrived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.core import s3
from models.core.errors import UserError
from models.core.settings import Settings
from stack.services import MODEL_BIN

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
AWSCLI_PART_SIZE = 8 * 1024 * 1024  # awscli's default multipart_chunksize
SYNC_TIMEOUT_S = 3600


@dataclass(frozen=True)
class LocalFile:
    """One file of the source folder with the digests needed to verify its S3 copy."""

    key: str
    path: Path
    size: int
    sha256: str
    md5: str
    multipart_etag: str


def digest_file(path: Path) -> tuple[str, str, str]:
    """SHA-256, MD5 and the multipart ETag (8 MiB parts) of a file, in one read."""
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 (MD5 is what S3 ETags are)
    part_digests: list[bytes] = []
    with path.open("rb") as handle:
        while part := handle.read(AWSCLI_PART_SIZE):
            sha.update(part)
            md5.update(part)
            part_digests.append(hashlib.md5(part).digest())  # noqa: S324
    combined = hashlib.md5(b"".join(part_digests)).hexdigest()  # noqa: S324
    return sha.hexdigest(), md5.hexdigest(), f"{combined}-{len(part_digests)}"


def scan_source(source: Path, prefix: str) -> list[LocalFile]:
    """Every file under ``source`` (what ``aws s3 sync`` uploads), with its key under ``prefix``."""
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        sha, md5, multipart = digest_file(path)
        key = f"{prefix}/{path.relative_to(source).as_posix()}"
        files.append(LocalFile(key, path, path.stat().st_size, sha, md5, multipart))
    return files


def s3_client(settings: Settings, attempts: int = 8) -> Any:
    """A boto3 S3 client for the configured endpoint and key pair (AWS default chain when unset)."""
    return s3.s3_client(settings, max_attempts=attempts)


def aws_env(settings: Settings) -> dict[str, str]:
    """The environment for awscli: the configured key pair and region, never on the command line."""
    env = dict(os.environ)
    key_id, secret = settings.aws_key_pair()
    if key_id and secret:
        env |= {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    env["AWS_DEFAULT_REGION"] = settings.aws_region
    return env


def run_aws_sync(settings: Settings, source: Path, destination: str) -> int:
    """``aws s3 sync source destination``; prints awscli's lines and returns how many it uploaded."""
    command = [str(MODEL_BIN / "aws"), "s3", "sync", str(source), destination, "--no-progress", "--size-only"]
    if settings.s3_endpoint:
        command += ["--endpoint-url", settings.s3_endpoint]
    result = subprocess.run(
        command, env=aws_env(settings), capture_output=True, text=True, timeout=SYNC_TIMEOUT_S, check=False
    )
    for line in result.stdout.splitlines():
        print(line)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"aws s3 sync {source} {destination} failed (exit {result.returncode}): {last}")
    return sum(1 for line in result.stdout.splitlines() if line.startswith("upload:"))


def remote_objects(client: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Key -> listing entry (Size, ETag) of every object under ``prefix/``."""
    return {item["Key"]: item for item in s3.list_objects(f"s3://{bucket}/{prefix}/", client=client)}


def remote_sha256(client: Any, bucket: str, key: str) -> str:
    """SHA-256 of an object, streamed (used when its ETag says nothing about its content)."""
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in body.iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def verify_file(client: Any, bucket: str, local: LocalFile, remote: dict[str, Any] | None) -> str:
    """How the object was found equal to the file ("etag", "download"), or "missing"/"size"/"content"."""
    if remote is None:
        return "missing"
    if remote["Size"] != local.size:
        return "size"
    if remote.get("ETag", "").strip('"') in (local.md5, local.multipart_etag):
        return "etag"
    return "download" if remote_sha256(client, bucket, local.key) == local.sha256 else "content"


def verify_all(client: Any, bucket: str, prefix: str, files: list[LocalFile]) -> list[str]:
    """One outcome of ``verify_file`` per file, from one listing of ``prefix/``."""
    remote = remote_objects(client, bucket, prefix)
    return [verify_file(client, bucket, f, remote.get(f.key)) for f in files]


def upload_changed(client: Any, bucket: str, files: list[LocalFile], outcomes: list[str]) -> int:
    """Upload the files whose content changed at the same size (``--size-only`` skipped them)."""
    changed = [f for f, outcome in zip(files, outcomes, strict=True) if outcome == "content"]
    for local in changed:
        client.upload_file(str(local.path), bucket, local.key)
        print(f"upload: {local.path} to s3://{bucket}/{local.key} (same size, new content)")
    return len(changed)


def manifest_of(source: Path, files: list[LocalFile]) -> bytes:
    """The manifest document: key -> size and SHA-256 (stable bytes: no timestamps)."""
    entries = {f.key: {"size": f.size, "sha256": f.sha256} for f in files}
    return json.dumps({"source": source.name, "files": entries}, indent=1, sort_keys=True).encode() + b"\n"


def store_manifest(client: Any, bucket: str, key: str, document: bytes) -> bool:
    """Write the manifest unless the stored one is identical; True when it was written."""
    try:
        if client.get_object(Bucket=bucket, Key=key)["Body"].read() == document:
            return False
    except client.exceptions.NoSuchKey:
        pass
    client.put_object(Bucket=bucket, Key=key, Body=document, ContentType="application/json")
    return True


def sync_data(settings: Settings, source: str | Path) -> int:
    """Sync ``source`` to ``s3://bucket/raw/``, verify every object, store the manifest; print a summary."""
    folder = Path(source)
    if not folder.is_dir():
        raise UserError(f"data folder {folder} does not exist; create the sample data or pass DATA=<folder>.")
    files = scan_source(folder, settings.raw_prefix)
    if not files:
        raise UserError(f"data folder {folder} holds no files; nothing to sync.")
    destination = settings.s3_uri(settings.raw_prefix) + "/"
    uploaded = run_aws_sync(settings, folder, destination)
    with s3.s3_errors(destination):
        uploaded, outcomes, manifest_key, written = verify_and_record(settings, folder, files, uploaded)
    described = record_raw_files(settings, files)
    print(
        f"synced {folder} -> {destination}: {len(files)} files, {uploaded} uploaded, "
        f"{outcomes.count('etag')} verified by ETag, {outcomes.count('download')} by download; manifest "
        f"s3://{settings.bucket}/{manifest_key} {'written' if written else 'unchanged'}; "
        f"{described} file(s) newly described in s3://{settings.bucket}/{settings.raw_prefix}/_manifest.json"
    )
    return 0


def record_raw_files(settings: Settings, files: list[LocalFile]) -> int:
    """Describe the synced data files in ``raw/_manifest.json`` (months read from their rows)."""
    from models.data.raw_manifest import record_files  # pyarrow: only when syncing

    client = s3_client(settings)
    with s3.s3_errors(settings.s3_uri(settings.raw_prefix) + "/"):
        listed = remote_objects(client, settings.bucket, settings.raw_prefix)
    etags = {f.key: listed[f.key]["ETag"] for f in files if f.key in listed}
    return record_files(settings, [(f.key, f.path, etags[f.key]) for f in files if f.key in etags])


def verify_and_record(
    settings: Settings, folder: Path, files: list[LocalFile], uploaded: int
) -> tuple[int, list[str], str, bool]:
    """Verify every object (re-uploading what differs), then store the manifest."""
    client = s3_client(settings)
    outcomes = verify_all(client, settings.bucket, settings.raw_prefix, files)
    if changed := upload_changed(client, settings.bucket, files, outcomes):
        uploaded += changed
        outcomes = verify_all(client, settings.bucket, settings.raw_prefix, files)
    bad = [(f, o) for f, o in zip(files, outcomes, strict=True) if o not in ("etag", "download")]
    if bad:
        local, outcome = bad[0]
        raise UserError(
            f"{len(bad)} of {len(files)} files did not verify after the sync; first: "
            f"s3://{settings.bucket}/{local.key} ({outcome}) vs {local.path}."
        )
    manifest_key = f"manifests/{settings.raw_prefix}/{folder.name}.json"
    written = store_manifest(client, settings.bucket, manifest_key, manifest_of(folder, files))
    return uploaded, outcomes, manifest_key, written
