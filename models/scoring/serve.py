"""``make serve``: MLflow's own model server for the champion, on 127.0.0.1.

    python -m models serve [--port 5100] [--dry-run]

Runs ``mlflow models serve -m models:/<model>@champion --env-manager local`` from the model env, so the
alias is resolved once, when the server starts: after the gate promotes a new champion, restart the
server to serve it. ``POST /invocations`` with trips in MLflow's ``dataframe_split`` (or
``dataframe_records``) format answers ``{"predictions": [[P(casual), P(member)], ...]}``; the model's
signature makes MLflow check every request's columns and types and answer a malformed one with a 400
and its own message. ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true`` is set for the server only: MLflow
3.17 refuses to load any scikit-learn model without it, skops ones included, because skops' list of
trusted types is read from the model artifact itself; these models come from the project's own registry.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from models.core.errors import UserError
from models.core.names import CHAMPION
from models.core.settings import LOCAL_HOST, Settings
from models.registry.mlflow_client import ALLOW_LOADING_ENV

log = logging.getLogger(__name__)


def serve_command(settings: Settings, port: int) -> list[str]:
    """The ``mlflow models serve`` command line for the champion (the model env's own mlflow)."""
    mlflow = Path(sys.executable).with_name("mlflow")
    program = str(mlflow) if mlflow.exists() else shutil.which("mlflow")
    if program is None:
        raise UserError("The mlflow command is not installed in this environment; run `make install`.")
    return [
        program,
        "models",
        "serve",
        "-m",
        f"models:/{settings.model_name}@{CHAMPION}",
        "--host",
        LOCAL_HOST,
        "--port",
        str(port),
        "--env-manager",
        "local",
    ]


def serve_environment(settings: Settings, program: str) -> dict[str, str]:
    """The server's environment: the tracking server, model loading allowed (see the docstring), and the
    model env's bin first on PATH (MLflow starts ``uvicorn`` by name; make calls .venv/bin/python directly).
    """
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(program).parent), os.environ.get("PATH", "")]),
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        ALLOW_LOADING_ENV: "true",
    }
