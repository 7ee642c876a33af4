"""How the registry client reports a server it cannot use: one sentence naming it, any password masked.

No MLflow server here: a port nothing listens on, and a tiny HTTP server that refuses every request
the way an auth proxy in front of MLflow does.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from models.core.errors import UserError
from models.registry.mlflow_client import build_probe
from models.registry.register import register_model, reuse_problem
from stack.embedded import free_ports

pytestmark = [pytest.mark.unit]

NAME = "client-test"


def test_an_unreachable_server_is_one_sentence_with_the_password_masked():
    dead = f"http://someone:hunter2@127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(UserError) as caught:
        reuse_problem("0" * 32, name=NAME, tracking_uri=dead)
    message = str(caught.value)
    assert "unreachable ([Errno 111] Connection refused)" in message and "someone:***@127.0.0.1" in message
    assert "hunter2" not in message and "\n" not in message


def test_the_probe_sends_a_uris_password_as_basic_auth_not_in_the_url():
    probe = build_probe("https://ann:p%40ss@mlflow.example:8443/base/")
    assert probe.full_url == "https://mlflow.example:8443/base/health"
    assert probe.get_header("Authorization") == "Basic YW5uOnBAc3M="  # base64 of ann:p@ss


class RefusingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request 401 like an auth proxy, and remembers the Authorization headers."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        RefusingHandler.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"error_code": "UNAUTHENTICATED", "message": "You are not\nauthenticated."})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def refusing_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RefusingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RefusingHandler.seen.clear()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_request_is_one_sentence_and_mlflow_credentials_are_sent(refusing_server, monkeypatch):
    monkeypatch.setenv("HOME", "/nonexistent")  # no ~/.mlflow/credentials
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "tok")
    for call in (register_model, reuse_problem):
        with pytest.raises(UserError) as caught:
            call("0" * 32, name=NAME, tracking_uri=refusing_server)
        message = str(caught.value)
        assert message.startswith(f"MLflow at {refusing_server} failed while reading run {'0' * 32}")
        assert "UNAUTHENTICATED" in message and "MLFLOW_TRACKING_TOKEN" in message and "\n" not in message
    assert "Bearer tok" in RefusingHandler.seen
