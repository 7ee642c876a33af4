"""Helpers of the agent image tests: run the agent/docker scripts and inspect images and containers.

The scripts run with a clean environment (the caller's TO_BIKES_*, AWS_* and PREFECT_* variables
are dropped, the stack's are added) and from the state folder, so no developer ``.env`` leaks in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import time
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from models.core.settings import PROJECT_ROOT

SCRIPTS = PROJECT_ROOT / "agent" / "docker"
SCRIPT_TIMEOUT_S = 1200  # a cold build with debootstrap takes about 3 minutes here
DOCKER_TIMEOUT_S = 300
T = TypeVar("T")
PROJECT_CODE = re.compile(r"(^|/)(models/(settings|train|features)\.py|orchestration/\w+\.py|prefect\.yaml)$")
INSTALLED = re.compile(r"(^|/)(site-packages|dist-packages)/|^usr/lib/python3")
SECRET_FILE = re.compile(
    r"(^|/)(\.env|\.env\.[^/]+|\.aws/(credentials|config)|\.prefect/profiles\.toml|\.netrc|\.git-credentials)$"
)


def clean_env(env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without project/AWS/Prefect settings, plus ``env`` and ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TO_BIKES_", "AWS_", "PREFECT_"))}
    return base | dict(env) | dict(extra or {})


def run_script(
    name: str, *args: str, env: Mapping[str, str], timeout: float = SCRIPT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``agent/docker/<name>`` with exactly ``env`` on top of a clean environment."""
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        cwd=env.get("TO_BIKES_STATE_DIR", PROJECT_ROOT),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` with captured text output."""
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=DOCKER_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def inspect_image(image: str) -> dict:
    """``docker image inspect`` of one image."""
    return json.loads(docker("image", "inspect", image).stdout)[0]


def container_exists(container: str) -> bool:
    return docker("container", "inspect", container, check=False).returncode == 0


def scan_image_files(image: str, needles: Iterable[str]) -> dict[str, list[str]]:
    """Paths in ``image`` of project code, secret-looking files, build leftovers, files with a needle."""
    found: dict[str, list[str]] = {"project_code": [], "secret_files": [], "needles": [], "build_dirs": []}
    encoded = [needle.encode() for needle in needles]
    container = docker("create", image, "true").stdout.strip()
    try:
        with subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
                for member in archive:
                    classify_member(archive, member, encoded, found)
    finally:
        docker("rm", "--force", container, check=False)
    return found


def classify_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, needles: list[bytes], found: dict[str, list[str]]
) -> None:
    """Record ``member`` under each finding it matches (called in tar order, streaming)."""
    name = member.name.lstrip("./")
    if PROJECT_CODE.search(name) and not INSTALLED.search(name):
        found["project_code"].append(name)
    if SECRET_FILE.search(name):
        found["secret_files"].append(name)
    if name.startswith(("build/", "home/agent/work/")) and name not in ("build/", "home/agent/work/"):
        found["build_dirs"].append(name)
    if member.isfile():
        handle = archive.extractfile(member)
        content = handle.read() if handle else b""
        if any(needle in content for needle in needles):
            found["needles"].append(name)


def prefect_request(env: Mapping[str, str], path: str, body: dict | None = None) -> object:
    """A JSON request to the stack's Prefect API (POST when ``body`` is given)."""
    headers = {"Content-Type": "application/json"}
    if env.get("PREFECT_API_AUTH_STRING"):
        token = b64encode(env["PREFECT_API_AUTH_STRING"].encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(env["PREFECT_API_URL"] + path, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_for(check: Callable[[], T], what: str, attempts: int = 120, pause_s: float = 1.0) -> T:
    """Call ``check`` until it returns something truthy; bounded by ``attempts``."""
    for _ in range(attempts):
        result = check()
        if result:
            return result
        time.sleep(pause_s)
    raise AssertionError(f"gave up waiting for {what} after {attempts} attempts")


def container_logs(container_or_cid_file: str | Path) -> str:
    """The container's output, for assertion messages (empty when it is gone)."""
    target = str(container_or_cid_file)
    if isinstance(container_or_cid_file, Path):
        if not container_or_cid_file.is_file():
            return ""
        target = container_or_cid_file.read_text().strip()
    result = docker("logs", "--tail", "80", target, check=False)
    return result.stdout + result.stderr


def online_workers(env: Mapping[str, str]) -> list[str]:
    """Names of the workers the server sees polling the stack's pool."""
    pool = env.get("TO_BIKES_WORK_POOL", "to-bikes")
    try:
        workers = prefect_request(env, f"/work_pools/{pool}/workers/filter", {})
    except OSError:
        return []
    assert isinstance(workers, list)
    return [worker["name"] for worker in workers if worker.get("status") == "ONLINE"]
