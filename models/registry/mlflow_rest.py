"""The few MLflow REST calls of a registration, without importing MLflow (about a second of imports).

A pipeline rerun that reuses its training run only reads the run, finds the run's model version and
checks two aliases and two tags; ``import mlflow`` (its GenAI, tracing and pandas modules) costs more
than all of those calls together. For an http(s) tracking URI ``RestRegistry`` makes them with
``requests``, as MLflow does, with the credentials MLflow would send: MLFLOW_TRACKING_TOKEN, or
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or ``~/.mlflow/credentials``), and
MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH. Its
methods have ``MlflowClient``'s names and return objects with the attributes ``models.registry.register``
reads. Other URI schemes and auth plugins (MLFLOW_TRACKING_AUTH, AWS SigV4) go through MlflowClient.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from models.core.errors import UserError
from models.core.secrets import mask_secrets

log = logging.getLogger(__name__)

API = "/api/2.0/mlflow"
TIMEOUT_S = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
RETRY_STATUSES = {429, 502, 503, 504}
RETRY_DELAYS_S = (1.0, 2.0)
NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
PLUGIN_VARIABLES = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_AWS_SIGV4")
TRUE = {"true", "1"}
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")\]]*")


class RegistryError(Exception):
    """An error answer of the MLflow API, with ``error_code`` and ``message`` like MlflowException."""

    def __init__(self, message: str, error_code: str, uri: str) -> None:
        super().__init__(message)
        self.message, self.error_code, self.uri = message, error_code, uri


def registry_errors() -> tuple[type[Exception], ...]:
    """What a registry call may raise: ``RegistryError``, and ``MlflowException`` once MLflow is loaded."""
    loaded = sys.modules.get("mlflow.exceptions")
    return (RegistryError,) if loaded is None else (RegistryError, loaded.MlflowException)


def unreachable(uri: str, reason: str) -> UserError:
    """The one sentence for a tracking server that does not answer."""
    return UserError(
        f"The MLflow tracking server at {mask_secrets(uri)} is unreachable ({reason}); "
        "start it with `make up` or set MLFLOW_TRACKING_URI."
    )


def transport_reason(exc: Exception) -> str:
    """The short cause of a failed request ("[Errno 111] Connection refused"), not urllib3's paragraph."""
    found = _ERRNO.search(str(exc))
    return found.group(0).strip() if found else type(exc).__name__


def supports(uri: str) -> bool:
    """Whether ``RestRegistry`` can talk to ``uri`` as MlflowClient would (http(s), no auth plugin)."""
    if not uri.startswith(("http://", "https://")):
        return False
    plugins = [os.environ.get(name, "").strip().lower() for name in PLUGIN_VARIABLES]
    return all(value in ("", "false", "0") for value in plugins)


@dataclass
class RunInfo:
    run_id: str
    lifecycle_stage: str


@dataclass
class RunData:
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RunRecord:
    """What ``models.registry.register`` reads of ``mlflow.entities.Run``."""

    info: RunInfo
    data: RunData


@dataclass
class VersionRecord:
    """What ``models.registry.register`` reads of ``mlflow.entities.model_registry.ModelVersion``."""

    name: str
    version: str
    run_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


