"""The one Prefect API probe used by doctor, blocks, deploy, run, backfill and the worker."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from models.core.errors import UserError
from models.core.settings import Settings
from stack.doctor import check_prefect
from stack.prefect_api import require_prefect_api

pytestmark = pytest.mark.unit


def answering(status: int) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        seen: ClassVar[list[tuple[str, str | None]]] = []

        def do_GET(self) -> None:
            Handler.seen.append((self.path, self.headers.get("Authorization")))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[tuple[str, type]]:
    handler = answering(request.param)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("api", [200, 404], indirect=True)
def test_an_answering_api_passes_even_without_that_endpoint(api: tuple[str, type]) -> None:
    url, handler = api
    settings = Settings(prefect_api_url_override=url, prefect_api_key="pnu_key")
    assert check_prefect(settings).ok
    require_prefect_api(settings)
    assert handler.seen == [("/api/admin/version", "Bearer pnu_key")] * 2


@pytest.mark.parametrize("api", [401], indirect=True)
def test_a_refusal_names_the_credential_to_set_and_hides_it(api: tuple[str, type]) -> None:
    url, _ = api
    with pytest.raises(UserError) as caught:
        require_prefect_api(Settings(prefect_api_url_override=url, prefect_auth_string="hunter2"))
    assert "PREFECT_API_AUTH_STRING" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_dead_api_is_one_sentence() -> None:
    with pytest.raises(UserError, match=r"does not answer .*make up, or set PREFECT_API_URL\.$"):
        require_prefect_api(Settings(prefect_api_url_override="http://127.0.0.1:9/api"))


class Busy(http.server.BaseHTTPRequestHandler):
    """503 for the first ``busy`` requests (a server whose SQLite database is busy), then 200."""

    busy: ClassVar[int] = 0
    seen: ClassVar[int] = 0

    def do_GET(self) -> None:
        Busy.seen += 1
        self.send_response(503 if Busy.seen <= Busy.busy else 200)
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args: object) -> None:
        return


@pytest.mark.parametrize(("busy", "status", "asked"), [(2, 200, 3), (9, 503, 4)])
def test_a_busy_server_is_asked_again_and_a_refusing_one_is_not(busy: int, status: int, asked: int) -> None:
    from stack.prefect_api import http_get

    Busy.busy, Busy.seen = busy, 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert http_get(f"http://127.0.0.1:{server.server_address[1]}/x")[0] == status
        assert Busy.seen == asked
    finally:
        server.shutdown()
        server.server_close()
    port = server.server_address[1]  # closed now: refused at once, no retry
    assert http_get(f"http://127.0.0.1:{port}/x")[0] == 0
