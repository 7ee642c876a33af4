"""``make blocks``: saved, loaded, rerun without changes, updated on a changed setting, secret masked."""

from __future__ import annotations

import json
import urllib.request

import pytest

from stack.embedded import StackEnv
from tests.stack.stack_helpers import AGENT_BIN, run_command, run_make_blocks

pytestmark = pytest.mark.integration

BLOCK_DOCUMENTS = {
    "aws-credentials": "to-bikes-aws",
    "s3-bucket": "to-bikes-bucket",
    "to-bikes-config": "to-bikes",
}


def read_block_document(env: StackEnv, slug: str, name: str) -> dict:
    """The stored block document (id, updated time, data as the API returns it: secrets masked)."""
    url = f"{env['PREFECT_API_URL']}/block_types/slug/{slug}/block_documents/name/{name}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def document_versions(env: StackEnv) -> dict[str, tuple[str, str]]:
    """Block name -> (document id, last update time)."""
    versions = {}
    for slug, name in BLOCK_DOCUMENTS.items():
        document = read_block_document(env, slug, name)
        versions[name] = (document["id"], document["updated"])
    return versions


@pytest.fixture(scope="module")
def saved_blocks(own_stack: StackEnv) -> StackEnv:
    """The stack with ``make blocks`` run once."""
    result = run_make_blocks(own_stack)
    assert result.returncode == 0, result.stdout + result.stderr
    return own_stack


def test_blocks_are_saved_and_a_rerun_changes_nothing(saved_blocks: StackEnv) -> None:
    before = document_versions(saved_blocks)
    rerun = run_make_blocks(saved_blocks)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.splitlines() == [
        "AwsCredentials/to-bikes-aws: unchanged",
        "S3Bucket/to-bikes-bucket: unchanged",
        "ToBikesConfig/to-bikes: unchanged",
        f"WorkPool/{saved_blocks.settings().work_pool}: unchanged",
    ]
    assert document_versions(saved_blocks) == before


def test_a_changed_setting_updates_only_its_block_in_place(saved_blocks: StackEnv) -> None:
    before = document_versions(saved_blocks)
    changed = run_make_blocks(saved_blocks, {"TO_BIKES_MODEL_NAME": "to-bikes-other"})
    assert changed.returncode == 0, changed.stderr
    assert "ToBikesConfig/to-bikes: updated" in changed.stdout
    assert "AwsCredentials/to-bikes-aws: unchanged" in changed.stdout
    after = document_versions(saved_blocks)
    assert after["to-bikes"][0] == before["to-bikes"][0]
    assert after["to-bikes"][1] > before["to-bikes"][1]
    stored = read_block_document(saved_blocks, "to-bikes-config", "to-bikes")["data"]
    assert stored["model_name"] == "to-bikes-other"
    restored = run_make_blocks(saved_blocks)
    assert "ToBikesConfig/to-bikes: updated" in restored.stdout


def credentials_reference(env: StackEnv) -> str | None:
    """The name of the credentials document the stored bucket refers to (None: a copy inside it)."""
    bucket = read_block_document(env, "s3-bucket", "to-bikes-bucket")
    reference = bucket["block_document_references"].get("credentials")
    return reference["block_document"]["name"] if reference else None


def test_a_bucket_holding_a_copy_of_the_credentials_is_saved_again(saved_blocks: StackEnv) -> None:
    assert credentials_reference(saved_blocks) == "to-bikes-aws"
    script = (  # the same values, but the credentials an unsaved block: Prefect stores a copy inline
        "from prefect_aws import S3Bucket\n"
        "from models.core.settings import load_settings\n"
        "from orchestration.deploy.blocks import build_credentials\n"
        "settings = load_settings()\n"
        "bucket = S3Bucket(bucket_name=settings.bucket, credentials=build_credentials(settings))\n"
        "bucket.save('to-bikes-bucket', overwrite=True)\n"
    )
    result = run_command([AGENT_BIN / "python", "-c", script], saved_blocks)
    assert result.returncode == 0, result.stderr
    assert credentials_reference(saved_blocks) is None
    fixed = run_make_blocks(saved_blocks)
    assert fixed.returncode == 0, fixed.stderr
    assert "S3Bucket/to-bikes-bucket: updated" in fixed.stdout
    assert "AwsCredentials/to-bikes-aws: unchanged" in fixed.stdout
    assert credentials_reference(saved_blocks) == "to-bikes-aws"
    assert "S3Bucket/to-bikes-bucket: unchanged" in run_make_blocks(saved_blocks).stdout


def test_loaded_blocks_reach_the_stack_s3(saved_blocks: StackEnv) -> None:
    script = (
        "from prefect_aws import S3Bucket\n"
        "from orchestration.flows.config_block import ToBikesConfig\n"
        "bucket = S3Bucket.load('to-bikes-bucket')\n"
        "config = ToBikesConfig.load('to-bikes')\n"
        "bucket.write_path('probe/blocks.txt', b'written through the block')\n"
        "text = bucket.read_path('probe/blocks.txt').decode()\n"
        "print(text, config.bucket, config.s3_uri(config.raw_prefix, '2024'))\n"
    )
    result = run_command([AGENT_BIN / "python", "-c", script], saved_blocks)
    assert result.returncode == 0, result.stderr
    bucket = saved_blocks.bucket
    assert result.stdout.split() == ["written", "through", "the", "block", bucket, f"s3://{bucket}/raw/2024"]


def test_the_secret_never_appears_in_output_inspect_or_logs(saved_blocks: StackEnv) -> None:
    secret = saved_blocks["AWS_SECRET_ACCESS_KEY"]
    rerun = run_make_blocks(saved_blocks)
    command = [AGENT_BIN / "prefect", "block", "inspect", "aws-credentials/to-bikes-aws"]
    inspect = run_command(command, saved_blocks)
    assert inspect.returncode == 0, inspect.stderr
    assert "aws_secret_access_key" in inspect.stdout and "********" in inspect.stdout
    api_view = json.dumps(read_block_document(saved_blocks, "aws-credentials", "to-bikes-aws"))
    logs = "".join(p.read_text(errors="replace") for p in (saved_blocks.state_dir / "logs").glob("*.log"))
    for text in (rerun.stdout, rerun.stderr, inspect.stdout, inspect.stderr, api_view, logs):
        assert secret not in text
