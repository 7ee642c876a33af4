"""Talking to the MLflow tracking server and model registry, and what a logged model needs to load.

A tracking server that is down is a user error reported in one sentence naming the URI (with any
password masked), found by one quick probe instead of MLflow's minutes of retries. MLflow itself is
imported on first use: the registry calls of a registration go over REST when they can
(``models.registry.mlflow_rest``), so a cached pipeline run never pays MLflow's import.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.core.errors import UserError
from models.core.secrets import mask_secrets
from models.core.settings import PROJECT_ROOT, Settings, load_settings
from models.registry.mlflow_rest import (
    NOT_FOUND_CODES,
    RegistryError,
    RestRegistry,
    registry_errors,
    supports,
    unreachable,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 5.0
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
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def resolve_tracking_uri(tracking_uri: str | None, settings: Settings | None = None) -> str:
    """The explicit URI, else the settings' (``MLFLOW_TRACKING_URI`` or the local stack's server)."""
    return tracking_uri or (settings or load_settings()).mlflow_tracking_uri


def check_tracking_uri(uri: str) -> None:
    """Fail fast, in one sentence, when an HTTP tracking server does not answer its health probe."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S):  # noqa: S310
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # a proxy or auth layer answered: the server is there
            return
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise unreachable(uri, reason)


def connect_tracking(tracking_uri: str | None = None, settings: Settings | None = None) -> MlflowClient:
    """Point MLflow (fluent API and client) at the tracking server and registry, after probing it."""
    import mlflow

    uri = resolve_tracking_uri(tracking_uri, settings)
    check_tracking_uri(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def connect_registry(tracking_uri: str | None = None, settings: Settings | None = None) -> Any:
    """A client for the registry calls of ``models.registry.register``: REST for http(s), else MlflowClient.

    The REST client needs no probe: its first call names an unreachable server in one sentence.
    """
    uri = resolve_tracking_uri(tracking_uri, settings)
    return RestRegistry(uri) if supports(uri) else connect_tracking(uri)


def full_client(client: Any) -> MlflowClient:
    """An MlflowClient for what only MLflow does (creating a version); ``client`` itself if it is one."""
    return connect_tracking(client.tracking_uri) if isinstance(client, RestRegistry) else client


def normalise_name(name: str) -> str:
    """PEP 503 form of a distribution name, for matching ``.in`` names against lock pins."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_names(path: Path) -> list[str]:
    """Distribution names listed in a pip-tools ``.in`` file (comments and ``-r``/``-c`` lines skipped)."""
    names = []
    for line in path.read_text().splitlines():
        match = _NAME.match(line.strip())
        if match:
            names.append(normalise_name(match.group(1)))
    return names


def read_pins(path: Path) -> dict[str, str]:
    """``name -> version`` for every ``name==version`` line of a compiled lock file."""
    pins = {}
    for line in path.read_text().splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[normalise_name(match.group(1))] = match.group(2)
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
    import mlflow.sklearn

    with allow_model_loading():
        return mlflow.sklearn.load_model(model_uri)


@contextlib.contextmanager
def reported_mlflow_errors(action: str) -> Iterator[None]:
    """Turn an MLflow failure (a server that went away mid-run, a refused request) into one sentence."""
    try:
        yield
    except registry_errors() as exc:
        first_line = (str(exc.message).strip().splitlines() or ["no details"])[0]
        uri = mask_secrets(
            exc.uri if isinstance(exc, RegistryError) else sys.modules["mlflow"].get_tracking_uri()
        )
        raise UserError(f"MLflow at {uri} failed while {action}: {mask_secrets(first_line)[:300]}") from exc


def find_alias_version(client: MlflowClient | RestRegistry, name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None when the model or the alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except registry_errors() as exc:
        if exc.error_code in NOT_FOUND_CODES:
            return None
        raise
