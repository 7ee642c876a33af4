"""HTTP downloads that survive flaky networks: retries with exponential backoff, resumable files.

A file is written to ``<target>.part`` first; after a broken connection the next attempt asks for
the rest with an HTTP Range request (and starts over if the server ignores it), and only a
complete file (its length checked against Content-Length) is renamed to ``target``. Attempts and
waits are bounded. Errors the user must fix (404, a bad URL) are not retried.
"""

from __future__ import annotations

import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tqdm import tqdm

from models.core.errors import UserError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
READ_CHUNK = 1024 * 1024
SCHEMES = ("http", "https")
HTTP_PARTIAL_CONTENT = 206
HTTP_RANGE_NOT_SATISFIABLE = 416


def log_retry(url: str, state: RetryCallState) -> None:
    """One warning per failed attempt, naming the wait before the next one."""
    wait = state.next_action.sleep if state.next_action else 0.0
    error = state.outcome.exception() if state.outcome else None
    log.warning("attempt %s for %s failed (%s); retrying in %.1f s", state.attempt_number, url, error, wait)


class TransientError(Exception):
    """A failure worth another attempt (server busy, connection cut, short body)."""


class RangeNotSatisfiableError(TransientError):
    """The partial file is not a prefix the server can continue: start over."""


@dataclass
class Downloader:
    """Bounded retries with exponential backoff around JSON requests and file downloads."""

    attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 60.0
    progress: bool | None = None  # None: a progress bar only on a terminal

    def retrying(self, url: str, action: Callable[[], T]) -> T:
        """Run ``action`` up to ``attempts`` times, waiting 1, 2, 4... seconds between failures."""
        retryer = Retrying(
            stop=stop_after_attempt(max(1, self.attempts)),
            wait=wait_exponential(multiplier=self.backoff_s, max=self.max_backoff_s),
            retry=retry_if_exception_type(TransientError),
            before_sleep=lambda state: log_retry(url, state),
        )
        try:
            return retryer(action)
        except RetryError as exc:
            last = exc.last_attempt
            cause = last.exception()
            raise UserError(
                f"Download of {url} failed after {last.attempt_number} attempts ({cause})."
            ) from cause

    def open(self, url: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """Open a URL; retryable failures become TransientError, the others a UserError."""
        if urllib.parse.urlsplit(url).scheme not in SCHEMES:
            raise UserError(f"URL {url} is not http(s).")
        request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - scheme checked above
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)  # noqa: S310
        except urllib.error.HTTPError as exc:
            if exc.code in RETRY_STATUS:
                raise TransientError(f"HTTP {exc.code}") from exc
            if exc.code == HTTP_RANGE_NOT_SATISFIABLE:
                raise RangeNotSatisfiableError("HTTP 416 (range not satisfiable)") from exc
            raise UserError(f"Download of {url} failed with HTTP {exc.code}; check the URL.") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise TransientError(str(exc)) from exc

    def get_json(self, url: str, params: dict[str, str]) -> dict[str, Any]:
        """GET ``url?params`` and decode its JSON body (CKAN answers ``{"success": true, "result": ...}``)."""
        full = f"{url}?{urllib.parse.urlencode(params)}"

        def fetch() -> dict[str, Any]:
            with self.open(full) as response:
                try:
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    raise TransientError(str(exc)) from exc
            try:
                answer = json.loads(body)
            except json.JSONDecodeError as exc:
                raise UserError(f"The answer of {full} is not JSON; is the API URL right?") from exc
            if not isinstance(answer, dict) or answer.get("success") is False:
                raise UserError(f"The CKAN API at {full} reported a failure: {str(answer)[:200]}.")
            return answer

        return self.retrying(full, fetch)

    def download(self, url: str, target: Path) -> Path:
        """Download ``url`` to ``target`` through a resumable ``.part`` file."""
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        self.retrying(url, lambda: self.download_once(url, part))
        part.replace(target)
        log.info("downloaded %s (%s bytes)", target.name, target.stat().st_size)
        return target

    def download_once(self, url: str, part: Path) -> None:
        """One attempt: continue ``part`` from where it stopped when the server honours Range."""
        have = part.stat().st_size if part.is_file() else 0
        try:
            response = self.open(url, {"Range": f"bytes={have}-"} if have else None)
        except RangeNotSatisfiableError:
            part.unlink(missing_ok=True)
            raise
        with response:
            resumed = have > 0 and response.status == HTTP_PARTIAL_CONTENT
            start = have if resumed else 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length else None
            self.copy_body(response, part, start, total)
        size = part.stat().st_size
        if total is not None and size != total:
            raise TransientError(f"got {size} of {total} bytes")

    def copy_body(
        self, response: http.client.HTTPResponse, part: Path, start: int, total: int | None
    ) -> None:
        """Append (or write afresh from 0) the body to ``part``, with a progress bar."""
        with (
            part.open("ab" if start else "wb") as out,
            tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=part.stem, disable=self.hide_bar()
            ) as bar,
        ):
            try:
                while chunk := response.read(READ_CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise TransientError(f"connection broken after {out.tell()} bytes ({exc})") from exc

    def hide_bar(self) -> bool | None:
        """tqdm's ``disable``: None lets tqdm hide the bar when stderr is not a terminal."""
        return None if self.progress is None else not self.progress
