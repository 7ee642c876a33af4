"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a local S3 (or MLflow) server, stdlib only.

Tests point a client at ``FaultProxy.url`` instead of the server and choose which requests fail:
the first N requests (or every request) that match a method set and a path pattern get a 500, a
503, a 503 ``SlowDown`` error document, a dropped or reset connection, a truncated body, a delay,
or a stall (held, then dropped: the server never sees it, as when the client dies mid-request).
Everything else is relayed byte for byte (the ``Host`` header too, so SigV4 signatures made for
the proxy's address still verify upstream). The proxy refuses non-loopback upstreams, relays at
most ``max_requests`` requests and stops by itself after ``lifetime_s`` seconds.

It imports nothing outside the standard library, so both venvs (and a subprocess) can use it::

    python tests/faultproxy.py --upstream http://127.0.0.1:9000 --rule 503:3:PUT --rule drop:2
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import ipaddress
import re
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
FAULTS = ("500", "503", "slowdown", "drop", "reset", "truncate", "delay", "stall")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade", "expect"}
ERROR_CODES = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}
RELAY_CHUNK = 256 * 1024
MAX_BODY = 256 * 1024 * 1024
MAX_CHUNK_LINES = 1_000_000


@dataclass
class FaultRule:
    """Fault ``fault`` for the first ``count`` matching requests (``None``: every matching request)."""

    fault: str
    count: int | None = 1
    methods: frozenset[str] | None = None
    path: str | None = None  # regular expression searched in the request target (path and query)
    delay_s: float = 2.0  # "delay": hold the request this long, then relay it; "stall": then drop it
    hits: int = 0

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; choose from {', '.join(FAULTS)}")
        if self.methods is not None:
            self.methods = frozenset(m.upper() for m in self.methods)

    def take(self, method: str, target: str) -> bool:
        """True (and counted) when this request matches and the rule has faults left."""
        if self.methods is not None and method not in self.methods:
            return False
        if self.path is not None and not re.search(self.path, target):
            return False
        if self.count is not None and self.hits >= self.count:
            return False
        self.hits += 1
        return True


@dataclass(frozen=True)
class Seen:
    """One request the proxy handled and what it did with it (``relayed`` or the fault's name)."""

    method: str
    target: str
    outcome: str
    status: int | None = None


@dataclass
class FaultProxy:
    """The proxy; use as a context manager, or ``start()`` / ``stop()``."""

    upstream: str
    rules: list[FaultRule] = field(default_factory=list)
    port: int = 0
    lifetime_s: float = 900.0
    max_requests: int = 50_000
    upstream_timeout_s: float = 60.0
    seen: collections.deque = field(default_factory=lambda: collections.deque(maxlen=20_000))

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme != "http" or not parts.hostname or not is_loopback(parts.hostname):
            raise ValueError(f"upstream {self.upstream!r} must be http:// on a loopback address")
        self.upstream_address = (parts.hostname, parts.port or 80)
        self.lock = threading.Condition()
        self.handled = 0
        self.server: QuietServer | None = None
        self.timer: threading.Timer | None = None

    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the fault proxy is not running")
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        """Bind 127.0.0.1, serve in a daemon thread, and arm the lifetime timer."""
        self.server = QuietServer((LOOPBACK, self.port), RelayHandler)
        self.server.proxy = self  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        self.timer = threading.Timer(self.lifetime_s, self.stop)
        self.timer.daemon = True
        self.timer.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent); open client connections see a closed socket."""
        server, self.server = self.server, None
        if self.timer is not None:
            self.timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_rules(self, *rules: FaultRule) -> None:
        """Replace the fault rules (``set_rules()`` with none: relay everything)."""
        with self.lock:
            self.rules = list(rules)

    def choose(self, method: str, target: str) -> FaultRule | None:
        """The first rule that takes this request, if any; counts the request."""
        with self.lock:
            self.handled += 1
            if self.handled >= self.max_requests:
                threading.Thread(target=self.stop, daemon=True).start()
            return next((rule for rule in self.rules if rule.take(method, target)), None)

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)
            self.lock.notify_all()

    def faults(self) -> list[Seen]:
        """The requests that got a fault, oldest first."""
        with self.lock:
            return [s for s in self.seen if s.outcome != "relayed"]

    def wait_for(self, method: str, path: str, timeout_s: float) -> Seen | None:
        """Block until a request matching ``method`` and the ``path`` pattern was handled (or time out)."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while True:
                found = next((s for s in self.seen if s.method == method and re.search(path, s.target)), None)
                left = deadline - time.monotonic()
                if found is not None or left <= 0:
                    return found
                self.lock.wait(min(left, 0.5))


