"""The Prefect Cloud + AWS path, offline: the clients the project builds from Cloud and AWS settings.

With ``PREFECT_API_URL`` of a Cloud account/workspace, ``PREFECT_API_KEY`` from the environment and
S3 settings without an endpoint, nothing is contacted: the test reads how the clients are configured
(boto3's S3 client: AWS's regional endpoint, virtual-hosted addressing; Prefect's client: the
workspace URL, and the bearer header it sends, recorded by a local HTTP server on 127.0.0.1) and that
the key reaches no file and no log line.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

from models.core.s3 import s3_client
from models.core.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.unit

ACCOUNT, WORKSPACE = uuid.uuid4(), uuid.uuid4()
CLOUD_URL = f"https://api.prefect.cloud/api/accounts/{ACCOUNT}/workspaces/{WORKSPACE}"
REGION = "ca-central-1"
BUCKET = "to-bikes-prod"

# In a child process with only the Cloud settings: the project's Prefect client, its worker
# environment, and doctor's plan; prints whether the header is the key, never the key. The header is
# the one the client sends: the same client settings pointed at a local server that records it.
PROBE = """
import json, logging, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
logging.basicConfig(level=logging.DEBUG)
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from models.core.settings import load_settings
from stack.worker import worker_env
from stack.doctor import describe_targets
from stack.prefect_api import prefect_headers

received = []

class Recorder(BaseHTTPRequestHandler):
    def do_GET(self):
        received.append(self.headers.get("Authorization"))
        body = b'"hello"'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

settings = load_settings()
client = get_client(sync_client=True)
key = os.environ["PREFECT_API_KEY"]
server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
threading.Thread(target=server.serve_forever, daemon=True).start()
try:
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{server.server_port}/api"}):
        with get_client(sync_client=True) as local:
            local.hello().raise_for_status()
finally:
    server.shutdown()
    server.server_close()
print(json.dumps({
    "api_url": str(client.api_url),
    "bearer_is_key": received == [f"Bearer {key}"],
    "doctor_bearer_is_key": prefect_headers(settings) == {"Authorization": f"Bearer {key}"},
    "worker_api_url": worker_env(settings)["PREFECT_API_URL"],
    "plan": describe_targets(settings),
}))
"""


def aws_settings(secret: str) -> Settings:
    return Settings(
        _env_file=None,
        bucket=BUCKET,
        use_local_s3=False,
        s3_endpoint_url=None,
        aws_region=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key=secret,
    )


def test_s3_client_for_aws_uses_the_regional_endpoint_and_virtual_hosted_addressing() -> None:
    secret = secrets.token_hex(20)
    client = s3_client(aws_settings(secret))
    assert client.meta.endpoint_url == f"https://s3.{REGION}.amazonaws.com"
    assert (client.meta.config.s3 or {}).get("addressing_style") in (None, "auto", "virtual")
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "raw/2025/a.csv"})
    host = urlparse(url).hostname or ""
    assert host.startswith(f"{BUCKET}.s3.") and host.endswith(".amazonaws.com")  # the bucket in the host name
    assert urlparse(url).path == "/raw/2025/a.csv"
    assert secret not in url


def test_s3_client_for_a_custom_endpoint_keeps_path_style() -> None:
    """The contrast: the local stack's endpoint gets path-style addressing."""
    settings = aws_settings(secrets.token_hex(20)).model_copy(
        update={"s3_endpoint_url": "http://127.0.0.1:9"}
    )
    client = s3_client(settings)
    url = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "raw/a.csv"})
    assert urlparse(url).hostname == "127.0.0.1" and urlparse(url).path == f"/{BUCKET}/raw/a.csv"


def test_prefect_cloud_client_and_doctor_plan_keep_the_key_out_of_files_and_logs(tmp_path: Path) -> None:
    key = "pnu_" + secrets.token_hex(18)
    home = tmp_path / "prefect-home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": CLOUD_URL,
        "PREFECT_API_KEY": key,
        "PREFECT_LOGGING_LEVEL": "DEBUG",
        "TO_BIKES_USE_LOCAL_S3": "false",
        "TO_BIKES_BUCKET": BUCKET,
        "AWS_DEFAULT_REGION": REGION,
        "TO_BIKES_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["api_url"] == CLOUD_URL + "/"
    assert found["bearer_is_key"], "the client did not send Authorization: Bearer <PREFECT_API_KEY>"
    assert found["doctor_bearer_is_key"]
    assert found["worker_api_url"] == CLOUD_URL
    plan = "\n".join(found["plan"])
    print(plan)
    assert f"Prefect Cloud account {ACCOUNT} workspace {WORKSPACE}" in plan
    assert "Bearer $PREFECT_API_KEY (set)" in plan
    assert f"AWS S3 https://s3.{REGION}.amazonaws.com, virtual-hosted" in plan
    assert key not in done.stdout + done.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file() and key.encode() in p.read_bytes()]
    assert written == []