def key_values(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    """``[{"key": k, "value": v}, ...]`` (how the API sends tags and metrics) as a dict."""
    return {item["key"]: item.get("value") for item in items or []}


def to_version(found: dict[str, Any]) -> VersionRecord:
    """A model version of the API's JSON."""
    return VersionRecord(
        name=found["name"],
        version=str(found["version"]),
        run_id=found.get("run_id", ""),
        status=found.get("status", ""),
        tags=key_values(found.get("tags")),
        aliases=list(found.get("aliases", [])),
    )


def read_credentials() -> tuple[str | None, str | None]:
    """Username and password from the environment, else from ``~/.mlflow/credentials`` (MLflow's order)."""
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    path = Path("~/.mlflow/credentials").expanduser()
    if path.is_file():
        config = configparser.ConfigParser()
        config.read(path)
        section = config["mlflow"] if config.has_section("mlflow") else {}
        user = user or section.get("mlflow_tracking_username")
        password = password or section.get("mlflow_tracking_password")
    return user, password


def make_session(uri: str) -> tuple[Any, str]:
    """A ``requests`` session with MLflow's credentials and TLS settings, and the URI without userinfo."""
    import requests

    parts = urlsplit(uri)
    session = requests.Session()
    user, password = read_credentials()
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if user and password:
        session.auth = (user, password)
    elif token:
        session.headers["Authorization"] = f"Bearer {token}"
    elif parts.username:
        session.auth = (parts.username, parts.password or "")
    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() in TRUE
    session.verify = False if insecure else os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    session.cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
    host = parts.netloc.rsplit("@", 1)[-1]
    return session, urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


class RestRegistry:
    """The MlflowClient calls of ``models.registry.register`` over the REST API (see the module docstring)."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.session, self.base = make_session(tracking_uri)

    def call(self, method: str, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One API call: transport and auth failures are UserErrors, the API's errors RegistryErrors."""
        import requests

        where = mask_secrets(self.tracking_uri)
        for delay in (*RETRY_DELAYS_S, None):
            args = {"params": payload} if method == "GET" else {"json": payload}
            try:
                answer = self.session.request(
                    method, f"{self.base}{API}/{endpoint}", timeout=TIMEOUT_S, **args
                )
            except requests.RequestException as exc:
                raise unreachable(self.tracking_uri, transport_reason(exc)) from exc
            if answer.status_code not in RETRY_STATUSES or delay is None:
                break
            log.info("MLflow at %s: HTTP %s to %s; retry in %s s", where, answer.status_code, endpoint, delay)
            time.sleep(delay)
        return self.read_answer(answer, endpoint)

    def read_answer(self, answer: Any, endpoint: str) -> dict[str, Any]:
        """The JSON of a successful answer; an error answer raised as UserError or RegistryError."""
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.ok:
            return body
        where = mask_secrets(self.tracking_uri)
        text = str(body.get("message") or answer.text or answer.reason or "no details").strip()
        message = mask_secrets((text.splitlines() or ["no details"])[0][:300])
        if answer.status_code in (401, 403):
            raise UserError(
                f"MLflow at {where} refused {endpoint} (HTTP {answer.status_code}: {message}); set "
                "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD."
            )
        if "error_code" not in body:
            raise UserError(f"MLflow at {where} failed on {endpoint} (HTTP {answer.status_code}: {message}).")
        raise RegistryError(message, body["error_code"], self.tracking_uri)

    def get_run(self, run_id: str) -> RunRecord:
        found = self.call("GET", "runs/get", {"run_id": run_id})["run"]
        info, data = found["info"], found.get("data", {})
        return RunRecord(
            info=RunInfo(run_id=info["run_id"], lifecycle_stage=info.get("lifecycle_stage", "active")),
            data=RunData(tags=key_values(data.get("tags")), metrics=key_values(data.get("metrics"))),
        )

    def search_model_versions(self, filter_string: str) -> list[VersionRecord]:
        payload: dict[str, Any] = {"filter": filter_string, "max_results": 1000}
        versions = []
        while True:
            found = self.call("GET", "model-versions/search", payload)
            versions += [to_version(v) for v in found.get("model_versions", [])]
            if not found.get("next_page_token"):
                return versions
            payload["page_token"] = found["next_page_token"]

    def get_model_version(self, name: str, version: str) -> VersionRecord:
        found = self.call("GET", "model-versions/get", {"name": name, "version": str(version)})
        return to_version(found["model_version"])

    def get_model_version_by_alias(self, name: str, alias: str) -> VersionRecord:
        found = self.call("GET", "registered-models/alias", {"name": name, "alias": alias})
        return to_version(found["model_version"])

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": str(version)})

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        payload = {"name": name, "version": str(version), "key": key, "value": str(value)}
        self.call("POST", "model-versions/set-tag", payload)
