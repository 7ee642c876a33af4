"""The project's own Prefect block type, ``ToBikesConfig``: where the pipeline's data and models live.

``prefect block register -f orchestration/flows/config_block.py`` registers the type (``make blocks``
does, from the project root); ``orchestration.deploy.blocks`` saves the document
``models.core.names.CONFIG_BLOCK`` from the settings. Flows load it by name, so a deployment on
another machine (or against Prefect Cloud and AWS) finds the bucket, prefixes, MLflow URI and model
name without reading local environment variables. No secret is held here: credentials live in the
``AwsCredentials`` block ``AWS_BLOCK``.

Besides Prefect and pydantic this file imports only ``models.core.names`` (values, nothing else):
``prefect block register -f`` loads it as a script with the working directory on ``sys.path``.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field

from models.core.names import EXPERIMENT, MODEL_NAME


class ToBikesConfig(Block):
    """Bucket, key prefixes, MLflow tracking URI and registered model name of the to-bikes pipeline."""

    _block_type_name = "ToBikesConfig"
    _block_type_slug = "to-bikes-config"
    _description = "Where to-bikes keeps raw and processed data, code bundles and MLflow artifacts."

    bucket: str = Field(description="S3 bucket holding raw/, processed/, flows/ and mlflow/.")
    raw_prefix: str = Field(default="raw", description="Key prefix of the raw CSV/ZIP files.")
    processed_prefix: str = Field(default="processed", description="Key prefix of the processed Parquet.")
    flows_prefix: str = Field(default="flows", description="Key prefix of the code bundles.")
    mlflow_prefix: str = Field(default="mlflow", description="Key prefix of the MLflow artifacts.")
    s3_endpoint_url: str | None = Field(default=None, description="S3 endpoint; empty means AWS.")
    aws_region: str = Field(default="us-east-1", description="AWS region of the bucket.")
    mlflow_tracking_uri: str = Field(description="MLflow tracking server URI.")
    experiment: str = Field(default=EXPERIMENT, description="MLflow experiment name.")
    model_name: str = Field(default=MODEL_NAME, description="Registered model name.")
    work_pool: str = Field(default="to-bikes", description="Prefect work pool that runs the flows.")
    dask_address: str | None = Field(
        default=None, description="Dask scheduler for the backfill's tasks; empty means a LocalCluster."
    )
    dask_workers: int = Field(default=0, description="LocalCluster worker processes; 0 means one per core.")
    ckan_api_url: str | None = Field(
        default=None, description="CKAN package_show URL the ingest reads; empty means the City's portal."
    )

    def s3_uri(self, prefix: str, *parts: str) -> str:
        """``s3://bucket/prefix/part/...``, the same layout as ``models.core.settings.Settings.s3_uri``."""
        key = "/".join(p.strip("/") for p in (prefix, *parts) if p)
        return f"s3://{self.bucket}/{key}"
