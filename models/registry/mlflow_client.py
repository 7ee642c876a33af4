"""Talking to the MLflow tracking server and model registry, and what a logged model needs to load.

Every tracking and registry call goes through MLflow's own ``MlflowClient`` (``connect_tracking``).
A tracking server that is down is a user error reported in one sentence naming the URI (with any
password masked), found by one quick probe instead of MLflow's minutes of retries; an error the
server answers is turned into one sentence too (``describe_failure``, ``reported_mlflow_errors``).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tenacity import Retrying, stop_after_delay, wait_fixed

from models.core.errors import UserError
from models.core.secrets import mask_secrets
from models.core.settings import PROJECT_ROOT, Settings, load_settings

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
WAIT_POLL_S = 2.0  # between health probes while waiting for a tracking server
# The UI's model-training view. MLflow 3.17's UI takes the view from this query parameter, else from the
# browser's last click on the sidebar's "GenAI | Model training" switch (local storage), else GenAI; the
# experiment tag mlflow.experimentKind does not choose it. So every printed link carries it.
UI_VIEW = "workflowType=machine_learning"
# What the API answers for a run, model or alias that does not exist (or an id that cannot be one).
NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
REFUSED_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED"}
ALLOW_LOADING_ENV = "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
REQUIREMENTS_DIR = PROJECT_ROOT / "requirements"
# Loading the model also needs these two (pinned through base.in's packages).
EXTRA_REQUIREMENTS = ("numpy", "skops")
# Models are saved with skops (no arbitrary code on load); these are the only non-default types the
# pipeline holds, all inside HistGradientBoostingClassifier (its trees and its input check).
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def resolve_tracking_uri(tracking_uri: str | None, settings: Settings | None = None) -> str:
    """The explicit URI, else the settings' (``MLFLOW_TRACKING_URI`` or the local stack's server)."""
    return tracking_uri or (settings or load_settings()).mlflow_tracking_uri


def unreachable(uri: str, reason: str) -> UserError:
    """The one sentence for a tracking server that does not answer."""
    return UserError(
        f"The MLflow tracking server at {mask_secrets(uri)} is unreachable ({reason}); "
        "start it with `make up` or set MLFLOW_TRACKING_URI."
    )


def build_probe(uri: str) -> urllib.request.Request:
    """A GET of the server's ``/health``; a URI's ``user:password@`` goes as basic auth as MLflow sends it."""
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    url = urlunsplit((parts.scheme, host, f"{parts.path.rstrip('/')}/health", "", ""))
    request = urllib.request.Request(url)  # noqa: S310 (http(s) only, checked by the caller)
    if parts.username:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", f"Basic {base64.b64encode(pair).decode()}")
    return request


def check_tracking_uri(uri: str, wait_s: float = 0.0) -> None:
    """Fail in one sentence when an HTTP tracking server does not answer its probe (probed for ``wait_s``)."""
    if uri.startswith(("http://", "https://")):
        retrying = Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(WAIT_POLL_S), reraise=True)
        retrying(probe_tracking_uri, uri)


def probe_tracking_uri(uri: str) -> None:
    """One health probe of the tracking server; its failure in one sentence."""
    try:
        with urllib.request.urlopen(build_probe(uri), timeout=PROBE_TIMEOUT_S):  # noqa: S310
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # a proxy or auth layer answered: the server is there
            return
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise unreachable(uri, reason)


def connect_tracking(tracking_uri: str | None = None, settings: Settings | None = None) -> MlflowClient:
    """The one way in: MLflow (fluent API and client) pointed at the server and registry, once probed."""
    settings = settings or load_settings()
    uri = resolve_tracking_uri(tracking_uri, settings)
    check_tracking_uri(uri, settings.mlflow_wait_seconds)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def is_not_found(exc: MlflowException) -> bool:
    """Whether the server said the run, model or alias asked for does not exist."""
    return exc.error_code in NOT_FOUND_CODES


def describe_failure(uri: str, action: str, exc: MlflowException) -> UserError:
    """One sentence for a refused or failed MLflow call: the masked URI, the action, the first line of why."""
    first_line = (str(exc.message).strip().splitlines() or ["no details"])[0]
    sentence = f"MLflow at {mask_secrets(uri)} failed while {action}: {mask_secrets(first_line)[:300]}"
    if exc.error_code in REFUSED_CODES:
        sentence += "; set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    return UserError(sentence)


def read_requirements(path: Path) -> list[Requirement]:
    """The requirement lines of a pip-tools ``.in`` or compiled ``.txt`` file.

    Comments, options (``-r``, ``-c``, ``--hash``) and line continuations are skipped; what is left
    on a line is parsed by ``packaging`` (PEP 508).
    """
    found = []
    for line in path.read_text().splitlines():
        text = line.split(" #", 1)[0].strip().removesuffix("\\").strip()
        if not text or text.startswith(("#", "-")):
            continue
        try:
            found.append(Requirement(text))
        except InvalidRequirement as exc:
            raise UserError(f"{path}: cannot read the requirement {text!r} ({exc}); fix that line.") from None
    return found


def read_names(path: Path) -> list[str]:
    """Canonical (PEP 503) distribution names listed in a pip-tools ``.in`` file."""
    return [canonicalize_name(req.name) for req in read_requirements(path)]


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line of a compiled lock file."""
    pins = {}
    for req in read_requirements(path):
        exact = [spec.version for spec in req.specifier if spec.operator == "=="]
        if len(exact) == 1:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


