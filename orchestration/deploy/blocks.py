"""Save the project's Prefect blocks and work pool from the settings, idempotently (``make blocks``).

Saves ``AwsCredentials`` ``AWS_BLOCK`` (the secret as a ``SecretStr``, the S3 endpoint in
``aws_client_parameters`` when it is not AWS), ``S3Bucket`` ``BUCKET_BLOCK`` (referring to those
credentials) and ``ToBikesConfig`` ``CONFIG_BLOCK`` (names from ``models.core.names``), and creates
the process work pool if it is missing; with ``TO_BIKES_NOTIFY_URL`` set, also the notification block
(``orchestration.deploy.notifications``).
A block whose stored values already equal the settings is not written again, so a rerun changes
nothing; a changed setting updates the block in place (same document id, so references stay
valid). The bucket nests the credentials as saved (or loaded), so its document refers to the named
credentials document; a stored bucket that refers elsewhere (or holds a copy) is saved again.
Only block names and "created/updated/unchanged" are printed, never a value.

Run from the project root with the agent environment:
``agent/.venv/bin/python -m orchestration blocks``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from prefect.blocks.core import Block
from prefect.types import SecretDict
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import BaseModel, SecretStr

from models.core.names import AWS_BLOCK, BUCKET_BLOCK, CONFIG_BLOCK, NOTIFY_BLOCK
from models.core.settings import Settings
from orchestration.flows.config_block import ToBikesConfig

log = logging.getLogger(__name__)

B = TypeVar("B", bound=Block)


def build_credentials(settings: Settings) -> AwsCredentials:
    """AWS credentials from the settings; the local endpoint goes into ``aws_client_parameters``."""
    key_id, secret = settings.aws_key_pair()
    parameters = AwsClientParameters(endpoint_url=settings.s3_endpoint) if settings.s3_endpoint else None
    return AwsCredentials(
        aws_access_key_id=key_id,
        aws_secret_access_key=SecretStr(secret) if secret else None,
        region_name=settings.aws_region,
        aws_client_parameters=parameters or AwsClientParameters(),
    )


def build_config(settings: Settings) -> ToBikesConfig:
    """The project configuration block (no secrets)."""
    return ToBikesConfig(
        bucket=settings.bucket,
        raw_prefix=settings.raw_prefix,
        processed_prefix=settings.processed_prefix,
        flows_prefix=settings.flows_prefix,
        mlflow_prefix=settings.mlflow_prefix,
        s3_endpoint_url=settings.s3_endpoint,
        aws_region=settings.aws_region,
        mlflow_tracking_uri=settings.mlflow_tracking_uri,
        experiment=settings.experiment,
        model_name=settings.model_name,
        work_pool=settings.work_pool,
        dask_address=settings.dask_address,
        dask_workers=settings.dask_workers,
        ckan_api_url=settings.ckan_api_url,
    )


def block_values(model: BaseModel) -> dict[str, Any]:
    """Every field of a block (or pydantic model) as plain values, for an equality check."""
    return {name: comparable(getattr(model, name)) for name in type(model).model_fields}


def comparable(value: Any) -> Any:
    """A plain structure of a block's values (secrets revealed) for an equality check; never logged.

    A nested block compares by its values here; which document it refers to is checked apart
    (``stored_references``).
    """
    if isinstance(value, SecretStr | SecretDict):
        return ("secret", value.get_secret_value())
    if isinstance(value, BaseModel):
        return block_values(value)
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [comparable(item) for item in value]
    return value


def stored_references(block_type: type[Block], name: str) -> dict[str, str | None]:
    """Field -> name of the block document the stored document ``name`` refers to.

    A nested block saved without a document of its own is stored inline and has no entry here.
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        document = client.read_block_document_by_name(
            name, block_type_slug=block_type.get_block_type_slug(), include_secrets=False
        )
    return {field: ref["block_document"]["name"] for field, ref in document.block_document_references.items()}


def save_block(block: B, name: str, references: Mapping[str, str] | None = None) -> tuple[B, str]:
    """Save ``block`` as ``name`` unless the stored document already holds the same values.

    ``references`` names the saved document each nested block field must refer to. Returns the
    block as stored (the loaded one when unchanged, so that a block nesting it refers to its
    document) and a "Type/name: outcome" line.
    """
    label = f"{type(block).__name__}/{name}"
    try:
        existing = type(block).load(name)
    except ValueError:
        existing = None
    if (
        existing is not None
        and block_values(existing) == block_values(block)
        and stored_references(type(block), name) == dict(references or {})
    ):
        saved, outcome = existing, "unchanged"
    else:
        block.save(name, overwrite=True)
        saved, outcome = block, "created" if existing is None else "updated"
    log.info("%s: %s", label, outcome)
    return saved, f"{label}: {outcome}"


def ensure_work_pool(name: str) -> str:
    """Create the process work pool ``name`` with Prefect's default job template if it is missing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            outcome = "unchanged"
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))
            outcome = "created"
    log.info("work pool %s: %s", name, outcome)
    return f"WorkPool/{name}: {outcome}"


def check_prefect_api(settings: Settings) -> None:
    """Fail in one sentence when the Prefect API does not answer or refuses our credentials."""
    from stack.prefect_api import require_prefect_api

    require_prefect_api(settings)


def save_all(settings: Settings) -> list[str]:
    """Save the three blocks, the work pool and any notification block; one "Type/name: outcome" line each."""
    check_prefect_api(settings)
    credentials, credentials_line = save_block(build_credentials(settings), AWS_BLOCK)
    bucket = S3Bucket(bucket_name=settings.bucket, credentials=credentials)
    _, bucket_line = save_block(bucket, BUCKET_BLOCK, references={"credentials": AWS_BLOCK})
    _, config_line = save_block(build_config(settings), CONFIG_BLOCK)
    lines = [credentials_line, bucket_line, config_line, ensure_work_pool(settings.work_pool)]
    if settings.notify_enabled:
        from orchestration.deploy.notifications import build_block

        lines.append(save_block(build_block(settings), NOTIFY_BLOCK)[1])
    return lines
