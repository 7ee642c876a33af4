"""What a flow run needs to know before it starts: settings from the saved blocks, the period, lineage.

A flow run on a worker reads the bucket, prefixes, S3 endpoint, MLflow URI and AWS credentials from
the blocks saved by ``make blocks`` (``models.core.names.CONFIG_BLOCK`` and ``AWS_BLOCK``), so the
worker's machine needs only its Prefect API settings. The result is a
``models.core.settings.Settings``, which every ``models`` function already takes.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import runtime

from models.core.errors import UserError
from models.core.names import AWS_BLOCK, CONFIG_BLOCK
from models.core.settings import Settings

FLOW_RUN_ENV = "TO_BIKES_FLOW_RUN_ID"
DEPLOYMENT_ENV = "TO_BIKES_DEPLOYMENT"


def load_block(block_type: type, name: str) -> Any:
    """One saved block; a missing one is a UserError naming it and ``make blocks``."""
    try:
        return block_type.load(name)
    except ValueError as exc:
        raise UserError(
            f"Prefect block {block_type.__name__} {name!r} is not saved on this API; run `make blocks`."
        ) from exc


def load_flow_settings() -> Settings:
    """Settings built from the project block and the AWS credentials block (no local .env involved)."""
    from prefect_aws import AwsCredentials

    from orchestration.flows.config_block import ToBikesConfig

    config = load_block(ToBikesConfig, CONFIG_BLOCK)
    credentials = load_block(AwsCredentials, AWS_BLOCK)
    endpoint = config.s3_endpoint_url or credentials.aws_client_parameters.endpoint_url
    portal = {"ckan_api_url": config.ckan_api_url} if getattr(config, "ckan_api_url", None) else {}
    return Settings(
        _env_file=None,
        bucket=config.bucket,
        raw_prefix=config.raw_prefix,
        processed_prefix=config.processed_prefix,
        flows_prefix=config.flows_prefix,
        mlflow_prefix=config.mlflow_prefix,
        s3_endpoint_url=endpoint,
        use_local_s3=endpoint is not None,
        aws_access_key_id=credentials.aws_access_key_id,
        aws_secret_access_key=credentials.aws_secret_access_key,
        aws_region=credentials.region_name or config.aws_region,
        mlflow_tracking_uri_override=config.mlflow_tracking_uri,
        experiment=config.experiment,
        model_name=config.model_name,
        work_pool=config.work_pool,
        dask_address=config.dask_address,
        dask_workers=config.dask_workers,
        **portal,
    )


def export_lineage() -> dict[str, str]:
    """Put the root flow run id and the deployment into the environment ``models.training.lineage`` reads.

    Called at the start of every flow: a subflow keeps its parent's deployment name (the deployment
    context is inherited), a flow run outside any deployment clears a stale one.
    """
    os.environ[FLOW_RUN_ENV] = str(runtime.flow_run.root_flow_run_id or runtime.flow_run.id)
    deployment = runtime.deployment.name
    if deployment and not runtime.flow_run.parent_flow_run_id:
        os.environ[DEPLOYMENT_ENV] = f"{runtime.flow_run.flow_name}/{deployment}"
    elif not deployment:
        os.environ.pop(DEPLOYMENT_ENV, None)
    return {key: os.environ.get(key, "") for key in (FLOW_RUN_ENV, DEPLOYMENT_ENV)}