def pinned_requirements(requirements_dir: Path = REQUIREMENTS_DIR) -> list[str]:
    """``name==version`` for the model runtime (base.in) as pinned in model.txt.

    Falls back to the installed version for a name the lock lacks, so a model always records what
    it was trained with; giving MLflow this list also skips its slow requirement inference.
    """
    if not (requirements_dir / "base.in").is_file():
        raise UserError(
            f"{requirements_dir / 'base.in'} is missing; the code bundle must include requirements/."
        )
    names = [*read_names(requirements_dir / "base.in"), *EXTRA_REQUIREMENTS]
    lock = requirements_dir / "model.txt"
    pins = read_pins(lock) if lock.is_file() else {}
    found = []
    for name in dict.fromkeys(names):
        version = pins.get(name) or importlib.metadata.version(name)
        found.append(f"{name}=={version}")
    return found


@contextlib.contextmanager
def allow_model_loading() -> Iterator[None]:
    """Let MLflow deserialise a model for the duration of the block (it refuses by default).

    Only models from this project's own registry are loaded; they are skops files whose trusted
    types are the short list above.
    """
    previous = os.environ.get(ALLOW_LOADING_ENV)
    os.environ[ALLOW_LOADING_ENV] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ALLOW_LOADING_ENV, None)
        else:
            os.environ[ALLOW_LOADING_ENV] = previous


def load_sklearn_model(model_uri: str) -> Any:
    """The scikit-learn pipeline behind a ``models:/`` or ``runs:/`` URI."""
    import mlflow.sklearn  # the flavour loads on first use, not with the client

    with allow_model_loading():
        return mlflow.sklearn.load_model(model_uri)


@contextlib.contextmanager
def reported_mlflow_errors(action: str) -> Iterator[None]:
    """Turn an MLflow failure (a server that went away mid-run, a refused request) into one sentence."""
    try:
        yield
    except MlflowException as exc:
        raise describe_failure(mlflow.get_tracking_uri(), action, exc) from exc


def find_alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None when the model or the alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise


def build_ui_url(tracking_uri: str, route: str) -> str | None:
    """A link into the MLflow UI (secrets masked) when the tracking store is a server, else None.

    MLflow 3's UI opens in its GenAI view unless the link asks for the model-training one.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    return mask_secrets(f"{tracking_uri.rstrip('/')}/#/{route}?{UI_VIEW}")


def build_run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str | None:
    """A link to the run in the MLflow UI, or None for a local tracking store."""
    return build_ui_url(tracking_uri, f"experiments/{experiment_id}/runs/{run_id}")


def build_experiment_url(tracking_uri: str, experiment_id: str) -> str | None:
    """A link to the experiment's runs table (model-training view), or None for a local tracking store."""
    return build_ui_url(tracking_uri, f"experiments/{experiment_id}/runs")


def build_version_url(tracking_uri: str, name: str, version: str) -> str | None:
    """A link to the registered model version in the MLflow UI, or None for a local tracking store."""
    return build_ui_url(tracking_uri, f"models/{name}/versions/{version}")
