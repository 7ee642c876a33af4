"""The exact files a deployment's code bundle is made of, staged in a folder of their own.

``prefect deploy`` pushes from its working directory minus ``.prefectignore``, and walks every file below it
to decide (about 25 s per deployment in a checkout with two venvs and data). ``make deploy`` therefore
runs ``prefect deploy`` in a staging folder holding only the commit: ``git archive HEAD`` for a clean
tree, so the bundle is the commit itself, or the tracked and untracked-but-not-ignored files of the
work tree for a deploy forced with ``ALLOW_DIRTY=1``. ``.prefectignore`` still applies on top.

The push step of prefect.yaml is ``push_code_bundle``: those files as one ``bundle.tar.gz`` object, so a
bundle on S3 is written whole or not at all, and a flow run's ``pull`` is one GET (83 small objects took
1.7-3 s per run) followed by ``tar -xzf``.
"""

from __future__ import annotations

import gzip
import io
import logging
import shutil
import subprocess
import tarfile
from pathlib import Path

from models.core.errors import UserError

log = logging.getLogger(__name__)

GIT_TIMEOUT_S = 120
BUNDLE_NAME = "bundle.tar.gz"


def git_output(args: list[str], root: Path) -> bytes:
    """Raw stdout of a git command in ``root``; a failure is a UserError naming the command."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"`git {' '.join(args)}` could not run in {root} ({exc}).") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise UserError(f"`git {' '.join(args)}` failed in {root}: {message[0]}")
    return done.stdout


def stage_commit(root: Path, sha: str, dest: Path) -> int:
    """Extract the tree of ``sha`` into ``dest``; returns the number of files."""
    archive = git_output(["archive", "--format=tar", sha], root)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        members = [m for m in tar.getmembers() if m.isfile() or m.isdir()]
        tar.extractall(dest, members=members, filter="data")
    return sum(1 for m in members if m.isfile())


def stage_work_tree(root: Path, dest: Path) -> int:
    """Copy the tracked and the untracked, not ignored files of the work tree into ``dest``."""
    listing = git_output(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], root)
    count = 0
    for name in sorted({n for n in listing.decode().split("\0") if n}):
        source = root / name
        if not source.is_file():  # deleted in the work tree, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        count += 1
    return count


def stage_bundle(root: Path, sha: str, dirty: bool, dest: Path) -> int:
    """Stage the code to deploy: the commit for a clean tree, the work tree's files for a dirty one."""
    count = stage_work_tree(root, dest) if dirty else stage_commit(root, sha, dest)
    if not (dest / "prefect.yaml").is_file():
        raise UserError(f"prefect.yaml is not committed in {root}; commit it before deploying.")
    return count


def bundle_files(root: Path, ignore_file: str | None) -> list[str]:
    """Relative paths of the files under ``root`` that ``.prefectignore`` lets through, sorted."""
    from prefect.utilities.filesystem import filter_files

    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    ignore = root / ignore_file if ignore_file else None
    if ignore is None or not ignore.is_file():
        return names
    patterns = [line.strip() for line in ignore.read_text(encoding="utf-8").splitlines()]
    allowed = filter_files(str(root), patterns)
    return [name for name in names if name in allowed]


def build_bundle(root: Path, ignore_file: str | None = ".prefectignore") -> tuple[bytes, int]:
    """A gzipped tar of the bundle's files and their count; same files, same bytes (no owner, no time)."""
    names = bundle_files(root, ignore_file)
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in names:
            info = tar.gettarinfo(str(root / name), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with (root / name).open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue(), len(names)


def push_code_bundle(
    bucket: str,
    folder: str,
    credentials: dict | None = None,
    client_parameters: dict | None = None,
    ignore_file: str | None = ".prefectignore",
) -> dict[str, str]:
    """prefect.yaml ``push`` step: the working directory as ``<folder>/bundle.tar.gz``, one PUT.

    Runs where ``prefect deploy`` runs (``make deploy`` puts the staged copy on ``PYTHONPATH``).
    Returns ``bucket`` and ``folder`` for the ``pull`` steps, like ``prefect_aws``'s ``push_to_s3``.
    """
    from prefect_aws.s3 import get_s3_client

    from models.core.s3 import s3_errors

    body, count = build_bundle(Path.cwd(), ignore_file)
    key = f"{folder.rstrip('/')}/{BUNDLE_NAME}"
    client = get_s3_client(credentials=credentials, client_parameters=client_parameters or {})
    with s3_errors(f"s3://{bucket}/{key}"):
        client.put_object(Bucket=bucket, Key=key, Body=body)
    log.info("pushed %s files (%s bytes) to s3://%s/%s", count, len(body), bucket, key)
    return {"bucket": bucket, "folder": folder}
