"""The exact files a deployment's code bundle is made of, staged in a folder of their own.

``push_to_s3`` uploads its working directory minus ``.prefectignore``, and walks every file below it
to decide (about 25 s per deployment in a checkout with two venvs and data). ``make deploy`` therefore
runs ``prefect deploy`` in a staging folder holding only the commit: ``git archive HEAD`` for a clean
tree, so the bundle is the commit itself, or the tracked and untracked-but-not-ignored files of the
work tree for a deploy forced with ``ALLOW_DIRTY=1``. ``.prefectignore`` still applies on top.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

from models.errors import UserError

GIT_TIMEOUT_S = 120


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
