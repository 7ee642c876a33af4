"""The preprocessing cache key over S3 objects (orchestration.flows.caching) against a local S3 server."""

from __future__ import annotations

import pytest

from models.core import storage
from orchestration.flows import caching
from stack.embedded import StackEnv

pytestmark = pytest.mark.integration


def test_s3_cache_key_covers_exactly_what_preprocessing_reads(s3_env: StackEnv) -> None:
    """Junk, dot-folders, a sibling prefix and temporary objects are not in the key, as not in the input."""
    settings = s3_env.settings()
    client, bucket = storage.s3_client(settings), s3_env.bucket
    client.put_object(Bucket=bucket, Key="key-test/raw/2025/b.zip", Body=b"zip")
    client.put_object(Bucket=bucket, Key="key-test/raw/2025/a.csv", Body=b"x\n1\n")
    first = caching.list_object_checksums(f"s3://{bucket}/key-test/raw/2025", settings)
    read = storage.list_inputs(f"s3://{bucket}/key-test/raw/2025", settings)
    assert [key for key, _, _ in first] == ["key-test/raw/2025/a.csv", "key-test/raw/2025/b.zip"]
    assert [f"s3://{bucket}/{key}" for key, _, _ in first] == read
    for junk in ("2025/__MACOSX/._a.csv", "2025/.downloads/a.zip", "2025-old/a.csv", "2025/notes.txt"):
        client.put_object(Bucket=bucket, Key=f"key-test/raw/{junk}", Body=b"junk")
    assert caching.list_object_checksums(f"s3://{bucket}/key-test/raw/2025", settings) == first
    client.put_object(Bucket=bucket, Key="key-test/raw/2025/a.csv", Body=b"x\n2\n")
    assert caching.list_object_checksums(f"s3://{bucket}/key-test/raw/2025", settings) != first
