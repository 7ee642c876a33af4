"""S3 in one place: ``s3://`` URIs, the client, the one listing loop and the one-sentence S3 error.

Every S3 call in the project runs inside ``with s3_errors(uri):``, which turns a botocore error into
a ``UserError`` naming the URI and the error code (never a credential). Listing a prefix is
``list_objects`` (or ``list_folders`` for the ``<name>/`` folders directly under it); nothing else
pages through ``list_objects_v2``. boto3 and botocore are imported on first use only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from models.core.errors import UserError
from models.core.settings import Settings, load_settings

S3_SCHEME = "s3://"
MAX_ATTEMPTS = 8
LINK_EXPIRY_S = 7 * 24 * 3600  # a week: the longest a SigV4 presigned URL may live


def is_s3(uri: object) -> bool:
    """True for an ``s3://bucket/key`` URI."""
    return str(uri).startswith(S3_SCHEME)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; a URI without a bucket is a UserError."""
    if not is_s3(uri):
        raise UserError(f"{uri} is not an s3:// URI.")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise UserError(f"{uri} names no bucket; expected s3://bucket/key.")
    return bucket, key


def s3_client(settings: Settings | None = None, max_attempts: int = MAX_ATTEMPTS) -> Any:
    """A boto3 S3 client for the configured endpoint and credentials, with standard-mode retries.

    A custom endpoint (the local stack) gets path-style addressing; real AWS keeps boto3's default.
    """
    import boto3
    from botocore.config import Config

    settings = settings or load_settings()
    key_id, secret = settings.aws_key_pair()
    config = Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        signature_version="s3v4",  # also for presigned links (botocore would sign those with SigV2)
        s3={"addressing_style": "path"} if settings.s3_endpoint else {},
    )
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name=settings.aws_region,
        config=config,
    )


def browser_link(
    uri: str,
    settings: Settings | None = None,
    content_type: str | None = None,
    expires_s: int = LINK_EXPIRY_S,
) -> str:
    """An http(s) link a browser opens for an ``s3://`` object: a presigned GET that expires after
    ``expires_s`` (a week), so it works on AWS (private bucket) and on the local stack (path-style URL on
    its endpoint) alike. ``content_type`` makes the browser show the object (an HTML report) rather than
    download it. Anything that is not an ``s3://`` URI is returned as it is.
    """
    if not is_s3(uri):
        return uri
    bucket, key = split_s3_uri(uri)
    params = {"Bucket": bucket, "Key": key}
    if content_type:
        params["ResponseContentType"] = content_type
    with s3_errors(uri):
        return s3_client(settings).generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)


def s3_error_types() -> tuple[type[Exception], ...]:
    """The exceptions an S3 call raises for a network, credential or server problem (botocore's)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def describe_s3_error(exc: Exception, uri: str) -> UserError:
    """One sentence for a failed S3 call (no credentials in it)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
    return UserError(f"S3 request for {uri} failed ({code}); check the bucket, key and S3 settings.")


@contextmanager
def s3_errors(uri: str) -> Iterator[None]:
    """Run S3 calls; a botocore error becomes ``describe_s3_error``'s UserError (the cause kept)."""
    try:
        yield
    except s3_error_types() as exc:
        raise describe_s3_error(exc, uri) from exc


def list_pages(uri: str, settings: Settings | None = None, client: Any = None, **options: Any) -> list[dict]:
    """Every ``list_objects_v2`` page under the URI's key (a plain key prefix: ``raw/2025`` also
    matches ``raw/2025-old/``). ``options`` go to the call (``Delimiter``)."""
    bucket, prefix = split_s3_uri(uri)
    with s3_errors(uri):
        client = client or s3_client(settings)
        pager = client.get_paginator("list_objects_v2")
        return list(pager.paginate(Bucket=bucket, Prefix=prefix, **options))


def list_objects(uri: str, settings: Settings | None = None, client: Any = None) -> list[dict[str, Any]]:
    """The listing entries (``Key``, ``ETag``, ``Size``) of every object whose key starts with the URI's."""
    return [entry for page in list_pages(uri, settings, client) for entry in page.get("Contents", [])]


def list_folders(uri: str, settings: Settings | None = None) -> list[str]:
    """The folders directly under a prefix URI ending in ``/``, by name (``raw/`` -> ``["2024", ...]``)."""
    _, prefix = split_s3_uri(uri)
    pages = list_pages(uri, settings, Delimiter="/")
    found = (entry["Prefix"] for page in pages for entry in page.get("CommonPrefixes", []))
    return [name[len(prefix) :].strip("/") for name in found]


def object_exists(uri: str, settings: Settings | None = None) -> bool:
    """Whether the object named by ``uri`` exists (a listing: a missing key is no error)."""
    _, key = split_s3_uri(uri)
    return any(entry["Key"] == key for entry in list_objects(uri, settings))


def head_object(uri: str, settings: Settings | None = None) -> dict[str, Any]:
    """The object's metadata (``ETag``, ``ContentLength``)."""
    bucket, key = split_s3_uri(uri)
    with s3_errors(uri):
        return s3_client(settings).head_object(Bucket=bucket, Key=key)
