"""The Prefect API probe that commands run first, over plain HTTP (no Prefect import needed).

``make doctor``, ``make status`` and every command that talks to Prefect use it, so a server that is
down or refuses our credentials is said in one sentence before a Prefect client would print a traceback.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import tenacity

from models.core.errors import UserError
from models.core.settings import Settings

HTTP_TIMEOUT_S = 5
BUSY = 503  # Prefect's server answers so while its database is busy (SQLite on a loaded machine)


class NoAnswerInTime(str):
    """The reason http_get gives (with status 0) for a request that had no answer within HTTP_TIMEOUT_S."""


@dataclass(frozen=True)
class ApiProblem:
    """Why the Prefect API cannot be used, and what to do."""

    detail: str
    fix: str


def is_busy(result: tuple[int, Any]) -> bool:
    """A 503 or a timeout: a server that is there but slow, worth asking again (refused is not)."""
    status, reason = result
    return status == BUSY or isinstance(reason, NoAnswerInTime)


@tenacity.retry(
    retry=tenacity.retry_if_result(is_busy),
    wait=tenacity.wait_exponential(multiplier=0.5, max=4),
    stop=tenacity.stop_after_attempt(4),
    retry_error_callback=lambda state: state.outcome.result(),  # still busy: give the last answer
)
def http_get(url: str, headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    """Status and parsed JSON (or text) of a GET (a POST of ``body`` as JSON when given); status 0 with
    the reason when unreachable. A busy server (503, or no answer in time) is asked up to 4 times."""
    data = None if body is None else json.dumps(body).encode()
    headers = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (configured API URLs)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            body = response.read().decode(errors="replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return 0, NoAnswerInTime(f"no answer in {HTTP_TIMEOUT_S} s")
        return 0, str(reason)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def prefect_headers(settings: Settings) -> dict[str, str]:
    """Prefect Cloud's API key (bearer) or a self-hosted server's auth string (basic)."""
    if settings.prefect_api_key is not None:
        return {"Authorization": f"Bearer {settings.prefect_api_key.get_secret_value()}"}
    if settings.prefect_auth_string is not None:
        token = base64.b64encode(settings.prefect_auth_string.get_secret_value().encode()).decode()
        return {"Authorization": f"Basic {token}"}
    return {}


def probe_prefect_api(settings: Settings) -> ApiProblem | None:
    """None when the API answers and accepts our credentials, else what is wrong.

    ``/health`` answers everyone, so an endpoint that needs the auth string (self-hosted) or the API key
    (Cloud) is probed, with the same headers Prefect clients send; a workspace URL may answer 404 there,
    which still proves it is reachable and did not refuse us.
    """
    url = settings.prefect_api_url
    status, reason = http_get(url.rstrip("/") + "/admin/version", prefect_headers(settings))
    if status in (401, 403):
        fix = "set PREFECT_API_AUTH_STRING to the server's auth string (Cloud: PREFECT_API_KEY)"
        return ApiProblem(f"{url} refused the request (HTTP {status})", fix)
    if status == 0 or status >= 500:
        return ApiProblem(f"{url} does not answer ({status or reason})", "make up, or set PREFECT_API_URL")
    return None


def require_prefect_api(settings: Settings) -> None:
    """Stop in one sentence, before a Prefect command would fail with a traceback."""
    problem = probe_prefect_api(settings)
    if problem is not None:
        raise UserError(f"The Prefect API at {problem.detail}; {problem.fix}.")
