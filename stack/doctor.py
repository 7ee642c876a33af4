"""``make doctor``: one line per check of everything the pipeline needs, with a fix for each failure.

Services, bucket, raw data, blocks and the work pool here; a worker polling the pool, the deployments and
the automations in ``stack.doctor_prefect``.

The checks talk HTTP to the Prefect and MLflow APIs and S3 to the bucket, using the settings only,
so they work the same against the local stack and against Prefect Cloud / AWS. Prefect is not
imported (``make doctor`` loads no Prefect module). Nothing secret is printed. First it names what it is
about to check (``plan`` lines): the Prefect target (local server, or the Cloud account and workspace
with the API key's bearer header), the S3 target (local endpoint with path-style addressing, or AWS's
regional endpoint with virtual-hosted addressing), and the work pool of ``TO_BIKES_WORK_POOL_TYPE``.
"""

from __future__ import annotations

import re
import subprocess

from models.core import s3
from models.core.errors import UserError
from models.core.names import AWS_BLOCK, BUCKET_BLOCK, CONFIG_BLOCK
from models.core.secrets import mask_secrets
from models.core.settings import Settings
from stack.doctor_check import Check
from stack.prefect_api import HTTP_TIMEOUT_S, http_get, prefect_headers, probe_prefect_api
from stack.sync import s3_client

CLOUD_URL = re.compile(
    r"^https://api\.prefect\.cloud/api/accounts/([0-9a-f-]{36})/workspaces/([0-9a-f-]{36})/?$"
)
EXIT_FAILED = 3
BLOCKS = (
    ("aws-credentials", AWS_BLOCK),
    ("s3-bucket", BUCKET_BLOCK),
    ("to-bikes-config", CONFIG_BLOCK),
)


def check_s3_endpoint(settings: Settings) -> Check:
    if not settings.s3_endpoint:
        return Check("s3 endpoint", True, "AWS (no custom endpoint)")
    status, reason = http_get(settings.s3_endpoint + "/")
    if status:
        return Check("s3 endpoint", True, f"{settings.s3_endpoint} answers")
    return Check("s3 endpoint", False, f"{settings.s3_endpoint} does not answer ({reason})", "make up")


def check_bucket(settings: Settings) -> Check:
    name = f"bucket {settings.bucket}"
    try:
        s3_client(settings, attempts=2).head_bucket(Bucket=settings.bucket)
    except s3.s3_error_types() as exc:
        fix = "make up (the local S3 server creates it) or create it on AWS; check AWS_* and TO_BIKES_BUCKET"
        return Check(name, False, f"not reachable ({type(exc).__name__})", fix)
    return Check(name, True, "exists and the key pair can read it")


def check_raw_data(settings: Settings) -> Check:
    name = f"raw data {settings.raw_prefix}/"
    uri = settings.s3_uri(settings.raw_prefix) + "/"
    try:
        count = len(s3.list_objects(uri, client=s3_client(settings, attempts=2)))
    except UserError as exc:
        cause = exc.__cause__ or exc
        return Check(name, False, f"cannot list ({type(cause).__name__})", "fix the bucket check first")
    if count:
        return Check(name, True, f"{count} objects under {uri}")
    return Check(name, False, "no objects", "make sync-data (or DATA=data/raw make sync-data)")


def check_prefect(settings: Settings) -> Check:
    """The API answers and accepts our credentials (``stack.prefect_api.probe_prefect_api``)."""
    problem = probe_prefect_api(settings)
    if problem is None:
        return Check("prefect api", True, f"{settings.prefect_api_url} answers")
    return Check("prefect api", False, problem.detail, problem.fix)


def check_prefect_database(settings: Settings) -> Check:
    """SQLite (the default, inside the Prefect server) or the stack's PostgreSQL, accepting connections."""
    if settings.prefect_db != "postgres":
        return Check(
            "prefect database", True, "SQLite (default; TO_BIKES_PREFECT_DB=postgres for PostgreSQL)"
        )
    from stack.postgres import isready_command

    where = f"PostgreSQL on {settings.host}:{settings.postgres_port}"
    try:
        done = subprocess.run(
            isready_command(settings), capture_output=True, timeout=HTTP_TIMEOUT_S, check=False
        )
    except UserError as exc:
        return Check("prefect database", False, str(exc), "make postgres-deps")
    if done.returncode == 0:
        return Check("prefect database", True, f"{where} accepts connections")
    return Check("prefect database", False, f"{where} does not answer", "make up")


def check_mlflow(settings: Settings) -> Check:
    status, reason = http_get(settings.mlflow_tracking_uri.rstrip("/") + "/health")
    uri = mask_secrets(settings.mlflow_tracking_uri)
    if status == 200:
        return Check("mlflow server", True, f"{uri} healthy")
    return Check("mlflow server", False, f"{uri} answers {status or reason}", "make up")


def check_mlflow_artifacts(settings: Settings) -> Check:
    """The tracking server can list its artifact store (its own S3 access works)."""
    url = settings.mlflow_tracking_uri.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts?path="
    status, reason = http_get(url)
    if status == 200:
        return Check("mlflow artifacts", True, "the server lists its artifact store")
    fix = "make down && make up (the MLflow server needs the S3 server and the AWS key pair)"
    return Check("mlflow artifacts", False, f"artifact listing answers {status or reason}", fix)