class QuietServer(ThreadingHTTPServer):
    """Handler threads are daemons; a client that hangs up mid-answer is normal here, not an error."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """Errors of one connection end that connection only (counted in ``FaultProxy.seen``)."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def error_document(code: str, message: str, target: str) -> bytes:
    """An S3 error body, as botocore parses it."""
    resource = target.split("?", 1)[0].replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
        f"<RequestId>faultproxy-{time.monotonic_ns()}</RequestId></Error>"
    ).encode()


class RelayHandler(BaseHTTPRequestHandler):
    """Reads each request whole, then either injects the chosen fault or relays it upstream."""

    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``FaultProxy.seen`` instead of stderr."""

    @property
    def proxy(self) -> FaultProxy:
        return self.server.proxy  # type: ignore[attr-defined]

    def do_any(self) -> None:
        body = self.read_body()
        rule = self.proxy.choose(self.command, self.path)
        if rule is None:
            status = self.relay(body)
            self.proxy.record(Seen(self.command, self.path, "relayed", status))
            return
        self.proxy.record(Seen(self.command, self.path, rule.fault))
        if rule.fault in ERROR_CODES:
            self.send_error_document(*ERROR_CODES[rule.fault])
        elif rule.fault == "delay":
            time.sleep(rule.delay_s)
            self.relay(body)
        elif rule.fault == "stall":
            time.sleep(rule.delay_s)
            self.drop(reset=False)
        elif rule.fault == "truncate" and self.command == "GET":
            self.relay(body, truncate=True)
        else:
            self.drop(reset=rule.fault == "reset")

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_any  # noqa: N815

    def read_body(self) -> bytes | None:
        """The request body (de-chunked when sent chunked), or None when it has none."""
        length = self.headers.get("Content-Length")
        if length is not None:
            size = int(length)
            if size > MAX_BODY:
                raise ValueError(f"request body of {size} bytes is above the proxy's {MAX_BODY}")
            return self.rfile.read(size)
        if "chunked" not in self.headers.get("Transfer-Encoding", "").lower():
            return None
        parts: list[bytes] = []
        for _ in range(MAX_CHUNK_LINES):
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers end with a blank line
                    pass
                break
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)
        return b"".join(parts)

    def send_error_document(self, status: int, code: str, message: str) -> None:
        body = b"" if self.command == "HEAD" else error_document(code, message, self.path)
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "faultproxy")
        self.end_headers()
        self.wfile.write(body)

    def drop(self, reset: bool) -> None:
        """Close the connection without a response (``reset``: with a TCP RST)."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def relay(self, body: bytes | None, truncate: bool = False) -> int | None:
        """Send the request upstream and the answer back; returns the upstream status (None: no answer)."""
        upstream = http.client.HTTPConnection(
            *self.proxy.upstream_address, timeout=self.proxy.upstream_timeout_s
        )
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    upstream.putheader(name, value)
            if body is not None:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
            response = upstream.getresponse()
            self.relay_response(response, truncate)
            return response.status
        except OSError:
            self.send_error_document(502, "BadGateway", "The fault proxy could not reach the S3 server.")
            return None
        finally:
            upstream.close()

    def relay_response(self, response: http.client.HTTPResponse, truncate: bool) -> None:
        """Status, end-to-end headers and body; a chunked upstream body is re-framed with a length."""
        length = response.getheader("Content-Length")
        no_body = self.command == "HEAD" or response.status in (204, 304)
        body = None if (no_body or length is not None) else response.read()
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and not (body is not None and name.lower() == "content-length"):
                self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if no_body:
            return
        if body is not None:
            self.wfile.write(body)
            return
        remaining = int(length or 0)
        limit = remaining // 2 if truncate else remaining
        while limit > 0 and (chunk := response.read(min(RELAY_CHUNK, limit))):
            self.wfile.write(chunk)
            limit -= len(chunk)
        if truncate:
            self.drop(reset=False)


def parse_rule(text: str) -> FaultRule:
    """``FAULT[:COUNT[:METHODS[:PATH_REGEX]]]``; COUNT ``*`` means every matching request."""
    fault, count, methods, path = ([*text.split(":", 3), "", "", ""])[:4]
    return FaultRule(
        fault=fault,
        count=None if count == "*" else int(count or 1),
        methods=frozenset(methods.split(",")) if methods else None,
        path=path or None,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the proxy in the foreground until its lifetime ends or SIGTERM/SIGINT arrives."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of the S3 server")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--rule", action="append", default=[], help="FAULT[:COUNT[:METHODS[:PATH_REGEX]]]")
    parser.add_argument("--lifetime", type=float, default=900.0, help="seconds before it stops by itself")
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, [parse_rule(r) for r in args.rule], args.port, args.lifetime)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with proxy:
        print(f"faultproxy listening on {proxy.url} -> {args.upstream}", flush=True)
        done.wait(args.lifetime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
