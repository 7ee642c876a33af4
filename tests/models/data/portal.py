"""A fake City of Toronto CKAN portal on 127.0.0.1 for the fetch and ingest tests (no test imports another).

It answers ``package_show`` with the resources of ``Portal.package()`` (or ``Portal.resources`` when a test
sets them), serves the files of ``Portal.files`` with Range support and scripted faults, logs every
request and counts the file bytes it sent (``bytes_sent``).
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from models.data.fetch import PACKAGE_ID


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A ZIP archive holding ``entries`` (name -> bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@dataclass
class Portal:
    """The fake portal's files, request log and scripted faults (path -> list of faults, used in order)."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    resources: list[dict] | None = None
    bytes_sent: int = 0

    @property
    def api(self) -> str:
        return f"{self.url}/api/3/action/package_show"

    def package(self) -> dict:
        name = "bikeshare-ridership-{}"
        resources = self.resources if self.resources is not None else [
            {"name": name.format(2024), "format": "XLSX", "url": f"{self.url}/dl/2024.xlsx"},
            {"name": name.format(2024), "format": "ZIP", "url": f"{self.url}/dl/{name.format(2024)}.zip"},
            {"name": name.format(2025), "format": "ZIP", "url": f"{self.url}/dl/{name.format(2025)}.zip",
             "last_modified": "2026-01-15T10:00:00"},
        ]  # fmt: skip
        return {"success": True, "result": {"name": PACKAGE_ID, "resources": resources}}

    def publish(
        self, year: int, data: bytes, last_modified: str, size: int | None = None, hash: str | None = None
    ) -> None:
        """List (or republish) a yearly ZIP under a new URL, as the City does, with its size (and the
        CKAN ``hash`` field when given)."""
        path = f"/dl/{last_modified.replace(':', '')}/bikeshare-ridership-{year}.zip"
        self.files[path] = data
        entry = {
            "name": f"bikeshare-ridership-{year}",
            "format": "ZIP",
            "url": f"{self.url}{path}",
            "last_modified": last_modified,
            "size": len(data) if size is None else size,
            **({"hash": hash} if hash is not None else {}),
        }
        others = [r for r in self.resources or [] if r["name"] != entry["name"]]
        self.resources = [*others, entry]

    def withdraw(self, year: int) -> None:
        """The portal no longer lists the year."""
        self.resources = [r for r in self.resources or [] if r["name"] != f"bikeshare-ridership-{year}"]


def make_handler(portal: Portal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            portal.requests.append((parts.path, self.headers.get("Range")))
            fault = portal.faults.get(parts.path, []).pop(0) if portal.faults.get(parts.path) else None
            if fault == "503":
                self.send_error(503)
            elif parts.path.endswith("/package_show"):
                ok = parse_qs(parts.query).get("id") == [PACKAGE_ID]
                self.reply(200, json.dumps(portal.package() if ok else {"success": False}).encode())
            elif parts.path in portal.files:
                self.send_file(portal.files[parts.path], fault)
            else:
                self.send_error(404)

        def reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def send_file(self, data: bytes, fault: str | None) -> None:
            start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
            if fault == "cut":  # full length announced, half sent, connection closed
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                portal.bytes_sent += len(data) // 2
                self.wfile.flush()
                self.close_connection = True
                return
            portal.bytes_sent += len(data) - start
            if start:
                self.reply(206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            else:
                self.reply(200, data)

    return Handler


@contextmanager
def serving(state: Portal) -> Iterator[Portal]:
    """Serve ``state`` on a free port of 127.0.0.1 until the block ends (even when it fails)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