def check_prefect_object(settings: Settings, name: str, path: str, fix: str) -> Check:
    status, _ = http_get(settings.prefect_api_url.rstrip("/") + path, prefect_headers(settings))
    if status == 200:
        return Check(name, True, "saved")
    if status == 0:
        return Check(name, False, "not checked: the Prefect API does not answer", "make up")
    if status in (401, 403):
        return Check(name, False, f"refused ({status})", "set PREFECT_API_AUTH_STRING (or PREFECT_API_KEY)")
    return Check(name, False, "missing" if status == 404 else f"answers {status}", fix)


def check_prefect_objects(settings: Settings) -> list[Check]:
    """One check per block document saved by ``make blocks``, and one for the work pool."""
    checks = [
        check_prefect_object(
            settings,
            f"block {slug}/{name}",
            f"/block_types/slug/{slug}/block_documents/name/{name}",
            "make blocks",
        )
        for slug, name in BLOCKS
    ]
    pool_type, pool = pool_of_type()
    pool = settings.work_pool if pool_type == "process" else pool
    fix = "make blocks" if pool_type == "process" else f"TO_BIKES_WORK_POOL_TYPE={pool_type} make deploy"
    checks.append(check_prefect_object(settings, f"work pool {pool}", f"/work_pools/{pool}", fix))
    return checks


def check_what_runs(settings: Settings) -> list[Check]:
    """A worker on the selected pool, its deployments and the automations (``stack.doctor_prefect``)."""
    from stack.doctor_prefect import check_runners
    from stack.prefect_yaml import read_spec

    pool_type, pool = pool_of_type()
    return check_runners(settings, settings.work_pool if pool_type == "process" else pool, read_spec())


def pool_of_type() -> tuple[str, str]:
    """(type, pool name) of ``TO_BIKES_WORK_POOL_TYPE`` from prefect.yaml; the settings' pool for process."""
    from stack.prefect_yaml import pool_name, read_pool_type, read_spec

    pool_type = read_pool_type()
    return pool_type, pool_name(pool_type, read_spec())


def describe_prefect_target(settings: Settings) -> str:
    """What the Prefect checks will talk to, and with which credential (named, never shown)."""
    url = settings.prefect_api_url
    cloud = CLOUD_URL.match(url)
    if cloud:
        key = "set" if settings.prefect_api_key else "NOT set: export PREFECT_API_KEY"
        return (
            f"Prefect Cloud account {cloud.group(1)} workspace {cloud.group(2)}: GET {url}/ (and blocks, "
            f"the pool) with Authorization: Bearer $PREFECT_API_KEY ({key})"
        )
    if "api.prefect.cloud" in url:
        return f"Prefect Cloud URL {url} names no workspace; expected .../api/accounts/<id>/workspaces/<id>"
    auth = "with PREFECT_API_AUTH_STRING (basic)" if settings.prefect_auth_string else "without credentials"
    return f"Prefect server {url}/health {auth}"


def describe_s3_target(settings: Settings) -> str:
    """Where S3 requests go: the custom endpoint (path-style) or AWS's regional one (virtual-hosted)."""
    if settings.s3_endpoint:
        return f"S3 endpoint {settings.s3_endpoint} (path-style) bucket s3://{settings.bucket}/"
    region = settings.aws_region
    key = "AWS_ACCESS_KEY_ID set" if settings.aws_access_key_id else "profile, SSO or role"
    return (
        f"AWS S3 https://s3.{region}.amazonaws.com, virtual-hosted "
        f"({settings.bucket}.s3.{region}.amazonaws.com): "
        f"HeadBucket and ListObjectsV2 {settings.raw_prefix}/ with boto3's credential chain ({key})"
    )


def describe_targets(settings: Settings) -> list[str]:
    """The ``plan`` lines printed before the checks."""
    pool_type, pool = pool_of_type()
    return [
        f"plan  prefect: {describe_prefect_target(settings)}",
        f"plan  s3: {describe_s3_target(settings)}",
        f"plan  mlflow: {settings.mlflow_tracking_uri} (experiments API, artifact listing)",
        f"plan  pool: {pool} (type {pool_type}: TO_BIKES_WORK_POOL_TYPE), make blocks' blocks, a worker "
        "polling the pool, the deployments of prefect.yaml and the automations of make deploy",
    ]


def run_doctor(settings: Settings) -> int:
    """Name the targets, run every check, print one line each; exit 3 when one failed."""
    for line in describe_targets(settings):
        print(line)
    checks = (
        check_s3_endpoint,
        check_bucket,
        check_raw_data,
        check_prefect,
        check_prefect_database,
        check_mlflow,
        check_mlflow_artifacts,
    )
    results = [check(settings) for check in checks] + check_prefect_objects(settings)
    results += check_what_runs(settings)
    for result in results:
        print(result.line())
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return EXIT_FAILED if failed else 0
