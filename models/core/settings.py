"""The one place that knows the project's endpoints, bucket, credentials and paths.

Every value comes from an environment variable (or a ``.env`` file in the working
directory) with a default for the embedded local stack on 127.0.0.1. Pointing the
project at AWS and Prefect Cloud is a matter of setting these variables, never of
changing code: see ``.env.example``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.core.errors import UserError
from models.core.names import EXPERIMENT, MODEL_NAME

LOCAL_HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Typed settings; ``TO_BIKES_*`` variables plus the standard AWS/MLflow/Prefect ones."""

    model_config = SettingsConfigDict(
        env_prefix="TO_BIKES_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    # Local stack ports (used only where an endpoint is not set explicitly).
    host: str = LOCAL_HOST
    prefect_port: int = 4200
    s3_port: int = 9000
    mlflow_port: int = 5050
    state_dir: Path = PROJECT_ROOT / ".stack"

    # S3: an empty endpoint means real AWS (boto3's default resolution).
    bucket: str = "to-bikes"
    s3_endpoint_url: str | None = None
    use_local_s3: bool = True
    aws_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ACCESS_KEY_ID", "TO_BIKES_AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("AWS_SECRET_ACCESS_KEY", "TO_BIKES_AWS_SECRET_ACCESS_KEY"),
    )
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION", "TO_BIKES_AWS_REGION"),
    )

    # Key prefixes inside the bucket.
    raw_prefix: str = "raw"
    processed_prefix: str = "processed"
    flows_prefix: str = "flows"
    mlflow_prefix: str = "mlflow"
    predictions_prefix: str = "predictions"
    reports_prefix: str = "reports"

    # MLflow and Prefect.
    mlflow_tracking_uri_override: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "TO_BIKES_MLFLOW_TRACKING_URI")
    )
    prefect_api_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_API_URL", "TO_BIKES_PREFECT_API_URL")
    )
    # The City of Toronto's CKAN package_show endpoint (models.data.fetch); a test points it at a fake portal.
    ckan_api_url: str = "https://ckan0.cf.opendata.inter.prod-toronto.ca/api/3/action/package_show"
    model_name: str = MODEL_NAME
    experiment: str = EXPERIMENT
    work_pool: str = "to-bikes"
    # A self-hosted Prefect server started with PREFECT_SERVER_API_AUTH_STRING requires clients
    # to send the same string (PREFECT_API_AUTH_STRING); either variable sets it here.
    prefect_auth_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING", "TO_BIKES_PREFECT_AUTH_STRING"
        ),
    )

    # Prefect Cloud's API key (read for the doctor's checks; Prefect reads PREFECT_API_KEY itself).
    prefect_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_API_KEY", "TO_BIKES_PREFECT_API_KEY")
    )

    # Notifications (orchestration/deploy/notifications.py): a webhook URL (empty: off, the default) and its
    # kind; `make blocks` saves Prefect's notification block and `make deploy` its automations when set.
    # A Slack URL holds its token, so the URL is a secret: never printed, logged or put in a message.
    notify_url: SecretStr | None = None
    notify_kind: Literal["webhook", "slack"] = "webhook"
    # The Prefect UI's address for links in messages (Prefect's PREFECT_UI_URL); empty: the API's minus /api.
    prefect_ui_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("PREFECT_UI_URL", "TO_BIKES_PREFECT_UI_URL")
    )

    # Monitoring (models.scoring.monitor): a month breaches when its ROC AUC is more than this below the
    # model's own validation ROC AUC, or when more than this share of the judged features drifted (calendar
    # features and station features on too few trips are not judged: models.scoring.drift).
    monitor_max_auc_drop: float = Field(default=0.05, ge=0)
    monitor_max_drift_share: float = Field(default=0.5, ge=0, le=1)
    # `make serve`: MLflow's model server for the champion on 127.0.0.1.
    serve_port: int = 5100

    # Dask (orchestration/flows/backfill.py): an existing scheduler (tcp://host:8786) runs the backfill's
    # per-period tasks; empty means a LocalCluster on the flow run's machine with dask_workers worker
    # processes (0: one per core). Saved into the config block by `make blocks`.
    dask_address: str | None = None
    dask_workers: int = Field(default=0, ge=0)

    # The Prefect server's database: SQLite under the state folder, or a PostgreSQL server that
    # `make up` starts on host:postgres_port with its data directory under the state folder.
    prefect_db: Literal["sqlite", "postgres"] = "sqlite"
    postgres_port: int = 5432

    # Local stack: how long `make up` (`python -m orchestration stack up`) waits for every server to
    # answer its health check.
    stack_timeout_s: float = 180.0
    # Seconds between a flow run's heartbeats (the worker passes it to Prefect); the automation that
    # marks a silent run Crashed waits a Prefect outage (210 s) plus three of them. Prefect refuses
    # less than 30.
    heartbeat_seconds: int = Field(default=30, ge=30)
    # How long a flow run may stay Pending (a worker took it; its process has not started yet) before
    # the automation `make deploy` makes puts it back to Scheduled for any worker: a worker killed while
    # it submits a run leaves it Pending for good otherwise. Longer than a flow run's slowest start
    # (image pull, code pull, the API-outage wait of agent/bin/to-bikes-engine) and than 20 min: after
    # a Prefect restart the server may hold the run's Running event up to 15 min (Prefect's causal
    # ordering) and the automation, not seeing it, would schedule a running run again.
    pending_seconds: int = Field(default=1800, ge=60)
    # How long connecting to MLflow waits for a tracking server that does not answer its health probe.
    # 0 (a command: fail fast in one sentence); the worker gives its flow runs the Prefect outage's
    # length (stack.worker.OUTAGE_ENV), so a restarting MLflow server does not fail an unattended run.
    mlflow_wait_seconds: float = Field(default=0.0, ge=0.0)

    @field_validator(
        "s3_endpoint_url",
        "mlflow_tracking_uri_override",
        "prefect_api_url_override",
        "prefect_ui_url_override",
        "dask_address",
    )
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @cached_property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint URL, or None for real AWS."""
        if self.s3_endpoint_url:
            return self.s3_endpoint_url
        return f"http://{self.host}:{self.s3_port}" if self.use_local_s3 else None

    @cached_property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri_override or f"http://{self.host}:{self.mlflow_port}"

    @cached_property
    def prefect_api_url(self) -> str:
        return self.prefect_api_url_override or f"http://{self.host}:{self.prefect_port}/api"

    @cached_property
    def prefect_ui_url(self) -> str:
        """The Prefect UI's base URL: PREFECT_UI_URL, else the API URL without its ``/api``."""
        return (self.prefect_ui_url_override or self.prefect_api_url.removesuffix("/api")).rstrip("/")

    @property
    def notify_enabled(self) -> bool:
        """Whether notifications are on (a webhook URL is set)."""
        return bool(self.notify_url and self.notify_url.get_secret_value())

    def aws_key_pair(self) -> tuple[str | None, str | None]:
        """Credentials for boto3; local defaults when talking to the local stack."""
        secret = self.aws_secret_access_key.get_secret_value() if self.aws_secret_access_key else None
        if self.aws_access_key_id or secret or not self.use_local_s3:
            return self.aws_access_key_id, secret
        return "testing", "testing"

    def s3_uri(self, prefix: str, *parts: str) -> str:
        """``s3://bucket/prefix/part/...`` for one of the configured prefixes."""
        key = "/".join(p.strip("/") for p in (prefix, *parts) if p)
        return f"s3://{self.bucket}/{key}"


def load_settings() -> Settings:
    """Read the settings now (never at import time); a bad value is one sentence naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        where, why = variable_name(field), error["msg"]
        raise UserError(f"Setting {where} (environment or .env) is invalid: {why}; fix it.") from None


def variable_name(field: str) -> str:
    """The environment variable that sets ``field`` (its alias, or TO_BIKES_<FIELD>)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"TO_BIKES_{field.upper()}" if info is not None else field
